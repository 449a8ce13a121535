//! The Nexmark event [`Generator`], after Beam's `Generator` and its `PersonGenerator`,
//! `AuctionGenerator` and `BidGenerator` (with the `channel` and `url` of Flink's
//! `BidGenerator`).
//!
//! Event number `n` is a pure function of the configuration and `n`: its id is the
//! adjusted number `id = adjusted(n)` ([`GeneratorConfig::adjusted_event_number`]), its
//! kind is given by `id % 50` (1 person, then 3 auctions, then 46 bids, by default), its
//! event time is [`GeneratorConfig::timestamp_for_event`]`(id)`, and its random choices
//! come from a ChaCha8 generator keyed by the seed on the stream `id` (where Beam uses
//! `new Random(eventId)`). So any event can be computed alone, and partition `p` of `n`
//! (event numbers `p, p + n, p + 2n, ...`) together with the others yields exactly the
//! events of a single generator, whatever `n`.
//!
//! Ids follow Beam: persons and auctions are numbered from 1000 in the order they are
//! generated; a bid is on the current hot auction or on one of the latest
//! `num_in_flight_auctions` auctions (or up to [`AUCTION_ID_LEAD`] ahead, an auction
//! not yet opened), by the current hot bidder or one of the latest `num_active_people`
//! persons (or up to [`PERSON_ID_LEAD`] ahead); an auction's seller likewise.
//!
//! Differences from Beam, all deliberate: the random numbers are ChaCha8's, not
//! `java.util.Random`'s, so the values differ from Java's for the same seed (the
//! distributions are Beam's); delays are kept in nanoseconds (Beam: microseconds); the
//! URLs of channels are drawn from the seed (Flink draws them from an unseeded random
//! generator) and the bidder id is `FIRST_PERSON_ID`-based once (Flink adds it twice).
//!
//! ```
//! use millstream_nexmark::{Event, Generator, GeneratorConfig};
//! let config = GeneratorConfig::new().num_events(100);
//! let events: Vec<Event> = Generator::new(config.clone()).unwrap().collect();
//! assert_eq!(events.len(), 100);
//! assert!(matches!(events[0], Event::Person(_)));
//! // Partition 1 of 3 makes events 1, 4, 7, ...
//! let mut part = Generator::partition(config, 1, 3).unwrap();
//! assert_eq!(part.next(), Some(events[1].clone()));
//! assert_eq!(part.next(), Some(events[4].clone()));
//! ```

use crate::config::{ConfigError, GeneratorConfig, FIRST_AUCTION_ID, FIRST_CATEGORY_ID, FIRST_PERSON_ID};
use crate::model::{Auction, Bid, Event, EventKind, Person};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// How many not-yet-generated person ids a seller or bidder may have (Beam's
/// `PERSON_ID_LEAD`).
pub const PERSON_ID_LEAD: i64 = 10;
/// How many not-yet-generated auction ids a bid may be on (Beam's `AUCTION_ID_LEAD`).
pub const AUCTION_ID_LEAD: i64 = 10;
/// Hot sellers, bidders and auctions are the first of each batch of this many (Beam's
/// `HOT_SELLER_RATIO`, `HOT_BIDDER_RATIO`, `HOT_AUCTION_RATIO` constants).
const HOT_BATCH: i64 = 100;
/// Number of auction categories (Beam's `NUM_CATEGORIES`).
const NUM_CATEGORIES: u32 = 5;
/// Shortest random string (Beam's `MIN_STRING_LENGTH`).
const MIN_STRING_LENGTH: u32 = 3;
/// A bid is through a hot channel with probability `1 - 1/HOT_CHANNELS_RATIO` (Flink).
const HOT_CHANNELS_RATIO: u32 = 2;
/// The number of other channels (Flink's `CHANNELS_NUMBER`).
const CHANNELS_NUMBER: u32 = 10_000;
/// Flink's hot channels.
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
/// Beam's states, cities and names.
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const FIRST_NAMES: [&str; 11] =
    ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"];
const LAST_NAMES: [&str; 9] =
    ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"];
/// The ChaCha stream of the channel table (event ids use the streams from 0 up).
const CHANNEL_STREAM: u64 = u64::MAX;

