//! Savepoints: self-contained copies of a checkpoint in a place the user names, and the
//! request files through which a running job is asked for one.
//!
//! A savepoint is written by copying every blob of a committed checkpoint (including blobs
//! that checkpoint reused from older ones) into the target store, then committing a
//! manifest of kind [`CheckpointKind::Savepoint`] there. It shares no file with the job's
//! checkpoints, so retention there never touches it, and it can be moved or archived.
//!
//! A running job that checkpoints to a store watches `requests/` in it: `millstream
//! savepoint` (or [`CheckpointStore::submit_savepoint_request`]) writes
//! `requests/savepoint-<id>.request.json`; the job takes the savepoint, then writes
//! `requests/savepoint-<id>.outcome.json` and deletes the request.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::CheckpointError;
use crate::manifest::{CheckpointKind, Manifest};
use crate::store::CheckpointStore;

/// The directory of a store that holds savepoint requests and their outcomes.
pub const REQUESTS_DIR: &str = "requests";

/// A request, to the job checkpointing into a store, for a savepoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavepointRequest {
    /// Names the request (and its outcome file): letters, digits, `-` and `_`.
    pub id: String,
    /// The local directory the savepoint is written to (it must hold no checkpoint yet).
    pub target: String,
    /// Whether the job stops once the savepoint is complete (without flushing windows:
    /// a job started from the savepoint continues where this one stopped).
    pub stop: bool,
}

/// What became of a savepoint request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SavepointOutcome {
    /// The savepoint is complete.
    Completed {
        /// Where it is.
        location: String,
        /// The checkpoint (epoch) it copies.
        checkpoint: u64,
        /// Its size in bytes (all its state files).
        bytes: u64,
        /// Whether the job stopped after it.
        stopped: bool,
    },
    /// No savepoint was taken.
    Failed {
        /// Why.
        message: String,
    },
}

fn request_path(id: &str) -> String {
    format!("{REQUESTS_DIR}/savepoint-{id}.request.json")
}

fn outcome_path(id: &str) -> String {
    format!("{REQUESTS_DIR}/savepoint-{id}.outcome.json")
}

fn check_request_id(id: &str) -> Result<(), CheckpointError> {
    if id.is_empty()
        || id.len() > 100
        || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(CheckpointError::InvalidArgument(format!(
            "savepoint request id {id:?}: use 1 to 100 letters, digits, '-' or '_'"
        )));
    }
    Ok(())
}

impl CheckpointStore {
    /// The greatest id of any checkpoint directory in the store, complete or not.
    pub fn highest_id(&self) -> Result<Option<u64>, CheckpointError> {
        Ok(self.checkpoint_ids()?.last().copied())
    }

    /// Copies `manifest`'s checkpoint, read from this store, into `target` as checkpoint `id`
    /// of `kind`, with `metadata` added to the manifest's. Every blob is read and verified,
    /// then written to `target`; the copy's manifest is committed last, so an interrupted
    /// copy leaves nothing that looks complete. Returns the copy's manifest.
    pub fn copy_checkpoint(
        &self,
        manifest: &Manifest,
        target: &CheckpointStore,
        id: u64,
        kind: CheckpointKind,
        metadata: BTreeMap<String, String>,
    ) -> Result<Manifest, CheckpointError> {
        let writer = target.begin(id, kind);
        for (name, file) in &manifest.entries {
            let bytes = self.read(file)?;
            writer.write(name.clone(), &bytes)?;
        }
        let mut all = manifest.metadata.clone();
        all.extend(metadata);
        writer.commit(manifest.key_groups, manifest.workers, all)
    }

    /// Asks the job checkpointing into this store for a savepoint (see the module docs).
    /// The outcome appears later in [`savepoint_outcome`](Self::savepoint_outcome).
    pub fn submit_savepoint_request(&self, request: &SavepointRequest) -> Result<(), CheckpointError> {
        check_request_id(&request.id)?;
        let bytes = serde_json::to_vec_pretty(request)
            .map_err(|e| CheckpointError::InvalidArgument(format!("savepoint request: {e}")))?;
        self.put(&request_path(&request.id), bytes)
    }

