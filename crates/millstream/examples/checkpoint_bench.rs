//! Checkpoint benchmarks: what checkpoints cost, and how fast a job recovers.
//!
//! ```text
//! cargo run --release -p millstream --example checkpoint_bench -- state [keys] [workers]
//! cargo run --release -p millstream --example checkpoint_bench -- throughput [elements] [workers]
//! cargo run --release -p millstream --example checkpoint_bench -- latency [keys] [workers] [rate] [seconds]
//! cargo run --release -p millstream --example checkpoint_bench -- recovery [keys] [workers]
//! ```
//!
//! - `state` (default 1,000,000 keys, 2 workers): a Combine per key holds one sum per key
//!   for `keys` distinct keys; then a trickle of updates to 5 keys keeps the job running
//!   while checkpoints are taken every second. Prints each checkpoint's duration, bytes
//!   written, files written and reused, and total size: the first holds every key (full),
//!   the later ones only the key groups the trickle changed (incremental). Also prints the
//!   longest stall of the source: the longest time between the end of one read of a
//!   partition and the start of the next. Sources share the worker threads with the
//!   grouping and stop when too many records are in flight, so while a snapshot stops
//!   record processing, the sources stop too: this is the pause as seen from outside.
//! - `throughput` (default 40,000,000 elements, 2 workers): keyed fixed-window sums (1,000
//!   keys, 10-second windows) over generated elements, once without checkpointing and once
//!   with a checkpoint every 5 seconds and every second (alternating, three runs each);
//!   prints the rates and the costs.
//! - `latency` (default 1,000,000 keys, 2 workers, 200,000 elements/s, 20 s): elements
//!   paced at `rate` over `keys` keys go through a stateful ParDo (a count per key) that
//!   outputs each element; the end-to-end latency of each (from its scheduled arrival to
//!   the ParDo's output being seen downstream) is recorded after a 3-second warm-up.
//!   Runs without checkpoints and with one every second, alternating, twice each; prints
//!   p50, p99, p99.9 and the maximum.
//! - `recovery` (default 1,000,000 keys, 2 workers): a job holding `keys` keys fails right
//!   after a checkpoint; the time from starting the job again until its source reads
//!   again (state restored, positions rewound) is the recovery time; it also reports the
//!   time to the end of the rerun.
//!
//! Checkpoints go to a directory under the system temp dir (the local disk).

use millstream::checkpoint::CheckpointStore;
use millstream::model::combiners::Sum;
use millstream::model::{Duration, FixedWindows, Timestamp};
use millstream::runtime::stateful::ValueState;
use millstream::runtime::{
    CheckpointConfig, CheckpointStats, Pipeline, PipelineResult, ReadStatus, Runner, Source, SourceError,
    SourceReader, StatefulContext, StatefulDoFn, UserError, WatermarkStrategy, Window,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

/// Elements `0..n` as `(key, 1)` with timestamp `i` ms, split round-robin over
/// partitions; replayable from a position. Element `i`'s key is `key_of(i)`. After
/// `pause_after` elements of a partition it reads `trickle` elements per millisecond
/// (so that checkpoints happen while the state is in place); it fails at `fail_at`.
#[derive(Clone)]
struct Elements {
    n: u64,
    key_of: fn(u64) -> u64,
    pause_after: u64,
    fail_at: Option<u64>,
    /// When the first read happened (per run).
    first_read: Arc<Mutex<Option<Instant>>>,
    read: Arc<AtomicU64>,
    /// The longest time between the end of a read of a partition and the start of its next
    /// one, in microseconds, over all partitions.
    stall_us: Arc<AtomicU64>,
}

struct ElementsReader {
    spec: Elements,
    next: u64,
    step: u64,
    /// When the last read returned.
    last_read: Option<Instant>,
}

impl ElementsReader {
    fn new(spec: &Elements, next: u64, step: u64) -> Self {
        ElementsReader { spec: spec.clone(), next, step, last_read: None }
    }
}

const PARTITIONS: usize = 4;

impl Source<(u64, i64)> for Elements {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        Ok(PARTITIONS)
    }
    fn open(
        &self,
        partition: usize,
        partitions: usize,
    ) -> Result<Box<dyn SourceReader<(u64, i64)>>, SourceError> {
        Ok(Box::new(ElementsReader::new(self, partition as u64, partitions as u64)))
    }
    fn reopen(
        &self,
        _partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<(u64, i64)>>, SourceError> {
        let next =
            u64::from_le_bytes(position.try_into().map_err(|_| SourceError::new("position", "bad length"))?);
        Ok(Box::new(ElementsReader::new(self, next, partitions as u64)))
    }
    fn watermarks(&self) -> WatermarkStrategy {
        WatermarkStrategy::from_source()
    }
}

impl SourceReader<(u64, i64)> for ElementsReader {
    fn read(
        &mut self,
        out: &mut Vec<((u64, i64), Timestamp)>,
        max: usize,
    ) -> Result<ReadStatus, SourceError> {
        let started = Instant::now();
        if let Some(last) = self.last_read {
            let gap = (started - last).as_micros() as u64;
            self.spec.stall_us.fetch_max(gap, Ordering::Relaxed);
        }
        let status = self.read_batch(out, max);
        self.last_read = Some(Instant::now());
        status
    }
    fn watermark(&self) -> Option<Timestamp> {
        // Event time is the element index; partitions interleave, so this trails a little.
        Some(Timestamp((self.next as i64) - 1 - self.step as i64))
    }
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        Some(self.next.to_le_bytes().to_vec())
    }
}

