//! The Kafka sink against a real Kafka-protocol broker (see `common/kafka.rs`): whole
//! jobs with checkpoints, failures and rescaling, and the exactly-once protocol step by
//! step through the two-phase-commit sink's writer (a crash between a checkpoint's
//! completion and the publication of its epoch, a crash in the middle of a publication, a
//! restart after the publication, a rescale). Random SIGKILLs are in `kafka_chaos.rs`.

use millstream_connectors::kafka::{DeliveryGuarantee, KafkaRecord, KafkaSink, KafkaSource, EPOCH_HEADER};
use millstream_connectors::ExactlyOnceFileSink;
use millstream_model::{Timestamp, WindowedValue};
use millstream_runtime::{Pipeline, Runner, TransactionalSink, TransactionalWriter};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

mod common;
use common::kafka::*;
use common::published;

/// Reads `input` (numbers) and writes `n * 10` of each to `output` through the Kafka
/// sink, with checkpoints in `dir`; the decoder can fail once after a checkpoint that
/// covers records (seen through an exactly-once file sink of the same job).
fn kafka_to_kafka(
    brokers: &str,
    input: &str,
    output: &str,
    dir: &Path,
    fail: bool,
    guarantee: DeliveryGuarantee,
) -> Result<(), String> {
    kafka_to_kafka_on(brokers, input, output, dir, fail, guarantee, 2)
}

fn kafka_to_kafka_on(
    brokers: &str,
    input: &str,
    output: &str,
    dir: &Path,
    fail: bool,
    guarantee: DeliveryGuarantee,
    workers: usize,
) -> Result<(), String> {
    let p = Pipeline::new();
    let out = dir.join("out");
    // Fails once a checkpoint is complete and its epoch is published to Kafka, so that the
    // restart has epochs that Kafka has and epochs that it does not.
    let when = fail.then(|| {
        let (out, output) = (out.clone(), output.to_owned());
        let consumer: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", brokers).create().expect("consumer");
        move || published_any(&out) && has_records(&consumer, &output, 2)
    });
    let decoder = numbers_decoder_failing_once_when(Arc::new(AtomicU64::new(0)), when);
    let source = KafkaSource::new(brokers, input, decoder).bounded();
    let sink = KafkaSink::new(brokers, output, format!("{output}-sink"), |v: &WindowedValue<i64>| {
        Ok(KafkaRecord::keyed(v.value.to_string(), (v.value * 10).to_string()))
    })
    .with_delivery_guarantee(guarantee)
    // The test broker, tansu 0.6, can leave interleaved transactions unresolved.
    .one_transaction_at_a_time();
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
    for guarantee in [DeliveryGuarantee::ExactlyOnce, DeliveryGuarantee::AtLeastOnce] {
        let input = topic(&brokers, "sink-in", 3);
        let output = topic(&brokers, "sink-out", 2);
        let n = 3000;
        produce(&brokers, &input, numbered(3, n, 1));
        let dir = TempDir::new("kafka-sink");
        kafka_to_kafka(&brokers, &input, &output, dir.path(), false, guarantee).expect("run");
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
            "{guarantee:?}: {} of {n} records in the output topic; the source read {read}; {}",
            got.len(),
            missing_runs(&got, n, 10)
        );
        // Keys choose partitions as Kafka's Java producer would (murmur2).
        for (partition, value) in read_topic(&brokers, &output, 2, n as usize) {
            let key = (value.parse::<i64>().unwrap() / 10).to_string();
            assert_eq!(partition, millstream_log::partition_for_key(key.as_bytes(), 2) as i32, "{key}");
        }
    }
}

/// Runs the Kafka-to-Kafka job over `n` records until its injected failure, then again to
/// its end; returns the output topic and how many records the failed run had written.
fn fail_then_restart(brokers: &str, name: &str, n: i64, guarantee: DeliveryGuarantee) -> (String, usize) {
    let input = topic(brokers, &format!("{name}-in"), 3);
    let output = topic(brokers, &format!("{name}-out"), 2);
    produce(brokers, &input, numbered(3, n, 1));
    let dir = TempDir::new(name);
    let err = kafka_to_kafka(brokers, &input, &output, dir.path(), true, guarantee).unwrap_err();
    assert!(err.contains("injected failure"), "{err}");
    // What the first run wrote (exactly-once: only epochs of complete checkpoints).
    let before = read_topic_as(brokers, &output, 2, "read_uncommitted", 1).len();
    assert!(before > 0 && before < n as usize, "{before} records written before the failure");
    kafka_to_kafka(brokers, &input, &output, dir.path(), false, guarantee).expect("restart");
    (output, before)
}

