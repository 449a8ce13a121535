//! Consistent checkpoints: the coordinator that gathers every operator's snapshot for an
//! epoch and writes the checkpoint's manifest once all are in.
//!
//! Sources end an epoch every checkpoint interval (their frontier time's outer
//! coordinate), recording their partitions' positions at that cut. Every stateful
//! operator snapshots its changed key groups when its input frontier passes the epoch,
//! having processed exactly the records of that epoch and before any later one (records
//! of later epochs that arrive early wait). When every participant has acknowledged an
//! epoch, the coordinator commits the manifest: the checkpoint exists from then on.
//! Checkpoints never wait for event time: an epoch can end at any watermark.

use crate::savepoint::{
    import_savepoint, write_savepoint, SavepointQueue, REWIND_TO_EPOCH, STARTED_FROM_SAVEPOINT,
};
use millstream_checkpoint::{
    BlobName, CheckpointError, CheckpointKind, CheckpointStore, CheckpointWriter, FileRef, Manifest,
    StatePart,
};
use millstream_model::Duration;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How a job checkpoints and restores.
#[derive(Clone)]
pub struct CheckpointConfig {
    /// Where checkpoints go.
    pub store: CheckpointStore,
    /// How often sources end an epoch (default 5 s).
    pub interval: Duration,
    /// How many complete checkpoints to keep (default 3).
    pub retain: usize,
    /// Whether to resume from the newest complete checkpoint found in the store.
    pub restore_latest: bool,
    /// Start from this savepoint (a directory or store holding one) instead.
    pub savepoint: Option<CheckpointStore>,
    /// Whether state of operators the job no longer has may be dropped on restore
    /// (otherwise restoring it is an error).
    pub allow_non_restored_state: bool,
}

impl CheckpointConfig {
    /// Checkpoints to `store` every 5 seconds, keeping 3, resuming from the newest.
    pub fn new(store: CheckpointStore) -> Self {
        CheckpointConfig {
            store,
            interval: Duration::from_secs(5),
            retain: 3,
            restore_latest: true,
            savepoint: None,
            allow_non_restored_state: false,
        }
    }

    /// Sets the checkpoint interval.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets how many complete checkpoints are kept.
    pub fn retain(mut self, n: usize) -> Self {
        self.retain = n.max(1);
        self
    }

    /// Starts the job from the savepoint in `savepoint` (see
    /// [`SavepointHandle`](crate::SavepointHandle)) instead of from the newest checkpoint.
    /// The job may have changed (stateful steps keep their operator ids) and may run on
    /// another number of workers.
    pub fn restore_from_savepoint(mut self, savepoint: CheckpointStore) -> Self {
        self.savepoint = Some(savepoint);
        self
    }

    /// Allows starting from a checkpoint or savepoint that holds state of operators the
    /// job no longer has: that state is dropped (with a warning) instead of failing.
    pub fn allow_non_restored_state(mut self, allow: bool) -> Self {
        self.allow_non_restored_state = allow;
        self
    }
}

impl std::fmt::Debug for CheckpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointConfig")
            .field("interval", &self.interval)
            .field("retain", &self.retain)
            .finish()
    }
}

/// Participants that finished: the epoch each retired at, and their last blobs with the
/// epoch they were written in.
type Retired = (Vec<u64>, BTreeMap<BlobName, (u64, FileRef)>);

struct Pending {
    /// Shared so that blobs are written without holding the map's lock (workers write
    /// their blobs in parallel); taken out whole when the checkpoint commits.
    writer: Option<Arc<CheckpointWriter>>,
    acks: usize,
    /// When the first participant reported for this epoch (about when the cut was made).
    started: std::time::Instant,
    bytes_written: u64,
    files_written: usize,
    files_reused: usize,
    /// The longest time a participant stopped processing records for this epoch's snapshot.
    pause: std::time::Duration,
}

impl Pending {
    fn new(store: &CheckpointStore, epoch: u64) -> Self {
        Pending {
            writer: Some(Arc::new(store.begin(epoch, CheckpointKind::Checkpoint))),
            acks: 0,
            started: std::time::Instant::now(),
            bytes_written: 0,
            files_written: 0,
            files_reused: 0,
            pause: std::time::Duration::ZERO,
        }
    }
}

