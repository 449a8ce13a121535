//! [`GeneratorConfig`]: the parameters of the Nexmark event generator, with the defaults of
//! Beam's `NexmarkConfiguration` (which Flink's Nexmark also uses).
//!
//! Events are numbered `0, 1, 2, ...`. Event number `n` is emitted `n`-th; its content and
//! its event time come from its *adjusted* number (Beam's `nextAdjustedEventNumber`), a
//! permutation of the numbers within each group of
//! [`out_of_order_group_size`](GeneratorConfig::out_of_order_group_size) events, so that
//! event times are out of order by at most [`GeneratorConfig::max_out_of_orderness_millis`].
//!
//! ```
//! use millstream_nexmark::GeneratorConfig;
//! let config = GeneratorConfig::new().seed(7).num_events(1_000).event_rate(1_000);
//! assert!(config.validate().is_ok());
//! // One event per millisecond of event time, from 2015-07-15T00:00:00Z.
//! assert_eq!(config.timestamp_for_event(5), 1_436_918_400_005);
//! assert!(GeneratorConfig::new().event_rate(0).validate().is_err());
//! ```

use serde::{Deserialize, Serialize};

/// The first person id (Beam's `FIRST_PERSON_ID`): ids start high so that queries match
/// even on small inputs.
pub const FIRST_PERSON_ID: i64 = 1000;
/// The first auction id (Beam's `FIRST_AUCTION_ID`).
pub const FIRST_AUCTION_ID: i64 = 1000;
/// The first category id (Beam's `FIRST_CATEGORY_ID`).
pub const FIRST_CATEGORY_ID: i64 = 10;
/// 2015-07-15T00:00:00Z in epoch milliseconds: the default event time of event 0.
pub const DEFAULT_BASE_TIME: i64 = 1_436_918_400_000;

/// Nanoseconds per millisecond.
const NANOS_PER_MILLI: u128 = 1_000_000;
/// Nanoseconds per second.
const NANOS_PER_SEC: u128 = 1_000_000_000;
/// The largest event rate accepted, events per second (one event per nanosecond).
pub const MAX_EVENT_RATE: u64 = 1_000_000_000;
/// The largest out-of-order group accepted.
pub const MAX_OUT_OF_ORDER_GROUP_SIZE: u64 = 1 << 32;
/// The latest base time accepted (about year 37 000), so that event times never overflow.
pub const MAX_BASE_TIME: i64 = 1 << 50;
/// The multiplier of Beam's `nextAdjustedEventNumber` (`(n * 953) % group`).
const ADJUST_MULTIPLIER: u64 = 953;

/// A configuration the generator cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A proportion of the event mix is zero.
    #[error("nexmark: the {kind} proportion must be at least 1 (got 0)")]
    ZeroProportion {
        /// `person`, `auction` or `bid`.
        kind: &'static str,
    },
    /// A "hot" ratio is zero (it is `1 / probability of a cold choice`).
    #[error("nexmark: {name} must be at least 1 (got 0)")]
    ZeroRatio {
        /// Which ratio.
        name: &'static str,
    },
    /// An event rate is zero or above [`MAX_EVENT_RATE`].
    #[error("nexmark: {name} must be between 1 and {MAX_EVENT_RATE} events per second (got {rate})")]
    BadRate {
        /// `first_event_rate` or `next_event_rate`.
        name: &'static str,
        /// The rate given.
        rate: u64,
    },
    /// The rate period is zero while the first and next rates differ.
    #[error("nexmark: rate_period_sec must be at least 1 when first_event_rate and next_event_rate differ")]
    ZeroRatePeriod,
    /// The out-of-order group size is zero, too large, or a multiple of 953 (then
    /// Beam's adjustment would not be a permutation and events would repeat).
    #[error(
        "nexmark: out_of_order_group_size must be between 1 and {MAX_OUT_OF_ORDER_GROUP_SIZE} and not a \
         multiple of 953 (got {0})"
    )]
    BadOutOfOrderGroupSize(u64),
    /// The base time is negative or after [`MAX_BASE_TIME`].
    #[error("nexmark: base_time must be between 0 and {MAX_BASE_TIME} epoch milliseconds (got {0})")]
    BadBaseTime(i64),
    /// A partition index is not below the number of partitions, or there are none.
    #[error("nexmark: partition {partition} of {partitions} does not exist")]
    BadPartition {
        /// The partition asked for.
        partition: u64,
        /// The number of partitions.
        partitions: u64,
    },
}

