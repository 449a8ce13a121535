//! Unit tests of the executor: timer order and due times, holds, expiry.

use super::executor::{Executor, Times};
use super::*;
use millstream_model::{
    Duration, FixedWindows, PaneInfo, Timestamp, Window, WindowedValue, WindowingStrategy,
};
use std::sync::Arc;

/// For value `v`, sets event-time timer `e{v}` at `v`; a firing of `e{t}` with `t`
/// divisible by 10 also sets `f{t}` at `t + 5`. Outputs the ids of firings.
#[derive(Clone)]
struct Timers;

impl StatefulDoFn<String, i64> for Timers {
    type Output = (String, String);
    type State = ValueState<u32>;
    fn process(
        &mut self,
        _key: &String,
        v: i64,
        _state: &mut ValueState<u32>,
        ctx: &mut StatefulContext<'_, (String, String)>,
    ) -> Result<(), UserError> {
        if v < 0 {
            return ctx.set_timer("p", TimeDomain::ProcessingTime, Timestamp(-v));
        }
        ctx.set_timer(&format!("e{v}"), TimeDomain::EventTime, Timestamp(v))
    }
    fn on_timer(
        &mut self,
        key: &String,
        timer: &TimerFiring,
        state: &mut ValueState<u32>,
        ctx: &mut StatefulContext<'_, (String, String)>,
    ) -> Result<(), UserError> {
        state.write(state.read().copied().unwrap_or(0) + 1);
        ctx.output((key.clone(), timer.id.clone()));
        let t = timer.timestamp.millis();
        if timer.id.starts_with('e') && t % 10 == 0 {
            ctx.set_timer(&format!("f{t}"), TimeDomain::EventTime, Timestamp(t + 5))?;
        }
        Ok(())
    }
}

fn executor(strategy: WindowingStrategy) -> Executor<String, i64, Timers> {
    Executor::new(Timers, Arc::new(strategy), 16)
}

fn at(wm: i64, now: i64) -> Times {
    Times { input_watermark: Timestamp(wm), processing_time: Timestamp(now) }
}

fn ids(out: &mut Vec<WindowedValue<(String, String)>>) -> Vec<String> {
    out.drain(..).map(|wv| format!("{}:{}", wv.value.0, wv.value.1)).collect()
}

fn add(ex: &mut Executor<String, i64, Timers>, key: &str, v: i64, times: Times) -> bool {
    let mut out = Vec::new();
    let r = ex.process(
        key.to_string(),
        v,
        Timestamp(v.max(0)),
        Window::Global,
        PaneInfo::NO_FIRING,
        times,
        &mut out,
    );
    r.expect("process")
}

#[test]
fn event_timers_fire_strictly_after_the_watermark_in_timestamp_then_key_order() {
    let mut ex = executor(WindowingStrategy::global());
    for (k, v) in [("b", 20), ("a", 20), ("a", 30), ("b", 7)] {
        assert!(add(&mut ex, k, v, at(0, 0)));
    }
    assert_eq!(ex.min_hold(), Some(Timestamp(7)));
    let mut out = Vec::new();
    ex.fire_due(at(20, 0), &mut out).expect("fire");
    assert_eq!(ids(&mut out), vec!["b:e7"], "a timer at the watermark is not due yet");
    ex.fire_due(at(26, 0), &mut out).expect("fire");
    // e20 of a and b fire (key order breaks the tie), each sets f20 at 25, due at once.
    assert_eq!(ids(&mut out), vec!["a:e20", "b:e20", "a:f20", "b:f20"]);
    assert_eq!(out.len(), 0);
    assert_eq!(ex.min_hold(), Some(Timestamp(30)));
    ex.fire_due(at(Timestamp::MAX.millis(), 0), &mut out).expect("fire");
    assert_eq!(ids(&mut out), vec!["a:e30", "a:f30"]);
    assert_eq!(ex.min_hold(), None);
}

#[test]
fn firing_outputs_get_the_timer_output_timestamp_and_window() {
    let mut ex = executor(WindowingStrategy::global());
    add(&mut ex, "k", 40, at(0, 0));
    let mut out = Vec::new();
    ex.fire_due(at(41, 0), &mut out).expect("fire");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].timestamp, Timestamp(40));
    assert_eq!(out[0].window, Window::Global);
    assert_eq!(out[0].pane, PaneInfo::NO_FIRING);
}

