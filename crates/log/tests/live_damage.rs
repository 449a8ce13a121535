//! Damage to a closed segment while a writer appends and a reader follows the partition:
//! appends go on, the reader gets every record before the damage and then an error naming
//! the file, byte position and offset, the restarted writer (or repair) says the same,
//! and after repair nothing before the damage is lost and appends continue at its offset.
//! (Damage found when a writer opens, one case per kind: `corruption.rs`.)

mod common;

use std::path::Path;

use common::{assert_expected, expected_batch, read_all, segment_files};
use millstream_log::{Durability, LogError, ReadLimit, TopicConfig, BATCH_HEADER_LEN};

/// `(byte position, base offset)` of every batch frame in a segment file.
fn frames(path: &Path) -> Vec<(u64, u64)> {
    let bytes = std::fs::read(path).expect("read segment");
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + BATCH_HEADER_LEN <= bytes.len() {
        let base = u64::from_le_bytes(bytes[pos + 8..pos + 16].try_into().expect("8 bytes"));
        let payload = u32::from_le_bytes(bytes[pos + 28..pos + 32].try_into().expect("4 bytes")) as usize;
        out.push((pos as u64, base));
        pos += BATCH_HEADER_LEN + payload;
    }
    out
}

#[test]
fn damage_under_a_running_writer_and_reader_is_reported_with_its_offset_and_loses_nothing_before_it() {
    let mut config = TopicConfig::new(1).with_segment_bytes(4096).with_durability(Durability::None);
    config.index_interval_bytes = 1024;
    let (dir, log) = common::log_with(config);
    let mut writer = log.writer("t", 0).expect("writer");
    let mut next = 0;
    while writer.segment_count() < 4 {
        writer.append_batch(&expected_batch(next..next + 3)).expect("append");
        next += 3;
    }
    let mut reader = log.reader("t", 0, 0).expect("reader");
    let first = reader.poll(ReadLimit::records(5)).expect("poll");
    assert_expected(&first, 0..5);

    // A flipped byte in the payload of the third batch of the second (closed) segment.
    let files = segment_files(&common::partition_dir(dir.path(), 0));
    let (position, damaged) = frames(&files[1])[2];
    let mut bytes = std::fs::read(&files[1]).expect("read");
    bytes[position as usize + BATCH_HEADER_LEN + 3] ^= 0x40;
    std::fs::write(&files[1], bytes).expect("write");

    // The running writer does not read closed segments: appends go on.
    writer.append_batch(&expected_batch(next..next + 30)).expect("append after the damage");
    next += 30;

    // The reader gets every record before the damage, then an error naming it.
    let mut got = first;
    let err = loop {
        match reader.poll_into(ReadLimit::records(7), &mut got) {
            Ok(0) => panic!("the reader caught up without reaching the damaged batch"),
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_expected(&got, 0..damaged);
    match &err {
        LogError::Corrupt { file, position: at, offset, reason } => {
            assert_eq!((file, *at, *offset), (&files[1], position, damaged), "{err}");
            assert!(reason.contains("checksum mismatch"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("offset {damaged}")) && message.contains(&files[1].display().to_string())
    );

    // Restart: repair cuts the partition back to the damage and says where; every record
    // before it is still there, and appending continues at its offset.
    drop(writer);
    let report = log.repair_partition("t", 0).expect("repair");
    assert_eq!(report.removed_from_offset, Some(damaged), "{report:?}");
    assert!(report.damage.as_deref().is_some_and(|d| d.contains(&format!("offset {damaged}"))), "{report:?}");
    assert!(report.removed_segments >= 2, "the later segments went too: {report:?}");
    assert!(next > damaged);
    assert_expected(&read_all(&log, 0, 0, 100), 0..damaged);
    let mut writer = log.writer("t", 0).expect("opens after repair");
    assert_eq!(writer.end_offset(), damaged);
    writer.append_batch(&expected_batch(damaged..damaged + 10)).expect("append after repair");
    drop(writer);
    assert_expected(&read_all(&log, 0, 0, 100), 0..damaged + 10);
}
