//! Millstream's embedded durable partitioned log: a Kafka-like topic store for one machine.
//!
//! A [`Log`] is a directory of topics; a topic has N partitions; a partition is an
//! append-only sequence of [`Record`]s (key, value, timestamp, headers) numbered by offset.
//! A [`Producer`] routes records to partitions by key (Kafka-compatible murmur2, see
//! [`partition_for_key`]); a [`PartitionWriter`] appends batches with the topic's
//! [`Durability`] policy; a [`Reader`] reads from any offset and follows a partition as it
//! grows, from any thread or process. Segments are deleted by size and age retention. A
//! torn write at the tail of a partition is detected and truncated when its writer opens;
//! no acknowledged record is lost. Staged batches ([`StagedBatch`]) give sinks an
//! exactly-once, two-phase-commit append.
//!
//! The API is synchronous, for timely worker threads without an async runtime.
//!
//! ```
//! use millstream_log::{Durability, Log, ReadLimit, Record, TopicConfig};
//!
//! # fn main() -> Result<(), millstream_log::LogError> {
//! let dir = tempfile::tempdir().expect("temp dir");
//! let log = Log::open(dir.path())?;
//! log.create_topic("clicks", TopicConfig::new(4).with_durability(Durability::EveryBatch))?;
//!
//! // Keyed records go to the partition their key hashes to.
//! let mut producer = log.producer("clicks")?;
//! let acks = producer.append(&[
//!     Record::new("home").with_key("user-1").with_timestamp(1_000),
//!     Record::new("cart").with_key("user-1").with_timestamp(1_005),
//! ])?;
//! assert_eq!(acks.len(), 1);
//! let partition = acks[0].partition;
//! assert_eq!((acks[0].ack.base_offset, acks[0].ack.last_offset), (0, 1));
//!
//! // Read from any offset; a reader keeps its position and follows the partition.
//! let mut reader = log.reader("clicks", partition, 0)?;
//! let records = reader.poll(ReadLimit::default())?;
//! assert_eq!(records[1].offset, 1);
//! assert_eq!(records[1].record.value, "cart");
//! assert!(reader.poll(ReadLimit::default())?.is_empty()); // caught up
//!
//! producer.append_to(partition, &[Record::new("checkout").with_key("user-1")])?;
//! assert_eq!(reader.poll(ReadLimit::default())?[0].offset, 2);
//! # Ok(())
//! # }
//! ```
//!
//! # Durability and acknowledgement
//!
//! An append is acknowledged when [`PartitionWriter::append_batch`] returns `Ok`. What that
//! promises depends on the topic's [`Durability`]: in every mode the batch is complete in the
//! segment file, visible to readers and survives a crash of the writing process; with
//! [`Durability::EveryBatch`] it was also fsynced and survives power loss;
//! with [`Durability::Interval`] it survives power loss once the next sync has happened.
//! Whatever the policy, a segment is fsynced when it is closed and the directory when a
//! segment is created, so power loss can only damage the active segment. Staged-batch
//! commits are always fsynced.
//!
//! # Concurrency
//!
//! One writer per partition: [`Log::writer`] takes an exclusive advisory lock
//! (`flock` via `std::fs::File::try_lock`) on the partition's `writer.lock`, so a second
//! writer, in the same or another process, gets [`LogError::PartitionLocked`]. Readers take
//! no lock; they ignore an incomplete batch at the tail of the newest segment (a write in
//! progress) and survive segments being deleted under them by retention.
//!
//! # Recovery
//!
//! When a writer opens a partition it
//!
//! 1. removes leftovers of interrupted operations (`*.tmp` files, index files without a
//!    segment);
//! 2. checks each closed segment cheaply: its index's last entry must point at a batch with
//!    that base offset, and the batches from there to the end of the file must have valid
//!    CRCs, contiguous offsets, and end exactly at the end of the file, at the offset the
//!    next segment starts at. Otherwise it rebuilds the index from a full scan; damage found
//!    by that scan (or a gap between segments) is [`LogError::Corrupt`], naming the file,
//!    byte position and offset. Checksums of other closed batches are checked when they are
//!    read;
//! 3. scans the active (newest) segment batch by batch, checking magic, version, CRC and
//!    offset continuity. At the first bad batch: if no intact batch follows it, it is a torn
//!    tail and the file is truncated there (one `tracing` warning naming the file, position
//!    and offset); if an intact batch follows, it is damage in the middle and opening fails
//!    with [`LogError::Corrupt`] rather than drop acknowledged records. The index of the
//!    active segment is rewritten from the scan;
//! 4. records staged batch ids committed by batches of the active segment (see
//!    [`StagedBatch`]) and deletes staging files of committed ids.
//!
//! When opening fails with [`LogError::Corrupt`], [`Log::repair_partition`] cuts the
//! partition back to its longest intact prefix (an explicit, logged loss of the records
//! from the first damage on).
//!
//! # On-disk format
//!
//! ```text
//! <log dir>/
//!   <topic>/                        topic names: 1-249 chars of [A-Za-z0-9._-], no leading dot
//!     topic.json                    configuration (written to topic.json.tmp, fsynced, renamed)
//!     <partition>/                  0, 1, ..., partitions-1
//!       writer.lock                 empty; exclusive flock held by the partition's writer
//!       00000000000000000000.log    segment: batches, named by its base offset (20 digits)
//!       00000000000000000000.index  sparse offset index of that segment
//!       00000000000000012345.log    next segment, base offset 12345 = previous segment's end
//!       00000000000000012345.index
//!       committed.json              staged batch ids committed to this partition
//!       staged/<id>.staged          persisted, uncommitted staged batches
//!   .creating-*/ .deleting-*/       topic directories being created or deleted
//! ```
//!
//! `topic.json`:
//!
//! ```json
//! {
//!   "format_version": 1,
//!   "partitions": 4,
//!   "retention_bytes": 1073741824,
//!   "retention_ms": null,
//!   "segment_bytes": 134217728,
//!   "index_interval_bytes": 4096,
//!   "durability": { "policy": "interval", "interval_ms": 100 }
//! }
//! ```
//!
//! `durability.policy` is `"every_batch"`, `"interval"` (with `interval_ms`) or `"none"`.
//!
//! **Segment files** (`.log`) are a sequence of record batches, nothing else. All integers
//! are little endian. A batch is a 36-byte header followed by its payload:
//!
//! ```text
//! offset  size  field
//! 0       4     magic: b"MSLB"
//! 4       1     format version: 1
//! 5       1     flags: bit 0 = the payload starts with a staged batch id; others 0
//! 6       2     reserved: 0
//! 8       8     base offset, u64: offset of the batch's first record
//! 16      8     max timestamp, i64: largest record timestamp in the batch (ms since epoch)
//! 24      4     record count, u32
//! 28      4     payload length in bytes, u32
//! 32      4     CRC32 (IEEE polynomial, as crc32fast computes it) of header bytes 0..32
//!               followed by the payload
//! 36      n     payload
//! ```
//!
//! Each batch's base offset is the previous batch's base offset plus its record count; the
//! first batch's is the segment's base offset (its file name). Record `i` of a batch has
//! offset `base offset + i`.
//!
//! The payload is, if flag bit 0 is set, `varint id length, id bytes` (UTF-8, the staged
//! batch id), then the records, each encoded as follows (varint = unsigned LEB128, at most 10
//! bytes):
//!
//! ```text
//! varint  max timestamp - record timestamp (i64 wrapping difference, as u64)
//! varint  key length + 1, or 0 for a record without key
//! bytes   key
//! varint  value length
//! bytes   value
//! varint  header count
//! per header:
//!   varint  name length, bytes name (UTF-8)
//!   varint  value length, bytes value
//! ```
//!
//! **Index files** (`.index`) are a sequence of 24-byte entries: `offset u64, position u64,
//! max timestamp i64`: a batch's base offset, its byte position in the segment file, and
//! the largest record timestamp of all batches of the segment up to and including it. An
//! entry is written for a batch at position `p` when `p >= q + index_interval_bytes`, `q`
//! being the previous entry's position (0 for the first). The index is derived data: not
//! fsynced per batch, checked against the batch header before use, rebuilt by the writer
//! when missing or inconsistent.
//!
//! **Staging files** (`staged/<id>.staged`) hold exactly one batch with base offset 0 and
//! flag bit 0 set (payload starting with the id). Committing rewrites the base offset and
//! CRC and appends the batch to the active segment; the id in its payload lets recovery
//! tell that the commit happened. **`committed.json`** is
//! `{"format_version":1,"committed":[{"id":"...","offsets":{"base_offset":0,"last_offset":9}},...]}`
//! (no `offsets` for an empty staged batch), oldest first, at most
//! [`COMMITTED_IDS_KEPT`] entries, replaced atomically (tmp, fsync, rename).
//!
//! # Retention
//!
//! Only whole closed segments are deleted, oldest first, never the active one: by size while
//! the partition's remaining bytes would still be at least `retention_bytes` (Kafka's rule);
//! by time while the segment's newest record timestamp is older than now minus
//! `retention_ms`. Retention runs on every segment roll and on
//! [`PartitionWriter::apply_retention`]. The partition's start offset is then the base
//! offset of its oldest segment.
//!
//! # Benchmark
//!
//! `cargo run --release -p millstream-log --example log_bench` measures append and read
//! throughput with 100-byte values (fsync per ~1 MiB batch, and no fsync) and prints a
//! table; `-- --help` lists its options.

