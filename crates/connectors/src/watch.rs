//! [`WatchSource`]: a streaming source over a directory or glob that keeps watching for
//! new files and reads each once, for JSON lines ([`JsonLinesSource::watch`]), text
//! ([`TextSource::watch`]) and CSV ([`CsvSource::watch`]).
//!
//! - **Which files.** A directory path watches the regular files directly in it; a glob
//!   (`incoming/*.jsonl`) the regular files it matches; a plain file path that one file.
//!   Names starting with `.` are ignored, as are paths that are not valid UTF-8.
//! - **When a file is complete.** The source polls every
//!   [`poll_interval`](WatchSource::poll_interval) (1 s by default). A file is picked up
//!   once its size and modification time are the same at two consecutive polls, then
//!   read once to its end. Writers should therefore either write a file in one go
//!   quicker than a poll interval, or (safer) write it under a name starting with `.` (or
//!   one the glob does not match) and rename it into place when it is complete: a rename
//!   is atomic, so the file is complete whenever it is seen. Whatever is appended to a
//!   file after it was picked up is not read.
//! - **Partitions.** A fixed number ([`with_partitions`](WatchSource::with_partitions), 8 by
//!   default), whatever the number of workers: partition `p` owns the files whose path
//!   (as listed) hashes (FNV-1a 64) to `p` modulo that number, and reads its complete
//!   files one at a time, in path order. Keep the number across restores (a checkpoint
//!   taken with another number is refused).
//! - **Replayable, exactly-once input.** A partition's checkpoint position records the
//!   files it has finished and its byte offset in the file it is reading (that format's
//!   own position). A restored job resumes the current file at that offset, skips the
//!   finished ones and picks up everything else, so no file is read twice and none is
//!   skipped. Files that a listing finds gone are dropped from the finished set (so the
//!   set does not grow forever when processed files are removed; a new file under the
//!   name of a removed one is read, if a poll saw the name free in between). The file
//!   being read at the checkpoint must still be there at the restore.
//! - **Unbounded.** The source never finishes: it runs until the job is cancelled
//!   ([`CancelHandle`](millstream_runtime::CancelHandle)).
//! - **Watermarks.** Per partition, from the record timestamps
//!   (`with_timestamp_fn` of the underlying source): by default 5 s of bounded
//!   out-of-orderness, and a partition with no data for 10 s is idle (it stops holding
//!   the watermark back until it reads again). Records of a file that arrives late with
//!   old timestamps can therefore be late. Set
//!   [`watermark_strategy`](WatchSource::watermark_strategy) to change both.
//!
//! ```
//! use millstream_connectors::JsonLinesSource;
//! use millstream_model::Duration;
//!
//! #[derive(serde::Deserialize)]
//! struct Click { user: String, at: i64 }
//!
//! let source = JsonLinesSource::<Click>::new("incoming/*.jsonl")
//!     .with_timestamp_fn(|c: &Click| millstream_model::Timestamp::from_millis(c.at))
//!     .watch()
//!     .poll_interval(Duration::from_millis(200))
//!     .with_partitions(4);
//! # let _ = source;
//! ```

use crate::csv::CsvSource;
use crate::error::ConnectorError;
use crate::text::{JsonLinesSource, TextSource};
use millstream_model::{Duration, Timestamp};
use millstream_runtime::{DeadLetter, ReadStatus, Source, SourceError, SourceReader, WatermarkStrategy};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// A file format the watching source can read: one whole file at a time, or resumed at a
/// position its reader reported. Implemented beside each format (text.rs, csv.rs).
pub(crate) trait FileOpener<T>: Send + Sync + 'static {
    /// The path or glob pattern read.
    fn pattern(&self) -> &str;

    /// Opens `path` (at `position` if given).
    fn open_file(
        &self,
        path: &Path,
        position: Option<&[u8]>,
    ) -> Result<Box<dyn SourceReader<T>>, ConnectorError>;
}

impl TextSource {
    /// Watches the directory or glob of this source for new files instead of reading the
    /// files there now (see [`WatchSource`]). `split_bytes` does not apply.
    pub fn watch(self) -> WatchSource<String> {
        let pattern = self.pattern().to_owned();
        WatchSource::new(pattern, Arc::new(self))
    }
}

