//! A checkpoint directory on a disk that fills up (a small tmpfs mounted for the test;
//! needs root, see `crates/log/tests/tmpfs/mod.rs`): the job fails with an error that says
//! the disk is full, and once space returns the restarted job resumes from its newest
//! complete checkpoint with every record counted exactly once.

mod common;
#[path = "../../log/tests/tmpfs/mod.rs"]
mod tmpfs;

use common::{covered, Numbers};
use millstream_checkpoint::CheckpointStore;
use millstream_model::combiners::Sum;
use millstream_model::{Duration, Timestamp};
use millstream_runtime::{
    CheckpointConfig, Pipeline, ReadStatus, Runner, Source, SourceError, SourceReader, WatermarkStrategy,
};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tmpfs::Tmpfs;

const N: u64 = 20_000;
/// How long the source waits for a checkpoint covering all of its input before it gives up.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// `Numbers`, which after its last number waits until a complete checkpoint covers all of
/// them: the job cannot end before its state (every key) has been checkpointed, so on a
/// disk too small for that state it must hit the full disk.
#[derive(Clone)]
struct UntilCheckpointed {
    numbers: Numbers,
    store: CheckpointStore,
}

struct Reader {
    inner: Box<dyn SourceReader<u64>>,
    store: CheckpointStore,
    finished_at: Option<Instant>,
}

impl Source<u64> for UntilCheckpointed {
    fn partitions(&self, workers: usize) -> Result<usize, SourceError> {
        self.numbers.partitions(workers)
    }
    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        let inner = self.numbers.open(partition, partitions)?;
        Ok(Box::new(Reader { inner, store: self.store.clone(), finished_at: None }))
    }
    fn reopen(
        &self,
        partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        let inner = self.numbers.reopen(partition, partitions, position)?;
        Ok(Box::new(Reader { inner, store: self.store.clone(), finished_at: None }))
    }
    fn watermarks(&self) -> WatermarkStrategy {
        WatermarkStrategy::from_source()
    }
}

impl SourceReader<u64> for Reader {
    fn read(&mut self, out: &mut Vec<(u64, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        if self.finished_at.is_none() {
            match self.inner.read(out, max)? {
                ReadStatus::Finished => self.finished_at = Some(Instant::now()),
                status => return Ok(status),
            }
        }
        let all_covered = |id| {
            let m = self.store.manifest(id).map_err(|e| e.to_string())?;
            covered(&self.store, &m, N)
        };
        // Listing reads only manifests, and warns about nothing (unlike latest_complete).
        let complete =
            self.store.list_complete().map_err(|e| SourceError::new("checkpoints", e.to_string()))?;
        if complete.last().is_some_and(|&id| all_covered(id).is_ok_and(|c| c == N)) {
            return Ok(ReadStatus::Finished);
        }
        if self.finished_at.is_some_and(|t| t.elapsed() > DEADLINE) {
            return Err(SourceError::new("end", "no checkpoint covered the whole input before the deadline"));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        Ok(ReadStatus::Waiting)
    }
    fn watermark(&self) -> Option<Timestamp> {
        self.inner.watermark()
    }
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        self.inner.checkpoint_position()
    }
}

/// Counts every number once per key: a lost record is a missing key, a duplicated one a
/// count of 2.
fn counts(source: UntilCheckpointed, config: CheckpointConfig) -> Result<BTreeMap<u64, u64>, String> {
    let p = Pipeline::new();
    let out = p.read("Numbers", source).map(|x| (x, 1u64)).combine_per_key(Sum).collect();
    Runner::new().workers(2).checkpointing(config).run(&p).map_err(|e| e.to_string())?;
    Ok(out.values().into_iter().collect())
}

#[test]
fn a_full_disk_fails_the_job_clearly_and_it_resumes_exactly_once_space_returns() {
    // 20,000 keys of state take over 300 KB per checkpoint: far more than 128 KiB.
    let Some(fs) = Tmpfs::mount("checkpoint-full", 128 * 1024) else { return };
    let store = CheckpointStore::local(fs.path().join("chk")).expect("store");
    let config = CheckpointConfig::new(store.clone()).interval(Duration::from_millis(20));
    let source = UntilCheckpointed { numbers: Numbers::new(N), store: store.clone() };
    let err = counts(source, config.clone()).expect_err("the state cannot fit");
    assert!(err.contains("No space left on device"), "the error says the disk is full: {err}");
    assert!(err.contains(".bin") || err.contains("_MANIFEST"), "the error names the file: {err}");

    fs.resize(64 * 1024 * 1024);
    let restored = store.latest_complete().expect("latest");
    let already = match &restored {
        Some(m) => covered(&store, m, N).expect("covered"),
        None => 0,
    };
    let numbers = Numbers::new(N);
    let source = UntilCheckpointed { numbers: numbers.clone(), store: store.clone() };
    let got = counts(source, config).expect("the restarted job completes once space returned");
    assert_eq!(got.len() as u64, N, "no key lost");
    assert!(got.values().all(|&c| c == 1), "no number counted twice");
    assert_eq!(
        numbers.read.load(Ordering::Relaxed),
        N - already,
        "resumed from checkpoint {:?}",
        restored.map(|m| m.id)
    );
}
