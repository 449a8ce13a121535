//! Reading and scanning segment files.
//!
//! A segment file is a sequence of batch frames (see [`crate::batch`]) with contiguous
//! offsets: each batch's base offset is the previous batch's base offset plus its record
//! count, and the first batch's base offset is the one in the file name.

use std::fs::File;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::batch::{BatchHeader, HeaderError, BATCH_MAGIC, HEADER_LEN};
use crate::fsio::read_at;
use crate::index::{IndexCursor, IndexEntry};

/// How many bytes a segment reader reads at once (more if a batch is larger).
pub(crate) const CHUNK_LEN: u64 = 256 * 1024;

/// What is at a byte position of a segment file.
#[derive(Debug)]
pub(crate) enum BatchAt {
    /// The position is the end of the file.
    End,
    /// Some bytes, but fewer than a header or than the header's frame length: a torn write,
    /// or a write still in progress.
    Incomplete { available: u64, needed: u64 },
    /// Not a valid batch header.
    BadHeader(HeaderError),
    /// A complete frame whose CRC does not match.
    BadCrc(BatchHeader),
    /// A complete, verified batch.
    Batch { header: BatchHeader, payload: Bytes },
}

/// Reads batches from one segment file through a cached chunk. Keys and values of records
/// decoded from it share the chunk's buffer.
#[derive(Debug)]
pub(crate) struct SegmentReader {
    pub path: PathBuf,
    pub base_offset: u64,
    file: File,
    chunk_start: u64,
    chunk: Bytes,
    file_len: u64,
}

impl SegmentReader {
    /// Opens the segment file at `path`.
    pub(crate) fn open(path: &Path, base_offset: u64) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let file_len = file.metadata()?.len();
        Ok(SegmentReader {
            path: path.to_path_buf(),
            base_offset,
            file,
            chunk_start: 0,
            chunk: Bytes::new(),
            file_len,
        })
    }

    /// The file length as of the last time it was looked at.
    pub(crate) fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Looks at the file's current length.
    pub(crate) fn refresh_len(&mut self) -> std::io::Result<u64> {
        self.file_len = self.file.metadata()?.len();
        Ok(self.file_len)
    }

    /// Forgets the cached chunk (after the file was truncated).
    pub(crate) fn invalidate(&mut self) {
        self.chunk = Bytes::new();
        self.chunk_start = 0;
    }

    /// Bytes `pos..pos + len` of the file, or `None` if the file is shorter.
    fn ensure(&mut self, pos: u64, len: u64) -> std::io::Result<Option<Bytes>> {
        let Some(end) = pos.checked_add(len) else { return Ok(None) };
        let chunk_end = self.chunk_start + self.chunk.len() as u64;
        if pos >= self.chunk_start && end <= chunk_end {
            let start = (pos - self.chunk_start) as usize;
            return Ok(Some(self.chunk.slice(start..start + len as usize)));
        }
        if end > self.file_len && end > self.refresh_len()? {
            return Ok(None);
        }
        let want = (self.file_len - pos).min(CHUNK_LEN.max(len));
        let Ok(want_usize) = usize::try_from(want) else { return Ok(None) };
        let mut buf = vec![0u8; want_usize];
        let got = read_at(&self.file, &mut buf, pos)?;
        buf.truncate(got);
        self.chunk = Bytes::from(buf);
        self.chunk_start = pos;
        if (got as u64) < len {
            // The file shrank under us (truncated by a recovering writer).
            self.file_len = pos + got as u64;
            return Ok(None);
        }
        Ok(Some(self.chunk.slice(0..len as usize)))
    }

    /// The batch header at `pos`, without reading or checking the payload.
    pub(crate) fn header_at(&mut self, pos: u64) -> std::io::Result<Result<BatchHeader, BatchAt>> {
        match self.ensure(pos, HEADER_LEN as u64)? {
            Some(bytes) => Ok(BatchHeader::parse(&bytes).map_err(BatchAt::BadHeader)),
            None if pos >= self.file_len => Ok(Err(BatchAt::End)),
            None => {
                Ok(Err(BatchAt::Incomplete { available: self.file_len - pos, needed: HEADER_LEN as u64 }))
            }
        }
    }

    /// The batch at `pos`, with its CRC checked. Anything but a verified batch or the end of
    /// the file drops the cached chunk, so the next look reads the file afresh (a recovering
    /// writer may have truncated a torn tail and written new batches there).
    pub(crate) fn batch_at(&mut self, pos: u64) -> std::io::Result<BatchAt> {
        let result = self.batch_at_cached(pos)?;
        if !matches!(result, BatchAt::Batch { .. } | BatchAt::End) {
            self.invalidate();
        }
        Ok(result)
    }

    fn batch_at_cached(&mut self, pos: u64) -> std::io::Result<BatchAt> {
        let header = match self.header_at(pos)? {
            Ok(h) => h,
            Err(other) => return Ok(other),
        };
        let Some(frame) = self.ensure(pos, header.frame_len())? else {
            return Ok(BatchAt::Incomplete {
                available: self.file_len.saturating_sub(pos),
                needed: header.frame_len(),
            });
        };
        if BatchHeader::parse(&frame).ok() != Some(header) {
            // The file changed between the two reads (a torn tail rewritten): look again later.
            return Ok(BatchAt::Incomplete { available: 0, needed: header.frame_len() });
        }
        let payload = frame.slice(HEADER_LEN..);
        if !header.crc_matches(&frame, &payload) {
            return Ok(BatchAt::BadCrc(header));
        }
        Ok(BatchAt::Batch { header, payload })
    }

    /// The position of the first intact batch (magic bytes and matching CRC) strictly after
    /// `pos`, if any: tells a torn tail (nothing intact follows) from damage in the middle.
    pub(crate) fn find_intact_batch_after(&mut self, pos: u64) -> std::io::Result<Option<u64>> {
        let mut at = pos + 1;
        loop {
            let len = self.refresh_len()?.saturating_sub(at).min(CHUNK_LEN);
            if len < HEADER_LEN as u64 {
                return Ok(None);
            }
            let Some(window) = self.ensure(at, len)? else { return Ok(None) };
            let candidates: Vec<u64> = window
                .windows(BATCH_MAGIC.len())
                .enumerate()
                .filter(|(_, w)| *w == BATCH_MAGIC)
                .map(|(i, _)| at + i as u64)
                .collect();
            for candidate in candidates {
                if let BatchAt::Batch { .. } = self.batch_at(candidate)? {
                    return Ok(Some(candidate));
                }
            }
            // Overlap by the magic's length so a magic across the boundary is seen.
            at += len - (BATCH_MAGIC.len() as u64 - 1);
        }
    }
}

