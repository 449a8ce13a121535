//! Sources: how data enters a pipeline, and how its timestamps and watermarks arise.
//!
//! A [`Source`] is split into partitions, each read by one [`SourceReader`]; worker `w`
//! reads the partitions `p` with `p % workers == w`. Each partition has its own
//! watermark from the source's [`WatermarkStrategy`]; the worker's output watermark is
//! the minimum over its partitions that are not idle, and the pipeline's is the minimum
//! over workers (timely's frontier).

use crate::checkpoint::{Coordinator, StoredPosition};
use crate::dead_letter::DeadLetter;
use crate::element::Element;
use crate::error::RuntimeError;
use crate::graph::{NodeId, NodeKind, Pipeline, PortRef, Translation};
use crate::keyed_snapshot::Background;
use crate::pcollection::PCollection;
use crate::time::{frontier_time, FrontierTime};
use millstream_checkpoint::{BlobName, StatePart};
use millstream_model::{Duration, Timestamp, WindowedValue, WindowingStrategy};
use std::fmt;
use std::sync::{Arc, Mutex};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;

/// An error reading a source, with where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// Where: file and line, partition and offset, ...
    pub location: String,
    /// What went wrong.
    pub message: String,
}

impl SourceError {
    /// An error at `location`.
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        SourceError { location: location.into(), message: message.into() }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl std::error::Error for SourceError {}

/// What a read call found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStatus {
    /// Records were read (or may be read right away).
    Data,
    /// Nothing available now; try again later.
    Waiting,
    /// The partition is exhausted (bounded input).
    Finished,
}

/// Reads one partition of a source.
pub trait SourceReader<T>: Send {
    /// Appends up to `max` records with their event timestamps to `out`.
    fn read(&mut self, out: &mut Vec<(T, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError>;

    /// The partition's watermark, for [`WatermarkKind::FromSource`].
    fn watermark(&self) -> Option<Timestamp> {
        None
    }

    /// A description of the reader's position (file and line, offset), for messages.
    fn position(&self) -> String {
        String::new()
    }

    /// The position to resume from after everything read so far, for checkpoints; `None`
    /// when the partition cannot be replayed (then the job cannot checkpoint).
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        None
    }

    /// Moves the records this reader routed aside since the last call (its bad-record
    /// policy said so) into `out`; the runtime emits them on the source's dead-letter
    /// output. By default a reader routes nothing aside.
    fn take_dead_letters(&mut self, out: &mut Vec<DeadLetter>) {
        let _ = out;
    }
}

/// How a partition's watermark follows the timestamps it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatermarkKind {
    /// Timestamps arrive in order: the watermark is the latest timestamp read (a perfect
    /// watermark for ordered data).
    InOrder,
    /// Timestamps are at most this much out of order: the watermark trails the latest
    /// timestamp read by the bound (a heuristic watermark; later data is late).
    BoundedOutOfOrderness(Duration),
    /// The reader reports the watermark itself ([`SourceReader::watermark`]).
    FromSource,
}

/// How a source's watermarks arise, per partition, and when an idle partition stops
/// holding them back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatermarkStrategy {
    /// Per-partition watermark rule.
    pub kind: WatermarkKind,
    /// After this much processing time without data, a partition is idle and no longer
    /// holds the watermark back (until it has data again).
    pub idle_timeout: Option<Duration>,
}

impl WatermarkStrategy {
    /// In-order timestamps, no idleness.
    pub fn in_order() -> Self {
        WatermarkStrategy { kind: WatermarkKind::InOrder, idle_timeout: None }
    }
    /// Timestamps out of order by at most `bound`.
    pub fn bounded_out_of_orderness(bound: Duration) -> Self {
        WatermarkStrategy { kind: WatermarkKind::BoundedOutOfOrderness(bound), idle_timeout: None }
    }
    /// Watermarks reported by the reader.
    pub fn from_source() -> Self {
        WatermarkStrategy { kind: WatermarkKind::FromSource, idle_timeout: None }
    }
    /// Marks a partition idle after `timeout` without data.
    pub fn with_idleness(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }
}

