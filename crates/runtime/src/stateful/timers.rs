//! Timers: what a user sets ([`TimeDomain`]), what fires ([`TimerFiring`]), the pending
//! timers of one key ([`KeyTimers`]) and the operator-wide index over keys
//! ([`TimerIndex`]) that finds the next due timer, the next window to expire and the
//! least watermark hold without scanning every key.

use millstream_model::{Timestamp, Window};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The clock a timer is set on.
///
/// ```
/// use millstream_runtime::stateful::TimeDomain;
/// assert_ne!(TimeDomain::EventTime, TimeDomain::ProcessingTime);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TimeDomain {
    /// Fires when the operator's input watermark passes the timer's timestamp (is
    /// strictly after it).
    EventTime,
    /// Fires when the job's clock reaches the timer's timestamp.
    ProcessingTime,
}

/// A timer that fired, as [`StatefulDoFn::on_timer`](super::StatefulDoFn::on_timer) sees
/// it.
///
/// ```
/// use millstream_model::{Timestamp, Window};
/// use millstream_runtime::stateful::{TimeDomain, TimerFiring};
/// let firing = TimerFiring {
///     id: "flush".to_string(),
///     domain: TimeDomain::EventTime,
///     timestamp: Timestamp(59_999),
///     output_timestamp: Timestamp(59_999),
///     window: Window::interval(Timestamp(0), Timestamp(60_000)),
/// };
/// assert_eq!(firing.id, "flush");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerFiring {
    /// The id it was set with.
    pub id: String,
    /// Its clock.
    pub domain: TimeDomain,
    /// When it was set to fire.
    pub timestamp: Timestamp,
    /// The timestamp of what the firing outputs; the timer held the operator's output
    /// watermark here until it fired.
    pub output_timestamp: Timestamp,
    /// The window it was set in; the firing sees that window's state.
    pub window: Window,
}

/// Identifies a timer of one key: setting the same window, domain and id again replaces
/// it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct TimerKey {
    pub(crate) window: Window,
    pub(crate) domain: TimeDomain,
    pub(crate) id: String,
}

/// When a pending timer fires and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TimerSpec {
    /// Firing time, on the timer's clock.
    pub(crate) at: Timestamp,
    /// The timestamp of the firing's output, and the watermark hold until it fires.
    pub(crate) output: Timestamp,
}

/// The pending timers of one key, across its windows.
///
/// Keys rarely have more than a few timers, so the earliest one is found by a scan.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct KeyTimers {
    timers: BTreeMap<TimerKey, TimerSpec>,
}

impl KeyTimers {
    /// Sets (or replaces) a timer.
    pub(crate) fn set(&mut self, key: TimerKey, spec: TimerSpec) {
        self.timers.insert(key, spec);
    }

    /// Removes a timer; returns it if it was pending.
    pub(crate) fn remove(&mut self, key: &TimerKey) -> Option<TimerSpec> {
        self.timers.remove(key)
    }

    /// A pending timer.
    pub(crate) fn get(&self, key: &TimerKey) -> Option<&TimerSpec> {
        self.timers.get(key)
    }

    /// The earliest pending timer of a domain: by firing time, then window, then id.
    pub(crate) fn next(&self, domain: TimeDomain) -> Option<(&TimerKey, &TimerSpec)> {
        self.timers.iter().filter(|(k, _)| k.domain == domain).min_by_key(|(k, s)| (s.at, *k))
    }

    /// The least output timestamp of the pending timers: the key's watermark hold.
    pub(crate) fn min_output(&self) -> Option<Timestamp> {
        self.timers.values().map(|s| s.output).min()
    }

    /// Keeps only the timers whose window passes `keep`.
    pub(crate) fn retain_windows(&mut self, mut keep: impl FnMut(&Window) -> bool) {
        self.timers.retain(|k, _| keep(&k.window));
    }

    /// Number of pending timers.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.timers.len()
    }

    /// Whether no timer is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.timers.is_empty()
    }
}

/// What the index holds for one key: its earliest timer of each domain, its earliest
/// window expiry and its least watermark hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) event: Option<Timestamp>,
    pub(crate) processing: Option<Timestamp>,
    pub(crate) expiry: Option<Timestamp>,
    pub(crate) hold: Option<Timestamp>,
}

/// Every key's next event-time timer, processing-time timer and window expiry, ordered by
/// `(time, key)`, and a count of watermark holds by timestamp.
#[derive(Debug)]
pub(crate) struct TimerIndex<K> {
    pub(crate) event: BTreeSet<(Timestamp, K)>,
    pub(crate) processing: BTreeSet<(Timestamp, K)>,
    pub(crate) expiry: BTreeSet<(Timestamp, K)>,
    holds: BTreeMap<Timestamp, usize>,
}

