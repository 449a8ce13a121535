//! Unit tests of [`WatchSource`](super::WatchSource): completeness, partition ownership,
//! positions.

use super::*;
use crate::testing::TempDir;

fn text_source(dir: &TempDir, partitions: usize) -> WatchSource<String> {
    TextSource::new(dir.path().display().to_string())
        .watch()
        .poll_interval(Duration::from_millis(1))
        .with_partitions(partitions)
}

/// Reads everything the reader has now, polling as needed, until it waits with nothing
/// left to read and no file seen but not yet complete.
fn drain<T: Send + 'static>(r: &mut WatchReader<T>, batch: usize) -> Vec<T> {
    let mut out = Vec::new();
    loop {
        if r.read(&mut out, batch).unwrap() == ReadStatus::Waiting && r.ready.is_empty() {
            r.poll().unwrap();
            if r.ready.is_empty() && r.current.is_none() && r.last_seen.is_empty() {
                return out.into_iter().map(|(v, _)| v).collect();
            }
        }
    }
}

#[test]
fn a_file_is_picked_up_once_it_is_the_same_at_two_polls() {
    let dir = TempDir::new("watch-stable");
    let mut r = WatchReader::new(text_source(&dir, 1), 0);
    dir.write("a.txt", b"one\n");
    dir.write(".b.txt.tmp", b"hidden\n");
    r.poll().unwrap();
    assert!(r.ready.is_empty(), "seen once: not complete yet");
    std::fs::write(dir.path().join("a.txt"), b"one\ntwo\n").unwrap();
    r.poll().unwrap();
    assert!(r.ready.is_empty(), "it grew: not complete yet");
    r.poll().unwrap();
    assert_eq!(r.ready.len(), 1, "unchanged across two polls: complete; hidden files ignored");
    assert_eq!(drain(&mut r, 10), vec!["one", "two"]);
    // Renamed into place: read once, and never again.
    std::fs::rename(dir.path().join(".b.txt.tmp"), dir.path().join("b.txt")).unwrap();
    assert_eq!(drain(&mut r, 10), vec!["hidden"]);
    assert!(drain(&mut r, 10).is_empty());
    assert_eq!(r.done.len(), 2);
    // A removed file is forgotten.
    std::fs::remove_file(dir.path().join("a.txt")).unwrap();
    r.poll().unwrap();
    assert_eq!(r.done.iter().collect::<Vec<_>>(), vec![&dir.path().join("b.txt").display().to_string()]);
}

#[test]
fn every_file_belongs_to_exactly_one_partition() {
    let dir = TempDir::new("watch-buckets");
    for i in 0..40 {
        dir.write(&format!("f{i}.txt"), format!("{i}\n").as_bytes());
    }
    let source = text_source(&dir, 3);
    let mut all = Vec::new();
    for p in 0..3 {
        let mut r = WatchReader::new(source.clone(), p);
        let got = drain(&mut r, 7);
        assert!(!got.is_empty(), "40 files hash into every one of 3 partitions");
        all.extend(got);
    }
    all.sort_by_key(|s| s.parse::<u32>().unwrap_or(u32::MAX));
    assert_eq!(all, (0..40).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[test]
fn a_resumed_partition_reads_neither_twice_nor_skips() {
    let dir = TempDir::new("watch-resume");
    dir.write("a.txt", b"a1\na2\na3\n");
    dir.write("b.txt", b"b1\r\nb2\r\nb3");
    let source = text_source(&dir, 1);
    let straight = drain(&mut WatchReader::new(source.clone(), 0), 1);
    assert_eq!(straight.len(), 6);
    for split in 0..12 {
        let mut r = WatchReader::new(source.clone(), 0);
        r.poll().unwrap();
        r.poll().unwrap();
        let mut head = Vec::new();
        for _ in 0..split {
            r.read(&mut head, 1).unwrap();
        }
        let position = r.checkpoint_position().expect("replayable");
        let mut resumed = WatchReader::resume(source.clone(), 0, &position).unwrap();
        let mut got: Vec<String> = head.into_iter().map(|(v, _)| v).collect();
        got.extend(drain(&mut resumed, 2));
        assert_eq!(got, straight, "resumed after {split} reads");
    }
    // A new file after the restore is read, the finished ones are not.
    let mut r = WatchReader::new(source.clone(), 0);
    drain(&mut r, 10);
    let position = r.checkpoint_position().unwrap();
    dir.write("c.txt", b"c1\n");
    let mut resumed = WatchReader::resume(source.clone(), 0, &position).unwrap();
    assert_eq!(drain(&mut resumed, 10), vec!["c1"]);
}

#[test]
fn positions_of_another_shape_are_refused() {
    let dir = TempDir::new("watch-bad");
    let source = text_source(&dir, 2);
    let r = WatchReader::new(source.clone(), 0);
    let position = r.checkpoint_position().unwrap();
    let e = source.clone().with_partitions(3).reopen(0, 3, &position).err().expect("refused");
    assert!(e.message.contains("taken with 2 partitions"), "{e}");
    let e = source.reopen(0, 2, b"\x07junk").err().expect("refused");
    assert!(e.message.contains("bad checkpointed watch position"), "{e}");
    let e = source.open(2, 2).err().expect("refused");
    assert!(e.message.contains("partitions"), "{e}");
    let bad = TextSource::new(format!("{}/[*.txt", dir.path().display())).watch();
    assert!(bad.partitions(1).is_err());
}

#[test]
fn json_and_csv_files_are_watched_too() {
    let dir = TempDir::new("watch-formats");
    dir.write("a.jsonl", b"{\"n\":1}\n{\"n\":2}\n");
    dir.write("b.csv", b"n\n3\n4\n");
    let json = JsonLinesSource::<serde_json::Value>::new(format!("{}/*.jsonl", dir.path().display()))
        .watch()
        .poll_interval(Duration::from_millis(1))
        .with_partitions(1);
    let got = drain(&mut WatchReader::new(json, 0), 10);
    assert_eq!(got, vec![serde_json::json!({"n": 1}), serde_json::json!({"n": 2})]);
    let csv = CsvSource::<(i64,)>::new(format!("{}/*.csv", dir.path().display()))
        .watch()
        .poll_interval(Duration::from_millis(1))
        .with_partitions(1);
    assert_eq!(drain(&mut WatchReader::new(csv, 0), 10), vec![(3,), (4,)]);
}
