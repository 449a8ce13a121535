//! Backpressure: a slow sink slows the source down and memory stays bounded.
//!
//! The records are spread over two workers; the sink is slow on worker 1 only (6 µs per
//! record), fast on worker 0. Worker 0's source could produce its share in a fraction of
//! a second, and half of it queues in front of worker 1's sink: without backpressure
//! resident memory grows by hundreds of megabytes; with it, the sources pause while more
//! than `max_in_flight` records are queued anywhere.

use millstream_model::Timestamp;
use millstream_runtime::{
    Pipeline, ReadStatus, Runner, Sink, SinkWriter, Source, SourceError, SourceReader, WatermarkStrategy,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const RECORDS: u64 = 1_000_000;
const PAYLOAD: usize = 1_000;

/// `RECORDS` records of `PAYLOAD` bytes each, made as fast as they are read.
#[derive(Clone)]
struct Payloads;

struct PayloadReader {
    next: u64,
    step: u64,
}

impl Source<Vec<u8>> for Payloads {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        Ok(2)
    }
    fn open(
        &self,
        partition: usize,
        partitions: usize,
    ) -> Result<Box<dyn SourceReader<Vec<u8>>>, SourceError> {
        Ok(Box::new(PayloadReader { next: partition as u64, step: partitions as u64 }))
    }
    fn watermarks(&self) -> WatermarkStrategy {
        WatermarkStrategy::in_order()
    }
}

impl SourceReader<Vec<u8>> for PayloadReader {
    fn read(&mut self, out: &mut Vec<(Vec<u8>, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        for _ in 0..max {
            if self.next >= RECORDS {
                return Ok(ReadStatus::Finished);
            }
            out.push((vec![(self.next % 251) as u8; PAYLOAD], Timestamp(self.next as i64)));
            self.next += self.step;
        }
        Ok(ReadStatus::Data)
    }
    fn position(&self) -> String {
        format!("record {}", self.next)
    }
}

/// Counts records and bytes; on worker 1 it takes 6 µs per record.
#[derive(Clone)]
struct SlowSink {
    records: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    slow: bool,
}

impl Sink<Vec<u8>> for SlowSink {
    fn open(&self, worker: usize, _workers: usize) -> Result<Box<dyn SinkWriter<Vec<u8>>>, String> {
        Ok(Box::new(SlowSink { slow: worker == 1, ..self.clone() }))
    }
}

impl SinkWriter<Vec<u8>> for SlowSink {
    fn write(&mut self, batch: &[millstream_model::WindowedValue<Vec<u8>>]) -> Result<(), String> {
        if self.slow {
            std::thread::sleep(std::time::Duration::from_micros(6 * batch.len() as u64));
        }
        self.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(batch.iter().map(|wv| wv.value.len() as u64).sum(), Ordering::Relaxed);
        Ok(())
    }
    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// Resident memory of this process in bytes (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
fn a_slow_sink_slows_the_source_and_memory_stays_bounded() {
    let Some(before) = resident_bytes() else {
        eprintln!("skipping: no /proc/self/status on this system");
        return;
    };
    let sink = SlowSink { records: Arc::default(), bytes: Arc::default(), slow: false };
    let p = Pipeline::new();
    p.read("Payloads", Payloads).reshuffle().write_to("SlowSink", sink.clone());

    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(before));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(rss) = resident_bytes() {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    // 20,000 records of 1 KB in flight at most: about 20 MB queued.
    Runner::new().workers(2).max_in_flight(20_000).run(&p).expect("run");
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");

    assert_eq!(sink.records.load(Ordering::Relaxed), RECORDS, "every record reached the sink");
    assert_eq!(sink.bytes.load(Ordering::Relaxed), RECORDS * PAYLOAD as u64);
    let grew = peak.load(Ordering::Relaxed).saturating_sub(before);
    // The bound: 100 MB, a tenth of what went through, five times the in-flight limit's
    // worth of payload (allocator slack, batches being built). Without backpressure this
    // test sees several hundred MB.
    const BOUND: u64 = 100_000_000;
    assert!(grew < BOUND, "resident memory grew by {} MB (bound {} MB)", grew / 1_000_000, BOUND / 1_000_000);
    eprintln!("resident memory grew by {} MB while 1 GB went through a slow sink", grew / 1_000_000);
}
