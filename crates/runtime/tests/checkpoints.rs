//! Checkpoints and recovery: a job that fails part-way resumes from its newest complete
//! checkpoint and ends with exactly the results of a run without failure.

mod common;

use common::{covered, temp_dir, Numbers, SumUntilEnd};
use millstream_checkpoint::CheckpointStore;
use millstream_model::combiners::Sum;
use millstream_model::{Duration, Timestamp};
use millstream_runtime::{
    CheckpointConfig, PCollection, PTransform, Pipeline, ReadStatus, Runner, Source, SourceError,
    SourceReader, WatermarkStrategy,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
        let expected = sums(Numbers::new(n), workers, None).unwrap();
        let dir = temp_dir(&format!("resume-{workers}"));
        let store = CheckpointStore::local(&dir).unwrap();
        let config = CheckpointConfig::new(store.clone()).interval(Duration::from_millis(20));

        let err =
            sums(Numbers::failing(n, 12_000, 6_000, &store), workers, Some(config.clone())).unwrap_err();
        assert!(err.contains("injected failure"), "{err}");
        let checkpoint = store.latest_complete().unwrap().expect("a checkpoint before the failure");
        assert!(checkpoint.id >= 1);

        let covered = covered(&store, &checkpoint, n).unwrap();
        assert!(covered >= 6_000, "the failure waited for a checkpoint covering 6000 numbers: {covered}");

        let source = Numbers::new(n);
        let resumed = sums(source.clone(), workers, Some(config)).unwrap();
        assert_eq!(resumed, expected, "{workers} workers, resumed from checkpoint {}", checkpoint.id);
        // It really resumed: it read exactly what the checkpoint had not covered.
        let reread = source.read.load(Ordering::Relaxed);
        assert_eq!(reread, n - covered, "re-read {reread} of {n} numbers after checkpoint {}", checkpoint.id);
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
        let expected = stateful_sums(Numbers::new(n), workers, None).unwrap();
        assert_eq!(expected.len(), 7);
        let dir = temp_dir(&format!("stateful-{workers}-{resumed_workers}"));
        let store = CheckpointStore::local(&dir).unwrap();
        let config = CheckpointConfig::new(store.clone()).interval(Duration::from_millis(20));

        let err = stateful_sums(Numbers::failing(n, 12_000, 6_000, &store), workers, Some(config.clone()))
            .unwrap_err();
        assert!(err.contains("injected failure"), "{err}");
        let checkpoint = store.latest_complete().unwrap().expect("a checkpoint before the failure");
        assert!(
            checkpoint.operators().contains(&"SumUntilEnd"),
            "the stateful step is in the checkpoint: {:?}",
            checkpoint.operators()
        );
        // Read before the resumed run: its retention deletes this checkpoint.
        let covered = covered(&store, &checkpoint, n).unwrap();

        let source = Numbers::new(n);
        let resumed = stateful_sums(source.clone(), resumed_workers, Some(config)).unwrap();
        assert_eq!(
            resumed, expected,
            "{workers} then {resumed_workers} workers, from checkpoint {}",
            checkpoint.id
        );
        let reread = source.read.load(Ordering::Relaxed);
        assert_eq!(reread, n - covered, "re-read {reread} of {n} numbers after checkpoint {}", checkpoint.id);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn state_follows_operator_ids_and_unknown_state_is_an_error_unless_allowed() {
    let n = 20_000;
    let expected = sums(Numbers::new(n), 2, None).unwrap();
    let dir = temp_dir("operator-ids");
    let store = CheckpointStore::local(&dir).unwrap();
    let config = CheckpointConfig::new(store.clone()).interval(Duration::from_millis(20));
    // The first version of the job: the grouping's id is its step name, "CombinePerKey".
    let err = sums(Numbers::failing(n, 12_000, 6_000, &store), 2, Some(config.clone())).unwrap_err();
    assert!(err.contains("injected failure"), "{err}");

    // The second version gives the grouping a new id: the checkpoint's state of
    // "CombinePerKey" belongs to no operator of the job, which is an error.
    let p = Pipeline::new();
    let _ = p
        .read("Numbers", Numbers::new(n))
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
    let out = p.read("Numbers", Numbers::new(n)).map(|x| (x % 10, x)).apply("Totals", &Totals).collect();
    assert!(p.steps().iter().any(|(name, _)| name == "Totals/CombinePerKey"), "{:?}", p.steps());
    Runner::new().workers(2).checkpointing(config.clone()).run(&p).unwrap();
    let resumed: BTreeMap<u64, u64> = out.values().into_iter().collect();
    assert_eq!(resumed, expected);
    let _ = std::fs::remove_dir_all(&dir);

    // Allowed to drop unknown state, the job runs (from the sources' positions, without
    // the grouping's state, so the sums miss what the checkpoint had counted).
    let dir = temp_dir("operator-ids-drop");
    let store = CheckpointStore::local(&dir).unwrap();
    let config = CheckpointConfig::new(store.clone()).interval(Duration::from_millis(20));
    let _ = sums(Numbers::failing(n, 12_000, 6_000, &store), 2, Some(config.clone())).unwrap_err();
    let p = Pipeline::new();
    let out = p
        .read("Numbers", Numbers::new(n))
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

#[test]
fn a_source_counts_the_records_it_reads() {
    for workers in [1, 3] {
        let p = Pipeline::new();
        let _ = p.read("Numbers", Numbers::new(5_000)).collect();
        let result = Runner::new().workers(workers).run(&p).unwrap();
        assert_eq!(result.counter("Numbers/records"), 5_000, "{workers} workers");
    }
}

/// Two partitions, read by two workers. Partition 0 sends 0..100 in epoch 1, waits for
/// that epoch to end, sends 100..200 in epoch 2 and finishes. Partition 1 sends nothing:
/// it keeps its worker's source at epoch 1 until partition 0 has finished and the first
/// worker has had time to stash the epoch-2 records (they wait, since epoch 1 is not
/// complete), then finishes, so that the stateful step's input frontier goes straight
/// from epoch 1 to complete while those records are still waiting.
#[derive(Clone)]
struct LateFinisher {
    interval_ms: u64,
    first_done: Arc<AtomicBool>,
}

struct LateFinisherReader {
    partition: usize,
    step: u32,
    source: LateFinisher,
}

impl Source<u64> for LateFinisher {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        Ok(2)
    }
    fn open(&self, partition: usize, _partitions: usize) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        Ok(Box::new(LateFinisherReader { partition, step: 0, source: self.clone() }))
    }
    fn watermarks(&self) -> WatermarkStrategy {
        WatermarkStrategy::from_source()
    }
}

