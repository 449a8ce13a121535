//! [`PCollection`]: a typed handle to one output of a pipeline step, and the element-wise
//! transforms on it.

use crate::dofn::{guarded, DoFn, ProcessContext, TaggedBuffers, UserError};
use crate::element::Element;
use crate::error::RuntimeError;
use crate::graph::{NodeId, NodeKind, Pipeline, PortRef, Translation};
use crate::optimizer::fusion;
use millstream_model::{Timestamp, WindowedValue, WindowingStrategy};
use std::marker::PhantomData;
use std::sync::Arc;
use timely::dataflow::channels::pact::Pipeline as Local;
use timely::dataflow::operators::generic::Operator;

/// A collection of elements of type `T`, bounded or unbounded, produced by one pipeline
/// step: Beam's `PCollection`. It is a lazy handle: transforms on it add steps to the
/// pipeline, and nothing runs until the pipeline does.
pub struct PCollection<T> {
    pub(crate) pipeline: Pipeline,
    pub(crate) port: PortRef,
    pub(crate) strategy: Arc<WindowingStrategy>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for PCollection<T> {
    fn clone(&self) -> Self {
        PCollection {
            pipeline: self.pipeline.clone(),
            port: self.port,
            strategy: self.strategy.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for PCollection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PCollection({})", self.pipeline.node_name(self.port.node))
    }
}

/// A composite transform: a reusable function from one pipeline value to another
/// (Beam's `PTransform`). Steps it adds are named under the name it is applied with.
///
/// ```
/// use millstream_runtime::{PCollection, PTransform, Pipeline};
/// struct CountWords;
/// impl PTransform<PCollection<String>> for CountWords {
///     type Output = PCollection<(String, u64)>;
///     fn expand(&self, lines: PCollection<String>) -> Self::Output {
///         lines
///             .flat_map(|l: String| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
///             .count_per_element()
///     }
/// }
/// let p = Pipeline::new();
/// let counts = p.create(vec!["a b a".to_string()]).apply("CountWords", &CountWords);
/// # let _ = counts;
/// ```
pub trait PTransform<In> {
    /// What the transform produces.
    type Output;
    /// Adds the transform's steps to the pipeline.
    fn expand(&self, input: In) -> Self::Output;
}

impl<T: Element> PCollection<T> {
    pub(crate) fn from_port(pipeline: Pipeline, port: PortRef, strategy: Arc<WindowingStrategy>) -> Self {
        PCollection { pipeline, port, strategy, _type: PhantomData }
    }

    /// The pipeline this collection belongs to.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// How this collection is windowed and triggered.
    pub fn windowing_strategy(&self) -> &WindowingStrategy {
        &self.strategy
    }

    /// Stores the state of the step that produced this collection under `id` in
    /// checkpoints and savepoints, instead of under its step name (Flink's `uid`).
    ///
    /// A job restarted from a savepoint finds each operator's state by this id, so a
    /// changed job (steps renamed, moved into composites, new steps added) keeps its
    /// state as long as the stateful steps keep their ids. Ids must be unique among the
    /// job's stateful steps. Steps without state ignore it.
    ///
    /// ```
    /// use millstream_model::combiners::Sum;
    /// use millstream_runtime::Pipeline;
    /// let p = Pipeline::new();
    /// let totals = p
    ///     .create(vec![("a".to_string(), 1i64)])
    ///     .combine_per_key(Sum)
    ///     .with_operator_id("totals-v1");
    /// # let _ = totals;
    /// ```
    pub fn with_operator_id(self, id: &str) -> Self {
        self.pipeline.set_operator_id(self.port.node, id);
        self
    }

    /// Applies a composite transform, naming its steps under `name`.
    pub fn apply<P: PTransform<PCollection<T>>>(&self, name: &str, transform: &P) -> P::Output {
        self.pipeline.enter_scope(name);
        let out = transform.expand(self.clone());
        self.pipeline.exit_scope();
        out
    }

    /// Adds an element-wise step: `make` builds, on each worker, the function applied to
    /// each element, which appends its outputs to the buffer.
    pub(crate) fn element_wise<O, F, M>(
        &self,
        name: &str,
        strategy: Arc<WindowingStrategy>,
        make: M,
    ) -> PCollection<O>
    where
        O: Element,
        F: FnMut(WindowedValue<T>, &mut Vec<WindowedValue<O>>) -> Result<(), UserError> + 'static,
        M: Fn() -> F + Send + Sync + 'static,
    {
        let input = self.port;
        let make = Arc::new(make);
        let fusable = fusion::fusable::<T, O, F, M>(make.clone());
        let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
            let stream = t.stream::<T>(input)?;
            let job = t.job.clone();
            let step = t.name(node).to_owned();
            let mut f = make();
            let (flow_in, flow_out) = (t.flow_in(), t.flow_out(PortRef { node, port: 0 }));
            let out = stream.unary(Local, &step.clone(), move |_cap, _info| {
                let mut buffer: Vec<WindowedValue<O>> = Vec::new();
                move |input, output| {
                    input.for_each(|cap, data| {
                        flow_in.received(data.len());
                        for wv in data.drain(..) {
                            if let Err(e) = guarded(|| f(wv, &mut buffer)) {
                                job.fail(RuntimeError::UserFunction { step: step.clone(), message: e.0 });
                            }
                        }
                        if !buffer.is_empty() {
                            flow_out.sent(buffer.len());
                            output.session(&cap).give_container(&mut buffer);
                            buffer.clear();
                        }
                    });
                }
            });
            t.insert(PortRef { node, port: 0 }, out);
            Ok(())
        });
        let node = self.pipeline.add_node(name, NodeKind::ParDo, vec![input], build);
        self.pipeline.set_fusable(node, fusable);
        PCollection::from_port(self.pipeline.clone(), PortRef { node, port: 0 }, strategy)
    }

