//! Round trips, incremental reuse, retention, concurrency and other object stores.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{checkpoint, files_under, key_groups, payload, temp_store};
use millstream_checkpoint::{BlobName, CheckpointError, CheckpointKind, CheckpointStore, StatePart};

#[test]
fn round_trip() {
    let (dir, store) = temp_store();
    let names = vec![
        BlobName::key_group("counts", 0),
        BlobName::key_group("counts", 7),
        BlobName::source_partition("input", 3),
        BlobName::worker("sink", 1),
        BlobName::key_group("needs/escaping op", 2),
    ];
    let writer = store.begin(1, CheckpointKind::Checkpoint);
    for name in &names {
        writer.write(name.clone(), &payload(1, name)).expect("write");
    }
    let empty = BlobName::worker("stateless", 0);
    writer.write(empty.clone(), b"").expect("write empty blob");
    let metadata = BTreeMap::from([("job".to_string(), "wordcount".to_string())]);
    let committed = writer.commit(128, 4, metadata.clone()).expect("commit");

    assert_eq!(store.list_complete().expect("list"), vec![1]);
    let latest = store.latest_complete().expect("latest").expect("a complete checkpoint");
    assert_eq!(latest, committed);
    assert_eq!(latest.id, 1);
    assert_eq!(latest.kind, CheckpointKind::Checkpoint);
    assert_eq!((latest.key_groups, latest.workers), (128, 4));
    assert_eq!(latest.metadata, metadata);
    assert_eq!(latest.entries.len(), names.len() + 1);
    for name in &names {
        assert_eq!(store.read(&latest.entries[name]).expect("read"), payload(1, name));
    }
    assert_eq!(store.read(&latest.entries[&empty]).expect("read empty"), b"");
    assert_eq!(latest.operators(), vec!["counts", "input", "needs/escaping op", "sink", "stateless"]);
    let counts: Vec<StatePart> = latest.operator_entries("counts").map(|(p, _)| *p).collect();
    assert_eq!(counts, vec![StatePart::KeyGroup(0), StatePart::KeyGroup(7)]);

    // The layout on disk.
    let files = files_under(dir.path(), "chk-00000000000000000001");
    assert!(files.contains(&"chk-00000000000000000001/_MANIFEST".to_string()), "{files:?}");
    assert!(files.contains(&"chk-00000000000000000001/counts/kg-00007.bin".to_string()), "{files:?}");
    assert!(files.contains(&"chk-00000000000000000001/input/src-00003.bin".to_string()), "{files:?}");
    assert!(files.contains(&"chk-00000000000000000001/sink/worker-00001.bin".to_string()), "{files:?}");
    assert_eq!(files.len(), names.len() + 2);
    let blob = std::fs::read(dir.path().join("chk-00000000000000000001/counts/kg-00007.bin")).expect("blob");
    assert_eq!(&blob[0..4], b"MSST");
    assert_eq!(blob.len() as u64, latest.entries[&BlobName::key_group("counts", 7)].len);
    let manifest = std::fs::read(dir.path().join("chk-00000000000000000001/_MANIFEST")).expect("manifest");
    assert_eq!(&manifest[0..4], b"MSMF");
    let json: serde_json::Value =
        serde_json::from_slice(&manifest[16..manifest.len() - 4]).expect("JSON manifest");
    assert_eq!(json["id"], 1);
    assert_eq!(json["kind"], "checkpoint");
    assert_eq!(json["entries"].as_array().map(Vec::len), Some(names.len() + 1));

    // A second handle on the same directory sees the same thing.
    let reopened = CheckpointStore::local(dir.path()).expect("reopen");
    assert_eq!(reopened.latest_complete().expect("latest"), Some(committed));
}

#[test]
fn empty_store() {
    let (_dir, store) = temp_store();
    assert_eq!(store.latest_complete().expect("latest"), None);
    assert_eq!(store.list_complete().expect("list"), Vec::<u64>::new());
    store.retain_last(3).expect("retention on an empty store");
}