/// The channels' names and URLs, drawn once per seed.
struct Channels {
    hot_urls: [String; 4],
    names: Vec<String>,
    urls: Vec<String>,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels").field("channels", &self.names.len()).finish_non_exhaustive()
    }
}

impl Channels {
    fn new(key: [u8; 32]) -> Self {
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(CHANNEL_STREAM);
        let hot_urls = std::array::from_fn(|_| base_url(&mut rng));
        let mut names = Vec::with_capacity(CHANNELS_NUMBER as usize);
        let mut urls = Vec::with_capacity(CHANNELS_NUMBER as usize);
        for c in 0..CHANNELS_NUMBER {
            names.push(format!("channel-{c}"));
            let mut url = base_url(&mut rng);
            // Flink: 9 in 10 channel URLs carry the channel id (bit-reversed).
            if rng.gen_range(0..10u32) > 0 {
                url.push_str("&channel_id=");
                url.push_str(&(c as i32).reverse_bits().wrapping_abs().to_string());
            }
            urls.push(url);
        }
        Channels { hot_urls, names, urls }
    }
}

/// Flink's `getBaseUrl`: `https://www.nexmark.com/<a>/<b>/<c>/item.htm?query=1`.
fn base_url(rng: &mut ChaCha8Rng) -> String {
    let mut url = String::with_capacity(64);
    url.push_str("https://www.nexmark.com/");
    for _ in 0..3 {
        push_string(rng, &mut url, 5, '_');
        url.push('/');
    }
    url.push_str("item.htm?query=1");
    url
}

/// Appends Beam's `nextString(maxLength)`: 3 to `max_len - 1` characters, each `special`
/// with probability 1/13 and otherwise a random lower-case letter, trimmed of spaces.
fn push_string(rng: &mut ChaCha8Rng, out: &mut String, max_len: u32, special: char) {
    let len = MIN_STRING_LENGTH + rng.gen_range(0..max_len - MIN_STRING_LENGTH);
    let start = out.len();
    for _ in 0..len {
        // One draw per character: 1 in 13 is `special`, the rest uniform letters.
        let x = rng.next_u32() % (13 * 26);
        if x < 26 {
            out.push(special);
        } else {
            out.push((b'a' + (x % 26) as u8) as char);
        }
    }
    if special == ' ' {
        while out.len() > start && out.ends_with(' ') {
            out.pop();
        }
        let leading = out[start..].bytes().take_while(|b| *b == b' ').count();
        if leading > 0 {
            out.drain(start..start + leading);
        }
    }
}

/// Beam's `nextExtra`: random letters such that `current + len` is on average `average`
/// (uniform within ±20 %); empty when the event is already larger.
fn next_extra(rng: &mut ChaCha8Rng, current: usize, average: u32) -> String {
    let average = average as usize;
    if current > average {
        return String::new();
    }
    let desired = average - current;
    // Math.round(desired * 0.2), in integers.
    let delta = (2 * desired + 5) / 10;
    let len = desired - delta + if delta == 0 { 0 } else { rng.gen_range(0..(2 * delta) as u32) as usize };
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        // 13 base-26 digits of a uniform fraction `x / 2^64` per draw.
        let mut x = rng.next_u64();
        let take = (len - bytes.len()).min(13);
        bytes.extend((0..take).map(|_| {
            let p = x as u128 * 26;
            x = p as u64;
            b'a' + (p >> 64) as u8
        }));
    }
    // Only ASCII letters: always valid UTF-8.
    String::from_utf8(bytes).unwrap_or_default()
}

/// Beam's `nextPrice`: `round(10^(6u) * 100)` cents for a uniform `u` in `[0, 1)`: 1 $ to
/// 1 000 000 $, log-uniform.
fn next_price(rng: &mut ChaCha8Rng) -> i64 {
    // 10^(6u) as e^(6u ln 10): `exp` is cheaper than `powf`.
    ((rng.gen::<f64>() * (6.0 * std::f64::consts::LN_10)).exp() * 100.0).round() as i64
}

/// A uniform number in `[0, n)` (Beam's `LongGenerator.nextLong`); 0 when `n <= 0`.
fn next_long(rng: &mut ChaCha8Rng, n: i64) -> i64 {
    if n <= 1 {
        // Draw anyway so that the sequence of draws does not depend on `n`.
        rng.next_u32();
        return 0;
    }
    rng.gen_range(0..n)
}