impl<T: DeserializeOwned + Send + 'static> JsonLinesSource<T> {
    /// Watches the directory or glob of this source for new files instead of reading the
    /// files there now (see [`WatchSource`]). `split_bytes` does not apply.
    pub fn watch(self) -> WatchSource<T> {
        let pattern = self.pattern().to_owned();
        WatchSource::new(pattern, Arc::new(self))
    }
}

impl<T: Send + 'static> CsvSource<T> {
    /// Watches the directory or glob of this source for new files instead of reading the
    /// files there now (see [`WatchSource`]). Every file has its own header row (if the
    /// source expects one); `split_bytes` does not apply.
    pub fn watch(self) -> WatchSource<T> {
        let pattern = self.pattern().to_owned();
        WatchSource::new(pattern, Arc::new(self))
    }
}

/// A source that watches a directory or glob for new files and reads each once,
/// unbounded until the job is cancelled (see the [module docs](self)).
pub struct WatchSource<T> {
    pattern: String,
    opener: Arc<dyn FileOpener<T>>,
    poll_interval: Duration,
    partitions: usize,
    watermarks: WatermarkStrategy,
}

impl<T> Clone for WatchSource<T> {
    fn clone(&self) -> Self {
        WatchSource {
            pattern: self.pattern.clone(),
            opener: self.opener.clone(),
            poll_interval: self.poll_interval,
            partitions: self.partitions,
            watermarks: self.watermarks,
        }
    }
}

impl<T> std::fmt::Debug for WatchSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchSource")
            .field("pattern", &self.pattern)
            .field("poll_interval", &self.poll_interval)
            .field("partitions", &self.partitions)
            .field("watermarks", &self.watermarks)
            .finish_non_exhaustive()
    }
}

/// The default number of partitions of a [`WatchSource`].
pub const DEFAULT_WATCH_PARTITIONS: usize = 8;

impl<T> WatchSource<T> {
    fn new(pattern: String, opener: Arc<dyn FileOpener<T>>) -> Self {
        WatchSource {
            pattern,
            opener,
            poll_interval: Duration::from_secs(1),
            partitions: DEFAULT_WATCH_PARTITIONS,
            watermarks: WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(5))
                .with_idleness(Duration::from_secs(10)),
        }
    }

    /// Sets how often the directory is listed (default 1 s; at least 1 ms). A file is
    /// picked up when two consecutive listings find it unchanged.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Sets the number of partitions (default [`DEFAULT_WATCH_PARTITIONS`], at least 1).
    /// Keep it the same across restores from a checkpoint.
    pub fn with_partitions(mut self, partitions: usize) -> Self {
        self.partitions = partitions.max(1);
        self
    }

    /// Sets how watermarks follow the timestamps read, per partition (default: 5 s of
    /// bounded out-of-orderness, idle after 10 s without data).
    pub fn watermark_strategy(mut self, strategy: WatermarkStrategy) -> Self {
        self.watermarks = strategy;
        self
    }

    /// The watched directory or glob.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

/// A file found by a listing: its path, the key it is known by (the path's text), its
/// size and modification time.
struct Listed {
    path: PathBuf,
    key: String,
    signature: (u64, Option<SystemTime>),
}

