//! The Nexmark event model: people register, open auctions and bid on them.
//!
//! Field names follow the Nexmark specification (and the column names of Flink's Nexmark
//! tables): serialized in camelCase, times in epoch milliseconds.

use serde::{Deserialize, Serialize};

/// A person: a new user of the auction site.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// Unique person id.
    pub id: i64,
    /// Full name.
    pub name: String,
    /// E-mail address.
    pub email_address: String,
    /// Credit card number, as text.
    pub credit_card: String,
    /// City.
    pub city: String,
    /// US state (two letters).
    pub state: String,
    /// When the person registered, epoch milliseconds (the event time).
    pub date_time: i64,
    /// Padding to reach the configured average event size.
    pub extra: String,
}

/// An auction: an item put up for sale by a seller.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Auction {
    /// Unique auction id.
    pub id: i64,
    /// Item name.
    pub item_name: String,
    /// Item description.
    pub description: String,
    /// Initial bid, in cents.
    pub initial_bid: i64,
    /// Reserve price, in cents.
    pub reserve: i64,
    /// When the auction opened, epoch milliseconds (the event time).
    pub date_time: i64,
    /// When the auction closes, epoch milliseconds.
    pub expires: i64,
    /// The person selling the item ([`Person::id`]).
    pub seller: i64,
    /// Item category.
    pub category: i64,
    /// Padding to reach the configured average event size.
    pub extra: String,
}

/// A bid on an auction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bid {
    /// The auction bid on ([`Auction::id`]).
    pub auction: i64,
    /// The person bidding ([`Person::id`]).
    pub bidder: i64,
    /// Price, in cents.
    pub price: i64,
    /// The channel the bid came through (Flink's Nexmark field).
    pub channel: String,
    /// The URL of the bid (Flink's Nexmark field).
    pub url: String,
    /// When the bid was made, epoch milliseconds (the event time).
    pub date_time: i64,
    /// Padding to reach the configured average event size.
    pub extra: String,
}

/// Which of the three kinds an event is; the number is Flink's `event_type` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A [`Person`] (`event_type` 0).
    Person = 0,
    /// An [`Auction`] (`event_type` 1).
    Auction = 1,
    /// A [`Bid`] (`event_type` 2).
    Bid = 2,
}

/// One Nexmark event.
///
/// Serialized as Flink's Nexmark row: `event_type` and three nullable nested rows, of
/// which exactly one is set.
///
/// ```
/// use millstream_nexmark::{Bid, Event};
/// let event = Event::Bid(Bid {
///     auction: 1000, bidder: 1001, price: 42, channel: "Google".into(),
///     url: "https://www.nexmark.com/a/b/c/item.htm?query=1".into(),
///     date_time: 1_500_000_000_000, extra: String::new(),
/// });
/// let json = serde_json::to_string(&event).unwrap();
/// assert!(json.starts_with(r#"{"event_type":2,"person":null,"auction":null,"bid":{"auction":1000,"#));
/// assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "EventRow", try_from = "EventRow")]
pub enum Event {
    /// A new person.
    Person(Person),
    /// A new auction.
    Auction(Auction),
    /// A new bid.
    Bid(Bid),
}

impl Event {
    /// The event's time, epoch milliseconds.
    pub fn date_time(&self) -> i64 {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }

    /// Which kind of event this is.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Person(_) => EventKind::Person,
            Event::Auction(_) => EventKind::Auction,
            Event::Bid(_) => EventKind::Bid,
        }
    }
}

/// The serialized shape of an [`Event`] (Flink's Nexmark row).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct EventRow {
    event_type: u8,
    person: Option<Person>,
    auction: Option<Auction>,
    bid: Option<Bid>,
}

impl From<Event> for EventRow {
    fn from(e: Event) -> Self {
        match e {
            Event::Person(p) => EventRow { event_type: 0, person: Some(p), auction: None, bid: None },
            Event::Auction(a) => EventRow { event_type: 1, person: None, auction: Some(a), bid: None },
            Event::Bid(b) => EventRow { event_type: 2, person: None, auction: None, bid: Some(b) },
        }
    }
}

impl TryFrom<EventRow> for Event {
    type Error = String;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        match (row.event_type, row.person, row.auction, row.bid) {
            (0, Some(p), None, None) => Ok(Event::Person(p)),
            (1, None, Some(a), None) => Ok(Event::Auction(a)),
            (2, None, None, Some(b)) => Ok(Event::Bid(b)),
            (t, p, a, b) => Err(format!(
                "event_type {t} with person {}, auction {}, bid {}: exactly the row of the event's \
                 type must be set (0 person, 1 auction, 2 bid)",
                if p.is_some() { "set" } else { "null" },
                if a.is_some() { "set" } else { "null" },
                if b.is_some() { "set" } else { "null" },
            )),
        }
    }
}
