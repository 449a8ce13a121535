//! [`KafkaSink`]: writes a collection to a Kafka topic in one transaction per worker and
//! checkpoint epoch.

use super::ClientSettings;
use millstream_model::WindowedValue;
use millstream_runtime::{TransactionalSink, TransactionalWriter};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One record to write to Kafka.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaRecord {
    /// The key (it chooses the partition unless `partition` is set).
    pub key: Option<Vec<u8>>,
    /// The value; `None` writes a tombstone.
    pub payload: Option<Vec<u8>>,
    /// The partition; `None` lets the partitioner choose (by key hash).
    pub partition: Option<i32>,
    /// The timestamp in milliseconds since the epoch; `None` for the element's event
    /// timestamp (when it is a real time: not the start or the end of time).
    pub timestamp: Option<i64>,
    /// Headers: name and value.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl KafkaRecord {
    /// A record with this payload and no key.
    pub fn payload(payload: impl Into<Vec<u8>>) -> Self {
        KafkaRecord { payload: Some(payload.into()), ..KafkaRecord::default() }
    }

    /// A record with this key and payload.
    pub fn keyed(key: impl Into<Vec<u8>>, payload: impl Into<Vec<u8>>) -> Self {
        KafkaRecord { key: Some(key.into()), payload: Some(payload.into()), ..KafkaRecord::default() }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type EncodeFn<T> = dyn Fn(&WindowedValue<T>) -> Result<KafkaRecord, String> + Send + Sync;

/// Writes a collection to a Kafka topic, as a two-phase-commit sink
/// ([`PCollection::write_exactly_once`](millstream_runtime::PCollection::write_exactly_once)).
///
/// Every worker has one transactional producer, `transactional.id` =
/// `<sink id>-<worker>`, and writes the records of each checkpoint epoch in one Kafka
/// transaction, begun at the epoch's first record and **committed when the epoch ends**
/// (the sink's pre-commit), before the sink acknowledges the checkpoint. So:
///
/// * **No loss.** A checkpoint completes only after every worker committed its
///   transactions for the epochs it covers.
/// * **At-least-once, not exactly-once.** After a failure the job restarts from its last
///   complete checkpoint and writes the epochs after it again: the transactions of those
///   epochs that had been committed before the failure are in the topic twice. The
///   transaction open at the failure is aborted when the restarted producer with the same
///   `transactional.id` initializes, so `read_committed` readers never see partial epochs,
///   and epochs are visible atomically.
///
/// Kafka cannot keep a transaction "prepared" across a producer restart with librdkafka:
/// the transaction could only be committed by the producer instance that began it (Flink
/// resumes it with the producer id and epoch through reflection on the Java client, which
/// librdkafka does not offer), so deferring the commit to checkpoint completion would lose
/// an epoch's output when the job fails between the checkpoint's completion and the
/// commit. `docs/connectors.md` has the details.
///
/// Without transactions ([`without_transactions`](Self::without_transactions)) the producer
/// is idempotent and flushes at every epoch end: the same at-least-once guarantee, without
/// atomic epochs.
pub struct KafkaSink<T> {
    client: ClientSettings,
    topic: String,
    id: String,
    encode: Arc<EncodeFn<T>>,
    transactional: bool,
}

impl<T> std::fmt::Debug for KafkaSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("brokers", &self.client.brokers)
            .field("topic", &self.topic)
            .field("id", &self.id)
            .field("transactional", &self.transactional)
            .finish_non_exhaustive()
    }
}

impl<T> KafkaSink<T> {
    /// Writes to `topic` on `brokers` the records `encode` makes of the elements. `id`
    /// names this sink for the brokers: it must be the same when the job restarts and
    /// different from every other sink's (it prefixes the transactional ids).
    pub fn new(
        brokers: impl Into<String>,
        topic: impl Into<String>,
        id: impl Into<String>,
        encode: impl Fn(&WindowedValue<T>) -> Result<KafkaRecord, String> + Send + Sync + 'static,
    ) -> Self {
        KafkaSink {
            client: ClientSettings::new(brokers),
            topic: topic.into(),
            id: id.into(),
            encode: Arc::new(encode),
            transactional: true,
        }
    }

