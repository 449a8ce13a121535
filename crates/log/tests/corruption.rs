//! Damaged segment files: a torn or corrupt tail is truncated with one warning; damage before
//! the tail is an error naming the file, position and offset; readers ignore a torn tail.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_expected, capture_warnings, expected_batch, log_with, read_all, segment_files};
use millstream_log::{Durability, Log, LogError, ReadLimit, TopicConfig, BATCH_HEADER_LEN};

/// Appends `batches` batches of 10 expected records to partition 0 and returns the byte
/// position (in its segment) and base offset of each batch, and the segment files.
fn fill(log: &Log, root: &Path, batches: u64) -> (Vec<(u64, u64)>, Vec<PathBuf>) {
    let mut w = log.writer("t", 0).expect("writer");
    let mut batches_at = Vec::new();
    for b in 0..batches {
        let segments_before = w.segment_count();
        let size_before = w.size_bytes();
        let ack = w.append_batch(&expected_batch(b * 10..b * 10 + 10)).expect("append");
        let position = if w.segment_count() > segments_before { 0 } else { size_before - closed_bytes(root) };
        batches_at.push((position, ack.base_offset));
    }
    drop(w);
    (batches_at, segment_files(&common::partition_dir(root, 0)))
}

/// Bytes of all segments but the newest.
fn closed_bytes(root: &Path) -> u64 {
    let files = segment_files(&common::partition_dir(root, 0));
    files[..files.len() - 1].iter().map(|f| std::fs::metadata(f).expect("meta").len()).sum()
}

fn flip_byte(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at as usize] ^= 0x5a;
    std::fs::write(path, bytes).expect("write");
}

fn truncate_by(path: &Path, n: u64) {
    let len = std::fs::metadata(path).expect("meta").len();
    std::fs::OpenOptions::new().write(true).open(path).and_then(|f| f.set_len(len - n)).expect("truncate");
}

/// Opens the writer, expecting exactly one warning about truncating `file` at `position`.
fn assert_truncated(log: &Log, file: &Path, position: u64, needle: &str) {
    let (writer, warnings) = capture_warnings(|| log.writer("t", 0));
    let writer = writer.expect("open recovers");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let line = &warnings[0];
    assert!(line.contains("WARN") && line.contains("truncating torn tail"), "{line}");
    assert!(line.contains(&file.display().to_string()), "{line}");
    assert!(line.contains(&format!("byte position {position} ")), "{line}");
    assert!(line.contains(needle), "expected {needle:?} in {line}");
    assert_eq!(std::fs::metadata(file).expect("meta").len(), position);
    drop(writer);
}

#[test]
fn torn_tail_is_truncated_with_one_warning() {
    let (dir, log) = log_with(TopicConfig::new(1));
    let (batches, files) = fill(&log, dir.path(), 10);
    truncate_by(&files[0], 7);
    // Before the writer recovers, readers see the complete batches and stop at the torn one.
    assert_expected(&read_all(&log, 0, 0, 13), 0..90);
    assert_eq!(log.offsets("t", 0).expect("offsets"), (0, 90));
    let (last_pos, last_offset) = batches[9];
    assert_truncated(&log, &files[0], last_pos, "incomplete batch");
    assert_eq!(last_offset, 90);
    // Appending continues at the truncation point.
    let mut w = log.writer("t", 0).expect("writer");
    assert_eq!(w.end_offset(), 90);
    w.append_batch(&expected_batch(90..120)).expect("append");
    drop(w);
    assert_expected(&read_all(&log, 0, 0, 1000), 0..120);
}

#[test]
fn header_cut_short_is_truncated() {
    let (dir, log) = log_with(TopicConfig::new(1));
    let (batches, files) = fill(&log, dir.path(), 4);
    let len = std::fs::metadata(&files[0]).expect("meta").len();
    truncate_by(&files[0], len - batches[3].0 - 10); // 10 bytes of the last header remain
    assert_truncated(&log, &files[0], batches[3].0, "incomplete batch");
    assert_expected(&read_all(&log, 0, 0, 1000), 0..30);
}

#[test]
fn flipped_byte_in_the_last_batch_is_truncated() {
    let (dir, log) = log_with(TopicConfig::new(1));
    let (batches, files) = fill(&log, dir.path(), 10);
    flip_byte(&files[0], batches[9].0 + BATCH_HEADER_LEN as u64 + 40);
    // Readers ignore the damaged tail rather than fail.
    assert_expected(&read_all(&log, 0, 0, 1000), 0..90);
    assert_truncated(&log, &files[0], batches[9].0, "checksum mismatch");
    assert_expected(&read_all(&log, 0, 0, 1000), 0..90);
}

#[test]
fn garbage_after_the_last_batch_is_truncated() {
    let (dir, log) = log_with(TopicConfig::new(1));
    let (_, files) = fill(&log, dir.path(), 3);
    let len = std::fs::metadata(&files[0]).expect("meta").len();
    let mut bytes = std::fs::read(&files[0]).expect("read");
    bytes.extend_from_slice(&[0u8; 4096]); // what a crash can leave: zeroed blocks
    std::fs::write(&files[0], bytes).expect("write");
    assert_truncated(&log, &files[0], len, "bad magic");
    assert_expected(&read_all(&log, 0, 0, 1000), 0..30);
}

