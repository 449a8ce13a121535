//! Query 2, selection: the bids on every 123rd auction.

use crate::answer::{write_fields, Field, ResultRow, RowWriter};
use crate::model::Event;
use millstream_runtime::PCollection;
use serde::{Deserialize, Serialize};

/// Q2 keeps bids whose auction id is a multiple of this.
pub const Q2_AUCTION_MODULUS: i64 = 123;

/// A q2 result row, rendered `auction|price`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Q2Row {
    /// The auction bid on.
    pub auction: i64,
    /// The bid's price.
    pub price: i64,
}

impl ResultRow for Q2Row {
    fn write_row<W: RowWriter + ?Sized>(&self, w: &mut W) {
        write_fields(w, &[Field::Int(self.auction), Field::Int(self.price)]);
    }
}

/// Query 2: `(auction, price)` of the bids with `auction % 123 == 0`.
pub fn q2(events: &PCollection<Event>) -> PCollection<Q2Row> {
    events.flat_map(|e: Event| match e {
        Event::Bid(b) if b.auction % Q2_AUCTION_MODULUS == 0 => {
            Some(Q2Row { auction: b.auction, price: b.price })
        }
        _ => None,
    })
}
