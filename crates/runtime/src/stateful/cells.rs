//! State cells: the building blocks of a [`StatefulDoFn`](super::StatefulDoFn)'s state.
//!
//! A DoFn's state is a plain struct of cells; the runtime keeps one instance per key and
//! window, in the operator's keyed state store. Every cell is `Default` (empty), `Clone`,
//! `Debug` and serializable, so a state struct can derive the same and be checkpointed
//! with its key.

use millstream_model::{CombineFn, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A single value, possibly absent (Beam's `ValueState`).
///
/// ```
/// use millstream_runtime::stateful::ValueState;
/// let mut count: ValueState<u64> = ValueState::default();
/// assert_eq!(count.read(), None);
/// count.write(count.read().copied().unwrap_or(0) + 1);
/// assert_eq!(count.read(), Some(&1));
/// count.clear();
/// assert!(count.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueState<T> {
    value: Option<T>,
}

impl<T> Default for ValueState<T> {
    fn default() -> Self {
        ValueState { value: None }
    }
}

impl<T> ValueState<T> {
    /// The value, if one was written since the last clear.
    pub fn read(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// The value for change, if any.
    pub fn read_mut(&mut self) -> Option<&mut T> {
        self.value.as_mut()
    }

    /// Replaces the value.
    pub fn write(&mut self, value: T) {
        self.value = Some(value);
    }

    /// Removes the value and returns it.
    pub fn take(&mut self) -> Option<T> {
        self.value.take()
    }

    /// Removes the value.
    pub fn clear(&mut self) {
        self.value = None;
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.value.is_none()
    }
}

/// An unordered collection that is only appended to and read whole (Beam's `BagState`).
/// Values are kept in the order they were added.
///
/// ```
/// use millstream_runtime::stateful::BagState;
/// let mut buffer: BagState<&str> = BagState::default();
/// buffer.add("a");
/// buffer.add("b");
/// assert_eq!(buffer.read(), &["a", "b"]);
/// assert_eq!(buffer.take(), vec!["a", "b"]);
/// assert!(buffer.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BagState<T> {
    items: Vec<T>,
}

impl<T> Default for BagState<T> {
    fn default() -> Self {
        BagState { items: Vec::new() }
    }
}

impl<T> BagState<T> {
    /// Adds a value.
    pub fn add(&mut self, value: T) {
        self.items.push(value);
    }

    /// Every value, in the order added.
    pub fn read(&self) -> &[T] {
        &self.items
    }

    /// Iterates over the values, in the order added.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// Removes every value and returns them, in the order added.
    pub fn take(&mut self) -> Vec<T> {
        std::mem::take(&mut self.items)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the bag is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

impl<T> Extend<T> for BagState<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        self.items.extend(iter);
    }
}

impl<'a, T> IntoIterator for &'a BagState<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// A map from keys to values (Beam's `MapState`). Iteration is in key order, so what a
/// DoFn does with it does not depend on hashing.
///
/// ```
/// use millstream_runtime::stateful::MapState;
/// let mut last_seen: MapState<String, i64> = MapState::default();
/// last_seen.put("alice".to_string(), 10);
/// last_seen.put("bob".to_string(), 12);
/// assert_eq!(last_seen.put("alice".to_string(), 15), Some(10));
/// assert_eq!(last_seen.get(&"alice".to_string()), Some(&15));
/// let keys: Vec<&String> = last_seen.iter().map(|(k, _)| k).collect();
/// assert_eq!(keys, ["alice", "bob"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize, V: Serialize",
    deserialize = "K: Ord + Deserialize<'de>, V: Deserialize<'de>"
))]
pub struct MapState<K, V> {
    map: BTreeMap<K, V>,
}

impl<K, V> Default for MapState<K, V> {
    fn default() -> Self {
        MapState { map: BTreeMap::new() }
    }
}

impl<K: Ord, V> MapState<K, V> {
    /// Sets `key` to `value`; returns the previous value.
    pub fn put(&mut self, key: K, value: V) -> Option<V> {
        self.map.insert(key, value)
    }

    /// Sets `key` to `value` unless it has a value already; returns the value it has after.
    pub fn put_if_absent(&mut self, key: K, value: V) -> &mut V {
        self.map.entry(key).or_insert(value)
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    /// The value of `key`, for change.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key)
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> std::collections::btree_map::Iter<'_, K, V> {
        self.map.iter()
    }

