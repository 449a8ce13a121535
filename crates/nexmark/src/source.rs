//! [`NexmarkSource`]: the Nexmark generator as a replayable, partitioned, optionally
//! rate-limited Millstream [`Source`].
//!
//! Partition `p` of `n` makes the event numbers `p, p + n, p + 2n, ...` (so the events do
//! not depend on the number of partitions, only their interleaving does); an event's
//! timestamp is its `dateTime`. Its checkpoint position is the next event number it will
//! make, so a restored job continues exactly where the checkpoint was taken.
//!
//! ```
//! use millstream_nexmark::{GeneratorConfig, NexmarkSource};
//! use millstream_runtime::{Pipeline, Runner};
//!
//! let p = Pipeline::new();
//! let events = p.read("Nexmark", NexmarkSource::new(GeneratorConfig::new().num_events(500)).unwrap());
//! let out = events.collect();
//! Runner::new().workers(2).run(&p).unwrap();
//! assert_eq!(out.values().len(), 500);
//! ```
//!
//! # Rate limit and latency
//!
//! With [`NexmarkSource::rate_per_second`] the source is a live source: event number `m`
//! is due at `start + m / rate` of wall-clock time (over all partitions together), where
//! `start` is the instant the first partition first read (shared by the partitions of one
//! source and its clones). [`NexmarkSource::scheduled_instant`] maps an event time back
//! to that schedule, so that a sink can measure latency as `now - scheduled_instant(t)`
//! for a result whose event time is `t` (say a window's end minus 1 ms): the time since the
//! source was due to emit the first event at or after `t`.

use crate::config::{ConfigError, GeneratorConfig};
use crate::generator::Generator;
use crate::model::Event;
use millstream_model::{Duration, Timestamp};
use millstream_runtime::{ReadStatus, Source, SourceError, SourceReader, WatermarkStrategy};
use std::sync::{Arc, OnceLock};
use std::time::{Duration as StdDuration, Instant};

/// The margin added to the generator's largest disorder for the default bounded
/// out-of-orderness watermark, milliseconds.
pub const WATERMARK_MARGIN_MILLIS: i64 = 1;

/// The Nexmark generator as a [`Source`] of [`Event`]s.
///
/// Defaults: as fast as possible, one partition per worker, watermarks that trail the
/// latest event time by the generator's largest disorder plus
/// [`WATERMARK_MARGIN_MILLIS`]. Clones share the rate schedule's start.
#[derive(Clone, Debug)]
pub struct NexmarkSource {
    generator: Generator,
    rate_per_second: Option<f64>,
    partitions: Option<usize>,
    watermarks: Option<WatermarkStrategy>,
    start: Arc<OnceLock<Instant>>,
}

impl NexmarkSource {
    /// A source of the events of `config` (unbounded when `config.num_events` is
    /// `None`).
    pub fn new(config: GeneratorConfig) -> Result<Self, ConfigError> {
        Ok(NexmarkSource {
            generator: Generator::new(config)?,
            rate_per_second: None,
            partitions: None,
            watermarks: None,
            start: Arc::new(OnceLock::new()),
        })
    }

    /// The generator's configuration.
    pub fn config(&self) -> &GeneratorConfig {
        self.generator.config()
    }

    /// Limits the rate to `rate` events per second of wall-clock time over all
    /// partitions (a live source, for latency benchmarks). Must be positive and finite
    /// (checked when the job starts).
    pub fn rate_per_second(mut self, rate: f64) -> Self {
        self.rate_per_second = Some(rate);
        self
    }

    /// Splits the source into `n` partitions (default: one per worker). Must be at least
    /// 1 (checked when the job starts).
    pub fn partitions(mut self, n: usize) -> Self {
        self.partitions = Some(n);
        self
    }