impl SourceReader<u64> for LateFinisherReader {
    fn read(&mut self, out: &mut Vec<(u64, Timestamp)>, _max: usize) -> Result<ReadStatus, SourceError> {
        self.step += 1;
        if self.partition == 1 {
            // Hold this worker's source (and so the input frontier) at epoch 1.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !self.source.first_done.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
            return Ok(ReadStatus::Finished);
        }
        match self.step {
            1 => out.extend((0..100).map(|x| (x, Timestamp::MIN))),
            // The epoch ends after this read (its interval is over).
            2 => std::thread::sleep(std::time::Duration::from_millis(3 * self.source.interval_ms)),
            3 => out.extend((100..200).map(|x| (x, Timestamp::MIN))),
            _ => {
                self.source.first_done.store(true, Ordering::SeqCst);
                return Ok(ReadStatus::Finished);
            }
        }
        Ok(ReadStatus::Data)
    }
    fn watermark(&self) -> Option<Timestamp> {
        Some(Timestamp::MIN)
    }
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        Some(self.step.to_le_bytes().to_vec())
    }
}

/// Regression: records of an epoch that waited in the stateful step's epoch stash were
/// processed at the input watermark computed after they had left the stash, i.e. without
/// their own hold. When the input became complete while they waited, that watermark was
/// the end of time, their (global) window counted as expired, and they were dropped as
/// late: after a restore under load the sums missed the last records.
#[test]
fn records_waiting_for_their_epoch_when_the_input_completes_are_not_dropped_as_late() {
    let interval_ms = 50;
    let dir = temp_dir("stash-at-end");
    let store = CheckpointStore::local(&dir).unwrap();
    let source = LateFinisher { interval_ms, first_done: Arc::default() };
    let p = Pipeline::new();
    let out =
        p.read("Numbers", source).map(|x| (x % 7, x)).stateful_par_do("SumUntilEnd", SumUntilEnd).collect();
    let config = CheckpointConfig::new(store).interval(Duration::from_millis(interval_ms as i64));
    let result = Runner::new().workers(2).checkpointing(config).run(&p).unwrap();
    let mut got = out.values();
    got.sort();
    let expected: Vec<(u64, u64, u64)> = (0..7u64)
        .map(|k| {
            let values: Vec<u64> = (0..200).filter(|x| x % 7 == k).collect();
            (k, values.iter().sum(), values.len() as u64)
        })
        .collect();
    assert_eq!(result.counter("SumUntilEnd/dropped_late"), 0);
    assert_eq!(got, expected);
    let _ = std::fs::remove_dir_all(&dir);
}
