//! [`KafkaSource`]: reads a Kafka topic, one Millstream partition per Kafka partition,
//! with the offsets kept in Millstream's checkpoints.

use super::dedup::{EpochDeduplicator, HeldRecord, Verdict};
use super::epoch::{EpochTag, EPOCH_HEADER};
use super::ClientSettings;
use crate::files::BadRecordPolicy;
use millstream_model::{Duration, Timestamp};
use millstream_runtime::{DeadLetter, ReadStatus, Source, SourceError, SourceReader, WatermarkStrategy};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One record as read from Kafka, handed to the source's decoder.
#[derive(Debug)]
pub struct KafkaMessage<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The Kafka partition.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// The key, if any.
    pub key: Option<&'a [u8]>,
    /// The value (payload), if any (`None` for a tombstone).
    pub payload: Option<&'a [u8]>,
    /// The record's timestamp in milliseconds since the epoch (create or log-append
    /// time), if the broker has one.
    pub timestamp: Option<i64>,
    /// The headers, in order: name and value (`None` for a null value).
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

impl<'a> KafkaMessage<'a> {
    fn from_borrowed(m: &'a BorrowedMessage<'a>) -> Self {
        let headers = match m.headers() {
            Some(h) => (0..h.count()).filter_map(|i| h.try_get(i)).map(|h| (h.key, h.value)).collect(),
            None => Vec::new(),
        };
        KafkaMessage {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key(),
            payload: m.payload(),
            timestamp: m.timestamp().to_millis(),
            headers,
        }
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.iter().find(|(k, _)| *k == name).and_then(|(_, v)| *v)
    }
}

/// Where a partition without a stored position starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartOffset {
    /// At the oldest record still in the partition (the default).
    #[default]
    Earliest,
    /// After the last record at the time the job starts: only new records.
    Latest,
}

/// How long a bounded reader waits at its end for open transactions, by default.
const DEFAULT_OPEN_TRANSACTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

type DecodeFn<T> = dyn Fn(&KafkaMessage<'_>) -> Result<T, String> + Send + Sync;
type TimestampFn<T> = dyn Fn(&T, &KafkaMessage<'_>) -> Timestamp + Send + Sync;

/// Everything a partition reader needs, shared by the readers of a source.
struct Settings<T> {
    client: ClientSettings,
    topic: String,
    group_id: String,
    decode: Arc<DecodeFn<T>>,
    timestamp: Option<Arc<TimestampFn<T>>>,
    start: StartOffset,
    bounded: bool,
    policy: BadRecordPolicy,
    /// Whether records with the exactly-once sink's epoch tag are deduplicated.
    epoch_tags: bool,
    /// How long a bounded reader waits for open transactions at its end.
    open_transaction_timeout: std::time::Duration,
}

impl<T> Clone for Settings<T> {
    fn clone(&self) -> Self {
        Settings {
            client: self.client.clone(),
            topic: self.topic.clone(),
            group_id: self.group_id.clone(),
            decode: self.decode.clone(),
            timestamp: self.timestamp.clone(),
            start: self.start,
            bounded: self.bounded,
            policy: self.policy,
            epoch_tags: self.epoch_tags,
            open_transaction_timeout: self.open_transaction_timeout,
        }
    }
}

/// Reads a Kafka topic. Every Kafka partition is one source partition (worker `w` of `n`
/// reads the partitions `p % n == w`), assigned explicitly to a consumer of its own: no
/// consumer-group rebalancing and no offsets committed to Kafka, because the offsets live
/// in Millstream's checkpoints (the next offset of every partition), and a restored job
/// resumes there. The number of partitions is read when the job starts; partitions
/// added later are not read until the job restarts.
///
/// Records are decoded by a function of the [`KafkaMessage`] (key, payload, headers,
/// timestamp); a record it rejects fails the job with an error naming the topic, the
/// partition, the offset and the reason (see [`BadRecordPolicy`]). A record's event
/// timestamp is its Kafka timestamp, or what [`with_timestamp_fn`](Self::with_timestamp_fn)
/// computes. Watermarks are per partition, by default 5 seconds behind the latest
/// timestamp read ([`WatermarkStrategy::bounded_out_of_orderness`]) with no idleness:
/// set [`with_watermark_strategy`](Self::with_watermark_strategy) with
/// [`WatermarkStrategy::with_idleness`] so that a partition without traffic stops holding
/// the watermark back.
///
/// Transactional data is read with `isolation.level=read_committed`. By default the
/// source is unbounded; [`bounded`](Self::bounded) reads each partition until the reader
/// first reaches its end, then finishes.
pub struct KafkaSource<T> {
    settings: Arc<Settings<T>>,
    watermarks: WatermarkStrategy,
}

impl<T> Clone for KafkaSource<T> {
    fn clone(&self) -> Self {
        KafkaSource { settings: self.settings.clone(), watermarks: self.watermarks }
    }
}

impl<T> std::fmt::Debug for KafkaSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("brokers", &self.settings.client.brokers)
            .field("topic", &self.settings.topic)
            .field("start", &self.settings.start)
            .field("bounded", &self.settings.bounded)
            .field("watermarks", &self.watermarks)
            .finish_non_exhaustive()
    }
}