    /// Sets the watermark strategy. The default is
    /// [`default_watermarks`](Self::default_watermarks);
    /// [`WatermarkStrategy::from_source`] uses the generator's own perfect watermark
    /// (Beam's: the least event time of everything the partition has still to make).
    pub fn watermark_strategy(mut self, strategy: WatermarkStrategy) -> Self {
        self.watermarks = Some(strategy);
        self
    }

    /// Bounded out-of-orderness by the configuration's
    /// [`max_out_of_orderness_millis`](GeneratorConfig::max_out_of_orderness_millis)
    /// plus [`WATERMARK_MARGIN_MILLIS`].
    pub fn default_watermarks(&self) -> WatermarkStrategy {
        let bound = self.config().max_out_of_orderness_millis().saturating_add(WATERMARK_MARGIN_MILLIS);
        WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(bound))
    }

    /// When the rate-limited schedule started (the first read of any partition of this
    /// source or its clones); `None` before, or without a rate limit.
    pub fn start_instant(&self) -> Option<Instant> {
        self.rate_per_second.and(self.start.get().copied())
    }

    /// The wall-clock instant at which the schedule has event number `n` due:
    /// `start + n / rate`. `None` without a rate limit or before the source started.
    pub fn scheduled_instant_of_event(&self, n: u64) -> Option<Instant> {
        let rate = self.rate_per_second.filter(|r| r.is_finite() && *r > 0.0)?;
        let start = self.start_instant()?;
        start.checked_add(StdDuration::try_from_secs_f64(n as f64 / rate).ok()?)
    }

    /// The wall-clock instant at which the source was due to emit the first event (in
    /// event-number order) whose in-order event time is at least `event_time` (epoch
    /// milliseconds): [`scheduled_instant_of_event`](Self::scheduled_instant_of_event)
    /// of [`GeneratorConfig::event_number_at`]`(event_time)`. With an out-of-order
    /// configuration, an event's own time may differ from that schedule by up to the
    /// configuration's disorder. `None` without a rate limit or before the source started.
    pub fn scheduled_instant(&self, event_time: i64) -> Option<Instant> {
        self.scheduled_instant_of_event(self.config().event_number_at(event_time))
    }

    fn validate(&self) -> Result<(), SourceError> {
        if let Some(r) = self.rate_per_second {
            if !(r.is_finite() && r > 0.0) {
                return Err(SourceError::new("nexmark", format!("rate must be a positive number, got {r}")));
            }
        }
        if self.partitions == Some(0) {
            return Err(SourceError::new("nexmark", "the source needs at least one partition"));
        }
        Ok(())
    }

    fn reader(
        &self,
        partition: usize,
        partitions: usize,
        next: Option<u64>,
    ) -> Result<NexmarkReader, SourceError> {
        self.validate()?;
        let mut generator = self
            .generator
            .for_partition(partition as u64, partitions as u64)
            .map_err(|e| SourceError::new(format!("partition {partition}"), e.to_string()))?;
        if let Some(next) = next {
            generator.seek(next);
        }
        Ok(NexmarkReader { generator, rate_per_second: self.rate_per_second, start: self.start.clone() })
    }
}

impl Source<Event> for NexmarkSource {
    fn partitions(&self, workers: usize) -> Result<usize, SourceError> {
        self.validate()?;
        Ok(self.partitions.unwrap_or(workers).max(1))
    }

    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<Event>>, SourceError> {
        Ok(Box::new(self.reader(partition, partitions, None)?))
    }

    fn watermarks(&self) -> WatermarkStrategy {
        self.watermarks.unwrap_or_else(|| self.default_watermarks())
    }