#[test]
fn local_creates_missing_directories() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nested = dir.path().join("a/b/checkpoints");
    let store = CheckpointStore::local(&nested).expect("local store");
    checkpoint(&store, 1, &key_groups(0..1), &[], None);
    assert!(nested.join("chk-00000000000000000001/_MANIFEST").is_file());
}

#[test]
fn incremental_reuse_across_checkpoints() {
    let (dir, store) = temp_store();
    let first = checkpoint(&store, 1, &key_groups(0..4), &[], None);
    // Only key group 1 changed.
    let changed = vec![BlobName::key_group("counts", 1)];
    let unchanged = vec![
        BlobName::key_group("counts", 0),
        BlobName::key_group("counts", 2),
        BlobName::key_group("counts", 3),
    ];
    let second = checkpoint(&store, 2, &changed, &unchanged, Some(&first));
    assert_eq!(second.entries.len(), 4);
    for name in &unchanged {
        assert_eq!(second.entries[name], first.entries[name]);
        assert!(second.entries[name].path.starts_with("chk-00000000000000000001/"));
    }
    // The new checkpoint's directory holds only what changed, plus the manifest.
    assert_eq!(
        files_under(dir.path(), "chk-00000000000000000002"),
        vec!["chk-00000000000000000002/_MANIFEST", "chk-00000000000000000002/counts/kg-00001.bin"]
    );
    // A third checkpoint reuses from the second, including files that live in the first.
    let third = checkpoint(&store, 3, &[BlobName::key_group("counts", 2)], &key_groups(0..2), Some(&second));
    // A fourth changes nothing at all: every blob is reused.
    let fourth = {
        let writer = store.begin(4, CheckpointKind::Checkpoint);
        for (name, file) in &third.entries {
            writer.reuse(name.clone(), file.clone());
        }
        writer.reuse(
            BlobName::key_group("counts", 3),
            second.entries[&BlobName::key_group("counts", 3)].clone(),
        );
        writer.commit(8, 2, BTreeMap::new()).expect("commit")
    };
    assert_eq!(
        files_under(dir.path(), "chk-00000000000000000004"),
        vec!["chk-00000000000000000004/_MANIFEST"]
    );
    let latest = store.latest_complete().expect("latest").expect("complete");
    assert_eq!(latest, fourth);
    let expected_from = [(0, 1), (1, 2), (2, 3), (3, 1)];
    for (kg, id) in expected_from {
        let name = BlobName::key_group("counts", kg);
        assert_eq!(store.read(&latest.entries[&name]).expect("read"), payload(id, &name), "key group {kg}");
    }
    assert_eq!(store.list_complete().expect("list"), vec![1, 2, 3, 4]);
}

