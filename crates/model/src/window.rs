//! Windows: the `where` of the model. [`Window`] is one window; a [`WindowFn`] assigns
//! elements to windows and, for merging WindowFns such as [`Sessions`], merges them.

use crate::time::{Duration, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The half-open interval `[start, end)` of event time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IntervalWindow {
    /// First instant in the window.
    pub start: Timestamp,
    /// First instant after the window.
    pub end: Timestamp,
}

impl IntervalWindow {
    /// The window `[start, end)`.
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        IntervalWindow { start, end }
    }

    /// Whether the two windows share an instant.
    pub fn intersects(&self, other: &IntervalWindow) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The smallest window that contains both.
    pub fn span(&self, other: &IntervalWindow) -> IntervalWindow {
        IntervalWindow::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// Whether `t` falls inside the window.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

impl fmt::Debug for IntervalWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

/// A window: the global window, or an interval of event time.
///
/// Every element belongs to exactly one window at a time (an element assigned to several
/// windows travels as several copies), and every window has a
/// [`max_timestamp`](Window::max_timestamp), the last instant it covers: the watermark
/// passing it makes the window complete.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Window {
    /// The single window covering all of time.
    Global,
    /// An interval of event time.
    Interval(IntervalWindow),
}

impl Window {
    /// The largest timestamp of the global window. Like Beam, one day before the end of
    /// time, so that end-of-window firings happen before the watermark reaches the end.
    pub const GLOBAL_MAX_TIMESTAMP: Timestamp = Timestamp(Timestamp::MAX.0 - Duration::from_hours(24).0);

    /// The interval window `[start, end)`.
    pub fn interval(start: Timestamp, end: Timestamp) -> Window {
        Window::Interval(IntervalWindow::new(start, end))
    }

    /// The last instant that belongs to the window.
    pub fn max_timestamp(&self) -> Timestamp {
        match self {
            Window::Global => Self::GLOBAL_MAX_TIMESTAMP,
            Window::Interval(w) => Timestamp(w.end.0 - 1),
        }
    }

    /// The first instant of the window (`Timestamp::MIN` for the global window).
    pub fn start(&self) -> Timestamp {
        match self {
            Window::Global => Timestamp::MIN,
            Window::Interval(w) => w.start,
        }
    }

    /// The interval, when this is an interval window.
    pub fn as_interval(&self) -> Option<&IntervalWindow> {
        match self {
            Window::Global => None,
            Window::Interval(w) => Some(w),
        }
    }
}

impl fmt::Debug for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Global => write!(f, "GlobalWindow"),
            Window::Interval(w) => w.fmt(f),
        }
    }
}

/// `[12:00:00, 12:00:10)` for an interval window, `GlobalWindow` for the global one.
impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// `[12:00:00, 12:00:10)`: start included, end excluded.
impl fmt::Display for IntervalWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<IntervalWindow> for Window {
    fn from(w: IntervalWindow) -> Self {
        Window::Interval(w)
    }
}

/// One merge decided by a merging [`WindowFn`]: the state of every window in `from` moves
/// into `into`. `into` may be one of `from`, a new window, or (for a single source) a
/// renamed window, which lets a WindowFn shrink a window as well as grow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowMerge {
    /// The windows merged away.
    pub from: Vec<Window>,
    /// The window that receives their contents.
    pub into: Window,
}

