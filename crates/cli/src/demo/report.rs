//! How the demo prints panes, dropped events and its summary.

use millstream::prelude::*;

/// `HH:MM:SS` (UTC) of a timestamp.
pub fn clock(t: Timestamp) -> String {
    if t <= Timestamp::MIN {
        return "-inf".to_owned();
    }
    if t >= Timestamp::MAX {
        return "+inf".to_owned();
    }
    let secs = t.millis().div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60)
}

/// `[start, end)` of a window.
fn window(w: &millstream::model::Window) -> String {
    match w.as_interval() {
        Some(iw) => format!("[{}, {})", clock(iw.start), clock(iw.end)),
        None => "[global]".to_owned(),
    }
}

/// The current wall-clock time.
fn now() -> Timestamp {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp::from_millis(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

/// One fired pane: `[12:00:10, 12:00:20) team=red    total=   123  EARLY #0 first  (at 12:00:14)`.
pub fn pane_line(wv: &WindowedValue<(String, i64)>) -> String {
    let (team, total) = &wv.value;
    format!(
        "{} team={team:<6} total={total:>6}  {:<32} (at {})",
        window(&wv.window),
        wv.pane.to_string(),
        clock(now())
    )
}

/// One event dropped for arriving after its window expired.
pub fn dropped_line(wv: &WindowedValue<(String, i64)>) -> String {
    let (team, score) = &wv.value;
    format!(
        "{} team={team:<6} score={score:>3}  DROPPED: event time {} is past the allowed lateness (at {})",
        window(&wv.window),
        clock(wv.timestamp),
        clock(now())
    )
}

/// Panes counted by timing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PaneCounts {
    /// Early (speculative) panes.
    pub early: usize,
    /// On-time panes.
    pub on_time: usize,
    /// Late panes.
    pub late: usize,
}

impl PaneCounts {
    /// Counts the panes of `outputs`.
    pub fn of<T>(outputs: &[WindowedValue<T>]) -> Self {
        let mut c = PaneCounts::default();
        for wv in outputs {
            match wv.pane.timing {
                Timing::Early => c.early += 1,
                Timing::OnTime => c.on_time += 1,
                Timing::Late => c.late += 1,
                Timing::Unknown => {}
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use millstream::model::Window as W;

    #[test]
    fn formats_windows_and_panes() {
        let wv = WindowedValue {
            value: ("red".to_string(), 123),
            timestamp: Timestamp::hms(12, 0, 19),
            window: W::interval(Timestamp::hms(12, 0, 10), Timestamp::hms(12, 0, 20)),
            pane: PaneInfo::new(true, false, Timing::Early, 0, -1),
            retraction: false,
        };
        let line = pane_line(&wv);
        assert!(line.starts_with("[12:00:10, 12:00:20) team=red    total=   123  EARLY #0 first"), "{line}");
        assert!(dropped_line(&wv).contains("DROPPED: event time 12:00:19"));
        assert_eq!(clock(Timestamp::MAX), "+inf");
        assert_eq!(PaneCounts::of(&[wv]), PaneCounts { early: 1, on_time: 0, late: 0 });
    }
}
