//! Checkpoints superseded without being restored: marked once, never reported again.
//!
//! A job killed while writing checkpoint `n + 1` leaves a partial directory. The restarted
//! job restores `n`, skips `n + 1` (with a warning) and continues with ids after it, so the
//! partial directory stays until a newer checkpoint completes and retention removes it.
//! Without a mark, every restart in between would warn about the same partial checkpoint
//! again; with it, the directory still counts for [`CheckpointStore::highest_id`] (so its id
//! is never reused) but is skipped quietly.

use crate::error::CheckpointError;
use crate::manifest::abandoned_path;
use crate::store::CheckpointStore;

impl CheckpointStore {
    /// Whether checkpoint `id` carries the abandonment marker
    /// ([`ABANDONED_FILE`](crate::ABANDONED_FILE)).
    pub fn is_abandoned(&self, id: u64) -> Result<bool, CheckpointError> {
        match self.get(&abandoned_path(id)) {
            Ok(_) => Ok(true),
            Err(CheckpointError::Missing { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Marks every checkpoint directory with an id greater than `restored` (every one when
    /// `None`) as abandoned, durably, and returns the ids newly marked, oldest first.
    ///
    /// Call it after restoring checkpoint `restored` (the newest complete one, so everything
    /// newer was partial or damaged and has just been reported): the new run continues with
    /// ids after the highest one in the store and supersedes them. Abandoned checkpoints are
    /// skipped without a warning by [`latest_complete`](Self::latest_complete), never count as
    /// complete for [`list_complete`](Self::list_complete) and retention, and are removed by
    /// [`retain_last`](Self::retain_last) once a newer checkpoint is complete. Their
    /// directories keep counting for [`highest_id`](Self::highest_id) until then.
    pub fn supersede_newer_than(&self, restored: Option<u64>) -> Result<Vec<u64>, CheckpointError> {
        let mut marked = Vec::new();
        for id in self.checkpoint_ids()? {
            if restored.is_some_and(|r| id <= r) || self.is_abandoned(id)? {
                continue;
            }
            let note = match restored {
                Some(r) => {
                    format!("superseded: a run restored checkpoint {r} and continues after this one\n")
                }
                None => {
                    "superseded: a run found no complete checkpoint and continues after this one\n".into()
                }
            };
            self.put(&abandoned_path(id), note.into_bytes())?;
            marked.push(id);
        }
        if !marked.is_empty() {
            tracing::info!(store = %self, checkpoints = ?marked, "marked partial or damaged checkpoints as abandoned");
        }
        Ok(marked)
    }
}
