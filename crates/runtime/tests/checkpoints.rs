//! Checkpoints and recovery: a job that fails part-way resumes from its newest complete
//! checkpoint and ends with exactly the results of a run without failure.

use millstream_checkpoint::CheckpointStore;
use millstream_model::combiners::Sum;
use millstream_model::{Duration, Timestamp};
use millstream_runtime::{
    CheckpointConfig, Pipeline, ReadStatus, Runner, Source, SourceError, SourceReader, WatermarkStrategy,
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
    fn partitions(&self, workers: usize) -> Result<usize, SourceError> {
        Ok(workers)
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
