//! The Kafka connectors against a real Kafka-protocol broker: 127.0.0.1:9092, or
//! `MILLSTREAM_KAFKA_BROKERS`. `.ci/kafka-broker.sh` installs and starts one (tansu).
//! Without a broker the tests print why they skip, except under `CI=true`, where they fail.
//!
//! Every test uses topics of its own, created through the admin API.

use millstream_checkpoint::CheckpointStore;
use millstream_connectors::kafka::{create_topic, KafkaMessage, KafkaRecord, KafkaSink, KafkaSource};
use millstream_connectors::ExactlyOnceFileSink;
use millstream_model::combiners::Sum;
use millstream_model::{Duration, FixedWindows, WindowedValue};
use millstream_runtime::{CheckpointConfig, Pipeline, Runner, WatermarkStrategy, Window};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

mod common;
use common::published;

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn brokers() -> String {
    std::env::var("MILLSTREAM_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// The brokers if one answers; otherwise skips (prints why) or, under CI, fails.
fn broker() -> Option<String> {
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
fn unique(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("ms-{name}-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn topic(brokers: &str, name: &str, partitions: i32) -> String {
    let topic = unique(name);
    create_topic(brokers, &topic, partitions, TIMEOUT).expect("create topic");
    topic
}

/// Counts acknowledged deliveries and keeps failed ones.
#[derive(Default)]
struct Acks {
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

/// Writes `(partition, payload, timestamp ms)` records and waits until all are acknowledged.
fn produce(brokers: &str, topic: &str, records: impl IntoIterator<Item = (i32, String, i64)>) {
    let producer: BaseProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .create_with_context(Acks::default())
        .expect("producer");
    let mut sent = 0u64;
    for (partition, payload, ts) in records {
        let mut record =
            BaseRecord::<(), String>::to(topic).partition(partition).payload(&payload).timestamp(ts);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    producer.poll(std::time::Duration::from_millis(10));
                    record = back;
                }
                Err((e, _)) => panic!("produce: {e}"),
            }
        }
        sent += 1;
    }
    producer.flush(TIMEOUT).expect("flush");
    let acks = producer.context();
    assert_eq!(*acks.failed.lock().unwrap(), Vec::<String>::new(), "failed deliveries to {topic}");
    assert_eq!(acks.acknowledged.load(Ordering::SeqCst), sent, "acknowledged deliveries to {topic}");
}

/// `values` (sorted) against `0..n` times `step`: how many of each are missing, as runs.
fn missing_runs(values: &[i64], n: i64, step: i64) -> String {
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
    format!("missing runs of i: {} ({} runs); missing by i % 3: {by_input_partition:?}", shown.join(" "), runs.len())
}

/// Every payload of `topic` as a `read_committed` consumer sees it, with its partition.
/// Every payload of `topic` a read_committed consumer sees, once it has seen at least
/// `at_least` of them (see [`read_topic_as`]).
fn read_topic(brokers: &str, topic: &str, partitions: i32, at_least: usize) -> Vec<(i32, String)> {
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
fn read_topic_as(
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

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(unique(name));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Event time zero of the tests (a Kafka timestamp of 0 would mean "now").
const T0: i64 = 1_000_000_000;

/// Partition `p` of `partitions` holds the records `i` with `i % partitions == p`, each
/// at `T0 + i * step_ms`, so the partitions interleave in time but are each in order.
fn numbered(partitions: i32, n: i64, step_ms: i64) -> Vec<(i32, String, i64)> {
    (0..n).map(|i| ((i % partitions as i64) as i32, i.to_string(), T0 + i * step_ms)).collect()
}

/// Expected `(window start ms, count)` of `numbered` records in windows of `size_ms`.
fn window_counts(n: i64, step_ms: i64, size_ms: i64) -> Vec<(i64, i64)> {
    let mut counts = BTreeMap::new();
    for i in 0..n {
        *counts.entry(T0 + i * step_ms / size_ms * size_ms).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}

#[test]
fn source_reads_every_partition_with_per_partition_watermarks_into_windows() {
    let Some(brokers) = broker() else { return };
    let topic = topic(&brokers, "windows", 3);
    // Partition 2 runs far ahead in event time: its records all come after the others'.
    // With one watermark for the whole topic (instead of the least over partitions), the
    // records of partitions 0 and 1 would be late and dropped.
    let mut records = numbered(2, 3000, 20);
    records.extend((0..500).map(|i| (2, format!("late-{i}"), T0 + 60_000 + i * 20)));
    produce(&brokers, &topic, records);
    let mut expected = window_counts(3000, 20, 10_000);
    for (start, count) in window_counts(500, 20, 10_000) {
        expected.push((start + 60_000, count));
    }
    for workers in [1, 2] {
        let p = Pipeline::new();
        let counts = p
            .read(
                "Kafka",
                KafkaSource::strings(brokers.clone(), topic.clone())
                    .bounded()
                    .with_watermark_strategy(WatermarkStrategy::in_order()),
            )
            .map(|_| ("all".to_string(), 1i64))
            .window_into(Window::into(FixedWindows::of(Duration::from_secs(10))))
            .combine_per_key(Sum)
            .collect();
        let result = Runner::new().workers(workers).run(&p).expect("run");
        assert_eq!(result.counter_total("/dropped_late"), 0, "{workers} workers");
        let mut got: Vec<(i64, i64)> =
            counts.windowed().into_iter().map(|v| (v.window.start().millis(), v.value.1)).collect();
        got.sort();
        assert_eq!(got, expected, "{workers} workers");
    }
}

#[test]
fn source_gives_records_their_kafka_timestamps_keys_and_headers() {
    let Some(brokers) = broker() else { return };
    let topic = topic(&brokers, "fields", 1);
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    for i in 0..5i64 {
        let headers = rdkafka::message::OwnedHeaders::new()
            .insert(rdkafka::message::Header { key: "n", value: Some(&i.to_string()) });
        producer
            .send(
                BaseRecord::to(&topic)
                    .key(&format!("k{i}"))
                    .payload(&format!("v{i}"))
                    .timestamp(1_000 + i)
                    .headers(headers),
            )
            .unwrap();
    }
    producer.flush(TIMEOUT).unwrap();
    let p = Pipeline::new();
    let source = KafkaSource::new(brokers.clone(), topic.clone(), |m: &KafkaMessage<'_>| {
        let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).to_string();
        Ok(format!(
            "{}|{}|{}|{}|{}",
            m.offset,
            text(m.key),
            text(m.payload),
            text(m.header("n")),
            m.partition
        ))
    })
    .bounded();
    let out = p.read("Kafka", source).collect();
    Runner::new().run(&p).expect("run");
    let mut got: Vec<(String, i64)> =
        out.windowed().into_iter().map(|v| (v.value, v.timestamp.millis())).collect();
    got.sort();
    let expected: Vec<(String, i64)> = (0..5).map(|i| (format!("{i}|k{i}|v{i}|{i}|0"), 1_000 + i)).collect();
    assert_eq!(got, expected);
}

/// Whether an exactly-once file sink published anything in `dir`: a checkpoint that
/// covers records read has completed.
fn published_any(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.path().is_file())))
}

