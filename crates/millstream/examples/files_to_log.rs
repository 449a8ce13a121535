//! A job that uses only files and the embedded log (the one whose clean release build the
//! README measures): score records `{"user": "u1", "score": 3, "ts_ms": 1200}` from the
//! JSON-lines files `<input>/*.jsonl`, summed per user in one-second event-time windows,
//! written exactly once to topic `totals` of the log in `<log-dir>` (created with two
//! partitions if missing), with checkpoints in `<checkpoint-dir>`.
//!
//! ```text
//! cargo run --release -p millstream --example files_to_log -- IN_DIR LOG_DIR CHECKPOINT_DIR
//! millstream consume totals --log-dir LOG_DIR
//! ```

use millstream::prelude::*;
use millstream::serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(crate = "millstream::serde")]
struct Score {
    user: String,
    score: i64,
    ts_ms: i64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, log_dir, checkpoint_dir] = &args[..] else {
        return Err("usage: files_to_log IN_DIR LOG_DIR CHECKPOINT_DIR".into());
    };
    let log = Log::open(log_dir)?;
    if log.topic_config("totals").is_err() {
        log.create_topic("totals", TopicConfig::new(2))?;
    }

    let p = Pipeline::new();
    p.read(
        "Scores",
        JsonLinesSource::<Score>::new(format!("{input}/*.jsonl"))
            .with_timestamp_fn(|s: &Score| Timestamp::from_millis(s.ts_ms)),
    )
    .window_into(Window::into(FixedWindows::of(Duration::from_secs(1))))
    .map(|s: Score| (s.user, s.score))
    .combine_per_key(Sum)
    .write_exactly_once(
        "Totals",
        LogExactlyOnceSink::new(log_dir, "totals", "files-to-log", |v: &WindowedValue<(String, i64)>| {
            let (user, total) = &v.value;
            Ok(Record::new(format!("{user} {} {total}", v.window))
                .with_key(user.clone())
                .with_timestamp(log_record_timestamp(v.timestamp)))
        }),
    );
    let checkpoints = CheckpointConfig::new(CheckpointStore::local(checkpoint_dir)?);
    Runner::new().checkpointing(checkpoints).run(&p)?;
    Ok(())
}
