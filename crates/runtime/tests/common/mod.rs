//! Shared by the checkpoint and savepoint tests: a slow replayable source of numbers
//! that can fail on purpose, and a stateful DoFn with a timer.

#![allow(dead_code)]

use millstream_model::Timestamp;
use millstream_runtime::stateful::{StatefulContext, StatefulDoFn, TimeDomain, TimerFiring, ValueState};
use millstream_runtime::{ReadStatus, Source, SourceError, SourceReader, UserError, WatermarkStrategy};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The numbers `0..n`, split round-robin over partitions, read a few at a time with a
/// short pause so that checkpoints happen in between; optionally failing at `fail_at`.
#[derive(Clone)]
pub struct Numbers {
    pub n: u64,
    pub fail_at: Option<u64>,
    /// How many numbers this source read (across partitions).
    pub read: Arc<AtomicU64>,
}

impl Numbers {
    pub fn new(n: u64, fail_at: Option<u64>) -> Self {
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
