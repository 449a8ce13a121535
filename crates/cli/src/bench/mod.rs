//! `millstream bench nexmark`: runs Nexmark queries and measures them.
//!
//! Throughput mode (the default) runs a query over a bounded input (the generator or a
//! JSON-lines file written by `millstream nexmark generate`) as fast as possible and
//! reports events/s, events/s per worker, the answer's rows and checksum
//! (docs/nexmark.md) and the peak resident memory. With `--rate` the generator is a live,
//! rate-limited source and every output's end-to-end latency is recorded: the time from
//! the moment the source's schedule reached the output's event time to the moment the
//! output reached the sink (for a windowed result, its event time is the end of its
//! window, so the latency includes the watermark's delay). `--engine baseline` times the
//! hand-written single-threaded loop over the same events instead.
//!
//! Timing lives here, never in tests.

pub mod measure;
pub mod report;

use anyhow::{bail, Context};
use measure::{peak_rss_bytes, record, reset_peak_rss, LatencyRecorder};
use millstream::connectors::JsonLinesSource;
use millstream::prelude::*;
use millstream::runtime::{OptimizerOptions, SinkWriter};
use millstream_nexmark::answer::Answer;
use millstream_nexmark::files::Format;
use millstream_nexmark::queries::Query;
use millstream_nexmark::{baseline, Event, GeneratorConfig, NexmarkSource};
use report::{OptimizerReport, RunReport};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What to benchmark.
#[derive(Debug, clap::Args)]
pub struct BenchOptions {
    #[command(subcommand)]
    target: BenchTarget,
}

#[derive(Debug, clap::Subcommand)]
enum BenchTarget {
    /// Nexmark queries (docs/performance.md).
    Nexmark(NexmarkBenchOptions),
}

/// Which engine runs the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// Millstream's pipeline.
    Millstream,
    /// The hand-written single-threaded loop (the practical limit).
    Baseline,
    /// Both, one after the other.
    Both,
}

