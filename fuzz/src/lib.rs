//! What the fuzz targets do, shared with `make_seeds` (which writes inputs in the same
//! layouts from files the real code writes).
//!
//! Every target feeds hostile bytes to the code through the same entry points a job or an
//! operator uses (files on disk read through the public API), and checks that the result
//! is either a value or a typed error, never a panic, a hang or an allocation sized by a
//! length field (libFuzzer's `-rss_limit_mb` / `-malloc_limit_mb` catch those). Where the
//! code promises more (recovery never loses an intact record, a repaired partition opens),
//! the target asserts that too: a failed assertion is a finding like a panic.
//!
//! Files go to a scratch directory under `/dev/shm` when it exists (memory, so an iteration
//! costs no disk I/O), else the system temp directory.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use millstream_checkpoint::{
    format, manifest_path, BlobName, CheckpointError, CheckpointKind, CheckpointStore, FileRef, Manifest,
    MANIFEST_FORMAT_VERSION,
};
use millstream_connectors::files::FilePosition;
use millstream_connectors::parquet::ParquetPosition;
use millstream_connectors::{CsvSource, JsonLinesSource, ParquetSource, Row};
use millstream_log::{Durability, Log, LogError, ReadLimit, Record, StoredRecord, TopicConfig};
use millstream_model::Timestamp;
use millstream_runtime::source::{ReadStatus, Source, SourceReader};
use millstream_runtime::state::KeyedStateStore;

/// A scratch directory for one target, kept for the process's life.
pub fn scratch(name: &str) -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = tempfile::Builder::new().prefix(&format!("millstream-fuzz-{name}-")).tempdir_in(shm);
    builder
        .or_else(|_| tempfile::Builder::new().prefix(&format!("millstream-fuzz-{name}-")).tempdir())
        .expect("scratch dir")
}

/// Reads a little-endian integer at `*pos` from `data`, zero-padded past its end.
fn take<const N: usize>(data: &[u8], pos: &mut usize) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = data.get(*pos + i).copied().unwrap_or(0);
    }
    *pos = (*pos + N).min(data.len());
    out
}

fn rest(data: &[u8], pos: usize) -> &[u8] {
    &data[pos.min(data.len())..]
}

// ---------------------------------------------------------------------------------------
// log_segment
// ---------------------------------------------------------------------------------------

/// The log target's input: the files of partition 0 of topic `t`.
///
/// Layout: `flags u8`, `index length u16 LE`, the index bytes of the first segment; if flag
/// bit 0 is set, `base offset of the second segment u64 LE` and `length of the first
/// segment u32 LE`; then the segment bytes (the first segment's, then the second's).
/// Bits 1..=7 of the flags pick the offset of a second read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInput {
    /// Bits 1..=7: where the positioned read starts.
    pub flags: u8,
    /// `00000000000000000000.index`.
    pub index: Vec<u8>,
    /// `00000000000000000000.log`.
    pub first: Vec<u8>,
    /// Another segment file: its base offset and bytes.
    pub second: Option<(u64, Vec<u8>)>,
}

impl LogInput {
    /// Parses the layout above; never fails (missing bytes read as zeros).
    pub fn parse(data: &[u8]) -> LogInput {
        let mut pos = 0;
        let [flags] = take::<1>(data, &mut pos);
        let index_len = u16::from_le_bytes(take(data, &mut pos)) as usize;
        let index = rest(data, pos)[..index_len.min(rest(data, pos).len())].to_vec();
        pos += index.len();
        if flags & 1 == 0 {
            return LogInput { flags, index, first: rest(data, pos).to_vec(), second: None };
        }
        let base = u64::from_le_bytes(take(data, &mut pos));
        let first_len = u32::from_le_bytes(take(data, &mut pos)) as usize;
        let segments = rest(data, pos);
        let (first, second) = segments.split_at(first_len.min(segments.len()));
        LogInput { flags, index, first: first.to_vec(), second: Some((base, second.to_vec())) }
    }

