//! [`Runner`]: executes a pipeline on timely dataflow worker threads.

use crate::checkpoint::{CheckpointConfig, CheckpointStats, Coordinator};
use crate::clock::{ManualClock, SharedClock, SystemClock};
use crate::context::{CancelHandle, JobContext};
use crate::error::RuntimeError;
use crate::graph::{Pipeline, Translation};
use crate::key::DEFAULT_KEY_GROUPS;
use crate::optimizer::{OptimizerOptions, Plan};
use crate::savepoint::{RequestWatcher, Savepoint, SavepointHandle, SavepointQueue};
use crate::time::FrontierTime;
use millstream_model::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;
use timely::dataflow::operators::probe::Handle as ProbeHandle;

/// The default bound of records in flight per worker (see [`Runner::max_in_flight`]):
/// enough for sources to read ahead a few batches, small enough to keep queues short.
pub const DEFAULT_MAX_IN_FLIGHT_PER_WORKER: usize = 64 * 1024;

/// Runs pipelines: `workers` threads (default: the number of cores), each running the
/// whole dataflow on its share of the data, exchanging elements by key for grouping.
#[derive(Clone, Debug)]
pub struct Runner {
    workers: usize,
    key_groups: u32,
    clock: Option<SharedClock>,
    cancel: CancelHandle,
    checkpointing: Option<CheckpointConfig>,
    savepoints: Arc<SavepointQueue>,
    max_in_flight: Option<usize>,
    optimizer: OptimizerOptions,
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct PipelineResult {
    /// Named counters: `<source step>/records` (records read), `<step>/dropped_late`,
    /// `<step>/dead_letters`.
    pub counters: BTreeMap<String, u64>,
    /// Savepoints taken during the run (the last one stopped it if it asked to).
    pub savepoints: Vec<Savepoint>,
    /// The checkpoints completed during the run, with what each cost.
    pub checkpoints: Vec<CheckpointStats>,
}

impl PipelineResult {
    /// A counter's value, 0 if it never counted.
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// The sum of the counters whose names end with `suffix`.
    pub fn counter_total(&self, suffix: &str) -> u64 {
        self.counters.iter().filter(|(k, _)| k.ends_with(suffix)).map(|(_, v)| v).sum()
    }
}

impl Runner {
    /// A runner with one worker per core.
    pub fn new() -> Self {
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Runner {
            workers,
            key_groups: DEFAULT_KEY_GROUPS,
            clock: None,
            cancel: CancelHandle::new(),
            checkpointing: None,
            savepoints: Arc::default(),
            max_in_flight: None,
            optimizer: OptimizerOptions::default(),
        }
    }

    /// Sets the number of worker threads.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Sets the number of key groups (the maximum parallelism; default 128).
    pub fn key_groups(mut self, key_groups: u32) -> Self {
        self.key_groups = key_groups.max(1);
        self
    }

    /// Bounds the records in flight between operators (backpressure): sources pause
    /// while more than `records` are queued anywhere in the job, and read no more than
    /// what is left of it at a time, so a slow operator or sink slows the sources down and
    /// memory stays bounded. Default:
    /// [`DEFAULT_MAX_IN_FLIGHT_PER_WORKER`] per worker.
    pub fn max_in_flight(mut self, records: usize) -> Self {
        self.max_in_flight = Some(records.max(1));
        self
    }

    /// Sets which optimizations run (fusion, combiner lifting; see
    /// [`OptimizerOptions`]). Default: all on, unless the `MILLSTREAM_OPTIMIZER`
    /// environment variable says otherwise. [`Pipeline::plan`] shows their effect.
    pub fn optimizer(mut self, options: OptimizerOptions) -> Self {
        self.optimizer = options;
        self
    }

    /// Uses `clock` for processing time instead of the system clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Takes consistent checkpoints as `config` says, and resumes from the newest complete
    /// one found in its store.
    pub fn checkpointing(mut self, config: CheckpointConfig) -> Self {
        self.checkpointing = Some(config);
        self
    }

    /// A handle that stops the job when cancelled (sources finish, windows flush).
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// A handle that triggers savepoints of the job this runner runs (it needs
    /// checkpointing). Savepoints can also be requested through the checkpoint store
    /// (`millstream savepoint`): the runner watches its `requests/` directory.
    pub fn savepoint_handle(&self) -> SavepointHandle {
        SavepointHandle { queue: self.savepoints.clone() }
    }