    /// Every key, in order.
    pub fn keys(&self) -> std::collections::btree_map::Keys<'_, K, V> {
        self.map.keys()
    }

    /// Every value, in key order.
    pub fn values(&self) -> std::collections::btree_map::Values<'_, K, V> {
        self.map.values()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// An aggregate kept as a [`CombineFn`]'s accumulator (Beam's `CombiningState`): inputs
/// are folded in as they are added, so the state stays as small as the accumulator.
///
/// The CombineFn is passed to each call rather than stored, so the cell stays plain data;
/// pass the same one every time. Reading an empty cell gives the output of a fresh
/// accumulator (0 for a sum).
///
/// ```
/// use millstream_model::combiners::Sum;
/// use millstream_runtime::stateful::CombiningState;
/// let mut total: CombiningState<i64> = CombiningState::default();
/// assert_eq!(total.read(&Sum), 0);
/// total.add(&Sum, 3);
/// total.add(&Sum, 4);
/// assert_eq!(total.read(&Sum), 7);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CombiningState<A> {
    accumulator: Option<A>,
}

impl<A> Default for CombiningState<A> {
    fn default() -> Self {
        CombiningState { accumulator: None }
    }
}

impl<A: fmt::Debug> fmt::Debug for CombiningState<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CombiningState").field("accumulator", &self.accumulator).finish()
    }
}

impl<A> CombiningState<A> {
    /// Folds `input` into the accumulator.
    pub fn add<I, C: CombineFn<I, Accumulator = A>>(&mut self, combine_fn: &C, input: I) {
        let acc = self.accumulator.get_or_insert_with(|| combine_fn.create_accumulator());
        combine_fn.add_input(acc, input);
    }

    /// Merges a whole accumulator in (for example one built elsewhere).
    pub fn add_accumulator<I, C: CombineFn<I, Accumulator = A>>(&mut self, combine_fn: &C, other: A) {
        match self.accumulator.as_mut() {
            Some(acc) => combine_fn.merge_accumulators(acc, other),
            None => self.accumulator = Some(other),
        }
    }

    /// The combined output of everything added since the last clear.
    pub fn read<I, C: CombineFn<I, Accumulator = A>>(&self, combine_fn: &C) -> C::Output {
        match &self.accumulator {
            Some(acc) => combine_fn.extract_output(acc),
            None => combine_fn.extract_output(&combine_fn.create_accumulator()),
        }
    }

    /// The accumulator, if anything was added since the last clear.
    pub fn accumulator(&self) -> Option<&A> {
        self.accumulator.as_ref()
    }

    /// Whether nothing was added since the last clear.
    pub fn is_empty(&self) -> bool {
        self.accumulator.is_none()
    }

    /// Forgets everything added.
    pub fn clear(&mut self) {
        self.accumulator = None;
    }
}

/// Values ordered by a timestamp, read and cleared by ranges of time (Beam's
/// `OrderedListState`): the tool for sorting out-of-order events, for example to release
/// them in event-time order once the watermark passes them. Values with the same
/// timestamp keep the order they were added in.
///
/// Ranges are half-open: `[from, to)`.
///
/// ```
/// use millstream_model::Timestamp;
/// use millstream_runtime::stateful::OrderedListState;
/// let mut events: OrderedListState<&str> = OrderedListState::default();
/// events.add(Timestamp(30), "c");
/// events.add(Timestamp(10), "a");
/// events.add(Timestamp(20), "b");
/// let early: Vec<_> = events.read_range(Timestamp(0), Timestamp(25)).collect();
/// assert_eq!(early, vec![(Timestamp(10), &"a"), (Timestamp(20), &"b")]);
/// events.clear_range(Timestamp(0), Timestamp(25));
/// assert_eq!(events.len(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderedListState<T> {
    entries: BTreeMap<Timestamp, Vec<T>>,
}

impl<T> Default for OrderedListState<T> {
    fn default() -> Self {
        OrderedListState { entries: BTreeMap::new() }
    }
}

impl<T> OrderedListState<T> {
    /// Adds `value` at `timestamp`.
    pub fn add(&mut self, timestamp: Timestamp, value: T) {
        self.entries.entry(timestamp).or_default().push(value);
    }

