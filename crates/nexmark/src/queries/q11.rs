//! Query 11, user sessions: bids per bidder session.

use super::common::{window_end, window_start, MapWithWindow};
use crate::answer::{write_fields, Field, ResultRow, RowWriter};
use crate::model::Event;
use millstream_model::combiners::Count;
use millstream_model::{Duration, Sessions, Window as W};
use millstream_runtime::{PCollection, Window};
use serde::{Deserialize, Serialize};

/// Q11's session gap, milliseconds.
pub const SESSION_GAP_MS: i64 = 10_000;

/// A q11 result row, rendered `bidder|bid_count|session_start|session_end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Q11Row {
    /// The bidder.
    pub bidder: i64,
    /// The number of bids in the session.
    pub bid_count: u64,
    /// The session's start: its first bid, epoch milliseconds.
    pub session_start: i64,
    /// The session's end: its last bid plus the gap, epoch milliseconds (exclusive).
    pub session_end: i64,
}

impl ResultRow for Q11Row {
    fn write_row<W: RowWriter + ?Sized>(&self, w: &mut W) {
        write_fields(
            w,
            &[
                Field::Int(self.bidder),
                Field::Int(self.bid_count as i64),
                Field::Int(self.session_start),
                Field::Int(self.session_end),
            ],
        );
    }
}

/// Query 11: per bidder, session windows with a 10 s gap over bids, and the number of
/// bids in each session `[first bid, last bid + 10 s)` (a lifted count over merging
/// windows).
pub fn q11(events: &PCollection<Event>) -> PCollection<Q11Row> {
    events
        .flat_map(|e: Event| match e {
            Event::Bid(b) => Some((b.bidder, ())),
            _ => None,
        })
        .window_into(Window::into(Sessions::with_gap_duration(Duration::from_millis(SESSION_GAP_MS))))
        .combine_per_key(Count)
        .par_do(
            "Q11Rows",
            MapWithWindow(|(bidder, bid_count): (i64, u64), w: &W| {
                Some(Q11Row { bidder, bid_count, session_start: window_start(w), session_end: window_end(w) })
            }),
        )
}
