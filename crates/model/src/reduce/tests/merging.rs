//! Merging WindowFns: sessions and the shrinking `UntilNextElement`.

use super::{iw, strategy, strategy_with, Harness, Sum};
use crate::combine::ToList;
use crate::strategy::AccumulationMode;
use crate::time::{Duration, Timestamp};
use crate::trigger::Trigger;
use crate::window::{Sessions, SharedWindowFn, UntilNextElement};
use std::sync::Arc;

fn sessions(gap: i64) -> SharedWindowFn {
    Arc::new(Sessions::with_gap_duration(Duration(gap)))
}

fn until_next(max: i64) -> SharedWindowFn {
    Arc::new(UntilNextElement::with_max_length(Duration(max)))
}

const NONE: [&str; 0] = [];

#[test]
fn sessions_merge_and_fire_once_on_time() {
    let mut h = Harness::new(strategy(sessions(10), Trigger::Default), Sum);
    h.element(1, 0);
    h.element(2, 20);
    h.element(3, 5);
    assert_eq!(h.hold(), Some(Timestamp(14)));
    assert_eq!(h.next_event_timer(), Some(Timestamp(14)));
    h.element(4, 12);
    assert_eq!(h.hold(), Some(Timestamp(29)));
    h.watermark(Timestamp(29));
    assert_eq!(h.panes(), NONE);
    h.watermark(Timestamp::MAX);
    assert_eq!(h.panes(), ["[0,30) v=10 @29 ON_TIME #0 (on-time #0) first last"]);
    assert!(h.is_empty());
}

#[test]
fn merged_sessions_concatenate_their_contents() {
    let mut h = Harness::new(strategy(sessions(10), Trigger::Default), ToList);
    h.element(1, 0);
    h.element(2, 20);
    h.element(3, 5);
    h.watermark(Timestamp::MAX);
    assert_eq!(
        h.panes(),
        [
            "[0,15) v=[1, 3] @14 ON_TIME #0 (on-time #0) first last",
            "[20,30) v=[2] @29 ON_TIME #0 (on-time #0) first last"
        ]
    );
}

#[test]
fn sessions_with_early_firings_merge_counts_and_start_fresh_panes() {
    let trigger = Trigger::after_watermark().with_early_firings(Trigger::after_count(2));
    let mut h = Harness::new(strategy(sessions(10), trigger), Sum);
    h.element(1, 0);
    h.element(2, 20);
    assert_eq!(h.panes(), NONE);
    // [0,10) and [5,15) merge; their counts add up to 2.
    h.element(3, 5);
    assert_eq!(h.panes(), ["[0,15) v=4 @14 EARLY #0 first"]);
    // [0,15) (fired, count 0), [12,22) and [20,30) (count 1) merge into a new window.
    h.element(4, 12);
    assert_eq!(h.panes(), ["[0,30) v=6 @29 EARLY #0 first"]);
    h.watermark(Timestamp(30));
    assert_eq!(h.panes(), ["[0,30) v=0 @29 ON_TIME #1 (on-time #0) last"]);
    assert!(h.is_empty());
}

#[test]
fn sessions_with_retractions_retract_every_merged_output() {
    let s = strategy_with(
        sessions(10),
        Trigger::repeatedly(Trigger::after_count(1)),
        AccumulationMode::AccumulatingAndRetracting,
        0,
    );
    let mut h = Harness::new(s, Sum);
    h.element(1, 0);
    assert_eq!(h.panes(), ["[0,10) v=1 @9 EARLY #0 first"]);
    h.element(2, 20);
    assert_eq!(h.panes(), ["[20,30) v=2 @29 EARLY #0 first"]);
    h.element(3, 5);
    assert_eq!(h.panes(), ["-[0,10) v=1 @9 EARLY #0 first", "[0,15) v=4 @14 EARLY #0 first"]);
    h.element(4, 12);
    assert_eq!(
        h.panes(),
        [
            "-[0,15) v=4 @14 EARLY #0 first",
            "-[20,30) v=2 @29 EARLY #0 first",
            "[0,30) v=10 @29 EARLY #0 first"
        ]
    );
    h.watermark(Timestamp::MAX);
    assert_eq!(
        h.panes(),
        ["-[0,30) v=10 @29 ON_TIME #1 (on-time #0) last", "[0,30) v=10 @29 ON_TIME #1 (on-time #0) last"]
    );
}

#[test]
fn sessions_merge_processing_time_deadlines() {
    let trigger = Trigger::repeatedly(Trigger::after_processing_time(Duration(10)));
    let mut h = Harness::new(strategy(sessions(10), trigger), Sum);
    h.element(1, 0);
    h.processing_time(5);
    h.element(2, 20);
    h.processing_time(7);
    h.element(3, 5);
    assert_eq!(h.next_processing_timer(), Some(Timestamp(10)));
    h.processing_time(10);
    assert_eq!(h.panes(), ["[0,15) v=4 @14 EARLY #0 first"]);
    assert_eq!(h.next_processing_timer(), Some(Timestamp(15)));
    h.processing_time(15);
    assert_eq!(h.panes(), ["[20,30) v=2 @29 EARLY #0 first"]);
}

