//! The progress topic of the exactly-once [`KafkaSink`](super::KafkaSink): one marker per
//! published epoch, written last in the epoch's transaction (Materialize keeps its sinks'
//! progress the same way). After a restart the sink reads the markers to learn which
//! epochs of the restored checkpoint are already in Kafka, and publishes only the others.
//!
//! A marker's key is `<sink id>/<slot>` and its value `1/<epoch>/<origin>/<attempt>` (hex
//! for the last two, see [`super::epoch`]): the topic can be compacted, since only the
//! newest marker of a slot matters (a slot publishes its epochs in order).

use super::ClientSettings;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;

/// The newest epoch a slot published, by the markers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Published {
    pub epoch: u64,
    pub origin: u64,
}

pub(super) fn marker_key(sink: &str, slot: u32) -> String {
    format!("{sink}/{slot}")
}

pub(super) fn marker_value(epoch: u64, origin: u64, attempt: u64) -> String {
    format!("1/{epoch}/{origin:016x}/{attempt:016x}")
}

/// Parses a marker of `sink`: `Some((slot, published))`, `None` for another sink's marker.
fn parse_marker(sink: &str, key: &[u8], value: &[u8]) -> Result<Option<(u32, Published)>, String> {
    let bad = || {
        format!(
            "bad progress marker (key {:?}, value {:?})",
            String::from_utf8_lossy(key),
            String::from_utf8_lossy(value)
        )
    };
    let key = std::str::from_utf8(key).map_err(|_| bad())?;
    let Some((marker_sink, slot)) = key.rsplit_once('/') else { return Err(bad()) };
    if marker_sink != sink {
        return Ok(None);
    }
    let slot: u32 = slot.parse().map_err(|_| bad())?;
    let value = std::str::from_utf8(value).map_err(|_| bad())?;
    let parts: Vec<&str> = value.split('/').collect();
    let [version, epoch, origin, _attempt] = parts[..] else { return Err(bad()) };
    if version != "1" {
        return Err(bad());
    }
    let epoch: u64 = epoch.parse().map_err(|_| bad())?;
    let origin = u64::from_str_radix(origin, 16).map_err(|_| bad())?;
    Ok(Some((slot, Published { epoch, origin })))
}

/// Creates the progress topic (one partition, compacted) unless it exists.
pub(super) fn ensure_topic(client: &ClientSettings, topic: &str) -> Result<(), String> {
    if client.partition_count(topic).is_ok() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = client
        .config(&[])
        .create()
        .map_err(|e| format!("cannot create a Kafka admin client for brokers {}: {e}", client.brokers))?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
    let options =
        AdminOptions::new().operation_timeout(Some(client.timeout)).request_timeout(Some(client.timeout));
    let results = futures::executor::block_on(admin.create_topics([&new], &options)).map_err(|e| {
        format!("cannot create the progress topic \"{topic}\" on brokers {}: {e}", client.brokers)
    })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(format!(
                    "cannot create the progress topic \"{name}\" on brokers {}: {code}",
                    client.brokers
                ))
            }
        }
    }
    Ok(())
}

/// The newest published epoch of every slot of `sink`, by the committed markers in
/// `topic`. Call it after every producer that could still write markers of the sink has
/// been fenced: it reads (`read_committed`) up to the end the topic had when it started,
/// waiting while another producer's open transaction holds readers back (at most the
/// client's timeout).
pub(super) fn read_published(
    client: &ClientSettings,
    topic: &str,
    sink: &str,
) -> Result<BTreeMap<u32, Published>, String> {
    let place = || format!("progress topic \"{topic}\" on brokers {}", client.brokers);
    let partitions = client.partition_count(topic)?;
    let consumer: BaseConsumer = client
        .config(&[
            ("group.id", "millstream-progress-reader"),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "true"),
            ("isolation.level", "read_committed"),
            // From offset 0: see the source's `open_at` for why not `Offset::Beginning`.
            ("auto.offset.reset", "earliest"),
        ])
        .create()
        .map_err(|e| format!("{}: cannot create a consumer: {e}", place()))?;
    // The end offsets from a read_uncommitted client: a read_committed one answers the
    // last stable offset, which an open transaction holds back (and tansu answers 0).
    let end_reader: BaseConsumer = client
        .config(&[("isolation.level", "read_uncommitted")])
        .create()
        .map_err(|e| format!("{}: cannot create a consumer: {e}", place()))?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    // An empty partition has no position to compare (librdkafka reports none before the
    // first record): it is caught up from the start.
    let mut caught_up = std::collections::BTreeSet::new();
    for p in 0..partitions as i32 {
        let (_, high) = end_reader
            .fetch_watermarks(topic, p, client.timeout)
            .map_err(|e| format!("{}: cannot read the end offsets: {e}", place()))?;
        ends.insert(p, high);
        if high <= 0 {
            caught_up.insert(p);
        }
        assignment.add_partition_offset(topic, p, Offset::Offset(0)).map_err(|e| e.to_string())?;
    }
    consumer.assign(&assignment).map_err(|e| format!("{}: cannot assign: {e}", place()))?;
    let deadline = std::time::Instant::now() + client.timeout;
    let mut published: BTreeMap<u32, Published> = BTreeMap::new();
    while caught_up.len() < ends.len() {
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "{}: could not read the markers up to the end offsets {ends:?} within {:?} (a transaction \
                 of another producer is open on the topic?)",
                place(),
                client.timeout
            ));
        }
        match consumer.poll(std::time::Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let marker = parse_marker(sink, m.key().unwrap_or_default(), m.payload().unwrap_or_default())
                    .map_err(|e| {
                        format!("{} partition {} offset {}: {e}", place(), m.partition(), m.offset())
                    })?;
                if let Some((slot, p)) = marker {
                    let newest = published.entry(slot).or_insert(p);
                    if p.epoch >= newest.epoch {
                        *newest = p;
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                let position = consumer
                    .position()
                    .ok()
                    .and_then(|list| list.find_partition(topic, p).map(|e| e.offset()));
                if let (Some(Offset::Offset(at)), Some(end)) = (position, ends.get(&p)) {
                    if at >= *end {
                        caught_up.insert(p);
                    }
                }
            }
            Some(Err(e)) => return Err(format!("{}: cannot read: {e}", place())),
            None => {}
        }
    }
    Ok(published)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_parse_for_their_sink_only() {
        let key = marker_key("orders/v2", 3);
        let value = marker_value(41, 0xabc, 7);
        assert_eq!(
            parse_marker("orders/v2", key.as_bytes(), value.as_bytes()).unwrap(),
            Some((3, Published { epoch: 41, origin: 0xabc }))
        );
        assert_eq!(parse_marker("orders", key.as_bytes(), value.as_bytes()).unwrap(), None);
        assert!(parse_marker("orders/v2", key.as_bytes(), b"2/1/0/0").is_err());
        assert!(parse_marker("orders/v2", b"no-slot", value.as_bytes()).is_err());
    }
}
