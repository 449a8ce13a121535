//! Chaos test of the exactly-once Kafka sink: a checkpointed job copying a Kafka topic
//! into another through `KafkaSink` is killed with SIGKILL at random moments, again and
//! again (`MILLSTREAM_KAFKA_KILLS`, default 20), restarted each time on a random number
//! of workers (1 to 3, so every restart may rescale), then run to its end. Then:
//!
//! * Millstream's `KafkaSource` reads the output: every record exactly once;
//! * a plain `read_committed` reader sees every record at least once, and exactly once
//!   among the copies of epochs that have a marker in the progress topic. On Apache Kafka,
//!   which hides aborted transactions, those are the only copies it shows; tansu (the CI
//!   broker) also shows aborted ones (docs/connectors.md).
//!
//! The job is this test binary itself, started with `MILLSTREAM_KAFKA_CHAOS_JOB` set (no
//! test harness: `main` is either the driver or the job). `MILLSTREAM_KAFKA_CHAOS_SEED`
//! fixes the random delays. Needs a broker like the other Kafka tests (`common/kafka.rs`).

use millstream_checkpoint::CheckpointStore;
use millstream_connectors::kafka::{KafkaMessage, KafkaRecord, KafkaSink, KafkaSource, EPOCH_HEADER};
use millstream_model::{Duration, WindowedValue};
use millstream_runtime::{CheckpointConfig, Pipeline, Runner};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};

mod common;
use common::kafka::*;

const JOB_ENV: &str = "MILLSTREAM_KAFKA_CHAOS_JOB";
/// Records in the input topic (3 partitions).
const RECORDS: i64 = 20_000;
/// The job's pause per record, so that a run takes seconds and kills land anywhere.
const PAUSE_US: u64 = 400;

fn main() {
    if std::env::var_os(JOB_ENV).is_some() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match run_job(&args) {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("job failed: {e}");
                std::process::exit(1)
            }
        }
    }
    let Some(brokers) = broker() else { return };
    let kills: usize =
        std::env::var("MILLSTREAM_KAFKA_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(20);
    let seed: u64 =
        std::env::var("MILLSTREAM_KAFKA_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
    println!("kafka_chaos: {kills} kills, seed {seed} (MILLSTREAM_KAFKA_CHAOS_SEED)");
    let mut rng = Rng(seed);
    let mut done = 0;
    let mut round = 0;
    while done < kills {
        round += 1;
        done += run_round(&brokers, &mut rng, kills - done, round);
    }
    println!("kafka_chaos: {done} kills in {round} rounds, every round's output exactly once");
    println!("kafka_chaos: 1 passed, 0 failed");
}

/// One round: fresh topics and checkpoints, up to `kills` kills, a run to the end, the
/// checks. Returns the number of kills made.
fn run_round(brokers: &str, rng: &mut Rng, kills: usize, round: usize) -> usize {
    let input = topic(brokers, "chaos-in", 3);
    let output = topic(brokers, "chaos-out", 2);
    produce(brokers, &input, numbered(3, RECORDS, 1));
    let dir = TempDir::new("kafka-chaos");
    let mut made = 0;
    let mut finished = false;
    while made < kills {
        let workers = 1 + rng.below(3) as usize;
        let mut child = spawn_job(brokers, &input, &output, dir.path(), workers);
        // Mostly 0.3 s to 2.8 s (a start with its restore takes about a second); sometimes
        // within the first 40 ms.
        let delay = if rng.below(5) == 0 { rng.below(40) } else { 300 + rng.below(2500) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(delay);
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("wait for the job") {
                assert!(status.success(), "round {round}: the job failed: {status}");
                finished = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if finished {
            break;
        }
        child.kill().expect("SIGKILL the job");
        let _ = child.wait();
        made += 1;
    }
    if !finished {
        let workers = 1 + rng.below(3) as usize;
        let status =
            spawn_job(brokers, &input, &output, dir.path(), workers).wait().expect("run the job to its end");
        assert!(status.success(), "round {round}: the last run failed: {status}");
    }
    check_output(brokers, &output, round);
    let (republished, already) = restored_epochs(dir.path());
    println!(
        "kafka_chaos: round {round}: {made} kills, output exactly once; after restarts {republished} restored \
         epochs were published and {already} found already in Kafka"
    );
    made
}

/// Starts the job; its log goes to `dir/job.log` (appended).
fn spawn_job(brokers: &str, input: &str, output: &str, dir: &Path, workers: usize) -> Child {
    let log =
        std::fs::OpenOptions::new().create(true).append(true).open(dir.join("job.log")).expect("job log");
    Command::new(std::env::current_exe().expect("the test binary"))
        .args([brokers, input, output, &dir.display().to_string(), &workers.to_string()])
        .env(JOB_ENV, "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the job")
}

/// From the jobs' log: how many restored epochs were published after a restart (Kafka did
/// not have them: the kill came between the checkpoint's completion and the publication)
/// and how many were found already published.
fn restored_epochs(dir: &Path) -> (u64, u64) {
    let log = std::fs::read_to_string(dir.join("job.log")).unwrap_or_default();
    let field = |line: &str, name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok())
            .unwrap_or(0)
    };
    log.lines()
        .filter(|l| l.contains("restored epochs"))
        .fold((0, 0), |(r, a), l| (r + field(l, "republished="), a + field(l, "already_published=")))
}

/// The job: numbers from `input` to `output` as `n * 10` keyed by `n`, exactly once, with
/// checkpoints every 50 ms in `dir`.
fn run_job(args: &[String]) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "millstream_connectors=info,millstream_runtime=info",
        ))
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let [brokers, input, output, dir, workers] = args else { return Err(format!("bad arguments {args:?}")) };
    let workers: usize = workers.parse().map_err(|e| format!("workers: {e}"))?;
    let p = Pipeline::new();
    let source = KafkaSource::new(brokers, input, |m: &KafkaMessage<'_>| {
        std::thread::sleep(std::time::Duration::from_micros(PAUSE_US));
        let text = std::str::from_utf8(m.payload.unwrap_or_default()).map_err(|e| e.to_string())?;
        text.parse::<i64>().map_err(|e| e.to_string())
    })
    .bounded();
    p.read("Input", source).write_exactly_once(
        "Output",
        KafkaSink::new(brokers, output, format!("{output}-sink"), |v: &WindowedValue<i64>| {
            Ok(KafkaRecord::keyed(v.value.to_string(), (v.value * 10).to_string()))
        })
        // The test broker, tansu 0.6, can leave interleaved transactions unresolved.
        .one_transaction_at_a_time(),
    );
    let store = CheckpointStore::local(Path::new(dir).join("chk")).map_err(|e| e.to_string())?;
    Runner::new()
        .workers(workers)
        .checkpointing(CheckpointConfig::new(store).interval(Duration::from_millis(50)))
        .run(&p)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Which copy of which epoch a record belongs to: (slot, epoch, origin, attempt).
