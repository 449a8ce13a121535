//! Every query over events from the Nexmark generator (with out-of-order groups, read
//! through `NexmarkSource` with its bounded-out-of-orderness watermark): Millstream's
//! answer equals the hand-written baseline's, on 1 and 2 workers.

use millstream_nexmark::answer::Answer;
use millstream_nexmark::queries::Query;
use millstream_nexmark::{baseline, Event, Generator, GeneratorConfig, NexmarkSource};
use millstream_runtime::{Pipeline, Runner};

const EVENTS: u64 = 20_000;

fn config(seed: u64, group: u64) -> GeneratorConfig {
    GeneratorConfig::new().seed(seed).num_events(EVENTS).out_of_order_group_size(group)
}

/// Runs every query over the generated events in one pipeline per query; returns the
/// answers.
fn millstream_answers(config: &GeneratorConfig, workers: usize) -> Vec<(Query, Answer)> {
    Query::ALL
        .into_iter()
        .map(|q| {
            let p = Pipeline::new();
            let events = p.read("Events", NexmarkSource::new(config.clone()).unwrap());
            let answer = q.answer(&events).collect();
            let result = Runner::new()
                .workers(workers)
                .run(&p)
                .unwrap_or_else(|e| panic!("{q} on {workers} workers failed: {e}"));
            assert_eq!(result.counter_total("dropped_late"), 0, "{q} on {workers} workers: nothing late");
            let answers = answer.values();
            assert_eq!(answers.len(), 1, "{q}: one answer");
            (q, answers[0])
        })
        .collect()
}

fn check(config: GeneratorConfig) {
    let events: Vec<Event> = Generator::new(config.clone()).unwrap().collect();
    assert_eq!(events.len() as u64, EVENTS);
    for workers in [1, 2] {
        for (q, answer) in millstream_answers(&config, workers) {
            let expected = baseline::answer(q, &events);
            assert!(expected.rows > 0, "{q}: the generated input gives some rows");
            assert_eq!(answer, expected, "{q} on {workers} workers");
        }
    }
}

#[test]
fn generated_events_in_order() {
    check(config(1, 1));
}

#[test]
fn generated_events_in_out_of_order_groups() {
    check(config(2, 50));
}
