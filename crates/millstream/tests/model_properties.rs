//! Properties of the model as Millstream runs it, checked against direct computations on
//! generated inputs:
//!
//! * with the default trigger, keyed sums over fixed, sliding and session windows depend
//!   neither on the order in which elements arrive (nor on watermark advances between
//!   them that leave no element late) nor on the number of workers;
//! * session merging gives the same sessions and sums for any arrival order, also when
//!   every element fires a speculative pane and panes accumulate and retract;
//! * batch equals streaming: the same elements read as a bounded collection or from a
//!   TestStream give the same panes.
//!
//! Case counts are small: every case runs whole pipelines.

use millstream::model::combiners::Sum;
use millstream::model::{
    Duration, FixedWindows, Sessions, SlidingWindows, Timestamp, Timing, Trigger, Window as ModelWindow,
    WindowedValue,
};
use millstream::runtime::{Collected, PCollection, Pipeline, Runner, TestStream, Window};
use proptest::prelude::*;
use std::collections::BTreeMap;

type Key = u8;
type Element = ((Key, i64), Timestamp);

const FIXED: Duration = Duration::from_mins(2);
const SLIDING_SIZE: Duration = Duration::from_mins(3);
const SLIDING_PERIOD: Duration = Duration::from_mins(1);
const GAP: Duration = Duration::from_mins(1);

/// A pane as compared: key, window, value, output timestamp, timing, index, on-time index,
/// first, last, retraction.
type Row = (Key, ModelWindow, i64, Timestamp, Timing, u64, i64, bool, bool, bool);

fn row(wv: &WindowedValue<(Key, i64)>) -> Row {
    let p = wv.pane;
    (
        wv.value.0,
        wv.window,
        wv.value.1,
        wv.timestamp,
        p.timing,
        p.index,
        p.on_time_index,
        p.is_first,
        p.is_last,
        wv.retraction,
    )
}

fn rows(c: &Collected<(Key, i64)>) -> Vec<Row> {
    let mut v: Vec<Row> = c.windowed().iter().map(row).collect();
    v.sort();
    v
}

/// The only pane of a window under the default trigger, with nothing late.
fn only_pane(key: Key, window: ModelWindow, sum: i64) -> Row {
    (key, window, sum, window.max_timestamp(), Timing::OnTime, 0, 0, true, true, false)
}

fn interval(start: i64, end: i64) -> ModelWindow {
    ModelWindow::interval(Timestamp(start), Timestamp(end))
}

fn expected_fixed(elements: &[Element]) -> Vec<Row> {
    let size = FIXED.millis();
    let mut sums: BTreeMap<(Key, i64), i64> = BTreeMap::new();
    for ((k, v), t) in elements {
        let start = t.millis() - t.millis().rem_euclid(size);
        *sums.entry((*k, start)).or_default() += v;
    }
    let mut out: Vec<Row> =
        sums.into_iter().map(|((k, s), sum)| only_pane(k, interval(s, s + size), sum)).collect();
    out.sort();
    out
}

fn expected_sliding(elements: &[Element]) -> Vec<Row> {
    let (size, period) = (SLIDING_SIZE.millis(), SLIDING_PERIOD.millis());
    let mut sums: BTreeMap<(Key, i64), i64> = BTreeMap::new();
    for ((k, v), t) in elements {
        let t = t.millis();
        let mut start = t - t.rem_euclid(period);
        while start > t - size {
            *sums.entry((*k, start)).or_default() += v;
            start -= period;
        }
    }
    let mut out: Vec<Row> =
        sums.into_iter().map(|((k, s), sum)| only_pane(k, interval(s, s + size), sum)).collect();
    out.sort();
    out
}