    /// Every value with its timestamp, in timestamp order.
    pub fn read(&self) -> impl Iterator<Item = (Timestamp, &T)> + '_ {
        self.entries.iter().flat_map(|(t, vs)| vs.iter().map(move |v| (*t, v)))
    }

    /// The values with `from <= timestamp < to`, in timestamp order.
    pub fn read_range(&self, from: Timestamp, to: Timestamp) -> impl Iterator<Item = (Timestamp, &T)> + '_ {
        let range = if from < to { Some(self.entries.range(from..to)) } else { None };
        range.into_iter().flatten().flat_map(|(t, vs)| vs.iter().map(move |v| (*t, v)))
    }

    /// Removes the values with `from <= timestamp < to` and returns them, in timestamp
    /// order.
    pub fn take_range(&mut self, from: Timestamp, to: Timestamp) -> Vec<(Timestamp, T)> {
        if from >= to {
            return Vec::new();
        }
        let mut tail = self.entries.split_off(&from);
        let mut rest = tail.split_off(&to);
        self.entries.append(&mut rest);
        tail.into_iter().flat_map(|(t, vs)| vs.into_iter().map(move |v| (t, v))).collect()
    }

    /// Removes the values with `from <= timestamp < to`.
    pub fn clear_range(&mut self, from: Timestamp, to: Timestamp) {
        if from >= to {
            return;
        }
        let mut tail = self.entries.split_off(&from);
        let mut rest = tail.split_off(&to);
        self.entries.append(&mut rest);
    }

    /// The earliest timestamp held, if any.
    pub fn first_timestamp(&self) -> Option<Timestamp> {
        self.entries.keys().next().copied()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.entries.values().map(Vec::len).sum()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use millstream_model::combiners::{Count, Max, Mean, Sum};
    use millstream_model::ToList;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(v: &T) -> T {
        bincode::deserialize(&bincode::serialize(v).expect("encode")).expect("decode")
    }

    #[test]
    fn value_state_reads_writes_and_clears() {
        let mut v: ValueState<String> = ValueState::default();
        assert!(v.is_empty());
        v.write("a".into());
        v.write("b".into());
        assert_eq!(v.read().map(String::as_str), Some("b"));
        if let Some(s) = v.read_mut() {
            s.push('!');
        }
        assert_eq!(round_trip(&v), v);
        assert_eq!(v.take().as_deref(), Some("b!"));
        assert!(v.is_empty());
        v.write("c".into());
        v.clear();
        assert_eq!(v.read(), None);
    }

    #[test]
    fn bag_state_keeps_insertion_order() {
        let mut b: BagState<i32> = BagState::default();
        b.add(3);
        b.add(1);
        b.extend([2, 2]);
        assert_eq!(b.read(), &[3, 1, 2, 2]);
        assert_eq!(b.iter().sum::<i32>(), 8);
        assert_eq!((&b).into_iter().count(), 4);
        assert_eq!(b.len(), 4);
        assert_eq!(round_trip(&b), b);
        b.clear();
        assert!(b.is_empty());
    }

    #[test]
    fn map_state_puts_gets_removes_in_key_order() {
        let mut m: MapState<String, u32> = MapState::default();
        assert_eq!(m.put("b".into(), 2), None);
        assert_eq!(m.put("a".into(), 1), None);
        assert_eq!(m.put("c".into(), 3), None);
        assert_eq!(m.put("b".into(), 20), Some(2));
        assert_eq!(*m.put_if_absent("a".into(), 100), 1);
        assert_eq!(*m.put_if_absent("d".into(), 4), 4);
        if let Some(v) = m.get_mut(&"c".to_string()) {
            *v += 1;
        }
        let entries: Vec<(&str, u32)> = m.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(entries, vec![("a", 1), ("b", 20), ("c", 4), ("d", 4)]);
        assert_eq!(m.remove(&"b".to_string()), Some(20));
        assert_eq!(m.remove(&"zz".to_string()), None);
        assert!(!m.contains_key(&"b".to_string()));
        assert_eq!(m.len(), 3);
        assert_eq!(m.keys().cloned().collect::<Vec<_>>(), vec!["a", "c", "d"]);
        assert_eq!(m.values().sum::<u32>(), 9);
        assert_eq!(round_trip(&m), m);
        m.clear();
        assert!(m.is_empty());
    }

    #[test]
    fn combining_state_folds_inputs_through_the_combine_fn() {
        let mut sum: CombiningState<i64> = CombiningState::default();
        assert!(sum.is_empty());
        assert_eq!(sum.read(&Sum), 0, "an empty cell reads as a fresh accumulator");
        for x in [1, 2, 3] {
            sum.add(&Sum, x);
        }
        assert_eq!(sum.read(&Sum), 6);
        sum.add_accumulator(&Sum, 10);
        assert_eq!(sum.read(&Sum), 16);
        assert_eq!(sum.accumulator(), Some(&16));
        assert_eq!(round_trip(&sum), sum);
        sum.clear();
        assert_eq!(sum.read(&Sum), 0);

        let mut mean: CombiningState<(f64, u64)> = CombiningState::default();
        assert_eq!(mean.read::<i64, _>(&Mean), None);
        mean.add(&Mean, 2i64);
        mean.add(&Mean, 4i64);
        assert_eq!(mean.read::<i64, _>(&Mean), Some(3.0));

        let mut max: CombiningState<Option<String>> = CombiningState::default();
        max.add(&Max, "pear".to_string());
        max.add(&Max, "apple".to_string());
        assert_eq!(max.read(&Max), Some("pear".to_string()));

        let mut count: CombiningState<u64> = CombiningState::default();
        count.add(&Count, "x");
        count.add(&Count, "y");
        assert_eq!(count.read::<&str, _>(&Count), 2);

        let mut list: CombiningState<Vec<u8>> = CombiningState::default();
        list.add(&ToList, 1u8);
        list.add_accumulator(&ToList, vec![2, 3]);
        assert_eq!(list.read(&ToList), vec![1, 2, 3]);
    }

    #[test]
    fn ordered_list_state_reads_and_clears_ranges_in_timestamp_order() {
        let mut l: OrderedListState<&str> = OrderedListState::default();
        assert!(l.is_empty());
        l.add(Timestamp(50), "e");
        l.add(Timestamp(10), "a");
        l.add(Timestamp(30), "c1");
        l.add(Timestamp(20), "b");
        l.add(Timestamp(30), "c2");
        assert_eq!(l.len(), 5);
        assert_eq!(l.first_timestamp(), Some(Timestamp(10)));
        let all: Vec<&str> = l.read().map(|(_, v)| *v).collect();
        assert_eq!(all, vec!["a", "b", "c1", "c2", "e"]);
        // Half-open: 30 is in [20, 31) but 50 is not in [20, 50).
        let mid: Vec<(Timestamp, &str)> =
            l.read_range(Timestamp(20), Timestamp(50)).map(|(t, v)| (t, *v)).collect();
        assert_eq!(mid, vec![(Timestamp(20), "b"), (Timestamp(30), "c1"), (Timestamp(30), "c2")]);
        assert_eq!(l.read_range(Timestamp(40), Timestamp(20)).count(), 0, "an empty range reads nothing");
        let owned: OrderedListState<String> = {
            let mut o = OrderedListState::default();
            l.read().for_each(|(t, v)| o.add(t, v.to_string()));
            o
        };
        assert_eq!(round_trip(&owned), owned);

        l.clear_range(Timestamp(20), Timestamp(30));
        let rest: Vec<&str> = l.read().map(|(_, v)| *v).collect();
        assert_eq!(rest, vec!["a", "c1", "c2", "e"]);
        l.clear_range(Timestamp(60), Timestamp(0));
        assert_eq!(l.len(), 4, "an empty range clears nothing");

        let taken = l.take_range(Timestamp::MIN, Timestamp(31));
        assert_eq!(taken, vec![(Timestamp(10), "a"), (Timestamp(30), "c1"), (Timestamp(30), "c2")]);
        assert_eq!(l.read().collect::<Vec<_>>(), vec![(Timestamp(50), &"e")]);
        l.clear();
        assert!(l.is_empty());
    }

    #[test]
    fn a_state_struct_of_cells_derives_everything_it_needs() {
        #[derive(Default, Clone, Debug, Serialize, Deserialize)]
        struct MyState {
            count: ValueState<u64>,
            buffer: BagState<String>,
            by_user: MapState<String, i64>,
            total: CombiningState<i64>,
            ordered: OrderedListState<i64>,
        }
        let mut s = MyState::default();
        s.count.write(1);
        s.buffer.add("x".into());
        s.by_user.put("u".into(), 1);
        s.total.add(&Sum, 5i64);
        s.ordered.add(Timestamp(1), 7);
        let back = round_trip(&s);
        assert_eq!(back.count.read(), Some(&1));
        assert_eq!(back.buffer.read(), &["x".to_string()]);
        assert_eq!(back.by_user.get(&"u".to_string()), Some(&1));
        assert_eq!(back.total.read(&Sum), 5);
        assert_eq!(back.ordered.len(), 1);
    }
}
