//! The Nexmark queries end to end: each query run through Millstream (1 and 3 workers,
//! out-of-order input with a bounded-out-of-orderness watermark) against its
//! hand-written baseline, and both against answers written out literally.

use millstream_model::{Duration, Timestamp};
use millstream_nexmark::answer::Answer;
use millstream_nexmark::queries::Query;
use millstream_nexmark::{baseline, Auction, Bid, Event, Person};
use millstream_runtime::{
    Pipeline, ReadStatus, Runner, Source, SourceError, SourceReader, TestStream, WatermarkStrategy,
};
use std::sync::Arc;

/// Epoch milliseconds of the test data's start (a multiple of 10 s).
const T0: i64 = 1_436_918_400_000;

fn person(id: i64, name: &str, city: &str, state: &str, t: i64) -> Event {
    Event::Person(Person {
        id,
        name: name.into(),
        email_address: format!("{name}@example.com"),
        credit_card: "1234".into(),
        city: city.into(),
        state: state.into(),
        date_time: T0 + t,
        extra: String::new(),
    })
}

fn auction(id: i64, seller: i64, category: i64, t: i64, expires: i64) -> Event {
    Event::Auction(Auction {
        id,
        item_name: format!("item{id}"),
        description: "d".into(),
        initial_bid: 1,
        reserve: 2,
        date_time: T0 + t,
        expires: T0 + expires,
        seller,
        category,
        extra: String::new(),
    })
}

fn bid(auction: i64, bidder: i64, price: i64, t: i64) -> Event {
    Event::Bid(Bid {
        auction,
        bidder,
        price,
        channel: "Google".into(),
        url: "u".into(),
        date_time: T0 + t,
        extra: String::new(),
    })
}

/// Events in a vector, read as one partition per worker (partition `p` reads the
/// elements `i` with `i % partitions == p`), timestamped by their `dateTime`, with a
/// bounded-out-of-orderness watermark per partition.
struct EventSource {
    events: Arc<Vec<Event>>,
    bound: Duration,
}

struct EventReader {
    events: Arc<Vec<Event>>,
    next: usize,
    step: usize,
}

impl Source<Event> for EventSource {
    fn partitions(&self, workers: usize) -> Result<usize, SourceError> {
        Ok(workers.max(1))
    }
    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<Event>>, SourceError> {
        Ok(Box::new(EventReader { events: self.events.clone(), next: partition, step: partitions }))
    }
    fn watermarks(&self) -> WatermarkStrategy {
        WatermarkStrategy::bounded_out_of_orderness(self.bound)
    }
}

