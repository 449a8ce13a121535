//! Savepoints of a running job: user-triggered checkpoints copied, self-contained, to a
//! place the user names, optionally stopping the job; and starting a job from one.
//!
//! A savepoint request makes every source end its current epoch at once; the first
//! checkpoint that completes after the request is copied to the target
//! ([`CheckpointStore::copy_checkpoint`]). With `stop`, the job then halts where it is:
//! sources stop, nothing is flushed (windows stay open in the savepoint), exactly-once
//! sinks publish what the savepoint's checkpoint covers, and the run returns `Ok`.
//!
//! ```
//! use millstream_checkpoint::CheckpointStore;
//! use millstream_runtime::{CheckpointConfig, Pipeline, Runner};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let runner = Runner::new()
//!     .workers(2)
//!     .checkpointing(CheckpointConfig::new(CheckpointStore::local(dir.path().join("chk")).unwrap()));
//! let savepoints = runner.savepoint_handle();
//! let target = CheckpointStore::local(dir.path().join("savepoint-1")).unwrap();
//! // From any thread while the job runs (here: before; the request waits for the job):
//! let pending = savepoints.trigger(target, true);
//! let p = Pipeline::new();
//! let _ = p.create(vec![1u64, 2, 3]).map(|x| (x % 2, x)).combine_per_key(millstream_model::combiners::Sum);
//! let result = runner.run(&p).unwrap();
//! // This short job may end before a checkpoint: then the request fails, saying so.
//! match pending.wait() {
//!     Ok(savepoint) => assert_eq!(result.savepoints, vec![savepoint]),
//!     Err(message) => assert!(message.contains("ended"), "{message}"),
//! }
//! ```

use millstream_checkpoint::{CheckpointError, CheckpointKind, CheckpointStore, Manifest, SavepointOutcome};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration as StdDuration;

/// A completed savepoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Savepoint {
    /// Where it is (the target store).
    pub location: String,
    /// The checkpoint (epoch) it copies.
    pub checkpoint: u64,
    /// The size of its state files in bytes.
    pub bytes: u64,
    /// Whether the job stopped after it.
    pub stopped: bool,
}

/// One savepoint request.
pub(crate) struct Request {
    pub(crate) target: CheckpointStore,
    pub(crate) stop: bool,
    /// The least checkpoint that may serve it: one whose cut is after the request.
    pub(crate) min_epoch: Mutex<Option<u64>>,
    result: Mutex<Option<Result<Savepoint, String>>>,
    done: Condvar,
}

impl Request {
    pub(crate) fn finish(&self, result: Result<Savepoint, String>) {
        let mut r = self.result.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            *r = Some(result);
        }
        self.done.notify_all();
    }
}

/// The requests of one runner, shared by its handles and the job's coordinator.
#[derive(Default)]
pub(crate) struct SavepointQueue {
    pub(crate) requests: Mutex<Vec<Arc<Request>>>,
    /// Requests were added since the coordinator last assigned epochs.
    pub(crate) new: AtomicBool,
    /// Why requests are no longer served (the run ended), if so.
    closed: Mutex<Option<String>>,
    /// Savepoints completed in the current run.
    pub(crate) completed: Mutex<Vec<Savepoint>>,
}

impl SavepointQueue {
    /// Fails every waiting request with `reason`, and every later one.
    pub(crate) fn close(&self, reason: &str) {
        *self.closed.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.to_owned());
        let waiting = std::mem::take(&mut *self.requests.lock().unwrap_or_else(|e| e.into_inner()));
        for r in waiting {
            r.finish(Err(reason.to_owned()));
        }
    }

    /// Serves requests again (a new run of the same runner).
    pub(crate) fn open(&self) {
        *self.closed.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.completed.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Takes the requests a checkpoint of `epoch` serves.
    pub(crate) fn take_served(&self, epoch: u64) -> Vec<Arc<Request>> {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let (served, waiting): (Vec<_>, Vec<_>) = requests
            .drain(..)
            .partition(|r| r.min_epoch.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|m| m <= epoch));
        *requests = waiting;
        served
    }
}