    /// Sets a librdkafka producer property (`compression.type`, `linger.ms`,
    /// `transaction.timeout.ms`, ...).
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.client.properties.push((key.into(), value.into()));
        self
    }

    /// How long a flush, a commit or a metadata request may take (default 30 s).
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.client.timeout = timeout;
        self
    }

    /// Writes with an idempotent producer and no transactions (for brokers or accounts
    /// without transaction support): at-least-once, flushed at every epoch end.
    pub fn without_transactions(mut self) -> Self {
        self.transactional = false;
        self
    }
}

/// Counts the acknowledged deliveries and remembers the first failed one.
#[derive(Default)]
struct Deliveries {
    acknowledged: AtomicU64,
    failed: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, m)) => {
                use rdkafka::Message;
                let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
                if failed.is_none() {
                    *failed = Some(format!("partition {}: {e}", m.partition()));
                }
            }
        }
    }
}

type Producer_ = BaseProducer<Deliveries>;

/// What a pre-commit hands to the checkpoint.
#[derive(Serialize, Deserialize)]
struct Handle {
    /// The transactional id of the producer that wrote (and committed) the epoch, or
    /// empty without transactions.
    transactional_id: String,
    epoch: u64,
    records: u64,
}

struct KafkaWriter<T> {
    client: ClientSettings,
    topic: String,
    encode: Arc<EncodeFn<T>>,
    producer: Producer_,
    transactional_id: Option<String>,
    in_transaction: bool,
    records: u64,
}

fn transaction_error(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(t) if t.txn_requires_abort())
}

impl<T: 'static> TransactionalSink<T> for KafkaSink<T>
where
    T: Send + Sync,
{
    fn open(&self, worker: usize, _workers: usize) -> Result<Box<dyn TransactionalWriter<T>>, String> {
        // A clear error for a topic that does not exist (it is never created here).
        self.client.partition_count(&self.topic)?;
        let transactional_id = self.transactional.then(|| format!("{}-{worker}", self.id));
        let producer = producer(&self.client, transactional_id.as_deref())
            .map_err(|e| format!("Kafka topic \"{}\": {e}", self.topic))?;
        Ok(Box::new(KafkaWriter {
            client: self.client.clone(),
            topic: self.topic.clone(),
            encode: self.encode.clone(),
            producer,
            transactional_id,
            in_transaction: false,
            records: 0,
        }))
    }
}

/// A producer; with a transactional id, initialized, which fences earlier producers with
/// that id and aborts their open transaction.
fn producer(client: &ClientSettings, transactional_id: Option<&str>) -> Result<Producer_, String> {
    let mut defaults = vec![("enable.idempotence", "true"), ("acks", "all")];
    if let Some(id) = transactional_id {
        defaults.push(("transactional.id", id));
    }
    let producer: Producer_ = client
        .config(&defaults)
        .create_with_context(Deliveries::default())
        .map_err(|e| format!("cannot create a Kafka producer for brokers {}: {e}", client.brokers))?;
    if let Some(id) = transactional_id {
        producer.init_transactions(client.timeout).map_err(|e| {
            format!(
                "cannot initialize transactions (transactional.id \"{id}\") on brokers {}: {e}",
                client.brokers
            )
        })?;
    }
    Ok(producer)
}

