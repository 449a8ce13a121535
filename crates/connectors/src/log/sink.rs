//! [`LogExactlyOnceSink`]: writes a topic of the embedded log exactly once per checkpoint.

use super::{open_existing, partition_count};
use millstream_log::{
    partition_for_key, CommitOutcome, Log, LogError, PartitionWriter, Record, COMMITTED_FILE,
};
use millstream_model::{Timestamp, Window, WindowedValue};
use millstream_runtime::{TransactionalSink, TransactionalWriter};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Header naming the sink (its id) that wrote a record.
pub const HEADER_SINK: &str = "millstream-sink";
/// Header with the checkpoint epoch whose output a record is (decimal).
pub const HEADER_EPOCH: &str = "millstream-epoch";
/// Header with the id of the run that wrote a record (unique per job attempt and process).
pub const HEADER_RUN: &str = "millstream-run";
/// Header with the checkpoint epoch the writing run resumed after (decimal; `0` for a run
/// that started afresh).
pub const HEADER_RESTORED: &str = "millstream-restored";
/// The longest sink id (staged batch ids add the worker, epoch, partition and run to it
/// and must fit [`millstream_log::MAX_STAGED_ID_LEN`]).
pub const MAX_SINK_ID_LEN: usize = 100;

/// Turns an element into a record.
type EncodeFn<T> = dyn Fn(&WindowedValue<T>) -> Result<Record, String> + Send + Sync;

/// Writes a topic of the embedded log ([`millstream_log`]) exactly once, with checkpoints.
///
/// Each element becomes one [`Record`] (by the encode function); a record with a key goes
/// to the partition the key hashes to ([`millstream_log::partition_for_key`], Kafka's
/// murmur2 partitioner), a record without one to the partitions in turn.
///
/// **How.** Every worker keeps the records of the current epoch in memory, per target
/// partition. When the epoch ends (pre-commit) it writes them as one staged batch per
/// partition, id `<sink id>-w<worker>-e<epoch>-p<partition>-<run>`: durable (fsynced) but
/// invisible to readers; the checkpoint stores the list of ids. When the checkpoint
/// covering the epoch is complete, the worker commits each id: the log appends the batch
/// and records the id atomically, so a commit retried after a crash (the same handles are
/// committed again after a restart) appends nothing ([`CommitOutcome::AlreadyCommitted`]).
/// After a restore, before writing, every worker aborts the staged batches of this sink
/// left by the failed attempt's workers it takes over (old worker `o` with
/// `o % workers == worker`) that the restored checkpoint does not list. Without
/// checkpointing, everything is committed when the input ends.
///
/// **Guarantee.** Exactly once: as long as a job resumes from its newest complete
/// checkpoint (a restart after any failure, at any moment, on any number of workers), the
/// topic holds each output record exactly once, appended when the checkpoint covering it
/// completed (so output becomes visible with checkpoint latency).
///
/// **Limitation.** A log is append-only: committed records cannot be withdrawn. When a job
/// resumes from an *older* point than output already published — its newest checkpoint is
/// damaged and an older one is used, or it starts from a savepoint older than what a run
/// after that savepoint already published — the records published for epochs after the
/// restored one stay in the topic and the replay appends their recomputation again
/// (at-least-once for those epochs). The sink detects this when it recovers (from the
/// partitions' `committed.json`, which lists the last
/// [`COMMITTED_IDS_KEPT`](millstream_log::COMMITTED_IDS_KEPT) committed ids) and logs a
/// warning naming the epochs and offsets, or fails the job with
/// [`fail_on_unwithdrawable_output`](Self::fail_on_unwithdrawable_output). Readers can
/// detect the duplicates through the headers every record carries: [`HEADER_SINK`] (the
/// sink id), [`HEADER_EPOCH`] (the epoch), [`HEADER_RUN`] (the writing run) and
/// [`HEADER_RESTORED`] (the epoch that run resumed after). When records of a sink with a
/// new run id appear whose restored epoch `r` is below epochs of that sink already read,
/// the earlier runs' records with epochs above `r` are recomputed by the new run: a reader
/// that buffers per epoch drops them.
///
/// **Sharing.** The log allows one writer per partition (a lock file). All workers of a
/// job run in one process and share one [`PartitionWriter`] per partition, opened when
/// first needed and held in a process-wide registry (keyed by log directory, topic and
/// partition) for as long as a writer of any sink uses it; so several sinks of one process
/// may write the same topic. Another process writing the topic at the same time (a
/// `millstream produce`, another job) gets [`LogError::PartitionLocked`], and so does this
/// sink if the other process came first. The sink id must be unique among the jobs
/// writing a topic (like Kafka's transactional id): recovery aborts staged batches by it.
///
/// Errors name the log directory, the topic and, for records, the partition.
pub struct LogExactlyOnceSink<T> {
    dir: PathBuf,
    topic: String,
    id: String,
    encode: Arc<EncodeFn<T>>,
    strict: bool,
    /// The run id of this process's current run, and the workers opened in it (a worker
    /// opened again means a new run of the same sink).
    run: Mutex<(String, HashSet<usize>)>,
}

