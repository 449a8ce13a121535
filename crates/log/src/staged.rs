//! Staged batches: records written durably but invisibly, appended to the partition exactly
//! once on commit. The building block of an exactly-once (two-phase commit) sink.
//!
//! - [`PartitionWriter::begin_staged`] starts a [`StagedBatch`] with a caller-chosen id (for
//!   a sink: job, sink, subtask and epoch), [`StagedBatch::stage`] adds records in memory.
//! - [`PartitionWriter::persist`] writes the batch to `staged/<id>.staged` in the partition
//!   directory (one batch frame with base offset 0 and the id in its payload; temporary file,
//!   fsync, rename, directory fsync). Readers never see it; it survives crashes.
//! - [`PartitionWriter::commit`] appends the staged records to the partition as one batch
//!   whose payload carries the id (always fsynced, whatever the durability policy), records
//!   the id in `committed.json`, then deletes the staging file. A commit of an id already
//!   committed does nothing and says so, so a commit retried after a crash appends exactly
//!   once: if the crash came after the batch reached the segment but before `committed.json`
//!   was updated, recovery finds the id in the batch (which is then in the active segment,
//!   since nothing is appended in between) and records it.
//! - [`PartitionWriter::abort`] deletes the staging file.
//!
//! `committed.json` remembers the most recent [`COMMITTED_IDS_KEPT`] committed ids; a commit
//! retried after more commits than that would append again.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::batch::{set_base_offset, BatchHeader, HEADER_LEN};
use crate::error::{LogError, Result};
use crate::fsio::{is_not_found, sync_dir, write_atomic};
use crate::record::Record;
use crate::segment::CommittedBatch;
use crate::topic::validate_staged_id;
use crate::writer::{remove_if_exists, AppendAck, PartitionWriter};

/// Name of the committed-ids file in a partition directory.
pub const COMMITTED_FILE: &str = "committed.json";
/// Name of the directory of staging files in a partition directory.
pub const STAGED_DIR: &str = "staged";
/// Extension of staging files.
pub const STAGED_EXT: &str = "staged";
/// How many committed ids a partition remembers.
pub const COMMITTED_IDS_KEPT: usize = 4096;

/// Records staged under an id, not yet persisted. Built by [`PartitionWriter::begin_staged`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedBatch {
    id: String,
    records: Vec<Record>,
}

impl StagedBatch {
    /// The id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Adds records.
    pub fn stage(&mut self, records: impl IntoIterator<Item = Record>) {
        self.records.extend(records);
    }

    /// The records staged so far.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// How many records are staged.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// The result of [`PartitionWriter::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// This call appended the staged records (`None`: the staged batch was empty).
    Committed(Option<AppendAck>),
    /// The id had been committed before; nothing was appended. The offsets are those of the
    /// original commit.
    AlreadyCommitted(Option<AppendAck>),
}