#[test]
fn an_exactly_once_sink_publishes_every_record_once_across_a_failure() {
    let Some(brokers) = broker() else { return };
    let n = 20_000;
    let (output, before) = fail_then_restart(&brokers, "sink-fail", n, DeliveryGuarantee::ExactlyOnce);
    let expected: BTreeMap<i64, usize> = (0..n).map(|i| (i * 10, 1)).collect();
    // The failure was inside the job, so no transaction was left half-written: even a
    // reader on a broker that shows aborted transactions sees every record once.
    let raw = read_topic(&brokers, &output, 2, n as usize);
    assert_eq!(counts(raw.iter().map(|(_, v)| v.parse().unwrap())), expected, "read_committed reader");
    assert_eq!(counts(read_with_millstream(&brokers, &output)), expected, "Millstream's source");
    eprintln!("{before} records published before the failure, none twice");
}

#[test]
fn an_at_least_once_sink_writes_every_record_across_a_failure() {
    let Some(brokers) = broker() else { return };
    let n = 20_000;
    let (output, before) = fail_then_restart(&brokers, "alo-fail", n, DeliveryGuarantee::AtLeastOnce);
    let got = read_topic(&brokers, &output, 2, n as usize);
    let counts = counts(got.iter().map(|(_, v)| v.parse().unwrap()));
    let expected: Vec<i64> = (0..n).map(|i| i * 10).collect();
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), expected, "every record, and only those");
    let duplicates = got.len() - n as usize;
    eprintln!("{before} records written before the failure, {duplicates} written twice");
    assert!(duplicates <= before, "only records written before the failure are duplicated");
}

#[test]
fn an_exactly_once_sink_restored_on_fewer_workers_fences_the_missing_ones_and_publishes_once() {
    let Some(brokers) = broker() else { return };
    let input = topic(&brokers, "rescale-in", 3);
    let output = topic(&brokers, "rescale-out", 2);
    let n = 20_000;
    produce(&brokers, &input, numbered(3, n, 1));
    let dir = TempDir::new("kafka-rescale");
    let guarantee = DeliveryGuarantee::ExactlyOnce;
    let err = kafka_to_kafka_on(&brokers, &input, &output, dir.path(), true, guarantee, 3).unwrap_err();
    assert!(err.contains("injected failure"), "{err}");
    // On one worker: worker 0 fences the transactional ids of workers 1 and 2 and
    // publishes their pending epochs that Kafka does not have yet.
    kafka_to_kafka_on(&brokers, &input, &output, dir.path(), false, guarantee, 1).expect("restart");
    let expected: BTreeMap<i64, usize> = (0..n).map(|i| (i * 10, 1)).collect();
    let raw = read_topic(&brokers, &output, 2, n as usize);
    assert_eq!(counts(raw.iter().map(|(_, v)| v.parse().unwrap())), expected, "read_committed reader");
    assert_eq!(counts(read_with_millstream(&brokers, &output)), expected, "Millstream's source");
}

/// A sink writing `value * 10` keyed by `value`, as the jobs above do.
fn sink_for(brokers: &str, output: &str) -> KafkaSink<i64> {
    KafkaSink::new(brokers, output, format!("{output}-sink"), |v: &WindowedValue<i64>| {
        Ok(KafkaRecord::keyed(v.value.to_string(), (v.value * 10).to_string()))
    })
    .one_transaction_at_a_time()
}

fn values(range: std::ops::Range<i64>) -> Vec<WindowedValue<i64>> {
    range.map(|i| WindowedValue::in_global_window(i, Timestamp::from_millis(T0 + i))).collect()
}

fn expected(range: std::ops::Range<i64>) -> BTreeMap<i64, usize> {
    range.map(|i| (i * 10, 1)).collect()
}

/// Opens worker `worker` of `workers` of `sink`.
fn open(sink: &KafkaSink<i64>, worker: usize, workers: usize) -> Box<dyn TransactionalWriter<i64>> {
    sink.open(worker, workers).expect("open the writer")
}

