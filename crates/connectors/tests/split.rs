//! Large JSON-lines and text files split into byte ranges (`split_bytes`): exactly the
//! lines of an unsplit read, whatever the line lengths and split size (lines longer than a
//! range, CRLF, no trailing newline, blank lines), with true line numbers for bad lines;
//! resumed from a checkpoint position anywhere in a range; through the pipeline on 1 to
//! 4 workers; and a checkpointed job that fails part-way and resumes exactly.

use millstream_connectors::{BadRecordPolicy, JsonLinesSource, TextSource};
use millstream_model::Timestamp;
use millstream_runtime::{DeadLetter, Pipeline, ReadStatus, Runner, Source, SourceReader};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;
use common::check_resume;

fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("millstream-split-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Reads an open reader to its end, `batch` records per read.
fn read_rest<T>(r: &mut dyn SourceReader<T>, batch: usize) -> (Vec<T>, Vec<DeadLetter>) {
    let (mut out, mut dead) = (Vec::new(), Vec::new());
    loop {
        let status = r.read(&mut out, batch).expect("read");
        r.take_dead_letters(&mut dead);
        if status == ReadStatus::Finished {
            return (out.into_iter().map(|(v, _)| v).collect(), dead);
        }
    }
}

/// Every partition's records and dead letters, in partition order.
fn read_all<T: 'static>(source: &dyn Source<T>) -> (Vec<T>, Vec<DeadLetter>) {
    let n = source.partitions(1).expect("partitions");
    let (mut out, mut dead) = (Vec::new(), Vec::new());
    for p in 0..n {
        let (o, d) = read_rest(source.open(p, n).expect("open").as_mut(), 7);
        out.extend(o);
        dead.extend(d);
    }
    (out, dead)
}

/// What a dead letter says, to compare.
fn letters(dead: &[DeadLetter]) -> Vec<(String, String, String)> {
    dead.iter().map(|d| (d.location.clone(), d.error.clone(), d.payload.clone())).collect()
}

/// One line of a generated file: a JSON number, text that is not JSON, blank or spaces.
fn line(kind: u8, len: usize, seed: usize) -> String {
    match kind % 4 {
        0 => format!("{}", seed * 7919 % 100_000),
        1 => (0..len).map(|i| char::from(b'a' + ((seed + i) % 26) as u8)).collect(),
        2 => String::new(),
        _ => " ".repeat(len % 3 + 1),
    }
}