/// What one completed checkpoint cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointStats {
    /// The checkpoint's id (its epoch).
    pub id: u64,
    /// From the first snapshot reported for its epoch to its manifest being durable.
    pub duration: std::time::Duration,
    /// Bytes of state written for it (changed key groups, positions, sink transactions).
    pub bytes_written: u64,
    /// Files written for it.
    pub files_written: usize,
    /// Files of earlier checkpoints it reuses (unchanged key groups).
    pub files_reused: usize,
    /// The size of all its state, reused files included.
    pub total_bytes: u64,
    /// The longest time any participant (a source ending the epoch, a keyed operator taking
    /// its snapshot view, a sink pre-committing) stopped processing records for it. Keyed
    /// state is encoded and written in the background, so this is the time to take a
    /// copy-on-write view, plus any wait for the operator's previous snapshot to finish.
    pub pause: std::time::Duration,
}

/// Shared by all workers of a job: collects snapshots per epoch and commits manifests.
pub(crate) struct Coordinator {
    config: CheckpointConfig,
    /// Participant instances (stateful operators and sources, times workers).
    expected: usize,
    key_groups: u32,
    workers: u32,
    pending: Mutex<BTreeMap<u64, Pending>>,
    /// Participants that finished: they count as acknowledging every later epoch, with
    /// their last blobs carried into every later manifest.
    retired: Mutex<Retired>,
    final_epoch: AtomicU64,
    /// The newest committed manifest (restored or written by this run).
    committed: Mutex<Option<Arc<Manifest>>>,
    committed_epoch: AtomicU64,
    /// The checkpoint this run started from.
    pub(crate) restored: Option<Arc<Manifest>>,
    /// Savepoint requests of the runner.
    savepoints: Arc<SavepointQueue>,
    /// What each completed checkpoint cost.
    stats: Mutex<Vec<CheckpointStats>>,
    /// The greatest epoch any source has started.
    highest_started: AtomicU64,
    /// Sources end every epoch up to this one at once (for a savepoint).
    force_through: AtomicU64,
    /// Set to halt the job (stop with savepoint).
    halt: Arc<AtomicBool>,
    /// The first epoch of this run (see [`Coordinator::first_epoch`]).
    first_epoch: u64,
}

/// Epoch 0 is "nothing committed"; checkpoint ids start at 1.
pub(crate) const NO_EPOCH: u64 = 0;

impl Coordinator {
    pub(crate) fn new(
        config: CheckpointConfig,
        expected: usize,
        key_groups: u32,
        workers: u32,
        savepoints: Arc<SavepointQueue>,
        halt: Arc<AtomicBool>,
    ) -> Result<Self, String> {
        if let Some(savepoint) = &config.savepoint {
            import_savepoint(&config.store, savepoint)?;
        }
        let restored = if config.restore_latest || config.savepoint.is_some() {
            config.store.latest_complete().map_err(|e| format!("checkpoint store: {e}"))?.map(Arc::new)
        } else {
            None
        };
        let store = &config.store;
        if config.restore_latest || config.savepoint.is_some() {
            // Everything newer than the restored checkpoint was partial or damaged (and
            // reported just now): this run supersedes it. Marked before the run announces its
            // restore, so that a restart after that line never reports it again.
            store
                .supersede_newer_than(restored.as_ref().map(|m| m.id))
                .map_err(|e| format!("checkpoint store: {e}"))?;
        }
        // A new checkpoint never reuses an id: this run continues after the highest id in
        // the store, complete or not (a partial checkpoint's directory may hold files that
        // a write of the same id would mix with its own; and exactly-once sinks key their
        // transactions by epoch). Epochs in between are simply never used.
        let highest = store.highest_id().map_err(|e| format!("checkpoint store: {e}"))?.unwrap_or(NO_EPOCH);
        let epoch = restored.as_ref().map_or(NO_EPOCH, |m| m.id);
        let first_epoch = highest.max(epoch) + 1;
        if let Some(m) = &restored {
            tracing::info!(checkpoint = m.id, first_epoch, "restoring from checkpoint");
        }
        Ok(Coordinator {
            config,
            expected,
            key_groups,
            workers,
            pending: Mutex::new(BTreeMap::new()),
            retired: Mutex::new((Vec::new(), BTreeMap::new())),
            final_epoch: AtomicU64::new(NO_EPOCH),
            committed: Mutex::new(restored.clone()),
            committed_epoch: AtomicU64::new(epoch),
            restored,
            savepoints,
            stats: Mutex::new(Vec::new()),
            highest_started: AtomicU64::new(first_epoch),
            first_epoch,
            force_through: AtomicU64::new(NO_EPOCH),
            halt,
        })
    }

