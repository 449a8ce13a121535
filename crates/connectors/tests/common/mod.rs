//! Scaffolding shared by the connectors' integration tests.
#![allow(dead_code)] // each test file uses its own share

pub mod kafka;

use millstream_checkpoint::CheckpointStore;
use millstream_connectors::ExactlyOnceFileSink;
use millstream_model::WindowedValue;
use millstream_runtime::{CheckpointConfig, PCollection, Pipeline, Runner, UserError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fresh directory `<tmp>/millstream-<suite>-<name>-<pid>`.
pub fn temp_dir(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("millstream-{suite}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Lines of the files an exactly-once file sink published under `prefix`, sorted.
pub fn published(dir: &Path, prefix: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return lines };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
        if path.is_file() && name.starts_with(prefix) {
            lines.extend(std::fs::read_to_string(&path).unwrap_or_default().lines().map(str::to_owned));
        }
    }
    lines.sort();
    lines
}

/// Fails a job part-way through, for recovery tests: on the first record it sees once at
/// least `after` records went by and the job's exactly-once file sink has published
/// output into `published_to`, that is once a checkpoint holding progress is complete.
///
/// Failing at a fixed record instead makes such tests depend on timing: on a loaded
/// machine a worker can reach that record before any checkpoint has completed, and the
/// restart then rightly starts over. A complete checkpoint alone is not enough either: the
/// first ones can hold no progress (an epoch that ended before anything was read).
pub struct InjectedFailure {
    published_to: PathBuf,
    /// `None`: only counts.
    after: Option<usize>,
    processed: AtomicUsize,
    fired: AtomicBool,
    /// When the output directory was last listed (listing it per record is wasteful).
    last_look: Mutex<Option<Instant>>,
}

impl InjectedFailure {
    pub fn new(published_to: &Path, after: usize) -> Self {
        InjectedFailure {
            published_to: published_to.to_owned(),
            after: Some(after),
            processed: AtomicUsize::new(0),
            fired: AtomicBool::new(false),
            last_look: Mutex::new(None),
        }
    }

    /// Counts records and never fails: for the run after the failure.
    pub fn counting() -> Self {
        InjectedFailure { after: None, ..InjectedFailure::new(Path::new(""), 0) }
    }

    /// Counts one record; an error for the record that fails the job.
    pub fn record(&self, what: impl std::fmt::Display) -> Result<(), UserError> {
        let seen = self.processed.fetch_add(1, Ordering::Relaxed) + 1;
        let Some(after) = self.after else { return Ok(()) };
        if seen < after || self.fired.load(Ordering::Relaxed) || !self.progress_published() {
            return Ok(());
        }
        if self.fired.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        Err(UserError::new(format!("injected failure at {what}")))
    }

    /// Records counted so far.
    pub fn processed(&self) -> usize {
        self.processed.load(Ordering::Relaxed)
    }

    fn progress_published(&self) -> bool {
        {
            let mut last = self.last_look.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < Duration::from_millis(2)) {
                return false;
            }
            *last = Some(Instant::now());
        }
        std::fs::read_dir(&self.published_to)
            .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.path().is_file())))
    }
}

/// Runs `read` on two workers into an exactly-once file sink with checkpoints every
/// 15 ms and at most 1000 records in flight; each element costs 100 µs and is counted by
/// `failure`, which fails the job part-way when armed. Returns the records counted.
pub fn run_ids(
    read: impl FnOnce(&Pipeline) -> PCollection<u64>,
    out: &Path,
    checkpoints: &Path,
    failure: Arc<InjectedFailure>,
) -> Result<usize, String> {
    let p = Pipeline::new();
    let counted = failure.clone();
    let ids = read(&p).try_map("Slow", move |id: u64| {
        std::thread::sleep(std::time::Duration::from_micros(100));
        counted.record(id)?;
        Ok(id)
    });
    ids.write_exactly_once(
        "Ids",
        ExactlyOnceFileSink::new(out, "ids", |v: &WindowedValue<u64>| v.value.to_string()),
    );
    let store = CheckpointStore::local(checkpoints).map_err(|e| e.to_string())?;
    Runner::new()
        .workers(2)
        // Backpressure keeps the sources from reading far ahead, so epochs end part-way
        // through the files.
        .max_in_flight(1000)
        .checkpointing(CheckpointConfig::new(store).interval(millstream_model::Duration::from_millis(15)))
        .run(&p)
        .map_err(|e| e.to_string())?;
    Ok(failure.processed())
}

/// Runs a job that fails part-way (after `after` records, once output is published),
/// then again from its checkpoint: every id in `0..n` is published exactly once, and the
/// second run did not start over.
pub fn check_resume(dir: &Path, n: u64, after: usize, read: impl Fn(&Pipeline) -> PCollection<u64>) {
    let (out, chk) = (dir.join("out"), dir.join("chk"));
    let err = run_ids(&read, &out, &chk, Arc::new(InjectedFailure::new(&out, after))).unwrap_err();
    assert!(err.contains("injected failure"), "{err}");
    let before = published(&out, "ids").len();
    assert!(before < n as usize, "nothing after the failure point is published ({before})");
    let latest = CheckpointStore::local(&chk).unwrap().latest_complete().unwrap();
    assert!(latest.is_some(), "a checkpoint before the failure");
    let again = run_ids(&read, &out, &chk, Arc::new(InjectedFailure::counting())).expect("resumed run");
    let mut expected: Vec<String> = (0..n).map(|x| x.to_string()).collect();
    expected.sort();
    assert_eq!(published(&out, "ids"), expected);
    assert!(
        again < n as usize,
        "the resumed run read {again} of {n} records: it did not resume ({before} were published before the failure)"
    );
}
