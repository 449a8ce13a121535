//! Topic configuration, its JSON file, and name validation.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{LogError, Result};
use crate::fsio::write_atomic;

/// Name of the topic configuration file inside a topic directory.
pub const TOPIC_CONFIG_FILE: &str = "topic.json";
/// The version of the topic configuration file this build writes and reads.
pub const TOPIC_CONFIG_VERSION: u32 = 1;
/// The longest topic name (as Kafka's).
pub const MAX_NAME_LEN: usize = 249;
/// The longest staged batch id (its staging file name, `<id>.staged.tmp` while written,
/// must fit the usual 255-byte file name limit).
pub const MAX_STAGED_ID_LEN: usize = 200;

/// When appended records are fsynced, and so what an acknowledgement promises.
///
/// In every mode an acknowledged batch has been written to the segment file with one
/// `write` call, is complete and checksummed, is visible to readers in this and other
/// processes, and survives the writer process being killed (SIGKILL, panic, OOM kill): the
/// data is in the operating system's page cache. The modes differ in what survives an
/// operating-system crash or power loss:
///
/// - [`Durability::EveryBatch`]: the segment file is fdatasynced before `append_batch`
///   returns. An acknowledged record survives power loss (as far as the disk honours cache
///   flushes).
/// - [`Durability::Interval`]: the segment file is fdatasynced by an append (after its write)
///   when the previous sync is at least the interval old, by [`crate::PartitionWriter::flush`]
///   and when the writer is dropped. Power loss may lose records acknowledged
///   since the last sync: the last interval's worth while appends keep coming, and everything
///   since the last append's sync if appends stop without a `flush`.
/// - [`Durability::None`]: appends are never fsynced; the operating system writes the pages
///   back when it chooses. Power loss may lose any amount of recent data in the active
///   segment.
///
/// In every mode a segment is fsynced once when it is closed (segment roll), as is the
/// directory when a segment is created, so power loss can only damage the active segment.
/// After power loss in the last two modes, recovery truncates a torn tail; damage before
/// the tail (the file system wrote later pages but not earlier ones) stops the partition with
/// [`LogError::Corrupt`] instead of silently dropping acknowledged data, and
/// [`crate::Log::repair_partition`] cuts the partition back to its intact prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DurabilityRepr", into = "DurabilityRepr")]
pub enum Durability {
    /// fsync before every acknowledgement.
    EveryBatch,
    /// fsync when the last fsync is older than this.
    Interval(Duration),
    /// Never fsync; leave write-back to the operating system.
    None,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
enum DurabilityRepr {
    EveryBatch,
    Interval { interval_ms: u64 },
    None,
}

impl From<Durability> for DurabilityRepr {
    fn from(d: Durability) -> Self {
        match d {
            Durability::EveryBatch => DurabilityRepr::EveryBatch,
            Durability::Interval(i) => {
                DurabilityRepr::Interval { interval_ms: u64::try_from(i.as_millis()).unwrap_or(u64::MAX) }
            }
            Durability::None => DurabilityRepr::None,
        }
    }
}

impl TryFrom<DurabilityRepr> for Durability {
    type Error = String;
    fn try_from(d: DurabilityRepr) -> Result<Self, String> {
        Ok(match d {
            DurabilityRepr::EveryBatch => Durability::EveryBatch,
            DurabilityRepr::Interval { interval_ms } => {
                Durability::Interval(Duration::from_millis(interval_ms))
            }
            DurabilityRepr::None => Durability::None,
        })
    }
}

/// A topic's configuration, fixed at creation and stored as `topic.json` in its directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    /// Number of partitions (at least 1).
    pub partitions: u32,
    /// Delete the oldest closed segments of a partition while what remains is still at
    /// least this many bytes. `None`: no size limit.
    pub retention_bytes: Option<u64>,
    /// Delete the oldest closed segments whose newest record timestamp is older than now
    /// minus this many milliseconds. `None`: no time limit.
    pub retention_ms: Option<i64>,
    /// Start a new segment when appending a batch would take the active one past this size
    /// (a single larger batch gets a segment of its own). At least 1024.
    pub segment_bytes: u64,
    /// Bytes of segment between entries of the sparse offset index. At least 1.
    #[serde(default = "default_index_interval")]
    pub index_interval_bytes: u64,
    /// When appends are fsynced; see [`Durability`].
    pub durability: Durability,
}

