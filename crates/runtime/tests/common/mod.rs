//! Shared by the checkpoint and savepoint tests: a slow replayable source of numbers
//! that can fail on purpose, and a stateful DoFn with a timer.

#![allow(dead_code)]

use millstream_checkpoint::{CheckpointStore, Manifest};
use millstream_model::Timestamp;
use millstream_runtime::checkpoint::{source_positions, StoredPosition};
use millstream_runtime::stateful::{StatefulContext, StatefulDoFn, TimeDomain, TimerFiring, ValueState};
use millstream_runtime::{ReadStatus, Source, SourceError, SourceReader, UserError, WatermarkStrategy};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How many partitions `Numbers` has.
const PARTITIONS: u64 = 4;

/// The numbers `0..n`, split round-robin over partitions, read a few at a time with a
/// short pause so that checkpoints happen in between; optionally failing on purpose.
#[derive(Clone)]
pub struct Numbers {
    pub n: u64,
    pub failure: Option<InjectedFailure>,
    /// How many numbers this source read (across partitions).
    pub read: Arc<AtomicU64>,
}

/// A failure of `Numbers` that does not depend on timing: each partition stops before
/// its first number at or above `at` until the newest complete checkpoint in `store`
/// covers at least `covered` numbers, then fails. (A fixed failure point alone could come
/// before any checkpoint on a loaded machine, and the restart would rightly start over.)
#[derive(Clone)]
pub struct InjectedFailure {
    pub at: u64,
    pub covered: u64,
    pub store: CheckpointStore,
}

impl InjectedFailure {
    /// Whether the newest complete checkpoint covers `covered` numbers of `Numbers`.
    fn armed(&self, n: u64) -> Result<bool, SourceError> {
        let fail = |e: String| SourceError::new("injected failure", e);
        let Some(manifest) = self.store.latest_complete().map_err(|e| fail(e.to_string()))? else {
            return Ok(false);
        };
        Ok(covered(&self.store, &manifest, n).map_err(fail)? >= self.covered)
    }
}

/// How many numbers of `Numbers::new(n)` (read under the step name "Numbers") a
/// checkpoint covers: a job restored from it reads the others.
pub fn covered(store: &CheckpointStore, manifest: &Manifest, n: u64) -> Result<u64, String> {
    let positions = source_positions(store, manifest, "Numbers").map_err(|e| e.to_string())?;
    let mut covered = 0;
    for (partition, position) in positions {
        let partition = u64::from(partition);
        let next = match position {
            StoredPosition::Finished => n,
            StoredPosition::At(bytes) => decode_position(&bytes).map_err(|e| e.to_string())?,
        };
        // Partition p reads p, p + 4, ...: the numbers below `next` it has read.
        covered += next.saturating_sub(partition).div_ceil(PARTITIONS);
    }
    Ok(covered)
}

fn decode_position(bytes: &[u8]) -> Result<u64, SourceError> {
    Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| SourceError::new("position", "bad length"))?))
}

impl Numbers {
    /// Reads `0..n` and ends.
    pub fn new(n: u64) -> Self {
        Numbers { n, failure: None, read: Arc::default() }
    }

    /// Reads `0..n` and fails part-way, at `at` once a checkpoint in `store` covers at
    /// least `covered` numbers (`covered <= at`, or it would wait for ever).
    pub fn failing(n: u64, at: u64, covered: u64, store: &CheckpointStore) -> Self {
        assert!(covered <= at, "a failure at {at} can wait for no checkpoint covering {covered}");
        Numbers {
            n,
            failure: Some(InjectedFailure { at, covered, store: store.clone() }),
            read: Arc::default(),
        }
    }
}

struct NumbersReader {
    read: Arc<AtomicU64>,
    next: u64,
    step: u64,
    n: u64,
    failure: Option<InjectedFailure>,
}

impl Source<u64> for Numbers {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        // Fixed, so that a job can resume on another number of workers.
        Ok(PARTITIONS as usize)
    }
    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        Ok(Box::new(NumbersReader {
            read: self.read.clone(),
            next: partition as u64,
            step: partitions as u64,
            n: self.n,
            failure: self.failure.clone(),
        }))
    }
    fn reopen(
        &self,
        _partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        let next = decode_position(position)?;
        Ok(Box::new(NumbersReader {
            read: self.read.clone(),
            next,
            step: partitions as u64,
            n: self.n,
            failure: self.failure.clone(),
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
            if let Some(failure) = self.failure.as_ref().filter(|f| self.next >= f.at) {
                if failure.armed(self.n)? {
                    return Err(SourceError::new(format!("element {}", self.next), "injected failure"));
                }
                // Checkpoints go on while the partition waits here.
                return Ok(if out.is_empty() { ReadStatus::Waiting } else { ReadStatus::Data });
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

/// Per key: the sum and count of its values in state, and one event-time timer set by the
/// key's first element (at the end of the global window) that outputs them. After a
/// restore the sums continue from the checkpoint and the timers set before it still fire.
#[derive(Clone)]
pub struct SumUntilEnd;

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

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("millstream-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