/// Triggers savepoints of the jobs a [`Runner`](crate::Runner) runs, from any thread.
#[derive(Clone)]
pub struct SavepointHandle {
    pub(crate) queue: Arc<SavepointQueue>,
}

impl std::fmt::Debug for SavepointHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavepointHandle").finish_non_exhaustive()
    }
}

impl SavepointHandle {
    /// Asks for a savepoint in `target` (which must hold no checkpoint yet), taken at the
    /// first checkpoint that completes after this call; with `stop`, the job halts once it
    /// is complete. A request made before the job starts waits for it.
    pub fn trigger(&self, target: CheckpointStore, stop: bool) -> PendingSavepoint {
        let request = Arc::new(Request {
            target,
            stop,
            min_epoch: Mutex::new(None),
            result: Mutex::new(None),
            done: Condvar::new(),
        });
        let closed = self.queue.closed.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match closed {
            Some(reason) => request.finish(Err(reason)),
            None => {
                self.queue.requests.lock().unwrap_or_else(|e| e.into_inner()).push(request.clone());
                self.queue.new.store(true, Ordering::SeqCst);
            }
        }
        PendingSavepoint { request }
    }
}

/// A savepoint requested and not necessarily complete.
pub struct PendingSavepoint {
    request: Arc<Request>,
}

impl std::fmt::Debug for PendingSavepoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSavepoint").field("done", &self.try_result().is_some()).finish()
    }
}

impl PendingSavepoint {
    /// Waits until the savepoint is complete, or failed (the reason).
    pub fn wait(&self) -> Result<Savepoint, String> {
        let mut r = self.request.result.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(result) = r.as_ref() {
                return result.clone();
            }
            r = self.request.done.wait(r).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits at most `timeout`; `None` if the savepoint is not done by then.
    pub fn wait_timeout(&self, timeout: StdDuration) -> Option<Result<Savepoint, String>> {
        let r = self.request.result.lock().unwrap_or_else(|e| e.into_inner());
        let (r, _) = self
            .request
            .done
            .wait_timeout_while(r, timeout, |r| r.is_none())
            .unwrap_or_else(|e| e.into_inner());
        r.clone()
    }

    /// The outcome, if the savepoint is done.
    pub fn try_result(&self) -> Option<Result<Savepoint, String>> {
        self.request.result.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Metadata key: the savepoint a run started from (`<location>#<checkpoint>`), carried by
/// every checkpoint of that run, so that a restart resumes from its newest checkpoint
/// instead of from the savepoint again.
pub(crate) const STARTED_FROM_SAVEPOINT: &str = "started_from_savepoint";
/// Metadata key of a savepoint imported as a checkpoint: the epoch of the savepoint, to
/// which exactly-once sinks rewind (output published after it is withdrawn).
pub(crate) const REWIND_TO_EPOCH: &str = "rewind_to_epoch";

/// Makes the job's checkpoint store start from the savepoint in `savepoint`: copies it
/// in as the newest checkpoint, unless the newest checkpoint already belongs to a run
/// started from this same savepoint (a restart after a failure), which then resumes.
pub(crate) fn import_savepoint(store: &CheckpointStore, savepoint: &CheckpointStore) -> Result<(), String> {
    let manifest = savepoint
        .latest_complete()
        .map_err(|e| format!("savepoint {savepoint}: {e}"))?
        .ok_or_else(|| format!("no complete savepoint in {savepoint}"))?;
    let lineage = format!("{savepoint}#{}", manifest.id);
    let latest = store.latest_complete().map_err(|e| format!("checkpoint store {store}: {e}"))?;
    if let Some(latest) = latest.filter(|m| m.metadata.get(STARTED_FROM_SAVEPOINT) == Some(&lineage)) {
        tracing::info!(
            savepoint = %lineage,
            checkpoint = latest.id,
            "resuming the run started from this savepoint at its newest checkpoint"
        );
        return Ok(());
    }
    let highest = store.highest_id().map_err(|e| format!("checkpoint store {store}: {e}"))?;
    let id = highest.unwrap_or(0).max(manifest.id) + 1;
    let metadata = BTreeMap::from([
        (STARTED_FROM_SAVEPOINT.to_string(), lineage.clone()),
        (REWIND_TO_EPOCH.to_string(), manifest.id.to_string()),
    ]);
    savepoint
        .copy_checkpoint(&manifest, store, id, CheckpointKind::Checkpoint, metadata)
        .map_err(|e| format!("copying savepoint {lineage} into {store}: {e}"))?;
    tracing::info!(savepoint = %lineage, checkpoint = id, "starting from savepoint");
    Ok(())
}

/// Writes a savepoint of the committed checkpoint `manifest` (in `store`) to `request`'s
/// target.
pub(crate) fn write_savepoint(
    store: &CheckpointStore,
    manifest: &Manifest,
    request: &Request,
) -> Result<Savepoint, String> {
    let target = &request.target;
    let empty = target.is_empty().map_err(|e: CheckpointError| format!("savepoint target {target}: {e}"))?;
    if !empty {
        return Err(format!("savepoint target {target} already holds a checkpoint or savepoint"));
    }
    let copy = store
        .copy_checkpoint(manifest, target, manifest.id, CheckpointKind::Savepoint, BTreeMap::new())
        .map_err(|e| format!("writing savepoint to {target}: {e}"))?;
    Ok(Savepoint {
        location: target.to_string(),
        checkpoint: copy.id,
        bytes: copy.total_bytes(),
        stopped: request.stop,
    })
}

impl std::fmt::Debug for SavepointQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.requests.lock().unwrap_or_else(|e| e.into_inner()).len();
        f.debug_struct("SavepointQueue").field("waiting", &waiting).finish_non_exhaustive()
    }
}

/// How often the request directory of the checkpoint store is looked at.
const REQUEST_POLL: StdDuration = StdDuration::from_millis(100);

/// Serves savepoint requests written into the checkpoint store (`millstream savepoint`)
/// while a job runs: triggers each through the runner's handle and writes its outcome.
pub(crate) struct RequestWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RequestWatcher {
    pub(crate) fn start(store: CheckpointStore, handle: SavepointHandle) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("millstream-savepoint-requests".into())
            .spawn(move || watch(&store, &handle, &stopping))
            .map_err(|e| tracing::warn!(error = %e, "cannot watch for savepoint requests"))
            .ok();
        RequestWatcher { stop, thread }
    }

