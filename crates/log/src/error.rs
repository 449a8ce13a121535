//! Errors of the log.

use std::path::PathBuf;

/// What went wrong. Every variant names what it is about: the topic, the partition, the file
/// and, for damaged data, the byte position and offset.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file system failed (permissions, disk full, ...). Not a statement about the log's
    /// contents: the same call may succeed later.
    #[error("log I/O error while trying to {op} {path}: {source}")]
    Io {
        /// What was being done, e.g. "write to" or "open".
        op: &'static str,
        /// The file or directory the operation was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A topic name that is empty, too long, `.`/`..`, starts with a dot or contains a
    /// character outside `[A-Za-z0-9._-]`.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An invalid staged batch id (the rules of topic names, at most 200 characters).
    #[error("invalid staged batch id {id:?}: {reason}")]
    InvalidStagedId {
        /// The id given.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A topic configuration that cannot work, e.g. zero partitions.
    #[error("invalid configuration for topic {topic}: {reason}")]
    InvalidConfig {
        /// The topic.
        topic: String,
        /// What is wrong with the configuration.
        reason: String,
    },
    /// An argument out of range that is not about a topic's configuration.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The topic does not exist.
    #[error("topic {topic} does not exist")]
    TopicNotFound {
        /// The topic.
        topic: String,
    },
    /// `create_topic` of a name that already exists.
    #[error("topic {topic} already exists")]
    TopicExists {
        /// The topic.
        topic: String,
    },
    /// A partition number at or above the topic's partition count.
    #[error("topic {topic} has {partitions} partitions; there is no partition {partition}")]
    PartitionNotFound {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: u32,
        /// How many partitions the topic has.
        partitions: u32,
    },
    /// Another writer (in this process or another one) holds the partition's lock file.
    #[error(
        "partition {partition} of topic {topic} is locked by another writer (lock file {path}); \
         only one writer per partition may append at a time"
    )]
    PartitionLocked {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The lock file.
        path: PathBuf,
    },
    /// `delete_topic` while a writer holds one of the topic's partitions.
    #[error("cannot delete topic {topic}: partition {partition} is locked by a writer")]
    TopicInUse {
        /// The topic.
        topic: String,
        /// A partition whose lock is held.
        partition: u32,
    },
    /// A read below the partition's start offset (records deleted by retention) or above its
    /// end offset (offsets not yet written).
    #[error(
        "offset {offset} is out of range for partition {partition} of topic {topic}: \
         valid offsets are {start}..={end} (start offset ..= end offset)"
    )]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The offset asked for.
        offset: u64,
        /// The partition's start offset (oldest retained record).
        start: u64,
        /// The partition's end offset (the offset the next record will get).
        end: u64,
    },
    /// Damaged data: a checksum mismatch, bad magic bytes, a truncated batch that is not at the
    /// tail of the partition, a gap between segments, an undecodable record.
    #[error("corrupt log file {file} at byte position {position} (offset {offset}): {reason}")]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte position of the damaged batch (or index entry) within the file.
        position: u64,
        /// The offset the damaged batch starts at, or was expected to start at.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An intact batch or file written in a format version this build does not read.
    #[error("log file {file} at byte position {position} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// Byte position of the batch.
        position: u64,
        /// The version found.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// `append_batch` with no records.
    #[error("empty batch appended to partition {partition} of topic {topic}")]
    EmptyBatch {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
    },
    /// A batch whose payload exceeds the frame's 32-bit length field, or a record field
    /// longer than the encoding allows.
    #[error("batch for partition {partition} of topic {topic} is {bytes} bytes; the maximum is {max}")]
    BatchTooLarge {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The encoded size.
        bytes: u64,
        /// The maximum.
        max: u64,
    },
    /// `commit` or `abort` of a staged batch id that was never persisted (or already aborted).
    #[error("no persisted staged batch {id} in partition {partition} of topic {topic}")]
    StagedNotFound {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The staged batch id.
        id: String,
    },
    /// `begin_staged`, `persist` or `abort` of an id that is already committed.
    #[error("staged batch {id} is already committed to partition {partition} of topic {topic}")]
    AlreadyCommitted {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The staged batch id.
        id: String,
    },
    /// A previous write failed and the segment file could not be restored to its last good
    /// length; the writer refuses further appends. Reopening recovers.
    #[error("writer for partition {partition} of topic {topic} is unusable after a failed write: {reason}")]
    WriterPoisoned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The failure that poisoned the writer.
        reason: String,
    },
}

impl LogError {
    /// Whether the error says stored data is damaged (as opposed to an I/O failure, a bad
    /// argument or a format version from another build).
    pub fn is_corruption(&self) -> bool {
        matches!(self, LogError::Corrupt { .. })
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io { op, path: path.into(), source }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = LogError> = std::result::Result<T, E>;
