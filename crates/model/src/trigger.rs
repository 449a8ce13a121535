//! Triggers: the `when` of the model. [`Trigger`] describes when a window's pane fires;
//! the reducer runs it as a state machine per key and window.

use crate::time::Duration;
use serde::{Deserialize, Serialize};

/// When to emit a pane of a window: Beam's triggers, the full set.
///
/// Build them with the constructor functions:
///
/// ```
/// use millstream_model::{Duration, Trigger};
/// // Speculative results every minute of processing time, the on-time result when the
/// // watermark passes the end of the window, then one update per late element.
/// let t = Trigger::after_watermark()
///     .with_early_firings(Trigger::after_processing_time(Duration::from_mins(1)))
///     .with_late_firings(Trigger::after_count(1));
/// assert!(matches!(t, Trigger::AfterWatermark { .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trigger {
    /// The default: fire when the watermark passes the end of the window, then once for
    /// every late element (Beam's `DefaultTrigger`, `Repeatedly(AfterWatermark)`).
    Default,
    /// Fires when the watermark passes the end of the window, optionally with early
    /// firings before and late firings after (each repeated).
    AfterWatermark {
        /// Fires repeatedly before the watermark reaches the end of the window.
        early: Option<Box<Trigger>>,
        /// Fires repeatedly after the on-time pane.
        late: Option<Box<Trigger>>,
    },
    /// Fires once, `delay` of processing time after the first element of the pane
    /// arrived; with `align`, the deadline is rounded up to the next multiple of the
    /// period (plus offset), so that every key fires at the same moments.
    AfterProcessingTime {
        /// Processing time to wait after the first element of the pane.
        delay: Duration,
        /// Optional alignment: `(period, offset)`.
        align: Option<(Duration, Duration)>,
    },
    /// Fires once at least `count` elements are in the pane.
    AfterCount(u64),
    /// Fires its sub-trigger forever, resetting it after each firing.
    Repeatedly(Box<Trigger>),
    /// Fires each sub-trigger in turn: the first until it finishes, then the next.
    AfterEach(Vec<Trigger>),
    /// Fires once any sub-trigger fires.
    AfterFirst(Vec<Trigger>),
    /// Fires once every sub-trigger has fired.
    AfterAll(Vec<Trigger>),
    /// Fires as `main` does until `until` fires, then fires a last time and finishes.
    OrFinally {
        /// The trigger that fires panes.
        main: Box<Trigger>,
        /// The trigger that ends it.
        until: Box<Trigger>,
    },
    /// Never fires; the window's contents are emitted only when it expires.
    Never,
}

impl Trigger {
    /// [`Trigger::AfterWatermark`] without early or late firings.
    pub fn after_watermark() -> Trigger {
        Trigger::AfterWatermark { early: None, late: None }
    }

    /// Adds early firings to an [`Trigger::AfterWatermark`]; other triggers are returned
    /// unchanged.
    pub fn with_early_firings(self, early: Trigger) -> Trigger {
        match self {
            Trigger::AfterWatermark { late, .. } => {
                Trigger::AfterWatermark { early: Some(Box::new(early)), late }
            }
            other => other,
        }
    }

    /// Adds late firings to an [`Trigger::AfterWatermark`]; other triggers are returned
    /// unchanged.
    pub fn with_late_firings(self, late: Trigger) -> Trigger {
        match self {
            Trigger::AfterWatermark { early, .. } => {
                Trigger::AfterWatermark { early, late: Some(Box::new(late)) }
            }
            other => other,
        }
    }

    /// Fires `delay` after the first element of the pane (processing time).
    pub fn after_processing_time(delay: Duration) -> Trigger {
        Trigger::AfterProcessingTime { delay, align: None }
    }

    /// Fires at the first multiple of `period` after the first element of the pane
    /// (processing time), so that all keys and windows fire together.
    pub fn aligned_processing_time(period: Duration) -> Trigger {
        Trigger::AfterProcessingTime { delay: Duration::ZERO, align: Some((period, Duration::ZERO)) }
    }

    /// Fires after `count` elements.
    pub fn after_count(count: u64) -> Trigger {
        Trigger::AfterCount(count)
    }

    /// Repeats `trigger` forever.
    pub fn repeatedly(trigger: Trigger) -> Trigger {
        Trigger::Repeatedly(Box::new(trigger))
    }

    /// Fires as `self` does until `until` fires.
    pub fn or_finally(self, until: Trigger) -> Trigger {
        Trigger::OrFinally { main: Box::new(self), until: Box::new(until) }
    }

    /// The trigger for the output of a grouping that used this one (Beam's continuation
    /// trigger): downstream groupings fire as soon as upstream panes arrive rather than
    /// waiting again for counts or delays.
    pub fn continuation(&self) -> Trigger {
        match self {
            Trigger::Default => Trigger::Default,
            Trigger::AfterWatermark { early, late } => Trigger::AfterWatermark {
                early: early.as_ref().map(|t| Box::new(t.continuation())),
                late: late.as_ref().map(|t| Box::new(t.continuation())),
            },
            Trigger::AfterProcessingTime { .. } => Trigger::AfterCount(1),
            Trigger::AfterCount(_) => Trigger::AfterCount(1),
            Trigger::Repeatedly(t) => Trigger::Repeatedly(Box::new(t.continuation())),
            Trigger::AfterEach(ts) => Trigger::AfterEach(ts.iter().map(Trigger::continuation).collect()),
            Trigger::AfterFirst(ts) => Trigger::AfterFirst(ts.iter().map(Trigger::continuation).collect()),
            Trigger::AfterAll(ts) => Trigger::AfterAll(ts.iter().map(Trigger::continuation).collect()),
            Trigger::OrFinally { main, until } => Trigger::OrFinally {
                main: Box::new(main.continuation()),
                until: Box::new(until.continuation()),
            },
            Trigger::Never => Trigger::Never,
        }
    }
}
