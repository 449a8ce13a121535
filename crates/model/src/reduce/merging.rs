//! Merging windows: Beam's `MergingActiveWindowSet` and `ReduceFnRunner.OnMergeCallback`,
//! with state merged eagerly (there are no lazily merged "state address" windows).

use super::key_state::WindowState;
use super::trigger_machine::{NodeState, Timers};
use super::{holds, KeyState, TimeContext, WindowReducer};
use crate::combine::CombineFn;
use crate::time::Timestamp;
use crate::window::Window;

impl<I, C: CombineFn<I>> WindowReducer<I, C> {
    /// Adds `new_window` to the key's active windows, asks the WindowFn for merges and
    /// applies them. Returns the window an element of `new_window` now belongs to.
    ///
    /// Closed windows (trigger finished, not yet garbage collected) take no part, as in
    /// Beam, where they leave the active window set when they close.
    pub(super) fn merge_new_window(
        &self,
        state: &mut KeyState<C::Accumulator>,
        new_window: Window,
        time: &TimeContext,
    ) -> Window {
        let mut windows: Vec<Window> = Vec::with_capacity(state.active.len() + 1);
        windows.extend(state.active.keys().copied());
        if let Err(pos) = windows.binary_search(&new_window) {
            windows.insert(pos, new_window);
        }
        let merges = self.strategy.window_fn.merge_windows(&windows);
        let mut target = new_window;
        for merge in merges {
            if merge.from.contains(&target) {
                target = merge.into;
            }
            let mut sources: Vec<Window> =
                merge.from.iter().copied().filter(|w| state.active.contains_key(w)).collect();
            if state.active.contains_key(&merge.into) && !sources.contains(&merge.into) {
                // Beam forbids merging into another active window; treat it as a source.
                sources.push(merge.into);
            }
            sources.sort_unstable();
            sources.dedup();
            self.apply_merge(state, &sources, merge.into, time);
        }
        target
    }

    /// Merges the active windows `sources` into `into`.
    fn apply_merge(
        &self,
        state: &mut KeyState<C::Accumulator>,
        sources: &[Window],
        into: Window,
        time: &TimeContext,
    ) {
        if sources.is_empty() {
            // Only the new, still stateless window is renamed: the result starts fresh
            // (Beam would run the trigger's onMerge over no windows at all, where
            // "finished in all merging windows" is vacuously true). An element for a
            // closed window is dropped by the caller, so nothing is created then.
            if !state.closed.contains(&into) {
                let mut ws = self.new_window_state();
                holds::on_merge(&self.strategy, &mut ws, &[], &into, false, time);
                state.active.insert(into, ws);
            }
            return;
        }
        // A merge result that happens to equal a closed window reopens it, fresh.
        state.closed.remove(&into);
        let result_was_active = sources.contains(&into);
        let mut result = match result_was_active {
            true => state.active.remove(&into).expect("merge source is active"),
            false => self.new_window_state(),
        };
        let others: Vec<(Window, WindowState<C::Accumulator>)> = sources
            .iter()
            .filter(|w| **w != into)
            .map(|w| (*w, state.active.remove(w).expect("merge source is active")))
            .collect();
        let ctx = self.trigger_ctx(&into, time);

        // Timers: those of merged-away windows are dropped (Beam deletes their
        // end-of-window and GC timers and ignores their trigger timers). The result keeps
        // its own, and inherits a pending end-of-window timer so that a merge the new
        // element does not take part in still fires on time.
        if !ctx.end_of_window_reached() && others.iter().any(|(_, o)| o.end_of_window_timer) {
            result.end_of_window_timer = true;
        }

        // Trigger state.
        let own_trigger: Option<Vec<NodeState>> = result_was_active.then(|| result.trigger.clone());
        let trigger_sources: Vec<&[NodeState]> = own_trigger
            .iter()
            .map(Vec::as_slice)
            .chain(others.iter().map(|(_, o)| o.trigger.as_slice()))
            .collect();
        let WindowState { trigger, end_of_window_timer, processing_timers, .. } = &mut result;
        let mut timers = Timers { end_of_window: end_of_window_timer, processing: processing_timers };
        self.program.on_merge(0, &ctx, trigger, &trigger_sources, &mut timers);

        // Holds.
        let hold_sources: Vec<Option<Timestamp>> = result_was_active
            .then_some(result.element_hold)
            .into_iter()
            .chain(others.iter().map(|(_, o)| o.element_hold))
            .collect();
        let single = result_was_active && others.is_empty();
        holds::on_merge(&self.strategy, &mut result, &hold_sources, &into, single, time);

        // Contents, pane counts and outputs to retract. The pane history of merged-away
        // windows is forgotten: a new result window starts with a first pane.
        for (_, other) in others {
            result.pane_elements += other.pane_elements;
            self.combine_fn.merge_accumulators(&mut result.accumulator, other.accumulator);
            result.prev_outputs.extend(other.prev_outputs);
        }

        if self.program.is_finished(&result.trigger) {
            state.closed.insert(into);
        } else {
            state.active.insert(into, result);
        }
    }
}
