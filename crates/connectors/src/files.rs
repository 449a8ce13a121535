//! File plumbing shared by the line-oriented sources: expanding paths and globs into a
//! sorted list of files, reading a file (or a byte range of one, see [`crate::ranges`])
//! line by line with line numbers for error messages, and resuming where a checkpoint
//! left it ([`FilePosition`]).

use crate::error::ConnectorError;
use crate::ranges::{check_resume, file_name, range_begin, resume_error, ByteRange};
use millstream_model::Timestamp;
use millstream_runtime::DeadLetter;
use millstream_runtime::{ReadStatus, SourceError, SourceReader};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
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

/// Where a line reader stands in its file: the byte offset of the next unread line and
/// the number of the last line read. This is what a checkpoint records for a file
/// partition; [`LineReader::open_at`] resumes from it.
///
/// Encoded ([`encode`](Self::encode)) as 17 bytes, little endian: a version byte (1),
/// the offset (`u64`), the line number (`u64`); then the file's name in UTF-8, so that a
/// position is never applied to another file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePosition {
    /// Byte offset of the next unread line (the start of the file is 0, before any
    /// byte-order mark).
    pub offset: u64,
    /// The number of the last line read, from 1 (0 before the first).
    pub line: u64,
    /// The file's name (its last path component), as read.
    pub file_name: String,
}

const POSITION_VERSION: u8 = 1;
const POSITION_HEADER: usize = 17;

impl FilePosition {
    /// The position's bytes, as stored in a checkpoint.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(POSITION_HEADER + self.file_name.len());
        out.push(POSITION_VERSION);
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.line.to_le_bytes());
        out.extend_from_slice(self.file_name.as_bytes());
        out
    }

    /// Decodes [`encode`](Self::encode)'s bytes; the error says what is wrong with them.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let (Some(&version), Some(offset), Some(line), Some(name)) = (
            bytes.first(),
            bytes.get(1..9).and_then(|b| <[u8; 8]>::try_from(b).ok()),
            bytes.get(9..17).and_then(|b| <[u8; 8]>::try_from(b).ok()),
            bytes.get(POSITION_HEADER..),
        ) else {
            return Err(format!("file position of {} bytes is too short", bytes.len()));
        };
        if version != POSITION_VERSION {
            return Err(format!(
                "file position of version {version}, this reader understands {POSITION_VERSION}"
            ));
        }
        let file_name = String::from_utf8(name.to_vec())
            .map_err(|_| "file position names a file in bad UTF-8".to_owned())?;
        Ok(FilePosition { offset: u64::from_le_bytes(offset), line: u64::from_le_bytes(line), file_name })
    }
}

/// Reads a text file, or a byte range of one, line by line. Lines end at `\n`; a
/// trailing `\r` is removed, as is a UTF-8 byte-order mark at the start of the file.
#[derive(Debug)]
pub struct LineReader {
    path: PathBuf,
    reader: BufReader<File>,
    /// The number of the last line read (from 1).
    line: u64,
    /// Byte offset of the next unread line.
    offset: u64,
    /// Lines starting at or after this byte are not read (another range's).
    end: u64,
    buf: Vec<u8>,
}

impl LineReader {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self, ConnectorError> {
        Self::open_range(&ByteRange::whole(path.to_owned()))
    }

    /// Opens the lines of `range`: from the first line starting at or after its start
    /// through the line spanning its end, with true line numbers (see [`crate::ranges`]).
    pub(crate) fn open_range(range: &ByteRange) -> Result<Self, ConnectorError> {
        let path = &range.path;
        let (begin, line) = range_begin(path, range.start, 0, false)
            .map_err(|e| ConnectorError::io(path, "cannot read", e))?;
        Self::open_at_offset(range, begin, line)
    }

    /// Opens `path` at `position` (from [`position`](Self::position) of a reader of the
    /// same file): the next line read is the one after the last line read there, and
    /// line numbers continue. Fails if the position is for another file or lies past
    /// the file's end.
    pub fn open_at(path: &Path, position: &FilePosition) -> Result<Self, ConnectorError> {
        Self::open_range_at(&ByteRange::whole(path.to_owned()), position)
    }

    /// Opens `range` at `position` (from a reader of the same range), as
    /// [`open_at`](Self::open_at) does a whole file.
    pub(crate) fn open_range_at(range: &ByteRange, position: &FilePosition) -> Result<Self, ConnectorError> {
        let path = &range.path;
        let len = std::fs::metadata(path).map_err(|e| ConnectorError::io(path, "cannot open", e))?.len();
        check_resume(range, position, len)?;
        Self::open_at_offset(range, position.offset, position.line)
    }

