//! [`CombineFn`]: associative, commutative aggregation in four steps, as in Beam.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// An aggregation of inputs `I` into an output, through a mergeable accumulator.
///
/// Accumulators are merged in any order and grouping, so `add_input` and
/// `merge_accumulators` must be associative and commutative. Partial accumulators are
/// built on each worker before the shuffle (combiner lifting) and sent between workers,
/// so they must be serializable.
///
/// ```
/// use millstream_model::CombineFn;
/// struct Longest;
/// impl CombineFn<String> for Longest {
///     type Accumulator = String;
///     type Output = usize;
///     fn create_accumulator(&self) -> String { String::new() }
///     fn add_input(&self, acc: &mut String, input: String) {
///         if input.len() > acc.len() { *acc = input }
///     }
///     fn merge_accumulators(&self, acc: &mut String, other: String) { self.add_input(acc, other) }
///     fn extract_output(&self, acc: &String) -> usize { acc.len() }
/// }
/// let f = Longest;
/// let mut a = f.create_accumulator();
/// f.add_input(&mut a, "millstream".into());
/// assert_eq!(f.extract_output(&a), 10);
/// ```
pub trait CombineFn<I>: Send + Sync + 'static {
    /// The mergeable intermediate state.
    type Accumulator: Clone + Send + Sync + Serialize + DeserializeOwned + 'static;
    /// The result.
    type Output: Clone + Send + 'static;

    /// A fresh, empty accumulator.
    fn create_accumulator(&self) -> Self::Accumulator;
    /// Adds one input.
    fn add_input(&self, accumulator: &mut Self::Accumulator, input: I);
    /// Folds `other` into `accumulator`.
    fn merge_accumulators(&self, accumulator: &mut Self::Accumulator, other: Self::Accumulator);
    /// The output for the inputs seen so far.
    fn extract_output(&self, accumulator: &Self::Accumulator) -> Self::Output;
}

/// The CombineFn that GroupByKey uses: it collects every input, in arrival order.
#[derive(Clone, Copy, Debug, Default)]
pub struct ToList;

impl<I> CombineFn<I> for ToList
where
    I: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    type Accumulator = Vec<I>;
    type Output = Vec<I>;
    fn create_accumulator(&self) -> Vec<I> {
        Vec::new()
    }
    fn add_input(&self, accumulator: &mut Vec<I>, input: I) {
        accumulator.push(input);
    }
    fn merge_accumulators(&self, accumulator: &mut Vec<I>, other: Vec<I>) {
        accumulator.extend(other);
    }
    fn extract_output(&self, accumulator: &Vec<I>) -> Vec<I> {
        accumulator.clone()
    }
}
