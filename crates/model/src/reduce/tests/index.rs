//! The per-key timer and hold indexes: after any sequence of elements (merging or not,
//! late or not), watermark and processing-time moves, firings, closings and garbage
//! collection, the indexed queries agree with a brute-force scan of the windows, the
//! index equals one rebuilt from scratch, and a state restored from a checkpoint (whose
//! index is not serialized) answers the same and behaves the same.

use super::{Harness, Sum};
use crate::reduce::index::TimerIndex;
use crate::reduce::{KeyState, LAST_TIMER};
use crate::strategy::{
    AccumulationMode, ClosingBehavior, OnTimeBehavior, TimestampCombiner, WindowingStrategy,
};
use crate::time::{Duration, Timestamp};
use crate::trigger::Trigger;
use crate::window::{
    FixedWindows, GlobalWindows, Sessions, SharedWindowFn, SlidingWindows, UntilNextElement, Window,
};
use proptest::prelude::*;
use std::sync::Arc;

#[derive(Clone, Debug)]
enum Op {
    /// An element at the current watermark (or 0 before the first move) plus an offset
    /// (negative offsets make late data).
    Element { value: i64, offset: i64 },
    /// Moves the input watermark forward.
    Watermark(i64),
    /// Moves processing time forward.
    ProcessingTime(i64),
    /// Checkpoints and restores the state (dropping its index, as deserialization does).
    Restore,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1i64..100, -25i64..60).prop_map(|(value, offset)| Op::Element { value, offset }),
        2 => (0i64..25).prop_map(Op::Watermark),
        2 => (0i64..12).prop_map(Op::ProcessingTime),
        1 => Just(Op::Restore),
    ]
}

fn window_fn(i: usize) -> SharedWindowFn {
    match i {
        0 => Arc::new(FixedWindows::of(Duration(10))),
        1 => Arc::new(SlidingWindows::of(Duration(20), Duration(10))),
        2 => Arc::new(Sessions::with_gap_duration(Duration(10))),
        3 => Arc::new(UntilNextElement::with_max_length(Duration(15))),
        _ => Arc::new(GlobalWindows),
    }
}

fn trigger(i: usize) -> Trigger {
    let pt = |d| Trigger::after_processing_time(Duration(d));
    match i {
        0 => Trigger::Default,
        1 => Trigger::repeatedly(Trigger::after_count(2)),
        // Finishes: closed windows until garbage collection.
        2 => Trigger::after_count(3),
        3 => pt(7),
        4 => Trigger::after_watermark().with_early_firings(pt(5)).with_late_firings(Trigger::after_count(1)),
        5 => Trigger::repeatedly(pt(4)).or_finally(Trigger::after_count(5)),
        6 => Trigger::AfterEach(vec![Trigger::after_count(2), Trigger::after_watermark(), pt(3)]),
        7 => Trigger::repeatedly(Trigger::AfterFirst(vec![pt(6), Trigger::after_count(3)])),
        8 => Trigger::AfterAll(vec![pt(2), Trigger::after_count(2)]),
        _ => Trigger::Never,
    }
}

/// Index into each choice list.
type Choices = (usize, usize, usize, usize, usize, bool, bool);

fn choices() -> impl Strategy<Value = Choices> {
    (0usize..5, 0usize..10, 0usize..3, 0usize..3, 0usize..3, any::<bool>(), any::<bool>())
}

fn make_strategy((w, t, acc, lateness, combiner, closing, on_time): Choices) -> WindowingStrategy {
    WindowingStrategy {
        window_fn: window_fn(w),
        trigger: trigger(t),
        accumulation: [
            AccumulationMode::Discarding,
            AccumulationMode::Accumulating,
            AccumulationMode::AccumulatingAndRetracting,
        ][acc],
        allowed_lateness: Duration([0, 15, 1_000][lateness]),
        timestamp_combiner: [
            TimestampCombiner::EndOfWindow,
            TimestampCombiner::Earliest,
            TimestampCombiner::Latest,
        ][combiner],
        closing_behavior: if closing { ClosingBehavior::FireAlways } else { ClosingBehavior::FireIfNonEmpty },
        on_time_behavior: if on_time { OnTimeBehavior::FireAlways } else { OnTimeBehavior::FireIfNonEmpty },
    }
}