impl ElementsReader {
    fn read_batch(
        &mut self,
        out: &mut Vec<((u64, i64), Timestamp)>,
        max: usize,
    ) -> Result<ReadStatus, SourceError> {
        {
            let mut first = self.spec.first_read.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert_with(Instant::now);
        }
        let mut batch = max as u64;
        if self.next / self.step >= self.spec.pause_after {
            std::thread::sleep(StdDuration::from_millis(1));
            batch = 1;
        }
        for _ in 0..batch {
            if self.next >= self.spec.n {
                return Ok(ReadStatus::Finished);
            }
            if Some(self.next) == self.spec.fail_at {
                return Err(SourceError::new(format!("element {}", self.next), "injected failure"));
            }
            out.push((((self.spec.key_of)(self.next), 1), Timestamp(self.next as i64)));
            self.next += self.step;
        }
        self.spec.read.fetch_add(batch, Ordering::Relaxed);
        Ok(ReadStatus::Data)
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("millstream-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn print_checkpoints(stats: &[CheckpointStats]) {
    println!(
        "{:>4} {:>10} {:>10} {:>12} {:>8} {:>8} {:>12}",
        "id", "duration", "pause", "written", "files", "reused", "total size"
    );
    for s in stats {
        println!(
            "{:>4} {:>7} ms {:>7.1} ms {:>9.1} MB {:>8} {:>8} {:>9.1} MB",
            s.id,
            s.duration.as_millis(),
            s.pause.as_secs_f64() * 1e3,
            s.bytes_written as f64 / 1e6,
            s.files_written,
            s.files_reused,
            s.total_bytes as f64 / 1e6
        );
    }
    let longest = stats.iter().map(|s| s.pause).max().unwrap_or_default();
    println!("longest pause (CheckpointStats::pause): {:.1} ms", longest.as_secs_f64() * 1e3);
}

/// Sums per key in the global window: one accumulator per key.
fn state_job(source: Elements, workers: usize, config: CheckpointConfig) -> Result<PipelineResult, String> {
    let p = Pipeline::new();
    let _ = p.read("Elements", source).combine_per_key(Sum);
    Runner::new().workers(workers).checkpointing(config).run(&p).map_err(|e| e.to_string())
}

fn state(keys: u64, workers: usize) {
    // After the load, about 4 updates per millisecond (one per partition read) of 5 hot
    // keys for about 5 s: incremental checkpoints write only their key groups.
    let trickle = 20_000;
    let n = keys + trickle;
    KEYS.store(keys, Ordering::Relaxed);
    let source = Elements {
        n,
        key_of: key_then_hot,
        pause_after: keys / PARTITIONS as u64,
        fail_at: None,
        first_read: Arc::default(),
        read: Arc::default(),
        stall_us: Arc::default(),
    };
    let dir = temp_dir("state");
    let store = CheckpointStore::local(&dir).expect("checkpoint store");
    let config = CheckpointConfig::new(store).interval(Duration::from_secs(1));
    let stall = source.stall_us.clone();
    let started = Instant::now();
    let result = state_job(source, workers, config).expect("run");
    println!(
        "state: {keys} keys (+{trickle} updates of 5 hot keys), {workers} workers, checkpoint every 1 s; run {:.1} s",
        started.elapsed().as_secs_f64()
    );
    print_checkpoints(&result.checkpoints);
    println!("longest source stall: {:.1} ms", stall.load(Ordering::Relaxed) as f64 / 1e3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The number of distinct keys loaded first (element `i < KEYS` has key `i`); later
/// elements update keys `0..5` only.
static KEYS: AtomicU64 = AtomicU64::new(0);

fn key_then_hot(i: u64) -> u64 {
    let keys = KEYS.load(Ordering::Relaxed);
    if i < keys {
        i
    } else {
        i % 5
    }
}

fn windowed_job(n: u64, workers: usize, config: Option<CheckpointConfig>) -> (f64, PipelineResult) {
    let source = Elements {
        n,
        key_of: |i| i.wrapping_mul(7919) % 1000,
        pause_after: u64::MAX,
        fail_at: None,
        first_read: Arc::default(),
        read: Arc::default(),
        stall_us: Arc::default(),
    };
    let p = Pipeline::new();
    let sums = p
        .read("Elements", source)
        .window_into(Window::into(FixedWindows::of(Duration::from_secs(10))))
        .combine_per_key(Sum)
        .map(|(_, s): (u64, i64)| s)
        .combine_globally(Sum)
        .collect();
    let mut runner = Runner::new().workers(workers);
    if let Some(c) = config {
        runner = runner.checkpointing(c);
    }
    let started = Instant::now();
    let result = runner.run(&p).expect("run");
    let secs = started.elapsed().as_secs_f64();
    let total: i64 = sums.values().iter().sum();
    assert_eq!(total as u64, n, "every element counted once");
    (n as f64 / secs, result)
}

fn throughput(n: u64, workers: usize) {
    // Alternate off, every 5 s and every 1 s, three times each; report the best of each
    // (the least disturbed by the rest of the machine) and every run.
    let dir = temp_dir("throughput");
    let (mut off, mut on5, mut on1) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..3 {
        off.push(windowed_job(n, workers, None).0);
        for (secs, rates) in [(5, &mut on5), (1, &mut on1)] {
            let _ = std::fs::remove_dir_all(&dir);
            let store = CheckpointStore::local(&dir).expect("checkpoint store");
            let config = CheckpointConfig::new(store).interval(Duration::from_secs(secs));
            let (rate, result) = windowed_job(n, workers, Some(config));
            rates.push(rate);
            last = Some(result);
        }
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let list = |v: &[f64]| v.iter().map(|r| format!("{:.2}", r / 1e6)).collect::<Vec<_>>().join(", ");
    println!("throughput: {n} elements, {workers} workers, keyed 10 s fixed-window sums over 1000 keys");
    println!("  checkpointing off: best {:.2} M elements/s (runs: {})", best(&off) / 1e6, list(&off));
    for (what, rates) in [("every 5 s", &on5), ("every 1 s", &on1)] {
        println!(
            "  checkpointing {what}: best {:.2} M elements/s (runs: {}); cost {:.1}%",
            best(rates) / 1e6,
            list(rates),
            (1.0 - best(rates) / best(&off)) * 100.0
        );
    }
    if let Some(result) = last {
        println!("  checkpoints of the last run with checkpointing:");
        print_checkpoints(&result.checkpoints);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Elements paced at a fixed rate: element `i` (of `total`) is due `i / rate` seconds
/// after the run's start and carries that due time (nanoseconds since the start) as its
/// value, with key `i * 2654435761 % keys`.
#[derive(Clone)]
struct Paced {
    keys: u64,
    rate: u64,
    total: u64,
    start: Arc<Mutex<Option<Instant>>>,
}

struct PacedReader {
    spec: Paced,
    next: u64,
    step: u64,
}

impl Paced {
    fn start(&self) -> Instant {
        *self.start.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(Instant::now)
    }
}

impl Source<(u64, u64)> for Paced {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        Ok(PARTITIONS)
    }
    fn open(
        &self,
        partition: usize,
        partitions: usize,
    ) -> Result<Box<dyn SourceReader<(u64, u64)>>, SourceError> {
        Ok(Box::new(PacedReader { spec: self.clone(), next: partition as u64, step: partitions as u64 }))
    }
    fn reopen(
        &self,
        _partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<(u64, u64)>>, SourceError> {
        let next =
            u64::from_le_bytes(position.try_into().map_err(|_| SourceError::new("position", "bad length"))?);
        Ok(Box::new(PacedReader { spec: self.clone(), next, step: partitions as u64 }))
    }
    fn watermarks(&self) -> WatermarkStrategy {
        WatermarkStrategy::from_source()
    }
}

impl SourceReader<(u64, u64)> for PacedReader {
    fn read(
        &mut self,
        out: &mut Vec<((u64, u64), Timestamp)>,
        max: usize,
    ) -> Result<ReadStatus, SourceError> {
        let elapsed = self.spec.start().elapsed().as_nanos() as u64;
        let due = ((elapsed as u128 * self.spec.rate as u128) / 1_000_000_000) as u64;
        let mut read = 0;
        while read < max && self.next < due.min(self.spec.total) {
            let at = (self.next as u128 * 1_000_000_000 / self.spec.rate as u128) as u64;
            out.push((
                (self.next.wrapping_mul(2_654_435_761) % self.spec.keys, at),
                Timestamp((at / 1_000_000) as i64),
            ));
            self.next += self.step;
            read += 1;
        }
        Ok(if self.next >= self.spec.total {
            ReadStatus::Finished
        } else if read > 0 {
            ReadStatus::Data
        } else {
            ReadStatus::Waiting
        })
    }
    fn watermark(&self) -> Option<Timestamp> {
        let at = (self.next as u128 * 1_000_000_000 / self.spec.rate as u128) as u64;
        Some(Timestamp((at / 1_000_000) as i64 - 1))
    }
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        Some(self.next.to_le_bytes().to_vec())
    }
}

/// Counts per key and outputs each element's due time.
#[derive(Clone)]
struct CountPerKey;

impl StatefulDoFn<u64, u64> for CountPerKey {
    type Output = u64;
    type State = ValueState<u64>;

    fn process(
        &mut self,
        _key: &u64,
        due: u64,
        count: &mut ValueState<u64>,
        ctx: &mut StatefulContext<'_, u64>,
    ) -> Result<(), UserError> {
        let n = count.read().copied().unwrap_or(0) + 1;
        count.write(n);
        ctx.output(due);
        Ok(())
    }
}

/// One paced run: the latencies (microseconds) of the elements due after the warm-up.
fn latency_run(
    keys: u64,
    workers: usize,
    rate: u64,
    seconds: u64,
    config: Option<CheckpointConfig>,
) -> (Vec<u64>, PipelineResult) {
    const WARM_UP_NS: u64 = 3_000_000_000;
    let source = Paced { keys, rate, total: rate * seconds, start: Arc::default() };
    let start = source.start.clone();
    let latencies: Arc<Mutex<Vec<u64>>> = Arc::default();
    let seen = latencies.clone();
    let p = Pipeline::new();
    let _ = p.read("Paced", source).stateful_par_do("CountPerKey", CountPerKey).map(move |due: u64| {
        let Some(start) = *start.lock().unwrap_or_else(|e| e.into_inner()) else { return 0u8 };
        if due >= WARM_UP_NS {
            let now = start.elapsed().as_nanos() as u64;
            seen.lock().unwrap_or_else(|e| e.into_inner()).push(now.saturating_sub(due) / 1_000);
        }
        0u8
    });
    let mut runner = Runner::new().workers(workers);
    if let Some(c) = config {
        runner = runner.checkpointing(c);
    }
    let result = runner.run(&p).expect("run");
    let mut got = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    got.sort_unstable();
    (got, result)
}

fn latency(keys: u64, workers: usize, rate: u64, seconds: u64) {
    let dir = temp_dir("latency");
    let percentile = |v: &[u64], q: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1e3
    };
    println!(
        "latency: {keys} keys, {workers} workers, {rate} elements/s for {seconds} s through a stateful ParDo (count per key); \
         latency of the elements after the first 3 s, in ms"
    );
    println!("{:>22} {:>8} {:>8} {:>8} {:>8} {:>10}", "", "p50", "p99", "p99.9", "max", "elements");
    for _ in 0..2 {
        for every in [None, Some(1)] {
            let config = every.map(|secs| {
                let _ = std::fs::remove_dir_all(&dir);
                let store = CheckpointStore::local(&dir).expect("checkpoint store");
                CheckpointConfig::new(store).interval(Duration::from_secs(secs))
            });
            let (v, result) = latency_run(keys, workers, rate, seconds, config);
            let what = match every {
                None => "no checkpoints".to_string(),
                Some(s) => format!("checkpoint every {s} s"),
            };
            println!(
                "{what:>22} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>10}",
                percentile(&v, 0.5),
                percentile(&v, 0.99),
                percentile(&v, 0.999),
                percentile(&v, 1.0),
                v.len()
            );
            if every.is_some() {
                print_checkpoints(&result.checkpoints);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn recovery(keys: u64, workers: usize) {
    KEYS.store(keys, Ordering::Relaxed);
    let n = keys + 3_000;
    let fail_at = keys + 2_000;
    let make = |fail_at: Option<u64>| Elements {
        n,
        key_of: key_then_hot,
        pause_after: keys / PARTITIONS as u64,
        fail_at,
        first_read: Arc::default(),
        read: Arc::default(),
        stall_us: Arc::default(),
    };
    let dir = temp_dir("recovery");
    let store = CheckpointStore::local(&dir).expect("checkpoint store");
    let config = CheckpointConfig::new(store.clone()).interval(Duration::from_millis(200));
    let err = state_job(make(Some(fail_at)), workers, config.clone()).expect_err("the injected failure");
    assert!(err.contains("injected failure"), "{err}");
    let manifest = store.latest_complete().expect("store").expect("a checkpoint before the failure");
    let source = make(None);
    let first_read = source.first_read.clone();
    let read = source.read.clone();
    let started = Instant::now();
    state_job(source, workers, config).expect("the restarted run");
    let total = started.elapsed();
    let resumed = first_read.lock().unwrap_or_else(|e| e.into_inner()).map(|t| t - started);
    println!(
        "recovery: {keys} keys in checkpoint {} ({:.1} MB), {workers} workers",
        manifest.id,
        manifest.total_bytes() as f64 / 1e6
    );
    match resumed {
        Some(t) => println!("  restart -> source reads again (state restored): {} ms", t.as_millis()),
        None => println!("  the restarted source never read"),
    }
    println!(
        "  restart -> end of the rerun: {} ms ({} elements re-read of {n})",
        total.as_millis(),
        read.load(Ordering::Relaxed)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    // RUST_LOG=millstream_runtime=debug shows each snapshot (keys, bytes, encode time).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "state".to_owned());
    let count: Option<u64> = args.next().and_then(|a| a.parse().ok());
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let rate: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    match mode.as_str() {
        "state" => state(count.unwrap_or(1_000_000), workers),
        "throughput" => throughput(count.unwrap_or(40_000_000), workers),
        "recovery" => recovery(count.unwrap_or(1_000_000), workers),
        "latency" => latency(count.unwrap_or(1_000_000), workers, rate.max(1), seconds.max(4)),
        other => {
            eprintln!("unknown mode {other:?}: state, throughput, latency or recovery");
            std::process::exit(2);
        }
    }
}