/// A splittable input: Beam's source, Flink's source function.
pub trait Source<T>: Send + Sync + 'static {
    /// How many partitions the source has when read by `workers` workers.
    fn partitions(&self, workers: usize) -> Result<usize, SourceError>;
    /// Opens partition `partition` (of `partitions`).
    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<T>>, SourceError>;
    /// How timestamps and watermarks arise.
    fn watermarks(&self) -> WatermarkStrategy {
        WatermarkStrategy::in_order()
    }

    /// Opens partition `partition` at a position its reader reported in
    /// [`SourceReader::checkpoint_position`] (after a restore).
    fn reopen(
        &self,
        partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        let _ = (partition, partitions, position);
        Err(SourceError::new(format!("partition {partition}"), "this source cannot resume from a checkpoint"))
    }
}

/// The shared view of every partition's watermark, so that a worker whose partitions are
/// all idle follows the others instead of holding the pipeline back.
#[derive(Debug, Default)]
struct WatermarkBoard {
    /// Per partition: its watermark and whether it is active (not idle, not finished).
    marks: Mutex<Vec<(Timestamp, bool)>>,
}

impl WatermarkBoard {
    fn publish(&self, partition: usize, partitions: usize, mark: Timestamp, active: bool) {
        let mut m = self.marks.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() < partitions {
            m.resize(partitions, (Timestamp::MIN, true));
        }
        m[partition] = (mark, active);
    }

    /// The least watermark of the active partitions, or the greatest of all when none is
    /// active.
    fn global(&self) -> Option<Timestamp> {
        let m = self.marks.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().filter(|(_, a)| *a).map(|(t, _)| *t).min().or_else(|| m.iter().map(|(t, _)| *t).max())
    }
}

struct PartitionReader<T> {
    index: usize,
    /// `None` once restored as finished.
    reader: Option<Box<dyn SourceReader<T>>>,
    max_timestamp: Option<Timestamp>,
    last_data: Timestamp,
    finished: bool,
}

const READ_BATCH: usize = 1024;

fn partition_blob(operator_id: &str, partition: usize) -> BlobName {
    BlobName { operator: operator_id.to_owned(), part: StatePart::SourcePartition(partition as u32) }
}

/// A source instance's side of checkpointing: it ends an epoch every interval,
/// recording its partitions' positions at that cut.
struct EpochClock {
    coordinator: Arc<Coordinator>,
    /// The source's operator id (positions are stored under it).
    operator_id: String,
    /// The epoch records are currently emitted in.
    epoch: u64,
    next_at: std::time::Instant,
    /// The positions of the last epoch ended, being written.
    background: Background,
}

impl EpochClock {
    fn new(coordinator: Arc<Coordinator>, operator_id: &str) -> Self {
        let next_at = std::time::Instant::now() + coordinator.interval().to_std();
        EpochClock {
            epoch: coordinator.first_epoch(),
            coordinator,
            operator_id: operator_id.to_owned(),
            next_at,
            background: Background::default(),
        }
    }

    /// Whether to end the epoch now: the interval is over, or a savepoint was requested
    /// while it was in progress.
    fn due(&self) -> bool {
        std::time::Instant::now() >= self.next_at || self.epoch <= self.coordinator.forced_through()
    }

    fn millis_until_due(&self) -> i64 {
        self.next_at.saturating_duration_since(std::time::Instant::now()).as_millis() as i64
    }

    fn stored<T>(r: &PartitionReader<T>) -> Result<StoredPosition, String> {
        if r.finished {
            return Ok(StoredPosition::Finished);
        }
        match r.reader.as_ref().and_then(|x| x.checkpoint_position()) {
            Some(p) => Ok(StoredPosition::At(p)),
            None => Err(format!("partition {} cannot be replayed, so it cannot be checkpointed", r.index)),
        }
    }

    /// Records every partition's position as the end of the current epoch, then starts
    /// the next. The positions are taken here; they are written (and the epoch
    /// acknowledged) on a background thread, so that reading goes on meanwhile. One such
    /// write at a time: the next epoch's end waits for the previous one.
    fn end_epoch<T>(&mut self, readers: &[PartitionReader<T>]) -> Result<(), String> {
        let paused = std::time::Instant::now();
        self.background.finish(true)?;
        let mut blobs = Vec::with_capacity(readers.len());
        for r in readers {
            let bytes = bincode::serialize(&Self::stored(r)?).map_err(|e| e.to_string())?;
            blobs.push((partition_blob(&self.operator_id, r.index), bytes));
        }
        let (coordinator, epoch) = (self.coordinator.clone(), self.epoch);
        self.background.spawn(epoch, move || {
            for (name, bytes) in blobs {
                coordinator.write(epoch, name, &bytes)?;
            }
            coordinator.ack(epoch);
            Ok(())
        })?;
        self.coordinator.report_pause(epoch, paused.elapsed());
        self.epoch += 1;
        self.coordinator.epoch_started(self.epoch);
        self.next_at = std::time::Instant::now() + self.coordinator.interval().to_std();
        Ok(())
    }

