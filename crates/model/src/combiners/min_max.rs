//! [`Min`] and [`Max`] for totally ordered inputs, [`MinF64`] and [`MaxF64`] for floats.
//!
//! `Min` and `Max` require `Ord`, so they do not accept `f64`: with `PartialOrd` alone, a
//! NaN would make the result depend on the order the runner merges accumulators in. The
//! float variants instead ignore NaN inputs and order the rest by [`f64::total_cmp`]
//! (so `-0.0 < 0.0`), which keeps them associative and commutative.

use crate::CombineFn;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cmp::Ordering;

/// Keeps the input in `accumulator` or replaces it with `input`, whichever `wins` over the
/// other; ties keep the accumulated one.
fn keep<T>(accumulator: &mut Option<T>, input: T, wins: impl Fn(&T, &T) -> bool) {
    match accumulator {
        Some(current) if !wins(&input, current) => {}
        _ => *accumulator = Some(input),
    }
}

/// The smallest input by `Ord`, or `None` when there are no inputs.
///
/// Of several equal smallest inputs, which one is returned is unspecified.
///
/// ```
/// use millstream_model::combiners::{combine_all, Min};
/// assert_eq!(combine_all(&Min, vec![3, 1, 2]), Some(1));
/// assert_eq!(combine_all(&Min, vec!["pear".to_string(), "apple".into()]), Some("apple".into()));
/// assert_eq!(combine_all(&Min, Vec::<u8>::new()), None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Min;

/// The largest input by `Ord`, or `None` when there are no inputs.
///
/// Of several equal largest inputs, which one is returned is unspecified.
///
/// ```
/// use millstream_model::combiners::{combine_all, Max};
/// assert_eq!(combine_all(&Max, vec![3, 1, 2]), Some(3));
/// assert_eq!(combine_all(&Max, vec![(1, 'b'), (1, 'c')]), Some((1, 'c')));
/// assert_eq!(combine_all(&Max, Vec::<u8>::new()), None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Max;

macro_rules! ord_extremum {
    ($name:ident, $wins:expr) => {
        impl<I> CombineFn<I> for $name
        where
            I: Ord + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
        {
            type Accumulator = Option<I>;
            type Output = Option<I>;
            fn create_accumulator(&self) -> Option<I> {
                None
            }
            fn add_input(&self, accumulator: &mut Option<I>, input: I) {
                keep(accumulator, input, $wins);
            }
            fn merge_accumulators(&self, accumulator: &mut Option<I>, other: Option<I>) {
                if let Some(other) = other {
                    keep(accumulator, other, $wins);
                }
            }
            fn extract_output(&self, accumulator: &Option<I>) -> Option<I> {
                accumulator.clone()
            }
        }
    };
}

ord_extremum!(Min, |input: &I, current: &I| input < current);
ord_extremum!(Max, |input: &I, current: &I| input > current);

/// The smallest non-NaN `f64` input, or `None` when there is none.
///
/// NaN inputs are ignored; `-0.0` counts as smaller than `0.0`.
///
/// ```
/// use millstream_model::combiners::{combine_all, MinF64};
/// assert_eq!(combine_all(&MinF64, vec![2.5, f64::NAN, -1.0]), Some(-1.0));
/// assert_eq!(combine_all(&MinF64, vec![f64::NAN]), None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MinF64;

/// The largest non-NaN `f64` input, or `None` when there is none.
///
/// NaN inputs are ignored; `0.0` counts as larger than `-0.0`.
///
/// ```
/// use millstream_model::combiners::{combine_all, MaxF64};
/// assert_eq!(combine_all(&MaxF64, vec![2.5, f64::NAN, -1.0]), Some(2.5));
/// assert_eq!(combine_all(&MaxF64, Vec::<f64>::new()), None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MaxF64;

macro_rules! float_extremum {
    ($name:ident, $winning:expr) => {
        impl CombineFn<f64> for $name {
            type Accumulator = Option<f64>;
            type Output = Option<f64>;
            fn create_accumulator(&self) -> Option<f64> {
                None
            }
            fn add_input(&self, accumulator: &mut Option<f64>, input: f64) {
                if !input.is_nan() {
                    keep(accumulator, input, |a: &f64, b: &f64| a.total_cmp(b) == $winning);
                }
            }
            fn merge_accumulators(&self, accumulator: &mut Option<f64>, other: Option<f64>) {
                if let Some(other) = other {
                    self.add_input(accumulator, other);
                }
            }
            fn extract_output(&self, accumulator: &Option<f64>) -> Option<f64> {
                *accumulator
            }
        }
    };
}

float_extremum!(MinF64, Ordering::Less);
float_extremum!(MaxF64, Ordering::Greater);

#[cfg(test)]
mod tests {
    use super::{Max, MaxF64, Min, MinF64};
    use crate::combiners::combine_all;
    use crate::combiners::testing::assert_grouping_invariant;
    use crate::CombineFn;
    use proptest::prelude::*;

