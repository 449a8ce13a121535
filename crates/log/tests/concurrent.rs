//! Readers following writers in other threads: every record arrives once, in order, intact,
//! across segment rolls and retention.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_expected, expected_batch, expected_record, log_with, Rng};
use millstream_log::{Durability, LogError, ReadLimit, Record, TopicConfig};

#[test]
fn readers_follow_a_writer_thread() {
    let mut config = TopicConfig::new(1).with_segment_bytes(16 << 10).with_durability(Durability::None);
    config.index_interval_bytes = 1024;
    let (_dir, log) = log_with(config);
    let seed = Rng::seed_from_clock();
    eprintln!("seed {seed}");
    const TOTAL: u64 = 30_000;

    let writer_log = log.clone();
    let writer = std::thread::spawn(move || {
        let mut rng = Rng::new(seed);
        let mut w = writer_log.writer("t", 0).expect("writer");
        while w.end_offset() < TOTAL {
            let base = w.end_offset();
            let n = rng.range(1..60).min(TOTAL - base);
            w.append_batch(&expected_batch(base..base + n)).expect("append");
            if rng.range(0..10) == 0 {
                std::thread::yield_now();
            }
        }
        w.segment_count()
    });

    let readers: Vec<_> = [1usize, 37, 1000]
        .into_iter()
        .map(|chunk| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = log.reader("t", 0, 0).expect("reader");
                let mut records = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(120);
                while (records.len() as u64) < TOTAL {
                    assert!(Instant::now() < deadline, "stuck at {}", records.len());
                    if reader.poll_into(ReadLimit::records(chunk), &mut records).expect("poll") == 0 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                assert_eq!(reader.position(), TOTAL);
                records
            })
        })
        .collect();
    let segments = writer.join().expect("writer");
    assert!(segments > 20, "{segments} segments");
    for reader in readers {
        assert_expected(&reader.join().expect("reader"), 0..TOTAL);
    }
}

#[test]
fn a_reader_that_falls_behind_retention_gets_out_of_range_and_can_skip_ahead() {
    let config = TopicConfig::new(1)
        .with_segment_bytes(8 << 10)
        .with_retention_bytes(Some(32 << 10))
        .with_durability(Durability::None);
    let (_dir, log) = log_with(config);
    let done = Arc::new(AtomicBool::new(false));
    const TOTAL: u64 = 20_000;

    let writer_log = log.clone();
    let writer_done = done.clone();
    let writer = std::thread::spawn(move || {
        let mut w = writer_log.writer("t", 0).expect("writer");
        while w.end_offset() < TOTAL {
            let base = w.end_offset();
            w.append_batch(&expected_batch(base..base + 20)).expect("append");
        }
        writer_done.store(true, Ordering::SeqCst);
    });

    let mut reader = log.reader("t", 0, 0).expect("reader");
    let (mut received, mut skips, mut last) = (0u64, 0u64, None::<u64>);
    loop {
        match reader.poll(ReadLimit::records(50)) {
            Ok(records) if records.is_empty() => {
                if done.load(Ordering::SeqCst) && reader.position() == TOTAL {
                    break;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            Ok(records) => {
                for r in records {
                    assert!(last.is_none_or(|l| r.offset > l), "offsets increase");
                    assert_eq!(r.record, expected_record(r.offset));
                    last = Some(r.offset);
                    received += 1;
                }
                // A slow consumer.
                std::thread::sleep(Duration::from_micros(300));
            }
            Err(LogError::OffsetOutOfRange { offset, start, end, .. }) => {
                assert!(offset < start && start <= end, "{offset} {start} {end}");
                skips += 1;
                reader.seek(start);
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    writer.join().expect("writer");
    eprintln!("received {received} records, skipped ahead {skips} times");
    assert_eq!(last, Some(TOTAL - 1));
    let (start, end) = log.offsets("t", 0).expect("offsets");
    assert_eq!(end, TOTAL);
    assert!(start > 0, "retention deleted segments");
}

#[test]
fn keyed_records_keep_their_order_per_key_across_partitions() {
    let (_dir, log) = log_with(TopicConfig::new(4).with_durability(Durability::None));
    let mut producer = log.producer("t").expect("producer");
    let mut per_key_seq = std::collections::HashMap::new();
    for round in 0..50u32 {
        let batch: Vec<Record> = (0..40u32)
            .map(|i| {
                let key = format!("user-{}", (i * 7 + round) % 23);
                let seq = per_key_seq.entry(key.clone()).or_insert(0u32);
                *seq += 1;
                Record::new(seq.to_string()).with_key(key).with_timestamp(i64::from(round))
            })
            .collect();
        let acks = producer.append(&batch).expect("append");
        assert_eq!(acks.iter().map(|a| a.ack.record_count()).sum::<u64>(), 40);
    }
    drop(producer);
    let mut seen = std::collections::HashMap::new();
    for p in 0..4 {
        for r in common::read_all(&log, p, 0, 100) {
            let key = r.record.key.expect("key");
            assert_eq!(millstream_log::partition_for_key(&key, 4), p);
            let seq: u32 = std::str::from_utf8(&r.record.value).expect("utf8").parse().expect("seq");
            let last = seen.insert(key, seq).unwrap_or(0);
            assert_eq!(seq, last + 1, "per-key order");
        }
    }
    assert_eq!(seen.len(), 23);
}