    /// Reports the failure of the last epoch's background write, if it failed.
    fn check(&mut self) -> Result<(), String> {
        self.background.finish(false)
    }

    /// All partitions are exhausted: their final positions stand for every later epoch.
    fn retire<T>(&mut self, readers: &[PartitionReader<T>]) {
        // After the last epoch's positions: a retirement stands for every later epoch.
        if let Err(e) = self.background.finish(true) {
            tracing::warn!(error = %e, "could not record the positions of the last epoch");
        }
        let mut last = Vec::new();
        for r in readers {
            let name = partition_blob(&self.operator_id, r.index);
            let bytes = bincode::serialize(&StoredPosition::Finished).unwrap_or_default();
            match self.coordinator.write(self.epoch, name.clone(), &bytes) {
                Ok(Some(file)) => last.push((name, file)),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not record a finished partition"),
            }
        }
        self.coordinator.retire(self.epoch, last);
    }
}

impl Pipeline {
    /// Reads a source. Elements start in the global window.
    pub fn read<T: Element, S: Source<T>>(&self, name: &str, source: S) -> PCollection<T> {
        self.read_source(name, source, false).0
    }

    /// Reads a source, also returning its dead-letter output: the records its readers
    /// routed aside with their errors (see [`DeadLetter`]), counted in
    /// `<step>/dead_letters`. With plain [`read`](Self::read), a record routed aside fails
    /// the job instead, since nothing would receive it.
    pub fn read_with_dead_letters<T: Element, S: Source<T>>(
        &self,
        name: &str,
        source: S,
    ) -> (PCollection<T>, PCollection<DeadLetter>) {
        self.read_source(name, source, true)
    }

