//! Connectors for Millstream's embedded log ([`millstream_log`]): [`LogSource`] reads a
//! topic, [`LogExactlyOnceSink`] writes one exactly once per checkpoint.
//!
//! * **Source.** Each partition of the topic is one Millstream source partition (worker
//!   `w` of `n` reads the partitions `p % n == w`). Records are decoded by one function
//!   per record; a record it rejects fails the job with an error naming the log
//!   directory, the topic, the partition, the offset and the reason (or goes to the
//!   dead-letter output under [`BadRecordPolicy::DeadLetter`](crate::BadRecordPolicy)).
//!   Event time is the
//!   record's timestamp (or what a function computes), and every partition has its own
//!   watermark. The next offset of every partition is kept in Millstream's checkpoints, so
//!   a restored job resumes exactly where its checkpoint was taken. The source follows the
//!   topic as it grows (streaming) or, [`bounded`](LogSource::bounded), reads up to the
//!   end offsets it found when the job started and finishes.
//! * **Sink.** Every worker stages the records of an epoch per target partition, persists
//!   them (durable, invisible to readers) when the epoch ends, and commits them to the
//!   partitions once the checkpoint covering the epoch is complete: the log's staged
//!   batches ([`millstream_log::StagedBatch`]) make each commit happen exactly once, even
//!   when it is retried after a crash. See [`LogExactlyOnceSink`] for the guarantee and
//!   its one limitation.
//!
//! ```
//! use millstream_connectors::log::{LogExactlyOnceSink, LogSource};
//! use millstream_log::{Log, Record, TopicConfig};
//! use millstream_model::combiners::Sum;
//! use millstream_runtime::{Pipeline, Runner};
//!
//! let dir = std::env::temp_dir().join(format!("millstream-doc-log-{}", std::process::id()));
//! let log = Log::open(&dir).unwrap();
//! log.create_topic("words", TopicConfig::new(2)).unwrap();
//! log.create_topic("counts", TopicConfig::new(2)).unwrap();
//! let mut producer = log.producer("words").unwrap();
//! for word in ["to", "be", "or", "not", "to", "be"] {
//!     producer.append(&[Record::new(word).with_key(word).with_timestamp(0)]).unwrap();
//! }
//! drop(producer);
//!
//! let p = Pipeline::new();
//! p.read("Words", LogSource::strings(&dir, "words").bounded())
//!     .map(|w| (w, 1u64))
//!     .combine_per_key(Sum)
//!     .write_exactly_once(
//!         "Counts",
//!         LogExactlyOnceSink::json(&dir, "counts", "word-counts", |(w, _): &(String, u64)| {
//!             Some(w.clone())
//!         }),
//!     );
//! Runner::new().workers(2).run(&p).unwrap();
//!
//! let mut counts = Vec::new();
//! for partition in 0..2 {
//!     for r in log.read("counts", partition, 0, Default::default()).unwrap() {
//!         counts.push(serde_json::from_slice::<(String, u64)>(&r.record.value).unwrap());
//!     }
//! }
//! counts.sort();
//! assert_eq!(counts, [("be".into(), 2), ("not".into(), 1), ("or".into(), 1), ("to".into(), 2)]);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

mod sink;
mod source;

pub use sink::{
    log_record_timestamp, LogExactlyOnceSink, HEADER_EPOCH, HEADER_RESTORED, HEADER_RUN, HEADER_SINK,
    MAX_SINK_ID_LEN,
};
pub use source::{LogSource, LogStartOffset};

use millstream_log::{Log, LogError};
use std::path::Path;

/// Opens the log in `dir` for a connector, without creating it: a directory that does not
/// exist is an error (a typo in a path should not silently create an empty log).
fn open_existing(dir: &Path, topic: &str) -> Result<Log, String> {
    if !dir.is_dir() {
        return Err(format!(
            "log directory {} does not exist (reading topic \"{topic}\"); create the topic first, \
             e.g. `millstream topic create {topic} --partitions N --log-dir {}`",
            dir.display(),
            dir.display()
        ));
    }
    Log::open(dir).map_err(|e| format!("cannot open log directory {}: {e}", dir.display()))
}

/// The number of partitions of `topic`, with a clear error when it does not exist.
fn partition_count(log: &Log, topic: &str) -> Result<u32, String> {
    match log.topic_config(topic) {
        Ok(config) => Ok(config.partitions),
        Err(LogError::TopicNotFound { .. }) => Err(format!(
            "topic \"{topic}\" does not exist in log directory {}; create it with \
             `millstream topic create {topic} --partitions N --log-dir {}`",
            log.root().display(),
            log.root().display()
        )),
        Err(e) => Err(format!("log directory {}: {e}", log.root().display())),
    }
}
