//! The checkpoint store and the writer of one checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, PutOptions, PutPayload};

use crate::error::CheckpointError;
use crate::format;
use crate::manifest::{
    abandoned_path, blob_path, checkpoint_dir, manifest_path, parse_checkpoint_dir, BlobName, CheckpointKind,
    FileRef, Manifest, MANIFEST_FORMAT_VERSION,
};

/// How many files are read or deleted concurrently.
const CONCURRENCY: usize = 16;

/// Where checkpoints live: a local directory or any [`ObjectStore`] (S3-compatible storage on a
/// cluster), under a prefix.
///
/// The API is synchronous, for timely worker threads that have no async runtime. A store made
/// by [`CheckpointStore::local`] runs object_store's local file system calls directly on the
/// calling thread; one made by [`CheckpointStore::with_object_store`] owns a small tokio
/// current-thread runtime and blocks on it. Cloning is cheap (the clones share everything), and
/// the store may be used from many threads at once.
#[derive(Clone)]
pub struct CheckpointStore {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    exec: Exec,
    /// The root directory when the store is a local directory: lets retention remove what the
    /// object_store API does not show (empty directories, staging files of interrupted writes).
    local_root: Option<PathBuf>,
    description: String,
}

enum Exec {
    /// Poll futures on the calling thread. Enough for `LocalFileSystem`, which does its I/O
    /// synchronously when no tokio runtime is around.
    Inline,
    /// A current-thread tokio runtime, built on first use, for stores that need a reactor.
    Tokio(OnceLock<Result<tokio::runtime::Runtime, String>>),
}

impl fmt::Debug for CheckpointStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointStore").field("location", &self.inner.description).finish()
    }
}

impl fmt::Display for CheckpointStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.description)
    }
}

/// The result of checking one checkpoint for completeness.
enum Check {
    Complete(Manifest),
    /// Partial or damaged; the string says how, naming the file(s).
    Damaged(String),
}

/// What a full listing of the store shows about its checkpoints.
struct Scan {
    /// Every object under the prefix: relative path -> size.
    sizes: BTreeMap<String, u64>,
    /// Checkpoint id -> the relative paths of the objects in its directory.
    dirs: BTreeMap<u64, Vec<String>>,
    /// Checkpoint id -> its manifest, for every manifest that parses.
    manifests: BTreeMap<u64, Manifest>,
}

