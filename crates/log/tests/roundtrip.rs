//! Property test: whatever batches are appended (any keys, values, timestamps, headers,
//! segment sizes and index intervals), reads from any offset return exactly those records,
//! before and after the partition is reopened.

mod common;

use bytes::Bytes;
use millstream_log::{Durability, Log, ReadLimit, Record, StoredRecord, TopicConfig};
use proptest::prelude::*;

fn record() -> impl Strategy<Value = Record> {
    (
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        proptest::collection::vec(any::<u8>(), 0..300),
        prop_oneof![any::<i64>(), 1_600_000_000_000i64..1_800_000_000_000],
        proptest::collection::vec(("[a-z]{0,8}", proptest::collection::vec(any::<u8>(), 0..10)), 0..3),
    )
        .prop_map(|(key, value, timestamp_ms, headers)| Record {
            key: key.map(Bytes::from),
            value: Bytes::from(value),
            timestamp_ms,
            headers: headers.into_iter().map(|(n, v)| (n, Bytes::from(v))).collect(),
        })
}

fn read_from(log: &Log, from: u64, limit: ReadLimit) -> Vec<StoredRecord> {
    log.read("t", 0, from, limit).expect("read")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn appended_records_read_back_from_any_offset(
        batches in proptest::collection::vec(proptest::collection::vec(record(), 1..40), 1..30),
        segment_bytes in 1024u64..16_384,
        index_interval in 1u64..2048,
        reads in proptest::collection::vec((any::<proptest::sample::Index>(), 1usize..200, 1usize..20_000), 1..20),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path()).expect("open");
        let mut config = TopicConfig::new(1).with_segment_bytes(segment_bytes).with_durability(Durability::None);
        config.index_interval_bytes = index_interval;
        log.create_topic("t", config).expect("create");
        let all: Vec<Record> = batches.iter().flatten().cloned().collect();

        let mut writer = log.writer("t", 0).expect("writer");
        let mut next = 0u64;
        for batch in &batches {
            let ack = writer.append_batch(batch).expect("append");
            prop_assert_eq!(ack.base_offset, next);
            prop_assert_eq!(ack.last_offset, next + batch.len() as u64 - 1);
            next += batch.len() as u64;
        }
        prop_assert_eq!(writer.end_offset(), all.len() as u64);

        for reopen in [false, true] {
            if reopen {
                drop(writer);
                writer = log.writer("t", 0).expect("reopen");
                prop_assert_eq!(writer.end_offset(), all.len() as u64);
            }
            for (index, max_records, max_bytes) in &reads {
                let from = index.index(all.len() + 1) as u64;
                let got = read_from(&log, from, ReadLimit { max_records: *max_records, max_bytes: *max_bytes });
                let available = all.len() as u64 - from;
                if available == 0 {
                    prop_assert!(got.is_empty());
                    continue;
                }
                prop_assert!(!got.is_empty());
                prop_assert!(got.len() <= *max_records);
                for (i, r) in got.iter().enumerate() {
                    prop_assert_eq!(r.offset, from + i as u64);
                    prop_assert_eq!(&r.record, &all[(from as usize) + i]);
                }
            }
            prop_assert_eq!(common::read_all(&log, 0, 0, 64).into_iter().map(|r| r.record).collect::<Vec<_>>(), all.clone());
        }
    }
}