#[test]
fn retention_keeps_n_and_files_still_referenced() {
    let (dir, store) = temp_store();
    let c1 = checkpoint(&store, 1, &key_groups(0..4), &[], None);
    let kg = |n| BlobName::key_group("counts", n);
    let c2 = checkpoint(&store, 2, &[kg(1)], &[kg(0), kg(2), kg(3)], Some(&c1));
    let c3 = checkpoint(&store, 3, &[kg(2)], &[kg(0), kg(1), kg(3)], Some(&c2));
    let c4 = checkpoint(&store, 4, &[kg(1)], &[kg(0), kg(2), kg(3)], Some(&c3));

    store.retain_last(2).expect("retain");
    assert_eq!(store.list_complete().expect("list"), vec![3, 4]);
    // Checkpoint 3 still needs chk-2/kg1; both need chk-1/kg0 and kg3.
    assert_eq!(
        files_under(dir.path(), "chk-00000000000000000001"),
        vec!["chk-00000000000000000001/counts/kg-00000.bin", "chk-00000000000000000001/counts/kg-00003.bin"]
    );
    assert_eq!(
        files_under(dir.path(), "chk-00000000000000000002"),
        vec!["chk-00000000000000000002/counts/kg-00001.bin"]
    );
    assert_eq!(files_under(dir.path(), "chk-00000000000000000003").len(), 2);
    assert_eq!(files_under(dir.path(), "chk-00000000000000000004").len(), 2);
    for manifest in [&c3, &c4] {
        store.verify(manifest).expect("retained checkpoints stay complete");
        for (name, file) in &manifest.entries {
            assert!(!store.read(file).expect("read").is_empty(), "{name}");
        }
    }
    assert_eq!(store.latest_complete().expect("latest"), Some(c4.clone()));

    // A full checkpoint 5 makes checkpoint 2's remaining file unreferenced.
    let c5 = checkpoint(&store, 5, &key_groups(0..2), &[kg(2), kg(3)], Some(&c4));
    store.retain_last(2).expect("retain");
    assert_eq!(store.list_complete().expect("list"), vec![4, 5]);
    assert!(!dir.path().join("chk-00000000000000000002").exists(), "emptied directory is removed");
    assert!(!dir.path().join("chk-00000000000000000003/_MANIFEST").exists());
    assert_eq!(
        files_under(dir.path(), "chk-00000000000000000003"),
        vec!["chk-00000000000000000003/counts/kg-00002.bin"]
    );
    // Checkpoint 4 still reads key group 0 from checkpoint 1's directory.
    assert_eq!(
        files_under(dir.path(), "chk-00000000000000000001"),
        vec!["chk-00000000000000000001/counts/kg-00000.bin", "chk-00000000000000000001/counts/kg-00003.bin"]
    );
    store.verify(&c4).expect("c4 complete");
    store.verify(&c5).expect("c5 complete");

    // Retaining one keeps exactly what checkpoint 5 references.
    store.retain_last(1).expect("retain");
    assert_eq!(store.list_complete().expect("list"), vec![5]);
    let mut remaining: Vec<String> = ["00001", "00003", "00004", "00005"]
        .iter()
        .flat_map(|d| files_under(dir.path(), &format!("chk-000000000000000{d}")))
        .collect();
    remaining.sort();
    let mut expected: Vec<String> = c5.entries.values().map(|f| f.path.clone()).collect();
    expected.push("chk-00000000000000000005/_MANIFEST".into());
    expected.sort();
    assert_eq!(remaining, expected);
    assert!(!dir.path().join("chk-00000000000000000004").exists());
    // Idempotent.
    store.retain_last(1).expect("retain again");
    store.verify(&c5).expect("c5 complete");
}

#[test]
fn retention_removes_incomplete_leftovers_but_not_newer_ones_or_savepoints() {
    let (dir, store) = temp_store();
    let kg = |n| BlobName::key_group("counts", n);
    // A savepoint written into this store is never deleted, nor counted.
    let savepoint = {
        let w = store.begin(1, CheckpointKind::Savepoint);
        w.write(kg(0), b"savepoint state").expect("write");
        w.commit(8, 1, BTreeMap::new()).expect("commit")
    };
    checkpoint(&store, 2, &key_groups(0..2), &[], None);
    // Checkpoint 3 died before committing, and left a staging file of an interrupted write.
    {
        let w = store.begin(3, CheckpointKind::Checkpoint);
        w.write(kg(0), b"never committed").expect("write");
    }
    std::fs::write(dir.path().join("chk-00000000000000000003/counts/kg-00001.bin#1"), b"half")
        .expect("stray");
    // Checkpoint 4 has a corrupt manifest.
    checkpoint(&store, 4, &key_groups(0..2), &[], None);
    std::fs::write(dir.path().join("chk-00000000000000000004/_MANIFEST"), b"garbage").expect("damage");
    let c5 = checkpoint(&store, 5, &key_groups(0..2), &[], None);
    // Checkpoint 6 is being written right now.
    let in_progress = store.begin(6, CheckpointKind::Checkpoint);
    in_progress.write(kg(0), b"in progress").expect("write");
    // An unrelated file in the store's directory is left alone.
    std::fs::write(dir.path().join("README"), b"not ours").expect("write");

    store.retain_last(1).expect("retain");
    assert!(!dir.path().join("chk-00000000000000000002").exists());
    assert!(
        !dir.path().join("chk-00000000000000000003").exists(),
        "partial checkpoint removed with its strays"
    );
    assert!(!dir.path().join("chk-00000000000000000004").exists(), "corrupt checkpoint removed");
    assert_eq!(
        files_under(dir.path(), "chk-00000000000000000006"),
        vec!["chk-00000000000000000006/counts/kg-00000.bin"]
    );
    assert_eq!(files_under(dir.path(), "chk-00000000000000000001").len(), 2, "savepoint kept");
    assert!(dir.path().join("README").exists());
    assert_eq!(store.list_complete().expect("list"), vec![1, 5]);
    store.verify(&savepoint).expect("savepoint intact");

    let c6 = in_progress.commit(8, 1, BTreeMap::new()).expect("commit after retention");
    assert_eq!(store.latest_complete().expect("latest"), Some(c6));
    store.retain_last(1).expect("retain");
    assert_eq!(store.list_complete().expect("list"), vec![1, 6]);
    assert!(!dir.path().join("chk-00000000000000000005").exists());
    let _ = c5;
}

