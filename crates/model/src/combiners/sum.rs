//! [`Sum`]: adds numbers.

use super::numeric::Numeric;
use crate::CombineFn;

/// Sums [`Numeric`] inputs; the output has the input's type and is zero when there are
/// no inputs.
///
/// Integer sums wrap on overflow (like Beam's Java `Sum`), so map to a wider type first if
/// that can happen. Float sums are rounded at every addition, so they can differ in the
/// last bits depending on how the runner groups and merges inputs.
///
/// ```
/// use millstream_model::combiners::{combine_all, Sum};
/// assert_eq!(combine_all(&Sum, vec![1_u32, 2, 3]), 6);
/// assert_eq!(combine_all(&Sum, vec![0.5_f64, 0.25]), 0.75);
/// assert_eq!(combine_all(&Sum, Vec::<i64>::new()), 0);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Sum;

impl<T: Numeric> CombineFn<T> for Sum {
    type Accumulator = T;
    type Output = T;
    fn create_accumulator(&self) -> T {
        T::ZERO
    }
    fn add_input(&self, accumulator: &mut T, input: T) {
        *accumulator = accumulator.plus(input);
    }
    fn merge_accumulators(&self, accumulator: &mut T, other: T) {
        *accumulator = accumulator.plus(other);
    }
    fn extract_output(&self, accumulator: &T) -> T {
        *accumulator
    }
}

#[cfg(test)]
mod tests {
    use super::Sum;
    use crate::combiners::combine_all;
    use crate::combiners::testing::assert_grouping_invariant;
    use proptest::prelude::*;

    #[test]
    fn sums_each_type() {
        assert_eq!(combine_all(&Sum, [1_i32, -2, 3]), 2);
        assert_eq!(combine_all(&Sum, [1_i64, 2, 3]), 6);
        assert_eq!(combine_all(&Sum, [1_u32, 2, 3]), 6);
        assert_eq!(combine_all(&Sum, [u64::MAX / 2, 1]), u64::MAX / 2 + 1);
        assert_eq!(combine_all(&Sum, [4_usize, 5]), 9);
        assert_eq!(combine_all(&Sum, [1.5_f32, 2.25]), 3.75);
        assert_eq!(combine_all(&Sum, [1.5_f64, -2.25]), -0.75);
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(combine_all(&Sum, Vec::<i32>::new()), 0);
        assert_eq!(combine_all(&Sum, Vec::<f64>::new()), 0.0);
    }

    #[test]
    fn overflow_wraps() {
        assert_eq!(combine_all(&Sum, [i32::MAX, 1]), i32::MIN);
        assert_eq!(combine_all(&Sum, [u8::MAX, 1, 1]), 1);
    }

    #[test]
    fn grouping_does_not_matter() {
        let inputs: Vec<i64> = (-20..50).map(|i| i * 7919 % 1000).collect();
        let expected: i64 = inputs.iter().sum();
        assert_grouping_invariant(&Sum, &inputs, &[3, 3, 10, 33], &expected);
        // Floats holding small integers add exactly, in any order.
        let floats: Vec<f64> = inputs.iter().map(|&i| i as f64).collect();
        assert_grouping_invariant(&Sum, &floats, &[5, 60], &(expected as f64));
    }

    proptest! {
        #[test]
        fn wrapping_sum_is_grouping_invariant(
            inputs in proptest::collection::vec(any::<i32>(), 0..40),
            cuts in proptest::collection::vec(0_usize..40, 0..5),
        ) {
            let expected = inputs.iter().fold(0_i32, |a, &b| a.wrapping_add(b));
            assert_grouping_invariant(&Sum, &inputs, &cuts, &expected);
        }
    }
}
