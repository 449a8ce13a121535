//! Scaffolding of the Kafka tests: a real Kafka-protocol broker at 127.0.0.1:9092 (or
//! `MILLSTREAM_KAFKA_BROKERS`; `.ci/kafka-broker.sh` starts tansu there), topics of their
//! own, producers that check every delivery, and readers.

use millstream_checkpoint::CheckpointStore;
use millstream_connectors::kafka::{create_topic, KafkaMessage, KafkaSource};
use millstream_model::Duration;
use millstream_runtime::{CheckpointConfig, Pipeline, Runner};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub fn brokers() -> String {
    std::env::var("MILLSTREAM_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// The brokers if one answers; otherwise skips (prints why) or, under CI, fails.
pub fn broker() -> Option<String> {
    // With RUST_LOG (e.g. `millstream_connectors=debug`), the sink's per-transaction log
    // shows in a failed test's output.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
    let brokers = brokers();
    let probe = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create::<BaseConsumer>()
        .map_err(|e| e.to_string())
        .and_then(|c| c.fetch_metadata(None, std::time::Duration::from_secs(5)).map_err(|e| e.to_string()));
    match probe {
        Ok(_) => Some(brokers),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("no Kafka broker at {brokers}: {e} (.ci/kafka-broker.sh starts one)")
        }
        Err(e) => {
            eprintln!("skipping: no Kafka broker at {brokers}: {e} (start one with .ci/kafka-broker.sh)");
            None
        }
    }
}

/// A topic name no other test or run uses.
pub fn unique(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("ms-{name}-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

pub fn topic(brokers: &str, name: &str, partitions: i32) -> String {
    let topic = unique(name);
    create_topic(brokers, &topic, partitions, TIMEOUT).expect("create topic");
    topic
}

/// Counts acknowledged deliveries and keeps failed ones.
#[derive(Default)]
pub struct Acks {
    acknowledged: AtomicU64,
    failed: std::sync::Mutex<Vec<String>>,
}

impl rdkafka::ClientContext for Acks {}

impl rdkafka::producer::ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.acknowledged.fetch_add(1, Ordering::SeqCst);
            }
            Err((e, m)) => self.failed.lock().unwrap().push(format!("partition {}: {e}", m.partition())),
        }
    }
}

/// Hands `record` to `producer`, waiting while its queue is full.
pub fn send_blocking<C: ProducerContext<DeliveryOpaque = ()>>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'_, (), String>,
) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                producer.poll(std::time::Duration::from_millis(10));
                record = back;
            }
            Err((e, _)) => panic!("produce: {e}"),
        }
    }
}

/// Writes `(partition, payload, timestamp ms)` records and waits until all are acknowledged.
pub fn produce(brokers: &str, topic: &str, records: impl IntoIterator<Item = (i32, String, i64)>) {
    let producer: BaseProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .create_with_context(Acks::default())
        .expect("producer");
    let mut sent = 0u64;
    for (partition, payload, ts) in records {
        let record = BaseRecord::<(), String>::to(topic).partition(partition).payload(&payload).timestamp(ts);
        send_blocking(&producer, record);
        sent += 1;
    }
    producer.flush(TIMEOUT).expect("flush");
    let acks = producer.context();
    assert_eq!(*acks.failed.lock().unwrap(), Vec::<String>::new(), "failed deliveries to {topic}");
    assert_eq!(acks.acknowledged.load(Ordering::SeqCst), sent, "acknowledged deliveries to {topic}");
}

/// `values` (sorted) against `0..n` times `step`: how many of each are missing, as runs.
pub fn missing_runs(values: &[i64], n: i64, step: i64) -> String {
    let present: BTreeSet<i64> = values.iter().copied().collect();
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for i in (0..n).filter(|i| !present.contains(&(i * step))) {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == i => *end = i,
            _ => runs.push((i, i)),
        }
    }
    let by_input_partition: Vec<usize> =
        (0..3).map(|p| (0..n).filter(|i| i % 3 == p && !present.contains(&(i * step))).count()).collect();
    let shown: Vec<String> = runs.iter().take(20).map(|(a, b)| format!("{a}..={b}")).collect();
    format!(
        "missing runs of i: {} ({} runs); missing by i % 3: {by_input_partition:?}",
        shown.join(" "),
        runs.len()
    )
}

/// Every payload of `topic` as a `read_committed` consumer sees it, with its partition.
/// Every payload of `topic` a read_committed consumer sees, once it has seen at least
/// `at_least` of them (see [`read_topic_as`]).
pub fn read_topic(brokers: &str, topic: &str, partitions: i32, at_least: usize) -> Vec<(i32, String)> {
    read_topic_as(brokers, topic, partitions, "read_committed", at_least)
}

