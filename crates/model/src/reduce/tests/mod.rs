//! Unit tests of the reducer: a small harness that drives one key the way the runtime
//! does (assigning windows, keeping the output watermark at `min(input, hold)`), and
//! deterministic scenarios with exact expected panes.

use super::{Admission, FiredPane, KeyState, TimeContext, WindowReducer};
use crate::combine::CombineFn;
use crate::strategy::{AccumulationMode, WindowingStrategy};
use crate::time::{Duration, Timestamp};
use crate::trigger::Trigger;
use crate::window::{SharedWindowFn, Window};
use std::fmt::Debug;
use std::sync::Arc;

mod index;
mod merging;
mod panes;
mod props;
mod triggers;

/// Sums `i64`s.
pub(super) struct Sum;

impl CombineFn<i64> for Sum {
    type Accumulator = i64;
    type Output = i64;
    fn create_accumulator(&self) -> i64 {
        0
    }
    fn add_input(&self, accumulator: &mut i64, input: i64) {
        *accumulator += input;
    }
    fn merge_accumulators(&self, accumulator: &mut i64, other: i64) {
        *accumulator += other;
    }
    fn extract_output(&self, accumulator: &i64) -> i64 {
        *accumulator
    }
}

/// A strategy with `window_fn` and `trigger`, discarding, no lateness, defaults otherwise.
pub(super) fn strategy(window_fn: SharedWindowFn, trigger: Trigger) -> WindowingStrategy {
    WindowingStrategy { window_fn, trigger, ..WindowingStrategy::global() }
}

/// The same, with an accumulation mode and allowed lateness (in ms).
pub(super) fn strategy_with(
    window_fn: SharedWindowFn,
    trigger: Trigger,
    accumulation: AccumulationMode,
    lateness: i64,
) -> WindowingStrategy {
    WindowingStrategy { accumulation, allowed_lateness: Duration(lateness), ..strategy(window_fn, trigger) }
}

/// Drives one key's state.
pub(super) struct Harness<C: CombineFn<i64>> {
    pub(super) reducer: WindowReducer<i64, C>,
    pub(super) state: KeyState<C::Accumulator>,
    pub(super) time: TimeContext,
    out: Vec<FiredPane<C::Output>>,
}

impl<C: CombineFn<i64>> Harness<C>
where
    C::Output: Debug,
{
    pub(super) fn new(strategy: WindowingStrategy, combine_fn: C) -> Self {
        Harness {
            reducer: WindowReducer::new(strategy, Arc::new(combine_fn)),
            state: KeyState::default(),
            time: TimeContext {
                input_watermark: Timestamp::MIN,
                output_watermark: Timestamp::MIN,
                processing_time: Timestamp(0),
            },
            out: Vec::new(),
        }
    }

    /// Offers `value` at `ts` to every window the WindowFn assigns; returns whether each
    /// copy was accepted.
    pub(super) fn element(&mut self, value: i64, ts: i64) -> Vec<bool> {
        let mut windows = Vec::new();
        self.reducer.strategy().window_fn.assign_windows(Timestamp(ts), &mut windows);
        windows.into_iter().map(|w| self.element_in(value, ts, w) == Admission::Accepted).collect()
    }

    /// Offers `value` at `ts` in `window`.
    pub(super) fn element_in(&mut self, value: i64, ts: i64, window: Window) -> Admission<i64> {
        let time = self.time;
        let admission =
            self.reducer.process_element(&mut self.state, value, Timestamp(ts), window, &time, &mut self.out);
        self.settle();
        admission
    }

    /// Moves the input watermark and advances time.
    pub(super) fn watermark(&mut self, wm: Timestamp) {
        self.time.input_watermark = wm;
        self.advance();
    }

    /// Moves processing time and advances time.
    pub(super) fn processing_time(&mut self, pt: i64) {
        self.time.processing_time = Timestamp(pt);
        self.advance();
    }

    pub(super) fn advance(&mut self) {
        let time = self.time;
        self.reducer.advance_time(&mut self.state, &time, &mut self.out);
        self.settle();
    }

    /// The output watermark after a call: the input watermark held back by the key's
    /// hold, never moving backwards.
    fn settle(&mut self) {
        let input = self.time.input_watermark;
        let held = self.reducer.watermark_hold(&self.state).map_or(input, |h| h.min(input));
        self.time.output_watermark = self.time.output_watermark.max(held);
    }

    pub(super) fn hold(&self) -> Option<Timestamp> {
        self.reducer.watermark_hold(&self.state)
    }

    pub(super) fn next_event_timer(&self) -> Option<Timestamp> {
        self.reducer.next_event_time_timer(&self.state)
    }

    pub(super) fn next_processing_timer(&self) -> Option<Timestamp> {
        self.reducer.next_processing_time_timer(&self.state)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.reducer.is_empty(&self.state)
    }

    /// The panes fired since the last call.
    pub(super) fn take(&mut self) -> Vec<FiredPane<C::Output>> {
        std::mem::take(&mut self.out)
    }

    /// The panes fired since the last call, as `show` strings.
    pub(super) fn panes(&mut self) -> Vec<String> {
        self.take().iter().map(show).collect()
    }
}

/// `"[start,end) v=<value> @<timestamp> <pane>"`, with a leading `-` for retractions.
pub(super) fn show<O: Debug>(p: &FiredPane<O>) -> String {
    let window = match p.window {
        Window::Global => "global".to_string(),
        Window::Interval(w) => format!("[{},{})", w.start.millis(), w.end.millis()),
    };
    let ts = if p.timestamp == Window::GLOBAL_MAX_TIMESTAMP {
        "end".to_string()
    } else {
        p.timestamp.millis().to_string()
    };
    format!("{}{} v={:?} @{} {}", if p.retraction { "-" } else { "" }, window, p.value, ts, p.pane)
}

pub(super) fn iw(start: i64, end: i64) -> Window {
    Window::interval(Timestamp(start), Timestamp(end))
}

#[test]
fn key_state_is_a_checkpointable_value() {
    fn assert_traits<T: Clone + Debug + Default + serde::Serialize + serde::de::DeserializeOwned>() {}
    assert_traits::<KeyState<i64>>();
    assert_traits::<KeyState<Vec<String>>>();
}
