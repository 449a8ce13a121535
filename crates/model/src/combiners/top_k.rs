//! [`TopK`]: the `k` largest or smallest inputs.

use crate::CombineFn;
use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Largest,
    Smallest,
}

/// The `k` largest ([`TopK::largest`]) or smallest ([`TopK::smallest`]) inputs by `Ord`.
///
/// The output holds `min(k, number of inputs)` elements, best first: descending for
/// `largest`, ascending for `smallest`. Duplicates count separately, so equal inputs can
/// fill several places. The accumulator is a `Vec` kept sorted in output order and never
/// longer than `k`, so it stays small however many inputs a key has. Among inputs that
/// compare equal (but differ otherwise) at the cut-off, which ones are kept is
/// unspecified.
///
/// ```
/// use millstream_model::combiners::{combine_all, TopK};
/// let inputs = vec![4, 9, 1, 9, 7];
/// assert_eq!(combine_all(&TopK::largest(3), inputs.clone()), vec![9, 9, 7]);
/// assert_eq!(combine_all(&TopK::smallest(2), inputs.clone()), vec![1, 4]);
/// assert_eq!(combine_all(&TopK::smallest(10), inputs), vec![1, 4, 7, 9, 9]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopK {
    k: usize,
    order: Order,
}

impl TopK {
    /// The `k` largest inputs, in descending order.
    pub fn largest(k: usize) -> Self {
        TopK { k, order: Order::Largest }
    }

    /// The `k` smallest inputs, in ascending order.
    pub fn smallest(k: usize) -> Self {
        TopK { k, order: Order::Smallest }
    }

    /// How many inputs are kept at most.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Whether `a` comes strictly before `b` in the output.
    fn before<I: Ord>(&self, a: &I, b: &I) -> bool {
        match self.order {
            Order::Largest => a > b,
            Order::Smallest => a < b,
        }
    }
}

impl<I> CombineFn<I> for TopK
where
    I: Ord + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    /// The best `k` inputs so far, sorted in output order.
    type Accumulator = Vec<I>;
    type Output = Vec<I>;

    fn create_accumulator(&self) -> Vec<I> {
        Vec::new()
    }

    fn add_input(&self, accumulator: &mut Vec<I>, input: I) {
        // After every element that `input` does not beat, so earlier equal inputs stay first.
        let position = accumulator.partition_point(|kept| !self.before(&input, kept));
        if position >= self.k {
            return;
        }
        if accumulator.len() >= self.k {
            accumulator.truncate(self.k - 1);
        }
        accumulator.insert(position, input);
    }

    fn merge_accumulators(&self, accumulator: &mut Vec<I>, other: Vec<I>) {
        if other.is_empty() {
            return;
        }
        let mine = std::mem::take(accumulator);
        let mut merged = Vec::with_capacity(self.k.min(mine.len() + other.len()));
        let mut mine = mine.into_iter().peekable();
        let mut other = other.into_iter().peekable();
        while merged.len() < self.k {
            let next = match (mine.peek(), other.peek()) {
                (Some(a), Some(b)) if self.before(b, a) => other.next(),
                (Some(_), _) => mine.next(),
                (None, Some(_)) => other.next(),
                (None, None) => break,
            };
            merged.extend(next);
        }
        *accumulator = merged;
    }

    fn extract_output(&self, accumulator: &Vec<I>) -> Vec<I> {
        accumulator.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::TopK;
    use crate::combiners::combine_all;
    use crate::combiners::testing::assert_grouping_invariant;
    use crate::CombineFn;
    use proptest::prelude::*;

    fn expected(inputs: &[i32], k: usize, largest: bool) -> Vec<i32> {
        let mut sorted = inputs.to_vec();
        sorted.sort_unstable();
        if largest {
            sorted.reverse();
        }
        sorted.truncate(k);
        sorted
    }

    #[test]
    fn largest_and_smallest() {
        let inputs = vec![15, 3, 8, 42, -1, 23, 4];
        assert_eq!(combine_all(&TopK::largest(3), inputs.clone()), vec![42, 23, 15]);
        assert_eq!(combine_all(&TopK::smallest(3), inputs.clone()), vec![-1, 3, 4]);
        assert_eq!(combine_all(&TopK::largest(1), inputs.clone()), vec![42]);
        let words = ["pear", "apple", "fig", "quince"].map(String::from);
        assert_eq!(combine_all(&TopK::smallest(2), words), ["apple", "fig"].map(String::from));
    }

    #[test]
    fn ties_fill_several_places() {
        let inputs = vec![5, 1, 5, 3, 5, 5];
        assert_eq!(combine_all(&TopK::largest(3), inputs.clone()), vec![5, 5, 5]);
        assert_eq!(combine_all(&TopK::largest(5), inputs.clone()), vec![5, 5, 5, 5, 3]);
        assert_eq!(combine_all(&TopK::smallest(3), inputs.clone()), vec![1, 3, 5]);
        assert_eq!(combine_all(&TopK::smallest(2), vec![4, 1, 1, 1]), vec![1, 1]);
        assert_grouping_invariant(&TopK::largest(3), &inputs, &[1, 2, 4], &vec![5, 5, 5]);
        assert_grouping_invariant(&TopK::smallest(4), &inputs, &[3], &vec![1, 3, 5, 5]);
    }

    #[test]
    fn k_larger_than_input() {
        assert_eq!(combine_all(&TopK::largest(10), vec![2, 3, 1]), vec![3, 2, 1]);
        assert_eq!(combine_all(&TopK::smallest(10), vec![2, 3, 1, 2]), vec![1, 2, 2, 3]);
        assert_eq!(combine_all(&TopK::largest(4), Vec::<i32>::new()), Vec::<i32>::new());
        assert_grouping_invariant(&TopK::largest(100), &[7, 1, 7, 3], &[2], &vec![7, 7, 3, 1]);
    }

    #[test]
    fn k_zero_keeps_nothing() {
        assert_eq!(combine_all(&TopK::largest(0), vec![1, 2, 3]), Vec::<i32>::new());
        assert_grouping_invariant(&TopK::smallest(0), &[1, 2, 3], &[1], &Vec::new());
    }

    #[test]
    fn accumulator_stays_bounded() {
        let top = TopK::largest(5);
        let mut acc = CombineFn::<u32>::create_accumulator(&top);
        for i in 0..1000_u32 {
            top.add_input(&mut acc, i.wrapping_mul(2_654_435_761) % 1000);
            assert!(acc.len() <= 5);
        }
        let mut other = CombineFn::<u32>::create_accumulator(&top);
        for i in 1000..1010_u32 {
            top.add_input(&mut other, i);
        }
        top.merge_accumulators(&mut acc, other);
        assert_eq!(acc, vec![1009, 1008, 1007, 1006, 1005]);
    }

    proptest! {
        #[test]
        fn matches_sorting_in_any_grouping(
            inputs in proptest::collection::vec(-20_i32..20, 0..40),
            cuts in proptest::collection::vec(0_usize..40, 0..5),
            k in 0_usize..12,
        ) {
            assert_grouping_invariant(&TopK::largest(k), &inputs, &cuts, &expected(&inputs, k, true));
            assert_grouping_invariant(&TopK::smallest(k), &inputs, &cuts, &expected(&inputs, k, false));
        }
    }
}
