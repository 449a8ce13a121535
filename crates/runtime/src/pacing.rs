//! Pacing: a rate limit for any source ([`SourceExt::max_records_per_second`]).
//!
//! A paced reader never sleeps. When a partition has used up its share of the rate it
//! reports [`ReadStatus::Waiting`] without reading, and the source operator reschedules
//! itself a few milliseconds later (as it does for a source with no data yet), so the
//! other operators of the worker thread keep running while the source waits.

use crate::dead_letter::DeadLetter;
use crate::source::{ReadStatus, Source, SourceError, SourceReader, WatermarkStrategy};
use millstream_model::Timestamp;
use std::time::Instant;

/// Options every [`Source`] has (implemented for all of them).
pub trait SourceExt<T>: Source<T> + Sized {
    /// Reads at most `rate` records per second of wall-clock time, over all partitions
    /// together: each of the source's `n` partitions reads at most `rate / n` per second
    /// (over any `t` seconds, at most `t · rate / n` plus a burst of a tenth of a second's
    /// share, at least one record). Watermarks, checkpoints and restores are the source's
    /// own. Use it to replay stored data at a realistic pace, or to keep a demo
    /// watchable, without blocking the worker thread (Flink's `RateLimiterStrategy`,
    /// Beam's `GenerateSequence.withRate`, for any source).
    ///
    /// `rate` must be a positive number; anything else fails the job when it starts,
    /// naming the step.
    ///
    /// ```
    /// use millstream_runtime::{Pipeline, Runner, SourceExt};
    /// # use millstream_runtime::{ReadStatus, Source, SourceError, SourceReader};
    /// # use millstream_model::Timestamp;
    /// # /// The numbers `0..n` in one partition.
    /// # struct Numbers(u64);
    /// # struct NumbersReader(u64, u64);
    /// # impl Source<u64> for Numbers {
    /// #     fn partitions(&self, _workers: usize) -> Result<usize, SourceError> { Ok(1) }
    /// #     fn open(&self, _p: usize, _n: usize) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
    /// #         Ok(Box::new(NumbersReader(0, self.0)))
    /// #     }
    /// # }
    /// # impl SourceReader<u64> for NumbersReader {
    /// #     fn read(&mut self, out: &mut Vec<(u64, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
    /// #         while self.0 < self.1 && max > out.len() { out.push((self.0, Timestamp(self.0 as i64))); self.0 += 1; }
    /// #         Ok(if self.0 == self.1 { ReadStatus::Finished } else { ReadStatus::Data })
    /// #     }
    /// # }
    /// let p = Pipeline::new();
    /// // Numbers is any Source<u64>: 20 records at 200 per second take at least 95 ms.
    /// let numbers = p.read("Numbers", Numbers(20).max_records_per_second(200.0)).collect();
    /// Runner::new().run(&p).unwrap();
    /// assert_eq!(numbers.values().len(), 20);
    /// ```
    fn max_records_per_second(self, rate: f64) -> RateLimitedSource<Self> {
        RateLimitedSource { inner: self, rate }
    }
}

impl<T, S: Source<T>> SourceExt<T> for S {}

/// A source read at most at a given rate: see [`SourceExt::max_records_per_second`].
#[derive(Clone, Debug)]
pub struct RateLimitedSource<S> {
    inner: S,
    rate: f64,
}

impl<S> RateLimitedSource<S> {
    fn validate(&self) -> Result<(), SourceError> {
        if self.rate.is_finite() && self.rate > 0.0 {
            Ok(())
        } else {
            Err(SourceError::new(
                "max_records_per_second",
                format!("the rate must be a positive number of records per second, got {}", self.rate),
            ))
        }
    }

    fn paced<T: 'static>(
        &self,
        inner: Box<dyn SourceReader<T>>,
        partitions: usize,
    ) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        self.validate()?;
        Ok(Box::new(RateLimitedReader {
            inner,
            bucket: TokenBucket::new(self.rate / partitions.max(1) as f64),
        }))
    }
}

impl<T: 'static, S: Source<T>> Source<T> for RateLimitedSource<S> {
    fn partitions(&self, workers: usize) -> Result<usize, SourceError> {
        self.validate()?;
        self.inner.partitions(workers)
    }

    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        self.paced(self.inner.open(partition, partitions)?, partitions)
    }

    fn reopen(
        &self,
        partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        self.paced(self.inner.reopen(partition, partitions, position)?, partitions)
    }

    fn watermarks(&self) -> WatermarkStrategy {
        self.inner.watermarks()
    }
}

/// Records a partition may read now: refilled at the partition's rate, up to a tenth of a
/// second's worth (at least one), so that a reader that was not scheduled for a while
/// catches up only a little.
#[derive(Debug)]
struct TokenBucket {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    /// When the tokens were last refilled; `None` before the first read.
    refilled: Option<Instant>,
}

impl TokenBucket {
    fn new(per_second: f64) -> Self {
        TokenBucket { per_second, capacity: (per_second / 10.0).max(1.0), tokens: 1.0, refilled: None }
    }

    /// The whole records available at `now`.
    fn available(&mut self, now: Instant) -> usize {
        if let Some(last) = self.refilled {
            let earned = now.saturating_duration_since(last).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + earned).min(self.capacity);
        }
        self.refilled = Some(now);
        // (The capacity is at most a tenth of an f64-representable rate: no overflow.)
        self.tokens.floor() as usize
    }

    fn take(&mut self, records: usize) {
        self.tokens -= records as f64;
    }
}

struct RateLimitedReader<T> {
    inner: Box<dyn SourceReader<T>>,
    bucket: TokenBucket,
}

