//! `millstream run demo`: the live game-score example.
//!
//! A generated stream of scoring events arrives in real time, out of order, with a few
//! late events. Scores are summed per team in 10-second event-time windows, with
//! speculative (EARLY) panes every 2 seconds of processing time, an ON_TIME pane when
//! the watermark passes the end of the window, and a LATE pane for every late event
//! within the 30-second allowed lateness; later events are dropped. Panes accumulate.
//! Every pane is printed as it fires. The job stops by itself after `--duration`
//! seconds (the source finishes, the watermark goes to the end of time, the windows
//! flush), or on Ctrl-C, and prints a summary.

mod events;
mod report;

use anyhow::{bail, Context};
use events::{game_events, EventSettings, OUT_OF_ORDERNESS};
use millstream::prelude::*;
use report::{clock, dropped_line, pane_line, PaneCounts};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant, SystemTime, UNIX_EPOCH};

/// Window size.
const WINDOW: Duration = Duration::from_secs(10);
/// Processing time between early panes.
const EARLY_EVERY: Duration = Duration::from_secs(2);
/// How long after the watermark passes a window late data still updates it.
const ALLOWED_LATENESS: Duration = Duration::from_secs(30);

const DEFAULT_DURATION_SECS: f64 = 20.0;
const DEFAULT_RATE: f64 = 50.0;
const DEFAULT_SEED: u64 = 42;

/// Options of the demo.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Seconds of event generation before the job stops by itself (0: until Ctrl-C).
    #[arg(long, default_value_t = DEFAULT_DURATION_SECS)]
    pub duration: f64,
    /// Events per second.
    #[arg(long, default_value_t = DEFAULT_RATE)]
    pub rate: f64,
    /// Worker threads (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    /// Seed of the event stream.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions { duration: DEFAULT_DURATION_SECS, rate: DEFAULT_RATE, workers: None, seed: DEFAULT_SEED }
    }
}

impl DemoOptions {
    /// The generation time, `None` for "until cancelled".
    fn generation_time(&self) -> anyhow::Result<Option<StdDuration>> {
        if self.duration == 0.0 {
            return Ok(None);
        }
        StdDuration::try_from_secs_f64(self.duration).map(Some).with_context(|| {
            format!("--duration must be a non-negative number of seconds, got {}", self.duration)
        })
    }
}

/// Runs the demo to completion.
pub fn run(options: &DemoOptions) -> anyhow::Result<()> {
    if !(options.rate.is_finite() && options.rate > 0.0) {
        bail!("--rate must be a positive number of events per second, got {}", options.rate);
    }
    let duration = options.generation_time()?;
    let since_epoch =
        SystemTime::now().duration_since(UNIX_EPOCH).context("the system clock is before 1970")?;
    let start = Timestamp::from_millis(
        i64::try_from(since_epoch.as_millis()).context("the system clock is too far ahead")?,
    );

    let p = Pipeline::new();
    let events = p.read(
        "GameEvents",
        game_events(EventSettings { seed: options.seed, rate: options.rate, duration, start }),
    );
    let trigger = Trigger::after_watermark()
        .with_early_firings(Trigger::after_processing_time(EARLY_EVERY))
        .with_late_firings(Trigger::after_count(1));
    let (totals, dropped) = events
        .map(|e| (e.team, e.score))
        .window_into(
            Window::into(FixedWindows::of(WINDOW))
                .triggering(trigger)
                .with_allowed_lateness(ALLOWED_LATENESS)
                .accumulating_fired_panes(),
        )
        .combine_per_key_with_dropped(Sum);
    totals.write_to("PrintPanes", StdoutSink::new(pane_line));
    dropped.write_to("PrintDropped", StdoutSink::new(dropped_line));
    let panes = totals.collect();
    let event_count = events.combine_globally(Count).collect();

    let runner = match options.workers {
        Some(w) => Runner::new().workers(usize::from(w)),
        None => Runner::new(),
    };
    install_ctrl_c(runner.cancel_handle())?;

    let until = match duration {
        Some(d) => format!("for {:.1} s", d.as_secs_f64()),
        None => "until Ctrl-C".to_owned(),
    };
    println!(
        "millstream demo: game scores at {} events/s {until} (seed {}), starting {} UTC",
        options.rate,
        options.seed,
        clock(start)
    );
    println!(
        "  sum per team in {} s windows; EARLY panes every {} s, ON_TIME at the watermark (bound {} s), \
         LATE per late event up to {} s; accumulating. Ctrl-C stops.",
        WINDOW.millis() / 1000,
        EARLY_EVERY.millis() / 1000,
        OUT_OF_ORDERNESS.millis() / 1000,
        ALLOWED_LATENESS.millis() / 1000
    );
    let started = Instant::now();
    let result = runner.run(&p).context("the demo job failed")?;

    let counts = PaneCounts::of(&panes.windowed());
    let generated: u64 = event_count.values().iter().sum();
    println!(
        "summary: {generated} events in {:.1} s; panes: {} EARLY, {} ON_TIME, {} LATE; late events dropped: {}",
        started.elapsed().as_secs_f64(),
        counts.early,
        counts.on_time,
        counts.late,
        result.counter_total("/dropped_late")
    );
    Ok(())
}

/// Ctrl-C cancels the job (the source stops, windows flush, the summary prints); a
/// second Ctrl-C exits at once.
fn install_ctrl_c(cancel: CancelHandle) -> anyhow::Result<()> {
    let pressed = Arc::new(AtomicBool::new(false));
    ctrlc::set_handler(move || {
        if pressed.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("stopping: flushing windows (Ctrl-C again to abort)");
        cancel.cancel();
    })
    .context("cannot install the Ctrl-C handler")
}