#[test]
fn retention_refuses_zero() {
    let (_dir, store) = temp_store();
    checkpoint(&store, 1, &key_groups(0..1), &[], None);
    assert!(matches!(store.retain_last(0), Err(CheckpointError::InvalidArgument(_))));
    assert_eq!(store.list_complete().expect("list"), vec![1]);
}

#[test]
fn concurrent_writes_from_four_threads() {
    let (_dir, store) = temp_store();
    let writer = store.begin(1, CheckpointKind::Checkpoint);
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let writer = &writer;
            s.spawn(move || {
                for i in 0..32u32 {
                    let name = BlobName::key_group("counts", t * 32 + i);
                    let bytes = vec![(t * 32 + i) as u8; 1000 + i as usize];
                    writer.write(name, &bytes).expect("concurrent write");
                }
                writer.write(BlobName::worker("sink", t), format!("worker {t}").as_bytes()).expect("write");
            });
        }
    });
    let manifest = writer.commit(128, 4, BTreeMap::new()).expect("commit");
    assert_eq!(manifest.entries.len(), 128 + 4);
    // Read back from several threads too, through clones of the store.
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let store = store.clone();
            let manifest = &manifest;
            s.spawn(move || {
                for kg in (t * 32)..(t * 32 + 32) {
                    let bytes =
                        store.read(&manifest.entries[&BlobName::key_group("counts", kg)]).expect("read");
                    assert_eq!(bytes, vec![kg as u8; 1000 + (kg % 32) as usize]);
                }
            });
        }
    });
    assert_eq!(store.latest_complete().expect("latest"), Some(manifest));
}

#[test]
fn racing_writes_of_one_name_let_exactly_one_win() {
    let (_dir, store) = temp_store();
    let writer = store.begin(1, CheckpointKind::Checkpoint);
    let name = BlobName::key_group("counts", 0);
    let results: Vec<Result<_, CheckpointError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (writer, name) = (&writer, name.clone());
                s.spawn(move || writer.write(name, format!("thread {t}").as_bytes()))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, CheckpointError::Duplicate { .. })));
    let manifest = writer.commit(8, 1, BTreeMap::new()).expect("commit");
    store.verify(&manifest).expect("complete");
}

#[test]
fn duplicate_names_are_errors() {
    let (_dir, store) = temp_store();
    let first = checkpoint(&store, 1, &key_groups(0..2), &[], None);
    let name = BlobName::key_group("counts", 0);

    let writer = store.begin(2, CheckpointKind::Checkpoint);
    writer.write(name.clone(), b"a").expect("write");
    let err = writer.write(name.clone(), b"b").unwrap_err();
    assert!(matches!(err, CheckpointError::Duplicate { id: 2, .. }), "{err}");
    assert!(err.to_string().contains("counts"), "{err}");
    writer.reuse(name.clone(), first.entries[&name].clone());
    assert!(matches!(writer.commit(8, 1, BTreeMap::new()), Err(CheckpointError::Duplicate { .. })));
    assert_eq!(store.list_complete().expect("list"), vec![1]);
}

