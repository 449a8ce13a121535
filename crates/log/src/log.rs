//! The log: a directory of topics.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{LogError, Result};
use crate::fsio::{is_not_found, sync_dir};
use crate::producer::Producer;
use crate::reader::{partition_stats, ReadLimit, Reader};
use crate::record::StoredRecord;
use crate::repair::RepairReport;
use crate::topic::{read_config, validate_topic_name, write_config, TopicConfig, TOPIC_CONFIG_FILE};
use crate::writer::{try_lock_partition, PartitionWriter};

/// Prefix of a topic directory being created (renamed into place when complete).
const CREATING_PREFIX: &str = ".creating-";
/// Prefix of a topic directory being deleted (renamed out of the way first).
const DELETING_PREFIX: &str = ".deleting-";
/// Age after which an abandoned `.creating-*` directory is removed on open.
const ABANDONED_AFTER: Duration = Duration::from_secs(600);

/// A partition as [`Log::describe_topic`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionDescription {
    /// The partition number.
    pub partition: u32,
    /// Offset of the oldest retained record (equal to `end_offset` when empty).
    pub start_offset: u64,
    /// The offset the next record will get.
    pub end_offset: u64,
    /// Bytes in segment files.
    pub bytes: u64,
    /// Number of segment files.
    pub segments: usize,
}

/// A topic's configuration and partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic.
    pub name: String,
    /// Its configuration.
    pub config: TopicConfig,
    /// Its partitions, by number.
    pub partitions: Vec<PartitionDescription>,
}

/// A directory of topics. Cheap to clone: it is the path. Any number of `Log` values, in any
/// number of processes, may use the same directory; writers of a partition exclude each
/// other through its lock file.
#[derive(Debug, Clone)]
pub struct Log {
    root: PathBuf,
}

