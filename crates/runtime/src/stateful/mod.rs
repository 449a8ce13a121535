//! Stateful processing (Beam's stateful `DoFn`): per-key, per-window state cells and
//! timers in event time and processing time.
//!
//! A [`StatefulDoFn`] is applied to a keyed collection with
//! [`PCollection::stateful_par_do`](crate::PCollection::stateful_par_do). For each element
//! it gets the state of the element's key *and window*, a struct of cells it declares
//! ([`ValueState`], [`BagState`], [`MapState`], [`CombiningState`],
//! [`OrderedListState`]), and a [`StatefulContext`] to output and to set timers.
//!
//! * **Timers** are per key and window, identified by an id and a [`TimeDomain`]; setting
//!   one again replaces it. Event-time timers fire when the input watermark is past their
//!   timestamp, in timestamp order (across keys, by `(timestamp, key)`); processing-time
//!   timers fire when the job's clock reaches them. A firing may set more timers; they
//!   fire in the same pass if due.
//! * **Holds**: a pending timer holds the step's output watermark at its output timestamp
//!   (by default its firing time in event time, the setting element's timestamp in
//!   processing time), so what it outputs when it fires is not late downstream.
//! * **Expiry**: when the input watermark passes a window's end plus the allowed
//!   lateness, that window's state and timers are dropped (after its due event-time
//!   timers fire), and later elements for it are dropped and counted in
//!   `<step>/dropped_late`. At the end of input all event-time timers fire, then all
//!   state is dropped.
//!
//! All of a worker's state for the step, user state and timers, lives in one
//! [`KeyedStateStore`](crate::state::KeyedStateStore), keyed by the user's key.

mod cells;
mod context;
mod executor;
mod operator;
mod timers;

#[cfg(test)]
mod tests;

pub use cells::{BagState, CombiningState, MapState, OrderedListState, ValueState};
pub use context::StatefulContext;
pub use timers::{TimeDomain, TimerFiring};

use crate::dofn::UserError;
use crate::element::Element;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A DoFn over `(key, value)` elements with per-key-and-window state and timers (Beam's
/// stateful DoFn).
///
/// `State` is a struct of state cells; one instance exists per key and window, created
/// empty (`Default`) for the first element and dropped when the window expires. Each
/// worker gets its own clone of the DoFn; keep per-key data in `State`, not in `self`.
///
/// This one buffers each key's values per one-minute window and emits them as one batch
/// when the window is complete:
///
/// ```
/// use millstream_model::{Duration, FixedWindows, Timestamp};
/// use millstream_runtime::stateful::{BagState, StatefulContext, StatefulDoFn, TimeDomain, TimerFiring};
/// use millstream_runtime::{Pipeline, Runner, UserError, Window};
///
/// #[derive(Clone)]
/// struct BatchPerWindow;
///
/// impl StatefulDoFn<String, i64> for BatchPerWindow {
///     type Output = (String, Vec<i64>);
///     type State = BagState<i64>;
///
///     fn process(
///         &mut self,
///         _key: &String,
///         value: i64,
///         buffer: &mut BagState<i64>,
///         ctx: &mut StatefulContext<'_, Self::Output>,
///     ) -> Result<(), UserError> {
///         buffer.add(value);
///         let end = ctx.window().max_timestamp();
///         ctx.set_timer("flush", TimeDomain::EventTime, end)
///     }
///
///     fn on_timer(
///         &mut self,
///         key: &String,
///         _timer: &TimerFiring,
///         buffer: &mut BagState<i64>,
///         ctx: &mut StatefulContext<'_, Self::Output>,
///     ) -> Result<(), UserError> {
///         ctx.output((key.clone(), buffer.take()));
///         Ok(())
///     }
/// }
///
/// let p = Pipeline::new();
/// let batches = p
///     .create_timestamped(vec![
///         (("a".to_string(), 1i64), Timestamp(1_000)),
///         (("a".to_string(), 2), Timestamp(2_000)),
///         (("a".to_string(), 3), Timestamp(61_000)),
///     ])
///     .window_into(Window::into(FixedWindows::of(Duration::from_mins(1))))
///     .stateful_par_do("Batch", BatchPerWindow)
///     .collect();
/// Runner::new().workers(2).run(&p).unwrap();
/// let mut got: Vec<_> = batches.windowed().into_iter().map(|wv| (wv.timestamp, wv.value)).collect();
/// got.sort();
/// assert_eq!(
///     got,
///     vec![
///         (Timestamp(59_999), ("a".to_string(), vec![1, 2])),
///         (Timestamp(119_999), ("a".to_string(), vec![3])),
///     ]
/// );
/// ```
pub trait StatefulDoFn<K, V>: Clone + Send + Sync + 'static {
    /// The output element type.
    type Output: Element;

    /// The state of one key in one window: a struct of state cells (derive `Default`,
    /// `Clone`, `Serialize` and `Deserialize`), or a single cell.
    type State: Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Called once per worker before the first element.
    fn setup(&mut self) {}

    /// Processes one element with its key's state in the element's window.
    fn process(
        &mut self,
        key: &K,
        value: V,
        state: &mut Self::State,
        ctx: &mut StatefulContext<'_, Self::Output>,
    ) -> Result<(), UserError>;

    /// Handles a timer of `key` that fired, with the key's state in the timer's window.
    /// Outputs get the timer's output timestamp and window. By default, does nothing.
    fn on_timer(
        &mut self,
        key: &K,
        timer: &TimerFiring,
        state: &mut Self::State,
        ctx: &mut StatefulContext<'_, Self::Output>,
    ) -> Result<(), UserError> {
        let _ = (key, timer, state, ctx);
        Ok(())
    }

    /// Whether `state` holds nothing any more (every cell cleared). Once a key has no
    /// pending timer, the runtime drops its windows whose state is cleared, so a key that
    /// is done costs no memory and no checkpoint space, even in the global window (which
    /// never expires). The default says no: a window's state is then kept until the
    /// window expires. Cells have `is_empty`, so a typical implementation is
    /// `state.a.is_empty() && state.b.is_empty()`.
    fn is_state_cleared(&self, state: &Self::State) -> bool {
        let _ = state;
        false
    }
}
