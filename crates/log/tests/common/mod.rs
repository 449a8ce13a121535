//! Helpers shared by the log's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use millstream_log::{Log, ReadLimit, Record, StoredRecord, TopicConfig};

/// A fresh log in a temporary directory with topic `t` created with `config`.
pub fn log_with(config: TopicConfig) -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = Log::open(dir.path()).expect("open log");
    log.create_topic("t", config).expect("create topic");
    (dir, log)
}

/// The record stored at `offset` in these tests: a pure function of the offset, so a reader
/// can check any record without knowing how it was batched. Values vary in length (0 to 699
/// bytes), every third record has a header, every fifth has no key.
pub fn expected_record(offset: u64) -> Record {
    let len = (offset.wrapping_mul(7919) % 700) as usize;
    let value: Vec<u8> = (0..len).map(|i| (offset as usize + i) as u8).collect();
    let mut record = Record::new(value).with_timestamp(1_700_000_000_000 + offset as i64);
    if !offset.is_multiple_of(5) {
        record = record.with_key(format!("key-{offset}"));
    }
    if offset.is_multiple_of(3) {
        record = record.with_header("offset", offset.to_le_bytes().to_vec());
    }
    record
}

/// Records `range` as [`expected_record`]s.
pub fn expected_batch(range: std::ops::Range<u64>) -> Vec<Record> {
    range.map(expected_record).collect()
}

/// Asserts `records` are exactly offsets `range` with their expected contents.
pub fn assert_expected(records: &[StoredRecord], range: std::ops::Range<u64>) {
    assert_eq!(records.len() as u64, range.end - range.start, "record count for offsets {range:?}");
    for (r, offset) in records.iter().zip(range) {
        assert_eq!(r.offset, offset, "offsets are contiguous");
        assert_eq!(r.record, expected_record(offset), "record at offset {offset}");
    }
}

/// Every record of partition `partition` of `t` from `from`, read in polls of `chunk` records.
pub fn read_all(log: &Log, partition: u32, from: u64, chunk: usize) -> Vec<StoredRecord> {
    let mut reader = log.reader("t", partition, from).expect("reader");
    let mut out = Vec::new();
    while reader.poll_into(ReadLimit::records(chunk), &mut out).expect("poll") > 0 {}
    out
}

/// The directory of partition `p` of topic `t` under `root`.
pub fn partition_dir(root: &Path, p: u32) -> PathBuf {
    root.join("t").join(p.to_string())
}

/// Segment files (`.log`) of a partition directory, sorted.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// A small deterministic PRNG (xorshift64*), so tests need no extra dependency and print
/// their seed.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` (0 is replaced).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// A seed from the clock.
    pub fn seed_from_clock() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `range` (half-open, non-empty).
    pub fn range(&mut self, range: std::ops::Range<u64>) -> u64 {
        range.start + self.next_u64() % (range.end - range.start)
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Runs `f` and returns its result with the log lines of level WARN and above it emitted.
pub fn capture_warnings<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let bytes = captured.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let lines = String::from_utf8_lossy(&bytes).lines().map(str::to_string).collect();
    (out, lines)
}
