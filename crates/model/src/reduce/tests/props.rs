//! Properties: results do not depend on the order elements arrive in.

use super::{strategy, strategy_with, Harness, Sum};
use crate::pane::PaneInfo;
use crate::strategy::AccumulationMode;
use crate::time::{Duration, Timestamp};
use crate::trigger::Trigger;
use crate::window::{FixedWindows, Sessions, SharedWindowFn, UntilNextElement, Window};
use proptest::prelude::*;
use std::sync::Arc;

/// Feeds `elements` (timestamp, value) with the watermark at its minimum, then moves it
/// to the end of time; returns the sorted (window, value) outputs.
fn default_trigger_outputs(window_fn: SharedWindowFn, elements: &[(i64, i64)]) -> Vec<(Window, i64)> {
    let mut h = Harness::new(strategy(window_fn, Trigger::Default), Sum);
    for &(ts, value) in elements {
        assert!(h.element(value, ts).iter().all(|accepted| *accepted));
    }
    h.watermark(Timestamp::MAX);
    assert!(h.is_empty());
    let panes = h.take();
    assert!(panes.iter().all(|p| p.pane == PaneInfo::ON_TIME_AND_ONLY_FIRING && !p.retraction));
    let mut out: Vec<_> = panes.iter().map(|p| (p.window, p.value)).collect();
    out.sort();
    out
}

fn window_fns() -> [SharedWindowFn; 3] {
    [
        Arc::new(Sessions::with_gap_duration(Duration(10))),
        Arc::new(FixedWindows::of(Duration(25))),
        Arc::new(UntilNextElement::with_max_length(Duration(30))),
    ]
}

/// (timestamp, value) pairs.
type Elements = Vec<(i64, i64)>;

fn elements_and_a_permutation() -> impl Strategy<Value = (Elements, Elements)> {
    prop::collection::vec((0i64..200, 1i64..100), 1..24)
        .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
}

proptest! {
    #[test]
    fn default_trigger_outputs_do_not_depend_on_arrival_order((elements, shuffled) in elements_and_a_permutation()) {
        for window_fn in window_fns() {
            let expected = default_trigger_outputs(window_fn.clone(), &elements);
            prop_assert_eq!(expected.iter().map(|(_, v)| v).sum::<i64>(), elements.iter().map(|(_, v)| v).sum::<i64>());
            prop_assert_eq!(expected, default_trigger_outputs(window_fn, &shuffled));
        }
    }

    #[test]
    fn retractions_leave_exactly_the_final_results((elements, shuffled) in elements_and_a_permutation()) {
        for window_fn in window_fns() {
            let s = strategy_with(
                window_fn.clone(),
                Trigger::repeatedly(Trigger::after_count(1)),
                AccumulationMode::AccumulatingAndRetracting,
                0,
            );
            let mut h = Harness::new(s, Sum);
            for &(ts, value) in &shuffled {
                h.element(value, ts);
            }
            h.watermark(Timestamp::MAX);
            let net: i64 = h.take().iter().map(|p| if p.retraction { -p.value } else { p.value }).sum();
            prop_assert_eq!(net, default_trigger_outputs(window_fn, &elements).iter().map(|(_, v)| v).sum::<i64>());
        }
    }
}
