//! [`WindowedValue`]: an element with its timestamp, window and pane.

use crate::pane::PaneInfo;
use crate::time::Timestamp;
use crate::window::Window;
use serde::{Deserialize, Serialize};

/// An element as it travels through a pipeline: the value, its event timestamp, the one
/// window it is in, and the pane that produced it.
///
/// `retraction` is set on values that withdraw an earlier pane's output (accumulating
/// and retracting mode): a consumer should undo what the earlier value did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowedValue<T> {
    /// The element.
    pub value: T,
    /// Its event-time timestamp.
    pub timestamp: Timestamp,
    /// Its window.
    pub window: Window,
    /// The pane that produced it.
    pub pane: PaneInfo,
    /// Whether this value retracts an earlier output.
    pub retraction: bool,
}

impl<T> WindowedValue<T> {
    /// A value in the global window with no pane, as a source produces it.
    pub fn in_global_window(value: T, timestamp: Timestamp) -> Self {
        WindowedValue {
            value,
            timestamp,
            window: Window::Global,
            pane: PaneInfo::NO_FIRING,
            retraction: false,
        }
    }

    /// The same metadata with another value.
    pub fn with_value<U>(&self, value: U) -> WindowedValue<U> {
        WindowedValue {
            value,
            timestamp: self.timestamp,
            window: self.window,
            pane: self.pane,
            retraction: self.retraction,
        }
    }
}