type Copy = (u32, u64, u64, u64);

fn copy_of_tag(tag: &str) -> Copy {
    let parts: Vec<&str> = tag.splitn(7, '/').collect();
    let hex = |s: &str| u64::from_str_radix(s, 16).expect("hex");
    (parts[1].parse().expect("slot"), parts[2].parse().expect("epoch"), hex(parts[3]), hex(parts[4]))
}

fn check_output(brokers: &str, output: &str, round: usize) {
    let expected: BTreeMap<i64, usize> = (0..RECORDS).map(|i| (i * 10, 1)).collect();
    assert_eq!(counts(read_with_millstream(brokers, output)), expected, "round {round}: Millstream's source");

    // Markers: the copies that were published whole.
    let sink = format!("{output}-sink");
    let progress = format!("millstream-progress-{sink}");
    let marked: BTreeSet<Copy> = read_all(brokers, &progress, 1, 0)
        .into_iter()
        .filter(|(key, _, _)| key.starts_with(&format!("{sink}/")))
        .map(|(key, value, _)| {
            let slot: u32 = key.rsplit('/').next().and_then(|s| s.parse().ok()).expect("slot");
            let parts: Vec<&str> = value.split('/').collect();
            let hex = |s: &str| u64::from_str_radix(s, 16).expect("hex");
            (slot, parts[1].parse().expect("epoch"), hex(parts[2]), hex(parts[3]))
        })
        .collect();
    let raw = read_all(brokers, output, 2, RECORDS as usize);
    let all = counts(raw.iter().map(|(_, v, _)| v.parse::<i64>().expect("number")));
    assert_eq!(
        all.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "round {round}: a read_committed reader sees every record"
    );
    let whole = counts(
        raw.iter()
            .filter(|(_, _, tag)| tag.as_deref().is_some_and(|t| marked.contains(&copy_of_tag(t))))
            .map(|(_, v, _)| v.parse::<i64>().expect("number")),
    );
    assert_eq!(whole, expected, "round {round}: the copies with markers hold every record once");
    let aborted = raw.len() - RECORDS as usize;
    println!(
        "kafka_chaos: round {round}: {} records of aborted copies visible to read_committed readers",
        aborted
    );
}

/// Every record of `topic` (read_committed, from offset 0) as (key, value, epoch tag),
/// once every partition is at its end and at least `at_least` were read.
fn read_all(
    brokers: &str,
    topic: &str,
    partitions: i32,
    at_least: usize,
) -> Vec<(String, String, Option<String>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "millstream-chaos-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p, Offset::Offset(0)).expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
    let mut at_end = BTreeSet::new();
    let mut out = Vec::new();
    let start = std::time::Instant::now();
    while at_end.len() < partitions as usize || out.len() < at_least {
        assert!(start.elapsed() < TIMEOUT, "reading {topic} took too long ({} records)", out.len());
        match consumer.poll(std::time::Duration::from_millis(100)) {
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                let tag =
                    m.headers().and_then(|h| h.iter().find(|h| h.key == EPOCH_HEADER).map(|h| text(h.value)));
                out.push((text(m.key()), text(m.payload()), tag));
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// SplitMix64, for seeded delays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}