impl CheckpointStore {
    /// A store in the local directory `dir`, which is created if needed. Every write is made
    /// durable before it returns (file fsync, atomic rename, directory fsync).
    pub fn local(dir: impl AsRef<FsPath>) -> Result<Self, CheckpointError> {
        let dir = dir.as_ref();
        let shown = dir.display().to_string();
        std::fs::create_dir_all(dir).map_err(|e| CheckpointError::io(shown.clone(), e))?;
        let root = std::fs::canonicalize(dir).map_err(|e| CheckpointError::io(shown.clone(), e))?;
        let fs = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| CheckpointError::io(shown, e))?
            .with_automatic_cleanup(true)
            .with_fsync(true);
        Ok(CheckpointStore {
            inner: Arc::new(Inner {
                store: Arc::new(fs),
                prefix: Path::default(),
                exec: Exec::Inline,
                description: root.display().to_string(),
                local_root: Some(root),
            }),
        })
    }

    /// A store in any object store, under `prefix` (`""` for its root). The object store is
    /// driven by a tokio current-thread runtime owned by this store. Durability of writes is
    /// the object store's: a successful put must be durable (true of S3-compatible stores; a
    /// `LocalFileSystem` passed here should have `with_fsync(true)`).
    pub fn with_object_store(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        let prefix = Path::from(prefix);
        let description =
            if prefix.as_ref().is_empty() { format!("{store}") } else { format!("{store}/{prefix}") };
        CheckpointStore {
            inner: Arc::new(Inner {
                store,
                prefix,
                exec: Exec::Tokio(OnceLock::new()),
                local_root: None,
                description,
            }),
        }
    }

    /// Starts writing checkpoint `id` (the epoch of the consistent cut) of the given kind.
    ///
    /// Ids must grow: `id` must be greater than every checkpoint already in the store, since
    /// the writer writes to `chk-<id>/` and would overwrite files of an existing checkpoint
    /// with the same id. Nothing is visible to readers until [`CheckpointWriter::commit`].
    pub fn begin(&self, id: u64, kind: CheckpointKind) -> CheckpointWriter {
        CheckpointWriter { store: self.clone(), id, kind, state: Mutex::new(WriterState::default()) }
    }

    /// The newest checkpoint (or savepoint) that is complete: its manifest is intact and every
    /// file it references exists with the recorded length and checksum (all files are read).
    ///
    /// Each newer checkpoint that is partial (no manifest) or damaged (corrupt manifest,
    /// missing, truncated or corrupt file) is reported in one `tracing::warn!` line naming the
    /// checkpoint and the problem, and skipped. Checkpoints marked abandoned (see
    /// [`supersede_newer_than`](Self::supersede_newer_than)) are skipped without a warning. Returns `Ok(None)` when no checkpoint is
    /// complete. Storage errors and intact files of an unknown format version are returned as
    /// errors rather than skipped: falling back past a checkpoint that may be fine would lose
    /// progress silently.
    ///
    /// When checkpoints were committed but all of them are damaged, the result is
    /// [`CheckpointError::AllDamaged`], not `Ok(None)`: a fresh start would repeat output.
    pub fn latest_complete(&self) -> Result<Option<Manifest>, CheckpointError> {
        let ids = self.checkpoint_ids()?;
        for id in ids.into_iter().rev() {
            if self.is_abandoned(id)? {
                // Reported by the run that superseded it; saying so again on every restart
                // would only bury new problems.
                tracing::debug!(checkpoint = id, "skipping checkpoint {id}: abandoned");
                continue;
            }
            match self.check(id)? {
                Check::Complete(manifest) => return Ok(Some(manifest)),
                Check::Damaged(problem) => tracing::warn!(
                    checkpoint = id,
                    "skipping checkpoint {id} ({}) in {self}: {problem}; falling back to the previous complete checkpoint",
                    checkpoint_dir(id)
                ),
            }
        }
        self.none_complete()
    }

    /// The ids of the checkpoints and savepoints in this store whose manifest is intact and
    /// whose every referenced file exists with the recorded length, oldest first.
    ///
    /// This check lists the store and reads only manifests; it does not read state files, so
    /// a file damaged in place (same length, bad checksum) is caught by
    /// [`latest_complete`](Self::latest_complete), [`verify`](Self::verify) and
    /// [`read`](Self::read), not here.
    pub fn list_complete(&self) -> Result<Vec<u64>, CheckpointError> {
        let scan = self.scan()?;
        Ok(scan
            .manifests
            .iter()
            .filter(|(_, m)| self.structurally_complete(&scan, m))
            .map(|(id, _)| *id)
            .collect())
    }

    /// Reads and checks the manifest of checkpoint `id` (not the files it references).
    pub fn manifest(&self, id: u64) -> Result<Manifest, CheckpointError> {
        let path = manifest_path(id);
        let bytes = self.get(&path)?;
        Manifest::decode(&path, id, &bytes)
    }

    /// Reads every file the manifest references and checks framing, length and checksum.
    /// Returns the first problem found (in path order).
    pub fn verify(&self, manifest: &Manifest) -> Result<(), CheckpointError> {
        match self.damaged_files(manifest)?.into_iter().next() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Reads a state blob and returns its payload, after checking the file's framing (magic
    /// bytes, version, length) and that its length and checksum are those recorded in `file`.
    /// Errors name the file.
    pub fn read(&self, file: &FileRef) -> Result<Vec<u8>, CheckpointError> {
        let store = self;
        self.block_on(async move { store.read_verified(file).await })?.map(|b| b.to_vec())
    }

    /// Keeps the newest `n` complete checkpoints and deletes what only older ones need.
    ///
    /// Deletes the manifests of older checkpoints (first, so that an interrupted retention
    /// leaves no manifest pointing at deleted files), then every file in a directory of a
    /// checkpoint up to the newest complete one that no retained manifest references; in a
    /// local store also the directories of deleted checkpoints and anything left in them by
    /// interrupted writes. Files of the retained checkpoints that live in older directories
    /// (reused by incremental checkpoints) are kept. Savepoint manifests and every file they
    /// reference are never deleted, nor counted among the `n`. Directories of checkpoints newer
    /// than the newest complete one are not touched: they may be being written.
    ///
    /// "Complete" here is the check of [`list_complete`](Self::list_complete) (manifest intact,
    /// files present with the right length). Keep `n >= 2` to keep a fallback for a checkpoint
    /// damaged in place.
    pub fn retain_last(&self, n: usize) -> Result<(), CheckpointError> {
        if n == 0 {
            return Err(CheckpointError::InvalidArgument(
                "retain_last(0) would delete every checkpoint; keep at least one".into(),
            ));
        }
        let scan = self.scan()?;
        let complete: Vec<u64> = scan
            .manifests
            .iter()
            .filter(|(_, m)| self.structurally_complete(&scan, m))
            .map(|(id, _)| *id)
            .collect();
        let Some(&newest) = complete.last() else {
            return Ok(()); // Nothing complete: everything may still be needed (or be in progress).
        };
        let mut keep: BTreeSet<u64> = complete
            .iter()
            .rev()
            .filter(|id| scan.manifests[id].kind == CheckpointKind::Checkpoint)
            .take(n)
            .copied()
            .collect();
        keep.extend(
            scan.manifests.iter().filter(|(_, m)| m.kind == CheckpointKind::Savepoint).map(|(id, _)| *id),
        );
        let referenced: BTreeSet<String> = keep
            .iter()
            .flat_map(|id| scan.manifests[id].entries.values().map(|f| self.canonical(&f.path)))
            .collect();

        let mut manifests = Vec::new();
        let mut files = Vec::new();
        let mut emptied_dirs = Vec::new();
        for (&id, paths) in scan.dirs.range(..=newest) {
            let manifest = manifest_path(id);
            let mut dir_keeps_something = false;
            for path in paths {
                if *path == manifest {
                    if keep.contains(&id) {
                        dir_keeps_something = true;
                    } else {
                        manifests.push(path.clone());
                    }
                } else if referenced.contains(path) {
                    dir_keeps_something = true;
                } else {
                    files.push(path.clone());
                }
            }
            if !dir_keeps_something {
                emptied_dirs.push(checkpoint_dir(id));
            }
        }
        tracing::debug!(
            store = %self,
            kept = ?keep,
            manifests = manifests.len(),
            files = files.len(),
            "checkpoint retention"
        );
        self.delete_all(manifests)?;
        self.delete_all(files)?;
        if let Some(root) = &self.inner.local_root {
            for dir in emptied_dirs {
                let path = root.join(&dir);
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(CheckpointError::io(dir, e)),
                }
            }
        }
        Ok(())
    }

    // ---- internals ----

    /// Checks checkpoint `id` completely: manifest and every file. Damage is a `Check`,
    /// storage and version errors are errors.
    fn check(&self, id: u64) -> Result<Check, CheckpointError> {
        let manifest = match self.manifest(id) {
            Ok(m) => m,
            Err(CheckpointError::Missing { path }) => {
                return Ok(Check::Damaged(format!(
                    "{path} does not exist: the checkpoint is partial (its writer stopped before committing)"
                )))
            }
            Err(e) if e.is_damage() => return Ok(Check::Damaged(e.to_string())),
            Err(e) => return Err(e),
        };
        let damage = self.damaged_files(&manifest)?;
        Ok(match damage.len() {
            0 => Check::Complete(manifest),
            1 => Check::Damaged(damage[0].to_string()),
            n => Check::Damaged(format!("{} (and {} more damaged or missing files)", damage[0], n - 1)),
        })
    }

    /// Reads every file of the manifest; returns the damage found, in path order. Storage and
    /// version errors are returned as the error.
    fn damaged_files(&self, manifest: &Manifest) -> Result<Vec<CheckpointError>, CheckpointError> {
        let store = self;
        let mut files: Vec<&FileRef> = manifest.entries.values().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files.dedup_by(|a, b| a == b);
        let reads: Vec<_> = files.into_iter().map(|f| store.read_verified(f)).collect();
        let results: Vec<Result<Bytes, CheckpointError>> =
            self.block_on(stream::iter(reads).buffered(CONCURRENCY).collect())?;
        let mut damage = Vec::new();
        for result in results {
            match result {
                Ok(_) => {}
                Err(e) if e.is_damage() => damage.push(e),
                Err(e) => return Err(e),
            }
        }
        Ok(damage)
    }

    async fn read_verified(&self, file: &FileRef) -> Result<Bytes, CheckpointError> {
        let bytes = self.get_async(&file.path).await?;
        let corrupt = |reason: String| CheckpointError::Corrupt { path: file.path.clone(), reason };
        if bytes.len() as u64 != file.len {
            return Err(corrupt(format!(
                "file is {} bytes but the manifest recorded {} (truncated or overwritten)",
                bytes.len(),
                file.len
            )));
        }
        let frame = format::decode(&file.path, format::BLOB_MAGIC, &bytes, Some(file.checksum))?;
        Ok(bytes.slice(frame.payload.0..frame.payload.1))
    }

    /// Ids of the checkpoint directories in the store, ascending.
    pub(crate) fn checkpoint_ids(&self) -> Result<Vec<u64>, CheckpointError> {
        let inner = &self.inner;
        let listing = self
            .block_on(inner.store.list_with_delimiter(Some(&inner.prefix)))?
            .map_err(|e| CheckpointError::io(self.to_string(), e))?;
        let mut ids: Vec<u64> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().and_then(parse_checkpoint_dir))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// The relative paths of every object under `dir` (a relative directory).
    pub(crate) fn list_under(&self, dir: &str) -> Result<Vec<String>, CheckpointError> {
        let location = self.location(dir);
        let objects: Vec<object_store::ObjectMeta> = self
            .block_on(self.inner.store.list(Some(&location)).try_collect())?
            .map_err(|e| CheckpointError::io(dir.to_string(), e))?;
        Ok(objects.iter().filter_map(|m| self.relative(&m.location)).collect())
    }

    /// Lists the whole store and reads every manifest.
    fn scan(&self) -> Result<Scan, CheckpointError> {
        let inner = &self.inner;
        let objects: Vec<object_store::ObjectMeta> = self
            .block_on(inner.store.list(Some(&inner.prefix)).try_collect())?
            .map_err(|e| CheckpointError::io(self.to_string(), e))?;
        let mut sizes = BTreeMap::new();
        let mut dirs: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for meta in objects {
            let Some(rel) = self.relative(&meta.location) else { continue };
            if let Some(id) = rel.split('/').next().and_then(parse_checkpoint_dir) {
                dirs.entry(id).or_default().push(rel.clone());
            }
            sizes.insert(rel, meta.size);
        }
        // Directories that hold no listed object (only leftovers of interrupted writes).
        for id in self.checkpoint_ids()? {
            dirs.entry(id).or_default();
        }
        // An abandoned checkpoint's manifest (if any) is ignored: it never counts as complete.
        let with_manifest: Vec<u64> = dirs
            .iter()
            .filter(|(id, paths)| {
                paths.contains(&manifest_path(**id)) && !paths.contains(&abandoned_path(**id))
            })
            .map(|(id, _)| *id)
            .collect();
        let store = self;
        let loaded: Vec<(u64, Result<Manifest, CheckpointError>)> = self.block_on(async move {
            stream::iter(with_manifest)
                .map(|id| async move {
                    let path = manifest_path(id);
                    let result = match store.get_async(&path).await {
                        Ok(bytes) => Manifest::decode(&path, id, &bytes),
                        Err(e) => Err(e),
                    };
                    (id, result)
                })
                .buffered(CONCURRENCY)
                .collect()
                .await
        })?;
        let mut manifests = BTreeMap::new();
        for (id, result) in loaded {
            match result {
                Ok(m) => {
                    manifests.insert(id, m);
                }
                Err(e) if e.is_damage() => {
                    tracing::debug!(checkpoint = id, "manifest not usable: {e}");
                }
                // A manifest of another format version may reference any file: refuse to guess.
                Err(e) => return Err(e),
            }
        }
        Ok(Scan { sizes, dirs, manifests })
    }

    /// Whether every file the manifest names is listed with the recorded length.
    fn structurally_complete(&self, scan: &Scan, manifest: &Manifest) -> bool {
        manifest.entries.values().all(|f| scan.sizes.get(&self.canonical(&f.path)) == Some(&f.len))
    }

    /// A relative path as the store's listing shows it (object_store percent-encodes some
    /// characters in path segments; the names this crate makes need no encoding).
    fn canonical(&self, rel: &str) -> String {
        self.relative(&self.location(rel)).unwrap_or_else(|| rel.to_string())
    }

    fn location(&self, rel: &str) -> Path {
        let prefix = self.inner.prefix.as_ref();
        if prefix.is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{prefix}/{rel}"))
        }
    }

    fn relative(&self, location: &Path) -> Option<String> {
        let parts: Vec<String> =
            location.prefix_match(&self.inner.prefix)?.map(|p| p.as_ref().to_string()).collect();
        Some(parts.join("/"))
    }

    pub(crate) fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), CheckpointError> {
        let location = self.location(rel);
        let payload = PutPayload::from(bytes);
        let store = &self.inner.store;
        self.block_on(store.put_opts(&location, payload, PutOptions::default()))?
            .map(|_| ())
            .map_err(|e| CheckpointError::from_store(rel, e))
    }

    pub(crate) fn get(&self, rel: &str) -> Result<Bytes, CheckpointError> {
        self.block_on(self.get_async(rel))?
    }

    async fn get_async(&self, rel: &str) -> Result<Bytes, CheckpointError> {
        let location = self.location(rel);
        let result = self
            .inner
            .store
            .get_opts(&location, GetOptions::default())
            .await
            .map_err(|e| CheckpointError::from_store(rel, e))?;
        result.bytes().await.map_err(|e| CheckpointError::from_store(rel, e))
    }

    /// Deletes the given relative paths; ones already gone are fine.
    pub(crate) fn delete_all(&self, paths: Vec<String>) -> Result<(), CheckpointError> {
        if paths.is_empty() {
            return Ok(());
        }
        let locations: Vec<object_store::Result<Path>> = paths.iter().map(|p| Ok(self.location(p))).collect();
        let store = &self.inner.store;
        let results: Vec<object_store::Result<Path>> =
            self.block_on(store.delete_stream(stream::iter(locations).boxed()).collect())?;
        for result in results {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(CheckpointError::io(self.to_string(), e)),
            }
        }
        Ok(())
    }

    /// Runs a future to completion on the calling thread.
    fn block_on<F>(&self, future: F) -> Result<F::Output, CheckpointError>
    where
        F: Future + Send,
        F::Output: Send,
    {
        match &self.inner.exec {
            Exec::Inline => Ok(futures::executor::block_on(future)),
            Exec::Tokio(cell) => {
                let runtime = cell
                    .get_or_init(|| {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map_err(|e| e.to_string())
                    })
                    .as_ref()
                    .map_err(|e| {
                        CheckpointError::io(self.to_string(), format!("starting the I/O runtime: {e}"))
                    })?;
                if tokio::runtime::Handle::try_current().is_ok() {
                    // Called from inside an async runtime, where blocking on another runtime
                    // is not allowed: block on a helper thread instead.
                    std::thread::scope(|s| match s.spawn(|| runtime.block_on(future)).join() {
                        Ok(output) => Ok(output),
                        Err(panic) => std::panic::resume_unwind(panic),
                    })
                } else {
                    Ok(runtime.block_on(future))
                }
            }
        }
    }
}

