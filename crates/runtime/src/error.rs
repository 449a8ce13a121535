//! Errors of pipeline construction and execution.

use thiserror::Error;

/// Why a pipeline could not run or did not finish.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RuntimeError {
    /// The graph could not be turned into a dataflow (a bug in a transform).
    #[error("cannot translate the pipeline: {0}")]
    Translation(String),
    /// A source failed; names the source and where.
    #[error("source {source_name} failed: {message}")]
    Source {
        /// The step name of the source.
        source_name: String,
        /// What went wrong, including partition/file/offset where known.
        message: String,
    },
    /// A sink failed.
    #[error("sink {sink} failed: {message}")]
    Sink {
        /// The step name of the sink.
        sink: String,
        /// What went wrong.
        message: String,
    },
    /// A user function reported an error for an element.
    #[error("step {step} failed on an element: {message}")]
    UserFunction {
        /// The step name.
        step: String,
        /// The error and the element.
        message: String,
    },
    /// A worker thread stopped abnormally (a panic in user code, for instance).
    #[error("worker failed: {0}")]
    Worker(String),
    /// Assertions on PCollection contents did not hold.
    #[error("assertion failed: {0}")]
    Assertion(String),
    /// The job was configured wrongly.
    #[error("invalid configuration: {0}")]
    Config(String),
}
