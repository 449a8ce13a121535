//! Multi-input and redistribution transforms: Flatten, Partition, Reshuffle,
//! CoGroupByKey, and combining shortcuts.

use crate::element::Element;
use crate::error::RuntimeError;
use crate::graph::{NodeId, NodeKind, Pipeline, PortRef, Translation};
use crate::key::Key;
use crate::pcollection::PCollection;
use millstream_model::{CombineFn, WindowedValue};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::sync::Arc;
use timely::dataflow::channels::pact::{Exchange, Pipeline as Local};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Concatenate;

impl Pipeline {
    /// Merges PCollections of one type into one (Beam's `Flatten`). The result takes the
    /// windowing strategy of the first input.
    ///
    /// # Panics
    /// If `inputs` is empty or belongs to another pipeline: programming errors.
    pub fn flatten<T: Element>(&self, inputs: &[PCollection<T>]) -> PCollection<T> {
        assert!(!inputs.is_empty(), "flatten needs at least one input");
        let ports: Vec<PortRef> = inputs.iter().map(|p| p.port).collect();
        let strategy = inputs[0].strategy.clone();
        let build_ports = ports.clone();
        let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
            let streams = build_ports.iter().map(|p| t.stream::<T>(*p)).collect::<Result<Vec<_>, _>>()?;
            // Counted pass-through: the merged stream's readers each get a copy.
            let (flow_in, flow_out) = (t.flow_in(), t.flow_out(PortRef { node, port: 0 }));
            let merged = t.scope.concatenate(streams).unary(Local, "Flatten", move |_cap, _info| {
                move |input, output| {
                    input.for_each(|cap, data| {
                        flow_in.received(data.len());
                        flow_out.sent(data.len());
                        output.session(&cap).give_container(data);
                    });
                }
            });
            t.insert(PortRef { node, port: 0 }, merged);
            Ok(())
        });
        let node = self.add_node("Flatten", NodeKind::Flatten, ports, build);
        PCollection::from_port(self.clone(), PortRef { node, port: 0 }, strategy)
    }
}

impl<T: Element> PCollection<T> {
    /// Merges this collection with others of the same type.
    pub fn flatten_with(&self, others: &[PCollection<T>]) -> PCollection<T> {
        let mut all = vec![self.clone()];
        all.extend(others.iter().cloned());
        self.pipeline.flatten(&all)
    }