/// One of `items`, uniformly (drawn as a `u32`, so the same on every platform).
fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len() as u32) as usize]
}

/// Appends four decimal digits of `n < 10 000`.
fn push_4_digits(out: &mut String, n: u32) {
    for d in [n / 1000, n / 100 % 10, n / 10 % 10, n % 10] {
        out.push((b'0' + d as u8) as char);
    }
}

/// The latest person id (base 0) at event id `id`: the person's own when `id` makes a
/// person (Beam's `lastBase0PersonId`).
fn last_base0_person_id(c: &Mix, id: u64) -> i64 {
    let epoch = (id / c.total) as i64;
    let offset = (id % c.total).min(c.person - 1) as i64;
    epoch * c.person as i64 + offset
}

/// The latest auction id (base 0) at event id `id`: the auction's own when `id` makes an
/// auction (Beam's `lastBase0AuctionId`; -1 before the first auction).
fn last_base0_auction_id(c: &Mix, id: u64) -> i64 {
    let mut epoch = (id / c.total) as i64;
    let mut offset = (id % c.total) as i64;
    let (person, auction) = (c.person as i64, c.auction as i64);
    if offset < person {
        epoch -= 1;
        offset = auction - 1;
    } else if offset >= person + auction {
        offset = auction - 1;
    } else {
        offset -= person;
    }
    epoch * auction + offset
}

/// The latest person id at event id `id` (with [`FIRST_PERSON_ID`]): every person up to
/// it has been generated by then (its own id for a person event).
pub fn last_person_id(config: &GeneratorConfig, id: u64) -> i64 {
    last_base0_person_id(&Mix::new(config), id) + FIRST_PERSON_ID
}

/// The latest auction id at event id `id` (with [`FIRST_AUCTION_ID`]); below
/// `FIRST_AUCTION_ID` before the first auction.
pub fn last_auction_id(config: &GeneratorConfig, id: u64) -> i64 {
    last_base0_auction_id(&Mix::new(config), id) + FIRST_AUCTION_ID
}

/// The kind of event id `id` (after adjustment): `id % total` below the person
/// proportion is a person, then auctions, then bids.
pub fn kind_of_id(config: &GeneratorConfig, id: u64) -> EventKind {
    Mix::new(config).kind(id)
}

/// The event mix, as `u64`s.
#[derive(Clone, Copy, Debug)]
struct Mix {
    person: u64,
    auction: u64,
    total: u64,
}

impl Mix {
    fn new(c: &GeneratorConfig) -> Self {
        let person = (c.person_proportion as u64).max(1);
        let auction = (c.auction_proportion as u64).max(1);
        Mix { person, auction, total: person + auction + (c.bid_proportion as u64).max(1) }
    }

    fn kind(&self, id: u64) -> EventKind {
        let rem = id % self.total;
        if rem < self.person {
            EventKind::Person
        } else if rem < self.person + self.auction {
            EventKind::Auction
        } else {
            EventKind::Bid
        }
    }
}

/// A deterministic generator of Nexmark events: all of them, or one partition's share.
///
/// It is an [`Iterator`] of [`Event`]s; [`fill`](Self::fill) appends a batch to a
/// vector, and [`event`](Self::event) computes any one event. Cloning is cheap (the
/// channel table is shared).
#[derive(Clone, Debug)]
pub struct Generator {
    config: GeneratorConfig,
    mix: Mix,
    key: [u8; 32],
    channels: Arc<Channels>,
    /// The next event number to make.
    next: u64,
    /// The distance between this generator's event numbers (its partition count).
    stride: u64,
    /// One past the last event number (`u64::MAX` when unbounded).
    end: u64,
}

impl Generator {
    /// A generator of all the configured events, `0..num_events`.
    pub fn new(config: GeneratorConfig) -> Result<Self, ConfigError> {
        Self::partition(config, 0, 1)
    }