    /// Applies `f` to every element.
    pub fn map<O: Element>(&self, f: impl Fn(T) -> O + Send + Sync + Clone + 'static) -> PCollection<O> {
        self.element_wise("Map", self.strategy.clone(), move || {
            let f = f.clone();
            move |wv: WindowedValue<T>, out: &mut Vec<WindowedValue<O>>| {
                let WindowedValue { value, timestamp, window, pane, retraction } = wv;
                out.push(WindowedValue { value: f(value), timestamp, window, pane, retraction });
                Ok(())
            }
        })
    }

    /// Replaces every element by the elements `f` returns.
    pub fn flat_map<O: Element, I: IntoIterator<Item = O>>(
        &self,
        f: impl Fn(T) -> I + Send + Sync + Clone + 'static,
    ) -> PCollection<O> {
        self.element_wise("FlatMap", self.strategy.clone(), move || {
            let f = f.clone();
            move |wv: WindowedValue<T>, out: &mut Vec<WindowedValue<O>>| {
                let WindowedValue { value, timestamp, window, pane, retraction } = wv;
                out.extend(f(value).into_iter().map(|value| WindowedValue {
                    value,
                    timestamp,
                    window,
                    pane,
                    retraction,
                }));
                Ok(())
            }
        })
    }

    /// Keeps the elements for which `f` is true.
    pub fn filter(&self, f: impl Fn(&T) -> bool + Send + Sync + Clone + 'static) -> PCollection<T> {
        self.element_wise("Filter", self.strategy.clone(), move || {
            let f = f.clone();
            move |wv: WindowedValue<T>, out: &mut Vec<WindowedValue<T>>| {
                if f(&wv.value) {
                    out.push(wv);
                }
                Ok(())
            }
        })
    }

    /// Pairs every element with the key `f` computes: `(key, element)`.
    pub fn with_keys<K: Element>(
        &self,
        f: impl Fn(&T) -> K + Send + Sync + Clone + 'static,
    ) -> PCollection<(K, T)> {
        self.element_wise("WithKeys", self.strategy.clone(), move || {
            let f = f.clone();
            move |wv: WindowedValue<T>, out: &mut Vec<WindowedValue<(K, T)>>| {
                let WindowedValue { value, timestamp, window, pane, retraction } = wv;
                out.push(WindowedValue { value: (f(&value), value), timestamp, window, pane, retraction });
                Ok(())
            }
        })
    }

    /// Sets each element's event timestamp to what `f` computes from it.
    pub fn with_timestamps(
        &self,
        f: impl Fn(&T) -> Timestamp + Send + Sync + Clone + 'static,
    ) -> PCollection<T> {
        self.element_wise("WithTimestamps", self.strategy.clone(), move || {
            let f = f.clone();
            move |mut wv: WindowedValue<T>, out: &mut Vec<WindowedValue<T>>| {
                wv.timestamp = f(&wv.value);
                out.push(wv);
                Ok(())
            }
        })
    }

    /// Applies a [`DoFn`] to every element (Beam's `ParDo.of`).
    pub fn par_do<D: DoFn<T>>(&self, name: &str, dofn: D) -> PCollection<D::Output> {
        self.element_wise(name, self.strategy.clone(), move || {
            let mut dofn = dofn.clone();
            dofn.setup();
            let mut tagged = TaggedBuffers::empty();
            move |wv: WindowedValue<T>, out: &mut Vec<WindowedValue<D::Output>>| {
                let WindowedValue { value, timestamp, window, pane, retraction } = wv;
                let mut ctx = ProcessContext {
                    timestamp,
                    window,
                    pane,
                    retraction,
                    main: out,
                    tagged: &mut tagged,
                    side_inputs: None,
                };
                dofn.process(value, &mut ctx)
            }
        })
    }

    /// Like [`PCollection::map`] for functions that can fail: an error fails the job with
    /// a message naming the step.
    pub fn try_map<O: Element>(
        &self,
        name: &str,
        f: impl Fn(T) -> Result<O, UserError> + Send + Sync + Clone + 'static,
    ) -> PCollection<O> {
        self.element_wise(name, self.strategy.clone(), move || {
            let f = f.clone();
            move |wv: WindowedValue<T>, out: &mut Vec<WindowedValue<O>>| {
                let WindowedValue { value, timestamp, window, pane, retraction } = wv;
                out.push(WindowedValue { value: f(value)?, timestamp, window, pane, retraction });
                Ok(())
            }
        })
    }
}
