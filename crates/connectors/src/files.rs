//! File plumbing shared by the line-oriented sources: expanding paths and globs into a
//! sorted list of files (one partition each), and reading a file line by line with line
//! numbers for error messages.

use crate::error::ConnectorError;
use millstream_model::Timestamp;
use millstream_runtime::{ReadStatus, SourceError, SourceReader};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Characters that make a path a glob pattern.
const GLOB_META: [char; 3] = ['*', '?', '['];

/// The files a path or glob pattern names, sorted. A plain path must be an existing
/// file; a pattern must match at least one file (directories it matches are skipped).
pub fn expand(pattern: &str) -> Result<Vec<PathBuf>, ConnectorError> {
    if !pattern.contains(GLOB_META) {
        let path = PathBuf::from(pattern);
        let meta = std::fs::metadata(&path).map_err(|e| ConnectorError::io(&path, "cannot open", e))?;
        if meta.is_dir() {
            let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "is a directory, not a file");
            return Err(ConnectorError::io(&path, "cannot read", e));
        }
        return Ok(vec![path]);
    }
    let entries = glob::glob(pattern).map_err(|e| ConnectorError::InvalidPattern {
        pattern: pattern.to_owned(),
        message: e.to_string(),
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| {
            let path = e.path().to_owned();
            ConnectorError::io(&path, "cannot read", e.into())
        })?;
        if path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(ConnectorError::NoMatch { pattern: pattern.to_owned() });
    }
    files.sort();
    Ok(files)
}

/// The file of partition `partition` of `partitions` for `pattern`, checking that the
/// pattern still matches as many files as when the partitions were counted.
pub(crate) fn partition_file(
    pattern: &str,
    partition: usize,
    partitions: usize,
) -> Result<PathBuf, ConnectorError> {
    let mut files = expand(pattern)?;
    if files.len() != partitions || partition >= files.len() {
        return Err(ConnectorError::FilesChanged { pattern: pattern.to_owned() });
    }
    Ok(files.swap_remove(partition))
}

/// Reads a text file line by line. Lines end at `\n`; a trailing `\r` is removed, as is a
/// UTF-8 byte-order mark at the start of the file.
#[derive(Debug)]
pub struct LineReader {
    path: PathBuf,
    reader: BufReader<File>,
    /// The number of the last line read (from 1).
    line: u64,
    buf: Vec<u8>,
}

impl LineReader {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self, ConnectorError> {
        let file = File::open(path).map_err(|e| ConnectorError::io(path, "cannot open", e))?;
        Ok(LineReader {
            path: path.to_owned(),
            reader: BufReader::with_capacity(1 << 16, file),
            line: 0,
            buf: Vec::new(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of the last line read, from 1 (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line
    }

    /// The next line without its terminator, or `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<String>, ConnectorError> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| ConnectorError::io(&self.path, "cannot read", e))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        let start = if self.line == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
        let bytes = self.buf[start..].to_vec();
        String::from_utf8(bytes).map(Some).map_err(|e| ConnectorError::InvalidUtf8 {
            path: self.path.clone(),
            line: self.line,
            message: format!("bad byte after {} valid bytes", e.utf8_error().valid_up_to()),
        })
    }
}

/// What a line-oriented source does with a line that cannot be decoded.
///
/// Only [`BadRecordPolicy::Fail`] exists today; skipping and dead-letter outputs will be
/// added here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadRecordPolicy {
    /// Fail the job, naming the file, the line and the decoder's error (the default).
    #[default]
    Fail,
}

/// Turns one line into a record: `Ok(Some(..))` a record with its timestamp, `Ok(None)`
/// nothing (a blank line, say), `Err(message)` a bad record.
pub(crate) type DecodeFn<T> = dyn Fn(String) -> Result<Option<(T, Timestamp)>, String> + Send + Sync;

/// Reads one file of a line-oriented source, decoding each line.
pub(crate) struct LinesReader<T> {
    lines: LineReader,
    decode: Arc<DecodeFn<T>>,
    policy: BadRecordPolicy,
    finished: bool,
}

impl<T> LinesReader<T> {
    pub(crate) fn open(
        path: &Path,
        decode: Arc<DecodeFn<T>>,
        policy: BadRecordPolicy,
    ) -> Result<Self, ConnectorError> {
        Ok(LinesReader { lines: LineReader::open(path)?, decode, policy, finished: false })
    }

