//! ParDo with tagged outputs: a DoFn writes to its main output and to any number of
//! additional outputs, each with its own element type (Beam's `withOutputTags`).

use crate::dofn::{guarded, DoFn, ProcessContext, TaggedBuffers, TupleTag};
use crate::element::Element;
use crate::error::RuntimeError;
use crate::graph::{NodeId, NodeKind, PortRef, Translation};
use crate::pcollection::PCollection;
use crate::time::FrontierTime;
use millstream_model::WindowedValue;
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline as Local;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::InputCapability;

/// Sends one tagged output's buffered elements downstream.
trait TaggedPort {
    /// Returns how many elements it sent.
    fn flush(&mut self, buffer: &mut Box<dyn Any>, cap: &InputCapability<FrontierTime>) -> usize;
}

struct TypedPort<U: Element> {
    output: OutputBuilder<FrontierTime, CapacityContainerBuilder<Vec<WindowedValue<U>>>>,
}

impl<U: Element> TaggedPort for TypedPort<U> {
    fn flush(&mut self, buffer: &mut Box<dyn Any>, cap: &InputCapability<FrontierTime>) -> usize {
        match buffer.downcast_mut::<Vec<WindowedValue<U>>>() {
            Some(vec) if !vec.is_empty() => {
                let n = vec.len();
                self.output.activate().session(cap).give_container(vec);
                vec.clear();
                n
            }
            _ => 0,
        }
    }
}