fn default_index_interval() -> u64 {
    TopicConfig::DEFAULT_INDEX_INTERVAL_BYTES
}

impl TopicConfig {
    /// Default segment size: 128 MiB.
    pub const DEFAULT_SEGMENT_BYTES: u64 = 128 * 1024 * 1024;
    /// Default index interval: 4 KiB.
    pub const DEFAULT_INDEX_INTERVAL_BYTES: u64 = 4096;

    /// `partitions` partitions, no retention limits, 128 MiB segments, fsync every batch.
    pub fn new(partitions: u32) -> Self {
        TopicConfig {
            partitions,
            retention_bytes: None,
            retention_ms: None,
            segment_bytes: Self::DEFAULT_SEGMENT_BYTES,
            index_interval_bytes: Self::DEFAULT_INDEX_INTERVAL_BYTES,
            durability: Durability::EveryBatch,
        }
    }

    /// Sets the durability policy.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the segment size.
    pub fn with_segment_bytes(mut self, segment_bytes: u64) -> Self {
        self.segment_bytes = segment_bytes;
        self
    }

    /// Sets the spacing of offset index entries.
    pub fn with_index_interval_bytes(mut self, bytes: u64) -> Self {
        self.index_interval_bytes = bytes;
        self
    }

    /// Sets size-based retention.
    pub fn with_retention_bytes(mut self, bytes: Option<u64>) -> Self {
        self.retention_bytes = bytes;
        self
    }

    /// Sets time-based retention.
    pub fn with_retention_ms(mut self, ms: Option<i64>) -> Self {
        self.retention_ms = ms;
        self
    }