    /// The bytes [`LogInput::parse`] reads back as `self`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![(self.flags & !1) | u8::from(self.second.is_some())];
        out.extend_from_slice(&(self.index.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.index);
        if let Some((base, _)) = &self.second {
            out.extend_from_slice(&base.to_le_bytes());
            out.extend_from_slice(&(self.first.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(&self.first);
        if let Some((_, second)) = &self.second {
            out.extend_from_slice(second);
        }
        out
    }
}

/// The topic every log iteration uses: small index interval (so indexes have entries), no
/// fsync (the scratch directory is in memory anyway).
pub fn log_topic_config() -> TopicConfig {
    let mut config = TopicConfig::new(1).with_durability(Durability::None);
    config.index_interval_bytes = 64;
    config
}

/// At most this many polls per read: every poll that returns records advances, so a
/// reader that needs more is stuck, which is a finding.
const MAX_POLLS: usize = 100_000;

/// Every record from `from` on, or the first error; panics if the reader does not advance.
fn read_from(log: &Log, from: u64) -> Result<Vec<StoredRecord>, LogError> {
    let mut reader = log.reader("t", 0, from)?;
    let mut out = Vec::new();
    for _ in 0..MAX_POLLS {
        let before = out.len();
        if reader.poll_into(ReadLimit::records(1000), &mut out)? == 0 {
            for pair in out.windows(2) {
                assert_eq!(pair[1].offset, pair[0].offset + 1, "a reader returned non-contiguous offsets");
            }
            return Ok(out);
        }
        assert!(out.len() > before);
    }
    panic!("a reader polled {MAX_POLLS} times without catching up");
}

/// Runs the log target on one input (see [`LogInput`]).
pub fn fuzz_log(data: &[u8]) {
    thread_local! {
        static LOG: RefCell<Option<(tempfile::TempDir, Log)>> = const { RefCell::new(None) };
    }
    LOG.with(|cell| {
        let mut cell = cell.borrow_mut();
        let (dir, log) = cell.get_or_insert_with(|| {
            let dir = scratch("log");
            let log = Log::open(dir.path()).expect("open log");
            log.create_topic("t", log_topic_config()).expect("create topic");
            (dir, log)
        });
        let partition = dir.path().join("t").join("0");
        run_log_input(log, &partition, &LogInput::parse(data));
    });
}

/// Writes `input` as the files of partition 0 and exercises readers, the writer's recovery
/// and repair on them.
pub fn run_log_input(log: &Log, partition: &Path, input: &LogInput) {
    let _ = std::fs::remove_dir_all(partition);
    std::fs::create_dir_all(partition).expect("partition dir");
    std::fs::write(partition.join(segment_name(0, "log")), &input.first).expect("write segment");
    if !input.index.is_empty() {
        std::fs::write(partition.join(segment_name(0, "index")), &input.index).expect("write index");
    }
    if let Some((base, bytes)) = &input.second {
        std::fs::write(partition.join(segment_name(*base, "log")), bytes).expect("write segment");
    }

    let before = read_from(log, 0);
    let _ = log.offsets("t", 0);
    let _ = read_from(log, u64::from(input.flags >> 1));

    let writer = match log.writer("t", 0) {
        Ok(w) => Some(w),
        Err(e @ (LogError::Corrupt { .. } | LogError::UnsupportedVersion { .. })) => {
            // Repair must always leave a partition that opens.
            let report =
                log.repair_partition("t", 0).unwrap_or_else(|r| panic!("repair after {e} failed: {r}"));
            let w =
                log.writer("t", 0).unwrap_or_else(|r| panic!("open after repair ({report:?}) failed: {r}"));
            Some(w)
        }
        Err(LogError::OffsetOutOfRange { .. }) => None,
        Err(e) => panic!("opening a writer failed with an error that is not about the data: {e}"),
    };
    let Some(mut writer) = writer else { return };
    let end = writer.end_offset();
    let record = Record::new("appended after recovery").with_key("k").with_timestamp(7);
    let ack = writer.append_batch(std::slice::from_ref(&record)).expect("append after recovery");
    assert_eq!(ack.base_offset, end);
    drop(writer);
    let after = read_from(log, end).expect("read what was appended after recovery");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].record, record);
    // Recovery keeps every record a reader could read before it (it only cuts what readers
    // ignore too), unless it had to repair damage.
    if let (Ok(before), Ok(all)) = (before, read_from(log, 0)) {
        if all.first().map(|r| r.offset) == before.first().map(|r| r.offset) && before.len() as u64 <= end {
            let kept = all.iter().take(before.len()).collect::<Vec<_>>();
            if kept.len() == before.len() && kept.iter().zip(&before).all(|(a, b)| *a == b) {
                return;
            }
            panic!(
                "recovery lost or changed records a reader had read: {} before, {} after",
                before.len(),
                all.len()
            );
        }
    }
}

/// A segment or index file name: the base offset in 20 digits.
pub fn segment_name(base: u64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

// ---------------------------------------------------------------------------------------
// checkpoint_manifest and checkpoint_blob
// ---------------------------------------------------------------------------------------

/// A checkpoint store with a complete checkpoint 1, whose directory the targets leave alone,
/// and a directory for checkpoint 2, which they fill.
struct CheckpointScratch {
    dir: tempfile::TempDir,
    store: CheckpointStore,
}

fn with_checkpoint_scratch(f: impl FnOnce(&Path, &CheckpointStore)) {
    thread_local! {
        static SCRATCH: RefCell<Option<CheckpointScratch>> = const { RefCell::new(None) };
    }
    SCRATCH.with(|cell| {
        let mut cell = cell.borrow_mut();
        let scratch = cell.get_or_insert_with(|| {
            let dir = scratch("checkpoint");
            let store = CheckpointStore::local(dir.path()).expect("store");
            let writer = store.begin(1, CheckpointKind::Checkpoint);
            writer.write(BlobName::key_group("counts", 0), &sample_state()).expect("write blob");
            writer.commit(4, 1, Default::default()).expect("commit");
            CheckpointScratch { dir, store }
        });
        let chk2 = scratch.dir.path().join("chk-00000000000000000002");
        let _ = std::fs::remove_dir_all(&chk2);
        std::fs::create_dir_all(chk2.join("counts")).expect("checkpoint dir");
        f(scratch.dir.path(), &scratch.store);
    });
}

/// A key group's state as the runtime encodes it: `(String, u64)` entries.
pub fn sample_state() -> Vec<u8> {
    let mut store = KeyedStateStore::<String, u64>::new(4);
    *store.get_or_default("alpha".to_string()) = 3;
    *store.get_or_default("beta".to_string()) = u64::MAX;
    (0..4).flat_map(|g| store.encode_group(g).expect("encode")).collect()
}

/// Frames `payload` as the checkpoint store does (see `millstream_checkpoint::format`).
pub fn frame(magic: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(format::HEADER_LEN + payload.len() + format::TRAILER_LEN);
    out.extend_from_slice(&magic);
    out.extend_from_slice(&format::FRAME_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// CRC32 (IEEE), bit by bit: the fuzz crate needs no crc32fast for a few small files.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Checks the store after checkpoint 2 was written with hostile contents: the newest
/// complete checkpoint is 2 (then every file it names must read back) or 1, and nothing
/// fails with an error that is not about the files' contents.
fn check_store(store: &CheckpointStore) {
    let allowed = |e: &CheckpointError| e.is_damage() || matches!(e, CheckpointError::Version { .. });
    match store.latest_complete() {
        Ok(Some(m)) if m.id == 2 => {
            store.verify(&m).expect("the newest complete checkpoint verifies");
            for file in m.entries.values() {
                store.read(file).expect("every file of the newest complete checkpoint reads");
            }
        }
        Ok(Some(m)) => assert_eq!(m.id, 1, "only checkpoints 1 and 2 exist"),
        Ok(None) => panic!("checkpoint 1 is intact but was not found"),
        Err(e) => assert!(matches!(e, CheckpointError::Version { .. }), "latest_complete failed: {e}"),
    }
    match store.list_complete() {
        Ok(ids) => assert!(ids.contains(&1), "{ids:?}"),
        Err(e) => assert!(allowed(&e), "list_complete failed: {e}"),
    }
    match store.manifest(2) {
        Ok(m) => {
            for file in m.entries.values() {
                if let Err(e) = store.read(file) {
                    assert!(allowed(&e) || matches!(e, CheckpointError::Io { .. }), "{e}");
                }
            }
        }
        Err(e) => assert!(allowed(&e), "reading a manifest failed: {e}"),
    }
}

/// Runs the manifest target: `data` is the manifest file of checkpoint 2.
pub fn fuzz_manifest(data: &[u8]) {
    with_checkpoint_scratch(|root, store| {
        std::fs::write(root.join(manifest_path(2)), data).expect("write manifest");
        check_store(store);
    });
}

/// The manifest of checkpoint 2 holding one key-group blob with the given length and
/// checksum, framed.
pub fn manifest_for(len: u64, checksum: u32) -> Vec<u8> {
    let name = BlobName::key_group("counts", 0);
    let path = millstream_checkpoint::blob_path(2, &name);
    let manifest = Manifest {
        format_version: MANIFEST_FORMAT_VERSION,
        id: 2,
        kind: CheckpointKind::Checkpoint,
        created_at_ms: 1_700_000_000_000,
        key_groups: 4,
        workers: 1,
        entries: [(name, FileRef { path, len, checksum })].into_iter().collect(),
        metadata: Default::default(),
    };
    frame(format::MANIFEST_MAGIC, &serde_json::to_vec(&manifest).expect("manifest json"))
}

/// Runs the blob target. `data` is `mode u8` then bytes. Mode bit 0 clear: the bytes are the
/// blob file, and the manifest records the length and the trailer of a valid blob of the
/// same length (so damage must be detected by the framing); set: the manifest records the
/// bytes' own length and trailer (as if it was written for them). Mode bit 1 set: the bytes
/// are a payload, framed correctly, so that they reach the state decoders.
pub fn fuzz_blob(data: &[u8]) {
    let (mode, bytes) = data.split_first().map_or((0, &[][..]), |(m, b)| (*m, b));
    let file = if mode & 2 != 0 { frame(format::BLOB_MAGIC, bytes) } else { bytes.to_vec() };
    let trailer = |f: &[u8]| {
        f.len().checked_sub(4).map_or(0, |at| u32::from_le_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]]))
    };
    let checksum = if mode & 1 != 0 {
        trailer(&file)
    } else {
        trailer(&frame(format::BLOB_MAGIC, &vec![0u8; file.len().saturating_sub(20)]))
    };
    with_checkpoint_scratch(|root, store| {
        let name = BlobName::key_group("counts", 0);
        std::fs::write(root.join(millstream_checkpoint::blob_path(2, &name)), &file).expect("write blob");
        std::fs::write(root.join(manifest_path(2)), manifest_for(file.len() as u64, checksum))
            .expect("write manifest");
        check_store(store);
        if let Ok(m) = store.manifest(2) {
            if let Ok(payload) = store.read(&m.entries[&name]) {
                decode_state(&payload);
            }
        }
    });
    if mode & 2 != 0 {
        decode_state(bytes);
    }
}

/// The decoders a restore runs on a blob's payload: key-group state and source positions.
pub fn decode_state(payload: &[u8]) {
    let mut state = KeyedStateStore::<String, u64>::new(4);
    let _ = state.restore_group(0, payload);
    let mut nested = KeyedStateStore::<Vec<u8>, Vec<(String, i64)>>::new(4);
    let _ = nested.restore_group(1, payload);
    let _ = FilePosition::decode(payload);
    let _ = ParquetPosition::decode(payload);
}

// ---------------------------------------------------------------------------------------
// csv_reader, jsonl_reader, parquet_reader
// ---------------------------------------------------------------------------------------

/// Reads every record of `source`'s partition 0 of 1 (or from a checkpointed position),
/// through the same calls a job makes. Returns how many records were read, or the error.
fn drain<T, S: Source<T>>(source: &S, position: Option<&[u8]>) -> Result<usize, String> {
    let partitions = source.partitions(1).map_err(|e| e.to_string())?;
    let mut total = 0;
    for partition in 0..partitions {
        let mut reader: Box<dyn SourceReader<T>> = match position {
            Some(p) => source.reopen(partition, partitions, p),
            None => source.open(partition, partitions),
        }
        .map_err(|e| e.to_string())?;
        let mut out: Vec<(T, Timestamp)> = Vec::new();
        for _ in 0..MAX_POLLS {
            out.clear();
            match reader.read(&mut out, 100).map_err(|e| e.to_string())? {
                ReadStatus::Finished => break,
                _ => total += out.len(),
            }
            let _ = reader.checkpoint_position();
            let _ = reader.position();
        }
    }
    Ok(total)
}

/// A scratch file the readers read, rewritten per input.
fn with_input_file(name: &str, ext: &str, data: &[u8], f: impl FnOnce(&Path)) {
    thread_local! {
        static DIR: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
    }
    DIR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let dir = cell.get_or_insert_with(|| scratch(name));
        let path: PathBuf = dir.path().join(format!("input.{ext}"));
        std::fs::write(&path, data).expect("write input");
        f(&path);
    });
}