/// A decoder of numbers that counts its calls and, given the output directory of an
/// exactly-once file sink of the job, fails once, after the sink published something.
fn numbers_decoder(
    decoded: Arc<AtomicU64>,
    fail: Option<PathBuf>,
) -> impl Fn(&KafkaMessage<'_>) -> Result<i64, String> + Send + Sync + 'static {
    let failed = AtomicBool::new(false);
    move |m: &KafkaMessage<'_>| {
        let n = decoded.fetch_add(1, Ordering::SeqCst) + 1;
        // Slow enough for checkpoints to complete while the job runs.
        std::thread::sleep(std::time::Duration::from_micros(50));
        if let Some(published) = &fail {
            if n.is_multiple_of(100) && !failed.load(Ordering::SeqCst) && published_any(published) {
                failed.store(true, Ordering::SeqCst);
                return Err("injected failure".to_owned());
            }
        }
        let text = std::str::from_utf8(m.payload.unwrap_or_default()).map_err(|e| e.to_string())?;
        text.parse::<i64>().map_err(|e| e.to_string())
    }
}

fn checkpointing(checkpoints: &Path) -> Result<Runner, String> {
    checkpointing_on(checkpoints, 2)
}

fn checkpointing_on(checkpoints: &Path, workers: usize) -> Result<Runner, String> {
    let store = CheckpointStore::local(checkpoints).map_err(|e| e.to_string())?;
    Ok(Runner::new()
        .workers(workers)
        .checkpointing(CheckpointConfig::new(store).interval(Duration::from_millis(15))))
}

