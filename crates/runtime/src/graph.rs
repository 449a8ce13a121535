//! The lazy pipeline graph and its translation into a timely dataflow.
//!
//! Building a pipeline records [`Node`]s; nothing runs until a [`crate::Runner`] runs it.
//! Each node carries a typed build function that, on every worker, turns the node's input
//! streams into its output streams. The graph is kept (not only its build functions) so
//! that an optimizer can rewrite it before translation and so that operators have stable
//! names for state.

use crate::context::JobContext;
use crate::error::RuntimeError;
use crate::flow::{FlowIn, FlowOut};
use crate::time::FrontierTime;
use millstream_model::WindowedValue;
use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use timely::dataflow::channels::pact::Pipeline as Local;
use timely::dataflow::operators::generic::Operator as _;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::Probe;
use timely::dataflow::{Scope, Stream};

/// Index of a node in its pipeline.
pub type NodeId = usize;

/// One output of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRef {
    /// The producing node.
    pub node: NodeId,
    /// Which of its outputs.
    pub port: usize,
}

/// What a node does, for plans, names and the optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// Reads from a source.
    Source,
    /// Element-wise processing (map, flat_map, filter, ParDo, window assignment, ...).
    ParDo,
    /// Groups by key and window and fires panes.
    GroupByKey,
    /// Groups by key and window, combining values as they arrive.
    Combine,
    /// Merges several PCollections of one type.
    Flatten,
    /// Splits one PCollection into several.
    Partition,
    /// Redistributes elements across workers.
    Reshuffle,
    /// Materializes a side input.
    View,
    /// Writes out (collect, assert, files, stdout).
    Sink,
}

/// A typed, per-worker build function of a node.
pub(crate) type BuildFn =
    dyn for<'s> Fn(&mut Translation<'s>, NodeId) -> Result<(), RuntimeError> + Send + Sync;

pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) kind: NodeKind,
    /// Whether each instance of the node takes part in checkpoints (acknowledges
    /// every epoch).
    pub(crate) checkpointed: bool,
    pub(crate) inputs: Vec<PortRef>,
    pub(crate) build: Arc<BuildFn>,
    /// The id its state is stored under in checkpoints and savepoints, when the user set
    /// one; otherwise the step name.
    pub(crate) operator_id: Option<String>,
    /// A build with the combiner lifted ahead of the shuffle, for a combine whose
    /// windowing allows it (the optimizer picks it when lifting is on).
    pub(crate) lifted: Option<Arc<BuildFn>>,
    /// For an element-wise node: what lets the optimizer fuse it with its neighbours.
    pub(crate) fusable: Option<crate::optimizer::fusion::Fusable>,
}

