//! `millstream savepoint`: asks the job that checkpoints into a directory for a savepoint,
//! and waits for it.
//!
//! The request goes through the job's checkpoint store (a request file the running job
//! watches), so it works for any job started with checkpointing, in this process or not.

use anyhow::{bail, Context};
use millstream::checkpoint::{CheckpointStore, SavepointOutcome, SavepointRequest};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Options of `millstream savepoint`.
#[derive(Debug, Clone, clap::Args)]
pub struct SavepointOptions {
    /// The checkpoint directory of the running job.
    pub checkpoints: PathBuf,
    /// Where to write the savepoint (a directory that holds no checkpoint yet).
    pub target: PathBuf,
    /// Stop the job once the savepoint is complete (without flushing windows; start the
    /// job again with --from-savepoint to continue).
    #[arg(long)]
    pub stop: bool,
    /// Seconds to wait for the job to answer.
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
}

/// Requests the savepoint and waits for its outcome.
pub fn run(options: &SavepointOptions) -> anyhow::Result<()> {
    let timeout = Duration::try_from_secs_f64(options.timeout).with_context(|| {
        format!("--timeout must be a non-negative number of seconds, got {}", options.timeout)
    })?;
    if !options.checkpoints.is_dir() {
        bail!(
            "{} is not a directory (the checkpoint directory of a running job)",
            options.checkpoints.display()
        );
    }
    let store = CheckpointStore::local(&options.checkpoints)
        .with_context(|| format!("opening checkpoint directory {}", options.checkpoints.display()))?;
    std::fs::create_dir_all(&options.target)
        .with_context(|| format!("creating savepoint directory {}", options.target.display()))?;
    let target = std::fs::canonicalize(&options.target)
        .with_context(|| format!("savepoint directory {}", options.target.display()))?;
    let since_epoch =
        SystemTime::now().duration_since(UNIX_EPOCH).context("the system clock is before 1970")?;
    let id = format!("{}-{}", since_epoch.as_millis(), std::process::id());
    let request =
        SavepointRequest { id: id.clone(), target: target.display().to_string(), stop: options.stop };
    store.submit_savepoint_request(&request).context("writing the savepoint request")?;
    eprintln!(
        "savepoint {id} requested from the job checkpointing into {}{}",
        options.checkpoints.display(),
        if options.stop { " (stopping it)" } else { "" }
    );
    let started = Instant::now();
    loop {
        if let Some(outcome) = store.savepoint_outcome(&id).context("reading the savepoint outcome")? {
            return match outcome {
                SavepointOutcome::Completed { location, checkpoint, bytes, stopped } => {
                    println!(
                        "savepoint complete: {location} (checkpoint {checkpoint}, {bytes} bytes){}",
                        if stopped { "; the job stopped" } else { "" }
                    );
                    Ok(())
                }
                SavepointOutcome::Failed { message } => bail!("savepoint failed: {message}"),
            };
        }
        if started.elapsed() >= timeout {
            // Withdraw the request so that a job started later does not act on it.
            let outcome = SavepointOutcome::Failed { message: "withdrawn: no job answered in time".into() };
            store.finish_savepoint_request(&id, &outcome).context("withdrawing the savepoint request")?;
            bail!(
                "no job answered within {:.0} s: is a job checkpointing into {} running?",
                timeout.as_secs_f64(),
                options.checkpoints.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
