//! Sources and sinks for Millstream.
//!
//! | connector | kind | elements |
//! |---|---|---|
//! | [`GeneratorSource`] | source | synthetic, seeded, rate-limited, bounded or not |
//! | [`TextSource`] | source | lines of local files (paths or globs), large files split into byte ranges |
//! | [`JsonLinesSource`] | source | JSON values, one per line, decoded with serde, large files split into byte ranges |
//! | [`CsvSource`] | source | CSV records (paths or globs) decoded with serde, or [`Row`]s |
//! | [`WatchSource`] | source | new files of a directory or glob as they arrive (JSON lines, text, CSV), unbounded |
//! | `ParquetSource` (feature `parquet`) | source | Parquet files as [`Row`]s, one partition per row group |
//! | [`TextSink`] | sink | one formatted line per element, one file per worker |
//! | [`JsonLinesSink`] | sink | one JSON line per element, one file per worker |
//! | [`StdoutSink`] | sink | one formatted line per element (with window and pane) |
//! | [`LogSource`] | source | records of a topic of the embedded log, offsets in checkpoints, per-partition watermarks |
//! | [`LogExactlyOnceSink`] | sink | records appended to a topic of the embedded log, exactly once per checkpoint |
//! | [`ExactlyOnceFileSink`] | sink | formatted lines in files published per checkpoint, exactly once |
//! | `KafkaSource` (feature `kafka`) | source | records of a Kafka topic, offsets in checkpoints, per-partition watermarks |
//! | `KafkaSink` (feature `kafka`) | sink | records written to a Kafka topic, exactly once per checkpoint (or at least once) |
//! | `PostgresUpsertSink` (feature `postgres`) | sink | rows upserted into a PostgreSQL table, exactly once per checkpoint |
//!
//! The heavy connectors are behind cargo features, so that a job compiles only what it
//! uses: `kafka` (rdkafka, which compiles librdkafka from C sources), `postgres`
//! (tokio-postgres), `parquet` (arrow and parquet), or `full` for all three. Files, the
//! embedded log, the generator and stdout need none. Every source can be paced with
//! [`SourceExt::max_records_per_second`](millstream_runtime::SourceExt::max_records_per_second).
//!
//! Errors name where they happened (`file:line`) and fail the job with a
//! [`millstream_runtime::RuntimeError`] that carries that location.

#![warn(missing_docs)]

pub mod csv;
pub mod error;
pub mod exactly_once;
pub mod files;
pub mod generator;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod log;
#[cfg(feature = "parquet")]
pub mod parquet;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod ranges;
pub mod row;
pub mod sink;
pub mod text;
pub mod watch;

pub use self::csv::CsvSource;
#[cfg(feature = "parquet")]
pub use self::parquet::ParquetSource;
pub use error::ConnectorError;
pub use exactly_once::ExactlyOnceFileSink;
pub use files::BadRecordPolicy;
pub use generator::GeneratorSource;
#[cfg(feature = "kafka")]
pub use kafka::{KafkaSink, KafkaSource};
pub use log::{log_record_timestamp, LogExactlyOnceSink, LogSource, LogStartOffset};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresUpsertSink, SqlValue};
pub use row::{DataType, Field, Row, Schema, Value};
pub use sink::{JsonLinesSink, StdoutSink, TextSink};
pub use text::{JsonLinesSource, TextSource};
pub use watch::WatchSource;

/// The random number generator crates the generator's functions use
/// ([`rand::Rng`] for `gen_range` and friends).
pub use rand;
/// The generator type handed to [`GeneratorSource`] functions.
pub use rand_chacha::ChaCha8Rng;

#[cfg(test)]
pub(crate) mod testing {
    //! A temporary directory removed when dropped.

    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(name: &str) -> Self {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("millstream-{name}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }

        pub(crate) fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, contents).expect("write temp file");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
