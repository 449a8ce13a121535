//! Hand-written single-threaded baselines: each query as a plain loop over the events
//! with hash maps, no Millstream.
//!
//! They are the correctness oracle for the queries in [`crate::queries`] and the
//! benchmark's "practical limit": what one core does with no engine at all. They see the
//! whole bounded input at once (in any order), so they compute each query's final answer
//! directly from its definition in `docs/nexmark.md`, without watermarks.
//!
//! ```
//! use millstream_nexmark::baseline;
//! use millstream_nexmark::queries::{Query, Q2Row};
//! use millstream_nexmark::{Bid, Event};
//! let bid = |auction, price| Event::Bid(Bid {
//!     auction, bidder: 1, price, channel: String::new(), url: String::new(), date_time: 0, extra: String::new(),
//! });
//! let events = vec![bid(123, 10), bid(5, 20)];
//! assert_eq!(baseline::q2(&events), vec![Q2Row { auction: 123, price: 10 }]);
//! assert_eq!(baseline::answer(Query::Q2, &events).rows, 1);
//! ```

mod fx;

use crate::answer::{Answer, Fnv1a64, ResultRow};
use crate::model::{Bid, Event};
use crate::queries::{
    Q0Row, Q11Row, Q1Row, Q2Row, Q3Row, Q4Row, Q5Row, Q7Row, Q8Row, Query, Q2_AUCTION_MODULUS, Q3_CATEGORY,
    Q3_STATES, Q5_PERIOD_MS, Q5_SIZE_MS, Q7_WINDOW_MS, Q8_WINDOW_MS, SESSION_GAP_MS,
};
pub use fx::{FxBuildHasher, FxHashMap, FxHashSet, FxHasher};

fn bids(events: &[Event]) -> impl Iterator<Item = &Bid> {
    events.iter().filter_map(|e| match e {
        Event::Bid(b) => Some(b),
        _ => None,
    })
}

fn aligned_start(t: i64, size: i64) -> i64 {
    t - t.rem_euclid(size)
}

/// Q0: every bid.
pub fn q0(events: &[Event]) -> Vec<Q0Row> {
    bids(events).cloned().collect()
}

/// Q1: every bid with its price in euros.
pub fn q1(events: &[Event]) -> Vec<Q1Row> {
    bids(events).map(|b| Q1Row::from_bid(b.clone())).collect()
}

/// Q2: `(auction, price)` of the bids on every 123rd auction.
pub fn q2(events: &[Event]) -> Vec<Q2Row> {
    bids(events)
        .filter(|b| b.auction % Q2_AUCTION_MODULUS == 0)
        .map(|b| Q2Row { auction: b.auction, price: b.price })
        .collect()
}

/// Q3: auctions in category 10 joined with their sellers in OR, ID or CA.
pub fn q3(events: &[Event]) -> Vec<Q3Row> {
    let mut sellers: FxHashMap<i64, Vec<(&str, &str, &str)>> = FxHashMap::default();
    let mut auctions: Vec<(i64, i64)> = Vec::new();
    for e in events {
        match e {
            Event::Person(p) if Q3_STATES.contains(&p.state.as_str()) => {
                sellers.entry(p.id).or_default().push((&p.name, &p.city, &p.state));
            }
            Event::Auction(a) if a.category == Q3_CATEGORY => auctions.push((a.seller, a.id)),
            _ => {}
        }
    }
    let mut rows = Vec::new();
    for (seller, id) in auctions {
        for (name, city, state) in sellers.get(&seller).map(Vec::as_slice).unwrap_or_default() {
            rows.push(Q3Row {
                name: (*name).to_owned(),
                city: (*city).to_owned(),
                state: (*state).to_owned(),
                auction_id: id,
            });
        }
    }
    rows
}

