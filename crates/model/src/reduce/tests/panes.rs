//! Accumulation modes, retractions, timestamp combiners, holds and window bookkeeping.

use super::{iw, strategy, strategy_with, Harness, Sum};
use crate::combine::ToList;
use crate::pane::PaneInfo;
use crate::strategy::{AccumulationMode, TimestampCombiner};
use crate::time::{Duration, Timestamp};
use crate::trigger::Trigger;
use crate::window::{FixedWindows, GlobalWindows, SharedWindowFn, SlidingWindows};
use std::sync::Arc;

fn fixed(size: i64) -> SharedWindowFn {
    Arc::new(FixedWindows::of(Duration(size)))
}

const NONE: [&str; 0] = [];

#[test]
fn accumulating_and_retracting_retracts_each_earlier_output() {
    let trigger = Trigger::after_watermark()
        .with_early_firings(Trigger::after_count(1))
        .with_late_firings(Trigger::after_count(1));
    let s = strategy_with(fixed(10), trigger, AccumulationMode::AccumulatingAndRetracting, 100);
    let mut h = Harness::new(s, Sum);
    h.element(1, 1);
    assert_eq!(h.panes(), ["[0,10) v=1 @9 EARLY #0 first"]);
    h.element(2, 2);
    assert_eq!(h.panes(), ["-[0,10) v=1 @9 EARLY #1", "[0,10) v=3 @9 EARLY #1"]);
    h.watermark(Timestamp(10));
    assert_eq!(
        h.panes(),
        ["-[0,10) v=3 @9 ON_TIME #2 (on-time #0)", "[0,10) v=3 @9 ON_TIME #2 (on-time #0)"]
    );
    h.element(3, 3);
    assert_eq!(h.panes(), ["-[0,10) v=3 @9 LATE #3 (on-time #1)", "[0,10) v=6 @9 LATE #3 (on-time #1)"]);
    h.watermark(Timestamp(110));
    assert_eq!(h.panes(), NONE);
    assert!(h.is_empty());
}

#[test]
fn retractions_carry_the_earlier_output_and_its_timestamp() {
    let mut s = strategy_with(
        fixed(10),
        Trigger::repeatedly(Trigger::after_count(1)),
        AccumulationMode::AccumulatingAndRetracting,
        0,
    );
    s.timestamp_combiner = TimestampCombiner::Earliest;
    let mut h = Harness::new(s, ToList);
    h.element(5, 5);
    assert_eq!(h.panes(), ["[0,10) v=[5] @5 EARLY #0 first"]);
    h.element(3, 3);
    assert_eq!(h.panes(), ["-[0,10) v=[5] @5 EARLY #1", "[0,10) v=[5, 3] @3 EARLY #1"]);
    h.element(7, 7);
    assert_eq!(h.panes(), ["-[0,10) v=[5, 3] @3 EARLY #2", "[0,10) v=[5, 3, 7] @7 EARLY #2"]);
    h.watermark(Timestamp::MAX);
    assert_eq!(
        h.panes(),
        [
            "-[0,10) v=[5, 3, 7] @7 ON_TIME #3 (on-time #0) last",
            "[0,10) v=[5, 3, 7] @9 ON_TIME #3 (on-time #0) last"
        ]
    );
}

#[test]
fn accumulation_modes_differ_in_what_later_panes_hold() {
    let trigger = Trigger::repeatedly(Trigger::after_count(2));
    let expected = [
        (AccumulationMode::Discarding, ["[0,10) v=[1, 2] @9 EARLY #0 first", "[0,10) v=[3, 4] @9 EARLY #1"]),
        (
            AccumulationMode::Accumulating,
            ["[0,10) v=[1, 2] @9 EARLY #0 first", "[0,10) v=[1, 2, 3, 4] @9 EARLY #1"],
        ),
    ];
    for (mode, panes) in expected {
        let mut h = Harness::new(strategy_with(fixed(10), trigger.clone(), mode, 0), ToList);
        for v in 1..=4 {
            h.element(v, v);
        }
        assert_eq!(h.panes(), panes);
    }
}

#[test]
fn timestamp_combiners_set_output_times_and_holds() {
    for (combiner, hold, ts) in [
        (TimestampCombiner::EndOfWindow, 9, 9),
        (TimestampCombiner::Earliest, 3, 3),
        (TimestampCombiner::Latest, 7, 7),
    ] {
        let mut s = strategy(fixed(10), Trigger::Default);
        s.timestamp_combiner = combiner;
        let mut h = Harness::new(s, Sum);
        h.element(5, 5);
        h.element(3, 3);
        h.element(7, 7);
        assert_eq!(h.hold(), Some(Timestamp(hold)), "{combiner:?}");
        h.watermark(Timestamp(10));
        assert_eq!(h.panes(), [format!("[0,10) v=15 @{ts} ON_TIME #0 (on-time #0) first last")]);
    }
}

