//! Fusion: element-wise steps run together in one timely operator.
//!
//! * **Producer-consumer fusion**: a chain `a -> b -> c` of element-wise steps where each
//!   intermediate output has exactly one reader runs as one operator that pushes each
//!   input batch through the stages in turn.
//! * **Sibling fusion**: element-wise steps that read the same collection run in one
//!   operator with one input; each input batch is handed to each sibling's chain (a copy
//!   for all but the last), and each chain has its own output.
//!
//! Every element-wise node (see `PCollection::element_wise`) carries a [`Fusable`]: a
//! factory of its type-erased [`Stage`] and the typed code that adds its output to a
//! fused operator, or builds a fused operator reading its input. A stage is called once
//! per batch (dynamic dispatch per batch and stage); inside, the step's own typed loop
//! runs per record. Intermediate outputs never enter a timely channel, so they are not
//! counted as in flight; the fused operator counts what it takes from its input and what
//! it sends on each output, as separate operators would at the edges of the group.

use crate::context::JobContext;
use crate::dofn::{guarded, UserError};
use crate::element::Element;
use crate::error::RuntimeError;
use crate::flow::FlowOut;
use crate::graph::{NodeId, PortRef, Translation};
use crate::time::FrontierTime;
use millstream_model::WindowedValue;
use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline as Local;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::InputCapability;

/// One element-wise step inside a fused operator, with its input and output types
/// erased. It owns its output buffer.
pub(crate) trait Stage {
    /// Runs a batch (a `Vec<WindowedValue<In>>`, left empty) through the step, appending
    /// to the output buffer. Errors fail the job, naming the step.
    fn run(&mut self, input: &mut dyn Any);
    /// The output buffer (a `Vec<WindowedValue<Out>>`); its reader empties it.
    fn output(&mut self) -> &mut dyn Any;
}

/// An output of a fused operator (the last stage of a chain), its type erased.
pub(crate) trait FusedOutput {
    /// Sends the batch (a `Vec<WindowedValue<Out>>`, left empty) at `cap`'s time.
    fn send(&mut self, cap: &InputCapability<FrontierTime>, batch: &mut dyn Any);
}

/// Makes a node's stage on one worker, given the job and the step's name.
pub(crate) type StageFactory = dyn Fn(Arc<JobContext>, String) -> Box<dyn Stage> + Send + Sync;

/// Adds a node's output (port 0) to a fused operator being built.
pub(crate) type AddOutput = dyn for<'s> Fn(&mut Translation<'s>, &mut OperatorBuilder<'s, FrontierTime>, PortRef) -> ExitParts<'s>
    + Send
    + Sync;

/// Builds a fused operator whose input has the node's input type.
pub(crate) type BuildGroup =
    dyn for<'s> Fn(&mut Translation<'s>, &GroupSpec) -> Result<(), RuntimeError> + Send + Sync;

/// What an output added to a fused operator gives back: the sender, and what registers
/// its stream with the translation once the operator is built.
pub(crate) struct ExitParts<'s> {
    output: Box<dyn FusedOutput>,
    insert: Box<dyn FnOnce(&mut Translation<'s>) + 's>,
}

/// What an element-wise node carries so that the optimizer can fuse it.
#[derive(Clone)]
pub(crate) struct Fusable {
    pub(crate) stage: Arc<StageFactory>,
    pub(crate) add_output: Arc<AddOutput>,
    pub(crate) build_group: Arc<BuildGroup>,
}

/// One chain of a fused operator: its nodes in order, the last one's output being the
/// chain's output.
pub(crate) struct ChainSpec {
    pub(crate) nodes: Vec<(NodeId, Arc<StageFactory>)>,
    pub(crate) exit: Arc<AddOutput>,
}

/// A fused operator: the collection it reads and its chains (one, or several siblings).
pub(crate) struct GroupSpec {
    pub(crate) input: PortRef,
    pub(crate) chains: Vec<ChainSpec>,
}

/// The [`Fusable`] of an element-wise node from `T` to `O` whose per-worker function
/// `make` builds.
pub(crate) fn fusable<T, O, F, M>(make: Arc<M>) -> Fusable
where
    T: Element,
    O: Element,
    F: FnMut(WindowedValue<T>, &mut Vec<WindowedValue<O>>) -> Result<(), UserError> + 'static,
    M: Fn() -> F + Send + Sync + 'static,
{
    let stage: Arc<StageFactory> = Arc::new(move |job: Arc<JobContext>, step: String| -> Box<dyn Stage> {
        Box::new(TypedStage::<T, O, F> { f: make(), out: Vec::new(), job, step, _input: PhantomData })
    });
    Fusable { stage, add_output: Arc::new(add_output::<O>), build_group: Arc::new(build_group::<T>) }
}

struct TypedStage<T, O, F> {
    f: F,
    out: Vec<WindowedValue<O>>,
    job: Arc<JobContext>,
    step: String,
    _input: PhantomData<fn(T)>,
}