    fn open_at_offset(range: &ByteRange, offset: u64, line: u64) -> Result<Self, ConnectorError> {
        let path = &range.path;
        let mut file = File::open(path).map_err(|e| ConnectorError::io(path, "cannot open", e))?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| ConnectorError::io(path, "cannot seek", e))?;
        Ok(LineReader {
            path: path.to_owned(),
            reader: BufReader::with_capacity(1 << 16, file),
            line,
            offset,
            end: range.end,
            buf: Vec::new(),
        })
    }

    /// Where the reader stands: after the last line read.
    pub fn position(&self) -> FilePosition {
        FilePosition { offset: self.offset, line: self.line, file_name: file_name(&self.path) }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of the last line read, from 1 (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line
    }

    /// The raw bytes of the line last returned or rejected (without its terminator).
    pub fn last_line_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The next line without its terminator, or `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<String>, ConnectorError> {
        self.buf.clear();
        if self.offset >= self.end {
            return Ok(None);
        }
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| ConnectorError::io(&self.path, "cannot read", e))?;
        if n == 0 {
            return Ok(None);
        }
        self.offset += n as u64;
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

/// What a line-oriented source does with a line that cannot be decoded (bad JSON, wrong
/// types, invalid UTF-8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadRecordPolicy {
    /// Fail the job, naming the file, the line and the decoder's error (the default).
    #[default]
    Fail,
    /// Route the line, with its file, line number and error, to the source's dead-letter
    /// output (read the source with `Pipeline::read_with_dead_letters`), and go on.
    DeadLetter,
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
    /// Lines routed aside, until the runtime takes them.
    dead: Vec<DeadLetter>,
}

impl<T> LinesReader<T> {
    /// Opens `range`, or resumes it at `position` (what its
    /// [`SourceReader::checkpoint_position`] reported).
    pub(crate) fn open(
        range: &ByteRange,
        position: Option<&[u8]>,
        decode: Arc<DecodeFn<T>>,
        policy: BadRecordPolicy,
    ) -> Result<Self, ConnectorError> {
        let lines = match position {
            None => LineReader::open_range(range)?,
            Some(bytes) => {
                let position =
                    FilePosition::decode(bytes).map_err(|message| resume_error(&range.path, message))?;
                LineReader::open_range_at(range, &position)?
            }
        };
        Ok(LinesReader { lines, decode, policy, finished: false, dead: Vec::new() })
    }

    /// Applies the bad-record policy to a line that failed to decode (`line` is its text
    /// when the policy keeps it).
    fn bad_record(&mut self, message: String, line: Option<String>) -> Result<(), ConnectorError> {
        match self.policy {
            BadRecordPolicy::Fail => Err(ConnectorError::Decode {
                path: self.lines.path().to_owned(),
                line: self.lines.line_number(),
                message,
            }),
            BadRecordPolicy::DeadLetter => {
                let location = format!("{}:{}", self.lines.path().display(), self.lines.line_number());
                self.dead.push(DeadLetter::from_text(location, message, line.unwrap_or_default()));
                Ok(())
            }
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
            let line = match self.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => {
                    self.finished = true;
                    return Ok(ReadStatus::Finished);
                }
                Err(ConnectorError::InvalidUtf8 { path, line, message })
                    if self.policy == BadRecordPolicy::DeadLetter =>
                {
                    let location = format!("{}:{line}", path.display());
                    let error = format!("invalid UTF-8: {message}");
                    self.dead.push(DeadLetter::from_bytes(location, error, self.lines.last_line_bytes()));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let kept = (self.policy == BadRecordPolicy::DeadLetter).then(|| line.clone());
            match (self.decode)(line) {
                Ok(Some(record)) => out.push(record),
                Ok(None) => {}
                Err(message) => self.bad_record(message, kept)?,
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

    /// The byte offset after the last line read, with its line number
    /// ([`FilePosition`]). Every line read has been handed to the runtime, decoded or
    /// skipped, so resuming there neither repeats nor loses a line.
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        Some(self.lines.position().encode())
    }

    fn take_dead_letters(&mut self, out: &mut Vec<DeadLetter>) {
        out.append(&mut self.dead);
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
    fn positions_round_trip_and_resume_line_numbers() {
        let dir = TempDir::new("files-position");
        let path = dir.write("p.txt", b"\xEF\xBB\xBFa\r\nb\nc");
        let mut r = LineReader::open(&path).unwrap();
        assert_eq!(r.next_line().unwrap().as_deref(), Some("a"));
        let position = r.position();
        assert_eq!(position, FilePosition { offset: 6, line: 1, file_name: "p.txt".to_owned() });
        assert_eq!(FilePosition::decode(&position.encode()), Ok(position.clone()));
        let mut resumed = LineReader::open_at(&path, &position).unwrap();
        assert_eq!(resumed.next_line().unwrap().as_deref(), Some("b"));
        assert_eq!(resumed.line_number(), 2);
        assert_eq!(resumed.next_line().unwrap().as_deref(), Some("c"));
        assert_eq!(resumed.position().offset, 9);
        assert_eq!(resumed.next_line().unwrap(), None);
        // Resuming at the very end reads nothing.
        let mut end = LineReader::open_at(&path, &resumed.position()).unwrap();
        assert_eq!(end.next_line().unwrap(), None);
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
