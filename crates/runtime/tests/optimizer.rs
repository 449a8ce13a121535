//! The optimizer: fused and lifted plans give exactly the results of the plan as written.

mod common;

use common::{temp_dir, Numbers};
use millstream_checkpoint::CheckpointStore;
use millstream_model::combiners::Sum;
use millstream_model::{Duration, FixedWindows, SlidingWindows, Timestamp, TimestampCombiner, Trigger};
use millstream_runtime::{
    CheckpointConfig, OptimizerOptions, PCollection, Pipeline, Runner, TestStream, UserError, Window,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Every combination of the three switches.
fn all_combinations() -> Vec<OptimizerOptions> {
    let mut v = Vec::new();
    for bits in 0..8u8 {
        v.push(OptimizerOptions {
            fusion: bits & 1 != 0,
            sibling_fusion: bits & 2 != 0,
            combiner_lifting: bits & 4 != 0,
        });
    }
    v
}

#[test]
fn plan_fuses_chains_and_siblings_and_lifts_combiners() {
    let p = Pipeline::new();
    let words = p.create(vec!["a b".to_string(), "c".to_string()]);
    let base = words.flat_map(|l: String| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
    let upper = base.map(|w| w.to_uppercase()).filter(|w| !w.is_empty());
    let lengths = base.map(|w| w.len() as i64);
    let _ = upper.collect();
    let _ = lengths.map(|l| ((), l)).combine_per_key(Sum).collect();
    let all = p.plan(&OptimizerOptions::all());
    println!("{all}");
    // FlatMap has two readers: it ends its chain; its readers are fused as siblings,
    // and each sibling continues into its own chain.
    assert!(all.contains("fused (ParDo): Map -> Filter | Map#2 -> Map#3 <- [1]"), "{all}");
    assert!(all.contains("fused (ParDo): FlatMap <-") || all.contains("] FlatMap (ParDo)"), "{all}");
    assert!(all.contains("CombinePerKey (Combine) <- [6]: combiner lifted"), "{all}");

    let chains_only = p.plan(&OptimizerOptions { sibling_fusion: false, ..OptimizerOptions::all() });
    assert!(chains_only.contains("fused (ParDo): Map -> Filter <- [1]"), "{chains_only}");
    assert!(chains_only.contains("fused (ParDo): Map#2 -> Map#3 <- [1]"), "{chains_only}");

    let none = p.plan(&OptimizerOptions::none());
    assert!(!none.contains("fused"), "{none}");
    assert!(none.contains("combiner not lifted (lifting off)"), "{none}");
}

#[test]
fn combines_that_cannot_be_lifted_are_not() {
    let p = Pipeline::new();
    let input = p.create(vec![("a".to_string(), 1i64)]);
    let _ = input
        .window_into(
            Window::into(FixedWindows::of(Duration::from_secs(10)))
                .triggering(Trigger::repeatedly(Trigger::after_count(2))),
        )
        .combine_per_key(Sum)
        .collect();
    let _ = input.combine_per_key_with_dropped(Sum).0.collect();
    let plan = p.plan(&OptimizerOptions::all());
    assert_eq!(plan.matches("combiner not lifted (not liftable)").count(), 2, "{plan}");
}

#[test]
fn a_user_error_in_a_fused_stage_names_that_stage() {
    let p = Pipeline::new();
    let _ = p
        .create((0..100i64).collect())
        .map(|x| x + 1)
        .try_map("Explode", |x| if x == 50 { Err(UserError("fifty".into())) } else { Ok(x) })
        .map(|x| x * 2)
        .collect();
    let plan = p.plan(&OptimizerOptions::all());
    assert!(plan.contains("fused (ParDo): Map -> Explode -> Map#2"), "{plan}");
    let err = Runner::new().workers(2).optimizer(OptimizerOptions::all()).run(&p).unwrap_err().to_string();
    assert!(err.contains("Explode") && err.contains("fifty"), "{err}");
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Add(i64),
    /// Drops values `x` with `x mod m == r`.
    Filter(i64, i64),
    /// `x` becomes `x` and `x + 1`.
    Dup,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (-3i64..4).prop_map(Op::Add),
        (2i64..5, 0i64..2).prop_map(|(m, r)| Op::Filter(m, r)),
        Just(Op::Dup),
    ]
}

fn apply(input: &PCollection<i64>, ops: &[Op]) -> PCollection<i64> {
    let mut pc = input.clone();
    for op in ops {
        pc = match *op {
            Op::Add(k) => pc.map(move |x| x + k),
            Op::Filter(m, r) => pc.filter(move |x| x.rem_euclid(m) != r),
            Op::Dup => pc.flat_map(|x| vec![x, x + 1]),
        };
    }
    pc
}

#[derive(Clone, Debug)]
struct Case {
    input: Vec<(i64, i64)>,
    head: Vec<Op>,
    left: Vec<Op>,
    right: Vec<Op>,
    sliding: bool,
    combiner: TimestampCombiner,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((0i64..50, 0i64..60_000), 0..120),
        prop::collection::vec(op(), 0..4),
        prop::collection::vec(op(), 0..3),
        prop::collection::vec(op(), 0..3),
        any::<bool>(),
        prop_oneof![
            Just(TimestampCombiner::EndOfWindow),
            Just(TimestampCombiner::Earliest),
            Just(TimestampCombiner::Latest)
        ],
    )
        .prop_map(|(input, head, left, right, sliding, combiner)| Case {
            input,
            head,
            left,
            right,
            sliding,
            combiner,
        })
}

