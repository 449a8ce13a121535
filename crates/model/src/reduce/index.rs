//! Per-key indexes of the windows' timers and holds.
//!
//! The runtime asks for a key's next event-time timer, next processing-time timer and
//! watermark hold after every element it gives the key, so these must not scan the key's
//! windows. [`TimerIndex`] keeps, ordered by time, what each window contributes to them;
//! the reducer updates it whenever it changes a window's timers or holds (an element
//! added, a firing, a merge, garbage collection, a window closing or reopening), so that
//! the queries read the first entry of a set, and `advance_time` visits only the windows
//! that have something due.
//!
//! The index is derived data: it is not serialized, so a deserialized [`KeyState`] has an
//! index that is not *built*. The queries then fall back to scanning the windows, and the
//! first call that changes the state rebuilds the index first.
//!
//! [`KeyState`]: super::KeyState

use crate::time::Timestamp;
use crate::window::Window;
use std::collections::BTreeSet;

/// What one active window contributes to its key's timers and hold (computed by
/// `WindowReducer::window_keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WindowKeys {
    /// Its next event-time timer: the garbage-collection timer, or the end-of-window timer
    /// when it is set and earlier.
    pub(crate) event: Timestamp,
    /// Its earliest processing-time timer.
    pub(crate) processing: Option<Timestamp>,
    /// Its watermark hold.
    pub(crate) hold: Option<Timestamp>,
}

/// Time-ordered indexes of a key's windows. `Default` is an index that is not built
/// (what deserialization produces); [`TimerIndex::built`] is the index of a key with no
/// windows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TimerIndex {
    /// Whether the sets below describe the key's windows.
    built: bool,
    /// Active windows by their next event-time timer.
    event: TimeSet,
    /// Closed windows by their garbage-collection timer.
    closed: TimeSet,
    /// Active windows with a processing-time timer, by their earliest one.
    processing: TimeSet,
    /// Active windows with a watermark hold, by their hold.
    holds: TimeSet,
}

impl TimerIndex {
    /// The (built) index of a key with no windows.
    pub(crate) fn built() -> Self {
        TimerIndex { built: true, ..TimerIndex::default() }
    }

    /// Whether the index describes the key's windows (false after deserialization).
    pub(crate) fn is_built(&self) -> bool {
        self.built
    }

    /// Adds an active window.
    pub(crate) fn insert(&mut self, window: Window, keys: WindowKeys) {
        let fresh = self.event.insert(keys.event, window);
        debug_assert!(fresh, "{window:?} indexed twice");
        if let Some(t) = keys.processing {
            self.processing.insert(t, window);
        }
        if let Some(t) = keys.hold {
            self.holds.insert(t, window);
        }
    }

    /// Removes an active window that was indexed with `keys`.
    pub(crate) fn remove(&mut self, window: Window, keys: WindowKeys) {
        let found = self.event.remove(keys.event, window);
        debug_assert!(found, "{window:?} was not indexed at {keys:?}");
        if let Some(t) = keys.processing {
            self.processing.remove(t, window);
        }
        if let Some(t) = keys.hold {
            self.holds.remove(t, window);
        }
    }

    /// Re-indexes an active window whose keys changed from `old` to `new`. Does nothing
    /// (no tree operations) when they did not change, the common case per element.
    pub(crate) fn update(&mut self, window: Window, old: WindowKeys, new: WindowKeys) {
        if old.event != new.event {
            let found = self.event.remove(old.event, window);
            debug_assert!(found, "{window:?} was not indexed at {old:?}");
            self.event.insert(new.event, window);
        }
        if old.processing != new.processing {
            self.processing.replace(window, old.processing, new.processing);
        }
        if old.hold != new.hold {
            self.holds.replace(window, old.hold, new.hold);
        }
    }

    /// Adds a closed window with garbage-collection timer `gc`.
    pub(crate) fn close(&mut self, window: Window, gc: Timestamp) {
        self.closed.insert(gc, window);
    }

    /// Removes a closed window with garbage-collection timer `gc`.
    pub(crate) fn reopen(&mut self, window: Window, gc: Timestamp) {
        self.closed.remove(gc, window);
    }

    /// Removes and returns a closed window whose garbage-collection timer the watermark
    /// has passed (`watermark > gc`), earliest first.
    pub(crate) fn pop_collected_closed(&mut self, watermark: Timestamp) -> Option<Window> {
        match self.closed.first_time() {
            Some(gc) if watermark > gc => self.closed.pop_first(),
            _ => None,
        }
    }

    /// Whether some active window has an event-time timer the watermark has passed
    /// (`watermark > T`) or a processing-time timer that is due (`processing_time >= T`).
    pub(crate) fn any_due(&self, watermark: Timestamp, processing_time: Timestamp) -> bool {
        self.event.first_time().is_some_and(|t| watermark > t)
            || self.processing.first_time().is_some_and(|t| processing_time >= t)
    }

