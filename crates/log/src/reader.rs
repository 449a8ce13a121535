//! Reading a partition: from any offset, in follow mode, from any thread or process.
//!
//! Readers work on the files alone and never take the writer's lock. They ignore a batch at
//! the tail of the newest segment that is incomplete (a write in progress, or a torn write
//! the writer will truncate when it next opens), so reading while a writer appends is safe.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::batch::BatchHeader;
use crate::error::{LogError, Result};
use crate::fsio::{is_not_found, list_segments, segment_name, INDEX_EXT, LOG_EXT};
use crate::index;
use crate::record::{RecordDecoder, StoredRecord};
use crate::segment::{BatchAt, SegmentReader};

/// How much one read may return. At least one record is returned when one is available,
/// even if it alone exceeds `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimit {
    /// At most this many records.
    pub max_records: usize,
    /// Stop once the records' encoded size reaches this many bytes.
    pub max_bytes: usize,
}

impl ReadLimit {
    /// At most `n` records (no byte limit).
    pub fn records(n: usize) -> Self {
        ReadLimit { max_records: n, max_bytes: usize::MAX }
    }

    /// At most about `n` bytes of records (no record-count limit).
    pub fn bytes(n: usize) -> Self {
        ReadLimit { max_records: usize::MAX, max_bytes: n }
    }
}

impl Default for ReadLimit {
    /// 1000 records or 1 MiB, whichever comes first.
    fn default() -> Self {
        ReadLimit { max_records: 1000, max_bytes: 1 << 20 }
    }
}

/// A batch being returned record by record across polls.
#[derive(Debug)]
struct Pending {
    batch_pos: u64,
    frame_len: u64,
    next_offset: u64,
    end_offset: u64,
    decoder: RecordDecoder,
}

/// A consumer of one partition: keeps its position, returns records from it with
/// [`Reader::poll`], and follows the partition as it grows.
///
/// `poll` returns an empty vector when the reader has caught up with the writer; poll again
/// later (the caller decides how long to sleep). Appends by a writer in another thread or
/// process become visible as soon as their batch is completely written. Records returned
/// share the buffer they were read into (their keys and values are [`bytes::Bytes`] slices).
#[derive(Debug)]
pub struct Reader {
    topic: String,
    partition: u32,
    dir: PathBuf,
    position: u64,
    /// The segment holding `position` and the byte position of the batch that does (or of the
    /// end of the segment); `None` until located.
    current: Option<(SegmentReader, u64)>,
    pending: Option<Pending>,
    /// When the reader last listed the directory after catching up (see `advance_segment`).
    last_listing: Option<Instant>,
}

/// How often a caught-up reader lists the partition directory to notice that the segment
/// it is at the end of is not the newest (a gap: damage, or retention overtaking it).
const LISTING_INTERVAL: Duration = Duration::from_millis(100);

