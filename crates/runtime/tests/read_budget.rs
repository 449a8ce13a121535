//! Sources share the job's in-flight bound: one activation does not read whole batches
//! past it. (Apart from backpressure.rs, whose test measures the process's memory and
//! must run alone in its process.)

use millstream_model::Timestamp;
use millstream_runtime::{
    Pipeline, ReadStatus, Runner, Source, SourceError, SourceReader, WatermarkStrategy,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Numbers `0..n` over four partitions, remembering the most any read was allowed.
#[derive(Clone)]
struct Asked {
    n: u64,
    largest_read: Arc<AtomicU64>,
}

struct AskedReader {
    next: u64,
    step: u64,
    n: u64,
    largest_read: Arc<AtomicU64>,
}

impl Source<u64> for Asked {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        Ok(4)
    }
    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        Ok(Box::new(AskedReader {
            next: partition as u64,
            step: partitions as u64,
            n: self.n,
            largest_read: self.largest_read.clone(),
        }))
    }
    fn watermarks(&self) -> WatermarkStrategy {
        WatermarkStrategy::in_order()
    }
}

impl SourceReader<u64> for AskedReader {
    fn read(&mut self, out: &mut Vec<(u64, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        self.largest_read.fetch_max(max as u64, Ordering::Relaxed);
        for _ in 0..max {
            if self.next >= self.n {
                return Ok(ReadStatus::Finished);
            }
            out.push((self.next, Timestamp(self.next as i64)));
            self.next += self.step;
        }
        Ok(ReadStatus::Data)
    }
    fn position(&self) -> String {
        format!("number {}", self.next)
    }
}

#[test]
fn one_activation_of_a_source_reads_no_more_than_the_bound_allows() {
    // The partitions share the bound of 200: no read may ask for more (without the budget
    // each read asks for a full batch of 1024, and an activation of a worker with two
    // partitions puts ten times the bound in flight).
    let largest_read = Arc::new(AtomicU64::new(0));
    let p = Pipeline::new();
    let numbers = p.read("Numbers", Asked { n: 20_000, largest_read: largest_read.clone() }).collect();
    Runner::new().workers(2).max_in_flight(200).run(&p).expect("run");
    let mut got = numbers.values();
    got.sort_unstable();
    assert_eq!(got, (0..20_000).collect::<Vec<u64>>(), "every number once");
    let largest = largest_read.load(Ordering::Relaxed);
    assert!((1..=200).contains(&largest), "a read asked for {largest} records");
}