/// Options of `millstream bench nexmark`.
#[derive(Debug, Clone, clap::Args)]
pub struct NexmarkBenchOptions {
    /// The queries, comma-separated (`q0,q5`), or `all`.
    #[arg(long, default_value = "all")]
    pub query: String,
    /// Events to generate (ignored with --input).
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,
    /// Read the events from this JSON-lines file instead of generating them.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// With --input: the watermark trails the latest event time by this many
    /// milliseconds (as Flink's Nexmark tables: 4 s).
    #[arg(long, default_value_t = 4000)]
    pub watermark_delay_ms: u64,
    /// Streaming latency mode: generate this many events per second (over all workers)
    /// and record each output's end-to-end latency.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Which engine runs the queries.
    #[arg(long, value_enum, default_value_t = Engine::Millstream)]
    pub engine: Engine,
    /// The generator's seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The generator's out-of-order group size (1: in order; events of a group are
    /// shuffled, so disorder is bounded by group size / event rate).
    #[arg(long, default_value_t = 1)]
    pub out_of_order_group: u64,
    /// Switch off producer-consumer fusion.
    #[arg(long)]
    pub no_fusion: bool,
    /// Switch off sibling fusion.
    #[arg(long)]
    pub no_sibling_fusion: bool,
    /// Switch off combiner lifting.
    #[arg(long)]
    pub no_combiner_lifting: bool,
    /// Also write the results as JSON here (an array with one object per run).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs `millstream bench ...`.
pub fn run(options: &BenchOptions) -> anyhow::Result<()> {
    match &options.target {
        BenchTarget::Nexmark(o) => run_nexmark(o),
    }
}

fn run_nexmark(o: &NexmarkBenchOptions) -> anyhow::Result<()> {
    let queries = parse_queries(&o.query)?;
    if o.rate.is_some() && o.input.is_some() {
        bail!("--rate drives the generator; it cannot be combined with --input");
    }
    if o.rate.is_some() && o.engine != Engine::Millstream {
        bail!("latency (--rate) is measured for --engine millstream only");
    }
    let engines: Vec<Engine> = match o.engine {
        Engine::Both => vec![Engine::Millstream, Engine::Baseline],
        e => vec![e],
    };
    let separate = queries.len() * engines.len() > 1 && std::env::var_os(SINGLE_RUN_ENV).is_none();
    let mut runs = Vec::new();
    for query in queries {
        for &engine in &engines {
            let r = if separate {
                // Each run in a fresh process: peak memory is then that run's own, and no
                // run inherits another's heap or warm caches.
                run_in_child(o, query, engine)?
            } else {
                reset_peak_rss();
                match engine {
                    Engine::Baseline => {
                        run_baseline(o, query).with_context(|| format!("baseline {query}"))?
                    }
                    _ => run_millstream(o, query).with_context(|| format!("millstream {query}"))?,
                }
            };
            if separate {
                // Progress, as each run ends; the whole table follows on stdout.
                eprint!("{}", report::table(std::slice::from_ref(&r)));
            }
            runs.push(r);
        }
    }
    println!("{}", report::table(&runs));
    if let Some(path) = &o.json {
        let json = serde_json::to_string_pretty(&runs)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Set in the child processes of a multi-run benchmark (each runs one query on one engine).
const SINGLE_RUN_ENV: &str = "MILLSTREAM_BENCH_SINGLE_RUN";

/// Runs one query on one engine in a child process of this program, with the same
/// options, and reads its report back.
fn run_in_child(o: &NexmarkBenchOptions, query: Query, engine: Engine) -> anyhow::Result<RunReport> {
    let exe = std::env::current_exe().context("finding the millstream executable")?;
    let json =
        std::env::temp_dir().join(format!("millstream-bench-{}-{query}-{engine:?}.json", std::process::id()));
    let mut args: Vec<String> = vec!["bench".into(), "nexmark".into()];
    args.extend(["--query".into(), query.name().into()]);
    args.extend([
        "--engine".into(),
        if engine == Engine::Baseline { "baseline" } else { "millstream" }.into(),
    ]);
    args.extend(["--events".into(), o.events.to_string(), "--workers".into(), o.workers.to_string()]);
    args.extend(["--seed".into(), o.seed.to_string()]);
    args.extend(["--out-of-order-group".into(), o.out_of_order_group.to_string()]);
    args.extend(["--watermark-delay-ms".into(), o.watermark_delay_ms.to_string()]);
    if let Some(input) = &o.input {
        args.extend(["--input".into(), input.display().to_string()]);
    }
    if let Some(rate) = o.rate {
        args.extend(["--rate".into(), rate.to_string()]);
    }
    for (off, flag) in [
        (o.no_fusion, "--no-fusion"),
        (o.no_sibling_fusion, "--no-sibling-fusion"),
        (o.no_combiner_lifting, "--no-combiner-lifting"),
    ] {
        if off {
            args.push(flag.into());
        }
    }
    args.extend(["--json".into(), json.display().to_string()]);
    let status = std::process::Command::new(&exe)
        .args(&args)
        .env(SINGLE_RUN_ENV, "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .status()
        .with_context(|| format!("running {}", exe.display()))?;
    if !status.success() {
        bail!("the {engine:?} run of {query} failed ({status})");
    }
    let text = std::fs::read_to_string(&json).with_context(|| format!("reading {}", json.display()))?;
    let _ = std::fs::remove_file(&json);
    let mut reports: Vec<RunReport> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", json.display()))?;
    reports.pop().with_context(|| format!("{} holds no run", json.display()))
}

fn parse_queries(list: &str) -> anyhow::Result<Vec<Query>> {
    if list.trim() == "all" {
        return Ok(Query::ALL.to_vec());
    }
    list.split(',').map(|q| q.parse::<Query>().map_err(anyhow::Error::from)).collect()
}

fn optimizer(o: &NexmarkBenchOptions) -> OptimizerOptions {
    OptimizerOptions {
        fusion: !o.no_fusion,
        sibling_fusion: !o.no_sibling_fusion,
        combiner_lifting: !o.no_combiner_lifting,
    }
}

fn generator_config(o: &NexmarkBenchOptions) -> GeneratorConfig {
    let config = GeneratorConfig::new().seed(o.seed).out_of_order_group_size(o.out_of_order_group.max(1));
    match o.rate {
        // Live: unbounded until the run's event count; the rate paces it.
        Some(_) => config.num_events(o.events),
        None => config.num_events(o.events),
    }
}

fn run_millstream(o: &NexmarkBenchOptions, query: Query) -> anyhow::Result<RunReport> {
    let p = Pipeline::new();
    let workers = usize::from(o.workers);
    let (events, source, input) = match &o.input {
        Some(path) => {
            let delay = Duration::from_millis(i64::try_from(o.watermark_delay_ms).unwrap_or(i64::MAX));
            let file = JsonLinesSource::<Event>::new(path.display().to_string())
                .with_timestamp_fn(|e: &Event| Timestamp::from_millis(e.date_time()))
                .watermark_strategy(WatermarkStrategy::bounded_out_of_orderness(delay))
                .split_bytes(split_bytes(path, workers));
            (p.read("Events", file), None, path.display().to_string())
        }
        None => {
            let mut source = NexmarkSource::new(generator_config(o))?;
            if let Some(rate) = o.rate {
                source = source.rate_per_second(rate);
            }
            (p.read("Events", source.clone()), Some(source), "generator".to_owned())
        }
    };
    let answer = Arc::new(Mutex::new(Answer::new()));
    let latency = LatencyRecorder::new();
    let live = o.rate.and(source.clone());
    query.row_hashes(&events).write_to(
        "Answer",
        AnswerSink { answer: answer.clone(), latency: live.map(|s| (s, latency.clone())) },
    );
    let started = Instant::now();
    let result = Runner::new().workers(workers).optimizer(optimizer(o)).run(&p)?;
    let seconds = started.elapsed().as_secs_f64();
    let events_read = match &o.input {
        Some(_) => result.counter("Events/records"),
        None => o.events,
    };
    let answer = *answer.lock().unwrap_or_else(|e| e.into_inner());
    Ok(report(
        o,
        query,
        "millstream",
        input,
        events_read,
        workers,
        seconds,
        answer,
        o.rate.map(|_| latency.summary()),
    ))
}

/// The byte ranges an input file is read in: one per worker (at least 1 MiB), so every
/// worker has an equal share and a range's start-up scan (it counts the lines before it,
/// for exact line numbers in errors) happens once per worker.
fn split_bytes(path: &std::path::Path, workers: usize) -> u64 {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    size.div_ceil(workers.max(1) as u64).max(1 << 20)
}

#[allow(clippy::too_many_arguments)]
fn report(
    o: &NexmarkBenchOptions,
    query: Query,
    engine: &str,
    input: String,
    events: u64,
    workers: usize,
    seconds: f64,
    answer: Answer,
    latency: Option<measure::LatencySummary>,
) -> RunReport {
    let eps = if seconds > 0.0 { events as f64 / seconds } else { 0.0 };
    let opt = optimizer(o);
    RunReport {
        query: query.name().to_owned(),
        engine: engine.to_owned(),
        input,
        events,
        workers,
        seconds,
        events_per_second: eps,
        events_per_second_per_core: eps / workers.max(1) as f64,
        rows: answer.rows,
        checksum: answer.checksum,
        checksum_hex: format!("{:016x}", answer.checksum),
        peak_rss_bytes: peak_rss_bytes(),
        optimizer: OptimizerReport {
            fusion: opt.fusion,
            sibling_fusion: opt.sibling_fusion,
            combiner_lifting: opt.combiner_lifting,
        },
        rate: o.rate,
        latency,
    }
}

fn run_baseline(o: &NexmarkBenchOptions, query: Query) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let (answer, events, input) = match &o.input {
        Some(path) => {
            let events = millstream_nexmark::files::read_events(path, Format::JsonLines)
                .with_context(|| format!("reading {}", path.display()))?;
            let n = events.len() as u64;
            (baseline::answer(query, &events), n, path.display().to_string())
        }
        None => {
            let events: Vec<Event> = millstream_nexmark::Generator::new(generator_config(o))?.collect();
            let n = events.len() as u64;
            (baseline::answer(query, &events), n, "generator".to_owned())
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(report(o, query, "baseline", input, events, 1, seconds, answer, None))
}

/// Folds the row hashes of each worker into the shared [`Answer`]; in latency runs, also
/// records each output's latency.
struct AnswerSink {
    answer: Arc<Mutex<Answer>>,
    latency: Option<(NexmarkSource, LatencyRecorder)>,
}

impl Sink<u64> for AnswerSink {
    fn open(&self, _worker: usize, _workers: usize) -> Result<Box<dyn SinkWriter<u64>>, String> {
        Ok(Box::new(AnswerWriter {
            shared: self.answer.clone(),
            local: Answer::new(),
            latency: self.latency.as_ref().map(|(s, r)| (s.clone(), r.clone(), r.local())),
        }))
    }
}

struct AnswerWriter {
    shared: Arc<Mutex<Answer>>,
    local: Answer,
    latency: Option<(NexmarkSource, LatencyRecorder, hdrhistogram::Histogram<u64>)>,
}

impl SinkWriter<u64> for AnswerWriter {
    fn write(&mut self, batch: &[WindowedValue<u64>]) -> Result<(), String> {
        for wv in batch {
            self.local.add_hash(wv.value);
        }
        if let Some((source, _, histogram)) = self.latency.as_mut() {
            let now = Instant::now();
            for wv in batch {
                // Results at the end of time (a global window's final pane) have no
                // schedule instant; they are not latencies of the stream.
                if let Some(due) = source.scheduled_instant(wv.timestamp.millis()) {
                    record(histogram, now.saturating_duration_since(due).as_micros() as u64);
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.merge(std::mem::take(&mut self.local));
        if let Some((_, recorder, histogram)) = &self.latency {
            recorder.merge(histogram);
        }
        Ok(())
    }
}