/// A restarted worker: opens, fences the restored workers' transactional ids, reads the
/// markers, publishes what the restored checkpoint pre-committed (as the runtime does).
fn restart(
    sink: &KafkaSink<i64>,
    worker: usize,
    workers: usize,
    restored_workers: &[usize],
    pending: &[Vec<u8>],
    restored: u64,
) {
    let mut w = open(sink, worker, workers);
    w.take_over(restored_workers).expect("take over");
    w.recover(pending, restored).expect("recover");
    w.commit(pending).expect("commit");
}

fn raw_counts(brokers: &str, topic: &str, at_least: usize) -> BTreeMap<i64, usize> {
    counts(read_topic(brokers, topic, 2, at_least).into_iter().map(|(_, v)| v.parse().unwrap()))
}

#[test]
fn a_restart_publishes_a_pre_committed_epoch_that_never_reached_kafka() {
    let Some(brokers) = broker() else { return };
    let output = topic(&brokers, "eo-unpublished", 2);
    let sink = sink_for(&brokers, &output);
    let mut first = open(&sink, 0, 1);
    first.write(&values(0..100)).unwrap();
    let epoch1 = first.pre_commit(1).unwrap();
    // The checkpoint of epoch 1 completes, and the job dies before publishing it.
    drop(first);
    assert_eq!(read_topic_as(&brokers, &output, 2, "read_uncommitted", 0).len(), 0, "nothing published yet");
    restart(&sink, 0, 1, &[0], &[epoch1], 1);
    assert_eq!(raw_counts(&brokers, &output, 100), expected(0..100));
    assert_eq!(counts(read_with_millstream(&brokers, &output)), expected(0..100));
}

#[test]
fn a_restart_does_not_publish_again_an_epoch_kafka_already_has() {
    let Some(brokers) = broker() else { return };
    let output = topic(&brokers, "eo-published", 2);
    let sink = sink_for(&brokers, &output);
    let mut first = open(&sink, 0, 1);
    first.write(&values(0..100)).unwrap();
    let epoch1 = first.pre_commit(1).unwrap();
    first.write(&values(100..150)).unwrap();
    let epoch2 = first.pre_commit(2).unwrap();
    // Both checkpoints complete, both epochs are published, and the job dies.
    first.commit(&[epoch1.clone(), epoch2.clone()]).unwrap();
    drop(first);
    // Restored from checkpoint 2, which still lists both epochs as pending (the job died
    // before it could forget them): the markers say Kafka has them.
    restart(&sink, 0, 1, &[0], &[epoch1, epoch2], 2);
    assert_eq!(raw_counts(&brokers, &output, 150), expected(0..150));
    // And a new epoch after the restart is published as usual.
    let mut again = open(&sink, 0, 1);
    again.take_over(&[0]).unwrap();
    again.recover(&[], 2).unwrap();
    again.write(&values(150..160)).unwrap();
    let epoch3 = again.pre_commit(3).unwrap();
    again.commit(&[epoch3]).unwrap();
    assert_eq!(raw_counts(&brokers, &output, 160), expected(0..160));
    assert_eq!(counts(read_with_millstream(&brokers, &output)), expected(0..160));
}

#[test]
fn an_epoch_left_half_published_is_published_whole_and_read_once() {
    let Some(brokers) = broker() else { return };
    let output = topic(&brokers, "eo-half", 2);
    let sink = sink_for(&brokers, &output);
    let mut first = open(&sink, 0, 1);
    first.write(&values(0..100)).unwrap();
    let epoch1 = first.pre_commit(1).unwrap();
    drop(first);
    // The publication began and died after 10 records: a transaction of the sink's
    // transactional id, left open, with tagged records (an origin and attempt of its own).
    let sink_id = format!("{output}-sink");
    let per_partition: Vec<usize> = (0..2)
        .map(|p| {
            (0..100i64)
                .filter(|i| millstream_log::partition_for_key(i.to_string().as_bytes(), 2) == p)
                .count()
        })
        .collect();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("transactional.id", format!("{sink_id}-0"))
        .create()
        .unwrap();
    producer.init_transactions(TIMEOUT).unwrap();
    producer.begin_transaction().unwrap();
    let partial: Vec<i64> = (0..100i64)
        .filter(|i| millstream_log::partition_for_key(i.to_string().as_bytes(), 2) == 0)
        .take(10)
        .collect();
    for i in &partial {
        let tag = format!("1/0/1/{:016x}/{:016x}/{}/{sink_id}", 0xdead_u64, 0xdead_u64, per_partition[0]);
        let (key, payload) = (i.to_string(), (i * 10).to_string());
        producer
            .send(BaseRecord::to(&output).partition(0).key(&key).payload(&payload).headers(
                OwnedHeaders::new().insert(Header { key: EPOCH_HEADER, value: Some(tag.as_bytes()) }),
            ))
            .unwrap();
    }
    producer.flush(TIMEOUT).unwrap();
    // The job died: the transaction stays open until the restart fences its id.
    std::mem::forget(producer);
    restart(&sink, 0, 1, &[0], &[epoch1], 1);
    // Millstream's source reads the epoch once, whatever the broker shows of the aborted
    // copy.
    assert_eq!(counts(read_with_millstream(&brokers, &output)), expected(0..100));
    // A read_committed reader sees every record; on a broker that hides aborted
    // transactions (Kafka) once, on tansu also the aborted copy's 10.
    let raw = raw_counts(&brokers, &output, 100);
    let twice: Vec<i64> = raw.iter().filter(|(_, n)| **n > 1).map(|(v, _)| v / 10).collect();
    assert_eq!(raw.keys().copied().collect::<Vec<_>>(), expected(0..100).into_keys().collect::<Vec<_>>());
    assert!(twice.is_empty() || twice == partial, "only the aborted copy's records twice: {twice:?}");
    eprintln!("read_committed reader: {} records of the aborted copy visible", twice.len());
}