#[test]
fn processing_time_timers_fire_when_the_clock_reaches_them_and_hold_at_the_element() {
    let mut ex = executor(WindowingStrategy::global());
    add(&mut ex, "k", -100, at(0, 0));
    assert_eq!(ex.next_processing_timer(), Some(Timestamp(100)));
    assert_eq!(ex.min_hold(), Some(Timestamp(0)), "held at the element's timestamp");
    let mut out = Vec::new();
    ex.fire_due(at(1_000, 99), &mut out).expect("fire");
    assert!(out.is_empty());
    ex.fire_due(at(1_000, 100), &mut out).expect("fire");
    assert_eq!(ids(&mut out), vec!["k:p"]);
    assert_eq!(ex.next_processing_timer(), None);
}

fn minute_windows(lateness: Duration) -> WindowingStrategy {
    WindowingStrategy {
        window_fn: Arc::new(FixedWindows::of(Duration::from_mins(1))),
        allowed_lateness: lateness,
        ..WindowingStrategy::global()
    }
}

#[test]
fn expired_windows_lose_their_state_and_timers_and_refuse_elements() {
    let mut ex = executor(minute_windows(Duration::from_secs(30)));
    let w0 = Window::interval(Timestamp(0), Timestamp(60_000));
    let mut out = Vec::new();
    // A processing-time timer in window [0, 1m): dropped when the window expires.
    let pt = ex.process("k".into(), -500_000, Timestamp(10_000), w0, PaneInfo::NO_FIRING, at(0, 0), &mut out);
    assert_eq!(pt, Ok(true));
    assert_eq!(ex.store.len(), 1);
    ex.fire_due(at(89_999, 0), &mut out).expect("fire");
    ex.expire(Timestamp(89_999));
    assert_eq!(ex.store.len(), 1, "not expired at its end plus lateness");
    ex.fire_due(at(90_000, 0), &mut out).expect("fire");
    ex.expire(Timestamp(90_000));
    assert_eq!(ex.store.len(), 0, "expired once the watermark is past it");
    assert_eq!(ex.min_hold(), None);
    assert_eq!(ex.next_processing_timer(), None);
    ex.fire_due(at(90_000, 1_000_000), &mut out).expect("fire");
    assert!(out.is_empty(), "its timer is gone");
    let late = ex.process("k".into(), 1, Timestamp(20_000), w0, PaneInfo::NO_FIRING, at(90_000, 0), &mut out);
    assert_eq!(late, Ok(false), "elements of an expired window are dropped");
    assert_eq!(ex.store.len(), 0);
}

#[test]
fn a_processing_time_timer_of_an_expired_window_does_not_fire() {
    let mut ex = executor(minute_windows(Duration::ZERO));
    let w0 = Window::interval(Timestamp(0), Timestamp(60_000));
    let mut out = Vec::new();
    let r = ex.process("k".into(), -100, Timestamp(10_000), w0, PaneInfo::NO_FIRING, at(0, 0), &mut out);
    assert_eq!(r, Ok(true));
    // The clock and the watermark move together: the window expired, the timer is dropped.
    ex.fire_due(at(60_001, 100), &mut out).expect("fire");
    assert!(out.is_empty());
}

#[test]
fn event_timers_of_a_window_fire_before_it_expires() {
    let mut ex = executor(minute_windows(Duration::ZERO));
    let w0 = Window::interval(Timestamp(0), Timestamp(60_000));
    let mut out = Vec::new();
    let r = ex.process("k".into(), 59_999, Timestamp(10_000), w0, PaneInfo::NO_FIRING, at(0, 0), &mut out);
    assert_eq!(r, Ok(true));
    ex.fire_due(at(120_000, 0), &mut out).expect("fire");
    ex.expire(Timestamp(120_000));
    assert_eq!(ids(&mut out), vec!["k:e59999"]);
    assert_eq!(ex.store.len(), 0);
}

