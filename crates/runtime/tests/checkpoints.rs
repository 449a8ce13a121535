//! Checkpoints and recovery: a job that fails part-way resumes from its newest complete
//! checkpoint and ends with exactly the results of a run without failure.

use millstream_checkpoint::CheckpointStore;
use millstream_model::combiners::Sum;
use millstream_model::{Duration, Timestamp};
use millstream_runtime::stateful::{StatefulContext, StatefulDoFn, TimeDomain, TimerFiring, ValueState};
use millstream_runtime::{
    CheckpointConfig, PCollection, PTransform, Pipeline, ReadStatus, Runner, Source, SourceError,
    SourceReader, UserError, WatermarkStrategy,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The numbers `0..n`, split round-robin over partitions, read a few at a time with a
/// short pause so that checkpoints happen in between; optionally failing at `fail_at`.
#[derive(Clone)]
struct Numbers {
    n: u64,
    fail_at: Option<u64>,
    /// How many numbers this source read (across partitions).
    read: Arc<AtomicU64>,
}

impl Numbers {
    fn new(n: u64, fail_at: Option<u64>) -> Self {
        Numbers { n, fail_at, read: Arc::default() }
    }
}

struct NumbersReader {
    read: Arc<AtomicU64>,
    next: u64,
    step: u64,
    n: u64,
    fail_at: Option<u64>,
}

impl Source<u64> for Numbers {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        // Fixed, so that a job can resume on another number of workers.
        Ok(4)
    }
    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        Ok(Box::new(NumbersReader {
            read: self.read.clone(),
            next: partition as u64,
            step: partitions as u64,
            n: self.n,
            fail_at: self.fail_at,
        }))
    }
    fn reopen(
        &self,
        _partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        let next =
            u64::from_le_bytes(position.try_into().map_err(|_| SourceError::new("position", "bad length"))?);
        Ok(Box::new(NumbersReader {
            read: self.read.clone(),
            next,
            step: partitions as u64,
            n: self.n,
            fail_at: self.fail_at,
        }))
    }
    fn watermarks(&self) -> WatermarkStrategy {
        WatermarkStrategy::from_source()
    }
}

impl SourceReader<u64> for NumbersReader {
    fn read(&mut self, out: &mut Vec<(u64, Timestamp)>, _max: usize) -> Result<ReadStatus, SourceError> {
        std::thread::sleep(std::time::Duration::from_micros(300));
        for _ in 0..20 {
            if self.next >= self.n {
                return Ok(ReadStatus::Finished);
            }
            if Some(self.next) == self.fail_at {
                return Err(SourceError::new(format!("element {}", self.next), "injected failure"));
            }
            out.push((self.next, Timestamp::MIN));
            self.read.fetch_add(1, Ordering::Relaxed);
            self.next += self.step;
        }
        Ok(ReadStatus::Data)
    }
    fn watermark(&self) -> Option<Timestamp> {
        Some(Timestamp::MIN)
    }
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        Some(self.next.to_le_bytes().to_vec())
    }
}

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

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("millstream-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
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

/// Per key: the sum and count of its values in state, and one event-time timer set by the
/// key's first element (at the end of the global window) that outputs them. After a
/// restore the sums continue from the checkpoint and the timers set before it still fire.
#[derive(Clone)]
struct SumUntilEnd;

impl StatefulDoFn<u64, u64> for SumUntilEnd {
    type Output = (u64, u64, u64);
    type State = ValueState<(u64, u64)>;
    fn process(
        &mut self,
        _key: &u64,
        value: u64,
        state: &mut ValueState<(u64, u64)>,
        ctx: &mut StatefulContext<'_, (u64, u64, u64)>,
    ) -> Result<(), UserError> {
        let (sum, count) = state.read().copied().unwrap_or((0, 0));
        if count == 0 {
            let end = ctx.window().max_timestamp();
            ctx.set_timer("end", TimeDomain::EventTime, end)?;
        }
        state.write((sum + value, count + 1));
        Ok(())
    }
    fn on_timer(
        &mut self,
        key: &u64,
        _timer: &TimerFiring,
        state: &mut ValueState<(u64, u64)>,
        ctx: &mut StatefulContext<'_, (u64, u64, u64)>,
    ) -> Result<(), UserError> {
        let (sum, count) = state.read().copied().unwrap_or((0, 0));
        ctx.output((*key, sum, count));
        Ok(())
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
