//! Millstream: one model for streams and batches, executed on timely dataflow.
//!
//! One dependency is enough: this crate re-exports the model, the runtime, the
//! connectors, the checkpoint store and the embedded log, and most programs need only
//! the [`prelude`]:
//!
//! ```
//! use millstream::prelude::*;
//! let p = Pipeline::new();
//! let totals = p
//!     .create_timestamped(vec![(("red".to_string(), 3i64), Timestamp::hms(12, 0, 5))])
//!     .window_into(Window::into(FixedWindows::of(Duration::from_secs(10))))
//!     .combine_per_key(Sum)
//!     .collect();
//! Runner::new().run(&p).unwrap();
//! assert_eq!(totals.values(), vec![("red".to_string(), 3)]);
//! ```
//!
//! # Features
//!
//! Files (text, JSON lines, CSV, watched directories), the embedded log, the generator,
//! the exactly-once file sink and stdout are always there. The heavy connectors are cargo
//! features, so that a job compiles only what it uses:
//!
//! | feature | what | pulls in |
//! |---|---|---|
//! | `kafka` | `KafkaSource`, `KafkaSink` | rdkafka (compiles librdkafka, a C library) |
//! | `postgres` | `PostgresUpsertSink` | tokio-postgres, tokio |
//! | `parquet` | `ParquetSource` | arrow, parquet |
//! | `full` | all of the above | |
//!
//! ```toml
//! [dependencies]
//! millstream = { version = "0.1", features = ["kafka"] }
//! ```
//!
//! The tutorial (`docs/tutorial.md`) goes from `cargo new` to a windowed, stateful,
//! exactly-once job over the embedded log.

#![warn(missing_docs)]

pub use millstream_checkpoint as checkpoint;
pub use millstream_connectors as connectors;
pub use millstream_log as log;
pub use millstream_model as model;
pub use millstream_runtime as runtime;
/// Serde, for element types of your own: with `serde = { version = "1", features =
/// ["derive"] }` in your dependencies derive `Serialize` and `Deserialize` as usual, or,
/// with this one dependency only, derive `millstream::serde::Serialize` and
/// `millstream::serde::Deserialize` and add `#[serde(crate = "millstream::serde")]`.
pub use serde;

/// The items most pipelines use: the pipeline and its transforms, the runner, windows,
/// triggers and panes, the built-in combiners, stateful DoFns with their state cells and
/// timers, checkpoints and savepoints, the connectors, and the embedded log's topics and
/// records.
///
/// Two names differ from the crates they come from, to avoid clashes: the model's window
/// (an interval of event time, or the global window) is [`BoundedWindow`], as in Beam,
/// since [`Window`] is the windowing transform (`Window::into(..)`); and Kafka's start
/// offset is [`KafkaStartOffset`].
pub mod prelude {
    pub use millstream_connectors as connectors;

    // Connectors: files, the generator, stdout, the embedded log, exactly-once sinks.
    pub use millstream_connectors::{
        log_record_timestamp, BadRecordPolicy, CsvSource, DataType, ExactlyOnceFileSink, Field,
        GeneratorSource, JsonLinesSink, JsonLinesSource, LogExactlyOnceSink, LogSource, LogStartOffset, Row,
        Schema, StdoutSink, TextSink, TextSource, Value, WatchSource,
    };
    // Heavy connectors, each behind its feature.
    #[cfg(feature = "kafka")]
    pub use millstream_connectors::kafka::{
        DeliveryGuarantee, KafkaMessage, KafkaRecord, KafkaSink, KafkaSource, StartOffset as KafkaStartOffset,
    };
    #[cfg(feature = "parquet")]
    pub use millstream_connectors::ParquetSource;
    #[cfg(feature = "postgres")]
    pub use millstream_connectors::{PostgresUpsertSink, SqlValue};

    // The embedded log: topics, records, reading them back.
    pub use millstream_log::{Durability, Log, LogError, ReadLimit, Record, StoredRecord, TopicConfig};

    // The model: time, windows, triggers, panes, combiners.
    pub use millstream_model::combiners::{
        ApproximateDistinct, Count, Max, MaxF64, Mean, Min, MinF64, Numeric, Sum, TopK,
    };
    pub use millstream_model::{
        AccumulationMode, CombineFn, Duration, FixedWindows, GlobalWindows, IntervalWindow, PaneInfo,
        Sessions, SlidingWindows, Timestamp, Timing, ToList, Trigger, UntilNextElement,
        Window as BoundedWindow, WindowFn, WindowedValue,
    };

    // The pipeline, its transforms and the runner.
    pub use millstream_runtime::{
        CancelHandle, DeadLetter, DoFn, Element, Key, OptimizerOptions, OutputTag, PAssert, PCollection,
        PCollectionView, PDone, PTransform, Pipeline, PipelineResult, ProcessContext, ReadStatus, Runner,
        RuntimeError, SideInput, Sink, Source, SourceError, SourceExt, SourceReader, TestStream, TupleTag,
        UserError, WatermarkStrategy, Window,
    };
    // Stateful processing: state cells and timers.
    pub use millstream_runtime::stateful::{
        BagState, CombiningState, MapState, OrderedListState, StatefulContext, StatefulDoFn, TimeDomain,
        TimerFiring, ValueState,
    };
    // Checkpoints and savepoints, exactly-once sinks of your own.
    pub use millstream_checkpoint::{CheckpointError, CheckpointStore};
    pub use millstream_runtime::{
        CheckpointConfig, Savepoint, SavepointHandle, TransactionalSink, TransactionalWriter,
    };
}

/// The README's examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The examples of `docs/model.md`, compiled and run as doctests.
#[doc = include_str!("../../../docs/model.md")]
#[cfg(doctest)]
pub struct ModelDocDoctests;

/// The examples of `docs/connectors.md`, compiled as doctests (with every connector).
#[doc = include_str!("../../../docs/connectors.md")]
#[cfg(all(doctest, feature = "full"))]
pub struct ConnectorsDocDoctests;

/// The examples of `docs/runtime.md`, compiled and run as doctests.
#[doc = include_str!("../../../docs/runtime.md")]
#[cfg(doctest)]
pub struct RuntimeDocDoctests;

/// The examples of `docs/state-and-checkpoints.md`, compiled and run as doctests.
#[doc = include_str!("../../../docs/state-and-checkpoints.md")]
#[cfg(doctest)]
pub struct StateDocDoctests;

/// The examples of `docs/tutorial.md`, compiled as doctests (the tutorial's job itself is
/// built and run by `crates/cli/tests/tutorial.rs`).
#[doc = include_str!("../../../docs/tutorial.md")]
#[cfg(doctest)]
pub struct TutorialDocDoctests;