#[test]
fn a_rescaled_restart_fences_every_old_worker_and_publishes_their_epochs() {
    let Some(brokers) = broker() else { return };
    let output = topic(&brokers, "eo-rescale", 2);
    let sink = sink_for(&brokers, &output);
    let (mut w0, mut w1, mut w2) = (open(&sink, 0, 3), open(&sink, 1, 3), open(&sink, 2, 3));
    w0.write(&values(0..50)).unwrap();
    w1.write(&values(50..100)).unwrap();
    w2.write(&values(100..130)).unwrap();
    let (h0, h1, h2) = (w0.pre_commit(1).unwrap(), w1.pre_commit(1).unwrap(), w2.pre_commit(1).unwrap());
    // Worker 1 published its epoch before the job died; 0 and 2 did not.
    w1.commit(std::slice::from_ref(&h1)).unwrap();
    drop((w0, w1, w2));
    // Restored on 2 workers: worker 0 takes over old workers 0 and 2, worker 1 old worker 1.
    restart(&sink, 0, 2, &[0, 2], &[h0, h2], 1);
    restart(&sink, 1, 2, &[1], &[h1], 1);
    assert_eq!(raw_counts(&brokers, &output, 130), expected(0..130));
    assert_eq!(counts(read_with_millstream(&brokers, &output)), expected(0..130));
}

#[test]
fn records_missing_from_a_published_epoch_fail_the_source_loudly() {
    let Some(brokers) = broker() else { return };
    let input = topic(&brokers, "eo-gap", 1);
    // One writer's epoch 1 announces 3 records in the partition, only 1 is there, and its
    // epoch 2 follows: a broker lost records, and reading on would hide it.
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    for (epoch, count) in [(1, 3), (2, 1)] {
        let tag = format!("1/0/{epoch}/{:016x}/{:016x}/{count}/gap-sink", 7u64, 7u64);
        producer
            .send(BaseRecord::<(), str>::to(&input).partition(0).payload("1").headers(
                OwnedHeaders::new().insert(Header { key: EPOCH_HEADER, value: Some(tag.as_bytes()) }),
            ))
            .unwrap();
    }
    producer.flush(TIMEOUT).unwrap();
    let p = Pipeline::new();
    p.read("Kafka", KafkaSource::strings(brokers.clone(), input.clone()).bounded()).collect();
    let err = Runner::new().run(&p).unwrap_err().to_string();
    assert!(err.contains(&format!("Kafka topic \"{input}\" partition 0")), "{err}");
    assert!(err.contains("epoch 1 of sink \"gap-sink\" worker 0 has 1 of its 3 records"), "{err}");
    assert!(err.contains("records are missing from the partition"), "{err}");
    // Read raw, as a consumer without Millstream would, both records are there.
    let p = Pipeline::new();
    let raw = p
        .read("Kafka", KafkaSource::strings(brokers.clone(), input).bounded().without_epoch_deduplication())
        .collect();
    Runner::new().run(&p).expect("raw read");
    assert_eq!(raw.values().len(), 2);
}
