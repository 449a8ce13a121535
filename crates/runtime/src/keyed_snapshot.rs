//! Asynchronous snapshots of keyed state: the checkpointing side of one keyed operator
//! instance (a grouping or a stateful ParDo on one worker).
//!
//! At each epoch the operator stops processing records only to take a copy-on-write view
//! of the key groups changed since the last committed checkpoint
//! ([`KeyedStateStore::view`], time proportional to the number of groups, not keys) and to
//! point the new checkpoint at the committed files of the unchanged groups. A background
//! thread then encodes the view's groups and writes them; only once every blob is durable
//! does it acknowledge the epoch to the coordinator, so a checkpoint (and the exactly-once
//! sinks' publication that waits for it) never covers state that is not on disk.
//!
//! Memory is bounded by allowing one snapshot in progress per operator instance: when the
//! next epoch's snapshot is due while the previous one is still being written, the operator
//! waits for it (the wait counts in [`CheckpointStats::pause`](crate::CheckpointStats)).
//! When several epochs end at once (the operator was behind), only the newest is written:
//! the state is the same for all of them, and a checkpoint that one participant skips is
//! simply never completed, superseded by the next.

use crate::checkpoint::Coordinator;
use crate::state::{KeyedStateStore, StateView};
use millstream_checkpoint::{BlobName, StatePart};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// At most one checkpoint write of a participant, running on its own thread: what a
/// snapshot hands off once it has taken its consistent view.
#[derive(Default)]
pub(crate) struct Background {
    in_flight: Option<(u64, JoinHandle<Result<(), String>>)>,
}

impl Background {
    /// Runs `write` (the writes of epoch `epoch`, then its acknowledgement) on a new
    /// thread. The previous write must have been collected with [`finish`](Self::finish).
    pub(crate) fn spawn(
        &mut self,
        epoch: u64,
        write: impl FnOnce() -> Result<(), String> + Send + 'static,
    ) -> Result<(), String> {
        // A fixed thread name: operator ids are the user's and may hold any character.
        let thread = std::thread::Builder::new()
            .name("millstream-snapshot".into())
            .spawn(write)
            .map_err(|e| format!("cannot start a snapshot thread: {e}"))?;
        self.in_flight = Some((epoch, thread));
        Ok(())
    }

    /// Waits for the write in progress (`wait`), or collects it if it is done; its error,
    /// if it failed.
    pub(crate) fn finish(&mut self, wait: bool) -> Result<(), String> {
        let done = self.in_flight.as_ref().is_some_and(|(_, t)| wait || t.is_finished());
        if !done {
            return Ok(());
        }
        let Some((epoch, thread)) = self.in_flight.take() else { return Ok(()) };
        match thread.join() {
            Ok(result) => result.map_err(|e| format!("checkpoint {epoch}: {e}")),
            Err(_) => Err(format!("checkpoint {epoch}: the snapshot thread panicked")),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // A write still in progress must not outlive its run: a job started next in this
        // process could see its files appear.
        if let Err(message) = self.finish(true) {
            tracing::warn!(%message, "checkpoint write failed");
        }
    }
}

/// The checkpointing side of one keyed operator instance: which key groups changed
/// since the last committed checkpoint, and writing them (reusing the committed files of
/// the others) at each epoch, in the background.
pub(crate) struct KeyedCheckpointing {
    coordinator: Arc<Coordinator>,
    operator: String,
    worker: usize,
    workers: usize,
    key_groups: u32,
    /// Key groups changed at each snapshot not yet covered by a committed checkpoint.
    history: BTreeMap<u64, BTreeSet<u32>>,
    /// The last epoch snapshotted.
    last_epoch: u64,
    background: Background,
}

impl KeyedCheckpointing {
    pub(crate) fn new(
        coordinator: Arc<Coordinator>,
        operator: &str,
        worker: usize,
        workers: usize,
        key_groups: u32,
    ) -> Self {
        let last_epoch = coordinator.first_epoch() - 1;
        KeyedCheckpointing {
            coordinator,
            operator: operator.to_owned(),
            worker,
            workers,
            key_groups,
            history: BTreeMap::new(),
            last_epoch,
            background: Background::default(),
        }
    }

    fn owned(&self, group: u32) -> bool {
        crate::key::worker_for_key_group(group, self.key_groups, self.workers) == self.worker
    }

    fn blob(&self, group: u32) -> BlobName {
        BlobName { operator: self.operator.clone(), part: StatePart::KeyGroup(group) }
    }

    /// The last epoch of a finished input (see [`Coordinator::final_epoch`]).
    pub(crate) fn final_epoch(&self) -> u64 {
        self.coordinator.final_epoch()
    }

