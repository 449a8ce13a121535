//! Every trigger kind, fired by elements, the watermark and processing time.

use super::{iw, strategy, strategy_with, Harness, Sum};
use crate::pane::PaneInfo;
use crate::reduce::trigger_machine::deadline_for;
use crate::reduce::Admission;
use crate::strategy::{AccumulationMode, ClosingBehavior, OnTimeBehavior};
use crate::time::{Duration, Timestamp};
use crate::trigger::Trigger;
use crate::window::{FixedWindows, GlobalWindows, SharedWindowFn};
use std::sync::Arc;

fn fixed(size: i64) -> SharedWindowFn {
    Arc::new(FixedWindows::of(Duration(size)))
}

const NONE: [&str; 0] = [];

#[test]
fn default_trigger_fires_each_window_once_on_time() {
    let mut h = Harness::new(strategy(fixed(10), Trigger::Default), Sum);
    assert_eq!(h.element(1, 1), [true]);
    h.element(2, 5);
    h.element(3, 12);
    assert_eq!(h.panes(), NONE);
    assert_eq!(h.hold(), Some(Timestamp(9)));
    assert_eq!(h.next_event_timer(), Some(Timestamp(9)));
    assert_eq!(h.next_processing_timer(), None);
    h.watermark(Timestamp(9));
    assert_eq!(h.panes(), NONE);
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), ["[0,10) v=3 @9 ON_TIME #0 (on-time #0) first last"]);
    assert_eq!(h.hold(), Some(Timestamp(19)));
    assert_eq!(h.next_event_timer(), Some(Timestamp(19)));
    // Nothing is due: calling again changes nothing.
    h.advance();
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), NONE);
    h.watermark(Timestamp::MAX);
    let panes = h.take();
    assert_eq!(panes.len(), 1);
    assert_eq!(panes[0].pane, PaneInfo::ON_TIME_AND_ONLY_FIRING);
    assert_eq!(panes[0].window, iw(10, 20));
    assert!(h.is_empty());
    assert_eq!(h.hold(), None);
    assert_eq!(h.next_event_timer(), None);
}

#[test]
fn default_trigger_fires_late_panes_within_allowed_lateness() {
    for (mode, late_values) in
        [(AccumulationMode::Discarding, [2, 4]), (AccumulationMode::Accumulating, [3, 7])]
    {
        let mut h = Harness::new(strategy_with(fixed(10), Trigger::Default, mode, 10), Sum);
        h.element(1, 1);
        h.watermark(Timestamp(10));
        assert_eq!(h.panes(), ["[0,10) v=1 @9 ON_TIME #0 (on-time #0) first"]);
        assert_eq!(h.hold(), None);
        assert_eq!(h.next_event_timer(), Some(Timestamp(19)));
        assert_eq!(h.element(2, 3), [true]);
        assert_eq!(h.panes(), [format!("[0,10) v={} @9 LATE #1 (on-time #1)", late_values[0])]);
        h.element(4, 4);
        assert_eq!(h.panes(), [format!("[0,10) v={} @9 LATE #2 (on-time #2)", late_values[1])]);
        h.watermark(Timestamp(19));
        h.advance();
        assert_eq!(h.panes(), NONE);
        assert!(!h.is_empty());
        h.watermark(Timestamp(20));
        assert_eq!(h.panes(), NONE, "an empty final pane is not emitted by default");
        assert!(h.is_empty());
        assert_eq!(h.element_in(8, 5, iw(0, 10)), Admission::TooLate(8));
        assert!(h.is_empty());
    }
}

#[test]
fn an_element_arriving_after_the_end_of_window_fires_at_once() {
    let mut h =
        Harness::new(strategy_with(fixed(10), Trigger::Default, AccumulationMode::Discarding, 10), Sum);
    // The watermark moved but the runtime has not called advance_time yet.
    h.time.input_watermark = Timestamp(10);
    h.element(1, 1);
    assert_eq!(h.panes(), ["[0,10) v=1 @9 ON_TIME #0 (on-time #0) first"]);
    h.advance();
    h.advance();
    assert_eq!(h.panes(), NONE);
}

#[test]
fn closing_behavior_fire_always_emits_an_empty_final_pane() {
    let mut s = strategy_with(fixed(10), Trigger::Default, AccumulationMode::Discarding, 10);
    s.closing_behavior = ClosingBehavior::FireAlways;
    let mut h = Harness::new(s, Sum);
    h.element(1, 1);
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), ["[0,10) v=1 @9 ON_TIME #0 (on-time #0) first"]);
    // The final pane is guaranteed, so a GC hold keeps it on time downstream.
    assert_eq!(h.hold(), Some(Timestamp(19)));
    h.watermark(Timestamp(20));
    assert_eq!(h.panes(), ["[0,10) v=0 @9 LATE #1 (on-time #1) last"]);
    assert!(h.is_empty());
}