    /// A source started epoch `epoch`.
    pub(crate) fn epoch_started(&self, epoch: u64) {
        self.highest_started.fetch_max(epoch, Ordering::SeqCst);
    }

    /// Sources end every epoch up to the returned one at once: a savepoint was requested
    /// while it was in progress.
    pub(crate) fn forced_through(&self) -> u64 {
        if self.savepoints.new.swap(false, Ordering::SeqCst) {
            let started = self.highest_started.load(Ordering::SeqCst);
            let requests = self.savepoints.requests.lock().unwrap_or_else(|e| e.into_inner());
            for r in requests.iter() {
                let mut m = r.min_epoch.lock().unwrap_or_else(|e| e.into_inner());
                if m.is_none() {
                    *m = Some(started);
                    self.force_through.fetch_max(started, Ordering::SeqCst);
                    tracing::info!(epoch = started, stop = r.stop, "savepoint requested");
                }
            }
        }
        self.force_through.load(Ordering::SeqCst)
    }

    /// The epoch exactly-once sinks rewind to: the restored checkpoint's, or the
    /// savepoint's when the restored checkpoint is a savepoint copied in.
    pub(crate) fn rewind_epoch(&self) -> u64 {
        self.restored.as_ref().map_or(NO_EPOCH, |m| {
            m.metadata.get(REWIND_TO_EPOCH).and_then(|e| e.parse().ok()).unwrap_or(m.id)
        })
    }

    /// The checkpoint interval.
    pub(crate) fn interval(&self) -> Duration {
        self.config.interval
    }

    /// The first epoch of this run: after the restored checkpoint's and after every id in
    /// the store (partial checkpoints included).
    pub(crate) fn first_epoch(&self) -> u64 {
        self.first_epoch
    }

    /// The newest committed epoch (for sinks that publish on commit).
    pub(crate) fn committed_epoch(&self) -> u64 {
        self.committed_epoch.load(Ordering::SeqCst)
    }

    /// The committed files of `names`, to reuse when unchanged (one lock for all).
    pub(crate) fn committed_files(&self, names: &[BlobName]) -> Vec<Option<FileRef>> {
        let c = self.committed.lock().unwrap_or_else(|e| e.into_inner());
        names.iter().map(|name| c.as_ref().and_then(|m| m.entries.get(name).cloned())).collect()
    }

    /// Writes one blob of epoch `epoch`'s checkpoint.
    /// `Ok(None)` when a newer checkpoint already completed (this epoch was abandoned).
    pub(crate) fn write(&self, epoch: u64, name: BlobName, bytes: &[u8]) -> Result<Option<FileRef>, String> {
        let Some(writer) = self.writer(epoch) else { return Ok(None) };
        // Written (and fsynced) without the map's lock: workers write in parallel.
        let file = writer.write(name, bytes).map_err(|e| e.to_string())?;
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = p.get_mut(&epoch) {
            entry.bytes_written += file.len;
            entry.files_written += 1;
        }
        Ok(Some(file))
    }

    /// Points epoch `epoch`'s checkpoint at an unchanged blob of an earlier one.
    pub(crate) fn reuse(&self, epoch: u64, name: BlobName, file: FileRef) {
        if let Some(writer) = self.writer(epoch) {
            writer.reuse(name, file);
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = p.get_mut(&epoch) {
                entry.files_reused += 1;
            }
        }
    }

    /// The writer of epoch `epoch`'s checkpoint; `None` when a newer checkpoint already
    /// completed (this epoch was abandoned, and writing into its directory again could
    /// only confuse).
    fn writer(&self, epoch: u64) -> Option<Arc<CheckpointWriter>> {
        if epoch <= self.committed_epoch() {
            return None;
        }
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.entry(epoch).or_insert_with(|| Pending::new(&self.config.store, epoch)).writer.clone()
    }

    /// Statistics of the checkpoints this run completed, oldest first.
    pub(crate) fn stats(&self) -> Vec<CheckpointStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A participant stopped processing records for `pause` to snapshot `epoch`.
    pub(crate) fn report_pause(&self, epoch: u64, pause: std::time::Duration) {
        if epoch <= self.committed_epoch() {
            return;
        }
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let entry = p.entry(epoch).or_insert_with(|| Pending::new(&self.config.store, epoch));
        entry.pause = entry.pause.max(pause);
    }

