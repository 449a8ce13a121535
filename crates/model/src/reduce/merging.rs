//! Merging windows: Beam's `MergingActiveWindowSet` and `ReduceFnRunner.OnMergeCallback`,
//! with state merged eagerly (there are no lazily merged "state address" windows).

use super::key_state::WindowState;
use super::trigger_machine::{NodeState, Timers};
use super::{holds, KeyState, TimeContext, WindowReducer};
use crate::combine::CombineFn;
use crate::window::{Window, WindowMerge};

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
        for WindowMerge { from, into } in merges {
            if from.contains(&target) {
                target = into;
            }
            // The active windows merged (reusing the merge's vector).
            let mut sources = from;
            sources.retain(|w| state.active.contains_key(w));
            if state.active.contains_key(&into) && !sources.contains(&into) {
                // Beam forbids merging into another active window; treat it as a source.
                sources.push(into);
            }
            sources.sort_unstable();
            sources.dedup();
            self.apply_merge(state, &sources, into, time);
        }
        target
    }

    /// Merges the active windows `sources` (sorted, distinct) into `into`.
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
                holds::on_merge(&self.strategy, &mut ws, std::iter::empty(), &into, false, time);
                self.insert_active(state, into, ws);
            }
            return;
        }
        // A merge result that happens to equal a closed window reopens it, fresh.
        self.reopen(state, into);
        let result_was_active = sources.contains(&into);
        let mut result = match result_was_active {
            true => self.remove_active(state, &into).expect("merge source is active"),
            false => self.new_window_state(),
        };
        // The other merged windows stay active (read in place) until their contents move.
        let active = &state.active;
        let others =
            || sources.iter().filter(|w| **w != into).map(|w| active.get(w).expect("merge source is active"));
        let ctx = self.trigger_ctx(&into, time);

        // Timers: those of merged-away windows are dropped (Beam deletes their
        // end-of-window and GC timers and ignores their trigger timers). The result keeps
        // its own, and inherits a pending end-of-window timer so that a merge the new
        // element does not take part in still fires on time.
        if !ctx.end_of_window_reached() && others().any(|o| o.end_of_window_timer) {
            result.end_of_window_timer = true;
        }

        // Trigger state. The result's own state is one of the sources and is overwritten
        // by the merge, so it is read from a copy (on the stack for small triggers).
        let own_trigger: Inline<NodeState, 8> =
            if result_was_active { result.trigger.iter().copied().collect() } else { Inline::default() };
        let trigger_sources: Inline<&[NodeState], 4> = result_was_active
            .then_some(own_trigger.as_slice())
            .into_iter()
            .chain(others().map(|o| o.trigger.as_slice()))
            .collect();
        let WindowState { trigger, end_of_window_timer, processing_timers, .. } = &mut result;
        let mut timers = Timers { end_of_window: end_of_window_timer, processing: processing_timers };
        self.program.on_merge(0, &ctx, trigger, trigger_sources.as_slice(), &mut timers);

        // Holds.
        let own_hold = result_was_active.then_some(result.element_hold);
        let hold_sources = own_hold.into_iter().chain(others().map(|o| o.element_hold));
        let single = result_was_active && sources.len() == 1;
        holds::on_merge(&self.strategy, &mut result, hold_sources, &into, single, time);

        // Contents, pane counts and outputs to retract. The pane history of merged-away
        // windows is forgotten: a new result window starts with a first pane.
        for window in sources.iter().filter(|w| **w != into) {
            let other = self.remove_active(state, window).expect("merge source is active");
            result.pane_elements += other.pane_elements;
            self.combine_fn.merge_accumulators(&mut result.accumulator, other.accumulator);
            result.prev_outputs.extend(other.prev_outputs);
        }

        if self.program.is_finished(&result.trigger) {
            self.close(state, into);
        } else {
            self.insert_active(state, into, result);
        }
    }
}

/// A small collection of `Copy` items kept on the stack while there are at most `N` of
/// them (so a merge does not allocate just to gather its sources).
struct Inline<T, const N: usize> {
    inline: [T; N],
    len: usize,
    spilled: Vec<T>,
}

impl<T: Copy + Default, const N: usize> Default for Inline<T, N> {
    fn default() -> Self {
        Inline { inline: [T::default(); N], len: 0, spilled: Vec::new() }
    }
}

impl<T: Copy + Default, const N: usize> Inline<T, N> {
    fn push(&mut self, item: T) {
        if self.len < N {
            self.inline[self.len] = item;
            self.len += 1;
        } else {
            if self.spilled.is_empty() {
                self.spilled.extend_from_slice(&self.inline);
            }
            self.spilled.push(item);
        }
    }

    fn as_slice(&self) -> &[T] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }
}

impl<T: Copy + Default, const N: usize> FromIterator<T> for Inline<T, N> {
    fn from_iter<It: IntoIterator<Item = T>>(items: It) -> Self {
        let mut collected = Inline::default();
        for item in items {
            collected.push(item);
        }
        collected
    }
}

#[cfg(test)]
mod tests {
    use super::Inline;

    #[test]
    fn inline_collections_spill_to_the_heap_in_order() {
        for n in 0..12u32 {
            let collected: Inline<u32, 4> = (0..n).collect();
            assert_eq!(collected.as_slice(), (0..n).collect::<Vec<_>>().as_slice());
            assert_eq!(collected.spilled.is_empty(), n <= 4);
        }
    }
}
