//! Stateful DoFns end to end: state cells per key and window, event-time and
//! processing-time timers, watermark holds, window expiry, late data and errors. Every
//! test is driven by a TestStream and runs on 1 and 3 workers with the same results.

use millstream_model::{Duration, FixedWindows, Timestamp, Timing, Window as W};
use millstream_runtime::stateful::{
    BagState, OrderedListState, StatefulContext, StatefulDoFn, TimeDomain, TimerFiring, ValueState,
};
use millstream_runtime::{
    PAssert, Pipeline, PipelineResult, ReadStatus, Runner, Source, SourceError, SourceReader, TestStream,
    UserError, Window,
};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn run(p: &Pipeline, workers: usize) -> PipelineResult {
    Runner::new().workers(workers).run(p).unwrap_or_else(|e| panic!("run failed with {workers} workers: {e}"))
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn kv(k: &str, v: i64, at: Timestamp) -> ((String, i64), Timestamp) {
    ((k.to_string(), v), at)
}

fn secs(s: i64) -> Timestamp {
    Timestamp(s * 1000)
}

fn minute(m: i64) -> W {
    W::interval(secs(m * 60), secs((m + 1) * 60))
}

/// Numbers each key's elements: emits `(key, n)` for its n-th element.
#[derive(Clone)]
struct RunningCount;

impl StatefulDoFn<String, i64> for RunningCount {
    type Output = (String, u64);
    type State = ValueState<u64>;
    fn process(
        &mut self,
        key: &String,
        _value: i64,
        count: &mut ValueState<u64>,
        ctx: &mut StatefulContext<'_, (String, u64)>,
    ) -> Result<(), UserError> {
        let n = count.read().copied().unwrap_or(0) + 1;
        count.write(n);
        ctx.output((key.clone(), n));
        Ok(())
    }
}

#[test]
fn running_count_per_key_with_value_state() {
    for workers in [1, 3] {
        let p = Pipeline::new();
        let input = TestStream::new()
            .add_elements(vec![kv("a", 0, secs(1)), kv("b", 0, secs(2)), kv("a", 0, secs(3))])
            .advance_watermark_to(secs(10))
            .add_elements(vec![kv("c", 0, secs(11)), kv("a", 0, secs(12))])
            .advance_processing_time(Duration::from_secs(5))
            .add_elements(vec![kv("b", 0, secs(13)), kv("a", 0, secs(14))])
            .advance_watermark_to_infinity();
        let counts = p.test_stream(input).stateful_par_do("Count", RunningCount).collect();
        run(&p, workers);
        let got = counts.windowed();
        for key in ["a", "b", "c"] {
            let seq: Vec<u64> = got.iter().filter(|wv| wv.value.0 == key).map(|wv| wv.value.1).collect();
            let n = match key {
                "a" => 4,
                "b" => 2,
                _ => 1,
            };
            assert_eq!(seq, (1..=n).collect::<Vec<u64>>(), "key {key}, {workers} workers");
        }
        // Outputs of process carry the element's timestamp.
        let a_times: Vec<Timestamp> =
            got.iter().filter(|wv| wv.value.0 == "a").map(|wv| wv.timestamp).collect();
        assert_eq!(a_times, vec![secs(1), secs(3), secs(12), secs(14)]);
    }
}

/// Buffers values per key and window; flushes them when the window ends.
#[derive(Clone)]
struct BatchPerWindow;

impl StatefulDoFn<String, i64> for BatchPerWindow {
    type Output = (String, Vec<i64>);
    type State = BagState<i64>;
    fn process(
        &mut self,
        _key: &String,
        value: i64,
        buffer: &mut BagState<i64>,
        ctx: &mut StatefulContext<'_, Self::Output>,
    ) -> Result<(), UserError> {
        buffer.add(value);
        let end = ctx.window().max_timestamp();
        ctx.set_timer("flush", TimeDomain::EventTime, end)
    }
    fn on_timer(
        &mut self,
        key: &String,
        timer: &TimerFiring,
        buffer: &mut BagState<i64>,
        ctx: &mut StatefulContext<'_, Self::Output>,
    ) -> Result<(), UserError> {
        assert_eq!(timer.window, *ctx.window());
        ctx.output((key.clone(), buffer.take()));
        Ok(())
    }
}

#[test]
fn bag_state_is_flushed_by_an_event_time_timer_at_the_end_of_each_window() {
    for workers in [1, 3] {
        let p = Pipeline::new();
        let input = TestStream::new()
            .add_elements(vec![kv("a", 1, secs(10)), kv("a", 2, secs(20)), kv("b", 10, secs(30))])
            .add_elements(vec![kv("a", 3, secs(70))])
            .advance_watermark_to(secs(60))
            .add_elements(vec![kv("a", 4, secs(80))])
            .advance_watermark_to_infinity();
        let batches = p
            .test_stream(input)
            .window_into(Window::into(FixedWindows::of(Duration::from_mins(1))))
            .stateful_par_do("Batch", BatchPerWindow)
            .collect();
        run(&p, workers);
        let got = sorted(
            batches.windowed().into_iter().map(|wv| (wv.window, wv.timestamp, wv.value)).collect::<Vec<_>>(),
        );
        assert_eq!(
            got,
            vec![
                (minute(0), Timestamp(59_999), ("a".to_string(), vec![1, 2])),
                (minute(0), Timestamp(59_999), ("b".to_string(), vec![10])),
                (minute(1), Timestamp(119_999), ("a".to_string(), vec![3, 4])),
            ],
            "{workers} workers"
        );
    }
}

/// Buffers values per key and flushes them ten seconds of processing time after the
/// first one arrived.
#[derive(Clone)]
struct FlushAfterTenSeconds;

impl StatefulDoFn<String, i64> for FlushAfterTenSeconds {
    type Output = (String, Vec<i64>);
    type State = BagState<i64>;
    fn process(
        &mut self,
        _key: &String,
        value: i64,
        buffer: &mut BagState<i64>,
        ctx: &mut StatefulContext<'_, Self::Output>,
    ) -> Result<(), UserError> {
        buffer.add(value);
        if ctx.pending_timer("flush", TimeDomain::ProcessingTime).is_none() {
            let at = ctx.processing_time() + Duration::from_secs(10);
            ctx.set_timer("flush", TimeDomain::ProcessingTime, at)?;
        }
        Ok(())
    }
    fn on_timer(
        &mut self,
        key: &String,
        _timer: &TimerFiring,
        buffer: &mut BagState<i64>,
        ctx: &mut StatefulContext<'_, Self::Output>,
    ) -> Result<(), UserError> {
        ctx.output((key.clone(), buffer.take()));
        Ok(())
    }
}

#[test]
fn a_processing_time_timer_flushes_a_buffer() {
    for workers in [1, 3] {
        let p = Pipeline::new();
        // The TestStream's clock starts at 0.
        let input = TestStream::new()
            .add_elements(vec![kv("a", 1, secs(1)), kv("a", 2, secs(2)), kv("b", 5, secs(3))])
            .advance_processing_time(Duration::from_secs(5))
            .add_elements(vec![kv("a", 3, secs(4))])
            .advance_processing_time(Duration::from_secs(5))
            .add_elements(vec![kv("a", 4, secs(6))])
            .advance_processing_time(Duration::from_secs(10))
            .advance_watermark_to_infinity();
        let flushed = p.test_stream(input).stateful_par_do("Buffer", FlushAfterTenSeconds).collect();
        run(&p, workers);
        // Each flush has the output timestamp of the element that set its timer.
        let got =
            sorted(flushed.windowed().into_iter().map(|wv| (wv.value, wv.timestamp)).collect::<Vec<_>>());
        assert_eq!(
            got,
            vec![
                (("a".to_string(), vec![1, 2, 3]), secs(1)),
                (("a".to_string(), vec![4]), secs(6)),
                (("b".to_string(), vec![5]), secs(3)),
            ],
            "{workers} workers"
        );
    }
}

/// Sums each key's values and emits the sum from an event-time timer at 5:00 whose output
/// timestamp is the first value's timestamp.
#[derive(Clone)]
struct SumLater;

impl StatefulDoFn<String, i64> for SumLater {
    type Output = (String, i64);
    type State = ValueState<i64>;
    fn process(
        &mut self,
        _key: &String,
        value: i64,
        sum: &mut ValueState<i64>,
        ctx: &mut StatefulContext<'_, Self::Output>,
    ) -> Result<(), UserError> {
        sum.write(sum.read().copied().unwrap_or(0) + value);
        if ctx.pending_timer("emit", TimeDomain::EventTime).is_none() {
            let first = ctx.timestamp();
            ctx.set_timer_with_output_timestamp("emit", TimeDomain::EventTime, secs(300), first)?;
        }
        Ok(())
    }
    fn on_timer(
        &mut self,
        key: &String,
        timer: &TimerFiring,
        sum: &mut ValueState<i64>,
        ctx: &mut StatefulContext<'_, Self::Output>,
    ) -> Result<(), UserError> {
        assert_eq!(ctx.timestamp(), timer.output_timestamp);
        ctx.output((key.clone(), sum.take().unwrap_or(0)));
        Ok(())
    }
}

#[test]
fn a_pending_timer_holds_the_output_watermark_at_its_output_timestamp() {
    for workers in [1, 3] {
        let p = Pipeline::new();
        let input = TestStream::new()
            .add_elements(vec![kv("a", 1, secs(90)), kv("a", 2, secs(100)), kv("b", 7, secs(95))])
            // Without the hold, the sums' one-minute window [1:00, 2:00) would be complete
            // downstream here, and the timer's output at 1:30 late.
            .advance_watermark_to(secs(180))
            .advance_watermark_to(secs(240))
            .advance_watermark_to(secs(360))
            .advance_watermark_to_infinity();
        let sums = p
            .test_stream(input)
            .stateful_par_do("SumLater", SumLater)
            .window_into(Window::into(FixedWindows::of(Duration::from_mins(1))))
            .combine_per_key_with_dropped(millstream_model::combiners::Sum);
        let (sums, dropped) = sums;
        PAssert::that(&sums)
            .in_on_time_pane(minute(1))
            .contains_in_any_order(vec![("a".to_string(), 3), ("b".to_string(), 7)]);
        let c = sums.collect();
        let d = dropped.collect();
        let result = run(&p, workers);
        assert!(d.values().is_empty(), "nothing dropped as late");
        assert_eq!(result.counter_total("/dropped_late"), 0);
        let panes: Vec<(W, Timing)> = c.windowed().iter().map(|wv| (wv.window, wv.pane.timing)).collect();
        assert_eq!(panes, vec![(minute(1), Timing::OnTime); 2], "{workers} workers");
    }
}

/// Counts elements per key and window, and sets a processing-time reminder an hour
/// after the first one, which reports the count.
#[derive(Clone)]
struct CountWithReminder;

impl StatefulDoFn<String, i64> for CountWithReminder {
    type Output = String;
    type State = ValueState<u64>;
    fn process(
        &mut self,
        key: &String,
        _value: i64,
        count: &mut ValueState<u64>,
        ctx: &mut StatefulContext<'_, String>,
    ) -> Result<(), UserError> {
        let n = count.read().copied().unwrap_or(0) + 1;
        count.write(n);
        if n == 1 {
            let at = ctx.processing_time() + Duration::from_hours(1);
            ctx.set_timer("remind", TimeDomain::ProcessingTime, at)?;
        }
        ctx.output(format!("{key} {:?} count {n}", ctx.window()));
        Ok(())
    }
    fn on_timer(
        &mut self,
        key: &String,
        _timer: &TimerFiring,
        count: &mut ValueState<u64>,
        ctx: &mut StatefulContext<'_, String>,
    ) -> Result<(), UserError> {
        let n = count.read().copied().unwrap_or(0);
        ctx.output(format!("{key} {:?} reminder {n}", ctx.window()));
        Ok(())
    }
}

#[test]
fn window_expiry_clears_state_and_timers_and_later_elements_are_dropped_and_counted() {
    for workers in [1, 3] {
        let p = Pipeline::new();
        let input = TestStream::new()
            .add_elements(vec![kv("a", 0, secs(10)), kv("a", 0, secs(20))])
            // Past the end of [0:00, 1:00) but within the allowed lateness of 30 s.
            .advance_watermark_to(secs(80))
            .add_elements(vec![kv("a", 0, secs(30))])
            // Past end + lateness: the window's state and its reminder are dropped.
            .advance_watermark_to(secs(95))
            .add_elements(vec![kv("a", 0, secs(40)), kv("b", 0, secs(50))])
            .add_elements(vec![kv("a", 0, secs(100))])
            .advance_processing_time(Duration::from_hours(2))
            .advance_watermark_to_infinity();
        let out = p
            .test_stream(input)
            .window_into(
                Window::into(FixedWindows::of(Duration::from_mins(1)))
                    .with_allowed_lateness(Duration::from_secs(30)),
            )
            .stateful_par_do("Count", CountWithReminder)
            .collect();
        let result = run(&p, workers);
        assert_eq!(
            sorted(out.values()),
            vec![
                "a [00:00:00, 00:01:00) count 1",
                "a [00:00:00, 00:01:00) count 2",
                "a [00:00:00, 00:01:00) count 3",
                "a [00:01:00, 00:02:00) count 1",
                "a [00:01:00, 00:02:00) reminder 1",
            ],
            "{workers} workers"
        );
        assert_eq!(result.counter("Count/dropped_late"), 2, "{workers} workers");
    }
}

/// Releases values in timestamp order once the watermark has passed them, whatever order
/// they arrived in (OrderedListState and a looping event-time timer).
#[derive(Clone)]
struct Resequence;

#[derive(Default, Clone, Serialize, Deserialize)]
struct ResequenceState {
    pending: OrderedListState<i64>,
    released: ValueState<u64>,
}

impl StatefulDoFn<String, i64> for Resequence {
    type Output = (String, i64);
    type State = ResequenceState;
    fn process(
        &mut self,
        _key: &String,
        value: i64,
        state: &mut ResequenceState,
        ctx: &mut StatefulContext<'_, Self::Output>,
    ) -> Result<(), UserError> {
        state.pending.add(ctx.timestamp(), value);
        let first = state.pending.first_timestamp().unwrap_or(ctx.timestamp());
        ctx.set_timer("release", TimeDomain::EventTime, first)
    }
    fn on_timer(
        &mut self,
        key: &String,
        _timer: &TimerFiring,
        state: &mut ResequenceState,
        ctx: &mut StatefulContext<'_, Self::Output>,
    ) -> Result<(), UserError> {
        let upto = ctx.input_watermark();
        for (t, v) in state.pending.take_range(Timestamp::MIN, upto) {
            ctx.output_with_timestamp((key.clone(), v), t)?;
            state.released.write(state.released.read().copied().unwrap_or(0) + 1);
        }
        if let Some(next) = state.pending.first_timestamp() {
            ctx.set_timer("release", TimeDomain::EventTime, next)?;
        }
        Ok(())
    }
}

#[test]
fn ordered_list_state_resequences_out_of_order_input() {
    for workers in [1, 3] {
        let p = Pipeline::new();
        let input = TestStream::new()
            .add_elements(vec![kv("a", 3, secs(3)), kv("a", 1, secs(1)), kv("b", 9, secs(9))])
            .add_elements(vec![kv("a", 5, secs(5)), kv("a", 2, secs(2))])
            .advance_watermark_to(secs(4))
            .add_elements(vec![kv("a", 4, secs(4)), kv("b", 8, secs(8))])
            .advance_watermark_to_infinity();
        let out = p.test_stream(input).stateful_par_do("Resequence", Resequence).collect();
        run(&p, workers);
        let got = out.windowed();
        for (key, want) in [("a", vec![1, 2, 3, 4, 5]), ("b", vec![8, 9])] {
            let seq: Vec<i64> = got.iter().filter(|wv| wv.value.0 == key).map(|wv| wv.value.1).collect();
            assert_eq!(seq, want, "key {key}, {workers} workers");
        }
        assert!(got.iter().all(|wv| wv.timestamp == secs(wv.value.1)), "released at their own timestamps");
    }
}

/// Each value `v` sets timer `t{v}` at `v` seconds; firing `t10` also sets `t15`. Firings
/// output (key, timer id, input watermark at the firing).
#[derive(Clone)]
struct OrderProbe;

impl StatefulDoFn<String, i64> for OrderProbe {
    type Output = (String, String, Timestamp);
    type State = ValueState<()>;
    fn process(
        &mut self,
        _key: &String,
        v: i64,
        _state: &mut ValueState<()>,
        ctx: &mut StatefulContext<'_, Self::Output>,
    ) -> Result<(), UserError> {
        ctx.set_timer(&format!("t{v}"), TimeDomain::EventTime, secs(v))
    }
    fn on_timer(
        &mut self,
        key: &String,
        timer: &TimerFiring,
        _state: &mut ValueState<()>,
        ctx: &mut StatefulContext<'_, Self::Output>,
    ) -> Result<(), UserError> {
        assert_eq!(ctx.timestamp(), timer.timestamp, "output timestamp defaults to the firing time");
        if timer.id == "t10" {
            ctx.set_timer("t15", TimeDomain::EventTime, secs(15))?;
        }
        ctx.output((key.clone(), timer.id.clone(), ctx.input_watermark()));
        Ok(())
    }
}

#[test]
fn event_time_timers_fire_in_timestamp_order_once_the_watermark_is_past_them() {
    for workers in [1, 3] {
        let p = Pipeline::new();
        let mut elements = Vec::new();
        for key in ["c", "a", "b"] {
            for v in [30, 10, 20] {
                elements.push(kv(key, v, secs(1)));
            }
        }
        let input = TestStream::new()
            .add_elements(elements)
            .advance_watermark_to(secs(20))
            .advance_watermark_to(secs(25))
            .advance_watermark_to_infinity();
        let out = p.test_stream(input).stateful_par_do("Order", OrderProbe).collect();
        run(&p, workers);
        let got = out.values();
        for key in ["a", "b", "c"] {
            let seq: Vec<(String, Timestamp)> =
                got.iter().filter(|(k, _, _)| k == key).map(|(_, id, wm)| (id.clone(), *wm)).collect();
            assert_eq!(
                seq,
                vec![
                    ("t10".to_string(), secs(20)),
                    ("t15".to_string(), secs(20)),
                    // Not at a watermark of exactly 20 s: strictly after.
                    ("t20".to_string(), secs(25)),
                    ("t30".to_string(), Timestamp::MAX),
                ],
                "key {key}, {workers} workers"
            );
        }
        if workers == 1 {
            // One worker sees every key: ties in time are broken by key.
            let ids: Vec<String> = got.iter().map(|(k, id, _)| format!("{k}:{id}")).collect();
            let want: Vec<String> = ["t10", "t15", "t20", "t30"]
                .iter()
                .flat_map(|id| ["a", "b", "c"].map(|k| format!("{k}:{id}")))
                .collect();
            assert_eq!(ids, want);
        }
    }
}

/// Fails on the value 13, panics in its timer for the value 99, and sets a timer after
/// its window's expiry for the value 77.
#[derive(Clone)]
struct Fragile;

impl StatefulDoFn<String, i64> for Fragile {
    type Output = i64;
    type State = ValueState<i64>;
    fn process(
        &mut self,
        _key: &String,
        v: i64,
        _state: &mut ValueState<i64>,
        ctx: &mut StatefulContext<'_, i64>,
    ) -> Result<(), UserError> {
        match v {
            13 => Err(UserError::new("unlucky number 13")),
            99 => ctx.set_timer("boom", TimeDomain::EventTime, secs(1)),
            77 => {
                let after = ctx.window_expiry() + Duration::from_millis(1);
                ctx.set_timer("never", TimeDomain::EventTime, after)
            }
            _ => {
                ctx.output(v);
                Ok(())
            }
        }
    }
    fn on_timer(
        &mut self,
        _key: &String,
        _timer: &TimerFiring,
        _state: &mut ValueState<i64>,
        _ctx: &mut StatefulContext<'_, i64>,
    ) -> Result<(), UserError> {
        panic!("timer exploded")
    }
}

#[test]
fn dofn_errors_and_panics_fail_the_job_with_the_step_name() {
    for (value, message) in
        [(13, "unlucky number 13"), (99, "panicked: timer exploded"), (77, "after the expiration of window")]
    {
        for workers in [1, 3] {
            let p = Pipeline::new();
            let input = TestStream::new()
                .add_elements(vec![kv("k", 1, secs(0)), kv("k", value, secs(0))])
                .advance_watermark_to_infinity();
            p.test_stream(input)
                .window_into(Window::into(FixedWindows::of(Duration::from_mins(1))))
                .stateful_par_do("Fragile", Fragile);
            let err = Runner::new().workers(workers).run(&p).unwrap_err().to_string();
            assert!(err.contains("Fragile"), "{err}");
            assert!(err.contains(message), "{err}");
        }
    }
}

#[test]
fn merging_windows_are_rejected() {
    let p = Pipeline::new();
    p.test_stream(TestStream::new().add_elements(vec![kv("k", 1, secs(0))]))
        .window_into(Window::into(millstream_model::Sessions::with_gap_duration(Duration::from_mins(1))))
        .stateful_par_do("Count", RunningCount);
    let err = Runner::new().workers(2).run(&p).unwrap_err().to_string();
    assert!(err.contains("Count") && err.contains("non-merging"), "{err}");
}

/// One element, then nothing until `release` is set: the job only ends once it is.
struct OneThenWait {
    release: Arc<AtomicBool>,
}

struct OneThenWaitReader {
    sent: bool,
    release: Arc<AtomicBool>,
}

impl Source<(String, i64)> for OneThenWait {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        Ok(1)
    }
    fn open(&self, _p: usize, _n: usize) -> Result<Box<dyn SourceReader<(String, i64)>>, SourceError> {
        Ok(Box::new(OneThenWaitReader { sent: false, release: self.release.clone() }))
    }
}