impl KafkaSource<Vec<u8>> {
    /// Reads the payloads as bytes (an empty vector for a tombstone).
    pub fn bytes(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        KafkaSource::new(brokers, topic, |m| Ok(m.payload.unwrap_or_default().to_vec()))
    }
}

impl KafkaSource<String> {
    /// Reads the payloads as UTF-8 text; a payload that is not UTF-8 is a bad record.
    pub fn strings(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        KafkaSource::new(brokers, topic, |m| {
            String::from_utf8(m.payload.unwrap_or_default().to_vec())
                .map_err(|e| format!("payload is not UTF-8: {}", e.utf8_error()))
        })
    }
}

impl<T: serde::de::DeserializeOwned + Send + 'static> KafkaSource<T> {
    /// Reads the payloads as JSON values decoded into `T`.
    pub fn json(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        KafkaSource::new(brokers, topic, |m| {
            serde_json::from_slice(m.payload.unwrap_or_default()).map_err(|e| format!("bad JSON: {e}"))
        })
    }
}

impl<T: Send + 'static> KafkaSource<T> {
    /// Reads `topic` from `brokers` (`host:port[,host:port...]`), decoding every record
    /// with `decode`.
    pub fn new(
        brokers: impl Into<String>,
        topic: impl Into<String>,
        decode: impl Fn(&KafkaMessage<'_>) -> Result<T, String> + Send + Sync + 'static,
    ) -> Self {
        let topic = topic.into();
        KafkaSource {
            settings: Arc::new(Settings {
                client: ClientSettings::new(brokers),
                group_id: format!("millstream-{topic}"),
                topic,
                decode: Arc::new(decode),
                timestamp: None,
                start: StartOffset::Earliest,
                bounded: false,
                policy: BadRecordPolicy::Fail,
                epoch_tags: true,
                open_transaction_timeout: DEFAULT_OPEN_TRANSACTION_TIMEOUT,
            }),
            watermarks: WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(5)),
        }
    }

    fn settings_mut(&mut self) -> &mut Settings<T> {
        Arc::make_mut(&mut self.settings)
    }

    /// Where partitions without a stored position start (default: the earliest record).
    pub fn start_from(mut self, start: StartOffset) -> Self {
        self.settings_mut().start = start;
        self
    }

    /// Reads every partition until the reader first reaches its end (the last stable
    /// offset for transactional data), then finishes: a batch job over a topic. For a
    /// topic no longer written that is everything in it; for one being written, what was
    /// there when the reader caught up.
    pub fn bounded(mut self) -> Self {
        self.settings_mut().bounded = true;
        self
    }

    /// Gives each record the event timestamp `f` computes from it (default: its Kafka
    /// timestamp, or the start of time if it has none).
    pub fn with_timestamp_fn(
        mut self,
        f: impl Fn(&T, &KafkaMessage<'_>) -> Timestamp + Send + Sync + 'static,
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

    /// Sets a librdkafka consumer property (`security.protocol`, `fetch.max.bytes`, ...).
    /// Settings the source relies on can be overridden too, at the caller's risk.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings_mut().client.properties.push((key.into(), value.into()));
        self
    }

    /// The consumer group id the consumers identify with (default `millstream-<topic>`).
    /// Offsets are never committed to it; it only names the clients to the brokers.
    pub fn with_group_id(mut self, group_id: impl Into<String>) -> Self {
        self.settings_mut().group_id = group_id.into();
        self
    }

    /// How long a bounded reader that reached the last stable offset waits for the open
    /// transactions beyond it to end before it fails (default 60 s, Kafka's default
    /// `transaction.timeout.ms`).
    pub fn with_open_transaction_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.settings_mut().open_transaction_timeout = timeout;
        self
    }

    /// How long metadata requests and offset look-ups may take (default 30 s).
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.settings_mut().client.timeout = timeout;
        self
    }

    /// Reads every copy of every epoch that Millstream's exactly-once
    /// [`KafkaSink`](super::KafkaSink) published, as a consumer without Millstream would:
    /// by default, records with its `millstream.epoch` header are held until their epoch is
    /// complete in the partition and each epoch is read once (see
    /// `docs/connectors.md`, "Exactly-once output").
    pub fn without_epoch_deduplication(mut self) -> Self {
        self.settings_mut().epoch_tags = false;
        self
    }

    /// What to do with a record that does not decode (default: fail the job; with
    /// [`BadRecordPolicy::DeadLetter`], it goes to the dead-letter output of
    /// [`Pipeline::read_with_dead_letters`](millstream_runtime::Pipeline::read_with_dead_letters)
    /// with its topic, partition, offset, reason and payload).
    pub fn bad_record_policy(mut self, policy: BadRecordPolicy) -> Self {
        self.settings_mut().policy = policy;
        self
    }
}

