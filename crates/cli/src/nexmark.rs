//! `millstream nexmark generate`: writes Nexmark events to a file (JSON lines or CSV), so
//! that Millstream and another engine read exactly the same input (docs/nexmark.md).

use anyhow::Context;
use millstream_nexmark::files::{write_events, Format};
use millstream_nexmark::GeneratorConfig;
use std::path::PathBuf;
use std::time::Instant;

/// Nexmark tools.
#[derive(Debug, clap::Args)]
pub struct NexmarkOptions {
    #[command(subcommand)]
    command: NexmarkCommand,
}

#[derive(Debug, clap::Subcommand)]
enum NexmarkCommand {
    /// Writes the events of a seeded generator run to a file.
    Generate(GenerateOptions),
}

/// Options of `millstream nexmark generate`.
#[derive(Debug, clap::Args)]
struct GenerateOptions {
    /// Number of events.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// The file to write (replaced).
    #[arg(long)]
    out: PathBuf,
    /// `json` (JSON lines, Flink's Nexmark row shape) or `csv`; default from the
    /// extension (`.csv` is CSV, anything else JSON lines).
    #[arg(long)]
    format: Option<String>,
    /// The generator's seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Out-of-order group size (1: in order).
    #[arg(long, default_value_t = 1)]
    out_of_order_group: u64,
}

/// Runs `millstream nexmark ...`.
pub fn run(options: &NexmarkOptions) -> anyhow::Result<()> {
    match &options.command {
        NexmarkCommand::Generate(o) => generate(o),
    }
}

fn generate(o: &GenerateOptions) -> anyhow::Result<()> {
    let format = match &o.format {
        Some(f) => f.parse::<Format>()?,
        None => Format::from_path(&o.out).unwrap_or(Format::JsonLines),
    };
    let config = GeneratorConfig::new()
        .seed(o.seed)
        .num_events(o.events)
        .out_of_order_group_size(o.out_of_order_group.max(1));
    let started = Instant::now();
    let summary =
        write_events(&config, &o.out, format).with_context(|| format!("writing {}", o.out.display()))?;
    eprintln!(
        "wrote {} events ({} persons, {} auctions, {} bids), {} bytes, to {} in {:.1} s",
        summary.events,
        summary.persons,
        summary.auctions,
        summary.bids,
        summary.bytes,
        o.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