impl<T> std::fmt::Debug for LogExactlyOnceSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogExactlyOnceSink")
            .field("dir", &self.dir)
            .field("topic", &self.topic)
            .field("id", &self.id)
            .field("strict", &self.strict)
            .finish_non_exhaustive()
    }
}

impl<T: serde::Serialize + 'static> LogExactlyOnceSink<T> {
    /// Writes each element as a JSON value, with the key `key` computes (as UTF-8; `None`:
    /// no key) and the element's event timestamp (the current time for elements without
    /// one, such as those of the global window).
    pub fn json(
        dir: impl AsRef<Path>,
        topic: impl Into<String>,
        id: impl Into<String>,
        key: impl Fn(&T) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        LogExactlyOnceSink::new(dir, topic, id, move |v: &WindowedValue<T>| {
            let value = serde_json::to_vec(&v.value).map_err(|e| format!("cannot encode JSON: {e}"))?;
            let mut record = Record::new(value).with_timestamp(log_record_timestamp(v.timestamp));
            if let Some(k) = key(&v.value) {
                record = record.with_key(k);
            }
            Ok(record)
        })
    }
}

/// The log timestamp (milliseconds since the Unix epoch) to give a record made from an
/// element with event timestamp `event_time`: the same milliseconds, or the current time
/// when the element has no real event time.
///
/// Elements of the global window (read from a source without a timestamp function, or
/// combined over all time) carry the start of time ([`Timestamp::MIN`]) or the end of the
/// global window ([`Window::GLOBAL_MAX_TIMESTAMP`]). Neither is a time a log record should
/// have: time-based retention would delete a record stamped at the start of time at once
/// and keep one stamped near the end of time forever. [`LogExactlyOnceSink::json`] uses
/// this function; use it too in the encode function of [`LogExactlyOnceSink::new`]:
///
/// ```
/// use millstream_connectors::log::{log_record_timestamp, LogExactlyOnceSink};
/// use millstream_log::Record;
/// use millstream_model::{Timestamp, WindowedValue};
///
/// let sink = LogExactlyOnceSink::new("millstream-data/log", "totals", "totals-job", |v: &WindowedValue<(String, i64)>| {
///     let (user, total) = &v.value;
///     Ok(Record::new(format!("{user} {total}"))
///         .with_key(user.clone())
///         .with_timestamp(log_record_timestamp(v.timestamp)))
/// });
/// # let _ = sink;
/// assert_eq!(log_record_timestamp(Timestamp::from_millis(1_700_000_000_000)), 1_700_000_000_000);
/// assert!(log_record_timestamp(Timestamp::MIN) > 1_700_000_000_000); // now
/// ```
pub fn log_record_timestamp(event_time: Timestamp) -> i64 {
    let ts = event_time;
    if ts <= Timestamp::MIN || ts >= Window::GLOBAL_MAX_TIMESTAMP {
        millstream_log::now_ms()
    } else {
        ts.millis()
    }
}

