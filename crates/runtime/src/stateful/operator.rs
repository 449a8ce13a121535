//! The stateful ParDo operator: the sibling of the grouping operator. Elements are
//! exchanged by key; each worker runs an [`Executor`] over its keys and holds one
//! capability at `(least input epoch, min(input watermark, pending timers' output
//! timestamps))`, which is the step's output watermark.

use super::executor::{Executor, Times};
use super::StatefulDoFn;
use crate::align::{stamp_of, EpochAligner};
use crate::dofn::{guarded, UserError};
use crate::element::Element;
use crate::error::RuntimeError;
use crate::flow::{send_counted, FlowOut};
use crate::graph::{NodeId, NodeKind, PortRef, Translation};
use crate::key::{worker_for_key, Key};
use crate::keyed_snapshot::KeyedCheckpointing;
use crate::pcollection::PCollection;
use crate::time::{frontier_time, input_progress, FrontierTime};
use millstream_model::{Timestamp, WindowedValue};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;

impl<K: Key, V: Element> PCollection<(K, V)> {
    /// Applies a [`StatefulDoFn`] to every `(key, value)` (Beam's stateful `ParDo`): the
    /// DoFn gets the state of the element's key and window, and may set timers for them.
    ///
    /// Elements are partitioned by key, so each key's state is updated by one worker, in
    /// the order its elements arrive. Elements of windows that have already expired (the
    /// input watermark is past their end plus the allowed lateness) are dropped and
    /// counted in `<step>/dropped_late`. An error or a panic in the DoFn fails the job,
    /// naming the step. The output keeps the input's windowing.
    ///
    /// Merging windows (sessions) are not supported, as in Beam: the job fails with an
    /// error when it starts.
    ///
    /// ```
    /// use millstream_runtime::stateful::{StatefulContext, StatefulDoFn, ValueState};
    /// use millstream_runtime::{Pipeline, Runner, UserError};
    ///
    /// /// Numbers each key's elements: (key, 1), (key, 2), ...
    /// #[derive(Clone)]
    /// struct Number;
    /// impl StatefulDoFn<String, i64> for Number {
    ///     type Output = (String, u64);
    ///     type State = ValueState<u64>;
    ///     fn process(
    ///         &mut self,
    ///         key: &String,
    ///         _value: i64,
    ///         seen: &mut ValueState<u64>,
    ///         ctx: &mut StatefulContext<'_, (String, u64)>,
    ///     ) -> Result<(), UserError> {
    ///         let n = seen.read().copied().unwrap_or(0) + 1;
    ///         seen.write(n);
    ///         ctx.output((key.clone(), n));
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let p = Pipeline::new();
    /// let numbered = p
    ///     .create(vec![("a".to_string(), 7i64), ("b".to_string(), 1), ("a".to_string(), 9)])
    ///     .stateful_par_do("Number", Number)
    ///     .collect();
    /// Runner::new().workers(2).run(&p).unwrap();
    /// let mut got = numbered.values();
    /// got.sort();
    /// assert_eq!(got, vec![("a".to_string(), 1), ("a".to_string(), 2), ("b".to_string(), 1)]);
    /// ```
    pub fn stateful_par_do<D: StatefulDoFn<K, V>>(&self, name: &str, dofn: D) -> PCollection<D::Output> {
        let in_port = self.port;
        let strategy = self.strategy.clone();
        let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
            let step = t.name(node).to_owned();
            if strategy.window_fn.is_merging() {
                return Err(RuntimeError::Config(format!(
                    "step {step}: a stateful DoFn needs non-merging windows, not {} (state is per window, \
                     and merged windows cannot merge arbitrary user state)",
                    strategy.window_fn.describe()
                )));
            }
            let stream = t.stream::<(K, V)>(in_port)?;
            let job = t.job.clone();
            let (workers, key_groups) = (job.workers, job.key_groups);
            let worker = t.scope.index();
            let operator_id = t.operator_id(node).to_owned();
            let exchange = Exchange::new(move |wv: &WindowedValue<(K, V)>| {
                worker_for_key(&wv.value.0, key_groups, workers) as u64
            });
            let mut builder = OperatorBuilder::new(step.clone(), t.scope);
            let address = builder.operator_info().address;
            let activator = t.scope.activator_for(address);
            let mut input = builder.new_input(stream, exchange);
            let (output, out_stream) = builder.new_output::<Vec<WindowedValue<D::Output>>>();
            let mut output = OutputBuilder::<_, timely::container::CapacityContainerBuilder<_>>::from(output);
            let dropped = job.counter(&format!("{step}/dropped_late"));
            let (flow_in, flow_out) = (t.flow_in(), t.flow_out(PortRef { node, port: 0 }));
            let mut dofn = dofn.clone();
            let mut failed = false;
            if let Err(e) = guarded(|| {
                dofn.setup();
                Ok::<(), UserError>(())
            }) {
                job.fail(RuntimeError::UserFunction { step: step.clone(), message: e.0 });
                failed = true;
            }
            let mut executor: Executor<K, V, D> = Executor::new(dofn, strategy.clone(), key_groups);
            let mut checkpointing = job
                .checkpoints
                .as_ref()
                .map(|c| KeyedCheckpointing::new(c.clone(), &operator_id, worker, workers, key_groups));
            if let Some(ck) = &checkpointing {
                match ck.restore(&mut executor.store) {
                    Ok(_) => executor.reindex_all(),
                    Err(message) => job
                        .fail(RuntimeError::Translation(format!("{step}: cannot restore state: {message}"))),
                }
            }
            builder.build(move |mut caps| {
                let mut cap: Option<Capability<FrontierTime>> = caps.pop();
                let mut buffer: Vec<WindowedValue<D::Output>> = Vec::new();
                let clock = job.clock.clone();
                let mut aligner: EpochAligner<(K, V)> = EpochAligner::default();
                let mut last_seen_epoch: u64 = 0;
                move |frontiers| {
                    let (frontier_watermark, input_epoch) = input_progress(&frontiers[0]);
                    // Arrivals wait by epoch, as in the grouping operator: each snapshot
                    // cuts between epochs.
                    input.for_each(|cap, data| {
                        flow_in.received(data.len());
                        aligner.push(stamp_of(cap.stamp().iter()), data)
                    });
                    let Some(held) = cap.as_ref() else {
                        // Finished: drop anything that still arrives (nothing should).
                        aligner.clear();
                        return;
                    };
                    if job.is_halted() {
                        // Stop without firing what is left, as the grouping operator does: a
                        // restart resumes from the last checkpoint.
                        aligner.clear();
                        executor.clear();
                        cap = None;
                        return;
                    }
                    let fail = |e: UserError, failed: &mut bool| {
                        if !*failed {
                            job.fail(RuntimeError::UserFunction { step: step.clone(), message: e.0 });
                        }
                        *failed = true;
                    };
                    let snapshot_failed = |message: String| {
                        job.fail(RuntimeError::Translation(format!("{step}: checkpoint failed: {message}")))
                    };
                    let processing_time = clock.now();
                    // The input watermark the released records are processed at, taken
                    // before any epoch leaves the stash (as the grouping operator does):
                    // records that waited for their epoch still hold it back to the
                    // watermark they travelled at. Taken after `pop_ready`, it no longer
                    // counts them: when the input completes while an epoch waits (the
                    // frontier goes straight to empty, as under load when the last
                    // sources retire together), it is the end of time, their windows count
                    // as expired, and on-time records are dropped as late.
                    let times = Times {
                        input_watermark: aligner.input_watermark(frontier_watermark),
                        processing_time,
                    };
                    let current = input_epoch.unwrap_or(u64::MAX);
                    while let Some((epoch, batches)) = aligner.pop_ready(current) {
                        last_seen_epoch = last_seen_epoch.max(epoch);
                        if let Some(ck) = checkpointing.as_mut() {
                            if let Err(message) =
                                ck.snapshot_through(epoch.saturating_sub(1), &mut executor.store)
                            {
                                snapshot_failed(message);
                            }
                        }
                        for mut data in batches {
                            for wv in data.drain(..) {
                                if failed {
                                    continue;
                                }
                                let WindowedValue { value: (key, value), timestamp, window, pane, .. } = wv;
                                match executor.process(
                                    key,
                                    value,
                                    timestamp,
                                    window,
                                    pane,
                                    times,
                                    &mut buffer,
                                ) {
                                    Ok(true) => {}
                                    Ok(false) => {
                                        dropped.fetch_add(1, Ordering::Relaxed);
                                    }
                                    Err(e) => fail(e, &mut failed),
                                }
                            }
                        }
                        // What these records caused belongs to their epoch.
                        send_at_epoch(&mut output, &flow_out, held, epoch, &mut buffer);
                    }
                    if let (Some(ck), Some(done)) = (checkpointing.as_mut(), input_epoch) {
                        if let Err(message) = ck.snapshot_through(done.saturating_sub(1), &mut executor.store)
                        {
                            snapshot_failed(message);
                        }
                    }
                    let input_watermark = aligner.input_watermark(frontier_watermark);
                    let times = Times { input_watermark, processing_time };
                    if !failed {
                        if let Err(e) = executor.fire_due(times, &mut buffer) {
                            fail(e, &mut failed);
                        }
                        executor.expire(input_watermark);
                    }
                    if failed {
                        // The step's state is no longer trustworthy: hold nothing (the next
                        // activation sees the failed job and releases the capability).
                        executor.clear();
                    }
                    // Once the input is complete, in the newest epoch processed, never before
                    // output already sent.
                    send_at_epoch(
                        &mut output,
                        &flow_out,
                        held,
                        input_epoch.unwrap_or(last_seen_epoch),
                        &mut buffer,
                    );
                    if let Some(e) = input_epoch {
                        last_seen_epoch = last_seen_epoch.max(e);
                    }
                    match input_epoch {
                        None => {
                            // Input complete: every event-time timer has fired. The last
                            // epoch's snapshot holds what is left (processing-time timers,
                            // global-window state), which is then dropped.
                            if let Some(ck) = checkpointing.as_mut() {
                                if let Err(message) = ck.snapshot_at_end(last_seen_epoch, &mut executor.store)
                                {
                                    snapshot_failed(message);
                                }
                            }
                            executor.clear();
                            cap = None;
                        }
                        Some(epoch) => {
                            let hold =
                                executor.min_hold().map_or(input_watermark, |h| h.min(input_watermark));
                            let inner = hold.max(Timestamp(held.time().inner));
                            let next = frontier_time(epoch.max(held.time().outer), inner);
                            if let Some(c) = cap.as_mut() {
                                c.downgrade(&next);
                            }
                            if clock.is_real() {
                                if let Some(at) = executor.next_processing_timer() {
                                    activator.activate_after((at - processing_time).to_std());
                                }
                            }
                        }
                    }
                }
            });
            t.insert(PortRef { node, port: 0 }, out_stream);
            Ok(())
        });
        let node = self.pipeline.add_node(name, NodeKind::ParDo, vec![in_port], build);
        self.pipeline.set_checkpointed(node, true);
        PCollection::from_port(self.pipeline.clone(), PortRef { node, port: 0 }, self.strategy.clone())
    }
}

/// Sends the buffered output in `epoch` (at or after the held capability's), at the held
/// watermark.
fn send_at_epoch<O: Clone + 'static>(
    output: &mut OutputBuilder<FrontierTime, CapacityContainerBuilder<Vec<WindowedValue<O>>>>,
    flow: &FlowOut,
    held: &Capability<FrontierTime>,
    epoch: u64,
    buffer: &mut Vec<WindowedValue<O>>,
) {
    let at = frontier_time(epoch.max(held.time().outer), Timestamp(held.time().inner));
    send_counted(output, flow, held, &at, buffer);
}
