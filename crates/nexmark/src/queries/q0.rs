//! Query 0, pass-through: every bid.

use crate::answer::{write_fields, Field, ResultRow, RowWriter};
use crate::model::{Bid, Event};
use millstream_runtime::PCollection;

/// A q0 result row: the bid itself, rendered
/// `auction|bidder|price|channel|url|dateTime|extra`.
pub type Q0Row = Bid;

impl ResultRow for Bid {
    fn write_row<W: RowWriter + ?Sized>(&self, w: &mut W) {
        write_fields(
            w,
            &[
                Field::Int(self.auction),
                Field::Int(self.bidder),
                Field::Int(self.price),
                Field::Text(&self.channel),
                Field::Text(&self.url),
                Field::Int(self.date_time),
                Field::Text(&self.extra),
            ],
        );
    }
}

/// Query 0: every bid, unchanged (measures the cost of moving events through the engine).
pub fn q0(events: &PCollection<Event>) -> PCollection<Q0Row> {
    events.flat_map(|e: Event| match e {
        Event::Bid(b) => Some(b),
        _ => None,
    })
}
