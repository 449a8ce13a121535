//! The `millstream` command.
//!
//! `millstream run demo` (also what `millstream` alone does) runs the live game-score
//! demo: see [`demo`]. `millstream savepoint` takes a savepoint of a running job: see
//! [`savepoint`].

mod demo;
mod savepoint;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Millstream: one model for streams and batches. With no command, runs the demo
/// (`millstream run demo`).
#[derive(Debug, Parser)]
#[command(name = "millstream", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a built-in job.
    Run {
        /// The job to run.
        #[arg(value_enum, default_value_t = Job::Demo)]
        job: Job,
        #[command(flatten)]
        options: demo::DemoOptions,
    },
    /// Takes a savepoint of a running job (optionally stopping it).
    Savepoint(savepoint::SavepointOptions),
}

/// The built-in jobs.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Job {
    /// Live game scores: event-time windows with early, on-time and late panes.
    Demo,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Run { job: Job::Demo, options }) => demo::run(&options),
        Some(Command::Savepoint(options)) => savepoint::run(&options),
        None => demo::run(&demo::DemoOptions::default()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole chain of causes on one line, without a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