    /// Stops watching once the outcomes of the requests taken are written (the runner
    /// has closed its queue, so every taken request has one).
    pub(crate) fn finish(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch(store: &CheckpointStore, handle: &SavepointHandle, stop: &AtomicBool) {
    let mut taken: BTreeMap<String, PendingSavepoint> = BTreeMap::new();
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if !stopping {
            match store.savepoint_requests() {
                Ok(requests) => {
                    for r in requests {
                        if taken.contains_key(&r.id) {
                            continue;
                        }
                        let pending = match CheckpointStore::local(&r.target) {
                            Ok(target) => handle.trigger(target, r.stop),
                            Err(e) => {
                                let outcome =
                                    SavepointOutcome::Failed { message: format!("target {}: {e}", r.target) };
                                answer(store, &r.id, &outcome);
                                continue;
                            }
                        };
                        taken.insert(r.id, pending);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read savepoint requests"),
            }
        }
        taken.retain(|id, pending| match pending.try_result() {
            Some(result) => {
                let outcome = match result {
                    Ok(sp) => SavepointOutcome::Completed {
                        location: sp.location,
                        checkpoint: sp.checkpoint,
                        bytes: sp.bytes,
                        stopped: sp.stopped,
                    },
                    Err(message) => SavepointOutcome::Failed { message },
                };
                answer(store, id, &outcome);
                false
            }
            None => true,
        });
        if stopping && taken.is_empty() {
            return;
        }
        std::thread::sleep(REQUEST_POLL);
    }
}

fn answer(store: &CheckpointStore, id: &str, outcome: &SavepointOutcome) {
    if let Err(e) = store.finish_savepoint_request(id, outcome) {
        tracing::warn!(request = id, error = %e, "cannot write the outcome of a savepoint request");
    }
}