/// Keyed windowed counts and the raw records of a Kafka topic of numbers, written by
/// exactly-once file sinks, with checkpoints; the decoder counts its calls and can fail.
fn checkpointed_job(
    brokers: &str,
    topic: &str,
    out: &Path,
    checkpoints: &Path,
    decoded: Arc<AtomicU64>,
    fail: bool,
) -> Result<(), String> {
    let p = Pipeline::new();
    let decoder = numbers_decoder(decoded, fail.then(|| out.to_path_buf()));
    let source = KafkaSource::new(brokers, topic, decoder)
        .bounded()
        .with_watermark_strategy(WatermarkStrategy::in_order());
    let records = p.read("Kafka", source);
    records.write_exactly_once(
        "Raw",
        ExactlyOnceFileSink::new(out, "raw", |v: &WindowedValue<i64>| v.value.to_string()),
    );
    records
        .map(|x| (x % 5, 1i64))
        .window_into(Window::into(FixedWindows::of(Duration::from_secs(10))))
        .combine_per_key(Sum)
        .write_exactly_once(
            "Counts",
            ExactlyOnceFileSink::new(out, "counts", |v: &WindowedValue<(i64, i64)>| {
                format!("{} {} {}", v.window.start().millis(), v.value.0, v.value.1)
            }),
        );
    checkpointing(checkpoints)?.run(&p).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn a_failed_job_resumes_from_the_offsets_in_its_checkpoint() {
    let Some(brokers) = broker() else { return };
    let topic = topic(&brokers, "resume", 3);
    let n = 20_000i64;
    produce(&brokers, &topic, numbered(3, n, 10));
    let dir = TempDir::new("kafka-resume");
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));

    let first = Arc::new(AtomicU64::new(0));
    let err = checkpointed_job(&brokers, &topic, &out, &chk, first.clone(), true).unwrap_err();
    assert!(err.contains("injected failure") && err.contains(&topic) && err.contains("offset"), "{err}");
    let (read_before, published_before) = (first.load(Ordering::SeqCst) - 1, published(&out, "raw").len());
    assert!(published_before < n as usize, "the first run did not finish");

    let second = Arc::new(AtomicU64::new(0));
    checkpointed_job(&brokers, &topic, &out, &chk, second.clone(), false).expect("restart");
    let reread = second.load(Ordering::SeqCst);
    eprintln!("first run: {read_before} read, {published_before} published; the restart read {reread}");
    // The restart read from the stored offsets: not what its checkpoint covered, and
    // at least what the first run had not read.
    assert!(reread <= (n as usize - published_before) as u64, "the restart read {reread} records");
    assert!(reread >= n as u64 - read_before, "the restart read only {reread} records");

    let mut raw: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    raw.sort();
    assert_eq!(published(&out, "raw"), raw);
    let mut counts = BTreeMap::new();
    for i in 0..n {
        *counts.entry((T0 + i * 10 / 10_000 * 10_000, i % 5)).or_insert(0i64) += 1;
    }
    let mut expected: Vec<String> = counts.into_iter().map(|((w, k), c)| format!("{w} {k} {c}")).collect();
    expected.sort();
    assert_eq!(published(&out, "counts"), expected);
}

/// Reads `input` (numbers) and writes `n * 10` of each to `output` through the Kafka
/// sink, with checkpoints in `dir`; the decoder can fail once after a checkpoint that
/// covers records (seen through an exactly-once file sink of the same job).
fn kafka_to_kafka(
    brokers: &str,
    input: &str,
    output: &str,
    dir: &Path,
    fail: bool,
    transactional: bool,
) -> Result<(), String> {
    kafka_to_kafka_on(brokers, input, output, dir, fail, transactional, 2)
}