/// A partition's position in a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
enum KafkaPosition {
    /// Nothing read yet and started from the earliest record: resume from the earliest.
    Earliest,
    /// The next offset to read.
    Offset(i64),
    /// The next offset to read, and the epochs of exactly-once sinks seen so far (with the
    /// records of incomplete ones).
    OffsetAndEpochs(i64, EpochDeduplicator),
}

impl<T: Send + 'static> Settings<T> {
    fn location(&self, partition: i32) -> String {
        format!("Kafka topic \"{}\" partition {partition}", self.topic)
    }

    fn open_at(
        self: &Arc<Self>,
        partition: usize,
        stored: Option<&KafkaPosition>,
    ) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        let p = i32::try_from(partition).map_err(|_| {
            SourceError::new(self.location(-1), format!("partition {partition} out of range"))
        })?;
        let fail = |m: String| SourceError::new(self.location(p), m);
        let eof = if self.bounded { "true" } else { "false" };
        // A partition read from its earliest record starts at offset 0, and only an offset
        // below the partition's start (removed by retention) resets it to the earliest
        // offset the broker reports. Asking the broker for its earliest offset up front
        // (`Offset::Beginning`) is not safe: tansu 0.6 answers with the first offset of the
        // batch it *stored* first, which under concurrent producers is not the lowest one,
        // and every record below it would be skipped (docs/connectors.md, "tansu"). A
        // stored offset that is out of range is an error, never a silent jump.
        let from_earliest = match stored {
            Some(position) => *position == KafkaPosition::Earliest,
            None => self.start == StartOffset::Earliest,
        };
        let reset = if from_earliest { "earliest" } else { "error" };
        let consumer: BaseConsumer = self
            .client
            .config(&[
                ("group.id", &self.group_id),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("allow.auto.create.topics", "false"),
                ("isolation.level", "read_committed"),
                ("auto.offset.reset", reset),
                ("enable.partition.eof", eof),
            ])
            .create()
            .map_err(|e| {
                fail(format!("cannot create a Kafka consumer for brokers {}: {e}", self.client.brokers))
            })?;
        let watermarks = || {
            consumer.fetch_watermarks(&self.topic, p, self.client.timeout).map_err(|e| {
                fail(format!(
                    "cannot read the offsets from brokers {} within {:?}: {e}",
                    self.client.brokers, self.client.timeout
                ))
            })
        };
        let (next, epochs) = match stored {
            Some(KafkaPosition::Earliest) => (None, EpochDeduplicator::default()),
            Some(KafkaPosition::Offset(o)) => (Some(*o), EpochDeduplicator::default()),
            Some(KafkaPosition::OffsetAndEpochs(o, epochs)) => (Some(*o), epochs.clone()),
            None => match self.start {
                StartOffset::Earliest => (None, EpochDeduplicator::default()),
                // Resolved now, so that a restore reads what arrived after the start.
                StartOffset::Latest => (Some(watermarks()?.1), EpochDeduplicator::default()),
            },
        };
        let start = Offset::Offset(next.unwrap_or(0));
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&self.topic, p, start).map_err(|e| fail(e.to_string()))?;
        consumer.assign(&assignment).map_err(|e| fail(format!("cannot assign the partition: {e}")))?;
        Ok(Box::new(KafkaPartitionReader {
            settings: self.clone(),
            consumer,
            partition: p,
            next,
            epochs,
            finished: false,
            held_back_since: None,
            end_reader: None,
            dead: Vec::new(),
        }))
    }
}