fn file_bytes(lines: &[(u8, usize, bool)], trailing_newline: bool) -> Vec<u8> {
    let mut text = String::new();
    for (i, (kind, len, crlf)) in lines.iter().enumerate() {
        text.push_str(&line(*kind, *len, i));
        if i + 1 < lines.len() || trailing_newline {
            text.push_str(if *crlf { "\r\n" } else { "\n" });
        }
    }
    text.into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Split into ranges of any size, a file gives exactly the lines (and, as JSON lines,
    /// the records and dead letters with their `file:line`) of the unsplit read; and a
    /// range resumed from the checkpoint position after any number of reads gives the
    /// rest of its lines.
    #[test]
    fn split_ranges_read_exactly_the_lines_of_an_unsplit_read(
        lines in prop::collection::vec((0u8..4, 0usize..90, any::<bool>()), 0..40),
        trailing_newline in any::<bool>(),
        size in 1u64..70,
        resume_at in (any::<prop::sample::Index>(), 0usize..12),
    ) {
        let dir = temp_dir("prop");
        let path = dir.join("f.jsonl");
        std::fs::write(&path, file_bytes(&lines, trailing_newline)).unwrap();
        let pattern = path.display().to_string();

        let whole = read_all(&TextSource::new(pattern.clone()));
        let split_text = TextSource::new(pattern.clone()).split_bytes(size);
        prop_assert_eq!(&read_all(&split_text).0, &whole.0);

        let json = |split: Option<u64>| {
            let s = JsonLinesSource::<u64>::new(pattern.clone()).on_bad_record(BadRecordPolicy::DeadLetter);
            match split { Some(b) => s.split_bytes(b), None => s }
        };
        let (records, dead) = read_all(&json(None));
        let (split_records, split_dead) = read_all(&json(Some(size)));
        prop_assert_eq!(split_records, records);
        prop_assert_eq!(letters(&split_dead), letters(&dead));

        // Resume one range after `k` reads of one line each.
        let n = split_text.partitions(1).unwrap();
        let (index, k) = resume_at;
        let p = index.index(n);
        let (range, _) = read_rest(split_text.open(p, n).unwrap().as_mut(), 1);
        let mut r = split_text.open(p, n).unwrap();
        let mut head = Vec::new();
        for _ in 0..k {
            if r.read(&mut head, 1).unwrap() == ReadStatus::Finished {
                break;
            }
        }
        let position = r.checkpoint_position().expect("replayable");
        let mut resumed = split_text.reopen(p, n, &position).unwrap();
        prop_assert_eq!(resumed.position(), r.position());
        let mut got: Vec<String> = head.into_iter().map(|(v, _)| v).collect();
        got.extend(read_rest(resumed.as_mut(), 3).0);
        prop_assert_eq!(got, range);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_bad_line_in_a_later_range_fails_the_job_naming_its_true_line() {
    let dir = temp_dir("bad-line");
    let path = dir.join("n.jsonl");
    let mut text: String = (0..1000).map(|i| format!("{i}\n")).collect();
    text.push_str("{oops\n");
    std::fs::write(&path, text).unwrap();
    let p = Pipeline::new();
    let _ =
        p.read("Numbers", JsonLinesSource::<u64>::new(path.display().to_string()).split_bytes(100)).collect();
    let err = Runner::new().workers(3).run(&p).unwrap_err().to_string();
    assert!(err.contains(&format!("{}:1001", path.display())), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lines of every length up to 3000 bytes, some blank, some ending in CRLF, the last
/// without a newline.
fn varied_lines(n: usize) -> (Vec<String>, String) {
    let mut lines = Vec::new();
    let mut text = String::new();
    for i in 0..n {
        let line = match i % 50 {
            0 => String::new(),
            7 => format!("{i} {}", "x".repeat(3000)),
            _ => format!("{i} {}", "y".repeat(i * 31 % 120)),
        };
        text.push_str(&line);
        if i + 1 < n {
            text.push_str(if i % 3 == 0 { "\r\n" } else { "\n" });
        }
        lines.push(line);
    }
    (lines, text)
}

#[test]
fn split_files_through_the_pipeline_on_1_to_4_workers() {
    let dir = temp_dir("pipeline");
    let (lines, text) = varied_lines(4000);
    std::fs::write(dir.join("big.txt"), &text).unwrap();
    std::fs::write(dir.join("small.txt"), "s1\ns2\n").unwrap();
    let pattern = format!("{}/*.txt", dir.display());
    let mut expected = lines.clone();
    expected.extend(["s1".to_owned(), "s2".to_owned()]);
    expected.sort();
    #[derive(Clone, Serialize, Deserialize)]
    struct N {
        n: u64,
    }
    let json: String = (0..3000).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    std::fs::write(dir.join("n.jsonl"), json).unwrap();
    for workers in 1..=4 {
        let p = Pipeline::new();
        let source = TextSource::new(pattern.clone()).split_bytes(8192);
        assert!(source.partitions(workers).unwrap() > 4 * workers);
        let got = p.read("Lines", source).collect();
        let numbers = p
            .read(
                "Numbers",
                JsonLinesSource::<N>::new(dir.join("n.jsonl").display().to_string()).split_bytes(999),
            )
            .map(|v: N| v.n)
            .collect();
        Runner::new().workers(workers).run(&p).expect("run");
        let mut got = got.values();
        got.sort();
        assert_eq!(got.len(), expected.len(), "{workers} workers");
        assert!(got == expected, "{workers} workers: the lines differ");
        let mut numbers = numbers.values();
        numbers.sort();
        assert_eq!(numbers, (0..3000).collect::<Vec<u64>>(), "{workers} workers");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_job_over_a_split_json_lines_file_fails_part_way_and_resumes_exactly() {
    let dir = temp_dir("resume");
    let n = 12_000u64;
    let path = dir.join("ids.jsonl");
    // Ranges of ~2000 records (more than one read takes), so epochs end mid-range.
    let text: String =
        (0..n).map(|id| if id % 101 == 0 { format!("\r\n{id}\r\n") } else { format!("{id}\n") }).collect();
    std::fs::write(&path, &text).unwrap();
    // Fail part-way: after a quarter of the records, once output is published.
    let pattern = path.display().to_string();
    check_resume(&dir, n, 3_000, |p| {
        p.read("Ids", JsonLinesSource::<u64>::new(pattern.clone()).split_bytes(20_000))
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn timestamps_of_split_ranges_come_from_the_records() {
    let dir = temp_dir("timestamps");
    let path = dir.join("t.txt");
    std::fs::write(&path, (0..100).map(|i| format!("{i}\n")).collect::<String>()).unwrap();
    let source = TextSource::new(path.display().to_string())
        .split_bytes(17)
        .with_timestamp_fn(|l: &String| Timestamp::from_millis(l.parse().unwrap_or(-1)));
    let n = source.partitions(1).unwrap();
    let mut all = Vec::new();
    for p in 0..n {
        let mut r = source.open(p, n).unwrap();
        while r.read(&mut all, 5).unwrap() != ReadStatus::Finished {}
    }
    assert!(all
        .iter()
        .enumerate()
        .all(|(i, (l, ts))| *l == i.to_string() && *ts == Timestamp::from_millis(i as i64)));
    assert_eq!(all.len(), 100);
    let _ = std::fs::remove_dir_all(&dir);
}
