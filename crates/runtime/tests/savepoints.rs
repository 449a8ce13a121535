//! Savepoints: taken on request while a job runs (through the API or a request file in the
//! checkpoint store), optionally stopping it; a job started from one continues exactly
//! where it stopped, on the same, more or fewer workers.

mod common;

use common::{temp_dir, Numbers, SumUntilEnd};
use millstream_checkpoint::{CheckpointKind, CheckpointStore, SavepointOutcome, SavepointRequest};
use millstream_model::combiners::Sum;
use millstream_model::Duration;
use millstream_runtime::{CheckpointConfig, Collected, Pipeline, PipelineResult, Runner};
use std::sync::atomic::Ordering;
use std::time::Duration as StdDuration;

const N: u64 = 30_000;

/// Per key (x % 10): the sum through a grouping, and the (key, sum, count) through a
/// stateful DoFn with a timer; both emit only when the input ends.
struct Job {
    pipeline: Pipeline,
    sums: Collected<(u64, u64)>,
    stateful: Collected<(u64, u64, u64)>,
}

fn job(source: Numbers) -> Job {
    let p = Pipeline::new();
    let keyed = p.read("Numbers", source).map(|x| (x % 10, x));
    let sums = keyed.combine_per_key(Sum).collect();
    let stateful = keyed.stateful_par_do("SumUntilEnd", SumUntilEnd).collect();
    Job { pipeline: p, sums, stateful }
}

type Results = (Vec<(u64, u64)>, Vec<(u64, u64, u64)>);

fn results(job: &Job) -> Results {
    let mut sums = job.sums.values();
    sums.sort();
    let mut stateful = job.stateful.values();
    stateful.sort();
    (sums, stateful)
}

fn expected() -> Results {
    let j = job(Numbers::new(N));
    Runner::new().workers(2).run(&j.pipeline).unwrap();
    results(&j)
}

fn config(store: &CheckpointStore) -> CheckpointConfig {
    CheckpointConfig::new(store.clone()).interval(Duration::from_secs(3600))
}

/// Waits until the source has read `count` numbers.
fn wait_for_reads(source: &Numbers, count: u64) {
    while source.read.load(Ordering::Relaxed) < count {
        std::thread::sleep(StdDuration::from_millis(2));
    }
}

/// Runs the job on `workers` with a savepoint (stopping it) requested once `after`
/// numbers were read. Checkpoints are hourly: only the savepoint's epoch is forced.
fn run_and_stop_with_savepoint(
    workers: usize,
    checkpoints: &CheckpointStore,
    savepoint: &CheckpointStore,
    after: u64,
) -> (Job, PipelineResult) {
    let source = Numbers::new(N);
    let j = job(source.clone());
    let runner = Runner::new().workers(workers).checkpointing(config(checkpoints));
    let handle = runner.savepoint_handle();
    let target = savepoint.clone();
    let trigger = std::thread::spawn(move || {
        wait_for_reads(&source, after);
        handle.trigger(target, true).wait()
    });
    let result = runner.run(&j.pipeline).expect("the job stops cleanly");
    let savepoint_taken = trigger.join().expect("trigger thread").expect("savepoint completes");
    assert!(savepoint_taken.stopped);
    assert_eq!(result.savepoints, vec![savepoint_taken]);
    (j, result)
}

