//! The reducer: per-key windows, triggers, panes, accumulation and watermark holds (what
//! Beam calls `ReduceFnRunner`, with its trigger, pane and hold trackers).
//!
//! The runtime's grouping operator owns one [`KeyState`] per key and drives it with
//! [`WindowReducer::process_element`] and [`WindowReducer::advance_time`]; the reducer
//! decides which panes fire and what they hold. It knows nothing about timely dataflow,
//! so its behaviour is testable on its own, deterministically.
//!
//! INTERFACE CONTRACT (implemented in this module):
//! * `process_element` merges windows (merging WindowFns), adds the value to the window's
//!   accumulator, updates trigger state, then asks the trigger whether it should fire,
//!   after *each* element (so results do not depend on batching), and pushes fired
//!   panes to `out`. Values whose window is expired (`strategy.is_expired(window,
//!   input_watermark)`) are not added: the call returns `Admission::TooLate(value)`.
//! * `advance_time` fires every event-time trigger (watermark) and processing-time
//!   trigger that is due at the given times, emits final panes and clears the state of
//!   windows whose garbage-collection time (`strategy.garbage_collection_time`) has been
//!   passed by the input watermark (`input_watermark > gc time`, or input watermark ==
//!   `Timestamp::MAX`).
//! * Pane timing follows Beam's `PaneInfoTracker.describePane` exactly, using
//!   `TimeContext::output_watermark` for "late for output".
//! * In AccumulatingAndRetracting mode, a firing first emits, for each earlier
//!   non-retracted output of the window (or of windows merged into it), a
//!   `FiredPane { retraction: true, value: <that earlier output>, timestamp: <its
//!   timestamp>, pane: <the new pane> }`, then the new output.

use crate::combine::CombineFn;
use crate::pane::PaneInfo;
use crate::strategy::WindowingStrategy;
use crate::time::Timestamp;
use crate::window::Window;
use std::marker::PhantomData;
use std::sync::Arc;

/// The times a reducer call sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeContext {
    /// The grouping's input watermark (`Timestamp::MAX` once input is complete).
    pub input_watermark: Timestamp,
    /// The grouping's output watermark before this call: the minimum of the input
    /// watermark and every key's watermark hold.
    pub output_watermark: Timestamp,
    /// The current processing time from the job's clock.
    pub processing_time: Timestamp,
}

/// What happened to an element offered to the reducer.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission<I> {
    /// Added to its window.
    Accepted,
    /// Its window had expired (later than the allowed lateness); the value is handed back
    /// so the caller can count it and send it to a side output.
    TooLate(I),
}

/// One pane (or retraction) produced by a firing.
#[derive(Clone, Debug, PartialEq)]
pub struct FiredPane<O> {
    /// The window that fired.
    pub window: Window,
    /// The output's timestamp (from the strategy's timestamp combiner).
    pub timestamp: Timestamp,
    /// The pane.
    pub pane: PaneInfo,
    /// The output.
    pub value: O,
    /// Whether this withdraws an earlier output.
    pub retraction: bool,
}

/// Everything the reducer keeps for one key: its active windows, their accumulators,
/// trigger state, pane history and holds. Serializable (for checkpoints).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct KeyState<A> {
    // Implemented by the reducer module.
    _accumulator: PhantomData<A>,
}

/// Runs one [`WindowingStrategy`] and one [`CombineFn`] over the keys of a grouping.
pub struct WindowReducer<I, C: CombineFn<I>> {
    strategy: WindowingStrategy,
    combine_fn: Arc<C>,
    _input: PhantomData<fn(I)>,
}

impl<I, C: CombineFn<I>> WindowReducer<I, C> {
    /// A reducer for `strategy` that aggregates with `combine_fn`.
    pub fn new(strategy: WindowingStrategy, combine_fn: Arc<C>) -> Self {
        WindowReducer { strategy, combine_fn, _input: PhantomData }
    }

    /// The strategy it runs.
    pub fn strategy(&self) -> &WindowingStrategy {
        &self.strategy
    }

    /// Offers one element (already assigned to `window`) to the key's state; pushes any
    /// panes that fire because of it.
    pub fn process_element(
        &self,
        state: &mut KeyState<C::Accumulator>,
        value: I,
        timestamp: Timestamp,
        window: Window,
        time: &TimeContext,
        out: &mut Vec<FiredPane<C::Output>>,
    ) -> Admission<I> {
        let _ = (state, value, timestamp, window, time, out, &self.combine_fn);
        unimplemented!("reducer")
    }

    /// Fires what the new times make due and drops expired windows.
    pub fn advance_time(
        &self,
        state: &mut KeyState<C::Accumulator>,
        time: &TimeContext,
        out: &mut Vec<FiredPane<C::Output>>,
    ) {
        let _ = (state, time, out);
        unimplemented!("reducer")
    }

    /// The earliest input watermark at which `advance_time` has work for this key
    /// (an end-of-window or garbage-collection time), if any. The runtime calls
    /// `advance_time` once the input watermark is strictly past... no: once
    /// `input_watermark >= ` the returned value's successor; see the module docs.
    pub fn next_event_time_timer(&self, state: &KeyState<C::Accumulator>) -> Option<Timestamp> {
        let _ = state;
        unimplemented!("reducer")
    }

    /// The earliest processing time at which `advance_time` has work for this key.
    pub fn next_processing_time_timer(&self, state: &KeyState<C::Accumulator>) -> Option<Timestamp> {
        let _ = state;
        unimplemented!("reducer")
    }

    /// The key's watermark hold: the output watermark must not pass it until the panes
    /// that hold it have fired.
    pub fn watermark_hold(&self, state: &KeyState<C::Accumulator>) -> Option<Timestamp> {
        let _ = state;
        unimplemented!("reducer")
    }

    /// Whether the key holds nothing any more (its state can be dropped).
    pub fn is_empty(&self, state: &KeyState<C::Accumulator>) -> bool {
        let _ = state;
        unimplemented!("reducer")
    }
}
