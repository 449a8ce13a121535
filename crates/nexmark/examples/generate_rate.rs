//! Measures the Nexmark generator's rate on one thread.
//!
//! `cargo run --release -p millstream-nexmark --example generate_rate [events]`

use millstream_nexmark::{Event, Generator, GeneratorConfig};
use std::time::Instant;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000_000);
    let config = GeneratorConfig::new().num_events(n);
    let mut generator = match Generator::new(config) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut batch: Vec<Event> = Vec::with_capacity(4096);
    let (mut events, mut checksum) = (0u64, 0i64);
    let started = Instant::now();
    loop {
        batch.clear();
        let got = generator.fill(&mut batch, 4096);
        if got == 0 {
            break;
        }
        events += got as u64;
        // Touch the events so that nothing is optimized away.
        checksum = batch.iter().fold(checksum, |c, e| c.wrapping_add(e.date_time()));
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{events} events in {secs:.3} s: {:.0} events/s on one thread (checksum {checksum})",
        events as f64 / secs
    );
}
