//! The partition writer: recovery on open, appends, durability, segment roll and retention.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::batch::BatchEncoder;
use crate::error::{LogError, Result};
use crate::fsio::{
    is_not_found, list_segments, parse_segment_name, segment_name, sync_dir, INDEX_EXT, LOG_EXT,
};
use crate::index::{self, IndexCursor, IndexEntry};
use crate::record::{now_ms, Record};
use crate::segment::{scan, CommittedBatch, SegmentReader};
use crate::staged::CommittedRegistry;
use crate::topic::{Durability, TopicConfig};

/// Name of the advisory lock file in a partition directory.
pub const LOCK_FILE: &str = "writer.lock";

/// The offsets an append was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct AppendAck {
    /// Offset of the batch's first record.
    pub base_offset: u64,
    /// Offset of the batch's last record.
    pub last_offset: u64,
}

impl AppendAck {
    /// How many records the batch had.
    pub fn record_count(&self) -> u64 {
        self.last_offset - self.base_offset + 1
    }
}

/// What [`PartitionWriter::apply_retention`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub deleted_segments: usize,
    /// Bytes deleted.
    pub deleted_bytes: u64,
    /// The partition's start offset afterwards.
    pub start_offset: u64,
}

#[derive(Debug, Clone, Copy)]
struct ClosedSegment {
    base_offset: u64,
    size: u64,
    max_timestamp_ms: Option<i64>,
}

#[derive(Debug)]
struct ActiveSegment {
    base_offset: u64,
    log: File,
    log_path: PathBuf,
    index: Option<File>,
    size: u64,
    next_offset: u64,
    max_timestamp_ms: Option<i64>,
    cursor: IndexCursor,
}

/// The single writer of one partition: appends batches, fsyncs them as the topic's
/// [`Durability`] says, rolls segments and applies retention.
///
/// Opening a writer takes the partition's advisory lock file (`writer.lock`, an exclusive
/// `flock`), so a second writer for the same partition, in this process or another one,
/// fails with [`LogError::PartitionLocked`]; then it recovers the partition (see the crate
/// docs). Reads do not need the writer: use [`crate::Reader`], from any thread or process.
#[derive(Debug)]
pub struct PartitionWriter {
    pub(crate) topic: String,
    pub(crate) partition: u32,
    pub(crate) dir: PathBuf,
    config: TopicConfig,
    _lock: File,
    closed: Vec<ClosedSegment>,
    active: ActiveSegment,
    pub(crate) encoder: BatchEncoder,
    last_sync: Instant,
    unsynced: bool,
    poisoned: Option<String>,
    pub(crate) committed: CommittedRegistry,
}

