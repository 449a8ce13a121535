//! [`KafkaSink`]: writes a collection to a Kafka topic, exactly once per checkpoint (by
//! default) or at least once.

mod at_least_once;
mod exactly_once;

use super::record::{KafkaRecord, Partitioner};
use super::ClientSettings;
use millstream_model::WindowedValue;
use millstream_runtime::{TransactionalSink, TransactionalWriter};
use std::sync::Arc;

type EncodeFn<T> = dyn Fn(&WindowedValue<T>) -> Result<KafkaRecord, String> + Send + Sync;

/// What a [`KafkaSink`] promises about each record (Flink's `DeliveryGuarantee`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeliveryGuarantee {
    /// Each epoch's records are published once its checkpoint completes, in one Kafka
    /// transaction with a marker in the progress topic; after a failure only the epochs
    /// not yet published are published, from the copy kept in the checkpoint. The default.
    #[default]
    ExactlyOnce,
    /// Records are written as they come with an idempotent producer and flushed at every
    /// checkpoint: nothing is lost, and the epochs since the restored checkpoint are
    /// written again after a failure. Lower latency, no transactions, no progress topic.
    AtLeastOnce,
}

/// Writes a collection to a Kafka topic, as a two-phase-commit sink
/// ([`PCollection::write_exactly_once`](millstream_runtime::PCollection::write_exactly_once)).
///
/// **Exactly-once** (the default) works without resuming Kafka transactions, which
/// librdkafka cannot do after a restart (Flink does it by reflection on the Java client):
///
/// * During a checkpoint epoch, each worker encodes its records and keeps them; when the
///   epoch ends it hands them to the checkpoint (pre-commit), so they are durable with
///   the checkpoint itself.
/// * When the checkpoint completes, the worker publishes the epoch: one transaction
///   (`transactional.id` = `<sink id>-<worker>`) with the records, every one tagged with
///   the header `millstream.epoch` (sink, slot, epoch, copy and count per partition), then
///   a marker in the progress topic, written after every record is acknowledged, then the
///   commit.
/// * After a failure, the restarted workers fence every transactional id of the restored
///   run (`init_transactions` aborts what was open), read the markers (`read_committed`)
///   and publish from the restored checkpoint only the epochs whose markers are missing.
///
/// `read_committed` readers of a broker that hides aborted transactions (Apache Kafka)
/// see each record exactly once; [`KafkaSource`](super::KafkaSource) sees each record
/// exactly once on any broker, because it reads the epoch headers (it keeps one complete
/// copy of each epoch per partition and drops incomplete ones). The cost: output becomes
/// visible when its checkpoint completes, and each epoch's output is held in memory and
/// written into the checkpoint. `docs/connectors.md` has the protocol, the guarantee
/// against each broker, and why.
///
/// **At-least-once** ([`at_least_once`](Self::at_least_once)): an idempotent producer
/// writes records as they come and flushes at every epoch end.
pub struct KafkaSink<T> {
    config: Arc<SinkConfig<T>>,
}

/// Everything a writer needs, shared by the writers of a sink.
struct SinkConfig<T> {
    client: ClientSettings,
    topic: String,
    id: String,
    progress_topic: Option<String>,
    encode: Arc<EncodeFn<T>>,
    guarantee: DeliveryGuarantee,
    /// Whether the writers of this process publish one transaction at a time.
    one_transaction_at_a_time: bool,
}

impl<T> Clone for SinkConfig<T> {
    fn clone(&self) -> Self {
        SinkConfig {
            client: self.client.clone(),
            topic: self.topic.clone(),
            id: self.id.clone(),
            progress_topic: self.progress_topic.clone(),
            encode: self.encode.clone(),
            guarantee: self.guarantee,
            one_transaction_at_a_time: self.one_transaction_at_a_time,
        }
    }
}

impl<T> SinkConfig<T> {
    fn location(&self) -> String {
        format!("Kafka topic \"{}\" on brokers {}", self.topic, self.client.brokers)
    }

    fn transactional_id(&self, worker: usize) -> String {
        format!("{}-{worker}", self.id)
    }

    fn progress_topic(&self) -> String {
        self.progress_topic.clone().unwrap_or_else(|| default_progress_topic(&self.id))
    }
}

/// `millstream-progress-<sink id>`, with characters Kafka does not allow in topic names
/// replaced by `_` and, then, a hash of the id appended so that ids stay distinct.
fn default_progress_topic(id: &str) -> String {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let mut name: String = id.chars().map(|c| if legal(c) { c } else { '_' }).take(180).collect();
    if name != id {
        // FNV-1a: stable across builds and platforms.
        let hash = id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        name.push_str(&format!("-{hash:016x}"));
    }
    format!("millstream-progress-{name}")
}