impl<T: Send + 'static> Source<T> for KafkaSource<T> {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        let s = &self.settings;
        s.client
            .partition_count(&s.topic)
            .map_err(|m| SourceError::new(format!("Kafka topic \"{}\"", s.topic), m))
    }

    fn open(&self, partition: usize, _partitions: usize) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        self.settings.open_at(partition, None)
    }

    fn reopen(
        &self,
        partition: usize,
        _partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        let stored: KafkaPosition = bincode::deserialize(position).map_err(|e| {
            SourceError::new(self.settings.location(partition as i32), format!("bad stored position: {e}"))
        })?;
        self.settings.open_at(partition, Some(&stored))
    }

    fn watermarks(&self) -> WatermarkStrategy {
        self.watermarks
    }
}

/// Reads one Kafka partition.
struct KafkaPartitionReader<T> {
    settings: Arc<Settings<T>>,
    consumer: BaseConsumer,
    partition: i32,
    /// The next offset to read; `None` before the first record of a partition read from
    /// its earliest record.
    next: Option<i64>,
    /// Epochs of exactly-once sinks: what was emitted, what is held.
    epochs: EpochDeduplicator,
    finished: bool,
    /// Bounded: since when the reader has been at the last stable offset while the
    /// partition holds records beyond it (a transaction not yet ended).
    held_back_since: Option<std::time::Instant>,
    /// A `read_uncommitted` client for the partition's end offset, made when needed.
    end_reader: Option<BaseConsumer>,
    /// Records routed aside under [`BadRecordPolicy::DeadLetter`], not yet taken.
    dead: Vec<DeadLetter>,
}

impl<T: Send + 'static> Settings<T> {
    /// Decodes one record: `Ok(Some)` to emit, `Ok(None)` when routed to `dead`, `Err`
    /// to fail. The one place where the bad-record policy applies.
    fn decode(
        &self,
        m: &KafkaMessage<'_>,
        dead: &mut Vec<DeadLetter>,
    ) -> Result<Option<(T, Timestamp)>, SourceError> {
        let s = self;
        match (s.decode)(m) {
            Ok(value) => {
                let ts = match &s.timestamp {
                    Some(f) => f(&value, m),
                    None => m.timestamp.map_or(Timestamp::MIN, Timestamp::from_millis),
                };
                Ok(Some((value, ts)))
            }
            Err(reason) => {
                let location = format!("{} offset {}", s.location(m.partition), m.offset);
                let message = format!("cannot decode record: {reason}");
                match s.policy {
                    BadRecordPolicy::Fail => Err(SourceError::new(location, message)),
                    BadRecordPolicy::DeadLetter => {
                        dead.push(DeadLetter::from_bytes(location, message, m.payload.unwrap_or_default()));
                        Ok(None)
                    }
                }
            }
        }
    }
}

