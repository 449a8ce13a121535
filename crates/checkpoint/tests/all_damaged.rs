//! When every committed checkpoint is damaged, restoring is an error that says so (and
//! names them), never a silent fresh start. (A store with only partial checkpoints, nothing ever
//! committed, is still "no checkpoint": `corruption.rs`, `nothing_complete_is_none`.)

mod common;

use common::{capture_warnings, checkpoint, key_groups, temp_store};
use millstream_checkpoint::{BlobName, CheckpointError, CheckpointKind};

fn flip_last_byte(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn every_committed_checkpoint_damaged_is_an_error_naming_them() {
    let (dir, store) = temp_store();
    let first = checkpoint(&store, 1, &key_groups(0..2), &[], None);
    let second = checkpoint(&store, 2, &key_groups(0..2), &[], None);
    // A partial checkpoint 3 (killed before its manifest) on top.
    let writer = store.begin(3, CheckpointKind::Checkpoint);
    writer.write(BlobName::key_group("counts", 0), b"never committed").expect("write");
    drop(writer);
    // Checkpoint 2: a flipped byte in a blob; checkpoint 1: a truncated manifest.
    flip_last_byte(&dir.path().join(&second.entries[&BlobName::key_group("counts", 1)].path));
    let manifest = dir.path().join("chk-00000000000000000001/_MANIFEST");
    let len = std::fs::metadata(&manifest).expect("meta").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&manifest)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    assert_eq!(first.id, 1);

    let (latest, warnings) = capture_warnings(|| store.latest_complete());
    match latest {
        Err(CheckpointError::AllDamaged { store: shown, checkpoints }) => {
            assert_eq!(checkpoints, vec![1, 2], "the partial checkpoint 3 was never committed");
            assert_eq!(shown, store.to_string());
        }
        other => panic!("expected AllDamaged, got {other:?}"),
    }
    // Each skipped checkpoint was named with its problem, once.
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(
        warnings[0].contains("skipping checkpoint 3") && warnings[0].contains("partial"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].contains("skipping checkpoint 2") && warnings[1].contains("kg-00001.bin"),
        "{}",
        warnings[1]
    );
    assert!(
        warnings[2].contains("skipping checkpoint 1") && warnings[2].contains("_MANIFEST"),
        "{}",
        warnings[2]
    );
    let message = store.latest_complete().expect_err("still damaged").to_string();
    assert!(
        message.contains("no intact checkpoint")
            && message.contains("all 2 committed checkpoints are damaged"),
        "{message}"
    );
    assert!(message.contains("ids 1, 2"), "{message}");
    assert!(!store.latest_complete().expect_err("damaged").is_damage(), "not about one file");
}
