//! Byte ranges of files: the partitions of the file sources (CSV, JSON lines, text).
//!
//! Without splitting, every file matched is one range (`0..u64::MAX`). With a split size,
//! a file of `len` bytes becomes `ceil(len / size)` ranges `k * size .. (k + 1) * size`
//! (the last one open-ended). A range holds the lines (records) that *start* inside it:
//! it begins at the first line starting at or after its start offset (found by reading
//! from byte `start - 1` through the next newline) and ends with the line that spans its
//! end. Every line therefore belongs to exactly one range, however long it is: a line
//! longer than a range makes the ranges it covers empty.
//!
//! Line numbers stay true: opening a range at byte `b > 0` counts the newlines before `b`
//! (one sequential read of that part of the file, no decoding), so errors and dead
//! letters name `file:line` as an unsplit read would.
//!
//! CSV, JSON lines and text all use this module: [`file_ranges`] lists the partitions,
//! [`partition_range`] finds one again when it is opened, [`range_begin`] finds where a
//! range's first line starts and [`check_resume`] validates a checkpointed position.

use crate::error::ConnectorError;
use crate::files::{expand, FilePosition};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A partition of a file source: the lines of `path` that start in bytes `start..end`
/// (`end` is `u64::MAX` for a file's last range).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ByteRange {
    /// The file.
    pub(crate) path: PathBuf,
    /// The first byte of the range.
    pub(crate) start: u64,
    /// Lines starting at or after this byte belong to the next range.
    pub(crate) end: u64,
}

impl ByteRange {
    /// The whole of `path`.
    pub(crate) fn whole(path: PathBuf) -> Self {
        ByteRange { path, start: 0, end: u64::MAX }
    }
}

/// The partitions of the files `pattern` names: each file whole (`split_bytes` `None`),
/// or in ranges of `split_bytes` bytes; files in sorted order, ranges in file order.
pub(crate) fn file_ranges(pattern: &str, split_bytes: Option<u64>) -> Result<Vec<ByteRange>, ConnectorError> {
    let mut ranges = Vec::new();
    for path in expand(pattern)? {
        let Some(size) = split_bytes.map(|s| s.max(1)) else {
            ranges.push(ByteRange::whole(path));
            continue;
        };
        let len = std::fs::metadata(&path).map_err(|e| ConnectorError::io(&path, "cannot open", e))?.len();
        let n = len.div_ceil(size).max(1);
        for k in 0..n {
            let end = if k + 1 == n { u64::MAX } else { (k + 1) * size };
            ranges.push(ByteRange { path: path.clone(), start: k * size, end });
        }
    }
    Ok(ranges)
}

/// Partition `partition` of `partitions` of [`file_ranges`], checking that the files
/// still split into as many partitions as when they were counted.
pub(crate) fn partition_range(
    pattern: &str,
    split_bytes: Option<u64>,
    partition: usize,
    partitions: usize,
) -> Result<ByteRange, ConnectorError> {
    let mut ranges = file_ranges(pattern, split_bytes)?;
    if ranges.len() != partitions || partition >= ranges.len() {
        return Err(ConnectorError::FilesChanged { pattern: pattern.to_owned() });
    }
    Ok(ranges.swap_remove(partition))
}

/// Where a range starting at byte `start > 0` begins: after the first newline at or
/// after byte `start - 1` (so at `start` itself when a line ends just before it), then
/// past blank lines if `skip_blank` (CSV skips them; for text they are lines), and not
/// before `floor` (the end of a CSV header row). Returns that offset with the number of
/// lines before it. At `start == 0` the range begins at `floor`.
pub(crate) fn range_begin(
    path: &Path,
    start: u64,
    floor: u64,
    skip_blank: bool,
) -> std::io::Result<(u64, u64)> {
    let mut begin = 0;
    if start > 0 {
        let mut file = BufReader::with_capacity(1 << 16, File::open(path)?);
        file.seek(SeekFrom::Start(start - 1))?;
        let n = skip_line(&mut file)?;
        let blank = if skip_blank { skip_blank_lines(&mut file)? } else { 0 };
        begin = start - 1 + n + blank;
    }
    let begin = begin.max(floor);
    Ok((begin, count_lines(path, begin)?))
}

