//! [`PaneInfo`]: which firing of a window an output came from, exactly as Beam defines it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// When a pane fired relative to the watermark.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Timing {
    /// Before the input watermark passed the end of the window (speculative).
    Early,
    /// The one pane fired when the watermark passed the end of the window.
    OnTime,
    /// After the on-time pane, or after the output watermark passed the window.
    Late,
    /// Not produced by a trigger firing (for example, elements straight from a source).
    Unknown,
}

/// Describes the pane (firing) that produced a value: Beam's `PaneInfo`.
///
/// `index` counts every pane of the window from 0; `on_time_index` (Beam's
/// non-speculative index) counts the ON_TIME and LATE panes from 0 and is -1 for EARLY
/// panes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PaneInfo {
    /// Whether this is the first pane of the window.
    pub is_first: bool,
    /// Whether this is the last pane of the window (no more will fire).
    pub is_last: bool,
    /// When the pane fired relative to the watermark.
    pub timing: Timing,
    /// Index among all panes of the window.
    pub index: u64,
    /// Index among the non-speculative (on-time and late) panes; -1 for early panes.
    pub on_time_index: i64,
}

impl PaneInfo {
    /// The pane of values that never went through a trigger (Beam's `NO_FIRING`).
    pub const NO_FIRING: PaneInfo =
        PaneInfo { is_first: true, is_last: true, timing: Timing::Unknown, index: 0, on_time_index: 0 };

    /// The pane of a window that fires exactly once, on time (Beam's `ON_TIME_AND_ONLY_FIRING`).
    pub const ON_TIME_AND_ONLY_FIRING: PaneInfo =
        PaneInfo { is_first: true, is_last: true, timing: Timing::OnTime, index: 0, on_time_index: 0 };

    /// Builds a pane description.
    pub fn new(is_first: bool, is_last: bool, timing: Timing, index: u64, on_time_index: i64) -> Self {
        PaneInfo { is_first, is_last, timing, index, on_time_index }
    }
}

impl Default for PaneInfo {
    fn default() -> Self {
        PaneInfo::NO_FIRING
    }
}

impl fmt::Debug for PaneInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for PaneInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let timing = match self.timing {
            Timing::Early => "EARLY",
            Timing::OnTime => "ON_TIME",
            Timing::Late => "LATE",
            Timing::Unknown => "UNKNOWN",
        };
        write!(f, "{timing} #{}", self.index)?;
        if self.on_time_index >= 0 && self.timing != Timing::Early {
            write!(f, " (on-time #{})", self.on_time_index)?;
        }
        if self.is_first {
            write!(f, " first")?;
        }
        if self.is_last {
            write!(f, " last")?;
        }
        Ok(())
    }
}
