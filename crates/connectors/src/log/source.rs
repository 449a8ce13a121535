//! [`LogSource`]: reads a topic of the embedded log.

use super::{open_existing, partition_count};
use crate::files::BadRecordPolicy;
use millstream_log::{Log, LogError, ReadLimit, Reader, StoredRecord};
use millstream_model::{Duration, Timestamp};
use millstream_runtime::{DeadLetter, ReadStatus, Source, SourceError, SourceReader, WatermarkStrategy};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Turns a stored record into an element, or says why it cannot.
type DecodeFn<T> = dyn Fn(&StoredRecord) -> Result<T, String> + Send + Sync;
/// Computes an element's event timestamp from it and its record.
type TimestampFn<T> = dyn Fn(&T, &StoredRecord) -> Timestamp + Send + Sync;

/// Where a partition without a checkpointed position starts reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogStartOffset {
    /// At the partition's oldest retained record (the default).
    #[default]
    Earliest,
    /// At the partition's end when the job starts: only records appended from then on.
    Latest,
    /// At this offset (an error if it is out of range, unless
    /// [`LogSource::reset_to_earliest_on_out_of_range`] is set).
    Offset(u64),
}

struct Settings<T> {
    dir: PathBuf,
    topic: String,
    decode: Arc<DecodeFn<T>>,
    timestamp: Option<Arc<TimestampFn<T>>>,
    start: LogStartOffset,
    bounded: bool,
    reset_to_earliest: bool,
    limit: ReadLimit,
    policy: BadRecordPolicy,
}

impl<T> Clone for Settings<T> {
    fn clone(&self) -> Self {
        Settings {
            dir: self.dir.clone(),
            topic: self.topic.clone(),
            decode: self.decode.clone(),
            timestamp: self.timestamp.clone(),
            start: self.start,
            bounded: self.bounded,
            reset_to_earliest: self.reset_to_earliest,
            limit: self.limit,
            policy: self.policy,
        }
    }
}

/// Reads a topic of the embedded log ([`millstream_log`]).
///
/// Every partition of the topic is one source partition (worker `w` of `n` reads the
/// partitions `p % n == w`); the partition count is read when the job starts. Records are
/// decoded by a function of the [`StoredRecord`] (offset, key, value, timestamp, headers):
/// [`new`](Self::new) takes any, [`bytes`](LogSource::bytes), [`strings`](LogSource::strings)
/// and [`json`](LogSource::json) decode the value. A record the function rejects fails the
/// job with an error naming the log directory, the topic, the partition, the offset and the
/// reason, or, with [`BadRecordPolicy::DeadLetter`], goes to the dead-letter output of
/// [`Pipeline::read_with_dead_letters`](millstream_runtime::Pipeline::read_with_dead_letters)
/// with that location, the reason and its value.
///
/// A record's event timestamp is its log timestamp (`timestamp_ms`), or what
/// [`with_timestamp_fn`](Self::with_timestamp_fn) computes. Watermarks are per partition,
/// by default 5 seconds behind the latest timestamp read
/// ([`WatermarkStrategy::bounded_out_of_orderness`]) with no idleness: in a streaming job,
/// set [`with_watermark_strategy`](Self::with_watermark_strategy) with
/// [`WatermarkStrategy::with_idleness`] so that a partition without traffic stops holding
/// the watermark back.
///
/// Partitions without a checkpointed position start at their oldest retained record
/// (or where [`start_from`](Self::start_from) says). A checkpoint stores each partition's
/// next offset (8 bytes, little endian; in bounded mode followed by the end offset the job
/// reads up to, 8 more bytes, so that a restored bounded job stops where the original
/// would have). After a restore, a stored offset that retention has deleted meanwhile (below
/// the partition's start) is an error naming the topic, the partition, the offset and the
/// start, unless [`reset_to_earliest_on_out_of_range`](Self::reset_to_earliest_on_out_of_range)
/// is set; the same applies when retention overtakes a slow reader while it runs.
///
/// By default the source follows the topic as it grows and never finishes (stop the job
/// with a [`millstream_runtime::CancelHandle`]); [`bounded`](Self::bounded) reads every
/// partition up to the end offset it had when the job started, then finishes.
pub struct LogSource<T> {
    settings: Arc<Settings<T>>,
    watermarks: WatermarkStrategy,
}

impl<T> Clone for LogSource<T> {
    fn clone(&self) -> Self {
        LogSource { settings: self.settings.clone(), watermarks: self.watermarks }
    }
}

