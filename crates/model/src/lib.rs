//! The Dataflow/Beam model as Millstream implements it: event time and processing time,
//! windows and WindowFns, triggers, panes, accumulation modes, windowing strategies,
//! CombineFns, and the reducer that runs them per key.
//!
//! This crate knows nothing about execution; `millstream-runtime` runs it on timely
//! dataflow. See `docs/model.md` for the concepts with examples.

#![warn(missing_docs)]

pub mod combine;
pub mod combiners;
pub mod pane;
pub mod reduce;
pub mod strategy;
pub mod time;
pub mod trigger;
pub mod window;
pub mod windowed;

pub use combine::{CombineFn, ToList};
pub use pane::{PaneInfo, Timing};
pub use reduce::{Admission, FiredPane, KeyState, TimeContext, WindowReducer};
pub use strategy::{AccumulationMode, ClosingBehavior, OnTimeBehavior, TimestampCombiner, WindowingStrategy};
pub use time::{Duration, Timestamp};
pub use trigger::Trigger;
pub use window::{
    FixedWindows, GlobalWindows, IntervalWindow, Sessions, SharedWindowFn, SlidingWindows, UntilNextElement,
    Window, WindowFn, WindowMerge,
};
pub use windowed::WindowedValue;
