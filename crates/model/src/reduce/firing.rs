//! Firing panes: Beam's `ReduceFnRunner.emit` and `onTrigger`, plus retractions.

use super::key_state::WindowState;
use super::{holds, pane_tracker, FiredPane, TimeContext, WindowReducer};
use crate::combine::CombineFn;
use crate::pane::Timing;
use crate::strategy::{AccumulationMode, ClosingBehavior, OnTimeBehavior};
use crate::window::Window;

impl<I, C: CombineFn<I>> WindowReducer<I, C> {
    /// Beam's `emit`: the trigger said fire. Runs the trigger's `onFire`, produces the pane
    /// and resets the pane state. Returns whether the trigger finished (the caller then
    /// closes the window; its state is dropped).
    pub(super) fn emit(
        &self,
        window: &Window,
        ws: &mut WindowState<C::Accumulator>,
        time: &TimeContext,
        out: &mut Vec<FiredPane<C::Output>>,
    ) -> bool {
        let ctx = self.trigger_ctx(window, time);
        self.program.on_fire(0, &ctx, &mut ws.trigger);
        let finished = self.program.is_finished(&ws.trigger);
        self.on_trigger(window, ws, time, finished, out);
        ws.pane_elements = 0;
        if !finished && self.strategy.accumulation == AccumulationMode::Discarding {
            ws.accumulator = self.combine_fn.create_accumulator();
        }
        finished
    }

    /// Beam's `onTrigger`: releases the holds, describes the pane and outputs it if it
    /// has data or empty panes of its kind are wanted.
    pub(super) fn on_trigger(
        &self,
        window: &Window,
        ws: &mut WindowState<C::Accumulator>,
        time: &TimeContext,
        is_finished: bool,
        out: &mut Vec<FiredPane<C::Output>>,
    ) {
        let strategy = &self.strategy;
        let timestamp = holds::extract_and_release(strategy, ws, window, time, is_finished);
        let is_empty = ws.pane_elements == 0;
        if is_empty
            && strategy.closing_behavior == ClosingBehavior::FireIfNonEmpty
            && strategy.on_time_behavior == OnTimeBehavior::FireIfNonEmpty
        {
            return;
        }
        let pane =
            pane_tracker::describe_pane(ws.prev_pane.as_ref(), is_finished, window.max_timestamp(), time);
        if !self.need_to_emit(is_empty, is_finished, pane.timing) {
            return;
        }
        if !is_finished {
            ws.prev_pane = Some(pane);
        }
        if strategy.accumulation == AccumulationMode::AccumulatingAndRetracting {
            // Each earlier output is withdrawn in the window it was emitted in, which
            // after merges is one of the windows merged away.
            for (accumulator, earlier, emitted_in) in ws.prev_outputs.drain(..) {
                out.push(FiredPane {
                    window: emitted_in,
                    timestamp: earlier,
                    pane,
                    value: self.combine_fn.extract_output(&accumulator),
                    retraction: true,
                });
            }
            if !is_finished {
                ws.prev_outputs.push((ws.accumulator.clone(), timestamp, *window));
            }
        }
        out.push(FiredPane {
            window: *window,
            timestamp,
            pane,
            value: self.combine_fn.extract_output(&ws.accumulator),
            retraction: false,
        });
    }

    /// Beam's `needToEmit`.
    fn need_to_emit(&self, is_empty: bool, is_finished: bool, timing: Timing) -> bool {
        !is_empty
            || (timing == Timing::OnTime && self.strategy.on_time_behavior == OnTimeBehavior::FireAlways)
            || (is_finished && self.strategy.closing_behavior == ClosingBehavior::FireAlways)
    }
}