    /// One participant has written everything it has for `epoch`.
    pub(crate) fn ack(&self, epoch: u64) {
        if epoch <= self.committed_epoch() {
            return;
        }
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let entry = p.entry(epoch).or_insert_with(|| Pending::new(&self.config.store, epoch));
            entry.acks += 1;
            tracing::debug!(epoch, acks = entry.acks, expected = self.expected, "checkpoint acknowledged");
        }
        self.try_complete();
    }

    /// A participant finished for good at `epoch` (it acknowledged every earlier one);
    /// its last blobs stand for it in every checkpoint from `epoch` on.
    pub(crate) fn retire(&self, epoch: u64, last_blobs: Vec<(BlobName, FileRef)>) {
        {
            let mut r = self.retired.lock().unwrap_or_else(|e| e.into_inner());
            r.0.push(epoch);
            r.1.extend(last_blobs.into_iter().map(|(name, file)| (name, (epoch, file))));
        }
        self.final_epoch.fetch_max(epoch, Ordering::SeqCst);
        tracing::debug!(epoch, "participant finished");
        self.try_complete();
    }

    /// The last epoch of a finished input: the greatest epoch at which a source retired.
    pub(crate) fn final_epoch(&self) -> u64 {
        self.final_epoch.load(Ordering::SeqCst)
    }

    /// Commits the newest epoch every participant has acknowledged (or retired before).
    fn try_complete(&self) {
        let ready = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let retired: Vec<u64> = self.retired.lock().unwrap_or_else(|e| e.into_inner()).0.clone();
            let complete = p
                .iter()
                .rev()
                .find(|(epoch, entry)| {
                    entry.writer.is_some()
                        && entry.acks + retired.iter().filter(|r| **r <= **epoch).count() >= self.expected
                })
                .map(|(epoch, _)| *epoch);
            match complete {
                Some(epoch) => {
                    let taken = p.get_mut(&epoch).and_then(|e| {
                        let stats = CheckpointStats {
                            id: epoch,
                            duration: e.started.elapsed(),
                            bytes_written: e.bytes_written,
                            files_written: e.files_written,
                            files_reused: e.files_reused,
                            total_bytes: 0,
                            pause: e.pause,
                        };
                        e.writer.take().map(|w| (w, stats))
                    });
                    // Older epochs that never completed (a participant skipped them) are
                    // abandoned; retention removes their files.
                    let newer = p.split_off(&(epoch + 1));
                    *p = newer;
                    taken.map(|(w, stats)| (epoch, w, stats))
                }
                None => None,
            }
        };
        if let Some((epoch, writer, stats)) = ready {
            // Every participant wrote, then acknowledged: no write is in flight.
            match Arc::try_unwrap(writer) {
                Ok(writer) => self.commit(epoch, writer, stats),
                Err(_) => {
                    tracing::warn!(checkpoint = epoch, "a blob write is still in flight; not committing")
                }
            }
        }
    }

    fn commit(&self, epoch: u64, writer: CheckpointWriter, mut stats: CheckpointStats) {
        // Blobs of retired participants, written at their retirement epoch, stand for
        // them in every later checkpoint.
        let carried: Vec<(BlobName, FileRef)> = {
            let r = self.retired.lock().unwrap_or_else(|e| e.into_inner());
            r.1.iter().filter(|(_, (at, _))| *at < epoch).map(|(k, (_, f))| (k.clone(), f.clone())).collect()
        };
        for (name, file) in carried {
            writer.reuse(name, file);
        }
        let started = std::time::Instant::now();
        // A run started from a savepoint says so in each of its checkpoints.
        let lineage: BTreeMap<String, String> = self
            .restored
            .as_ref()
            .and_then(|m| m.metadata.get(STARTED_FROM_SAVEPOINT))
            .map(|s| BTreeMap::from([(STARTED_FROM_SAVEPOINT.to_string(), s.clone())]))
            .unwrap_or_default();
        match writer.commit(self.key_groups, self.workers, lineage) {
            Ok(manifest) => {
                stats.duration += started.elapsed();
                stats.total_bytes = manifest.total_bytes();
                self.stats.lock().unwrap_or_else(|e| e.into_inner()).push(stats);
                tracing::info!(
                    checkpoint = epoch,
                    files = manifest.entries.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "checkpoint complete"
                );
                {
                    // Never replace a newer committed manifest with an older one.
                    let mut c = self.committed.lock().unwrap_or_else(|e| e.into_inner());
                    if c.as_ref().is_none_or(|m| m.id < manifest.id) {
                        *c = Some(Arc::new(manifest));
                    }
                }
                self.committed_epoch.fetch_max(epoch, Ordering::SeqCst);
                self.write_savepoints(epoch);
                if let Err(e) = self.config.store.retain_last(self.config.retain) {
                    tracing::warn!(error = %e, "could not remove old checkpoints");
                }
            }
            Err(e) => tracing::warn!(checkpoint = epoch, error = %e, "checkpoint could not be committed"),
        }
    }

    /// Copies committed checkpoint `epoch` to the targets of the savepoint requests it
    /// serves; halts the job if one of them asked to stop.
    fn write_savepoints(&self, epoch: u64) {
        let served = self.savepoints.take_served(epoch);
        if served.is_empty() {
            return;
        }
        let manifest = self.committed.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(manifest) = manifest.filter(|m| m.id == epoch) else {
            for r in served {
                r.finish(Err(format!("checkpoint {epoch} is no longer the newest")));
            }
            return;
        };
        for r in served {
            let started = std::time::Instant::now();
            let result = write_savepoint(&self.config.store, &manifest, &r);
            match &result {
                Ok(sp) => {
                    tracing::info!(
                        checkpoint = epoch,
                        location = %sp.location,
                        bytes = sp.bytes,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        stop = r.stop,
                        "savepoint complete"
                    );
                    self.savepoints.completed.lock().unwrap_or_else(|e| e.into_inner()).push(sp.clone());
                    if r.stop {
                        self.halt.store(true, Ordering::SeqCst);
                    }
                }
                Err(message) => tracing::warn!(checkpoint = epoch, %message, "savepoint failed"),
            }
            r.finish(result);
        }
    }

    /// The restored manifest's blob for `name`, read and verified.
    pub(crate) fn restored_blob(&self, name: &BlobName) -> Result<Option<Vec<u8>>, String> {
        let Some(m) = &self.restored else { return Ok(None) };
        let Some(file) = m.entries.get(name) else { return Ok(None) };
        self.config.store.read(file).map(Some).map_err(|e| e.to_string())
    }

    /// Key groups of `operator` present in the restored checkpoint.
    pub(crate) fn restored_key_groups(&self, operator: &str) -> BTreeSet<u32> {
        let Some(m) = &self.restored else { return BTreeSet::new() };
        m.entries
            .keys()
            .filter(|n| n.operator == operator)
            .filter_map(|n| match n.part {
                StatePart::KeyGroup(g) => Some(g),
                _ => None,
            })
            .collect()
    }
}