fn kafka_to_kafka_on(
    brokers: &str,
    input: &str,
    output: &str,
    dir: &Path,
    fail: bool,
    transactional: bool,
    workers: usize,
) -> Result<(), String> {
    let p = Pipeline::new();
    let out = dir.join("out");
    let decoder = numbers_decoder(Arc::new(AtomicU64::new(0)), fail.then(|| out.clone()));
    let source = KafkaSource::new(brokers, input, decoder).bounded();
    let mut sink = KafkaSink::new(brokers, output, format!("{output}-sink"), |v: &WindowedValue<i64>| {
        Ok(KafkaRecord::keyed(v.value.to_string(), (v.value * 10).to_string()))
    });
    if !transactional {
        sink = sink.without_transactions();
    }
    let records = p.read("Kafka", source);
    records.write_exactly_once("ToKafka", sink);
    records.write_exactly_once(
        "Files",
        ExactlyOnceFileSink::new(out, "raw", |v: &WindowedValue<i64>| v.value.to_string()),
    );
    checkpointing_on(&dir.join("chk"), workers)?.run(&p).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn sink_writes_every_record_exactly_once_when_nothing_fails() {
    let Some(brokers) = broker() else { return };
    for transactional in [true, false] {
        let input = topic(&brokers, "sink-in", 3);
        let output = topic(&brokers, "sink-out", 2);
        let n = 3000;
        produce(&brokers, &input, numbered(3, n, 1));
        let dir = TempDir::new("kafka-sink");
        kafka_to_kafka(&brokers, &input, &output, dir.path(), false, transactional).expect("run");
        let mut got: Vec<i64> = read_topic(&brokers, &output, 2, n as usize)
            .into_iter()
            .map(|(_, v)| v.parse().unwrap())
            .collect();
        got.sort();
        let expected: Vec<i64> = (0..n).map(|i| i * 10).collect();
        // The file sink beside it tells a source that read too little from a Kafka sink
        // (or reader) that lost records.
        let read = published(&dir.path().join("out"), "raw").len();
        assert!(
            got == expected,
            "transactional: {transactional}: {} of {n} records in the output topic; the source read {read}; {}",
            got.len(),
            missing_runs(&got, n, 10)
        );
    }
}

#[test]
fn sink_writes_every_record_at_least_once_across_a_failure() {
    let Some(brokers) = broker() else { return };
    let input = topic(&brokers, "sink-fail-in", 3);
    let output = topic(&brokers, "sink-fail-out", 2);
    let n = 20_000;
    produce(&brokers, &input, numbered(3, n, 1));
    let dir = TempDir::new("kafka-sink-fail");
    let err = kafka_to_kafka(&brokers, &input, &output, dir.path(), true, true).unwrap_err();
    assert!(err.contains("injected failure"), "{err}");
    // Everything the first run wrote, committed or not.
    let before = read_topic_as(&brokers, &output, 2, "read_uncommitted", 1).len();
    assert!(before > 0 && before < n as usize, "{before} records written before the failure");
    kafka_to_kafka(&brokers, &input, &output, dir.path(), false, true).expect("restart");
    let got = read_topic(&brokers, &output, 2, n as usize);
    // The documented guarantee: every record, nothing else; what was written after the
    // restored checkpoint may be there twice (on Kafka only the epochs committed before
    // the failure; tansu also shows the aborted transaction to read_committed readers).
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, v) in &got {
        *counts.entry(v.parse().unwrap()).or_default() += 1;
    }
    let expected: Vec<i64> = (0..n).map(|i| i * 10).collect();
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), expected, "every record, and only those");
    let duplicates = got.len() - n as usize;
    eprintln!("{before} records written before the failure, {duplicates} written twice");
    assert!(duplicates <= before, "only records written before the failure are duplicated");
    // Keys choose partitions: every copy of a record is in the same partition.
    let mut partitions: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
    for (p, v) in &got {
        partitions.entry(v.as_str()).or_default().insert(*p);
    }
    assert!(partitions.values().all(|p| p.len() == 1));
}

