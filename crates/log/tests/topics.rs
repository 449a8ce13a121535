//! Topics: create, list, describe, delete, name validation, configuration persistence and
//! the producer's partitioning.

mod common;

use std::time::Duration;

use common::log_with;
use millstream_log::{Durability, Log, LogError, ReadLimit, Record, TopicConfig, TOPIC_CONFIG_FILE};

#[test]
fn create_list_describe_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    assert!(log.list_topics().expect("list").is_empty());
    let config = TopicConfig::new(3)
        .with_retention_bytes(Some(1 << 20))
        .with_retention_ms(Some(3_600_000))
        .with_segment_bytes(64 << 10)
        .with_durability(Durability::Interval(Duration::from_millis(50)));
    log.create_topic("orders", config.clone()).expect("create");
    log.create_topic("clicks", TopicConfig::new(1)).expect("create");
    assert_eq!(log.list_topics().expect("list"), ["clicks", "orders"]);
    assert!(matches!(log.create_topic("orders", TopicConfig::new(1)), Err(LogError::TopicExists { .. })));

    // The configuration is persisted and read back by another Log on the same directory.
    let other = Log::open(dir.path()).expect("open again");
    assert_eq!(other.topic_config("orders").expect("config"), config);
    let json =
        std::fs::read_to_string(dir.path().join("orders").join(TOPIC_CONFIG_FILE)).expect("topic.json");
    assert!(json.contains("\"interval_ms\": 50"), "{json}");

    let mut producer = log.producer("orders").expect("producer");
    producer.append_to(1, &[Record::new("a"), Record::new("b")]).expect("append");
    producer.append_to(2, &[Record::new("c")]).expect("append");
    drop(producer);
    let description = log.describe_topic("orders").expect("describe");
    assert_eq!(description.name, "orders");
    assert_eq!(description.config, config);
    let offsets: Vec<(u32, u64, u64, usize)> = description
        .partitions
        .iter()
        .map(|p| (p.partition, p.start_offset, p.end_offset, p.segments))
        .collect();
    assert_eq!(offsets, [(0, 0, 0, 0), (1, 0, 2, 1), (2, 0, 1, 1)]);
    assert!(description.partitions[1].bytes > description.partitions[2].bytes);

    log.delete_topic("orders").expect("delete");
    assert_eq!(log.list_topics().expect("list"), ["clicks"]);
    assert!(!dir.path().join("orders").exists());
    assert!(matches!(log.describe_topic("orders"), Err(LogError::TopicNotFound { .. })));
    assert!(matches!(log.delete_topic("orders"), Err(LogError::TopicNotFound { .. })));
    assert!(matches!(log.writer("orders", 0), Err(LogError::TopicNotFound { .. })));
    assert!(matches!(log.reader("orders", 0, 0), Err(LogError::TopicNotFound { .. })));
    // The name can be used again, starting from offset 0.
    log.create_topic("orders", TopicConfig::new(1)).expect("recreate");
    assert_eq!(log.offsets("orders", 0).expect("offsets"), (0, 0));
}

#[test]
fn bad_names_and_configs_are_rejected_with_typed_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    for name in ["", ".", "..", "../escape", "a/b", "a\\b", "with space", ".hidden"] {
        match log.create_topic(name, TopicConfig::new(1)) {
            Err(LogError::InvalidTopicName { name: n, reason }) => {
                assert_eq!(n, name);
                assert!(!reason.is_empty());
            }
            other => panic!("{name:?}: expected InvalidTopicName, got {other:?}"),
        }
        assert!(matches!(log.writer(name, 0), Err(LogError::InvalidTopicName { .. })));
        assert!(matches!(log.delete_topic(name), Err(LogError::InvalidTopicName { .. })));
    }
    assert!(!dir.path().parent().expect("parent").join("escape").exists());
    assert!(matches!(log.create_topic("t", TopicConfig::new(0)), Err(LogError::InvalidConfig { .. })));
    assert!(matches!(
        log.create_topic("t", TopicConfig::new(1).with_segment_bytes(100)),
        Err(LogError::InvalidConfig { .. })
    ));
    assert!(log.list_topics().expect("list").is_empty(), "nothing half-created is listed");
    log.create_topic("t", TopicConfig::new(2)).expect("create");
    assert!(matches!(
        log.writer("t", 2),
        Err(LogError::PartitionNotFound { partition: 2, partitions: 2, .. })
    ));
}