impl CommitOutcome {
    /// The offsets of the committed records, whichever call appended them.
    pub fn ack(&self) -> Option<AppendAck> {
        match self {
            CommitOutcome::Committed(a) | CommitOutcome::AlreadyCommitted(a) => *a,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offsets: Option<AppendAck>,
}

#[derive(Serialize, Deserialize)]
struct RegistryFile {
    format_version: u32,
    committed: Vec<Entry>,
}

/// The ids committed to one partition, oldest first.
#[derive(Debug, Default)]
pub(crate) struct CommittedRegistry {
    order: VecDeque<String>,
    by_id: HashMap<String, Option<AppendAck>>,
}

impl CommittedRegistry {
    pub(crate) fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(COMMITTED_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if is_not_found(&e) => return Ok(Self::default()),
            Err(e) => return Err(LogError::io("read", path, e)),
        };
        let file: RegistryFile = serde_json::from_slice(&bytes).map_err(|e| LogError::Corrupt {
            file: path.clone(),
            position: 0,
            offset: 0,
            reason: format!("bad committed-ids file: {e}"),
        })?;
        if file.format_version != 1 {
            return Err(LogError::UnsupportedVersion {
                file: path,
                position: 0,
                found: file.format_version,
                supported: 1,
            });
        }
        let mut registry = Self::default();
        for entry in file.committed {
            registry.insert(entry.id, entry.offsets);
        }
        Ok(registry)
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let committed = self
            .order
            .iter()
            .map(|id| Entry { id: id.clone(), offsets: self.by_id.get(id).copied().flatten() })
            .collect();
        let json = serde_json::to_vec(&RegistryFile { format_version: 1, committed })
            .map_err(|e| LogError::InvalidArgument(format!("cannot serialize committed ids: {e}")))?;
        write_atomic(&dir.join(COMMITTED_FILE), &json)
    }

    fn insert(&mut self, id: String, offsets: Option<AppendAck>) {
        if self.by_id.insert(id.clone(), offsets).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > COMMITTED_IDS_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<Option<AppendAck>> {
        self.by_id.get(id).copied()
    }

    /// Adds the ids found in the active segment's batches (committed just before a crash).
    pub(crate) fn merge_recovered(&mut self, dir: &Path, found: Vec<CommittedBatch>) -> Result<()> {
        let mut changed = false;
        for CommittedBatch { id, base_offset: base, record_count: count } in found {
            if self.get(&id).is_none() {
                let offsets = (count > 0)
                    .then(|| AppendAck { base_offset: base, last_offset: base + u64::from(count) - 1 });
                tracing::info!("recovered commit of staged batch {id} from the log in {}", dir.display());
                self.insert(id, offsets);
                changed = true;
            }
        }
        if changed {
            self.save(dir)?;
        }
        Ok(())
    }
}

impl PartitionWriter {
    fn staged_dir(&self) -> PathBuf {
        self.dir.join(STAGED_DIR)
    }

    fn staged_path(&self, id: &str) -> PathBuf {
        self.staged_dir().join(format!("{id}.{STAGED_EXT}"))
    }

    fn already_committed(&self, id: &str) -> LogError {
        LogError::AlreadyCommitted {
            topic: self.topic.clone(),
            partition: self.partition,
            id: id.to_string(),
        }
    }

    /// Starts a staged batch with `id` (`[A-Za-z0-9._-]`, 1 to 200 characters, no leading
    /// dot). Fails if `id` is already committed.
    pub fn begin_staged(&self, id: &str) -> Result<StagedBatch> {
        validate_staged_id(id)?;
        if self.committed.get(id).is_some() {
            return Err(self.already_committed(id));
        }
        Ok(StagedBatch { id: id.to_string(), records: Vec::new() })
    }

    /// Writes `batch` durably to its staging file, invisible to readers. Persisting the same
    /// id again replaces the staged records.
    pub fn persist(&mut self, batch: &StagedBatch) -> Result<()> {
        validate_staged_id(&batch.id)?;
        if self.committed.get(&batch.id).is_some() {
            return Err(self.already_committed(&batch.id));
        }
        let dir = self.staged_dir();
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| LogError::io("create directory", &dir, e))?;
            sync_dir(&self.dir)?;
        }
        let mut encoder = std::mem::take(&mut self.encoder);
        let result = match encoder.encode(0, batch.records.iter(), Some(&batch.id)) {
            Ok(frame) => write_atomic(&self.staged_path(&batch.id), frame),
            Err(bytes) => Err(self.too_large(bytes)),
        };
        self.encoder = encoder;
        result
    }

