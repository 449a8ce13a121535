//! Exactly-once sinks: output is written in one transaction per epoch, made durable when
//! the epoch ends (pre-commit, recorded in the checkpoint) and published only once the
//! checkpoint that covers it is complete (commit). After a failure, a restart publishes
//! what the restored checkpoint had pre-committed and discards everything else, so a
//! reader of the output sees every result exactly once.

use crate::checkpoint::Coordinator;
use crate::element::Element;
use crate::error::RuntimeError;
use crate::graph::{NodeId, NodeKind, PDone, Translation};
use crate::pcollection::PCollection;
use crate::time::FrontierTime;
use millstream_checkpoint::{BlobName, StatePart};
use millstream_model::WindowedValue;
use std::collections::BTreeMap;
use std::sync::Arc;
use timely::dataflow::channels::pact::Pipeline as Local;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::progress::frontier::MutableAntichain;

/// One worker's side of a two-phase-commit sink.
pub trait TransactionalWriter<T>: 'static {
    /// Writes a batch into the open transaction.
    fn write(&mut self, batch: &[WindowedValue<T>]) -> Result<(), String>;
    /// Ends the open transaction durably without publishing it (flush and sync); returns
    /// a handle that [`commit`](Self::commit) understands, stored in the checkpoint.
    fn pre_commit(&mut self, epoch: u64) -> Result<Vec<u8>, String>;
    /// Publishes pre-committed transactions. Must be idempotent: after a restart the same
    /// handles may be committed again.
    fn commit(&mut self, handles: &[Vec<u8>]) -> Result<(), String>;
    /// After a restore from checkpoint `restored` (an epoch), before any write:
    /// `pending` are that checkpoint's pre-committed transactions of this worker (they
    /// are committed next). Every other unpublished transaction of the failed attempt must
    /// be discarded, and so must output already published for epochs after `restored`
    /// (a newer checkpoint that committed but is now skipped as damaged), since those
    /// epochs are replayed.
    fn recover(&mut self, pending: &[Vec<u8>], restored: u64) -> Result<(), String>;
    /// After a restore, before [`recover`](Self::recover): the workers of the restored run
    /// whose transactions this worker takes over (those `w` with `w % workers == worker`,
    /// including its own index when it existed). A sink whose open transactions belong to
    /// a writer identity outside the checkpoint (Kafka's transactional ids) fences them
    /// here, so that none of them can still commit. By default, nothing.
    fn take_over(&mut self, restored_workers: &[usize]) -> Result<(), String> {
        let _ = restored_workers;
        Ok(())
    }
}

/// Creates the writers of a two-phase-commit sink.
pub trait TransactionalSink<T>: Send + Sync + 'static {
    /// Opens worker `worker`'s writer.
    fn open(&self, worker: usize, workers: usize) -> Result<Box<dyn TransactionalWriter<T>>, String>;
}

fn worker_blob(step: &str, worker: usize) -> BlobName {
    BlobName { operator: step.to_owned(), part: StatePart::Worker(worker as u32) }
}

struct SinkState<T> {
    step: String,
    /// The id its pending transactions are stored under.
    operator_id: String,
    writer: Box<dyn TransactionalWriter<T>>,
    coordinator: Option<Arc<Coordinator>>,
    worker: usize,
    /// Pre-committed, not yet committed: (epoch, handle).
    pending: BTreeMap<u64, Vec<u8>>,
    last_epoch: u64,
}

impl<T: 'static> SinkState<T> {
    /// Ends every epoch up to `upto`: pre-commit, record pending handles, acknowledge.
    fn end_epochs(&mut self, upto: u64) -> Result<(), String> {
        let Some(c) = self.coordinator.clone() else { return Ok(()) };
        while self.last_epoch < upto {
            let epoch = self.last_epoch + 1;
            let paused = std::time::Instant::now();
            let handle = self.writer.pre_commit(epoch)?;
            self.pending.insert(epoch, handle);
            let handles: Vec<&Vec<u8>> = self.pending.values().collect();
            let bytes = bincode::serialize(&handles).map_err(|e| e.to_string())?;
            c.write(epoch, worker_blob(&self.operator_id, self.worker), &bytes)?;
            c.report_pause(epoch, paused.elapsed());
            c.ack(epoch);
            self.last_epoch = epoch;
        }
        Ok(())
    }

    /// Commits what complete checkpoints cover.
    fn commit_completed(&mut self) -> Result<(), String> {
        let Some(c) = &self.coordinator else { return Ok(()) };
        let done = c.committed_epoch();
        let rest = self.pending.split_off(&(done + 1));
        let ready: Vec<Vec<u8>> = std::mem::replace(&mut self.pending, rest).into_values().collect();
        if !ready.is_empty() {
            self.writer.commit(&ready)?;
        }
        Ok(())
    }
}

