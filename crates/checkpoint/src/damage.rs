//! What restoring does when no checkpoint is complete.

use crate::error::CheckpointError;
use crate::manifest::{manifest_path, Manifest};
use crate::store::CheckpointStore;

impl CheckpointStore {
    /// The answer of [`CheckpointStore::latest_complete`] once every checkpoint was found
    /// partial or damaged: `Ok(None)` if none was ever committed (no manifest exists: the
    /// job was killed before its first checkpoint completed, and starting over is right),
    /// [`CheckpointError::AllDamaged`] if some were.
    pub(crate) fn none_complete(&self) -> Result<Option<Manifest>, CheckpointError> {
        let mut committed = Vec::new();
        for id in self.checkpoint_ids()? {
            match self.get(&manifest_path(id)) {
                Ok(_) => committed.push(id),
                Err(CheckpointError::Missing { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if committed.is_empty() {
            return Ok(None);
        }
        Err(CheckpointError::AllDamaged { store: self.to_string(), checkpoints: committed })
    }
}
