//! The embedded log's connectors in running pipelines: windows over a multi-partition
//! topic, restores from checkpointed offsets, the exactly-once sink across failures,
//! follow mode, and the errors for missing topics, undecodable records and offsets that
//! retention deleted.

use millstream_checkpoint::CheckpointStore;
use millstream_connectors::log::{
    LogExactlyOnceSink, LogSource, LogStartOffset, HEADER_EPOCH, HEADER_RESTORED, HEADER_RUN, HEADER_SINK,
};
use millstream_connectors::BadRecordPolicy;
use millstream_log::{Log, ReadLimit, Record, StoredRecord, TopicConfig};
use millstream_model::combiners::{Count, Sum};
use millstream_model::{Duration, FixedWindows, Timestamp, WindowedValue};
use millstream_runtime::{
    CheckpointConfig, Pipeline, Runner, Source, TransactionalSink, WatermarkStrategy, Window,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("millstream-logit-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
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

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Every record of every partition of `topic`.
fn read_all(log: &Log, topic: &str) -> Vec<(u32, StoredRecord)> {
    let partitions = log.topic_config(topic).unwrap().partitions;
    let mut out = Vec::new();
    for p in 0..partitions {
        let mut reader = log.reader(topic, p, 0).unwrap();
        loop {
            let batch = reader.poll(ReadLimit::default()).unwrap();
            if batch.is_empty() {
                break;
            }
            out.extend(batch.into_iter().map(|r| (p, r)));
        }
    }
    out
}

fn header<'a>(r: &'a StoredRecord, name: &str) -> Option<&'a str> {
    r.record.headers.iter().find(|(n, _)| n == name).and_then(|(_, v)| std::str::from_utf8(v).ok())
}

#[test]
fn windows_over_a_multi_partition_topic_with_per_partition_watermarks() {
    let dir = TempDir::new("windows");
    let log = Log::open(dir.path()).unwrap();
    log.create_topic("events", TopicConfig::new(3)).unwrap();
    // Each partition is in order up to 1.5 s of jitter, but the partitions are far apart
    // in event time: partition 0 covers 0-60 s, partition 1 100-160 s, partition 2
    // 200-260 s. A watermark shared by the partitions would make most of partitions 0 and
    // 1 late; per-partition watermarks (the minimum over partitions) lose nothing.
    let mut expected: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for p in 0..3u32 {
        let mut writer = log.writer("events", p).unwrap();
        let mut batch = Vec::new();
        for i in 0..600i64 {
            let ts = i64::from(p) * 100_000 + i * 100 - (i * 37 % 15) * 100;
            let key = format!("k{}", (i + i64::from(p)) % 4);
            let value = i % 10 + 1;
            *expected.entry((ts.div_euclid(10_000) * 10_000, key.clone())).or_default() += value;
            batch.push(Record::new(serde_json::to_vec(&(key, value)).unwrap()).with_timestamp(ts));
            if batch.len() == 50 {
                writer.append_batch(&batch).unwrap();
                batch.clear();
            }
        }
    }
    for workers in [1, 2] {
        let p = Pipeline::new();
        let sums = p
            .read(
                "Events",
                LogSource::<(String, i64)>::json(dir.path(), "events").bounded().with_watermark_strategy(
                    WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(2)),
                ),
            )
            .window_into(Window::into(FixedWindows::of(Duration::from_secs(10))))
            .combine_per_key(Sum)
            .collect();
        let result = Runner::new().workers(workers).run(&p).expect("the job runs");
        assert_eq!(result.counter_total("/dropped_late"), 0, "{workers} workers");
        let got: BTreeMap<(i64, String), i64> = sums
            .windowed()
            .into_iter()
            .map(|wv: WindowedValue<(String, i64)>| {
                let start = wv.window.max_timestamp().millis() + 1 - 10_000;
                ((start, wv.value.0), wv.value.1)
            })
            .collect();
        assert_eq!(sums.windowed().len(), expected.len(), "one pane per window and key");
        assert_eq!(got, expected, "{workers} workers");
    }
}

/// Writes `n` numbers to topic `topic` (3 partitions), keyed by the number mod 11,
/// timestamped by the number in milliseconds, in batches of 100.
fn write_numbers(log: &Log, topic: &str, n: u64) {
    log.create_topic(topic, TopicConfig::new(3)).unwrap();
    let mut producer = log.producer(topic).unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let records: Vec<Record> = chunk
            .iter()
            .map(|i| Record::new(i.to_string()).with_key(format!("k{}", i % 11)).with_timestamp(*i as i64))
            .collect();
        producer.append(&records).unwrap();
    }
}