    fn reopen(
        &self,
        partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<Event>>, SourceError> {
        let location = format!("partition {partition}");
        let bytes: [u8; 8] = position.try_into().map_err(|_| {
            SourceError::new(&location, format!("bad position: {} bytes, expected 8", position.len()))
        })?;
        let next = u64::from_le_bytes(bytes);
        if partitions == 0 || next % partitions as u64 != partition as u64 % partitions as u64 {
            return Err(SourceError::new(
                location,
                format!("event {next} does not belong to partition {partition} of {partitions}"),
            ));
        }
        Ok(Box::new(self.reader(partition, partitions, Some(next))?))
    }
}

/// Reads one partition of a [`NexmarkSource`].
struct NexmarkReader {
    generator: Generator,
    rate_per_second: Option<f64>,
    start: Arc<OnceLock<Instant>>,
}

impl NexmarkReader {
    /// How many events the schedule allows now (`u64::MAX` without a rate).
    fn budget(&self) -> u64 {
        let Some(rate) = self.rate_per_second else {
            return u64::MAX;
        };
        let now = Instant::now();
        let next = self.generator.next_event_number();
        // The first reader starts the schedule so that its next event is due now.
        let start = *self.start.get_or_init(|| {
            StdDuration::try_from_secs_f64(next as f64 / rate)
                .ok()
                .and_then(|d| now.checked_sub(d))
                .unwrap_or(now)
        });
        let elapsed = now.saturating_duration_since(start).as_secs_f64();
        // Every event number up to `due` is due.
        let due = (elapsed * rate).floor();
        if due < next as f64 {
            return 0;
        }
        let due = if due >= u64::MAX as f64 { u64::MAX } else { due as u64 };
        (due - next) / self.generator.stride() + 1
    }
}

impl SourceReader<Event> for NexmarkReader {
    fn read(&mut self, out: &mut Vec<(Event, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        if self.generator.is_finished() {
            return Ok(ReadStatus::Finished);
        }
        let count = self.budget().min(max as u64);
        if count == 0 {
            return Ok(ReadStatus::Waiting);
        }
        out.reserve(count as usize);
        for event in self.generator.by_ref().take(count as usize) {
            let t = Timestamp::from_millis(event.date_time());
            out.push((event, t));
        }
        Ok(if self.generator.is_finished() { ReadStatus::Finished } else { ReadStatus::Data })
    }

    fn watermark(&self) -> Option<Timestamp> {
        Some(Timestamp::from_millis(self.generator.watermark()))
    }

    fn position(&self) -> String {
        format!("event {}", self.generator.next_event_number())
    }

    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        Some(self.generator.next_event_number().to_le_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(reader: &mut dyn SourceReader<Event>, batch: usize) -> Vec<(Event, Timestamp)> {
        let mut out = Vec::new();
        let deadline = Instant::now() + StdDuration::from_secs(20);
        while Instant::now() < deadline {
            match reader.read(&mut out, batch) {
                Ok(ReadStatus::Finished) => return out,
                Ok(ReadStatus::Waiting) => std::thread::sleep(StdDuration::from_millis(1)),
                Ok(ReadStatus::Data) => {}
                Err(e) => panic!("read failed: {e}"),
            }
        }
        panic!("source did not finish");
    }

    fn config() -> GeneratorConfig {
        GeneratorConfig::new().num_events(1000)
    }

    #[test]
    fn partitions_make_the_generators_events_with_their_times() {
        let all: Vec<Event> = Generator::new(config()).unwrap().collect();
        let source = NexmarkSource::new(config()).unwrap();
        let mut got = vec![None; all.len()];
        for p in 0..3 {
            let read = drain(&mut *source.open(p, 3).unwrap(), 64);
            for (k, (e, t)) in read.into_iter().enumerate() {
                assert_eq!(t.millis(), e.date_time());
                got[p + 3 * k] = Some(e);
            }
        }
        let got: Vec<Event> = got.into_iter().map(Option::unwrap).collect();
        assert_eq!(got, all);
    }

    #[test]
    fn a_reopened_partition_continues_where_it_stopped() {
        let source = NexmarkSource::new(config()).unwrap();
        let mut reader = source.open(1, 2).unwrap();
        let mut first = Vec::new();
        assert_eq!(reader.read(&mut first, 100).unwrap(), ReadStatus::Data);
        let position = reader.checkpoint_position().unwrap();
        let rest = drain(&mut *reader, 100);
        let again = drain(&mut *source.reopen(1, 2, &position).unwrap(), 33);
        assert_eq!(again, rest);
        assert_eq!(first.len() + rest.len(), 500);
        assert!(source.reopen(0, 2, &position).is_err(), "position of another partition");
        assert!(source.reopen(1, 2, &[1, 2, 3]).is_err());
    }

    #[test]
    fn watermarks_default_to_the_generators_disorder() {
        let source = NexmarkSource::new(config().out_of_order_group_size(100)).unwrap();
        let bound = source.config().max_out_of_orderness_millis() + WATERMARK_MARGIN_MILLIS;
        assert_eq!(
            source.watermarks(),
            WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(bound))
        );
        let s = source.clone().watermark_strategy(WatermarkStrategy::from_source());
        assert_eq!(s.watermarks(), WatermarkStrategy::from_source());
        // The reader's own watermark never passes an event still to come.
        let mut reader = s.open(0, 1).unwrap();
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let mut marks = Vec::new();
        while reader.read(&mut out, 17).unwrap() != ReadStatus::Finished {
            marks.push((seen.len() + out.len(), reader.watermark().unwrap()));
            seen.append(&mut out);
        }
        seen.append(&mut out);
        for (from, mark) in marks {
            assert!(seen[from..].iter().all(|(_, t)| *t >= mark));
        }
    }

    #[test]
    fn the_rate_limit_paces_the_events_and_maps_event_times_to_instants() {
        let source =
            NexmarkSource::new(GeneratorConfig::new().num_events(41)).unwrap().rate_per_second(200.0);
        assert!(source.scheduled_instant(0).is_none(), "not started yet");
        let started = Instant::now();
        let mut reader = source.open(0, 1).unwrap();
        let events = drain(&mut *reader, 1000);
        assert_eq!(events.len(), 41);
        // 40 intervals of 5 ms after the first event.
        assert!(started.elapsed() >= StdDuration::from_millis(195), "{:?}", started.elapsed());
        let start = source.start_instant().unwrap();
        assert_eq!(source.scheduled_instant_of_event(0), Some(start));
        assert_eq!(source.scheduled_instant_of_event(20), Some(start + StdDuration::from_millis(100)));
        // Event 20 has event time base + 2 ms (10 000 events/s); the first event at that
        // time is event 20.
        let t = events[20].0.date_time();
        assert_eq!(source.scheduled_instant(t), Some(start + StdDuration::from_millis(100)));
        // Without a rate there is no schedule.
        assert!(NexmarkSource::new(config()).unwrap().scheduled_instant(t).is_none());
    }

    #[test]
    fn a_rate_limited_reader_waits_when_ahead() {
        let source = NexmarkSource::new(config().unbounded()).unwrap().rate_per_second(1.0);
        let mut reader = source.open(0, 1).unwrap();
        let mut out = Vec::new();
        assert_eq!(reader.read(&mut out, 10).unwrap(), ReadStatus::Data);
        assert_eq!(out.len(), 1);
        assert_eq!(reader.read(&mut out, 10).unwrap(), ReadStatus::Waiting);
    }

    #[test]
    fn invalid_settings_are_errors() {
        let s = || NexmarkSource::new(config()).unwrap();
        assert!(Source::partitions(&s().rate_per_second(0.0), 1).is_err());
        assert!(s().rate_per_second(f64::NAN).open(0, 1).is_err());
        assert!(Source::partitions(&s().partitions(0), 2).is_err());
        assert_eq!(Source::partitions(&s().partitions(5), 2), Ok(5));
        assert_eq!(Source::partitions(&s(), 3), Ok(3));
        assert!(s().open(3, 3).is_err());
        assert!(NexmarkSource::new(config().event_rate(0)).is_err());
    }
}