#[test]
fn stop_with_savepoint_then_resume_on_fewer_and_more_workers() {
    let expected = expected();
    for (before, after) in [(2, 1), (1, 3), (2, 2)] {
        let dir = temp_dir(&format!("savepoint-rescale-{before}-{after}"));
        let checkpoints = CheckpointStore::local(dir.join("chk")).unwrap();
        let savepoint = CheckpointStore::local(dir.join("savepoint")).unwrap();
        let (stopped, result) = run_and_stop_with_savepoint(before, &checkpoints, &savepoint, 8_000);
        // Stopped without flushing: nothing emitted at end of input yet.
        assert_eq!(results(&stopped), (vec![], vec![]), "{before} workers stopped without flushing");
        let sp = &result.savepoints[0];
        let manifest = savepoint.latest_complete().unwrap().expect("a complete savepoint");
        assert_eq!((manifest.id, manifest.kind), (sp.checkpoint, CheckpointKind::Savepoint));
        assert!(
            manifest.operators().contains(&"SumUntilEnd") && manifest.operators().contains(&"CombinePerKey")
        );

        // Resume from the savepoint with a fresh checkpoint directory and other workers.
        let source = Numbers::new(N);
        let resumed = job(source.clone());
        let fresh = CheckpointStore::local(dir.join("chk-2")).unwrap();
        Runner::new()
            .workers(after)
            .checkpointing(config(&fresh).restore_from_savepoint(savepoint.clone()))
            .run(&resumed.pipeline)
            .unwrap();
        assert_eq!(results(&resumed), expected, "{before} -> {after} workers");
        let reread = source.read.load(Ordering::Relaxed);
        assert!(reread < N - 7_000, "resumed at the savepoint's positions: re-read {reread} of {N}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_savepoint_without_stop_lets_the_job_finish_and_can_be_resumed_from_later() {
    let expected = expected();
    let dir = temp_dir("savepoint-no-stop");
    let checkpoints = CheckpointStore::local(dir.join("chk")).unwrap();
    let savepoint = CheckpointStore::local(dir.join("savepoint")).unwrap();
    let source = Numbers::new(N);
    let j = job(source.clone());
    let runner = Runner::new().workers(2).checkpointing(config(&checkpoints));
    let handle = runner.savepoint_handle();
    let target = savepoint.clone();
    let trigger = std::thread::spawn(move || {
        wait_for_reads(&source, 5_000);
        handle.trigger(target, false).wait()
    });
    let result = runner.run(&j.pipeline).unwrap();
    let sp = trigger.join().unwrap().expect("savepoint completes");
    assert!(!sp.stopped);
    assert_eq!(results(&j), expected, "the job ran to the end");
    assert_eq!(result.savepoints, vec![sp]);

    // Started from the savepoint (into the same checkpoint directory, which holds newer
    // checkpoints of the finished run), the job redoes the rest: same results.
    let resumed = job(Numbers::new(N));
    Runner::new()
        .workers(2)
        .checkpointing(config(&checkpoints).restore_from_savepoint(savepoint.clone()))
        .run(&resumed.pipeline)
        .unwrap();
    assert_eq!(results(&resumed), expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restarted_run_that_began_at_a_savepoint_resumes_from_its_own_checkpoints() {
    let expected = expected();
    let dir = temp_dir("savepoint-lineage");
    let checkpoints = CheckpointStore::local(dir.join("chk")).unwrap();
    let savepoint = CheckpointStore::local(dir.join("savepoint")).unwrap();
    run_and_stop_with_savepoint(2, &checkpoints, &savepoint, 5_000);

    // The run from the savepoint checkpoints often and fails part-way...
    let frequent = CheckpointConfig::new(checkpoints.clone())
        .interval(Duration::from_millis(20))
        .restore_from_savepoint(savepoint.clone());
    let failing = job(Numbers::failing(N, 20_000, 16_000, &checkpoints));
    let err = Runner::new().workers(2).checkpointing(frequent.clone()).run(&failing.pipeline).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    // ...and restarted with the same command line it resumes from its newest checkpoint,
    // not from the savepoint again.
    let source = Numbers::new(N);
    let resumed = job(source.clone());
    Runner::new().workers(2).checkpointing(frequent).run(&resumed.pipeline).unwrap();
    assert_eq!(results(&resumed), expected);
    let reread = source.read.load(Ordering::Relaxed);
    assert!(reread < N - 15_000, "resumed after the savepoint's run progressed: re-read {reread} of {N}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn savepoints_are_requested_through_the_checkpoint_store() {
    let dir = temp_dir("savepoint-request-file");
    let checkpoints = CheckpointStore::local(dir.join("chk")).unwrap();
    let target = dir.join("savepoint");
    let source = Numbers::new(N);
    let j = job(source.clone());
    let runner = Runner::new().workers(2).checkpointing(config(&checkpoints));
    let store = checkpoints.clone();
    let request =
        SavepointRequest { id: "upgrade-1".into(), target: target.display().to_string(), stop: true };
    let requester = std::thread::spawn(move || {
        wait_for_reads(&source, 5_000);
        store.submit_savepoint_request(&request).unwrap();
        loop {
            if let Some(outcome) = store.savepoint_outcome("upgrade-1").unwrap() {
                return outcome;
            }
            std::thread::sleep(StdDuration::from_millis(20));
        }
    });
    let result = runner.run(&j.pipeline).unwrap();
    let outcome = requester.join().unwrap();
    match outcome {
        SavepointOutcome::Completed { checkpoint, stopped, bytes, .. } => {
            assert!(stopped && bytes > 0);
            assert_eq!(result.savepoints[0].checkpoint, checkpoint);
        }
        other => panic!("savepoint failed: {other:?}"),
    }
    assert!(checkpoints.savepoint_requests().unwrap().is_empty(), "the request was answered and removed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_savepoint_target_must_be_empty_and_savepoints_need_checkpointing() {
    let dir = temp_dir("savepoint-errors");
    let checkpoints = CheckpointStore::local(dir.join("chk")).unwrap();
    let savepoint = CheckpointStore::local(dir.join("savepoint")).unwrap();
    run_and_stop_with_savepoint(1, &checkpoints, &savepoint, 2_000);

    // The same target again: refused, the job goes on to the end.
    let source = Numbers::new(N);
    let j = job(source.clone());
    let runner =
        Runner::new().workers(1).checkpointing(config(&CheckpointStore::local(dir.join("chk-2")).unwrap()));
    let handle = runner.savepoint_handle();
    let target = savepoint.clone();
    let trigger = std::thread::spawn(move || {
        wait_for_reads(&source, 2_000);
        handle.trigger(target, true).wait()
    });
    runner.run(&j.pipeline).unwrap();
    let err = trigger.join().unwrap().unwrap_err();
    assert!(err.contains("already holds"), "{err}");

    // Without checkpointing there is nothing to take a savepoint of.
    let runner = Runner::new().workers(1);
    let pending =
        runner.savepoint_handle().trigger(CheckpointStore::local(dir.join("other")).unwrap(), false);
    runner.run(&job(Numbers::new(100)).pipeline).unwrap();
    let err = pending.wait().unwrap_err();
    assert!(err.contains("need checkpointing"), "{err}");

    // Starting from a directory without a savepoint is an error naming it.
    let empty = CheckpointStore::local(dir.join("empty")).unwrap();
    let err = Runner::new()
        .workers(1)
        .checkpointing(
            config(&CheckpointStore::local(dir.join("chk-3")).unwrap()).restore_from_savepoint(empty),
        )
        .run(&job(Numbers::new(100)).pipeline)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no complete savepoint"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
