//! Millstream: one model for streams and batches, executed on timely dataflow.
//!
//! Most programs need only the [`prelude`]:
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

#![warn(missing_docs)]

pub use millstream_checkpoint as checkpoint;
pub use millstream_connectors as connectors;
pub use millstream_model as model;
pub use millstream_runtime as runtime;

/// The items most pipelines use: the pipeline and its transforms, the runner, windows,
/// triggers and panes, the built-in combiners, and the connectors.
pub mod prelude {
    pub use millstream_connectors as connectors;
    pub use millstream_connectors::{
        GeneratorSource, JsonLinesSink, JsonLinesSource, StdoutSink, TextSink, TextSource,
    };
    pub use millstream_model::combiners::{
        ApproximateDistinct, Count, Max, MaxF64, Mean, Min, MinF64, Numeric, Sum, TopK,
    };
    pub use millstream_model::{
        AccumulationMode, CombineFn, Duration, FixedWindows, GlobalWindows, PaneInfo, Sessions,
        SlidingWindows, Timestamp, Timing, ToList, Trigger, WindowFn, WindowedValue,
    };
    pub use millstream_runtime::{
        CancelHandle, DoFn, PAssert, PCollection, PTransform, Pipeline, PipelineResult, ProcessContext,
        Runner, RuntimeError, Sink, Source, TestStream, UserError, WatermarkStrategy, Window,
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
