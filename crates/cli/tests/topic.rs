//! `millstream topic`, `produce` and `consume` against a log directory: a create, list,
//! describe and delete round trip, records produced from a file and from standard input
//! and consumed back, follow mode, and errors for bad input.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_millstream"));
    c.args(args).arg("--log-dir").arg(dir).env_remove("MILLSTREAM_LOG_DIR").env("RUST_LOG", "warn");
    c
}

fn millstream(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().expect("the millstream binary runs")
}

/// Runs the command, expecting success; returns its standard output.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = millstream(dir, args);
    assert!(
        out.status.success(),
        "millstream {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs the command, expecting failure; returns its standard error.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = millstream(dir, args);
    assert!(!out.status.success(), "millstream {args:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).expect("UTF-8 output")
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_owned).collect();
    v.sort();
    v
}

#[test]
fn create_list_describe_delete_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let out = ok(&dir, &["topic", "create", "clicks", "--partitions", "3", "--durability", "interval:100"]);
    assert!(out.contains("created topic clicks with 3 partitions"), "{out}");
    ok(
        &dir,
        &[
            "topic",
            "create",
            "views",
            "--partitions",
            "1",
            "--retention-bytes",
            "1000000",
            "--retention-ms",
            "60000",
            "--segment-bytes",
            "4096",
            "--durability",
            "none",
        ],
    );
    let list = ok(&dir, &["topic", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(lines[0].starts_with("topic") && lines[0].contains("partitions"), "{list}");
    assert!(lines[1].starts_with("clicks") && lines[1].split_whitespace().nth(1) == Some("3"), "{list}");
    assert!(lines[2].starts_with("views"), "{list}");

    let describe = ok(&dir, &["topic", "describe", "views"]);
    for expected in [
        "retention bytes: 1000000",
        "retention ms:    60000",
        "segment bytes:   4096",
        "durability:      none",
    ] {
        assert!(describe.contains(expected), "{expected:?} in\n{describe}");
    }
    let describe = ok(&dir, &["topic", "describe", "clicks"]);
    assert!(describe.contains("durability:      interval:100"), "{describe}");
    assert!(describe.contains("retention bytes: none"), "{describe}");
    let header = describe.lines().find(|l| l.starts_with("partition ")).expect("a table");
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["partition", "start", "end", "records", "bytes", "segments"]
    );
    let rows: Vec<Vec<&str>> = describe
        .lines()
        .skip_while(|l| !l.starts_with("partition "))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 4, "three partitions and a total: {describe}");
    assert_eq!(rows[2], ["2", "0", "0", "0", "0", "0"]);

    let err = fails(&dir, &["topic", "create", "clicks", "--partitions", "1"]);
    assert!(err.contains("topic clicks already exists"), "{err}");
    let out = ok(&dir, &["topic", "delete", "clicks"]);
    assert!(out.contains("deleted topic clicks"), "{out}");
    let list = ok(&dir, &["topic", "list"]);
    assert!(!list.contains("clicks") && list.contains("views"), "{list}");
    let err = fails(&dir, &["topic", "describe", "clicks"]);
    assert!(err.contains("topic \"clicks\" does not exist in log directory"), "{err}");
    let err = fails(&dir, &["topic", "delete", "clicks"]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn the_log_directory_comes_from_the_environment_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_millstream"))
            .args(args)
            .env("MILLSTREAM_LOG_DIR", tmp.path())
            .output()
            .expect("the millstream binary runs")
    };
    assert!(run(&["topic", "create", "env-topic", "--partitions", "2"]).status.success());
    assert!(tmp.path().join("env-topic").join("topic.json").is_file());
    let out = run(&["topic", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("env-topic"));
}