    /// Ids persisted and neither committed nor aborted, sorted.
    pub fn list_staged(&self) -> Result<Vec<String>> {
        let dir = self.staged_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(LogError::io("list", dir, e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| LogError::io("list", &dir, e))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(&format!(".{STAGED_EXT}"))) else {
                continue;
            };
            if self.committed.get(id).is_none() {
                ids.push(id.to_string());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Whether `id` was committed: `Some(offsets)` (offsets `None` for an empty batch) if so.
    pub fn committed(&self, id: &str) -> Option<Option<AppendAck>> {
        self.committed.get(id)
    }

    /// Appends the records persisted under `id` to the partition, exactly once: a repeated
    /// commit (for instance retried after a crash) returns [`CommitOutcome::AlreadyCommitted`].
    /// The append is fsynced whatever the durability policy.
    pub fn commit(&mut self, id: &str) -> Result<CommitOutcome> {
        validate_staged_id(id)?;
        if let Some(offsets) = self.committed.get(id) {
            return Ok(CommitOutcome::AlreadyCommitted(offsets));
        }
        self.check_poisoned()?;
        let path = self.staged_path(id);
        let mut frame = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if is_not_found(&e) => {
                return Err(LogError::StagedNotFound {
                    topic: self.topic.clone(),
                    partition: self.partition,
                    id: id.to_string(),
                })
            }
            Err(e) => return Err(LogError::io("read", path, e)),
        };
        let header = check_staged_frame(&path, &frame, id)?;
        let offsets = if header.record_count == 0 {
            None
        } else {
            let base_offset = self.end_offset();
            set_base_offset(&mut frame, base_offset);
            self.write_frame(&frame)?;
            self.sync()?;
            Some(AppendAck { base_offset, last_offset: base_offset + u64::from(header.record_count) - 1 })
        };
        self.committed.insert(id.to_string(), offsets);
        self.committed.save(&self.dir)?;
        remove_if_exists(&path)?;
        sync_dir(&self.staged_dir())?;
        Ok(CommitOutcome::Committed(offsets))
    }

    /// Deletes the staged batch `id`. A no-op if there is none; an error if it is committed.
    pub fn abort(&mut self, id: &str) -> Result<()> {
        validate_staged_id(id)?;
        if self.committed.get(id).is_some() {
            return Err(self.already_committed(id));
        }
        let path = self.staged_path(id);
        if path.exists() {
            remove_if_exists(&path)?;
            sync_dir(&self.staged_dir())?;
        }
        Ok(())
    }

    /// Removes staging files (and their temporary files) whose ids are committed: leftovers of
    /// a crash between recording a commit and deleting the file.
    pub(crate) fn remove_committed_staging_files(&self) -> Result<()> {
        for id in self.list_staged_including_committed()? {
            if self.committed.get(&id).is_some() {
                remove_if_exists(&self.staged_path(&id))?;
            }
        }
        Ok(())
    }

    fn list_staged_including_committed(&self) -> Result<Vec<String>> {
        let dir = self.staged_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(LogError::io("list", dir, e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| LogError::io("list", &dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                remove_if_exists(&entry.path())?;
            } else if let Some(id) = name.strip_suffix(&format!(".{STAGED_EXT}")) {
                ids.push(id.to_string());
            }
        }
        Ok(ids)
    }
}

/// Checks a staging file: one intact frame carrying `id`.
fn check_staged_frame(path: &Path, frame: &[u8], id: &str) -> Result<BatchHeader> {
    let corrupt =
        |reason: String| LogError::Corrupt { file: path.to_path_buf(), position: 0, offset: 0, reason };
    if frame.len() < HEADER_LEN {
        return Err(corrupt(format!("staging file of {} bytes is shorter than a batch header", frame.len())));
    }
    let header = BatchHeader::parse(frame).map_err(|e| corrupt(e.to_string()))?;
    if header.frame_len() != frame.len() as u64 {
        return Err(corrupt(format!(
            "staging file is {} bytes, its batch {}",
            frame.len(),
            header.frame_len()
        )));
    }
    if !header.crc_matches(frame, &frame[HEADER_LEN..]) {
        return Err(corrupt("checksum mismatch".into()));
    }
    match header.staged_id(&frame[HEADER_LEN..]).map_err(corrupt)? {
        (Some(found), _) if found == id => Ok(header),
        (found, _) => Err(corrupt(format!("staging file carries id {found:?}, expected {id:?}"))),
    }
}
