//! Building blocks the queries share: CombineFns and a DoFn that sees the window.

use millstream_model::{CombineFn, Window};
use millstream_runtime::{DoFn, Element, PCollection, ProcessContext, UserError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Keeps, of `(score, item)` inputs, the highest score and every item with that score
/// (all ties). The output is `(score, items)`; items come in no particular order.
///
/// ```
/// use millstream_model::combiners::combine_all;
/// use millstream_nexmark::queries::MaxWithTies;
/// let (best, mut items) = combine_all(&MaxWithTies, vec![(3, 'a'), (5, 'b'), (5, 'c'), (1, 'd')]);
/// items.sort();
/// assert_eq!((best, items), (5, vec!['b', 'c']));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MaxWithTies;

impl<T> CombineFn<(i64, T)> for MaxWithTies
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    type Accumulator = (i64, Vec<T>);
    type Output = (i64, Vec<T>);

    fn create_accumulator(&self) -> (i64, Vec<T>) {
        (i64::MIN, Vec::new())
    }

    fn add_input(&self, acc: &mut (i64, Vec<T>), (score, item): (i64, T)) {
        if score > acc.0 || acc.1.is_empty() {
            acc.0 = score;
            acc.1.clear();
            acc.1.push(item);
        } else if score == acc.0 {
            acc.1.push(item);
        }
    }

    fn merge_accumulators(&self, acc: &mut (i64, Vec<T>), other: (i64, Vec<T>)) {
        if other.1.is_empty() {
            return;
        }
        if acc.1.is_empty() || other.0 > acc.0 {
            *acc = other;
        } else if other.0 == acc.0 {
            acc.1.extend(other.1);
        }
    }

    fn extract_output(&self, acc: &(i64, Vec<T>)) -> (i64, Vec<T>) {
        acc.clone()
    }
}

/// The average of integers, truncated toward zero (`sum / count`, integer division);
/// 0 for no inputs. The sum wraps on overflow.
///
/// ```
/// use millstream_model::combiners::combine_all;
/// use millstream_nexmark::queries::TruncatingMean;
/// assert_eq!(combine_all(&TruncatingMean, vec![1i64, 2, 2]), 1);
/// assert_eq!(combine_all(&TruncatingMean, Vec::<i64>::new()), 0);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TruncatingMean;

impl CombineFn<i64> for TruncatingMean {
    type Accumulator = (i64, i64);
    type Output = i64;

    fn create_accumulator(&self) -> (i64, i64) {
        (0, 0)
    }

    fn add_input(&self, acc: &mut (i64, i64), input: i64) {
        acc.0 = acc.0.wrapping_add(input);
        acc.1 += 1;
    }

    fn merge_accumulators(&self, acc: &mut (i64, i64), other: (i64, i64)) {
        acc.0 = acc.0.wrapping_add(other.0);
        acc.1 += other.1;
    }

    fn extract_output(&self, acc: &(i64, i64)) -> i64 {
        acc.0.checked_div(acc.1).unwrap_or(0)
    }
}

/// A ParDo that maps each element together with its window (to read a window's bounds
/// after a windowed aggregation); `None` outputs nothing.
#[derive(Clone)]
pub(crate) struct MapWithWindow<F>(pub(crate) F);

impl<I, O, F> DoFn<I> for MapWithWindow<F>
where
    O: Element,
    F: Fn(I, &Window) -> Option<O> + Clone + Send + Sync + 'static,
{
    type Output = O;

    fn process(&mut self, element: I, ctx: &mut ProcessContext<'_, O>) -> Result<(), UserError> {
        if let Some(out) = (self.0)(element, ctx.window()) {
            ctx.output(out);
        }
        Ok(())
    }
}

/// `c` in the global window: as it is when it already is, else re-windowed (queries over
/// all time accept input windowed any way).
pub(crate) fn in_global_window<T: Element>(c: &PCollection<T>) -> PCollection<T> {
    if c.windowing_strategy().window_fn.is_global() {
        c.clone()
    } else {
        c.window_into(millstream_runtime::Window::into(millstream_model::GlobalWindows))
    }
}

/// The start of an interval window in epoch milliseconds (the global window has none:
/// its start is the minimum timestamp).
pub(crate) fn window_start(w: &Window) -> i64 {
    w.start().millis()
}

/// The end of an interval window in epoch milliseconds (exclusive).
pub(crate) fn window_end(w: &Window) -> i64 {
    w.as_interval().map(|i| i.end.millis()).unwrap_or_else(|| w.max_timestamp().millis())
}

/// The start of the epoch-aligned window of `size_ms` containing `t`.
pub(crate) fn aligned_start(t: i64, size_ms: i64) -> i64 {
    t - t.rem_euclid(size_ms)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The output of `f` over `inputs` split into accumulators at `cuts` and merged in
    /// reverse order (as partial combines before a shuffle may be).
    pub(crate) fn combine_in_parts<I: Clone, F: CombineFn<I>>(
        f: &F,
        inputs: &[I],
        cuts: &[usize],
    ) -> F::Output {
        let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(inputs.len())).collect();
        bounds.extend([0, inputs.len()]);
        bounds.sort_unstable();
        let mut parts: Vec<F::Accumulator> = bounds
            .windows(2)
            .map(|w| {
                let mut acc = f.create_accumulator();
                for i in &inputs[w[0]..w[1]] {
                    f.add_input(&mut acc, i.clone());
                }
                acc
            })
            .collect();
        parts.reverse();
        let mut total = f.create_accumulator();
        for p in parts {
            f.merge_accumulators(&mut total, p);
        }
        f.extract_output(&total)
    }

    proptest! {
        #[test]
        fn max_with_ties_does_not_depend_on_grouping(
            inputs in proptest::collection::vec((0i64..4, 0u8..50), 0..40),
            cuts in proptest::collection::vec(0usize..40, 0..5),
        ) {
            let (best, mut items) = combine_in_parts(&MaxWithTies, &inputs, &cuts);
            items.sort_unstable();
            let max = inputs.iter().map(|(s, _)| *s).max();
            let mut expected: Vec<u8> =
                inputs.iter().filter(|(s, _)| Some(*s) == max).map(|(_, i)| *i).collect();
            expected.sort_unstable();
            prop_assert_eq!(items, expected);
            if let Some(m) = max {
                prop_assert_eq!(best, m);
            }
        }

        #[test]
        fn truncating_mean_does_not_depend_on_grouping(
            inputs in proptest::collection::vec(-1000i64..1000, 0..40),
            cuts in proptest::collection::vec(0usize..40, 0..5),
        ) {
            let got = combine_in_parts(&TruncatingMean, &inputs, &cuts);
            let expected = if inputs.is_empty() { 0 } else { inputs.iter().sum::<i64>() / inputs.len() as i64 };
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn answers_do_not_depend_on_grouping(
            inputs in proptest::collection::vec(any::<u64>(), 0..40),
            cuts in proptest::collection::vec(0usize..40, 0..5),
        ) {
            let got = combine_in_parts(&crate::answer::AnswerFn, &inputs, &cuts);
            let mut expected = crate::answer::Answer::new();
            inputs.iter().for_each(|h| expected.add_hash(*h));
            prop_assert_eq!(got, expected);
        }
    }
}