    /// Runs the pipeline to completion: until every source is exhausted (or the job is
    /// cancelled) and all its data has been processed. Then checks its assertions.
    pub fn run(&self, pipeline: &Pipeline) -> Result<PipelineResult, RuntimeError> {
        let stateful_ids = pipeline.checkpointed_operator_ids()?;
        let (builds, names, operator_ids, manual, participants) = {
            let g = pipeline.lock();
            let builds = Plan::new(&g, &self.optimizer).steps(&g);
            let names: Vec<_> = g.nodes.iter().map(|n| n.name.clone()).collect();
            let operator_ids: Vec<_> = g.nodes.iter().map(|n| n.operator_id().to_owned()).collect();
            let participants = g.nodes.iter().filter(|n| n.checkpointed).count();
            (builds, names, operator_ids, g.uses_manual_clock, participants)
        };
        if self.workers > self.key_groups as usize {
            return Err(RuntimeError::Config(format!(
                "{} workers but only {} key groups: workers must not exceed key groups",
                self.workers, self.key_groups
            )));
        }
        let (clock, manual_clock): (SharedClock, Option<ManualClock>) = match (&self.clock, manual) {
            (Some(c), _) => (c.clone(), None),
            (None, true) => {
                let m = ManualClock::starting_at(Timestamp::from_millis(0));
                (Arc::new(m.clone()), Some(m))
            }
            (None, false) => (Arc::new(SystemClock), None),
        };
        let mut job = JobContext::new(clock, manual_clock, self.workers, self.key_groups, &self.cancel);
        job.max_in_flight = self
            .max_in_flight
            .unwrap_or(DEFAULT_MAX_IN_FLIGHT_PER_WORKER * self.workers)
            .min(i64::MAX as usize) as i64;
        self.savepoints.open();
        if self.checkpointing.is_none() {
            self.savepoints.close("savepoints need checkpointing: the job has no checkpoint store");
        }
        if let Some(config) = &self.checkpointing {
            let coordinator = Coordinator::new(
                config.clone(),
                participants * self.workers,
                self.key_groups,
                self.workers as u32,
                self.savepoints.clone(),
                job.halt.clone(),
            )
            .map_err(RuntimeError::Config)?;
            if let Some(m) = &coordinator.restored {
                if m.key_groups != self.key_groups {
                    return Err(RuntimeError::Config(format!(
                        "checkpoint {} was taken with {} key groups, the job has {}",
                        m.id, m.key_groups, self.key_groups
                    )));
                }
                check_restored_operators(m, &stateful_ids, config.allow_non_restored_state)?;
            }
            job.checkpoints = Some(Arc::new(coordinator));
        }
        let job = Arc::new(job);
        let watcher = self
            .checkpointing
            .as_ref()
            .map(|c| RequestWatcher::start(c.store.clone(), self.savepoint_handle()));
        let worker_job = job.clone();
        let config = timely::Config::process(self.workers);
        let guards = timely::execute(config, move |worker| {
            let probe = ProbeHandle::<FrontierTime>::new();
            let job = worker_job.clone();
            // Timely's root scope needs a totally ordered time; the pipeline lives in a
            // child scope whose time is (epoch, watermark).
            worker.dataflow::<u64, _, _>(|root| {
                root.scoped::<FrontierTime, _, _>("Millstream", |scope| {
                    let mut t = Translation::new(scope, job.clone(), probe.clone());
                    t.names = names.clone();
                    t.operator_ids = operator_ids.clone();
                    for step in &builds {
                        if let Err(e) = (step.build)(&mut t, step.node) {
                            job.fail(e);
                            break;
                        }
                    }
                    t.drain_unread_outputs();
                })
            });
            while !probe.done() || job.active_sinks() > 0 {
                worker.step_or_park(Some(std::time::Duration::from_millis(20)));
            }
        })
        .map_err(RuntimeError::Worker);
        let joined = guards.map(|g| g.join().into_iter().collect::<Result<Vec<()>, String>>());
        self.savepoints.close("the job ended before a checkpoint completed after the savepoint request");
        if let Some(w) = watcher {
            w.finish();
        }
        joined?.map_err(RuntimeError::Worker)?;
        if let Some(e) = job.errors().into_iter().next() {
            return Err(e);
        }
        let failures: Vec<String> = {
            let g = pipeline.lock();
            g.assertions
                .iter()
                .filter_map(|a| (a.check)().err().map(|e| format!("{}: {e}", a.name)))
                .collect()
        };
        if !failures.is_empty() {
            return Err(RuntimeError::Assertion(failures.join("\n")));
        }
        let savepoints = self.savepoints.completed.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let checkpoints = job.checkpoints.as_ref().map(|c| c.stats()).unwrap_or_default();
        Ok(PipelineResult { counters: job.counters(), savepoints, checkpoints })
    }
}

/// Fails when the restored checkpoint holds state of operators the job no longer has,
/// unless the user allowed dropping it (then each dropped operator is logged).
fn check_restored_operators(
    manifest: &millstream_checkpoint::Manifest,
    job_operators: &[String],
    allow_non_restored_state: bool,
) -> Result<(), RuntimeError> {
    let known: std::collections::BTreeSet<&str> = job_operators.iter().map(String::as_str).collect();
    let unknown: std::collections::BTreeSet<&str> =
        manifest.entries.keys().map(|n| n.operator.as_str()).filter(|op| !known.contains(op)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let list = unknown.iter().map(|op| format!("{op:?}")).collect::<Vec<_>>().join(", ");
    if allow_non_restored_state {
        tracing::warn!(checkpoint = manifest.id, operators = %list, "dropping state of operators the job no longer has");
        return Ok(());
    }
    Err(RuntimeError::Config(format!(
        "checkpoint {} holds state of operator(s) {list} that the job does not have; give the stateful \
         steps their old ids with with_operator_id, or allow dropping that state \
         (CheckpointConfig::allow_non_restored_state, --allow-non-restored-state)",
        manifest.id
    )))
}
