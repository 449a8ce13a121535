//! `millstream topic`: creates, lists, describes and deletes topics of the embedded log.
//!
//! Every log command (`topic`, `produce`, `consume`) works on the log directory given by
//! `--log-dir`, else the `MILLSTREAM_LOG_DIR` environment variable, else
//! `./millstream-data/log`.

use anyhow::{bail, Context};
use millstream_log::{Durability, Log, LogError, TopicConfig};
use std::path::PathBuf;
use std::time::Duration;

/// The environment variable naming the default log directory.
pub const LOG_DIR_ENV: &str = "MILLSTREAM_LOG_DIR";
/// The log directory when neither `--log-dir` nor the environment variable says.
pub const DEFAULT_LOG_DIR: &str = "./millstream-data/log";

/// Where the log is.
#[derive(Debug, Clone, clap::Args)]
pub struct LogDirArg {
    /// The log directory [default: $MILLSTREAM_LOG_DIR, else ./millstream-data/log].
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
}

impl LogDirArg {
    /// The directory: the option, the environment variable or the default.
    pub fn dir(&self) -> PathBuf {
        self.log_dir
            .clone()
            .or_else(|| std::env::var_os(LOG_DIR_ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LOG_DIR))
    }

    /// Opens the log; unless `create`, a missing directory is an error (a mistyped path
    /// should not look like an empty log).
    pub fn open(&self, create: bool) -> anyhow::Result<Log> {
        let dir = self.dir();
        if !create && !dir.is_dir() {
            bail!(
                "log directory {} does not exist (choose one with --log-dir or {LOG_DIR_ENV}; \
                 `millstream topic create` creates it)",
                dir.display()
            );
        }
        Log::open(&dir).with_context(|| format!("opening log directory {}", dir.display()))
    }
}

/// Adds the log directory to errors about a topic, and a hint for a missing one.
pub fn topic_error(log: &Log, topic: &str, e: LogError) -> anyhow::Error {
    match e {
        LogError::TopicNotFound { .. } => anyhow::anyhow!(
            "topic \"{topic}\" does not exist in log directory {} (`millstream topic list` lists \
             the topics there)",
            log.root().display()
        ),
        e => anyhow::Error::new(e)
            .context(format!("topic \"{topic}\" in log directory {}", log.root().display())),
    }
}

