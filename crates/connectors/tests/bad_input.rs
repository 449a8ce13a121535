//! Bad input never crashes a job without a clear message and is never dropped silently:
//! by default a bad record fails the job naming the file and line; with the dead-letter
//! policy it goes, with its error, to the source's dead-letter output, counted, and the
//! good records go on. Also: a 100 MB line, empty and missing files, a failing user
//! function routed to dead letters.

use millstream_connectors::{BadRecordPolicy, JsonLinesSink, JsonLinesSource};
use millstream_runtime::{DeadLetter, Pipeline, Runner, UserError};
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Score {
    team: String,
    score: i64,
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("millstream-bad-input-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Three good lines and four bad ones: truncated JSON, a wrong type, invalid UTF-8, a
/// missing field.
fn write_mixed(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("scores.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"{\"team\":\"red\",\"score\":1}\n").unwrap();
    f.write_all(b"{\"team\":\"blue\",\"sco\n").unwrap(); // truncated
    f.write_all(b"{\"team\":\"blue\",\"score\":\"ten\"}\n").unwrap(); // wrong type
    f.write_all(b"{\"team\":\"gr\xffen\",\"score\":3}\n").unwrap(); // invalid UTF-8
    f.write_all(b"{\"team\":\"green\",\"score\":2}\n").unwrap();
    f.write_all(b"{\"team\":\"red\"}\n").unwrap(); // missing field
    f.write_all(b"{\"team\":\"red\",\"score\":4}\n").unwrap();
    path
}

#[test]
fn bad_lines_go_to_dead_letters_with_file_line_and_reason() {
    let dir = temp_dir("dead-letters");
    let path = write_mixed(&dir);
    let p = Pipeline::new();
    let source =
        JsonLinesSource::<Score>::new(path.display().to_string()).on_bad_record(BadRecordPolicy::DeadLetter);
    let (scores, dead) = p.read_with_dead_letters("Scores", source);
    // Dead letters are an ordinary PCollection: here also written to a file.
    dead.write_to("DeadLetterFile", JsonLinesSink::new(dir.join("dead")));
    let (scores, dead) = (scores.collect(), dead.collect());
    let result = Runner::new().workers(2).run(&p).expect("the job goes on past bad lines");

    let mut good: Vec<i64> = scores.values().iter().map(|s| s.score).collect();
    good.sort();
    assert_eq!(good, vec![1, 2, 4]);
    let mut letters: Vec<DeadLetter> = dead.values();
    letters.sort_by(|a, b| a.location.cmp(&b.location));
    let lines: Vec<String> =
        letters.iter().map(|d| d.location.rsplit(':').next().unwrap().to_owned()).collect();
    assert_eq!(lines, vec!["2", "3", "4", "6"], "{letters:#?}");
    assert!(letters
        .iter()
        .all(|d| d.step == "Scores" && d.location.starts_with(&path.display().to_string())));
    assert!(letters[0].error.contains("EOF"), "truncated: {}", letters[0].error);
    assert!(letters[1].error.contains("invalid type"), "wrong type: {}", letters[1].error);
    assert_eq!(letters[1].payload, "{\"team\":\"blue\",\"score\":\"ten\"}");
    assert!(letters[2].error.contains("invalid UTF-8"), "{}", letters[2].error);
    assert_eq!(letters[2].payload_bytes.as_deref(), Some(&b"{\"team\":\"gr\xffen\",\"score\":3}"[..]));
    assert!(letters[3].error.contains("missing field"), "{}", letters[3].error);
    assert_eq!(result.counter("Scores/dead_letters"), 4);
    let written: usize = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("dead"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap().lines().count())
        .sum();
    assert_eq!(written, 4, "every dead letter reached the dead-letter file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn by_default_the_first_bad_line_fails_the_job_naming_it() {
    let dir = temp_dir("fail");
    let path = write_mixed(&dir);
    let p = Pipeline::new();
    let _ = p.read("Scores", JsonLinesSource::<Score>::new(path.display().to_string())).collect();
    let err = Runner::new().workers(1).run(&p).unwrap_err().to_string();
    assert!(err.contains("Scores") && err.contains("scores.jsonl:2") && err.contains("EOF"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dead_letters_nobody_reads_fail_the_job_instead_of_vanishing() {
    let dir = temp_dir("unread");
    let path = write_mixed(&dir);
    let p = Pipeline::new();
    let source =
        JsonLinesSource::<Score>::new(path.display().to_string()).on_bad_record(BadRecordPolicy::DeadLetter);
    let _ = p.read("Scores", source).collect();
    let err = Runner::new().workers(1).run(&p).unwrap_err().to_string();
    assert!(err.contains("read_with_dead_letters") && err.contains("scores.jsonl:2"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_100_mb_line_is_read_and_routed_like_any_other() {
    let dir = temp_dir("huge");
    let path = dir.join("huge.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        f.write_all(b"{\"team\":\"red\",\"score\":1}\n").unwrap();
        // A 100 MB string value: valid JSON, but not a Score (score is missing).
        f.write_all(b"{\"team\":\"").unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\"}\n").unwrap();
        f.write_all(b"{\"team\":\"blue\",\"score\":2}\n").unwrap();
    }
    let p = Pipeline::new();
    let source =
        JsonLinesSource::<Score>::new(path.display().to_string()).on_bad_record(BadRecordPolicy::DeadLetter);
    let (scores, dead) = p.read_with_dead_letters("Huge", source);
    let (scores, dead) = (scores.collect(), dead.collect());
    Runner::new().workers(1).run(&p).expect("run");
    assert_eq!(scores.values().len(), 2);
    let letters = dead.values();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].location.ends_with(":2") && letters[0].error.contains("missing field"),
        "{:?}",
        letters[0].error
    );
    assert_eq!(letters[0].payload.len(), 100 * (1 << 20) + 11);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn empty_files_give_nothing_and_missing_files_are_named() {
    let dir = temp_dir("empty");
    std::fs::write(dir.join("empty.jsonl"), b"").unwrap();
    let p = Pipeline::new();
    let out =
        p.read("Empty", JsonLinesSource::<Score>::new(dir.join("*.jsonl").display().to_string())).collect();
    Runner::new().workers(2).run(&p).expect("an empty file is fine");
    assert!(out.values().is_empty());

    let missing = dir.join("nope-*.jsonl").display().to_string();
    let p = Pipeline::new();
    let _ = p.read("Missing", JsonLinesSource::<Score>::new(missing.clone())).collect();
    let err = Runner::new().workers(1).run(&p).unwrap_err().to_string();
    assert!(err.contains("Missing") && err.contains(&missing), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failing_user_function_routes_elements_to_dead_letters() {
    let p = Pipeline::new();
    let (ratios, dead) =
        p.create(vec![(6i64, 3i64), (1, 0), (9, 3)]).try_map_with_dead_letters("Divide", |(a, b)| {
            if *b == 0 {
                return Err(UserError::new(format!("division of {a} by zero")));
            }
            Ok(a / b)
        });
    let (ratios, dead) = (ratios.collect(), dead.collect());
    let result = Runner::new().workers(2).run(&p).unwrap();
    let mut got = ratios.values();
    got.sort();
    assert_eq!(got, vec![2, 3]);
    let letters = dead.values();
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0].step.as_str(), letters[0].payload.as_str()), ("Divide", "[1,0]"));
    assert!(letters[0].error.contains("division of 1 by zero"));
    assert_eq!(result.counter("Divide/dead_letters"), 1);
}