impl Reader {
    /// A reader of the partition in `dir` positioned at `offset` (checked on the first poll).
    pub(crate) fn new(dir: PathBuf, topic: &str, partition: u32, offset: u64) -> Self {
        Reader {
            topic: topic.to_string(),
            partition,
            dir,
            position: offset,
            current: None,
            pending: None,
            last_listing: None,
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// The offset of the next record `poll` will return: the one to store in a checkpoint.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Moves to `offset` (checked on the next poll).
    pub fn seek(&mut self, offset: u64) {
        self.position = offset;
        self.current = None;
        self.pending = None;
    }

    /// The partition's current start and end offsets (oldest retained record; next offset to
    /// be written), as the files show them now.
    pub fn offsets(&self) -> Result<(u64, u64)> {
        partition_offsets(&self.dir, &self.topic)
    }

    /// Up to `limit` records from the current position, advancing it. Empty when caught up.
    /// Fails with [`LogError::OffsetOutOfRange`] if the position is below the start offset
    /// (deleted by retention) or above the end offset.
    pub fn poll(&mut self, limit: ReadLimit) -> Result<Vec<StoredRecord>> {
        let mut out = Vec::new();
        self.poll_into(limit, &mut out)?;
        Ok(out)
    }

    /// [`Reader::poll`] into `out` (appending). Returns how many records were added.
    pub fn poll_into(&mut self, limit: ReadLimit, out: &mut Vec<StoredRecord>) -> Result<usize> {
        let before = out.len();
        let mut bytes = 0usize;
        if self.current.is_none() && !self.locate()? {
            return Ok(0);
        }
        while out.len() - before < limit.max_records && bytes < limit.max_bytes {
            if let Some(p) = &mut self.pending {
                let Some((segment, batch_pos)) = &mut self.current else { break };
                let start = p.decoder.position();
                let record = p.decoder.next_record().map_err(|reason| LogError::Corrupt {
                    file: segment.path.clone(),
                    position: p.batch_pos,
                    offset: p.next_offset,
                    reason,
                })?;
                bytes = bytes.saturating_add(p.decoder.position() - start);
                out.push(StoredRecord { offset: p.next_offset, record });
                p.next_offset += 1;
                self.position = p.next_offset;
                if p.next_offset >= p.end_offset {
                    if !p.decoder.is_done() {
                        return Err(LogError::Corrupt {
                            file: segment.path.clone(),
                            position: p.batch_pos,
                            offset: p.end_offset,
                            reason: "bytes left in the payload after the batch's last record".into(),
                        });
                    }
                    *batch_pos = p.batch_pos + p.frame_len;
                    self.pending = None;
                }
                continue;
            }
            if !self.next_batch()? {
                break;
            }
        }
        Ok(out.len() - before)
    }

    /// Loads the batch at the current byte position into `pending` (or moves to the next
    /// segment). Returns false when caught up.
    fn next_batch(&mut self) -> Result<bool> {
        let Some((segment, batch_pos)) = &mut self.current else { return Ok(false) };
        let pos = *batch_pos;
        let io = |segment: &SegmentReader, e| LogError::io("read", &segment.path, e);
        let (reason, intact_data_follows) = match segment.batch_at(pos).map_err(|e| io(segment, e))? {
            BatchAt::Batch { header, payload } => {
                let corrupt = |reason: String| LogError::Corrupt {
                    file: segment.path.clone(),
                    position: pos,
                    offset: header.base_offset,
                    reason,
                };
                if header.base_offset > self.position {
                    return Err(corrupt(format!(
                        "batch starts at offset {}, expected {}",
                        header.base_offset, self.position
                    )));
                }
                if header.next_offset() <= self.position {
                    *batch_pos = pos + header.frame_len();
                    return Ok(true);
                }
                let mut decoder = header.decoder(payload).map_err(corrupt)?;
                for _ in header.base_offset..self.position {
                    decoder.skip_record().map_err(corrupt)?;
                }
                self.pending = Some(Pending {
                    batch_pos: pos,
                    frame_len: header.frame_len(),
                    next_offset: self.position,
                    end_offset: header.next_offset(),
                    decoder,
                });
                return Ok(true);
            }
            BatchAt::End => return self.advance_segment(),
            // A write in progress, or a torn tail the writer truncates when it next opens.
            BatchAt::Incomplete { available, needed } => {
                (format!("incomplete batch: {available} bytes of {needed}"), false)
            }
            BatchAt::BadHeader(e) => {
                (e.to_string(), segment.find_intact_batch_after(pos).map_err(|e| io(segment, e))?.is_some())
            }
            BatchAt::BadCrc(_) => (
                "checksum mismatch".to_string(),
                segment.find_intact_batch_after(pos).map_err(|e| io(segment, e))?.is_some(),
            ),
        };
        if !intact_data_follows && !self.newer_segment_exists()? {
            return Ok(false); // the tail of the newest segment: nothing more to read yet
        }
        // Damage, unless the write completed between our look and the listing (a writer
        // finishes a batch before it starts a new segment).
        let Some((segment, _)) = &mut self.current else { return Ok(false) };
        if let BatchAt::Batch { .. } = segment.batch_at(pos).map_err(|e| io(segment, e))? {
            return Ok(true);
        }
        Err(LogError::Corrupt { file: segment.path.clone(), position: pos, offset: self.position, reason })
    }

    fn newer_segment_exists(&self) -> Result<bool> {
        let Some((segment, _)) = &self.current else { return Ok(false) };
        let bases = list_segments(&self.dir).map_err(|e| self.list_error(e))?;
        Ok(bases.last().is_some_and(|&b| b > segment.base_offset))
    }

    /// At the clean end of the current segment: moves to the segment starting at the current
    /// position if there is one. Returns false when caught up.
    fn advance_segment(&mut self) -> Result<bool> {
        if self.current.as_ref().is_some_and(|(s, _)| s.base_offset == self.position) {
            return Ok(false); // the current segment starts here and is still empty
        }
        let next = self.dir.join(segment_name(self.position, LOG_EXT));
        match SegmentReader::open(&next, self.position) {
            Ok(reader) => {
                self.current = Some((reader, 0));
                Ok(true)
            }
            Err(e) if is_not_found(&e) => {
                // Caught up, unless a newer segment exists; listing the directory on every
                // poll of a caught-up reader would be wasteful, so look now and then.
                if self.last_listing.is_some_and(|t| t.elapsed() < LISTING_INTERVAL) {
                    return Ok(false);
                }
                self.last_listing = Some(Instant::now());
                let bases = list_segments(&self.dir).map_err(|e| self.list_error(e))?;
                if bases.contains(&self.position) {
                    return Ok(true); // created since we looked: open it on the next round
                }
                if bases.first().is_some_and(|&first| first > self.position) {
                    // The next segment was deleted by retention before we got to it.
                    let (start, end) = self.offsets()?;
                    return Err(self.out_of_range(start, end));
                }
                let Some((segment, pos)) = &mut self.current else { return Ok(false) };
                if bases.last().is_none_or(|&b| b <= segment.base_offset) {
                    return Ok(false);
                }
                // A newer segment exists. The writer created it after it finished this one and
                // after it created the one starting here, if any; a directory listing is no
                // snapshot (it can miss a file created while it runs), so look again: the
                // segment may have grown, or the next one may exist now.
                if segment.refresh_len().map_err(|e| LogError::io("stat", &segment.path, e))? > *pos
                    || next.exists()
                {
                    return Ok(true);
                }
                Err(LogError::Corrupt {
                    file: segment.path.clone(),
                    position: *pos,
                    offset: self.position,
                    reason: format!(
                        "the segment ends at offset {} but no segment starts there, and a newer one exists",
                        self.position
                    ),
                })
            }
            Err(e) => Err(LogError::io("open", next, e)),
        }
    }

    /// Finds the segment and batch holding the position. Returns false if the partition has
    /// no segments yet (and the position is 0).
    fn locate(&mut self) -> Result<bool> {
        for _attempt in 0..3 {
            let bases = list_segments(&self.dir).map_err(|e| self.list_error(e))?;
            let Some(&first) = bases.first() else {
                if self.position == 0 {
                    return Ok(false);
                }
                return Err(self.out_of_range(0, 0));
            };
            if self.position < first {
                let (start, end) = self.offsets()?;
                return Err(self.out_of_range(start, end));
            }
            let base = bases.iter().copied().rfind(|&b| b <= self.position).unwrap_or(first);
            let path = self.dir.join(segment_name(base, LOG_EXT));
            let mut segment = match SegmentReader::open(&path, base) {
                Ok(s) => s,
                Err(e) if is_not_found(&e) => continue, // deleted by retention meanwhile
                Err(e) => return Err(LogError::io("open", path, e)),
            };
            let (pos, reached) = seek_in_segment(&mut segment, &self.dir, self.position)?;
            if reached < self.position {
                let (start, end) = self.offsets()?;
                if self.position > end || self.position < start {
                    return Err(self.out_of_range(start, end));
                }
                continue; // the partition grew meanwhile; look again
            }
            self.current = Some((segment, pos));
            return Ok(true);
        }
        let (start, end) = self.offsets()?;
        Err(self.out_of_range(start, end))
    }

    fn list_error(&self, e: std::io::Error) -> LogError {
        if is_not_found(&e) {
            LogError::TopicNotFound { topic: self.topic.clone() }
        } else {
            LogError::io("list", &self.dir, e)
        }
    }

    fn out_of_range(&self, start: u64, end: u64) -> LogError {
        LogError::OffsetOutOfRange {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.position,
            start,
            end,
        }
    }
}

/// Finds the batch holding `offset` in `segment` through the index (checking the entry
/// against the batch header it points to), then batch headers. Returns the byte position of
/// that batch (or of the end of the valid data) and the offset reached there: equal to
/// `offset` or above unless the segment ends before `offset`.
fn seek_in_segment(segment: &mut SegmentReader, dir: &Path, offset: u64) -> Result<(u64, u64)> {
    let index_path = dir.join(segment_name(segment.base_offset, INDEX_EXT));
    let mut start = (0, segment.base_offset);
    if let Ok(file) = std::fs::File::open(&index_path) {
        let count = file.metadata().map(|m| index::entry_count(m.len())).unwrap_or(0);
        if let Ok(Some(entry)) = index::lookup(&file, count, offset) {
            let found =
                segment.header_at(entry.position).map_err(|e| LogError::io("read", &segment.path, e))?;
            if let Ok(header) = found {
                if header.base_offset == entry.offset && entry.offset >= segment.base_offset {
                    start = (entry.position, entry.offset);
                }
            }
        }
    }
    let (mut pos, mut reached) = start;
    loop {
        let header: BatchHeader =
            match segment.header_at(pos).map_err(|e| LogError::io("read", &segment.path, e))? {
                Ok(h) => h,
                Err(_) => return Ok((pos, reached)), // end of file, torn or damaged tail
            };
        if header.base_offset != reached {
            return Err(LogError::Corrupt {
                file: segment.path.clone(),
                position: pos,
                offset: reached,
                reason: format!("batch has base offset {}, expected {reached}", header.base_offset),
            });
        }
        if header.next_offset() > offset {
            return Ok((pos, offset));
        }
        let end = pos + header.frame_len();
        if end >= segment.file_len() {
            // The last batch in the file: count it only if it is complete and intact (it may
            // be a write in progress or a torn tail).
            let at = segment.batch_at(pos).map_err(|e| LogError::io("read", &segment.path, e))?;
            if !matches!(at, BatchAt::Batch { .. }) {
                return Ok((pos, reached));
            }
        }
        pos = end;
        reached = header.next_offset();
    }
}

/// The start and end offsets of the partition in `dir`, from the files alone.
pub(crate) fn partition_offsets(dir: &Path, topic: &str) -> Result<(u64, u64)> {
    Ok(partition_stats(dir, topic)?.0)
}

/// `((start, end), bytes, segment count)` of the partition in `dir`.
pub(crate) fn partition_stats(dir: &Path, topic: &str) -> Result<((u64, u64), u64, usize)> {
    for _attempt in 0..3 {
        let bases = list_segments(dir).map_err(|e| {
            if is_not_found(&e) {
                LogError::TopicNotFound { topic: topic.to_string() }
            } else {
                LogError::io("list", dir, e)
            }
        })?;
        let (Some(&first), Some(&last)) = (bases.first(), bases.last()) else { return Ok(((0, 0), 0, 0)) };
        let mut bytes = 0;
        let mut vanished = false;
        for &base in &bases {
            match std::fs::metadata(dir.join(segment_name(base, LOG_EXT))) {
                Ok(m) => bytes += m.len(),
                Err(e) if is_not_found(&e) => vanished = true,
                Err(e) => return Err(LogError::io("stat", dir.join(segment_name(base, LOG_EXT)), e)),
            }
        }
        let path = dir.join(segment_name(last, LOG_EXT));
        let mut segment = match SegmentReader::open(&path, last) {
            Ok(s) => s,
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(LogError::io("open", path, e)),
        };
        if vanished {
            continue;
        }
        let (_, end) = seek_in_segment(&mut segment, dir, u64::MAX)?;
        return Ok(((first, end), bytes, bases.len()));
    }
    Err(LogError::io(
        "list",
        dir,
        std::io::Error::other("segments kept disappearing while the partition was examined"),
    ))
}
