//! The `Window` transform: assigns windows and sets the trigger, accumulation mode and
//! allowed lateness of a PCollection.

use crate::element::Element;
use crate::pcollection::PCollection;
use millstream_model::{
    AccumulationMode, ClosingBehavior, Duration, OnTimeBehavior, TimestampCombiner, Trigger,
    Window as ModelWindow, WindowFn, WindowedValue, WindowingStrategy,
};
use std::sync::Arc;

/// Windowing for a PCollection (Beam's `Window.into(...)`), built fluently:
///
/// ```
/// use millstream_runtime::{Pipeline, Window};
/// use millstream_model::{Duration, FixedWindows, Trigger};
/// let p = Pipeline::new();
/// let windowed = p.create(vec![1i64, 2, 3]).window_into(
///     Window::into(FixedWindows::of(Duration::from_mins(2)))
///         .triggering(Trigger::after_watermark().with_late_firings(Trigger::after_count(1)))
///         .with_allowed_lateness(Duration::from_mins(5))
///         .accumulating_fired_panes(),
/// );
/// # let _ = windowed;
/// ```
pub struct Window<W> {
    window_fn: Arc<W>,
    trigger: Option<Trigger>,
    accumulation: Option<AccumulationMode>,
    allowed_lateness: Option<Duration>,
    timestamp_combiner: Option<TimestampCombiner>,
    closing_behavior: Option<ClosingBehavior>,
    on_time_behavior: Option<OnTimeBehavior>,
}

impl<W: WindowFn> Window<W> {
    /// Windows by `window_fn`; other settings keep their defaults (default trigger,
    /// discarding, no allowed lateness, end-of-window timestamps) unless set.
    pub fn into(window_fn: W) -> Self {
        Window {
            window_fn: Arc::new(window_fn),
            trigger: None,
            accumulation: None,
            allowed_lateness: None,
            timestamp_combiner: None,
            closing_behavior: None,
            on_time_behavior: None,
        }
    }

    /// Sets the trigger.
    pub fn triggering(mut self, trigger: Trigger) -> Self {
        self.trigger = Some(trigger);
        self
    }

    /// Each pane holds only what arrived since the previous pane.
    pub fn discarding_fired_panes(mut self) -> Self {
        self.accumulation = Some(AccumulationMode::Discarding);
        self
    }

    /// Each pane holds everything the window received so far.
    pub fn accumulating_fired_panes(mut self) -> Self {
        self.accumulation = Some(AccumulationMode::Accumulating);
        self
    }

    /// Accumulating, and every new pane first retracts the previous one.
    pub fn accumulating_and_retracting_fired_panes(mut self) -> Self {
        self.accumulation = Some(AccumulationMode::AccumulatingAndRetracting);
        self
    }

    /// Accepts data up to `lateness` behind the watermark; later data is dropped.
    pub fn with_allowed_lateness(mut self, lateness: Duration) -> Self {
        self.allowed_lateness = Some(lateness);
        self
    }

    /// Sets the timestamp of grouped outputs.
    pub fn with_timestamp_combiner(mut self, combiner: TimestampCombiner) -> Self {
        self.timestamp_combiner = Some(combiner);
        self
    }

    /// Sets whether an expiring window always emits a final pane.
    pub fn with_closing_behavior(mut self, behavior: ClosingBehavior) -> Self {
        self.closing_behavior = Some(behavior);
        self
    }

    /// Sets whether an empty on-time pane is emitted.
    pub fn with_on_time_behavior(mut self, behavior: OnTimeBehavior) -> Self {
        self.on_time_behavior = Some(behavior);
        self
    }

    fn strategy(&self, previous: &WindowingStrategy) -> WindowingStrategy {
        let mut s = previous.clone();
        s.window_fn = self.window_fn.clone();
        if let Some(t) = &self.trigger {
            s.trigger = t.clone();
        }
        if let Some(a) = self.accumulation {
            s.accumulation = a;
        }
        if let Some(l) = self.allowed_lateness {
            s.allowed_lateness = l;
        }
        if let Some(c) = self.timestamp_combiner {
            s.timestamp_combiner = c;
        }
        if let Some(c) = self.closing_behavior {
            s.closing_behavior = c;
        }
        if let Some(o) = self.on_time_behavior {
            s.on_time_behavior = o;
        }
        s
    }
}

impl<T: Element> PCollection<T> {
    /// Assigns every element to its windows (an element in several windows becomes
    /// several elements) and sets the windowing strategy.
    pub fn window_into<W: WindowFn>(&self, window: Window<W>) -> PCollection<T> {
        let strategy = Arc::new(window.strategy(&self.strategy));
        let window_fn = window.window_fn.clone();
        self.element_wise("Window", strategy, move || {
            let window_fn = window_fn.clone();
            let mut windows: Vec<ModelWindow> = Vec::with_capacity(4);
            move |wv: WindowedValue<T>, out: &mut Vec<WindowedValue<T>>| {
                windows.clear();
                window_fn.assign_windows(wv.timestamp, &mut windows);
                if let Some((last, rest)) = windows.split_last() {
                    for w in rest {
                        out.push(WindowedValue { window: *w, ..wv.clone() });
                    }
                    out.push(WindowedValue { window: *last, ..wv });
                }
                Ok(())
            }
        })
    }
}