/// Each key's sessions: `[t, t + gap)` per element, overlapping ones merged.
fn sessions_of(elements: &[Element]) -> Vec<(Key, ModelWindow, i64)> {
    let mut by_key: BTreeMap<Key, Vec<(i64, i64)>> = BTreeMap::new();
    for ((k, v), t) in elements {
        by_key.entry(*k).or_default().push((t.millis(), *v));
    }
    let mut out = Vec::new();
    for (k, mut items) in by_key {
        items.sort();
        let mut current: Option<(i64, i64, i64)> = None;
        for (t, v) in items {
            current = match current {
                Some((s, e, sum)) if t < e => Some((s, e.max(t + GAP.millis()), sum + v)),
                Some((s, e, sum)) => {
                    out.push((k, interval(s, e), sum));
                    Some((t, t + GAP.millis(), v))
                }
                None => Some((t, t + GAP.millis(), v)),
            };
        }
        if let Some((s, e, sum)) = current {
            out.push((k, interval(s, e), sum));
        }
    }
    out.sort();
    out
}

fn expected_sessions(elements: &[Element]) -> Vec<Row> {
    let mut out: Vec<Row> =
        sessions_of(elements).into_iter().map(|(k, w, sum)| only_pane(k, w, sum)).collect();
    out.sort();
    out
}

/// Up to 30 elements of up to 4 keys over 20 minutes of event time around the epoch
/// (negative timestamps included), with a permutation of them.
fn elements_and_permutation() -> impl Strategy<Value = (Vec<Element>, Vec<Element>)> {
    prop::collection::vec((0u8..4, -50i64..50, -300_000i64..900_000), 1..30)
        .prop_map(|v| v.into_iter().map(|(k, v, t)| ((k, v), Timestamp(t))).collect::<Vec<Element>>())
        .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
}

/// A TestStream adding `elements` in order; before element `i`, when `advance[i]`, the
/// watermark moves to the least timestamp still to come, so no element is ever late.
/// Elements between two advances are added together.
fn scripted(elements: &[Element], advance: &[bool]) -> TestStream<(Key, i64)> {
    let mut s = TestStream::new();
    let mut batch: Vec<Element> = Vec::new();
    for (i, e) in elements.iter().enumerate() {
        if advance.get(i).copied().unwrap_or(false) {
            if !batch.is_empty() {
                s = s.add_elements(std::mem::take(&mut batch));
            }
            let least = elements[i..].iter().map(|(_, t)| *t).min().expect("element i remains");
            s = s.advance_watermark_to(least);
        }
        batch.push(*e);
    }
    if !batch.is_empty() {
        s = s.add_elements(batch);
    }
    s.advance_watermark_to_infinity()
}

/// Keyed sums of `input` over fixed, sliding and session windows (default trigger).
struct Sums {
    fixed: Collected<(Key, i64)>,
    sliding: Collected<(Key, i64)>,
    sessions: Collected<(Key, i64)>,
}

fn default_trigger_sums(input: &PCollection<(Key, i64)>) -> Sums {
    Sums {
        fixed: input.window_into(Window::into(FixedWindows::of(FIXED))).combine_per_key(Sum).collect(),
        sliding: input
            .window_into(Window::into(SlidingWindows::of(SLIDING_SIZE, SLIDING_PERIOD)))
            .combine_per_key(Sum)
            .collect(),
        sessions: input
            .window_into(Window::into(Sessions::with_gap_duration(GAP)))
            .combine_per_key(Sum)
            .collect(),
    }
}

