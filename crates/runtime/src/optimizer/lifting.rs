//! Combiner lifting: `CombinePerKey` pre-aggregates on each worker before the shuffle.
//!
//! Without lifting, every `(key, value)` crosses the exchange to the worker that owns the
//! key, where the grouping operator adds it to its window's accumulator. With lifting, a
//! partial-combine operator in front of the exchange folds the input batches of each
//! activation that travel at the same times, per key and window, into one [`Partial`] (an
//! accumulator, the combined timestamp and the number of inputs); the grouping operator
//! then runs the same [`WindowReducer`] with [`Lifted`], an adapter CombineFn whose inputs
//! are accumulators and whose `add_input` is `merge_accumulators`. Everything is sent
//! before the activation ends, so nothing is kept across activations and checkpoints hold
//! exactly what they held before (the grouping operator's state).
//!
//! Lifting must not change results. The reducer decides after *each* input whether a pane
//! fires, so lifting is only sound where folding several inputs into one cannot change a
//! decision:
//! * non-merging windows only (merging needs each element's own window);
//! * triggers made only of event-time parts ([`lifts_trigger`]): a count trigger would see
//!   fewer inputs, and a processing-time deadline that is already due when a batch arrives
//!   fires on the batch's first element, splitting it across two panes;
//! * per element, only what is provably on time: the grouping's input watermark is at most
//!   the watermark the batch travels at (`W`), so an element whose output time is at or
//!   after `W` (its window's end for end-of-window timestamps, its own timestamp
//!   otherwise) can neither fire a pane on arrival, nor be too late, nor be late for the
//!   output (holds). Other elements pass through one by one, as [`Partial`]s of one input,
//!   and the reducer treats them exactly as before.
//!
//! [`WindowReducer`]: millstream_model::WindowReducer

use crate::align::stamp_of;
use crate::error::RuntimeError;
use crate::flow::FlowOut;
use crate::graph::{NodeId, Translation, WStream};
use crate::key::Key;
use crate::time::FrontierTime;
use millstream_model::{
    CombineFn, Timestamp, TimestampCombiner, Trigger, Window, WindowedValue, WindowingStrategy,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Where each (key, window) partial of the current activation is in the batch (ahash:
/// randomly keyed, several times faster than SipHash on this per-record lookup).
type FoldIndex<K> = HashMap<(K, Window), usize, ahash::RandomState>;
use std::marker::PhantomData;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use timely::dataflow::channels::pact::Pipeline as Local;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::InputCapability;

/// A pre-aggregated group of inputs of one key and window: what crosses the exchange when
/// combiners are lifted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Partial<A> {
    /// The inputs, combined.
    pub(crate) accumulator: A,
    /// How many inputs it holds (dropped-data counters count inputs, not partials).
    pub(crate) inputs: u64,
}

/// The CombineFn the grouping runs when combiners are lifted: its inputs are partial
/// accumulators, merged into the window's accumulator.
pub(crate) struct Lifted<V, C> {
    inner: Arc<C>,
    _input: PhantomData<fn(V)>,
}

impl<V, C> Lifted<V, C> {
    pub(crate) fn new(inner: Arc<C>) -> Self {
        Lifted { inner, _input: PhantomData }
    }
}

impl<V: 'static, C: CombineFn<V>> CombineFn<Partial<C::Accumulator>> for Lifted<V, C> {
    type Accumulator = C::Accumulator;
    type Output = C::Output;

    fn create_accumulator(&self) -> C::Accumulator {
        self.inner.create_accumulator()
    }

    fn add_input(&self, accumulator: &mut C::Accumulator, input: Partial<C::Accumulator>) {
        self.inner.merge_accumulators(accumulator, input.accumulator);
    }

    fn merge_accumulators(&self, accumulator: &mut C::Accumulator, other: C::Accumulator) {
        self.inner.merge_accumulators(accumulator, other);
    }

    fn extract_output(&self, accumulator: &C::Accumulator) -> C::Output {
        self.inner.extract_output(accumulator)
    }
}

/// Whether a trigger is made only of event-time parts, so that folding inputs that arrive
/// together cannot change when it fires (see the module documentation).
pub(crate) fn lifts_trigger(trigger: &Trigger) -> bool {
    match trigger {
        Trigger::Default | Trigger::Never => true,
        Trigger::AfterWatermark { early, late } => {
            early.as_deref().is_none_or(lifts_trigger) && late.as_deref().is_none_or(lifts_trigger)
        }
        Trigger::AfterCount(_) | Trigger::AfterProcessingTime { .. } => false,
        Trigger::Repeatedly(t) => lifts_trigger(t),
        Trigger::AfterEach(ts) | Trigger::AfterFirst(ts) | Trigger::AfterAll(ts) => {
            ts.iter().all(lifts_trigger)
        }
        Trigger::OrFinally { main, until } => lifts_trigger(main) && lifts_trigger(until),
    }
}

/// Why a combine over `strategy` cannot be lifted, or `None` if it can.
pub(crate) fn why_not_liftable(strategy: &WindowingStrategy) -> Option<&'static str> {
    if strategy.window_fn.is_merging() {
        Some("merging windows")
    } else if !lifts_trigger(&strategy.trigger) {
        Some("trigger with a count or processing-time part")
    } else {
        None
    }
}

