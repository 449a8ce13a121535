//! [`DeliveryGuarantee::ExactlyOnce`](super::DeliveryGuarantee::ExactlyOnce): fence, abort,
//! redo. An epoch's records are kept in the checkpoint (pre-commit) and published when the
//! checkpoint completes, in one transaction that ends with a marker in the progress topic;
//! a restart fences the old producers, reads the markers and publishes only what is
//! missing. See the type's documentation in `sink.rs` and `docs/connectors.md`.

use super::super::epoch::{EpochTag, EPOCH_HEADER};
use super::super::producer::{requires_abort, CountingProducer};
use super::super::progress::{self, Published};
use super::super::record::{stage, Partitioner, StagedRecord};
use super::SinkConfig;
use millstream_model::WindowedValue;
use millstream_runtime::TransactionalWriter;
use rdkafka::producer::{BaseRecord, Producer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Held while publishing, by sinks set to publish one transaction at a time per process.
static PUBLICATION: Mutex<()> = Mutex::new(());

/// A pre-committed epoch, as the checkpoint keeps it.
#[derive(Serialize, Deserialize)]
struct EpochHandle {
    /// The worker that pre-committed the epoch: its epochs are published in order.
    slot: u32,
    epoch: u64,
    /// The sink instance that pre-committed it (see [`EpochTag`]).
    origin: u64,
    records: Vec<StagedRecord>,
}

pub(super) struct ExactlyOnceWriter<T> {
    config: Arc<SinkConfig<T>>,
    worker: usize,
    producer: CountingProducer,
    partitioner: Partitioner,
    progress_topic: String,
    /// This instance's random number: the origin of the epochs it pre-commits and the
    /// attempt of the copies it publishes.
    instance: u64,
    /// The records of the epoch in progress.
    records: Vec<StagedRecord>,
    /// After a restore: the newest epoch each slot had published, by the markers.
    published: BTreeMap<u32, Published>,
}

impl<T> ExactlyOnceWriter<T> {
    pub fn open(config: Arc<SinkConfig<T>>, worker: usize, partitioner: Partitioner) -> Result<Self, String> {
        let fail = |e: String| format!("{}: {e}", config.location());
        let progress_topic = config.progress_topic();
        progress::ensure_topic(&config.client, &progress_topic).map_err(fail)?;
        // Fences an earlier producer of this worker and aborts its open transaction.
        let producer =
            CountingProducer::new(&config.client, Some(&config.transactional_id(worker))).map_err(fail)?;
        Ok(ExactlyOnceWriter {
            worker,
            producer,
            partitioner,
            progress_topic,
            instance: rand::random(),
            records: Vec::new(),
            published: BTreeMap::new(),
            config,
        })
    }

    fn fail(&self, e: impl std::fmt::Display) -> String {
        format!("{}: {e}", self.config.location())
    }

    /// Publishes `h` in one transaction: its records, each tagged, then (once every record
    /// is acknowledged) its marker, then the commit.
    fn publish(&mut self, h: &EpochHandle) -> Result<(), String> {
        let mut counts: BTreeMap<i32, u32> = BTreeMap::new();
        for r in &h.records {
            *counts.entry(r.partition).or_default() += 1;
        }
        // One tag per partition, not per record.
        let tags: BTreeMap<i32, Vec<u8>> = counts
            .iter()
            .map(|(p, count)| {
                let tag = EpochTag {
                    sink: self.config.id.clone(),
                    slot: h.slot,
                    epoch: h.epoch,
                    origin: h.origin,
                    attempt: self.instance,
                    count: *count,
                };
                (*p, tag.encode())
            })
            .collect();
        let timeout = self.config.client.timeout;
        let _turn = self
            .config
            .one_transaction_at_a_time
            .then(|| PUBLICATION.lock().unwrap_or_else(|e| e.into_inner()));
        self.producer
            .inner
            .begin_transaction()
            .map_err(|e| self.fail(format!("cannot begin a transaction: {e}")))?;
        let result = (|| {
            for r in &h.records {
                let tag = tags.get(&r.partition).map(|t| (EPOCH_HEADER, t.as_slice()));
                self.producer.send(r.to_base_record(&self.config.topic, tag))?;
            }
            // Every record is in the log before the marker says the epoch is published: on a
            // broker that shows aborted transactions, a visible marker still means a whole copy.
            self.producer.flush_acknowledged(timeout)?;
            let key = progress::marker_key(&self.config.id, h.slot).into_bytes();
            let value = progress::marker_value(h.epoch, h.origin, self.instance).into_bytes();
            self.producer
                .send(BaseRecord::<Vec<u8>, Vec<u8>>::to(&self.progress_topic).key(&key).payload(&value))?;
            self.producer.flush_acknowledged(timeout)?;
            self.producer.inner.commit_transaction(timeout).map_err(|e| {
                if requires_abort(&e) {
                    format!("cannot commit the epoch's transaction: {e} (aborted)")
                } else {
                    format!("cannot commit the epoch's transaction: {e}")
                }
            })
        })();
        let id = self.config.transactional_id(self.worker);
        match result {
            Ok(()) => {
                tracing::debug!(
                    transactional_id = %id, slot = h.slot, epoch = h.epoch, records = h.records.len(),
                    "published an epoch"
                );
                self.published.insert(h.slot, Published { epoch: h.epoch, origin: h.origin });
                Ok(())
            }
            Err(e) => {
                let _ = self.producer.inner.abort_transaction(timeout);
                self.producer.reset_counts();
                tracing::warn!(transactional_id = %id, slot = h.slot, epoch = h.epoch, error = %e, "aborted an epoch");
                Err(self.fail(format!("epoch {} of worker {}: {e}", h.epoch, h.slot)))
            }
        }
    }
}

impl<T: 'static> TransactionalWriter<T> for ExactlyOnceWriter<T> {
    fn write(&mut self, batch: &[WindowedValue<T>]) -> Result<(), String> {
        self.records.reserve(batch.len());
        for v in batch {
            let record =
                stage(self.config.encode.as_ref(), &mut self.partitioner, v).map_err(|e| self.fail(e))?;
            self.records.push(record);
        }
        Ok(())
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<Vec<u8>, String> {
        let slot = u32::try_from(self.worker).map_err(|_| self.fail("too many workers"))?;
        let handle =
            EpochHandle { slot, epoch, origin: self.instance, records: std::mem::take(&mut self.records) };
        bincode::serialize(&handle).map_err(|e| self.fail(format!("cannot keep epoch {epoch}: {e}")))
    }

    fn commit(&mut self, handles: &[Vec<u8>]) -> Result<(), String> {
        let (mut republished, mut already) = (0, 0);
        for bytes in handles {
            let h: EpochHandle =
                bincode::deserialize(bytes).map_err(|e| self.fail(format!("bad stored epoch: {e}")))?;
            if h.records.is_empty() {
                continue;
            }
            // An epoch of this instance has never been published. One restored from the
            // checkpoint may have been, before the failure: its marker says so (a slot
            // publishes its epochs in order, so the newest marker covers all older epochs).
            if h.origin != self.instance {
                if let Some(p) = self.published.get(&h.slot).filter(|p| p.epoch >= h.epoch) {
                    if p.epoch == h.epoch && p.origin != h.origin {
                        tracing::warn!(
                            slot = h.slot, epoch = h.epoch,
                            "the progress topic has epoch {} of worker {} from another run; not publishing the restored one",
                            h.epoch, h.slot
                        );
                    }
                    tracing::debug!(slot = h.slot, epoch = h.epoch, "already published");
                    already += 1;
                    continue;
                }
                republished += 1;
            }
            self.publish(&h)?;
        }
        if republished + already > 0 {
            tracing::info!(
                topic = %self.config.topic, worker = self.worker, republished, already_published = already,
                "restored epochs: published those Kafka did not have"
            );
        }
        Ok(())
    }

    fn take_over(&mut self, restored_workers: &[usize]) -> Result<(), String> {
        // Initializing a transactional id fences its producer and aborts the transaction
        // it left open, so that no copy of an epoch can still be committed behind our back
        // and the markers read next are final. This worker's own id was initialized when
        // it opened.
        for &w in restored_workers.iter().filter(|w| **w != self.worker) {
            CountingProducer::new(&self.config.client, Some(&self.config.transactional_id(w)))
                .map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    fn recover(&mut self, pending: &[Vec<u8>], restored: u64) -> Result<(), String> {
        if pending.is_empty() && restored == 0 {
            // A fresh start: nothing restored to publish or to check.
            return Ok(());
        }
        self.published = progress::read_published(&self.config.client, &self.progress_topic, &self.config.id)
            .map_err(|e| self.fail(e))?;
        let ahead: Vec<String> = self
            .published
            .iter()
            .filter(|(_, p)| p.epoch > restored)
            .map(|(slot, p)| format!("worker {slot} up to epoch {}", p.epoch))
            .collect();
        if !ahead.is_empty() {
            // Only when a newer complete checkpoint was damaged and skipped: Kafka cannot
            // take back what it published, so the replayed epochs' output appears again.
            tracing::error!(
                topic = %self.config.topic, restored,
                "Kafka already has output published after checkpoint {restored}, which is being restored \
                 (a newer checkpoint was damaged?): {}; that output will be written again",
                ahead.join(", ")
            );
        }
        Ok(())
    }
}