impl<T: Element> PCollection<T> {
    /// Writes the collection to a two-phase-commit sink: with checkpointing, output is
    /// published per completed checkpoint (exactly once); without, when the input ends.
    pub fn write_exactly_once<S: TransactionalSink<T>>(&self, name: &str, sink: S) -> PDone {
        let input = self.port;
        let sink = Arc::new(sink);
        let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
            let stream = t.stream::<T>(input)?;
            let job = t.job.clone();
            let step = t.name(node).to_owned();
            let operator_id = t.operator_id(node).to_owned();
            let (worker, workers) = (t.scope.index(), t.scope.peers());
            let fail = |message: String| RuntimeError::Sink { sink: step.clone(), message };
            let mut writer = sink.open(worker, workers).map_err(fail)?;
            let coordinator = job.checkpoints.clone();
            let mut pending = BTreeMap::new();
            if let Some(c) = &coordinator {
                // This worker takes over the transactions of the restored workers w with
                // w % workers == worker (rescaling keeps every one).
                let old_workers = c.restored.as_ref().map_or(0, |m| m.workers as usize);
                let taken_over: Vec<usize> = (0..old_workers).filter(|ow| ow % workers == worker).collect();
                let mut restored: Vec<Vec<u8>> = Vec::new();
                for &ow in &taken_over {
                    if let Some(bytes) = c.restored_blob(&worker_blob(&operator_id, ow)).map_err(fail)? {
                        let handles: Vec<Vec<u8>> = bincode::deserialize(&bytes)
                            .map_err(|e| fail(format!("bad stored transactions: {e}")))?;
                        restored.extend(handles);
                    }
                }
                if !taken_over.is_empty() {
                    writer.take_over(&taken_over).map_err(fail)?;
                }
                writer.recover(&restored, c.rewind_epoch()).map_err(fail)?;
                // The restored checkpoint is complete: what it pre-committed is published.
                writer.commit(&restored).map_err(fail)?;
            }
            let first = coordinator.as_ref().map_or(0, |c| c.first_epoch());
            let mut state = SinkState {
                step: step.clone(),
                operator_id,
                writer,
                coordinator,
                worker,
                pending: std::mem::take(&mut pending),
                last_epoch: first.saturating_sub(1),
            };
            let mut builder = OperatorBuilder::new(step.clone(), t.scope);
            let activator = t.scope.activator_for(builder.operator_info().address);
            let mut input = builder.new_input(stream, Local);
            job.sink_started();
            let job_in_op = job.clone();
            let flow_in = t.flow_in();
            builder.build_reschedule(move |_caps| {
                let job = job_in_op;
                let mut stash: crate::align::EpochStash<T> = BTreeMap::new();
                let mut last_seen: u64 = first;
                let mut done = false;
                move |frontiers: &[MutableAntichain<FrontierTime>]| -> bool {
                    input.for_each(|cap, data| {
                        flow_in.received(data.len());
                        let epoch = cap.stamp().iter().map(|t| t.outer).min().unwrap_or(0);
                        stash.entry(epoch).or_default().push(std::mem::take(data));
                    });
                    if done {
                        return false;
                    }
                    if job.is_failed()
                        || (job.is_cancelled() && state.coordinator.is_some())
                        || job.is_halted()
                    {
                        // Stop: publish what complete checkpoints cover (after a stop with
                        // savepoint, everything up to the savepoint), nothing more; a
                        // restart recovers the rest.
                        if !job.is_failed() {
                            if let Err(message) = state.commit_completed() {
                                job.fail(RuntimeError::Sink { sink: state.step.clone(), message });
                            }
                        }
                        done = true;
                        job.sink_finished();
                        return false;
                    }
                    let current = crate::time::epoch_of(frontiers[0].frontier());
                    if let Some(c) = current {
                        last_seen = last_seen.max(c);
                    }
                    let current = current.unwrap_or(u64::MAX);
                    let mut result: Result<(), String> = Ok(());
                    while let Some(entry) = stash.first_entry() {
                        let epoch = *entry.key();
                        if epoch > current {
                            break;
                        }
                        result = result.and_then(|_| state.end_epochs(epoch.saturating_sub(1)));
                        for batch in entry.remove() {
                            result = result.and_then(|_| state.writer.write(&batch));
                        }
                    }
                    if current != u64::MAX {
                        result = result.and_then(|_| state.end_epochs(current.saturating_sub(1)));
                    }
                    result = result.and_then(|_| state.commit_completed());
                    if current == u64::MAX && result.is_ok() {
                        // Input complete: end the last epoch; publish it once its checkpoint
                        // completes (or right away without checkpointing).
                        if state.coordinator.is_some() {
                            let last = state
                                .coordinator
                                .as_ref()
                                .map_or(last_seen, |c| c.final_epoch().max(last_seen));
                            result = state.end_epochs(last).and_then(|_| state.commit_completed());
                            if result.is_ok() && state.pending.is_empty() {
                                done = true;
                            }
                        } else {
                            result =
                                state.writer.pre_commit(last_seen).and_then(|h| state.writer.commit(&[h]));
                            done = true;
                        }
                    }
                    if let Err(message) = result {
                        job.fail(RuntimeError::Sink { sink: state.step.clone(), message });
                        done = true;
                    }
                    if done {
                        job.sink_finished();
                        return false;
                    }
                    if !state.pending.is_empty() {
                        activator.activate_after(std::time::Duration::from_millis(5));
                    }
                    // Stay alive while transactions wait for their checkpoint.
                    current == u64::MAX
                }
            });
            Ok(())
        });
        let node = self.pipeline.add_node(name, NodeKind::Sink, vec![input], build);
        self.pipeline.set_checkpointed(node, true);
        PDone::new(self.pipeline.clone(), node)
    }
}
