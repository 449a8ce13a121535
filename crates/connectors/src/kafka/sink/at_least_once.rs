//! [`DeliveryGuarantee::AtLeastOnce`](super::DeliveryGuarantee::AtLeastOnce): records go out
//! as they come, through an idempotent producer flushed at every epoch end.

use super::super::producer::CountingProducer;
use super::super::record::{stage, Partitioner};
use super::SinkConfig;
use millstream_model::WindowedValue;
use millstream_runtime::TransactionalWriter;
use std::sync::Arc;

pub(super) struct AtLeastOnceWriter<T> {
    config: Arc<SinkConfig<T>>,
    producer: CountingProducer,
    partitioner: Partitioner,
}

impl<T> AtLeastOnceWriter<T> {
    pub fn open(config: Arc<SinkConfig<T>>, partitioner: Partitioner) -> Result<Self, String> {
        let producer =
            CountingProducer::new(&config.client, None).map_err(|e| format!("{}: {e}", config.location()))?;
        Ok(AtLeastOnceWriter { config, producer, partitioner })
    }
}

impl<T: 'static> TransactionalWriter<T> for AtLeastOnceWriter<T> {
    fn write(&mut self, batch: &[WindowedValue<T>]) -> Result<(), String> {
        let fail = |e: String| format!("{}: {e}", self.config.location());
        for v in batch {
            let record = stage(self.config.encode.as_ref(), &mut self.partitioner, v).map_err(fail)?;
            self.producer.send(record.to_base_record(&self.config.topic, None)).map_err(fail)?;
        }
        self.producer.poll();
        Ok(())
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<Vec<u8>, String> {
        // Durable before the checkpoint completes: nothing is lost.
        let sent = self
            .producer
            .flush_acknowledged(self.config.client.timeout)
            .map_err(|e| format!("{}: epoch {epoch}: {e}", self.config.location()))?;
        tracing::debug!(topic = %self.config.topic, epoch, sent, "flushed");
        Ok(Vec::new())
    }

    fn commit(&mut self, _handles: &[Vec<u8>]) -> Result<(), String> {
        Ok(())
    }

    fn recover(&mut self, _pending: &[Vec<u8>], _restored: u64) -> Result<(), String> {
        // What the failed run wrote stays; the epochs after the restored checkpoint are
        // written again (at-least-once).
        Ok(())
    }
}