/// Q4: per category, the truncated average of its auctions' closing prices.
pub fn q4(events: &[Event]) -> Vec<Q4Row> {
    // (category, dateTime, expires) per auction.
    let mut auctions: FxHashMap<i64, (i64, i64, i64)> = FxHashMap::default();
    for e in events {
        if let Event::Auction(a) = e {
            auctions.entry(a.id).or_insert((a.category, a.date_time, a.expires));
        }
    }
    let mut best: FxHashMap<i64, i64> = FxHashMap::default();
    for b in bids(events) {
        if let Some(&(_, opened, expires)) = auctions.get(&b.auction) {
            if opened <= b.date_time && b.date_time <= expires {
                let e = best.entry(b.auction).or_insert(b.price);
                *e = (*e).max(b.price);
            }
        }
    }
    let mut per_category: FxHashMap<i64, (i64, i64)> = FxHashMap::default();
    for (auction, price) in best {
        if let Some(&(category, _, _)) = auctions.get(&auction) {
            let e = per_category.entry(category).or_insert((0, 0));
            e.0 = e.0.wrapping_add(price);
            e.1 += 1;
        }
    }
    per_category
        .into_iter()
        .map(|(category, (sum, count))| Q4Row { category, avg_price: sum.checked_div(count).unwrap_or(0) })
        .collect()
}

/// Q5: per sliding window (10 s every 2 s), the auctions with the most bids.
pub fn q5(events: &[Event]) -> Vec<Q5Row> {
    const _: () = assert!(Q5_SIZE_MS % Q5_PERIOD_MS == 0);
    // Bids per (period slot, auction); each slot belongs to size / period windows.
    let mut per_slot: FxHashMap<(i64, i64), u64> = FxHashMap::default();
    for b in bids(events) {
        *per_slot.entry((aligned_start(b.date_time, Q5_PERIOD_MS), b.auction)).or_insert(0) += 1;
    }
    let mut per_window: FxHashMap<(i64, i64), u64> = FxHashMap::default();
    for (&(slot, auction), &n) in &per_slot {
        let mut start = slot;
        while start > slot - Q5_SIZE_MS {
            *per_window.entry((start, auction)).or_insert(0) += n;
            start -= Q5_PERIOD_MS;
        }
    }
    let mut hottest: FxHashMap<i64, (u64, Vec<i64>)> = FxHashMap::default();
    for ((start, auction), n) in per_window {
        let e = hottest.entry(start).or_insert((0, Vec::new()));
        if n > e.0 {
            e.0 = n;
            e.1.clear();
            e.1.push(auction);
        } else if n == e.0 {
            e.1.push(auction);
        }
    }
    let mut rows = Vec::new();
    for (window_start, (num_bids, auctions)) in hottest {
        rows.extend(auctions.into_iter().map(|auction| Q5Row { window_start, auction, num_bids }));
    }
    rows
}

/// Q7: per tumbling 10 s window, the bids with the window's highest price.
pub fn q7(events: &[Event]) -> Vec<Q7Row> {
    let mut highest: FxHashMap<i64, (i64, Vec<&Bid>)> = FxHashMap::default();
    for b in bids(events) {
        let e = highest.entry(aligned_start(b.date_time, Q7_WINDOW_MS)).or_insert((b.price, Vec::new()));
        if b.price > e.0 {
            e.0 = b.price;
            e.1.clear();
        }
        if b.price == e.0 {
            e.1.push(b);
        }
    }
    let mut rows = Vec::new();
    for (window_start, (price, bids)) in highest {
        rows.extend(bids.into_iter().map(|b| Q7Row {
            window_start,
            auction: b.auction,
            price,
            bidder: b.bidder,
            date_time: b.date_time,
        }));
    }
    rows
}

