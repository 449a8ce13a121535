//! The watching source (`JsonLinesSource::watch` and friends) in running jobs: files
//! written while the job runs are all read exactly once, windows fire while it runs
//! (per-partition watermarks with idleness), and a job that fails mid-stream resumes
//! from its checkpoint without reading a file twice or skipping one.

use millstream_checkpoint::CheckpointStore;
use millstream_connectors::{CsvSource, ExactlyOnceFileSink, JsonLinesSource};
use millstream_model::combiners::Sum;
use millstream_model::{Duration, FixedWindows, Timestamp, WindowedValue};
use millstream_runtime::{CheckpointConfig, Pipeline, Runner, WatermarkStrategy, Window};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

mod common;
use common::{published, InjectedFailure};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("watch", name)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Event {
    id: u64,
    at: i64,
}

/// Writes file `f` of `per_file` events (ids `f * per_file ..`, at `id * 10` ms): under a
/// hidden name renamed into place for even `f`, directly for odd `f`.
fn write_events(dir: &Path, f: u64, per_file: u64) {
    let text: String = (f * per_file..(f + 1) * per_file)
        .map(|id| format!("{{\"id\":{id},\"at\":{}}}\n", id * 10))
        .collect();
    let name = format!("events-{f:03}.jsonl");
    if f & 1 == 0 {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, dir.join(name)).expect("rename");
    } else {
        std::fs::write(dir.join(name), text).expect("write");
    }
}

fn wait(what: &str, done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < TIMEOUT, "waited too long for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn files_added_while_the_job_runs_are_read_exactly_once() {
    let dir = temp_dir("live");
    let (files, per_file) = (24u64, 50u64);
    // Some files are there before the job starts.
    for f in 0..4 {
        write_events(&dir, f, per_file);
    }
    let seen = Arc::new(AtomicUsize::new(0));
    let fired = Arc::new(Mutex::new(Vec::<(i64, i64)>::new()));
    let p = Pipeline::new();
    let events = p.read(
        "Events",
        JsonLinesSource::<Event>::new(dir.display().to_string())
            .with_timestamp_fn(|e: &Event| Timestamp::from_millis(e.at))
            .watch()
            .poll_interval(Duration::from_millis(20))
            .with_partitions(5)
            // Files reach the partitions a few polls apart at most: 3 s of event time (six
            // files) of out-of-orderness leaves nothing late.
            .watermark_strategy(
                WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(3))
                    .with_idleness(Duration::from_millis(100)),
            ),
    );
    let counter = seen.clone();
    let ids = events
        .map(move |e: Event| {
            counter.fetch_add(1, Ordering::SeqCst);
            e.id
        })
        .collect();
    // Windows of 1 s of event time, keyed by their start second: 100 events each (file
    // `f` covers [f/2 s, (f+1)/2 s)).
    let out = fired.clone();
    events
        .map(|e: Event| (e.at / 1000, 1i64))
        .window_into(Window::into(FixedWindows::of(Duration::from_secs(1))))
        .combine_per_key(Sum)
        .map(move |(window, count): (i64, i64)| {
            out.lock().unwrap().push((window, count));
            count
        });
    let runner = Runner::new().workers(2);
    let cancel = runner.cancel_handle();
    let writer = {
        let (dir, seen, fired) = (dir.clone(), seen.clone(), fired.clone());
        std::thread::spawn(move || {
            for f in 4..files {
                write_events(&dir, f, per_file);
                std::thread::sleep(std::time::Duration::from_millis(30));
            }
            let total = (files * per_file) as usize;
            wait("every record", || seen.load(Ordering::SeqCst) >= total);
            wait("a window to fire while the job runs", || !fired.lock().unwrap().is_empty());
            let fired_while_running = fired.lock().unwrap().clone();
            // A few more polls: a file read twice would show now.
            std::thread::sleep(std::time::Duration::from_millis(200));
            cancel.cancel();
            fired_while_running
        })
    };
    runner.run(&p).expect("the job stops cleanly when cancelled");
    let fired_while_running = writer.join().expect("writer");
    let mut ids = ids.values();
    ids.sort();
    assert_eq!(ids, (0..files * per_file).collect::<Vec<u64>>(), "every record exactly once");
    // Windows fired while the job ran had all their records (no partition was behind).
    for (window, count) in &fired_while_running {
        assert_eq!(*count, 100, "window {window} fired while running: {fired_while_running:?}");
    }
    let mut windows = fired.lock().unwrap().clone();
    windows.sort();
    assert_eq!(windows, (0..(files / 2) as i64).map(|w| (w, 100)).collect::<Vec<_>>(), "one pane per window");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A checkpointed job watching `dir` for CSV files of ids, on two workers (epochs every
/// 15 ms, 100 µs per record) into an exactly-once file sink; each record is counted by
/// `failure`, which may fail the job. `driver` runs beside it and may cancel it.
fn run_watching(
    dir: &Path,
    out: &Path,
    checkpoints: &Path,
    failure: Arc<InjectedFailure>,
    driver: impl FnOnce(millstream_runtime::CancelHandle) + Send + 'static,
) -> Result<(), String> {
    let p = Pipeline::new();
    let source = CsvSource::<(u64,)>::new(format!("{}/*.csv", dir.display()))
        .watch()
        .poll_interval(Duration::from_millis(10))
        .with_partitions(3);
    let ids = p.read("Ids", source).try_map("Slow", move |(id,): (u64,)| {
        std::thread::sleep(std::time::Duration::from_micros(100));
        failure.record(id)?;
        Ok(id)
    });
    ids.write_exactly_once(
        "Out",
        ExactlyOnceFileSink::new(out, "ids", |v: &WindowedValue<u64>| v.value.to_string()),
    );
    let store = CheckpointStore::local(checkpoints).map_err(|e| e.to_string())?;
    let runner = Runner::new()
        .workers(2)
        .max_in_flight(500)
        .checkpointing(CheckpointConfig::new(store).interval(Duration::from_millis(15)));
    let cancel = runner.cancel_handle();
    let driver = std::thread::spawn(move || driver(cancel));
    let result = runner.run(&p).map(|_| ()).map_err(|e| e.to_string());
    driver.join().map_err(|_| "the driver panicked".to_owned())?;
    result
}

fn write_ids(dir: &Path, f: u64, per_file: u64) {
    let text: String = std::iter::once("id\n".to_owned())
        .chain((f * per_file..(f + 1) * per_file).map(|id| format!("{id}\n")))
        .collect();
    let tmp = dir.join(format!(".ids-{f:03}.csv"));
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, dir.join(format!("ids-{f:03}.csv"))).expect("rename");
}

