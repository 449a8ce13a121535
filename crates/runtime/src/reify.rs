//! Reify (Beam's `Reify`): an element's window, pane or timestamp made part of its value,
//! so that later steps (a re-windowing, a sink that writes plain values) still know them.

use crate::element::Element;
use crate::pcollection::PCollection;
use millstream_model::{PaneInfo, Timestamp, Window, WindowedValue};

impl<T: Element> PCollection<T> {
    /// Pairs every element with its window and pane: `(value, window, pane)` (Beam's
    /// `Reify.windows()`; in Flink, what a `ProcessWindowFunction` reads from its
    /// context). Elements keep their timestamp, window and pane; only the value changes.
    ///
    /// A combine's result knows its window only as metadata, which a re-windowing
    /// (`window_into`) replaces and most sinks do not write; reified, the window travels
    /// with the value:
    ///
    /// ```
    /// use millstream_model::combiners::Sum;
    /// use millstream_model::{Duration, FixedWindows, Timestamp};
    /// use millstream_runtime::{Pipeline, Runner, Window};
    ///
    /// let p = Pipeline::new();
    /// let sums = p
    ///     .create_timestamped(vec![(("a".to_string(), 2i64), Timestamp::hms(12, 0, 5))])
    ///     .window_into(Window::into(FixedWindows::of(Duration::from_secs(10))))
    ///     .combine_per_key(Sum)
    ///     .reify_windows()
    ///     .map(|((key, sum), window, pane)| format!("{key} {window} {sum} {:?}", pane.timing))
    ///     .collect();
    /// Runner::new().run(&p).unwrap();
    /// assert_eq!(sums.values(), vec!["a [12:00:00, 12:00:10) 2 OnTime".to_string()]);
    /// ```
    pub fn reify_windows(&self) -> PCollection<(T, Window, PaneInfo)> {
        self.element_wise("ReifyWindows", self.strategy.clone(), || {
            |wv: WindowedValue<T>, out: &mut Vec<WindowedValue<(T, Window, PaneInfo)>>| {
                let WindowedValue { value, timestamp, window, pane, retraction } = wv;
                out.push(WindowedValue { value: (value, window, pane), timestamp, window, pane, retraction });
                Ok(())
            }
        })
    }

    /// Pairs every element with its event timestamp: `(value, timestamp)` (Beam's
    /// `Reify.timestamps()`). Elements keep their timestamp, window and pane.
    pub fn reify_timestamps(&self) -> PCollection<(T, Timestamp)> {
        self.element_wise("ReifyTimestamps", self.strategy.clone(), || {
            |wv: WindowedValue<T>, out: &mut Vec<WindowedValue<(T, Timestamp)>>| {
                let WindowedValue { value, timestamp, window, pane, retraction } = wv;
                out.push(WindowedValue { value: (value, timestamp), timestamp, window, pane, retraction });
                Ok(())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Pipeline, Runner, TestStream, Window as Windowing};
    use millstream_model::combiners::Sum;
    use millstream_model::{Duration, FixedWindows, GlobalWindows, Timestamp, Timing, Trigger, Window};

    #[test]
    fn windows_and_panes_of_a_combine_travel_with_the_values() {
        let p = Pipeline::new();
        let stream = TestStream::new()
            .add_elements(vec![(("k".to_string(), 1i64), Timestamp::hms(0, 0, 1))])
            .advance_watermark_to(Timestamp::hms(0, 0, 10))
            .add_elements(vec![(("k".to_string(), 2i64), Timestamp::hms(0, 0, 3))]) // late
            .add_elements(vec![(("k".to_string(), 5i64), Timestamp::hms(0, 0, 12))])
            .advance_watermark_to_infinity();
        let reified = p
            .test_stream(stream)
            .window_into(
                Windowing::into(FixedWindows::of(Duration::from_secs(10)))
                    .triggering(Trigger::after_watermark().with_late_firings(Trigger::after_count(1)))
                    .with_allowed_lateness(Duration::from_mins(1))
                    .accumulating_fired_panes(),
            )
            .combine_per_key(Sum)
            .reify_windows()
            // Into the global window: the window is now known only from the value.
            .window_into(Windowing::into(GlobalWindows))
            .collect();
        Runner::new().workers(2).run(&p).unwrap();
        let mut got: Vec<_> = reified
            .windowed()
            .into_iter()
            .map(|wv| {
                assert_eq!(wv.window, Window::Global);
                let ((key, sum), window, pane) = wv.value;
                (window.start(), pane.index, pane.timing, key, sum)
            })
            .collect();
        got.sort();
        let k = || "k".to_string();
        assert_eq!(
            got,
            vec![
                (Timestamp::hms(0, 0, 0), 0, Timing::OnTime, k(), 1),
                (Timestamp::hms(0, 0, 0), 1, Timing::Late, k(), 3),
                (Timestamp::hms(0, 0, 10), 0, Timing::OnTime, k(), 5),
            ]
        );
    }

    #[test]
    fn reifying_keeps_the_metadata() {
        let p = Pipeline::new();
        let input = p
            .create_timestamped(vec![
                ("a".to_string(), Timestamp(1_500)),
                ("b".to_string(), Timestamp(12_000)),
            ])
            .window_into(Windowing::into(FixedWindows::of(Duration::from_secs(10))));
        let windows = input.reify_windows().collect();
        let timestamps = input.reify_timestamps().collect();
        Runner::new().run(&p).unwrap();
        for wv in windows.windowed() {
            assert_eq!((wv.value.1, wv.value.2), (wv.window, wv.pane));
        }
        let mut got: Vec<_> = timestamps.windowed().into_iter().map(|wv| (wv.value, wv.timestamp)).collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                (("a".to_string(), Timestamp(1_500)), Timestamp(1_500)),
                (("b".to_string(), Timestamp(12_000)), Timestamp(12_000)),
            ]
        );
        assert_eq!(windows.values().len(), 2);
    }
}