/// The key's timers and hold, by scanning every window (the reducer's definitions).
fn brute_force(h: &Harness<Sum>) -> (Option<Timestamp>, Option<Timestamp>, Option<Timestamp>) {
    let strategy = h.reducer.strategy();
    let gc = |w: &Window| strategy.garbage_collection_time(w).min(LAST_TIMER);
    let state = &h.state;
    let event = state
        .active
        .iter()
        .map(|(w, ws)| if ws.end_of_window_timer { gc(w).min(w.max_timestamp()) } else { gc(w) })
        .chain(state.closed.iter().map(gc))
        .min();
    let processing = state.active.values().filter_map(|ws| ws.processing_timers.first().copied()).min();
    let hold = state
        .active
        .values()
        .filter_map(|ws| match (ws.element_hold, ws.extra_hold) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
        .min();
    (event, processing, hold)
}

fn queries(h: &Harness<Sum>) -> (Option<Timestamp>, Option<Timestamp>, Option<Timestamp>) {
    (h.next_event_timer(), h.next_processing_timer(), h.hold())
}

/// The indexed queries agree with the scan, and the index is exactly the one rebuilt
/// from the windows (so no stale entry waits to surface later).
fn check(h: &Harness<Sum>) -> Result<(), TestCaseError> {
    prop_assert_eq!(queries(h), brute_force(h));
    if h.state.index.is_built() {
        prop_assert_eq!(&h.state.index, &h.reducer.build_index(&h.state));
    }
    prop_assert_eq!(h.is_empty(), h.state.active.is_empty() && h.state.closed.is_empty());
    Ok(())
}

/// What a checkpoint restore produces: the serialized fields, and a default index.
fn restored(state: &KeyState<i64>) -> KeyState<i64> {
    KeyState { active: state.active.clone(), closed: state.closed.clone(), index: TimerIndex::default() }
}

fn apply(h: &mut Harness<Sum>, op: &Op, wm: &mut Option<i64>, pt: &mut i64) {
    match *op {
        Op::Element { value, offset } => {
            h.element(value, wm.unwrap_or(0) + offset);
        }
        Op::Watermark(d) => {
            let next = wm.map_or(d, |w| w + d);
            *wm = Some(next);
            h.watermark(Timestamp(next));
        }
        Op::ProcessingTime(d) => {
            *pt += d;
            h.processing_time(*pt);
        }
        Op::Restore => {
            h.state = restored(&h.state);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn indexed_queries_agree_with_a_scan_of_the_windows(
        choices in choices(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let strategy = make_strategy(choices);
        // `h` is restored from checkpoints along the way; `twin` never is.
        let mut h = Harness::new(strategy.clone(), Sum);
        let mut twin = Harness::new(strategy, Sum);
        let (mut wm, mut pt) = (None, 0);
        let (mut twin_wm, mut twin_pt) = (None, 0);
        for op in &ops {
            apply(&mut h, op, &mut wm, &mut pt);
            check(&h)?;
            if !matches!(op, Op::Restore) {
                apply(&mut twin, op, &mut twin_wm, &mut twin_pt);
                check(&twin)?;
            }
            prop_assert_eq!(queries(&h), queries(&twin));
            prop_assert_eq!(h.take(), twin.take());
        }
        h.watermark(Timestamp::MAX);
        twin.watermark(Timestamp::MAX);
        check(&h)?;
        prop_assert_eq!(h.take(), twin.take());
        prop_assert!(h.is_empty());
        prop_assert_eq!(queries(&h), (None, None, None));
    }
}

#[test]
fn a_restored_state_rebuilds_its_index_on_first_change() {
    let s = make_strategy((2, 3, 0, 1, 1, false, true));
    let mut h = Harness::new(s, Sum);
    h.element(1, 0);
    h.element(2, 30);
    h.element(3, 5);
    let before = queries(&h);
    h.state = restored(&h.state);
    assert!(!h.state.index.is_built());
    // Queries scan until then.
    assert_eq!(queries(&h), before);
    h.processing_time(0);
    assert!(h.state.index.is_built());
    assert_eq!(h.state.index, h.reducer.build_index(&h.state));
    assert_eq!(queries(&h), before);
}

#[test]
fn the_default_state_is_indexed_and_debug_shows_only_the_windows() {
    let state = KeyState::<i64>::default();
    assert!(state.index.is_built());
    assert_eq!(format!("{state:?}"), "KeyState { active: {}, closed: {} }");
}