#[test]
fn damage_before_the_tail_of_the_active_segment_is_an_error() {
    let (dir, log) = log_with(TopicConfig::new(1));
    let (batches, files) = fill(&log, dir.path(), 10);
    let len = std::fs::metadata(&files[0]).expect("meta").len();
    flip_byte(&files[0], batches[2].0 + BATCH_HEADER_LEN as u64 + 5);
    match log.writer("t", 0) {
        Err(LogError::Corrupt { file, position, offset, reason }) => {
            assert_eq!(file, files[0]);
            assert_eq!((position, offset), batches[2]);
            assert!(reason.contains("checksum mismatch") && reason.contains("not a torn tail"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(std::fs::metadata(&files[0]).expect("meta").len(), len, "nothing was truncated");
    // Readers fail on the damaged batch too (the damage is followed by intact data).
    let err = log.read("t", 0, 25, ReadLimit::default()).expect_err("read");
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains(&files[0].display().to_string()), "{err}");
    // Records before the damage are still readable.
    assert_expected(&log.read("t", 0, 0, ReadLimit::records(20)).expect("read"), 0..20);
}

/// Three segments of several batches each (4 KiB segments, 1 KiB index interval).
fn three_segments() -> (tempfile::TempDir, Log, Vec<PathBuf>) {
    let mut config = TopicConfig::new(1).with_segment_bytes(4096).with_durability(Durability::None);
    config.index_interval_bytes = 1024;
    let (dir, log) = log_with(config);
    let mut w = log.writer("t", 0).expect("writer");
    let mut next = 0;
    while w.segment_count() < 3 {
        w.append_batch(&expected_batch(next..next + 3)).expect("append");
        next += 3;
    }
    drop(w);
    let files = segment_files(&common::partition_dir(dir.path(), 0));
    (dir, log, files)
}

#[test]
fn truncated_closed_segment_is_an_error() {
    let (_dir, log, files) = three_segments();
    truncate_by(&files[0], 10);
    match log.writer("t", 0) {
        Err(LogError::Corrupt { file, reason, .. }) => {
            assert_eq!(file, files[0]);
            assert!(reason.contains("closed segment"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn flipped_byte_in_a_closed_segment_is_an_error_when_read() {
    let (dir, log, files) = three_segments();
    let end = log.offsets("t", 0).expect("offsets").1;
    // Damage the second batch of the first segment: before its last index entry, so the
    // cheap check on open does not see it, but reading it does.
    flip_byte(&files[0], 700);
    let writer = log.writer("t", 0).expect("open does not scan whole closed segments");
    drop(writer);
    let err = log.read("t", 0, 0, ReadLimit::records(usize::MAX)).expect_err("read");
    match &err {
        LogError::Corrupt { file, reason, .. } => {
            assert_eq!(file, &files[0]);
            assert!(reason.contains("checksum mismatch"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Without its index the segment is scanned in full on open, which finds the damage.
    let index = files[0].with_extension("index");
    std::fs::remove_file(&index).expect("remove index");
    match log.writer("t", 0) {
        Err(LogError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, files[0]);
            assert!(offset < end);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let _ = dir;
}

#[test]
fn missing_middle_segment_is_an_error() {
    let (_dir, log, files) = three_segments();
    std::fs::remove_file(&files[1]).expect("remove segment");
    match log.writer("t", 0) {
        Err(LogError::Corrupt { file, reason, .. }) => {
            assert_eq!(file, files[0]);
            assert!(reason.contains("next segment starts at offset"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn torn_tail_of_the_newest_segment_after_a_roll() {
    let (_dir, log, files) = three_segments();
    let end = log.offsets("t", 0).expect("offsets").1;
    truncate_by(&files[2], 3);
    let (writer, warnings) = capture_warnings(|| log.writer("t", 0));
    let writer = writer.expect("recover");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains(&files[2].display().to_string()));
    assert_eq!(writer.end_offset(), end - 3);
    drop(writer);
    assert_expected(&read_all(&log, 0, 0, 1000), 0..end - 3);
}

#[test]
fn repair_cuts_back_to_the_intact_prefix() {
    // Damage in the middle of the active segment.
    let (dir, log) = log_with(TopicConfig::new(1));
    let (batches, files) = fill(&log, dir.path(), 10);
    flip_byte(&files[0], batches[4].0 + BATCH_HEADER_LEN as u64 + 5);
    assert!(log.writer("t", 0).is_err());
    let (report, warnings) = capture_warnings(|| log.repair_partition("t", 0));
    let report = report.expect("repair");
    assert_eq!(report.removed_from_offset, Some(40));
    assert_eq!(report.removed_segments, 0);
    assert!(report.damage.as_deref().is_some_and(|d| d.contains("checksum mismatch")), "{report:?}");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("removed offsets from 40"), "{}", warnings[0]);
    let w = log.writer("t", 0).expect("opens after repair");
    assert_eq!(w.end_offset(), 40);
    drop(w);
    assert_expected(&read_all(&log, 0, 0, 100), 0..40);
    // Repairing an intact partition changes nothing.
    assert_eq!(log.repair_partition("t", 0).expect("repair"), millstream_log::RepairReport::default());

    // A damaged closed segment: it is truncated and every later segment deleted.
    let (_dir, log, files) = three_segments();
    truncate_by(&files[0], 10);
    let report = log.repair_partition("t", 0).expect("repair");
    assert_eq!(report.removed_segments, 2);
    let w = log.writer("t", 0).expect("opens after repair");
    let end = w.end_offset();
    assert_eq!(Some(end), report.removed_from_offset);
    drop(w);
    assert_expected(&read_all(&log, 0, 0, 100), 0..end);
    assert_eq!(segment_files(files[0].parent().expect("dir")).len(), 1);

    // A gap between segments: the segments after it go.
    let (_dir, log, files) = three_segments();
    std::fs::remove_file(&files[1]).expect("remove");
    let report = log.repair_partition("t", 0).expect("repair");
    assert_eq!(report.removed_segments, 1);
    assert!(report.damage.as_deref().is_some_and(|d| d.contains("gap")), "{report:?}");
    log.writer("t", 0).expect("opens after repair");
}