/// Reads through the next `\n` (or to the end of the file) without keeping the bytes
/// (a line can be larger than memory); returns how many bytes it read.
fn skip_line(file: &mut impl BufRead) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let buf = file.fill_buf()?;
        if buf.is_empty() {
            return Ok(skipped);
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                file.consume(i + 1);
                return Ok(skipped + i as u64 + 1);
            }
            None => {
                let n = buf.len();
                file.consume(n);
                skipped += n as u64;
            }
        }
    }
}

/// The number of `\n` bytes before byte `end` of `path`.
pub(crate) fn count_lines(path: &Path, end: u64) -> std::io::Result<u64> {
    if end == 0 {
        return Ok(0);
    }
    let mut file = BufReader::with_capacity(1 << 16, File::open(path)?).take(end);
    let mut lines = 0u64;
    loop {
        let buf = file.fill_buf()?;
        if buf.is_empty() {
            return Ok(lines);
        }
        lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let used = buf.len();
        file.consume(used);
    }
}

/// Skips `\r` and `\n` bytes (blank lines, which csv skips too); returns how many.
pub(crate) fn skip_blank_lines(file: &mut impl BufRead) -> std::io::Result<u64> {
    let mut skipped = 0;
    loop {
        let buf = file.fill_buf()?;
        let n = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
        file.consume(n);
        skipped += n as u64;
        if n == 0 || file.fill_buf()?.is_empty() {
            return Ok(skipped);
        }
    }
}

/// An error resuming `path` from a checkpointed position.
pub(crate) fn resume_error(path: &Path, message: String) -> ConnectorError {
    ConnectorError::io(path, "cannot resume", std::io::Error::new(std::io::ErrorKind::InvalidData, message))
}

/// The file name a [`FilePosition`] records for `path`.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Checks that `position` (decoded from a checkpoint) fits `range` of a file of `len`
/// bytes: the same file, not past its end, not before the range.
pub(crate) fn check_resume(
    range: &ByteRange,
    position: &FilePosition,
    len: u64,
) -> Result<(), ConnectorError> {
    let path = &range.path;
    if position.file_name != file_name(path) {
        return Err(resume_error(
            path,
            format!(
                "the checkpoint's position is for file {:?}, not this one (did the files change?)",
                position.file_name
            ),
        ));
    }
    if position.offset > len {
        return Err(resume_error(
            path,
            format!(
                "the checkpoint's position (byte {}, after line {}) is past the end of the file ({len} bytes): \
                 was it truncated?",
                position.offset, position.line
            ),
        ));
    }
    if position.offset < range.start {
        return Err(resume_error(
            path,
            format!(
                "the checkpoint's position (byte {}) is before this range of the file (from byte {}): \
                 did the split size change?",
                position.offset, range.start
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn ranges_begin_at_the_first_line_starting_in_them() {
        let dir = TempDir::new("ranges-begin");
        let path = dir.write("a.txt", b"ab\ncd\n\n\nlong line\nx");
        // Byte 3 starts "cd": a range from 3 begins there; from 4, at the blank line.
        assert_eq!(range_begin(&path, 3, 0, false).unwrap(), (3, 1));
        assert_eq!(range_begin(&path, 4, 0, false).unwrap(), (6, 2));
        assert_eq!(range_begin(&path, 4, 0, true).unwrap(), (8, 4));
        // Inside the last line, which has no newline: the range is empty.
        assert_eq!(range_begin(&path, 20, 0, false).unwrap(), (path.metadata().unwrap().len(), 5));
        assert_eq!(range_begin(&path, 0, 3, false).unwrap(), (3, 1));
        let ranges = file_ranges(&path.display().to_string(), Some(7)).unwrap();
        let bounds: Vec<_> = ranges.iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(bounds, vec![(0, 7), (7, 14), (14, u64::MAX)]);
        let e = partition_range(&path.display().to_string(), Some(7), 0, 2).unwrap_err();
        assert!(matches!(e, ConnectorError::FilesChanged { .. }), "{e}");
    }
}