#![warn(missing_docs)]

mod batch;
mod error;
mod fsio;
mod index;
mod log;
mod partitioner;
mod producer;
mod reader;
mod record;
mod repair;
mod segment;
mod staged;
mod topic;
mod writer;

pub use batch::{BATCH_MAGIC, BATCH_VERSION, HEADER_LEN as BATCH_HEADER_LEN, MAX_PAYLOAD_LEN};
pub use error::{LogError, Result};
pub use fsio::{INDEX_EXT, LOG_EXT};
pub use index::INDEX_ENTRY_LEN;
pub use log::{Log, PartitionDescription, TopicDescription};
pub use partitioner::{murmur2, partition_for_key};
pub use producer::{PartitionAck, Producer};
pub use reader::{ReadLimit, Reader};
pub use record::{now_ms, Record, StoredRecord};
pub use repair::RepairReport;
pub use staged::{CommitOutcome, StagedBatch, COMMITTED_FILE, COMMITTED_IDS_KEPT, STAGED_DIR, STAGED_EXT};
pub use topic::{
    validate_topic_name, Durability, TopicConfig, MAX_NAME_LEN, MAX_STAGED_ID_LEN, TOPIC_CONFIG_FILE,
    TOPIC_CONFIG_VERSION,
};
pub use writer::{AppendAck, PartitionWriter, RetentionOutcome, LOCK_FILE};