/// The numbers of `topic`, failing on `fail_at`, counting the records decoded, slowly
/// enough that checkpoints are taken while they are read.
fn numbers(dir: &Path, topic: &str, fail_at: Option<u64>, decoded: Arc<AtomicU64>) -> LogSource<u64> {
    LogSource::new(dir, topic, move |r: &StoredRecord| {
        let text = std::str::from_utf8(&r.record.value).map_err(|e| e.to_string())?;
        let x: u64 = text.parse().map_err(|e| format!("{text:?}: {e}"))?;
        if Some(x) == fail_at {
            return Err("injected failure".into());
        }
        if decoded.fetch_add(1, Ordering::Relaxed).is_multiple_of(20) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(x)
    })
    .bounded()
    // Small reads, so that the source ends epochs between them.
    .with_read_limit(ReadLimit::records(50))
}

fn checkpointing(dir: &Path) -> CheckpointConfig {
    CheckpointConfig::new(CheckpointStore::local(dir).unwrap()).interval(Duration::from_millis(10))
}

#[test]
fn a_restored_job_resumes_at_the_checkpointed_offsets() {
    let dir = TempDir::new("restore");
    let log = Log::open(dir.path().join("log")).unwrap();
    let n = 6_000u64;
    write_numbers(&log, "numbers", n);
    let run = |fail_at: Option<u64>, decoded: Arc<AtomicU64>| {
        let p = Pipeline::new();
        let input = p.read("Numbers", numbers(log.root(), "numbers", fail_at, decoded));
        let sums = input.map(|x| (x % 7, x)).combine_per_key(Sum).collect();
        let counts = input.map(|x| (x % 7, x)).combine_per_key(Count).collect();
        let result = Runner::new().workers(2).checkpointing(checkpointing(&dir.path().join("chk"))).run(&p);
        result.map(|_| (sorted(sums.values()), sorted(counts.values())))
    };
    let first = Arc::new(AtomicU64::new(0));
    let err = run(Some(4_500), first.clone()).unwrap_err().to_string();
    assert!(err.contains("injected failure"), "{err}");
    assert!(err.contains("topic \"numbers\" partition") && err.contains("offset"), "{err}");
    let second = Arc::new(AtomicU64::new(0));
    let (sums, counts) = run(None, second.clone()).expect("the restored job runs");
    let expected_sums: Vec<(u64, u64)> = (0..7).map(|k| (k, (0..n).filter(|x| x % 7 == k).sum())).collect();
    let expected_counts: Vec<(u64, u64)> =
        (0..7).map(|k| (k, (0..n).filter(|x| x % 7 == k).count() as u64)).collect();
    assert_eq!(sums, expected_sums);
    assert_eq!(counts, expected_counts);
    let (first, second) = (first.load(Ordering::Relaxed), second.load(Ordering::Relaxed));
    assert!(second < n, "the restored job read {second} of {n} records: it did not resume at its offsets");
    assert!(first + second >= n, "{first} + {second} records read, fewer than {n}");
}

