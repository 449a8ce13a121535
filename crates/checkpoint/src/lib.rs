//! Millstream's checkpoint storage.
//!
//! A checkpoint is a set of state blobs (one per operator and key group, source partition or
//! worker) plus a manifest naming every blob, stored behind [`object_store`]: a local
//! directory by default, any object store (S3-compatible storage on a cluster) otherwise.
//! Blobs and manifests are framed with magic bytes, a format version and a CRC32, and a
//! checkpoint exists only once its manifest has been durably written, last. Readers find the
//! newest complete checkpoint and skip partial or damaged ones with one clear warning.
//!
//! The API is synchronous, for timely worker threads without an async runtime.
//!
//! ```
//! use std::collections::BTreeMap;
//! use millstream_checkpoint::{BlobName, CheckpointKind, CheckpointStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = CheckpointStore::local(dir.path())?;
//!
//! let writer = store.begin(1, CheckpointKind::Checkpoint);
//! writer.write(BlobName::key_group("counts", 0), b"state of key group 0")?;
//! writer.write(BlobName::source_partition("input", 0), b"offset 42")?;
//! writer.commit(128, 1, BTreeMap::new())?;
//!
//! let manifest = store.latest_complete()?.expect("a complete checkpoint");
//! let file = &manifest.entries[&BlobName::key_group("counts", 0)];
//! assert_eq!(store.read(file)?, b"state of key group 0");
//! # Ok(())
//! # }
//! ```
//!
//! The on-disk format is described in `docs/state-and-checkpoints.md`.

#![warn(missing_docs)]

mod abandon;
mod damage;
mod error;
pub mod format;
mod manifest;
mod savepoint;
mod store;

pub use error::{BoxError, CheckpointError};
pub use manifest::{
    abandoned_path, blob_path, checkpoint_dir, manifest_path, parse_checkpoint_dir, sanitize_operator,
    BlobName, CheckpointKind, FileRef, Manifest, StatePart, ABANDONED_FILE, MANIFEST_FILE,
    MANIFEST_FORMAT_VERSION,
};
pub use object_store::ObjectStore;
pub use savepoint::{SavepointOutcome, SavepointRequest, REQUESTS_DIR};
pub use store::{CheckpointStore, CheckpointWriter};