#[test]
fn leftovers_and_foreign_directories_are_handled() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join(".deleting-old-1-2").join("0")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("not-a-topic")).expect("mkdir");
    let log = Log::open(dir.path()).expect("open");
    assert!(!dir.path().join(".deleting-old-1-2").exists());
    assert!(log.list_topics().expect("list").is_empty());
    assert!(matches!(
        log.create_topic("not-a-topic", TopicConfig::new(1)),
        Err(LogError::TopicExists { .. })
    ));
}

#[test]
fn keyless_records_go_round_robin_one_partition_per_call() {
    let (_dir, log) = log_with(TopicConfig::new(3).with_durability(Durability::None));
    let mut producer = log.producer("t").expect("producer");
    let mut partitions = Vec::new();
    for i in 0..6 {
        let acks =
            producer.append(&[Record::new(format!("a{i}")), Record::new(format!("b{i}"))]).expect("append");
        assert_eq!(acks.len(), 1, "keyless records of one call stay together");
        assert_eq!(acks[0].ack.record_count(), 2);
        partitions.push(acks[0].partition);
    }
    assert_eq!(partitions, [0, 1, 2, 0, 1, 2]);
    // Keyed records go where the key hashes, mixed batches are split.
    let key = b"user-42";
    let expected = millstream_log::partition_for_key(key, 3);
    assert_eq!(producer.partition_for(Some(key)), Some(expected));
    let acks = producer
        .append(&[Record::new("x").with_key(&key[..]), Record::new("y"), Record::new("z").with_key(&key[..])])
        .expect("append");
    let keyed = acks.iter().find(|a| a.partition == expected).expect("keyed partition");
    assert!(keyed.ack.record_count() >= 2);
    assert_eq!(acks.iter().map(|a| a.ack.record_count()).sum::<u64>(), 3);
    let read = log.read("t", expected, keyed.ack.base_offset, ReadLimit::default()).expect("read");
    assert!(read.iter().any(|r| r.record.value == "x"));
    producer.flush().expect("flush");
    assert_eq!(producer.apply_retention().expect("retention").len(), 3);
}

#[test]
fn longest_names_work_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let name = "n".repeat(millstream_log::MAX_NAME_LEN);
    log.create_topic(&name, TopicConfig::new(1)).expect("create");
    assert_eq!(log.list_topics().expect("list"), vec![name.clone()]);
    let mut w = log.writer(&name, 0).expect("writer");
    let id = "i".repeat(millstream_log::MAX_STAGED_ID_LEN);
    let mut batch = w.begin_staged(&id).expect("begin");
    batch.stage([Record::new("v")]);
    w.persist(&batch).expect("persist");
    w.commit(&id).expect("commit");
    assert!(matches!(w.begin_staged(&format!("{id}x")), Err(LogError::InvalidStagedId { .. })));
    drop(w);
    assert_eq!(log.read(&name, 0, 0, ReadLimit::default()).expect("read").len(), 1);
    log.delete_topic(&name).expect("delete");
    assert!(log.list_topics().expect("list").is_empty());
}

#[test]
fn types_can_move_to_worker_threads() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<millstream_log::PartitionWriter>();
    send::<millstream_log::Producer>();
    send::<millstream_log::Reader>();
    send::<Log>();
    sync::<Log>();
    send::<LogError>();
    sync::<LogError>();
}
