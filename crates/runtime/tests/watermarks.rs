//! Source watermarks: per partition, bounded out-of-orderness, and idleness.

use millstream_model::combiners::Sum;
use millstream_model::{Duration, FixedWindows, Timestamp, Timing};
use millstream_runtime::{
    DoFn, Pipeline, ProcessContext, ReadStatus, Runner, Source, SourceError, SourceReader, UserError,
    WatermarkStrategy, Window,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Partition 0 emits `events` one per read; partition 1 (if any) emits nothing and waits
/// until `release` is set, then finishes.
struct Scripted {
    events: Vec<(i64, i64)>,
    partitions: usize,
    release: Arc<AtomicBool>,
    strategy: WatermarkStrategy,
}

struct ScriptedReader {
    events: Vec<(i64, i64)>,
    next: usize,
    waiter: bool,
    release: Arc<AtomicBool>,
}

impl Source<(String, i64)> for Scripted {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        Ok(self.partitions)
    }
    fn open(&self, partition: usize, _n: usize) -> Result<Box<dyn SourceReader<(String, i64)>>, SourceError> {
        Ok(Box::new(ScriptedReader {
            events: if partition == 0 { self.events.clone() } else { vec![] },
            next: 0,
            waiter: partition == 1,
            release: self.release.clone(),
        }))
    }
    fn watermarks(&self) -> WatermarkStrategy {
        self.strategy
    }
}

impl SourceReader<(String, i64)> for ScriptedReader {
    fn read(
        &mut self,
        out: &mut Vec<((String, i64), Timestamp)>,
        _max: usize,
    ) -> Result<ReadStatus, SourceError> {
        if self.waiter {
            return Ok(if self.release.load(Ordering::SeqCst) {
                ReadStatus::Finished
            } else {
                ReadStatus::Waiting
            });
        }
        match self.events.get(self.next) {
            Some((v, t)) => {
                out.push((("k".to_string(), *v), Timestamp(*t)));
                self.next += 1;
                Ok(ReadStatus::Data)
            }
            None => {
                // Keep the partition open until the test releases it, so only the
                // watermark (not the end of input) can fire windows.
                Ok(if self.release.load(Ordering::SeqCst) {
                    ReadStatus::Finished
                } else {
                    ReadStatus::Waiting
                })
            }
        }
    }
}

#[derive(Clone)]
struct ReleaseOnTimePane(Arc<AtomicBool>);

impl DoFn<(String, i64)> for ReleaseOnTimePane {
    type Output = (String, i64);
    fn process(
        &mut self,
        kv: (String, i64),
        ctx: &mut ProcessContext<'_, (String, i64)>,
    ) -> Result<(), UserError> {
        if ctx.pane().timing == Timing::OnTime {
            self.0.store(true, Ordering::SeqCst);
        }
        ctx.output(kv);
        Ok(())
    }
}

fn run_scripted(
    events: Vec<(i64, i64)>,
    partitions: usize,
    strategy: WatermarkStrategy,
    workers: usize,
) -> Vec<i64> {
    let release = Arc::new(AtomicBool::new(false));
    let p = Pipeline::new();
    let sums = p
        .read("Scripted", Scripted { events, partitions, release: release.clone(), strategy })
        .window_into(Window::into(FixedWindows::of(Duration::from_secs(10))))
        .combine_per_key(Sum)
        .par_do("Release", ReleaseOnTimePane(release))
        .collect();
    Runner::new().workers(workers).run(&p).unwrap();
    let mut v: Vec<i64> = sums.values().into_iter().map(|(_, s)| s).collect();
    v.sort();
    v
}

#[test]
fn idle_partition_stops_holding_the_watermark() {
    // Partition 1 never sends data; only its idleness lets the watermark pass the first
    // window, whose on-time pane then releases the source. Without idleness this job
    // would wait forever.
    for workers in [1, 2] {
        let strategy = WatermarkStrategy::in_order().with_idleness(Duration::from_millis(50));
        let sums = run_scripted(vec![(1, 1_000), (2, 5_000), (4, 12_000), (8, 25_000)], 2, strategy, workers);
        assert_eq!(sums, vec![3, 4, 8]);
    }
}

#[test]
fn bounded_out_of_orderness_makes_only_data_beyond_the_bound_late() {
    // With a 5 s bound, 4_000 after 12_000 is within the bound (watermark 7_000 < 9_999),
    // but 2_000 after 25_000 (watermark 20_000) is late and dropped.
    let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(5));
    let sums = run_scripted(
        vec![(1, 1_000), (2, 12_000), (4, 4_000), (8, 25_000), (16, 2_000), (32, 31_000)],
        1,
        strategy,
        1,
    );
    assert_eq!(sums, vec![2, 5, 8, 32]);
}
