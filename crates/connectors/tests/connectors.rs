//! The connectors in running pipelines: generator determinism across worker counts,
//! file round trips through the sinks and sources, and error reporting.

use millstream_connectors::rand::Rng;
use millstream_connectors::{
    GeneratorSource, JsonLinesSink, JsonLinesSource, StdoutSink, TextSink, TextSource,
};
use millstream_model::combiners::Sum;
use millstream_model::{Duration, FixedWindows, Timestamp};
use millstream_runtime::{Pipeline, Runner, RuntimeError, WatermarkStrategy, Window};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("millstream-it-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn glob(&self, pattern: &str) -> String {
        self.0.join(pattern).display().to_string()
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

/// Events `(key, value)` whose timestamps jitter back by up to 2 s from `i` seconds.
fn events(seed: u64) -> GeneratorSource<(String, i64)> {
    GeneratorSource::new(seed, |rng, i| {
        let key = format!("k{}", rng.gen_range(0..5));
        let value = rng.gen_range(1..=100);
        let ts = Timestamp::from_millis(i as i64 * 1000 - rng.gen_range(0..2000));
        ((key, value), ts)
    })
    .max_elements(600)
    .watermark_strategy(WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(2)))
}

#[test]
fn generator_output_is_the_same_on_one_and_two_workers() {
    let mut runs = Vec::new();
    for (workers, partitions) in [(1, None), (2, None), (2, Some(3)), (1, Some(4))] {
        let p = Pipeline::new();
        let source = match partitions {
            Some(n) => events(7).partitions(n),
            None => events(7),
        };
        let input = p.read("Events", source);
        let raw = input.collect();
        let sums = input
            .window_into(Window::into(FixedWindows::of(Duration::from_secs(60))))
            .combine_per_key(Sum)
            .collect();
        let result = Runner::new().workers(workers).run(&p).expect("run");
        assert_eq!(result.counter_total("/dropped_late"), 0);
        let raw: Vec<_> = raw.windowed().into_iter().map(|wv| (wv.value, wv.timestamp)).collect();
        let sums: Vec<_> = sums.windowed().into_iter().map(|wv| (wv.window, wv.value)).collect();
        assert_eq!(raw.len(), 600);
        runs.push((sorted(raw), sorted(sums)));
    }
    for other in &runs[1..] {
        assert!(runs[0] == *other, "outputs differ between worker/partition counts");
    }
    let p = Pipeline::new();
    let other = p.read("Events", events(8)).collect();
    Runner::new().workers(1).run(&p).expect("run");
    let other: Vec<_> = other.windowed().into_iter().map(|wv| (wv.value, wv.timestamp)).collect();
    assert!(sorted(other) != runs[0].0, "another seed gives other events");
}

#[test]
fn generator_rate_limit_and_duration_in_a_pipeline() {
    let p = Pipeline::new();
    let n = p
        .read(
            "Slow",
            GeneratorSource::new(1, |_, i| (i, Timestamp::from_millis(i as i64)))
                .rate_per_second(100.0)
                .max_elements(40),
        )
        .collect();
    let start = Instant::now();
    Runner::new().workers(2).run(&p).expect("run");
    assert_eq!(n.values().len(), 40);
    // Two partitions at 50/s each: 20 elements each, the first at once.
    assert!(start.elapsed() >= std::time::Duration::from_millis(350), "{:?}", start.elapsed());

    let p = Pipeline::new();
    let n = p
        .read(
            "Timed",
            GeneratorSource::new(1, |_, i| (i, Timestamp::from_millis(i as i64)))
                .rate_per_second(200.0)
                .max_duration(std::time::Duration::from_millis(300)),
        )
        .collect();
    Runner::new().workers(2).run(&p).expect("run");
    // Exactly what the schedule has in 300 ms at 200/s, however the reads were timed.
    assert_eq!(n.values().len(), 60);
}

#[test]
fn cancelling_stops_an_unbounded_generator() {
    let p = Pipeline::new();
    let out = p
        .read(
            "Forever",
            GeneratorSource::new(1, |_, i| (i, Timestamp::from_millis(i as i64))).rate_per_second(1000.0),
        )
        .collect();
    let runner = Runner::new().workers(2);
    let cancel = runner.cancel_handle();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        cancel.cancel();
    });
    runner.run(&p).expect("run");
    stopper.join().expect("stopper");
    assert!(!out.values().is_empty());
}

