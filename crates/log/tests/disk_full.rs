//! A disk that fills up under a partition writer (a small tmpfs mounted for the test; needs
//! root, see `tmpfs/mod.rs`): the append that does not fit fails with an I/O error naming
//! the segment file and "no space", nothing of it is visible, every acknowledged record
//! stays readable, and once space returns appending goes on where it stopped, with no record
//! lost or duplicated.

mod common;
mod tmpfs;

use common::{assert_expected, expected_batch, read_all};
use millstream_log::{Durability, Log, LogError, TopicConfig};
use tmpfs::Tmpfs;

/// Appends batches of 20 expected records to partition 0 of `t` from offset `next` until
/// one fails; returns the offset after the last acknowledged record and the error.
fn append_until_full(log: &Log, mut next: u64) -> (u64, LogError) {
    let mut writer = log.writer("t", 0).expect("writer");
    for _ in 0..10_000 {
        match writer.append_batch(&expected_batch(next..next + 20)) {
            Ok(ack) => {
                assert_eq!(ack.base_offset, next);
                next = ack.last_offset + 1;
            }
            Err(e) => return (next, e),
        }
    }
    panic!("10,000 batches fitted on a 512 KiB file system");
}

#[test]
fn appends_fail_clearly_when_the_disk_is_full_and_resume_when_space_returns() {
    let Some(fs) = Tmpfs::mount("log-full", 512 * 1024) else { return };
    let log = Log::open(fs.path()).expect("open log");
    // Small segments, so that rolling to a new segment is among what runs out of space.
    let config = TopicConfig::new(1).with_segment_bytes(64 * 1024).with_durability(Durability::EveryBatch);
    log.create_topic("t", config).expect("create topic");

    let (acked, err) = append_until_full(&log, 0);
    assert!(acked > 0, "something fitted before the disk filled");
    match &err {
        LogError::Io { path, source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{err}");
            assert!(path.starts_with(fs.path()), "the error names a file of the log: {err}");
        }
        other => panic!("expected an I/O error for a full disk, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("No space left on device"), "{message}");
    // Every acknowledged record is there, nothing of the failed batch is.
    assert_expected(&read_all(&log, 0, 0, 1000), 0..acked);
    assert_eq!(log.offsets("t", 0).expect("offsets"), (0, acked));

    // Still full: a new writer (recovery) opens, and appending fails again cleanly.
    let (still, _) = append_until_full(&log, acked);
    assert_expected(&read_all(&log, 0, 0, 1000), 0..still);

    // Space returns: appending goes on at the next offset.
    fs.resize(4 * 1024 * 1024);
    let mut writer = log.writer("t", 0).expect("writer after space returned");
    assert_eq!(writer.end_offset(), still);
    writer.append_batch(&expected_batch(still..still + 500)).expect("append after space returned");
    drop(writer);
    assert_expected(&read_all(&log, 0, 0, 1000), 0..still + 500);
}
