//! In-memory inputs: `Create` (Beam's `Create.of` and `Create.timestamped`).

use crate::element::Element;
use crate::graph::Pipeline;
use crate::pcollection::PCollection;
use crate::source::{ReadStatus, Source, SourceError, SourceReader, WatermarkStrategy};
use millstream_model::Timestamp;
use std::sync::Arc;

/// A bounded in-memory source. The watermark stays at the start of time until every
/// element has been read, then goes to the end of time.
struct CreateSource<T> {
    elements: Arc<Vec<(T, Timestamp)>>,
}

struct CreateReader<T> {
    elements: Arc<Vec<(T, Timestamp)>>,
    next: usize,
    step: usize,
}

impl<T: Element> Source<T> for CreateSource<T> {
    fn partitions(&self, workers: usize) -> Result<usize, SourceError> {
        Ok(workers.max(1))
    }
    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        Ok(Box::new(CreateReader { elements: self.elements.clone(), next: partition, step: partitions }))
    }
    fn watermarks(&self) -> WatermarkStrategy {
        WatermarkStrategy::from_source()
    }
    fn reopen(
        &self,
        partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        let next: usize = bincode::deserialize(position)
            .map_err(|e| SourceError::new(format!("partition {partition}"), format!("bad position: {e}")))?;
        if next % partitions.max(1) != partition % partitions.max(1) {
            return Err(SourceError::new(
                format!("partition {partition}"),
                "position belongs to another partition",
            ));
        }
        Ok(Box::new(CreateReader { elements: self.elements.clone(), next, step: partitions }))
    }
}

impl<T: Element> SourceReader<T> for CreateReader<T> {
    fn read(&mut self, out: &mut Vec<(T, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        let mut n = 0;
        while n < max {
            let Some((v, t)) = self.elements.get(self.next) else { return Ok(ReadStatus::Finished) };
            out.push((v.clone(), *t));
            self.next += self.step;
            n += 1;
        }
        Ok(if self.next < self.elements.len() { ReadStatus::Data } else { ReadStatus::Finished })
    }
    fn watermark(&self) -> Option<Timestamp> {
        Some(Timestamp::MIN)
    }
    fn position(&self) -> String {
        format!("element {}", self.next)
    }
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        bincode::serialize(&self.next).ok()
    }
}

impl Pipeline {
    /// A bounded PCollection of `elements`, all at the minimum timestamp in the global
    /// window (Beam's `Create.of`).
    pub fn create<T: Element>(&self, elements: Vec<T>) -> PCollection<T> {
        let elements = elements.into_iter().map(|e| (e, Timestamp::MIN)).collect();
        self.read("Create", CreateSource { elements: Arc::new(elements) })
    }

    /// A bounded PCollection of elements with timestamps (Beam's `Create.timestamped`).
    pub fn create_timestamped<T: Element>(&self, elements: Vec<(T, Timestamp)>) -> PCollection<T> {
        self.read("Create", CreateSource { elements: Arc::new(elements) })
    }
}