    /// Whether every active window (at least one) has an event-time timer the watermark
    /// has passed.
    pub(crate) fn all_event_due(&self, watermark: Timestamp) -> bool {
        self.event.last().is_some_and(|(t, _)| watermark > t)
    }

    /// Appends the active windows with a due timer (see [`any_due`](Self::any_due)) to
    /// `out`, unordered, possibly twice.
    pub(crate) fn due(&self, watermark: Timestamp, processing_time: Timestamp, out: &mut Vec<Window>) {
        out.extend(self.event.iter().take_while(|&(t, _)| watermark > t).map(|(_, w)| w));
        out.extend(self.processing.iter().take_while(|&(t, _)| processing_time >= t).map(|(_, w)| w));
    }

    /// The earliest event-time timer of any window, active or closed.
    pub(crate) fn next_event_time_timer(&self) -> Option<Timestamp> {
        match (self.event.first_time(), self.closed.first_time()) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        }
    }

    /// The earliest processing-time timer of any window.
    pub(crate) fn next_processing_time_timer(&self) -> Option<Timestamp> {
        self.processing.first_time()
    }

    /// The earliest hold of any window.
    pub(crate) fn watermark_hold(&self) -> Option<Timestamp> {
        self.holds.first_time()
    }
}

/// Windows ordered by a time. The earliest entry is kept inline, next to the tree of the
/// others, so that reading it touches no tree node and a key with a single window
/// allocates nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct TimeSet {
    /// The earliest entry (`None` only when the set is empty).
    first: Option<(Timestamp, Window)>,
    /// The other entries, all after `first`.
    rest: BTreeSet<(Timestamp, Window)>,
}

impl TimeSet {
    /// The earliest time.
    fn first_time(&self) -> Option<Timestamp> {
        self.first.map(|(t, _)| t)
    }

    /// The last entry.
    fn last(&self) -> Option<(Timestamp, Window)> {
        self.rest.last().copied().or(self.first)
    }

    /// All entries, earliest first.
    fn iter(&self) -> impl Iterator<Item = (Timestamp, Window)> + '_ {
        self.first.into_iter().chain(self.rest.iter().copied())
    }

    /// Adds `(t, window)`; returns whether it was not there yet.
    fn insert(&mut self, t: Timestamp, window: Window) -> bool {
        let entry = (t, window);
        match self.first {
            None => {
                self.first = Some(entry);
                true
            }
            Some(first) if entry < first => {
                self.first = Some(entry);
                self.rest.insert(first)
            }
            Some(first) => entry != first && self.rest.insert(entry),
        }
    }

    /// Removes `(t, window)`; returns whether it was there.
    fn remove(&mut self, t: Timestamp, window: Window) -> bool {
        if self.first == Some((t, window)) {
            self.first = self.rest.pop_first();
            true
        } else {
            self.rest.remove(&(t, window))
        }
    }

    /// Moves `window` from `old` to `new` (either may be absent).
    fn replace(&mut self, window: Window, old: Option<Timestamp>, new: Option<Timestamp>) {
        if let Some(t) = old {
            let found = self.remove(t, window);
            debug_assert!(found, "{window:?} was not indexed at {t:?}");
        }
        if let Some(t) = new {
            self.insert(t, window);
        }
    }

    /// Removes and returns the earliest entry's window.
    fn pop_first(&mut self) -> Option<Window> {
        let (_, window) = self.first?;
        self.first = self.rest.pop_first();
        Some(window)
    }
}

#[cfg(test)]
mod tests {
    use super::TimeSet;
    use crate::time::Timestamp;
    use crate::window::Window;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        /// A `TimeSet` holds the same entries as a plain ordered set, whatever the inserts,
        /// removes and pops.
        #[test]
        fn a_time_set_is_an_ordered_set(ops in prop::collection::vec((0u8..3, 0i64..8, 0i64..4), 0..80)) {
            let mut set = TimeSet::default();
            let mut model: BTreeSet<(Timestamp, Window)> = BTreeSet::new();
            for (op, t, w) in ops {
                let entry = (Timestamp(t), Window::interval(Timestamp(w), Timestamp(w + 10)));
                match op {
                    0 => prop_assert_eq!(set.insert(entry.0, entry.1), model.insert(entry)),
                    1 => prop_assert_eq!(set.remove(entry.0, entry.1), model.remove(&entry)),
                    _ => prop_assert_eq!(set.pop_first(), model.pop_first().map(|(_, w)| w)),
                }
                prop_assert_eq!(set.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(set.first_time(), model.first().map(|&(t, _)| t));
                prop_assert_eq!(set.last(), model.last().copied());
            }
        }
    }
}