impl<K> Default for TimerIndex<K> {
    fn default() -> Self {
        TimerIndex {
            event: BTreeSet::new(),
            processing: BTreeSet::new(),
            expiry: BTreeSet::new(),
            holds: BTreeMap::new(),
        }
    }
}

fn reindex<K: Ord + Clone>(
    set: &mut BTreeSet<(Timestamp, K)>,
    key: &K,
    old: &mut Option<Timestamp>,
    new: Option<Timestamp>,
) {
    if *old == new {
        return;
    }
    if let Some(t) = old.take() {
        set.remove(&(t, key.clone()));
    }
    if let Some(t) = new {
        set.insert((t, key.clone()));
    }
    *old = new;
}

impl<K: Ord + Clone> TimerIndex<K> {
    /// Moves `key`'s entries from what was indexed (`old`, updated in place) to `new`.
    pub(crate) fn update(&mut self, key: &K, old: &mut IndexEntry, new: IndexEntry) {
        reindex(&mut self.event, key, &mut old.event, new.event);
        reindex(&mut self.processing, key, &mut old.processing, new.processing);
        reindex(&mut self.expiry, key, &mut old.expiry, new.expiry);
        if old.hold != new.hold {
            if let Some(h) = old.hold {
                if let Some(c) = self.holds.get_mut(&h) {
                    *c -= 1;
                    if *c == 0 {
                        self.holds.remove(&h);
                    }
                }
            }
            if let Some(h) = new.hold {
                *self.holds.entry(h).or_insert(0) += 1;
            }
            old.hold = new.hold;
        }
    }

    /// The least watermark hold of any key.
    pub(crate) fn min_hold(&self) -> Option<Timestamp> {
        self.holds.keys().next().copied()
    }

    /// The earliest processing-time timer of any key.
    pub(crate) fn next_processing(&self) -> Option<Timestamp> {
        self.processing.first().map(|(t, _)| *t)
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        *self = TimerIndex::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(window: Window, domain: TimeDomain, id: &str) -> TimerKey {
        TimerKey { window, domain, id: id.to_string() }
    }

    #[test]
    fn key_timers_replace_by_id_and_find_the_earliest_per_domain() {
        let w = Window::Global;
        let mut t = KeyTimers::default();
        t.set(key(w, TimeDomain::EventTime, "a"), TimerSpec { at: Timestamp(30), output: Timestamp(30) });
        t.set(key(w, TimeDomain::EventTime, "b"), TimerSpec { at: Timestamp(10), output: Timestamp(5) });
        t.set(key(w, TimeDomain::ProcessingTime, "a"), TimerSpec { at: Timestamp(1), output: Timestamp(2) });
        assert_eq!(t.len(), 3, "same id in another domain is another timer");
        assert_eq!(t.next(TimeDomain::EventTime).map(|(k, _)| k.id.as_str()), Some("b"));
        assert_eq!(t.min_output(), Some(Timestamp(2)));
        // Replacing moves it.
        t.set(key(w, TimeDomain::EventTime, "b"), TimerSpec { at: Timestamp(40), output: Timestamp(40) });
        assert_eq!(t.next(TimeDomain::EventTime).map(|(_, s)| s.at), Some(Timestamp(30)));
        assert_eq!(t.get(&key(w, TimeDomain::EventTime, "b")).map(|s| s.at), Some(Timestamp(40)));
        assert!(t.remove(&key(w, TimeDomain::ProcessingTime, "a")).is_some());
        assert_eq!(t.next(TimeDomain::ProcessingTime), None);
        t.retain_windows(|_| false);
        assert!(t.is_empty());
    }

    #[test]
    fn index_tracks_minimums_and_hold_counts() {
        let mut idx: TimerIndex<&str> = TimerIndex::default();
        let (mut a, mut b) = (IndexEntry::default(), IndexEntry::default());
        let entry = |e: i64, h: i64| IndexEntry {
            event: Some(Timestamp(e)),
            processing: None,
            expiry: Some(Timestamp(100)),
            hold: Some(Timestamp(h)),
        };
        idx.update(&"a", &mut a, entry(20, 5));
        idx.update(&"b", &mut b, entry(10, 5));
        assert_eq!(idx.event.first(), Some(&(Timestamp(10), "b")));
        assert_eq!(idx.min_hold(), Some(Timestamp(5)));
        idx.update(&"b", &mut b, IndexEntry::default());
        assert_eq!(idx.min_hold(), Some(Timestamp(5)), "a still holds");
        idx.update(&"a", &mut a, entry(20, 7));
        assert_eq!(idx.min_hold(), Some(Timestamp(7)));
        assert_eq!(idx.event.len(), 1);
        assert_eq!(idx.expiry.len(), 1);
        idx.update(&"a", &mut a, IndexEntry::default());
        assert_eq!(idx.min_hold(), None);
        assert!(idx.event.is_empty() && idx.expiry.is_empty() && idx.next_processing().is_none());
    }
}
