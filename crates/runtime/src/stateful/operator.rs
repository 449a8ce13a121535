//! The stateful ParDo operator: the sibling of the grouping operator. Elements are
//! exchanged by key; each worker runs an [`Executor`] over its keys and holds one
//! capability at `(least input epoch, min(input watermark, pending timers' output
//! timestamps))`, which is the step's output watermark.

use super::executor::{Executor, Times};
use super::StatefulDoFn;
use crate::dofn::{guarded, UserError};
use crate::element::Element;
use crate::error::RuntimeError;
use crate::graph::{NodeId, NodeKind, PortRef, Translation};
use crate::key::{worker_for_key, Key};
use crate::pcollection::PCollection;
use crate::time::{frontier_time, input_progress, FrontierTime};
use millstream_model::{Timestamp, WindowedValue};
use std::sync::atomic::Ordering;
use std::sync::Arc;
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
            builder.build(move |mut caps| {
                let mut cap: Option<Capability<FrontierTime>> = caps.pop();
                let mut buffer: Vec<WindowedValue<D::Output>> = Vec::new();
                let clock = job.clock.clone();
                move |frontiers| {
                    let (input_watermark, input_epoch) = input_progress(&frontiers[0]);
                    let times = Times { input_watermark, processing_time: clock.now() };
                    let Some(held) = cap.as_ref() else {
                        // Finished: drain anything that still arrives (nothing should).
                        input.for_each(|_, data| data.clear());
                        return;
                    };
                    if job.is_failed() {
                        // Stop without firing what is left, as the grouping operator does: a
                        // restart resumes from the last checkpoint.
                        input.for_each(|_, data| data.clear());
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
                    input.for_each(|_cap, data| {
                        for wv in data.drain(..) {
                            if failed {
                                continue;
                            }
                            let WindowedValue { value: (key, value), timestamp, window, pane, .. } = wv;
                            match executor.process(key, value, timestamp, window, pane, times, &mut buffer) {
                                Ok(true) => {}
                                Ok(false) => {
                                    dropped.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(e) => fail(e, &mut failed),
                            }
                        }
                    });
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
                    if !buffer.is_empty() {
                        output.activate().session(held).give_container(&mut buffer);
                        buffer.clear();
                    }
                    match input_epoch {
                        None => {
                            // Input complete: every event-time timer has fired; what is
                            // left (processing-time timers, global-window state) is dropped.
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
                                    activator.activate_after((at - times.processing_time).to_std());
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
        PCollection::from_port(self.pipeline.clone(), PortRef { node, port: 0 }, self.strategy.clone())
    }
}
