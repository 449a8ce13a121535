//! `millstream savepoint` against a running job: the job checkpoints into a directory, the
//! command asks it for a savepoint there and waits for the answer.

use millstream::checkpoint::CheckpointStore;
use millstream::prelude::*;
use millstream::runtime::{CheckpointConfig, ReadStatus, SourceError, SourceReader};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The numbers `0..n` from one partition, slowly, replayable from a position.
#[derive(Clone)]
struct SlowNumbers {
    n: u64,
    read: Arc<AtomicU64>,
}

struct SlowReader {
    next: u64,
    n: u64,
    read: Arc<AtomicU64>,
}

impl Source<u64> for SlowNumbers {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        Ok(1)
    }
    fn open(&self, _partition: usize, _partitions: usize) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        Ok(Box::new(SlowReader { next: 0, n: self.n, read: self.read.clone() }))
    }
    fn reopen(
        &self,
        _partition: usize,
        _partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        let next =
            u64::from_le_bytes(position.try_into().map_err(|_| SourceError::new("position", "bad length"))?);
        Ok(Box::new(SlowReader { next, n: self.n, read: self.read.clone() }))
    }
    fn watermarks(&self) -> WatermarkStrategy {
        WatermarkStrategy::from_source()
    }
}

impl SourceReader<u64> for SlowReader {
    fn read(&mut self, out: &mut Vec<(u64, Timestamp)>, _max: usize) -> Result<ReadStatus, SourceError> {
        std::thread::sleep(std::time::Duration::from_millis(1));
        if self.next >= self.n {
            return Ok(ReadStatus::Finished);
        }
        out.push((self.next, Timestamp::MIN));
        self.next += 1;
        self.read.fetch_add(1, Ordering::Relaxed);
        Ok(ReadStatus::Data)
    }
    fn watermark(&self) -> Option<Timestamp> {
        Some(Timestamp::MIN)
    }
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        Some(self.next.to_le_bytes().to_vec())
    }
}

fn millstream(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_millstream")).args(args).output().expect("the millstream binary runs")
}

#[test]
fn savepoint_command_stops_a_running_job_which_then_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (chk, target) = (dir.path().join("chk"), dir.path().join("savepoint"));
    let n = 1_000_000; // far more than is read before the stop
    let sums = |source: SlowNumbers, config: CheckpointConfig| {
        let p = Pipeline::new();
        let out = p.read("Numbers", source).map(|x| (x % 3, x)).combine_per_key(Sum).collect();
        let result = Runner::new().workers(2).checkpointing(config).run(&p).expect("the job runs");
        (out.values(), result)
    };
    let store = CheckpointStore::local(&chk).unwrap();
    let source = SlowNumbers { n, read: Arc::default() };
    let job = {
        let (source, config) = (source.clone(), CheckpointConfig::new(store.clone()));
        std::thread::spawn(move || sums(source, config))
    };
    while source.read.load(Ordering::Relaxed) < 200 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = millstream(&["savepoint", &chk.display().to_string(), &target.display().to_string(), "--stop"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("savepoint complete: ") && stdout.contains("the job stopped"), "{stdout}");
    let (values, result) = job.join().expect("the job thread");
    assert!(values.is_empty(), "stopped without flushing: {values:?}");
    let savepoint = &result.savepoints[0];
    assert!(stdout.contains(&format!("(checkpoint {}, ", savepoint.checkpoint)), "{stdout}");

    // Resumed from the savepoint, it reads on from where it stopped.
    let resumed = SlowNumbers { n: 2_000, read: Arc::default() };
    let config =
        CheckpointConfig::new(store).restore_from_savepoint(CheckpointStore::local(&target).unwrap());
    let (mut values, _) = sums(resumed.clone(), config);
    values.sort();
    let expected: Vec<(u64, u64)> = (0..3).map(|k| (k, (0..2_000u64).filter(|x| x % 3 == k).sum())).collect();
    assert_eq!(values, expected);
    let stopped_at = source.read.load(Ordering::Relaxed);
    assert!(
        resumed.read.load(Ordering::Relaxed) <= 2_000 - 200,
        "re-read from the start; stopped at {stopped_at}"
    );
}

#[test]
fn savepoint_command_without_a_running_job_gives_up_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let chk = dir.path().join("chk");
    std::fs::create_dir_all(&chk).unwrap();
    let target = dir.path().join("savepoint");
    let out = millstream(&[
        "savepoint",
        &chk.display().to_string(),
        &target.display().to_string(),
        "--timeout",
        "0.3",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no job answered") && stderr.contains("chk"), "{stderr}");
    // The request is withdrawn: a job started later does not act on it.
    let store = CheckpointStore::local(&chk).unwrap();
    assert!(store.savepoint_requests().unwrap().is_empty());

    let out = millstream(&["savepoint", &dir.path().join("missing").display().to_string(), "x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a directory"));
}
