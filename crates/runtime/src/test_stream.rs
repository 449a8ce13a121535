//! [`TestStream`]: a deterministic input for tests of event-time and processing-time
//! behaviour (Beam's `TestStream`).
//!
//! Events run in order on worker 0. Elements are emitted at the current watermark;
//! advancing the watermark moves the source's frontier and waits until the whole pipeline
//! has seen it (so later elements are judged late or not against it). Advancing processing time waits
//! until everything emitted so far has been fully processed by the whole pipeline (the
//! epoch of the frontier time is complete), moves the job's manual clock, and waits again
//! until the firings that the new time causes have been processed. So results never
//! depend on thread scheduling or on the number of workers.

use crate::element::Element;
use crate::error::RuntimeError;
use crate::graph::{NodeId, NodeKind, Pipeline, PortRef, Translation};
use crate::pcollection::PCollection;
use crate::time::{epoch_complete, frontier_time, FrontierTime};
use millstream_model::{Duration, Timestamp, WindowedValue, WindowingStrategy};
use std::sync::Arc;
use timely::dataflow::operators::generic::operator::source as timely_source;
use timely::dataflow::operators::Capability;

/// One step of a [`TestStream`].
#[derive(Clone, Debug, PartialEq)]
pub enum TestEvent<T> {
    /// Emit these elements with these timestamps.
    AddElements(Vec<(T, Timestamp)>),
    /// Move the watermark to this timestamp (never backwards).
    AdvanceWatermark(Timestamp),
    /// Move processing time forward by this much.
    AdvanceProcessingTime(Duration),
    /// Move the watermark to the end of time: the input is complete.
    AdvanceWatermarkToInfinity,
}

/// A scripted input: elements, watermark moves and processing-time moves, in order.
///
/// ```
/// use millstream_model::{Duration, Timestamp};
/// use millstream_runtime::TestStream;
/// let input = TestStream::new()
///     .add_elements(vec![("a", Timestamp::hms(12, 0, 26))])
///     .advance_processing_time(Duration::from_secs(30))
///     .advance_watermark_to(Timestamp::hms(12, 2, 0))
///     .advance_watermark_to_infinity();
/// assert_eq!(input.events().len(), 4);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TestStream<T> {
    events: Vec<TestEvent<T>>,
}

impl<T> Default for TestStream<T> {
    fn default() -> Self {
        TestStream { events: Vec::new() }
    }
}

impl<T> TestStream<T> {
    /// An empty script.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds elements with timestamps.
    pub fn add_elements(mut self, elements: Vec<(T, Timestamp)>) -> Self {
        self.events.push(TestEvent::AddElements(elements));
        self
    }
    /// Advances the watermark.
    pub fn advance_watermark_to(mut self, watermark: Timestamp) -> Self {
        self.events.push(TestEvent::AdvanceWatermark(watermark));
        self
    }
    /// Advances processing time.
    pub fn advance_processing_time(mut self, by: Duration) -> Self {
        self.events.push(TestEvent::AdvanceProcessingTime(by));
        self
    }
    /// Completes the input.
    pub fn advance_watermark_to_infinity(mut self) -> Self {
        self.events.push(TestEvent::AdvanceWatermarkToInfinity);
        self
    }
    /// The script.
    pub fn events(&self) -> &[TestEvent<T>] {
        &self.events
    }
}

enum Phase {
    Ready,
    /// Waiting until every epoch up to this one is processed; then moves the clock by the
    /// duration, if any, and waits again for what that fires.
    Await(u64, Option<Duration>),
}

impl Pipeline {
    /// Reads a [`TestStream`]. A pipeline with a TestStream runs on a manual clock that
    /// only the TestStream moves.
    pub fn test_stream<T: Element>(&self, stream: TestStream<T>) -> PCollection<T> {
        self.lock().uses_manual_clock = true;
        let events = Arc::new(stream.events);
        let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
            let job = t.job.clone();
            let clock = job.manual_clock.clone().ok_or_else(|| {
                RuntimeError::Config("a TestStream needs the job to run on a manual clock".into())
            })?;
            let events = events.clone();
            let probe = t.probe.clone();
            let scope = t.scope;
            let is_driver = t.scope.index() == 0;
            let step = t.name(node).to_owned();
            let flow_out = t.flow_out(PortRef { node, port: 0 });
            let stream = timely_source(t.scope, &step, move |cap: Capability<FrontierTime>, info| {
                let activator = scope.activator_for(info.address);
                let mut cap = if is_driver { Some(cap) } else { None };
                let mut next = 0usize;
                let mut phase = Phase::Ready;
                move |output| loop {
                    let Some(c) = cap.as_mut() else { return };
                    let (epoch, watermark) = (c.time().outer, Timestamp(c.time().inner));
                    match phase {
                        Phase::Ready => {
                            let Some(event) = events.get(next) else {
                                cap = None;
                                return;
                            };
                            next += 1;
                            match event {
                                TestEvent::AddElements(elements) => {
                                    let mut batch: Vec<WindowedValue<T>> = elements
                                        .iter()
                                        .map(|(v, ts)| WindowedValue::in_global_window(v.clone(), *ts))
                                        .collect();
                                    flow_out.sent(batch.len());
                                    output.session(&*c).give_container(&mut batch);
                                }
                                TestEvent::AdvanceWatermark(to) if *to >= Timestamp::MAX => {
                                    cap = None;
                                    return;
                                }
                                TestEvent::AdvanceWatermark(to) => {
                                    // A new epoch, so that what follows is processed only
                                    // once the whole pipeline has seen the new watermark.
                                    c.downgrade(&frontier_time(epoch + 1, (*to).max(watermark)));
                                    phase = Phase::Await(epoch, None);
                                }
                                TestEvent::AdvanceProcessingTime(by) => {
                                    c.downgrade(&frontier_time(epoch + 1, watermark));
                                    phase = Phase::Await(epoch, Some(*by));
                                }
                                TestEvent::AdvanceWatermarkToInfinity => {
                                    cap = None;
                                    return;
                                }
                            }
                        }
                        Phase::Await(done, then) => {
                            if !probe.with_frontier(|f| epoch_complete(f, done)) {
                                activator.activate();
                                return;
                            }
                            match then {
                                Some(by) => {
                                    clock.advance(by);
                                    c.downgrade(&frontier_time(epoch + 1, watermark));
                                    phase = Phase::Await(epoch, None);
                                }
                                None => phase = Phase::Ready,
                            }
                        }
                    }
                }
            });
            t.insert(PortRef { node, port: 0 }, stream);
            Ok(())
        });
        let node = self.add_node("TestStream", NodeKind::Source, vec![], build);
        self.set_checkpointed(node, false);
        PCollection::from_port(self.clone(), PortRef { node, port: 0 }, Arc::new(WindowingStrategy::global()))
    }
}
