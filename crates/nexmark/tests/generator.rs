//! The Nexmark generator: determinism, the event mix, partitioning, ids and event-time
//! disorder.

use millstream_nexmark::config::{FIRST_AUCTION_ID, FIRST_PERSON_ID};
use millstream_nexmark::generator::{last_auction_id, last_person_id, AUCTION_ID_LEAD, PERSON_ID_LEAD};
use millstream_nexmark::{Event, EventKind, Generator, GeneratorConfig};
use proptest::prelude::*;

fn events(config: &GeneratorConfig) -> Vec<Event> {
    Generator::new(config.clone()).unwrap().collect()
}

fn json(events: &[Event]) -> String {
    events.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect()
}

#[test]
fn same_config_gives_byte_identical_events() {
    let config = GeneratorConfig::new().seed(11).num_events(5_000);
    let a = json(&events(&config));
    let b = json(&events(&config));
    assert_eq!(a, b);
    let other = json(&events(&config.clone().seed(12)));
    assert_ne!(a, other);
    // Any event can be computed alone.
    let g = Generator::new(config.clone()).unwrap();
    let all = events(&config);
    for n in [0u64, 1, 49, 50, 1234, 4999] {
        assert_eq!(g.event(n), all[n as usize]);
    }
}

#[test]
fn the_mix_is_1_3_46_in_every_50_events() {
    for group in [1u64, 50] {
        let config = GeneratorConfig::new().num_events(50 * 40).out_of_order_group_size(group);
        let all = events(&config);
        for (block, chunk) in all.chunks(50).enumerate() {
            let count = |k: EventKind| chunk.iter().filter(|e| e.kind() == k).count();
            assert_eq!(
                (count(EventKind::Person), count(EventKind::Auction), count(EventKind::Bid)),
                (1, 3, 46),
                "block {block} with group size {group}"
            );
        }
    }
    // In order, each block is: a person, three auctions, 46 bids.
    let all = events(&GeneratorConfig::new().num_events(100));
    assert_eq!(all[50].kind(), EventKind::Person);
    assert!(all[51..54].iter().all(|e| e.kind() == EventKind::Auction));
    assert!(all[54..100].iter().all(|e| e.kind() == EventKind::Bid));
}

#[test]
fn other_proportions_are_honoured() {
    let all = events(&GeneratorConfig::new().proportions(2, 3, 5).num_events(1000));
    let count = |k: EventKind| all.iter().filter(|e| e.kind() == k).count();
    assert_eq!((count(EventKind::Person), count(EventKind::Auction), count(EventKind::Bid)), (200, 300, 500));
}

fn union_of_partitions(config: &GeneratorConfig, n: u64) -> Vec<Event> {
    let total = config.num_events.unwrap() as usize;
    let mut slots: Vec<Option<Event>> = vec![None; total];
    for p in 0..n {
        for (k, e) in Generator::partition(config.clone(), p, n).unwrap().enumerate() {
            let number = (p + k as u64 * n) as usize;
            assert!(slots[number].is_none(), "event {number} twice");
            slots[number] = Some(e);
        }
    }
    slots.into_iter().map(|e| e.expect("every event number is made by one partition")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn partitions_together_make_the_single_sequence(
        seed in any::<u64>(),
        num_events in 0u64..400,
        partitions in 1u64..5,
        group in prop::sample::select(vec![1u64, 7, 50, 64]),
    ) {
        let config = GeneratorConfig::new().seed(seed).num_events(num_events).out_of_order_group_size(group);
        let single = events(&config);
        prop_assert_eq!(single.len() as u64, num_events);
        prop_assert_eq!(union_of_partitions(&config, partitions), single);
    }
}

#[test]
fn partitions_of_a_shared_generator_agree() {
    let config = GeneratorConfig::new().num_events(300);
    let base = Generator::new(config.clone()).unwrap();
    for p in 0..3 {
        let a: Vec<Event> = base.for_partition(p, 3).unwrap().collect();
        let b: Vec<Event> = Generator::partition(config.clone(), p, 3).unwrap().collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 100);
    }
}

