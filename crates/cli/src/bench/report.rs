//! A benchmark run's result: a JSON document and a readable table.

use super::measure::LatencySummary;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One measured run of one query on one engine.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    /// `q0` .. `q11`.
    pub query: String,
    /// `millstream` (the engine) or `baseline` (the hand-written single-threaded loop).
    pub engine: String,
    /// Where the events came from: `generator` or the input file's path.
    pub input: String,
    /// Events read.
    pub events: u64,
    /// Worker threads.
    pub workers: usize,
    /// Wall-clock seconds from the start of the run to its last output.
    pub seconds: f64,
    /// `events / seconds`.
    pub events_per_second: f64,
    /// `events_per_second / workers`.
    pub events_per_second_per_core: f64,
    /// Result rows.
    pub rows: u64,
    /// The answer's order-independent checksum (docs/nexmark.md).
    pub checksum: u64,
    /// The checksum as 16 hex digits (for tools whose numbers are doubles).
    pub checksum_hex: String,
    /// Peak resident memory of the process, bytes (`None` where not reported).
    pub peak_rss_bytes: Option<u64>,
    /// The optimizations that were on.
    pub optimizer: OptimizerReport,
    /// Target input rate in events/s (streaming latency runs), `None` for as fast as possible.
    pub rate: Option<f64>,
    /// End-to-end latency of the outputs (streaming latency runs).
    pub latency: Option<LatencySummary>,
}

/// Which optimizations a run had on.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct OptimizerReport {
    /// Producer-consumer fusion.
    pub fusion: bool,
    /// Sibling fusion.
    pub sibling_fusion: bool,
    /// Combiner lifting.
    pub combiner_lifting: bool,
}

/// The runs as a table, one line each.
pub fn table(runs: &[RunReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<6} {:<10} {:>7} {:>12} {:>9} {:>13} {:>13} {:>11} {:>18} {:>9} {:>10} {:>10}",
        "query",
        "engine",
        "workers",
        "events",
        "seconds",
        "events/s",
        "ev/s/core",
        "rows",
        "checksum",
        "peak MiB",
        "p50 ms",
        "p99 ms"
    );
    for r in runs {
        let ms = |us: u64| format!("{:.2}", us as f64 / 1000.0);
        let (p50, p99) = match &r.latency {
            Some(l) => (ms(l.p50_us), ms(l.p99_us)),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let rss = r.peak_rss_bytes.map_or("-".to_owned(), |b| format!("{:.0}", b as f64 / (1024.0 * 1024.0)));
        let _ = writeln!(
            out,
            "{:<6} {:<10} {:>7} {:>12} {:>9.3} {:>13.0} {:>13.0} {:>11} {:>18} {:>9} {:>10} {:>10}",
            r.query,
            r.engine,
            r.workers,
            r.events,
            r.seconds,
            r.events_per_second,
            r.events_per_second_per_core,
            r.rows,
            r.checksum_hex,
            rss,
            p50,
            p99
        );
    }
    out
}
