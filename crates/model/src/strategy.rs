//! [`WindowingStrategy`]: the where, when and how of a PCollection, all in one place.

use crate::time::{Duration, Timestamp};
use crate::trigger::Trigger;
use crate::window::{GlobalWindows, SharedWindowFn, Window};
use std::fmt;
use std::sync::Arc;

/// How the panes of one window relate to each other: the `how` of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccumulationMode {
    /// Each pane holds only the elements since the previous pane.
    Discarding,
    /// Each pane holds every element of the window so far.
    Accumulating,
    /// Like accumulating, and each new pane is preceded by a retraction of the previous
    /// one, so a consumer that sums panes gets the right total.
    AccumulatingAndRetracting,
}

/// The timestamp given to a pane's output (Beam's `TimestampCombiner`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TimestampCombiner {
    /// The end of the window (its max timestamp): the default.
    #[default]
    EndOfWindow,
    /// The earliest input timestamp in the pane.
    Earliest,
    /// The latest input timestamp in the pane.
    Latest,
}

/// Whether a window that expires with nothing new still emits a final pane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ClosingBehavior {
    /// Emit a final pane only if it has new data (the default).
    #[default]
    FireIfNonEmpty,
    /// Always emit a final pane.
    FireAlways,
}

/// Whether the on-time pane fires when it has no new data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum OnTimeBehavior {
    /// Always emit the on-time pane (the default), even if empty, when the window has data.
    #[default]
    FireAlways,
    /// Emit the on-time pane only if it has new data.
    FireIfNonEmpty,
}

/// Everything that decides how a PCollection's elements are grouped in time.
#[derive(Clone)]
pub struct WindowingStrategy {
    /// Assigns and merges windows.
    pub window_fn: SharedWindowFn,
    /// When panes fire.
    pub trigger: Trigger,
    /// How panes relate.
    pub accumulation: AccumulationMode,
    /// How long after the watermark passes the end of a window late data is still
    /// accepted. Later data is dropped (counted, and optionally sent to a side output).
    pub allowed_lateness: Duration,
    /// The timestamp of each pane's output.
    pub timestamp_combiner: TimestampCombiner,
    /// Final pane when a window expires.
    pub closing_behavior: ClosingBehavior,
    /// Whether an empty on-time pane is emitted.
    pub on_time_behavior: OnTimeBehavior,
}

impl WindowingStrategy {
    /// Global window, default trigger, discarding, no allowed lateness.
    pub fn global() -> Self {
        WindowingStrategy {
            window_fn: Arc::new(GlobalWindows),
            trigger: Trigger::Default,
            accumulation: AccumulationMode::Discarding,
            allowed_lateness: Duration::ZERO,
            timestamp_combiner: TimestampCombiner::EndOfWindow,
            closing_behavior: ClosingBehavior::FireIfNonEmpty,
            on_time_behavior: OnTimeBehavior::FireAlways,
        }
    }

    /// When `window`'s state is dropped: its end plus the allowed lateness.
    pub fn garbage_collection_time(&self, window: &Window) -> Timestamp {
        let max = window.max_timestamp();
        if *window == Window::Global {
            return max;
        }
        max + self.allowed_lateness
    }

    /// Whether data for `window` arriving when the input watermark is `watermark` is too
    /// late to be accepted.
    pub fn is_expired(&self, window: &Window, watermark: Timestamp) -> bool {
        self.garbage_collection_time(window) < watermark
    }

    /// The strategy of a grouping's output: same windows, the continuation trigger.
    pub fn for_grouped_output(&self) -> Self {
        WindowingStrategy { trigger: self.trigger.continuation(), ..self.clone() }
    }
}

impl Default for WindowingStrategy {
    fn default() -> Self {
        Self::global()
    }
}

impl fmt::Debug for WindowingStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowingStrategy")
            .field("window_fn", &self.window_fn.describe())
            .field("trigger", &self.trigger)
            .field("accumulation", &self.accumulation)
            .field("allowed_lateness", &self.allowed_lateness)
            .field("timestamp_combiner", &self.timestamp_combiner)
            .finish()
    }
}
