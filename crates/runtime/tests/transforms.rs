//! Each transform end to end, on 1, 2 and 4 workers, with the same results.

use millstream_model::combiners::Sum;
use millstream_model::{Duration, FixedWindows, Timestamp, Window as W};
use millstream_runtime::{
    DoFn, PAssert, Pipeline, ProcessContext, Runner, TestStream, TupleTag, UserError, Window,
};
use std::collections::HashMap;

fn run(p: &Pipeline, workers: usize) {
    Runner::new()
        .workers(workers)
        .run(p)
        .unwrap_or_else(|e| panic!("run failed with {workers} workers: {e}"));
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[test]
fn element_wise_transforms() {
    for workers in [1, 2, 4] {
        let p = Pipeline::new();
        let words = p.create(vec!["a b".to_string(), "c".to_string(), "d e f".to_string()]);
        let flat = words.flat_map(|l: String| l.split(' ').map(str::to_owned).collect::<Vec<_>>());
        let upper = flat.map(|w| w.to_uppercase()).filter(|w| w != "C");
        let keyed = upper.with_keys(|w| w.len());
        let out = upper.collect();
        let k = keyed.collect();
        run(&p, workers);
        assert_eq!(sorted(out.values()), vec!["A", "B", "D", "E", "F"]);
        assert_eq!(k.values().len(), 5);
        assert!(k.values().iter().all(|(n, w)| *n == w.len()));
    }
}

#[test]
fn group_by_key_and_combine_in_batch() {
    for workers in [1, 2, 4] {
        let p = Pipeline::new();
        let pairs: Vec<(String, i64)> = (0..100).map(|i| (format!("k{}", i % 7), i)).collect();
        let input = p.create(pairs.clone());
        let grouped = input.group_by_key().map(|(k, mut vs)| {
            vs.sort();
            (k, vs)
        });
        let sums = input.combine_per_key(Sum).collect();
        let total = input.map(|(_, v)| v).combine_globally(Sum).collect();
        let g = grouped.collect();
        run(&p, workers);
        let mut expected: HashMap<String, i64> = HashMap::new();
        for (k, v) in &pairs {
            *expected.entry(k.clone()).or_default() += v;
        }
        let mut expected: Vec<(String, i64)> = expected.into_iter().collect();
        expected.sort();
        assert_eq!(sorted(sums.values()), expected);
        assert_eq!(total.values(), vec![4950]);
        assert_eq!(g.values().len(), 7);
        for (k, vs) in g.values() {
            let want: Vec<i64> = pairs.iter().filter(|(kk, _)| *kk == k).map(|(_, v)| *v).collect();
            assert_eq!(vs, want);
        }
    }
}

#[test]
fn fixed_windows_sum_with_timestamps() {
    for workers in [1, 2, 4] {
        let p = Pipeline::new();
        let input = p.create_timestamped(vec![
            (("a".to_string(), 1i64), Timestamp::from_millis(1_000)),
            (("a".to_string(), 2), Timestamp::from_millis(59_000)),
            (("a".to_string(), 4), Timestamp::from_millis(61_000)),
            (("b".to_string(), 8), Timestamp::from_millis(1_000)),
        ]);
        let sums =
            input.window_into(Window::into(FixedWindows::of(Duration::from_mins(1)))).combine_per_key(Sum);
        let c = sums.collect();
        PAssert::that(&sums)
            .in_on_time_pane(W::interval(Timestamp(0), Timestamp(60_000)))
            .contains_in_any_order(vec![("a".to_string(), 3), ("b".to_string(), 8)]);
        run(&p, workers);
        let mut got: Vec<_> =
            c.windowed().into_iter().map(|wv| (wv.window, wv.value, wv.timestamp)).collect();
        got.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        assert_eq!(
            got,
            vec![
                (W::interval(Timestamp(0), Timestamp(60_000)), ("a".to_string(), 3), Timestamp(59_999)),
                (W::interval(Timestamp(0), Timestamp(60_000)), ("b".to_string(), 8), Timestamp(59_999)),
                (
                    W::interval(Timestamp(60_000), Timestamp(120_000)),
                    ("a".to_string(), 4),
                    Timestamp(119_999)
                ),
            ]
        );
    }
}

#[test]
fn flatten_partition_reshuffle_cogroup() {
    for workers in [1, 2, 4] {
        let p = Pipeline::new();
        let a = p.create((0..10i64).collect());
        let b = p.create((10..20i64).collect());
        let all = p.flatten(&[a, b]).reshuffle();
        let parts = all.partition(3, |x, n| (*x as usize) % n);
        let p0 = parts[0].collect();
        let p2 = parts[2].collect();
        let left = p.create(vec![("x".to_string(), 1i64), ("y".to_string(), 2), ("x".to_string(), 3)]);
        let right =
            p.create(vec![("x".to_string(), "one".to_string()), ("z".to_string(), "zed".to_string())]);
        let joined = left
            .co_group_by_key(&right)
            .map(|(k, (mut l, r))| {
                l.sort();
                (k, (l, r))
            })
            .collect();
        run(&p, workers);
        assert_eq!(sorted(p0.values()), vec![0, 3, 6, 9, 12, 15, 18]);
        assert_eq!(sorted(p2.values()), vec![2, 5, 8, 11, 14, 17]);
        assert_eq!(
            sorted(joined.values()),
            vec![
                ("x".to_string(), (vec![1, 3], vec!["one".to_string()])),
                ("y".to_string(), (vec![2], vec![])),
                ("z".to_string(), (vec![], vec!["zed".to_string()])),
            ]
        );
    }
}

#[derive(Clone)]
struct Classify {
    odd: TupleTag<String>,
}

impl DoFn<i64> for Classify {
    type Output = i64;
    fn process(&mut self, x: i64, ctx: &mut ProcessContext<'_, i64>) -> Result<(), UserError> {
        if x % 2 == 0 {
            ctx.output(x * 10);
        } else {
            ctx.output_to(&self.odd, format!("odd {x}"))?;
        }
        Ok(())
    }
}

#[test]
fn tagged_outputs() {
    for workers in [1, 2] {
        let p = Pipeline::new();
        let odd = TupleTag::<String>::new("odd");
        let (even, others) = p.create((0..6i64).collect()).par_do_with_outputs(
            "Classify",
            Classify { odd: odd.clone() },
            &[(&odd).into()],
        );
        let e = even.collect();
        let o = others.get(&odd).collect();
        run(&p, workers);
        assert_eq!(sorted(e.values()), vec![0, 20, 40]);
        assert_eq!(sorted(o.values()), vec!["odd 1", "odd 3", "odd 5"]);
    }
}

#[derive(Clone)]
struct AddOffset {
    offset: millstream_runtime::PCollectionView<i64>,
    table: millstream_runtime::PCollectionView<HashMap<String, i64>>,
}

impl DoFn<String> for AddOffset {
    type Output = i64;
    fn process(&mut self, k: String, ctx: &mut ProcessContext<'_, i64>) -> Result<(), UserError> {
        let offset = *ctx.side_input(&self.offset)?;
        let v = ctx.side_input(&self.table)?.get(&k).copied().unwrap_or(-1);
        ctx.output(v + offset);
        Ok(())
    }
}

#[test]
fn side_inputs_singleton_and_map() {
    for workers in [1, 2] {
        let p = Pipeline::new();
        let offset = p.create(vec![1000i64]).as_singleton();
        let table = p.create(vec![("a".to_string(), 1i64), ("b".to_string(), 2)]).as_map();
        let out = p
            .create(vec!["a".to_string(), "b".to_string(), "c".to_string()])
            .par_do_with_side_inputs(
                "AddOffset",
                AddOffset { offset: offset.clone(), table: table.clone() },
                &[(&offset).into(), (&table).into()],
            )
            .collect();
        run(&p, workers);
        assert_eq!(sorted(out.values()), vec![999, 1001, 1002]);
    }
}

#[test]
fn test_stream_late_data_is_dropped_and_counted() {
    for workers in [1, 3] {
        let p = Pipeline::new();
        let input = p.test_stream(
            TestStream::new()
                .add_elements(vec![(("k".to_string(), 1i64), Timestamp(1_000))])
                .advance_watermark_to(Timestamp(120_000))
                .add_elements(vec![(("k".to_string(), 5i64), Timestamp(2_000))])
                .advance_watermark_to_infinity(),
        );
        let (sums, dropped) = input
            .window_into(Window::into(FixedWindows::of(Duration::from_mins(1))))
            .combine_per_key_with_dropped(Sum);
        let s = sums.collect();
        let d = dropped.collect();
        let result = Runner::new().workers(workers).run(&p).unwrap();
        assert_eq!(s.values(), vec![("k".to_string(), 1)]);
        assert_eq!(d.values(), vec![("k".to_string(), 5)]);
        assert_eq!(result.counter_total("/dropped_late"), 1);
    }
}

#[test]
fn user_function_errors_fail_the_job_with_the_step_name() {
    let p = Pipeline::new();
    p.create(vec!["1".to_string(), "x".to_string()])
        .try_map("ParseInt", |s: String| Ok::<i64, UserError>(s.parse::<i64>()?));
    let err = Runner::new().workers(2).run(&p).unwrap_err();
    assert!(err.to_string().contains("ParseInt"), "{err}");
    assert!(err.to_string().contains("invalid digit"), "{err}");
}

#[test]
fn failed_assertions_are_reported() {
    let p = Pipeline::new();
    PAssert::that(&p.create(vec![1i64, 2])).contains_in_any_order(vec![1, 3]);
    let err = Runner::new().workers(1).run(&p).unwrap_err();
    assert!(err.to_string().contains("assertion failed"), "{err}");
}

#[test]
fn a_panicking_user_function_fails_the_job_instead_of_hanging() {
    let p = Pipeline::new();
    p.create((0..100i64).collect()).map(|x| if x == 42 { panic!("boom at {x}") } else { x });
    let err = Runner::new().workers(2).run(&p).unwrap_err();
    assert!(err.to_string().contains("boom at 42"), "{err}");
}

#[test]
fn combine_globally_emits_the_default_for_empty_input_in_the_global_window() {
    for workers in [1, 2] {
        let p = Pipeline::new();
        let empty = p.create(Vec::<i64>::new());
        let sum = empty.combine_globally(Sum).collect();
        let windowed_sum = p
            .create_timestamped(Vec::<(i64, Timestamp)>::new())
            .window_into(Window::into(FixedWindows::of(Duration::from_mins(1))))
            .combine_globally(Sum)
            .collect();
        let nonempty = p.create(vec![1i64, 2]).combine_globally(Sum).collect();
        run(&p, workers);
        assert_eq!(sum.values(), vec![0]);
        assert!(windowed_sum.values().is_empty());
        assert_eq!(nonempty.values(), vec![3]);
    }
}

#[test]
fn windowed_side_input_is_read_per_window() {
    #[derive(Clone)]
    struct Scale(millstream_runtime::PCollectionView<i64>);
    impl DoFn<i64> for Scale {
        type Output = i64;
        fn process(&mut self, x: i64, ctx: &mut ProcessContext<'_, i64>) -> Result<(), UserError> {
            let factor = *ctx.side_input(&self.0)?;
            ctx.output(x * factor);
            Ok(())
        }
    }
    for workers in [1, 2] {
        let p = Pipeline::new();
        let minute = Window::into(FixedWindows::of(Duration::from_mins(1)));
        let factors = p
            .create_timestamped(vec![(10i64, Timestamp(5_000)), (100, Timestamp(65_000))])
            .window_into(Window::into(FixedWindows::of(Duration::from_mins(1))))
            .as_singleton();
        let out = p
            .create_timestamped(vec![
                (1i64, Timestamp(1_000)),
                (2, Timestamp(61_000)),
                (3, Timestamp(62_000)),
            ])
            .window_into(minute)
            .par_do_with_side_inputs("Scale", Scale(factors.clone()), &[(&factors).into()])
            .collect();
        run(&p, workers);
        assert_eq!(sorted(out.values()), vec![10, 200, 300]);
    }
}
