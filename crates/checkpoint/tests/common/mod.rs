//! Helpers shared by the checkpoint store's integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use millstream_checkpoint::{BlobName, CheckpointKind, CheckpointStore, Manifest};

/// A fresh store in a unique temporary directory (removed when the `TempDir` drops).
pub fn temp_store() -> (tempfile::TempDir, CheckpointStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = CheckpointStore::local(dir.path()).expect("local store");
    (dir, store)
}

/// The payload used for blob `name` in checkpoint `id` in these tests.
pub fn payload(id: u64, name: &BlobName) -> Vec<u8> {
    format!("state of {name} as of checkpoint {id}").into_bytes()
}

/// Writes and commits checkpoint `id`: blobs in `write` are written fresh, blobs in `reuse`
/// are taken from `base`.
pub fn checkpoint(
    store: &CheckpointStore,
    id: u64,
    write: &[BlobName],
    reuse: &[BlobName],
    base: Option<&Manifest>,
) -> Manifest {
    let writer = store.begin(id, CheckpointKind::Checkpoint);
    for name in write {
        writer.write(name.clone(), &payload(id, name)).expect("write blob");
    }
    for name in reuse {
        let file = base.expect("a base manifest").entries[name].clone();
        writer.reuse(name.clone(), file);
    }
    writer.commit(8, 2, BTreeMap::from([("job".to_string(), "test".to_string())])).expect("commit")
}

/// Key groups 0..n of operator "counts".
pub fn key_groups(range: std::ops::Range<u32>) -> Vec<BlobName> {
    range.map(|kg| BlobName::key_group("counts", kg)).collect()
}

/// Every regular file under `dir`, as paths relative to `root`, sorted.
pub fn files_under(root: &Path, dir: &str) -> Vec<String> {
    fn walk(path: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(path) else { return };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join(dir), &mut out);
    let mut rel: Vec<String> = out
        .into_iter()
        .map(|p| p.strip_prefix(root).expect("under root").to_string_lossy().replace('\\', "/"))
        .collect();
    rel.sort();
    rel
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Runs `f` and returns its result with the log lines of level WARN and above it emitted.
pub fn capture_warnings<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let bytes = captured.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let lines = String::from_utf8_lossy(&bytes).lines().map(str::to_string).collect();
    (out, lines)
}
