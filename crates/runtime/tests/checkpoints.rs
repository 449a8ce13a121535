//! Checkpoints and recovery: a job that fails part-way resumes from its newest complete
//! checkpoint and ends with exactly the results of a run without failure.

mod common;

use common::{temp_dir, Numbers, SumUntilEnd};
use millstream_checkpoint::CheckpointStore;
use millstream_model::combiners::Sum;
use millstream_model::Duration;
use millstream_runtime::{CheckpointConfig, PCollection, PTransform, Pipeline, Runner};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

fn sums(
    source: Numbers,
    workers: usize,
    checkpoints: Option<CheckpointConfig>,
) -> Result<BTreeMap<u64, u64>, String> {
    let p = Pipeline::new();
    let out = p.read("Numbers", source).map(|x| (x % 10, x)).combine_per_key(Sum).collect();
    let mut runner = Runner::new().workers(workers);
    if let Some(c) = checkpoints {
        runner = runner.checkpointing(c);
    }
    runner.run(&p).map_err(|e| e.to_string())?;
    Ok(out.values().into_iter().collect())
}

#[test]
fn a_failed_job_resumes_from_its_newest_checkpoint_with_exact_results() {
    for workers in [1, 2] {
        let n = 20_000;
        let expected = sums(Numbers::new(n, None), workers, None).unwrap();
        let dir = temp_dir(&format!("resume-{workers}"));
        let store = CheckpointStore::local(&dir).unwrap();
        let config = CheckpointConfig::new(store.clone()).interval(Duration::from_millis(20));

        let err = sums(Numbers::new(n, Some(12_000)), workers, Some(config.clone())).unwrap_err();
        assert!(err.contains("injected failure"), "{err}");
        let checkpoint = store.latest_complete().unwrap().expect("a checkpoint before the failure");
        assert!(checkpoint.id >= 1);

        let source = Numbers::new(n, None);
        let resumed = sums(source.clone(), workers, Some(config)).unwrap();
        assert_eq!(resumed, expected, "{workers} workers, resumed from checkpoint {}", checkpoint.id);
        // It really resumed: it read only what the checkpoint had not covered.
        let reread = source.read.load(Ordering::Relaxed);
        assert!(reread > 0 && reread < n - 5_000, "re-read {reread} of {n} numbers");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn stateful_sums(
    source: Numbers,
    workers: usize,
    checkpoints: Option<CheckpointConfig>,
) -> Result<Vec<(u64, u64, u64)>, String> {
    let p = Pipeline::new();
    let out =
        p.read("Numbers", source).map(|x| (x % 7, x)).stateful_par_do("SumUntilEnd", SumUntilEnd).collect();
    let mut runner = Runner::new().workers(workers);
    if let Some(c) = checkpoints {
        runner = runner.checkpointing(c);
    }
    runner.run(&p).map_err(|e| e.to_string())?;
    let mut v = out.values();
    v.sort();
    Ok(v)
}

#[test]
fn a_stateful_dofn_resumes_with_its_state_and_timers() {
    for (workers, resumed_workers) in [(1, 1), (2, 2), (2, 3)] {
        let n = 20_000;
        let expected = stateful_sums(Numbers::new(n, None), workers, None).unwrap();
        assert_eq!(expected.len(), 7);
        let dir = temp_dir(&format!("stateful-{workers}-{resumed_workers}"));
        let store = CheckpointStore::local(&dir).unwrap();
        let config = CheckpointConfig::new(store.clone()).interval(Duration::from_millis(20));

        let err = stateful_sums(Numbers::new(n, Some(12_000)), workers, Some(config.clone())).unwrap_err();
        assert!(err.contains("injected failure"), "{err}");
        let checkpoint = store.latest_complete().unwrap().expect("a checkpoint before the failure");
        assert!(
            checkpoint.operators().contains(&"SumUntilEnd"),
            "the stateful step is in the checkpoint: {:?}",
            checkpoint.operators()
        );

        let source = Numbers::new(n, None);
        let resumed = stateful_sums(source.clone(), resumed_workers, Some(config)).unwrap();
        assert_eq!(
            resumed, expected,
            "{workers} then {resumed_workers} workers, from checkpoint {}",
            checkpoint.id
        );
        let reread = source.read.load(Ordering::Relaxed);
        assert!(reread > 0 && reread < n - 5_000, "re-read {reread} of {n} numbers");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn state_follows_operator_ids_and_unknown_state_is_an_error_unless_allowed() {
    let n = 20_000;
    let expected = sums(Numbers::new(n, None), 2, None).unwrap();
    let dir = temp_dir("operator-ids");
    let store = CheckpointStore::local(&dir).unwrap();
    let config = CheckpointConfig::new(store.clone()).interval(Duration::from_millis(20));
    // The first version of the job: the grouping's id is its step name, "CombinePerKey".
    let err = sums(Numbers::new(n, Some(12_000)), 2, Some(config.clone())).unwrap_err();
    assert!(err.contains("injected failure"), "{err}");

    // The second version gives the grouping a new id: the checkpoint's state of
    // "CombinePerKey" belongs to no operator of the job, which is an error.
    let p = Pipeline::new();
    let _ = p
        .read("Numbers", Numbers::new(n, None))
        .map(|x| (x % 10, x))
        .combine_per_key(Sum)
        .with_operator_id("totals-v2")
        .collect();
    let err = Runner::new().workers(2).checkpointing(config.clone()).run(&p).unwrap_err().to_string();
    assert!(err.contains("\"CombinePerKey\"") && err.contains("allow_non_restored_state"), "{err}");

    // A version that moves the step into a composite (its name becomes
    // "Totals/CombinePerKey") but keeps the id resumes with the state.
    struct Totals;
    impl PTransform<PCollection<(u64, u64)>> for Totals {
        type Output = PCollection<(u64, u64)>;
        fn expand(&self, input: PCollection<(u64, u64)>) -> Self::Output {
            input.combine_per_key(Sum).with_operator_id("CombinePerKey")
        }
    }
    let p = Pipeline::new();
    let out =
        p.read("Numbers", Numbers::new(n, None)).map(|x| (x % 10, x)).apply("Totals", &Totals).collect();
    assert!(p.steps().iter().any(|(name, _)| name == "Totals/CombinePerKey"), "{:?}", p.steps());
    Runner::new().workers(2).checkpointing(config.clone()).run(&p).unwrap();
    let resumed: BTreeMap<u64, u64> = out.values().into_iter().collect();
    assert_eq!(resumed, expected);
    let _ = std::fs::remove_dir_all(&dir);

    // Allowed to drop unknown state, the job runs (from the sources' positions, without
    // the grouping's state, so the sums miss what the checkpoint had counted).
    let dir = temp_dir("operator-ids-drop");
    let store = CheckpointStore::local(&dir).unwrap();
    let config = CheckpointConfig::new(store).interval(Duration::from_millis(20));
    let _ = sums(Numbers::new(n, Some(12_000)), 2, Some(config.clone())).unwrap_err();
    let p = Pipeline::new();
    let out = p
        .read("Numbers", Numbers::new(n, None))
        .map(|x| (x % 10, x))
        .combine_per_key(Sum)
        .with_operator_id("totals-v2")
        .collect();
    Runner::new().workers(2).checkpointing(config.allow_non_restored_state(true)).run(&p).unwrap();
    let dropped: u64 = out.values().iter().map(|(_, s)| s).sum();
    let all: u64 = expected.values().sum();
    assert!(dropped < all, "the dropped state is missing from the sums ({dropped} of {all})");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn operator_ids_must_be_unique() {
    let p = Pipeline::new();
    let input = p.create(vec![(1u64, 1u64)]);
    let _ = input.combine_per_key(Sum).with_operator_id("same").collect();
    let _ = input.combine_per_key(Sum).with_operator_id("same").collect();
    let err = Runner::new().workers(1).run(&p).unwrap_err().to_string();
    assert!(err.contains("same operator id \"same\""), "{err}");
}
