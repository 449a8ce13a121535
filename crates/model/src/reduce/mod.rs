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
//!
//! TIMER CONVENTIONS:
//! * Event time: [`WindowReducer::next_event_time_timer`] returns the smallest `T` such
//!   that `advance_time` has event-time work once `input_watermark > T` (strictly after,
//!   as Beam fires an event-time timer at `T` when the input watermark passes `T`). An
//!   end-of-window timer is at `window.max_timestamp()`; a garbage-collection timer at
//!   `garbage_collection_time(window)`, capped at `Timestamp::MAX - 1ms` so that a
//!   watermark at `Timestamp::MAX` always collects every window.
//! * Processing time: [`WindowReducer::next_processing_time_timer`] returns the smallest
//!   `T` such that `advance_time` has work once `processing_time >= T`; an
//!   `AfterProcessingTime` trigger fires once `processing_time >= deadline`.
//! * `advance_time` may be called at any time, as often as wanted: it acts only on timers
//!   that are due (and consumes them), so a call with nothing due changes nothing.
//!
//! SEMANTICS (Beam's `ReduceFnRunner`, `WatermarkHold`, `PaneInfoTracker`,
//! `TriggerStateMachineRunner`), and the few places where Millstream differs:
//! * Like Beam, a window whose root trigger finished is *closed* until its garbage
//!   collection time: later elements of that window are dropped, and since the interface
//!   has no other variant they are returned as `Admission::TooLate(value)` (so
//!   `TooLate` means "expired or closed window").
//! * Empty panes: an ON_TIME pane is emitted even when empty if `OnTimeBehavior::
//!   FireAlways` (a window only exists once it had an element, so this only happens
//!   after earlier panes took its data); the final pane at garbage collection (or when
//!   the trigger finishes) is emitted even when empty if `ClosingBehavior::FireAlways`.
//!   Otherwise empty panes are not emitted and do not consume a pane index.
//! * Output timestamps (Beam's `extractAndRelease`): `EndOfWindow` gives the window's max
//!   timestamp; `Earliest` / `Latest` give the earliest / latest timestamp among the
//!   pane's elements that were not late for the output watermark, or the window's max
//!   timestamp if all of them were late.
//! * Merging: state is merged eagerly. A merge that only renames the new element's
//!   (still empty) window starts the result fresh, where Beam would run the trigger's
//!   onMerge over zero windows; the result of a merge the new element takes no part in
//!   (possible with shrinking WindowFns such as `UntilNextElement`) inherits the
//!   end-of-window timer and always has a GC timer, where Beam relies on a following
//!   element to set them. A new merge result starts with a fresh pane history
//!   (`is_first`), as in Beam.
//! * The early and late sub-triggers of `AfterWatermark` repeat by resetting their whole
//!   sub-tree (as `Repeatedly` does), not only their own finished bit (a Beam bug that
//!   makes, e.g., an early `AfterFirst` fire on every element after its first firing).
//! * Empty `AfterEach` / `AfterFirst` / `AfterAll` lists behave as `Never`.

use crate::combine::CombineFn;
use crate::pane::PaneInfo;
use crate::strategy::WindowingStrategy;
use crate::time::Timestamp;
use crate::window::Window;
use index::{TimerIndex, WindowKeys};
use key_state::WindowState;
use serde::{Deserialize, Serialize};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use trigger_machine::{Ctx, Timers, TriggerProgram};

mod firing;
mod holds;
mod index;
mod key_state;
mod merging;
mod pane_tracker;
mod trigger_machine;

#[cfg(test)]
mod tests;

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
    /// Its window had expired (later than the allowed lateness), or is closed because its
    /// trigger finished (Beam's "dropped due to closed window"); the value is handed back
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
/// trigger state, pane history and holds, and its closed windows. Serializable (for
/// checkpoints).
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "A: Serialize", deserialize = "A: Deserialize<'de>"))]
pub struct KeyState<A> {
    /// Open windows with their state, in window order.
    #[serde(with = "key_state::pairs")]
    active: BTreeMap<Window, WindowState<A>>,
    /// Windows whose trigger finished, remembered until their garbage-collection time
    /// so that their late elements are dropped.
    closed: BTreeSet<Window>,
    /// The windows' timers and holds, ordered by time. Derived from the fields above, so
    /// not serialized: a deserialized state's index is not built until the first call
    /// that changes the state (the queries scan meanwhile).
    #[serde(skip)]
    index: TimerIndex,
}

impl<A> Default for KeyState<A> {
    fn default() -> Self {
        KeyState { active: BTreeMap::new(), closed: BTreeSet::new(), index: TimerIndex::built() }
    }
}

