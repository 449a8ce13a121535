//! The sink's producers: idempotent, optionally transactional, counting the deliveries the
//! brokers acknowledge so that a flush or commit that returns without an acknowledgement
//! for every record sent is caught instead of publishing an epoch with records missing.

use super::ClientSettings;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counts the acknowledged deliveries and remembers the first failed one.
#[derive(Default)]
pub(super) struct Deliveries {
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

/// A producer of the sink, with the number of records sent since the last check.
pub(super) struct CountingProducer {
    pub inner: BaseProducer<Deliveries>,
    sent: u64,
}

impl CountingProducer {
    /// An idempotent producer (`acks=all`); with a transactional id, initialized, which
    /// fences earlier producers with that id and aborts the transaction they left open.
    pub fn new(client: &ClientSettings, transactional_id: Option<&str>) -> Result<Self, String> {
        let mut defaults = vec![("enable.idempotence", "true"), ("acks", "all")];
        if let Some(id) = transactional_id {
            defaults.push(("transactional.id", id));
        }
        let inner: BaseProducer<Deliveries> = client
            .config(&defaults)
            .create_with_context(Deliveries::default())
            .map_err(|e| format!("cannot create a Kafka producer for brokers {}: {e}", client.brokers))?;
        if let Some(id) = transactional_id {
            inner.init_transactions(client.timeout).map_err(|e| {
                format!(
                    "cannot initialize transactions (transactional.id \"{id}\") on brokers {}: {e}",
                    client.brokers
                )
            })?;
        }
        Ok(CountingProducer { inner, sent: 0 })
    }

    /// Hands `record` to the producer, waiting for room in its queue (backpressure).
    pub fn send(&mut self, mut record: BaseRecord<'_, Vec<u8>, Vec<u8>>) -> Result<(), String> {
        loop {
            match self.inner.send(record) {
                Ok(()) => {
                    self.sent += 1;
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    self.inner.poll(std::time::Duration::from_millis(10));
                    record = back;
                }
                Err((e, _)) => return Err(format!("cannot produce: {e}")),
            }
        }
    }

    /// Serves delivery reports without waiting.
    pub fn poll(&self) {
        self.inner.poll(std::time::Duration::ZERO);
    }

    /// Waits until every record sent is acknowledged: an error for a failed delivery, a
    /// timeout, or fewer acknowledgements than records sent since the last check.
    pub fn flush_acknowledged(&mut self, timeout: std::time::Duration) -> Result<u64, String> {
        let flushed = self.inner.flush(timeout);
        let sent = std::mem::take(&mut self.sent);
        let acknowledged = self.inner.context().acknowledged.swap(0, Ordering::Relaxed);
        if let Some(failure) = self.take_failure() {
            return Err(format!("a record was not delivered: {failure}"));
        }
        flushed.map_err(|e| format!("cannot flush: {e}"))?;
        if acknowledged != sent {
            return Err(format!(
                "the brokers acknowledged {acknowledged} of the {sent} records sent, yet the flush succeeded: \
                 records may be missing from the topic"
            ));
        }
        Ok(sent)
    }

    fn take_failure(&self) -> Option<String> {
        self.inner.context().failed.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Forgets the counts (after an aborted transaction).
    pub fn reset_counts(&mut self) {
        self.sent = 0;
        self.inner.context().acknowledged.store(0, Ordering::Relaxed);
        let _ = self.take_failure();
    }
}

/// Whether `e` leaves the transaction needing an abort.
pub(super) fn requires_abort(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(t) if t.txn_requires_abort())
}
