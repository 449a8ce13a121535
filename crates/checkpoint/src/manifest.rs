//! Manifests and the names of what they contain.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::CheckpointError;
use crate::format;

/// The manifest schema version this build writes, and the newest it reads.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

/// File name of a checkpoint's manifest inside its directory.
pub const MANIFEST_FILE: &str = "_MANIFEST";

/// File name of the marker that says a checkpoint was superseded without being restored
/// (partial or damaged, and a newer run continues after it); see
/// [`CheckpointStore::supersede_newer_than`](crate::CheckpointStore::supersede_newer_than).
pub const ABANDONED_FILE: &str = "_ABANDONED";

/// Whether a snapshot was taken by the periodic checkpointer or on a user's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointKind {
    /// Taken periodically by the engine; subject to retention.
    Checkpoint,
    /// Taken on a user's request to a named place; never deleted by retention.
    Savepoint,
}

/// What a blob holds: state of an operator's key group, a source partition's position, or
/// operator-wide state of one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatePart {
    /// The keyed state (and timers) of one key group.
    KeyGroup(u32),
    /// The read position of one source partition.
    SourcePartition(u32),
    /// Operator-wide, non-keyed state of one worker.
    Worker(u32),
}

impl StatePart {
    /// The file name of this part inside its operator's directory, e.g. `kg-00017.bin`.
    pub fn file_name(&self) -> String {
        match self {
            StatePart::KeyGroup(n) => format!("kg-{n:05}.bin"),
            StatePart::SourcePartition(n) => format!("src-{n:05}.bin"),
            StatePart::Worker(n) => format!("worker-{n:05}.bin"),
        }
    }
}

impl fmt::Display for StatePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatePart::KeyGroup(n) => write!(f, "key group {n}"),
            StatePart::SourcePartition(n) => write!(f, "source partition {n}"),
            StatePart::Worker(n) => write!(f, "worker {n}"),
        }
    }
}

/// The name of one blob of a checkpoint: which operator, which part of its state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlobName {
    /// The operator's stable id (user-assignable; kept across code changes for upgrades).
    pub operator: String,
    /// Which part of the operator's state.
    pub part: StatePart,
}

impl BlobName {
    /// A blob holding the state of `operator` in key group `key_group`.
    pub fn key_group(operator: impl Into<String>, key_group: u32) -> Self {
        BlobName { operator: operator.into(), part: StatePart::KeyGroup(key_group) }
    }

    /// A blob holding the position of source partition `partition` of `operator`.
    pub fn source_partition(operator: impl Into<String>, partition: u32) -> Self {
        BlobName { operator: operator.into(), part: StatePart::SourcePartition(partition) }
    }

    /// A blob holding operator-wide state of `operator` on worker `worker`.
    pub fn worker(operator: impl Into<String>, worker: u32) -> Self {
        BlobName { operator: operator.into(), part: StatePart::Worker(worker) }
    }
}

impl fmt::Display for BlobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "operator {:?} {}", self.operator, self.part)
    }
}

/// A reference to one stored blob file, as recorded in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileRef {
    /// Path of the file relative to the store's root, e.g.
    /// `chk-00000000000000000007/window_counts/kg-00003.bin`.
    pub path: String,
    /// Length of the whole file in bytes (framing included).
    pub len: u64,
    /// The CRC32 in the file's trailer (over everything before it).
    pub checksum: u32,
}

/// The table of contents of a checkpoint or savepoint. A checkpoint exists exactly when its
/// manifest has been durably written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Version of the manifest schema ([`MANIFEST_FORMAT_VERSION`]).
    pub format_version: u32,
    /// Checkpoint id: the epoch of the consistent cut.
    pub id: u64,
    /// Checkpoint or savepoint.
    pub kind: CheckpointKind,
    /// Wall-clock time of the commit, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Number of key groups of the job (its maximum parallelism).
    pub key_groups: u32,
    /// Number of workers that took the checkpoint.
    pub workers: u32,
    /// Every blob of the checkpoint, including blobs reused from earlier checkpoints.
    #[serde(with = "entry_list")]
    pub entries: BTreeMap<BlobName, FileRef>,
    /// Free-form metadata (job name, engine version, ...).
    pub metadata: BTreeMap<String, String>,
}

