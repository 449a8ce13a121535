//! Keyed state: every stateful operator keeps its per-key state in a
//! [`KeyedStateStore`], partitioned into key groups, the unit in which state is
//! checkpointed (only changed groups) and redistributed when the number of workers
//! changes.

mod keyed;

pub use keyed::{KeyedStateStore, StateCodecError, StateView};