#[test]
fn the_exactly_once_sink_publishes_each_result_once_across_a_failure() {
    // Workers before and after the failure: the same, more (rescale) and fewer.
    for (before, after) in [(1, 1), (2, 2), (2, 3), (3, 1)] {
        let dir = TempDir::new("eo");
        let log = Log::open(dir.path().join("log")).unwrap();
        let n = 6_000u64;
        write_numbers(&log, "in", n);
        log.create_topic("out", TopicConfig::new(3)).unwrap();
        log.create_topic("sums", TopicConfig::new(2)).unwrap();
        let chk = dir.path().join("chk");
        let run = |workers: usize, fail_at: Option<u64>| {
            let p = Pipeline::new();
            let input = p.read("Numbers", numbers(log.root(), "in", fail_at, Arc::new(AtomicU64::new(0))));
            input.write_exactly_once(
                "Out",
                LogExactlyOnceSink::json(log.root(), "out", "numbers", |x: &u64| Some(x.to_string())),
            );
            input.map(|x| (x % 7, x)).combine_per_key(Sum).write_exactly_once(
                "Sums",
                LogExactlyOnceSink::json(log.root(), "sums", "sums", |(k, _): &(u64, u64)| {
                    Some(k.to_string())
                }),
            );
            Runner::new().workers(workers).checkpointing(checkpointing(&chk)).run(&p).map(|_| ())
        };
        let err = run(before, Some(4_500)).unwrap_err().to_string();
        assert!(err.contains("injected failure"), "{err}");
        let published = read_all(&log, "out").len() as u64;
        assert!(published > 0, "checkpoints completed and published output before the failure");
        assert!(published < n, "nothing after the failure point is published ({published})");
        run(after, None).expect("the restored job runs");

        let out = read_all(&log, "out");
        let values: Vec<u64> =
            sorted(out.iter().map(|(_, r)| serde_json::from_slice(&r.record.value).unwrap()).collect());
        assert_eq!(values, (0..n).collect::<Vec<_>>(), "{before} then {after} workers");
        for (p, r) in &out {
            let key = r.record.key.as_ref().expect("a key");
            assert_eq!(*p, millstream_log::partition_for_key(key, 3), "keyed records go to their partition");
            assert_eq!(header(r, HEADER_SINK), Some("numbers"));
            assert!(header(r, HEADER_EPOCH).and_then(|e| e.parse::<u64>().ok()).is_some_and(|e| e > 0));
            assert!(header(r, HEADER_RUN).is_some_and(|run| run.starts_with('r')));
            assert!(header(r, HEADER_RESTORED).is_some());
            // The record's timestamp is the element's: the number in milliseconds.
            assert_eq!(r.record.timestamp_ms.to_string().as_bytes(), &r.record.value[..]);
        }
        let sums: Vec<(u64, u64)> = sorted(
            read_all(&log, "sums")
                .iter()
                .map(|(_, r)| serde_json::from_slice(&r.record.value).unwrap())
                .collect(),
        );
        let expected: Vec<(u64, u64)> = (0..7).map(|k| (k, (0..n).filter(|x| x % 7 == k).sum())).collect();
        assert_eq!(sums, expected, "{before} then {after} workers");
        // Nothing is left staged.
        for topic in ["out", "sums"] {
            for p in 0..log.topic_config(topic).unwrap().partitions {
                assert_eq!(log.writer(topic, p).unwrap().list_staged().unwrap(), Vec::<String>::new());
            }
        }
    }
}