impl<T: 'static> LogExactlyOnceSink<T> {
    /// Writes `topic` of the log in `dir` (both must exist), as sink `id` (1 to
    /// [`MAX_SINK_ID_LEN`] characters of `[A-Za-z0-9._-]`, not starting with a dot, unique
    /// among the jobs writing the topic), encoding each element with `encode` (give the
    /// record [`log_record_timestamp`]`(v.timestamp)` unless you have a better time: a
    /// [`Record::new`] is stamped with the current time). An `Err`
    /// from `encode` fails the job. The headers described on the type are added to every
    /// record.
    pub fn new(
        dir: impl AsRef<Path>,
        topic: impl Into<String>,
        id: impl Into<String>,
        encode: impl Fn(&WindowedValue<T>) -> Result<Record, String> + Send + Sync + 'static,
    ) -> Self {
        LogExactlyOnceSink {
            dir: dir.as_ref().to_path_buf(),
            topic: topic.into(),
            id: id.into(),
            encode: Arc::new(encode),
            strict: false,
            run: Mutex::new((new_run_id(), HashSet::new())),
        }
    }

    /// After a restore, fail the job (instead of logging a warning) when the topic already
    /// holds output of this sink for epochs after the restored checkpoint, which the replay
    /// would append a second time (see the limitation on the type).
    pub fn fail_on_unwithdrawable_output(mut self) -> Self {
        self.strict = true;
        self
    }

    fn where_(&self) -> String {
        format!("log {} topic \"{}\" (sink {})", self.dir.display(), self.topic, self.id)
    }

    fn validate_id(&self) -> Result<(), String> {
        let id = &self.id;
        let bad = |reason: &str| Err(format!("invalid log sink id {id:?}: {reason}"));
        if id.is_empty() {
            return bad("it is empty");
        }
        if id.len() > MAX_SINK_ID_LEN {
            return bad(&format!("it is {} characters long; the maximum is {MAX_SINK_ID_LEN}", id.len()));
        }
        if id.starts_with('.') {
            return bad("it starts with a dot");
        }
        if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
            return bad(&format!("{c:?} is not one of [A-Za-z0-9._-]"));
        }
        Ok(())
    }

    /// The run id for worker `worker` opening now.
    fn run_for(&self, worker: usize) -> String {
        let mut run = self.run.lock().unwrap_or_else(|e| e.into_inner());
        if !run.1.insert(worker) {
            *run = (new_run_id(), HashSet::from([worker]));
        }
        run.0.clone()
    }
}

/// A run id: time, process and a counter, as `r<micros>.<pid>.<n>` in hex.
fn new_run_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    format!("r{micros:x}.{:x}.{n:x}", std::process::id())
}

/// A staged batch id's parts.
#[derive(Debug, PartialEq, Eq)]
struct StagedId<'a> {
    sink: &'a str,
    worker: usize,
    epoch: u64,
    partition: u32,
    run: &'a str,
}

impl StagedId<'_> {
    fn format(sink: &str, worker: usize, epoch: u64, partition: u32, run: &str) -> String {
        format!("{sink}-w{worker}-e{epoch}-p{partition}-{run}")
    }

    /// Parses `<sink>-w<worker>-e<epoch>-p<partition>-<run>` from the right (sink ids may
    /// contain dashes; run ids do not).
    fn parse(id: &str) -> Option<StagedId<'_>> {
        let mut parts = id.rsplitn(5, '-');
        let run = parts.next()?;
        let partition = parts.next()?.strip_prefix('p')?.parse().ok()?;
        let epoch = parts.next()?.strip_prefix('e')?.parse().ok()?;
        let worker = parts.next()?.strip_prefix('w')?.parse().ok()?;
        let sink = parts.next()?;
        run.starts_with('r').then_some(StagedId { sink, worker, epoch, partition, run })
    }
}

/// What a pre-commit stored in the checkpoint: the staged batches of one worker's epoch.
#[derive(Debug, Serialize, Deserialize)]
struct Handle {
    epoch: u64,
    /// (partition, staged batch id).
    staged: Vec<(u32, String)>,
}

type WriterKey = (PathBuf, String, u32);
type SharedWriter = Arc<Mutex<PartitionWriter>>;

/// The partition writers open in this process, shared by every sink writing them.
fn registry() -> &'static Mutex<HashMap<WriterKey, Weak<Mutex<PartitionWriter>>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<WriterKey, Weak<Mutex<PartitionWriter>>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The process's writer of a partition, opened if no one holds it.
fn shared_writer(log: &Log, root: &Path, topic: &str, partition: u32) -> Result<SharedWriter, LogError> {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    map.retain(|_, w| w.strong_count() > 0);
    let key = (root.to_path_buf(), topic.to_string(), partition);
    if let Some(w) = map.get(&key).and_then(Weak::upgrade) {
        return Ok(w);
    }
    let writer = Arc::new(Mutex::new(log.writer(topic, partition)?));
    map.insert(key, Arc::downgrade(&writer));
    Ok(writer)
}

impl<T: Send + Sync + 'static> TransactionalSink<T> for LogExactlyOnceSink<T> {
    fn open(&self, worker: usize, workers: usize) -> Result<Box<dyn TransactionalWriter<T>>, String> {
        self.validate_id()?;
        let log = open_existing(&self.dir, &self.topic)?;
        let partitions = partition_count(&log, &self.topic)?;
        let root = std::fs::canonicalize(&self.dir)
            .map_err(|e| format!("log directory {}: {e}", self.dir.display()))?;
        Ok(Box::new(LogWriter {
            log,
            root,
            topic: self.topic.clone(),
            sink: self.id.clone(),
            where_: self.where_(),
            encode: self.encode.clone(),
            strict: self.strict,
            worker,
            workers,
            partitions,
            run: self.run_for(worker),
            restored: 0,
            writers: BTreeMap::new(),
            open: BTreeMap::new(),
            next_keyless: worker as u32 % partitions,
        }))
    }
}

