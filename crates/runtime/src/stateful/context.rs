//! [`StatefulContext`]: what a stateful DoFn sees while it processes an element or a
//! timer firing: the timestamp and window, outputs, and the timers of its key and window.

use super::timers::{KeyTimers, TimeDomain, TimerKey, TimerSpec};
use crate::dofn::UserError;
use millstream_model::{PaneInfo, Timestamp, Window, WindowedValue};

/// The context of one call of [`StatefulDoFn::process`](super::StatefulDoFn::process)
/// or [`StatefulDoFn::on_timer`](super::StatefulDoFn::on_timer).
///
/// In `process`, the timestamp, window and pane are the element's. In `on_timer`, the
/// timestamp is the timer's output timestamp, the window is the timer's window and the
/// pane is [`PaneInfo::NO_FIRING`]. Timers set here belong to the current key and window.
///
/// ```
/// use millstream_model::Duration;
/// use millstream_runtime::stateful::{StatefulContext, TimeDomain};
/// use millstream_runtime::UserError;
/// // Flush at the end of the element's window, and at the latest a minute of processing
/// // time after the first element.
/// fn arm(ctx: &mut StatefulContext<'_, String>) -> Result<(), UserError> {
///     let end = ctx.window().max_timestamp();
///     ctx.set_timer("end", TimeDomain::EventTime, end)?;
///     if ctx.pending_timer("soon", TimeDomain::ProcessingTime).is_none() {
///         let at = ctx.processing_time() + Duration::from_mins(1);
///         ctx.set_timer("soon", TimeDomain::ProcessingTime, at)?;
///     }
///     Ok(())
/// }
/// # let _ = arm;
/// ```
pub struct StatefulContext<'a, O> {
    pub(crate) timestamp: Timestamp,
    pub(crate) window: Window,
    pub(crate) pane: PaneInfo,
    /// When the window's state expires (its end plus the allowed lateness).
    pub(crate) expiry: Timestamp,
    pub(crate) input_watermark: Timestamp,
    pub(crate) processing_time: Timestamp,
    pub(crate) out: &'a mut Vec<WindowedValue<O>>,
    pub(crate) timers: &'a mut KeyTimers,
}