#[test]
fn on_time_behavior_decides_whether_an_empty_on_time_pane_fires() {
    let trigger = Trigger::after_watermark().with_early_firings(Trigger::after_count(1));
    // FireAlways (the default): the on-time pane fires, empty, after an early one.
    let mut h = Harness::new(strategy(fixed(10), trigger.clone()), Sum);
    h.element(5, 1);
    assert_eq!(h.panes(), ["[0,10) v=5 @9 EARLY #0 first"]);
    assert_eq!(h.hold(), None);
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), ["[0,10) v=0 @9 ON_TIME #1 (on-time #0) last"]);
    assert!(h.is_empty());

    // FireIfNonEmpty: it does not; the trigger still finishes and closes the window.
    let mut s = strategy_with(fixed(10), trigger, AccumulationMode::Discarding, 10);
    s.on_time_behavior = OnTimeBehavior::FireIfNonEmpty;
    let mut h = Harness::new(s, Sum);
    h.element(5, 1);
    assert_eq!(h.panes(), ["[0,10) v=5 @9 EARLY #0 first"]);
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), NONE);
    assert_eq!(h.element(6, 2), [false], "the window is closed");
    assert!(!h.is_empty());
    h.watermark(Timestamp(20));
    assert!(h.is_empty());
}

#[test]
fn after_watermark_with_early_and_late_firings() {
    let trigger = Trigger::after_watermark()
        .with_early_firings(Trigger::after_count(2))
        .with_late_firings(Trigger::after_count(1));
    let mut h = Harness::new(strategy_with(fixed(10), trigger, AccumulationMode::Accumulating, 100), Sum);
    h.element(1, 1);
    assert_eq!(h.panes(), NONE);
    h.element(2, 2);
    let early = h.take();
    assert_eq!(early.len(), 1);
    assert_eq!(early[0].pane, PaneInfo::new(true, false, crate::Timing::Early, 0, -1));
    assert_eq!(early[0].value, 3);
    h.element(3, 3);
    assert_eq!(h.panes(), NONE);
    h.watermark(Timestamp(10));
    let on_time = h.take();
    assert_eq!(on_time[0].pane, PaneInfo::new(false, false, crate::Timing::OnTime, 1, 0));
    assert_eq!(on_time[0].value, 6);
    h.element(4, 4);
    assert_eq!(h.panes(), ["[0,10) v=10 @9 LATE #2 (on-time #1)"]);
    h.element(5, 5);
    assert_eq!(h.panes(), ["[0,10) v=15 @9 LATE #3 (on-time #2)"]);
    h.watermark(Timestamp(110));
    assert_eq!(h.panes(), NONE);
    assert!(h.is_empty());
}

#[test]
fn after_watermark_with_late_firings_only() {
    let trigger = Trigger::after_watermark().with_late_firings(Trigger::after_count(1));
    let mut h = Harness::new(strategy_with(fixed(10), trigger, AccumulationMode::Discarding, 100), Sum);
    h.element(1, 1);
    h.element(2, 2);
    assert_eq!(h.panes(), NONE);
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), ["[0,10) v=3 @9 ON_TIME #0 (on-time #0) first"]);
    h.element(4, 4);
    assert_eq!(h.panes(), ["[0,10) v=4 @9 LATE #1 (on-time #1)"]);
}

#[test]
fn plain_after_watermark_closes_the_window_on_time() {
    let mut h = Harness::new(
        strategy_with(fixed(10), Trigger::after_watermark(), AccumulationMode::Discarding, 100),
        Sum,
    );
    h.element(1, 1);
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), ["[0,10) v=1 @9 ON_TIME #0 (on-time #0) first last"]);
    assert_eq!(h.element(2, 2), [false], "late data for a closed window is dropped");
    assert_eq!(h.hold(), None);
    assert_eq!(h.next_event_timer(), Some(Timestamp(109)));
    assert!(!h.is_empty());
    h.watermark(Timestamp(110));
    assert!(h.is_empty());
    assert_eq!(h.panes(), NONE);
}

