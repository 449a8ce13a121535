//! Line-oriented file sources: [`TextSource`] (each line a `String`) and
//! [`JsonLinesSource`] (each line a JSON value decoded into `T`).
//!
//! Both read local paths or glob patterns (`data/*.txt`), one partition per file, in
//! sorted order, or one per byte range of a large file with `split_bytes` (see
//! [`crate::ranges`]); `watch()` turns either into a streaming source of new files
//! ([`crate::watch`]). Both are replayable: a checkpoint records, per file (or range),
//! the byte offset of the next unread line and its line number
//! ([`FilePosition`](crate::files::FilePosition)), and a restored job reopens each file
//! there, so exactly-once jobs can read them. The files must not change between a
//! checkpoint and the restore that uses it. Errors name the file and the line:
//! `data/a.jsonl:17: cannot decode record: ...`. Files are bounded input: by default the
//! watermark stays at the start of time until a file is read to its end, so no record of
//! a file is late however its timestamps are ordered.
//!
//! ```
//! use millstream_connectors::text::TextSource;
//! use millstream_runtime::{Pipeline, Runner};
//!
//! let path = std::env::temp_dir().join(format!("millstream-doc-text-{}.txt", std::process::id()));
//! std::fs::write(&path, "to be\nor not\n").unwrap();
//! let p = Pipeline::new();
//! let lines = p.read("Lines", TextSource::new(path.display().to_string()));
//! let out = lines.collect();
//! Runner::new().run(&p).unwrap();
//! let mut values = out.values();
//! values.sort();
//! assert_eq!(values, vec!["or not".to_string(), "to be".to_string()]);
//! # std::fs::remove_file(&path).unwrap();
//! ```

use crate::error::ConnectorError;
use crate::files::{BadRecordPolicy, DecodeFn, LinesReader};
use crate::ranges::ByteRange;
use crate::ranges::{file_ranges, partition_range};
use crate::watch::FileOpener;
use millstream_model::Timestamp;
use millstream_runtime::{Source, SourceError, SourceReader, WatermarkStrategy};
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

/// Assigns a record its event timestamp.
type TimestampFn<T> = dyn Fn(&T) -> Timestamp + Send + Sync;

/// The files of a line-oriented source and what it does with their lines, whatever the
/// record type.
#[derive(Clone, Debug)]
pub(crate) struct FileSettings {
    pub(crate) pattern: String,
    split_bytes: Option<u64>,
    watermarks: WatermarkStrategy,
    policy: BadRecordPolicy,
}

impl FileSettings {
    fn new(pattern: String) -> Self {
        FileSettings {
            pattern,
            split_bytes: None,
            watermarks: WatermarkStrategy::from_source(),
            policy: BadRecordPolicy::Fail,
        }
    }

    fn partitions(&self) -> Result<usize, SourceError> {
        file_ranges(&self.pattern, self.split_bytes)
            .map(|ranges| ranges.len())
            .map_err(|e| e.into_source_error(&self.pattern))
    }

    /// Opens partition `partition` (of `partitions`), at `position` if given.
    fn open<T: Send + 'static>(
        &self,
        partition: usize,
        partitions: usize,
        position: Option<&[u8]>,
        decode: Arc<DecodeFn<T>>,
    ) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        let range = partition_range(&self.pattern, self.split_bytes, partition, partitions)
            .map_err(|e| e.into_source_error(&self.pattern))?;
        let reader = LinesReader::open(&range, position, decode, self.policy)
            .map_err(|e| e.into_source_error(&self.pattern))?;
        Ok(Box::new(reader))
    }

    /// Opens one whole file (for the watching source), at `position` if given.
    pub(crate) fn open_file<T: Send + 'static>(
        &self,
        path: &Path,
        position: Option<&[u8]>,
        decode: Arc<DecodeFn<T>>,
    ) -> Result<Box<dyn SourceReader<T>>, ConnectorError> {
        let range = ByteRange::whole(path.to_owned());
        Ok(Box::new(LinesReader::open(&range, position, decode, self.policy)?))
    }
}

/// Reads newline-delimited text files: every line (without its terminator) is one
/// element. Timestamps come from [`with_timestamp_fn`](Self::with_timestamp_fn), or are
/// `Timestamp::MIN` by default.
#[derive(Clone)]
pub struct TextSource {
    settings: FileSettings,
    timestamp: Option<Arc<TimestampFn<String>>>,
}