/// A batch of partials.
type PartialBatch<K, A> = Vec<WindowedValue<(K, Partial<A>)>>;

/// The stream of partials that crosses the shuffle.
type Partials<'s, K, A> = WStream<'s, (K, Partial<A>)>;

/// Adds, in front of a grouping, the operator that folds input batches (those of one
/// activation that travel at the same times) per key and window into [`Partial`]s;
/// returns its output stream.
pub(crate) fn partial_combine<'s, K, V, C>(
    t: &mut Translation<'s>,
    node: NodeId,
    stream: WStream<'s, (K, V)>,
    strategy: &WindowingStrategy,
    combine_fn: Arc<C>,
) -> Result<Partials<'s, K, C::Accumulator>, RuntimeError>
where
    K: Key,
    V: Clone + 'static,
    C: CombineFn<V>,
{
    let name = format!("{}/PartialCombine", t.name(node));
    let combiner = strategy.timestamp_combiner;
    let flow_in = t.flow_in();
    // The partials go to exactly one reader: the grouping operator's exchange.
    let flow_out: FlowOut = t.job.in_flight.output(Arc::new(AtomicI64::new(1)));
    let out = stream.unary(Local, &name, move |_cap, _info| {
        // Per activation only: batches that travel at the same times (consecutive batches
        // of one source activation usually do) fold together; everything is sent before
        // the activation ends, so nothing is held across activations and checkpoints are
        // unaffected.
        let mut index: FoldIndex<K> = FoldIndex::default();
        let mut buffer: PartialBatch<K, C::Accumulator> = Vec::new();
        move |input, output| {
            let mut current: Option<(InputCapability<FrontierTime>, Timestamp)> = None;
            let mut flush = |current: &mut Option<(InputCapability<FrontierTime>, Timestamp)>,
                             buffer: &mut PartialBatch<K, C::Accumulator>,
                             index: &mut FoldIndex<K>| {
                index.clear();
                if let Some((cap, _)) = current.take() {
                    if !buffer.is_empty() {
                        flow_out.sent(buffer.len());
                        output.session(&cap).give_container(buffer);
                        buffer.clear();
                    }
                }
            };
            input.for_each(|cap, data| {
                flow_in.received(data.len());
                if current.as_ref().is_some_and(|(c, _)| c.stamp() != cap.stamp()) {
                    flush(&mut current, &mut buffer, &mut index);
                }
                let watermark = match &current {
                    Some((_, w)) => *w,
                    None => {
                        let w = Timestamp(stamp_of(cap.stamp().iter()).1);
                        current = Some((cap, w));
                        w
                    }
                };
                for wv in data.drain(..) {
                    fold(&*combine_fn, combiner, watermark, wv, &mut index, &mut buffer);
                }
            });
            flush(&mut current, &mut buffer, &mut index);
        }
    });
    Ok(out)
}

/// Folds one element into the partials of the batch (see the module documentation for
/// which elements may be folded).
fn fold<K: Key, V, C: CombineFn<V>>(
    combine_fn: &C,
    combiner: TimestampCombiner,
    watermark: Timestamp,
    wv: WindowedValue<(K, V)>,
    index: &mut FoldIndex<K>,
    buffer: &mut PartialBatch<K, C::Accumulator>,
) {
    let WindowedValue { value: (key, value), timestamp, window, pane, retraction } = wv;
    let output_time = match combiner {
        TimestampCombiner::EndOfWindow => window.max_timestamp(),
        TimestampCombiner::Earliest | TimestampCombiner::Latest => timestamp,
    };
    // Possibly late at the grouping: such an element must reach the reducer alone.
    let foldable = output_time >= watermark;
    if foldable {
        if let Some(&i) = index.get(&(key.clone(), window)) {
            if let Some(partial) = buffer.get_mut(i) {
                combine_fn.add_input(&mut partial.value.1.accumulator, value);
                partial.value.1.inputs += 1;
                partial.timestamp = match combiner {
                    TimestampCombiner::Latest => partial.timestamp.max(timestamp),
                    TimestampCombiner::Earliest | TimestampCombiner::EndOfWindow => {
                        partial.timestamp.min(timestamp)
                    }
                };
            }
            return;
        }
        index.insert((key.clone(), window), buffer.len());
    }
    let mut accumulator = combine_fn.create_accumulator();
    combine_fn.add_input(&mut accumulator, value);
    buffer.push(WindowedValue {
        value: (key, Partial { accumulator, inputs: 1 }),
        timestamp,
        window,
        pane,
        retraction,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use millstream_model::Duration;

    #[test]
    fn event_time_triggers_lift_and_count_or_processing_time_ones_do_not() {
        assert!(lifts_trigger(&Trigger::Default));
        assert!(lifts_trigger(&Trigger::after_watermark()));
        assert!(lifts_trigger(&Trigger::repeatedly(Trigger::after_watermark())));
        assert!(!lifts_trigger(&Trigger::after_watermark().with_late_firings(Trigger::after_count(1))));
        assert!(!lifts_trigger(
            &Trigger::after_watermark()
                .with_early_firings(Trigger::after_processing_time(Duration::from_secs(1)))
        ));
        assert!(!lifts_trigger(&Trigger::AfterFirst(vec![
            Trigger::after_watermark(),
            Trigger::after_count(3)
        ])));
    }
}