impl<T: Send + 'static> KafkaPartitionReader<T> {
    /// Whether a bounded reader at the end of what `read_committed` shows has read the
    /// whole partition: its position is at the partition's end (`read_uncommitted` high
    /// watermark). Otherwise a transaction is open, and the reader waits (see `read`).
    fn at_end(&mut self) -> Result<bool, SourceError> {
        let s = &self.settings;
        let fail = |e: String| SourceError::new(s.location(self.partition), e);
        let position = self
            .consumer
            .position()
            .ok()
            .and_then(|list| list.find_partition(&s.topic, self.partition).map(|e| e.offset()))
            .and_then(|o| o.to_raw())
            .filter(|o| *o >= 0)
            .or(self.next)
            .unwrap_or(0);
        if self.end_reader.is_none() {
            let client =
                s.client.config(&[("isolation.level", "read_uncommitted")]).create().map_err(|e| {
                    fail(format!("cannot create a Kafka client for brokers {}: {e}", s.client.brokers))
                })?;
            self.end_reader = Some(client);
        }
        let Some(end_reader) = &self.end_reader else { return Ok(true) };
        let (_, end) =
            end_reader.fetch_watermarks(&s.topic, self.partition, s.client.timeout).map_err(|e| {
                fail(format!("cannot read the end offset from brokers {}: {e}", s.client.brokers))
            })?;
        if position >= end {
            self.held_back_since = None;
            return Ok(true);
        }
        if self.held_back_since.is_none() {
            tracing::debug!(location = %s.location(self.partition), position, end, "waiting for an open transaction");
            self.held_back_since = Some(std::time::Instant::now());
        }
        Ok(false)
    }
}

