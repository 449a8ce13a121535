//! An exactly-once job, used by the failure tests (`tests/kill_recovery.rs`) and runnable
//! by hand:
//!
//! ```text
//! cargo run -p millstream --bin millstream-exactly-once-job -- \
//!     --input data/ --output out/ --checkpoints chk/ --workers 2 --interval-ms 500
//! ```
//!
//! It reads score records `{"user": "u007", "score": 12, "ts_ms": 4711}` from the JSON-lines
//! files `<input>/*.jsonl` (one source partition per file) with event time `ts_ms` and
//! watermarks that trail each file's newest timestamp by one second, and counts per user
//! and per one-second fixed window the sum and the number of scores, then per window the
//! same over all users. Every result is one line (window start in milliseconds, key,
//! result, pane) in files published by
//! [`ExactlyOnceFileSink`] under `<output>`:
//!
//! ```text
//! user 1000 u007 sum=31 count=4 pane=ON_TIME #0 (on-time #0) first last
//! total 1000 * sum=1234 count=200 pane=ON_TIME #0 (on-time #0) first last
//! ```
//!
//! With `--checkpoints` it takes a checkpoint every `--interval-ms` into that directory
//! and resumes from the newest complete one found there; killed at any moment and
//! restarted, it publishes exactly what a run without failure publishes. Without, it
//! publishes everything when the input ends.
//!
//! `--from-savepoint DIR` starts from the savepoint in `DIR` (taken with `millstream
//! savepoint CHECKPOINTS DIR [--stop]` while the job ran), on any number of workers;
//! `--allow-non-restored-state` drops state of operators the job no longer has.
//!
//! `--throttle-us` sleeps that long before each read of at most `--batch` lines of a file,
//! so that a test can kill the job at many points of its input. Logs (checkpoints
//! committed, restored, skipped as damaged) go to stderr.

use millstream::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::ExitCode;

/// One input record.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Score {
    user: String,
    score: i64,
    ts_ms: i64,
}

/// Sum and count of scores.
#[derive(Clone, Copy, Debug, Default)]
struct SumCount;

impl CombineFn<(i64, u64)> for SumCount {
    type Accumulator = (i64, u64);
    type Output = (i64, u64);
    fn create_accumulator(&self) -> (i64, u64) {
        (0, 0)
    }
    fn add_input(&self, acc: &mut (i64, u64), input: (i64, u64)) {
        acc.0 = acc.0.wrapping_add(input.0);
        acc.1 += input.1;
    }
    fn merge_accumulators(&self, acc: &mut (i64, u64), other: (i64, u64)) {
        self.add_input(acc, other);
    }
    fn extract_output(&self, acc: &(i64, u64)) -> (i64, u64) {
        *acc
    }
}

/// A source that reads another one slowly: it sleeps before each read and reads at most
/// `batch` records at a time. Positions and reopening are the wrapped source's.
struct Throttled<S> {
    inner: S,
    pause: std::time::Duration,
    batch: usize,
}

struct ThrottledReader<T> {
    inner: Box<dyn SourceReader<T>>,
    pause: std::time::Duration,
    batch: usize,
}

impl<T: 'static, S: Source<T>> Source<T> for Throttled<S> {
    fn partitions(&self, workers: usize) -> Result<usize, SourceError> {
        self.inner.partitions(workers)
    }
    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        let inner = self.inner.open(partition, partitions)?;
        Ok(Box::new(ThrottledReader { inner, pause: self.pause, batch: self.batch }))
    }
    fn reopen(
        &self,
        partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        let inner = self.inner.reopen(partition, partitions, position)?;
        Ok(Box::new(ThrottledReader { inner, pause: self.pause, batch: self.batch }))
    }
    fn watermarks(&self) -> WatermarkStrategy {
        self.inner.watermarks()
    }
}

impl<T: 'static> SourceReader<T> for ThrottledReader<T> {
    fn read(&mut self, out: &mut Vec<(T, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        if !self.pause.is_zero() {
            std::thread::sleep(self.pause);
        }
        self.inner.read(out, max.min(self.batch))
    }
    fn watermark(&self) -> Option<Timestamp> {
        self.inner.watermark()
    }
    fn position(&self) -> String {
        self.inner.position()
    }
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        self.inner.checkpoint_position()
    }
}

#[derive(Debug)]
struct Args {
    input: PathBuf,
    output: PathBuf,
    checkpoints: Option<PathBuf>,
    workers: usize,
    key_groups: u32,
    interval_ms: i64,
    retain: usize,
    throttle_us: u64,
    batch: usize,
    from_savepoint: Option<PathBuf>,
    allow_non_restored_state: bool,
}

