//! Watermark holds: Beam's `WatermarkHold`.
//!
//! Each window may hold the output watermark with an *element hold* (at the output time
//! its pane will get: the end of the window, or the earliest / latest element timestamp)
//! and an *extra hold* at its garbage-collection time, placed for elements too late to
//! hold at their own time, after merges, and (with `ClosingBehavior::FireAlways`) after
//! every non-final firing, so the final pane can still be emitted on time downstream.

use super::key_state::WindowState;
use super::{TimeContext, LAST_TIMER};
use crate::strategy::{ClosingBehavior, TimestampCombiner, WindowingStrategy};
use crate::time::Timestamp;
use crate::window::Window;

/// Beam's `addHolds`: holds for an element at `timestamp` just added to `window`.
pub(crate) fn add_holds<A>(
    strategy: &WindowingStrategy,
    ws: &mut WindowState<A>,
    window: &Window,
    timestamp: Timestamp,
    time: &TimeContext,
) {
    if !add_element_hold(strategy, ws, window, timestamp, time) {
        add_gc_hold(strategy, ws, window, time, false);
    }
}

/// Beam's `addElementHold`: holds at the element's output time unless that is already
/// behind the output watermark or the input watermark has passed the window.
fn add_element_hold<A>(
    strategy: &WindowingStrategy,
    ws: &mut WindowState<A>,
    window: &Window,
    timestamp: Timestamp,
    time: &TimeContext,
) -> bool {
    let max_ts = window.max_timestamp();
    let hold = match strategy.timestamp_combiner {
        TimestampCombiner::EndOfWindow => max_ts,
        TimestampCombiner::Earliest | TimestampCombiner::Latest => timestamp,
    };
    if hold < time.output_watermark || max_ts < time.input_watermark {
        return false;
    }
    ws.element_hold = Some(match ws.element_hold {
        None => hold,
        Some(h) => combine(strategy.timestamp_combiner, h, hold),
    });
    true
}

fn combine(combiner: TimestampCombiner, a: Timestamp, b: Timestamp) -> Timestamp {
    match combiner {
        TimestampCombiner::Latest => a.max(b),
        TimestampCombiner::Earliest | TimestampCombiner::EndOfWindow => a.min(b),
    }
}

/// Beam's `addGarbageCollectionHold`.
fn add_gc_hold<A>(
    strategy: &WindowingStrategy,
    ws: &mut WindowState<A>,
    window: &Window,
    time: &TimeContext,
    pane_is_empty: bool,
) {
    let gc = strategy.garbage_collection_time(window);
    if gc < time.input_watermark {
        return;
    }
    if pane_is_empty && strategy.closing_behavior == ClosingBehavior::FireIfNonEmpty {
        return;
    }
    // Capped below the end of time, as Beam truncates GC holds.
    let gc = gc.min(LAST_TIMER);
    ws.extra_hold = Some(ws.extra_hold.map_or(gc, |h| h.min(gc)));
}

/// Beam's `WatermarkHold.onMerge`. `ws` is the merge result (already holding the
/// result's own holds when it was an active window); `sources` are the element holds of
/// every active window merged (the result's own included); `single_source_is_result`
/// when the result was the only active window merged.
pub(crate) fn on_merge<A>(
    strategy: &WindowingStrategy,
    ws: &mut WindowState<A>,
    sources: impl IntoIterator<Item = Option<Timestamp>>,
    window: &Window,
    single_source_is_result: bool,
    time: &TimeContext,
) {
    let combiner = strategy.timestamp_combiner;
    let mut sources = sources.into_iter().peekable();
    if sources.peek().is_none() || (single_source_is_result && combiner == TimestampCombiner::Earliest) {
        // Nothing to merge.
    } else if combiner == TimestampCombiner::EndOfWindow {
        ws.element_hold = None;
        add_element_hold(strategy, ws, window, Timestamp::MIN, time);
    } else {
        ws.element_hold = sources.flatten().reduce(|a, b| combine(combiner, a, b));
    }
    ws.extra_hold = None;
    add_gc_hold(strategy, ws, window, time, false);
}

/// Beam's `extractAndRelease`: the pane's output timestamp (the earliest hold, or the
/// end of the window when there is none or it is the GC hold); clears the holds and,
/// unless the pane is the last, re-adds a GC hold if the closing behaviour needs one.
pub(crate) fn extract_and_release<A>(
    strategy: &WindowingStrategy,
    ws: &mut WindowState<A>,
    window: &Window,
    time: &TimeContext,
    is_finished: bool,
) -> Timestamp {
    let max_ts = window.max_timestamp();
    let output = match ws.hold() {
        Some(h) if h <= max_ts => h,
        _ => max_ts,
    };
    ws.element_hold = None;
    ws.extra_hold = None;
    if !is_finished {
        add_gc_hold(strategy, ws, window, time, true);
    }
    output
}