/// Runs the CSV target: `flags u8` (bit 0: header row; bit 1: typed rows; bit 2: split the
/// file into 7-byte ranges; bit 3: resume from a position made of the next 24 bytes), then
/// the file.
pub fn fuzz_csv(data: &[u8]) {
    let (flags, file) = data.split_first().map_or((0, &[][..]), |(m, b)| (*m, b));
    let (position, file) =
        if flags & 8 != 0 && file.len() >= 24 { (Some(&file[..24]), &file[24..]) } else { (None, file) };
    with_input_file("csv", "csv", file, |path| {
        let pattern = path.display().to_string();
        let mut source = if flags & 2 != 0 {
            use millstream_connectors::{DataType, Field, Schema};
            CsvSource::rows_with_schema(
                pattern,
                std::sync::Arc::new(Schema::new(vec![
                    Field::new("a", DataType::Int, true),
                    Field::new("b", DataType::Text, true),
                    Field::new("c", DataType::Float, true),
                ])),
            )
        } else {
            CsvSource::rows(pattern)
        };
        source = source.has_headers(flags & 1 != 0);
        if flags & 4 != 0 {
            source = source.split_bytes(7);
        }
        let _ = drain::<Row, _>(&source, position);
    });
}

/// Runs the JSON-lines target: `flags u8` (bit 0: split into 5-byte ranges; bit 1: resume
/// from a position made of the next 24 bytes), then the file, read as JSON values.
pub fn fuzz_jsonl(data: &[u8]) {
    let (flags, file) = data.split_first().map_or((0, &[][..]), |(m, b)| (*m, b));
    let (position, file) =
        if flags & 2 != 0 && file.len() >= 24 { (Some(&file[..24]), &file[24..]) } else { (None, file) };
    with_input_file("jsonl", "jsonl", file, |path| {
        let mut source = JsonLinesSource::<serde_json::Value>::new(path.display().to_string());
        if flags & 1 != 0 {
            source = source.split_bytes(5);
        }
        let _ = drain::<serde_json::Value, _>(&source, position);
    });
}

