//! [`Count`]: counts inputs.

use crate::CombineFn;

/// Counts inputs of any type; the output is a `u64`.
///
/// ```
/// use millstream_model::combiners::{combine_all, Count};
/// assert_eq!(combine_all(&Count, vec!["a", "b", "a"]), 3);
/// assert_eq!(combine_all(&Count, Vec::<()>::new()), 0);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Count;

impl<I> CombineFn<I> for Count {
    type Accumulator = u64;
    type Output = u64;
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add_input(&self, accumulator: &mut u64, _input: I) {
        *accumulator += 1;
    }
    fn merge_accumulators(&self, accumulator: &mut u64, other: u64) {
        *accumulator += other;
    }
    fn extract_output(&self, accumulator: &u64) -> u64 {
        *accumulator
    }
}

#[cfg(test)]
mod tests {
    use super::Count;
    use crate::combiners::combine_all;
    use crate::combiners::testing::assert_grouping_invariant;

    #[test]
    fn counts_any_input() {
        assert_eq!(combine_all(&Count, Vec::<String>::new()), 0);
        assert_eq!(combine_all(&Count, vec![String::from("x"); 5]), 5);
        assert_eq!(combine_all(&Count, 0..1000), 1000);
        assert_eq!(combine_all(&Count, [(), ()]), 2);
    }

    #[test]
    fn grouping_does_not_matter() {
        let inputs: Vec<char> = "the quick brown fox".chars().collect();
        assert_grouping_invariant(&Count, &inputs, &[0, 4, 4, 9], &19);
        assert_grouping_invariant(&Count, &Vec::<char>::new(), &[], &0);
    }
}
