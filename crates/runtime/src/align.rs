//! Epoch alignment for stateful operators: records of a later epoch that arrive before an
//! earlier epoch is complete at the operator wait, so that a snapshot taken between two
//! epochs holds exactly the effect of the records of the epochs before it (the cut a
//! checkpoint needs). Waiting records are still in flight for the watermark: the input
//! watermark an operator acts on is held back to the least watermark they travelled at.

use crate::time::FrontierTime;
use millstream_model::{Timestamp, WindowedValue};
use std::collections::BTreeMap;

/// Arrived batches waiting for their epoch, by epoch.
pub(crate) type EpochStash<T> = BTreeMap<u64, Vec<Vec<WindowedValue<T>>>>;

/// The least epoch and watermark of an input capability's stamp.
pub(crate) fn stamp_of<'a>(times: impl IntoIterator<Item = &'a FrontierTime>) -> (u64, i64) {
    times.into_iter().fold((u64::MAX, i64::MAX), |(e, w), t| (e.min(t.outer), w.min(t.inner)))
}

/// Batches waiting by epoch, with the least watermark each epoch's batches carried.
pub(crate) struct EpochAligner<T> {
    stash: EpochStash<T>,
    /// Per stashed epoch: the least watermark its batches travelled at.
    marks: BTreeMap<u64, i64>,
}

impl<T> Default for EpochAligner<T> {
    fn default() -> Self {
        EpochAligner { stash: BTreeMap::new(), marks: BTreeMap::new() }
    }
}

impl<T> EpochAligner<T> {
    /// Takes a batch that arrived stamped `(epoch, watermark)`.
    pub(crate) fn push(&mut self, (epoch, watermark): (u64, i64), data: &mut Vec<WindowedValue<T>>) {
        let m = self.marks.entry(epoch).or_insert(i64::MAX);
        *m = (*m).min(watermark);
        self.stash.entry(epoch).or_default().push(std::mem::take(data));
    }

    /// The input watermark to act on: the frontier's, held back by waiting records.
    pub(crate) fn input_watermark(&self, frontier_watermark: Timestamp) -> Timestamp {
        self.marks.values().min().map_or(frontier_watermark, |m| Timestamp(*m).min(frontier_watermark))
    }

    /// The batches of the earliest waiting epoch if it is at most `current` (the input's
    /// least incomplete epoch; `u64::MAX` once the input is complete). Their watermark no
    /// longer holds [`input_watermark`](Self::input_watermark) back: process them at the
    /// input watermark taken before popping.
    pub(crate) fn pop_ready(&mut self, current: u64) -> Option<(u64, Vec<Vec<WindowedValue<T>>>)> {
        let entry = self.stash.first_entry()?;
        if *entry.key() > current {
            return None;
        }
        let epoch = *entry.key();
        self.marks.remove(&epoch);
        Some((epoch, entry.remove()))
    }

    /// Drops everything waiting (the job stops without flushing).
    pub(crate) fn clear(&mut self) {
        self.stash.clear();
        self.marks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(v: i64) -> Vec<WindowedValue<i64>> {
        vec![WindowedValue::in_global_window(v, Timestamp(v))]
    }

    #[test]
    fn releases_epochs_in_order_and_holds_the_watermark() {
        let mut a = EpochAligner::default();
        a.push((3, 30), &mut batch(3));
        a.push((2, 20), &mut batch(2));
        a.push((2, 25), &mut batch(2));
        assert_eq!(a.input_watermark(Timestamp(100)), Timestamp(20));
        assert!(a.pop_ready(1).is_none());
        let (e, batches) = a.pop_ready(2).expect("epoch 2 is ready");
        assert_eq!((e, batches.len()), (2, 2));
        assert_eq!(a.input_watermark(Timestamp(100)), Timestamp(30));
        assert!(a.pop_ready(2).is_none());
        assert_eq!(a.pop_ready(u64::MAX).map(|(e, _)| e), Some(3));
        assert_eq!(a.input_watermark(Timestamp(100)), Timestamp(100));
    }
}