impl SourceReader<(String, i64)> for OneThenWaitReader {
    fn read(
        &mut self,
        out: &mut Vec<((String, i64), Timestamp)>,
        _max: usize,
    ) -> Result<ReadStatus, SourceError> {
        if !self.sent {
            self.sent = true;
            out.push((("k".to_string(), 1), secs(1)));
            return Ok(ReadStatus::Data);
        }
        Ok(if self.release.load(Ordering::SeqCst) { ReadStatus::Finished } else { ReadStatus::Waiting })
    }
}

/// Sets a processing-time timer 100 ms after its element; the firing outputs and
/// releases the source.
#[derive(Clone)]
struct WakeUp {
    release: Arc<AtomicBool>,
}

impl StatefulDoFn<String, i64> for WakeUp {
    type Output = String;
    type State = ValueState<()>;
    fn process(
        &mut self,
        _key: &String,
        _v: i64,
        _state: &mut ValueState<()>,
        ctx: &mut StatefulContext<'_, String>,
    ) -> Result<(), UserError> {
        let at = ctx.processing_time() + Duration::from_millis(100);
        ctx.set_timer("wake", TimeDomain::ProcessingTime, at)
    }
    fn on_timer(
        &mut self,
        key: &String,
        _timer: &TimerFiring,
        _state: &mut ValueState<()>,
        ctx: &mut StatefulContext<'_, String>,
    ) -> Result<(), UserError> {
        ctx.output(format!("{key} woke"));
        self.release.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn processing_time_timers_fire_on_the_system_clock() {
    for workers in [1, 3] {
        let release = Arc::new(AtomicBool::new(false));
        let timed_out = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let (release, timed_out) = (release.clone(), timed_out.clone());
            std::thread::spawn(move || {
                for _ in 0..200 {
                    if release.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                timed_out.store(true, Ordering::SeqCst);
                release.store(true, Ordering::SeqCst);
            })
        };
        let p = Pipeline::new();
        let out = p
            .read("OneThenWait", OneThenWait { release: release.clone() })
            .stateful_par_do("WakeUp", WakeUp { release: release.clone() })
            .collect();
        let started = std::time::Instant::now();
        run(&p, workers);
        let _ = watchdog.join();
        assert!(!timed_out.load(Ordering::SeqCst), "the timer did not fire within 10 s ({workers} workers)");
        assert!(started.elapsed() >= std::time::Duration::from_millis(100));
        assert_eq!(out.values(), vec!["k woke".to_string()]);
    }
}
