//! Side inputs: a PCollection materialized per window as a singleton, list or map, read
//! by a ParDo for the window of each main element (Beam's `PCollectionView`).
//!
//! A main element waits until the side input is complete for the side window its own
//! window maps to (the side input's watermark has passed that window's end), so every
//! element sees the whole side window, whatever the arrival order.

use crate::dofn::{guarded, DoFn, ProcessContext, TaggedBuffers, UserError};
use crate::element::Element;
use crate::error::RuntimeError;
use crate::flow::FlowIn;
use crate::graph::{NodeId, NodeKind, PortRef, Translation};
use crate::key::Key;
use crate::pcollection::PCollection;
use crate::time::{watermark_of, FrontierTime};
use millstream_model::{SharedWindowFn, Timestamp, Window, WindowedValue};
use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use timely::dataflow::channels::pact::Pipeline as Local;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::CapabilitySet;
use timely::progress::frontier::MutableAntichain;

type Materialized = Arc<dyn Any + Send + Sync>;

/// Turns one window's side elements into the view's value.
type Materializer<S> = Arc<dyn Fn(Vec<S>) -> Result<Box<dyn Any + Send + Sync>, String> + Send + Sync>;

/// A side input's typed pull-and-buffer logic, erased so a ParDo can take several.
trait SideInputPort {
    /// Moves arrived side elements into per-window buffers.
    fn pull(&mut self);
    /// Materializes the value for `window` (once complete).
    fn materialize(&self, window: &Window) -> Result<Materialized, String>;
    /// Drops buffers of windows that ended before `watermark` (main input's).
    fn forget_before(&mut self, watermark: Timestamp);
}

type AttachFn = dyn for<'s> Fn(
        &mut OperatorBuilder<'s, FrontierTime>,
        &Translation<'s>,
    ) -> Result<Box<dyn SideInputPort>, RuntimeError>
    + Send
    + Sync;

/// Pins the closure's signature to the higher-ranked one (one lifetime for both).
fn attach_fn<F>(f: F) -> Arc<AttachFn>
where
    F: for<'s> Fn(
            &mut OperatorBuilder<'s, FrontierTime>,
            &Translation<'s>,
        ) -> Result<Box<dyn SideInputPort>, RuntimeError>
        + Send
        + Sync
        + 'static,
{
    Arc::new(f)
}

static NEXT_VIEW: AtomicUsize = AtomicUsize::new(1);

/// A PCollection materialized as a `V` per window, for side inputs.
pub struct PCollectionView<V> {
    pub(crate) id: usize,
    pub(crate) name: String,
    window_fn: SharedWindowFn,
    attach: Arc<AttachFn>,
    _type: PhantomData<fn() -> V>,
}

impl<V> Clone for PCollectionView<V> {
    fn clone(&self) -> Self {
        PCollectionView {
            id: self.id,
            name: self.name.clone(),
            window_fn: self.window_fn.clone(),
            attach: self.attach.clone(),
            _type: PhantomData,
        }
    }
}

/// A view with its type erased, as passed to [`PCollection::par_do_with_side_inputs`].
#[derive(Clone)]
pub struct SideInput {
    id: usize,
    window_fn: SharedWindowFn,
    attach: Arc<AttachFn>,
}

impl<V> From<&PCollectionView<V>> for SideInput {
    fn from(v: &PCollectionView<V>) -> Self {
        SideInput { id: v.id, window_fn: v.window_fn.clone(), attach: v.attach.clone() }
    }
}

/// The side inputs materialized for the windows of the elements being processed.
pub struct SideInputValues {
    values: HashMap<(usize, Window), Materialized>,
    window_fns: HashMap<usize, SharedWindowFn>,
}

impl SideInputValues {
    pub(crate) fn get<V: Send + Sync + 'static>(
        &self,
        view: &PCollectionView<V>,
        main: &Window,
    ) -> Result<&V, UserError> {
        let wf = self.window_fns.get(&view.id).ok_or_else(|| {
            UserError::new(format!("side input {} was not passed to this ParDo", view.name))
        })?;
        let side_window = wf.side_input_window(main);
        let value = self.values.get(&(view.id, side_window)).ok_or_else(|| {
            UserError::new(format!("side input {} not ready for {side_window:?}", view.name))
        })?;
        value
            .downcast_ref::<V>()
            .ok_or_else(|| UserError::new(format!("side input {} has another type", view.name)))
    }
}

