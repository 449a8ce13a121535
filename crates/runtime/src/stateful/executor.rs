//! [`Executor`]: one worker's share of a stateful ParDo, independent of timely. It keeps
//! every key's windows' state and timers in the keyed state store, runs the DoFn on
//! elements and due timers, and drops the state of expired windows. The operator
//! (`operator.rs`) feeds it and turns its hold into a held capability.

use super::context::StatefulContext;
use super::timers::{IndexEntry, KeyTimers, TimeDomain, TimerFiring, TimerIndex};
use super::StatefulDoFn;
use crate::dofn::{guarded, UserError};
use crate::key::Key;
use crate::state::KeyedStateStore;
use millstream_model::{PaneInfo, Timestamp, Window, WindowedValue, WindowingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

/// Everything one key keeps: the user state of each of its windows and its pending
/// timers. This is what the keyed state store holds (and will checkpoint) per key.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "S: Serialize", deserialize = "S: serde::de::DeserializeOwned"))]
pub(crate) struct KeySlot<S> {
    pub(crate) windows: BTreeMap<Window, S>,
    pub(crate) timers: KeyTimers,
    /// What the operator's index holds for this key (rebuilt, not stored).
    #[serde(skip)]
    indexed: IndexEntry,
    /// Touched since the index was last refreshed.
    #[serde(skip)]
    dirty: bool,
}

impl<S> Default for KeySlot<S> {
    fn default() -> Self {
        KeySlot {
            windows: BTreeMap::new(),
            timers: KeyTimers::default(),
            indexed: IndexEntry::default(),
            dirty: false,
        }
    }
}

/// The times one batch of work runs at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Times {
    pub(crate) input_watermark: Timestamp,
    pub(crate) processing_time: Timestamp,
}

/// One worker's stateful ParDo: the DoFn, the keyed state and the timer index.
pub(crate) struct Executor<K, V, D: StatefulDoFn<K, V>> {
    dofn: D,
    strategy: Arc<WindowingStrategy>,
    pub(crate) store: KeyedStateStore<K, KeySlot<D::State>>,
    index: TimerIndex<K>,
    /// Keys touched by elements since the index was refreshed.
    dirty: Vec<K>,
    key_groups: u32,
    _input: PhantomData<fn(V)>,
}

impl<K: Key, V, D: StatefulDoFn<K, V>> Executor<K, V, D> {
    pub(crate) fn new(dofn: D, strategy: Arc<WindowingStrategy>, key_groups: u32) -> Self {
        Executor {
            dofn,
            strategy,
            store: KeyedStateStore::new(key_groups),
            index: TimerIndex::default(),
            dirty: Vec::new(),
            key_groups,
            _input: PhantomData,
        }
    }