#[test]
fn text_round_trip() {
    let dir = TempDir::new("text");
    let lines: Vec<String> = (0..500).map(|i| format!("line {i} ünïcode")).collect();
    let p = Pipeline::new();
    p.create(lines.clone()).write_to("Write", TextSink::new(dir.path().join("out"), |s: &String| s.clone()));
    Runner::new().workers(2).run(&p).expect("write");
    assert!(dir.path().join("out-00000-of-00002.txt").is_file());
    assert!(dir.path().join("out-00001-of-00002.txt").is_file());

    for workers in [1, 3] {
        let p = Pipeline::new();
        let back = p.read("Read", TextSource::new(dir.glob("out-*.txt"))).collect();
        Runner::new().workers(workers).run(&p).expect("read");
        assert_eq!(sorted(back.values()), sorted(lines.clone()));
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Score {
    team: String,
    score: i64,
    at: i64,
}

#[test]
fn json_lines_round_trip_with_timestamps() {
    let dir = TempDir::new("json");
    let scores: Vec<Score> = (0..300)
        .map(|i| Score { team: ["red", "blue", "green"][i % 3].into(), score: i as i64, at: i as i64 * 1000 })
        .collect();
    let p = Pipeline::new();
    p.create(scores.clone()).write_to("Write", JsonLinesSink::new(dir.path().join("scores")));
    Runner::new().workers(2).run(&p).expect("write");

    let p = Pipeline::new();
    let read = p.read(
        "Read",
        JsonLinesSource::<Score>::new(dir.glob("scores*.jsonl"))
            .with_timestamp_fn(|s| Timestamp::from_millis(s.at)),
    );
    let back = read.collect();
    let totals = read
        .map(|s| (s.team, s.score))
        .window_into(Window::into(FixedWindows::of(Duration::from_secs(100))))
        .combine_per_key(Sum)
        .collect();
    let result = Runner::new().workers(2).run(&p).expect("read");
    assert_eq!(result.counter_total("/dropped_late"), 0, "file records are never late");
    assert_eq!(sorted(back.values()), sorted(scores.clone()));
    for wv in back.windowed() {
        assert_eq!(wv.timestamp, Timestamp::from_millis(wv.value.at));
    }
    let total: i64 = totals.values().iter().map(|(_, v)| v).sum();
    assert_eq!(total, scores.iter().map(|s| s.score).sum::<i64>());
    assert_eq!(totals.values().len(), 3 * 3, "three teams in three windows");
}

fn source_error(result: Result<millstream_runtime::PipelineResult, RuntimeError>) -> String {
    match result {
        Err(e @ RuntimeError::Source { .. }) => e.to_string(),
        Err(other) => panic!("expected a source error, got {other}"),
        Ok(_) => panic!("expected the run to fail"),
    }
}

#[test]
fn missing_files_and_empty_globs_are_clear_errors() {
    let dir = TempDir::new("missing");
    let missing = dir.path().join("nope.txt").display().to_string();
    let p = Pipeline::new();
    let _ = p.read("Read", TextSource::new(missing.clone())).collect();
    let e = source_error(Runner::new().workers(2).run(&p));
    assert!(e.contains(&missing) && e.contains("cannot open"), "{e}");

    let p = Pipeline::new();
    let _ = p.read("Read", JsonLinesSource::<Score>::new(dir.glob("*.jsonl"))).collect();
    let e = source_error(Runner::new().workers(1).run(&p));
    assert!(e.contains("no file matches") && e.contains("*.jsonl"), "{e}");
}

#[test]
fn a_bad_json_line_fails_the_job_naming_file_and_line() {
    let dir = TempDir::new("badjson");
    let good = r#"{"team":"red","score":1,"at":0}"#;
    std::fs::write(dir.path().join("a.jsonl"), format!("{good}\n{good}\n")).expect("write");
    std::fs::write(
        dir.path().join("b.jsonl"),
        format!("{good}\n\n{{\"team\":\"red\",\"score\":\"x\"}}\n{good}\n"),
    )
    .expect("write");
    let p = Pipeline::new();
    let _ = p.read("Scores", JsonLinesSource::<Score>::new(dir.glob("*.jsonl"))).collect();
    let e = source_error(Runner::new().workers(2).run(&p));
    let at = format!("{}:3", dir.path().join("b.jsonl").display());
    assert!(e.contains(&at), "{e} should name {at}");
    assert!(e.contains("Scores") && e.contains("invalid type"), "{e}");
}

#[test]
fn invalid_utf8_fails_the_job_naming_file_and_line() {
    let dir = TempDir::new("utf8");
    let path = dir.path().join("latin1.txt");
    std::fs::write(&path, b"ok\ncaf\xe9\n").expect("write");
    let p = Pipeline::new();
    let _ = p.read("Read", TextSource::new(path.display().to_string())).collect();
    let e = source_error(Runner::new().workers(1).run(&p));
    assert!(e.contains(&format!("{}:2", path.display())) && e.contains("invalid UTF-8"), "{e}");
}

#[test]
fn empty_files_are_fine() {
    let dir = TempDir::new("empty");
    std::fs::write(dir.path().join("empty.txt"), b"").expect("write");
    std::fs::write(dir.path().join("empty.jsonl"), b"").expect("write");
    let p = Pipeline::new();
    let text = p.read("Text", TextSource::new(dir.glob("*.txt"))).collect();
    let json = p.read("Json", JsonLinesSource::<Score>::new(dir.glob("*.jsonl"))).collect();
    Runner::new().workers(2).run(&p).expect("run");
    assert!(text.values().is_empty() && json.values().is_empty());
}

#[test]
fn stdout_sink_prints_with_window_and_pane() {
    let p = Pipeline::new();
    p.create(vec![("a".to_string(), 1i64), ("a".to_string(), 2)]).combine_per_key(Sum).write_to(
        "Print",
        StdoutSink::new(|wv| {
            format!("stdout-sink-test {:?} {} {}", wv.value, wv.window.max_timestamp(), wv.pane)
        }),
    );
    Runner::new().workers(2).run(&p).expect("run");
}
