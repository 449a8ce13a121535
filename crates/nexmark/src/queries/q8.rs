//! Query 8, monitor new users: persons who opened an auction in the tumbling window in
//! which they registered.

use super::common::window_start;
use crate::answer::{write_fields, Field, ResultRow, RowWriter};
use crate::model::Event;
use millstream_model::{CombineFn, Duration, FixedWindows};
use millstream_runtime::{DoFn, PCollection, ProcessContext, UserError, Window};
use serde::{Deserialize, Serialize};

/// Q8's window size, milliseconds.
pub const Q8_WINDOW_MS: i64 = 10_000;

/// A q8 result row, rendered `person_id|name|window_start`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Q8Row {
    /// The person's id.
    pub person_id: i64,
    /// The person's name.
    pub name: String,
    /// The window's start, epoch milliseconds.
    pub window_start: i64,
}

impl ResultRow for Q8Row {
    fn write_row<W: RowWriter + ?Sized>(&self, w: &mut W) {
        write_fields(
            w,
            &[Field::Int(self.person_id), Field::Text(&self.name), Field::Int(self.window_start)],
        );
    }
}

/// The windowed join of persons with the sellers of auctions, per person id and window,
/// as a combine (only existence matters on the auction side): the distinct names the
/// person registered with, and whether they opened an auction.
#[derive(Clone, Copy, Debug, Default)]
struct NewSellerFn;

impl CombineFn<Option<String>> for NewSellerFn {
    type Accumulator = (Vec<String>, bool);
    type Output = (Vec<String>, bool);

    fn create_accumulator(&self) -> (Vec<String>, bool) {
        (Vec::new(), false)
    }

    fn add_input(&self, acc: &mut (Vec<String>, bool), input: Option<String>) {
        match input {
            // Person ids are unique, so this is almost always one name.
            Some(name) => {
                if !acc.0.contains(&name) {
                    acc.0.push(name);
                }
            }
            None => acc.1 = true,
        }
    }

    fn merge_accumulators(&self, acc: &mut (Vec<String>, bool), other: (Vec<String>, bool)) {
        acc.1 |= other.1;
        for name in other.0 {
            self.add_input(acc, Some(name));
        }
    }

    fn extract_output(&self, acc: &(Vec<String>, bool)) -> (Vec<String>, bool) {
        acc.clone()
    }
}

/// Query 8: tumbling 10 s windows; every person who registered in a window and opened at
/// least one auction (as seller) in the same window, once per window.
///
/// Persons (id, name) and auctions (seller) meet in one lifted combine per person id and
/// window, which is a join when only the existence of the auction matters.
pub fn q8(events: &PCollection<Event>) -> PCollection<Q8Row> {
    events
        .flat_map(|e: Event| match e {
            Event::Person(p) => Some((p.id, Some(p.name))),
            Event::Auction(a) => Some((a.seller, None)),
            Event::Bid(_) => None,
        })
        .window_into(Window::into(FixedWindows::of(Duration::from_millis(Q8_WINDOW_MS))))
        .combine_per_key(NewSellerFn)
        .par_do("Q8Rows", NewSellerRows)
}

/// The rows of the persons who opened an auction in their registration window.
#[derive(Clone, Copy, Debug)]
struct NewSellerRows;

impl DoFn<(i64, (Vec<String>, bool))> for NewSellerRows {
    type Output = Q8Row;

    fn process(
        &mut self,
        (person_id, (names, sold)): (i64, (Vec<String>, bool)),
        ctx: &mut ProcessContext<'_, Q8Row>,
    ) -> Result<(), UserError> {
        if sold {
            let start = window_start(ctx.window());
            for name in names {
                ctx.output(Q8Row { person_id, name, window_start: start });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queries::common::tests::combine_in_parts;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_join_combine_does_not_depend_on_grouping(
            inputs in proptest::collection::vec(proptest::option::of(0u8..3), 0..20),
            cuts in proptest::collection::vec(0usize..20, 0..4),
        ) {
            let inputs: Vec<Option<String>> = inputs.into_iter().map(|o| o.map(|n| format!("n{n}"))).collect();
            let (mut names, sold) = combine_in_parts(&NewSellerFn, &inputs, &cuts);
            names.sort();
            let mut expected: Vec<String> = inputs.iter().flatten().cloned().collect();
            expected.sort();
            expected.dedup();
            prop_assert_eq!(names, expected);
            prop_assert_eq!(sold, inputs.iter().any(Option::is_none));
        }
    }
}
