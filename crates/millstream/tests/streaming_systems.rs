//! The scoring examples of *Streaming Systems* (Akidau, Chernyak, Lax), chapters 2 and 4,
//! run on Millstream with exact results: values, windows, output timestamps, pane timing
//! and pane indices.
//!
//! Inputs are those of the authors' companion repository (`takidau/streamingbook`,
//! `BeamModelTest.java`): one team's scores, each with an event time and the processing
//! time at which it arrives, scripted with a `TestStream` (`create_stream` and
//! `create_stream_unfudged` below transcribe its `createStream` methods line by line,
//! including its perfect and heuristic watermarks and the extra 6 of Example 2-8).
//! Expected results are the repository's (`BeamModel.java`, its `getExpectedResults`),
//! written in its format, with two differences:
//! * times print in UTC (the repository's strings show 11:xx because they were produced
//!   one hour off UTC) and output timestamps with their milliseconds (`12:01:59.999`);
//! * Example 2-4 (aligned delay): the repository's expectations come from Beam's direct
//!   runner, which processes an element and a processing-time timer that fall on the same
//!   instant in an order of its own, and aligns to odd minutes. Here it runs as the book
//!   shows it (Figure 2-7: panes at 12:06, 12:08 and 12:10), with the expectations derived
//!   by hand from the model (see the test).
//!
//! Processing time: a TestStream job starts its manual clock at 0; every script first
//! advances it by 12 hours so that the clock reads the book's times of day (12:00:00), and
//! `Trigger::aligned_processing_time` aligns to the book's even minutes. A processing-time
//! trigger fires once the clock reaches its deadline (`>=`), before the elements that the
//! script adds after that clock move.
//!
//! Every example runs on 1 and on 3 workers, which must agree.
//!

use millstream::model::combiners::Sum;
use millstream::model::{
    Duration, FixedWindows, Sessions, Timestamp, Timing, Trigger, UntilNextElement, Window as ModelWindow,
    WindowFn, WindowedValue,
};
use millstream::runtime::{Collected, PCollection, Pipeline, PipelineResult, Runner, TestStream, Window};

type Score = (String, i64);

/// `"12:00:26"` as an event or processing time on day zero.
fn at(hms: &str) -> Timestamp {
    let parts: Vec<i64> = hms.split(':').map(|p| p.parse().expect("HH:MM:SS")).collect();
    assert_eq!(parts.len(), 3, "time {hms} is not HH:MM:SS");
    Timestamp::hms(parts[0], parts[1], parts[2])
}

fn score(points: i64, event_time: &str) -> (Score, Timestamp) {
    (("TeamX".to_string(), points), at(event_time))
}

/// Builds a TestStream the way `BeamModelTest` does: processing time is moved *to* a time
/// of day (the script keeps the last one), the watermark is moved to a time of day.
struct Script {
    stream: TestStream<Score>,
    processing_time: Timestamp,
}

impl Script {
    /// The manual clock starts at 0 (midnight); move it to 12:00:00, where the book's
    /// processing-time axis starts, and the watermark to 12:00:00 (`BASE_TIME`).
    fn new() -> Self {
        let base = at("12:00:00");
        let stream = TestStream::new()
            .advance_processing_time(Duration::from_millis(base.millis()))
            .advance_watermark_to(base);
        Script { stream, processing_time: base }
    }

    fn processing_time_to(mut self, hms: &str) -> Self {
        let to = at(hms);
        assert!(to >= self.processing_time, "processing time goes back to {hms}");
        self.stream = self.stream.advance_processing_time(to - self.processing_time);
        self.processing_time = to;
        self
    }

    fn add(mut self, points: i64, event_time: &str) -> Self {
        self.stream = self.stream.add_elements(vec![score(points, event_time)]);
        self
    }

    fn watermark_to(mut self, hms: &str) -> Self {
        self.stream = self.stream.advance_watermark_to(at(hms));
        self
    }

    fn finish(self) -> TestStream<Score> {
        self.stream.advance_watermark_to_infinity()
    }
}

/// The batch input of the examples (`createBatch`): the book's nine scores.
fn batch_input() -> Vec<(Score, Timestamp)> {
    vec![
        score(5, "12:00:26"),
        score(7, "12:02:26"),
        score(3, "12:03:39"),
        score(4, "12:04:19"),
        score(8, "12:03:06"),
        score(3, "12:06:39"),
        score(9, "12:01:26"),
        score(8, "12:07:26"),
        score(1, "12:07:46"),
    ]
}