/// Q8: per tumbling 10 s window, the persons who registered and opened an auction in it.
pub fn q8(events: &[Event]) -> Vec<Q8Row> {
    let mut persons: FxHashMap<(i64, i64), Vec<&str>> = FxHashMap::default();
    let mut sellers: FxHashSet<(i64, i64)> = FxHashSet::default();
    for e in events {
        match e {
            Event::Person(p) => {
                let names = persons.entry((p.id, aligned_start(p.date_time, Q8_WINDOW_MS))).or_default();
                if !names.contains(&p.name.as_str()) {
                    names.push(&p.name);
                }
            }
            Event::Auction(a) => {
                sellers.insert((a.seller, aligned_start(a.date_time, Q8_WINDOW_MS)));
            }
            Event::Bid(_) => {}
        }
    }
    let mut rows = Vec::new();
    for ((person_id, window_start), names) in persons {
        if sellers.contains(&(person_id, window_start)) {
            rows.extend(names.into_iter().map(|name| Q8Row {
                person_id,
                name: name.to_owned(),
                window_start,
            }));
        }
    }
    rows
}

/// Q11: per bidder, the number of bids in each session (10 s gap).
pub fn q11(events: &[Event]) -> Vec<Q11Row> {
    let mut times: FxHashMap<i64, Vec<i64>> = FxHashMap::default();
    for b in bids(events) {
        times.entry(b.bidder).or_default().push(b.date_time);
    }
    let mut rows = Vec::new();
    for (bidder, mut ts) in times {
        ts.sort_unstable();
        let Some(&first) = ts.first() else { continue };
        let (mut start, mut last) = (first, first);
        let mut count = 0u64;
        for t in ts {
            // Windows [t, t + gap) merge when they overlap.
            if t >= last + SESSION_GAP_MS {
                rows.push(Q11Row {
                    bidder,
                    bid_count: count,
                    session_start: start,
                    session_end: last + SESSION_GAP_MS,
                });
                start = t;
                count = 0;
            }
            last = t;
            count += 1;
        }
        rows.push(Q11Row {
            bidder,
            bid_count: count,
            session_start: start,
            session_end: last + SESSION_GAP_MS,
        });
    }
    rows
}

/// The rows of `query` over `events`, rendered (fields joined by `|`), in no particular
/// order.
pub fn lines(query: Query, events: &[Event]) -> Vec<String> {
    fn render<R: ResultRow>(rows: Vec<R>) -> Vec<String> {
        rows.iter().map(ResultRow::render).collect()
    }
    match query {
        Query::Q0 => render(q0(events)),
        Query::Q1 => render(q1(events)),
        Query::Q2 => render(q2(events)),
        Query::Q3 => render(q3(events)),
        Query::Q4 => render(q4(events)),
        Query::Q5 => render(q5(events)),
        Query::Q7 => render(q7(events)),
        Query::Q8 => render(q8(events)),
        Query::Q11 => render(q11(events)),
    }
}

/// The [`Answer`] of `query` over `events`. The pass-through queries hash each row as
/// they render it, without building rows; the others hash their (few) rows.
pub fn answer(query: Query, events: &[Event]) -> Answer {
    let mut answer = Answer::new();
    match query {
        Query::Q0 => bids(events).for_each(|b| answer.add_row(b)),
        Query::Q1 => bids(events).for_each(|b| {
            let mut h = Fnv1a64::new();
            crate::queries::write_q1(&mut h, b);
            answer.add_hash(h.finish());
        }),
        Query::Q2 => bids(events).filter(|b| b.auction % Q2_AUCTION_MODULUS == 0).for_each(|b| {
            answer.add_row(&Q2Row { auction: b.auction, price: b.price });
        }),
        Query::Q3 => q3(events).iter().for_each(|r| answer.add_row(r)),
        Query::Q4 => q4(events).iter().for_each(|r| answer.add_row(r)),
        Query::Q5 => q5(events).iter().for_each(|r| answer.add_row(r)),
        Query::Q7 => q7(events).iter().for_each(|r| answer.add_row(r)),
        Query::Q8 => q8(events).iter().for_each(|r| answer.add_row(r)),
        Query::Q11 => q11(events).iter().for_each(|r| answer.add_row(r)),
    }
    answer
}
