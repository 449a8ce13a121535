//! Backpressure: the job bounds the number of records in flight between its operators.
//!
//! Timely channels are unbounded, so a source faster than some operator downstream (a
//! slow sink, a worker that gets more keys than the others) would queue records without
//! limit: memory grows, and queued records hold the watermark back, so windows stay open
//! and state grows too. Every operator counts the records it sends into a channel (once
//! per consumer of that channel, since each consumer gets its own copy) and the records it
//! takes out of its inputs; the difference is the number of records in flight. Sources
//! stop reading while it is above the job's limit ([`Runner::max_in_flight`]) and resume
//! once consumers have caught up; an activation of a source reads no more than what is
//! left of the limit (shared by its partitions), so that it does not overshoot the limit by
//! a whole batch per partition. Records an operator keeps as state (open windows, an
//! epoch stash, a sink's transaction) are not in flight: they are bounded by the model
//! (windows close, epochs end).
//!
//! Counting is per batch (one relaxed atomic add per batch sent or received), not per
//! record.
//!
//! [`Runner::max_in_flight`]: crate::Runner::max_in_flight

use crate::time::FrontierTime;
use millstream_model::WindowedValue;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;

/// The in-flight count of one job, shared by all its workers.
#[derive(Clone, Debug, Default)]
pub(crate) struct InFlight(Arc<AtomicI64>);

impl InFlight {
    /// Records in flight now.
    pub(crate) fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// The receiving side of any input.
    pub(crate) fn input(&self) -> FlowIn {
        FlowIn(self.0.clone())
    }

    pub(crate) fn output(&self, consumers: Arc<AtomicI64>) -> FlowOut {
        FlowOut { count: self.0.clone(), consumers }
    }
}

/// Counts records taken out of an input.
#[derive(Clone, Debug)]
pub(crate) struct FlowIn(Arc<AtomicI64>);

impl FlowIn {
    #[inline]
    pub(crate) fn received(&self, n: usize) {
        if n > 0 {
            self.0.fetch_sub(n as i64, Ordering::Relaxed);
        }
    }
}

/// Counts records sent into an output channel, once per consumer of the channel.
#[derive(Clone, Debug)]
pub(crate) struct FlowOut {
    count: Arc<AtomicI64>,
    /// How many inputs read this output (set while the dataflow is built, before any
    /// record moves; an output nobody reads gets a drain, so it is at least 1 then).
    consumers: Arc<AtomicI64>,
}

impl FlowOut {
    #[inline]
    pub(crate) fn sent(&self, n: usize) {
        if n > 0 {
            let copies = self.consumers.load(Ordering::Relaxed);
            self.count.fetch_add(n as i64 * copies, Ordering::Relaxed);
        }
    }
}

/// Sends a buffer at time `at` (at or after `cap`), counting it as in flight.
pub(crate) fn send_counted<T: Clone + 'static>(
    output: &mut OutputBuilder<FrontierTime, CapacityContainerBuilder<Vec<WindowedValue<T>>>>,
    flow: &FlowOut,
    cap: &Capability<FrontierTime>,
    at: &FrontierTime,
    buffer: &mut Vec<WindowedValue<T>>,
) {
    if buffer.is_empty() {
        return;
    }
    flow.sent(buffer.len());
    if cap.time() == at {
        output.activate().session(cap).give_container(buffer);
    } else {
        let delayed = cap.delayed(at);
        output.activate().session(&delayed).give_container(buffer);
    }
    buffer.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_count_once_per_consumer_and_receives_balance_them() {
        let in_flight = InFlight::default();
        let consumers = Arc::new(AtomicI64::new(2));
        let out = in_flight.output(consumers);
        out.sent(10);
        assert_eq!(in_flight.get(), 20);
        let (a, b) = (in_flight.input(), in_flight.input());
        a.received(10);
        b.received(4);
        assert_eq!(in_flight.get(), 6);
        b.received(6);
        assert_eq!(in_flight.get(), 0);
    }
}
