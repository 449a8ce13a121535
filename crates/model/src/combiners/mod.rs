//! Built-in CombineFns.
//!
//! | CombineFn | Inputs | Output |
//! |---|---|---|
//! | [`Sum`] | [`Numeric`] `T` | `T` (integers wrap on overflow) |
//! | [`Count`] | anything | `u64` |
//! | [`Min`], [`Max`] | `T: Ord` | `Option<T>` |
//! | [`MinF64`], [`MaxF64`] | `f64` (NaN ignored) | `Option<f64>` |
//! | [`Mean`] | [`Numeric`] `T` | `Option<f64>` |
//! | [`TopK`] | `T: Ord` | `Vec<T>`, best first, at most `k` |
//! | [`ApproximateDistinct`] | `T: Hash` | `u64` estimate (HyperLogLog) |
//!
//! Combiners whose accumulators hold inputs ([`Min`], [`Max`], [`TopK`]) need owned,
//! serializable inputs (`String` rather than `&str`), since accumulators are sent
//! between workers.
//!
//! Most of these are unit structs that implement [`CombineFn<I>`](crate::CombineFn) for
//! many input types `I`, like [`ToList`](crate::ToList). In a pipeline the input type
//! comes from the collection being combined; when calling the trait methods directly,
//! name it with `CombineFn::<I>::create_accumulator(&f)` (or use [`combine_all`]):
//!
//! ```
//! use millstream_model::combiners::Sum;
//! use millstream_model::CombineFn;
//!
//! // Two partial sums, as built on two workers before the shuffle, then merged.
//! let mut a = CombineFn::<i64>::create_accumulator(&Sum);
//! Sum.add_input(&mut a, 3_i64);
//! Sum.add_input(&mut a, 4_i64);
//! let mut b = CombineFn::<i64>::create_accumulator(&Sum);
//! Sum.add_input(&mut b, -2_i64);
//! CombineFn::<i64>::merge_accumulators(&Sum, &mut a, b);
//! assert_eq!(CombineFn::<i64>::extract_output(&Sum, &a), 5);
//! ```

pub mod approximate_distinct;
pub mod count;
pub mod hash;
pub mod mean;
pub mod min_max;
pub mod numeric;
pub mod sum;
pub mod top_k;

pub use approximate_distinct::ApproximateDistinct;
pub use count::Count;
pub use hash::{stable_hash, StableHasher};
pub use mean::Mean;
pub use min_max::{Max, MaxF64, Min, MinF64};
pub use numeric::Numeric;
pub use sum::Sum;
pub use top_k::TopK;

use crate::CombineFn;

/// Combines `inputs` eagerly in a single accumulator and returns the output.
///
/// Handy for tests and small local collections; pipelines build and merge accumulators
/// through the runner instead.
///
/// ```
/// use millstream_model::combiners::{combine_all, Count, Max};
/// assert_eq!(combine_all(&Count, ["a", "b", "c"]), 3);
/// assert_eq!(combine_all(&Max, vec![2, 9, 4]), Some(9));
/// ```
pub fn combine_all<I, F: CombineFn<I>>(f: &F, inputs: impl IntoIterator<Item = I>) -> F::Output {
    let mut accumulator = f.create_accumulator();
    for input in inputs {
        f.add_input(&mut accumulator, input);
    }
    f.extract_output(&accumulator)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Checks that a CombineFn gives the same output however its inputs are grouped into
    //! accumulators and in whatever order those are merged.

    use crate::CombineFn;
    use std::fmt::Debug;

    /// One accumulator per chunk of `inputs` (chunk boundaries at `cuts`).
    fn partials<I: Clone, F: CombineFn<I>>(f: &F, inputs: &[I], cuts: &[usize]) -> Vec<F::Accumulator> {
        let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(inputs.len())).collect();
        bounds.push(0);
        bounds.push(inputs.len());
        bounds.sort_unstable();
        bounds
            .windows(2)
            .map(|w| {
                let mut acc = f.create_accumulator();
                for input in &inputs[w[0]..w[1]] {
                    f.add_input(&mut acc, input.clone());
                }
                acc
            })
            .collect()
    }

    fn fold_left<I, F: CombineFn<I>>(f: &F, accs: Vec<F::Accumulator>) -> F::Output {
        let mut total = f.create_accumulator();
        for acc in accs {
            f.merge_accumulators(&mut total, acc);
        }
        f.extract_output(&total)
    }

    /// Merges pairwise, as a balanced tree.
    fn fold_tree<I, F: CombineFn<I>>(f: &F, mut accs: Vec<F::Accumulator>) -> F::Output {
        while accs.len() > 1 {
            let mut next = Vec::with_capacity(accs.len().div_ceil(2));
            let mut iter = accs.into_iter();
            while let Some(mut a) = iter.next() {
                if let Some(b) = iter.next() {
                    f.merge_accumulators(&mut a, b);
                }
                next.push(a);
            }
            accs = next;
        }
        let acc = accs.pop().unwrap_or_else(|| f.create_accumulator());
        f.extract_output(&acc)
    }

    /// Asserts that `f` gives `expected` for `inputs` when combined in one accumulator, one
    /// accumulator per input (merged forwards, backwards and as a tree), chunked at `cuts`
    /// (merged forwards and backwards), and with inputs reversed.
    pub(crate) fn assert_grouping_invariant<I, F>(f: &F, inputs: &[I], cuts: &[usize], expected: &F::Output)
    where
        I: Clone,
        F: CombineFn<I>,
        F::Output: PartialEq + Debug,
    {
        let single = {
            let mut acc = f.create_accumulator();
            for input in inputs {
                f.add_input(&mut acc, input.clone());
            }
            f.extract_output(&acc)
        };
        assert_eq!(&single, expected, "single accumulator");

        let each: Vec<usize> = (1..inputs.len()).collect();
        assert_eq!(&fold_left(f, partials(f, inputs, &each)), expected, "one per input, forwards");
        let mut backwards = partials(f, inputs, &each);
        backwards.reverse();
        assert_eq!(&fold_left(f, backwards), expected, "one per input, backwards");
        assert_eq!(&fold_tree(f, partials(f, inputs, &each)), expected, "one per input, tree");

        assert_eq!(&fold_left(f, partials(f, inputs, cuts)), expected, "chunked, forwards");
        let mut backwards = partials(f, inputs, cuts);
        backwards.reverse();
        assert_eq!(&fold_tree(f, backwards), expected, "chunked, backwards tree");

        let reversed: Vec<I> = inputs.iter().rev().cloned().collect();
        assert_eq!(&fold_tree(f, partials(f, &reversed, cuts)), expected, "inputs reversed");
    }
}
