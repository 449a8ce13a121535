//! Nexmark, the standard streaming benchmark (the version Beam's and Flink's Nexmark
//! suites use): the event model, a deterministic generator, the queries written with
//! Millstream's Rust API, and a hand-written single-threaded baseline per query.
//!
//! Events are [`Person`]s, [`Auction`]s and [`Bid`]s in the proportion 1:3:46. Their
//! JSON-lines form is the one Flink's Nexmark tables read
//! (`{"event_type":2,"person":null,"auction":null,"bid":{...}}`), with every `dateTime`
//! in epoch milliseconds, so that another engine can read exactly the same input.

#![warn(missing_docs)]

pub mod config;
pub mod files;
pub mod generator;
pub mod model;
pub mod source;

pub use config::{ConfigError, GeneratorConfig};
pub use generator::Generator;
pub use model::{Auction, Bid, Event, EventKind, Person};
pub use source::NexmarkSource;

pub mod answer;
pub mod baseline;
pub mod queries;

pub use answer::{Answer, ResultRow};
pub use queries::Query;