/// Assigns elements to windows by timestamp; a merging WindowFn also merges the windows
/// of one key (Beam's `WindowFn`).
///
/// Implement it for your own windowing; [`FixedWindows`], [`SlidingWindows`],
/// [`Sessions`] and [`GlobalWindows`] are built in. An example of a user-defined merging
/// WindowFn, a window per element that lasts until the next element of its key, is
/// [`UntilNextElement`].
pub trait WindowFn: Send + Sync + 'static {
    /// Appends the windows of an element with timestamp `timestamp` to `out`.
    fn assign_windows(&self, timestamp: Timestamp, out: &mut Vec<Window>);

    /// Whether this WindowFn merges windows (then grouping calls
    /// [`merge_windows`](WindowFn::merge_windows)).
    fn is_merging(&self) -> bool {
        false
    }

    /// Given all active windows of one key, sorted, returns the merges to apply. Called
    /// after new windows appear; must be deterministic and must not depend on the order
    /// in which the windows appeared.
    fn merge_windows(&self, _windows: &[Window]) -> Vec<WindowMerge> {
        Vec::new()
    }

    /// The window of a side input that an element of `main_window` reads.
    fn side_input_window(&self, main_window: &Window) -> Window {
        let _ = main_window;
        Window::Global
    }

    /// Whether every element goes to the single global window (then an empty input
    /// still has its one window, and `Combine.globally` emits a default for it).
    fn is_global(&self) -> bool {
        false
    }

    /// A short description for plans and logs.
    fn describe(&self) -> String;
}

/// Every element in the single global window (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct GlobalWindows;

impl WindowFn for GlobalWindows {
    fn assign_windows(&self, _timestamp: Timestamp, out: &mut Vec<Window>) {
        out.push(Window::Global);
    }
    fn is_global(&self) -> bool {
        true
    }
    fn describe(&self) -> String {
        "GlobalWindows".into()
    }
}

/// Fixed-size, non-overlapping windows (tumbling windows), optionally offset from the
/// epoch.
///
/// ```
/// use millstream_model::{Duration, FixedWindows, Timestamp, Window, WindowFn};
/// let mut out = Vec::new();
/// FixedWindows::of(Duration::from_mins(2)).assign_windows(Timestamp::hms(12, 3, 0), &mut out);
/// assert_eq!(out, vec![Window::interval(Timestamp::hms(12, 2, 0), Timestamp::hms(12, 4, 0))]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct FixedWindows {
    size: Duration,
    offset: Duration,
}

impl FixedWindows {
    /// Windows of `size`, aligned to the epoch.
    ///
    /// # Panics
    /// If `size` is not positive: a programming error in the pipeline definition.
    pub fn of(size: Duration) -> Self {
        assert!(size.0 > 0, "FixedWindows size must be positive, got {size:?}");
        FixedWindows { size, offset: Duration::ZERO }
    }

    /// Shifts window boundaries by `offset` (taken modulo the size).
    pub fn with_offset(mut self, offset: Duration) -> Self {
        self.offset = Duration(offset.0.rem_euclid(self.size.0));
        self
    }

    fn window_containing(&self, t: Timestamp) -> Window {
        let start = t.0 - (t.0 - self.offset.0).rem_euclid(self.size.0);
        Window::interval(Timestamp(start), Timestamp(start) + self.size)
    }
}

impl WindowFn for FixedWindows {
    fn assign_windows(&self, timestamp: Timestamp, out: &mut Vec<Window>) {
        out.push(self.window_containing(timestamp));
    }
    fn side_input_window(&self, main_window: &Window) -> Window {
        self.window_containing(main_window.max_timestamp())
    }
    fn describe(&self) -> String {
        format!("FixedWindows({}ms, offset {}ms)", self.size.0, self.offset.0)
    }
}

/// Overlapping windows of `size` starting every `period` (hopping windows).
///
/// An element falls into `size / period` windows (rounded up).
#[derive(Clone, Copy, Debug)]
pub struct SlidingWindows {
    size: Duration,
    period: Duration,
    offset: Duration,
}

impl SlidingWindows {
    /// Windows of `size` that start every `period`.
    ///
    /// # Panics
    /// If `size` or `period` is not positive: a programming error in the pipeline.
    pub fn of(size: Duration, period: Duration) -> Self {
        assert!(size.0 > 0 && period.0 > 0, "SlidingWindows size and period must be positive");
        SlidingWindows { size, period, offset: Duration::ZERO }
    }

    /// Shifts window starts by `offset` (taken modulo the period).
    pub fn with_offset(mut self, offset: Duration) -> Self {
        self.offset = Duration(offset.0.rem_euclid(self.period.0));
        self
    }
}