#[test]
fn a_sink_restored_on_fewer_workers_aborts_the_transactions_the_missing_ones_left_open() {
    let Some(brokers) = broker() else { return };
    let input = topic(&brokers, "rescale-in", 3);
    let output = topic(&brokers, "rescale-out", 2);
    let n = 20_000;
    produce(&brokers, &input, numbered(3, n, 1));
    let dir = TempDir::new("kafka-rescale");
    let err = kafka_to_kafka_on(&brokers, &input, &output, dir.path(), true, true, 3).unwrap_err();
    assert!(err.contains("injected failure"), "{err}");
    // On one worker: worker 0 takes over the transactional ids of workers 1 and 2. A
    // transaction one of them left open would hold read_committed readers back at it.
    kafka_to_kafka_on(&brokers, &input, &output, dir.path(), false, true, 1).expect("restart");
    let got: BTreeSet<i64> =
        read_topic(&brokers, &output, 2, n as usize).into_iter().map(|(_, v)| v.parse().unwrap()).collect();
    assert_eq!(got, (0..n).map(|i| i * 10).collect::<BTreeSet<_>>());
}

#[test]
fn a_missing_topic_is_a_clear_error() {
    let Some(brokers) = broker() else { return };
    let missing = unique("missing");
    let p = Pipeline::new();
    p.read("Kafka", KafkaSource::strings(brokers.clone(), missing.clone()).bounded()).collect();
    let err = Runner::new().run(&p).unwrap_err().to_string();
    assert!(err.contains(&format!("Kafka topic \"{missing}\" does not exist on brokers {brokers}")), "{err}");

    let input = topic(&brokers, "to-missing", 1);
    produce(&brokers, &input, numbered(1, 3, 1));
    let p = Pipeline::new();
    p.read("Kafka", KafkaSource::strings(brokers.clone(), input).bounded()).write_exactly_once(
        "ToKafka",
        KafkaSink::new(brokers.clone(), missing.clone(), "missing-sink", |v: &WindowedValue<String>| {
            Ok(KafkaRecord::payload(v.value.clone()))
        }),
    );
    let err = Runner::new().run(&p).unwrap_err().to_string();
    assert!(err.contains(&format!("Kafka topic \"{missing}\" does not exist on brokers {brokers}")), "{err}");
    // Neither created it.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("allow.auto.create.topics", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(None, TIMEOUT).unwrap();
    assert!(metadata.topics().iter().all(|t| t.name() != missing), "the topic was created");
}

#[test]
fn unreachable_brokers_are_a_clear_error() {
    // Needs no broker: nothing listens on port 1.
    let p = Pipeline::new();
    p.read(
        "Kafka",
        KafkaSource::strings("127.0.0.1:1", "events").with_timeout(std::time::Duration::from_secs(2)),
    )
    .collect();
    let err = Runner::new().run(&p).unwrap_err().to_string();
    assert!(
        err.contains("cannot fetch the metadata of Kafka topic \"events\" from brokers 127.0.0.1:1"),
        "{err}"
    );
}

#[test]
fn an_undecodable_record_is_an_error_naming_topic_partition_and_offset() {
    let Some(brokers) = broker() else { return };
    let topic = topic(&brokers, "bad-json", 2);
    let mut records: Vec<(i32, String, i64)> = (0..4).map(|i| (1, format!("{{\"n\": {i}}}"), i)).collect();
    records.insert(3, (1, "{\"n\": oops".to_owned(), 3));
    records.push((0, "{\"n\": 9}".to_owned(), 9));
    produce(&brokers, &topic, records);

    #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
    struct Event {
        n: i64,
    }
    let p = Pipeline::new();
    p.read("Kafka", KafkaSource::<Event>::json(brokers.clone(), topic.clone()).bounded()).collect();
    let err = Runner::new().run(&p).unwrap_err().to_string();
    assert!(err.contains(&format!("Kafka topic \"{topic}\" partition 1 offset 3")), "{err}");
    assert!(err.contains("cannot decode record: bad JSON"), "{err}");
}