    /// A generator of partition `partition` of `partitions`: the event numbers
    /// `partition, partition + partitions, ...` below `num_events`.
    pub fn partition(config: GeneratorConfig, partition: u64, partitions: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        if partition >= partitions {
            return Err(ConfigError::BadPartition { partition, partitions });
        }
        let key = ChaCha8Rng::seed_from_u64(config.seed).get_seed();
        Ok(Generator {
            mix: Mix::new(&config),
            end: config.num_events.unwrap_or(u64::MAX),
            config,
            key,
            channels: Arc::new(Channels::new(key)),
            next: partition,
            stride: partitions,
        })
    }

    /// This generator, for partition `partition` of `partitions` from the start (sharing
    /// the channel table, so cheaper than [`partition`](Self::partition)).
    pub fn for_partition(&self, partition: u64, partitions: u64) -> Result<Self, ConfigError> {
        if partition >= partitions {
            return Err(ConfigError::BadPartition { partition, partitions });
        }
        Ok(Generator { next: partition, stride: partitions, ..self.clone() })
    }

    /// The configuration.
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// The next event number this generator will make (its position, for checkpoints).
    pub fn next_event_number(&self) -> u64 {
        self.next
    }

    /// Continues from event number `n` (a position from
    /// [`next_event_number`](Self::next_event_number); for a partition it should be one
    /// of the partition's numbers).
    pub fn seek(&mut self, n: u64) {
        self.next = n;
    }

    /// The distance between this generator's event numbers.
    pub fn stride(&self) -> u64 {
        self.stride
    }

    /// Whether every event of this generator has been made.
    pub fn is_finished(&self) -> bool {
        self.next >= self.end
    }

    /// How many events are left (`None` when unbounded).
    pub fn remaining(&self) -> Option<u64> {
        self.config.num_events.map(|end| end.saturating_sub(self.next).div_ceil(self.stride))
    }

    /// A perfect watermark for what is left: no later event of this generator has an
    /// earlier event time (Beam's `nextEventNumberForWatermark`).
    pub fn watermark(&self) -> i64 {
        self.config.watermark_for_event(self.next)
    }

    /// Appends up to `max` next events to `out`; returns how many.
    pub fn fill(&mut self, out: &mut Vec<Event>, max: usize) -> usize {
        let left = self.remaining().unwrap_or(u64::MAX);
        let count = left.min(max as u64) as usize;
        out.reserve(count);
        for _ in 0..count {
            out.push(self.event(self.next));
            self.next = self.next.saturating_add(self.stride);
        }
        count
    }

    /// Event number `n` (whether or not this generator's partition makes it).
    pub fn event(&self, n: u64) -> Event {
        let id = self.config.adjusted_event_number(n);
        let timestamp = self.config.timestamp_for_event(id);
        let mut rng = ChaCha8Rng::from_seed(self.key);
        rng.set_stream(id);
        match self.mix.kind(id) {
            EventKind::Person => Event::Person(self.person(id, &mut rng, timestamp)),
            EventKind::Auction => Event::Auction(self.auction(id, &mut rng, timestamp)),
            EventKind::Bid => Event::Bid(self.bid(id, &mut rng, timestamp)),
        }
    }

    /// Beam's `nextBase0PersonId`: one of the active people, or a few ahead.
    fn next_base0_person_id(&self, id: u64, rng: &mut ChaCha8Rng) -> i64 {
        let num_people = last_base0_person_id(&self.mix, id) + 1;
        let active = num_people.min(self.config.num_active_people as i64);
        num_people - active + next_long(rng, active + PERSON_ID_LEAD)
    }

    /// Beam's `nextBase0AuctionId`: one of the in-flight auctions, or a few ahead.
    fn next_base0_auction_id(&self, id: u64, rng: &mut ChaCha8Rng) -> i64 {
        let max = last_base0_auction_id(&self.mix, id);
        let min = (max - self.config.num_in_flight_auctions as i64).max(0);
        min + next_long(rng, max - min + 1 + AUCTION_ID_LEAD)
    }