    /// Splits the collection into `n` by `f(element, n)`, which returns the index of the
    /// part (Beam's `Partition`). An index `>= n` fails the job naming the step.
    pub fn partition(
        &self,
        n: usize,
        f: impl Fn(&T, usize) -> usize + Send + Sync + Clone + 'static,
    ) -> Vec<PCollection<T>> {
        let input = self.port;
        let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
            let stream = t.stream::<T>(input)?;
            let job = t.job.clone();
            let step = t.name(node).to_owned();
            let f = f.clone();
            let mut builder =
                timely::dataflow::operators::generic::builder_rc::OperatorBuilder::new(step.clone(), t.scope);
            let mut input = builder.new_input(stream, timely::dataflow::channels::pact::Pipeline);
            let mut outputs = Vec::with_capacity(n);
            let mut streams = Vec::with_capacity(n);
            for _ in 0..n {
                let (o, s) = builder.new_output::<Vec<WindowedValue<T>>>();
                outputs.push(timely::dataflow::operators::generic::OutputBuilder::<
                    _,
                    timely::container::CapacityContainerBuilder<_>,
                >::from(o));
                streams.push(s);
            }
            let flow_in = t.flow_in();
            let flows: Vec<_> = (0..n).map(|i| t.flow_out(PortRef { node, port: i })).collect();
            builder.build(move |_caps| {
                let mut buffers: Vec<Vec<WindowedValue<T>>> = (0..n).map(|_| Vec::new()).collect();
                move |_frontiers| {
                    input.for_each(|cap, data| {
                        flow_in.received(data.len());
                        for wv in data.drain(..) {
                            let i = f(&wv.value, n);
                            match buffers.get_mut(i) {
                                Some(b) => b.push(wv),
                                None => job.fail(RuntimeError::UserFunction {
                                    step: step.clone(),
                                    message: format!(
                                        "partition function returned {i}, but there are only {n} partitions"
                                    ),
                                }),
                            }
                        }
                        for (i, b) in buffers.iter_mut().enumerate() {
                            if !b.is_empty() {
                                flows[i].sent(b.len());
                                outputs[i].activate().session(&cap).give_container(b);
                                b.clear();
                            }
                        }
                    });
                }
            });
            for (i, s) in streams.into_iter().enumerate() {
                t.insert(PortRef { node, port: i }, s);
            }
            Ok(())
        });
        let node = self.pipeline.add_node("Partition", NodeKind::Partition, vec![input], build);
        (0..n)
            .map(|i| {
                PCollection::from_port(
                    self.pipeline.clone(),
                    PortRef { node, port: i },
                    self.strategy.clone(),
                )
            })
            .collect()
    }

    /// Spreads elements evenly over the workers (Beam's `Reshuffle`, without grouping).
    pub fn reshuffle(&self) -> PCollection<T> {
        let input = self.port;
        let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
            let stream = t.stream::<T>(input)?;
            let seed = t.scope.index() as u64;
            let counter = Cell::new(seed);
            let exchange = Exchange::new(move |_wv: &WindowedValue<T>| {
                let c = counter.get().wrapping_add(1);
                counter.set(c);
                c
            });
            let (flow_in, flow_out) = (t.flow_in(), t.flow_out(PortRef { node, port: 0 }));
            let out = stream.unary(exchange, "Reshuffle", |_cap, _info| {
                move |input, output| {
                    input.for_each(|cap, data| {
                        flow_in.received(data.len());
                        flow_out.sent(data.len());
                        output.session(&cap).give_container(data);
                    });
                }
            });
            t.insert(PortRef { node, port: 0 }, out);
            Ok(())
        });
        let node = self.pipeline.add_node("Reshuffle", NodeKind::Reshuffle, vec![input], build);
        PCollection::from_port(self.pipeline.clone(), PortRef { node, port: 0 }, self.strategy.clone())
    }

    /// Combines all elements of each window into one output (Beam's `Combine.globally`).
    /// In the global window, an empty input still produces one output: the CombineFn's
    /// output for an empty accumulator (for example 0 for a sum).
    pub fn combine_globally<C>(&self, combine_fn: C) -> PCollection<C::Output>
    where
        C: CombineFn<T>,
        C::Output: Element,
    {
        let default = combine_fn.extract_output(&combine_fn.create_accumulator());
        let combined = self.combine_globally_without_defaults(combine_fn);
        if self.strategy.window_fn.is_global() {
            combined.default_if_empty(default)
        } else {
            combined
        }
    }

    /// [`combine_globally`](Self::combine_globally) without the default output for an
    /// empty input.
    pub fn combine_globally_without_defaults<C>(&self, combine_fn: C) -> PCollection<C::Output>
    where
        C: CombineFn<T>,
        C::Output: Element,
    {
        self.with_keys(|_| ()).combine_per_key(combine_fn).map(|(_, v)| v)
    }

    /// Passes elements through; if none arrived by the end of input, emits `default` in
    /// the global window as its only (on-time) pane.
    fn default_if_empty(&self, default: T) -> PCollection<T> {
        let input = self.port;
        let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
            let stream = t.stream::<T>(input)?;
            let default = default.clone();
            let is_first_worker = t.scope.index() == 0;
            let (flow_in, flow_out) = (t.flow_in(), t.flow_out(PortRef { node, port: 0 }));
            // Everything meets on worker 0, which alone can tell that nothing came.
            let out = stream.unary_frontier(
                Exchange::new(|_wv: &WindowedValue<T>| 0),
                "DefaultIfEmpty",
                |cap, _info| {
                    let mut cap = is_first_worker.then_some(cap);
                    let mut seen = false;
                    move |(input, frontier), output| {
                        input.for_each(|c, data| {
                            seen |= !data.is_empty();
                            flow_in.received(data.len());
                            flow_out.sent(data.len());
                            output.session(&c).give_container(data);
                        });
                        let Some(held) = cap.as_mut() else { return };
                        let f = frontier.frontier();
                        if f.is_empty() {
                            if !seen {
                                let mut one = vec![WindowedValue {
                                    value: default.clone(),
                                    timestamp: millstream_model::Window::GLOBAL_MAX_TIMESTAMP,
                                    window: millstream_model::Window::Global,
                                    pane: millstream_model::PaneInfo::ON_TIME_AND_ONLY_FIRING,
                                    retraction: false,
                                }];
                                flow_out.sent(one.len());
                                output.session(&*held).give_container(&mut one);
                            }
                            cap = None;
                        } else {
                            // Follow the input so the watermark is not held back.
                            let outer = f.iter().map(|t| t.outer).min().unwrap_or(held.time().outer);
                            let inner = f.iter().map(|t| t.inner).min().unwrap_or(held.time().inner);
                            held.downgrade(&timely::order::Product::new(outer, inner));
                        }
                    }
                },
            );
            t.insert(PortRef { node, port: 0 }, out);
            Ok(())
        });
        let node = self.pipeline.add_node("DefaultIfEmpty", NodeKind::ParDo, vec![input], build);
        PCollection::from_port(self.pipeline.clone(), PortRef { node, port: 0 }, self.strategy.clone())
    }

    /// Counts each distinct element (Beam's `Count.perElement`).
    pub fn count_per_element(&self) -> PCollection<(T, u64)>
    where
        T: Key,
    {
        self.map(|x| (x, ())).combine_per_key(CountFn)
    }
}

/// Counts inputs; used by `count_per_element`.
#[derive(Clone, Copy, Debug)]
struct CountFn;

impl<I> CombineFn<I> for CountFn {
    type Accumulator = u64;
    type Output = u64;
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add_input(&self, acc: &mut u64, _input: I) {
        *acc += 1;
    }
    fn merge_accumulators(&self, acc: &mut u64, other: u64) {
        *acc += other;
    }
    fn extract_output(&self, acc: &u64) -> u64 {
        *acc
    }
}

/// The result of a two-way CoGroupByKey: per key, the values from each side.
pub type CoGrouped<K, V1, V2> = PCollection<(K, (Vec<V1>, Vec<V2>))>;

/// A value from one of the two inputs of a two-way CoGroupByKey.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Either<A, B> {
    Left(A),
    Right(B),
}

impl<K: Key, V1: Element> PCollection<(K, V1)> {
    /// Joins two keyed collections by key and window: for each key, the values of each
    /// side (Beam's `CoGroupByKey` over two inputs).
    pub fn co_group_by_key<V2: Element>(&self, other: &PCollection<(K, V2)>) -> CoGrouped<K, V1, V2> {
        let left = self.map(|(k, v)| (k, Either::<V1, V2>::Left(v)));
        let right = other.map(|(k, v)| (k, Either::<V1, V2>::Right(v)));
        self.pipeline.flatten(&[left, right]).group_by_key().map(|(k, values)| {
            let mut l = Vec::new();
            let mut r = Vec::new();
            for v in values {
                match v {
                    Either::Left(a) => l.push(a),
                    Either::Right(b) => r.push(b),
                }
            }
            (k, (l, r))
        })
    }
}