#[derive(Default)]
struct WriterState {
    entries: BTreeMap<BlobName, FileRef>,
    /// Blobs whose write has started and not finished.
    in_flight: BTreeSet<BlobName>,
    /// Files this writer wrote (for `abort`).
    written: Vec<String>,
    /// The first misuse seen by `reuse`, reported by `commit`.
    conflict: Option<CheckpointError>,
}

/// Writes the files of one checkpoint, then commits it by writing its manifest.
///
/// Blob writes may come from several threads at once (`write` takes `&self`). A checkpoint
/// that is never committed is invisible to readers; [`CheckpointStore::retain_last`] removes
/// its files once a newer checkpoint is complete.
pub struct CheckpointWriter {
    store: CheckpointStore,
    id: u64,
    kind: CheckpointKind,
    state: Mutex<WriterState>,
}

impl fmt::Debug for CheckpointWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointWriter")
            .field("store", &self.store)
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl CheckpointWriter {
    /// The id of the checkpoint being written.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Checkpoint or savepoint.
    pub fn kind(&self) -> CheckpointKind {
        self.kind
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WriterState> {
        // No code panics while holding the lock, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes blob `name` as `chk-<id>/<sanitized operator>/<part>.bin` in the framed,
    /// checksummed blob format, durably, and records it for the manifest. Each name may be
    /// written once per checkpoint; a failed write may be retried.
    pub fn write(&self, name: BlobName, bytes: &[u8]) -> Result<FileRef, CheckpointError> {
        {
            let mut state = self.state();
            if state.entries.contains_key(&name) || !state.in_flight.insert(name.clone()) {
                return Err(CheckpointError::Duplicate { id: self.id, name });
            }
        }
        let path = blob_path(self.id, &name);
        let (framed, checksum) = format::encode(format::BLOB_MAGIC, bytes);
        let len = framed.len() as u64;
        let result = self.store.put(&path, framed);
        let mut state = self.state();
        state.in_flight.remove(&name);
        result?;
        let file = FileRef { path: path.clone(), len, checksum };
        state.written.push(path);
        state.entries.insert(name, file.clone());
        Ok(file)
    }

    /// Records that blob `name` is unchanged since an earlier checkpoint, whose manifest
    /// recorded it as `file` (incremental checkpoints). No data is written; the new manifest
    /// points at the earlier file, which retention then keeps. `file` must come from a
    /// manifest of this same store that is still retained (normally the latest complete one).
    /// Giving a name that is also written, or reused twice, makes `commit` fail.
    pub fn reuse(&self, name: BlobName, file: FileRef) {
        let mut state = self.state();
        if state.entries.contains_key(&name) || state.in_flight.contains(&name) {
            if state.conflict.is_none() {
                state.conflict = Some(CheckpointError::Duplicate { id: self.id, name });
            }
            return;
        }
        state.entries.insert(name, file);
    }

    /// Commits the checkpoint: writes its manifest, last and durably. Only once this returns
    /// `Ok` does the checkpoint exist for [`CheckpointStore::latest_complete`].
    pub fn commit(
        self,
        key_groups: u32,
        workers: u32,
        metadata: BTreeMap<String, String>,
    ) -> Result<Manifest, CheckpointError> {
        let state = self.state.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(conflict) = state.conflict {
            return Err(conflict);
        }
        if let Some(name) = state.in_flight.iter().next() {
            return Err(CheckpointError::InvalidArgument(format!(
                "checkpoint {}: the write of blob {name} did not finish",
                self.id
            )));
        }
        let created_at_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let manifest = Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            id: self.id,
            kind: self.kind,
            created_at_ms,
            key_groups,
            workers,
            entries: state.entries,
            metadata,
        };
        self.store.put(&manifest_path(self.id), manifest.encode()?)?;
        tracing::debug!(
            checkpoint = self.id,
            kind = ?self.kind,
            files = manifest.entries.len(),
            written = state.written.len(),
            "checkpoint committed"
        );
        Ok(manifest)
    }

    /// Gives the checkpoint up and deletes the files this writer wrote (reused files are not
    /// touched). Nothing is committed.
    pub fn abort(self) -> Result<(), CheckpointError> {
        let state = self.state.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.store.delete_all(state.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_writer_are_thread_safe() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CheckpointStore>();
        assert_send_sync::<CheckpointWriter>();
    }

    #[test]
    fn manifest_file_name() {
        assert!(manifest_path(3).ends_with(crate::manifest::MANIFEST_FILE));
    }
}