type Register<'s> = Box<dyn FnOnce(&mut Translation<'s>, PortRef) + 's>;
type AttachOutput = dyn for<'s> Fn(&mut OperatorBuilder<'s, FrontierTime>) -> (Box<dyn TaggedPort>, Register<'s>)
    + Send
    + Sync;

fn attach_output<F>(f: F) -> Arc<AttachOutput>
where
    F: for<'s> Fn(&mut OperatorBuilder<'s, FrontierTime>) -> (Box<dyn TaggedPort>, Register<'s>)
        + Send
        + Sync
        + 'static,
{
    Arc::new(f)
}

/// An additional output declared for a ParDo, with its type erased.
#[derive(Clone)]
pub struct OutputTag {
    id: usize,
    empty: Arc<dyn Fn() -> Box<dyn Any> + Send + Sync>,
    attach: Arc<AttachOutput>,
}

impl<U: Element> From<&TupleTag<U>> for OutputTag {
    fn from(tag: &TupleTag<U>) -> Self {
        OutputTag {
            id: tag.id,
            empty: Arc::new(|| Box::new(Vec::<WindowedValue<U>>::new())),
            attach: attach_output(|builder| {
                let (out, stream) = builder.new_output::<Vec<WindowedValue<U>>>();
                let port: Box<dyn TaggedPort> = Box::new(TypedPort::<U> { output: OutputBuilder::from(out) });
                let register: Register<'_> =
                    Box::new(move |t: &mut Translation<'_>, at: PortRef| t.insert(at, stream));
                (port, register)
            }),
        }
    }
}

/// The additional outputs of a ParDo, by tag.
pub struct TaggedOutputs {
    pipeline: crate::graph::Pipeline,
    node: NodeId,
    ports: HashMap<usize, usize>,
    strategy: Arc<millstream_model::WindowingStrategy>,
}

impl TaggedOutputs {
    /// The PCollection of the output `tag`.
    ///
    /// # Panics
    /// If `tag` was not declared for the ParDo: a programming error in the pipeline.
    pub fn get<U: Element>(&self, tag: &TupleTag<U>) -> PCollection<U> {
        let port =
            *self.ports.get(&tag.id).unwrap_or_else(|| panic!("output tag {} was not declared", tag.name));
        PCollection::from_port(
            self.pipeline.clone(),
            PortRef { node: self.node, port },
            self.strategy.clone(),
        )
    }
}

impl<T: Element> PCollection<T> {
    /// A ParDo with additional outputs: the DoFn writes to them with
    /// [`ProcessContext::output_to`].
    ///
    /// ```
    /// use millstream_runtime::{DoFn, Pipeline, ProcessContext, Runner, TupleTag, UserError};
    /// #[derive(Clone)]
    /// struct ParseNumbers { errors: TupleTag<String> }
    /// impl DoFn<String> for ParseNumbers {
    ///     type Output = i64;
    ///     fn process(&mut self, s: String, ctx: &mut ProcessContext<'_, i64>) -> Result<(), UserError> {
    ///         match s.parse() {
    ///             Ok(n) => ctx.output(n),
    ///             Err(_) => ctx.output_to(&self.errors, s)?,
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// let p = Pipeline::new();
    /// let errors = TupleTag::<String>::new("errors");
    /// let (numbers, others) = p
    ///     .create(vec!["1".to_string(), "x".to_string()])
    ///     .par_do_with_outputs("Parse", ParseNumbers { errors: errors.clone() }, &[(&errors).into()]);
    /// let bad = others.get(&errors).collect();
    /// let good = numbers.collect();
    /// Runner::new().run(&p).unwrap();
    /// assert_eq!(good.values(), vec![1]);
    /// assert_eq!(bad.values(), vec!["x".to_string()]);
    /// ```
    pub fn par_do_with_outputs<D: DoFn<T>>(
        &self,
        name: &str,
        dofn: D,
        tags: &[OutputTag],
    ) -> (PCollection<D::Output>, TaggedOutputs) {
        let input = self.port;
        let tags: Vec<OutputTag> = tags.to_vec();
        let build_tags = tags.clone();
        let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
            let stream = t.stream::<T>(input)?;
            let job = t.job.clone();
            let step = t.name(node).to_owned();
            let mut builder = OperatorBuilder::new(step.clone(), t.scope);
            let mut input = builder.new_input(stream, Local);
            let (main_out, main_stream) = builder.new_output::<Vec<WindowedValue<D::Output>>>();
            let mut main_out = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(main_out);
            let mut ports = Vec::with_capacity(build_tags.len());
            let mut registers = Vec::with_capacity(build_tags.len());
            for tag in &build_tags {
                let (port, register) = (tag.attach)(&mut builder);
                ports.push(port);
                registers.push(register);
            }
            let mut tagged = TaggedBuffers {
                tags: build_tags.iter().map(|t| t.id).collect(),
                buffers: build_tags.iter().map(|t| (t.empty)()).collect(),
            };
            let mut dofn = dofn.clone();
            let flow_in = t.flow_in();
            let main_flow = t.flow_out(PortRef { node, port: 0 });
            let tagged_flows: Vec<_> =
                (0..build_tags.len()).map(|i| t.flow_out(PortRef { node, port: i + 1 })).collect();
            builder.build(move |_caps| {
                dofn.setup();
                let mut buffer: Vec<WindowedValue<D::Output>> = Vec::new();
                move |_frontiers| {
                    input.for_each(|cap, data| {
                        flow_in.received(data.len());
                        for wv in data.drain(..) {
                            let WindowedValue { value, timestamp, window, pane, retraction } = wv;
                            let mut ctx = ProcessContext {
                                timestamp,
                                window,
                                pane,
                                retraction,
                                main: &mut buffer,
                                tagged: &mut tagged,
                                side_inputs: None,
                            };
                            if let Err(e) = guarded(|| dofn.process(value, &mut ctx)) {
                                job.fail(RuntimeError::UserFunction { step: step.clone(), message: e.0 });
                            }
                        }
                        if !buffer.is_empty() {
                            main_flow.sent(buffer.len());
                            main_out.activate().session(&cap).give_container(&mut buffer);
                            buffer.clear();
                        }
                        for ((port, buf), flow) in
                            ports.iter_mut().zip(tagged.buffers.iter_mut()).zip(&tagged_flows)
                        {
                            flow.sent(port.flush(buf, &cap));
                        }
                    });
                }
            });
            t.insert(PortRef { node, port: 0 }, main_stream);
            for (i, register) in registers.into_iter().enumerate() {
                register(t, PortRef { node, port: i + 1 });
            }
            Ok(())
        });
        let node = self.pipeline.add_node(name, NodeKind::ParDo, vec![input], build);
        let ports = tags.iter().enumerate().map(|(i, t)| (t.id, i + 1)).collect();
        (
            PCollection::from_port(self.pipeline.clone(), PortRef { node, port: 0 }, self.strategy.clone()),
            TaggedOutputs { pipeline: self.pipeline.clone(), node, ports, strategy: self.strategy.clone() },
        )
    }
}