    fn person(&self, id: u64, rng: &mut ChaCha8Rng, timestamp: i64) -> Person {
        let mut name = String::with_capacity(16);
        name.push_str(pick(rng, &FIRST_NAMES));
        name.push(' ');
        name.push_str(pick(rng, &LAST_NAMES));
        let mut email_address = String::with_capacity(16);
        push_string(rng, &mut email_address, 7, ' ');
        email_address.push('@');
        push_string(rng, &mut email_address, 5, ' ');
        email_address.push_str(".com");
        let mut credit_card = String::with_capacity(19);
        for i in 0..4 {
            if i > 0 {
                credit_card.push(' ');
            }
            push_4_digits(&mut credit_card, rng.gen_range(0..10_000));
        }
        let city = pick(rng, &US_CITIES);
        let state = pick(rng, &US_STATES);
        let current = 8 + name.len() + email_address.len() + credit_card.len() + city.len() + state.len();
        let extra = next_extra(rng, current, self.config.avg_person_byte_size);
        Person {
            id: last_base0_person_id(&self.mix, id) + FIRST_PERSON_ID,
            name,
            email_address,
            credit_card,
            city: city.to_owned(),
            state: state.to_owned(),
            date_time: timestamp,
            extra,
        }
    }

    fn auction(&self, id: u64, rng: &mut ChaCha8Rng, timestamp: i64) -> Auction {
        let seller = if rng.gen_range(0..self.config.hot_sellers_ratio) > 0 {
            // The first person of the latest batch of 100.
            last_base0_person_id(&self.mix, id) / HOT_BATCH * HOT_BATCH
        } else {
            self.next_base0_person_id(id, rng)
        } + FIRST_PERSON_ID;
        let category = FIRST_CATEGORY_ID + rng.gen_range(0..NUM_CATEGORIES) as i64;
        let initial_bid = next_price(rng);
        let expires = timestamp.saturating_add(self.auction_length_ms(id, rng, timestamp));
        let mut item_name = String::with_capacity(20);
        push_string(rng, &mut item_name, 20, ' ');
        let mut description = String::with_capacity(100);
        push_string(rng, &mut description, 100, ' ');
        let reserve = initial_bid + next_price(rng);
        let current = 8 + item_name.len() + description.len() + 8 + 8 + 8 + 8 + 8;
        let extra = next_extra(rng, current, self.config.avg_auction_byte_size);
        Auction {
            id: last_base0_auction_id(&self.mix, id) + FIRST_AUCTION_ID,
            item_name,
            description,
            initial_bid,
            reserve,
            date_time: timestamp,
            expires,
            seller,
            category,
            extra,
        }
    }

    /// Beam's `nextAuctionLengthMs`: uniform in `[1, 2h]` where `h` is the event time
    /// until `num_in_flight_auctions` more auctions have been opened.
    fn auction_length_ms(&self, id: u64, rng: &mut ChaCha8Rng, timestamp: i64) -> i64 {
        let events_for_auctions =
            self.config.num_in_flight_auctions as u64 * self.mix.total / self.mix.auction.max(1);
        let future = self.config.timestamp_for_event(id.saturating_add(events_for_auctions));
        let horizon = future.saturating_sub(timestamp);
        1 + next_long(rng, horizon.saturating_mul(2).max(1))
    }

    fn bid(&self, id: u64, rng: &mut ChaCha8Rng, timestamp: i64) -> Bid {
        let auction = if rng.gen_range(0..self.config.hot_auction_ratio) > 0 {
            // The first auction of the latest batch of 100.
            last_base0_auction_id(&self.mix, id) / HOT_BATCH * HOT_BATCH
        } else {
            self.next_base0_auction_id(id, rng)
        } + FIRST_AUCTION_ID;
        let bidder = if rng.gen_range(0..self.config.hot_bidders_ratio) > 0 {
            // The second person of the latest batch of 100 (so that hot bidders and hot
            // sellers differ).
            last_base0_person_id(&self.mix, id) / HOT_BATCH * HOT_BATCH + 1
        } else {
            self.next_base0_person_id(id, rng)
        } + FIRST_PERSON_ID;
        let price = next_price(rng);
        let (channel, url) = if rng.gen_range(0..HOT_CHANNELS_RATIO) > 0 {
            let i = rng.gen_range(0..HOT_CHANNELS.len() as u32) as usize;
            (HOT_CHANNELS[i].to_owned(), self.channels.hot_urls[i].clone())
        } else {
            let c = rng.gen_range(0..CHANNELS_NUMBER) as usize;
            (self.channels.names[c].clone(), self.channels.urls[c].clone())
        };
        let extra = next_extra(rng, 8 + 8 + 8 + 8, self.config.avg_bid_byte_size);
        Bid { auction, bidder, price, channel, url, date_time: timestamp, extra }
    }
}