impl std::fmt::Debug for TextSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextSource").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl TextSource {
    /// Reads the file `pattern` names, or every file matching it if it is a glob.
    pub fn new(pattern: impl Into<String>) -> Self {
        TextSource { settings: FileSettings::new(pattern.into()), timestamp: None }
    }

    /// Gives each line the timestamp `f` computes from it.
    pub fn with_timestamp_fn(mut self, f: impl Fn(&String) -> Timestamp + Send + Sync + 'static) -> Self {
        self.timestamp = Some(Arc::new(f));
        self
    }

    /// Sets how watermarks follow the timestamps read (default: the start of time until
    /// the file is read to its end).
    pub fn watermark_strategy(mut self, strategy: WatermarkStrategy) -> Self {
        self.settings.watermarks = strategy;
        self
    }

    /// Splits files larger than `bytes` into byte ranges of about `bytes` bytes, each its
    /// own partition, so that several workers read one large file in parallel (default:
    /// one partition per file). A range holds the lines that start in it: it begins at
    /// the first line starting at or after its first byte and reads through the line
    /// that spans its end (see [`crate::ranges`]). Line numbers in errors and dead
    /// letters stay true: opening a range counts the newlines before it. Keep the same
    /// setting across a restore from a checkpoint.
    pub fn split_bytes(mut self, bytes: u64) -> Self {
        self.settings.split_bytes = Some(bytes.max(1));
        self
    }
}

impl FileOpener<String> for TextSource {
    fn pattern(&self) -> &str {
        &self.settings.pattern
    }

    fn open_file(
        &self,
        path: &Path,
        position: Option<&[u8]>,
    ) -> Result<Box<dyn SourceReader<String>>, ConnectorError> {
        self.settings.open_file(path, position, self.decoder())
    }
}

impl TextSource {
    fn decoder(&self) -> Arc<DecodeFn<String>> {
        let timestamp = self.timestamp.clone();
        Arc::new(move |line: String| {
            let ts = timestamp.as_ref().map_or(Timestamp::MIN, |f| f(&line));
            Ok(Some((line, ts)))
        })
    }
}

impl Source<String> for TextSource {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        self.settings.partitions()
    }

    fn open(
        &self,
        partition: usize,
        partitions: usize,
    ) -> Result<Box<dyn SourceReader<String>>, SourceError> {
        self.settings.open(partition, partitions, None, self.decoder())
    }

    fn reopen(
        &self,
        partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<String>>, SourceError> {
        self.settings.open(partition, partitions, Some(position), self.decoder())
    }

    fn watermarks(&self) -> WatermarkStrategy {
        self.settings.watermarks
    }
}

/// Reads JSON-lines files: every non-blank line is one JSON value decoded into `T`.
/// Timestamps come from [`with_timestamp_fn`](Self::with_timestamp_fn), or are
/// `Timestamp::MIN` by default. A line that does not decode fails the job with the file,
/// the line and the decoder's error (see [`BadRecordPolicy`]).
pub struct JsonLinesSource<T> {
    settings: FileSettings,
    timestamp: Option<Arc<TimestampFn<T>>>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for JsonLinesSource<T> {
    fn clone(&self) -> Self {
        JsonLinesSource {
            settings: self.settings.clone(),
            timestamp: self.timestamp.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for JsonLinesSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesSource").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Send + 'static> JsonLinesSource<T> {
    /// Reads the file `pattern` names, or every file matching it if it is a glob.
    pub fn new(pattern: impl Into<String>) -> Self {
        JsonLinesSource { settings: FileSettings::new(pattern.into()), timestamp: None, _type: PhantomData }
    }

    /// Gives each record the timestamp `f` extracts from it.
    pub fn with_timestamp_fn(mut self, f: impl Fn(&T) -> Timestamp + Send + Sync + 'static) -> Self {
        self.timestamp = Some(Arc::new(f));
        self
    }

    /// Sets how watermarks follow the timestamps read (default: the start of time until
    /// the file is read to its end).
    pub fn watermark_strategy(mut self, strategy: WatermarkStrategy) -> Self {
        self.settings.watermarks = strategy;
        self
    }

    /// Splits files larger than `bytes` into byte ranges of about `bytes` bytes, each its
    /// own partition, so that several workers read one large file in parallel (default:
    /// one partition per file). A range holds the lines that start in it: it begins at
    /// the first line starting at or after its first byte and reads through the line
    /// that spans its end (see [`crate::ranges`]). Line numbers in errors and dead
    /// letters stay true: opening a range counts the newlines before it. Keep the same
    /// setting across a restore from a checkpoint.
    pub fn split_bytes(mut self, bytes: u64) -> Self {
        self.settings.split_bytes = Some(bytes.max(1));
        self
    }

    /// Sets what happens to lines that do not decode (default: fail the job).
    pub fn on_bad_record(mut self, policy: BadRecordPolicy) -> Self {
        self.settings.policy = policy;
        self
    }
}

/// Decodes one JSON line; blank lines are skipped. The error says where in the line the
/// decoder stopped (the file and line are added by the reader).
fn decode_json<T: DeserializeOwned>(line: &str) -> Result<Option<T>, String> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(line).map(Some).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        match full.strip_suffix(&suffix) {
            Some(message) => format!("{message} (at column {})", e.column()),
            None => full,
        }
    })
}