impl<T> std::fmt::Debug for LogSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSource")
            .field("dir", &self.settings.dir)
            .field("topic", &self.settings.topic)
            .field("start", &self.settings.start)
            .field("bounded", &self.settings.bounded)
            .field("reset_to_earliest_on_out_of_range", &self.settings.reset_to_earliest)
            .field("watermarks", &self.watermarks)
            .finish_non_exhaustive()
    }
}

impl LogSource<Vec<u8>> {
    /// Reads the values as bytes.
    pub fn bytes(dir: impl AsRef<Path>, topic: impl Into<String>) -> Self {
        LogSource::new(dir, topic, |r| Ok(r.record.value.to_vec()))
    }
}

impl LogSource<String> {
    /// Reads the values as UTF-8 text; a value that is not UTF-8 is a bad record.
    pub fn strings(dir: impl AsRef<Path>, topic: impl Into<String>) -> Self {
        LogSource::new(dir, topic, |r| {
            std::str::from_utf8(&r.record.value)
                .map(str::to_owned)
                .map_err(|e| format!("value is not UTF-8: {e}"))
        })
    }
}

impl<T: serde::de::DeserializeOwned + Send + 'static> LogSource<T> {
    /// Reads the values as JSON values decoded into `T`.
    pub fn json(dir: impl AsRef<Path>, topic: impl Into<String>) -> Self {
        LogSource::new(dir, topic, |r| {
            serde_json::from_slice(&r.record.value).map_err(|e| format!("cannot decode JSON value: {e}"))
        })
    }
}

impl<T: Send + 'static> LogSource<T> {
    /// Reads `topic` of the log in `dir`, decoding every record with `decode`.
    pub fn new(
        dir: impl AsRef<Path>,
        topic: impl Into<String>,
        decode: impl Fn(&StoredRecord) -> Result<T, String> + Send + Sync + 'static,
    ) -> Self {
        LogSource {
            settings: Arc::new(Settings {
                dir: dir.as_ref().to_path_buf(),
                topic: topic.into(),
                decode: Arc::new(decode),
                timestamp: None,
                start: LogStartOffset::Earliest,
                bounded: false,
                reset_to_earliest: false,
                limit: ReadLimit::default(),
                policy: BadRecordPolicy::Fail,
            }),
            watermarks: WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(5)),
        }
    }

    fn settings_mut(&mut self) -> &mut Settings<T> {
        Arc::make_mut(&mut self.settings)
    }

    /// Where partitions without a checkpointed position start (default: the earliest
    /// retained record).
    pub fn start_from(mut self, start: LogStartOffset) -> Self {
        self.settings_mut().start = start;
        self
    }

    /// Reads every partition up to the end offset it has when the job starts, then
    /// finishes: a batch job over a topic.
    pub fn bounded(mut self) -> Self {
        self.settings_mut().bounded = true;
        self
    }

    /// Gives each record the event timestamp `f` computes from it (default: the record's
    /// log timestamp).
    pub fn with_timestamp_fn(
        mut self,
        f: impl Fn(&T, &StoredRecord) -> Timestamp + Send + Sync + 'static,
    ) -> Self {
        self.settings_mut().timestamp = Some(Arc::new(f));
        self
    }

    /// Sets how each partition's watermark follows its timestamps (default: 5 seconds of
    /// out-of-orderness, no idleness).
    pub fn with_watermark_strategy(mut self, strategy: WatermarkStrategy) -> Self {
        self.watermarks = strategy;
        self
    }

    /// When a position is out of range (a checkpointed or configured offset that retention
    /// deleted, or that is beyond the partition's end because the topic was recreated, or
    /// retention overtaking a slow reader), continue at the partition's oldest retained
    /// record, with a warning naming the records skipped, instead of failing the job.
    pub fn reset_to_earliest_on_out_of_range(mut self) -> Self {
        self.settings_mut().reset_to_earliest = true;
        self
    }

    /// What to do with a record that does not decode (default: fail the job).
    pub fn bad_record_policy(mut self, policy: BadRecordPolicy) -> Self {
        self.settings_mut().policy = policy;
        self
    }

    /// How much one read of a partition may return (default 1000 records or 1 MiB; the
    /// runtime also caps the number of records per read).
    pub fn with_read_limit(mut self, limit: ReadLimit) -> Self {
        self.settings_mut().limit = limit;
        self
    }
}

impl<T> Settings<T> {
    fn location(&self, partition: u32, offset: u64) -> String {
        format!("log {} topic \"{}\" partition {partition} offset {offset}", self.dir.display(), self.topic)
    }