/// Runs the Parquet target: `flags u8` (bit 0: resume from a position made of the next 24
/// bytes; bits 1..: the batch size), then the file.
pub fn fuzz_parquet(data: &[u8]) {
    tolerate_caught_third_party_panics();
    let (flags, file) = data.split_first().map_or((0, &[][..]), |(m, b)| (*m, b));
    let (position, file) =
        if flags & 1 != 0 && file.len() >= 24 { (Some(&file[..24]), &file[24..]) } else { (None, file) };
    with_input_file("parquet", "parquet", file, |path| {
        let source = ParquetSource::new(path.display().to_string()).batch_size(usize::from(flags >> 1) + 1);
        let _ = drain::<Row, _>(&source, position);
    });
}

/// libFuzzer's panic hook aborts on every panic, even one the code catches. The Parquet
/// source catches panics of the parquet crate (which still panics on some malformed files)
/// and turns them into errors: let those through the hook. A panic that the source does
/// not catch still escapes the target and aborts (libfuzzer-sys checks for that).
fn tolerate_caught_third_party_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Panics are rare: a backtrace per panic costs nothing. Any parquet or arrow frame
            // (a panic in `Vec::with_capacity` called by the parquet crate is located in
            // liballoc) means the panic comes from a call the source guards.
            let backtrace = std::backtrace::Backtrace::force_capture().to_string();
            let third_party = ["/parquet-", "/arrow-"].iter().any(|c| backtrace.contains(c));
            if !third_party {
                previous(info);
            }
        }));
    });
}

