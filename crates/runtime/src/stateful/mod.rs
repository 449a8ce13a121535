//! Stateful processing (Beam's stateful `DoFn`): per-key, per-window state cells.
//!
//! A stateful DoFn's state is a struct of cells: [`ValueState`], [`BagState`],
//! [`MapState`], [`CombiningState`] and [`OrderedListState`].

mod cells;

pub use cells::{BagState, CombiningState, MapState, OrderedListState, ValueState};
