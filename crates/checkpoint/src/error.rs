//! Errors of the checkpoint store.

use crate::manifest::BlobName;

/// A boxed error from the storage layer (object_store, the file system or the async runtime).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong reading or writing a checkpoint. Every variant names the file (a path
/// relative to the store's root) or the checkpoint it is about.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The storage layer failed (permissions, disk full, network, ...). Not a statement about
    /// the checkpoint's contents: the same call may succeed later.
    #[error("checkpoint store I/O error on {path}: {source}")]
    Io {
        /// The file or directory the operation was about.
        path: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// A file exists but its contents are damaged: truncated, wrong magic bytes, bad checksum,
    /// a length or checksum different from what the manifest recorded, or unparsable manifest.
    #[error("corrupt checkpoint file {path}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file that should exist does not.
    #[error("checkpoint file {path} is missing")]
    Missing {
        /// The missing file.
        path: String,
    },
    /// An intact file written in a format version this build does not read.
    #[error("checkpoint file {path} has format version {found}; this build reads version {supported}")]
    Version {
        /// The file.
        path: String,
        /// The version found in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The same blob name was written (or reused) twice in one checkpoint.
    #[error("checkpoint {id}: blob {name} was written twice")]
    Duplicate {
        /// The checkpoint being written.
        id: u64,
        /// The blob name given twice.
        name: BlobName,
    },
    /// An argument out of range, e.g. retaining zero checkpoints.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Checkpoints were committed (their manifests exist) but every one of them is damaged.
    /// Not "no checkpoint": starting from scratch would process the input again and repeat
    /// output already published, so restoring refuses to guess.
    #[error(
        "no intact checkpoint in {store}: all {} committed checkpoints are damaged (ids {}; each \
         problem is in a warning above). Starting from scratch would repeat output already \
         published: restore from a savepoint, or move the checkpoint directory away to start \
         over on purpose",
        checkpoints.len(),
        checkpoints.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
    )]
    AllDamaged {
        /// The store.
        store: String,
        /// The ids of the damaged committed checkpoints, oldest first.
        checkpoints: Vec<u64>,
    },
}

impl CheckpointError {
    /// Whether this error says the checkpoint's contents are damaged or incomplete (as opposed
    /// to the store being unreachable, or the file being from another format version).
    pub fn is_damage(&self) -> bool {
        matches!(self, CheckpointError::Corrupt { .. } | CheckpointError::Missing { .. })
    }

    pub(crate) fn io(path: impl Into<String>, source: impl Into<BoxError>) -> Self {
        CheckpointError::Io { path: path.into(), source: source.into() }
    }

    /// Maps an object_store error on `path`: "not found" becomes [`CheckpointError::Missing`].
    pub(crate) fn from_store(path: &str, err: object_store::Error) -> Self {
        match err {
            object_store::Error::NotFound { .. } => CheckpointError::Missing { path: path.to_string() },
            other => CheckpointError::io(path, other),
        }
    }
}