#[test]
fn repeated_processing_time_trigger_in_the_global_window() {
    let trigger = Trigger::repeatedly(Trigger::after_processing_time(Duration(5)));
    let mut h = Harness::new(strategy(Arc::new(GlobalWindows), trigger), Sum);
    h.processing_time(100);
    h.element(1, 0);
    assert_eq!(h.next_processing_timer(), Some(Timestamp(105)));
    h.processing_time(104);
    assert_eq!(h.panes(), NONE);
    h.processing_time(105);
    assert_eq!(h.panes(), ["global v=1 @end EARLY #0 first"]);
    assert_eq!(h.next_processing_timer(), None);
    h.processing_time(106);
    h.element(2, 0);
    h.processing_time(108);
    h.element(3, 0);
    assert_eq!(h.next_processing_timer(), Some(Timestamp(111)));
    h.processing_time(111);
    assert_eq!(h.panes(), ["global v=5 @end EARLY #1"]);
    // At the end of input the window is collected; its on-time pane fires even empty.
    h.watermark(Timestamp::MAX);
    assert_eq!(h.panes(), ["global v=0 @end ON_TIME #2 (on-time #0) last"]);
    assert!(h.is_empty());
}

#[test]
fn aligned_processing_time_deadlines() {
    let align = Some((Duration(10), Duration(3)));
    assert_eq!(deadline_for(Timestamp(100), Duration(0), align), Timestamp(103));
    assert_eq!(deadline_for(Timestamp(103), Duration(0), align), Timestamp(103));
    assert_eq!(deadline_for(Timestamp(104), Duration(0), align), Timestamp(113));
    assert_eq!(deadline_for(Timestamp(95), Duration(2), Some((Duration(10), Duration(0)))), Timestamp(100));
    assert_eq!(deadline_for(Timestamp(-7), Duration(0), Some((Duration(10), Duration(0)))), Timestamp(0));
    assert_eq!(deadline_for(Timestamp(-10), Duration(0), Some((Duration(10), Duration(0)))), Timestamp(-10));
    assert_eq!(deadline_for(Timestamp(5), Duration(7), None), Timestamp(12));

    let trigger = Trigger::repeatedly(Trigger::AfterProcessingTime { delay: Duration(0), align });
    let mut h = Harness::new(strategy(fixed(100), trigger), Sum);
    h.processing_time(100);
    h.element(1, 1);
    assert_eq!(h.next_processing_timer(), Some(Timestamp(103)));
    h.processing_time(103);
    assert_eq!(h.panes(), ["[0,100) v=1 @99 EARLY #0 first"]);
    // A deadline already reached (processing_time >= deadline) fires at once.
    h.element(2, 2);
    assert_eq!(h.panes(), ["[0,100) v=2 @99 EARLY #1"]);
}

#[test]
fn repeated_element_count() {
    let trigger = Trigger::repeatedly(Trigger::after_count(2));
    let mut h = Harness::new(strategy(fixed(10), trigger), Sum);
    h.element(1, 1);
    assert_eq!(h.panes(), NONE);
    h.element(2, 2);
    assert_eq!(h.panes(), ["[0,10) v=3 @9 EARLY #0 first"]);
    assert_eq!(h.hold(), None);
    h.element(3, 3);
    assert_eq!(h.hold(), Some(Timestamp(9)));
    h.element(4, 4);
    assert_eq!(h.panes(), ["[0,10) v=7 @9 EARLY #1"]);
    h.element(5, 5);
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), ["[0,10) v=5 @9 ON_TIME #2 (on-time #0) last"]);
}

#[test]
fn element_count_once_closes_the_window() {
    let mut h = Harness::new(strategy(fixed(10), Trigger::after_count(2)), Sum);
    h.element(1, 1);
    h.element(2, 2);
    assert_eq!(h.panes(), ["[0,10) v=3 @9 EARLY #0 first last"]);
    assert_eq!(h.element(3, 3), [false]);
    assert_eq!(h.hold(), None);
    assert!(!h.is_empty());
    assert_eq!(h.next_event_timer(), Some(Timestamp(9)));
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), NONE);
    assert!(h.is_empty());
}

#[test]
fn after_each_runs_its_triggers_in_turn() {
    let trigger = Trigger::AfterEach(vec![Trigger::after_count(2), Trigger::after_count(3)]);
    let mut h = Harness::new(strategy(fixed(10), trigger), Sum);
    let mut panes = Vec::new();
    for v in 1..=5 {
        assert_eq!(h.element(v, v), [true]);
        panes.extend(h.panes());
    }
    assert_eq!(panes, ["[0,10) v=3 @9 EARLY #0 first", "[0,10) v=12 @9 EARLY #1 last"]);
    assert_eq!(h.element(6, 6), [false]);
}

#[test]
fn after_first_fires_on_whichever_comes_first() {
    let trigger = Trigger::repeatedly(Trigger::AfterFirst(vec![
        Trigger::after_count(3),
        Trigger::after_processing_time(Duration(10)),
    ]));
    let mut h = Harness::new(strategy(fixed(100), trigger), Sum);
    h.element(1, 1);
    h.element(2, 2);
    assert_eq!(h.next_processing_timer(), Some(Timestamp(10)));
    h.processing_time(10);
    assert_eq!(h.panes(), ["[0,100) v=3 @99 EARLY #0 first"]);
    h.processing_time(11);
    h.element(3, 3);
    h.element(4, 4);
    assert_eq!(h.panes(), NONE);
    h.element(5, 5);
    assert_eq!(h.panes(), ["[0,100) v=12 @99 EARLY #1"]);
    // The deadline the count beat is left behind; it fires and is ignored, as in Beam.
    assert_eq!(h.next_processing_timer(), Some(Timestamp(21)));
    h.processing_time(21);
    assert_eq!(h.panes(), NONE);
    assert_eq!(h.next_processing_timer(), None);
}

