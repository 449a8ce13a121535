//! Partial and damaged checkpoints superseded by a restored run: reported once, their ids
//! never reused, removed once a newer checkpoint is complete.

mod common;

use std::collections::BTreeMap;

use common::{capture_warnings, checkpoint, files_under, key_groups, temp_store};
use millstream_checkpoint::{BlobName, CheckpointKind, ABANDONED_FILE};

#[test]
fn superseded_checkpoints_are_reported_once_keep_their_ids_and_go_with_retention() {
    let (dir, store) = temp_store();
    let c2 = checkpoint(&store, 2, &key_groups(0..2), &[], None);
    // 3 was killed mid-write; 4 committed, then one of its blobs was damaged in place.
    store
        .begin(3, CheckpointKind::Checkpoint)
        .write(BlobName::key_group("counts", 0), b"half")
        .expect("write");
    checkpoint(&store, 4, &key_groups(0..2), &[], None);
    let blob = dir.path().join("chk-00000000000000000004/counts/kg-00001.bin");
    let mut bytes = std::fs::read(&blob).expect("read blob");
    bytes[17] ^= 0xff;
    std::fs::write(&blob, bytes).expect("damage");

    // The first restart reports both and restores 2.
    let (latest, warnings) = capture_warnings(|| store.latest_complete());
    assert_eq!(latest.expect("latest").map(|m| m.id), Some(2));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("skipping checkpoint 4") && warnings[0].contains("corrupt"), "{warnings:?}");
    assert!(warnings[1].contains("skipping checkpoint 3") && warnings[1].contains("partial"), "{warnings:?}");
    assert_eq!(store.supersede_newer_than(Some(2)).expect("supersede"), vec![3, 4]);
    assert!(dir.path().join("chk-00000000000000000003").join(ABANDONED_FILE).exists());
    assert!(store.is_abandoned(4).expect("marker") && !store.is_abandoned(2).expect("marker"));

    // Later restarts restore the same checkpoint without a word about 3 or 4, and marking
    // again marks nothing.
    let (latest, warnings) = capture_warnings(|| store.latest_complete());
    assert_eq!(latest.expect("latest"), Some(c2.clone()));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(store.supersede_newer_than(Some(2)).expect("supersede").is_empty());
    // Their ids still count: the next checkpoint is 5.
    assert_eq!(store.highest_id().expect("highest"), Some(4));
    // An abandoned checkpoint never counts as complete, even one whose files all exist.
    assert_eq!(store.list_complete().expect("list"), vec![2]);
    store.retain_last(3).expect("retain");
    assert!(dir.path().join("chk-00000000000000000004").exists(), "nothing newer is complete yet");

    // Once 5 is complete, retention removes the superseded directories entirely.
    let w = store.begin(5, CheckpointKind::Checkpoint);
    for name in key_groups(0..2) {
        w.reuse(name.clone(), c2.entries[&name].clone());
    }
    let c5 = w.commit(8, 1, BTreeMap::new()).expect("commit 5");
    store.retain_last(3).expect("retain");
    assert!(files_under(dir.path(), "chk-00000000000000000003").is_empty());
    assert!(files_under(dir.path(), "chk-00000000000000000004").is_empty());
    assert!(!dir.path().join("chk-00000000000000000004").exists());
    assert_eq!(store.list_complete().expect("list"), vec![2, 5]);
    let (latest, warnings) = capture_warnings(|| store.latest_complete());
    assert_eq!(latest.expect("latest"), Some(c5));
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn with_nothing_restored_every_checkpoint_is_superseded() {
    let (_dir, store) = temp_store();
    store
        .begin(1, CheckpointKind::Checkpoint)
        .write(BlobName::key_group("counts", 0), b"half")
        .expect("write");
    let (latest, warnings) = capture_warnings(|| store.latest_complete());
    assert!(latest.expect("latest").is_none());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(store.supersede_newer_than(None).expect("supersede"), vec![1]);
    let (latest, warnings) = capture_warnings(|| store.latest_complete());
    assert!(latest.expect("latest").is_none());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(store.highest_id().expect("highest"), Some(1));
}