impl Manifest {
    /// The blobs of one operator, in part order.
    pub fn operator_entries<'a>(
        &'a self,
        operator: &'a str,
    ) -> impl Iterator<Item = (&'a StatePart, &'a FileRef)> + 'a {
        self.entries
            .iter()
            .filter(move |(name, _)| name.operator == operator)
            .map(|(name, f)| (&name.part, f))
    }

    /// The distinct operator ids that have state in this checkpoint.
    pub fn operators(&self) -> Vec<&str> {
        let mut ops: Vec<&str> = self.entries.keys().map(|n| n.operator.as_str()).collect();
        ops.dedup();
        ops
    }

    /// Total bytes of all files the manifest references (reused ones included).
    pub fn total_bytes(&self) -> u64 {
        self.entries.values().map(|f| f.len).sum()
    }

    /// Serializes and frames the manifest (JSON inside the `MSMF` framing).
    pub(crate) fn encode(&self) -> Result<Vec<u8>, CheckpointError> {
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| CheckpointError::InvalidArgument(e.to_string()))?;
        Ok(format::encode(format::MANIFEST_MAGIC, &json).0)
    }

    /// Checks the framing of a manifest file read from `path`, parses it and checks that it
    /// describes checkpoint `expected_id`.
    pub(crate) fn decode(path: &str, expected_id: u64, bytes: &[u8]) -> Result<Manifest, CheckpointError> {
        let frame = format::decode(path, format::MANIFEST_MAGIC, bytes, None)?;
        let json = &bytes[frame.payload.0..frame.payload.1];
        let corrupt = |reason: String| CheckpointError::Corrupt { path: path.to_string(), reason };
        // Look at the version before the full parse, so a newer schema reads as a version error.
        #[derive(Deserialize)]
        struct VersionOnly {
            format_version: u32,
        }
        let version: VersionOnly = serde_json::from_slice(json)
            .map_err(|e| corrupt(format!("manifest JSON does not parse: {e}")))?;
        if version.format_version != MANIFEST_FORMAT_VERSION {
            return Err(CheckpointError::Version {
                path: path.to_string(),
                found: version.format_version,
                supported: MANIFEST_FORMAT_VERSION,
            });
        }
        let manifest: Manifest = serde_json::from_slice(json)
            .map_err(|e| corrupt(format!("manifest JSON does not parse: {e}")))?;
        if manifest.id != expected_id {
            return Err(corrupt(format!(
                "manifest is for checkpoint {} but lies in the directory of checkpoint {expected_id}",
                manifest.id
            )));
        }
        Ok(manifest)
    }
}

/// The name of the directory of checkpoint `id`: `chk-` and the id zero-padded to 20 digits,
/// so that names sort like ids.
pub fn checkpoint_dir(id: u64) -> String {
    format!("chk-{id:020}")
}

/// The path of the manifest of checkpoint `id`, relative to the store's root.
pub fn manifest_path(id: u64) -> String {
    format!("{}/{MANIFEST_FILE}", checkpoint_dir(id))
}

/// The path of the abandonment marker of checkpoint `id`, relative to the store's root.
pub fn abandoned_path(id: u64) -> String {
    format!("{}/{ABANDONED_FILE}", checkpoint_dir(id))
}