    fn topic_location(&self) -> String {
        format!("log {} topic \"{}\"", self.dir.display(), self.topic)
    }

    fn log(&self) -> Result<Log, SourceError> {
        open_existing(&self.dir, &self.topic).map_err(|m| SourceError::new(self.topic_location(), m))
    }

    /// Checks `offset` against the partition's range; moves it to the start if it is out of
    /// range and resetting is allowed.
    fn checked_offset(&self, log: &Log, partition: u32, offset: u64) -> Result<u64, SourceError> {
        let (start, end) = log
            .offsets(&self.topic, partition)
            .map_err(|e| SourceError::new(self.location(partition, offset), e.to_string()))?;
        if (start..=end).contains(&offset) {
            return Ok(offset);
        }
        if self.reset_to_earliest {
            warn_reset(&self.location(partition, offset), offset, start, end);
            return Ok(start);
        }
        Err(SourceError::new(self.location(partition, offset), out_of_range_message(offset, start, end)))
    }
}

fn out_of_range_message(offset: u64, start: u64, end: u64) -> String {
    if offset < start {
        format!(
            "offset {offset} is below the partition's start offset {start}: retention deleted the \
             records {offset}..{start} (set reset_to_earliest_on_out_of_range to continue at {start})"
        )
    } else {
        format!(
            "offset {offset} is beyond the partition's end offset {end}: the topic was deleted and \
             recreated, or the partition damaged and cut back (set reset_to_earliest_on_out_of_range \
             to continue at the start offset {start})"
        )
    }
}

fn warn_reset(location: &str, offset: u64, start: u64, end: u64) {
    if offset < start {
        tracing::warn!(
            "{location}: out of range, continuing at the start offset {start}: the records \
             {offset}..{start} were deleted by retention and are skipped"
        );
    } else {
        tracing::warn!(
            "{location}: beyond the end offset {end}, continuing at the start offset {start} \
             (the topic was recreated or cut back)"
        );
    }
}

impl<T: Send + 'static> Source<T> for LogSource<T> {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        let s = &self.settings;
        let log = s.log()?;
        let n = partition_count(&log, &s.topic).map_err(|m| SourceError::new(s.topic_location(), m))?;
        Ok(n as usize)
    }

    fn open(&self, partition: usize, _partitions: usize) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        let s = &self.settings;
        let partition = u32::try_from(partition).map_err(|_| {
            SourceError::new(s.topic_location(), format!("partition {partition} out of range"))
        })?;
        let log = s.log()?;
        let (start, end) = log
            .offsets(&s.topic, partition)
            .map_err(|e| SourceError::new(s.location(partition, 0), e.to_string()))?;
        let offset = match s.start {
            LogStartOffset::Earliest => start,
            LogStartOffset::Latest => end,
            LogStartOffset::Offset(o) => s.checked_offset(&log, partition, o)?,
        };
        PartitionReader::open(self.settings.clone(), &log, partition, offset, s.bounded.then_some(end))
    }

    fn reopen(
        &self,
        partition: usize,
        _partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        let s = &self.settings;
        let partition = u32::try_from(partition).map_err(|_| {
            SourceError::new(s.topic_location(), format!("partition {partition} out of range"))
        })?;
        let word = |i: usize| -> Option<u64> {
            position.get(i * 8..i * 8 + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
        };
        let (offset, stored_end) = match (position.len(), word(0), word(1)) {
            (8, Some(offset), _) => (offset, None),
            (16, Some(offset), Some(end)) => (offset, Some(end)),
            _ => {
                return Err(SourceError::new(
                    s.location(partition, 0),
                    format!(
                        "bad checkpointed position: {} bytes, expected 8 (next offset) or 16 (next and \
                         end offset)",
                        position.len()
                    ),
                ))
            }
        };
        let log = s.log()?;
        let offset = s.checked_offset(&log, partition, offset)?;
        let end = match (s.bounded, stored_end) {
            (false, _) => None,
            (true, Some(end)) => Some(end),
            // A checkpoint of the source in follow mode, restored in bounded mode: read up to
            // the end offset found now.
            (true, None) => Some(
                log.offsets(&s.topic, partition)
                    .map_err(|e| SourceError::new(s.location(partition, offset), e.to_string()))?
                    .1,
            ),
        };
        PartitionReader::open(self.settings.clone(), &log, partition, offset, end)
    }

    fn watermarks(&self) -> WatermarkStrategy {
        self.watermarks
    }
}

