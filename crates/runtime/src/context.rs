//! What every operator of a running job shares: the clock, counters, errors, cancellation.

use crate::checkpoint::Coordinator;
use crate::clock::{ManualClock, SharedClock};
use crate::error::RuntimeError;
use crate::flow::InFlight;
use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Shared state of one running job, across all its workers.
#[derive(Debug)]
pub struct JobContext {
    /// Processing time.
    pub clock: SharedClock,
    /// The same clock when it is manual (TestStream moves it).
    pub manual_clock: Option<ManualClock>,
    /// The checkpoint coordinator, when the job checkpoints.
    pub(crate) checkpoints: Option<Arc<Coordinator>>,
    /// Number of worker threads.
    pub workers: usize,
    /// Number of key groups (maximum parallelism).
    pub key_groups: u32,
    cancelled: Arc<AtomicBool>,
    /// Set to stop where the job is, without flushing (stop with savepoint).
    pub(crate) halt: Arc<AtomicBool>,
    /// Records in flight between operators (backpressure).
    pub(crate) in_flight: InFlight,
    /// Sources pause while more records than this are in flight.
    pub(crate) max_in_flight: i64,
    active_sinks: AtomicU64,
    errors: Mutex<Vec<RuntimeError>>,
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    shared: Mutex<HashMap<(usize, TypeId), Arc<dyn Any + Send + Sync>>>,
}

impl JobContext {
    pub(crate) fn new(
        clock: SharedClock,
        manual_clock: Option<ManualClock>,
        workers: usize,
        key_groups: u32,
        cancel: &CancelHandle,
    ) -> Self {
        JobContext {
            clock,
            manual_clock,
            checkpoints: None,
            workers,
            key_groups,
            cancelled: cancel.flag.clone(),
            halt: Arc::new(AtomicBool::new(false)),
            in_flight: InFlight::default(),
            max_in_flight: i64::MAX,
            active_sinks: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
            counters: Mutex::new(BTreeMap::new()),
            shared: Mutex::new(HashMap::new()),
        }
    }

    /// Asks sources to stop reading; what was read still flows through and windows flush.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// Whether the job failed: operators then stop without flushing windows or
    /// committing output, so that a restart from the last checkpoint sees nothing of
    /// the failed attempt.
    pub fn is_failed(&self) -> bool {
        !self.errors.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// Whether the job stops where it is, without flushing windows or firing timers:
    /// it failed, or it was stopped with a savepoint (a later run continues from there).
    pub fn is_halted(&self) -> bool {
        self.halt.load(Ordering::SeqCst) || self.is_failed()
    }

    /// Whether sources should pause: too many records are in flight.
    pub(crate) fn is_backpressured(&self) -> bool {
        self.in_flight.get() > self.max_in_flight
    }

    /// How many records sources may still put in flight before they pause (at least 1,
    /// as long as they are not paused): sources read no more than this per activation, so
    /// that one read does not overshoot the bound by whole batches.
    pub(crate) fn read_budget(&self) -> usize {
        let left = self.max_in_flight.saturating_sub(self.in_flight.get()).max(1);
        usize::try_from(left).unwrap_or(usize::MAX)
    }

    pub(crate) fn sink_started(&self) {
        self.active_sinks.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn sink_finished(&self) {
        self.active_sinks.fetch_sub(1, Ordering::SeqCst);
    }

    /// Sinks still publishing output (the run waits for them).
    pub(crate) fn active_sinks(&self) -> u64 {
        self.active_sinks.load(Ordering::SeqCst)
    }

    /// Whether the job was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Records a failure and stops the sources: the job ends with this error.
    pub fn fail(&self, error: RuntimeError) {
        tracing::error!(%error, "job failed");
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).push(error);
        self.cancel();
    }

    /// The failures recorded so far.
    pub fn errors(&self) -> Vec<RuntimeError> {
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A named counter, created on first use.
    pub fn counter(&self, name: &str) -> Arc<AtomicU64> {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        c.entry(name.to_owned()).or_default().clone()
    }

    /// An object shared by the workers of one step in this run (for example a source's
    /// board of partition watermarks), created by the first worker that asks.
    pub(crate) fn shared<S: Send + Sync + 'static>(&self, step: usize, make: impl FnOnce() -> S) -> Arc<S> {
        let mut m = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = m.get(&(step, TypeId::of::<S>())) {
            if let Ok(s) = existing.clone().downcast::<S>() {
                return s;
            }
        }
        let fresh = Arc::new(make());
        m.insert((step, TypeId::of::<S>()), fresh.clone());
        fresh
    }

    /// Every counter's current value.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        c.iter().map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed))).collect()
    }
}

/// A handle to stop a running job from another thread (Ctrl-C, a time limit).
#[derive(Clone, Debug, Default)]
pub struct CancelHandle {
    pub(crate) flag: Arc<AtomicBool>,
}

impl CancelHandle {
    /// A handle not yet tied to a job.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the job to stop: sources finish, windows flush, the run returns.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }
    /// Whether cancel was called.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}