/// A committed batch: its epoch and, unless it was empty, its first and last offsets.
type Published = (u64, Option<(u64, u64)>);

/// One worker's writer.
struct LogWriter<T> {
    log: Log,
    root: PathBuf,
    topic: String,
    sink: String,
    where_: String,
    encode: Arc<EncodeFn<T>>,
    strict: bool,
    worker: usize,
    workers: usize,
    partitions: u32,
    run: String,
    /// The epoch the run resumed after (0: a fresh start).
    restored: u64,
    /// The partition writers this worker uses (shared with the process's other writers).
    writers: BTreeMap<u32, SharedWriter>,
    /// The current epoch's records, per partition.
    open: BTreeMap<u32, Vec<Record>>,
    next_keyless: u32,
}

impl<T> LogWriter<T> {
    fn writer(&mut self, partition: u32) -> Result<SharedWriter, String> {
        if let Some(w) = self.writers.get(&partition) {
            return Ok(w.clone());
        }
        let w = shared_writer(&self.log, &self.root, &self.topic, partition)
            .map_err(|e| format!("{}: partition {partition}: {e}", self.where_))?;
        self.writers.insert(partition, w.clone());
        Ok(w)
    }

    fn fail(&self, partition: u32, e: LogError) -> String {
        format!("{}: partition {partition}: {e}", self.where_)
    }

    /// Committed batches of this sink, of the workers this one takes over, for epochs after
    /// `restored`, from the partition's `committed.json`: (epoch, base offset, last offset).
    fn published_after(&self, partition: u32, restored: u64) -> Result<Vec<Published>, String> {
        #[derive(Deserialize)]
        struct Offsets {
            base_offset: u64,
            last_offset: u64,
        }
        #[derive(Deserialize)]
        struct Entry {
            id: String,
            offsets: Option<Offsets>,
        }
        #[derive(Deserialize)]
        struct File {
            committed: Vec<Entry>,
        }
        let path = self
            .log
            .partition_dir(&self.topic, partition)
            .map_err(|e| self.fail(partition, e))?
            .join(COMMITTED_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("{}: {}: {e}", self.where_, path.display())),
        };
        let file: File = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: {}: cannot read committed ids: {e}", self.where_, path.display()))?;
        Ok(file
            .committed
            .iter()
            .filter_map(|entry| {
                let id = StagedId::parse(&entry.id)?;
                (id.sink == self.sink && id.worker % self.workers == self.worker && id.epoch > restored)
                    .then(|| (id.epoch, entry.offsets.as_ref().map(|o| (o.base_offset, o.last_offset))))
            })
            .collect())
    }
}

