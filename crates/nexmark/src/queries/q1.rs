//! Query 1, currency conversion: every bid with its price in euros.

use crate::answer::{write_fields, Field, ResultRow, RowWriter};
use crate::model::{Bid, Event};
use millstream_runtime::PCollection;
use serde::{Deserialize, Serialize};

/// A q1 result row, rendered `auction|bidder|price_eur|dateTime|extra`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Q1Row {
    /// The auction bid on.
    pub auction: i64,
    /// The bidder.
    pub bidder: i64,
    /// The price in euros ([`price_in_euros`]).
    pub price_eur: i64,
    /// When the bid was made, epoch milliseconds.
    pub date_time: i64,
    /// The bid's padding.
    pub extra: String,
}

/// A dollar price in euros: `price * 908 / 1000`, integer division truncating toward
/// zero (the multiplication wraps on overflow).
pub fn price_in_euros(price: i64) -> i64 {
    price.wrapping_mul(908) / 1000
}

impl Q1Row {
    /// The row for a bid.
    pub fn from_bid(b: Bid) -> Self {
        Q1Row {
            auction: b.auction,
            bidder: b.bidder,
            price_eur: price_in_euros(b.price),
            date_time: b.date_time,
            extra: b.extra,
        }
    }
}

/// Writes the q1 row of a bid without building it.
pub(crate) fn write_q1<W: RowWriter + ?Sized>(w: &mut W, b: &Bid) {
    write_fields(
        w,
        &[
            Field::Int(b.auction),
            Field::Int(b.bidder),
            Field::Int(price_in_euros(b.price)),
            Field::Int(b.date_time),
            Field::Text(&b.extra),
        ],
    );
}

impl ResultRow for Q1Row {
    fn write_row<W: RowWriter + ?Sized>(&self, w: &mut W) {
        write_fields(
            w,
            &[
                Field::Int(self.auction),
                Field::Int(self.bidder),
                Field::Int(self.price_eur),
                Field::Int(self.date_time),
                Field::Text(&self.extra),
            ],
        );
    }
}

/// Query 1: every bid, its price converted to euros.
pub fn q1(events: &PCollection<Event>) -> PCollection<Q1Row> {
    events.flat_map(|e: Event| match e {
        Event::Bid(b) => Some(Q1Row::from_bid(b)),
        _ => None,
    })
}