/// The parameters of the Nexmark generator. [`GeneratorConfig::new`] (or `default()`)
/// gives Beam's defaults; the builder methods change one setting each, and
/// [`validate`](Self::validate) checks the result (the generator and the source call it).
///
/// The same configuration always yields byte-identical events.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GeneratorConfig {
    /// The seed: every event's random choices come from `(seed, event id)` alone.
    pub seed: u64,
    /// How many events to generate (`None`: unbounded). Default 100 000 (Beam's default).
    pub num_events: Option<u64>,
    /// Persons per `person + auction + bid` events. Default 1.
    pub person_proportion: u32,
    /// Auctions per `person + auction + bid` events. Default 3.
    pub auction_proportion: u32,
    /// Bids per `person + auction + bid` events. Default 46.
    pub bid_proportion: u32,
    /// A bid is on the current hot auction with probability `1 - 1/hot_auction_ratio`.
    /// Default 2.
    pub hot_auction_ratio: u32,
    /// An auction is by the current hot seller with probability `1 - 1/hot_sellers_ratio`.
    /// Default 4.
    pub hot_sellers_ratio: u32,
    /// A bid is by the current hot bidder with probability `1 - 1/hot_bidders_ratio`.
    /// Default 4.
    pub hot_bidders_ratio: u32,
    /// Sellers and bidders other than the hot ones are among the latest this many
    /// persons (plus a lead of 10 not yet registered). Default 1000.
    pub num_active_people: u32,
    /// Bids other than on the hot auction are on one of the latest this many auctions
    /// (plus a lead of 10 not yet opened). Default 100.
    pub num_in_flight_auctions: u32,
    /// Average size of a person in bytes, reached by the `extra` padding. Default 200.
    pub avg_person_byte_size: u32,
    /// Average size of an auction in bytes. Default 500.
    pub avg_auction_byte_size: u32,
    /// Average size of a bid in bytes. Default 100.
    pub avg_bid_byte_size: u32,
    /// Events per second of event time in the first half of each rate period. Default
    /// 10 000 (an inter-event delay of 100 µs).
    pub first_event_rate: u64,
    /// Events per second of event time in the second half of each rate period (Beam's
    /// square rate shape). Default 10 000.
    pub next_event_rate: u64,
    /// The rate period in seconds of event time, when the two rates differ. Default 600.
    pub rate_period_sec: u64,
    /// Events are shuffled within groups of this many (Beam's `outOfOrderGroupSize`).
    /// Default 1: in order.
    pub out_of_order_group_size: u64,
    /// The event time of event 0, epoch milliseconds. Default [`DEFAULT_BASE_TIME`].
    pub base_time: i64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 0,
            num_events: Some(100_000),
            person_proportion: 1,
            auction_proportion: 3,
            bid_proportion: 46,
            hot_auction_ratio: 2,
            hot_sellers_ratio: 4,
            hot_bidders_ratio: 4,
            num_active_people: 1000,
            num_in_flight_auctions: 100,
            avg_person_byte_size: 200,
            avg_auction_byte_size: 500,
            avg_bid_byte_size: 100,
            first_event_rate: 10_000,
            next_event_rate: 10_000,
            rate_period_sec: 600,
            out_of_order_group_size: 1,
            base_time: DEFAULT_BASE_TIME,
        }
    }
}