/// Parses a checkpoint directory name made by [`checkpoint_dir`].
pub fn parse_checkpoint_dir(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("chk-")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The directory name used for an operator id: the id itself when it consists only of ASCII
/// letters, digits, `_`, `-` and `.` (not leading, at most 100 bytes); otherwise the id with
/// every other character replaced by `_`, cut to 100 bytes, followed by `!` and the CRC32 of
/// the original id in hex, so that distinct ids never share a directory. (`!` cannot occur in
/// an id used as is, and needs no escaping in object_store paths or S3 keys.)
pub fn sanitize_operator(operator: &str) -> String {
    const MAX: usize = 100;
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.';
    let safe = !operator.is_empty()
        && operator.len() <= MAX
        && !operator.starts_with('.')
        && operator.chars().all(allowed);
    if safe {
        return operator.to_string();
    }
    let mut cleaned: String = operator.chars().map(|c| if allowed(c) { c } else { '_' }).take(MAX).collect();
    if cleaned.starts_with('.') {
        cleaned.replace_range(0..1, "_");
    }
    format!("{cleaned}!{:08x}", crc32fast::hash(operator.as_bytes()))
}

/// The path, relative to the store's root, at which checkpoint `id` stores blob `name`:
/// `chk-<id:020>/<sanitized operator>/<part>.bin`.
pub fn blob_path(id: u64, name: &BlobName) -> String {
    format!("{}/{}/{}", checkpoint_dir(id), sanitize_operator(&name.operator), name.part.file_name())
}

/// Serializes the entry map as a JSON list (JSON object keys must be strings).
mod entry_list {
    use std::collections::BTreeMap;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{BlobName, FileRef, StatePart};

    #[derive(Serialize, Deserialize)]
    struct Entry {
        operator: String,
        part: StatePart,
        path: String,
        len: u64,
        checksum: u32,
    }

    pub fn serialize<S: Serializer>(map: &BTreeMap<BlobName, FileRef>, s: S) -> Result<S::Ok, S::Error> {
        let list: Vec<Entry> = map
            .iter()
            .map(|(name, file)| Entry {
                operator: name.operator.clone(),
                part: name.part,
                path: file.path.clone(),
                len: file.len,
                checksum: file.checksum,
            })
            .collect();
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<BlobName, FileRef>, D::Error> {
        let list = Vec::<Entry>::deserialize(d)?;
        let mut map = BTreeMap::new();
        for e in list {
            let name = BlobName { operator: e.operator, part: e.part };
            if e.path.is_empty() {
                return Err(D::Error::custom(format!("entry {name} has an empty path")));
            }
            let file = FileRef { path: e.path, len: e.len, checksum: e.checksum };
            if let Some(_previous) = map.insert(name.clone(), file) {
                return Err(D::Error::custom(format!("entry {name} appears twice")));
            }
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut entries = BTreeMap::new();
        entries.insert(
            BlobName::key_group("counts", 3),
            FileRef { path: "chk-00000000000000000001/counts/kg-00003.bin".into(), len: 30, checksum: 7 },
        );
        entries.insert(
            BlobName::source_partition("source", 0),
            FileRef { path: "chk-00000000000000000002/source/src-00000.bin".into(), len: 28, checksum: 9 },
        );
        Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            id: 2,
            kind: CheckpointKind::Checkpoint,
            created_at_ms: 1_700_000_000_000,
            key_groups: 128,
            workers: 2,
            entries,
            metadata: BTreeMap::from([("job".to_string(), "test".to_string())]),
        }
    }

    #[test]
    fn manifest_round_trip() {
        let m = sample();
        let bytes = m.encode().expect("encode");
        assert_eq!(&bytes[0..4], b"MSMF");
        let back = Manifest::decode("p", 2, &bytes).expect("decode");
        assert_eq!(back, m);
    }

    #[test]
    fn manifest_in_wrong_directory_is_corrupt() {
        let bytes = sample().encode().expect("encode");
        assert!(matches!(Manifest::decode("p", 3, &bytes), Err(CheckpointError::Corrupt { .. })));
    }

    #[test]
    fn newer_manifest_schema_is_a_version_error() {
        let mut m = sample();
        m.format_version = 99;
        let bytes = m.encode().expect("encode");
        assert!(matches!(Manifest::decode("p", 2, &bytes), Err(CheckpointError::Version { found: 99, .. })));
    }

    #[test]
    fn names_sort_like_ids() {
        assert_eq!(checkpoint_dir(7), "chk-00000000000000000007");
        assert_eq!(manifest_path(7), "chk-00000000000000000007/_MANIFEST");
        assert!(checkpoint_dir(9) < checkpoint_dir(10));
        assert!(checkpoint_dir(u64::MAX - 1) < checkpoint_dir(u64::MAX));
        assert_eq!(parse_checkpoint_dir(&checkpoint_dir(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_checkpoint_dir("chk-7"), None);
        assert_eq!(parse_checkpoint_dir("chk-0000000000000000000x"), None);
        assert_eq!(parse_checkpoint_dir("other"), None);
    }

    #[test]
    fn blob_paths() {
        assert_eq!(
            blob_path(1, &BlobName::key_group("agg", 17)),
            "chk-00000000000000000001/agg/kg-00017.bin"
        );
        assert_eq!(
            blob_path(1, &BlobName::source_partition("src.files", 2)),
            "chk-00000000000000000001/src.files/src-00002.bin"
        );
        assert_eq!(blob_path(1, &BlobName::worker("w", 0)), "chk-00000000000000000001/w/worker-00000.bin");
    }

    #[test]
    fn sanitizing_keeps_distinct_ids_distinct() {
        assert_eq!(sanitize_operator("window_counts-1"), "window_counts-1");
        // The example in docs/state-and-checkpoints.md.
        assert_eq!(sanitize_operator("join/left side"), "join_left_side!3650912e");
        let a = sanitize_operator("a/b");
        let b = sanitize_operator("a b");
        let c = sanitize_operator("a_b");
        assert!(a.starts_with("a_b!") && b.starts_with("a_b!"));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert!(sanitize_operator("..").starts_with("_.!"));
        assert!(sanitize_operator("").starts_with('!'));
        assert!(sanitize_operator(&"x".repeat(500)).len() < 120);
        for s in [a, b, sanitize_operator("ünïcode/../x"), sanitize_operator("#1")] {
            assert!(s.chars().all(|c| c.is_ascii_alphanumeric() || "_-.!".contains(c)), "{s}");
            // object_store leaves the name as it is (no percent-encoding).
            assert_eq!(object_store::path::PathPart::from(s.as_str()).as_ref(), s);
        }
    }
}
