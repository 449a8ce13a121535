//! The `millstream` command.
//!
//! `millstream run demo` (also what `millstream` alone does) runs the live game-score
//! demo: see [`demo`]. `millstream savepoint` takes a savepoint of a running job: see
//! [`savepoint`]. `millstream topic`, `produce` and `consume` manage and use topics of the
//! embedded log: see [`topic`], [`produce`] and [`consume`]. `millstream bench nexmark`
//! measures the Nexmark queries and `millstream nexmark generate` writes their input to a
//! file: see [`bench`] and [`nexmark`].

mod bench;
mod consume;
mod demo;
mod nexmark;
mod produce;
mod savepoint;
mod topic;

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
    /// Creates, lists, describes and deletes topics of the embedded log.
    Topic(topic::TopicOptions),
    /// Appends lines of a file or of standard input to a topic, one record per line.
    Produce(produce::ProduceOptions),
    /// Prints the records of a topic.
    Consume(consume::ConsumeOptions),
    /// Runs benchmarks: `millstream bench nexmark --query q5 --events 10000000`.
    Bench(bench::BenchOptions),
    /// Nexmark tools: `millstream nexmark generate --events N --out FILE`.
    Nexmark(nexmark::NexmarkOptions),
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
        Some(Command::Topic(options)) => topic::run(&options),
        Some(Command::Produce(options)) => produce::run(&options),
        Some(Command::Consume(options)) => consume::run(&options),
        Some(Command::Bench(options)) => bench::run(&options),
        Some(Command::Nexmark(options)) => nexmark::run(&options),
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