impl WindowFn for SlidingWindows {
    fn assign_windows(&self, timestamp: Timestamp, out: &mut Vec<Window>) {
        // The last window that starts at or before the element, then earlier ones while
        // they still contain it; pushed earliest first.
        let last_start = timestamp.0 - (timestamp.0 - self.offset.0).rem_euclid(self.period.0);
        let first = out.len();
        let mut start = last_start;
        while start > timestamp.0 - self.size.0 {
            out.push(Window::interval(Timestamp(start), Timestamp(start) + self.size));
            start -= self.period.0;
        }
        out[first..].reverse();
    }
    fn side_input_window(&self, main_window: &Window) -> Window {
        // The latest window that contains the main window's end, as Beam does.
        let t = main_window.max_timestamp();
        let last_start = t.0 - (t.0 - self.offset.0).rem_euclid(self.period.0);
        Window::interval(Timestamp(last_start), Timestamp(last_start) + self.size)
    }
    fn describe(&self) -> String {
        format!("SlidingWindows({}ms every {}ms)", self.size.0, self.period.0)
    }
}

/// Session windows: an element opens `[t, t + gap)`, and overlapping windows of one key
/// merge, so a session ends after `gap` without data.
#[derive(Clone, Copy, Debug)]
pub struct Sessions {
    gap: Duration,
}

impl Sessions {
    /// Sessions closed by `gap` of inactivity.
    ///
    /// # Panics
    /// If `gap` is not positive: a programming error in the pipeline definition.
    pub fn with_gap_duration(gap: Duration) -> Self {
        assert!(gap.0 > 0, "Sessions gap must be positive");
        Sessions { gap }
    }
}

/// Merges overlapping interval windows into their span (Beam's
/// `MergeOverlappingIntervalWindows`). Windows must be sorted.
pub fn merge_overlapping_intervals(windows: &[Window]) -> Vec<WindowMerge> {
    let mut merges = Vec::new();
    let mut current: Option<(IntervalWindow, Vec<Window>)> = None;
    for w in windows {
        let Some(iw) = w.as_interval() else { continue };
        match &mut current {
            Some((span, members)) if span.intersects(iw) => {
                *span = span.span(iw);
                members.push(*w);
            }
            _ => {
                if let Some((span, members)) = current.take() {
                    if members.len() > 1 {
                        merges.push(WindowMerge { from: members, into: span.into() });
                    }
                }
                current = Some((*iw, vec![*w]));
            }
        }
    }
    if let Some((span, members)) = current {
        if members.len() > 1 {
            merges.push(WindowMerge { from: members, into: span.into() });
        }
    }
    merges
}

impl WindowFn for Sessions {
    fn assign_windows(&self, timestamp: Timestamp, out: &mut Vec<Window>) {
        out.push(Window::interval(timestamp, timestamp + self.gap));
    }
    fn is_merging(&self) -> bool {
        true
    }
    fn merge_windows(&self, windows: &[Window]) -> Vec<WindowMerge> {
        merge_overlapping_intervals(windows)
    }
    fn describe(&self) -> String {
        format!("Sessions(gap {}ms)", self.gap.0)
    }
}

/// A user-defined merging WindowFn, shipped as an example and used in tests: each element
/// opens a window that lasts until the next element of its key (at most `max_length`).
/// Elements with equal timestamps share a window.
///
/// Merging here *shrinks* windows: when an element at `t2` arrives after one at `t1 < t2`,
/// the window `[t1, t1 + max)` is renamed to `[t1, t2)`. The result depends only on the set
/// of timestamps, not on their arrival order.
#[derive(Clone, Copy, Debug)]
pub struct UntilNextElement {
    max_length: Duration,
}

impl UntilNextElement {
    /// Windows that end at the next element, or after `max_length` when none follows.
    pub fn with_max_length(max_length: Duration) -> Self {
        assert!(max_length.0 > 0, "UntilNextElement max_length must be positive");
        UntilNextElement { max_length }
    }
}