/// Every payload of `topic` as a consumer with this `isolation.level` sees it: read until
/// every partition is at its end with at least `at_least` records read, or until
/// [`TIMEOUT`] (then what was read, for the caller's assertion to show what is missing).
///
/// A committed transaction becomes visible to read_committed readers only once the
/// transaction coordinator has written its commit markers to the partitions, which
/// happens after the producer's commit returns (in Kafka as in tansu): stopping at the
/// first end of partition would miss the last transactions of a job that just finished.
pub fn read_topic_as(
    brokers: &str,
    topic: &str,
    partitions: i32,
    isolation: &str,
    at_least: usize,
) -> Vec<(i32, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "millstream-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    // From offset 0, not `Offset::Beginning`: tansu answers the earliest offset with the
    // first offset of the batch it stored first (see
    // `a_source_reads_records_below_the_earliest_offset_a_broker_misreports`).
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p, Offset::Offset(0)).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut at_end = BTreeSet::new();
    let mut out = Vec::new();
    let start = std::time::Instant::now();
    while at_end.len() < partitions as usize || out.len() < at_least {
        if start.elapsed() >= TIMEOUT {
            assert!(at_end.len() == partitions as usize, "reading {topic} took too long");
            break;
        }
        match consumer.poll(std::time::Duration::from_millis(100)) {
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                out.push((
                    m.partition(),
                    String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap(),
                ));
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

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(unique(name));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Event time zero of the tests (a Kafka timestamp of 0 would mean "now").
pub const T0: i64 = 1_000_000_000;

/// Partition `p` of `partitions` holds the records `i` with `i % partitions == p`, each
/// at `T0 + i * step_ms`, so the partitions interleave in time but are each in order.
pub fn numbered(partitions: i32, n: i64, step_ms: i64) -> Vec<(i32, String, i64)> {
    (0..n).map(|i| ((i % partitions as i64) as i32, i.to_string(), T0 + i * step_ms)).collect()
}

/// Expected `(window start ms, count)` of `numbered` records in windows of `size_ms`.
pub fn window_counts(n: i64, step_ms: i64, size_ms: i64) -> Vec<(i64, i64)> {
    let mut counts = BTreeMap::new();
    for i in 0..n {
        *counts.entry(T0 + i * step_ms / size_ms * size_ms).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}

/// Whether an exactly-once file sink published anything in `dir`: a checkpoint that
/// covers records read has completed.
pub fn published_any(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.path().is_file())))
}

/// A decoder of numbers that counts its calls and, given the output directory of an
/// exactly-once file sink of the job, fails once, after the sink published something.
pub fn numbers_decoder(
    decoded: Arc<AtomicU64>,
    fail: Option<PathBuf>,
) -> impl Fn(&KafkaMessage<'_>) -> Result<i64, String> + Send + Sync + 'static {
    let fail = fail.map(|published| move || published_any(&published));
    numbers_decoder_failing_once_when(decoded, fail)
}

/// A decoder of numbers that counts its calls and fails once, when `when` holds: checked
/// at every 100th record (it may be slow), and from the 2,000th record on at every record,
/// 5 ms apart, so that the job slows down until `when` holds instead of ending first (the
/// worker thread is never blocked: checkpoints and sinks go on between records).
pub fn numbers_decoder_failing_once_when(
    decoded: Arc<AtomicU64>,
    when: Option<impl Fn() -> bool + Send + Sync + 'static>,
) -> impl Fn(&KafkaMessage<'_>) -> Result<i64, String> + Send + Sync + 'static {
    let failed = AtomicBool::new(false);
    move |m: &KafkaMessage<'_>| {
        let n = decoded.fetch_add(1, Ordering::SeqCst) + 1;
        // Slow enough for checkpoints to complete while the job runs.
        std::thread::sleep(std::time::Duration::from_micros(50));
        if let Some(when) = &when {
            let waiting = n > 2_000;
            if !failed.load(Ordering::SeqCst) && (n.is_multiple_of(100) || waiting) {
                if when() {
                    failed.store(true, Ordering::SeqCst);
                    return Err("injected failure".to_owned());
                }
                if waiting {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
        let text = std::str::from_utf8(m.payload.unwrap_or_default()).map_err(|e| e.to_string())?;
        text.parse::<i64>().map_err(|e| e.to_string())
    }
}

/// Whether `topic` has records in any of its `partitions` (read uncommitted).
pub fn has_records(consumer: &BaseConsumer, topic: &str, partitions: i32) -> bool {
    (0..partitions).any(|p| consumer.fetch_watermarks(topic, p, TIMEOUT).is_ok_and(|(_, high)| high > 0))
}

pub fn checkpointing(checkpoints: &Path) -> Result<Runner, String> {
    checkpointing_on(checkpoints, 2)
}

pub fn checkpointing_on(checkpoints: &Path, workers: usize) -> Result<Runner, String> {
    let store = CheckpointStore::local(checkpoints).map_err(|e| e.to_string())?;
    Ok(Runner::new()
        .workers(workers)
        .checkpointing(CheckpointConfig::new(store).interval(Duration::from_millis(15))))
}

/// Every record of `topic` as Millstream's source reads it (epochs of exactly-once sinks
/// once each), as numbers.
pub fn read_with_millstream(brokers: &str, topic: &str) -> Vec<i64> {
    let p = Pipeline::new();
    let out = p
        .read(
            "Output",
            KafkaSource::new(brokers, topic, |m: &KafkaMessage<'_>| {
                let text = std::str::from_utf8(m.payload.unwrap_or_default()).map_err(|e| e.to_string())?;
                text.parse::<i64>().map_err(|e| e.to_string())
            })
            .bounded(),
        )
        .collect();
    Runner::new().workers(2).run(&p).expect("read the output with Millstream");
    let mut values = out.values();
    values.sort();
    values
}

/// How often each value occurs.
pub fn counts(values: impl IntoIterator<Item = i64>) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    counts
}