fn run(p: &Pipeline, workers: usize) {
    Runner::new().workers(workers).run(p).unwrap_or_else(|e| panic!("run on {workers} workers failed: {e}"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20, ..ProptestConfig::default() })]

    /// (a) Default trigger: the sums do not depend on arrival order, on watermark advances
    /// that leave nothing late, or on the number of workers.
    #[test]
    fn default_trigger_sums_ignore_order_and_workers(
        (elements, shuffled) in elements_and_permutation(),
        advance in prop::collection::vec(prop::bool::weighted(0.3), 30),
    ) {
        let want = (expected_fixed(&elements), expected_sliding(&elements), expected_sessions(&elements));
        for workers in [1, 2, 4] {
            let p = Pipeline::new();
            let sums = default_trigger_sums(&p.test_stream(scripted(&shuffled, &advance)));
            run(&p, workers);
            prop_assert_eq!(&rows(&sums.fixed), &want.0, "fixed windows, {} workers", workers);
            prop_assert_eq!(&rows(&sums.sliding), &want.1, "sliding windows, {} workers", workers);
            prop_assert_eq!(&rows(&sums.sessions), &want.2, "sessions, {} workers", workers);
        }
    }

    /// (b) Session merging is order-independent even with a pane per element, accumulating
    /// and retracting: whatever the order, the sessions that remain (the output windows
    /// not inside another output window of the key) are the same, their last panes hold
    /// the sessions' sums, and outputs minus retractions add up to each key's total.
    #[test]
    fn session_merging_is_order_independent(
        (elements, shuffled) in elements_and_permutation(),
        one_by_one in any::<bool>(),
        workers in prop_oneof![Just(1usize), Just(2), Just(4)],
    ) {
        let p = Pipeline::new();
        let mut stream = TestStream::new();
        if one_by_one {
            for e in &shuffled {
                stream = stream.add_elements(vec![*e]);
            }
        } else {
            stream = stream.add_elements(shuffled.clone());
        }
        let out = p
            .test_stream(stream.advance_watermark_to_infinity())
            .window_into(
                Window::into(Sessions::with_gap_duration(GAP))
                    .triggering(Trigger::repeatedly(Trigger::after_count(1)))
                    .accumulating_and_retracting_fired_panes(),
            )
            .combine_per_key(Sum)
            .collect();
        run(&p, workers);
        let outputs = out.windowed();

        // Net per key.
        let mut net: BTreeMap<Key, i64> = BTreeMap::new();
        let mut total: BTreeMap<Key, i64> = BTreeMap::new();
        for wv in &outputs {
            *net.entry(wv.value.0).or_default() += if wv.retraction { -wv.value.1 } else { wv.value.1 };
        }
        for ((k, v), _) in &elements {
            *total.entry(*k).or_default() += v;
        }
        prop_assert_eq!(net, total);

        // The surviving sessions and the value of their last pane.
        let windows: Vec<(Key, ModelWindow)> = outputs.iter().map(|wv| (wv.value.0, wv.window)).collect();
        let inside = |k: Key, w: &ModelWindow| {
            let w = w.as_interval().expect("session windows are intervals");
            windows.iter().any(|(k2, w2)| {
                let w2 = w2.as_interval().expect("session windows are intervals");
                *k2 == k && w2 != w && w2.start <= w.start && w.end <= w2.end
            })
        };
        let mut last: BTreeMap<(Key, ModelWindow), (u64, i64)> = BTreeMap::new();
        for wv in outputs.iter().filter(|wv| !wv.retraction && !inside(wv.value.0, &wv.window)) {
            let e = last.entry((wv.value.0, wv.window)).or_insert((wv.pane.index, wv.value.1));
            if wv.pane.index >= e.0 {
                *e = (wv.pane.index, wv.value.1);
            }
        }
        let got: Vec<(Key, ModelWindow, i64)> = last.into_iter().map(|((k, w), (_, v))| (k, w, v)).collect();
        prop_assert_eq!(got, sessions_of(&elements));
    }

    /// (c) Batch equals streaming: the same elements from `create_timestamped` and from a
    /// TestStream (default trigger) give identical panes.
    #[test]
    fn batch_equals_streaming(
        (elements, shuffled) in elements_and_permutation(),
        advance in prop::collection::vec(prop::bool::weighted(0.3), 30),
        workers in 1usize..=4,
    ) {
        let batch = Pipeline::new();
        let b = default_trigger_sums(&batch.create_timestamped(elements.clone()));
        run(&batch, workers);
        let streaming = Pipeline::new();
        let s = default_trigger_sums(&streaming.test_stream(scripted(&shuffled, &advance)));
        run(&streaming, workers);
        prop_assert_eq!(rows(&b.fixed), rows(&s.fixed));
        prop_assert_eq!(rows(&b.sliding), rows(&s.sliding));
        prop_assert_eq!(rows(&b.sessions), rows(&s.sessions));
        prop_assert_eq!(rows(&b.sessions), expected_sessions(&elements));
    }
}