struct TypedPort<
    S,
    P: timely::communication::Pull<timely::dataflow::channels::Message<FrontierTime, Vec<WindowedValue<S>>>>,
> {
    input: timely::dataflow::operators::generic::InputHandleCore<FrontierTime, Vec<WindowedValue<S>>, P>,
    buffers: BTreeMap<Window, Vec<S>>,
    materialize: Materializer<S>,
    flow: FlowIn,
}

impl<S: Element, P> SideInputPort for TypedPort<S, P>
where
    P: timely::communication::Pull<timely::dataflow::channels::Message<FrontierTime, Vec<WindowedValue<S>>>>,
{
    fn pull(&mut self) {
        let buffers = &mut self.buffers;
        let flow = &self.flow;
        self.input.for_each(|_cap, data| {
            flow.received(data.len());
            for wv in data.drain(..) {
                if !wv.retraction {
                    buffers.entry(wv.window).or_default().push(wv.value);
                }
            }
        });
    }
    fn materialize(&self, window: &Window) -> Result<Materialized, String> {
        let values = self.buffers.get(window).cloned().unwrap_or_default();
        (self.materialize)(values).map(Arc::from)
    }
    fn forget_before(&mut self, watermark: Timestamp) {
        self.buffers.retain(|w, _| w.max_timestamp() >= watermark);
    }
}

impl<S: Element> PCollection<S> {
    fn view<V: Send + Sync + 'static>(
        &self,
        name: &str,
        materialize: impl Fn(Vec<S>) -> Result<V, String> + Send + Sync + 'static,
    ) -> PCollectionView<V> {
        let port = self.port;
        let materialize: Materializer<S> =
            Arc::new(move |values| materialize(values).map(|v| Box::new(v) as Box<dyn Any + Send + Sync>));
        let attach = attach_fn(move |builder, t| {
            let stream = t.stream::<S>(port)?.broadcast();
            // Broadcast delivers a copy to every worker: one reader per worker.
            t.add_readers(port, t.scope.peers() - 1);
            let input = builder.new_input(stream, Local);
            let flow = t.flow_in();
            Ok(Box::new(TypedPort {
                input,
                buffers: BTreeMap::new(),
                materialize: materialize.clone(),
                flow,
            }))
        });
        PCollectionView {
            id: NEXT_VIEW.fetch_add(1, Ordering::Relaxed),
            name: format!("{name}({:?})", self),
            window_fn: self.strategy.window_fn.clone(),
            attach,
            _type: PhantomData,
        }
    }

    /// A view of exactly one element per window; reading it fails for a window with no
    /// element or with several.
    pub fn as_singleton(&self) -> PCollectionView<S> {
        self.view("Singleton", |mut values: Vec<S>| match values.len() {
            1 => Ok(values.remove(0)),
            0 => Err("singleton side input is empty for this window".to_string()),
            n => Err(format!("singleton side input has {n} elements for this window")),
        })
    }

    /// A view of every element of the window as a list.
    pub fn as_list(&self) -> PCollectionView<Vec<S>> {
        self.view("List", Ok)
    }
}

impl<K: Key, V: Element> PCollection<(K, V)> {
    /// A view of the window's pairs as a map; a key that appears twice is an error when
    /// the view is read.
    pub fn as_map(&self) -> PCollectionView<HashMap<K, V>> {
        self.view("Map", |values: Vec<(K, V)>| {
            let mut map = HashMap::with_capacity(values.len());
            for (k, v) in values {
                if map.insert(k, v).is_some() {
                    return Err("map side input has a duplicate key".to_string());
                }
            }
            Ok(map)
        })
    }

    /// A view of the window's pairs as a map from each key to all its values.
    pub fn as_multimap(&self) -> PCollectionView<HashMap<K, Vec<V>>> {
        self.view("Multimap", |values: Vec<(K, V)>| {
            let mut map: HashMap<K, Vec<V>> = HashMap::new();
            for (k, v) in values {
                map.entry(k).or_default().push(v);
            }
            Ok(map)
        })
    }
}

