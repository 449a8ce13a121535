//! [`GeneratorSource`]: a seeded, rate-limited synthetic source, for demos, benchmarks
//! and tests.
//!
//! Element `i` is made by a user function from a random number generator seeded from
//! `(seed, i)` alone, so the same seed gives the same elements (values and timestamps)
//! whatever the number of workers or partitions. Partition `p` of `n` produces the
//! indices `p, p + n, p + 2n, ...`.
//!
//! ```
//! use millstream_connectors::generator::GeneratorSource;
//! use millstream_connectors::rand::Rng;
//! use millstream_model::Timestamp;
//! use millstream_runtime::{Pipeline, Runner};
//!
//! let p = Pipeline::new();
//! let dice = p.read(
//!     "Dice",
//!     GeneratorSource::new(7, |rng, i| (rng.gen_range(1..=6u32), Timestamp::from_millis(i as i64)))
//!         .max_elements(100),
//! );
//! let out = dice.collect();
//! Runner::new().workers(2).run(&p).unwrap();
//! assert_eq!(out.values().len(), 100);
//! ```

use crate::error::ConnectorError;
use millstream_model::Timestamp;
use millstream_runtime::{ReadStatus, Source, SourceError, SourceReader, WatermarkStrategy};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

/// The function that makes element `index` from its own seeded generator.
pub type MakeFn<T> = dyn Fn(&mut ChaCha8Rng, u64) -> (T, Timestamp) + Send + Sync;

/// A synthetic source: element `i` is `make(rng(seed, i), i)`.
///
/// Unbounded unless [`max_elements`](Self::max_elements) or
/// [`max_duration`](Self::max_duration) is set (or the job is cancelled).
pub struct GeneratorSource<T> {
    key: [u8; 32],
    make: Arc<MakeFn<T>>,
    rate_per_second: Option<f64>,
    max_elements: Option<u64>,
    max_duration: Option<StdDuration>,
    partitions: Option<usize>,
    watermarks: WatermarkStrategy,
}

impl<T> std::fmt::Debug for GeneratorSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratorSource")
            .field("rate_per_second", &self.rate_per_second)
            .field("max_elements", &self.max_elements)
            .field("max_duration", &self.max_duration)
            .field("partitions", &self.partitions)
            .field("watermarks", &self.watermarks)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> GeneratorSource<T> {
    /// A source of the elements `make(rng, i)` for `i = 0, 1, 2, ...`, where `rng` is
    /// seeded from `seed` and `i` only. Defaults: as fast as possible, unbounded, one
    /// partition per worker, in-order watermarks.
    pub fn new(
        seed: u64,
        make: impl Fn(&mut ChaCha8Rng, u64) -> (T, Timestamp) + Send + Sync + 'static,
    ) -> Self {
        GeneratorSource {
            key: ChaCha8Rng::seed_from_u64(seed).get_seed(),
            make: Arc::new(make),
            rate_per_second: None,
            max_elements: None,
            max_duration: None,
            partitions: None,
            watermarks: WatermarkStrategy::in_order(),
        }
    }

    /// Limits the rate to `rate` elements per second of wall-clock time, over all
    /// partitions together (each partition gets an equal share). Must be positive.
    pub fn rate_per_second(mut self, rate: f64) -> Self {
        self.rate_per_second = Some(rate);
        self
    }

    /// Makes the source bounded: it finishes after the elements `0..n`.
    pub fn max_elements(mut self, n: u64) -> Self {
        self.max_elements = Some(n);
        self
    }

    /// Stops generating after `duration` of wall-clock time (from each partition's first
    /// read). With a rate, the source produces exactly the elements its schedule has
    /// before the end: `ceil(duration * rate)` in all (per partition, rounded up).
    pub fn max_duration(mut self, duration: StdDuration) -> Self {
        self.max_duration = Some(duration);
        self
    }

    /// Splits the source into `n` partitions (default: one per worker). The elements do
    /// not depend on it; only their order and the watermarks do. Must be at least 1.
    pub fn partitions(mut self, n: usize) -> Self {
        self.partitions = Some(n);
        self
    }

    /// Sets how watermarks follow the generated timestamps (default: in order).
    pub fn watermark_strategy(mut self, strategy: WatermarkStrategy) -> Self {
        self.watermarks = strategy;
        self
    }

    fn validate(&self) -> Result<(), ConnectorError> {
        if let Some(r) = self.rate_per_second {
            if !(r.is_finite() && r > 0.0) {
                return Err(ConnectorError::Config(format!(
                    "generator rate must be a positive number, got {r}"
                )));
            }
        }
        if self.partitions == Some(0) {
            return Err(ConnectorError::Config("generator needs at least one partition".into()));
        }
        Ok(())
    }
}

