//! Millstream's runtime: the pipeline graph (Beam's Pipeline, PCollection and
//! transforms) and its execution on timely dataflow.
//!
//! ```
//! use millstream_model::{Duration, FixedWindows, Timestamp};
//! use millstream_runtime::{Pipeline, Runner, Window};
//! let p = Pipeline::new();
//! let scores = p.create_timestamped(vec![
//!     (("blue".to_string(), 5i64), Timestamp::hms(12, 0, 26)),
//!     (("blue".to_string(), 7), Timestamp::hms(12, 1, 30)),
//!     (("red".to_string(), 3), Timestamp::hms(12, 3, 0)),
//! ]);
//! let totals = scores
//!     .window_into(Window::into(FixedWindows::of(Duration::from_mins(2))))
//!     .combine_per_key(millstream_model::combiners::Sum)
//!     .collect();
//! Runner::new().workers(2).run(&p).unwrap();
//! let mut values = totals.values();
//! values.sort();
//! assert_eq!(values, vec![("blue".to_string(), 12), ("red".to_string(), 3)]);
//! ```

#![warn(missing_docs)]

mod align;
pub mod checkpoint;
pub mod clock;
pub mod collect;
pub mod context;
mod create;
pub mod dead_letter;
pub mod dofn;
pub mod element;
pub mod error;
mod flow;
pub mod graph;
pub mod group;
pub mod key;
mod keyed_snapshot;
pub mod multi_output;
pub mod optimizer;
pub mod pacing;
pub mod pcollection;
mod reify;
pub mod runner;
pub mod savepoint;
pub mod side_input;
pub mod sink;
pub mod source;
pub mod state;
pub mod stateful;
pub mod test_stream;
pub mod time;
pub mod transactional_sink;
pub mod transforms;
pub mod window_into;

pub use checkpoint::{CheckpointConfig, CheckpointStats};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use collect::{Collected, PAssert};
pub use context::CancelHandle;
pub use dead_letter::DeadLetter;
pub use dofn::{DoFn, ProcessContext, TupleTag, UserError};
pub use element::Element;
pub use error::RuntimeError;
pub use graph::{NodeKind, PDone, Pipeline};
pub use key::Key;
pub use multi_output::{OutputTag, TaggedOutputs};
pub use optimizer::OptimizerOptions;
pub use pacing::{RateLimitedSource, SourceExt};
pub use pcollection::{PCollection, PTransform};
pub use runner::{PipelineResult, Runner};
pub use savepoint::{PendingSavepoint, Savepoint, SavepointHandle};
pub use side_input::{PCollectionView, SideInput};
pub use sink::{Sink, SinkWriter};
pub use source::{ReadStatus, Source, SourceError, SourceReader, WatermarkKind, WatermarkStrategy};
pub use stateful::{StatefulContext, StatefulDoFn, TimeDomain, TimerFiring};
pub use test_stream::{TestEvent, TestStream};
pub use transactional_sink::{TransactionalSink, TransactionalWriter};
pub use window_into::Window;
