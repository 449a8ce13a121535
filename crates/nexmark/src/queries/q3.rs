//! Query 3, local item suggestion: auctions in category 10 joined (all-time, inner)
//! with their seller when the seller lives in Oregon, Idaho or California.

use super::common::in_global_window;
use crate::answer::{write_fields, Field, ResultRow, RowWriter};
use crate::model::Event;
use millstream_runtime::stateful::{BagState, StatefulContext, StatefulDoFn};
use millstream_runtime::{PCollection, UserError};
use serde::{Deserialize, Serialize};

/// Q3 joins auctions of this category.
pub const Q3_CATEGORY: i64 = 10;

/// Q3 joins sellers living in these states.
pub const Q3_STATES: [&str; 3] = ["OR", "ID", "CA"];

/// A q3 result row, rendered `name|city|state|auction_id`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Q3Row {
    /// The seller's name.
    pub name: String,
    /// The seller's city.
    pub city: String,
    /// The seller's state.
    pub state: String,
    /// The auction's id.
    pub auction_id: i64,
}

impl ResultRow for Q3Row {
    fn write_row<W: RowWriter + ?Sized>(&self, w: &mut W) {
        write_fields(
            w,
            &[
                Field::Text(&self.name),
                Field::Text(&self.city),
                Field::Text(&self.state),
                Field::Int(self.auction_id),
            ],
        );
    }
}

/// The seller's side of the join: what the result row needs of the person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Seller {
    name: String,
    city: String,
    state: String,
}

/// One input of the join, keyed by person id (the auction's seller).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Side {
    /// A person in one of [`Q3_STATES`].
    Person(Seller),
    /// The id of an auction in [`Q3_CATEGORY`].
    Auction(i64),
}

/// Per seller id: the persons and the auctions seen so far (an inner join over all
/// time keeps both sides, as a regular SQL join does).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct JoinState {
    sellers: BagState<Seller>,
    auctions: BagState<i64>,
}

/// The all-time inner join of auctions with their sellers: each arrival is matched with
/// everything of the other side seen so far, so every match is emitted as soon as both
/// sides have arrived, in whichever order.
#[derive(Clone, Copy, Debug)]
struct SellerJoin;

fn row(s: &Seller, auction_id: i64) -> Q3Row {
    Q3Row { name: s.name.clone(), city: s.city.clone(), state: s.state.clone(), auction_id }
}

impl StatefulDoFn<i64, Side> for SellerJoin {
    type Output = Q3Row;
    type State = JoinState;

    fn process(
        &mut self,
        _seller_id: &i64,
        value: Side,
        state: &mut JoinState,
        ctx: &mut StatefulContext<'_, Q3Row>,
    ) -> Result<(), UserError> {
        match value {
            Side::Auction(id) => {
                for s in state.sellers.iter() {
                    ctx.output(row(s, id));
                }
                state.auctions.add(id);
            }
            Side::Person(s) => {
                for &id in state.auctions.iter() {
                    ctx.output(row(&s, id));
                }
                state.sellers.add(s);
            }
        }
        Ok(())
    }
}

/// Query 3: `(name, city, state, auction)` for every auction in category 10 whose seller
/// lives in OR, ID or CA, over all time (global window), emitted as soon as both the
/// auction and its seller have arrived, in whichever order.
pub fn q3(events: &PCollection<Event>) -> PCollection<Q3Row> {
    in_global_window(events)
        .flat_map(|e: Event| match e {
            Event::Person(p) if Q3_STATES.contains(&p.state.as_str()) => {
                Some((p.id, Side::Person(Seller { name: p.name, city: p.city, state: p.state })))
            }
            Event::Auction(a) if a.category == Q3_CATEGORY => Some((a.seller, Side::Auction(a.id))),
            _ => None,
        })
        .stateful_par_do("Q3Join", SellerJoin)
}