impl<T: Send + 'static> SourceReader<T> for KafkaPartitionReader<T> {
    fn read(&mut self, out: &mut Vec<(T, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        if self.finished {
            return Ok(ReadStatus::Finished);
        }
        let mut read = 0;
        while read < max {
            let Some(polled) = self.consumer.poll(std::time::Duration::ZERO) else { break };
            match polled {
                Ok(m) => {
                    let message = KafkaMessage::from_borrowed(&m);
                    let tag = match message.header(EPOCH_HEADER) {
                        Some(value) if self.settings.epoch_tags => {
                            Some(EpochTag::parse(value).map_err(|e| {
                                SourceError::new(
                                    format!(
                                        "{} offset {}",
                                        self.settings.location(m.partition()),
                                        m.offset()
                                    ),
                                    e,
                                )
                            })?)
                        }
                        _ => None,
                    };
                    match tag {
                        None => {
                            if let Some(record) = self.settings.decode(&message, &mut self.dead)? {
                                out.push(record);
                            }
                        }
                        Some(tag) => {
                            let held = HeldRecord::of(&message);
                            match self
                                .epochs
                                .offer(tag, held)
                                .map_err(|e| SourceError::new(self.settings.location(self.partition), e))?
                            {
                                Verdict::Held | Verdict::Duplicate => {}
                                Verdict::Complete(records) => {
                                    for r in &records {
                                        let message = r.message(&self.settings.topic, self.partition);
                                        if let Some(record) =
                                            self.settings.decode(&message, &mut self.dead)?
                                        {
                                            out.push(record);
                                        }
                                    }
                                }
                            }
                        }
                    }
                    self.next = Some(m.offset() + 1);
                    self.held_back_since = None;
                    read += 1;
                }
                Err(KafkaError::PartitionEOF(_)) => {
                    // Only reported when bounded. The end under read_committed is the last
                    // stable offset: where the oldest transaction still open begins. If the
                    // partition holds records beyond it, wait for that transaction to end
                    // rather than finish without them.
                    if !self.at_end()? {
                        break;
                    }
                    // Copies of epochs still incomplete here were aborted (a broker that
                    // hides aborted transactions never shows them).
                    if let Some(offset) = self.epochs.oldest_held() {
                        tracing::debug!(
                            location = %self.settings.location(self.partition), offset,
                            "incomplete epoch copies at the end of the partition are not read"
                        );
                    }
                    self.finished = true;
                    break;
                }
                Err(e) => {
                    let location = self.settings.location(self.partition);
                    let brokers = &self.settings.client.brokers;
                    match e.rdkafka_error_code() {
                        Some(
                            RDKafkaErrorCode::UnknownTopicOrPartition
                            | RDKafkaErrorCode::UnknownTopic
                            | RDKafkaErrorCode::UnknownPartition
                            | RDKafkaErrorCode::OffsetOutOfRange
                            | RDKafkaErrorCode::AutoOffsetReset
                            | RDKafkaErrorCode::TopicAuthorizationFailed
                            | RDKafkaErrorCode::Fatal,
                        ) => {
                            return Err(SourceError::new(
                                self.position(),
                                format!("cannot read from brokers {brokers}: {e}"),
                            ))
                        }
                        // Transient (a broker restarting, a timeout): librdkafka retries.
                        _ => {
                            tracing::warn!(%location, %brokers, error = %e, "Kafka consumer error, retrying");
                            break;
                        }
                    }
                }
            }
        }
        if let (Some(since), 0) = (self.held_back_since, read) {
            let limit = self.settings.open_transaction_timeout;
            if since.elapsed() > limit {
                return Err(SourceError::new(
                    self.position(),
                    format!(
                        "the partition holds records beyond the last stable offset, and no transaction ended \
                         within {limit:?}: a transaction stays open, or the broker does not resolve an aborted \
                         one (read_committed readers cannot see past it)"
                    ),
                ));
            }
        }
        if self.finished {
            Ok(ReadStatus::Finished)
        } else if read > 0 {
            Ok(ReadStatus::Data)
        } else {
            Ok(ReadStatus::Waiting)
        }
    }

    fn position(&self) -> String {
        match self.next {
            None => format!("{} at its earliest offset", self.settings.location(self.partition)),
            Some(o) => format!("{} offset {o}", self.settings.location(self.partition)),
        }
    }

    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        let position = match self.next {
            None => KafkaPosition::Earliest,
            Some(o) if self.epochs.is_empty() => KafkaPosition::Offset(o),
            Some(o) => KafkaPosition::OffsetAndEpochs(o, self.epochs.clone()),
        };
        bincode::serialize(&position).ok()
    }

    fn take_dead_letters(&mut self, out: &mut Vec<DeadLetter>) {
        out.append(&mut self.dead);
    }
}

impl HeldRecord {
    /// A copy of `m`, held until its epoch is complete.
    fn of(m: &KafkaMessage<'_>) -> Self {
        HeldRecord {
            offset: m.offset,
            key: m.key.map(<[u8]>::to_vec),
            payload: m.payload.map(<[u8]>::to_vec),
            timestamp: m.timestamp,
            headers: m.headers.iter().map(|(k, v)| ((*k).to_owned(), v.map(<[u8]>::to_vec))).collect(),
        }
    }

    /// The message as the decoder sees it.
    fn message<'a>(&'a self, topic: &'a str, partition: i32) -> KafkaMessage<'a> {
        KafkaMessage {
            topic,
            partition,
            offset: self.offset,
            key: self.key.as_deref(),
            payload: self.payload.as_deref(),
            timestamp: self.timestamp,
            headers: self.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect(),
        }
    }
}