impl<T> std::fmt::Debug for KafkaSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.config;
        f.debug_struct("KafkaSink")
            .field("brokers", &c.client.brokers)
            .field("topic", &c.topic)
            .field("id", &c.id)
            .field("guarantee", &c.guarantee)
            .field("progress_topic", &c.progress_topic())
            .finish_non_exhaustive()
    }
}

impl<T> KafkaSink<T> {
    /// Writes to `topic` on `brokers` the records `encode` makes of the elements. `id`
    /// names this sink for the brokers: it must be the same when the job restarts and
    /// different from every other sink's (it prefixes the transactional ids and names the
    /// progress topic).
    pub fn new(
        brokers: impl Into<String>,
        topic: impl Into<String>,
        id: impl Into<String>,
        encode: impl Fn(&WindowedValue<T>) -> Result<KafkaRecord, String> + Send + Sync + 'static,
    ) -> Self {
        KafkaSink {
            config: Arc::new(SinkConfig {
                client: ClientSettings::new(brokers),
                topic: topic.into(),
                id: id.into(),
                progress_topic: None,
                encode: Arc::new(encode),
                guarantee: DeliveryGuarantee::ExactlyOnce,
                one_transaction_at_a_time: false,
            }),
        }
    }

    fn config_mut(&mut self) -> &mut SinkConfig<T> {
        Arc::make_mut(&mut self.config)
    }

    /// Sets a librdkafka producer property (`compression.type`, `linger.ms`,
    /// `transaction.timeout.ms`, ...).
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config_mut().client.properties.push((key.into(), value.into()));
        self
    }

    /// How long a flush, a commit, a metadata request or reading the progress topic may
    /// take (default 30 s).
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.config_mut().client.timeout = timeout;
        self
    }

    /// The progress topic of the exactly-once sink (default `millstream-progress-<sink id>`,
    /// created with one partition, compacted, when missing). Several sinks may share one.
    pub fn with_progress_topic(mut self, topic: impl Into<String>) -> Self {
        self.config_mut().progress_topic = Some(topic.into());
        self
    }

    /// Chooses the guarantee (default [`DeliveryGuarantee::ExactlyOnce`]).
    pub fn with_delivery_guarantee(mut self, guarantee: DeliveryGuarantee) -> Self {
        self.config_mut().guarantee = guarantee;
        self
    }

    /// Makes the exactly-once writers of this process (of every such sink) publish one
    /// transaction at a time, so that their transactions never interleave in a partition.
    /// For tansu 0.6, which can leave a committed transaction unresolved for good when
    /// transactions that interleave end in some orders (read_committed readers then stop
    /// at it; `docs/connectors.md` has the reproduction). Costs the parallelism of
    /// publication across workers; Apache Kafka does not need it.
    pub fn one_transaction_at_a_time(mut self) -> Self {
        self.config_mut().one_transaction_at_a_time = true;
        self
    }

    /// [`DeliveryGuarantee::AtLeastOnce`]: for brokers or accounts without transactions,
    /// or when latency matters more than duplicates after a failure.
    pub fn at_least_once(self) -> Self {
        self.with_delivery_guarantee(DeliveryGuarantee::AtLeastOnce)
    }
}

impl<T: Send + Sync + 'static> TransactionalSink<T> for KafkaSink<T> {
    fn open(&self, worker: usize, _workers: usize) -> Result<Box<dyn TransactionalWriter<T>>, String> {
        let c = &self.config;
        // A clear error for a topic that does not exist (it is never created here).
        let partitions = c.client.partition_count(&c.topic)?;
        let partitioner = Partitioner::new(partitions).map_err(|e| format!("{}: {e}", c.location()))?;
        match c.guarantee {
            DeliveryGuarantee::ExactlyOnce => {
                Ok(Box::new(exactly_once::ExactlyOnceWriter::open(c.clone(), worker, partitioner)?))
            }
            DeliveryGuarantee::AtLeastOnce => {
                Ok(Box::new(at_least_once::AtLeastOnceWriter::open(c.clone(), partitioner)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_progress_topics_are_legal_and_distinct() {
        assert_eq!(default_progress_topic("orders-v2"), "millstream-progress-orders-v2");
        let a = default_progress_topic("orders/v2");
        let b = default_progress_topic("orders v2");
        assert!(a.starts_with("millstream-progress-orders_v2-") && a != b, "{a} {b}");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
        assert!(default_progress_topic(&"x".repeat(1000)).len() < 249);
    }
}