impl Node {
    /// The id the node's state is stored under: the user's, or the step name.
    pub(crate) fn operator_id(&self) -> &str {
        self.operator_id.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Node>,
    names: HashMap<String, usize>,
    scopes: Vec<String>,
    /// Set by TestStream: the job runs on a manual clock.
    pub(crate) uses_manual_clock: bool,
    /// Checks run after the pipeline finishes (PAssert).
    pub(crate) assertions: Vec<Assertion>,
}

/// A named check over collected output, run when the pipeline has finished.
pub(crate) struct Assertion {
    pub(crate) name: String,
    pub(crate) check: Box<dyn Fn() -> Result<(), String> + Send>,
}

/// A pipeline: a lazy graph of PCollections and the transforms between them.
///
/// ```
/// use millstream_runtime::{Pipeline, Runner};
/// let p = Pipeline::new();
/// let doubled = p.create(vec![1i64, 2, 3]).map(|x| x * 2);
/// let out = doubled.collect();
/// Runner::new().workers(2).run(&p).unwrap();
/// let mut values = out.values();
/// values.sort();
/// assert_eq!(values, vec![2, 4, 6]);
/// ```
#[derive(Clone, Default)]
pub struct Pipeline {
    pub(crate) graph: Arc<Mutex<Graph>>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.lock();
        let mut l = f.debug_list();
        for n in &g.nodes {
            l.entry(&format_args!("{} ({:?}) <- {:?}", n.name, n.kind, n.inputs));
        }
        l.finish()
    }
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Graph> {
        // A poisoned lock only means another thread panicked while adding a node; the
        // graph itself is still consistent (nodes are pushed whole).
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a node; returns its id. Names are made unique and prefixed by the enclosing
    /// composite transforms.
    pub(crate) fn add_node(
        &self,
        name: &str,
        kind: NodeKind,
        inputs: Vec<PortRef>,
        build: Arc<BuildFn>,
    ) -> NodeId {
        let mut g = self.lock();
        let mut full = g.scopes.iter().map(|s| format!("{s}/")).collect::<String>();
        full.push_str(name);
        let count = g.names.entry(full.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            full = format!("{full}#{count}");
        }
        let checkpointed = matches!(kind, NodeKind::Source | NodeKind::GroupByKey | NodeKind::Combine);
        g.nodes.push(Node {
            name: full,
            kind,
            inputs,
            checkpointed,
            build,
            operator_id: None,
            lifted: None,
            fusable: None,
        });
        g.nodes.len() - 1
    }

    /// Sets whether a node takes part in checkpoints (TestStream does not; an
    /// exactly-once sink does).
    pub(crate) fn set_checkpointed(&self, node: NodeId, checkpointed: bool) {
        if let Some(n) = self.lock().nodes.get_mut(node) {
            n.checkpointed = checkpointed;
        }
    }

    /// Gives a combine node its build with the combiner lifted (see [`crate::optimizer`]).
    pub(crate) fn set_lifted(&self, node: NodeId, build: Arc<BuildFn>) {
        if let Some(n) = self.lock().nodes.get_mut(node) {
            n.lifted = Some(build);
        }
    }

    /// Marks an element-wise node as fusable (see [`crate::optimizer`]).
    pub(crate) fn set_fusable(&self, node: NodeId, fusable: crate::optimizer::fusion::Fusable) {
        if let Some(n) = self.lock().nodes.get_mut(node) {
            n.fusable = Some(fusable);
        }
    }

    /// Sets the id under which a node's state is stored (see
    /// [`PCollection::with_operator_id`](crate::PCollection::with_operator_id)).
    pub(crate) fn set_operator_id(&self, node: NodeId, id: &str) {
        if let Some(n) = self.lock().nodes.get_mut(node) {
            n.operator_id = Some(id.to_owned());
        }
    }

    /// The operator ids of the steps that keep state in checkpoints, checked to be
    /// non-empty and unique.
    pub(crate) fn checkpointed_operator_ids(&self) -> Result<Vec<String>, RuntimeError> {
        let g = self.lock();
        let mut seen: HashMap<&str, &str> = HashMap::new();
        let mut ids = Vec::new();
        for n in g.nodes.iter().filter(|n| n.checkpointed) {
            let id = n.operator_id();
            if id.trim().is_empty() {
                return Err(RuntimeError::Config(format!(
                    "step {}: the operator id must not be empty",
                    n.name
                )));
            }
            if let Some(other) = seen.insert(id, &n.name) {
                return Err(RuntimeError::Config(format!(
                    "steps {other} and {} have the same operator id {id:?}: operator ids name state in \
                     checkpoints and must be unique",
                    n.name
                )));
            }
            ids.push(id.to_owned());
        }
        Ok(ids)
    }

    pub(crate) fn enter_scope(&self, name: &str) {
        self.lock().scopes.push(name.to_owned());
    }

    pub(crate) fn exit_scope(&self) {
        self.lock().scopes.pop();
    }

    /// The names and kinds of the pipeline's steps, in order.
    pub fn steps(&self) -> Vec<(String, NodeKind)> {
        self.lock().nodes.iter().map(|n| (n.name.clone(), n.kind)).collect()
    }

    pub(crate) fn node_name(&self, id: NodeId) -> String {
        self.lock().nodes.get(id).map(|n| n.name.clone()).unwrap_or_default()
    }
}

/// A stream of windowed values on the job's timely time.
pub(crate) type WStream<'s, T> = Stream<'s, FrontierTime, Vec<WindowedValue<T>>>;

/// Attaches a counting drain to an output nobody reads.
type Drain<'s> = Box<dyn FnOnce(&mut Translation<'s>) + 's>;

/// Translation state on one worker while its dataflow is built.
pub struct Translation<'s> {
    pub(crate) scope: Scope<'s, FrontierTime>,
    streams: HashMap<PortRef, Box<dyn Any>>,
    pub(crate) job: Arc<JobContext>,
    pub(crate) probe: ProbeHandle<FrontierTime>,
    pub(crate) names: Vec<String>,
    pub(crate) operator_ids: Vec<String>,
    /// Per output: how many inputs read it (backpressure counts a send once per reader).
    consumers: HashMap<PortRef, Arc<AtomicI64>>,
    /// Drains to attach to outputs nobody reads, in `insert` order, with their ports.
    drains: Vec<Drain<'s>>,
    drain_ports: Vec<PortRef>,
    _scope: PhantomData<&'s ()>,
}

impl<'s> Translation<'s> {
    pub(crate) fn new(
        scope: Scope<'s, FrontierTime>,
        job: Arc<JobContext>,
        probe: ProbeHandle<FrontierTime>,
    ) -> Self {
        Translation {
            scope,
            streams: HashMap::new(),
            job,
            probe,
            names: Vec::new(),
            operator_ids: Vec::new(),
            consumers: HashMap::new(),
            drains: Vec::new(),
            drain_ports: Vec::new(),
            _scope: PhantomData,
        }
    }