impl<O> StatefulContext<'_, O> {
    /// The element's timestamp, or in `on_timer` the timer's output timestamp.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The element's window, or in `on_timer` the timer's window.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// The element's pane ([`PaneInfo::NO_FIRING`] in `on_timer`).
    pub fn pane(&self) -> &PaneInfo {
        &self.pane
    }

    /// The operator's input watermark: every element still to come has a later
    /// timestamp, unless it is late.
    pub fn input_watermark(&self) -> Timestamp {
        self.input_watermark
    }

    /// The job's processing time (its clock) when the operator started this batch of
    /// work: the base for processing-time timers.
    pub fn processing_time(&self) -> Timestamp {
        self.processing_time
    }

    /// When the current window's state is dropped: the window's end plus the allowed
    /// lateness. Event-time timers may be set up to this instant.
    pub fn window_expiry(&self) -> Timestamp {
        self.expiry
    }

    /// Outputs a value with the context's timestamp and window (and, in `process`, the
    /// element's pane).
    pub fn output(&mut self, value: O) {
        self.out.push(WindowedValue {
            value,
            timestamp: self.timestamp,
            window: self.window,
            pane: self.pane,
            retraction: false,
        });
    }

    /// Outputs a value with another timestamp, in the context's window.
    ///
    /// As in Beam, the timestamp may not be earlier than the context's timestamp: an
    /// earlier one could be behind the output watermark that the operator already
    /// promised downstream. Returns an error (which fails the job) if it is.
    pub fn output_with_timestamp(&mut self, value: O, timestamp: Timestamp) -> Result<(), UserError> {
        if timestamp < self.timestamp {
            return Err(UserError::new(format!(
                "cannot output with timestamp {timestamp}: output timestamps must be no earlier than \
                 the timestamp of the current element or timer ({})",
                self.timestamp
            )));
        }
        self.out.push(WindowedValue {
            value,
            timestamp,
            window: self.window,
            pane: self.pane,
            retraction: false,
        });
        Ok(())
    }

    /// Sets the timer `id` of `domain` for the current key and window to fire at `at`,
    /// replacing any pending timer with the same id and domain.
    ///
    /// An event-time timer fires once the input watermark is past `at`; its output
    /// timestamp is `at`, and it holds the operator's output watermark there until it
    /// fires. A processing-time timer fires once the job's clock reaches `at`; its output
    /// timestamp is the context's [`timestamp`](Self::timestamp) (which it holds).
    ///
    /// Returns an error if an event-time timer is set after the window expires (see
    /// [`window_expiry`](Self::window_expiry)): it could never fire.
    pub fn set_timer(&mut self, id: &str, domain: TimeDomain, at: Timestamp) -> Result<(), UserError> {
        let output = match domain {
            TimeDomain::EventTime => at,
            TimeDomain::ProcessingTime => self.timestamp,
        };
        self.set(id, domain, at, output)
    }

    /// Like [`set_timer`](Self::set_timer), with an explicit output timestamp: what the
    /// firing outputs gets this timestamp, and the timer holds the output watermark here.
    ///
    /// Returns an error if the output timestamp is earlier than the context's timestamp
    /// or later than the window's expiry, or (in event time) if `at` is later than the
    /// window's expiry.
    pub fn set_timer_with_output_timestamp(
        &mut self,
        id: &str,
        domain: TimeDomain,
        at: Timestamp,
        output_timestamp: Timestamp,
    ) -> Result<(), UserError> {
        if output_timestamp < self.timestamp {
            return Err(UserError::new(format!(
                "cannot set timer {id} with output timestamp {output_timestamp}: output timestamps must \
                 be no earlier than the timestamp of the current element or timer ({})",
                self.timestamp
            )));
        }
        self.set(id, domain, at, output_timestamp)
    }

    fn set(
        &mut self,
        id: &str,
        domain: TimeDomain,
        at: Timestamp,
        output: Timestamp,
    ) -> Result<(), UserError> {
        if domain == TimeDomain::EventTime && at > self.expiry {
            return Err(UserError::new(format!(
                "cannot set event-time timer {id} at {at}: after the expiration of window {:?} at {}",
                self.window, self.expiry
            )));
        }
        if output > self.expiry {
            return Err(UserError::new(format!(
                "cannot set timer {id} with output timestamp {output}: after the expiration of window \
                 {:?} at {}",
                self.window, self.expiry
            )));
        }
        let key = TimerKey { window: self.window, domain, id: id.to_owned() };
        self.timers.set(key, TimerSpec { at, output });
        Ok(())
    }

    /// Cancels the timer `id` of `domain` for the current key and window, if pending.
    pub fn clear_timer(&mut self, id: &str, domain: TimeDomain) {
        let key = TimerKey { window: self.window, domain, id: id.to_owned() };
        self.timers.remove(&key);
    }

    /// When the timer `id` of `domain` for the current key and window will fire, if it
    /// is pending.
    pub fn pending_timer(&self, id: &str, domain: TimeDomain) -> Option<Timestamp> {
        let key = TimerKey { window: self.window, domain, id: id.to_owned() };
        self.timers.get(&key).map(|s| s.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(
        out: &'a mut Vec<WindowedValue<i32>>,
        timers: &'a mut KeyTimers,
        timestamp: Timestamp,
    ) -> StatefulContext<'a, i32> {
        StatefulContext {
            timestamp,
            window: Window::interval(Timestamp(0), Timestamp(1000)),
            pane: PaneInfo::NO_FIRING,
            expiry: Timestamp(1999),
            input_watermark: Timestamp(0),
            processing_time: Timestamp(0),
            out,
            timers,
        }
    }

    #[test]
    fn timers_are_validated_against_the_window_expiry_and_the_current_timestamp() {
        let (mut out, mut timers) = (Vec::new(), KeyTimers::default());
        let mut c = ctx(&mut out, &mut timers, Timestamp(500));
        assert!(c.set_timer("gc", TimeDomain::EventTime, Timestamp(1999)).is_ok(), "at the expiry is fine");
        let err = c.set_timer("late", TimeDomain::EventTime, Timestamp(2000)).unwrap_err();
        assert!(err.0.contains("after the expiration"), "{err}");
        assert!(c.set_timer("pt", TimeDomain::ProcessingTime, Timestamp(1_000_000)).is_ok());
        assert_eq!(
            c.timers
                .get(&TimerKey { window: c.window, domain: TimeDomain::ProcessingTime, id: "pt".into() })
                .map(|s| s.output),
            Some(Timestamp(500)),
            "a processing-time timer holds at the element's timestamp"
        );
        let err = c
            .set_timer_with_output_timestamp("t", TimeDomain::EventTime, Timestamp(900), Timestamp(499))
            .unwrap_err();
        assert!(err.0.contains("no earlier than"), "{err}");
        assert!(c
            .set_timer_with_output_timestamp("t", TimeDomain::EventTime, Timestamp(900), Timestamp(2000))
            .is_err());
        assert!(c
            .set_timer_with_output_timestamp("t", TimeDomain::EventTime, Timestamp(900), Timestamp(600))
            .is_ok());
        assert_eq!(c.pending_timer("t", TimeDomain::EventTime), Some(Timestamp(900)));
        assert_eq!(c.pending_timer("t", TimeDomain::ProcessingTime), None);
        c.clear_timer("t", TimeDomain::EventTime);
        assert_eq!(c.pending_timer("t", TimeDomain::EventTime), None);
        assert_eq!(timers.len(), 2);
    }

    #[test]
    fn outputs_carry_the_context_timestamp_and_window() {
        let (mut out, mut timers) = (Vec::new(), KeyTimers::default());
        let mut c = ctx(&mut out, &mut timers, Timestamp(500));
        c.output(1);
        assert!(c.output_with_timestamp(2, Timestamp(700)).is_ok());
        assert!(c.output_with_timestamp(3, Timestamp(499)).is_err());
        let got: Vec<(i32, Timestamp)> = out.iter().map(|wv| (wv.value, wv.timestamp)).collect();
        assert_eq!(got, vec![(1, Timestamp(500)), (2, Timestamp(700))]);
        assert!(out.iter().all(|wv| wv.window == Window::interval(Timestamp(0), Timestamp(1000))));
    }
}