impl SourceReader<Event> for EventReader {
    fn read(&mut self, out: &mut Vec<(Event, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        // Small batches, so that watermarks advance while the input is being read.
        for _ in 0..max.min(7) {
            let Some(e) = self.events.get(self.next) else { return Ok(ReadStatus::Finished) };
            out.push((e.clone(), Timestamp(e.date_time())));
            self.next += self.step;
        }
        Ok(if self.next < self.events.len() { ReadStatus::Data } else { ReadStatus::Finished })
    }
}

/// Runs `query` over `events` on `workers` workers: its rendered rows (sorted) and the
/// answer the pipeline computed itself.
fn run(query: Query, events: &[Event], bound_ms: i64, workers: usize) -> (Vec<String>, Answer) {
    let p = Pipeline::new();
    let input = p.read(
        "Events",
        EventSource { events: Arc::new(events.to_vec()), bound: Duration::from_millis(bound_ms) },
    );
    let lines = query.lines(&input).collect();
    let answer = query.answer(&input).collect();
    let result = match Runner::new().workers(workers).run(&p) {
        Ok(r) => r,
        Err(e) => panic!("{query} on {workers} workers failed: {e}"),
    };
    assert_eq!(result.counter_total("dropped_late"), 0, "{query} on {workers} workers: nothing late");
    let mut lines = lines.values();
    lines.sort();
    let answers = answer.values();
    assert_eq!(answers.len(), 1, "{query} on {workers} workers: one answer at the end of input");
    (lines, answers[0])
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A small auction site, out of order by up to 3 s (in stream order).
fn hand_written() -> Vec<Event> {
    vec![
        person(1, "Alice", "Portland", "OR", 1_000),
        bid(100, 7, 100, 2_500), // before auction 100 opens: never qualifies in q4
        person(3, "Carol", "Seattle", "WA", 2_000),
        bid(100, 8, 150, 4_000), // arrives before its auction
        auction(102, 3, 10, 4_000, 30_000),
        auction(100, 1, 10, 3_000, 8_000),
        auction(103, 1, 11, 5_000, 9_000),
        bid(103, 8, 301, 6_000),
        bid(100, 7, 120, 8_000), // at the auction's expiry: qualifies
        bid(100, 9, 500, 8_001), // after it: does not
        person(4, "Dave", "Austin", "TX", 9_000),
        auction(104, 4, 12, 10_500, 11_000),
        bid(101, 7, 200, 15_000), // arrives before its auction
        auction(101, 2, 10, 13_000, 25_000),
        person(2, "Bob", "Boise", "ID", 12_000), // the seller arrives after the auction
        auction(246, 2, 11, 14_000, 20_000),
        bid(246, 9, 1_000, 16_000),
        bid(101, 8, 1_000, 19_999),
        bid(102, 7, 51, 21_000),
        bid(103, 10, 5, 30_000),
        bid(103, 10, 6, 40_000), // exactly one gap after the previous bid: a new session
    ]
}

fn t(rel: i64) -> i64 {
    T0 + rel
}

/// The answers to the hand-written input, worked out by hand.
fn expected(query: Query) -> Vec<String> {
    let lines: Vec<String> = match query {
        Query::Q0 => [
            (100, 7, 100, 2_500),
            (100, 8, 150, 4_000),
            (103, 8, 301, 6_000),
            (100, 7, 120, 8_000),
            (100, 9, 500, 8_001),
            (101, 7, 200, 15_000),
            (246, 9, 1_000, 16_000),
            (101, 8, 1_000, 19_999),
            (102, 7, 51, 21_000),
            (103, 10, 5, 30_000),
            (103, 10, 6, 40_000),
        ]
        .iter()
        .map(|(a, b, p, d)| format!("{a}|{b}|{p}|Google|u|{}|", t(*d)))
        .collect(),
        Query::Q1 => [
            (100, 7, 90, 2_500),
            (100, 8, 136, 4_000),
            (103, 8, 273, 6_000),
            (100, 7, 108, 8_000),
            (100, 9, 454, 8_001),
            (101, 7, 181, 15_000),
            (246, 9, 908, 16_000),
            (101, 8, 908, 19_999),
            (102, 7, 46, 21_000),
            (103, 10, 4, 30_000),
            (103, 10, 5, 40_000),
        ]
        .iter()
        .map(|(a, b, p, d)| format!("{a}|{b}|{p}|{}|", t(*d)))
        .collect(),
        Query::Q2 => vec!["246|1000".into()],
        Query::Q3 => vec!["Alice|Portland|OR|100".into(), "Bob|Boise|ID|101".into()],
        // Category 10: auctions 100 (150), 101 (1000), 102 (51): 1201 / 3 = 400.
        // Category 11: auctions 103 (301), 246 (1000): 1301 / 2 = 650.
        Query::Q4 => vec!["10|400".into(), "11|650".into()],
        Query::Q5 => [
            (-6_000, 100, 1),
            (-4_000, 100, 2),
            (-2_000, 100, 2),
            (0, 100, 4),
            (2_000, 100, 4),
            (4_000, 100, 3),
            (6_000, 100, 2),
            (8_000, 100, 2),
            (10_000, 101, 2),
            (12_000, 101, 2),
            (14_000, 101, 2),
            (16_000, 101, 1),
            (16_000, 102, 1),
            (16_000, 246, 1),
            (18_000, 101, 1),
            (18_000, 102, 1),
            (20_000, 102, 1),
            (22_000, 103, 1),
            (24_000, 103, 1),
            (26_000, 103, 1),
            (28_000, 103, 1),
            (30_000, 103, 1),
            (32_000, 103, 1),
            (34_000, 103, 1),
            (36_000, 103, 1),
            (38_000, 103, 1),
            (40_000, 103, 1),
        ]
        .iter()
        .map(|(w, a, n)| format!("{}|{a}|{n}", t(*w)))
        .collect(),
        Query::Q7 => vec![
            format!("{}|100|500|9|{}", t(0), t(8_001)),
            format!("{}|246|1000|9|{}", t(10_000), t(16_000)),
            format!("{}|101|1000|8|{}", t(10_000), t(19_999)),
            format!("{}|102|51|7|{}", t(20_000), t(21_000)),
            format!("{}|103|5|10|{}", t(30_000), t(30_000)),
            format!("{}|103|6|10|{}", t(40_000), t(40_000)),
        ],
        Query::Q8 => {
            vec![format!("1|Alice|{}", t(0)), format!("3|Carol|{}", t(0)), format!("2|Bob|{}", t(10_000))]
        }
        Query::Q11 => vec![
            format!("7|4|{}|{}", t(2_500), t(31_000)),
            format!("8|2|{}|{}", t(4_000), t(16_000)),
            format!("8|1|{}|{}", t(19_999), t(29_999)),
            format!("9|2|{}|{}", t(8_001), t(26_000)),
            format!("10|1|{}|{}", t(30_000), t(40_000)),
            format!("10|1|{}|{}", t(40_000), t(50_000)),
        ],
    };
    sorted(lines)
}

#[test]
fn baselines_give_the_hand_worked_answers() {
    let events = hand_written();
    for q in Query::ALL {
        let expected = expected(q);
        assert_eq!(sorted(baseline::lines(q, &events)), expected, "{q}");
        assert_eq!(baseline::answer(q, &events), Answer::from_lines(&expected), "{q}");
    }
}

#[test]
fn queries_give_the_hand_worked_answers_on_1_and_3_workers() {
    let events = hand_written();
    for q in Query::ALL {
        let expected = expected(q);
        for workers in [1, 3] {
            let (lines, answer) = run(q, &events, 3_000, workers);
            assert_eq!(lines, expected, "{q} on {workers} workers");
            assert_eq!(answer, Answer::from_lines(&expected), "{q} on {workers} workers");
        }
    }
}

/// A deterministic pseudo-random number generator (SplitMix64), for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

/// `n` events of a small auction site (1 person : 3 auctions : 46 bids), then delivered
/// out of order: each event is delayed by less than `max_delay` ms of event time.
fn random_events(seed: u64, n: usize, max_delay: i64) -> Vec<Event> {
    const STATES: [&str; 5] = ["OR", "ID", "CA", "WA", "TX"];
    const NAMES: [&str; 6] = ["Ann", "Ben", "Cid", "Dee", "Eve", "Fay"];
    let mut rng = Rng(seed);
    let (mut persons, mut auctions) = (0i64, 0i64);
    let mut time = 0i64;
    let mut events = Vec::with_capacity(n);
    for i in 0..n {
        time += rng.below(120);
        let kind = i % 50;
        let e = if kind == 0 || persons == 0 {
            persons += 1;
            let state = STATES[rng.below(5) as usize];
            let name = NAMES[rng.below(6) as usize];
            person(persons, name, &format!("city{}", rng.below(3)), state, time)
        } else if kind < 4 || auctions == 0 {
            auctions += 1;
            let seller = 1 + rng.below(persons as u64);
            auction(1000 + auctions, seller, 10 + rng.below(4), time, time + 500 + rng.below(20_000))
        } else {
            // Mostly recent auctions, sometimes one not yet opened (a bid that can never
            // qualify in q4), and id multiples of 123 now and then.
            let a = match rng.below(10) {
                0 => 1000 + auctions + 1,
                1 => 123 * (1 + rng.below(12)),
                _ => 1000 + auctions - rng.below(auctions.min(15) as u64),
            };
            bid(a, 1 + rng.below(persons as u64 + 5), 1 + rng.below(300), time)
        };
        events.push(e);
    }
    let mut delayed: Vec<(i64, usize, Event)> = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| (e.date_time() + rng.below(max_delay as u64), i, e))
        .collect();
    delayed.sort_by_key(|(at, i, _)| (*at, *i));
    delayed.into_iter().map(|(_, _, e)| e).collect()
}

#[test]
fn queries_agree_with_the_baselines_on_out_of_order_input() {
    let events = random_events(42, 3_000, 2_000);
    for q in Query::ALL {
        let expected = sorted(baseline::lines(q, &events));
        let expected_answer = baseline::answer(q, &events);
        assert_eq!(expected_answer, Answer::from_lines(&expected), "{q}: baseline answer and rows agree");
        assert!(!expected.is_empty(), "{q}: the test input gives some rows");
        for workers in [1, 3] {
            let (lines, answer) = run(q, &events, 2_001, workers);
            assert_eq!(lines.len(), expected.len(), "{q} on {workers} workers: row count");
            assert_eq!(lines, expected, "{q} on {workers} workers");
            assert_eq!(answer, expected_answer, "{q} on {workers} workers");
        }
    }
}

#[test]
fn in_order_input_with_a_perfect_watermark() {
    let events = random_events(7, 1_500, 1);
    for q in Query::ALL {
        let expected = baseline::answer(q, &events);
        let (_, answer) = run(q, &events, 0, 2);
        assert_eq!(answer, expected, "{q}");
    }
}

/// Runs `query` over a scripted stream; returns its sorted rendered rows and how many
/// records were dropped as late.
fn run_script(query: Query, script: TestStream<Event>, workers: usize) -> (Vec<String>, u64) {
    let p = Pipeline::new();
    let input = p.test_stream(script);
    let lines = query.lines(&input).collect();
    let result = match Runner::new().workers(workers).run(&p) {
        Ok(r) => r,
        Err(e) => panic!("{query} on {workers} workers failed: {e}"),
    };
    (sorted(lines.values()), result.counter_total("dropped_late"))
}

fn at(e: Event) -> (Event, Timestamp) {
    let t = Timestamp(e.date_time());
    (e, t)
}

#[test]
fn q4_closes_each_auction_when_the_watermark_passes_its_expiry() {
    for workers in [1, 3] {
        let script = TestStream::new()
            // A bid before its auction arrives (out of order), then the auction.
            .add_elements(vec![at(bid(100, 1, 70, 5_000))])
            .add_elements(vec![at(auction(100, 9, 10, 4_000, 8_000))])
            .advance_watermark_to(Timestamp(t(7_000)))
            // On time: the watermark has not passed the expiry.
            .add_elements(vec![at(bid(100, 2, 90, 8_000))])
            .advance_watermark_to(Timestamp(t(9_000)))
            // The auction closed when the watermark passed 8 000: a late bid within its
            // time range no longer changes its closing price.
            .add_elements(vec![at(bid(100, 3, 1_000, 7_500))])
            .advance_watermark_to_infinity();
        let (lines, _) = run_script(Query::Q4, script, workers);
        assert_eq!(lines, vec!["10|90".to_string()], "{workers} workers");
    }
}

#[test]
fn windowed_queries_emit_when_the_watermark_closes_the_window_and_drop_late_bids() {
    for workers in [1, 3] {
        let script = TestStream::new()
            .add_elements(vec![at(bid(1, 1, 10, 1_000)), at(bid(2, 2, 30, 3_000))])
            .advance_watermark_to(Timestamp(t(12_000)))
            // Behind the watermark: [0 s, 10 s) is complete, so this bid is late.
            .add_elements(vec![at(bid(3, 3, 99, 9_000)), at(bid(4, 4, 20, 12_500))])
            .advance_watermark_to_infinity();
        let (lines, dropped) = run_script(Query::Q7, script, workers);
        assert_eq!(
            lines,
            sorted(vec![
                format!("{}|2|30|2|{}", t(0), t(3_000)),
                format!("{}|4|20|4|{}", t(10_000), t(12_500))
            ]),
            "{workers} workers"
        );
        assert_eq!(dropped, 1, "{workers} workers: the late bid is dropped and counted");
    }
}