/// Shows the windows, not the index derived from them.
impl<A: fmt::Debug> fmt::Debug for KeyState<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyState").field("active", &self.active).field("closed", &self.closed).finish()
    }
}

/// Runs one [`WindowingStrategy`] and one [`CombineFn`] over the keys of a grouping.
pub struct WindowReducer<I, C: CombineFn<I>> {
    strategy: WindowingStrategy,
    combine_fn: Arc<C>,
    /// The strategy's trigger, compiled.
    program: TriggerProgram,
    /// Whether the WindowFn merges windows.
    merging: bool,
    _input: PhantomData<fn(I)>,
}

/// What `advance_time` did with one window.
enum Advanced {
    /// Nothing was due.
    NotDue,
    /// Its due timers were consumed (and it may have fired); it stays active.
    Kept,
    /// Garbage collected (after its final pane, if any): its state is dropped.
    Collected,
    /// Its trigger finished: it is closed until its garbage-collection time.
    Closed,
}

/// The last timestamp a timer (or GC hold) may have so that a watermark at
/// `Timestamp::MAX` passes it.
const LAST_TIMER: Timestamp = Timestamp(Timestamp::MAX.0 - 1);

impl<I, C: CombineFn<I>> WindowReducer<I, C> {
    /// A reducer for `strategy` that aggregates with `combine_fn`.
    pub fn new(strategy: WindowingStrategy, combine_fn: Arc<C>) -> Self {
        let program = TriggerProgram::compile(&strategy.trigger);
        let merging = strategy.window_fn.is_merging();
        WindowReducer { strategy, combine_fn, program, merging, _input: PhantomData }
    }

    /// The strategy it runs.
    pub fn strategy(&self) -> &WindowingStrategy {
        &self.strategy
    }

    /// Offers one element (already assigned to `window`) to the key's state; pushes any
    /// panes that fire because of it.
    ///
    /// Returns `Admission::TooLate(value)`, changing nothing else, when the window is
    /// expired (`strategy.is_expired(window, input_watermark)`); returns it too, after
    /// applying any window merges, when the element's (merged) window is closed because
    /// its trigger finished.
    pub fn process_element(
        &self,
        state: &mut KeyState<C::Accumulator>,
        value: I,
        timestamp: Timestamp,
        window: Window,
        time: &TimeContext,
        out: &mut Vec<FiredPane<C::Output>>,
    ) -> Admission<I> {
        if self.strategy.is_expired(&window, time.input_watermark) {
            return Admission::TooLate(value);
        }
        self.ensure_indexed(state);
        let target = if self.merging { self.merge_new_window(state, window, time) } else { window };
        if !state.closed.is_empty() && state.closed.contains(&target) {
            return Admission::TooLate(value);
        }
        let gc = self.gc_timer(&target);
        // Elements mostly arrive in about event-time order, so they usually belong to the
        // key's latest window: reaching it takes no key comparisons, unlike a search.
        let entry = if state.active.last_key_value().is_some_and(|(last, _)| *last == target) {
            Entry::Occupied(state.active.last_entry().expect("the map has a last window"))
        } else {
            state.active.entry(target)
        };
        let (ws, before) = match entry {
            Entry::Occupied(entry) => {
                let ws = entry.into_mut();
                let before = Self::window_keys(gc, &target, ws);
                (ws, Some(before))
            }
            Entry::Vacant(entry) => (entry.insert(self.new_window_state()), None),
        };
        ws.pane_elements += 1;
        holds::add_holds(&self.strategy, ws, &target, timestamp, time);
        self.combine_fn.add_input(&mut ws.accumulator, value);
        let ctx = self.trigger_ctx(&target, time);
        let WindowState { trigger, end_of_window_timer, processing_timers, .. } = &mut *ws;
        let mut timers = Timers { end_of_window: end_of_window_timer, processing: processing_timers };
        self.program.on_element(0, &ctx, trigger, &mut timers);
        if self.program.should_fire(0, &ctx, &ws.trigger) && self.emit(&target, ws, time, out) {
            state.active.remove(&target);
            if let Some(before) = before {
                state.index.remove(target, before);
            }
            self.close(state, target);
        } else {
            let after = Self::window_keys(gc, &target, ws);
            match before {
                Some(before) => state.index.update(target, before, after),
                None => state.index.insert(target, after),
            }
        }
        Admission::Accepted
    }