impl<T: Send + 'static> Source<T> for GeneratorSource<T> {
    fn partitions(&self, workers: usize) -> Result<usize, SourceError> {
        self.validate().map_err(|e| e.into_source_error("generator"))?;
        Ok(self.partitions.unwrap_or(workers).max(1))
    }

    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        self.validate().map_err(|e| e.into_source_error("generator"))?;
        let stride = partitions.max(1) as u64;
        let per_partition_rate = self.rate_per_second.map(|r| r / stride as f64);
        Ok(Box::new(GeneratorReader {
            key: self.key,
            make: self.make.clone(),
            next_index: partition as u64,
            stride,
            emitted: 0,
            per_partition_rate,
            max_elements: self.max_elements,
            max_duration: self.max_duration,
            started: None,
        }))
    }

    fn watermarks(&self) -> WatermarkStrategy {
        self.watermarks
    }
}

/// Reads one partition of a [`GeneratorSource`].
struct GeneratorReader<T> {
    key: [u8; 32],
    make: Arc<MakeFn<T>>,
    next_index: u64,
    stride: u64,
    /// Elements emitted by this partition.
    emitted: u64,
    per_partition_rate: Option<f64>,
    max_elements: Option<u64>,
    max_duration: Option<StdDuration>,
    started: Option<Instant>,
}

/// The generator of element `index`: the seed's key, on the stream numbered `index`.
fn element_rng(key: [u8; 32], index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(index);
    rng
}