#[test]
fn user_errors_and_panics_are_reported_with_the_timer() {
    #[derive(Clone)]
    struct Bad;
    impl StatefulDoFn<u8, u8> for Bad {
        type Output = u8;
        type State = ValueState<u8>;
        fn process(
            &mut self,
            _k: &u8,
            v: u8,
            _s: &mut ValueState<u8>,
            ctx: &mut StatefulContext<'_, u8>,
        ) -> Result<(), UserError> {
            if v == 0 {
                return Err(UserError::new("zero"));
            }
            ctx.set_timer("t", TimeDomain::EventTime, Timestamp(5))
        }
        fn on_timer(
            &mut self,
            _k: &u8,
            _t: &TimerFiring,
            _s: &mut ValueState<u8>,
            _ctx: &mut StatefulContext<'_, u8>,
        ) -> Result<(), UserError> {
            panic!("boom")
        }
    }
    let mut ex: Executor<u8, u8, Bad> = Executor::new(Bad, Arc::new(WindowingStrategy::global()), 4);
    let mut out = Vec::new();
    let times = at(0, 0);
    let err = ex.process(1, 0, Timestamp(0), Window::Global, PaneInfo::NO_FIRING, times, &mut out);
    assert_eq!(err, Err(UserError::new("zero")));
    let ok = ex.process(1, 1, Timestamp(0), Window::Global, PaneInfo::NO_FIRING, times, &mut out);
    assert_eq!(ok, Ok(true));
    let err = ex.fire_due(at(10, 0), &mut out).unwrap_err();
    assert!(err.0.contains("timer t") && err.0.contains("panicked: boom"), "{err}");
}

/// Sums values per key until an event-time timer at the first value + 10, then outputs
/// the sum and clears; says when its state is cleared.
#[derive(Clone)]
struct SumThenClear {
    report_cleared: bool,
}

impl StatefulDoFn<String, i64> for SumThenClear {
    type Output = i64;
    type State = ValueState<i64>;
    fn process(
        &mut self,
        _key: &String,
        v: i64,
        sum: &mut ValueState<i64>,
        ctx: &mut StatefulContext<'_, i64>,
    ) -> Result<(), UserError> {
        if sum.is_empty() {
            ctx.set_timer("close", TimeDomain::EventTime, Timestamp(v + 10))?;
        }
        sum.write(sum.read().copied().unwrap_or(0) + v);
        Ok(())
    }
    fn on_timer(
        &mut self,
        _key: &String,
        _timer: &TimerFiring,
        sum: &mut ValueState<i64>,
        ctx: &mut StatefulContext<'_, i64>,
    ) -> Result<(), UserError> {
        if let Some(s) = sum.read() {
            ctx.output(*s);
        }
        sum.clear();
        Ok(())
    }
    fn is_state_cleared(&self, sum: &ValueState<i64>) -> bool {
        self.report_cleared && sum.is_empty()
    }
}

#[test]
fn keys_whose_state_is_cleared_and_have_no_timers_are_dropped_from_the_global_window() {
    for report_cleared in [false, true] {
        let mut ex =
            Executor::new(SumThenClear { report_cleared }, Arc::new(WindowingStrategy::global()), 16);
        let mut out = Vec::new();
        for (k, v) in [("a", 1), ("b", 2), ("a", 3)] {
            ex.process(
                k.to_string(),
                v,
                Timestamp(v),
                Window::Global,
                PaneInfo::NO_FIRING,
                at(0, 0),
                &mut out,
            )
            .expect("process");
        }
        assert_eq!(ex.store.len(), 2);
        ex.fire_due(at(20, 0), &mut out).expect("fire");
        let mut sums: Vec<i64> = out.drain(..).map(|wv| wv.value).collect();
        sums.sort();
        assert_eq!(sums, vec![2, 4]);
        // Cleared state is only dropped when the DoFn says it is cleared.
        assert_eq!(ex.store.len(), if report_cleared { 0 } else { 2 }, "report_cleared: {report_cleared}");
        // A dropped key starts again from empty state.
        ex.process("a".into(), 25, Timestamp(25), Window::Global, PaneInfo::NO_FIRING, at(20, 0), &mut out)
            .expect("process");
        ex.fire_due(at(40, 0), &mut out).expect("fire");
        assert_eq!(out.drain(..).map(|wv| wv.value).collect::<Vec<_>>(), vec![25]);
    }
}