impl<T: 'static> KafkaWriter<T> {
    fn location(&self) -> String {
        format!("Kafka topic \"{}\" on brokers {}", self.topic, self.client.brokers)
    }

    fn send(&mut self, v: &WindowedValue<T>) -> Result<(), String> {
        let r = (self.encode)(v).map_err(|e| format!("{}: cannot encode record: {e}", self.location()))?;
        let mut record = BaseRecord::<Vec<u8>, Vec<u8>>::to(&self.topic);
        if let Some(k) = &r.key {
            record = record.key(k);
        }
        if let Some(p) = &r.payload {
            record = record.payload(p);
        }
        if let Some(p) = r.partition {
            record = record.partition(p);
        }
        let ts = v.timestamp;
        let real_time = ts > millstream_model::Timestamp::MIN && ts < millstream_model::Timestamp::MAX;
        if let Some(t) = r.timestamp.or(real_time.then_some(ts.millis())) {
            record = record.timestamp(t);
        }
        if !r.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (name, value) in &r.headers {
                headers = headers.insert(Header { key: name, value: Some(value) });
            }
            record = record.headers(headers);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Backpressure: let deliveries complete, then try again.
                    self.producer.poll(std::time::Duration::from_millis(10));
                    record = back;
                }
                Err((e, _)) => return Err(format!("{}: cannot produce: {e}", self.location())),
            }
        }
        self.records += 1;
        Ok(())
    }

    fn delivery_failure(&self) -> Option<String> {
        self.producer.context().failed.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Ends the open transaction (or flushes), so everything written so far is durable
    /// and visible, and checks that the brokers acknowledged every record sent since the
    /// last end: a commit that returns without an acknowledgement for each record would
    /// publish an epoch with records missing, so it fails the job instead.
    fn finish(&mut self, epoch: u64) -> Result<(), String> {
        let in_transaction = std::mem::take(&mut self.in_transaction);
        let result = if in_transaction {
            self.producer.commit_transaction(self.client.timeout)
        } else {
            self.producer.flush(self.client.timeout)
        };
        let acknowledged = self.producer.context().acknowledged.swap(0, Ordering::Relaxed);
        let id = self.transactional_id.as_deref().unwrap_or("");
        if let Some(failure) = self.delivery_failure() {
            if in_transaction {
                let _ = self.producer.abort_transaction(self.client.timeout);
                tracing::warn!(transactional_id = id, epoch, sent = self.records, acknowledged, %failure, "aborted");
            }
            return Err(format!("{}: a record was not delivered: {failure}", self.location()));
        }
        if let Err(e) = result {
            if in_transaction && transaction_error(&e) {
                // The epoch is written again after the restart from the last checkpoint.
                let _ = self.producer.abort_transaction(self.client.timeout);
                tracing::warn!(transactional_id = id, epoch, sent = self.records, acknowledged, error = %e, "aborted");
            }
            return Err(format!("{}: cannot commit the epoch's transaction: {e}", self.location()));
        }
        tracing::debug!(transactional_id = id, epoch, in_transaction, sent = self.records, acknowledged, "committed");
        if acknowledged != self.records {
            return Err(format!(
                "{}: epoch {epoch}: the brokers acknowledged {acknowledged} of the {} records sent, yet the {} \
                 succeeded (transactional.id \"{id}\"): records may be missing from the topic",
                self.location(),
                self.records,
                if in_transaction { "commit" } else { "flush" },
            ));
        }
        Ok(())
    }
}

impl<T: 'static> TransactionalWriter<T> for KafkaWriter<T> {
    fn write(&mut self, batch: &[WindowedValue<T>]) -> Result<(), String> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.transactional_id.is_some() && !self.in_transaction {
            self.producer
                .begin_transaction()
                .map_err(|e| format!("{}: cannot begin a transaction: {e}", self.location()))?;
            self.in_transaction = true;
            tracing::debug!(transactional_id = self.transactional_id.as_deref(), "began a transaction");
        }
        for v in batch {
            self.send(v)?;
        }
        // Serve delivery reports.
        self.producer.poll(std::time::Duration::ZERO);
        Ok(())
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<Vec<u8>, String> {
        self.finish(epoch)?;
        let handle = Handle {
            transactional_id: self.transactional_id.clone().unwrap_or_default(),
            epoch,
            records: std::mem::take(&mut self.records),
        };
        bincode::serialize(&handle).map_err(|e| e.to_string())
    }

    fn commit(&mut self, _handles: &[Vec<u8>]) -> Result<(), String> {
        // Committed at pre-commit already (see the type's documentation).
        Ok(())
    }

    fn recover(&mut self, pending: &[Vec<u8>], _restored: u64) -> Result<(), String> {
        // This worker's own transactional id was initialized when it opened. After a
        // rescale it also takes over workers that no longer exist: initializing their
        // transactional ids aborts a transaction they left open, which would otherwise
        // hold back read_committed readers until the transaction timeout.
        let mut others = BTreeSet::new();
        for bytes in pending {
            let h: Handle =
                bincode::deserialize(bytes).map_err(|e| format!("bad transaction handle: {e}"))?;
            if !h.transactional_id.is_empty() && Some(&h.transactional_id) != self.transactional_id.as_ref() {
                others.insert(h.transactional_id);
            }
        }
        for id in others {
            producer(&self.client, Some(&id)).map_err(|e| format!("{}: {e}", self.location()))?;
        }
        Ok(())
    }
}