    #[test]
    fn min_and_max() {
        let inputs = vec![5, -3, 12, 7, -3, 12, 0];
        assert_eq!(combine_all(&Min, inputs.clone()), Some(-3));
        assert_eq!(combine_all(&Max, inputs), Some(12));
        assert_eq!(combine_all(&Min, vec![String::from("b"), "a".into(), "c".into()]), Some("a".into()));
        assert_eq!(combine_all(&Max, [u64::MAX, 0]), Some(u64::MAX));
        assert_eq!(combine_all(&Min, [42]), Some(42));
    }

    #[test]
    fn empty_is_none() {
        assert_eq!(combine_all(&Min, Vec::<i32>::new()), None);
        assert_eq!(combine_all(&Max, Vec::<String>::new()), None);
        assert_eq!(combine_all(&MinF64, Vec::<f64>::new()), None);
        assert_eq!(combine_all(&MaxF64, Vec::<f64>::new()), None);
    }

    #[test]
    fn floats_ignore_nan_and_order_zeros() {
        let inputs = [f64::NAN, 1.0, f64::NEG_INFINITY, -f64::NAN, 3.5];
        assert_eq!(combine_all(&MinF64, inputs), Some(f64::NEG_INFINITY));
        assert_eq!(combine_all(&MaxF64, inputs), Some(3.5));
        assert_eq!(combine_all(&MinF64, [f64::NAN, f64::NAN]), None);
        let zeros = [0.0, -0.0];
        assert!(combine_all(&MinF64, zeros).unwrap().is_sign_negative());
        assert!(combine_all(&MaxF64, zeros).unwrap().is_sign_positive());
        assert!(combine_all(&MinF64, [-0.0, 0.0]).unwrap().is_sign_negative());
    }

    #[test]
    fn grouping_does_not_matter() {
        let inputs: Vec<i32> = (0..40).map(|i| (i * 37 + 11) % 53 - 20).collect();
        assert_grouping_invariant(&Min, &inputs, &[1, 20, 20], &inputs.iter().min().copied());
        assert_grouping_invariant(&Max, &inputs, &[1, 20, 20], &inputs.iter().max().copied());
        let floats = [f64::NAN, 2.0, -7.5, f64::INFINITY, 0.0, -0.0, f64::NAN];
        assert_grouping_invariant(&Bits(MinF64), &floats, &[2, 5], &Some((-7.5_f64).to_bits()));
        assert_grouping_invariant(&Bits(MaxF64), &floats, &[2, 5], &Some(f64::INFINITY.to_bits()));
        let zeros = [0.0, -0.0, 0.0];
        assert_grouping_invariant(&Bits(MinF64), &zeros, &[1], &Some((-0.0_f64).to_bits()));
        assert_grouping_invariant(&Bits(MaxF64), &zeros, &[2], &Some(0.0_f64.to_bits()));
    }

    proptest! {
        #[test]
        fn grouping_invariant_for_any_input(
            inputs in proptest::collection::vec(any::<i16>(), 0..30),
            cuts in proptest::collection::vec(0_usize..30, 0..4),
        ) {
            assert_grouping_invariant(&Min, &inputs, &cuts, &inputs.iter().min().copied());
            assert_grouping_invariant(&Max, &inputs, &cuts, &inputs.iter().max().copied());
        }

        #[test]
        fn floats_grouping_invariant_for_any_input(
            inputs in proptest::collection::vec(any::<f64>(), 0..30),
            cuts in proptest::collection::vec(0_usize..30, 0..4),
        ) {
            let numbers = inputs.iter().copied().filter(|x| !x.is_nan());
            let min = numbers.clone().min_by(f64::total_cmp).map(f64::to_bits);
            let max = numbers.max_by(f64::total_cmp).map(f64::to_bits);
            assert_grouping_invariant(&Bits(MinF64), &inputs, &cuts, &min);
            assert_grouping_invariant(&Bits(MaxF64), &inputs, &cuts, &max);
        }
    }

    /// Outputs the bit pattern of a float extremum, so that `-0.0` and `0.0` differ.
    struct Bits<F>(F);

    impl<F: CombineFn<f64, Output = Option<f64>>> CombineFn<f64> for Bits<F> {
        type Accumulator = F::Accumulator;
        type Output = Option<u64>;
        fn create_accumulator(&self) -> F::Accumulator {
            self.0.create_accumulator()
        }
        fn add_input(&self, accumulator: &mut F::Accumulator, input: f64) {
            self.0.add_input(accumulator, input)
        }
        fn merge_accumulators(&self, accumulator: &mut F::Accumulator, other: F::Accumulator) {
            self.0.merge_accumulators(accumulator, other)
        }
        fn extract_output(&self, accumulator: &F::Accumulator) -> Option<u64> {
            self.0.extract_output(accumulator).map(f64::to_bits)
        }
    }
}