#[test]
fn earliest_covers_the_pane_and_late_panes_get_the_end_of_window() {
    let mut s = strategy_with(fixed(10), Trigger::Default, AccumulationMode::Discarding, 10);
    s.timestamp_combiner = TimestampCombiner::Earliest;
    let mut h = Harness::new(s, Sum);
    h.element(5, 5);
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), ["[0,10) v=5 @5 ON_TIME #0 (on-time #0) first"]);
    // Late for the output watermark: no element hold, so the pane gets the window's end.
    h.element(2, 2);
    assert_eq!(h.panes(), ["[0,10) v=2 @9 LATE #1 (on-time #1)"]);

    let mut s = strategy(fixed(10), Trigger::repeatedly(Trigger::after_count(2)));
    s.timestamp_combiner = TimestampCombiner::Earliest;
    let mut h = Harness::new(s, Sum);
    for (v, ts) in [(5, 5), (4, 4), (8, 8), (6, 6)] {
        h.element(v, ts);
    }
    assert_eq!(h.panes(), ["[0,10) v=9 @4 EARLY #0 first", "[0,10) v=14 @6 EARLY #1"]);
}

#[test]
fn the_hold_is_the_earliest_pending_pane() {
    let mut s = strategy(fixed(10), Trigger::Default);
    s.timestamp_combiner = TimestampCombiner::Earliest;
    let mut h = Harness::new(s, Sum);
    h.element(1, 15);
    h.element(1, 5);
    h.element(1, 27);
    assert_eq!(h.hold(), Some(Timestamp(5)));
    h.watermark(Timestamp(10));
    assert_eq!(h.hold(), Some(Timestamp(15)));
    assert_eq!(h.time.output_watermark, Timestamp(10));
    h.watermark(Timestamp(25));
    assert_eq!(h.hold(), Some(Timestamp(27)));
    h.watermark(Timestamp::MAX);
    assert_eq!(h.hold(), None);
    assert_eq!(h.panes().len(), 3);
}

#[test]
fn late_elements_waiting_for_a_late_firing_hold_at_gc_time() {
    let trigger = Trigger::after_watermark().with_late_firings(Trigger::after_count(2));
    let mut h = Harness::new(strategy_with(fixed(10), trigger, AccumulationMode::Discarding, 10), Sum);
    h.element(1, 1);
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), ["[0,10) v=1 @9 ON_TIME #0 (on-time #0) first"]);
    h.element(2, 2);
    assert_eq!(h.panes(), NONE);
    assert_eq!(h.hold(), Some(Timestamp(19)));
    assert_eq!(h.next_event_timer(), Some(Timestamp(19)));
    h.element(3, 3);
    assert_eq!(h.panes(), ["[0,10) v=5 @9 LATE #1 (on-time #1)"]);
    assert_eq!(h.hold(), None);
}

#[test]
fn sliding_windows_fire_each_window() {
    let mut h = Harness::new(
        strategy(Arc::new(SlidingWindows::of(Duration(10), Duration(5))), Trigger::Default),
        Sum,
    );
    assert_eq!(h.element(1, 7), [true, true]);
    h.element(2, 12);
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), ["[0,10) v=1 @9 ON_TIME #0 (on-time #0) first last"]);
    h.watermark(Timestamp::MAX);
    assert_eq!(
        h.panes(),
        [
            "[5,15) v=3 @14 ON_TIME #0 (on-time #0) first last",
            "[10,20) v=2 @19 ON_TIME #0 (on-time #0) first last"
        ]
    );
}

#[test]
fn the_global_window_fires_at_the_end_of_input() {
    let mut h = Harness::new(strategy(Arc::new(GlobalWindows), Trigger::Default), Sum);
    h.element(1, 100);
    h.element(2, -100);
    h.watermark(Timestamp(1_000_000));
    assert_eq!(h.panes(), NONE);
    assert_eq!(h.next_event_timer(), Some(crate::Window::GLOBAL_MAX_TIMESTAMP));
    h.watermark(Timestamp::MAX);
    assert_eq!(h.panes(), ["global v=3 @end ON_TIME #0 (on-time #0) first last"]);
    assert!(h.is_empty());
}

#[test]
fn a_watermark_jump_fires_every_window_in_order() {
    let mut h = Harness::new(strategy(fixed(10), Trigger::Default), Sum);
    for ts in [21, 1, 11, 22] {
        h.element(1, ts);
    }
    h.watermark(Timestamp::MAX);
    let panes = h.take();
    let windows: Vec<_> = panes.iter().map(|p| (p.window, p.value)).collect();
    assert_eq!(windows, [(iw(0, 10), 1), (iw(10, 20), 1), (iw(20, 30), 2)]);
    assert!(panes.iter().all(|p| p.pane == PaneInfo::ON_TIME_AND_ONLY_FIRING));
    assert!(h.is_empty());
}

#[test]
fn expired_windows_refuse_elements() {
    let mut h =
        Harness::new(strategy_with(fixed(10), Trigger::Default, AccumulationMode::Discarding, 5), Sum);
    h.watermark(Timestamp(14));
    assert_eq!(h.element(1, 9), [true], "gc time 14 is not before the watermark");
    assert_eq!(h.panes(), ["[0,10) v=1 @9 LATE #0 (on-time #0) first"]);
    h.watermark(Timestamp(15));
    assert!(h.is_empty());
    assert_eq!(h.element(1, 9), [false]);
    assert!(h.is_empty());
}
