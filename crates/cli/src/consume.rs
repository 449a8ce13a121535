//! `millstream consume`: prints the records of a topic, one line each.
//!
//! Each line is the record's value, preceded with `--print-key` by its key and a tab (an
//! empty key for records without one) and with `--print-offset` by `<partition>:<offset>`
//! and a tab. Keys and values are printed as UTF-8 (invalid bytes replaced). Partitions are
//! read in turn, each in offset order. Without `--follow` the command prints what the
//! partitions held when it started and exits; with it, it keeps polling for new records
//! until `--max` records are printed or Ctrl-C.

use crate::topic::{topic_error, LogDirArg};
use anyhow::{bail, Context};
use millstream_log::{LogError, ReadLimit, Reader};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Options of `millstream consume`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsumeOptions {
    /// The topic.
    pub topic: String,
    /// Read only this partition [default: all].
    #[arg(long, value_name = "P")]
    pub partition: Option<u32>,
    /// Start at this offset (in every partition read).
    #[arg(long, value_name = "N", conflicts_with_all = ["from_beginning", "from_end"])]
    pub from_offset: Option<u64>,
    /// Start at each partition's oldest retained record (the default).
    #[arg(long, conflicts_with = "from_end")]
    pub from_beginning: bool,
    /// Start at each partition's end: only records appended from now on (with --follow).
    #[arg(long)]
    pub from_end: bool,
    /// Keep waiting for new records (stop with Ctrl-C).
    #[arg(long)]
    pub follow: bool,
    /// Stop after this many records.
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,
    /// Print each record's key before its value, separated by a tab.
    #[arg(long)]
    pub print_key: bool,
    /// Print `<partition>:<offset>` and a tab before each record.
    #[arg(long)]
    pub print_offset: bool,
    #[command(flatten)]
    pub log: LogDirArg,
}

/// One partition being read.
struct Partition {
    reader: Reader,
    /// Without --follow: where to stop.
    end: Option<u64>,
}

/// Prints the records.
pub fn run(options: &ConsumeOptions) -> anyhow::Result<()> {
    let log = options.log.open(false)?;
    let topic = &options.topic;
    let config = log.topic_config(topic).map_err(|e| topic_error(&log, topic, e))?;
    let partitions: Vec<u32> = match options.partition {
        Some(p) if p >= config.partitions => {
            bail!("topic {topic} has {} partitions; there is no partition {p}", config.partitions)
        }
        Some(p) => vec![p],
        None => (0..config.partitions).collect(),
    };
    let mut readers = Vec::new();
    for p in partitions {
        let (start, end) = log.offsets(topic, p).map_err(|e| topic_error(&log, topic, e))?;
        let offset = match (options.from_offset, options.from_end) {
            (Some(o), _) => {
                if !(start..=end).contains(&o) {
                    bail!(
                        "offset {o} is out of range for partition {p} of topic {topic}: valid offsets are \
                         {start}..={end} (start ..= end)"
                    );
                }
                o
            }
            (None, true) => end,
            (None, false) => start,
        };
        let reader = log.reader(topic, p, offset).map_err(|e| topic_error(&log, topic, e))?;
        readers.push(Partition { reader, end: (!options.follow).then_some(end) });
    }
    let stop = Arc::new(AtomicBool::new(false));
    if options.follow {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("installing the Ctrl-C handler")?;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let max = options.max.unwrap_or(u64::MAX);
    let mut line = Vec::new();
    while printed < max && !stop.load(Ordering::SeqCst) {
        let mut any = false;
        let mut all_done = true;
        for part in readers.iter_mut() {
            let mut limit = ReadLimit::default();
            limit.max_records = limit.max_records.min(usize::try_from(max - printed).unwrap_or(usize::MAX));
            if let Some(end) = part.end {
                let left = end.saturating_sub(part.reader.position());
                if left == 0 {
                    continue;
                }
                limit.max_records = limit.max_records.min(usize::try_from(left).unwrap_or(usize::MAX));
            }
            all_done = false;
            if limit.max_records == 0 {
                break;
            }
            let records = match part.reader.poll(limit) {
                Ok(r) => r,
                Err(e @ LogError::OffsetOutOfRange { .. }) => {
                    return Err(
                        anyhow::Error::new(e).context("retention deleted records before they were read")
                    )
                }
                Err(e) => return Err(topic_error(&log, topic, e)),
            };
            any |= !records.is_empty();
            for r in records {
                line.clear();
                if options.print_offset {
                    line.extend_from_slice(format!("{}:{}\t", part.reader.partition(), r.offset).as_bytes());
                }
                if options.print_key {
                    line.extend_from_slice(r.record.key.as_deref().unwrap_or_default());
                    line.push(b'\t');
                }
                line.extend_from_slice(&r.record.value);
                line.push(b'\n');
                let text = String::from_utf8_lossy(&line);
                if let Err(e) = out.write_all(text.as_bytes()) {
                    return quiet_on_broken_pipe(e);
                }
                printed += 1;
            }
        }
        if !options.follow && all_done {
            break;
        }
        if !any {
            if let Err(e) = out.flush() {
                return quiet_on_broken_pipe(e);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if let Err(e) = out.flush() {
        return quiet_on_broken_pipe(e);
    }
    Ok(())
}

/// A reader that went away (`| head`) ends the command quietly.
fn quiet_on_broken_pipe(e: std::io::Error) -> anyhow::Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(anyhow::Error::new(e).context("writing to standard output"))
    }
}
