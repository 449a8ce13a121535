//! Partial and damaged checkpoints are detected, reported once, and skipped.

mod common;

use std::collections::BTreeMap;

use common::{capture_warnings, checkpoint, files_under, key_groups, temp_store};
use millstream_checkpoint::{BlobName, CheckpointError, CheckpointKind, CheckpointStore, FileRef, Manifest};
use proptest::prelude::*;

const NEWEST: &str = "chk-00000000000000000002";

/// Checkpoint 1 (complete), then checkpoint 2, which writes key groups 0 and 1 afresh, reuses
/// 2 and 3 from checkpoint 1, and has a source position and a worker blob.
fn two_checkpoints(store: &CheckpointStore) -> (Manifest, Manifest) {
    let first = checkpoint(store, 1, &key_groups(0..4), &[], None);
    let writer = store.begin(2, CheckpointKind::Checkpoint);
    for kg in 0..2 {
        writer.write(BlobName::key_group("counts", kg), format!("new state {kg}").as_bytes()).expect("write");
    }
    for kg in 2..4 {
        let name = BlobName::key_group("counts", kg);
        writer.reuse(name.clone(), first.entries[&name].clone());
    }
    writer.write(BlobName::source_partition("input", 0), b"offset 1234").expect("write");
    writer.write(BlobName::worker("sink", 0), b"pending files").expect("write");
    let second = writer.commit(8, 1, BTreeMap::new()).expect("commit");
    (first, second)
}

/// Asserts that `latest_complete` falls back to `expected` and that it warned exactly once,
/// naming checkpoint 2 and containing `needle`.
fn assert_falls_back(store: &CheckpointStore, expected: &Manifest, needle: &str) {
    let (latest, warnings) = capture_warnings(|| store.latest_complete());
    assert_eq!(latest.expect("latest_complete"), Some(expected.clone()));
    assert_eq!(warnings.len(), 1, "one warning line: {warnings:#?}");
    let line = &warnings[0];
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("skipping checkpoint 2"), "{line}");
    assert!(line.contains(needle), "expected {needle:?} in: {line}");
}

#[test]
fn partial_checkpoint_without_manifest() {
    let (_dir, store) = temp_store();
    let first = checkpoint(&store, 1, &key_groups(0..2), &[], None);
    let writer = store.begin(2, CheckpointKind::Checkpoint);
    writer.write(BlobName::key_group("counts", 0), b"written, never committed").expect("write");
    drop(writer);
    assert_falls_back(&store, &first, "chk-00000000000000000002/_MANIFEST does not exist");
    assert_eq!(store.list_complete().expect("list"), vec![1]);
}

#[test]
fn truncated_blob() {
    let (dir, store) = temp_store();
    let (first, second) = two_checkpoints(&store);
    let file = &second.entries[&BlobName::key_group("counts", 1)];
    let path = dir.path().join(&file.path);
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() - 3]).expect("truncate");
    assert_falls_back(&store, &first, &format!("corrupt checkpoint file {}", file.path));
    assert_falls_back(&store, &first, "truncated");
    assert_eq!(store.list_complete().expect("list"), vec![1], "a length change is seen by listing");
}

#[test]
fn flipped_byte_bad_checksum() {
    let (dir, store) = temp_store();
    let (first, second) = two_checkpoints(&store);
    let file = &second.entries[&BlobName::source_partition("input", 0)];
    let path = dir.path().join(&file.path);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[18] ^= 0x20;
    std::fs::write(&path, &bytes).expect("damage");
    assert_falls_back(&store, &first, &file.path);
    assert_falls_back(&store, &first, "checksum mismatch");
}

#[test]
fn missing_file() {
    let (dir, store) = temp_store();
    let (first, second) = two_checkpoints(&store);
    let file = &second.entries[&BlobName::worker("sink", 0)];
    std::fs::remove_file(dir.path().join(&file.path)).expect("remove");
    assert_falls_back(&store, &first, &format!("checkpoint file {} is missing", file.path));
    assert_eq!(store.list_complete().expect("list"), vec![1]);
}

#[test]
fn corrupt_manifest() {
    let (dir, store) = temp_store();
    let (first, _) = two_checkpoints(&store);
    let path = dir.path().join(NEWEST).join("_MANIFEST");
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes).expect("damage");
    assert_falls_back(&store, &first, "corrupt checkpoint file chk-00000000000000000002/_MANIFEST");
}

#[test]
fn truncated_and_garbage_manifests() {
    for damage in [&b""[..], b"MSMF", b"{\"not\": \"framed\"}"] {
        let (dir, store) = temp_store();
        let (first, _) = two_checkpoints(&store);
        std::fs::write(dir.path().join(NEWEST).join("_MANIFEST"), damage).expect("damage");
        assert_falls_back(&store, &first, "_MANIFEST");
    }
}

#[test]
fn a_file_swapped_for_another_intact_blob() {
    let (dir, store) = temp_store();
    let (first, second) = two_checkpoints(&store);
    // Both files are intact blobs, but not the one the manifest recorded.
    let a = dir.path().join(&second.entries[&BlobName::key_group("counts", 0)].path);
    let b = dir.path().join(&second.entries[&BlobName::key_group("counts", 1)].path);
    std::fs::copy(&b, &a).expect("copy");
    assert_falls_back(&store, &first, "differs from");
}