/// Options of `millstream topic`.
#[derive(Debug, Clone, clap::Args)]
pub struct TopicOptions {
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum TopicCommand {
    /// Creates a topic.
    Create {
        /// The topic: 1-249 characters of [A-Za-z0-9._-], not starting with a dot.
        name: String,
        /// Number of partitions.
        #[arg(long)]
        partitions: u32,
        /// Delete a partition's oldest segments while the rest is at least this many bytes
        /// [default: no limit].
        #[arg(long, value_name = "BYTES")]
        retention_bytes: Option<u64>,
        /// Delete segments whose newest record is older than this many milliseconds
        /// [default: no limit].
        #[arg(long, value_name = "MS")]
        retention_ms: Option<i64>,
        /// Segment file size (at least 1024) [default: 134217728, 128 MiB].
        #[arg(long, value_name = "BYTES")]
        segment_bytes: Option<u64>,
        /// When appends are fsynced: every-batch, interval:<ms> or none.
        #[arg(long, default_value = "every-batch", value_parser = parse_durability)]
        durability: Durability,
        #[command(flatten)]
        log: LogDirArg,
    },
    /// Lists the topics, with their partitions, records and bytes.
    List {
        #[command(flatten)]
        log: LogDirArg,
    },
    /// Shows a topic's configuration and, per partition, its offsets, bytes and segments.
    Describe {
        /// The topic.
        name: String,
        #[command(flatten)]
        log: LogDirArg,
    },
    /// Deletes a topic and all its records (fails while a writer holds one of its
    /// partitions).
    Delete {
        /// The topic.
        name: String,
        #[command(flatten)]
        log: LogDirArg,
    },
}

/// Parses `every-batch`, `interval:<ms>` or `none`.
pub fn parse_durability(s: &str) -> Result<Durability, String> {
    let bad = || format!("bad durability {s:?}: expected every-batch, interval:<milliseconds> or none");
    match s {
        "every-batch" => Ok(Durability::EveryBatch),
        "none" => Ok(Durability::None),
        _ => {
            let ms = s.strip_prefix("interval:").ok_or_else(bad)?;
            let ms: u64 = ms.parse().map_err(|_| bad())?;
            if ms == 0 {
                return Err(format!("bad durability {s:?}: the interval must be at least 1 ms"));
            }
            Ok(Durability::Interval(Duration::from_millis(ms)))
        }
    }
}

/// `every-batch`, `interval:<ms>` or `none`.
pub fn durability_text(d: Durability) -> String {
    match d {
        Durability::EveryBatch => "every-batch".into(),
        Durability::Interval(i) => format!("interval:{}", i.as_millis()),
        Durability::None => "none".into(),
    }
}

fn limit_text<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

/// Formats rows as columns: the first left-aligned, the others right-aligned.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == 0 {
                out.push_str(&format!("{cell:<w$}"));
            } else {
                out.push_str(&format!("  {cell:>w$}"));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Runs `millstream topic ...`.
pub fn run(options: &TopicOptions) -> anyhow::Result<()> {
    match &options.command {
        TopicCommand::Create {
            name,
            partitions,
            retention_bytes,
            retention_ms,
            segment_bytes,
            durability,
            log,
        } => {
            let mut config = TopicConfig::new(*partitions)
                .with_retention_bytes(*retention_bytes)
                .with_retention_ms(*retention_ms)
                .with_durability(*durability);
            if let Some(bytes) = segment_bytes {
                config = config.with_segment_bytes(*bytes);
            }
            // Check the name and configuration before creating a log directory for them.
            millstream_log::validate_topic_name(name)?;
            config.validate(name)?;
            let log = log.open(true)?;
            log.create_topic(name, config).with_context(|| {
                format!("creating topic \"{name}\" in log directory {}", log.root().display())
            })?;
            println!(
                "created topic {name} with {partitions} partition{} in {}",
                if *partitions == 1 { "" } else { "s" },
                log.root().display()
            );
        }
        TopicCommand::List { log } => {
            let log = log.open(false)?;
            let mut rows = Vec::new();
            for name in log.list_topics().with_context(|| format!("listing {}", log.root().display()))? {
                let d = log.describe_topic(&name).map_err(|e| topic_error(&log, &name, e))?;
                let records: u64 = d.partitions.iter().map(|p| p.end_offset - p.start_offset).sum();
                let bytes: u64 = d.partitions.iter().map(|p| p.bytes).sum();
                rows.push(vec![
                    name,
                    d.config.partitions.to_string(),
                    records.to_string(),
                    bytes.to_string(),
                ]);
            }
            if rows.is_empty() {
                eprintln!("no topics in {}", log.root().display());
            } else {
                print!("{}", table(&["topic", "partitions", "records", "bytes"], &rows));
            }
        }
        TopicCommand::Describe { name, log } => {
            let log = log.open(false)?;
            let d = log.describe_topic(name).map_err(|e| topic_error(&log, name, e))?;
            let c = &d.config;
            println!("topic:           {}", d.name);
            println!("partitions:      {}", c.partitions);
            println!("retention bytes: {}", limit_text(c.retention_bytes));
            println!("retention ms:    {}", limit_text(c.retention_ms));
            println!("segment bytes:   {}", c.segment_bytes);
            println!("durability:      {}", durability_text(c.durability));
            println!();
            let mut rows: Vec<Vec<String>> = d
                .partitions
                .iter()
                .map(|p| {
                    vec![
                        p.partition.to_string(),
                        p.start_offset.to_string(),
                        p.end_offset.to_string(),
                        (p.end_offset - p.start_offset).to_string(),
                        p.bytes.to_string(),
                        p.segments.to_string(),
                    ]
                })
                .collect();
            let sum = |f: fn(&millstream_log::PartitionDescription) -> u64| -> String {
                d.partitions.iter().map(f).sum::<u64>().to_string()
            };
            rows.push(vec![
                "total".into(),
                String::new(),
                String::new(),
                sum(|p| p.end_offset - p.start_offset),
                sum(|p| p.bytes),
                sum(|p| p.segments as u64),
            ]);
            print!("{}", table(&["partition", "start", "end", "records", "bytes", "segments"], &rows));
        }
        TopicCommand::Delete { name, log } => {
            let log = log.open(false)?;
            log.delete_topic(name).map_err(|e| topic_error(&log, name, e))?;
            println!("deleted topic {name} from {}", log.root().display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_specs() {
        assert_eq!(parse_durability("every-batch"), Ok(Durability::EveryBatch));
        assert_eq!(parse_durability("none"), Ok(Durability::None));
        assert_eq!(parse_durability("interval:250"), Ok(Durability::Interval(Duration::from_millis(250))));
        for bad in ["", "always", "interval", "interval:", "interval:x", "interval:-1", "interval:0"] {
            assert!(parse_durability(bad).is_err(), "{bad}");
        }
        for d in ["every-batch", "none", "interval:7"] {
            assert_eq!(durability_text(parse_durability(d).unwrap()), d);
        }
    }

    #[test]
    fn tables_align() {
        let t = table(&["a", "bb"], &[vec!["xyz".into(), "1".into()], vec!["q".into(), "1234".into()]]);
        assert_eq!(t, "a      bb\nxyz     1\nq    1234\n");
    }
}
