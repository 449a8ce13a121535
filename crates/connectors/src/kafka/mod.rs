//! Kafka connectors, on `librdkafka` (the `rdkafka` crate, built from its bundled
//! sources): [`KafkaSource`] reads a topic, [`KafkaSink`] writes one.
//!
//! * **Source.** Each Kafka partition of the topic is one Millstream source partition,
//!   read by one worker with its own consumer, assigned explicitly (no consumer-group
//!   rebalancing, no offsets committed to Kafka). The position of every partition (the
//!   next offset) is kept in Millstream's checkpoints, so a restored job resumes exactly
//!   where its checkpoint was taken. Timestamps are the Kafka record timestamps (or a
//!   function of the record), and every partition has its own watermark. A bounded mode
//!   reads every partition until it first reaches its end, so a batch job or a test
//!   finishes.
//! * **Sink.** By default exactly-once: each checkpoint epoch's records are kept in the
//!   checkpoint and published when it completes, in one Kafka transaction per worker
//!   ending with a marker in a progress topic; after a failure the restarted workers
//!   fence the old transactional ids, read the markers and publish only the epochs Kafka
//!   lacks. Every record carries an epoch tag that lets the source read each epoch once
//!   even from a broker that shows aborted transactions. Or at-least-once. See
//!   [`KafkaSink`] and `docs/connectors.md`.
//!
//! Errors name the brokers, the topic and, for records, the partition and the offset.

mod dedup;
mod epoch;
mod producer;
mod progress;
mod record;
mod sink;
mod source;

pub use epoch::EPOCH_HEADER;
pub use record::KafkaRecord;
pub use sink::{DeliveryGuarantee, KafkaSink};
pub use source::{KafkaMessage, KafkaSource, StartOffset};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use std::time::Duration;

/// How long metadata requests, transaction commits and other broker round trips may take
/// by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Client settings shared by the source and the sink: brokers, extra librdkafka
/// properties, timeout.
#[derive(Clone, Debug)]
struct ClientSettings {
    brokers: String,
    properties: Vec<(String, String)>,
    timeout: Duration,
}

impl ClientSettings {
    fn new(brokers: impl Into<String>) -> Self {
        ClientSettings { brokers: brokers.into(), properties: Vec::new(), timeout: DEFAULT_TIMEOUT }
    }

    /// A client configuration with the brokers, then `defaults`, then the user's
    /// properties (which win).
    fn config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }

    /// The number of partitions of `topic`, or a clear error when it does not exist or
    /// the brokers cannot be reached within the timeout. Never creates the topic.
    fn partition_count(&self, topic: &str) -> Result<usize, String> {
        let consumer: BaseConsumer = self
            .config(&[("allow.auto.create.topics", "false")])
            .create()
            .map_err(|e| format!("cannot create a Kafka client for brokers {}: {e}", self.brokers))?;
        let metadata = consumer.fetch_metadata(Some(topic), self.timeout).map_err(|e| {
            format!(
                "cannot fetch the metadata of Kafka topic \"{topic}\" from brokers {} within {:?}: {e}",
                self.brokers, self.timeout
            )
        })?;
        let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Err(missing_topic(topic, &self.brokers));
        };
        match t.error().map(RDKafkaErrorCode::from) {
            None if !t.partitions().is_empty() => Ok(t.partitions().len()),
            None | Some(RDKafkaErrorCode::UnknownTopicOrPartition) | Some(RDKafkaErrorCode::UnknownTopic) => {
                Err(missing_topic(topic, &self.brokers))
            }
            Some(code) => {
                Err(format!("Kafka topic \"{topic}\" on brokers {}: metadata error: {code}", self.brokers))
            }
        }
    }
}

fn missing_topic(topic: &str, brokers: &str) -> String {
    format!(
        "Kafka topic \"{topic}\" does not exist on brokers {brokers} (Millstream does not create \
         topics automatically: create it first)"
    )
}

/// Creates `topic` with `partitions` partitions (replication factor 1) on `brokers`,
/// waiting at most `timeout`. An existing topic is an error.
pub fn create_topic(brokers: &str, topic: &str, partitions: i32, timeout: Duration) -> Result<(), String> {
    create_topic_with_replication(brokers, topic, partitions, 1, timeout)
}

/// Creates `topic` with `partitions` partitions and the given replication factor.
pub fn create_topic_with_replication(
    brokers: &str,
    topic: &str,
    partitions: i32,
    replication: i32,
    timeout: Duration,
) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| format!("cannot create a Kafka admin client for brokers {brokers}: {e}"))?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    let options = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
    let results = futures::executor::block_on(admin.create_topics([&new], &options))
        .map_err(|e| format!("cannot create Kafka topic \"{topic}\" on brokers {brokers}: {e}"))?;
    for result in results {
        if let Err((name, code)) = result {
            return Err(format!("cannot create Kafka topic \"{name}\" on brokers {brokers}: {code}"));
        }
    }
    Ok(())
}