impl WindowFn for UntilNextElement {
    fn assign_windows(&self, timestamp: Timestamp, out: &mut Vec<Window>) {
        out.push(Window::interval(timestamp, timestamp + self.max_length));
    }
    fn is_merging(&self) -> bool {
        true
    }
    fn merge_windows(&self, windows: &[Window]) -> Vec<WindowMerge> {
        // Group by start (equal starts are one element time); each group's window ends at
        // the next group's start, or at start + max_length for the last group.
        let mut starts: Vec<(Timestamp, Vec<Window>)> = Vec::new();
        for w in windows {
            let Some(iw) = w.as_interval() else { continue };
            match starts.last_mut() {
                Some((s, members)) if *s == iw.start => members.push(*w),
                _ => starts.push((iw.start, vec![*w])),
            }
        }
        let mut merges = Vec::new();
        for i in 0..starts.len() {
            let start = starts[i].0;
            let end = match starts.get(i + 1) {
                Some((next, _)) => (*next).min(start + self.max_length),
                None => start + self.max_length,
            };
            let target = Window::interval(start, end);
            let members = &starts[i].1;
            if members.len() > 1 || members[0] != target {
                merges.push(WindowMerge { from: members.clone(), into: target });
            }
        }
        merges
    }
    fn describe(&self) -> String {
        format!("UntilNextElement(max {}ms)", self.max_length.0)
    }
}

/// A shareable, type-erased WindowFn, as stored in a [`crate::WindowingStrategy`].
pub type SharedWindowFn = Arc<dyn WindowFn>;

#[cfg(test)]
mod tests {
    use super::*;

    fn iw(s: i64, e: i64) -> Window {
        Window::interval(Timestamp(s), Timestamp(e))
    }

    #[test]
    fn fixed_windows_with_offset_and_negative_times() {
        let f = FixedWindows::of(Duration(10)).with_offset(Duration(3));
        let mut out = vec![];
        f.assign_windows(Timestamp(2), &mut out);
        f.assign_windows(Timestamp(3), &mut out);
        f.assign_windows(Timestamp(-8), &mut out);
        assert_eq!(out, vec![iw(-7, 3), iw(3, 13), iw(-17, -7)]);
    }

    #[test]
    fn sliding_windows_assign_every_covering_window() {
        let s = SlidingWindows::of(Duration(10), Duration(5));
        let mut out = vec![];
        s.assign_windows(Timestamp(7), &mut out);
        assert_eq!(out, vec![iw(0, 10), iw(5, 15)]);
        out.clear();
        SlidingWindows::of(Duration(10), Duration(3)).assign_windows(Timestamp(9), &mut out);
        assert_eq!(out, vec![iw(0, 10), iw(3, 13), iw(6, 16), iw(9, 19)]);
    }

    #[test]
    fn sessions_merge_only_overlapping_windows() {
        let merges = Sessions::with_gap_duration(Duration(10)).merge_windows(&[
            iw(0, 10),
            iw(5, 15),
            iw(15, 25),
            iw(30, 40),
            iw(35, 45),
        ]);
        assert_eq!(
            merges,
            vec![
                WindowMerge { from: vec![iw(0, 10), iw(5, 15)], into: iw(0, 15) },
                WindowMerge { from: vec![iw(30, 40), iw(35, 45)], into: iw(30, 45) },
            ]
        );
    }

    #[test]
    fn until_next_element_shrinks_windows_to_the_next_start() {
        let f = UntilNextElement::with_max_length(Duration(100));
        let merges = f.merge_windows(&[iw(0, 100), iw(10, 40), iw(10, 110), iw(40, 140)]);
        assert_eq!(
            merges,
            vec![
                WindowMerge { from: vec![iw(0, 100)], into: iw(0, 10) },
                WindowMerge { from: vec![iw(10, 40), iw(10, 110)], into: iw(10, 40) },
            ]
        );
    }

    #[test]
    fn max_timestamp_is_last_instant() {
        assert_eq!(iw(0, 10).max_timestamp(), Timestamp(9));
        assert!(Window::Global.max_timestamp() < Timestamp::MAX);
    }
}
