//! The producer: key-based partitioning over a topic's partition writers.

use crate::error::{LogError, Result};
use crate::log::Log;
use crate::partitioner::partition_for_key;
use crate::record::Record;
use crate::staged::{CommitOutcome, StagedBatch};
use crate::topic::TopicConfig;
use crate::writer::{AppendAck, PartitionWriter, RetentionOutcome};

/// The offsets one partition's share of a [`Producer::append`] was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionAck {
    /// The partition.
    pub partition: u32,
    /// The offsets.
    pub ack: AppendAck,
}

/// Appends records to a topic, choosing partitions.
///
/// A record with a key goes to [`partition_for_key`] of its key (Kafka-compatible murmur2).
/// Records without a key in one [`Producer::append`] call all go to the same partition, which
/// moves round-robin from call to call (Kafka's "sticky" partitioning, so a batch of keyless
/// records stays one batch). [`Producer::append_to`] sends to a chosen partition.
///
/// Partition writers are opened (taking their locks) when first written to and held until
/// the producer is dropped.
#[derive(Debug)]
pub struct Producer {
    log: Log,
    topic: String,
    config: TopicConfig,
    writers: Vec<Option<PartitionWriter>>,
    next_keyless: u32,
    scratch: Vec<u32>,
    counts: Vec<usize>,
}

impl Producer {
    pub(crate) fn new(log: Log, topic: &str, config: TopicConfig) -> Self {
        let n = config.partitions as usize;
        Producer {
            log,
            topic: topic.to_string(),
            writers: (0..n).map(|_| None).collect(),
            next_keyless: 0,
            scratch: Vec::new(),
            counts: vec![0; n],
            config,
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The number of partitions.
    pub fn partitions(&self) -> u32 {
        self.config.partitions
    }

    /// The partition a record with `key` goes to, `None` for keyless records (which go where
    /// the round robin points at the time).
    pub fn partition_for(&self, key: Option<&[u8]>) -> Option<u32> {
        key.map(|k| partition_for_key(k, self.config.partitions))
    }

    /// The writer of `partition`, opened (and locked) on first use.
    pub fn writer(&mut self, partition: u32) -> Result<&mut PartitionWriter> {
        let partitions = self.config.partitions;
        let slot = self.writers.get_mut(partition as usize).ok_or_else(|| LogError::PartitionNotFound {
            topic: self.topic.clone(),
            partition,
            partitions,
        })?;
        if slot.is_none() {
            *slot = Some(self.log.writer(&self.topic, partition)?);
        }
        slot.as_mut().ok_or_else(|| LogError::InvalidArgument("writer slot unexpectedly empty".into()))
    }

    /// Appends `records`, partitioned as described on [`Producer`]: one batch per partition
    /// that gets records, in partition order. Returns the offsets per partition.
    ///
    /// Not atomic across partitions: if a partition's append fails, the partitions before it
    /// have their records.
    pub fn append(&mut self, records: &[Record]) -> Result<Vec<PartitionAck>> {
        let partitions = self.config.partitions;
        let keyless = self.next_keyless % partitions;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        self.counts.iter_mut().for_each(|c| *c = 0);
        let mut any_keyless = false;
        for r in records {
            let p = match &r.key {
                Some(k) => partition_for_key(k, partitions),
                None => {
                    any_keyless = true;
                    keyless
                }
            };
            scratch.push(p);
            self.counts[p as usize] += 1;
        }
        if any_keyless {
            self.next_keyless = self.next_keyless.wrapping_add(1);
        }
        let mut acks = Vec::new();
        let mut result = Ok(());
        for partition in 0..partitions {
            if self.counts[partition as usize] == 0 {
                continue;
            }
            let selected =
                records.iter().zip(scratch.iter()).filter(move |(_, &p)| p == partition).map(|(r, _)| r);
            match self.writer(partition).and_then(|w| w.append_iter(selected)) {
                Ok(ack) => acks.push(PartitionAck { partition, ack }),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.scratch = scratch;
        result.map(|()| acks)
    }

    /// Appends `records` to `partition` as one batch.
    pub fn append_to(&mut self, partition: u32, records: &[Record]) -> Result<AppendAck> {
        self.writer(partition)?.append_batch(records)
    }

    /// fsyncs every open partition writer (see [`PartitionWriter::flush`]).
    pub fn flush(&mut self) -> Result<()> {
        for writer in self.writers.iter_mut().flatten() {
            writer.flush()?;
        }
        Ok(())
    }

    /// Applies retention to every partition (opening the writers not yet open).
    pub fn apply_retention(&mut self) -> Result<Vec<RetentionOutcome>> {
        (0..self.config.partitions).map(|p| self.writer(p)?.apply_retention()).collect()
    }

    /// [`PartitionWriter::begin_staged`] on `partition`.
    pub fn begin_staged(&mut self, partition: u32, id: &str) -> Result<StagedBatch> {
        self.writer(partition)?.begin_staged(id)
    }

    /// [`PartitionWriter::persist`] on `partition`.
    pub fn persist(&mut self, partition: u32, batch: &StagedBatch) -> Result<()> {
        self.writer(partition)?.persist(batch)
    }

    /// [`PartitionWriter::commit`] on `partition`.
    pub fn commit(&mut self, partition: u32, id: &str) -> Result<CommitOutcome> {
        self.writer(partition)?.commit(id)
    }

    /// [`PartitionWriter::abort`] on `partition`.
    pub fn abort(&mut self, partition: u32, id: &str) -> Result<()> {
        self.writer(partition)?.abort(id)
    }
}