impl<T: DeserializeOwned + Send + 'static> FileOpener<T> for JsonLinesSource<T> {
    fn pattern(&self) -> &str {
        &self.settings.pattern
    }

    fn open_file(
        &self,
        path: &Path,
        position: Option<&[u8]>,
    ) -> Result<Box<dyn SourceReader<T>>, ConnectorError> {
        self.settings.open_file(path, position, self.decoder())
    }
}

impl<T: DeserializeOwned + Send + 'static> JsonLinesSource<T> {
    fn decoder(&self) -> Arc<DecodeFn<T>> {
        let timestamp = self.timestamp.clone();
        Arc::new(move |line: String| {
            Ok(decode_json::<T>(&line)?.map(|record| {
                let ts = timestamp.as_ref().map_or(Timestamp::MIN, |f| f(&record));
                (record, ts)
            }))
        })
    }
}

impl<T: DeserializeOwned + Send + 'static> Source<T> for JsonLinesSource<T> {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        self.settings.partitions()
    }

    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        self.settings.open(partition, partitions, None, self.decoder())
    }

    fn reopen(
        &self,
        partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        self.settings.open(partition, partitions, Some(position), self.decoder())
    }

    fn watermarks(&self) -> WatermarkStrategy {
        self.settings.watermarks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use millstream_runtime::ReadStatus;

    fn read_all<T: 'static>(source: &dyn Source<T>) -> Result<Vec<(T, Timestamp)>, SourceError> {
        let n = source.partitions(1)?;
        let mut out = Vec::new();
        for p in 0..n {
            let mut r = source.open(p, n)?;
            while r.read(&mut out, 2)? != ReadStatus::Finished {}
        }
        Ok(out)
    }

    #[test]
    fn text_lines_with_timestamps() {
        let dir = TempDir::new("text-ts");
        dir.write("a.txt", b"3 c\n1 a\n");
        dir.write("b.txt", b"2 b");
        let source =
            TextSource::new(format!("{}/*.txt", dir.path().display())).with_timestamp_fn(|l: &String| {
                Timestamp::from_millis(l.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0))
            });
        let got = read_all(&source).unwrap();
        let expected = [("3 c", 3), ("1 a", 1), ("2 b", 2)];
        assert_eq!(got, expected.map(|(l, t)| (l.to_owned(), Timestamp::from_millis(t))).to_vec());
    }

    #[test]
    fn json_lines_skip_blank_lines_and_report_bad_ones() {
        let dir = TempDir::new("text-json");
        let path = dir.write("x.jsonl", b"{\"a\":1}\n\n  \n{\"a\":2}\n{\"a\":\n");
        let source = JsonLinesSource::<serde_json::Value>::new(path.display().to_string());
        let e = read_all(&source).unwrap_err();
        assert_eq!(e.location, format!("{}:5", path.display()));
        assert!(e.message.contains("cannot decode record"), "{e}");
        assert!(!e.message.contains("line 1"), "{e}");
    }

    /// Reads partition `p` to its end from an open reader, `batch` records per read.
    fn read_rest<T>(r: &mut dyn SourceReader<T>, batch: usize) -> Vec<(T, Timestamp)> {
        let mut out = Vec::new();
        while r.read(&mut out, batch).unwrap() != ReadStatus::Finished {}
        out
    }

    /// For every split point: read that many lines, take the position, reopen there and
    /// read the rest; the two parts together are exactly a straight read.
    fn check_resume_everywhere<T: PartialEq + std::fmt::Debug + 'static>(source: &dyn Source<T>) {
        let n = source.partitions(1).unwrap();
        for p in 0..n {
            let straight = read_rest(source.open(p, n).unwrap().as_mut(), 1);
            // One read of one line may yield no record (blank lines), so split by reads.
            let mut split = 0;
            loop {
                let mut r = source.open(p, n).unwrap();
                let mut head = Vec::new();
                let mut finished = false;
                for _ in 0..split {
                    if r.read(&mut head, 1).unwrap() == ReadStatus::Finished {
                        finished = true;
                        break;
                    }
                }
                let position = r.checkpoint_position().expect("file readers are replayable");
                let mut resumed = source.reopen(p, n, &position).unwrap();
                // Line numbers continue where the first reader stopped.
                assert_eq!(resumed.position(), r.position(), "split after {split} reads");
                head.extend(read_rest(resumed.as_mut(), 3));
                assert_eq!(head, straight, "partition {p}, split after {split} reads");
                if finished {
                    break;
                }
                split += 1;
            }
        }
    }

    #[test]
    fn text_resumes_at_every_line_across_bom_and_crlf() {
        let dir = TempDir::new("text-resume");
        dir.write("a.txt", b"\xEF\xBB\xBF5 one\r\n7 two\r\n\r\n9 \xC3\xA9t\xC3\xA9\r\nlast");
        dir.write("b.txt", b"1 x\n2 y\n");
        dir.write("c.txt", b"");
        let source =
            TextSource::new(format!("{}/*.txt", dir.path().display())).with_timestamp_fn(|l: &String| {
                Timestamp::from_millis(l.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0))
            });
        check_resume_everywhere(&source);
        // The byte-order mark is skipped only at the start of the file, whether the
        // reader opened or resumed there.
        let mut r = source.open(0, 3).unwrap();
        let start = r.checkpoint_position().unwrap();
        let mut resumed = source.reopen(0, 3, &start).unwrap();
        let lines: Vec<String> = read_rest(resumed.as_mut(), 10).into_iter().map(|(l, _)| l).collect();
        assert_eq!(lines, vec!["5 one", "7 two", "", "9 été", "last"]);
        let mut out = Vec::new();
        r.read(&mut out, 2).unwrap();
        let position = crate::files::FilePosition::decode(&r.checkpoint_position().unwrap()).unwrap();
        assert_eq!((position.offset, position.line, position.file_name.as_str()), (3 + 7 + 7, 2, "a.txt"));
    }

    #[test]
    fn json_lines_resume_at_every_line_with_blank_lines() {
        let dir = TempDir::new("json-resume");
        dir.write("0.jsonl", b"{\"a\":1}\r\n\n  \n{\"a\":2}\n{\"a\":3}");
        dir.write("1.jsonl", b"\xEF\xBB\xBF{\"a\":4}\n\n");
        let source = JsonLinesSource::<serde_json::Value>::new(format!("{}/*.jsonl", dir.path().display()))
            .with_timestamp_fn(|v: &serde_json::Value| Timestamp::from_millis(v["a"].as_i64().unwrap_or(0)));
        check_resume_everywhere(&source);
    }

    #[test]
    fn a_resumed_reader_reports_errors_at_the_true_line() {
        let dir = TempDir::new("json-resume-error");
        let path = dir.write("x.jsonl", b"{\"a\":1}\n{\"a\":2}\n{\"a\":\n");
        let source = JsonLinesSource::<serde_json::Value>::new(path.display().to_string());
        let mut r = source.open(0, 1).unwrap();
        r.read(&mut Vec::new(), 1).unwrap();
        let mut resumed = source.reopen(0, 1, &r.checkpoint_position().unwrap()).unwrap();
        let mut out = Vec::new();
        let e = loop {
            match resumed.read(&mut out, 1) {
                Ok(ReadStatus::Finished) => panic!("no error"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert_eq!(e.location, format!("{}:3", path.display()));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn positions_that_do_not_fit_the_file_are_refused() {
        let dir = TempDir::new("text-resume-bad");
        dir.write("a.txt", b"one\ntwo\n");
        dir.write("b.txt", b"three\n");
        let source = TextSource::new(format!("{}/*.txt", dir.path().display()));
        let mut r = source.open(0, 2).unwrap();
        r.read(&mut Vec::new(), 1).unwrap();
        let position = r.checkpoint_position().unwrap();
        // Another file's position.
        let e = source.reopen(1, 2, &position).err().expect("refused");
        assert!(e.message.contains("\"a.txt\"") && e.location.ends_with("b.txt"), "{e}");
        // Past the end (the file was truncated since).
        dir.write("a.txt", b"on");
        let e = source.reopen(0, 2, &position).err().expect("refused");
        assert!(e.message.contains("past the end of the file"), "{e}");
        // Not a position at all.
        for bad in [&b""[..], &b"\x01short"[..], &b"\x09aaaaaaaabbbbbbbba.txt"[..]] {
            let e = source.reopen(0, 2, bad).err().expect("refused");
            assert!(e.message.contains("file position"), "{e}");
        }
        // The set of files changed.
        dir.write("c.txt", b"");
        let e = source.reopen(0, 2, &position).err().expect("refused");
        assert!(e.message.contains("changed"), "{e}");
    }

    #[test]
    fn json_decode_errors_say_where_in_the_line() {
        let e = decode_json::<u32>("\"x\"").unwrap_err();
        assert!(e.contains("invalid type") && e.contains("column"), "{e}");
        assert_eq!(decode_json::<u32>(" 7 "), Ok(Some(7)));
        assert_eq!(decode_json::<u32>("   "), Ok(None));
    }
}
