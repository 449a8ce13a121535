//! Staged batches: durable but invisible until committed; commit appends exactly once, also
//! when retried after a crash.

mod common;

use common::{assert_expected, expected_batch, log_with, read_all};
use millstream_log::{
    CommitOutcome, Durability, Log, LogError, ReadLimit, TopicConfig, COMMITTED_FILE, STAGED_DIR,
};

fn staged_file(root: &std::path::Path, id: &str) -> std::path::PathBuf {
    common::partition_dir(root, 0).join(STAGED_DIR).join(format!("{id}.staged"))
}

#[test]
fn persisted_records_are_invisible_until_commit() {
    let (dir, log) = log_with(TopicConfig::new(1).with_durability(Durability::None));
    let mut w = log.writer("t", 0).expect("writer");
    w.append_batch(&expected_batch(0..10)).expect("append");
    let mut batch = w.begin_staged("sink-0-epoch-1").expect("begin");
    batch.stage(expected_batch(10..25));
    batch.stage(expected_batch(25..30));
    assert_eq!(batch.len(), 20);
    w.persist(&batch).expect("persist");
    assert!(staged_file(dir.path(), "sink-0-epoch-1").exists());
    assert_eq!(w.list_staged().expect("list"), ["sink-0-epoch-1"]);
    assert_eq!(log.offsets("t", 0).expect("offsets"), (0, 10), "invisible to readers");
    assert_eq!(w.committed("sink-0-epoch-1"), None);

    let outcome = w.commit("sink-0-epoch-1").expect("commit");
    let ack = outcome.ack().expect("offsets");
    assert_eq!(outcome, CommitOutcome::Committed(Some(ack)));
    assert_eq!((ack.base_offset, ack.last_offset), (10, 29));
    assert_expected(&read_all(&log, 0, 0, 7), 0..30);
    assert!(!staged_file(dir.path(), "sink-0-epoch-1").exists());
    assert!(w.list_staged().expect("list").is_empty());

    // Committing again, in this writer or after reopening, appends nothing.
    assert_eq!(w.commit("sink-0-epoch-1").expect("again"), CommitOutcome::AlreadyCommitted(Some(ack)));
    w.append_batch(&expected_batch(30..35)).expect("append");
    drop(w);
    let mut w = log.writer("t", 0).expect("reopen");
    assert_eq!(w.commit("sink-0-epoch-1").expect("again"), CommitOutcome::AlreadyCommitted(Some(ack)));
    assert_eq!(w.end_offset(), 35);
    assert!(matches!(w.begin_staged("sink-0-epoch-1"), Err(LogError::AlreadyCommitted { .. })));
    assert!(matches!(w.abort("sink-0-epoch-1"), Err(LogError::AlreadyCommitted { .. })));
}

#[test]
fn persisted_batches_survive_a_restart() {
    let (_dir, log) = log_with(TopicConfig::new(1));
    let mut w = log.writer("t", 0).expect("writer");
    for epoch in 1..=3 {
        let mut batch = w.begin_staged(&format!("epoch-{epoch}")).expect("begin");
        batch.stage(expected_batch((epoch - 1) * 4..epoch * 4));
        w.persist(&batch).expect("persist");
    }
    drop(w); // "crash" after the pre-commit
    let mut w = log.writer("t", 0).expect("reopen");
    assert_eq!(w.list_staged().expect("list"), ["epoch-1", "epoch-2", "epoch-3"]);
    w.commit("epoch-1").expect("commit");
    w.commit("epoch-2").expect("commit");
    w.abort("epoch-3").expect("abort");
    w.abort("epoch-3").expect("abort is idempotent");
    assert!(matches!(w.commit("epoch-3"), Err(LogError::StagedNotFound { .. })));
    assert!(w.list_staged().expect("list").is_empty());
    drop(w);
    assert_expected(&read_all(&log, 0, 0, 100), 0..8);
}

