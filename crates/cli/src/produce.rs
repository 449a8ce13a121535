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
use millstream_cli::produce_input::{LineRecords, ProduceInputError, DEFAULT_MAX_LINE_BYTES};
use millstream_log::{Producer, Record};
use std::io::{BufReader, Read};
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
    /// Fail on a line longer than this many bytes (terminator excluded), before reading
    /// it whole: a file without line breaks is not read into memory at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_LINE_BYTES)]
    pub max_line_bytes: usize,
    #[command(flatten)]
    pub log: LogDirArg,
}

/// Appends the lines; reports how many records went to the topic on standard error.
pub fn run(options: &ProduceOptions) -> anyhow::Result<()> {
    if options.batch_bytes == 0 {
        bail!("--batch-bytes must be at least 1");
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
    let reader = BufReader::with_capacity(options.batch_bytes.clamp(64 << 10, 8 << 20), input);
    let mut lines = LineRecords::new(reader, options.key_separator.as_deref(), options.max_line_bytes)?;
    let mut batch: Vec<Record> = Vec::new();
    let (mut batch_bytes, mut produced) = (0usize, 0u64);
    loop {
        let record = match lines.next_record() {
            Ok(Some(line)) => {
                batch_bytes += line.key.map_or(0, <[u8]>::len) + line.value.len();
                let record = Record::new(line.value.to_vec());
                Some(match line.key {
                    Some(key) => record.with_key(key.to_vec()),
                    None => record,
                })
            }
            Ok(None) => None,
            Err(e) => {
                // What was read before the bad line goes to the topic, so that the message
                // can say exactly where the input stopped.
                send(&mut producer, &mut batch, &mut produced)?;
                let appended = format!(
                    "{produced} record{} before it {} appended to topic {topic}",
                    if produced == 1 { "" } else { "s" },
                    if produced == 1 { "was" } else { "were" }
                );
                match e {
                    ProduceInputError::Read { .. } => {
                        return Err(e).with_context(|| format!("{name} ({appended})"))
                    }
                    e => bail!("{name}: {e} ({appended})"),
                }
            }
        };
        let done = record.is_none();
        batch.extend(record);
        // Send a full batch, and whatever is batched when no more input is waiting.
        if done || batch_bytes >= options.batch_bytes || lines.reader().buffer().is_empty() {
            send(&mut producer, &mut batch, &mut produced)?;
            batch_bytes = 0;
        }
        if done {
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