#[test]
fn damage_in_a_reused_file_breaks_both_checkpoints() {
    let (dir, store) = temp_store();
    let zero = checkpoint(&store, 0, &key_groups(0..1), &[], None);
    let (_, second) = two_checkpoints(&store);
    // Key group 2 of checkpoint 2 is the file written by checkpoint 1.
    let shared = &second.entries[&BlobName::key_group("counts", 2)];
    assert!(shared.path.starts_with("chk-00000000000000000001/"));
    std::fs::write(dir.path().join(&shared.path), b"junk").expect("damage");
    let (latest, warnings) = capture_warnings(|| store.latest_complete());
    assert_eq!(latest.expect("latest"), Some(zero));
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(warnings[0].contains("skipping checkpoint 2") && warnings[0].contains(&shared.path));
    assert!(warnings[1].contains("skipping checkpoint 1") && warnings[1].contains(&shared.path));
}

#[test]
fn several_damaged_files_are_one_line() {
    let (dir, store) = temp_store();
    let (first, second) = two_checkpoints(&store);
    for name in
        [BlobName::key_group("counts", 0), BlobName::key_group("counts", 1), BlobName::worker("sink", 0)]
    {
        std::fs::remove_file(dir.path().join(&second.entries[&name].path)).expect("remove");
    }
    assert_falls_back(&store, &first, "and 2 more damaged or missing files");
}

#[test]
fn nothing_complete_is_none() {
    let (dir, store) = temp_store();
    checkpoint(&store, 1, &key_groups(0..1), &[], None);
    std::fs::remove_file(dir.path().join("chk-00000000000000000001/_MANIFEST")).expect("remove");
    let (latest, warnings) = capture_warnings(|| store.latest_complete());
    assert_eq!(latest.expect("latest"), None);
    assert_eq!(warnings.len(), 1);
}

#[test]
fn read_errors_name_the_file() {
    let (dir, store) = temp_store();
    let (_, second) = two_checkpoints(&store);
    let file = second.entries[&BlobName::key_group("counts", 0)].clone();
    let path = dir.path().join(&file.path);
    let original = std::fs::read(&path).expect("read");

    let mut flipped = original.clone();
    flipped[original.len() - 1] ^= 0xff;
    std::fs::write(&path, &flipped).expect("damage");
    let err = store.read(&file).unwrap_err();
    assert!(matches!(&err, CheckpointError::Corrupt { path, .. } if *path == file.path), "{err}");
    assert!(err.to_string().contains(&file.path), "{err}");

    std::fs::write(&path, &original[..10]).expect("truncate");
    let err = store.read(&file).unwrap_err();
    assert!(matches!(&err, CheckpointError::Corrupt { path, .. } if *path == file.path), "{err}");

    std::fs::write(&path, &original).expect("restore");
    assert_eq!(store.read(&file).expect("read"), b"new state 0");
    let wrong = FileRef { checksum: file.checksum ^ 1, ..file.clone() };
    assert!(matches!(store.read(&wrong), Err(CheckpointError::Corrupt { .. })));

    std::fs::remove_file(&path).expect("remove");
    let err = store.read(&file).unwrap_err();
    assert!(matches!(&err, CheckpointError::Missing { path } if *path == file.path), "{err}");
    assert!(err.to_string().contains(&file.path), "{err}");
}

#[test]
fn an_intact_file_of_a_newer_version_is_an_error_not_a_fallback() {
    let (dir, store) = temp_store();
    let (_, second) = two_checkpoints(&store);
    let file = &second.entries[&BlobName::key_group("counts", 0)];
    let path = dir.path().join(&file.path);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[4..6].copy_from_slice(&2u16.to_le_bytes());
    let end = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).expect("rewrite");
    let updated = FileRef { checksum: crc, ..file.clone() };
    let err = store.read(&updated).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::Version { found: 2, supported: 1, path } if *path == file.path),
        "{err}"
    );
    // The manifest still records the old checksum, so the checkpoint reads as damaged.
    assert!(matches!(store.verify(&second), Err(CheckpointError::Corrupt { .. })));
}

/// Every file in the directory of checkpoint 2, with its length.
fn newest_files(root: &std::path::Path) -> Vec<(String, usize)> {
    files_under(root, NEWEST)
        .into_iter()
        .map(|p| {
            let len = std::fs::metadata(root.join(&p)).map(|m| m.len() as usize).unwrap_or(0);
            (p, len)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Changing any single byte of any file of the newest checkpoint never lets
    /// `latest_complete` return it: it returns the previous one.
    #[test]
    fn any_single_byte_corruption_of_the_newest_checkpoint_is_caught(
        file in any::<prop::sample::Index>(),
        byte in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let (dir, store) = temp_store();
        let (first, _) = two_checkpoints(&store);
        let files = newest_files(dir.path());
        prop_assert_eq!(files.len(), 5); // 4 blobs written + the manifest
        let (path, len) = &files[file.index(files.len())];
        let path = dir.path().join(path);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[byte.index(*len)] ^= mask;
        std::fs::write(&path, &bytes).expect("damage");
        let latest = store.latest_complete().expect("latest_complete");
        prop_assert_eq!(latest.map(|m| m.id), Some(first.id));
    }

    /// Cutting any file of the newest checkpoint short likewise.
    #[test]
    fn any_truncation_of_the_newest_checkpoint_is_caught(
        file in any::<prop::sample::Index>(),
        keep in any::<prop::sample::Index>(),
    ) {
        let (dir, store) = temp_store();
        let (first, _) = two_checkpoints(&store);
        let files = newest_files(dir.path());
        let (path, len) = &files[file.index(files.len())];
        let path = dir.path().join(path);
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..keep.index(*len)]).expect("truncate");
        let latest = store.latest_complete().expect("latest_complete");
        prop_assert_eq!(latest.map(|m| m.id), Some(first.id));
    }
}