    /// Checks the configuration of `topic`.
    pub fn validate(&self, topic: &str) -> Result<()> {
        let bad = |reason: String| Err(LogError::InvalidConfig { topic: topic.to_string(), reason });
        if self.partitions == 0 {
            return bad("a topic needs at least one partition".into());
        }
        if self.partitions > 100_000 {
            return bad(format!("{} partitions is more than the limit of 100000", self.partitions));
        }
        if self.segment_bytes < 1024 {
            return bad(format!("segment_bytes {} is below the minimum of 1024", self.segment_bytes));
        }
        if self.index_interval_bytes == 0 {
            return bad("index_interval_bytes must be at least 1".into());
        }
        if let Some(ms) = self.retention_ms {
            if ms < 0 {
                return bad(format!("retention_ms {ms} is negative"));
            }
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct ConfigFile {
    format_version: u32,
    #[serde(flatten)]
    config: TopicConfig,
}

/// Writes `config` to `dir/topic.json` atomically.
pub(crate) fn write_config(dir: &Path, config: &TopicConfig) -> Result<()> {
    let file = ConfigFile { format_version: TOPIC_CONFIG_VERSION, config: config.clone() };
    let json = serde_json::to_vec_pretty(&file)
        .map_err(|e| LogError::InvalidArgument(format!("cannot serialize topic configuration: {e}")))?;
    write_atomic(&dir.join(TOPIC_CONFIG_FILE), &json)
}

/// Reads `dir/topic.json` of `topic`.
pub(crate) fn read_config(dir: &Path, topic: &str) -> Result<TopicConfig> {
    let path = dir.join(TOPIC_CONFIG_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if crate::fsio::is_not_found(&e) => {
            return Err(LogError::TopicNotFound { topic: topic.to_string() })
        }
        Err(e) => return Err(LogError::io("read", path, e)),
    };
    let corrupt = |reason: String| LogError::Corrupt { file: path.clone(), position: 0, offset: 0, reason };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not JSON: {e}")))?;
    let version = value.get("format_version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(TOPIC_CONFIG_VERSION)) {
        return Err(LogError::UnsupportedVersion {
            file: path.clone(),
            position: 0,
            found: version.map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX)),
            supported: TOPIC_CONFIG_VERSION,
        });
    }
    let file: ConfigFile =
        serde_json::from_value(value).map_err(|e| corrupt(format!("bad topic configuration: {e}")))?;
    file.config.validate(topic)?;
    Ok(file.config)
}

/// Checks a topic name: 1 to 249 characters of `[A-Za-z0-9._-]`, not starting with a dot
/// (which also rules out `.` and `..`; dot-names are reserved for the log's own temporary
/// directories).
pub fn validate_topic_name(name: &str) -> Result<()> {
    check_name(name, MAX_NAME_LEN)
        .map_err(|reason| LogError::InvalidTopicName { name: name.to_string(), reason })
}

/// Checks a staged batch id (the rules of topic names, at most 200 characters).
pub(crate) fn validate_staged_id(id: &str) -> Result<()> {
    check_name(id, MAX_STAGED_ID_LEN)
        .map_err(|reason| LogError::InvalidStagedId { id: id.to_string(), reason })
}

fn check_name(name: &str, max_len: usize) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.len() > max_len {
        return Err(format!("the name is {} characters long; the limit is {max_len}", name.len()));
    }
    if name.starts_with('.') {
        return Err("the name starts with '.' (reserved; this also excludes '.' and '..')".into());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        let what =
            if c == '/' || c == '\\' { "a path separator" } else { "a character outside [A-Za-z0-9._-]" };
        return Err(format!("the name contains {c:?}, {what}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for ok in ["a", "events", "Events_2024-01.v2", "a..b", &"x".repeat(249)] {
            validate_topic_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, needle) in [
            ("", "empty"),
            (".", "starts with '.'"),
            ("..", "starts with '.'"),
            (".hidden", "starts with '.'"),
            ("a/b", "path separator"),
            ("a\\b", "path separator"),
            ("../etc", "starts with '.'"),
            ("sp ace", "outside"),
            ("ü", "outside"),
            (&"x".repeat(250), "limit is 249"),
        ] {
            match validate_topic_name(bad) {
                Err(LogError::InvalidTopicName { name, reason }) => {
                    assert_eq!(name, bad);
                    assert!(reason.contains(needle), "{bad:?}: {reason}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn config_round_trips_through_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        for durability in
            [Durability::EveryBatch, Durability::Interval(Duration::from_millis(250)), Durability::None]
        {
            let config = TopicConfig::new(3)
                .with_durability(durability)
                .with_retention_bytes(Some(1 << 30))
                .with_retention_ms(Some(86_400_000))
                .with_segment_bytes(1 << 20);
            write_config(dir.path(), &config).expect("write");
            assert_eq!(read_config(dir.path(), "t").expect("read"), config);
        }
        let json = std::fs::read_to_string(dir.path().join(TOPIC_CONFIG_FILE)).expect("read");
        assert!(json.contains("\"format_version\": 1"), "{json}");
        assert!(json.contains("\"policy\": \"none\""), "{json}");
    }

    #[test]
    fn bad_config_files_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(read_config(dir.path(), "t"), Err(LogError::TopicNotFound { .. })));
        std::fs::write(dir.path().join(TOPIC_CONFIG_FILE), b"{ not json").expect("write");
        assert!(matches!(read_config(dir.path(), "t"), Err(LogError::Corrupt { .. })));
        std::fs::write(dir.path().join(TOPIC_CONFIG_FILE), br#"{"format_version": 9}"#).expect("write");
        assert!(matches!(read_config(dir.path(), "t"), Err(LogError::UnsupportedVersion { found: 9, .. })));
    }

    #[test]
    fn invalid_configs_are_rejected() {
        assert!(TopicConfig::new(0).validate("t").is_err());
        assert!(TopicConfig::new(1).with_segment_bytes(10).validate("t").is_err());
        assert!(TopicConfig::new(1).with_retention_ms(Some(-1)).validate("t").is_err());
        TopicConfig::new(1).validate("t").expect("valid");
    }
}