    /// The stream of an earlier node's output.
    ///
    /// Each call is one consumer of the output (counted for backpressure): call it once
    /// per input that reads the stream.
    pub(crate) fn stream<T: Clone + 'static>(&self, port: PortRef) -> Result<WStream<'s, T>, RuntimeError> {
        if let Some(c) = self.consumers.get(&port) {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let stored =
            self.streams.get(&port).and_then(|b| b.downcast_ref::<WStream<'static, T>>()).ok_or_else(
                || RuntimeError::Translation(format!("no stream of the expected type for {port:?}")),
            )?;
        // SAFETY: the stream was stored by `insert` from a `WStream<'s, T>` of this same
        // translation (the TypeId check above proves `T`), and `self` (with the map) does
        // not outlive `'s`; only the lifetime parameter changes back to what it was.
        Ok(unsafe { std::mem::transmute::<WStream<'static, T>, WStream<'s, T>>(stored.clone()) })
    }

    /// Records a node's output stream; every stream is probed so the runner knows when
    /// the whole dataflow is done and TestStream knows when a step is fully processed.
    pub(crate) fn insert<T: Clone + 'static>(&mut self, port: PortRef, stream: WStream<'s, T>) {
        let stream = stream.probe_with(&self.probe);
        self.consumers.entry(port).or_default();
        // An output nobody reads gets a drain that counts what arrives (backpressure).
        let drain_stream = stream.clone();
        self.drains.push(Box::new(move |t: &mut Translation<'s>| {
            let flow = t.job.in_flight.input();
            drain_stream.sink(Local, "Drain", move |(input, _frontier)| {
                input.for_each(|_cap, data| {
                    flow.received(data.len());
                    data.clear();
                });
            });
        }));
        self.drain_ports.push(port);
        // SAFETY: only the lifetime is erased, so the stream fits in a `Box<dyn Any>`;
        // `stream()` restores it, and the map is dropped with `self` before `'s` ends.
        let erased = unsafe { std::mem::transmute::<WStream<'s, T>, WStream<'static, T>>(stream) };
        self.streams.insert(port, Box::new(erased));
    }

    /// Counts what an operator sends on output `port` (call before building it).
    pub(crate) fn flow_out(&mut self, port: PortRef) -> FlowOut {
        let consumers = self.consumers.entry(port).or_default().clone();
        self.job.in_flight.output(consumers)
    }

    /// Adds `n` readers of output `port` beyond the one [`stream`](Self::stream) counted
    /// (an input that gets a copy per worker, like a broadcast).
    pub(crate) fn add_readers(&self, port: PortRef, n: usize) {
        if let Some(c) = self.consumers.get(&port) {
            c.fetch_add(n as i64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Counts what an operator takes out of its inputs.
    pub(crate) fn flow_in(&self) -> FlowIn {
        self.job.in_flight.input()
    }

    /// After every node is built: outputs that no input reads get a counting drain.
    pub(crate) fn drain_unread_outputs(&mut self) {
        let drains = std::mem::take(&mut self.drains);
        let ports = std::mem::take(&mut self.drain_ports);
        for (port, drain) in ports.into_iter().zip(drains) {
            let unread =
                self.consumers.get(&port).is_none_or(|c| c.load(std::sync::atomic::Ordering::Relaxed) == 0);
            if unread {
                if let Some(c) = self.consumers.get(&port) {
                    c.store(1, std::sync::atomic::Ordering::Relaxed);
                }
                drain(self);
            }
        }
    }

    /// The name of the node being built.
    pub(crate) fn name(&self, node: NodeId) -> &str {
        self.names.get(node).map(String::as_str).unwrap_or("?")
    }

    /// The id the node's state is stored under in checkpoints.
    pub(crate) fn operator_id(&self, node: NodeId) -> &str {
        self.operator_ids.get(node).map(String::as_str).unwrap_or_else(|| self.name(node))
    }
}

impl Drop for Translation<'_> {
    fn drop(&mut self) {
        // Streams must go before the scope they borrow; make the order explicit.
        self.drains.clear();
        self.streams.clear();
    }
}

/// What applying a sink returns (Beam's `PDone`): the sink's step, for example to give
/// it a stable operator id.
#[derive(Clone, Debug)]
pub struct PDone {
    pipeline: Pipeline,
    node: NodeId,
}

impl PDone {
    pub(crate) fn new(pipeline: Pipeline, node: NodeId) -> Self {
        PDone { pipeline, node }
    }

    /// Stores the sink's state (its pending transactions) under `id` in checkpoints and
    /// savepoints instead of under its step name, so that a changed job (steps renamed
    /// or moved into composites) still finds it. See
    /// [`PCollection::with_operator_id`](crate::PCollection::with_operator_id).
    pub fn with_operator_id(self, id: &str) -> Self {
        self.pipeline.set_operator_id(self.node, id);
        self
    }
}