impl Log {
    /// Opens the log in `dir`, creating the directory if needed, and removes leftovers of
    /// interrupted topic creations and deletions.
    pub fn open(dir: impl AsRef<Path>) -> Result<Log> {
        let root = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&root).map_err(|e| LogError::io("create directory", &root, e))?;
        let entries = std::fs::read_dir(&root).map_err(|e| LogError::io("list", &root, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let abandoned = name.starts_with(CREATING_PREFIX)
                && entry.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok())
                    >= Some(ABANDONED_AFTER);
            if name.starts_with(DELETING_PREFIX) || abandoned {
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!("cannot remove leftover directory {}: {e}", entry.path().display());
                }
            }
        }
        Ok(Log { root })
    }

    /// The log's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `topic` (after checking the name).
    pub fn topic_dir(&self, topic: &str) -> Result<PathBuf> {
        validate_topic_name(topic)?;
        Ok(self.root.join(topic))
    }

    /// The directory of a partition.
    pub fn partition_dir(&self, topic: &str, partition: u32) -> Result<PathBuf> {
        Ok(self.topic_dir(topic)?.join(partition.to_string()))
    }

    /// Creates a topic: its directory with `topic.json` and one directory per partition is
    /// built under a temporary name and renamed into place, so the topic appears complete or
    /// not at all.
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<()> {
        let dir = self.topic_dir(name)?;
        config.validate(name)?;
        if dir.exists() {
            return Err(LogError::TopicExists { topic: name.to_string() });
        }
        let tmp = self.root.join(format!("{CREATING_PREFIX}{}-{}", std::process::id(), unique()));
        let build = || -> Result<()> {
            std::fs::create_dir(&tmp).map_err(|e| LogError::io("create directory", &tmp, e))?;
            for p in 0..config.partitions {
                let pdir = tmp.join(p.to_string());
                std::fs::create_dir(&pdir).map_err(|e| LogError::io("create directory", &pdir, e))?;
            }
            write_config(&tmp, &config)?;
            sync_dir(&tmp)
        };
        if let Err(e) = build() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if let Err(e) = std::fs::rename(&tmp, &dir) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(match e.kind() {
                std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::DirectoryNotEmpty => {
                    LogError::TopicExists { topic: name.to_string() }
                }
                _ => LogError::io("rename into place", &dir, e),
            });
        }
        sync_dir(&self.root)
    }

    /// The names of all topics, sorted.
    pub fn list_topics(&self) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.root).map_err(|e| LogError::io("list", &self.root, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| LogError::io("list", &self.root, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if validate_topic_name(name).is_ok() && entry.path().join(TOPIC_CONFIG_FILE).is_file() {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The configuration of `topic`.
    pub fn topic_config(&self, topic: &str) -> Result<TopicConfig> {
        read_config(&self.topic_dir(topic)?, topic)
    }

    /// The configuration and the partitions' offsets and sizes of `topic`, from the files (a
    /// writer in another process may be appending).
    pub fn describe_topic(&self, topic: &str) -> Result<TopicDescription> {
        let config = self.topic_config(topic)?;
        let dir = self.topic_dir(topic)?;
        let mut partitions = Vec::with_capacity(config.partitions as usize);
        for partition in 0..config.partitions {
            let pdir = dir.join(partition.to_string());
            let ((start_offset, end_offset), bytes, segments) =
                if pdir.exists() { partition_stats(&pdir, topic)? } else { ((0, 0), 0, 0) };
            partitions.push(PartitionDescription { partition, start_offset, end_offset, bytes, segments });
        }
        Ok(TopicDescription { name: topic.to_string(), config, partitions })
    }

    /// Deletes `topic` and all its records. Fails with [`LogError::TopicInUse`] while a writer
    /// (here or in another process) holds one of its partitions. Readers still reading it get
    /// errors or see nothing more.
    pub fn delete_topic(&self, topic: &str) -> Result<()> {
        let config = self.topic_config(topic)?;
        let dir = self.topic_dir(topic)?;
        let mut locks = Vec::new();
        for partition in 0..config.partitions {
            let pdir = dir.join(partition.to_string());
            if !pdir.exists() {
                continue;
            }
            match try_lock_partition(&pdir, topic, partition)? {
                Some(lock) => locks.push(lock),
                None => return Err(LogError::TopicInUse { topic: topic.to_string(), partition }),
            }
        }
        let doomed = self.root.join(format!("{DELETING_PREFIX}{}-{}", std::process::id(), unique()));
        std::fs::rename(&dir, &doomed).map_err(|e| {
            if is_not_found(&e) {
                LogError::TopicNotFound { topic: topic.to_string() }
            } else {
                LogError::io("rename for deletion", &dir, e)
            }
        })?;
        sync_dir(&self.root)?;
        drop(locks);
        if let Err(e) = std::fs::remove_dir_all(&doomed) {
            tracing::warn!("topic {topic} is deleted but removing {} failed: {e}", doomed.display());
        }
        Ok(())
    }

    /// Opens (and recovers) the writer of one partition. See [`PartitionWriter`].
    pub fn writer(&self, topic: &str, partition: u32) -> Result<PartitionWriter> {
        let config = self.topic_config(topic)?;
        check_partition(topic, partition, &config)?;
        PartitionWriter::open(self.partition_dir(topic, partition)?, topic, partition, config)
    }

    /// A producer for `topic`: partitions records by key and opens partition writers as it
    /// needs them. See [`Producer`].
    pub fn producer(&self, topic: &str) -> Result<Producer> {
        let config = self.topic_config(topic)?;
        Ok(Producer::new(self.clone(), topic, config))
    }

    /// A reader of one partition, positioned at `offset` (checked on its first poll). See
    /// [`Reader`].
    pub fn reader(&self, topic: &str, partition: u32, offset: u64) -> Result<Reader> {
        let config = self.topic_config(topic)?;
        check_partition(topic, partition, &config)?;
        Ok(Reader::new(self.partition_dir(topic, partition)?, topic, partition, offset))
    }

    /// Reads up to `limit` records of one partition from `offset`. Empty at the end of the
    /// partition; [`LogError::OffsetOutOfRange`] below its start or beyond its end.
    pub fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        limit: ReadLimit,
    ) -> Result<Vec<StoredRecord>> {
        self.reader(topic, partition, offset)?.poll(limit)
    }

    /// Cuts a damaged partition back to its longest intact prefix: scans every segment in
    /// full, truncates at the first damage (a bad batch, a gap between segments) and deletes
    /// everything after it, with a warning naming what was removed. For partitions that fail
    /// to open with [`LogError::Corrupt`]; a no-op on an intact partition (at the cost of
    /// reading it all). Takes the partition's lock, so no writer may be open.
    pub fn repair_partition(&self, topic: &str, partition: u32) -> Result<RepairReport> {
        let config = self.topic_config(topic)?;
        check_partition(topic, partition, &config)?;
        crate::repair::repair(&self.partition_dir(topic, partition)?, topic, partition)
    }

    /// The start and end offsets of one partition.
    pub fn offsets(&self, topic: &str, partition: u32) -> Result<(u64, u64)> {
        self.reader(topic, partition, 0)?.offsets()
    }
}

fn check_partition(topic: &str, partition: u32, config: &TopicConfig) -> Result<()> {
    if partition >= config.partitions {
        return Err(LogError::PartitionNotFound {
            topic: topic.to_string(),
            partition,
            partitions: config.partitions,
        });
    }
    Ok(())
}

fn unique() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}