#[test]
fn undecodable_records_go_to_the_dead_letter_output_when_chosen() {
    let Some(brokers) = broker() else { return };
    let topic = topic(&brokers, "dead-letters", 2);
    let mut records: Vec<(i32, String, i64)> =
        (0..4).map(|i| (1, format!("{{\"n\": {i}}}"), T0 + i)).collect();
    records.insert(3, (1, "{\"n\": oops".to_owned(), T0 + 3));
    records.push((0, "{\"n\": 9}".to_owned(), T0 + 9));
    produce(&brokers, &topic, records);

    #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
    struct Event {
        n: i64,
    }
    let p = Pipeline::new();
    let source = KafkaSource::<Event>::json(brokers.clone(), topic.clone())
        .bounded()
        .bad_record_policy(millstream_connectors::BadRecordPolicy::DeadLetter);
    let (events, dead) = p.read_with_dead_letters("Kafka", source);
    let (events, dead) = (events.collect(), dead.collect());
    Runner::new().workers(2).run(&p).expect("the job goes on past the bad record");
    let mut good: Vec<i64> = events.values().iter().map(|e| e.n).collect();
    good.sort();
    assert_eq!(good, vec![0, 1, 2, 3, 9]);
    let letters = dead.values();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].location, format!("Kafka topic \"{topic}\" partition 1 offset 3"));
    assert!(letters[0].error.starts_with("cannot decode record: bad JSON"), "{:?}", letters[0]);
    assert_eq!(letters[0].payload, "{\"n\": oops");
}

#[test]
fn an_unbounded_source_follows_new_records_and_fires_windows_as_watermarks_pass() {
    let Some(brokers) = broker() else { return };
    let topic = topic(&brokers, "streaming", 2);
    // Window [T0, T0 + 10 s): 100 records, 50 per partition.
    produce(&brokers, &topic, (0..100).map(|i| ((i % 2) as i32, format!("a{i}"), T0 + i * 10)));
    let read = Arc::new(AtomicU64::new(0));
    let fired = Arc::new(std::sync::Mutex::new(Vec::<(i64, i64)>::new()));
    let p = Pipeline::new();
    let counter = read.clone();
    let out = fired.clone();
    p.read(
        "Kafka",
        KafkaSource::strings(brokers.clone(), topic.clone())
            .with_watermark_strategy(WatermarkStrategy::in_order()),
    )
    .map(move |s| {
        counter.fetch_add(1, Ordering::SeqCst);
        ("all".to_string(), i64::from(!s.is_empty()))
    })
    .window_into(Window::into(FixedWindows::of(Duration::from_secs(10))))
    .combine_per_key(Sum)
    .map(move |v| {
        out.lock().unwrap().push((0, v.1));
        v
    });
    let runner = Runner::new().workers(2);
    let cancel = runner.cancel_handle();
    let driver = {
        let (brokers, topic, read, fired) = (brokers.clone(), topic.clone(), read.clone(), fired.clone());
        std::thread::spawn(move || {
            let wait = |what: &str, done: &dyn Fn() -> bool| {
                let start = std::time::Instant::now();
                while !done() {
                    assert!(start.elapsed() < TIMEOUT, "waited too long for {what}");
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            };
            wait("the first records", &|| read.load(Ordering::SeqCst) == 100);
            let early = fired.lock().unwrap().clone();
            // Records 20 s later in both partitions move both watermarks past the window.
            produce(
                &brokers,
                &topic,
                (0..100).map(|i| ((i % 2) as i32, format!("b{i}"), T0 + 20_000 + i * 10)),
            );
            wait("the window to fire", &|| !fired.lock().unwrap().is_empty());
            wait("the new records", &|| read.load(Ordering::SeqCst) == 200);
            let fired_while_running = fired.lock().unwrap().clone();
            cancel.cancel();
            (early, fired_while_running)
        })
    };
    runner.run(&p).expect("run");
    let (early, fired_while_running) = driver.join().expect("driver");
    assert!(early.is_empty(), "nothing fires before the watermark passes the window: {early:?}");
    assert_eq!(fired_while_running, vec![(0, 100)], "the window fired while the job ran");
    assert_eq!(read.load(Ordering::SeqCst), 200);
}

#[test]
fn a_source_starting_at_the_latest_offset_reads_only_newer_records() {
    let Some(brokers) = broker() else { return };
    let topic = topic(&brokers, "latest", 1);
    // One batch per record: tansu's ListOffsets answers the base offset of the last batch
    // plus one, which is the end offset only for single-record batches.
    for record in numbered(1, 10, 1) {
        produce(&brokers, &topic, [record]);
    }
    // Bounded and from the latest offset: nothing to read.
    let p = Pipeline::new();
    let out = p
        .read(
            "Kafka",
            KafkaSource::strings(brokers.clone(), topic.clone())
                .start_from(millstream_connectors::kafka::StartOffset::Latest)
                .bounded(),
        )
        .collect();
    Runner::new().run(&p).expect("run");
    assert!(out.values().is_empty());
    // From the earliest: all ten.
    let p = Pipeline::new();
    let out = p.read("Kafka", KafkaSource::strings(brokers.clone(), topic.clone()).bounded()).collect();
    Runner::new().run(&p).expect("run");
    assert_eq!(out.values().len(), 10);
}

/// Writes `per_producer` records from each of `producers` transactional producers at once
/// into partition 0 of `topic`, each in one transaction.
fn produce_concurrently_in_transactions(brokers: &str, topic: &str, producers: usize, per_producer: usize) {
    std::thread::scope(|scope| {
        for w in 0..producers {
            scope.spawn(move || {
                let producer: BaseProducer = ClientConfig::new()
                    .set("bootstrap.servers", brokers)
                    .set("transactional.id", format!("{topic}-{w}"))
                    .create()
                    .expect("producer");
                producer.init_transactions(TIMEOUT).expect("init transactions");
                producer.begin_transaction().expect("begin");
                for i in 0..per_producer {
                    let payload = format!("{w}-{i}");
                    let mut record = BaseRecord::<(), String>::to(topic).partition(0).payload(&payload);
                    loop {
                        match producer.send(record) {
                            Ok(()) => break,
                            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                                producer.poll(std::time::Duration::from_millis(10));
                                record = back;
                            }
                            Err((e, _)) => panic!("produce: {e}"),
                        }
                    }
                }
                producer.commit_transaction(TIMEOUT).expect("commit");
            });
        }
    });
}