impl PartitionWriter {
    /// Opens (and recovers) partition `partition` of `topic`, whose directory is `dir`.
    pub(crate) fn open(dir: PathBuf, topic: &str, partition: u32, config: TopicConfig) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| LogError::io("create directory", &dir, e))?;
        let lock = take_lock(&dir, topic, partition)?;
        remove_strays(&dir)?;
        let mut bases = list_segments(&dir).map_err(|e| LogError::io("list", &dir, e))?;
        if bases.is_empty() {
            create_segment_files(&dir, 0)?;
            bases.push(0);
        }
        let mut closed = Vec::with_capacity(bases.len() - 1);
        for pair in bases.windows(2) {
            closed.push(verify_closed(&dir, pair[0], pair[1], config.index_interval_bytes)?);
        }
        let last = bases[bases.len() - 1];
        let (active, staged) = recover_active(&dir, last, config.index_interval_bytes)?;
        let mut committed = CommittedRegistry::load(&dir)?;
        committed.merge_recovered(&dir, staged)?;
        let writer = PartitionWriter {
            topic: topic.to_string(),
            partition,
            dir,
            config,
            _lock: lock,
            closed,
            active,
            encoder: BatchEncoder::default(),
            last_sync: Instant::now(),
            unsynced: false,
            poisoned: None,
            committed,
        };
        writer.remove_committed_staging_files()?;
        Ok(writer)
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition number.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The offset of the oldest retained record (or of the next record if there is none).
    pub fn start_offset(&self) -> u64 {
        self.closed.first().map_or(self.active.base_offset, |s| s.base_offset)
    }

    /// The offset the next appended record will get.
    pub fn end_offset(&self) -> u64 {
        self.active.next_offset
    }

    /// Bytes in all segment files.
    pub fn size_bytes(&self) -> u64 {
        self.closed.iter().map(|s| s.size).sum::<u64>() + self.active.size
    }

    /// Number of segment files, including the active one.
    pub fn segment_count(&self) -> usize {
        self.closed.len() + 1
    }

    /// The durability policy in force.
    pub fn durability(&self) -> Durability {
        self.config.durability
    }

    /// Overrides the topic's durability policy for this writer (not persisted).
    pub fn set_durability(&mut self, durability: Durability) {
        self.config.durability = durability;
    }

    /// Appends `records` as one batch: one encoding into a reused buffer, one `write`, then an
    /// fsync if the [`Durability`] policy asks for one. Returns the offsets given to the
    /// records once the batch is acknowledged in the sense of [`Durability`].
    pub fn append_batch(&mut self, records: &[Record]) -> Result<AppendAck> {
        self.append_iter(records.iter())
    }

    /// [`PartitionWriter::append_batch`] over any re-iterable sequence of records.
    pub fn append_iter<'a, I>(&mut self, records: I) -> Result<AppendAck>
    where
        I: Iterator<Item = &'a Record> + Clone,
    {
        self.check_poisoned()?;
        let mut encoder = std::mem::take(&mut self.encoder);
        let result = self.append_encoded(&mut encoder, records);
        self.encoder = encoder;
        result
    }

    fn append_encoded<'a, I>(&mut self, encoder: &mut BatchEncoder, records: I) -> Result<AppendAck>
    where
        I: Iterator<Item = &'a Record> + Clone,
    {
        let base_offset = self.active.next_offset;
        let frame = encoder.encode(base_offset, records, None).map_err(|bytes| self.too_large(bytes))?;
        let count = u64::from(u32::from_le_bytes([frame[24], frame[25], frame[26], frame[27]]));
        if count == 0 {
            return Err(LogError::EmptyBatch { topic: self.topic.clone(), partition: self.partition });
        }
        self.write_frame(frame)?;
        self.sync_per_policy()?;
        Ok(AppendAck { base_offset, last_offset: base_offset + count - 1 })
    }

    pub(crate) fn too_large(&self, bytes: u64) -> LogError {
        LogError::BatchTooLarge {
            topic: self.topic.clone(),
            partition: self.partition,
            bytes,
            max: crate::batch::MAX_PAYLOAD_LEN,
        }
    }

    pub(crate) fn check_poisoned(&self) -> Result<()> {
        match &self.poisoned {
            Some(reason) => Err(LogError::WriterPoisoned {
                topic: self.topic.clone(),
                partition: self.partition,
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Writes one encoded frame (whose base offset is the active segment's next offset) at the
    /// end of the active segment, rolling first if it would overflow the segment. Does not
    /// sync.
    pub(crate) fn write_frame(&mut self, frame: &[u8]) -> Result<()> {
        let header = crate::batch::BatchHeader::parse(frame)
            .map_err(|e| LogError::InvalidArgument(format!("internal error: bad frame: {e}")))?;
        let frame_len = frame.len() as u64;
        if self.active.size > 0 && self.active.size.saturating_add(frame_len) > self.config.segment_bytes {
            self.roll()?;
        }
        let position = self.active.size;
        if let Err(e) = self.active.log.write_all(frame) {
            let err = LogError::io("append to", &self.active.log_path, e);
            // Cut off whatever part of the frame made it, so the next append starts cleanly.
            if let Err(restore) = self.active.log.set_len(position) {
                self.poisoned =
                    Some(format!("{err}; truncating back to {position} bytes also failed: {restore}"));
            }
            return Err(err);
        }
        self.unsynced = true;
        let max =
            self.active.max_timestamp_ms.map_or(header.max_timestamp_ms, |m| m.max(header.max_timestamp_ms));
        self.active.max_timestamp_ms = Some(max);
        self.active.size = position + frame_len;
        self.active.next_offset = header.next_offset();
        if self.active.cursor.due(position) {
            let entry = IndexEntry { offset: header.base_offset, position, max_timestamp_ms: max };
            self.write_index_entry(entry);
        }
        Ok(())
    }

    /// Appends an index entry. The index is derived data: if writing it fails, stop
    /// maintaining it for this segment (it is rebuilt when the partition is next opened).
    fn write_index_entry(&mut self, entry: IndexEntry) {
        if let Some(file) = &mut self.active.index {
            if let Err(e) = file.write_all(&entry.encode()) {
                tracing::warn!(
                    topic = %self.topic,
                    partition = self.partition,
                    "cannot write to the offset index of {}: {e}; it will be rebuilt on the next open",
                    self.active.log_path.display()
                );
                self.active.index = None;
            }
        }
    }

    fn sync_per_policy(&mut self) -> Result<()> {
        match self.config.durability {
            Durability::EveryBatch => self.sync(),
            Durability::Interval(every) if self.last_sync.elapsed() >= every => self.sync(),
            Durability::Interval(_) | Durability::None => Ok(()),
        }
    }

    /// fdatasyncs the active segment. A failed fsync poisons the writer: the kernel may have
    /// dropped the dirty pages, so only a reopen (which rescans the file) can tell what is
    /// on disk.
    pub(crate) fn sync(&mut self) -> Result<()> {
        if !self.unsynced {
            self.last_sync = Instant::now();
            return Ok(());
        }
        if let Err(e) = self.active.log.sync_data() {
            let err = LogError::io("fsync", &self.active.log_path, e);
            self.poisoned = Some(err.to_string());
            return Err(err);
        }
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Makes every appended record durable now (fdatasync of the active segment), whatever the
    /// policy. Cheap when nothing was appended since the last sync.
    pub fn flush(&mut self) -> Result<()> {
        self.check_poisoned()?;
        self.sync()
    }

    /// Closes the active segment and starts a new one at the next offset, then applies
    /// retention. The closed segment is fsynced whatever the durability policy (one fsync per
    /// segment), so power loss can only damage the active segment.
    fn roll(&mut self) -> Result<()> {
        self.sync()?;
        if let Some(index) = &self.active.index {
            // The index is derived; a failure to sync it only costs a rebuild.
            let _ = index.sync_data();
        }
        let next = self.active.next_offset;
        let (log, log_path, index) = create_segment_files(&self.dir, next)?;
        let old = std::mem::replace(
            &mut self.active,
            ActiveSegment {
                base_offset: next,
                log,
                log_path,
                index: Some(index),
                size: 0,
                next_offset: next,
                max_timestamp_ms: None,
                cursor: IndexCursor::new(self.config.index_interval_bytes, 0),
            },
        );
        self.unsynced = false;
        self.closed.push(ClosedSegment {
            base_offset: old.base_offset,
            size: old.size,
            max_timestamp_ms: old.max_timestamp_ms,
        });
        tracing::debug!(topic = %self.topic, partition = self.partition, "rolled to a new segment at offset {next}");
        self.apply_retention()?;
        Ok(())
    }

    /// Deletes the oldest closed segments (never the active one) that retention says to drop:
    /// by size, while what remains is still at least `retention_bytes`; by time, while the
    /// segment's newest record is older than now minus `retention_ms`. Also runs on every
    /// segment roll.
    pub fn apply_retention(&mut self) -> Result<RetentionOutcome> {
        self.apply_retention_at(now_ms())
    }

    /// [`PartitionWriter::apply_retention`] with an explicit "now" (ms since the epoch).
    pub fn apply_retention_at(&mut self, now_ms: i64) -> Result<RetentionOutcome> {
        let mut outcome = RetentionOutcome::default();
        let mut total = self.size_bytes();
        while let Some(oldest) = self.closed.first().copied() {
            let by_size = self.config.retention_bytes.is_some_and(|limit| total - oldest.size >= limit);
            let by_time = self
                .config
                .retention_ms
                .is_some_and(|ms| oldest.max_timestamp_ms.is_none_or(|t| t < now_ms.saturating_sub(ms)));
            if !(by_size || by_time) {
                break;
            }
            let log_path = self.dir.join(segment_name(oldest.base_offset, LOG_EXT));
            // The log first: a crash in between leaves a stray index, removed on open.
            remove_if_exists(&log_path)?;
            remove_if_exists(&self.dir.join(segment_name(oldest.base_offset, INDEX_EXT)))?;
            self.closed.remove(0);
            total -= oldest.size;
            outcome.deleted_segments += 1;
            outcome.deleted_bytes += oldest.size;
            tracing::debug!(
                topic = %self.topic,
                partition = self.partition,
                "retention deleted {} ({} bytes, {})",
                log_path.display(),
                oldest.size,
                if by_size { "size" } else { "time" }
            );
        }
        outcome.start_offset = self.start_offset();
        Ok(outcome)
    }
}

impl Drop for PartitionWriter {
    fn drop(&mut self) {
        if matches!(self.config.durability, Durability::Interval(_)) && self.poisoned.is_none() {
            if let Err(e) = self.sync() {
                tracing::warn!(topic = %self.topic, partition = self.partition, "final fsync failed: {e}");
            }
        }
    }
}

pub(crate) fn take_lock(dir: &Path, topic: &str, partition: u32) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LogError::io("open lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(LogError::PartitionLocked { topic: topic.to_string(), partition, path })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(LogError::io("lock", path, e)),
    }
}

/// The partition directory's lock if it is free right now, `None` if a writer holds it (used
/// by topic deletion, which keeps the locks while it deletes).
pub(crate) fn try_lock_partition(dir: &Path, topic: &str, partition: u32) -> Result<Option<File>> {
    match take_lock(dir, topic, partition) {
        Ok(f) => Ok(Some(f)),
        Err(LogError::PartitionLocked { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes leftovers of interrupted operations: `*.tmp` files and index files without a log.
fn remove_strays(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stray = name.ends_with(".tmp")
            || parse_segment_name(name, INDEX_EXT)
                .is_some_and(|base| !dir.join(segment_name(base, LOG_EXT)).exists());
        if stray {
            remove_if_exists(&entry.path())?;
        }
    }
    Ok(())
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(LogError::io("delete", path, e)),
    }
}

/// Creates the files of a new segment and fsyncs the directory (so that, whatever the
/// policy, a synced batch in the new segment is reachable after power loss).
fn create_segment_files(dir: &Path, base: u64) -> Result<(File, PathBuf, File)> {
    let log_path = dir.join(segment_name(base, LOG_EXT));
    let log = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&log_path)
        .map_err(|e| LogError::io("create segment", &log_path, e))?;
    let index_path = dir.join(segment_name(base, INDEX_EXT));
    let index = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&index_path)
        .map_err(|e| LogError::io("create index", &index_path, e))?;
    sync_dir(dir)?;
    Ok((log, log_path, index))
}

fn corrupt(file: &Path, position: u64, offset: u64, reason: impl Into<String>) -> LogError {
    LogError::Corrupt { file: file.to_path_buf(), position, offset, reason: reason.into() }
}

/// Checks a closed segment cheaply (its index's last entry and the batches after it, with
/// CRCs, up to the end of the file, which must end exactly where the next segment starts);
/// rebuilds its index from a full scan if the index is missing or does not fit; fails with
/// [`LogError::Corrupt`] if the segment itself is damaged.
fn verify_closed(dir: &Path, base: u64, next_base: u64, interval: u64) -> Result<ClosedSegment> {
    let log_path = dir.join(segment_name(base, LOG_EXT));
    let index_path = dir.join(segment_name(base, INDEX_EXT));
    let mut reader = SegmentReader::open(&log_path, base).map_err(|e| LogError::io("open", &log_path, e))?;
    let size = reader.file_len();
    let io = |e| LogError::io("read", &index_path, e);
    let last_entry = match File::open(&index_path) {
        Ok(f) => {
            let len = f.metadata().map_err(io)?.len();
            match index::entry_count(len) {
                _ if len % index::INDEX_ENTRY_LEN != 0 => Err("its length is not a whole number of entries"),
                0 => Ok(None),
                n => match index::read_entry(&f, n - 1).map_err(io)? {
                    Some(e) if e.offset >= base && e.offset < next_base && e.position < size => Ok(Some(e)),
                    _ => Err("its last entry points outside the segment"),
                },
            }
        }
        Err(e) if is_not_found(&e) => Err("it is missing"),
        Err(e) => return Err(io(e)),
    };
    if let Ok(last) = last_entry {
        let (pos, offset, max) =
            last.map_or((0, base, None), |e| (e.position, e.offset, Some(e.max_timestamp_ms)));
        let tail = scan(&mut reader, pos, offset, max, IndexCursor::new(interval, pos))
            .map_err(|e| LogError::io("read", &log_path, e))?;
        if tail.stop.is_none() && tail.index.is_empty() && tail.next_offset == next_base {
            return Ok(ClosedSegment { base_offset: base, size, max_timestamp_ms: tail.max_timestamp_ms });
        }
    }
    // Rebuild the index from a full scan; any damage in a closed segment is an error.
    let full = scan(&mut reader, 0, base, None, IndexCursor::new(interval, 0))
        .map_err(|e| LogError::io("read", &log_path, e))?;
    if let Some(stop) = full.stop {
        return Err(corrupt(
            &log_path,
            stop.position,
            stop.offset,
            format!("{} (in a closed segment)", stop.reason),
        ));
    }
    if full.next_offset != next_base {
        return Err(corrupt(
            &log_path,
            full.end_position,
            full.next_offset,
            format!(
                "the segment ends at offset {} but the next segment starts at offset {next_base}",
                full.next_offset
            ),
        ));
    }
    let why = last_entry.err().unwrap_or("it does not match the segment");
    tracing::warn!("rebuilt offset index {} because {why}", index_path.display());
    crate::fsio::write_atomic(&index_path, &index::encode_all(&full.index))?;
    Ok(ClosedSegment { base_offset: base, size, max_timestamp_ms: full.max_timestamp_ms })
}

/// Scans the active (last) segment with CRC checks, truncates a torn or corrupt tail (one
/// warning naming the file and position), and rewrites its index. Damage followed by intact
/// batches is not a tail: that is an error. Returns the segment and the staged batch ids its
/// batches commit.
fn recover_active(dir: &Path, base: u64, interval: u64) -> Result<(ActiveSegment, Vec<CommittedBatch>)> {
    let log_path = dir.join(segment_name(base, LOG_EXT));
    let mut reader = SegmentReader::open(&log_path, base).map_err(|e| LogError::io("open", &log_path, e))?;
    let result = scan(&mut reader, 0, base, None, IndexCursor::new(interval, 0))
        .map_err(|e| LogError::io("read", &log_path, e))?;
    drop(reader);
    let log =
        OpenOptions::new().append(true).open(&log_path).map_err(|e| LogError::io("open", &log_path, e))?;
    if let Some(stop) = &result.stop {
        if stop.intact_data_follows {
            return Err(corrupt(
                &log_path,
                stop.position,
                stop.offset,
                format!(
                    "{}, followed by intact batches (not a torn tail; refusing to truncate)",
                    stop.reason
                ),
            ));
        }
        let len = log.metadata().map_err(|e| LogError::io("stat", &log_path, e))?.len();
        tracing::warn!(
            "truncating torn tail of {} at byte position {} (offset {}): {}; {} bytes removed",
            log_path.display(),
            stop.position,
            stop.offset,
            stop.reason,
            len - stop.position
        );
        log.set_len(stop.position).map_err(|e| LogError::io("truncate", &log_path, e))?;
        log.sync_all().map_err(|e| LogError::io("fsync", &log_path, e))?;
    }
    let index_path = dir.join(segment_name(base, INDEX_EXT));
    let mut index = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&index_path)
        .map_err(|e| LogError::io("open index", &index_path, e))?;
    index.write_all(&index::encode_all(&result.index)).map_err(|e| LogError::io("write", &index_path, e))?;
    let last_indexed = result.index.last().map_or(0, |e| e.position);
    let active = ActiveSegment {
        base_offset: base,
        log,
        log_path,
        index: Some(index),
        size: result.end_position,
        next_offset: result.next_offset,
        max_timestamp_ms: result.max_timestamp_ms,
        cursor: IndexCursor::new(interval, last_indexed),
    };
    Ok((active, result.staged))
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
