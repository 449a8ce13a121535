//! Tests across processes: a writer killed with SIGKILL mid-append loses no acknowledged
//! record, and a reader follows a writer in another process.
//!
//! Both re-execute this test binary as the child process, running only `child_process`
//! with the environment variable [`CHILD_ENV`] saying what to do.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{assert_expected, expected_batch, read_all, segment_files, Rng};
use millstream_log::{Durability, Log, ReadLimit, TopicConfig};

const CHILD_ENV: &str = "MILLSTREAM_LOG_TEST_CHILD";

/// The child's side: does nothing unless [`CHILD_ENV`] is set (as in a normal test run).
///
/// - `writer <dir> <seed>`: appends batches of 1 to 3000 [`common::expected_record`]s to
///   partition 0 of topic `t` forever, printing `ACK <last offset>` after each append.
/// - `producer <dir> <batches>`: appends that many batches of 50 records with short pauses,
///   then exits.
#[test]
fn child_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).init();
    let args: Vec<&str> = spec.split('\t').collect();
    let log = Log::open(args[1]).expect("open log");
    let mut writer = log.writer("t", 0).expect("open writer");
    let mut stdout = std::io::stdout().lock();
    // A line of its own: the test harness may have printed "test child_process ... ".
    writeln!(stdout).expect("stdout");
    match args[0] {
        "writer" => {
            let mut rng = Rng::new(args[2].parse().expect("seed"));
            loop {
                let base = writer.end_offset();
                let count = rng.range(1..3001);
                let ack = writer.append_batch(&expected_batch(base..base + count)).expect("append");
                writeln!(stdout, "ACK {}", ack.last_offset).expect("stdout");
                stdout.flush().expect("flush");
            }
        }
        "producer" => {
            let batches: u64 = args[2].parse().expect("batches");
            for _ in 0..batches {
                let base = writer.end_offset();
                writer.append_batch(&expected_batch(base..base + 50)).expect("append");
                std::thread::sleep(Duration::from_millis(2));
            }
            writeln!(stdout, "DONE").expect("stdout");
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn spawn_child(args: &[&str]) -> Child {
    Command::new(std::env::current_exe().expect("current exe"))
        .args(["child_process", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, args.join("\t"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child")
}

/// Sends every complete `ACK <offset>` line of `out` (lines cut off by the kill are ignored).
fn forward_acks(out: impl Read + Send + 'static, tx: mpsc::Sender<u64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            if line.ends_with(b"\n") {
                if let Some(ack) = String::from_utf8_lossy(&line).trim().strip_prefix("ACK ") {
                    let _ = tx.send(ack.parse().expect("ack offset"));
                }
            }
            line.clear();
        }
    })
}

fn collect(out: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(out).read_to_string(&mut s);
        s
    })
}

fn dir_str(dir: &Path) -> &str {
    dir.to_str().expect("UTF-8 temp dir")
}

#[test]
fn sigkill_mid_append_loses_no_acknowledged_record() {
    let seed = Rng::seed_from_clock();
    eprintln!("seed {seed}");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let config = TopicConfig::new(1).with_segment_bytes(512 << 10).with_durability(Durability::EveryBatch);
    log.create_topic("t", config).expect("create");

    let mut max_acked: Option<u64> = None;
    let mut truncations = 0;
    for round in 0..10 {
        let mut child = spawn_child(&["writer", dir_str(dir.path()), &rng.next_u64().to_string()]);
        let (tx, rx) = mpsc::channel();
        let acks = forward_acks(child.stdout.take().expect("stdout"), tx);
        let stderr = collect(child.stderr.take().expect("stderr"));
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(first) => max_acked = max_acked.max(Some(first)),
            Err(e) => {
                let _ = child.kill();
                panic!("round {round}: no acknowledgement from the child ({e}); stderr: {:?}", stderr.join());
            }
        }
        std::thread::sleep(Duration::from_millis(rng.range(5..51)));
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        assert!(!status.success(), "the child was killed");
        acks.join().expect("ack reader");
        max_acked = max_acked.max(rx.try_iter().max());
        let stderr = stderr.join().expect("stderr reader");
        truncations += stderr.matches("truncating torn tail").count();
        assert!(!stderr.contains("panicked"), "round {round}: the child failed: {stderr}");
    }
    let max_acked = max_acked.expect("acknowledgements");

    let (writer, warnings) = common::capture_warnings(|| log.writer("t", 0));
    let mut writer = writer.expect("recover after the last kill");
    truncations += warnings.iter().filter(|w| w.contains("truncating torn tail")).count();
    eprintln!(
        "{} records acknowledged, {} present, {} segments, {truncations} torn tails truncated",
        max_acked + 1,
        writer.end_offset(),
        writer.segment_count()
    );
    assert!(
        writer.end_offset() > max_acked,
        "acknowledged offset {max_acked} lost: end is {}",
        writer.end_offset()
    );
    // The tail was cut back to the last intact batch: the files hold exactly the batches.
    let pdir = common::partition_dir(dir.path(), 0);
    let on_disk: u64 = segment_files(&pdir).iter().map(|f| std::fs::metadata(f).expect("meta").len()).sum();
    assert_eq!(on_disk, writer.size_bytes());
    assert!(writer.segment_count() > 1, "the test should roll segments");

    let end = writer.end_offset();
    assert_expected(&read_all(&log, 0, 0, 5000), 0..end);
    let ack = writer.append_batch(&expected_batch(end..end + 100)).expect("append after recovery");
    assert_eq!(ack.base_offset, end);
    drop(writer);
    assert_expected(&read_all(&log, 0, 0, 777), 0..end + 100);
}

#[test]
fn reader_follows_a_writer_in_another_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let config = TopicConfig::new(1).with_segment_bytes(64 << 10).with_durability(Durability::None);
    log.create_topic("t", config).expect("create");
    const BATCHES: u64 = 200;
    let mut child = spawn_child(&["producer", dir_str(dir.path()), &BATCHES.to_string()]);
    let stdout = collect(child.stdout.take().expect("stdout"));
    let stderr = collect(child.stderr.take().expect("stderr"));

    let mut reader = log.reader("t", 0, 0).expect("reader");
    let mut records = Vec::new();
    let mut empty_polls = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while (records.len() as u64) < BATCHES * 50 {
        assert!(Instant::now() < deadline, "only {} records arrived", records.len());
        if reader.poll_into(ReadLimit::records(333), &mut records).expect("poll") == 0 {
            empty_polls += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let status = child.wait().expect("wait");
    let (stdout, stderr) = (stdout.join().expect("stdout"), stderr.join().expect("stderr"));
    assert!(status.success(), "child failed: {stdout}\n{stderr}");
    assert!(stdout.contains("DONE"));
    assert!(empty_polls > 0, "the reader should have caught up with the writer at least once");
    assert_expected(&records, 0..BATCHES * 50);
    assert!(reader.poll(ReadLimit::default()).expect("poll").is_empty());
    assert!(
        segment_files(&common::partition_dir(dir.path(), 0)).len() > 5,
        "segments rolled while following"
    );
}