/// Regression test for the records "lost" by `sink_writes_every_record_exactly_once_...`:
/// tansu 0.6 answers ListOffsets(EARLIEST) with the first offset of the batch it *stored*
/// first, and with concurrent producers on a partition a later batch is sometimes stored
/// first (about one topic in twenty here). Every record below that offset was still in the
/// partition, but a reader starting "from the beginning" (`Offset::Beginning`, as the
/// source and the test's reader did) skipped them: whole runs of a partition, in the failed
/// CI run 500 of 3000 records. The source now starts at offset 0. This test writes topics
/// until the broker misreports (at most 40 tries; a broker without the fault still gets
/// its read checked), then the source must read every record.
#[test]
fn a_source_reads_records_below_the_earliest_offset_a_broker_misreports() {
    let Some(brokers) = broker() else { return };
    let (producers, per_producer) = (3, 200);
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let mut misreported = None;
    let mut topic_name = String::new();
    for _ in 0..40 {
        topic_name = topic(&brokers, "earliest", 1);
        produce_concurrently_in_transactions(&brokers, &topic_name, producers, per_producer);
        let (earliest, _) = consumer.fetch_watermarks(&topic_name, 0, TIMEOUT).expect("watermarks");
        if earliest > 0 {
            misreported = Some(earliest);
            break;
        }
    }
    eprintln!("earliest offset the broker reports for the partition tested: {misreported:?} (None: 0, no fault)");
    let p = Pipeline::new();
    let out = p.read("Kafka", KafkaSource::strings(brokers.clone(), topic_name.clone()).bounded()).collect();
    Runner::new().run(&p).expect("run");
    let mut got = out.values();
    got.sort();
    let mut expected: Vec<String> =
        (0..producers).flat_map(|w| (0..per_producer).map(move |i| format!("{w}-{i}"))).collect();
    expected.sort();
    assert_eq!(got.len(), expected.len(), "records read (the broker reported earliest offset {misreported:?})");
    assert_eq!(got, expected);
}