#[test]
fn commit_retried_after_a_crash_between_append_and_record_appends_once() {
    let (dir, log) = log_with(TopicConfig::new(1));
    let mut w = log.writer("t", 0).expect("writer");
    w.append_batch(&expected_batch(0..5)).expect("append");
    let mut batch = w.begin_staged("tx-7").expect("begin");
    batch.stage(expected_batch(5..12));
    w.persist(&batch).expect("persist");
    let staging = std::fs::read(staged_file(dir.path(), "tx-7")).expect("staging file");
    let ack = w.commit("tx-7").expect("commit").ack().expect("offsets");
    drop(w);
    // Make the disk look as if the process died right after the batch reached the segment:
    // no record of the commit, staging file still there.
    let pdir = common::partition_dir(dir.path(), 0);
    std::fs::remove_file(pdir.join(COMMITTED_FILE)).expect("remove committed.json");
    std::fs::write(staged_file(dir.path(), "tx-7"), &staging).expect("restore staging file");

    let mut w = log.writer("t", 0).expect("recover");
    assert_eq!(w.committed("tx-7"), Some(Some(ack)), "recovered from the batch in the log");
    assert!(!staged_file(dir.path(), "tx-7").exists(), "leftover staging file removed");
    assert_eq!(w.commit("tx-7").expect("retry"), CommitOutcome::AlreadyCommitted(Some(ack)));
    assert_eq!(w.end_offset(), 12);
    drop(w);
    assert_expected(&read_all(&log, 0, 0, 100), 0..12);
}

#[test]
fn empty_staged_batches_commit_without_appending() {
    let (_dir, log) = log_with(TopicConfig::new(1));
    let mut w = log.writer("t", 0).expect("writer");
    let batch = w.begin_staged("nothing").expect("begin");
    assert!(batch.is_empty());
    w.persist(&batch).expect("persist");
    assert_eq!(w.commit("nothing").expect("commit"), CommitOutcome::Committed(None));
    assert_eq!(w.commit("nothing").expect("commit"), CommitOutcome::AlreadyCommitted(None));
    assert_eq!(w.end_offset(), 0);
    drop(w);
    let w = log.writer("t", 0).expect("reopen");
    assert_eq!(w.committed("nothing"), Some(None));
}

#[test]
fn staged_commits_interleave_with_appends_and_rolls() {
    let (_dir, log) =
        log_with(TopicConfig::new(1).with_segment_bytes(4096).with_durability(Durability::None));
    let mut w = log.writer("t", 0).expect("writer");
    let mut next = 0;
    for epoch in 0..20 {
        w.append_batch(&expected_batch(next..next + 3)).expect("append");
        next += 3;
        let id = format!("e{epoch}");
        let mut batch = w.begin_staged(&id).expect("begin");
        batch.stage(expected_batch(next..next + 5));
        w.persist(&batch).expect("persist");
        let ack = w.commit(&id).expect("commit").ack().expect("offsets");
        assert_eq!(ack.base_offset, next);
        next += 5;
    }
    assert!(w.segment_count() > 3);
    drop(w);
    assert_expected(&read_all(&log, 0, 0, 9), 0..next);
    assert_expected(&log.read("t", 0, 42, ReadLimit::records(5)).expect("read"), 42..47);
}

#[test]
fn bad_ids_and_damaged_staging_files_are_reported() {
    let (dir, log) = log_with(TopicConfig::new(1));
    let mut w = log.writer("t", 0).expect("writer");
    for id in ["", "../x", "a/b", ".dot"] {
        assert!(matches!(w.begin_staged(id), Err(LogError::InvalidStagedId { .. })), "{id:?}");
        assert!(matches!(w.commit(id), Err(LogError::InvalidStagedId { .. })), "{id:?}");
    }
    let mut batch = w.begin_staged("ok").expect("begin");
    batch.stage(expected_batch(0..3));
    w.persist(&batch).expect("persist");
    let path = staged_file(dir.path(), "ok");
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).expect("write");
    match w.commit("ok") {
        Err(LogError::Corrupt { file, reason, .. }) => {
            assert_eq!(file, path);
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(w.end_offset(), 0);
    let _ = Log::open(dir.path()).expect("still opens");
}
