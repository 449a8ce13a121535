//! The exactly-once file sink: a job that fails part-way and resumes from its checkpoint
//! publishes every record exactly once.

use millstream_checkpoint::CheckpointStore;
use millstream_connectors::ExactlyOnceFileSink;
use millstream_model::{Duration, Timestamp, WindowedValue};
use millstream_runtime::{
    CheckpointConfig, Pipeline, ReadStatus, Runner, Source, SourceError, SourceReader, WatermarkStrategy,
};
use std::path::Path;

mod common;
use common::published;

#[derive(Clone)]
struct Numbers {
    n: u64,
    fail_at: Option<u64>,
}

struct NumbersReader {
    next: u64,
    step: u64,
    n: u64,
    fail_at: Option<u64>,
}

impl Source<u64> for Numbers {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        Ok(3)
    }
    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        Ok(Box::new(NumbersReader {
            next: partition as u64,
            step: partitions as u64,
            n: self.n,
            fail_at: self.fail_at,
        }))
    }
    fn reopen(
        &self,
        _p: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        let next =
            u64::from_le_bytes(position.try_into().map_err(|_| SourceError::new("position", "bad length"))?);
        Ok(Box::new(NumbersReader { next, step: partitions as u64, n: self.n, fail_at: self.fail_at }))
    }
    fn watermarks(&self) -> WatermarkStrategy {
        WatermarkStrategy::from_source()
    }
}

impl SourceReader<u64> for NumbersReader {
    fn read(&mut self, out: &mut Vec<(u64, Timestamp)>, _max: usize) -> Result<ReadStatus, SourceError> {
        std::thread::sleep(std::time::Duration::from_micros(200));
        for _ in 0..25 {
            if self.next >= self.n {
                return Ok(ReadStatus::Finished);
            }
            if Some(self.next) == self.fail_at {
                return Err(SourceError::new(format!("element {}", self.next), "injected failure"));
            }
            out.push((self.next, Timestamp::MIN));
            self.next += self.step;
        }
        Ok(ReadStatus::Data)
    }
    fn watermark(&self) -> Option<Timestamp> {
        Some(Timestamp::MIN)
    }
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        Some(self.next.to_le_bytes().to_vec())
    }
}

fn run(source: Numbers, out: &Path, checkpoints: &Path, workers: usize) -> Result<(), String> {
    let p = Pipeline::new();
    let numbers = p.read("Numbers", source);
    numbers.write_exactly_once(
        "Lines",
        ExactlyOnceFileSink::new(out, "numbers", |v: &WindowedValue<u64>| v.value.to_string()),
    );
    numbers.map(|x| (x % 7, x)).combine_per_key(millstream_model::combiners::Sum).write_exactly_once(
        "Sums",
        ExactlyOnceFileSink::new(out, "sums", |v: &WindowedValue<(u64, u64)>| {
            format!("{} {}", v.value.0, v.value.1)
        }),
    );
    let store = CheckpointStore::local(checkpoints).map_err(|e| e.to_string())?;
    Runner::new()
        .workers(workers)
        .checkpointing(CheckpointConfig::new(store).interval(Duration::from_millis(15)))
        .run(&p)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn output_is_published_exactly_once_across_a_failure() {
    for workers in [1, 2] {
        let base = std::env::temp_dir().join(format!("millstream-eo-{}-{workers}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (out, chk) = (base.join("out"), base.join("chk"));
        let n = 15_000;
        let err = run(Numbers { n, fail_at: Some(9_001) }, &out, &chk, workers).unwrap_err();
        assert!(err.contains("injected failure"), "{err}");
        let before = published(&out, "numbers").len();
        assert!(before < n as usize, "nothing after the failure point is published ({before})");
        run(Numbers { n, fail_at: None }, &out, &chk, workers).unwrap();

        let mut expected: Vec<String> = (0..n).map(|x| x.to_string()).collect();
        expected.sort();
        assert_eq!(published(&out, "numbers"), expected, "{workers} workers");
        let mut sums: Vec<String> =
            (0..7u64).map(|k| format!("{k} {}", (0..n).filter(|x| x % 7 == k).sum::<u64>())).collect();
        sums.sort();
        assert_eq!(published(&out, "sums"), sums, "{workers} workers");
        let _ = std::fs::remove_dir_all(&base);
    }
}