/// Reads one partition.
struct PartitionReader<T> {
    settings: Arc<Settings<T>>,
    partition: u32,
    reader: Reader,
    /// Bounded mode: the offset to stop at.
    end: Option<u64>,
    buffer: Vec<StoredRecord>,
    /// Records routed aside under [`BadRecordPolicy::DeadLetter`], not yet taken.
    dead: Vec<DeadLetter>,
}

impl<T: Send + 'static> PartitionReader<T> {
    fn open(
        settings: Arc<Settings<T>>,
        log: &Log,
        partition: u32,
        offset: u64,
        end: Option<u64>,
    ) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        let reader = log
            .reader(&settings.topic, partition, offset)
            .map_err(|e| SourceError::new(settings.location(partition, offset), e.to_string()))?;
        Ok(Box::new(PartitionReader {
            settings,
            partition,
            reader,
            end,
            buffer: Vec::new(),
            dead: Vec::new(),
        }))
    }

    /// Decodes one record into an element and its event timestamp: `Ok(Some)` to emit,
    /// `Ok(None)` when routed to the dead letters, `Err` to fail. The one place where a
    /// bad record is recognised and the bad-record policy applies.
    fn decode(&mut self, record: &StoredRecord) -> Result<Option<(T, Timestamp)>, SourceError> {
        let s = &self.settings;
        match (s.decode)(record) {
            Ok(value) => {
                let timestamp = match &s.timestamp {
                    Some(f) => f(&value, record),
                    None => Timestamp::from_millis(
                        record.record.timestamp_ms.clamp(Timestamp::MIN.0, Timestamp::MAX.0),
                    ),
                };
                Ok(Some((value, timestamp)))
            }
            Err(reason) => {
                let location = s.location(self.partition, record.offset);
                let message = format!("cannot decode record: {reason}");
                match s.policy {
                    BadRecordPolicy::Fail => Err(SourceError::new(location, message)),
                    BadRecordPolicy::DeadLetter => {
                        self.dead.push(DeadLetter::from_bytes(location, message, &record.record.value));
                        Ok(None)
                    }
                }
            }
        }
    }

    /// Polls the reader, handling a position that retention overtook.
    fn poll(&mut self, limit: ReadLimit) -> Result<(), SourceError> {
        match self.reader.poll_into(limit, &mut self.buffer) {
            Ok(_) => Ok(()),
            Err(LogError::OffsetOutOfRange { offset, start, end, .. }) if self.settings.reset_to_earliest => {
                warn_reset(&self.settings.location(self.partition, offset), offset, start, end);
                self.reader.seek(start);
                self.reader.poll_into(limit, &mut self.buffer).map(|_| ()).map_err(|e| {
                    SourceError::new(self.settings.location(self.partition, start), e.to_string())
                })
            }
            Err(LogError::OffsetOutOfRange { offset, start, end, .. }) => Err(SourceError::new(
                self.settings.location(self.partition, offset),
                out_of_range_message(offset, start, end),
            )),
            Err(e) => Err(SourceError::new(
                self.settings.location(self.partition, self.reader.position()),
                e.to_string(),
            )),
        }
    }
}

impl<T: Send + 'static> SourceReader<T> for PartitionReader<T> {
    fn read(&mut self, out: &mut Vec<(T, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        let mut limit = self.settings.limit;
        limit.max_records = limit.max_records.min(max).max(1);
        if let Some(end) = self.end {
            let left = end.saturating_sub(self.reader.position());
            if left == 0 {
                return Ok(ReadStatus::Finished);
            }
            limit.max_records = limit.max_records.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        self.buffer.clear();
        self.poll(limit)?;
        if self.buffer.is_empty() {
            return Ok(ReadStatus::Waiting);
        }
        let records = std::mem::take(&mut self.buffer);
        let mut result = Ok(());
        for record in &records {
            match self.decode(record) {
                Ok(Some(decoded)) => out.push(decoded),
                Ok(None) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.buffer = records;
        self.buffer.clear();
        result?;
        if self.end.is_some_and(|end| self.reader.position() >= end) {
            return Ok(ReadStatus::Finished);
        }
        Ok(ReadStatus::Data)
    }

    fn position(&self) -> String {
        self.settings.location(self.partition, self.reader.position())
    }

    fn take_dead_letters(&mut self, out: &mut Vec<DeadLetter>) {
        out.append(&mut self.dead);
    }

    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        let mut bytes = self.reader.position().to_le_bytes().to_vec();
        if let Some(end) = self.end {
            bytes.extend_from_slice(&end.to_le_bytes());
        }
        Some(bytes)
    }
}