/// The files `pattern` names now (see the module docs): none is fine. The flag says
/// whether the listing is complete (no glob entry failed to be read), so that files
/// missing from it are really gone.
fn list(pattern: &str) -> Result<(Vec<Listed>, bool), ConnectorError> {
    let mut complete = true;
    let as_path = Path::new(pattern);
    let candidates: Vec<PathBuf> = if as_path.is_dir() {
        let entries =
            std::fs::read_dir(as_path).map_err(|e| ConnectorError::io(as_path, "cannot list", e))?;
        let mut paths = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => paths.push(entry.path()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ConnectorError::io(as_path, "cannot list", e)),
            }
        }
        paths
    } else if pattern.contains(['*', '?', '[']) {
        let entries = glob::glob(pattern).map_err(|e| ConnectorError::InvalidPattern {
            pattern: pattern.to_owned(),
            message: e.to_string(),
        })?;
        // Entries that cannot be read (removed meanwhile, no permission) are left for
        // the next listing.
        let mut paths = Vec::new();
        for entry in entries {
            match entry {
                Ok(path) => paths.push(path),
                Err(_) => complete = false,
            }
        }
        paths
    } else {
        vec![as_path.to_owned()]
    };
    let mut files = Vec::new();
    for path in candidates {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if name.starts_with('.') {
            continue;
        }
        let Some(key) = path.to_str().map(str::to_owned) else { continue };
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ConnectorError::io(&path, "cannot read", e)),
        };
        if meta.is_file() {
            files.push(Listed { path, key, signature: (meta.len(), meta.modified().ok()) });
        }
    }
    Ok((files, complete))
}

/// FNV-1a 64: a hash that is the same in every process and version, so that a file
/// belongs to the same partition after a restore.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The partition (of `partitions`) that owns the file known as `key`.
fn bucket(key: &str, partitions: usize) -> usize {
    (fnv1a(key.as_bytes()) % partitions.max(1) as u64) as usize
}

const WATCH_POSITION_VERSION: u8 = 1;

/// A partition's checkpoint position (bincode).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct WatchPosition {
    version: u8,
    /// The source's number of partitions when it was taken.
    partitions: u32,
    /// The files finished, by key.
    done: Vec<String>,
    /// The file being read and the position in it (that format's position bytes).
    current: Option<(String, Vec<u8>)>,
}

/// The file a partition is reading.
struct Current<T> {
    key: String,
    reader: Box<dyn SourceReader<T>>,
}

/// Reads one partition of a [`WatchSource`].
struct WatchReader<T> {
    source: WatchSource<T>,
    partition: usize,
    done: BTreeSet<String>,
    current: Option<Current<T>>,
    /// Complete files not read yet, in the order they are read.
    ready: BTreeSet<(String, PathBuf)>,
    /// What the last listing found of the files not yet complete.
    last_seen: HashMap<String, (u64, Option<SystemTime>)>,
    next_poll: Instant,
    dead: Vec<DeadLetter>,
}