    /// Loads this worker's key groups from the restored checkpoint, if any.
    pub(crate) fn restore<K, S>(&self, store: &mut KeyedStateStore<K, S>) -> Result<usize, String>
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned,
        S: Clone + Serialize + DeserializeOwned,
    {
        let mut restored = 0;
        for group in self.coordinator.restored_key_groups(&self.operator) {
            if !self.owned(group) {
                continue;
            }
            if let Some(bytes) = self.coordinator.restored_blob(&self.blob(group))? {
                store.restore_group(group, &bytes).map_err(|e| e.to_string())?;
                restored += 1;
            }
        }
        Ok(restored)
    }

    /// Once the input is complete: snapshots the job's final epoch (or the newest this
    /// operator processed, if later) with the state that is left, and waits until it is
    /// written.
    pub(crate) fn snapshot_at_end<K, S>(
        &mut self,
        last_seen_epoch: u64,
        store: &mut KeyedStateStore<K, S>,
    ) -> Result<(), String>
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
        S: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let last = self.final_epoch().max(last_seen_epoch);
        self.snapshot_through(last, store)?;
        self.background.finish(true)
    }

    /// Snapshots the state as of epoch `upto` unless that epoch is snapshotted already,
    /// and reports the failure of the snapshot in progress, if any (called at every
    /// activation).
    pub(crate) fn snapshot_through<K, S>(
        &mut self,
        upto: u64,
        store: &mut KeyedStateStore<K, S>,
    ) -> Result<(), String>
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
        S: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.background.finish(false)?;
        if self.last_epoch < upto {
            self.snapshot(upto, store)?;
        }
        Ok(())
    }

    /// Snapshots epoch `epoch`: the store holds exactly the effect of every record of
    /// epochs up to `epoch`. Epochs between the last snapshot and this one are not written:
    /// no record of them was processed since, so their state is this one.
    fn snapshot<K, S>(&mut self, epoch: u64, store: &mut KeyedStateStore<K, S>) -> Result<(), String>
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
        S: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let paused = Instant::now();
        // One snapshot in progress at a time: wait for the previous one.
        self.background.finish(true)?;
        let waited = paused.elapsed();
        self.last_epoch = epoch;
        self.history.insert(epoch, store.take_changed_groups().into_iter().collect());
        let committed = self.coordinator.committed_epoch();
        self.history = self.history.split_off(&(committed + 1));
        let changed: BTreeSet<u32> = self.history.values().flatten().copied().collect();
        let owned: Vec<u32> = (0..self.key_groups).filter(|g| self.owned(*g)).collect();
        let (write, keep): (Vec<u32>, Vec<u32>) = owned.into_iter().partition(|g| changed.contains(g));
        let names: Vec<BlobName> = keep.iter().map(|g| self.blob(*g)).collect();
        let files = self.coordinator.committed_files(&names);
        for (name, file) in names.into_iter().zip(files) {
            if let Some(file) = file {
                self.coordinator.reuse(epoch, name, file);
            }
        }
        let view = store.view(write);
        let pause = paused.elapsed();
        self.coordinator.report_pause(epoch, pause);
        tracing::debug!(
            operator = %self.operator,
            worker = self.worker,
            epoch,
            keys = store.len(),
            changed_groups = changed.len(),
            view_keys = view.len(),
            shard_copies = store.shard_copies(),
            waited_us = waited.as_micros() as u64,
            pause_us = pause.as_micros() as u64,
            "snapshot view taken"
        );
        let writer = Writer {
            coordinator: self.coordinator.clone(),
            operator: self.operator.clone(),
            worker: self.worker,
            epoch,
        };
        self.background.spawn(epoch, move || writer.write(view))
    }
}

/// The background half of a snapshot: encodes the view's groups, writes them and then
/// acknowledges the epoch.
struct Writer {
    coordinator: Arc<Coordinator>,
    operator: String,
    worker: usize,
    epoch: u64,
}

impl Writer {
    fn write<K: Serialize, S: Serialize>(self, view: StateView<K, S>) -> Result<(), String> {
        let started = Instant::now();
        let (mut encoding, mut bytes_written, mut groups) = (Duration::ZERO, 0, 0);
        let mut encoded = view.encode();
        loop {
            let encode_started = Instant::now();
            let Some(next) = encoded.next() else { break };
            let (group, bytes) = next.map_err(|e| e.to_string())?;
            encoding += encode_started.elapsed();
            bytes_written += bytes.len();
            groups += 1;
            let name = BlobName { operator: self.operator.clone(), part: StatePart::KeyGroup(group) };
            self.coordinator.write(self.epoch, name, &bytes)?;
        }
        tracing::debug!(
            operator = %self.operator,
            worker = self.worker,
            epoch = self.epoch,
            groups,
            bytes_written,
            encode_ms = encoding.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "snapshot written"
        );
        self.coordinator.ack(self.epoch);
        Ok(())
    }
}
