//! Query 7, highest bid: per tumbling window, the bids with the window's highest price.

use super::common::{aligned_start, MaxWithTies};
use crate::answer::{write_fields, Field, ResultRow, RowWriter};
use crate::model::Event;
use millstream_model::{Duration, FixedWindows};
use millstream_runtime::{PCollection, Window};
use serde::{Deserialize, Serialize};

/// Q7's window size, milliseconds.
pub const Q7_WINDOW_MS: i64 = 10_000;

/// A q7 result row, rendered `window_start|auction|price|bidder|dateTime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Q7Row {
    /// The window's start, epoch milliseconds.
    pub window_start: i64,
    /// The auction of a highest bid.
    pub auction: i64,
    /// The highest price in the window.
    pub price: i64,
    /// The bidder.
    pub bidder: i64,
    /// When the bid was made, epoch milliseconds.
    pub date_time: i64,
}

impl ResultRow for Q7Row {
    fn write_row<W: RowWriter + ?Sized>(&self, w: &mut W) {
        write_fields(
            w,
            &[
                Field::Int(self.window_start),
                Field::Int(self.auction),
                Field::Int(self.price),
                Field::Int(self.bidder),
                Field::Int(self.date_time),
            ],
        );
    }
}

/// A bid with the window's highest price: `(auction, bidder, dateTime)`.
type WinningBid = (i64, i64, i64);

/// Query 7: tumbling 10 s windows over bids; per window every bid whose price equals the
/// window's highest price.
///
/// One lifted combine per window (keyed by the window's start, which a bid's event time
/// determines): the highest price with the bids that have it.
pub fn q7(events: &PCollection<Event>) -> PCollection<Q7Row> {
    events
        .flat_map(|e: Event| match e {
            Event::Bid(b) => Some((
                aligned_start(b.date_time, Q7_WINDOW_MS),
                (b.price, (b.auction, b.bidder, b.date_time)),
            )),
            _ => None,
        })
        .window_into(Window::into(FixedWindows::of(Duration::from_millis(Q7_WINDOW_MS))))
        .combine_per_key(MaxWithTies)
        .flat_map(|(window_start, (price, bids)): (i64, (i64, Vec<WinningBid>))| {
            bids.into_iter().map(move |(auction, bidder, date_time)| Q7Row {
                window_start,
                auction,
                price,
                bidder,
                date_time,
            })
        })
}