    /// Fires what the new times make due and drops expired windows.
    ///
    /// For each window with a due timer (end of window, garbage collection, or a
    /// trigger's processing-time timer), in window order: if the input watermark has
    /// passed its garbage-collection time, emits its final pane (if needed) and drops its
    /// state; otherwise, if the trigger should fire, fires it. Cheap, and a no-op, when
    /// nothing is due.
    pub fn advance_time(
        &self,
        state: &mut KeyState<C::Accumulator>,
        time: &TimeContext,
        out: &mut Vec<FiredPane<C::Output>>,
    ) {
        self.ensure_indexed(state);
        let watermark = time.input_watermark;
        while let Some(window) = state.index.pop_collected_closed(watermark) {
            state.closed.remove(&window);
        }
        if !state.index.any_due(watermark, time.processing_time) {
            return;
        }
        if state.index.all_event_due(watermark) {
            // Every window is due (typically all expire at the end of the input): one pass
            // over the windows, then an index of the few that remain.
            let closed = &mut state.closed;
            state.active.retain(|window, ws| match self.advance_window(window, ws, time, out) {
                Advanced::NotDue | Advanced::Kept => true,
                Advanced::Collected => false,
                Advanced::Closed => {
                    closed.insert(*window);
                    false
                }
            });
            state.index = self.build_index(state);
            return;
        }
        // The windows with a due timer, in window order (the order panes are emitted in).
        let mut due = Vec::new();
        state.index.due(watermark, time.processing_time, &mut due);
        due.sort_unstable();
        due.dedup();
        for window in due {
            let Some(ws) = state.active.get_mut(&window) else { continue };
            let before = Self::window_keys(self.gc_timer(&window), &window, ws);
            match self.advance_window(&window, ws, time, out) {
                Advanced::NotDue => {}
                Advanced::Kept => {
                    let after = Self::window_keys(self.gc_timer(&window), &window, ws);
                    state.index.update(window, before, after);
                }
                Advanced::Collected => {
                    state.active.remove(&window);
                    state.index.remove(window, before);
                }
                Advanced::Closed => {
                    state.active.remove(&window);
                    state.index.remove(window, before);
                    self.close(state, window);
                }
            }
        }
    }

    /// `advance_time` for one active window: consumes its due timers, then collects it if
    /// its garbage-collection time has passed, or fires it if its trigger says so. The
    /// caller removes a window that is collected or closed.
    fn advance_window(
        &self,
        window: &Window,
        ws: &mut WindowState<C::Accumulator>,
        time: &TimeContext,
        out: &mut Vec<FiredPane<C::Output>>,
    ) -> Advanced {
        let watermark = time.input_watermark;
        let gc_due = watermark > self.gc_timer(window);
        let end_of_window_due = ws.end_of_window_timer && watermark > window.max_timestamp();
        let processing_due = ws.processing_timers.first().is_some_and(|t| time.processing_time >= *t);
        if !(gc_due || end_of_window_due || processing_due) {
            return Advanced::NotDue;
        }
        if end_of_window_due {
            ws.end_of_window_timer = false;
        }
        if processing_due {
            let due = ws.processing_timers.partition_point(|t| *t <= time.processing_time);
            ws.processing_timers.drain(..due);
        }
        if gc_due {
            self.on_trigger(window, ws, time, true, out);
            return Advanced::Collected;
        }
        let ctx = self.trigger_ctx(window, time);
        if self.program.should_fire(0, &ctx, &ws.trigger) && self.emit(window, ws, time, out) {
            return Advanced::Closed;
        }
        Advanced::Kept
    }

    /// The key's next event-time timer (an end-of-window or garbage-collection time), if
    /// any: the smallest `T` such that `advance_time` has event-time work once the input
    /// watermark is strictly after `T` (`input_watermark > T`). Always below
    /// `Timestamp::MAX`, so a watermark at `Timestamp::MAX` passes every timer.
    pub fn next_event_time_timer(&self, state: &KeyState<C::Accumulator>) -> Option<Timestamp> {
        if state.index.is_built() {
            state.index.next_event_time_timer()
        } else {
            self.scan_next_event_time_timer(state)
        }
    }

    /// The key's next processing-time timer, if any: the smallest `T` such that
    /// `advance_time` has work once `processing_time >= T`.
    pub fn next_processing_time_timer(&self, state: &KeyState<C::Accumulator>) -> Option<Timestamp> {
        if state.index.is_built() {
            state.index.next_processing_time_timer()
        } else {
            Self::scan_next_processing_time_timer(state)
        }
    }

    /// The key's watermark hold: the output watermark must not pass it until the panes
    /// that hold it have fired. The minimum over the key's open windows of their element
    /// holds (per the timestamp combiner) and garbage-collection holds.
    pub fn watermark_hold(&self, state: &KeyState<C::Accumulator>) -> Option<Timestamp> {
        if state.index.is_built() {
            state.index.watermark_hold()
        } else {
            Self::scan_watermark_hold(state)
        }
    }