#[test]
fn a_closed_session_drops_its_own_window_only() {
    let s = strategy_with(sessions(10), Trigger::after_watermark(), AccumulationMode::Discarding, 100);
    let mut h = Harness::new(s, Sum);
    h.element(1, 0);
    h.watermark(Timestamp(10));
    assert_eq!(h.panes(), ["[0,10) v=1 @9 ON_TIME #0 (on-time #0) first last"]);
    assert_eq!(h.element(2, 0), [false], "[0,10) is closed");
    // A session that overlaps the closed one is a new session (closed windows do not merge).
    assert_eq!(h.element(3, 5), [true]);
    h.watermark(Timestamp(15));
    assert_eq!(h.panes(), ["[5,15) v=3 @14 ON_TIME #0 (on-time #0) first last"]);
}

#[test]
fn element_count_once_closes_a_merged_session() {
    let mut h = Harness::new(strategy(sessions(10), Trigger::after_count(2)), Sum);
    h.element(1, 0);
    h.element(2, 3);
    assert_eq!(h.panes(), ["[0,13) v=3 @12 EARLY #0 first last"]);
    assert_eq!(h.hold(), None);
    assert!(!h.is_empty());
    h.watermark(Timestamp(13));
    assert!(h.is_empty());
}

#[test]
fn until_next_element_shrinks_windows_in_any_arrival_order() {
    let elements = [(1, 0), (2, 50), (4, 20)];
    let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    for order in orders {
        let mut h = Harness::new(strategy(until_next(100), Trigger::Default), Sum);
        for i in order {
            let (v, ts) = elements[i];
            assert_eq!(h.element(v, ts), [true]);
        }
        assert_eq!(h.hold(), Some(Timestamp(19)));
        h.watermark(Timestamp::MAX);
        assert_eq!(
            h.panes(),
            [
                "[0,20) v=1 @19 ON_TIME #0 (on-time #0) first last",
                "[20,50) v=4 @49 ON_TIME #0 (on-time #0) first last",
                "[50,150) v=2 @149 ON_TIME #0 (on-time #0) first last",
            ],
            "order {order:?}"
        );
    }
}

#[test]
fn a_window_shrunk_by_a_later_element_still_fires_on_time() {
    // The merge [0,100) -> [0,50) does not involve the new element's window; the result
    // keeps the end-of-window timer that AfterWatermark set on [0,100).
    let s = strategy_with(until_next(100), Trigger::after_watermark(), AccumulationMode::Discarding, 100);
    let mut h = Harness::new(s, Sum);
    h.element(1, 0);
    h.element(2, 50);
    assert_eq!(h.next_event_timer(), Some(Timestamp(49)));
    assert_eq!(h.hold(), Some(Timestamp(49)));
    h.watermark(Timestamp(50));
    assert_eq!(h.panes(), ["[0,50) v=1 @49 ON_TIME #0 (on-time #0) first last"]);
    assert_eq!(h.state.closed.iter().copied().collect::<Vec<_>>(), [iw(0, 50)]);
    h.watermark(Timestamp::MAX);
    assert_eq!(h.panes(), ["[50,150) v=2 @149 ON_TIME #0 (on-time #0) first last"]);
    assert!(h.is_empty());
}

#[test]
fn late_sessions_merge_in_the_late_phase_of_after_watermark() {
    let trigger = Trigger::after_watermark().with_late_firings(Trigger::after_count(2));
    let mut h = Harness::new(strategy_with(sessions(10), trigger, AccumulationMode::Discarding, 100), Sum);
    h.element(1, 0);
    h.element(2, 20);
    h.watermark(Timestamp(30));
    assert_eq!(
        h.panes(),
        ["[0,10) v=1 @9 ON_TIME #0 (on-time #0) first", "[20,30) v=2 @29 ON_TIME #0 (on-time #0) first"]
    );
    // Both early phases are over, so the merged window continues in its late phase: the
    // late counts of the merged windows add up.
    h.element(3, 5);
    assert_eq!(h.panes(), NONE);
    assert_eq!(h.hold(), Some(Timestamp(114)), "late data holds at GC time");
    h.element(4, 8);
    // A new merge result starts a fresh pane history, late for the output watermark.
    assert_eq!(h.panes(), ["[0,18) v=7 @17 LATE #0 (on-time #0) first"]);
    assert_eq!(h.hold(), None);
}

#[test]
fn after_each_runs_every_sub_trigger_when_windows_merge() {
    let trigger = Trigger::AfterEach(vec![Trigger::after_count(2), Trigger::after_count(2)]);
    let mut h = Harness::new(strategy(sessions(10), trigger), Sum);
    h.element(1, 0);
    h.element(2, 3);
    assert_eq!(h.panes(), ["[0,13) v=3 @12 EARLY #0 first"]);
    h.element(3, 5);
    assert_eq!(h.panes(), NONE);
    h.element(4, 6);
    assert_eq!(h.panes(), ["[0,16) v=7 @15 EARLY #0 first last"]);
    // Closed windows leave the active set: [6,16) starts a new session.
    assert_eq!(h.element(5, 6), [true]);
    h.watermark(Timestamp::MAX);
    assert_eq!(h.panes(), ["[6,16) v=5 @15 ON_TIME #0 (on-time #0) first last"]);
    assert!(h.is_empty());
}
