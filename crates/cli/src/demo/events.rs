//! The demo's input: a live, seeded stream of game-score events on the wall clock, out of
//! order, with some late data.

use millstream::prelude::*;
use millstream::runtime::WatermarkStrategy;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration as StdDuration;

/// The teams that score.
pub const TEAMS: [&str; 4] = ["red", "blue", "green", "amber"];
/// Players per team.
const PLAYERS_PER_TEAM: u32 = 12;
/// Event times jitter back by up to this much; the watermark trails by as much.
pub const OUT_OF_ORDERNESS: Duration = Duration::from_secs(3);
/// The share of events that arrive late, delayed by far more than the watermark bound.
const LATE_FRACTION: f64 = 0.03;
/// How far back late events are, in milliseconds: past the watermark for most, past the
/// allowed lateness for some.
const LATE_DELAY_MS: std::ops::RangeInclusive<i64> = 6_000..=50_000;

/// One scoring event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GameEvent {
    /// The player.
    pub user: String,
    /// The player's team.
    pub team: String,
    /// Points scored.
    pub score: i64,
}

/// What the generator needs to know.
#[derive(Clone, Copy, Debug)]
pub struct EventSettings {
    /// Seed of the event stream.
    pub seed: u64,
    /// Events per second.
    pub rate: f64,
    /// Generation time; `None` until cancelled.
    pub duration: Option<StdDuration>,
    /// Event time of event 0 (the wall clock when the job starts).
    pub start: Timestamp,
}

/// The source of game events. Event `i` is scheduled `i / rate` seconds after `start`
/// (the rate limit keeps the schedule close to the wall clock); its event time is the
/// schedule jittered back by up to [`OUT_OF_ORDERNESS`], or, for a few late events,
/// by several to many seconds more.
pub fn game_events(settings: EventSettings) -> GeneratorSource<GameEvent> {
    let EventSettings { seed, rate, duration, start } = settings;
    let source = GeneratorSource::new(seed, move |rng, i| {
        let team = TEAMS[rng.gen_range(0..TEAMS.len())];
        let user = format!("{team}-{:02}", rng.gen_range(1..=PLAYERS_PER_TEAM));
        let score = rng.gen_range(1..=20);
        let scheduled = start + Duration::from_millis((i as f64 * 1000.0 / rate) as i64);
        let delay = if rng.gen_bool(LATE_FRACTION) {
            rng.gen_range(LATE_DELAY_MS)
        } else {
            rng.gen_range(0..=OUT_OF_ORDERNESS.millis())
        };
        (GameEvent { user, team: team.to_owned(), score }, scheduled - Duration::from_millis(delay))
    })
    .rate_per_second(rate)
    .watermark_strategy(WatermarkStrategy::bounded_out_of_orderness(OUT_OF_ORDERNESS));
    match duration {
        Some(d) => source.max_duration(d),
        None => source,
    }
}