impl<T, O, F> Stage for TypedStage<T, O, F>
where
    T: 'static,
    O: 'static,
    F: FnMut(WindowedValue<T>, &mut Vec<WindowedValue<O>>) -> Result<(), UserError>,
{
    fn run(&mut self, input: &mut dyn Any) {
        let Some(input) = input.downcast_mut::<Vec<WindowedValue<T>>>() else {
            self.job.fail(type_mismatch(&self.step));
            return;
        };
        let (f, out) = (&mut self.f, &mut self.out);
        for wv in input.drain(..) {
            if let Err(e) = guarded(|| f(wv, out)) {
                self.job.fail(RuntimeError::UserFunction { step: self.step.clone(), message: e.0 });
            }
        }
    }

    fn output(&mut self) -> &mut dyn Any {
        &mut self.out
    }
}

/// A batch of another type than the stage expects: a bug in the optimizer, reported as
/// a translation error rather than a panic.
fn type_mismatch(step: &str) -> RuntimeError {
    RuntimeError::Translation(format!("step {step}: a fused stage received a batch of an unexpected type"))
}

struct TypedExit<O: Element> {
    output: OutputBuilder<FrontierTime, CapacityContainerBuilder<Vec<WindowedValue<O>>>>,
    flow: FlowOut,
    job: Arc<JobContext>,
    step: String,
}

impl<O: Element> FusedOutput for TypedExit<O> {
    fn send(&mut self, cap: &InputCapability<FrontierTime>, batch: &mut dyn Any) {
        let Some(batch) = batch.downcast_mut::<Vec<WindowedValue<O>>>() else {
            self.job.fail(type_mismatch(&self.step));
            return;
        };
        if batch.is_empty() {
            return;
        }
        self.flow.sent(batch.len());
        self.output.activate().session(cap).give_container(batch);
        batch.clear();
    }
}

fn add_output<'s, O: Element>(
    t: &mut Translation<'s>,
    builder: &mut OperatorBuilder<'s, FrontierTime>,
    port: PortRef,
) -> ExitParts<'s> {
    let (output, stream) = builder.new_output::<Vec<WindowedValue<O>>>();
    let exit = TypedExit {
        output: OutputBuilder::from(output),
        flow: t.flow_out(port),
        job: t.job.clone(),
        step: t.name(port.node).to_owned(),
    };
    ExitParts {
        output: Box::new(exit),
        insert: Box::new(move |t: &mut Translation<'s>| t.insert(port, stream)),
    }
}

/// A chain's stages and output on one worker.
type Chain = (Vec<Box<dyn Stage>>, Box<dyn FusedOutput>);

/// Builds the fused operator `spec` describes, reading a collection of `T`.
fn build_group<T: Element>(t: &mut Translation<'_>, spec: &GroupSpec) -> Result<(), RuntimeError> {
    let stream = t.stream::<T>(spec.input)?;
    let name = spec
        .chains
        .iter()
        .map(|c| c.nodes.iter().map(|(n, _)| t.name(*n)).collect::<Vec<_>>().join("+"))
        .collect::<Vec<_>>()
        .join("|");
    let mut builder = OperatorBuilder::new(name, t.scope);
    let mut input = builder.new_input(stream, Local);
    let mut chains: Vec<Chain> = Vec::with_capacity(spec.chains.len());
    let mut inserts = Vec::with_capacity(spec.chains.len());
    for chain in &spec.chains {
        let Some(&(last, _)) = chain.nodes.last() else { continue };
        let stages =
            chain.nodes.iter().map(|(node, make)| make(t.job.clone(), t.name(*node).to_owned())).collect();
        let ExitParts { output, insert } = (chain.exit)(t, &mut builder, PortRef { node: last, port: 0 });
        chains.push((stages, output));
        inserts.push(insert);
    }
    let flow_in = t.flow_in();
    builder.build(move |_caps| {
        // A copy of the input for every sibling chain but the last, reused across batches.
        let mut copy: Vec<WindowedValue<T>> = Vec::new();
        move |_frontiers| {
            input.for_each(|cap, data| {
                flow_in.received(data.len());
                let siblings = chains.len();
                for (i, (stages, output)) in chains.iter_mut().enumerate() {
                    if i + 1 < siblings {
                        copy.clear();
                        copy.extend(data.iter().cloned());
                        run_chain(stages, output.as_mut(), &cap, &mut copy);
                    } else {
                        run_chain(stages, output.as_mut(), &cap, data);
                    }
                }
            });
        }
    });
    for insert in inserts {
        insert(t);
    }
    Ok(())
}

/// Pushes one batch through a chain's stages and sends the result.
fn run_chain(
    stages: &mut [Box<dyn Stage>],
    output: &mut dyn FusedOutput,
    cap: &InputCapability<FrontierTime>,
    batch: &mut dyn Any,
) {
    let Some((first, rest)) = stages.split_first_mut() else { return };
    first.run(batch);
    let mut previous = first;
    for stage in rest {
        stage.run(previous.output());
        previous = stage;
    }
    output.send(cap, previous.output());
}