impl GeneratorConfig {
    /// Beam's defaults (see the fields).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Generates `n` events (numbers `0..n`).
    pub fn num_events(mut self, n: u64) -> Self {
        self.num_events = Some(n);
        self
    }

    /// Generates events without end.
    pub fn unbounded(mut self) -> Self {
        self.num_events = None;
        self
    }

    /// Sets the proportions of persons, auctions and bids (default 1, 3, 46).
    pub fn proportions(mut self, person: u32, auction: u32, bid: u32) -> Self {
        self.person_proportion = person;
        self.auction_proportion = auction;
        self.bid_proportion = bid;
        self
    }

    /// Sets the hot auction ratio (default 2).
    pub fn hot_auction_ratio(mut self, ratio: u32) -> Self {
        self.hot_auction_ratio = ratio;
        self
    }

    /// Sets the hot sellers ratio (default 4).
    pub fn hot_sellers_ratio(mut self, ratio: u32) -> Self {
        self.hot_sellers_ratio = ratio;
        self
    }

    /// Sets the hot bidders ratio (default 4).
    pub fn hot_bidders_ratio(mut self, ratio: u32) -> Self {
        self.hot_bidders_ratio = ratio;
        self
    }

    /// Sets the number of active people (default 1000).
    pub fn num_active_people(mut self, n: u32) -> Self {
        self.num_active_people = n;
        self
    }

    /// Sets the number of in-flight auctions (default 100).
    pub fn num_in_flight_auctions(mut self, n: u32) -> Self {
        self.num_in_flight_auctions = n;
        self
    }

    /// Sets the average sizes in bytes of persons, auctions and bids (default 200, 500,
    /// 100); the `extra` field pads events to them.
    pub fn avg_sizes(mut self, person: u32, auction: u32, bid: u32) -> Self {
        self.avg_person_byte_size = person;
        self.avg_auction_byte_size = auction;
        self.avg_bid_byte_size = bid;
        self
    }

    /// Sets one event rate, events per second of event time (first and next).
    pub fn event_rate(mut self, rate: u64) -> Self {
        self.first_event_rate = rate;
        self.next_event_rate = rate;
        self
    }

    /// Sets two alternating event rates (Beam's square rate shape): `first` for the
    /// first half of every `period_sec` seconds of event time, `next` for the second.
    pub fn event_rates(mut self, first: u64, next: u64, period_sec: u64) -> Self {
        self.first_event_rate = first;
        self.next_event_rate = next;
        self.rate_period_sec = period_sec;
        self
    }

    /// Sets the out-of-order group size (default 1, in order).
    pub fn out_of_order_group_size(mut self, n: u64) -> Self {
        self.out_of_order_group_size = n;
        self
    }

    /// Sets the event time of event 0, epoch milliseconds.
    pub fn base_time(mut self, millis: i64) -> Self {
        self.base_time = millis;
        self
    }