#[test]
fn produce_from_a_file_and_stdin_then_consume_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    ok(&dir, &["topic", "create", "t", "--partitions", "2"]);
    let file = tmp.path().join("input.txt");
    std::fs::write(&file, "a=1\nb=2\nc=3\nd=x=4\n").unwrap();
    let out = millstream(&dir, &["produce", "t", "--file", file.to_str().unwrap(), "--key-separator", "="]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("produced 4 records to topic t"));

    let mut child = command(&dir, &["produce", "t", "--batch-bytes", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"no key 1\r\nno key 2\n\nno key 3").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("produced 4 records"));

    // Keys, values and where they went.
    let all = ok(&dir, &["consume", "t", "--print-key", "--print-offset"]);
    let records: Vec<(u32, u64, String, String)> = all
        .lines()
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let (at, key, value) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap_or(""));
            let (p, o) = at.split_once(':').unwrap();
            (p.parse().unwrap(), o.parse().unwrap(), key.to_string(), value.to_string())
        })
        .collect();
    assert_eq!(records.len(), 8, "{all}");
    for key in ["a", "b", "c", "d"] {
        let (p, _, _, _) = records.iter().find(|r| r.2 == key).unwrap();
        assert_eq!(*p, millstream_log::partition_for_key(key.as_bytes(), 2), "key {key}");
    }
    let mut values: Vec<(String, String)> = records.iter().map(|r| (r.2.clone(), r.3.clone())).collect();
    values.sort();
    let expected: Vec<(String, String)> = [
        ("", ""),
        ("", "no key 1"),
        ("", "no key 2"),
        ("", "no key 3"),
        ("a", "1"),
        ("b", "2"),
        ("c", "3"),
        ("d", "x=4"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(values, expected);
    // Offsets are consecutive per partition, in the order the records were produced.
    for p in 0..2u32 {
        let offsets: Vec<u64> = records.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
        assert_eq!(offsets, (0..offsets.len() as u64).collect::<Vec<_>>(), "partition {p}");
    }

    // One partition, from an offset, at most N.
    let p0 = records.iter().filter(|r| r.0 == 0).count() as u64;
    assert!(p0 >= 2, "{all}");
    let from = ok(&dir, &["consume", "t", "--partition", "0", "--from-offset", "1", "--print-offset"]);
    assert_eq!(from.lines().count() as u64, p0 - 1, "{from}");
    assert!(from.lines().next().unwrap().starts_with("0:1\t"), "{from}");
    let one = ok(&dir, &["consume", "t", "--max", "1"]);
    assert_eq!(one.lines().count(), 1);
    let values_only = ok(&dir, &["consume", "t"]);
    assert_eq!(
        sorted_lines(&values_only),
        sorted_lines(&records.iter().map(|r| r.3.clone() + "\n").collect::<String>())
    );
    assert_eq!(ok(&dir, &["consume", "t", "--from-end"]), "");
}

#[test]
fn follow_mode_sees_records_produced_later() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    ok(&dir, &["topic", "create", "live", "--partitions", "2"]);
    let mut consumer = command(&dir, &["consume", "live", "--follow", "--print-key"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = consumer.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut producer = command(&dir, &["produce", "live", "--key-separator", ","])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    producer.stdin.take().unwrap().write_all(b"k1,hello\nk2,world\n").unwrap();
    assert!(producer.wait().unwrap().success());
    let mut seen = Vec::new();
    let start = Instant::now();
    while seen.len() < 2 && start.elapsed() < Duration::from_secs(20) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push(line);
        }
    }
    consumer.kill().unwrap();
    consumer.wait().unwrap();
    seen.sort();
    assert_eq!(seen, ["k1\thello", "k2\tworld"]);
}

#[test]
fn bad_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let err = fails(&dir, &["topic", "list"]);
    assert!(err.contains("log directory") && err.contains("does not exist"), "{err}");
    assert!(!dir.exists(), "read-only commands do not create the log directory");

    let err = fails(&dir, &["topic", "create", "t", "--partitions", "1", "--durability", "sometimes"]);
    assert!(err.contains("bad durability \"sometimes\""), "{err}");
    let err = fails(&dir, &["topic", "create", "t", "--partitions", "0"]);
    assert!(err.contains("at least one partition"), "{err}");
    let err = fails(&dir, &["topic", "create", "bad/name", "--partitions", "1"]);
    assert!(err.contains("invalid topic name"), "{err}");
    assert!(!dir.exists(), "a rejected topic creates no log directory");

    ok(&dir, &["topic", "create", "t", "--partitions", "2"]);
    let err = fails(&dir, &["produce", "nope", "--file", "/dev/null"]);
    assert!(err.contains("topic \"nope\" does not exist in log directory"), "{err}");
    let err = fails(&dir, &["consume", "nope"]);
    assert!(err.contains("topic \"nope\" does not exist in log directory"), "{err}");
    let err = fails(&dir, &["consume", "t", "--partition", "5"]);
    assert!(err.contains("there is no partition 5"), "{err}");
    let err = fails(&dir, &["consume", "t", "--from-offset", "3"]);
    assert!(err.contains("offset 3 is out of range for partition 0"), "{err}");
    let err = fails(&dir, &["consume", "t", "--from-offset", "3", "--from-end"]);
    assert!(err.contains("cannot be used with"), "{err}");
    let err = fails(&dir, &["produce", "t", "--file", tmp.path().join("missing.txt").to_str().unwrap()]);
    assert!(err.contains("missing.txt"), "{err}");

    let file = tmp.path().join("keys.txt");
    std::fs::write(&file, "a:1\nno separator\nc:3\n").unwrap();
    let err = fails(&dir, &["produce", "t", "--file", file.to_str().unwrap(), "--key-separator", ":"]);
    assert!(err.contains("line 2 has no key separator \":\""), "{err}");
    assert!(err.contains("1 record before it was appended"), "{err}");
    assert_eq!(ok(&dir, &["consume", "t"]).lines().collect::<Vec<_>>(), ["1"]);
}