impl<T: 'static> TransactionalWriter<T> for LogWriter<T> {
    fn write(&mut self, batch: &[WindowedValue<T>]) -> Result<(), String> {
        for v in batch {
            let record =
                (self.encode)(v).map_err(|e| format!("{}: cannot encode record: {e}", self.where_))?;
            let partition = match &record.key {
                Some(key) => partition_for_key(key, self.partitions),
                None => {
                    let p = self.next_keyless;
                    self.next_keyless = (p + 1) % self.partitions;
                    p
                }
            };
            self.open.entry(partition).or_default().push(record);
        }
        Ok(())
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<Vec<u8>, String> {
        let mut staged = Vec::new();
        let (epoch_text, restored_text) = (epoch.to_string(), self.restored.to_string());
        for (partition, records) in std::mem::take(&mut self.open) {
            let id = StagedId::format(&self.sink, self.worker, epoch, partition, &self.run);
            let writer = self.writer(partition)?;
            let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
            let mut batch = w.begin_staged(&id).map_err(|e| self.fail(partition, e))?;
            batch.stage(records.into_iter().map(|r| {
                r.with_header(HEADER_SINK, self.sink.clone())
                    .with_header(HEADER_EPOCH, epoch_text.clone())
                    .with_header(HEADER_RUN, self.run.clone())
                    .with_header(HEADER_RESTORED, restored_text.clone())
            }));
            w.persist(&batch).map_err(|e| self.fail(partition, e))?;
            staged.push((partition, id));
        }
        bincode::serialize(&Handle { epoch, staged }).map_err(|e| e.to_string())
    }

    fn commit(&mut self, handles: &[Vec<u8>]) -> Result<(), String> {
        for bytes in handles {
            let handle: Handle = bincode::deserialize(bytes)
                .map_err(|e| format!("{}: bad transaction handle: {e}", self.where_))?;
            for (partition, id) in handle.staged {
                let writer = self.writer(partition)?;
                let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
                match w.commit(&id) {
                    Ok(CommitOutcome::Committed(_)) | Ok(CommitOutcome::AlreadyCommitted(_)) => {}
                    Err(e @ LogError::StagedNotFound { .. }) => {
                        return Err(format!(
                            "{}: partition {partition}: {e}: it is neither staged nor among the last {} ids \
                             committed to the partition, so whether its records were published cannot be told",
                            self.where_,
                            millstream_log::COMMITTED_IDS_KEPT
                        ))
                    }
                    Err(e) => return Err(self.fail(partition, e)),
                }
            }
        }
        Ok(())
    }

    fn recover(&mut self, pending: &[Vec<u8>], restored: u64) -> Result<(), String> {
        self.restored = restored;
        let mut keep: BTreeSet<(u32, String)> = BTreeSet::new();
        for bytes in pending {
            let handle: Handle = bincode::deserialize(bytes)
                .map_err(|e| format!("{}: bad transaction handle: {e}", self.where_))?;
            keep.extend(handle.staged);
        }
        let mut published = Vec::new();
        for partition in 0..self.partitions {
            let writer = self.writer(partition)?;
            {
                let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
                for id in w.list_staged().map_err(|e| self.fail(partition, e))? {
                    let Some(parsed) = StagedId::parse(&id) else { continue };
                    if parsed.sink != self.sink
                        || parsed.worker % self.workers != self.worker
                        || keep.contains(&(partition, id.clone()))
                    {
                        continue;
                    }
                    tracing::debug!("{}: partition {partition}: aborting staged batch {id}", self.where_);
                    w.abort(&id).map_err(|e| self.fail(partition, e))?;
                }
                // Read under the writer's lock: no commit rewrites the file meanwhile.
                for (epoch, offsets) in self.published_after(partition, restored)? {
                    published.push((partition, epoch, offsets));
                }
            }
        }
        if published.is_empty() {
            return Ok(());
        }
        let epochs: BTreeSet<u64> = published.iter().map(|(_, e, _)| *e).collect();
        let epochs: Vec<String> = epochs.iter().map(u64::to_string).collect();
        let where_published: Vec<String> = published
            .iter()
            .filter_map(|(p, e, o)| o.map(|(a, b)| format!("partition {p} offsets {a}..={b} (epoch {e})")))
            .collect();
        let message = format!(
            "{}: the job resumes after epoch {restored}, but output of epochs {} of this sink was \
             already published to the topic ({}); a log cannot withdraw records, so the replay appends \
             that output again (readers can tell the copies apart by the headers {HEADER_RUN} and \
             {HEADER_RESTORED})",
            self.where_,
            epochs.join(", "),
            if where_published.is_empty() { "no records".to_string() } else { where_published.join(", ") },
        );
        if self.strict {
            return Err(message);
        }
        tracing::warn!("{message}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_ids_round_trip_with_dashes_in_the_sink_id() {
        let id = StagedId::format("my-sink-w1", 3, 42, 7, "r1a.2b.0");
        assert_eq!(id, "my-sink-w1-w3-e42-p7-r1a.2b.0");
        assert_eq!(
            StagedId::parse(&id),
            Some(StagedId { sink: "my-sink-w1", worker: 3, epoch: 42, partition: 7, run: "r1a.2b.0" })
        );
        assert_eq!(StagedId::parse("other-batch"), None);
        assert_eq!(StagedId::parse("s-w1-e2-p3-x"), None);
    }

    #[test]
    fn the_longest_staged_id_fits_the_log_limit() {
        let sink = "s".repeat(MAX_SINK_ID_LEN);
        let run = format!("r{:x}.{:x}.{:x}", u64::MAX, u32::MAX, u64::MAX);
        // Topics have at most 100000 partitions.
        let id = StagedId::format(&sink, usize::MAX, u64::MAX, 99_999, &run);
        assert!(id.len() <= millstream_log::MAX_STAGED_ID_LEN, "{} > limit", id.len());
    }

    #[test]
    fn a_worker_opened_again_starts_a_new_run() {
        let sink = LogExactlyOnceSink::<u64>::new("/nonexistent", "t", "s", |_| Ok(Record::new("x")));
        let (a, b) = (sink.run_for(0), sink.run_for(1));
        assert_eq!(a, b);
        let c = sink.run_for(0);
        assert_ne!(a, c);
        assert_eq!(sink.run_for(1), c);
    }
}