#[test]
fn ids_refer_to_existing_or_in_flight_persons_and_auctions() {
    let config = GeneratorConfig::new().seed(3).num_events(200_000);
    let in_flight = config.num_in_flight_auctions as i64;
    let mut next_person = FIRST_PERSON_ID;
    let mut next_auction = FIRST_AUCTION_ID;
    let (mut hot_auction_bids, mut bids) = (0u64, 0u64);
    for (n, e) in Generator::new(config.clone()).unwrap().enumerate() {
        let id = n as u64;
        // Persons and auctions are numbered in the order they are made.
        let (last_person, last_auction) = (last_person_id(&config, id), last_auction_id(&config, id));
        match e {
            Event::Person(p) => {
                assert_eq!(p.id, next_person);
                assert_eq!(p.id, last_person);
                next_person += 1;
            }
            Event::Auction(a) => {
                assert_eq!(a.id, next_auction);
                assert_eq!(a.id, last_auction);
                next_auction += 1;
                assert!(a.seller >= FIRST_PERSON_ID && a.seller <= last_person + PERSON_ID_LEAD, "{a:?}");
                assert!(a.expires > a.date_time);
                assert!((10..15).contains(&a.category));
                assert!(a.reserve >= a.initial_bid);
            }
            Event::Bid(b) => {
                bids += 1;
                // Every person and auction up to the last ones exists by now; a bid may
                // also name one of the next few (Beam's leads).
                assert!(b.bidder >= FIRST_PERSON_ID && b.bidder <= next_person - 1 + PERSON_ID_LEAD, "{b:?}");
                assert!(
                    b.auction >= FIRST_AUCTION_ID && b.auction <= next_auction - 1 + AUCTION_ID_LEAD,
                    "{b:?}"
                );
                // ... and it is the hot auction or one still in flight.
                let hot = (last_auction - FIRST_AUCTION_ID) / 100 * 100 + FIRST_AUCTION_ID;
                if b.auction == hot {
                    hot_auction_bids += 1;
                } else {
                    assert!(b.auction >= last_auction - in_flight, "{b:?} at {n}");
                }
                assert!(b.price >= 100);
                assert!(!b.channel.is_empty() && b.url.starts_with("https://www.nexmark.com/"));
            }
        }
    }
    // Hot auction ratio 2: about half the bids (and a few more by chance).
    let share = hot_auction_bids as f64 / bids as f64;
    assert!((0.45..0.6).contains(&share), "{share}");
}

#[test]
fn event_times_are_out_of_order_by_at_most_the_bound() {
    for (group, rate) in [(1u64, 10_000u64), (10, 1_000), (100, 10_000), (1000, 1_000), (37, 3)] {
        let config =
            GeneratorConfig::new().num_events(20_000).out_of_order_group_size(group).event_rate(rate);
        let bound = config.max_out_of_orderness_millis();
        let all = events(&config);
        let mut max_seen = i64::MIN;
        let mut disorder = 0;
        for (n, e) in all.iter().enumerate() {
            let t = e.date_time();
            // Nothing from here on is before the generator's watermark.
            assert!(config.watermark_for_event(n as u64) <= t, "group {group}, event {n}");
            if n > 0 {
                disorder = disorder.max(max_seen - t);
            }
            max_seen = max_seen.max(t);
        }
        assert!(disorder <= bound, "group {group}: disorder {disorder} > bound {bound}");
        if group == 1 {
            assert_eq!(disorder, 0);
            assert_eq!(bound, 0);
        } else {
            assert!(disorder > 0, "group {group} should shuffle event times");
        }
        // With a perfect watermark, the bounded one is never later than it.
        for n in (0..all.len()).step_by(97) {
            let max_so_far = all[..=n].iter().map(Event::date_time).max().unwrap();
            assert!(max_so_far - bound <= config.watermark_for_event(n as u64 + 1));
        }
    }
}

#[test]
fn event_times_follow_the_rate_from_the_base_time() {
    let config = GeneratorConfig::new().num_events(20_001);
    let all = events(&config);
    assert_eq!(all[0].date_time(), 1_436_918_400_000);
    // 10 000 events per second.
    assert_eq!(all[20_000].date_time(), 1_436_918_400_000 + 2_000);
}

#[test]
fn sizes_average_out_to_the_configuration() {
    let all = events(&GeneratorConfig::new().num_events(50_000));
    let mut bid_bytes = 0usize;
    let mut bids = 0usize;
    for e in &all {
        if let Event::Bid(b) = e {
            bids += 1;
            bid_bytes += 32 + b.extra.len();
        }
    }
    let avg = bid_bytes as f64 / bids as f64;
    assert!((avg - 100.0).abs() < 1.0, "{avg}");
}

#[test]
fn json_lines_and_csv_files_round_trip() {
    use millstream_nexmark::files::{read_events, write_events, Format};
    let dir = tempfile::tempdir().unwrap();
    let config = GeneratorConfig::new().seed(5).num_events(2_000).out_of_order_group_size(10);
    let expected = events(&config);
    for (format, name) in [(Format::JsonLines, "events.jsonl"), (Format::Csv, "events.csv")] {
        let path = dir.path().join(name);
        let summary = write_events(&config, &path, format).unwrap();
        assert_eq!(
            (summary.events, summary.persons, summary.auctions, summary.bids),
            (2_000, 40, 120, 1_840)
        );
        assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
        assert_eq!(read_events(&path, format).unwrap(), expected, "{format:?}");
    }
    // JSON lines are exactly the serde shape, one event per line.
    let text = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    assert_eq!(text, json(&expected));
}