    /// Runs the DoFn on one element. Returns `Ok(false)` when the element's window has
    /// expired: the element is dropped without being processed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn process(
        &mut self,
        key: K,
        value: V,
        timestamp: Timestamp,
        window: Window,
        pane: PaneInfo,
        times: Times,
        out: &mut Vec<WindowedValue<D::Output>>,
    ) -> Result<bool, UserError> {
        if self.strategy.is_expired(&window, times.input_watermark) {
            return Ok(false);
        }
        let expiry = self.strategy.garbage_collection_time(&window);
        let slot = self.store.get_or_insert_with_ref(&key, KeySlot::default);
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(key.clone());
        }
        let state = slot.windows.entry(window).or_default();
        let mut ctx = StatefulContext {
            timestamp,
            window,
            pane,
            expiry,
            input_watermark: times.input_watermark,
            processing_time: times.processing_time,
            out,
            timers: &mut slot.timers,
        };
        let dofn = &mut self.dofn;
        guarded(|| dofn.process(&key, value, state, &mut ctx))?;
        Ok(true)
    }

    /// Fires every due timer, earliest first across keys (by `(timestamp, key)`),
    /// event-time timers before processing-time ones, until none is due: a firing may set
    /// timers that are due at once. Event-time timers are due once the input watermark
    /// is past them (all of them when it is at the end of time); processing-time timers
    /// once the clock reaches them. A processing-time timer of an expired window is
    /// dropped without firing.
    pub(crate) fn fire_due(
        &mut self,
        times: Times,
        out: &mut Vec<WindowedValue<D::Output>>,
    ) -> Result<(), UserError> {
        self.refresh_dirty();
        let complete = times.input_watermark >= Timestamp::MAX;
        loop {
            let event = self.index.event.first().filter(|(t, _)| complete || *t < times.input_watermark);
            let next = match event {
                Some((t, k)) => Some((*t, k.clone(), TimeDomain::EventTime)),
                None => self
                    .index
                    .processing
                    .first()
                    .filter(|(t, _)| *t <= times.processing_time)
                    .map(|(t, k)| (*t, k.clone(), TimeDomain::ProcessingTime)),
            };
            let Some((at, key, domain)) = next else { return Ok(()) };
            self.fire(at, &key, domain, times, out)?;
        }
    }

    /// Fires `key`'s earliest timer of `domain`, indexed at `at`.
    fn fire(
        &mut self,
        at: Timestamp,
        key: &K,
        domain: TimeDomain,
        times: Times,
        out: &mut Vec<WindowedValue<D::Output>>,
    ) -> Result<(), UserError> {
        let Some(slot) = self.store.get_mut(key) else {
            // Indexed but gone: never expected; forget the entry so the loop moves on.
            match domain {
                TimeDomain::EventTime => self.index.event.remove(&(at, key.clone())),
                TimeDomain::ProcessingTime => self.index.processing.remove(&(at, key.clone())),
            };
            return Ok(());
        };
        let Some((timer_key, spec)) = slot.timers.next(domain).map(|(k, s)| (k.clone(), *s)) else {
            self.refresh(key);
            return Ok(());
        };
        if spec.at != at {
            // The index was stale; refreshing it decides again.
            self.refresh(key);
            return Ok(());
        }
        slot.timers.remove(&timer_key);
        let window = timer_key.window;
        if domain == TimeDomain::ProcessingTime && self.strategy.is_expired(&window, times.input_watermark) {
            self.refresh(key);
            return Ok(());
        }
        let firing = TimerFiring {
            id: timer_key.id,
            domain,
            timestamp: spec.at,
            output_timestamp: spec.output,
            window,
        };
        let state = slot.windows.entry(window).or_default();
        let mut ctx = StatefulContext {
            timestamp: spec.output,
            window,
            pane: PaneInfo::NO_FIRING,
            expiry: self.strategy.garbage_collection_time(&window),
            input_watermark: times.input_watermark,
            processing_time: times.processing_time,
            out,
            timers: &mut slot.timers,
        };
        let dofn = &mut self.dofn;
        let result = guarded(|| dofn.on_timer(key, &firing, state, &mut ctx));
        self.refresh(key);
        result.map_err(|e| {
            UserError(format!("timer {} ({:?}) at {}: {}", firing.id, domain, firing.timestamp, e.0))
        })
    }

    /// Drops the state and timers of every window that has expired at this input
    /// watermark (its end plus the allowed lateness is before it), and keys left with
    /// nothing.
    pub(crate) fn expire(&mut self, input_watermark: Timestamp) {
        self.refresh_dirty();
        while let Some((expiry, key)) = self.index.expiry.first().cloned() {
            if expiry >= input_watermark {
                break;
            }
            match self.store.get_mut(&key) {
                Some(slot) => {
                    let strategy = &self.strategy;
                    slot.windows.retain(|w, _| !strategy.is_expired(w, input_watermark));
                    let windows = &slot.windows;
                    slot.timers.retain_windows(|w| windows.contains_key(w));
                    self.refresh(&key);
                }
                None => {
                    self.index.expiry.remove(&(expiry, key));
                }
            }
        }
    }

    /// Re-indexes every key (after a restore: the index is not part of the state).
    pub(crate) fn reindex_all(&mut self) {
        self.index.clear();
        self.dirty.clear();
        let keys: Vec<K> = self.store.iter().map(|(k, _)| k.clone()).collect();
        for key in &keys {
            if let Some(slot) = self.store.get_mut(key) {
                slot.indexed = IndexEntry::default();
            }
            self.refresh(key);
        }
        // Restored groups are as committed: not changed.
        self.store.take_changed_groups();
    }

    /// Re-indexes every key touched by elements.
    fn refresh_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for key in &dirty {
            self.refresh(key);
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    /// Re-indexes one key's timers, hold and expiry; drops the key when it keeps nothing.
    fn refresh(&mut self, key: &K) {
        let Some(slot) = self.store.get_mut(key) else { return };
        slot.dirty = false;
        if slot.timers.is_empty() {
            // No timer can still need these windows' state: drop what the DoFn says is
            // cleared (a finished key in the global window would otherwise stay for ever).
            let dofn = &self.dofn;
            slot.windows.retain(|_, state| !dofn.is_state_cleared(state));
        }
        let strategy = &self.strategy;
        let new = IndexEntry {
            event: slot.timers.next(TimeDomain::EventTime).map(|(_, s)| s.at),
            processing: slot.timers.next(TimeDomain::ProcessingTime).map(|(_, s)| s.at),
            expiry: slot.windows.keys().map(|w| strategy.garbage_collection_time(w)).min(),
            hold: slot.timers.min_output(),
        };
        self.index.update(key, &mut slot.indexed, new);
        if slot.windows.is_empty() && slot.timers.is_empty() {
            self.store.remove(key);
        }
    }

    /// The least output timestamp of any pending timer: the output watermark may not
    /// pass it.
    pub(crate) fn min_hold(&mut self) -> Option<Timestamp> {
        self.refresh_dirty();
        self.index.min_hold()
    }

    /// The earliest pending processing-time timer.
    pub(crate) fn next_processing_timer(&mut self) -> Option<Timestamp> {
        self.refresh_dirty();
        self.index.next_processing()
    }

    /// Drops all state and timers (the input is complete, or the step failed).
    pub(crate) fn clear(&mut self) {
        self.store = KeyedStateStore::new(self.key_groups);
        self.index.clear();
        self.dirty.clear();
    }
}