// ---------------------------------------------------------------------------------------
// produce_input
// ---------------------------------------------------------------------------------------

/// Runs the `millstream produce` input target: `separator length u8` (0: no separator), the
/// separator, `max line bytes u8` (plus 1), then the input. Checks the records against a
/// plain split of the input at `\n`.
pub fn fuzz_produce(data: &[u8]) {
    use millstream_cli::produce_input::{LineRecords, ProduceInputError};
    let mut pos = 0;
    let [sep_len] = take::<1>(data, &mut pos);
    let sep_bytes = &rest(data, pos)[..usize::from(sep_len).min(rest(data, pos).len())];
    pos += sep_bytes.len();
    let [max] = take::<1>(data, &mut pos);
    let max = usize::from(max) + 1;
    let input = rest(data, pos);
    let Ok(separator) = std::str::from_utf8(sep_bytes) else { return };
    let separator = (sep_len > 0).then_some(separator);
    let mut records = match LineRecords::new(input, separator, max) {
        Ok(r) => r,
        Err(ProduceInputError::EmptySeparator) => {
            assert_eq!(separator, Some(""));
            return;
        }
        Err(e) => panic!("unexpected error creating the line reader: {e}"),
    };
    // The oracle: the input split at '\n' (no empty last piece), "\r\n" counts as one.
    let mut expected = input.split(|&b| b == b'\n').collect::<Vec<_>>();
    if input.is_empty() || input.ends_with(b"\n") {
        expected.pop();
    }
    let mut line = 0;
    loop {
        match records.next_record() {
            Ok(None) => {
                assert_eq!(line, expected.len(), "every line was read");
                return;
            }
            Ok(Some(record)) => {
                let raw = expected[line];
                let ended = line + 1 < expected.len() || input.ends_with(b"\n");
                let text = if ended { raw.strip_suffix(b"\r").unwrap_or(raw) } else { raw };
                assert!(text.len() <= max);
                match (record.key, separator) {
                    (None, None) => assert_eq!(record.value, text),
                    (Some(key), Some(sep)) => {
                        assert_eq!([key, sep.as_bytes(), record.value].concat(), text);
                        assert!(
                            !key.windows(sep.len()).any(|w| w == sep.as_bytes()),
                            "split at the first separator"
                        );
                    }
                    other => panic!("key {other:?} does not match the separator"),
                }
                line += 1;
                assert_eq!(records.line_number(), line as u64);
            }
            Err(ProduceInputError::MissingSeparator { line: n, .. }) => {
                assert_eq!(n, line as u64 + 1);
                let sep = separator.expect("a separator");
                let raw = expected[line];
                let ended = line + 1 < expected.len() || input.ends_with(b"\n");
                let text = if ended { raw.strip_suffix(b"\r").unwrap_or(raw) } else { raw };
                assert!(!text.windows(sep.len()).any(|w| w == sep.as_bytes()));
                return;
            }
            Err(ProduceInputError::LineTooLong { line: n, .. }) => {
                assert_eq!(n, line as u64 + 1);
                let raw = expected[line];
                let ended = line + 1 < expected.len() || input.ends_with(b"\n");
                let text = if ended { raw.strip_suffix(b"\r").unwrap_or(raw) } else { raw };
                assert!(text.len() > max, "a line of {} bytes is not too long for {max}", text.len());
                return;
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
}
