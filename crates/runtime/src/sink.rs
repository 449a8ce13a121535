//! Sinks: where a PCollection leaves the pipeline.
//!
//! A [`Sink`] opens one [`SinkWriter`] per worker; the writer gets batches of windowed
//! values and is finished when its input is complete. (Exactly-once sinks that commit per
//! checkpoint build on this in the checkpointing work.)

use crate::element::Element;
use crate::error::RuntimeError;
use crate::graph::{NodeId, NodeKind, Translation};
use crate::pcollection::PCollection;
use millstream_model::WindowedValue;
use std::sync::Arc;
use timely::dataflow::channels::pact::Pipeline as Local;
use timely::dataflow::operators::generic::Operator;

/// Writes one worker's share of a PCollection.
pub trait SinkWriter<T>: 'static {
    /// Writes a batch.
    fn write(&mut self, batch: &[WindowedValue<T>]) -> Result<(), String>;
    /// The input is complete: flush and close.
    fn finish(&mut self) -> Result<(), String>;
}

/// Creates the writers of a sink.
pub trait Sink<T>: Send + Sync + 'static {
    /// Opens the writer of worker `worker` of `workers`.
    fn open(&self, worker: usize, workers: usize) -> Result<Box<dyn SinkWriter<T>>, String>;
}

impl<T: Element> PCollection<T> {
    /// Writes the collection to `sink`. Errors fail the job, naming the step.
    pub fn write_to<S: Sink<T>>(&self, name: &str, sink: S) {
        let input = self.port;
        let sink = Arc::new(sink);
        let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
            let stream = t.stream::<T>(input)?;
            let job = t.job.clone();
            let step = t.name(node).to_owned();
            let mut writer = match sink.open(t.scope.index(), t.scope.peers()) {
                Ok(w) => Some(w),
                Err(message) => {
                    // Keep the dataflow's shape the same on every worker; just fail the job.
                    job.fail(RuntimeError::Sink { sink: step.clone(), message });
                    None
                }
            };
            let flow_in = t.flow_in();
            stream.sink(Local, &step.clone(), move |(input, frontier)| {
                input.for_each(|_cap, data| {
                    flow_in.received(data.len());
                    if let Some(w) = writer.as_mut() {
                        if let Err(message) = w.write(data) {
                            job.fail(RuntimeError::Sink { sink: step.clone(), message });
                            writer = None;
                        }
                    }
                    data.clear();
                });
                if frontier.is_empty() {
                    if let Some(mut w) = writer.take() {
                        if let Err(message) = w.finish() {
                            job.fail(RuntimeError::Sink { sink: step.clone(), message });
                        }
                    }
                }
            });
            Ok(())
        });
        self.pipeline.add_node(name, NodeKind::Sink, vec![input], build);
    }
}