impl<T> SourceReader<T> for RateLimitedReader<T> {
    fn read(&mut self, out: &mut Vec<(T, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        let available = self.bucket.available(Instant::now());
        if available == 0 {
            return Ok(ReadStatus::Waiting);
        }
        let before = out.len();
        let status = self.inner.read(out, max.min(available))?;
        self.bucket.take(out.len().saturating_sub(before));
        Ok(status)
    }

    fn watermark(&self) -> Option<Timestamp> {
        self.inner.watermark()
    }

    fn position(&self) -> String {
        self.inner.position()
    }

    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        self.inner.checkpoint_position()
    }

    fn take_dead_letters(&mut self, out: &mut Vec<DeadLetter>) {
        self.inner.take_dead_letters(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pipeline, Runner};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration as StdDuration;

    /// The numbers `0..n` split round-robin over the partitions; positions are the next
    /// number; counts the read calls that reach it.
    struct Numbers {
        n: u64,
        reads: Arc<AtomicUsize>,
    }

    struct NumbersReader {
        next: u64,
        stride: u64,
        n: u64,
        reads: Arc<AtomicUsize>,
    }

    impl Numbers {
        fn new(n: u64) -> Self {
            Numbers { n, reads: Arc::new(AtomicUsize::new(0)) }
        }
    }

    impl Source<u64> for Numbers {
        fn partitions(&self, workers: usize) -> Result<usize, SourceError> {
            Ok(workers)
        }
        fn open(
            &self,
            partition: usize,
            partitions: usize,
        ) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
            self.reopen(partition, partitions, &(partition as u64).to_le_bytes())
        }
        fn reopen(
            &self,
            _partition: usize,
            partitions: usize,
            position: &[u8],
        ) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
            let next = u64::from_le_bytes(
                position.try_into().map_err(|_| SourceError::new("numbers", "bad position"))?,
            );
            Ok(Box::new(NumbersReader {
                next,
                stride: partitions as u64,
                n: self.n,
                reads: self.reads.clone(),
            }))
        }
    }

    impl SourceReader<u64> for NumbersReader {
        fn read(&mut self, out: &mut Vec<(u64, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            for _ in 0..max {
                if self.next >= self.n {
                    break;
                }
                out.push((self.next, Timestamp(self.next as i64)));
                self.next += self.stride;
            }
            Ok(if self.next >= self.n { ReadStatus::Finished } else { ReadStatus::Data })
        }
        fn watermark(&self) -> Option<Timestamp> {
            Some(Timestamp(self.next as i64 - 1))
        }
        fn position(&self) -> String {
            format!("number {}", self.next)
        }
        fn checkpoint_position(&self) -> Option<Vec<u8>> {
            Some(self.next.to_le_bytes().to_vec())
        }
    }

    #[test]
    fn an_exhausted_share_waits_without_reading() {
        let source = Numbers::new(100);
        let reads = source.reads.clone();
        let mut reader = source.max_records_per_second(1.0).open(0, 1).unwrap();
        let mut out = Vec::new();
        // One record right away, then nothing for about a second: the reader says
        // Waiting (the operator comes back later) without touching the source.
        assert_eq!(reader.read(&mut out, 50).unwrap(), ReadStatus::Data);
        assert_eq!(out.len(), 1);
        assert_eq!(reader.read(&mut out, 50).unwrap(), ReadStatus::Waiting);
        assert_eq!(out.len(), 1);
        assert_eq!(reads.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn positions_watermarks_and_reopening_are_the_sources() {
        let paced = Numbers::new(100).max_records_per_second(1000.0);
        let mut reader = paced.open(1, 3).unwrap();
        let mut out = Vec::new();
        reader.read(&mut out, 10).unwrap();
        assert_eq!(out, vec![(1, Timestamp(1))]);
        assert_eq!(reader.checkpoint_position(), Some(4u64.to_le_bytes().to_vec()));
        assert_eq!(reader.watermark(), Some(Timestamp(3)));
        assert_eq!(reader.position(), "number 4");
        let mut reopened = paced.reopen(1, 3, &4u64.to_le_bytes()).unwrap();
        out.clear();
        reopened.read(&mut out, 10).unwrap();
        assert_eq!(out, vec![(4, Timestamp(4))]);
    }

    #[test]
    fn a_bad_rate_is_an_error_naming_the_option() {
        for rate in [0.0, -5.0, f64::NAN, f64::INFINITY] {
            let e = Numbers::new(1).max_records_per_second(rate).partitions(1).unwrap_err();
            assert!(e.to_string().contains("max_records_per_second"), "{e}");
            assert!(Numbers::new(1).max_records_per_second(rate).open(0, 1).is_err());
        }
        let p = Pipeline::new();
        let _ = p.read("Numbers", Numbers::new(1).max_records_per_second(0.0)).collect();
        let err = Runner::new().run(&p).unwrap_err().to_string();
        assert!(err.contains("Numbers") && err.contains("positive"), "{err}");
    }

    #[test]
    fn a_paced_source_delivers_everything_and_no_faster_than_its_rate() {
        let p = Pipeline::new();
        // 40 records at 200 per second over 2 partitions: 20 per partition at 100 per
        // second, one right away and the other 19 at least 190 ms later (the bucket holds
        // at most 10, filled at the rate). A fast source in the same job keeps going.
        let paced = p.read("Paced", Numbers::new(40).max_records_per_second(200.0)).collect();
        let fast = p.read("Fast", Numbers::new(20_000)).collect();
        let started = Instant::now();
        Runner::new().workers(2).run(&p).unwrap();
        let elapsed = started.elapsed();
        let mut got = paced.values();
        got.sort_unstable();
        assert_eq!(got, (0..40).collect::<Vec<_>>());
        assert_eq!(fast.values().len(), 20_000);
        assert!(elapsed >= StdDuration::from_millis(190), "{elapsed:?}");
    }
}
