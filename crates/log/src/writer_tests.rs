//! Unit tests of the partition writer: roll, retention, index rebuild, offsets, locking.

use std::time::Duration;

use super::*;
use crate::{Log, LogError, ReadLimit, Record, StoredRecord};

fn log_with(config: TopicConfig) -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    log.create_topic("t", config).expect("create topic");
    (dir, log)
}

/// Timestamp of record 0 in these tests (November 2023).
const T0: i64 = 1_700_000_000_000;
/// Time retention in these tests: ten years, so retention on roll (against the real clock)
/// deletes nothing and `apply_retention_at` decides.
const TEN_YEARS_MS: i64 = 10 * 365 * 86_400_000;

/// Record `i` of these tests: 100-byte value, key, timestamp `T0 + i`.
fn record(i: u64) -> Record {
    Record::new(format!("{i:0>100}")).with_key(format!("k{i}")).with_timestamp(T0 + i as i64)
}

fn append_range(w: &mut PartitionWriter, range: std::ops::Range<u64>, per_batch: u64) {
    let mut i = range.start;
    while i < range.end {
        let end = (i + per_batch).min(range.end);
        let batch: Vec<Record> = (i..end).map(record).collect();
        let ack = w.append_batch(&batch).expect("append");
        assert_eq!((ack.base_offset, ack.last_offset), (i, end - 1));
        i = end;
    }
}

fn read_all(log: &Log, from: u64) -> Vec<StoredRecord> {
    let mut reader = log.reader("t", 0, from).expect("reader");
    let mut out = Vec::new();
    while reader.poll_into(ReadLimit::records(7), &mut out).expect("poll") > 0 {}
    out
}

fn assert_records(records: &[StoredRecord], range: std::ops::Range<u64>) {
    assert_eq!(records.len() as u64, range.end - range.start);
    for (r, i) in records.iter().zip(range) {
        assert_eq!(r.offset, i);
        assert_eq!(r.record, record(i));
    }
}

#[test]
fn appends_get_contiguous_offsets_and_read_back() {
    let (_dir, log) = log_with(TopicConfig::new(1));
    let mut w = log.writer("t", 0).expect("writer");
    append_range(&mut w, 0..100, 9);
    assert_eq!((w.start_offset(), w.end_offset()), (0, 100));
    assert_records(&read_all(&log, 0), 0..100);
    assert_records(&read_all(&log, 57), 57..100);
    assert!(log.read("t", 0, 100, ReadLimit::default()).expect("read at end").is_empty());
    assert_eq!(log.offsets("t", 0).expect("offsets"), (0, 100));
}

#[test]
fn empty_batch_is_rejected() {
    let (_dir, log) = log_with(TopicConfig::new(1));
    let mut w = log.writer("t", 0).expect("writer");
    assert!(matches!(w.append_batch(&[]), Err(LogError::EmptyBatch { partition: 0, .. })));
    assert_eq!(w.end_offset(), 0);
}

#[test]
fn segments_roll_at_segment_bytes() {
    let (dir, log) = log_with(TopicConfig::new(1).with_segment_bytes(2048).with_durability(Durability::None));
    let mut w = log.writer("t", 0).expect("writer");
    append_range(&mut w, 0..200, 5); // ~600-byte batches: three per segment
    assert!(w.segment_count() >= 12, "{} segments", w.segment_count());
    let pdir = dir.path().join("t").join("0");
    let bases = list_segments(&pdir).expect("list");
    assert_eq!(bases.len(), w.segment_count());
    for base in &bases {
        let len = std::fs::metadata(pdir.join(segment_name(*base, LOG_EXT))).expect("meta").len();
        assert!(len <= 2048, "segment {base} is {len} bytes");
        assert!(pdir.join(segment_name(*base, INDEX_EXT)).exists());
    }
    assert_records(&read_all(&log, 0), 0..200);
    assert_records(&read_all(&log, 133), 133..200);
    drop(w);
    // Reopening verifies every closed segment and continues where it left off.
    let mut w = log.writer("t", 0).expect("reopen");
    assert_eq!(w.end_offset(), 200);
    append_range(&mut w, 200..210, 5);
    assert_records(&read_all(&log, 0), 0..210);
}