/// `createStream()`: the book's scores at their processing times, with only the watermark
/// at 12:00 until the input ends (used by Example 2-4).
fn create_stream_unfudged() -> TestStream<Score> {
    Script::new()
        .processing_time_to("12:04:59")
        .add(5, "12:00:26")
        .processing_time_to("12:05:39")
        .add(7, "12:02:26")
        .processing_time_to("12:06:13")
        .add(3, "12:03:39")
        .processing_time_to("12:06:39")
        .add(4, "12:04:19")
        .processing_time_to("12:07:06")
        .add(8, "12:03:06")
        .processing_time_to("12:07:19")
        .add(3, "12:06:39")
        .processing_time_to("12:08:19")
        .add(9, "12:01:26")
        .processing_time_to("12:08:39")
        .add(8, "12:07:26")
        .processing_time_to("12:09:00")
        .add(1, "12:07:46")
        .processing_time_to("12:10:00")
        .finish()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Watermark {
    /// The watermark stays at 12:00 until the input ends.
    Batch,
    /// The watermark passes each window's end only once all its data has arrived.
    Perfect,
    /// A heuristic watermark that passes 12:02 before the 9 (event time 12:01:25) arrives.
    Heuristic,
}

/// `createStream(watermark, extraSix)`: the scores with two event times moved (7 at
/// 12:02:24 and 9 at 12:01:25, so that sessions connect), and watermark advances.
fn create_stream(watermark: Watermark, extra_six: bool) -> TestStream<Score> {
    use Watermark::*;
    let mut s = Script::new()
        .processing_time_to("12:04:59")
        .add(5, "12:00:26")
        .processing_time_to("12:05:39")
        .add(7, "12:02:24")
        .processing_time_to("12:06:00");
    if watermark == Heuristic {
        s = s.watermark_to("12:02:00");
    }
    s = s.processing_time_to("12:06:13").add(3, "12:03:39").processing_time_to("12:06:39").add(4, "12:04:19");
    if extra_six {
        s = s.add(6, "12:00:53");
    }
    s = s
        .processing_time_to("12:07:06")
        .add(8, "12:03:06")
        .processing_time_to("12:07:19")
        .add(3, "12:06:39")
        .processing_time_to("12:07:30");
    if watermark == Heuristic {
        s = s.watermark_to("12:04:00").processing_time_to("12:07:40").watermark_to("12:06:00");
    }
    s = s.processing_time_to("12:08:19").add(9, "12:01:25").processing_time_to("12:08:39");
    if watermark == Perfect {
        s = s.watermark_to("12:02:00");
    }
    s = s.add(8, "12:07:26").processing_time_to("12:09:00").add(1, "12:07:46");
    if watermark == Perfect {
        s = s
            .watermark_to("12:04:00")
            .processing_time_to("12:09:10")
            .watermark_to("12:06:00")
            .processing_time_to("12:09:20")
            .watermark_to("12:08:00");
    }
    s = s.processing_time_to("12:09:30");
    if watermark == Heuristic {
        s = s.watermark_to("12:08:00");
    }
    s.finish()
}

/// One output in the repository's format (`FormatAsStrings`), plus a `RETRACT` prefix for
/// retractions: `"[12:00:00, 12:02:00): TeamX:5 12:01:59.999 EARLY index=0 isFirst"`.
fn format(wv: &WindowedValue<Score>) -> String {
    let window = match wv.window {
        ModelWindow::Global => "[global window]".to_string(),
        w => format!("{w:?}"),
    };
    let timestamp = if wv.timestamp == ModelWindow::GLOBAL_MAX_TIMESTAMP {
        "END_OF_GLOBAL_WINDOW".to_string()
    } else {
        wv.timestamp.to_string()
    };
    let timing = match wv.pane.timing {
        Timing::Early => "EARLY",
        Timing::OnTime => "ON_TIME",
        Timing::Late => "LATE",
        Timing::Unknown => "UNKNOWN",
    };
    let mut s = format!(
        "{}{window}: {}:{} {timestamp} {timing} index={}",
        if wv.retraction { "RETRACT " } else { "" },
        wv.value.0,
        wv.value.1,
        wv.pane.index
    );
    if wv.pane.on_time_index > -1 {
        s.push_str(&format!(" onTimeIndex={}", wv.pane.on_time_index));
    }
    // Beam reports -1 for EARLY panes, and only for them.
    assert_eq!(wv.pane.on_time_index == -1, wv.pane.timing == Timing::Early, "on-time index of {s}");
    if wv.pane.is_first {
        s.push_str(" isFirst");
    }
    if wv.pane.is_last {
        s.push_str(" isLast");
    }
    s
}

fn sorted(v: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    let mut v: Vec<String> = v.into_iter().map(Into::into).collect();
    v.sort();
    v
}

/// Builds the pipeline (input, then `example`) and runs it on 1 and on 3 workers; both
/// must give the same outputs, returned sorted, with the 3-worker run's counters.
fn run_example(
    input: impl Fn(&Pipeline) -> PCollection<Score>,
    example: impl Fn(PCollection<Score>) -> PCollection<Score>,
) -> (Vec<String>, PipelineResult) {
    let mut results: Vec<(Vec<String>, PipelineResult)> = Vec::new();
    for workers in [1, 3] {
        let p = Pipeline::new();
        let out: Collected<Score> = example(input(&p)).collect();
        let result = Runner::new()
            .workers(workers)
            .run(&p)
            .unwrap_or_else(|e| panic!("run on {workers} workers failed: {e}"));
        results.push((sorted(out.windowed().iter().map(format)), result));
    }
    let (three, result) = results.pop().expect("two runs");
    let (one, one_result) = results.pop().expect("two runs");
    assert_eq!(one, three, "1 and 3 workers disagree");
    assert_eq!(one_result.counters, result.counters, "1 and 3 workers count differently");
    (three, result)
}

fn stream(s: TestStream<Score>) -> impl Fn(&Pipeline) -> PCollection<Score> {
    move |p: &Pipeline| p.test_stream(s.clone())
}

fn batch(p: &Pipeline) -> PCollection<Score> {
    p.create_timestamped(batch_input())
}

fn two_minute_windows() -> Window<FixedWindows> {
    Window::into(FixedWindows::of(Duration::from_mins(2)))
}

fn one_minute_sessions() -> Window<Sessions> {
    Window::into(Sessions::with_gap_duration(Duration::from_mins(1)))
}

/// Effectively unbounded lateness, as the examples use (`Duration.standardDays(1000)`).
const THOUSAND_DAYS: Duration = Duration::from_hours(24 * 1000);

/// Early firings one minute after the first element of a pane, the on-time pane, and a
/// late pane per late element (Examples 2-7, 2-8, 2-9 and 4-3).
fn early_on_time_late() -> Trigger {
    Trigger::after_watermark()
        .with_early_firings(Trigger::after_processing_time(Duration::from_mins(1)))
        .with_late_firings(Trigger::after_count(1))
}

/// The example's transform: `Window.into(...)` then `Sum.integersPerKey()`. (`Window` is
/// not `Clone`, so it is rebuilt for each run.)
fn windowed_sum<W: WindowFn>(
    make: impl Fn() -> Window<W>,
) -> impl Fn(PCollection<Score>) -> PCollection<Score> {
    move |input: PCollection<Score>| input.window_into(make()).combine_per_key(Sum)
}

// ---------------------------------------------------------------------------------------
// Chapter 2
// ---------------------------------------------------------------------------------------

/// Example 2-1 / Figure 2-3: classic batch, one sum over the global window.
#[test]
fn example_2_1_classic_batch() {
    let (out, _) = run_example(batch, |input| input.combine_per_key(Sum));
    assert_eq!(
        out,
        sorted([
            "[global window]: TeamX:48 END_OF_GLOBAL_WINDOW ON_TIME index=0 onTimeIndex=0 isFirst isLast"
        ])
    );
}

/// Example 2-2 / Figure 2-5: windowed batch, fixed two-minute windows.
#[test]
fn example_2_2_windowed_batch() {
    let (out, _) = run_example(batch, windowed_sum(two_minute_windows));
    assert_eq!(
        out,
        sorted([
            "[12:00:00, 12:02:00): TeamX:14 12:01:59.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:02:00, 12:04:00): TeamX:18 12:03:59.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:04:00, 12:06:00): TeamX:4 12:05:59.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:06:00, 12:08:00): TeamX:12 12:07:59.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
        ])
    );
}

/// Example 2-3 / Figure 2-6: per-record triggering, accumulating. The watermark stays at
/// 12:00, so every pane is EARLY; when the input ends no window has anything new and
/// nothing holds the output watermark, so no further (empty) pane is emitted.
#[test]
fn example_2_3_per_record_streaming() {
    let (out, _) = run_example(
        stream(create_stream(Watermark::Batch, false)),
        windowed_sum(|| {
            two_minute_windows()
                .triggering(Trigger::repeatedly(Trigger::after_count(1)))
                .with_allowed_lateness(THOUSAND_DAYS)
                .accumulating_fired_panes()
        }),
    );
    assert_eq!(
        out,
        sorted([
            "[12:00:00, 12:02:00): TeamX:5 12:01:59.999 EARLY index=0 isFirst",
            "[12:00:00, 12:02:00): TeamX:14 12:01:59.999 EARLY index=1",
            "[12:02:00, 12:04:00): TeamX:7 12:03:59.999 EARLY index=0 isFirst",
            "[12:02:00, 12:04:00): TeamX:10 12:03:59.999 EARLY index=1",
            "[12:02:00, 12:04:00): TeamX:18 12:03:59.999 EARLY index=2",
            "[12:04:00, 12:06:00): TeamX:4 12:05:59.999 EARLY index=0 isFirst",
            "[12:06:00, 12:08:00): TeamX:3 12:07:59.999 EARLY index=0 isFirst",
            "[12:06:00, 12:08:00): TeamX:11 12:07:59.999 EARLY index=1",
            "[12:06:00, 12:08:00): TeamX:12 12:07:59.999 EARLY index=2",
        ])
    );
}

/// Example 2-4 / Figure 2-7: aligned delay (micro-batches every two minutes of processing
/// time), accumulating, on `createStream()`.
///
/// Derivation (even minutes): at 12:06 the panes of the 5 ([12:00, 12:02)) and the 7
/// ([12:02, 12:04)) fire; at 12:08, [12:02, 12:04) (7+3+8), [12:04, 12:06) (4) and
/// [12:06, 12:08) (3); at 12:10, [12:00, 12:02) (5+9) and [12:06, 12:08) (3+8+1). When the
/// input ends every window has fired all its data, so nothing holds the output watermark
/// and no empty final pane is emitted (as in Example 2-3).
///
/// The repository's expectations (`alignedTo(TWO_MINUTES, 12:05:00)`, on the direct
/// runner) instead show one EARLY pane per window and an ON_TIME `isLast` pane for each at
/// the end of input: the direct runner delivered the 12:07 and 12:09 timers after the
/// elements added at 12:07:06 and 12:09:00, and never fired the 12:09 timer of the 9.
#[test]
fn example_2_4_aligned_delay() {
    let (out, _) = run_example(
        stream(create_stream_unfudged()),
        windowed_sum(|| {
            two_minute_windows()
                .triggering(Trigger::repeatedly(Trigger::aligned_processing_time(Duration::from_mins(2))))
                .with_allowed_lateness(THOUSAND_DAYS)
                .accumulating_fired_panes()
        }),
    );
    assert_eq!(
        out,
        sorted([
            // 12:06
            "[12:00:00, 12:02:00): TeamX:5 12:01:59.999 EARLY index=0 isFirst",
            "[12:02:00, 12:04:00): TeamX:7 12:03:59.999 EARLY index=0 isFirst",
            // 12:08
            "[12:02:00, 12:04:00): TeamX:18 12:03:59.999 EARLY index=1",
            "[12:04:00, 12:06:00): TeamX:4 12:05:59.999 EARLY index=0 isFirst",
            "[12:06:00, 12:08:00): TeamX:3 12:07:59.999 EARLY index=0 isFirst",
            // 12:10
            "[12:00:00, 12:02:00): TeamX:14 12:01:59.999 EARLY index=1",
            "[12:06:00, 12:08:00): TeamX:12 12:07:59.999 EARLY index=1",
        ])
    );
}

/// Example 2-5 / Figure 2-8: unaligned delay (two minutes after the first element of each
/// pane), accumulating. The 9 arrives at 12:08:19 and its pane is not due before the input
/// ends, so it holds the output watermark at 12:01:59.999: the final panes of all windows
/// are ON_TIME (those of [12:02, 12:04), [12:04, 12:06) and [12:06, 12:08) empty, emitted
/// because on-time panes always are).
#[test]
fn example_2_5_unaligned_delay() {
    let (out, _) = run_example(
        stream(create_stream(Watermark::Batch, false)),
        windowed_sum(|| {
            two_minute_windows()
                .triggering(Trigger::repeatedly(Trigger::after_processing_time(Duration::from_mins(2))))
                .with_allowed_lateness(THOUSAND_DAYS)
                .accumulating_fired_panes()
        }),
    );
    assert_eq!(
        out,
        sorted([
            "[12:00:00, 12:02:00): TeamX:5 12:01:59.999 EARLY index=0 isFirst",
            "[12:00:00, 12:02:00): TeamX:14 12:01:59.999 ON_TIME index=1 onTimeIndex=0 isLast",
            "[12:02:00, 12:04:00): TeamX:18 12:03:59.999 EARLY index=0 isFirst",
            "[12:02:00, 12:04:00): TeamX:18 12:03:59.999 ON_TIME index=1 onTimeIndex=0 isLast",
            "[12:04:00, 12:06:00): TeamX:4 12:05:59.999 EARLY index=0 isFirst",
            "[12:04:00, 12:06:00): TeamX:4 12:05:59.999 ON_TIME index=1 onTimeIndex=0 isLast",
            "[12:06:00, 12:08:00): TeamX:12 12:07:59.999 EARLY index=0 isFirst",
            "[12:06:00, 12:08:00): TeamX:12 12:07:59.999 ON_TIME index=1 onTimeIndex=0 isLast",
        ])
    );
}

/// Example 2-6 / Figure 2-10 (left): the watermark trigger (the default) with a perfect
/// watermark: one on-time pane per window, with all its data.
#[test]
fn example_2_6_watermark_trigger_perfect_watermark() {
    let (out, result) =
        run_example(stream(create_stream(Watermark::Perfect, false)), windowed_sum(two_minute_windows));
    assert_eq!(
        out,
        sorted([
            "[12:00:00, 12:02:00): TeamX:14 12:01:59.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:02:00, 12:04:00): TeamX:18 12:03:59.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:04:00, 12:06:00): TeamX:4 12:05:59.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:06:00, 12:08:00): TeamX:12 12:07:59.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
        ])
    );
    assert_eq!(result.counter_total("/dropped_late"), 0);
}

/// Example 2-6 / Figure 2-10 (right): the same with a heuristic watermark, which passes
/// 12:02 before the 9 arrives: the first window's result misses the 9, which is dropped
/// (no allowed lateness).
#[test]
fn example_2_6_watermark_trigger_heuristic_watermark() {
    let (out, result) =
        run_example(stream(create_stream(Watermark::Heuristic, false)), windowed_sum(two_minute_windows));
    assert_eq!(
        out,
        sorted([
            "[12:00:00, 12:02:00): TeamX:5 12:01:59.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:02:00, 12:04:00): TeamX:18 12:03:59.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:04:00, 12:06:00): TeamX:4 12:05:59.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:06:00, 12:08:00): TeamX:12 12:07:59.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
        ])
    );
    assert_eq!(result.counter_total("/dropped_late"), 1, "the 9 is dropped");
}

fn early_on_time_late_accumulating() -> Window<FixedWindows> {
    two_minute_windows()
        .triggering(early_on_time_late())
        .with_allowed_lateness(THOUSAND_DAYS)
        .accumulating_fired_panes()
}

/// Example 2-7 / Figure 2-11 (left): early, on-time and late firings, accumulating, with
/// the perfect watermark. No pane is `isLast`: the watermark, not the end of the input,
/// fires the on-time panes, and late firings stay possible for 1000 days.
#[test]
fn example_2_7_early_on_time_late_perfect_watermark() {
    let (out, _) = run_example(
        stream(create_stream(Watermark::Perfect, false)),
        windowed_sum(early_on_time_late_accumulating),
    );
    assert_eq!(
        out,
        sorted([
            "[12:00:00, 12:02:00): TeamX:5 12:01:59.999 EARLY index=0 isFirst",
            "[12:00:00, 12:02:00): TeamX:14 12:01:59.999 ON_TIME index=1 onTimeIndex=0",
            "[12:02:00, 12:04:00): TeamX:10 12:03:59.999 EARLY index=0 isFirst",
            "[12:02:00, 12:04:00): TeamX:18 12:03:59.999 EARLY index=1",
            "[12:02:00, 12:04:00): TeamX:18 12:03:59.999 ON_TIME index=2 onTimeIndex=0",
            "[12:04:00, 12:06:00): TeamX:4 12:05:59.999 EARLY index=0 isFirst",
            "[12:04:00, 12:06:00): TeamX:4 12:05:59.999 ON_TIME index=1 onTimeIndex=0",
            "[12:06:00, 12:08:00): TeamX:3 12:07:59.999 EARLY index=0 isFirst",
            "[12:06:00, 12:08:00): TeamX:12 12:07:59.999 ON_TIME index=1 onTimeIndex=0",
        ])
    );
}

/// Example 2-7 / Figure 2-11 (right): the same with the heuristic watermark: the 9 comes
/// after the on-time pane of [12:00, 12:02) and fires a LATE pane with the corrected sum.
#[test]
fn example_2_7_early_on_time_late_heuristic_watermark() {
    let (out, result) = run_example(
        stream(create_stream(Watermark::Heuristic, false)),
        windowed_sum(early_on_time_late_accumulating),
    );
    assert_eq!(
        out,
        sorted([
            "[12:00:00, 12:02:00): TeamX:5 12:01:59.999 EARLY index=0 isFirst",
            "[12:00:00, 12:02:00): TeamX:5 12:01:59.999 ON_TIME index=1 onTimeIndex=0",
            "[12:00:00, 12:02:00): TeamX:14 12:01:59.999 LATE index=2 onTimeIndex=1",
            "[12:02:00, 12:04:00): TeamX:10 12:03:59.999 EARLY index=0 isFirst",
            "[12:02:00, 12:04:00): TeamX:18 12:03:59.999 ON_TIME index=1 onTimeIndex=0",
            "[12:04:00, 12:06:00): TeamX:4 12:05:59.999 EARLY index=0 isFirst",
            "[12:04:00, 12:06:00): TeamX:4 12:05:59.999 ON_TIME index=1 onTimeIndex=0",
            "[12:06:00, 12:08:00): TeamX:3 12:07:59.999 EARLY index=0 isFirst",
            "[12:06:00, 12:08:00): TeamX:12 12:07:59.999 ON_TIME index=1 onTimeIndex=0",
        ])
    );
    assert_eq!(result.counter_total("/dropped_late"), 0);
}

/// Example 2-8 / Figure 2-12: allowed lateness of two minutes, with the heuristic
/// watermark and an extra 6 (event time 12:00:53) that arrives late but within the
/// lateness. The 9 arrives when the watermark is at 12:06, past [12:00, 12:02)'s end plus
/// two minutes: it is dropped and counted.
#[test]
fn example_2_8_allowed_lateness() {
    let (out, result) = run_example(
        stream(create_stream(Watermark::Heuristic, true)),
        windowed_sum(|| {
            two_minute_windows()
                .triggering(early_on_time_late())
                .with_allowed_lateness(Duration::from_mins(2))
                .accumulating_fired_panes()
        }),
    );
    assert_eq!(
        out,
        sorted([
            "[12:00:00, 12:02:00): TeamX:5 12:01:59.999 EARLY index=0 isFirst",
            "[12:00:00, 12:02:00): TeamX:5 12:01:59.999 ON_TIME index=1 onTimeIndex=0",
            "[12:00:00, 12:02:00): TeamX:11 12:01:59.999 LATE index=2 onTimeIndex=1",
            "[12:02:00, 12:04:00): TeamX:10 12:03:59.999 EARLY index=0 isFirst",
            "[12:02:00, 12:04:00): TeamX:18 12:03:59.999 ON_TIME index=1 onTimeIndex=0",
            "[12:04:00, 12:06:00): TeamX:4 12:05:59.999 EARLY index=0 isFirst",
            "[12:04:00, 12:06:00): TeamX:4 12:05:59.999 ON_TIME index=1 onTimeIndex=0",
            "[12:06:00, 12:08:00): TeamX:3 12:07:59.999 EARLY index=0 isFirst",
            "[12:06:00, 12:08:00): TeamX:12 12:07:59.999 ON_TIME index=1 onTimeIndex=0",
        ])
    );
    assert_eq!(result.counter_total("/dropped_late"), 1, "the 9 is beyond the allowed lateness");
}

/// The dropped 9 of Example 2-8 is available as a PCollection too.
#[test]
fn example_2_8_dropped_data_side_output() {
    for workers in [1, 3] {
        let p = Pipeline::new();
        let (_, dropped) = p
            .test_stream(create_stream(Watermark::Heuristic, true))
            .window_into(
                two_minute_windows()
                    .triggering(early_on_time_late())
                    .with_allowed_lateness(Duration::from_mins(2))
                    .accumulating_fired_panes(),
            )
            .combine_per_key_with_dropped(Sum);
        let dropped = dropped.collect();
        Runner::new().workers(workers).run(&p).unwrap();
        let dropped: Vec<(Score, Timestamp, ModelWindow)> =
            dropped.windowed().into_iter().map(|wv| (wv.value, wv.timestamp, wv.window)).collect();
        assert_eq!(
            dropped,
            vec![(
                ("TeamX".to_string(), 9),
                at("12:01:25"),
                ModelWindow::interval(at("12:00:00"), at("12:02:00"))
            )]
        );
    }
}

/// Example 2-9 / Figure 2-13: Example 2-7 (heuristic) in discarding mode: each pane holds
/// only what arrived since the previous one (empty on-time panes sum to 0).
#[test]
fn example_2_9_discarding() {
    let (out, _) = run_example(
        stream(create_stream(Watermark::Heuristic, false)),
        windowed_sum(|| {
            two_minute_windows()
                .triggering(early_on_time_late())
                .with_allowed_lateness(THOUSAND_DAYS)
                .discarding_fired_panes()
        }),
    );
    assert_eq!(
        out,
        sorted([
            "[12:00:00, 12:02:00): TeamX:5 12:01:59.999 EARLY index=0 isFirst",
            "[12:00:00, 12:02:00): TeamX:0 12:01:59.999 ON_TIME index=1 onTimeIndex=0",
            "[12:00:00, 12:02:00): TeamX:9 12:01:59.999 LATE index=2 onTimeIndex=1",
            "[12:02:00, 12:04:00): TeamX:10 12:03:59.999 EARLY index=0 isFirst",
            "[12:02:00, 12:04:00): TeamX:8 12:03:59.999 ON_TIME index=1 onTimeIndex=0",
            "[12:04:00, 12:06:00): TeamX:4 12:05:59.999 EARLY index=0 isFirst",
            "[12:04:00, 12:06:00): TeamX:0 12:05:59.999 ON_TIME index=1 onTimeIndex=0",
            "[12:06:00, 12:08:00): TeamX:3 12:07:59.999 EARLY index=0 isFirst",
            "[12:06:00, 12:08:00): TeamX:9 12:07:59.999 ON_TIME index=1 onTimeIndex=0",
        ])
    );
}

/// Chapter 2's streaming examples also agree with the batch results when the trigger only
/// fires on time and the watermark is perfect: batch is a special case.
#[test]
fn streaming_with_a_perfect_watermark_equals_batch() {
    let (streaming, _) =
        run_example(stream(create_stream(Watermark::Perfect, false)), windowed_sum(two_minute_windows));
    let p_batch = |p: &Pipeline| {
        // createStream's event times: 7 at 12:02:24 and 9 at 12:01:25.
        let mut input = batch_input();
        input[1] = score(7, "12:02:24");
        input[6] = score(9, "12:01:25");
        p.create_timestamped(input)
    };
    let (batch, _) = run_example(p_batch, windowed_sum(two_minute_windows));
    assert_eq!(streaming, batch);
}

// ---------------------------------------------------------------------------------------
// Chapter 4
// ---------------------------------------------------------------------------------------

/// Example 4-3 / Figure 4-7: session windows (one-minute gap) with early, on-time and late
/// firings, accumulating, on the heuristic watermark.
///
/// The 8 (12:03:06) joins the fired session of the 7 and the session of 3 and 4 into
/// [12:02:24, 12:05:19), which starts a new pane history (index 0, `isFirst`). The late 9
/// (12:01:25) joins that session and the first one ([12:00:26, 12:01:26)) into one
/// session of 36, a LATE first pane. The 8 and the 1 grow the session of the 3 to
/// [12:06:39, 12:08:46), which fires once, on time, when the input ends.
#[test]
fn example_4_3_sessions() {
    let (out, _) = run_example(
        stream(create_stream(Watermark::Heuristic, false)),
        windowed_sum(|| {
            one_minute_sessions()
                .triggering(early_on_time_late())
                .with_allowed_lateness(THOUSAND_DAYS)
                .accumulating_fired_panes()
        }),
    );
    assert_eq!(
        out,
        sorted([
            "[12:00:26, 12:01:26): TeamX:5 12:01:25.999 EARLY index=0 isFirst",
            "[12:00:26, 12:01:26): TeamX:5 12:01:25.999 ON_TIME index=1 onTimeIndex=0",
            "[12:02:24, 12:03:24): TeamX:7 12:03:23.999 EARLY index=0 isFirst",
            "[12:02:24, 12:05:19): TeamX:22 12:05:18.999 EARLY index=0 isFirst",
            "[12:02:24, 12:05:19): TeamX:22 12:05:18.999 ON_TIME index=1 onTimeIndex=0",
            "[12:00:26, 12:05:19): TeamX:36 12:05:18.999 LATE index=0 onTimeIndex=0 isFirst",
            "[12:06:39, 12:07:39): TeamX:3 12:07:38.999 EARLY index=0 isFirst",
            "[12:06:39, 12:08:46): TeamX:12 12:08:45.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
        ])
    );
}

fn sessions_retracting() -> Window<Sessions> {
    one_minute_sessions()
        .triggering(early_on_time_late())
        .with_allowed_lateness(THOUSAND_DAYS)
        .accumulating_and_retracting_fired_panes()
}

/// Example 4-3 / Figure 4-7 in accumulating-and-retracting mode, as the book shows it:
/// every pane first retracts the outputs it replaces, including, after a merge, the
/// outputs of the sessions merged into it. A retraction withdraws an earlier output, so it
/// carries that output's window, value and timestamp (the Dataflow paper: "having explicit
/// retractions for the old windows"), with the pane of the firing that replaces it.
#[test]
fn example_4_3_sessions_accumulating_and_retracting() {
    let (out, _) =
        run_example(stream(create_stream(Watermark::Heuristic, false)), windowed_sum(sessions_retracting));
    assert_eq!(
        out,
        sorted([
            "[12:00:26, 12:01:26): TeamX:5 12:01:25.999 EARLY index=0 isFirst",
            "RETRACT [12:00:26, 12:01:26): TeamX:5 12:01:25.999 ON_TIME index=1 onTimeIndex=0",
            "[12:00:26, 12:01:26): TeamX:5 12:01:25.999 ON_TIME index=1 onTimeIndex=0",
            "[12:02:24, 12:03:24): TeamX:7 12:03:23.999 EARLY index=0 isFirst",
            // The 8 merges the 7's session (fired) and the 3+4 session (not yet fired).
            "RETRACT [12:02:24, 12:03:24): TeamX:7 12:03:23.999 EARLY index=0 isFirst",
            "[12:02:24, 12:05:19): TeamX:22 12:05:18.999 EARLY index=0 isFirst",
            "RETRACT [12:02:24, 12:05:19): TeamX:22 12:05:18.999 ON_TIME index=1 onTimeIndex=0",
            "[12:02:24, 12:05:19): TeamX:22 12:05:18.999 ON_TIME index=1 onTimeIndex=0",
            // The late 9 merges the first two sessions.
            "RETRACT [12:00:26, 12:01:26): TeamX:5 12:01:25.999 LATE index=0 onTimeIndex=0 isFirst",
            "RETRACT [12:02:24, 12:05:19): TeamX:22 12:05:18.999 LATE index=0 onTimeIndex=0 isFirst",
            "[12:00:26, 12:05:19): TeamX:36 12:05:18.999 LATE index=0 onTimeIndex=0 isFirst",
            "[12:06:39, 12:07:39): TeamX:3 12:07:38.999 EARLY index=0 isFirst",
            // The 8 and the 1 grow the 3's session, which fires when the input ends.
            "RETRACT [12:06:39, 12:07:39): TeamX:3 12:07:38.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:06:39, 12:08:46): TeamX:12 12:08:45.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
        ])
    );
}

/// Whatever windows retractions are attributed to, a consumer that adds outputs and
/// subtracts retractions ends with the final sessions' sums: 36 and 12, total 48.
#[test]
fn example_4_3_retractions_net_to_the_final_sums() {
    for workers in [1, 3] {
        let p = Pipeline::new();
        let out = p
            .test_stream(create_stream(Watermark::Heuristic, false))
            .window_into(sessions_retracting())
            .combine_per_key(Sum)
            .collect();
        Runner::new().workers(workers).run(&p).unwrap();
        let net: i64 =
            out.windowed().iter().map(|wv| if wv.retraction { -wv.value.1 } else { wv.value.1 }).sum();
        assert_eq!(net, 48);
        let retractions = out.windowed().iter().filter(|wv| wv.retraction).count();
        assert_eq!(retractions, 6);
    }
}

/// `ValidityWindows` of the companion repository (not in the book): each score is valid
/// from its event time until the next score's, a merging WindowFn that shrinks windows
/// (Millstream's `UntilNextElement`; the last window lasts an hour here, where the
/// repository's lasts until the end of the global window). Default trigger, perfect
/// watermark: one on-time pane per window.
#[test]
fn validity_windows_until_next_element() {
    let (out, _) = run_example(
        stream(create_stream(Watermark::Perfect, false)),
        windowed_sum(|| Window::into(UntilNextElement::with_max_length(Duration::from_hours(1)))),
    );
    assert_eq!(
        out,
        sorted([
            "[12:00:26, 12:01:25): TeamX:5 12:01:24.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:01:25, 12:02:24): TeamX:9 12:02:23.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:02:24, 12:03:06): TeamX:7 12:03:05.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:03:06, 12:03:39): TeamX:8 12:03:38.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:03:39, 12:04:19): TeamX:3 12:04:18.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:04:19, 12:06:39): TeamX:4 12:06:38.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:06:39, 12:07:26): TeamX:3 12:07:25.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:07:26, 12:07:46): TeamX:8 12:07:45.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
            "[12:07:46, 13:07:46): TeamX:1 13:07:45.999 ON_TIME index=0 onTimeIndex=0 isFirst isLast",
        ])
    );
}