impl<T: Send + 'static> SourceReader<T> for GeneratorReader<T> {
    fn read(&mut self, out: &mut Vec<(T, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        let now = Instant::now();
        let started = *self.started.get_or_insert(now);
        let elapsed = now.saturating_duration_since(started);
        if self.max_elements.is_some_and(|m| self.next_index >= m) {
            return Ok(ReadStatus::Finished);
        }
        let past_deadline = self.max_duration.is_some_and(|d| elapsed >= d);
        let budget = match (self.per_partition_rate, self.max_duration) {
            // The schedule: one element right away, then one per 1/rate seconds; with a
            // duration, exactly the elements scheduled before it ends, even if this
            // reader was not scheduled often enough to keep up.
            (Some(rate), Some(d)) if past_deadline => {
                // (less a hair, so that 0.3 s at 100/s is 30, not 31.)
                ((d.as_secs_f64() * rate - 1e-9).ceil() as u64).saturating_sub(self.emitted)
            }
            (Some(rate), _) => {
                ((elapsed.as_secs_f64() * rate).floor() as u64 + 1).saturating_sub(self.emitted)
            }
            (None, _) if past_deadline => 0,
            (None, _) => u64::MAX,
        };
        if budget == 0 {
            return Ok(if past_deadline { ReadStatus::Finished } else { ReadStatus::Waiting });
        }
        let count = budget.min(max as u64);
        for _ in 0..count {
            if self.max_elements.is_some_and(|m| self.next_index >= m) {
                break;
            }
            let mut rng = element_rng(self.key, self.next_index);
            out.push((self.make)(&mut rng, self.next_index));
            self.next_index = self.next_index.saturating_add(self.stride);
            self.emitted += 1;
        }
        if self.max_elements.is_some_and(|m| self.next_index >= m) {
            return Ok(ReadStatus::Finished);
        }
        Ok(ReadStatus::Data)
    }

    fn position(&self) -> String {
        format!("element {}", self.next_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn drain<T>(reader: &mut dyn SourceReader<T>) -> Vec<(T, Timestamp)> {
        let mut out = Vec::new();
        let deadline = Instant::now() + StdDuration::from_secs(10);
        while Instant::now() < deadline {
            match reader.read(&mut out, 7) {
                Ok(ReadStatus::Finished) => return out,
                Ok(ReadStatus::Waiting) => std::thread::sleep(StdDuration::from_millis(1)),
                Ok(ReadStatus::Data) => {}
                Err(e) => panic!("read failed: {e}"),
            }
        }
        panic!("generator did not finish");
    }

    fn source() -> GeneratorSource<(u64, u32)> {
        GeneratorSource::new(42, |rng, i| ((i, rng.gen::<u32>()), Timestamp::from_millis(i as i64)))
    }

    #[test]
    fn elements_depend_only_on_seed_and_index() {
        let mut one = Vec::new();
        for p in 0..1 {
            one.extend(drain(&mut *source().max_elements(50).open(p, 1).unwrap()));
        }
        let mut three = Vec::new();
        for p in 0..3 {
            three.extend(drain(&mut *source().max_elements(50).open(p, 3).unwrap()));
        }
        three.sort_by_key(|((i, _), _)| *i);
        assert_eq!(one.len(), 50);
        assert_eq!(one, three);
        let other = drain(
            &mut *GeneratorSource::new(43, |rng, i| {
                ((i, rng.gen::<u32>()), Timestamp::from_millis(i as i64))
            })
            .max_elements(50)
            .open(0, 1)
            .unwrap(),
        );
        assert_ne!(one, other);
    }

    #[test]
    fn rate_limit_spreads_elements_over_time() {
        let start = Instant::now();
        let mut reader = source().max_elements(21).rate_per_second(100.0).open(0, 1).unwrap();
        assert_eq!(drain(&mut *reader).len(), 21);
        // 20 intervals of 10 ms after the first element.
        assert!(start.elapsed() >= StdDuration::from_millis(190), "{:?}", start.elapsed());
    }

    #[test]
    fn rate_limited_reader_waits_when_ahead() {
        let mut reader = source().rate_per_second(1.0).open(0, 1).unwrap();
        let mut out = Vec::new();
        assert_eq!(reader.read(&mut out, 10).unwrap(), ReadStatus::Data);
        assert_eq!(out.len(), 1);
        assert_eq!(reader.read(&mut out, 10).unwrap(), ReadStatus::Waiting);
    }

    #[test]
    fn max_duration_stops_an_unbounded_generator() {
        let start = Instant::now();
        let mut reader =
            source().rate_per_second(1000.0).max_duration(StdDuration::from_millis(50)).open(0, 1).unwrap();
        assert_eq!(drain(&mut *reader).len(), 50);
        assert!(start.elapsed() >= StdDuration::from_millis(50));
    }

    #[test]
    fn a_starved_reader_still_produces_its_whole_schedule() {
        let mut reader =
            source().rate_per_second(100.0).max_duration(StdDuration::from_millis(300)).open(0, 1).unwrap();
        let mut out = Vec::new();
        assert_eq!(reader.read(&mut out, 1000).unwrap(), ReadStatus::Data);
        std::thread::sleep(StdDuration::from_millis(350));
        out.extend(drain(&mut *reader));
        assert_eq!(out.len(), 30);
    }

    #[test]
    fn invalid_settings_are_errors() {
        assert!(Source::partitions(&source().rate_per_second(0.0), 1).is_err());
        assert!(source().rate_per_second(f64::NAN).open(0, 1).is_err());
        assert!(Source::partitions(&source().partitions(0), 2).is_err());
        assert_eq!(Source::partitions(&source().partitions(5), 2), Ok(5));
        assert_eq!(Source::partitions(&source(), 3), Ok(3));
    }
}