    fn read_source<T: Element, S: Source<T>>(
        &self,
        name: &str,
        source: S,
        dead_letters_read: bool,
    ) -> (PCollection<T>, PCollection<DeadLetter>) {
        let source = Arc::new(source);
        let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
            let job = t.job.clone();
            let step = t.name(node).to_owned();
            let operator_id = t.operator_id(node).to_owned();
            let (index, workers) = (t.scope.index(), t.scope.peers());
            let fail =
                |e: SourceError| RuntimeError::Source { source_name: step.clone(), message: e.to_string() };
            let partitions = source.partitions(workers).map_err(fail)?;
            let strategy = source.watermarks();
            // One board per source per run, shared by the workers.
            let board: Arc<WatermarkBoard> = job.shared(node, WatermarkBoard::default);
            let checkpoints = job.checkpoints.clone();
            let mut readers = Vec::new();
            for p in (0..partitions).filter(|p| p % workers == index) {
                let stored = match &checkpoints {
                    Some(c) => c
                        .restored_blob(&partition_blob(&operator_id, p))
                        .map_err(|m| fail(SourceError::new(format!("partition {p}"), m)))?
                        .map(|b| bincode::deserialize::<StoredPosition>(&b))
                        .transpose()
                        .map_err(|e| {
                            fail(SourceError::new(
                                format!("partition {p}"),
                                format!("bad stored position: {e}"),
                            ))
                        })?,
                    None => None,
                };
                let (reader, finished) = match stored {
                    Some(StoredPosition::Finished) => (None, true),
                    Some(StoredPosition::At(position)) => {
                        (Some(source.reopen(p, partitions, &position).map_err(fail)?), false)
                    }
                    None => (Some(source.open(p, partitions).map_err(fail)?), false),
                };
                readers.push(PartitionReader {
                    index: p,
                    reader,
                    max_timestamp: None,
                    last_data: job.clock.now(),
                    finished,
                });
                board.publish(
                    p,
                    partitions,
                    if finished { Timestamp::MAX } else { Timestamp::MIN },
                    !finished,
                );
            }
            let mut epochs = checkpoints.as_ref().map(|c| EpochClock::new(c.clone(), &operator_id));
            let flow_out = t.flow_out(PortRef { node, port: 0 });
            let dead_flow = t.flow_out(PortRef { node, port: 1 });
            let dead_counter = job.counter(&format!("{step}/dead_letters"));
            // Records read, for throughput reports (one atomic add per batch).
            let records_counter = job.counter(&format!("{step}/records"));
            let mut builder = OperatorBuilder::new(step.clone(), t.scope);
            let activator = t.scope.activator_for(builder.operator_info().address);
            let (main_out, stream) = builder.new_output::<Vec<WindowedValue<T>>>();
            let (dead_out, dead_stream) = builder.new_output::<Vec<WindowedValue<DeadLetter>>>();
            let mut main_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(main_out);
            let mut dead_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(dead_out);
            builder.build(move |mut caps| {
                // The dead-letter capability follows the main one.
                let mut dead_cap: Option<Capability<FrontierTime>> = caps.pop();
                let mut cap: Option<Capability<FrontierTime>> = caps.pop();
                let mut dead: Vec<DeadLetter> = Vec::new();
                let mut dead_batch: Vec<WindowedValue<DeadLetter>> = Vec::new();
                let mut watermark = Timestamp::MIN;
                let mut records: Vec<(T, Timestamp)> = Vec::with_capacity(READ_BATCH);
                let mut batch: Vec<WindowedValue<T>> = Vec::with_capacity(READ_BATCH);
                let job = job.clone();
                let step = step.clone();
                if let Some(ep) = epochs.as_ref() {
                    for c in [cap.as_mut(), dead_cap.as_mut()].into_iter().flatten() {
                        c.downgrade(&frontier_time(ep.epoch, Timestamp::MIN));
                    }
                }
                move |_frontiers| {
                    let Some(c) = cap.as_mut() else {
                        dead_cap = None;
                        return;
                    };
                    let now = job.clock.now();
                    let mut any_data = false;
                    let cancelled = job.is_cancelled() || job.is_halted();
                    // Backpressure: while too many records are queued downstream, read
                    // nothing (watermarks, idleness and epochs carry on below).
                    let paused = !cancelled && job.is_backpressured();
                    if paused {
                        // Not reading is not being idle: the partitions keep holding the
                        // watermark back.
                        for r in readers.iter_mut().filter(|r| !r.finished) {
                            r.last_data = now;
                        }
                    }
                    // Shared by the partitions still reading, so that one activation does not
                    // put far more than the job's bound in flight (a full batch each, at most).
                    let mut budget = job.read_budget();
                    let reading = readers.iter().filter(|r| !r.finished).count().max(1);
                    for r in readers.iter_mut().filter(|r| !r.finished && !paused) {
                        if cancelled {
                            r.finished = true;
                            board.publish(r.index, partitions, Timestamp::MAX, false);
                            continue;
                        }
                        records.clear();
                        let Some(reader) = r.reader.as_mut() else {
                            r.finished = true;
                            continue;
                        };
                        let max = READ_BATCH.min((budget / reading).max(1));
                        match reader.read(&mut records, max) {
                            Ok(status) => {
                                if status == ReadStatus::Finished {
                                    r.finished = true;
                                }
                                if status == ReadStatus::Data {
                                    any_data = true;
                                }
                            }
                            Err(e) => {
                                job.fail(RuntimeError::Source {
                                    source_name: step.clone(),
                                    message: format!("partition {}: {e}", r.index),
                                });
                                r.finished = true;
                            }
                        }
                        if let Some(reader) = r.reader.as_mut() {
                            reader.take_dead_letters(&mut dead);
                        }
                        if !dead.is_empty() {
                            if !dead_letters_read {
                                let first = &dead[0];
                                job.fail(RuntimeError::Source {
                                    source_name: step.clone(),
                                    message: format!(
                                        "partition {}: {}: {} (the record was routed to the dead-letter output, \
                                         which the pipeline does not read: use read_with_dead_letters)",
                                        r.index, first.location, first.error
                                    ),
                                });
                                dead.clear();
                            }
                            dead_counter.fetch_add(dead.len() as u64, std::sync::atomic::Ordering::Relaxed);
                            for mut d in dead.drain(..) {
                                if d.step.is_empty() {
                                    d.step.clone_from(&step);
                                }
                                dead_batch.push(WindowedValue::in_global_window(d, Timestamp(c.time().inner)));
                            }
                        }
                        budget = budget.saturating_sub(records.len());
                        if !records.is_empty() {
                            r.last_data = now;
                            for (value, ts) in records.drain(..) {
                                r.max_timestamp = Some(r.max_timestamp.map_or(ts, |m| m.max(ts)));
                                batch.push(WindowedValue::in_global_window(value, ts));
                            }
                        }
                    }
                    if !batch.is_empty() {
                        flow_out.sent(batch.len());
                        records_counter.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
                        main_out.activate().session(&*c).give_container(&mut batch);
                        batch.clear();
                    }
                    if let Some(d) = dead_cap.as_ref().filter(|_| !dead_batch.is_empty()) {
                        dead_flow.sent(dead_batch.len());
                        dead_out.activate().session(d).give_container(&mut dead_batch);
                        dead_batch.clear();
                    }
                    // Per-partition watermarks; idle and finished partitions do not count.
                    let mut worker_mark: Option<Timestamp> = None;
                    for r in readers.iter() {
                        if r.finished {
                            board.publish(r.index, partitions, Timestamp::MAX, false);
                            continue;
                        }
                        let mark = match strategy.kind {
                            WatermarkKind::InOrder => r.max_timestamp.unwrap_or(Timestamp::MIN),
                            WatermarkKind::BoundedOutOfOrderness(b) => {
                                r.max_timestamp.map_or(Timestamp::MIN, |m| m - b)
                            }
                            WatermarkKind::FromSource => {
                                r.reader.as_ref().and_then(|x| x.watermark()).unwrap_or(Timestamp::MIN)
                            }
                        };
                        let idle = strategy.idle_timeout.is_some_and(|timeout| now - r.last_data >= timeout);
                        board.publish(r.index, partitions, mark, !idle);
                        if !idle {
                            worker_mark = Some(worker_mark.map_or(mark, |w| w.min(mark)));
                        }
                    }
                    if readers.iter().all(|r| r.finished) {
                        // Exhausted for good (not stopped): the final positions stand for
                        // every later checkpoint.
                        if let Some(ep) = epochs.as_mut() {
                            if !job.is_failed() && !cancelled {
                                ep.retire(&readers);
                            }
                        }
                        cap = None;
                        dead_cap = None;
                        return;
                    }
                    // End the epoch at this cut: every record emitted so far belongs to it.
                    if let Some(ep) = epochs.as_mut() {
                        // (A failed background write of the last epoch's positions fails the
                        // job here, at the latest when the next epoch ends.)
                        let ended = if ep.due() { ep.end_epoch(&readers).map(Some) } else { Ok(None) };
                        match ended.and_then(|e| ep.check().map(|()| e)) {
                            Ok(Some(())) => c.downgrade(&frontier_time(ep.epoch, Timestamp(c.time().inner))),
                            Ok(None) => {}
                            Err(message) => job.fail(RuntimeError::Source {
                                source_name: step.clone(),
                                message: format!("checkpoint: {message}"),
                            }),
                        }
                    }
                    let mark = worker_mark.or_else(|| board.global()).unwrap_or(watermark);
                    // Watermarks never go back, even when an idle partition wakes up behind.
                    watermark = watermark.max(mark).min(Timestamp::MAX);
                    let next = frontier_time(c.time().outer, watermark);
                    if c.time().inner < next.inner {
                        c.downgrade(&next);
                    }
                    if let Some(d) = dead_cap.as_mut() {
                        if d.time() != c.time() {
                            d.downgrade(c.time());
                        }
                    }
                    if paused {
                        activator.activate_after(std::time::Duration::from_millis(1));
                    } else if any_data {
                        activator.activate();
                    } else {
                        let wait = epochs.as_ref().map_or(5, |ep| ep.millis_until_due().clamp(0, 5));
                        activator.activate_after(std::time::Duration::from_millis(wait as u64));
                    }
                }
            });
            t.insert(PortRef { node, port: 0 }, stream);
            t.insert(PortRef { node, port: 1 }, dead_stream);
            Ok(())
        });
        let node = self.add_node(name, NodeKind::Source, vec![], build);
        let global = Arc::new(WindowingStrategy::global());
        (
            PCollection::from_port(self.clone(), PortRef { node, port: 0 }, global.clone()),
            PCollection::from_port(self.clone(), PortRef { node, port: 1 }, global),
        )
    }
}