#[test]
fn a_batch_larger_than_a_segment_gets_a_segment_of_its_own() {
    let (_dir, log) = log_with(TopicConfig::new(1).with_segment_bytes(1024));
    let mut w = log.writer("t", 0).expect("writer");
    append_range(&mut w, 0..2, 2);
    append_range(&mut w, 2..52, 50);
    append_range(&mut w, 52..54, 2);
    assert_eq!(w.segment_count(), 3);
    assert_records(&read_all(&log, 0), 0..54);
}

#[test]
fn retention_by_size_keeps_at_least_the_limit() {
    let config = TopicConfig::new(1).with_segment_bytes(2048).with_retention_bytes(Some(10_000));
    let (_dir, log) = log_with(config.with_durability(Durability::None));
    let mut w = log.writer("t", 0).expect("writer");
    append_range(&mut w, 0..500, 5);
    let size = w.size_bytes();
    assert!(size >= 10_000, "{size}");
    assert!(size < 10_000 + 2048 + 2048, "{size}");
    let start = w.start_offset();
    assert!(start > 0);
    // Explicit retention has nothing more to do; the start offset matches the files.
    let outcome = w.apply_retention().expect("retention");
    assert_eq!(outcome.deleted_segments, 0);
    assert_eq!(outcome.start_offset, start);
    assert_eq!(log.offsets("t", 0).expect("offsets"), (start, 500));
    assert_records(&read_all(&log, start), start..500);
    match log.read("t", 0, start - 1, ReadLimit::default()) {
        Err(LogError::OffsetOutOfRange { offset, start: s, end, partition: 0, .. }) => {
            assert_eq!((offset, s, end), (start - 1, start, 500));
        }
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
}

#[test]
fn retention_by_time_deletes_old_closed_segments_only() {
    let config = TopicConfig::new(1).with_segment_bytes(2048).with_retention_ms(Some(TEN_YEARS_MS));
    let (_dir, log) = log_with(config);
    let mut w = log.writer("t", 0).expect("writer");
    append_range(&mut w, 0..130, 5);
    let segments = w.segment_count();
    assert!(segments > 3);
    assert_eq!(w.start_offset(), 0, "retention on roll deleted segments");
    // "now" such that records older than T0 + 150 are expired: every closed segment (they
    // hold records up to T0 + 129), never the active one.
    let outcome = w.apply_retention_at(T0 + TEN_YEARS_MS + 150).expect("retention");
    assert_eq!(outcome.deleted_segments, segments - 1);
    assert_eq!(w.segment_count(), 1);
    assert_eq!(outcome.start_offset, w.start_offset());
    assert!(w.start_offset() > 0 && w.start_offset() < 130);

    append_range(&mut w, 130..300, 5);
    let before = w.segment_count();
    let outcome = w.apply_retention_at(T0 + TEN_YEARS_MS + 200).expect("retention");
    assert!(outcome.deleted_segments > 0 && outcome.deleted_segments < before, "{outcome:?} of {before}");
    let start = w.start_offset();
    let records = read_all(&log, start);
    assert_records(&records, start..300);
    // The oldest retained segment is the first whose newest record is not expired: it holds
    // a record at T0 + 200 or later, and everything before it is older than that.
    let next_base = list_segments(w.dir()).expect("list")[1];
    let newest_in_first =
        records.iter().take_while(|r| r.offset < next_base).map(|r| r.record.timestamp_ms).max();
    assert!(newest_in_first >= Some(T0 + 200), "{newest_in_first:?}");
    assert!(start <= 200);

    // Retention never deletes the active segment, however old.
    w.apply_retention_at(i64::MAX).expect("retention");
    assert_eq!(w.segment_count(), 1);
    assert_eq!(w.end_offset(), 300);
}

#[test]
fn index_is_rebuilt_when_missing_or_inconsistent() {
    let mut config = TopicConfig::new(1).with_segment_bytes(8192);
    config.index_interval_bytes = 512;
    let (dir, log) = log_with(config);
    let mut w = log.writer("t", 0).expect("writer");
    append_range(&mut w, 0..300, 3);
    drop(w);
    let pdir = dir.path().join("t").join("0");
    let bases = list_segments(&pdir).expect("list");
    assert!(bases.len() > 3);
    let index_of = |base: u64| pdir.join(segment_name(base, INDEX_EXT));
    let original = std::fs::read(index_of(bases[0])).expect("index");
    assert!(original.len() as u64 >= 10 * index::INDEX_ENTRY_LEN, "{} bytes", original.len());

    // Missing.
    std::fs::remove_file(index_of(bases[0])).expect("remove");
    // Garbage (a plausible length, nonsense entries).
    std::fs::write(index_of(bases[1]), vec![0xab; original.len()]).expect("write");
    // Truncated mid-entry.
    let second = std::fs::read(index_of(bases[2])).expect("index");
    std::fs::write(index_of(bases[2]), &second[..second.len() - 5]).expect("write");

    // Readers cope with bad indexes before anything is rebuilt.
    assert_records(&read_all(&log, 0), 0..300);
    assert_records(&read_all(&log, bases[1] + 7), bases[1] + 7..300);

    let w = log.writer("t", 0).expect("reopen");
    assert_eq!(std::fs::read(index_of(bases[0])).expect("rebuilt"), original);
    assert_eq!(std::fs::read(index_of(bases[2])).expect("rebuilt"), second);
    let rebuilt = index::read_all(&index_of(bases[1])).expect("read").expect("exists");
    assert!(!rebuilt.is_empty());
    assert!(rebuilt.iter().all(|e| e.offset >= bases[1] && e.offset < bases[2]));
    drop(w);
    for from in [0, 1, 17, bases[1], bases[1] + 1, bases[3] - 1, 299] {
        assert_records(&read_all(&log, from), from..300);
    }
}

#[test]
fn reads_beyond_the_end_are_out_of_range() {
    let (_dir, log) = log_with(TopicConfig::new(1));
    assert!(log.read("t", 0, 0, ReadLimit::default()).expect("empty partition").is_empty());
    let mut w = log.writer("t", 0).expect("writer");
    append_range(&mut w, 0..10, 10);
    assert!(log.read("t", 0, 10, ReadLimit::default()).expect("at end").is_empty());
    match log.read("t", 0, 11, ReadLimit::default()) {
        Err(LogError::OffsetOutOfRange { offset: 11, start: 0, end: 10, .. }) => {}
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    assert!(matches!(log.read("t", 1, 0, ReadLimit::default()), Err(LogError::PartitionNotFound { .. })));
}

#[test]
fn read_limits_are_respected() {
    let (_dir, log) = log_with(TopicConfig::new(1));
    let mut w = log.writer("t", 0).expect("writer");
    append_range(&mut w, 0..100, 50);
    assert_eq!(log.read("t", 0, 10, ReadLimit::records(5)).expect("read").len(), 5);
    // About 110 bytes per record: 1000 bytes is 10 records (the limit is reached inside the
    // tenth).
    assert_eq!(log.read("t", 0, 0, ReadLimit::bytes(1000)).expect("read").len(), 10);
    // At least one record, however small the byte limit.
    assert_eq!(log.read("t", 0, 3, ReadLimit::bytes(1)).expect("read").len(), 1);
    assert!(log.read("t", 0, 3, ReadLimit::records(0)).expect("read").is_empty());
}

#[test]
fn a_second_writer_is_refused() {
    let (_dir, log) = log_with(TopicConfig::new(2));
    let w = log.writer("t", 0).expect("writer");
    match log.writer("t", 0) {
        Err(LogError::PartitionLocked { topic, partition: 0, path }) => {
            assert_eq!(topic, "t");
            assert!(path.ends_with("t/0/writer.lock"), "{}", path.display());
        }
        other => panic!("expected PartitionLocked, got {other:?}"),
    }
    let _other_partition = log.writer("t", 1).expect("another partition is free");
    assert!(matches!(log.delete_topic("t"), Err(LogError::TopicInUse { .. })));
    drop(w);
    drop(_other_partition);
    log.writer("t", 0).expect("free again after drop");
}

#[test]
fn durability_modes_and_flush() {
    for durability in
        [Durability::EveryBatch, Durability::Interval(Duration::from_millis(5)), Durability::None]
    {
        let (_dir, log) = log_with(TopicConfig::new(1).with_durability(durability));
        let mut w = log.writer("t", 0).expect("writer");
        assert_eq!(w.durability(), durability);
        append_range(&mut w, 0..20, 4);
        std::thread::sleep(Duration::from_millis(6));
        append_range(&mut w, 20..24, 4);
        w.flush().expect("flush");
        assert!(!w.unsynced);
        drop(w);
        assert_records(&read_all(&log, 0), 0..24);
    }
}