impl<T: Send + 'static> WatchReader<T> {
    fn new(source: WatchSource<T>, partition: usize) -> Self {
        WatchReader {
            source,
            partition,
            done: BTreeSet::new(),
            current: None,
            ready: BTreeSet::new(),
            last_seen: HashMap::new(),
            next_poll: Instant::now(),
            dead: Vec::new(),
        }
    }

    fn resume(source: WatchSource<T>, partition: usize, bytes: &[u8]) -> Result<Self, ConnectorError> {
        let bad = |message: String| {
            ConnectorError::Config(format!(
                "{} partition {partition}: bad checkpointed watch position: {message}",
                source.pattern
            ))
        };
        let position: WatchPosition = bincode::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        if position.version != WATCH_POSITION_VERSION {
            return Err(bad(format!(
                "version {}, this reader understands {WATCH_POSITION_VERSION}",
                position.version
            )));
        }
        if position.partitions as usize != source.partitions {
            return Err(bad(format!(
                "taken with {} partitions, the source now has {} (keep WatchSource::with_partitions across restores)",
                position.partitions, source.partitions
            )));
        }
        let mut reader = WatchReader::new(source, partition);
        reader.done = position.done.into_iter().collect();
        if let Some((key, at)) = position.current {
            let file = reader.source.opener.open_file(Path::new(&key), Some(&at))?;
            reader.current = Some(Current { key, reader: file });
        }
        Ok(reader)
    }

    /// Lists the files, queues those of this partition that are complete.
    fn poll(&mut self) -> Result<(), ConnectorError> {
        let mut seen = HashMap::new();
        let mut present = BTreeSet::new();
        let (files, complete) = list(&self.source.pattern)?;
        for file in files {
            if bucket(&file.key, self.source.partitions) != self.partition {
                continue;
            }
            present.insert(file.key.clone());
            let reading = self.current.as_ref().is_some_and(|c| c.key == file.key);
            if reading || self.done.contains(&file.key) || self.ready.iter().any(|(k, _)| *k == file.key) {
                continue;
            }
            if self.last_seen.get(&file.key) == Some(&file.signature) {
                self.ready.insert((file.key, file.path));
            } else {
                seen.insert(file.key, file.signature);
            }
        }
        self.last_seen = seen;
        // Files removed since they were read: forget them (only when the listing is
        // complete: a directory that could not be read does not mean its files are gone).
        if complete {
            self.done.retain(|key| present.contains(key));
        }
        self.next_poll = Instant::now() + self.source.poll_interval.to_std();
        Ok(())
    }

    fn read_files(&mut self, out: &mut Vec<(T, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        if let Some(current) = self.current.as_mut() {
            let status = current.reader.read(out, max);
            current.reader.take_dead_letters(&mut self.dead);
            return match status? {
                ReadStatus::Finished => {
                    if let Some(current) = self.current.take() {
                        self.done.insert(current.key);
                    }
                    Ok(ReadStatus::Data)
                }
                other => Ok(other),
            };
        }
        if self.ready.is_empty() && Instant::now() >= self.next_poll {
            self.poll().map_err(|e| e.into_source_error(&self.source.pattern))?;
        }
        let Some((key, path)) = self.ready.pop_first() else {
            return Ok(ReadStatus::Waiting);
        };
        match self.source.opener.open_file(&path, None) {
            Ok(reader) => self.current = Some(Current { key, reader }),
            // Removed since it was listed: nothing to read.
            Err(ConnectorError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into_source_error(&self.source.pattern)),
        }
        Ok(ReadStatus::Data)
    }

    fn encode_position(&self) -> Option<Vec<u8>> {
        let current = match &self.current {
            Some(c) => Some((c.key.clone(), c.reader.checkpoint_position()?)),
            None => None,
        };
        let position = WatchPosition {
            version: WATCH_POSITION_VERSION,
            partitions: u32::try_from(self.source.partitions).ok()?,
            done: self.done.iter().cloned().collect(),
            current,
        };
        bincode::serialize(&position).ok()
    }
}

impl<T: Send + 'static> SourceReader<T> for WatchReader<T> {
    fn read(&mut self, out: &mut Vec<(T, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        self.read_files(out, max)
    }

    fn position(&self) -> String {
        match &self.current {
            Some(c) => c.reader.position(),
            None => format!("{} (partition {}, waiting for files)", self.source.pattern, self.partition),
        }
    }

    /// The finished files and the position in the current one ([`WatchSource`]).
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        self.encode_position()
    }

    fn take_dead_letters(&mut self, out: &mut Vec<DeadLetter>) {
        out.append(&mut self.dead);
    }
}

impl<T: Send + 'static> Source<T> for WatchSource<T> {
    /// The fixed number of partitions, whatever the number of workers.
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        if self.pattern.contains(['*', '?', '[']) && !Path::new(&self.pattern).is_dir() {
            glob::Pattern::new(&self.pattern).map_err(|e| {
                ConnectorError::InvalidPattern { pattern: self.pattern.clone(), message: e.to_string() }
                    .into_source_error(&self.pattern)
            })?;
        }
        Ok(self.partitions)
    }

    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        self.check_partitions(partition, partitions)?;
        Ok(Box::new(WatchReader::new(self.clone(), partition)))
    }

    fn reopen(
        &self,
        partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        self.check_partitions(partition, partitions)?;
        let reader = WatchReader::resume(self.clone(), partition, position)
            .map_err(|e| e.into_source_error(&self.pattern))?;
        Ok(Box::new(reader))
    }

    fn watermarks(&self) -> WatermarkStrategy {
        self.watermarks
    }
}

impl<T> WatchSource<T> {
    fn check_partitions(&self, partition: usize, partitions: usize) -> Result<(), SourceError> {
        if partitions != self.partitions || partition >= partitions {
            return Err(SourceError::new(
                format!("{} partition {partition}", self.pattern),
                format!("opened as one of {partitions} partitions, but the source has {}", self.partitions),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