impl<T: Element> PCollection<T> {
    /// A ParDo that reads side inputs: each element is processed once every side input is
    /// complete for the side window of the element's window.
    pub fn par_do_with_side_inputs<D: DoFn<T>>(
        &self,
        name: &str,
        dofn: D,
        side_inputs: &[SideInput],
    ) -> PCollection<D::Output> {
        let input = self.port;
        let sides: Vec<SideInput> = side_inputs.to_vec();
        let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
            let stream = t.stream::<T>(input)?;
            let job = t.job.clone();
            let step = t.name(node).to_owned();
            let mut builder = OperatorBuilder::new(step.clone(), t.scope);
            let mut main = builder.new_input(stream, Local);
            let mut ports = Vec::with_capacity(sides.len());
            for s in &sides {
                ports.push((s.attach)(&mut builder, t)?);
            }
            let (out, out_stream) = builder.new_output::<Vec<WindowedValue<D::Output>>>();
            let mut out = OutputBuilder::<_, timely::container::CapacityContainerBuilder<_>>::from(out);
            let sides = sides.clone();
            let mut dofn = dofn.clone();
            let (flow_in, flow_out) = (t.flow_in(), t.flow_out(PortRef { node, port: 0 }));
            builder.build(move |_caps| {
                dofn.setup();
                let mut pending: Vec<(CapabilitySet<FrontierTime>, Vec<WindowedValue<T>>)> = Vec::new();
                let mut values = SideInputValues {
                    values: HashMap::new(),
                    window_fns: sides.iter().map(|s| (s.id, s.window_fn.clone())).collect(),
                };
                let mut tagged = TaggedBuffers::empty();
                let mut buffer: Vec<WindowedValue<D::Output>> = Vec::new();
                move |frontiers: &[MutableAntichain<FrontierTime>]| {
                    main.for_each(|cap, data| {
                        flow_in.received(data.len());
                        pending.push((cap.retain_stamp(0), std::mem::take(data)));
                    });
                    for p in ports.iter_mut() {
                        p.pull();
                    }
                    let side_marks: Vec<Timestamp> =
                        (0..sides.len()).map(|i| watermark_of(frontiers[i + 1].frontier())).collect();
                    let mut still: Vec<(CapabilitySet<FrontierTime>, Vec<WindowedValue<T>>)> = Vec::new();
                    for (cap, batch) in pending.drain(..) {
                        let mut waiting = Vec::new();
                        for wv in batch {
                            // Ready when every side input is complete for the side window.
                            let mut ready = true;
                            for (i, s) in sides.iter().enumerate() {
                                let sw = s.window_fn.side_input_window(&wv.window);
                                if side_marks[i] <= sw.max_timestamp() {
                                    ready = false;
                                    break;
                                }
                                if let std::collections::hash_map::Entry::Vacant(e) =
                                    values.values.entry((s.id, sw))
                                {
                                    match ports[i].materialize(&sw) {
                                        Ok(v) => {
                                            e.insert(v);
                                        }
                                        Err(msg) => {
                                            job.fail(RuntimeError::UserFunction {
                                                step: step.clone(),
                                                message: format!("side input for {sw:?}: {msg}"),
                                            });
                                            ready = false;
                                        }
                                    }
                                }
                            }
                            if !ready {
                                waiting.push(wv);
                                continue;
                            }
                            let WindowedValue { value, timestamp, window, pane, retraction } = wv;
                            let mut ctx = ProcessContext {
                                timestamp,
                                window,
                                pane,
                                retraction,
                                main: &mut buffer,
                                tagged: &mut tagged,
                                side_inputs: Some(&values),
                            };
                            if let Err(e) = guarded(|| dofn.process(value, &mut ctx)) {
                                job.fail(RuntimeError::UserFunction { step: step.clone(), message: e.0 });
                            }
                        }
                        if !buffer.is_empty() {
                            flow_out.sent(buffer.len());
                            out.activate().session(&cap).give_container(&mut buffer);
                            buffer.clear();
                        }
                        if !waiting.is_empty() {
                            still.push((cap, waiting));
                        }
                    }
                    pending = still;
                    let main_mark = watermark_of(frontiers[0].frontier());
                    let oldest =
                        pending.iter().flat_map(|(_, b)| b.iter().map(|wv| wv.window.max_timestamp())).min();
                    let forget = oldest.map_or(main_mark, |o| o.min(main_mark));
                    for p in ports.iter_mut() {
                        p.forget_before(forget);
                    }
                    values.values.retain(|(_, w), _| w.max_timestamp() >= forget);
                }
            });
            t.insert(PortRef { node, port: 0 }, out_stream);
            Ok(())
        });
        let node = self.pipeline.add_node(name, NodeKind::ParDo, vec![input], build);
        PCollection::from_port(self.pipeline.clone(), PortRef { node, port: 0 }, self.strategy.clone())
    }
}
