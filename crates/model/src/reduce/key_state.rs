//! The per-window state the reducer keeps for a key (Beam keeps the same pieces in
//! separate state cells: the reduce state, the holds, the trigger's finished bits and
//! data, the pane tracker, the non-empty-pane count and the timers).

use super::trigger_machine::NodeState;
use crate::pane::PaneInfo;
use crate::time::Timestamp;
use crate::window::Window;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// One active window of a key: open (its trigger has not finished) and not yet garbage
/// collected.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "A: Serialize", deserialize = "A: Deserialize<'de>"))]
pub(crate) struct WindowState<A> {
    /// The accumulated inputs (Beam's `SystemReduceFn` state).
    pub(crate) accumulator: A,
    /// Elements added since the last firing (Beam's `NonEmptyPanes`).
    pub(crate) pane_elements: u64,
    /// The element hold, combined per the timestamp combiner (Beam's element hold tag).
    pub(crate) element_hold: Option<Timestamp>,
    /// The garbage-collection hold (Beam's `EXTRA_HOLD_TAG`).
    pub(crate) extra_hold: Option<Timestamp>,
    /// One entry per trigger node, in pre-order (inline for small triggers: one
    /// allocation less per window, and most triggers have one to three nodes).
    pub(crate) trigger: SmallVec<[NodeState; 3]>,
    /// The last pane emitted (Beam's `PaneInfoTracker`).
    pub(crate) prev_pane: Option<PaneInfo>,
    /// Whether the trigger set the end-of-window timer (at the window's max timestamp).
    /// The garbage-collection timer is implicit: every active window has one.
    pub(crate) end_of_window_timer: bool,
    /// Processing-time timers set by the trigger, sorted. Stale ones fire and are
    /// ignored, as in Beam.
    pub(crate) processing_timers: Vec<Timestamp>,
    /// AccumulatingAndRetracting only: the earlier outputs not yet retracted (the
    /// accumulator each was extracted from, its timestamp, and the window it was
    /// emitted in).
    pub(crate) prev_outputs: Vec<(A, Timestamp, Window)>,
}

impl<A> WindowState<A> {
    /// A fresh window with nothing in it.
    pub(crate) fn new(accumulator: A, trigger_nodes: usize) -> Self {
        WindowState {
            accumulator,
            pane_elements: 0,
            element_hold: None,
            extra_hold: None,
            trigger: smallvec::smallvec![NodeState::default(); trigger_nodes],
            prev_pane: None,
            end_of_window_timer: false,
            processing_timers: Vec::new(),
            prev_outputs: Vec::new(),
        }
    }

    /// The window's watermark hold: the earlier of its element and GC holds.
    pub(crate) fn hold(&self) -> Option<Timestamp> {
        match (self.element_hold, self.extra_hold) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Serializes a window-keyed map as a sequence of pairs, so that formats whose map keys
/// must be strings (JSON) can hold it too.
pub(crate) mod pairs {
    use crate::window::Window;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub(crate) fn serialize<S: Serializer, V: Serialize>(
        map: &BTreeMap<Window, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<Window, V>, D::Error> {
        let pairs: Vec<(Window, V)> = Vec::deserialize(deserializer)?;
        Ok(pairs.into_iter().collect())
    }
}