    /// Applies the bad-record policy to a line that failed to decode.
    fn bad_record(&self, message: String) -> Result<(), ConnectorError> {
        match self.policy {
            BadRecordPolicy::Fail => Err(ConnectorError::Decode {
                path: self.lines.path().to_owned(),
                line: self.lines.line_number(),
                message,
            }),
        }
    }

    fn read_lines(
        &mut self,
        out: &mut Vec<(T, Timestamp)>,
        max: usize,
    ) -> Result<ReadStatus, ConnectorError> {
        if self.finished {
            return Ok(ReadStatus::Finished);
        }
        for _ in 0..max.max(1) {
            let Some(line) = self.lines.next_line()? else {
                self.finished = true;
                return Ok(ReadStatus::Finished);
            };
            match (self.decode)(line) {
                Ok(Some(record)) => out.push(record),
                Ok(None) => {}
                Err(message) => self.bad_record(message)?,
            }
        }
        Ok(ReadStatus::Data)
    }
}

impl<T: Send + 'static> SourceReader<T> for LinesReader<T> {
    fn read(&mut self, out: &mut Vec<(T, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        self.read_lines(out, max).map_err(|e| {
            self.finished = true;
            e.into_source_error(&self.position())
        })
    }

    /// Files are bounded: nothing is late until the file is done, when the runtime moves
    /// the partition's watermark to the end of time.
    fn watermark(&self) -> Option<Timestamp> {
        None
    }

    fn position(&self) -> String {
        format!("{}:{}", self.lines.path().display(), self.lines.line_number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn reads_lines_with_numbers_and_without_terminators() {
        let dir = TempDir::new("files-lines");
        let path = dir.write("a.txt", b"\xEF\xBB\xBFone\r\ntwo\n\nlast");
        let mut r = LineReader::open(&path).unwrap();
        let mut lines = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            lines.push((r.line_number(), l));
        }
        let expected = vec![(1, "one"), (2, "two"), (3, ""), (4, "last")];
        assert_eq!(lines, expected.into_iter().map(|(n, l)| (n, l.to_owned())).collect::<Vec<_>>());
    }

    #[test]
    fn invalid_utf8_names_file_and_line() {
        let dir = TempDir::new("files-utf8");
        let path = dir.write("bad.txt", b"fine\nbad \xff here\n");
        let mut r = LineReader::open(&path).unwrap();
        assert!(r.next_line().unwrap().is_some());
        let e = r.next_line().unwrap_err();
        assert_eq!(e.location(""), format!("{}:2", path.display()));
        assert!(e.to_string().contains("invalid UTF-8"), "{e}");
    }

    #[test]
    fn expands_globs_sorted_and_reports_no_match() {
        let dir = TempDir::new("files-glob");
        dir.write("b.txt", b"");
        dir.write("a.txt", b"");
        dir.write("c.log", b"");
        std::fs::create_dir_all(dir.path().join("d.txt")).unwrap();
        let files = expand(&format!("{}/*.txt", dir.path().display())).unwrap();
        let names: Vec<_> = files.iter().filter_map(|p| p.file_name()?.to_str()).collect();
        assert_eq!(names, vec!["a.txt", "b.txt"]);
        let e = expand(&format!("{}/*.csv", dir.path().display())).unwrap_err();
        assert!(matches!(e, ConnectorError::NoMatch { .. }), "{e}");
        let e = expand(&dir.path().join("missing.txt").display().to_string()).unwrap_err();
        assert!(e.to_string().contains("missing.txt: cannot open"), "{e}");
        let e = expand(&dir.path().join("d.txt").display().to_string()).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        let e = expand(&format!("{}/[*.txt", dir.path().display())).unwrap_err();
        assert!(matches!(e, ConnectorError::InvalidPattern { .. }), "{e}");
    }
}
