//! A quick throughput check of the core path: a bounded generated input, keyed, windowed
//! into fixed windows and summed per key. `cargo run --release -p millstream --example
//! throughput -- <elements> <workers> [optimizer]`, where `optimizer` is `on` (default),
//! `off`, or a list such as `fusion,combiner_lifting` (the `MILLSTREAM_OPTIMIZER`
//! syntax). (Nexmark and the real benchmark come later.)

use millstream::model::combiners::Sum;
use millstream::model::{Duration, FixedWindows, Timestamp};
use millstream::runtime::{OptimizerOptions, Pipeline, Runner, Window};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: i64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    if let Some(optimizer) = args.next() {
        std::env::set_var(millstream::runtime::optimizer::OPTIMIZER_ENV, optimizer);
    }
    let options = OptimizerOptions::from_env();
    let p = Pipeline::new();
    let input: Vec<(u64, Timestamp)> = (0..n).map(|i| ((i as u64) * 7919 % 1000, Timestamp(i))).collect();
    let sums = p
        .create_timestamped(input)
        .map(|k| (k, 1i64))
        .window_into(Window::into(FixedWindows::of(Duration::from_secs(10))))
        .combine_per_key(Sum)
        .collect();
    let start = Instant::now();
    Runner::new().workers(workers).optimizer(options).run(&p).expect("run");
    let secs = start.elapsed().as_secs_f64();
    let total: i64 = sums.values().iter().map(|(_, s)| s).sum();
    assert_eq!(total, n);
    println!("{n} elements, {workers} workers, {options:?}: {secs:.2} s, {:.0} elements/s", n as f64 / secs);
}