const USAGE: &str = "usage: millstream-exactly-once-job --input DIR --output DIR [--checkpoints DIR] \
[--workers N] [--key-groups N] [--interval-ms MS] [--retain N] [--throttle-us US] [--batch LINES] \
[--from-savepoint DIR] [--allow-non-restored-state]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        input: PathBuf::new(),
        output: PathBuf::new(),
        checkpoints: None,
        workers: 2,
        key_groups: 32,
        interval_ms: 1000,
        retain: 3,
        throttle_us: 0,
        batch: 1024,
        from_savepoint: None,
        allow_non_restored_state: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        fn number<N: std::str::FromStr>(flag: &str, v: String) -> Result<N, String> {
            v.parse().map_err(|_| format!("{flag}: not a number: {v:?}"))
        }
        match flag.as_str() {
            "--input" => args.input = value()?.into(),
            "--output" => args.output = value()?.into(),
            "--checkpoints" => args.checkpoints = Some(value()?.into()),
            "--workers" => args.workers = number(&flag, value()?)?,
            "--key-groups" => args.key_groups = number(&flag, value()?)?,
            "--interval-ms" => args.interval_ms = number(&flag, value()?)?,
            "--retain" => args.retain = number(&flag, value()?)?,
            "--throttle-us" => args.throttle_us = number(&flag, value()?)?,
            "--batch" => args.batch = number(&flag, value()?)?,
            "--from-savepoint" => args.from_savepoint = Some(value()?.into()),
            "--allow-non-restored-state" => args.allow_non_restored_state = true,
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if args.input.as_os_str().is_empty() || args.output.as_os_str().is_empty() {
        return Err(format!("--input and --output are required\n{USAGE}"));
    }
    if args.workers == 0 || args.batch == 0 || args.interval_ms <= 0 {
        return Err("--workers, --batch and --interval-ms must be positive".to_owned());
    }
    Ok(args)
}

fn run(args: &Args) -> Result<(), String> {
    let pattern = format!("{}/*.jsonl", args.input.display());
    let files = JsonLinesSource::<Score>::new(pattern)
        .with_timestamp_fn(|s: &Score| Timestamp::from_millis(s.ts_ms))
        .watermark_strategy(WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(1)));
    let source = Throttled {
        inner: files,
        pause: std::time::Duration::from_micros(args.throttle_us),
        batch: args.batch,
    };

    let p = Pipeline::new();
    let per_user = p
        .read("ReadScores", source)
        .window_into(Window::into(FixedWindows::of(Duration::from_secs(1))))
        .map(|s: Score| (s.user, (s.score, 1u64)))
        .combine_per_key(SumCount);
    let totals = per_user.map(|(_, sc): (String, (i64, u64))| ("*".to_owned(), sc)).combine_per_key(SumCount);
    let format = |wv: &WindowedValue<(String, (i64, u64))>| {
        let (key, (sum, count)) = &wv.value;
        let kind = if key == "*" { "total" } else { "user" };
        format!("{kind} {} {key} sum={sum} count={count} pane={}", wv.window.start().millis(), wv.pane)
    };
    per_user
        .flatten_with(&[totals])
        .write_exactly_once("PublishScores", ExactlyOnceFileSink::new(&args.output, "scores", format));

    let mut runner = Runner::new().workers(args.workers).key_groups(args.key_groups);
    if let Some(dir) = &args.checkpoints {
        let store = CheckpointStore::local(dir).map_err(|e| format!("checkpoint store: {e}"))?;
        let mut config = CheckpointConfig::new(store)
            .interval(Duration::from_millis(args.interval_ms))
            .retain(args.retain)
            .allow_non_restored_state(args.allow_non_restored_state);
        if let Some(dir) = &args.from_savepoint {
            let savepoint = CheckpointStore::local(dir).map_err(|e| format!("savepoint: {e}"))?;
            config = config.restore_from_savepoint(savepoint);
        }
        runner = runner.checkpointing(config);
    } else if args.from_savepoint.is_some() {
        return Err("--from-savepoint needs --checkpoints".to_owned());
    }
    let started = std::time::Instant::now();
    let result = runner.run(&p).map_err(|e| e.to_string())?;
    for sp in &result.savepoints {
        eprintln!(
            "savepoint at checkpoint {} in {}{}",
            sp.checkpoint,
            sp.location,
            if sp.stopped { ": stopped" } else { "" }
        );
    }
    eprintln!(
        "finished in {} ms, dropped as late: {}",
        started.elapsed().as_millis(),
        result.counter_total("/dropped_late")
    );
    Ok(())
}

fn main() -> ExitCode {
    tracing::subscriber::set_global_default(log::StderrLog).ok();
    match parse_args().and_then(|args| run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The smallest `tracing` subscriber: INFO and above, one line per event on stderr
/// (`WARN target: message key=value ...`), no spans.
mod log {
    use std::fmt::Write as _;
    use std::io::Write as _;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    pub struct StderrLog;

    struct Line(String);

    impl Visit for Line {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let _ = write!(self.0, " {value:?}");
            } else {
                let _ = write!(self.0, " {}={value:?}", field.name());
            }
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "message" {
                let _ = write!(self.0, " {value}");
            } else {
                let _ = write!(self.0, " {}={value}", field.name());
            }
        }
    }

    impl Subscriber for StderrLog {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            *metadata.level() <= Level::INFO
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let m = event.metadata();
            let mut line = Line(format!("{} {}:", m.level(), m.target()));
            event.record(&mut line);
            line.0.push('\n');
            let _ = std::io::stderr().lock().write_all(line.0.as_bytes());
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}
