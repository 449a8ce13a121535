//! The sparse offset index: one `.index` file per segment.
//!
//! An index file is a sequence of 24-byte entries, nothing else:
//!
//! ```text
//! offset  size  field
//! 0       8     offset, u64 LE: the base offset of a batch in the segment
//! 8       8     position, u64 LE: the byte position of that batch in the segment file
//! 16      8     max timestamp, i64 LE: the largest record timestamp of all batches of the
//!               segment up to and including that batch
//! ```
//!
//! An entry is added for a batch starting at position `p` when `p >= q + index_interval_bytes`,
//! where `q` is the position of the previous entry (0 for the first). Entries are sorted by
//! offset and by position. The index is derived data: it is not fsynced per batch, readers
//! check every entry they use against the batch header it points to, and the writer rebuilds
//! it from the segment when it is missing or inconsistent.

use std::fs::File;

use crate::fsio::read_at;

/// Size of one index entry in bytes.
pub const INDEX_ENTRY_LEN: u64 = 24;

/// One index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Base offset of the indexed batch.
    pub offset: u64,
    /// Byte position of the indexed batch in the segment file.
    pub position: u64,
    /// Largest timestamp of the segment's batches up to and including the indexed one.
    pub max_timestamp_ms: i64,
}

impl IndexEntry {
    pub(crate) fn encode(&self) -> [u8; INDEX_ENTRY_LEN as usize] {
        let mut out = [0u8; INDEX_ENTRY_LEN as usize];
        out[0..8].copy_from_slice(&self.offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.position.to_le_bytes());
        out[16..24].copy_from_slice(&self.max_timestamp_ms.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8; INDEX_ENTRY_LEN as usize]) -> Self {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i..i + 8]);
            w
        };
        IndexEntry {
            offset: u64::from_le_bytes(word(0)),
            position: u64::from_le_bytes(word(8)),
            max_timestamp_ms: i64::from_le_bytes(word(16)),
        }
    }
}

/// Reads entry number `i` of `file`. `None` if the file is shorter.
pub(crate) fn read_entry(file: &File, i: u64) -> std::io::Result<Option<IndexEntry>> {
    let mut buf = [0u8; INDEX_ENTRY_LEN as usize];
    let n = read_at(file, &mut buf, i * INDEX_ENTRY_LEN)?;
    Ok((n == buf.len()).then(|| IndexEntry::decode(&buf)))
}

/// The number of whole entries in an index file of `len` bytes.
pub(crate) fn entry_count(len: u64) -> u64 {
    len / INDEX_ENTRY_LEN
}

/// Binary search of `file` (with `count` entries) for the last entry whose offset is at most
/// `target`. Reads O(log n) entries. The result is only a hint: the caller must check the batch
/// header it points to.
pub(crate) fn lookup(file: &File, count: u64, target: u64) -> std::io::Result<Option<IndexEntry>> {
    let (mut lo, mut hi) = (0u64, count);
    let mut best = None;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match read_entry(file, mid)? {
            Some(entry) if entry.offset <= target => {
                best = Some(entry);
                lo = mid + 1;
            }
            Some(_) => hi = mid,
            None => hi = mid,
        }
    }
    Ok(best)
}

/// The whole index at `path`, or `None` if the file does not exist.
#[cfg(test)]
pub(crate) fn read_all(path: &std::path::Path) -> std::io::Result<Option<Vec<IndexEntry>>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Vec::with_capacity(bytes.len() / INDEX_ENTRY_LEN as usize);
    for chunk in bytes.chunks_exact(INDEX_ENTRY_LEN as usize) {
        let mut entry = [0u8; INDEX_ENTRY_LEN as usize];
        entry.copy_from_slice(chunk);
        out.push(IndexEntry::decode(&entry));
    }
    Ok(Some(out))
}

/// Serializes `entries` as an index file's contents.
pub(crate) fn encode_all(entries: &[IndexEntry]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.encode()).collect()
}

/// Tracks when the next index entry is due while batches are appended or scanned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexCursor {
    interval: u64,
    last_indexed_position: u64,
}

impl IndexCursor {
    /// A cursor for a segment whose last entry is at `last_indexed_position` (0 if none).
    pub(crate) fn new(interval: u64, last_indexed_position: u64) -> Self {
        IndexCursor { interval: interval.max(1), last_indexed_position }
    }

    /// Whether the batch at `position` gets an entry; if so, records it as the last one.
    pub(crate) fn due(&mut self, position: u64) -> bool {
        if position >= self.last_indexed_position.saturating_add(self.interval) {
            self.last_indexed_position = position;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn entries(n: u64) -> Vec<IndexEntry> {
        (0..n)
            .map(|i| IndexEntry {
                offset: 10 + i * 5,
                position: i * 4096 + 4096,
                max_timestamp_ms: i as i64 * 3 - 7,
            })
            .collect()
    }

    #[test]
    fn entries_round_trip() {
        for e in entries(3) {
            assert_eq!(IndexEntry::decode(&e.encode()), e);
        }
    }

    #[test]
    fn lookup_finds_last_entry_at_or_below_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.index");
        let all = entries(100);
        let mut bytes = encode_all(&all);
        bytes.extend_from_slice(&[1, 2, 3]); // a torn trailing entry is ignored
        std::fs::File::create(&path).and_then(|mut f| f.write_all(&bytes)).expect("write");
        let file = File::open(&path).expect("open");
        let count = entry_count(file.metadata().expect("meta").len());
        assert_eq!(count, 100);
        assert_eq!(lookup(&file, count, 9).expect("lookup"), None);
        assert_eq!(lookup(&file, count, 10).expect("lookup"), Some(all[0]));
        assert_eq!(lookup(&file, count, 14).expect("lookup"), Some(all[0]));
        assert_eq!(lookup(&file, count, 15).expect("lookup"), Some(all[1]));
        assert_eq!(lookup(&file, count, 1_000_000).expect("lookup"), Some(all[99]));
        assert_eq!(read_all(&path).expect("read"), Some(all));
        assert_eq!(read_all(&dir.path().join("missing.index")).expect("read"), None);
    }

    #[test]
    fn cursor_spaces_entries_by_interval() {
        let mut cursor = IndexCursor::new(100, 0);
        let due: Vec<u64> =
            [0, 50, 99, 100, 150, 199, 200, 450].into_iter().filter(|&p| cursor.due(p)).collect();
        assert_eq!(due, [100, 200, 450]);
    }
}