    /// The savepoint requests waiting in this store, oldest id first. A request file that
    /// cannot be read as one is reported (one warning) and answered with a failed outcome.
    pub fn savepoint_requests(&self) -> Result<Vec<SavepointRequest>, CheckpointError> {
        let mut requests = Vec::new();
        for path in self.list_under(REQUESTS_DIR)? {
            let Some(id) = path
                .strip_prefix(&format!("{REQUESTS_DIR}/savepoint-"))
                .and_then(|rest| rest.strip_suffix(".request.json"))
            else {
                continue;
            };
            let bytes = match self.get(&path) {
                Ok(b) => b,
                Err(CheckpointError::Missing { .. }) => continue, // answered meanwhile
                Err(e) => return Err(e),
            };
            match serde_json::from_slice::<SavepointRequest>(&bytes) {
                Ok(r) if r.id == id => requests.push(r),
                Ok(_) | Err(_) => {
                    tracing::warn!(file = %path, "ignoring an unreadable savepoint request");
                    if check_request_id(id).is_ok() {
                        let outcome =
                            SavepointOutcome::Failed { message: format!("unreadable request file {path}") };
                        self.finish_savepoint_request(id, &outcome)?;
                    }
                }
            }
        }
        requests.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(requests)
    }

    /// Records the outcome of request `id` and removes the request.
    pub fn finish_savepoint_request(
        &self,
        id: &str,
        outcome: &SavepointOutcome,
    ) -> Result<(), CheckpointError> {
        check_request_id(id)?;
        let bytes = serde_json::to_vec_pretty(outcome)
            .map_err(|e| CheckpointError::InvalidArgument(format!("savepoint outcome: {e}")))?;
        self.put(&outcome_path(id), bytes)?;
        self.delete_all(vec![request_path(id)])
    }

    /// The outcome of request `id`, once the job has answered it.
    pub fn savepoint_outcome(&self, id: &str) -> Result<Option<SavepointOutcome>, CheckpointError> {
        check_request_id(id)?;
        let path = outcome_path(id);
        match self.get(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| CheckpointError::Corrupt { path, reason: e.to_string() }),
            Err(CheckpointError::Missing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the store already holds a checkpoint or savepoint directory.
    pub fn is_empty(&self) -> Result<bool, CheckpointError> {
        Ok(self.checkpoint_ids()?.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::BlobName;

    #[test]
    fn a_copy_is_self_contained_and_survives_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = CheckpointStore::local(dir.path().join("checkpoints")).unwrap();
        let w = jobs.begin(1, CheckpointKind::Checkpoint);
        let a = w.write(BlobName::key_group("op", 0), b"zero").unwrap();
        w.commit(128, 1, BTreeMap::new()).unwrap();
        // Checkpoint 2 reuses checkpoint 1's file of key group 0.
        let w = jobs.begin(2, CheckpointKind::Checkpoint);
        w.reuse(BlobName::key_group("op", 0), a);
        w.write(BlobName::key_group("op", 1), b"one").unwrap();
        let m2 = w.commit(128, 1, BTreeMap::new()).unwrap();

        let target = CheckpointStore::local(dir.path().join("savepoint")).unwrap();
        assert!(target.is_empty().unwrap());
        let meta = BTreeMap::from([("note".to_string(), "before upgrade".to_string())]);
        let copy = jobs.copy_checkpoint(&m2, &target, 2, CheckpointKind::Savepoint, meta).unwrap();
        assert_eq!(copy.kind, CheckpointKind::Savepoint);
        assert_eq!(copy.metadata["note"], "before upgrade");
        std::fs::remove_dir_all(dir.path().join("checkpoints")).unwrap();

        let found = target.latest_complete().unwrap().expect("the savepoint is complete");
        assert_eq!(found.id, 2);
        assert_eq!(target.read(&found.entries[&BlobName::key_group("op", 0)]).unwrap(), b"zero");
        assert_eq!(target.read(&found.entries[&BlobName::key_group("op", 1)]).unwrap(), b"one");
        assert_eq!(target.highest_id().unwrap(), Some(2));
    }

    #[test]
    fn requests_and_outcomes_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::local(dir.path()).unwrap();
        let request = SavepointRequest { id: "sp-1".into(), target: "/tmp/sp".into(), stop: true };
        store.submit_savepoint_request(&request).unwrap();
        assert_eq!(store.savepoint_requests().unwrap(), vec![request]);
        assert_eq!(store.savepoint_outcome("sp-1").unwrap(), None);
        let outcome = SavepointOutcome::Completed {
            location: "/tmp/sp".into(),
            checkpoint: 7,
            bytes: 10,
            stopped: true,
        };
        store.finish_savepoint_request("sp-1", &outcome).unwrap();
        assert!(store.savepoint_requests().unwrap().is_empty());
        assert_eq!(store.savepoint_outcome("sp-1").unwrap(), Some(outcome));
        // Request files are not checkpoints.
        assert!(store.latest_complete().unwrap().is_none());
        assert!(store.is_empty().unwrap());
    }

    #[test]
    fn request_ids_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::local(dir.path()).unwrap();
        for bad in ["", "../x", "a/b", "a b"] {
            let r = SavepointRequest { id: bad.into(), target: "t".into(), stop: false };
            assert!(store.submit_savepoint_request(&r).is_err(), "{bad:?}");
        }
    }
}