/// A source partition's position as stored in a checkpoint.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub enum StoredPosition {
    /// Resume reading here (the reader's own encoding, from
    /// [`SourceReader::checkpoint_position`](crate::SourceReader::checkpoint_position)).
    At(Vec<u8>),
    /// The partition was exhausted.
    Finished,
}

/// Where a job restored from `manifest` resumes each partition of the source whose
/// operator id is `operator_id` (by default the read step's name), by partition index.
/// For inspecting a checkpoint or savepoint: how far did it get?
///
/// ```no_run
/// # use millstream_checkpoint::CheckpointStore;
/// # use millstream_runtime::checkpoint::{source_positions, StoredPosition};
/// let store = CheckpointStore::local("/var/lib/millstream/checkpoints").unwrap();
/// if let Some(manifest) = store.latest_complete().unwrap() {
///     for (partition, position) in source_positions(&store, &manifest, "Read events").unwrap() {
///         match position {
///             StoredPosition::At(bytes) => println!("partition {partition}: at {bytes:?}"),
///             StoredPosition::Finished => println!("partition {partition}: finished"),
///         }
///     }
/// }
/// ```
pub fn source_positions(
    store: &CheckpointStore,
    manifest: &Manifest,
    operator_id: &str,
) -> Result<BTreeMap<u32, StoredPosition>, CheckpointError> {
    let mut positions = BTreeMap::new();
    for (part, file) in manifest.operator_entries(operator_id) {
        let StatePart::SourcePartition(partition) = part else { continue };
        let bytes = store.read(file)?;
        let position = bincode::deserialize(&bytes).map_err(|e| CheckpointError::Corrupt {
            path: file.path.clone(),
            reason: format!("bad stored position of partition {partition}: {e}"),
        })?;
        positions.insert(*partition, position);
    }
    Ok(positions)
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("expected", &self.expected)
            .field("committed_epoch", &self.committed_epoch())
            .field("restored", &self.restored.as_ref().map(|m| m.id))
            .finish()
    }
}
