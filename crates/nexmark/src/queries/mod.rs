//! The Nexmark queries written with Millstream's Rust API.
//!
//! Each query is a function from the events (a `PCollection<Event>` whose element
//! timestamps are the events' `dateTime`) to its typed result rows, which render to the
//! lines of `docs/nexmark.md` ([`ResultRow`]). Windowed queries use event-time windows and
//! watermarks; their answer over a bounded input is final at the end of input.
//!
//! ```
//! use millstream_model::Timestamp;
//! use millstream_nexmark::answer::Answer;
//! use millstream_nexmark::queries::Query;
//! use millstream_nexmark::{Bid, Event};
//! use millstream_runtime::{Pipeline, Runner};
//! let bid = |auction, price, t| Event::Bid(Bid {
//!     auction, bidder: 7, price, channel: "Google".into(), url: "u".into(), date_time: t, extra: String::new(),
//! });
//! let events = vec![bid(123, 100, 1_000), bid(124, 5, 2_000), bid(246, 9, 3_000)];
//! let p = Pipeline::new();
//! let input = p.create_timestamped(events.iter().map(|e| (e.clone(), Timestamp(e.date_time()))).collect());
//! let q2: Query = "q2".parse().unwrap();
//! let answer = q2.answer(&input).collect();
//! let lines = q2.lines(&input).collect();
//! Runner::new().workers(2).run(&p).unwrap();
//! let mut lines = lines.values();
//! lines.sort();
//! assert_eq!(lines, vec!["123|100".to_string(), "246|9".to_string()]);
//! assert_eq!(answer.values(), vec![Answer::from_lines(["123|100", "246|9"])]);
//! ```

mod common;
mod q0;
mod q1;
mod q11;
mod q2;
mod q3;
mod q4;
mod q5;
mod q7;
mod q8;

pub use common::{MaxWithTies, TruncatingMean};
pub use q0::{q0, Q0Row};
pub(crate) use q1::write_q1;
pub use q1::{price_in_euros, q1, Q1Row};
pub use q11::{q11, Q11Row, SESSION_GAP_MS};
pub use q2::{q2, Q2Row, Q2_AUCTION_MODULUS};
pub use q3::{q3, Q3Row, Q3_CATEGORY, Q3_STATES};
pub use q4::{q4, Q4Row};
pub use q5::{q5, Q5Row, Q5_PERIOD_MS, Q5_SIZE_MS};
pub use q7::{q7, Q7Row, Q7_WINDOW_MS};
pub use q8::{q8, Q8Row, Q8_WINDOW_MS};

use crate::answer::{Answer, AnswerFn, ResultRow};
use crate::model::Event;
use millstream_runtime::{Element, PCollection};
use std::fmt;
use std::str::FromStr;

/// One of the implemented Nexmark queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Query {
    /// Pass-through.
    Q0,
    /// Currency conversion.
    Q1,
    /// Selection.
    Q2,
    /// Local item suggestion (all-time join).
    Q3,
    /// Average closing price per category.
    Q4,
    /// Hot items (sliding windows).
    Q5,
    /// Highest bid (tumbling windows).
    Q7,
    /// Monitor new users (windowed join).
    Q8,
    /// User sessions.
    Q11,
}

impl Query {
    /// Every implemented query, in order.
    pub const ALL: [Query; 9] =
        [Query::Q0, Query::Q1, Query::Q2, Query::Q3, Query::Q4, Query::Q5, Query::Q7, Query::Q8, Query::Q11];

    /// The query's name: `q0`, `q1`, ...
    pub fn name(self) -> &'static str {
        match self {
            Query::Q0 => "q0",
            Query::Q1 => "q1",
            Query::Q2 => "q2",
            Query::Q3 => "q3",
            Query::Q4 => "q4",
            Query::Q5 => "q5",
            Query::Q7 => "q7",
            Query::Q8 => "q8",
            Query::Q11 => "q11",
        }
    }

    /// Applies the query and maps each result row with `f` (which sees the typed row as a
    /// [`ResultRow`]): the way to get a uniform output type from any query.
    pub fn apply_rows<O, F>(self, events: &PCollection<Event>, f: F) -> PCollection<O>
    where
        O: Element,
        F: RowMapper<O>,
    {
        match self {
            Query::Q0 => map_rows(q0(events), f),
            Query::Q1 => map_rows(q1(events), f),
            Query::Q2 => map_rows(q2(events), f),
            Query::Q3 => map_rows(q3(events), f),
            Query::Q4 => map_rows(q4(events), f),
            Query::Q5 => map_rows(q5(events), f),
            Query::Q7 => map_rows(q7(events), f),
            Query::Q8 => map_rows(q8(events), f),
            Query::Q11 => map_rows(q11(events), f),
        }
    }

    /// The query's result rows, rendered (fields joined by `|`).
    pub fn lines(self, events: &PCollection<Event>) -> PCollection<String> {
        self.apply_rows(events, RenderRow)
    }

    /// The FNV-1a-64 hash of each result row's text.
    pub fn row_hashes(self, events: &PCollection<Event>) -> PCollection<u64> {
        self.apply_rows(events, RowHash)
    }

    /// The query's [`Answer`]: one element, in the global window, at the end of input
    /// (row hashes folded with [`AnswerFn`], which lifts ahead of the shuffle).
    pub fn answer(self, events: &PCollection<Event>) -> PCollection<Answer> {
        let hashes = self.row_hashes(events);
        common::in_global_window(&hashes).combine_globally(AnswerFn)
    }
}

/// Maps a typed result row to a uniform output (see [`Query::apply_rows`]).
pub trait RowMapper<O>: Clone + Send + Sync + 'static {
    /// Maps one row.
    fn map_row<R: ResultRow>(&self, row: &R) -> O;
}

/// Renders a row to its text.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenderRow;

impl RowMapper<String> for RenderRow {
    fn map_row<R: ResultRow>(&self, row: &R) -> String {
        row.render()
    }
}

/// Hashes a row's text (FNV-1a-64) without rendering it to a string.
#[derive(Clone, Copy, Debug, Default)]
pub struct RowHash;

impl RowMapper<u64> for RowHash {
    fn map_row<R: ResultRow>(&self, row: &R) -> u64 {
        row.row_hash()
    }
}

fn map_rows<R, O, F>(rows: PCollection<R>, f: F) -> PCollection<O>
where
    R: ResultRow + Element,
    O: Element,
    F: RowMapper<O>,
{
    rows.map(move |r: R| f.map_row(&r))
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A query name that is not one of the implemented queries.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown Nexmark query {0:?}: expected one of q0, q1, q2, q3, q4, q5, q7, q8, q11")]
pub struct UnknownQuery(pub String);

impl FromStr for Query {
    type Err = UnknownQuery;

    /// Parses `q5`, `Q5` or `5`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits = t.strip_prefix(['q', 'Q']).unwrap_or(t);
        Query::ALL.into_iter().find(|q| &q.name()[1..] == digits).ok_or_else(|| UnknownQuery(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_by_name() {
        for q in Query::ALL {
            assert_eq!(q.name().parse::<Query>(), Ok(q));
            assert_eq!(q.name().to_uppercase().parse::<Query>(), Ok(q));
            assert_eq!(q.to_string(), q.name());
        }
        assert_eq!("11".parse::<Query>(), Ok(Query::Q11));
        assert!("q6".parse::<Query>().is_err());
        assert!("".parse::<Query>().is_err());
        assert!("q".parse::<Query>().is_err());
    }
}
