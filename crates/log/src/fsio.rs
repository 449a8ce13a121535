//! Small file-system helpers: positioned reads, directory fsync, atomic file replacement and
//! the names of segment files.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{LogError, Result};

/// Reads into `buf` from byte `pos` of `file` until `buf` is full or the end of the file.
/// Returns the number of bytes read. Does not move any shared file cursor on Unix.
pub(crate) fn read_at(file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match pread(file, &mut buf[done..], pos + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(unix)]
fn pread(file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, pos)
}

#[cfg(windows)]
fn pread(file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, pos)
}

/// Makes the entries of directory `dir` (creations, renames, deletions) durable. A no-op
/// where directories cannot be opened (Windows).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(|e| LogError::io("open directory", dir, e))?;
        d.sync_all().map_err(|e| LogError::io("fsync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Replaces `path` with `bytes` atomically: writes `path.tmp`, fsyncs it, renames it over
/// `path` and fsyncs the directory. Readers see the old or the new contents, never a mix.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| LogError::io("create", &tmp, e))?;
    file.write_all(bytes).map_err(|e| LogError::io("write to", &tmp, e))?;
    file.sync_all().map_err(|e| LogError::io("fsync", &tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| LogError::io("rename into place", path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// `path` with `.tmp` appended to its file name.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Extension of segment (log) files.
pub const LOG_EXT: &str = "log";
/// Extension of offset index files.
pub const INDEX_EXT: &str = "index";

/// The file name of the segment with `base_offset`: 20 zero-padded decimal digits.
pub(crate) fn segment_name(base_offset: u64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// The base offset encoded in a segment file name with extension `ext`, if it is one.
pub(crate) fn parse_segment_name(name: &str, ext: &str) -> Option<u64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Base offsets of the segment (`.log`) files in `dir`, sorted.
pub(crate) fn list_segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(base) = entry.file_name().to_str().and_then(|n| parse_segment_name(n, LOG_EXT)) {
            out.push(base);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Whether an I/O error means "no such file or directory".
pub(crate) fn is_not_found(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_name(0, LOG_EXT), "00000000000000000000.log");
        assert_eq!(segment_name(1234, INDEX_EXT), "00000000000000001234.index");
        assert_eq!(parse_segment_name("00000000000000001234.log", LOG_EXT), Some(1234));
        assert_eq!(parse_segment_name(&segment_name(u64::MAX, LOG_EXT), LOG_EXT), Some(u64::MAX));
        assert_eq!(parse_segment_name("00000000000000001234.index", LOG_EXT), None);
        assert_eq!(parse_segment_name("1234.log", LOG_EXT), None);
        assert_eq!(parse_segment_name("0000000000000000123x.log", LOG_EXT), None);
        assert_eq!(parse_segment_name("00000000000000001234.log.tmp", LOG_EXT), None);
    }

    #[test]
    fn atomic_write_replaces_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        write_atomic(&path, b"one").expect("write");
        write_atomic(&path, b"two").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert!(!tmp_path(&path).exists());
    }
}