/// A batch that commits a staged batch id, found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommittedBatch {
    /// The staged batch id.
    pub id: String,
    /// The batch's base offset.
    pub base_offset: u64,
    /// Its record count.
    pub record_count: u32,
}

/// Why a scan stopped before the end of the file.
#[derive(Debug, Clone)]
pub(crate) struct ScanStop {
    /// Byte position of the first bad batch.
    pub position: u64,
    /// The offset that batch should have started at.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
    /// Whether an intact batch follows the bad one (damage in the middle, not a torn tail).
    pub intact_data_follows: bool,
}

/// The result of scanning a segment (or its end) batch by batch with CRC checks.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    /// Position after the last good batch.
    pub end_position: u64,
    /// Offset after the last good batch.
    pub next_offset: u64,
    /// Largest timestamp seen (including the starting value).
    pub max_timestamp_ms: Option<i64>,
    /// Index entries due for the batches scanned.
    pub index: Vec<IndexEntry>,
    /// Staged batch ids committed by the batches scanned, with base offset and record count.
    pub staged: Vec<CommittedBatch>,
    /// `None` if the scan reached the end of the file cleanly.
    pub stop: Option<ScanStop>,
}

/// Scans batches from `position` (where a batch with base offset `offset` must start) to the
/// end of the file, verifying magic, version, CRC and offset continuity.
pub(crate) fn scan(
    reader: &mut SegmentReader,
    position: u64,
    offset: u64,
    max_timestamp_ms: Option<i64>,
    mut cursor: IndexCursor,
) -> std::io::Result<Scan> {
    let mut scan = Scan {
        end_position: position,
        next_offset: offset,
        max_timestamp_ms,
        index: Vec::new(),
        staged: Vec::new(),
        stop: None,
    };
    loop {
        let pos = scan.end_position;
        let problem = match reader.batch_at(pos)? {
            BatchAt::End => return Ok(scan),
            BatchAt::Incomplete { available, needed } => Some((
                format!("incomplete batch: {available} bytes left in the file, the batch needs {needed}"),
                false,
            )),
            BatchAt::BadHeader(e) => Some((e.to_string(), true)),
            BatchAt::BadCrc(h) => {
                Some((format!("checksum mismatch in batch of {} records", h.record_count), true))
            }
            BatchAt::Batch { header, .. } if header.base_offset != scan.next_offset => Some((
                format!("batch has base offset {}, expected {}", header.base_offset, scan.next_offset),
                true,
            )),
            BatchAt::Batch { header, payload } => match header.staged_id(&payload) {
                Err(reason) => Some((reason, true)),
                Ok((id, _)) => {
                    let max = scan
                        .max_timestamp_ms
                        .map_or(header.max_timestamp_ms, |m| m.max(header.max_timestamp_ms));
                    scan.max_timestamp_ms = Some(max);
                    if cursor.due(pos) {
                        scan.index.push(IndexEntry {
                            offset: header.base_offset,
                            position: pos,
                            max_timestamp_ms: max,
                        });
                    }
                    if let Some(id) = id {
                        scan.staged.push(CommittedBatch {
                            id,
                            base_offset: header.base_offset,
                            record_count: header.record_count,
                        });
                    }
                    scan.end_position = pos + header.frame_len();
                    scan.next_offset = header.next_offset();
                    None
                }
            },
        };
        if let Some((reason, may_be_followed)) = problem {
            let intact_data_follows = may_be_followed && reader.find_intact_batch_after(pos)?.is_some();
            scan.stop =
                Some(ScanStop { position: pos, offset: scan.next_offset, reason, intact_data_follows });
            return Ok(scan);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::batch::BatchEncoder;
    use crate::record::Record;

    /// Writes `batches` batches of 3 records each (offsets from 0) and returns the path and
    /// the start position of every batch.
    fn segment(dir: &Path, batches: u64) -> (PathBuf, Vec<u64>) {
        let path = dir.join("00000000000000000000.log");
        let mut file = File::create(&path).expect("create");
        let mut enc = BatchEncoder::default();
        let mut positions = Vec::new();
        let mut pos = 0;
        for b in 0..batches {
            let recs: Vec<Record> = (0..3)
                .map(|i| Record::new(format!("value {b}/{i}")).with_timestamp((b * 10 + i) as i64))
                .collect();
            let frame = enc.encode(b * 3, recs.iter(), None).expect("encode");
            positions.push(pos);
            pos += frame.len() as u64;
            file.write_all(frame).expect("write");
        }
        (path, positions)
    }

    #[test]
    fn scan_of_intact_segment_reaches_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, positions) = segment(dir.path(), 10);
        let mut reader = SegmentReader::open(&path, 0).expect("open");
        let result = scan(&mut reader, 0, 0, None, IndexCursor::new(100, 0)).expect("scan");
        assert!(result.stop.is_none(), "{:?}", result.stop);
        assert_eq!(result.next_offset, 30);
        assert_eq!(result.end_position, reader.file_len());
        assert_eq!(result.max_timestamp_ms, Some(92));
        // Every batch is ~80 bytes: an entry at the first batch at or past 100, 200, ...
        let expected: Vec<u64> = {
            let mut cursor = IndexCursor::new(100, 0);
            positions.iter().copied().filter(|&p| cursor.due(p)).collect()
        };
        assert_eq!(result.index.iter().map(|e| e.position).collect::<Vec<_>>(), expected);
        assert!(!expected.is_empty());
    }

    #[test]
    fn torn_tail_is_incomplete_and_nothing_follows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, positions) = segment(dir.path(), 4);
        let len = std::fs::metadata(&path).expect("meta").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(len - 5))
            .expect("truncate");
        let mut reader = SegmentReader::open(&path, 0).expect("open");
        let result = scan(&mut reader, 0, 0, None, IndexCursor::new(4096, 0)).expect("scan");
        let stop = result.stop.expect("stopped");
        assert_eq!(stop.position, positions[3]);
        assert_eq!(stop.offset, 9);
        assert!(!stop.intact_data_follows);
        assert!(stop.reason.contains("incomplete"), "{}", stop.reason);
    }

    #[test]
    fn crc_mismatch_in_the_middle_is_followed_by_intact_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, positions) = segment(dir.path(), 4);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[positions[1] as usize + HEADER_LEN + 2] ^= 0x10;
        std::fs::write(&path, &bytes).expect("write");
        let mut reader = SegmentReader::open(&path, 0).expect("open");
        let result = scan(&mut reader, 0, 0, None, IndexCursor::new(4096, 0)).expect("scan");
        let stop = result.stop.expect("stopped");
        assert_eq!((stop.position, stop.offset), (positions[1], 3));
        assert!(stop.reason.contains("checksum"), "{}", stop.reason);
        assert!(stop.intact_data_follows);

        // The same damage in the last batch is a corrupt tail: nothing intact follows.
        let (path, positions) = segment(dir.path(), 4);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[positions[3] as usize + HEADER_LEN + 2] ^= 0x10;
        std::fs::write(&path, &bytes).expect("write");
        let mut reader = SegmentReader::open(&path, 0).expect("open");
        let stop =
            scan(&mut reader, 0, 0, None, IndexCursor::new(4096, 0)).expect("scan").stop.expect("stopped");
        assert_eq!(stop.position, positions[3]);
        assert!(!stop.intact_data_follows);
    }

    #[test]
    fn scan_from_the_middle_checks_offset_continuity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, positions) = segment(dir.path(), 4);
        let mut reader = SegmentReader::open(&path, 0).expect("open");
        let ok =
            scan(&mut reader, positions[2], 6, Some(0), IndexCursor::new(4096, positions[2])).expect("scan");
        assert!(ok.stop.is_none());
        assert_eq!(ok.next_offset, 12);
        let bad = scan(&mut reader, positions[2], 7, None, IndexCursor::new(4096, 0)).expect("scan");
        assert!(bad.stop.expect("stop").reason.contains("base offset 6, expected 7"));
    }
}
