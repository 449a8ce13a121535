//! A job restarted over a checkpoint directory damaged after it failed: the newest intact
//! checkpoint is restored (the log names the skipped one and what is wrong with it), the
//! results are exactly those of a run without failure, and when every committed checkpoint
//! is damaged the restart fails saying so instead of silently starting over. (Flipped bytes
//! and truncated blobs under a killed process: `millstream/tests/kill_recovery.rs`; every
//! kind of damage to the files themselves: `checkpoint/tests/corruption.rs`.)

mod common;

use common::{covered, temp_dir, Numbers};
use millstream_checkpoint::{CheckpointStore, Manifest};
use millstream_model::combiners::Sum;
use millstream_model::Duration;
use millstream_runtime::{CheckpointConfig, Pipeline, Runner};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

const N: u64 = 20_000;

fn sums(source: Numbers, config: CheckpointConfig) -> Result<BTreeMap<u64, u64>, String> {
    let p = Pipeline::new();
    let out = p.read("Numbers", source).map(|x| (x % 10, x)).combine_per_key(Sum).collect();
    Runner::new().workers(2).checkpointing(config).run(&p).map_err(|e| e.to_string())?;
    Ok(out.values().into_iter().collect())
}

fn expected() -> BTreeMap<u64, u64> {
    let mut sums = BTreeMap::new();
    for x in 0..N {
        *sums.entry(x % 10).or_insert(0) += x;
    }
    sums
}

/// Every WARN line logged by this test binary, from any thread.
fn warnings() -> &'static Arc<Mutex<Vec<u8>>> {
    static LINES: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Sink(writer.clone()))
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        lines
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The warnings that name `dir` (tests run in parallel and share the log).
fn warnings_about(dir: &Path) -> Vec<String> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()).display().to_string();
    let bytes = warnings().lock().unwrap_or_else(|p| p.into_inner()).clone();
    String::from_utf8_lossy(&bytes).lines().filter(|l| l.contains(&dir)).map(str::to_string).collect()
}

/// Runs the job until it fails part-way (after checkpoints covering at least 6,000
/// numbers), and returns the store and its complete checkpoints, newest last.
fn failed_job(name: &str) -> (std::path::PathBuf, CheckpointStore, CheckpointConfig, Vec<Manifest>) {
    warnings();
    let dir = temp_dir(name);
    let store = CheckpointStore::local(&dir).expect("store");
    let config = CheckpointConfig::new(store.clone()).interval(Duration::from_millis(20));
    let err = sums(Numbers::failing(N, 12_000, 6_000, &store), config.clone()).expect_err("injected failure");
    assert!(err.contains("injected failure"), "{err}");
    let complete: Vec<Manifest> = store
        .list_complete()
        .expect("list")
        .into_iter()
        .map(|id| store.manifest(id).expect("manifest"))
        .collect();
    assert!(complete.len() >= 2, "retention keeps 3 checkpoints and the job took more: {complete:?}");
    (dir, store, config, complete)
}

/// Damages the newest checkpoint with `damage`, restarts, and checks that the previous one
/// was restored, the log said why, and the results are exact.
fn falls_back_after(name: &str, damage: impl FnOnce(&Path, &Manifest), needle: &str) {
    let (dir, store, config, complete) = failed_job(name);
    let (previous, newest) = (&complete[complete.len() - 2], &complete[complete.len() - 1]);
    // Before the restart, whose retention will delete the old checkpoints.
    let covered = covered(&store, previous, N).expect("covered");
    damage(&dir, newest);
    // Only what the restart logs (the failed run warned about its own partial checkpoints).
    let earlier = warnings_about(&dir).len();
    let source = Numbers::new(N);
    let resumed = sums(source.clone(), config).expect("the restart succeeds");
    assert_eq!(resumed, expected(), "resumed from checkpoint {} after damage to {}", previous.id, newest.id);
    // It restored the previous checkpoint: it read exactly what that one had not covered.
    assert_eq!(source.read.load(Ordering::Relaxed), N - covered, "restored checkpoint {}", previous.id);
    let warned = warnings_about(&dir).split_off(earlier);
    let line = warned
        .iter()
        .find(|l| l.contains(&format!("skipping checkpoint {}", newest.id)))
        .unwrap_or_else(|| panic!("no warning about checkpoint {}: {warned:#?}", newest.id));
    assert!(line.contains(needle) && line.contains("falling back"), "expected {needle:?} in {line}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_deleted_state_file_of_the_newest_checkpoint_falls_back_to_the_previous_one() {
    falls_back_after(
        "damaged-deleted-blob",
        |dir, newest| {
            // A file written by the newest checkpoint itself (not one reused from before).
            let file = newest
                .entries
                .values()
                .rev()
                .find(|f| f.path.starts_with(&newest_dir(newest)))
                .expect("own file");
            std::fs::remove_file(dir.join(&file.path)).expect("remove");
        },
        "is missing",
    );
}

#[test]
fn a_garbled_manifest_of_the_newest_checkpoint_falls_back_to_the_previous_one() {
    falls_back_after(
        "damaged-manifest",
        |dir, newest| {
            let path = dir.join(format!("{}/_MANIFEST", newest_dir(newest)));
            let mut bytes = std::fs::read(&path).expect("read");
            let middle = bytes.len() / 2;
            bytes[middle..middle + 8].copy_from_slice(b"garbage!");
            std::fs::write(&path, bytes).expect("write");
        },
        "_MANIFEST: checksum mismatch",
    );
}

#[test]
fn a_restart_over_only_damaged_checkpoints_fails_saying_so_and_reads_nothing() {
    let (dir, _store, config, complete) = failed_job("damaged-all");
    for manifest in &complete {
        let path = dir.join(format!("{}/_MANIFEST", newest_dir(manifest)));
        let len = std::fs::metadata(&path).expect("meta").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(len - 1))
            .expect("truncate");
    }
    let source = Numbers::new(N);
    let err = sums(source.clone(), config).expect_err("no intact checkpoint to restore");
    let ids = complete.iter().map(|m| m.id.to_string()).collect::<Vec<_>>().join(", ");
    assert!(err.contains("no intact checkpoint") && err.contains(&format!("ids {ids}")), "{err}");
    assert_eq!(source.read.load(Ordering::Relaxed), 0, "the job did not start over");
    for m in &complete {
        assert!(
            warnings_about(&dir).iter().any(|l| l.contains(&format!("skipping checkpoint {}", m.id))),
            "checkpoint {} was not reported",
            m.id
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn newest_dir(m: &Manifest) -> String {
    millstream_checkpoint::checkpoint_dir(m.id)
}