#[test]
fn without_checkpointing_the_sink_commits_when_the_input_ends() {
    let dir = TempDir::new("nochk");
    let log = Log::open(dir.path()).unwrap();
    log.create_topic("out", TopicConfig::new(2)).unwrap();
    let p = Pipeline::new();
    p.create(vec!["a".to_string(), "b".to_string(), "c".to_string()]).write_exactly_once(
        "Out",
        LogExactlyOnceSink::new(dir.path(), "out", "letters", |v: &WindowedValue<String>| {
            Ok(Record::new(v.value.clone()))
        }),
    );
    Runner::new().workers(2).run(&p).expect("the job runs");
    let values = sorted(read_all(&log, "out").into_iter().map(|(_, r)| r.record.value.to_vec()).collect());
    assert_eq!(values, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn the_sink_commits_idempotently_aborts_leftovers_and_reports_output_it_cannot_withdraw() {
    let dir = TempDir::new("recover");
    let log = Log::open(dir.path()).unwrap();
    log.create_topic("out", TopicConfig::new(2)).unwrap();
    let value = |x: u64| WindowedValue::in_global_window(x, Timestamp::from_millis(x as i64));
    let sink = |strict: bool| {
        let s = LogExactlyOnceSink::json(dir.path(), "out", "s", |x: &u64| Some(x.to_string()));
        if strict {
            s.fail_on_unwithdrawable_output()
        } else {
            s
        }
    };
    let strict = sink(true);
    let mut w = strict.open(0, 1).unwrap();
    w.recover(&[], 0).unwrap();
    w.write(&[value(1), value(2), value(3)]).unwrap();
    let h1 = w.pre_commit(1).unwrap();
    assert!(read_all(&log, "out").is_empty(), "pre-committed records are invisible");
    w.commit(std::slice::from_ref(&h1)).unwrap();
    w.commit(std::slice::from_ref(&h1)).unwrap();
    assert_eq!(read_all(&log, "out").len(), 3, "a repeated commit appends nothing");
    w.write(&[value(4)]).unwrap();
    let h2 = w.pre_commit(2).unwrap();
    w.commit(std::slice::from_ref(&h2)).unwrap();
    w.write(&[value(5)]).unwrap();
    let h3 = w.pre_commit(3).unwrap(); // staged, never committed
    drop(w);

    // Resuming after epoch 2 (the normal case): the staged epoch 3 is aborted, epoch 2 is
    // committed again (a no-op), nothing is reported.
    let mut w = strict.open(0, 1).unwrap();
    w.recover(std::slice::from_ref(&h2), 2).unwrap();
    w.commit(std::slice::from_ref(&h2)).unwrap();
    drop(w);
    for p in 0..2 {
        assert!(log.writer("out", p).unwrap().list_staged().unwrap().is_empty(), "leftovers aborted");
    }
    assert!(strict.open(0, 1).unwrap().commit(&[h3]).unwrap_err().contains("neither staged nor"));
    assert_eq!(read_all(&log, "out").len(), 4);

    // Resuming after epoch 1, while epoch 2 is published: cannot be withdrawn.
    let err = strict.open(0, 1).unwrap().recover(std::slice::from_ref(&h1), 1).unwrap_err();
    assert!(err.contains("epochs 2 of this sink") && err.contains("cannot withdraw"), "{err}");
    assert!(err.contains("topic \"out\"") && err.contains("(sink s)"), "{err}");
    // Without the strict option, a warning.
    sink(false).open(0, 1).unwrap().recover(&[h1], 1).unwrap();
}

#[test]
fn a_missing_topic_or_log_directory_is_a_clear_error() {
    let dir = TempDir::new("missing");
    Log::open(dir.path()).unwrap();
    let p = Pipeline::new();
    p.read("Missing", LogSource::strings(dir.path(), "nope").bounded()).collect();
    let err = Runner::new().workers(1).run(&p).unwrap_err().to_string();
    assert!(err.contains("topic \"nope\" does not exist in log directory"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");

    let nowhere = dir.path().join("no-such-dir");
    let p = Pipeline::new();
    p.read("Missing", LogSource::strings(&nowhere, "t").bounded()).collect();
    let err = Runner::new().workers(1).run(&p).unwrap_err().to_string();
    assert!(err.contains("does not exist") && err.contains(&nowhere.display().to_string()), "{err}");
    assert!(!nowhere.exists(), "the source does not create a log directory");

    let sink = LogExactlyOnceSink::json(dir.path(), "nope", "s", |_: &u64| None);
    let err = TransactionalSink::<u64>::open(&sink, 0, 1).err().expect("an error");
    assert!(err.contains("topic \"nope\" does not exist in log directory"), "{err}");
    let bad = LogExactlyOnceSink::json(dir.path(), "nope", "bad id", |_: &u64| None);
    let err = TransactionalSink::<u64>::open(&bad, 0, 1).err().expect("an error");
    assert!(err.contains("invalid log sink id"), "{err}");
}

#[test]
fn an_undecodable_record_fails_the_job_naming_topic_partition_and_offset() {
    let dir = TempDir::new("undecodable");
    let log = Log::open(dir.path()).unwrap();
    log.create_topic("nums", TopicConfig::new(2)).unwrap();
    let mut w = log.writer("nums", 1).unwrap();
    w.append_batch(&[Record::new("1"), Record::new("2"), Record::new("three"), Record::new("4")]).unwrap();
    drop(w);
    let p = Pipeline::new();
    p.read("Nums", LogSource::<u64>::json(dir.path(), "nums").bounded()).collect();
    let err = Runner::new().workers(2).run(&p).unwrap_err().to_string();
    assert!(err.contains("topic \"nums\" partition 1 offset 2"), "{err}");
    assert!(err.contains("cannot decode record: cannot decode JSON value"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
}

#[test]
fn undecodable_records_go_to_the_dead_letter_output_when_chosen() {
    let dir = TempDir::new("dead");
    let log = Log::open(dir.path()).unwrap();
    log.create_topic("nums", TopicConfig::new(2)).unwrap();
    log.writer("nums", 0).unwrap().append_batch(&[Record::new("1"), Record::new("2")]).unwrap();
    let mut w = log.writer("nums", 1).unwrap();
    w.append_batch(&[Record::new("3"), Record::new("three"), Record::new(&b"\xff"[..]), Record::new("4")])
        .unwrap();
    drop(w);
    let p = Pipeline::new();
    let (nums, dead) = p.read_with_dead_letters(
        "Nums",
        LogSource::<u64>::json(dir.path(), "nums").bounded().bad_record_policy(BadRecordPolicy::DeadLetter),
    );
    let (nums, dead) = (nums.collect(), dead.collect());
    let result = Runner::new().workers(2).run(&p).expect("the job goes on past the bad records");
    assert_eq!(sorted(nums.values()), vec![1, 2, 3, 4]);
    let mut letters = dead.values();
    letters.sort_by(|a, b| a.location.cmp(&b.location));
    assert_eq!(letters.len(), 2, "{letters:?}");
    let at = |offset: u64| format!("log {} topic \"nums\" partition 1 offset {offset}", dir.path().display());
    assert_eq!(letters[0].location, at(1));
    assert!(
        letters[0].error.starts_with("cannot decode record: cannot decode JSON value"),
        "{:?}",
        letters[0]
    );
    assert_eq!(letters[0].payload, "three");
    assert_eq!(letters[1].location, at(2));
    assert_eq!(letters[1].payload_bytes.as_deref(), Some(&b"\xff"[..]));
    assert_eq!(result.counter_total("/dead_letters"), 2);
}

#[test]
fn follow_mode_sees_records_appended_while_the_job_runs() {
    let dir = TempDir::new("follow");
    let log = Log::open(dir.path()).unwrap();
    log.create_topic("live", TopicConfig::new(2)).unwrap();
    log.producer("live").unwrap().append(&[Record::new("before").with_key("a")]).unwrap();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let p = Pipeline::new();
    let sink = seen.clone();
    p.read(
        "Live",
        LogSource::strings(dir.path(), "live")
            .with_watermark_strategy(WatermarkStrategy::in_order().with_idleness(Duration::from_millis(50))),
    )
    .map(move |s: String| {
        sink.lock().unwrap().push(s.clone());
        s
    })
    .collect();
    let runner = Runner::new().workers(2);
    let cancel = runner.cancel_handle();
    let job = std::thread::spawn(move || runner.run(&p).map(|_| ()));
    let wait_for = |n: usize| {
        let start = std::time::Instant::now();
        while seen.lock().unwrap().len() < n {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "saw only {:?}",
                seen.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    wait_for(1);
    let mut producer = log.producer("live").unwrap();
    for i in 0..20 {
        producer.append(&[Record::new(format!("live-{i}")).with_key(format!("k{i}"))]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    wait_for(21);
    cancel.cancel();
    job.join().expect("the job thread").expect("the job stops cleanly when cancelled");
    let mut expected: Vec<String> = (0..20).map(|i| format!("live-{i}")).collect();
    expected.push("before".into());
    assert_eq!(sorted(seen.lock().unwrap().clone()), sorted(expected));
}

#[test]
fn offsets_deleted_by_retention_are_an_error_unless_reset_is_allowed() {
    let dir = TempDir::new("retention");
    let log = Log::open(dir.path()).unwrap();
    log.create_topic("small", TopicConfig::new(1).with_segment_bytes(1024).with_retention_bytes(Some(2048)))
        .unwrap();
    let mut w = log.writer("small", 0).unwrap();
    for i in 0..200 {
        w.append_batch(&[Record::new(format!("record number {i:05} with some padding"))]).unwrap();
    }
    drop(w);
    let (start, end) = log.offsets("small", 0).unwrap();
    assert!(start > 0 && end == 200, "retention deleted the oldest segments ({start}..{end})");

    let source = LogSource::strings(dir.path(), "small").bounded();
    let err = source.reopen(0, 1, &0u64.to_le_bytes()).err().expect("an error");
    let text = err.to_string();
    assert!(text.contains("topic \"small\" partition 0 offset 0"), "{text}");
    assert!(text.contains(&format!("below the partition's start offset {start}")), "{text}");
    let err = source.reopen(0, 1, &[1, 2, 3]).err().expect("an error").to_string();
    assert!(err.contains("bad checkpointed position"), "{err}");

    let read = |source: LogSource<String>| {
        let p = Pipeline::new();
        let out = p.read("Small", source).collect();
        Runner::new().workers(1).run(&p).map(|_| out.values().len() as u64)
    };
    let reset = LogSource::strings(dir.path(), "small").bounded().reset_to_earliest_on_out_of_range();
    assert_eq!(read(reset.clone().start_from(LogStartOffset::Offset(0))).unwrap(), end - start);
    let err = read(LogSource::strings(dir.path(), "small").bounded().start_from(LogStartOffset::Offset(0)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("retention deleted the records"), "{err}");
    assert_eq!(read(reset.clone().start_from(LogStartOffset::Offset(190))).unwrap(), 10);
    assert_eq!(read(reset.start_from(LogStartOffset::Latest)).unwrap(), 0);
}
