//! Append and read throughput of the log with 100-byte values.
//!
//! ```text
//! cargo run --release -p millstream-log --example log_bench -- [--dir DIR] [--mib N] [--value-bytes N]
//! ```
//!
//! For each scenario it creates a one-partition topic in a fresh directory under `DIR`
//! (default: the system temporary directory, which must be on the disk you want to
//! measure), appends `N` MiB of values (default 512) in batches of the given size, then reads
//! everything back with a [`Reader`] (from the page cache: the data was just written). MiB/s
//! counts value bytes; "disk MiB/s" counts segment bytes (values plus framing).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use millstream_log::{Durability, Log, ReadLimit, Record, TopicConfig};

struct Options {
    dir: PathBuf,
    mib: u64,
    value_bytes: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options { dir: std::env::temp_dir(), mib: 512, value_bytes: 100 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--dir" => options.dir = PathBuf::from(value("--dir")?),
            "--mib" => options.mib = value("--mib")?.parse().map_err(|e| format!("--mib: {e}"))?,
            "--value-bytes" => {
                options.value_bytes =
                    value("--value-bytes")?.parse().map_err(|e| format!("--value-bytes: {e}"))?
            }
            "--help" | "-h" => {
                return Err("usage: log_bench [--dir DIR] [--mib N (per scenario, default 512)] \
                            [--value-bytes N (default 100)]"
                    .into())
            }
            other => return Err(format!("unknown argument {other}; try --help")),
        }
    }
    Ok(options)
}

struct Row {
    name: String,
    records: u64,
    value_bytes: u64,
    disk_bytes: u64,
    elapsed: Duration,
}

impl Row {
    fn print(&self) {
        let secs = self.elapsed.as_secs_f64();
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0) / secs;
        println!(
            "{:<44} {:>11} {:>8.2} {:>14.0} {:>12.1} {:>12.1}",
            self.name,
            self.records,
            secs,
            self.records as f64 / secs,
            mib(self.value_bytes),
            mib(self.disk_bytes)
        );
    }
}

fn run(options: &Options, name: &str, durability: Durability, batch_bytes: usize, mib: u64) -> [Row; 2] {
    let dir = tempfile::tempdir_in(&options.dir).expect("temp dir");
    let log = Log::open(dir.path()).expect("open log");
    let config = TopicConfig::new(1).with_durability(durability).with_segment_bytes(256 << 20);
    log.create_topic("bench", config).expect("create topic");
    let mut writer = log.writer("bench", 0).expect("writer");

    // ~4 bytes of per-record overhead for a keyless, headerless record.
    let per_batch = (batch_bytes / (options.value_bytes + 4)).max(1);
    let value = bytes::Bytes::from(vec![b'x'; options.value_bytes]);
    let batch: Vec<Record> = (0..per_batch)
        .map(|i| Record::new(value.clone()).with_timestamp(1_700_000_000_000 + i as i64))
        .collect();
    let total_records = (mib << 20) / options.value_bytes as u64;
    let batches = total_records.div_ceil(per_batch as u64);

    let start = Instant::now();
    for _ in 0..batches {
        writer.append_batch(&batch).expect("append");
    }
    writer.flush().expect("flush");
    let append_elapsed = start.elapsed();
    let records = batches * per_batch as u64;
    let disk_bytes = writer.size_bytes();
    drop(writer);

    let start = Instant::now();
    let mut reader = log.reader("bench", 0, 0).expect("reader");
    let (mut read, mut read_bytes) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(10_000);
    loop {
        buf.clear();
        if reader.poll_into(ReadLimit::records(10_000), &mut buf).expect("poll") == 0 {
            break;
        }
        read += buf.len() as u64;
        read_bytes += buf.iter().map(|r| r.record.value.len() as u64).sum::<u64>();
    }
    let read_elapsed = start.elapsed();
    assert_eq!(read, records, "read back every record");
    let value_bytes = records * options.value_bytes as u64;
    [
        Row { name: format!("append {name}"), records, value_bytes, disk_bytes, elapsed: append_elapsed },
        Row {
            name: format!("read   {name}"),
            records: read,
            value_bytes: read_bytes,
            disk_bytes,
            elapsed: read_elapsed,
        },
    ]
}

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    println!(
        "millstream-log benchmark: {}-byte values, {} MiB per scenario, in {}",
        options.value_bytes,
        options.mib,
        options.dir.display()
    );
    println!(
        "{:<44} {:>11} {:>8} {:>14} {:>12} {:>12}",
        "scenario", "records", "seconds", "records/s", "MiB/s", "disk MiB/s"
    );
    let small = (options.mib / 8).max(1);
    let scenarios: [(String, Durability, usize, u64); 4] = [
        ("EveryBatch, 1 MiB batches (fsync each)".into(), Durability::EveryBatch, 1 << 20, options.mib),
        ("None, 1 MiB batches".into(), Durability::None, 1 << 20, options.mib),
        (format!("EveryBatch, 64 KiB batches ({small} MiB)"), Durability::EveryBatch, 64 << 10, small),
        ("None, 64 KiB batches".into(), Durability::None, 64 << 10, options.mib),
    ];
    for (name, durability, batch_bytes, mib) in scenarios {
        for row in run(&options, &name, durability, batch_bytes, mib) {
            row.print();
        }
    }
}