/// Runs the case's pipeline; its outputs (every field of every windowed value), sorted.
fn run_case(case: &Case, options: OptimizerOptions) -> Vec<String> {
    let p = Pipeline::new();
    let input = p.create_timestamped(case.input.iter().map(|&(v, t)| (v, Timestamp(t))).collect());
    let base = apply(&input, &case.head);
    let left = apply(&base, &case.left);
    let right = apply(&base, &case.right);
    let merged = p.flatten(&[left, right]);
    let windowed = if case.sliding {
        merged.window_into(
            Window::into(SlidingWindows::of(Duration::from_secs(10), Duration::from_secs(5)))
                .with_timestamp_combiner(case.combiner),
        )
    } else {
        merged.window_into(
            Window::into(FixedWindows::of(Duration::from_secs(10))).with_timestamp_combiner(case.combiner),
        )
    };
    let sums = windowed.map(|x| (x.rem_euclid(5), x)).combine_per_key(Sum).collect();
    // A third sibling of `base`, and a global combine.
    let totals = base.map(|x| (x.rem_euclid(3), x)).combine_per_key(Sum).collect();
    let global = windowed.combine_globally_without_defaults(Sum).collect();
    Runner::new().workers(2).optimizer(options).run(&p).expect("the pipeline runs");
    let mut out: Vec<String> = sums.windowed().iter().map(|wv| format!("sums {wv:?}")).collect();
    out.extend(totals.windowed().iter().map(|wv| format!("totals {wv:?}")));
    out.extend(global.windowed().iter().map(|wv| format!("global {wv:?}")));
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn optimized_pipelines_give_the_results_of_unoptimized_ones(case in case()) {
        let expected = run_case(&case, OptimizerOptions::none());
        prop_assert_eq!(run_case(&case, OptimizerOptions::all()), expected.clone());
        prop_assert_eq!(
            run_case(&case, OptimizerOptions { sibling_fusion: false, ..OptimizerOptions::all() }),
            expected
        );
    }
}

/// Late data, allowed lateness and dropped data: lifting passes possibly-late elements
/// through one by one, so late panes and drop counters are the same.
fn late_data(options: OptimizerOptions, combiner: TimestampCombiner) -> (Vec<String>, u64) {
    let p = Pipeline::new();
    let ts = |s: i64| Timestamp(s * 1000);
    let el = |k: &str, v: i64, s: i64| ((k.to_string(), v), ts(s));
    let input = TestStream::new()
        .add_elements(vec![el("a", 1, 1), el("a", 2, 2), el("b", 3, 3), el("a", 4, 12)])
        .advance_watermark_to(ts(11))
        .add_elements(vec![el("a", 10, 4), el("a", 20, 5), el("a", 30, 13), el("b", 40, 14)])
        .advance_watermark_to(ts(40))
        .add_elements(vec![el("a", 100, 6), el("a", 200, 25), el("b", 300, 35), el("b", 400, 41)])
        .advance_watermark_to_infinity();
    let sums = p
        .test_stream(input)
        .map(|(k, v): (String, i64)| (k, v * 2))
        .window_into(
            Window::into(FixedWindows::of(Duration::from_secs(10)))
                .with_allowed_lateness(Duration::from_secs(10))
                .with_timestamp_combiner(combiner)
                .accumulating_fired_panes(),
        )
        .combine_per_key(Sum)
        .collect();
    let result = Runner::new().workers(2).optimizer(options).run(&p).expect("the pipeline runs");
    let mut out: Vec<String> = sums.windowed().iter().map(|wv| format!("{wv:?}")).collect();
    out.sort();
    (out, result.counter_total("/dropped_late"))
}

#[test]
fn late_panes_and_dropped_counts_are_the_same_with_lifting() {
    for combiner in [TimestampCombiner::EndOfWindow, TimestampCombiner::Earliest, TimestampCombiner::Latest] {
        let expected = late_data(OptimizerOptions::none(), combiner);
        assert_eq!(expected.1, 2, "{combiner:?}: two elements are beyond the allowed lateness");
        for options in all_combinations() {
            assert_eq!(late_data(options, combiner), expected, "{combiner:?} {options:?}");
        }
    }
}

fn sums_from_checkpoints(
    source: Numbers,
    options: OptimizerOptions,
    checkpoints: Option<CheckpointConfig>,
) -> Result<BTreeMap<u64, u64>, String> {
    let p = Pipeline::new();
    let out = p
        .read("Numbers", source)
        .map(|x| (x % 10, x))
        .filter(|(k, _)| *k != 3)
        .combine_per_key(Sum)
        .with_operator_id("sums")
        .collect();
    let mut runner = Runner::new().workers(2).optimizer(options);
    if let Some(c) = checkpoints {
        runner = runner.checkpointing(c);
    }
    runner.run(&p).map_err(|e| e.to_string())?;
    Ok(out.values().into_iter().collect())
}

#[test]
fn a_lifted_combine_resumes_from_a_checkpoint_with_exact_results() {
    let n = 20_000;
    let expected = sums_from_checkpoints(Numbers::new(n), OptimizerOptions::none(), None).unwrap();
    let dir = temp_dir("optimizer-resume");
    let store = CheckpointStore::local(&dir).unwrap();
    let config = CheckpointConfig::new(store.clone()).interval(Duration::from_millis(20));
    let err = sums_from_checkpoints(
        Numbers::failing(n, 12_000, 6_000, &store),
        OptimizerOptions::all(),
        Some(config.clone()),
    )
    .unwrap_err();
    assert!(err.contains("injected failure"), "{err}");
    assert!(store.latest_complete().unwrap().is_some(), "a checkpoint before the failure");
    let resumed = sums_from_checkpoints(Numbers::new(n), OptimizerOptions::all(), Some(config)).unwrap();
    assert_eq!(resumed, expected);
    let _ = std::fs::remove_dir_all(&dir);
}