#[test]
fn abort_deletes_written_files_only() {
    let (dir, store) = temp_store();
    let first = checkpoint(&store, 1, &key_groups(0..2), &[], None);
    let writer = store.begin(2, CheckpointKind::Checkpoint);
    writer.write(BlobName::key_group("counts", 0), b"new").expect("write");
    let reused = BlobName::key_group("counts", 1);
    writer.reuse(reused.clone(), first.entries[&reused].clone());
    writer.abort().expect("abort");
    assert!(files_under(dir.path(), "chk-00000000000000000002").is_empty());
    assert_eq!(store.latest_complete().expect("latest"), Some(first.clone()));
    store.verify(&first).expect("reused file untouched");
}

#[test]
fn savepoints_live_in_their_own_store() {
    let (_dir, checkpoints) = temp_store();
    let c1 = checkpoint(&checkpoints, 1, &key_groups(0..2), &[], None);
    let sp_dir = tempfile::tempdir().expect("temp dir");
    let savepoints = CheckpointStore::local(sp_dir.path().join("before-upgrade")).expect("savepoint store");
    // A savepoint is self-contained: every blob is written, copying the checkpoint's state.
    let writer = savepoints.begin(c1.id, CheckpointKind::Savepoint);
    for (name, file) in &c1.entries {
        writer.write(name.clone(), &checkpoints.read(file).expect("read")).expect("write");
    }
    let sp = writer.commit(c1.key_groups, c1.workers, BTreeMap::new()).expect("commit");
    let sp2 = {
        let w = savepoints.begin(7, CheckpointKind::Savepoint);
        w.write(BlobName::key_group("counts", 0), b"later").expect("write");
        w.commit(8, 1, BTreeMap::new()).expect("commit")
    };
    savepoints.retain_last(1).expect("retention never deletes savepoints");
    assert_eq!(savepoints.list_complete().expect("list"), vec![1, 7]);
    assert_eq!(savepoints.latest_complete().expect("latest"), Some(sp2));
    savepoints.verify(&sp).expect("first savepoint intact");
    assert_eq!(sp.kind, CheckpointKind::Savepoint);
    for name in c1.entries.keys() {
        assert_eq!(savepoints.read(&sp.entries[name]).expect("read"), payload(1, name));
    }
}

#[test]
fn any_object_store_under_a_prefix() {
    let memory: Arc<dyn millstream_checkpoint::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let a = CheckpointStore::with_object_store(memory.clone(), "jobs/a");
    let b = CheckpointStore::with_object_store(memory.clone(), "jobs/b");
    let c1 = checkpoint(&a, 1, &key_groups(0..3), &[], None);
    let c2 = checkpoint(&a, 2, &[BlobName::key_group("counts", 0)], &key_groups(1..3), Some(&c1));
    checkpoint(&b, 9, &key_groups(0..1), &[], None);
    assert_eq!(a.list_complete().expect("list"), vec![1, 2]);
    assert_eq!(b.list_complete().expect("list"), vec![9]);
    assert_eq!(a.latest_complete().expect("latest"), Some(c2.clone()));
    a.retain_last(1).expect("retain");
    assert_eq!(a.list_complete().expect("list"), vec![2]);
    a.verify(&c2).expect("complete");
    assert_eq!(b.list_complete().expect("list"), vec![9], "another prefix is untouched");

    // The same store used from inside an async runtime (e.g. a future job server).
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let latest = runtime.block_on(async { a.latest_complete() }).expect("latest");
    assert_eq!(latest, Some(c2));
}

#[test]
fn a_local_file_system_passed_as_object_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fs = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).expect("fs").with_fsync(true);
    let store = CheckpointStore::with_object_store(Arc::new(fs), "checkpoints/job");
    let c1 = checkpoint(&store, 1, &key_groups(0..2), &[], None);
    assert!(dir.path().join("checkpoints/job/chk-00000000000000000001/_MANIFEST").is_file());
    assert_eq!(store.latest_complete().expect("latest"), Some(c1));
}
