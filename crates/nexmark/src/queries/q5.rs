//! Query 5, hot items: per sliding window, the auction(s) with the most bids.

use super::common::{window_start, MapWithWindow, MaxWithTies};
use crate::answer::{write_fields, Field, ResultRow, RowWriter};
use crate::model::Event;
use millstream_model::combiners::Count;
use millstream_model::{Duration, SlidingWindows, Window as W};
use millstream_runtime::{PCollection, Window};
use serde::{Deserialize, Serialize};

/// Q5's window size, milliseconds.
pub const Q5_SIZE_MS: i64 = 10_000;
/// Q5's window period (a window starts every period), milliseconds.
pub const Q5_PERIOD_MS: i64 = 2_000;

/// A q5 result row, rendered `window_start|auction|num_bids`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Q5Row {
    /// The window's start, epoch milliseconds.
    pub window_start: i64,
    /// An auction with the most bids in the window.
    pub auction: i64,
    /// Its number of bids in the window.
    pub num_bids: u64,
}

impl ResultRow for Q5Row {
    fn write_row<W: RowWriter + ?Sized>(&self, w: &mut W) {
        write_fields(
            w,
            &[Field::Int(self.window_start), Field::Int(self.auction), Field::Int(self.num_bids as i64)],
        );
    }
}

/// Query 5: sliding windows of 10 s every 2 s over bids; per window, every auction with
/// the highest number of bids.
///
/// Two lifted combines: the count per auction and window, then per window (keyed by its
/// start) the maximum count with all tied auctions.
pub fn q5(events: &PCollection<Event>) -> PCollection<Q5Row> {
    events
        .flat_map(|e: Event| match e {
            Event::Bid(b) => Some((b.auction, ())),
            _ => None,
        })
        .window_into(Window::into(SlidingWindows::of(
            Duration::from_millis(Q5_SIZE_MS),
            Duration::from_millis(Q5_PERIOD_MS),
        )))
        .combine_per_key(Count)
        .par_do(
            "Q5KeyByWindow",
            MapWithWindow(|(auction, n): (i64, u64), w: &W| Some((window_start(w), (n as i64, auction)))),
        )
        .combine_per_key(MaxWithTies)
        .flat_map(|(window_start, (n, auctions)): (i64, (i64, Vec<i64>))| {
            auctions.into_iter().map(move |auction| Q5Row { window_start, auction, num_bids: n as u64 })
        })
}
