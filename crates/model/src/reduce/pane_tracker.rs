//! Pane descriptions: Beam's `PaneInfoTracker.describePane`.

use super::TimeContext;
use crate::pane::{PaneInfo, Timing};
use crate::time::Timestamp;

/// The next pane of a window whose previous emitted pane is `previous`.
///
/// * `index` and `on_time_index` (Beam's non-speculative index) count up from the
///   previous pane (an EARLY pane has `on_time_index == -1`, so the first ON_TIME pane
///   after early ones has 0).
/// * LATE when the output watermark is already past the window's max timestamp (no
///   output timestamp could be on time downstream) or a non-EARLY pane already fired;
///   otherwise EARLY while the input watermark has not passed the max timestamp;
///   otherwise ON_TIME.
pub(crate) fn describe_pane(
    previous: Option<&PaneInfo>,
    is_final: bool,
    max_ts: Timestamp,
    time: &TimeContext,
) -> PaneInfo {
    let is_first = previous.is_none();
    let index = previous.map_or(0, |p| p.index + 1);
    let mut on_time_index = previous.map_or(0, |p| p.on_time_index + 1);
    let is_late_for_output = max_ts < time.output_watermark;
    let only_early_so_far = previous.is_none_or(|p| p.timing == Timing::Early);
    let is_early_for_input = time.input_watermark <= max_ts;
    let timing = if is_late_for_output || !only_early_so_far {
        Timing::Late
    } else if is_early_for_input {
        on_time_index = -1;
        Timing::Early
    } else {
        Timing::OnTime
    };
    PaneInfo { is_first, is_last: is_final, timing, index, on_time_index }
}
