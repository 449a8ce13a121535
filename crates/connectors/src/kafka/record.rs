//! [`KafkaRecord`], what a sink's encoder makes of an element, and [`StagedRecord`], the
//! same record with its partition chosen, as the exactly-once sink keeps it until its
//! epoch is published.

use millstream_model::{Timestamp, WindowedValue};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use serde::{Deserialize, Serialize};

/// One record to write to Kafka.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaRecord {
    /// The key (it chooses the partition unless `partition` is set).
    pub key: Option<Vec<u8>>,
    /// The value; `None` writes a tombstone.
    pub payload: Option<Vec<u8>>,
    /// The partition; `None` lets the key choose it (Kafka's murmur2 partitioner, the Java
    /// client's default), or spreads records without a key round-robin.
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

/// A record ready to send: partition chosen, timestamp resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StagedRecord {
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub partition: i32,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Chooses partitions the way Kafka's Java producer does for keyed records, so that the
/// sink knows every record's partition before it sends it (the exactly-once sink counts
/// an epoch's records per partition, see [`super::epoch`]).
#[derive(Debug)]
pub(super) struct Partitioner {
    partitions: i32,
    next_unkeyed: u32,
}

impl Partitioner {
    pub fn new(partitions: usize) -> Result<Self, String> {
        let partitions = i32::try_from(partitions)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("a topic of {partitions} partitions cannot be written"))?;
        Ok(Partitioner { partitions, next_unkeyed: 0 })
    }

    /// Resolves `r`'s partition and timestamp (`element_time` when `r` has none and it is
    /// a real time).
    pub fn stage(&mut self, r: KafkaRecord, element_time: Timestamp) -> Result<StagedRecord, String> {
        let partition = match (r.partition, &r.key) {
            (Some(p), _) if (0..self.partitions).contains(&p) => p,
            (Some(p), _) => {
                return Err(format!(
                    "the record asks for partition {p}, and the topic has {} (0 to {})",
                    self.partitions,
                    self.partitions - 1
                ))
            }
            (None, Some(key)) => millstream_log::partition_for_key(key, self.partitions as u32) as i32,
            (None, None) => {
                let p = (self.next_unkeyed % self.partitions as u32) as i32;
                self.next_unkeyed = self.next_unkeyed.wrapping_add(1);
                p
            }
        };
        let real_time = element_time > Timestamp::MIN && element_time < Timestamp::MAX;
        let timestamp = r.timestamp.or(real_time.then_some(element_time.millis()));
        Ok(StagedRecord { key: r.key, payload: r.payload, partition, timestamp, headers: r.headers })
    }
}

/// Encodes `v` with `encode` and stages it, with an error naming what failed.
pub(super) fn stage<T>(
    encode: &(dyn Fn(&WindowedValue<T>) -> Result<KafkaRecord, String> + Send + Sync),
    partitioner: &mut Partitioner,
    v: &WindowedValue<T>,
) -> Result<StagedRecord, String> {
    let record = encode(v).map_err(|e| format!("cannot encode record: {e}"))?;
    partitioner.stage(record, v.timestamp).map_err(|e| format!("cannot write record: {e}"))
}

impl StagedRecord {
    /// The record to hand to the producer, with `extra` headers after the record's own.
    pub fn to_base_record<'a>(
        &'a self,
        topic: &'a str,
        extra: Option<(&'a str, &'a [u8])>,
    ) -> BaseRecord<'a, Vec<u8>, Vec<u8>> {
        let mut record = BaseRecord::<Vec<u8>, Vec<u8>>::to(topic).partition(self.partition);
        if let Some(k) = &self.key {
            record = record.key(k);
        }
        if let Some(p) = &self.payload {
            record = record.payload(p);
        }
        if let Some(t) = self.timestamp {
            record = record.timestamp(t);
        }
        let count = self.headers.len() + usize::from(extra.is_some());
        if count > 0 {
            let mut headers = OwnedHeaders::new_with_capacity(count);
            for (name, value) in &self.headers {
                headers = headers.insert(Header { key: name, value: Some(value) });
            }
            if let Some((name, value)) = extra {
                headers = headers.insert(Header { key: name, value: Some(value) });
            }
            record = record.headers(headers);
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_records_go_where_kafkas_java_producer_puts_them() {
        let mut p = Partitioner::new(6).unwrap();
        let staged = p.stage(KafkaRecord::keyed("user-42", "x"), Timestamp::from_millis(5)).unwrap();
        assert_eq!(staged.partition, millstream_log::partition_for_key(b"user-42", 6) as i32);
        assert_eq!(staged.timestamp, Some(5));
    }

    #[test]
    fn unkeyed_records_go_round_robin_and_explicit_partitions_are_checked() {
        let mut p = Partitioner::new(3).unwrap();
        let parts: Vec<i32> =
            (0..5).map(|_| p.stage(KafkaRecord::payload("x"), Timestamp::MIN).unwrap().partition).collect();
        assert_eq!(parts, vec![0, 1, 2, 0, 1]);
        let bad = KafkaRecord { partition: Some(3), ..KafkaRecord::payload("x") };
        let err = p.stage(bad, Timestamp::MIN).unwrap_err();
        assert!(err.contains("partition 3") && err.contains("has 3"), "{err}");
        assert_eq!(p.stage(KafkaRecord::payload("x"), Timestamp::MIN).unwrap().timestamp, None);
    }
}