#[test]
fn after_all_waits_for_every_trigger() {
    let trigger =
        Trigger::AfterAll(vec![Trigger::after_count(2), Trigger::after_processing_time(Duration(10))]);
    let mut h = Harness::new(strategy(fixed(100), trigger), Sum);
    h.element(1, 1);
    h.processing_time(1);
    h.element(2, 2);
    assert_eq!(h.panes(), NONE);
    h.processing_time(9);
    assert_eq!(h.panes(), NONE);
    h.processing_time(10);
    assert_eq!(h.panes(), ["[0,100) v=3 @99 EARLY #0 first last"]);
    assert_eq!(h.element(3, 3), [false]);
}

#[test]
fn or_finally_fires_a_last_time_when_until_fires() {
    let trigger = Trigger::repeatedly(Trigger::after_count(1)).or_finally(Trigger::after_count(3));
    let mut h = Harness::new(strategy(fixed(10), trigger), Sum);
    let mut panes = Vec::new();
    for v in 1..=3 {
        h.element(v, v);
        panes.extend(h.panes());
    }
    assert_eq!(
        panes,
        ["[0,10) v=1 @9 EARLY #0 first", "[0,10) v=2 @9 EARLY #1", "[0,10) v=3 @9 EARLY #2 last"]
    );
    assert_eq!(h.element(4, 4), [false]);

    // Until the watermark: the on-time firing is the last.
    let trigger = Trigger::repeatedly(Trigger::after_count(2)).or_finally(Trigger::after_watermark());
    let mut h = Harness::new(strategy_with(fixed(10), trigger, AccumulationMode::Discarding, 5), Sum);
    h.element(1, 1);
    h.element(2, 2);
    assert_eq!(h.panes(), ["[0,10) v=3 @9 EARLY #0 first"]);
    h.element(3, 3);
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), ["[0,10) v=3 @9 ON_TIME #1 (on-time #0) last"]);
    assert_eq!(h.element(4, 4), [false]);
    h.watermark(Timestamp(15));
    assert!(h.is_empty());
}

#[test]
fn never_emits_only_when_the_window_expires() {
    let mut h = Harness::new(strategy(fixed(10), Trigger::Never), Sum);
    h.element(1, 1);
    h.element(2, 2);
    h.watermark(Timestamp(10));
    let panes = h.take();
    assert_eq!(panes.len(), 1);
    assert_eq!((panes[0].value, panes[0].pane), (3, PaneInfo::ON_TIME_AND_ONLY_FIRING));

    // With allowed lateness the end of the window passes silently; the hold keeps the
    // output watermark there, so the final pane is still on time.
    let mut h = Harness::new(strategy_with(fixed(10), Trigger::Never, AccumulationMode::Discarding, 5), Sum);
    h.element(1, 1);
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), NONE);
    assert_eq!(h.hold(), Some(Timestamp(9)));
    h.element(2, 2);
    h.watermark(Timestamp(15));
    assert_eq!(h.panes(), ["[0,10) v=3 @9 ON_TIME #0 (on-time #0) first last"]);

    // Empty composite triggers behave as Never.
    let mut h = Harness::new(strategy(fixed(10), Trigger::AfterFirst(vec![])), Sum);
    h.element(1, 1);
    assert_eq!(h.panes(), NONE);
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), ["[0,10) v=1 @9 ON_TIME #0 (on-time #0) first last"]);
}

#[test]
fn early_composite_triggers_repeat_from_scratch() {
    // An early AfterFirst repeats as a whole: after its first firing it waits for a new
    // count or deadline (Beam's own early-firing reset would leave the count's finished
    // bit set and fire on every element).
    let early =
        Trigger::AfterFirst(vec![Trigger::after_count(2), Trigger::after_processing_time(Duration(100))]);
    let trigger = Trigger::after_watermark().with_early_firings(early);
    let mut h = Harness::new(strategy(fixed(1000), trigger), Sum);
    let mut panes = Vec::new();
    for v in 1..=5 {
        h.element(v, v);
        panes.extend(h.panes());
    }
    assert_eq!(panes, ["[0,1000) v=3 @999 EARLY #0 first", "[0,1000) v=7 @999 EARLY #1"]);
}
