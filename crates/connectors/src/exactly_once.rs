//! [`ExactlyOnceFileSink`]: files published atomically per checkpoint (two-phase commit).
//!
//! Each worker writes the records of an epoch to an in-progress file under
//! `<dir>/.in-progress/`. When the epoch ends the file is flushed and synced
//! (pre-commit); when the checkpoint covering it completes, it is renamed to
//! `<dir>/<prefix>-<epoch>-<worker>.<suffix>` (commit), which is atomic. After a failure,
//! the restart commits what the restored checkpoint pre-committed and deletes every
//! other in-progress file, so the published files hold every record exactly once.

use millstream_model::WindowedValue;
use millstream_runtime::{TransactionalSink, TransactionalWriter};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Format<T> = Arc<dyn Fn(&WindowedValue<T>) -> String + Send + Sync>;

/// Files written exactly once: one line per record, formatted by a function.
pub struct ExactlyOnceFileSink<T> {
    dir: PathBuf,
    prefix: String,
    suffix: String,
    format: Format<T>,
}

impl<T> ExactlyOnceFileSink<T> {
    /// Lines formatted by `format`, in files `<dir>/<prefix>-<epoch>-<worker>.txt`.
    pub fn new(
        dir: impl AsRef<Path>,
        prefix: &str,
        format: impl Fn(&WindowedValue<T>) -> String + Send + Sync + 'static,
    ) -> Self {
        ExactlyOnceFileSink {
            dir: dir.as_ref().to_path_buf(),
            prefix: prefix.to_owned(),
            suffix: "txt".to_owned(),
            format: Arc::new(format),
        }
    }

    /// Sets the published files' extension (default `txt`).
    pub fn with_suffix(mut self, suffix: &str) -> Self {
        self.suffix = suffix.to_owned();
        self
    }
}

/// A pre-committed file: where it is and where it goes.
#[derive(Serialize, Deserialize)]
struct Handle {
    in_progress: PathBuf,
    published: PathBuf,
}

struct Writer<T> {
    dir: PathBuf,
    staging: PathBuf,
    prefix: String,
    suffix: String,
    worker: usize,
    workers: usize,
    format: Format<T>,
    open: Option<(PathBuf, BufWriter<File>)>,
    /// Records written since the last pre-commit, so a fresh file name per epoch.
    sequence: u64,
}

fn io(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, e))
}

impl<T: 'static> TransactionalSink<T> for ExactlyOnceFileSink<T>
where
    T: Send + Sync,
{
    fn open(&self, worker: usize, workers: usize) -> Result<Box<dyn TransactionalWriter<T>>, String> {
        let staging = self.dir.join(".in-progress");
        fs::create_dir_all(&staging).map_err(|e| io(&staging, e))?;
        Ok(Box::new(Writer {
            dir: self.dir.clone(),
            staging,
            prefix: self.prefix.clone(),
            suffix: self.suffix.clone(),
            worker,
            workers,
            format: self.format.clone(),
            open: None,
            sequence: 0,
        }))
    }
}

impl<T: 'static> Writer<T> {
    fn in_progress_name(&self, worker: usize, sequence: u64) -> String {
        format!("{}-w{worker:05}-s{sequence:010}.part", self.prefix)
    }
}

impl<T: 'static> TransactionalWriter<T> for Writer<T> {
    fn write(&mut self, batch: &[WindowedValue<T>]) -> Result<(), String> {
        if self.open.is_none() {
            let path = self.staging.join(self.in_progress_name(self.worker, self.sequence));
            let file = File::create(&path).map_err(|e| io(&path, e))?;
            self.open = Some((path, BufWriter::new(file)));
        }
        if let Some((path, out)) = self.open.as_mut() {
            for v in batch {
                writeln!(out, "{}", (self.format)(v)).map_err(|e| io(path, e))?;
            }
        }
        Ok(())
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<Vec<u8>, String> {
        let published =
            self.dir.join(format!("{}-{epoch:010}-{:05}.{}", self.prefix, self.worker, self.suffix));
        let in_progress = match self.open.take() {
            Some((path, out)) => {
                let file = out.into_inner().map_err(|e| io(&path, e.into_error()))?;
                file.sync_all().map_err(|e| io(&path, e))?;
                path
            }
            // Nothing written in this epoch: no file to publish.
            None => PathBuf::new(),
        };
        self.sequence += 1;
        bincode::serialize(&Handle { in_progress, published }).map_err(|e| e.to_string())
    }

    fn commit(&mut self, handles: &[Vec<u8>]) -> Result<(), String> {
        for bytes in handles {
            let h: Handle =
                bincode::deserialize(bytes).map_err(|e| format!("bad transaction handle: {e}"))?;
            if h.in_progress.as_os_str().is_empty() {
                continue;
            }
            // Idempotent: a handle committed before a crash has no in-progress file left.
            if h.in_progress.exists() {
                fs::rename(&h.in_progress, &h.published).map_err(|e| io(&h.in_progress, e))?;
            }
        }
        sync_dir(&self.dir)
    }

    fn recover(&mut self, pending: &[Vec<u8>], restored: u64) -> Result<(), String> {
        // Output published for epochs after the restored checkpoint is produced again by
        // the replay: remove this worker's share of it (by the publishing worker's index).
        let published = fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))?;
        for entry in published {
            let path = entry.map_err(|e| io(&self.dir, e))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Some(rest) = name.strip_prefix(&format!("{}-", self.prefix)) else { continue };
            let (Some(epoch), Some(worker)) = (
                rest.get(..10).and_then(|e| e.parse::<u64>().ok()),
                rest.get(11..16).and_then(|w| w.parse::<usize>().ok()),
            ) else {
                continue;
            };
            if path.is_file() && epoch > restored && worker % self.workers == self.worker {
                fs::remove_file(&path).map_err(|e| io(&path, e))?;
            }
        }
        let keep: Vec<PathBuf> = pending
            .iter()
            .filter_map(|b| bincode::deserialize::<Handle>(b).ok())
            .map(|h| h.in_progress)
            .collect();
        // Files of the failed attempt's workers that this worker takes over.
        let entries = fs::read_dir(&self.staging).map_err(|e| io(&self.staging, e))?;
        for entry in entries {
            let path = entry.map_err(|e| io(&self.staging, e))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Some(rest) = name.strip_prefix(&format!("{}-w", self.prefix)) else { continue };
            let Some(old_worker) = rest.get(..5).and_then(|w| w.parse::<usize>().ok()) else { continue };
            if old_worker % self.workers == self.worker && !keep.contains(&path) {
                fs::remove_file(&path).map_err(|e| io(&path, e))?;
            }
        }
        // New in-progress names must not collide with kept ones.
        self.sequence = keep.len() as u64
            + std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or_default();
        Ok(())
    }
}
