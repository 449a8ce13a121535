//! `millstream produce`: appends lines of a file or of standard input to a topic, one
//! record per line.
//!
//! Records are timestamped with the current time. With `--key-separator`, the part of a
//! line before the first separator is the record's key (which picks its partition, as
//! Kafka's partitioner would), the rest its value; without, records have no key and go to
//! the partitions in turn, one batch at a time. Lines are sent in batches of up to
//! `--batch-bytes`, and whenever no more input is waiting, so that records typed or piped
//! in slowly are appended as they come.

use crate::topic::{topic_error, LogDirArg};
use anyhow::{bail, Context};
use millstream_log::{Producer, Record};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

/// Options of `millstream produce`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProduceOptions {
    /// The topic (it must exist: `millstream topic create`).
    pub topic: String,
    /// Read the lines from this file instead of standard input.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Split each line at the first occurrence of this separator into key and value; a
    /// line without it is an error.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Append a batch once its lines reach this many bytes.
    #[arg(long, value_name = "N", default_value_t = 1 << 20)]
    pub batch_bytes: usize,
    #[command(flatten)]
    pub log: LogDirArg,
}

/// Appends the lines; reports how many records went to the topic on standard error.
pub fn run(options: &ProduceOptions) -> anyhow::Result<()> {
    if options.batch_bytes == 0 {
        bail!("--batch-bytes must be at least 1");
    }
    if options.key_separator.as_deref() == Some("") {
        bail!("--key-separator must not be empty");
    }
    let log = options.log.open(false)?;
    let topic = &options.topic;
    let mut producer = log.producer(topic).map_err(|e| topic_error(&log, topic, e))?;
    let (input, name): (Box<dyn Read>, String) = match &options.file {
        Some(path) => (
            Box::new(std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?),
            path.display().to_string(),
        ),
        None => (Box::new(std::io::stdin()), "standard input".to_string()),
    };
    let mut reader = BufReader::with_capacity(options.batch_bytes.clamp(64 << 10, 8 << 20), input);
    let separator = options.key_separator.as_deref().map(str::as_bytes);
    let mut batch: Vec<Record> = Vec::new();
    let (mut batch_bytes, mut line_number, mut produced) = (0usize, 0u64, 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).with_context(|| format!("reading {name}"))?;
        if n > 0 {
            line_number += 1;
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            let record = match separator {
                None => Record::new(line.clone()),
                Some(sep) => match line.windows(sep.len()).position(|w| w == sep) {
                    Some(at) => Record::new(line[at + sep.len()..].to_vec()).with_key(line[..at].to_vec()),
                    None => {
                        send(&mut producer, &mut batch, &mut produced)?;
                        bail!(
                            "{name}: line {line_number} has no key separator {:?} ({produced} record{} \
                             before it {} appended to topic {topic})",
                            options.key_separator.as_deref().unwrap_or_default(),
                            if produced == 1 { "" } else { "s" },
                            if produced == 1 { "was" } else { "were" }
                        );
                    }
                },
            };
            batch_bytes += line.len();
            batch.push(record);
        }
        // Send a full batch, and whatever is batched when no more input is waiting.
        if n == 0 || batch_bytes >= options.batch_bytes || reader.buffer().is_empty() {
            send(&mut producer, &mut batch, &mut produced)?;
            batch_bytes = 0;
        }
        if n == 0 {
            break;
        }
    }
    producer.flush().with_context(|| format!("flushing topic {topic}"))?;
    eprintln!("produced {produced} record{} to topic {topic}", if produced == 1 { "" } else { "s" });
    Ok(())
}

fn send(producer: &mut Producer, batch: &mut Vec<Record>, produced: &mut u64) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    producer.append(batch).with_context(|| format!("appending to topic {}", producer.topic()))?;
    *produced += batch.len() as u64;
    batch.clear();
    Ok(())
}