    /// Checks that the generator can run this configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (kind, p) in [
            ("person", self.person_proportion),
            ("auction", self.auction_proportion),
            ("bid", self.bid_proportion),
        ] {
            if p == 0 {
                return Err(ConfigError::ZeroProportion { kind });
            }
        }
        for (name, r) in [
            ("hot_auction_ratio", self.hot_auction_ratio),
            ("hot_sellers_ratio", self.hot_sellers_ratio),
            ("hot_bidders_ratio", self.hot_bidders_ratio),
        ] {
            if r == 0 {
                return Err(ConfigError::ZeroRatio { name });
            }
        }
        for (name, rate) in
            [("first_event_rate", self.first_event_rate), ("next_event_rate", self.next_event_rate)]
        {
            if rate == 0 || rate > MAX_EVENT_RATE {
                return Err(ConfigError::BadRate { name, rate });
            }
        }
        if self.first_event_rate != self.next_event_rate && self.rate_period_sec == 0 {
            return Err(ConfigError::ZeroRatePeriod);
        }
        let g = self.out_of_order_group_size;
        if g == 0 || g > MAX_OUT_OF_ORDER_GROUP_SIZE || g.is_multiple_of(ADJUST_MULTIPLIER) {
            return Err(ConfigError::BadOutOfOrderGroupSize(g));
        }
        if !(0..=MAX_BASE_TIME).contains(&self.base_time) {
            return Err(ConfigError::BadBaseTime(self.base_time));
        }
        Ok(())
    }

    /// `person + auction + bid` proportions: the length of one cycle of the event mix (50
    /// by default).
    pub fn total_proportion(&self) -> u64 {
        self.person_proportion as u64 + self.auction_proportion as u64 + self.bid_proportion as u64
    }

    /// The inter-event delay at `rate` events per second, in nanoseconds (rounded; at
    /// least 1).
    fn delay_nanos(rate: u64) -> u128 {
        let rate = rate.max(1) as u128;
        ((NANOS_PER_SEC + rate / 2) / rate).max(1)
    }

    /// The inter-event delays of the first and the next rate, nanoseconds.
    pub fn inter_event_delays_nanos(&self) -> (u64, u64) {
        (Self::delay_nanos(self.first_event_rate) as u64, Self::delay_nanos(self.next_event_rate) as u64)
    }

    /// The event time of the event whose (adjusted) number is `n`: the base time plus `n`
    /// inter-event delays (Beam's `timestampAndInterEventDelayUsForEvent`, in
    /// nanoseconds instead of microseconds so that high rates keep their precision).
    /// Non-decreasing in `n`.
    pub fn timestamp_for_event(&self, n: u64) -> i64 {
        let d1 = Self::delay_nanos(self.first_event_rate);
        if self.first_event_rate == self.next_event_rate {
            // The common case, in 64 bits when it fits (faster than 128-bit division).
            if let Some(ns) = n.checked_mul(d1 as u64) {
                let ms = (ns / NANOS_PER_MILLI as u64).min(i64::MAX as u64 / 4) as i64;
                return self.base_time.saturating_add(ms);
            }
        }
        let n = n as u128;
        let offset_ms = if self.first_event_rate == self.next_event_rate || self.rate_period_sec == 0 {
            n * d1 / NANOS_PER_MILLI
        } else {
            let d2 = Self::delay_nanos(self.next_event_rate);
            // Beam's square shape: each rate holds for half the period (rounded up).
            let step_ns = (self.rate_period_sec as u128).div_ceil(2) * NANOS_PER_SEC;
            let (n1, n2) = ((step_ns / d1).max(1), (step_ns / d2).max(1));
            let epoch_ms = n1 * d1 / NANOS_PER_MILLI + n2 * d2 / NANOS_PER_MILLI;
            let (epoch, r) = (n / (n1 + n2), n % (n1 + n2));
            epoch * epoch_ms
                + if r < n1 {
                    r * d1 / NANOS_PER_MILLI
                } else {
                    n1 * d1 / NANOS_PER_MILLI + (r - n1) * d2 / NANOS_PER_MILLI
                }
        };
        let offset_ms = i64::try_from(offset_ms).unwrap_or(i64::MAX / 4).min(i64::MAX / 4);
        self.base_time.saturating_add(offset_ms)
    }

    /// The smallest event number whose [`timestamp_for_event`](Self::timestamp_for_event)
    /// is at least `millis` (0 before the base time).
    pub fn event_number_at(&self, millis: i64) -> u64 {
        if millis <= self.base_time {
            return 0;
        }
        let (mut lo, mut hi) = (0u64, 1u64);
        while self.timestamp_for_event(hi) < millis {
            lo = hi;
            hi = match hi.checked_mul(2) {
                Some(h) => h,
                None => return u64::MAX,
            };
        }
        // timestamp(lo) < millis <= timestamp(hi) (or lo == 0).
        while lo + 1 < hi {
            let mid = lo + (hi - lo) / 2;
            if self.timestamp_for_event(mid) < millis {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        if self.timestamp_for_event(lo) >= millis {
            lo
        } else {
            hi
        }
    }

    /// The number whose content and event time event number `n` carries (Beam's
    /// `nextAdjustedEventNumber`): `n` shuffled within its group of
    /// `out_of_order_group_size` (a permutation of each group).
    pub fn adjusted_event_number(&self, n: u64) -> u64 {
        let g = self.out_of_order_group_size.max(1);
        if g == 1 {
            return n;
        }
        let base = n / g * g;
        base.saturating_add(((n % g) as u128 * ADJUST_MULTIPLIER as u128 % g as u128) as u64)
    }

    /// The least event time of event number `n` and all later ones (Beam's
    /// `nextEventNumberForWatermark`): a perfect watermark once the events before `n` are
    /// out.
    pub fn watermark_for_event(&self, n: u64) -> i64 {
        let g = self.out_of_order_group_size.max(1);
        self.timestamp_for_event(n / g * g)
    }

    /// The largest disorder of the event times: no event is earlier than an event before
    /// it by more than this many milliseconds (`(group size - 1)` inter-event delays, at the
    /// slower rate, rounded up, plus 1 ms for the rounding of event times to
    /// milliseconds; 0 when in order).
    pub fn max_out_of_orderness_millis(&self) -> i64 {
        let g = self.out_of_order_group_size.max(1) as u128;
        if g == 1 {
            return 0;
        }
        let d = Self::delay_nanos(self.first_event_rate).max(Self::delay_nanos(self.next_event_rate));
        let ms = ((g - 1) * d).div_ceil(NANOS_PER_MILLI) + 1;
        i64::try_from(ms).unwrap_or(i64::MAX / 4)
    }

    /// An estimate of the bytes of `n` events (Beam's `estimatedBytesForEvents`).
    pub fn estimated_bytes_for_events(&self, n: u64) -> u64 {
        let total = self.total_proportion().max(1) as u128;
        let n = n as u128;
        let bytes = n * self.person_proportion as u128 / total * self.avg_person_byte_size as u128
            + n * self.auction_proportion as u128 / total * self.avg_auction_byte_size as u128
            + n * self.bid_proportion as u128 / total * self.avg_bid_byte_size as u128;
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_beams() {
        let c = GeneratorConfig::new();
        assert_eq!((c.person_proportion, c.auction_proportion, c.bid_proportion), (1, 3, 46));
        assert_eq!((c.hot_auction_ratio, c.hot_sellers_ratio, c.hot_bidders_ratio), (2, 4, 4));
        assert_eq!((c.num_active_people, c.num_in_flight_auctions), (1000, 100));
        assert_eq!((c.avg_person_byte_size, c.avg_auction_byte_size, c.avg_bid_byte_size), (200, 500, 100));
        assert_eq!(c.inter_event_delays_nanos(), (100_000, 100_000));
        assert_eq!(c.base_time, 1_436_918_400_000);
        assert!(c.validate().is_ok());
        // 100 µs per event: 10 events per millisecond.
        assert_eq!(c.timestamp_for_event(0), c.base_time);
        assert_eq!(c.timestamp_for_event(9), c.base_time);
        assert_eq!(c.timestamp_for_event(10), c.base_time + 1);
        assert_eq!(c.timestamp_for_event(10_000), c.base_time + 1000);
    }

    #[test]
    fn invalid_configs_are_typed_errors() {
        let c = GeneratorConfig::new;
        assert_eq!(c().proportions(0, 3, 46).validate(), Err(ConfigError::ZeroProportion { kind: "person" }));
        assert_eq!(
            c().hot_bidders_ratio(0).validate(),
            Err(ConfigError::ZeroRatio { name: "hot_bidders_ratio" })
        );
        assert!(matches!(c().event_rate(0).validate(), Err(ConfigError::BadRate { .. })));
        assert!(matches!(c().event_rate(MAX_EVENT_RATE + 1).validate(), Err(ConfigError::BadRate { .. })));
        assert_eq!(c().event_rates(10, 20, 0).validate(), Err(ConfigError::ZeroRatePeriod));
        assert_eq!(c().out_of_order_group_size(0).validate(), Err(ConfigError::BadOutOfOrderGroupSize(0)));
        assert_eq!(
            c().out_of_order_group_size(1906).validate(),
            Err(ConfigError::BadOutOfOrderGroupSize(1906))
        );
        assert_eq!(c().base_time(-1).validate(), Err(ConfigError::BadBaseTime(-1)));
        assert!(c().out_of_order_group_size(1000).validate().is_ok());
        let message = c().event_rate(0).validate().unwrap_err().to_string();
        assert!(message.contains("first_event_rate"), "{message}");
    }

    #[test]
    fn adjustment_permutes_each_group() {
        for g in [1u64, 2, 7, 50, 100, 1000] {
            let c = GeneratorConfig::new().out_of_order_group_size(g);
            let mut seen: Vec<u64> = (0..3 * g).map(|n| c.adjusted_event_number(n)).collect();
            for (n, a) in seen.iter().enumerate() {
                assert_eq!(*a / g, n as u64 / g);
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..3 * g).collect::<Vec<_>>());
        }
        // Beam's formula.
        let c = GeneratorConfig::new().out_of_order_group_size(10);
        assert_eq!(c.adjusted_event_number(13), 10 + (13 * 953) % 10);
    }

    #[test]
    fn square_rate_shape_alternates() {
        // 1000/s for 1 s, then 100/s for 1 s.
        let c = GeneratorConfig::new().event_rates(1000, 100, 2);
        assert_eq!(c.timestamp_for_event(999) - c.base_time, 999);
        assert_eq!(c.timestamp_for_event(1000) - c.base_time, 1000);
        assert_eq!(c.timestamp_for_event(1001) - c.base_time, 1010);
        assert_eq!(c.timestamp_for_event(1100) - c.base_time, 2000);
        assert_eq!(c.timestamp_for_event(1101) - c.base_time, 2001);
        let mut last = i64::MIN;
        for n in 0..5000 {
            let t = c.timestamp_for_event(n);
            assert!(t >= last);
            last = t;
        }
    }

    #[test]
    fn event_number_at_inverts_the_timeline() {
        for c in [
            GeneratorConfig::new(),
            GeneratorConfig::new().event_rates(1000, 100, 2),
            GeneratorConfig::new().event_rate(3),
        ] {
            for n in [0u64, 1, 9, 10, 11, 999, 1000, 1001, 12_345] {
                let t = c.timestamp_for_event(n);
                let m = c.event_number_at(t);
                assert!(m <= n);
                assert_eq!(c.timestamp_for_event(m), t);
                assert!(m == 0 || c.timestamp_for_event(m - 1) < t);
            }
        }
        assert_eq!(GeneratorConfig::new().event_number_at(0), 0);
    }

    #[test]
    fn large_numbers_do_not_overflow() {
        let c = GeneratorConfig::new().event_rate(1);
        assert!(c.timestamp_for_event(u64::MAX) > c.base_time);
        assert_eq!(c.adjusted_event_number(u64::MAX), u64::MAX);
        let c = GeneratorConfig::new().out_of_order_group_size(MAX_OUT_OF_ORDER_GROUP_SIZE);
        assert!(
            c.adjusted_event_number(u64::MAX) / MAX_OUT_OF_ORDER_GROUP_SIZE
                == u64::MAX / MAX_OUT_OF_ORDER_GROUP_SIZE
        );
        assert!(c.max_out_of_orderness_millis() > 0);
    }
}