impl Iterator for Generator {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.next >= self.end {
            return None;
        }
        let event = self.event(self.next);
        self.next = self.next.saturating_add(self.stride);
        Some(event)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.remaining() {
            Some(n) => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                (n, Some(n))
            }
            None => (usize::MAX, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(1)
    }

    #[test]
    fn strings_have_beams_shape() {
        let mut r = rng();
        for _ in 0..1000 {
            let mut s = String::new();
            push_string(&mut r, &mut s, 20, ' ');
            assert!(s.len() < 20, "{s:?}");
            assert!(!s.starts_with(' ') && !s.ends_with(' '), "{s:?}");
            assert!(s.bytes().all(|b| b == b' ' || b.is_ascii_lowercase()));
            let mut u = String::new();
            push_string(&mut r, &mut u, 5, '_');
            assert!((3..5).contains(&u.len()), "{u:?}");
        }
    }

    #[test]
    fn extra_pads_to_the_average() {
        let mut r = rng();
        let n = 10_000;
        let total: usize = (0..n).map(|_| 32 + next_extra(&mut r, 32, 100).len()).sum();
        let avg = total as f64 / n as f64;
        assert!((avg - 100.0).abs() < 1.0, "{avg}");
        assert_eq!(next_extra(&mut r, 300, 100), "");
        let e = next_extra(&mut r, 0, 100);
        assert!((80..120).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_lowercase()));
    }

    #[test]
    fn prices_are_one_dollar_to_a_million() {
        let mut r = rng();
        for _ in 0..1000 {
            let p = next_price(&mut r);
            assert!((100..=100_000_000).contains(&p), "{p}");
        }
    }

    #[test]
    fn last_ids_follow_beam() {
        let m = Mix::new(&GeneratorConfig::new());
        // Event 0 is person 0; 1..=3 are auctions 0..=2; 4..=49 bids; 50 person 1.
        assert_eq!(last_base0_person_id(&m, 0), 0);
        assert_eq!(last_base0_person_id(&m, 49), 0);
        assert_eq!(last_base0_person_id(&m, 50), 1);
        assert_eq!(last_base0_auction_id(&m, 0), -1);
        assert_eq!(last_base0_auction_id(&m, 1), 0);
        assert_eq!(last_base0_auction_id(&m, 3), 2);
        assert_eq!(last_base0_auction_id(&m, 4), 2);
        assert_eq!(last_base0_auction_id(&m, 50), 2);
        assert_eq!(last_base0_auction_id(&m, 51), 3);
    }

    #[test]
    fn digits() {
        let mut s = String::new();
        push_4_digits(&mut s, 7);
        push_4_digits(&mut s, 9999);
        assert_eq!(s, "00079999");
    }

    #[test]
    fn channels_are_flinks() {
        let g = Generator::new(GeneratorConfig::new()).unwrap();
        assert_eq!(g.channels.names[42], "channel-42");
        for url in g.channels.urls.iter().chain(g.channels.hot_urls.iter()) {
            assert!(
                url.starts_with("https://www.nexmark.com/") && url.contains("/item.htm?query=1"),
                "{url}"
            );
        }
        let with_id = g.channels.urls.iter().filter(|u| u.contains("&channel_id=")).count();
        assert!((8500..9500).contains(&with_id), "{with_id}");
    }

    #[test]
    fn bad_partition_is_an_error() {
        assert!(matches!(
            Generator::partition(GeneratorConfig::new(), 3, 3),
            Err(ConfigError::BadPartition { partition: 3, partitions: 3 })
        ));
        assert!(Generator::partition(GeneratorConfig::new(), 0, 0).is_err());
        assert!(Generator::new(GeneratorConfig::new().event_rate(0)).is_err());
    }

    #[test]
    fn fill_and_iterate_agree() {
        let config = GeneratorConfig::new().num_events(1000);
        let all: Vec<Event> = Generator::new(config.clone()).unwrap().collect();
        let mut g = Generator::new(config).unwrap();
        let mut batch = Vec::new();
        while g.fill(&mut batch, 77) > 0 {}
        assert_eq!(batch, all);
        assert!(g.is_finished());
        assert_eq!(g.remaining(), Some(0));
    }
}
