//! What an element of a PCollection must be.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A value that can travel through a pipeline: cloneable, sendable between worker threads,
/// and serializable (between processes, and into checkpoints).
pub trait Element: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {}
impl<T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static> Element for T {}
