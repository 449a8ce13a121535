//! Query 4, average closing price per category.

use super::common::{in_global_window, TruncatingMean};
use crate::answer::{write_fields, Field, ResultRow, RowWriter};
use crate::model::Event;
use millstream_model::Timestamp;
use millstream_runtime::stateful::{
    BagState, StatefulContext, StatefulDoFn, TimeDomain, TimerFiring, ValueState,
};
use millstream_runtime::{PCollection, UserError};
use serde::{Deserialize, Serialize};

/// A q4 result row, rendered `category|avg_price`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Q4Row {
    /// The category.
    pub category: i64,
    /// The average closing price of its auctions, truncated to an integer.
    pub avg_price: i64,
}

impl ResultRow for Q4Row {
    fn write_row<W: RowWriter + ?Sized>(&self, w: &mut W) {
        write_fields(w, &[Field::Int(self.category), Field::Int(self.avg_price)]);
    }
}

/// What closing an auction needs to know of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OpenAuction {
    category: i64,
    date_time: i64,
    expires: i64,
}

impl OpenAuction {
    fn qualifies(&self, bid_time: i64) -> bool {
        self.date_time <= bid_time && bid_time <= self.expires
    }
}

/// One input of the per-auction step, keyed by auction id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Side {
    /// The auction.
    Auction(OpenAuction),
    /// A bid: `(price, dateTime)`.
    Bid(i64, i64),
}

/// Per auction: the auction once seen, its best qualifying price so far, and bids that
/// arrived before it (out-of-order data).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct AuctionState {
    auction: ValueState<OpenAuction>,
    best: ValueState<i64>,
    early: BagState<(i64, i64)>,
}

/// Fires at the auction's `expires`: the auction closes.
const CLOSE: &str = "close";
/// Fires when the watermark passes the latest early bid: an auction that has not come by
/// then is not coming (it would be older than the bid), so the early bids are dropped.
const FORGET: &str = "forget";

/// Closes each auction at its `expires` with an event-time timer and outputs
/// `(category, closing price)` if a bid qualified.
#[derive(Clone, Copy, Debug)]
struct CloseAuctions;

impl StatefulDoFn<i64, Side> for CloseAuctions {
    type Output = (i64, i64);
    type State = AuctionState;

    /// A closed auction (or forgotten early bids) leaves nothing: the runtime then drops
    /// the auction's state instead of keeping an empty struct per auction for ever.
    fn is_state_cleared(&self, state: &AuctionState) -> bool {
        state.auction.is_empty() && state.best.is_empty() && state.early.is_empty()
    }

    fn process(
        &mut self,
        _auction_id: &i64,
        value: Side,
        state: &mut AuctionState,
        ctx: &mut StatefulContext<'_, (i64, i64)>,
    ) -> Result<(), UserError> {
        match value {
            Side::Auction(a) => {
                // Auction ids are unique: a repeated auction is ignored.
                if !state.auction.is_empty() {
                    return Ok(());
                }
                let mut best = state.best.read().copied();
                for (price, t) in state.early.take() {
                    if a.qualifies(t) {
                        best = Some(best.map_or(price, |b| b.max(price)));
                    }
                }
                if let Some(b) = best {
                    state.best.write(b);
                }
                state.auction.write(a);
                ctx.clear_timer(FORGET, TimeDomain::EventTime);
                // Every bid at or before `expires` has come once the watermark passes it.
                ctx.set_timer(CLOSE, TimeDomain::EventTime, Timestamp(a.expires.max(a.date_time)))?;
            }
            Side::Bid(price, t) => match state.auction.read() {
                Some(a) => {
                    if a.qualifies(t) && state.best.read().is_none_or(|b| price > *b) {
                        state.best.write(price);
                    }
                }
                None => {
                    state.early.add((price, t));
                    let latest =
                        ctx.pending_timer(FORGET, TimeDomain::EventTime).map_or(t, |at| at.millis().max(t));
                    ctx.set_timer(FORGET, TimeDomain::EventTime, Timestamp(latest))?;
                }
            },
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        _auction_id: &i64,
        timer: &TimerFiring,
        state: &mut AuctionState,
        ctx: &mut StatefulContext<'_, (i64, i64)>,
    ) -> Result<(), UserError> {
        if timer.id == CLOSE {
            if let (Some(a), Some(best)) = (state.auction.read(), state.best.read()) {
                ctx.output((a.category, *best));
            }
            // Later bids are after `expires` (or late) and cannot qualify.
            state.auction.clear();
            state.best.clear();
            state.early.clear();
        } else if timer.id == FORGET && state.auction.is_empty() {
            state.early.clear();
        }
        Ok(())
    }
}

/// Query 4: per category, the average closing price of its auctions (global window,
/// final at the end of input).
///
/// Each auction closes at its `expires` (an event-time timer, so it waits for bids still
/// in flight); its closing price is its highest bid with
/// `auction.dateTime <= bid.dateTime <= auction.expires`, and auctions without such a bid
/// are left out. The per-category average is a lifted [`TruncatingMean`].
pub fn q4(events: &PCollection<Event>) -> PCollection<Q4Row> {
    in_global_window(events)
        .flat_map(|e: Event| match e {
            Event::Auction(a) => Some((
                a.id,
                Side::Auction(OpenAuction {
                    category: a.category,
                    date_time: a.date_time,
                    expires: a.expires,
                }),
            )),
            Event::Bid(b) => Some((b.auction, Side::Bid(b.price, b.date_time))),
            Event::Person(_) => None,
        })
        .stateful_par_do("Q4CloseAuctions", CloseAuctions)
        .combine_per_key(TruncatingMean)
        .map(|(category, avg_price)| Q4Row { category, avg_price })
}