#[test]
fn a_watching_job_restored_mid_stream_reads_every_file_exactly_once() {
    let dir = temp_dir("restore");
    let (input, out, chk) = (dir.join("in"), dir.join("out"), dir.join("chk"));
    std::fs::create_dir_all(&input).unwrap();
    let (files, per_file) = (22u64, 400u64);
    for f in 0..12 {
        write_ids(&input, f, per_file);
    }
    // The first run fails part-way through those 4800 records (in the middle of some
    // file), after at least 2500 and once a checkpoint with progress is complete.
    let failure = Arc::new(InjectedFailure::new(&out, 2500));
    let err = run_watching(&input, &out, &chk, failure, |_| {}).unwrap_err();
    assert!(err.contains("injected failure"), "{err}");
    let before = published(&out, "ids").len();
    assert!(before < 4000, "nothing after the failure is published ({before})");
    let latest = CheckpointStore::local(&chk).unwrap().latest_complete().unwrap();
    assert!(latest.is_some(), "a checkpoint before the failure: {err}, {before} published");
    // More files arrive while the job is down, and while the restored job runs.
    for f in 12..16 {
        write_ids(&input, f, per_file);
    }
    let counted = Arc::new(InjectedFailure::counting());
    let mut expected: Vec<String> = (0..files * per_file).map(|x| x.to_string()).collect();
    expected.sort();
    let (writer_input, writer_out, want) = (input.clone(), out.clone(), expected.len());
    run_watching(&input, &out, &chk, counted.clone(), move |cancel| {
        for f in 16..files {
            write_ids(&writer_input, f, per_file);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        wait("every record published", || published(&writer_out, "ids").len() >= want);
        // A few more checkpoints: a file read twice would be published now.
        std::thread::sleep(std::time::Duration::from_millis(200));
        cancel.cancel();
    })
    .expect("the restored job stops cleanly when cancelled");
    assert!(published(&out, "ids") == expected, "every id exactly once");
    let again = counted.processed();
    assert!(again < (files * per_file) as usize, "the restored run read {again} records: it started over");
    let _ = std::fs::remove_dir_all(&dir);
}
