//! Millstream: one model for streams and batches, executed on timely dataflow.
pub use millstream_connectors as connectors;
pub use millstream_model as model;
pub use millstream_runtime as runtime;
