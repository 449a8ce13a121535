//! [`Mean`]: the arithmetic mean of numbers.

use super::numeric::Numeric;
use crate::CombineFn;

/// The arithmetic mean of [`Numeric`] inputs as an `f64`, or `None` when there are no
/// inputs.
///
/// The accumulator is `(sum, count)`, with the sum kept as an `f64`: integers beyond
/// 2^53 and large float sums are rounded, so the mean can differ in the last bits
/// depending on how the runner groups inputs.
///
/// ```
/// use millstream_model::combiners::{combine_all, Mean};
/// assert_eq!(combine_all(&Mean, vec![1_u32, 2, 4, 5]), Some(3.0));
/// assert_eq!(combine_all(&Mean, vec![0.5_f32]), Some(0.5));
/// assert_eq!(combine_all(&Mean, Vec::<i64>::new()), None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Mean;

impl<T: Numeric> CombineFn<T> for Mean {
    /// `(sum, count)`.
    type Accumulator = (f64, u64);
    type Output = Option<f64>;
    fn create_accumulator(&self) -> (f64, u64) {
        (0.0, 0)
    }
    fn add_input(&self, accumulator: &mut (f64, u64), input: T) {
        accumulator.0 += input.to_f64();
        accumulator.1 += 1;
    }
    fn merge_accumulators(&self, accumulator: &mut (f64, u64), other: (f64, u64)) {
        accumulator.0 += other.0;
        accumulator.1 += other.1;
    }
    fn extract_output(&self, accumulator: &(f64, u64)) -> Option<f64> {
        let (sum, count) = *accumulator;
        (count > 0).then(|| sum / count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::Mean;
    use crate::combiners::combine_all;
    use crate::combiners::testing::assert_grouping_invariant;

    #[test]
    fn means() {
        assert_eq!(combine_all(&Mean, [1_i32, 2]), Some(1.5));
        assert_eq!(combine_all(&Mean, [-4_i64, 4, 9]), Some(3.0));
        assert_eq!(combine_all(&Mean, [7_u64]), Some(7.0));
        assert_eq!(combine_all(&Mean, [0.25_f64, 0.75, 2.0]), Some(1.0));
        assert_eq!(combine_all(&Mean, [1_usize, 2, 3, 4]), Some(2.5));
    }

    #[test]
    fn empty_is_none() {
        assert_eq!(combine_all(&Mean, Vec::<f64>::new()), None);
        assert_eq!(combine_all(&Mean, Vec::<u8>::new()), None);
    }

    #[test]
    fn grouping_does_not_matter() {
        let inputs: Vec<i32> = (0..64).map(|i| (i * 29) % 17 - 8).collect();
        let expected = inputs.iter().sum::<i32>() as f64 / inputs.len() as f64;
        assert_grouping_invariant(&Mean, &inputs, &[0, 13, 13, 40], &Some(expected));
        assert_grouping_invariant(&Mean, &Vec::<i32>::new(), &[0, 0], &None);
    }
}