    /// Whether the key holds nothing any more (its state can be dropped).
    pub fn is_empty(&self, state: &KeyState<C::Accumulator>) -> bool {
        state.active.is_empty() && state.closed.is_empty()
    }

    /// [`next_event_time_timer`](Self::next_event_time_timer) by scanning the windows.
    fn scan_next_event_time_timer(&self, state: &KeyState<C::Accumulator>) -> Option<Timestamp> {
        let active = state.active.iter().map(|(w, ws)| {
            let gc = self.gc_timer(w);
            if ws.end_of_window_timer {
                gc.min(w.max_timestamp())
            } else {
                gc
            }
        });
        let closed = state.closed.iter().map(|w| self.gc_timer(w));
        active.chain(closed).min()
    }

    /// [`next_processing_time_timer`](Self::next_processing_time_timer) by scanning the
    /// windows.
    fn scan_next_processing_time_timer(state: &KeyState<C::Accumulator>) -> Option<Timestamp> {
        state.active.values().filter_map(|ws| ws.processing_timers.first().copied()).min()
    }

    /// [`watermark_hold`](Self::watermark_hold) by scanning the windows.
    fn scan_watermark_hold(state: &KeyState<C::Accumulator>) -> Option<Timestamp> {
        state.active.values().filter_map(WindowState::hold).min()
    }

    /// What an active window contributes to the key's timers and hold, given its
    /// garbage-collection timer `gc` (`self.gc_timer(window)`).
    fn window_keys(gc: Timestamp, window: &Window, ws: &WindowState<C::Accumulator>) -> WindowKeys {
        WindowKeys {
            event: if ws.end_of_window_timer { gc.min(window.max_timestamp()) } else { gc },
            processing: ws.processing_timers.first().copied(),
            hold: ws.hold(),
        }
    }

    /// The index of `state`'s windows, from scratch.
    fn build_index(&self, state: &KeyState<C::Accumulator>) -> TimerIndex {
        let mut index = TimerIndex::built();
        for (window, ws) in &state.active {
            index.insert(*window, Self::window_keys(self.gc_timer(window), window, ws));
        }
        for window in &state.closed {
            index.close(*window, self.gc_timer(window));
        }
        index
    }

    /// Builds the index of a deserialized state (before any change to it).
    fn ensure_indexed(&self, state: &mut KeyState<C::Accumulator>) {
        if !state.index.is_built() {
            state.index = self.build_index(state);
        }
    }

    /// Adds `window` (no longer active) to the closed windows.
    fn close(&self, state: &mut KeyState<C::Accumulator>, window: Window) {
        if state.closed.insert(window) {
            state.index.close(window, self.gc_timer(&window));
        }
    }

    /// Removes `window` from the closed windows, if it is one.
    fn reopen(&self, state: &mut KeyState<C::Accumulator>, window: Window) {
        if state.closed.remove(&window) {
            state.index.reopen(window, self.gc_timer(&window));
        }
    }

    /// Makes `window` active with state `ws`.
    fn insert_active(
        &self,
        state: &mut KeyState<C::Accumulator>,
        window: Window,
        ws: WindowState<C::Accumulator>,
    ) {
        let gc = self.gc_timer(&window);
        let keys = Self::window_keys(gc, &window, &ws);
        if let Some(old) = state.active.insert(window, ws) {
            state.index.remove(window, Self::window_keys(gc, &window, &old));
        }
        state.index.insert(window, keys);
    }

    /// Removes the active `window`, returning its state.
    fn remove_active(
        &self,
        state: &mut KeyState<C::Accumulator>,
        window: &Window,
    ) -> Option<WindowState<C::Accumulator>> {
        let ws = state.active.remove(window)?;
        state.index.remove(*window, Self::window_keys(self.gc_timer(window), window, &ws));
        Some(ws)
    }

    fn new_window_state(&self) -> WindowState<C::Accumulator> {
        WindowState::new(self.combine_fn.create_accumulator(), self.program.len())
    }

    fn trigger_ctx(&self, window: &Window, time: &TimeContext) -> Ctx {
        Ctx {
            max_ts: window.max_timestamp(),
            input_watermark: time.input_watermark,
            processing_time: time.processing_time,
            merging: self.merging,
        }
    }

    /// When `window`'s garbage-collection timer is: its GC time, capped below the end of
    /// time.
    fn gc_timer(&self, window: &Window) -> Timestamp {
        self.strategy.garbage_collection_time(window).min(LAST_TIMER)
    }
}
