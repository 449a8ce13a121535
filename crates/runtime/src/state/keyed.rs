//! [`KeyedStateStore`]: per-key state of one operator on one worker, by key group.

use crate::key::{key_group, stable_hash};
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use serde::de::DeserializeOwned;
use serde::ser::SerializeSeq;
use serde::Serialize;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

/// One shard of a key group: its keys with their state. Each access hashes the key twice,
/// once each: the stable hash picks the key group and the shard, and `ahash` (randomly
/// keyed, so crafted keys cannot force collisions; several times faster than SipHash) finds
/// it in the shard's table with one probe, also when the key is absent and inserted.
type ShardTable<K, S> = HashTable<(K, S)>;

/// Shards per key group: the unit of copy-on-write. A write to a shard that a snapshot
/// still holds copies that shard only, so a snapshot in progress costs the worker at most
/// one shard copy (a sixteenth of a key group) per write, never a copy of everything.
const SHARDS: usize = 16;

/// A shard's table, owned by the store or shared with snapshot views.
enum Shard<K, S> {
    /// Only the store has it: written in place.
    Owned(ShardTable<K, S>),
    /// A snapshot view may hold it too: immutable; the first write takes it back (copying
    /// it if the view still holds it).
    Shared(Arc<ShardTable<K, S>>),
}

impl<K, S> Shard<K, S> {
    fn table(&self) -> &ShardTable<K, S> {
        match self {
            Shard::Owned(t) => t,
            Shard::Shared(t) => t,
        }
    }

    /// Shares the shard with a view (an O(1) move into an `Arc`); `None` if it is empty.
    fn share(&mut self) -> Option<Arc<ShardTable<K, S>>> {
        if self.table().is_empty() {
            return None;
        }
        if let Shard::Owned(t) = self {
            *self = Shard::Shared(Arc::new(std::mem::take(t)));
        }
        match self {
            Shard::Shared(t) => Some(t.clone()),
            Shard::Owned(_) => None,
        }
    }
}

impl<K: Clone, S: Clone> Shard<K, S> {
    /// The table for writing: a shared one is taken back, copied only if a view still
    /// holds it (counted in `copies`).
    fn table_mut(&mut self, copies: &mut u64) -> &mut ShardTable<K, S> {
        if let Shard::Shared(shared) = self {
            let shared = std::mem::take(shared);
            let table = Arc::try_unwrap(shared).unwrap_or_else(|still_viewed| {
                *copies += 1;
                (*still_viewed).clone()
            });
            *self = Shard::Owned(table);
        }
        match self {
            Shard::Owned(t) => t,
            // Not reached (taken back above); correct anyway.
            Shard::Shared(t) => Arc::make_mut(t),
        }
    }
}

impl<K: fmt::Debug, S: fmt::Debug> fmt::Debug for Shard<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if matches!(self, Shard::Owned(_)) { "owned" } else { "shared" };
        f.debug_struct("Shard").field("kind", &kind).field("keys", &self.table().len()).finish()
    }
}

/// The shards of one key group.
type Group<K, S> = Box<[Shard<K, S>; SHARDS]>;

fn new_group<K, S>() -> Group<K, S> {
    Box::new(std::array::from_fn(|_| Shard::Owned(HashTable::new())))
}

fn group_is_empty<K, S>(group: &Group<K, S>) -> bool {
    group.iter().all(|s| s.table().is_empty())
}

/// A key group's state could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error("key group {key_group}: {message}")]
pub struct StateCodecError {
    /// The key group.
    pub key_group: u32,
    /// What went wrong.
    pub message: String,
}

/// The state of every key an operator instance owns, grouped by key group.
///
/// Groups that changed since the last snapshot are tracked, so a checkpoint writes only
/// those (incremental checkpoints), and a restore can take any set of groups (rescaling
/// moves whole groups between workers).
///
/// [`view`](Self::view) takes an immutable snapshot of some groups in time proportional to
/// the number of groups, not keys (copy-on-write): the view can be encoded on another
/// thread while the store goes on changing.
///
/// ```
/// use millstream_runtime::state::KeyedStateStore;
/// let mut store: KeyedStateStore<String, u64> = KeyedStateStore::new(128);
/// *store.get_or_default("a".to_string()) += 2;
/// let changed = store.take_changed_groups();
/// assert_eq!(changed.len(), 1);
/// let view = store.view(changed.iter().copied());
/// *store.get_or_default("a".to_string()) += 1; // not in the view
/// let (group, bytes) = view.encode().next().unwrap().unwrap();
/// let mut restored: KeyedStateStore<String, u64> = KeyedStateStore::new(128);
/// restored.restore_group(group, &bytes).unwrap();
/// assert_eq!(restored.get(&"a".to_string()), Some(&2));
/// ```
#[derive(Debug)]
pub struct KeyedStateStore<K, S> {
    key_groups: u32,
    /// Indexed by key group; `None` until the group has a key.
    groups: Vec<Option<Group<K, S>>>,
    /// Hashes keys within a shard's table.
    hasher: ahash::RandomState,
    /// One bit per key group: changed since the last snapshot (a set bit costs no
    /// allocation and no ordered insert on the per-record path).
    changed: Vec<u64>,
    /// Shards copied because a view still held them when they were written.
    copies: u64,
}

/// The key group and shard of a key's stable hash.
fn place(hash: u64, key_groups: u32) -> (u32, usize) {
    // The group takes the hash modulo the group count; the shard takes bits the group
    // count (at most 2^32) does not decide, and that hashbrown does not use in a table of
    // this size either (those come from the separate ahash).
    (key_group(hash, key_groups), ((hash >> 40) as usize) % SHARDS)
}

impl<K: Hash + Eq + Clone, S: Clone> KeyedStateStore<K, S> {
    /// An empty store for a job with `key_groups` key groups.
    pub fn new(key_groups: u32) -> Self {
        let key_groups = key_groups.max(1);
        let n = key_groups as usize;
        KeyedStateStore {
            key_groups,
            groups: (0..n).map(|_| None).collect(),
            hasher: ahash::RandomState::new(),
            changed: vec![0; n.div_ceil(64)],
            copies: 0,
        }
    }

    /// The key group of `key`.
    pub fn key_group_of(&self, key: &K) -> u32 {
        key_group(stable_hash(key), self.key_groups)
    }

    /// The state of `key`, if any.
    pub fn get(&self, key: &K) -> Option<&S> {
        let (g, shard) = place(stable_hash(key), self.key_groups);
        let group = self.groups.get(g as usize)?.as_ref()?;
        group[shard].table().find(self.hasher.hash_one(key), |(k, _)| k == key).map(|(_, s)| s)
    }

    /// The state of `key` for change, if any; its group counts as changed.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut S> {
        let (g, shard) = place(stable_hash(key), self.key_groups);
        let hash = self.hasher.hash_one(key);
        let group = self.groups.get_mut(g as usize)?.as_mut()?;
        // Looked up before taking the shard back, so a miss never copies it.
        group[shard].table().find(hash, |(k, _)| k == key)?;
        mark(&mut self.changed, g);
        let (_, state) = group[shard].table_mut(&mut self.copies).find_mut(hash, |(k, _)| k == key)?;
        Some(state)
    }

    /// The state of `key`, created with `make` if absent; its group counts as changed.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> S) -> &mut S {
        // (Cloned again if absent: callers with a key to spare are rare off the hot path.)
        self.get_or_insert_with_ref(&key, make)
    }

    /// The state of `key`, created with `make` if absent (cloning the key only then); its
    /// group counts as changed. One probe of the shard's table, hit or miss.
    pub fn get_or_insert_with_ref(&mut self, key: &K, make: impl FnOnce() -> S) -> &mut S {
        let (g, shard) = place(stable_hash(key), self.key_groups);
        mark(&mut self.changed, g);
        let hasher = &self.hasher;
        // `key_group` is below `key_groups`, the vector's length.
        let group = self.groups[g as usize].get_or_insert_with(new_group);
        let table = group[shard].table_mut(&mut self.copies);
        let entry = table.entry(hasher.hash_one(key), |(k, _)| k == key, |(k, _)| hasher.hash_one(k));
        let slot = match entry {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => v.insert((key.clone(), make())).into_mut(),
        };
        &mut slot.1
    }

    /// Removes `key`'s state.
    pub fn remove(&mut self, key: &K) -> Option<S> {
        let (g, shard) = place(stable_hash(key), self.key_groups);
        let hash = self.hasher.hash_one(key);
        let slot = self.groups.get_mut(g as usize)?;
        let group = slot.as_mut()?;
        group[shard].table().find(hash, |(k, _)| k == key)?;
        let table = group[shard].table_mut(&mut self.copies);
        let (_, removed) = table.find_entry(hash, |(k, _)| k == key).ok()?.remove().0;
        if table.is_empty() && group_is_empty(group) {
            *slot = None;
        }
        mark(&mut self.changed, g);
        Some(removed)
    }

    /// Number of keys with state.
    pub fn len(&self) -> usize {
        self.groups.iter().flatten().flat_map(|g| g.iter()).map(|s| s.table().len()).sum()
    }

    /// Whether no key has state.
    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(Option::is_none)
    }

    /// Every key and its state.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &S)> {
        self.groups
            .iter()
            .flatten()
            .flat_map(|g| g.iter())
            .flat_map(|s| s.table().iter().map(|(k, s)| (k, s)))
    }

    /// The groups changed since the last call, in order; they count as unchanged after.
    pub fn take_changed_groups(&mut self) -> Vec<u32> {
        let mut out = Vec::new();
        for (i, word) in self.changed.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                out.push(i as u32 * 64 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        out
    }

    /// An immutable view of the given key groups as they are now, for encoding elsewhere
    /// (another thread) while this store goes on changing. Takes time proportional to the
    /// number of groups (each non-empty shard is shared, not copied); a later write to a
    /// shard the view still holds copies that shard.
    pub fn view(&mut self, groups: impl IntoIterator<Item = u32>) -> StateView<K, S> {
        let groups = groups
            .into_iter()
            .map(|g| {
                let shards = match self.groups.get_mut(g as usize).and_then(Option::as_mut) {
                    Some(group) => group.iter_mut().filter_map(Shard::share).collect(),
                    None => Vec::new(),
                };
                (g, shards)
            })
            .collect();
        StateView { groups }
    }

    /// How many shards writes have copied because a view still held them (the cost of
    /// copy-on-write, for statistics).
    pub fn shard_copies(&self) -> u64 {
        self.copies
    }
}

/// Sets `group`'s bit in a changed-groups bitset.
fn mark(changed: &mut [u64], group: u32) {
    if let Some(word) = changed.get_mut(group as usize / 64) {
        *word |= 1 << (group % 64);
    }
}

impl<K: Hash + Eq + Clone + Default, S: Default + Clone> KeyedStateStore<K, S> {
    /// The state of `key`, created empty if absent.
    pub fn get_or_default(&mut self, key: K) -> &mut S {
        self.get_or_insert_with(key, S::default)
    }
}

/// The entries of a key group's shards, serialized as one sequence of `(key, state)`: the
/// same bytes as a `Vec<(K, S)>` in bincode, whatever the sharding.
struct Entries<'a, K, S>(&'a [Arc<ShardTable<K, S>>]);

impl<K: Serialize, S: Serialize> Serialize for Entries<'_, K, S> {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let len = self.0.iter().map(|t| t.len()).sum();
        let mut seq = serializer.serialize_seq(Some(len))?;
        for (k, s) in self.0.iter().flat_map(|t| t.iter()) {
            seq.serialize_element(&(k, s))?;
        }
        seq.end()
    }
}

/// An immutable snapshot of some key groups of a [`KeyedStateStore`], made by
/// [`KeyedStateStore::view`]; `Send` when the keys and states are `Send + Sync`, so it can
/// be encoded on another thread.
pub struct StateView<K, S> {
    groups: Vec<(u32, SharedShards<K, S>)>,
}

/// The non-empty shards of one key group, shared with the store.
type SharedShards<K, S> = Vec<Arc<ShardTable<K, S>>>;

impl<K, S> StateView<K, S> {
    /// The key groups in the view, in the order given.
    pub fn groups(&self) -> impl Iterator<Item = u32> + '_ {
        self.groups.iter().map(|(g, _)| *g)
    }

    /// Number of keys in the view.
    pub fn len(&self) -> usize {
        self.groups.iter().flat_map(|(_, shards)| shards.iter()).map(|t| t.len()).sum()
    }

    /// Whether the view holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Serialize, S: Serialize> StateView<K, S> {
    /// Each group of the view, encoded as [`KeyedStateStore::encode_group`] encodes it,
    /// one at a time; the view's hold on a group ends once it is encoded.
    pub fn encode(self) -> impl Iterator<Item = Result<(u32, Vec<u8>), StateCodecError>> {
        self.groups.into_iter().map(|(group, shards)| {
            bincode::serialize(&Entries(&shards))
                .map(|bytes| (group, bytes))
                .map_err(|e| StateCodecError { key_group: group, message: e.to_string() })
        })
    }
}

impl<K, S> fmt::Debug for StateView<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateView").field("groups", &self.groups.len()).field("keys", &self.len()).finish()
    }
}

impl<K, S> KeyedStateStore<K, S>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned,
    S: Clone + Serialize + DeserializeOwned,
{
    /// The state of one key group, encoded (an empty group encodes as no entries).
    pub fn encode_group(&self, group: u32) -> Result<Vec<u8>, StateCodecError> {
        let entries: Vec<(&K, &S)> = self
            .groups
            .get(group as usize)
            .and_then(Option::as_ref)
            .map(|g| g.iter().flat_map(|s| s.table().iter()).map(|(k, s)| (k, s)).collect())
            .unwrap_or_default();
        bincode::serialize(&entries).map_err(|e| StateCodecError { key_group: group, message: e.to_string() })
    }

    /// Replaces one key group's state with an encoded one.
    pub fn restore_group(&mut self, group: u32, bytes: &[u8]) -> Result<(), StateCodecError> {
        let entries: Vec<(K, S)> = bincode::deserialize(bytes)
            .map_err(|e| StateCodecError { key_group: group, message: e.to_string() })?;
        let key_groups = self.key_groups;
        let slot = self.groups.get_mut(group as usize).ok_or_else(|| StateCodecError {
            key_group: group,
            message: format!("no such key group: the job has {key_groups} key groups"),
        })?;
        *slot = if entries.is_empty() {
            None
        } else {
            let mut shards: Group<K, S> = new_group();
            for (k, s) in entries {
                let (_, shard) = place(stable_hash(&k), key_groups);
                let hash = self.hasher.hash_one(&k);
                if let Shard::Owned(table) = &mut shards[shard] {
                    // A restored group holds each key once: its snapshot came from a table.
                    table.insert_unique(hash, (k, s), |(k, _)| self.hasher.hash_one(k));
                }
            }
            Some(shards)
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_changed_groups_and_round_trips_them() {
        let mut store: KeyedStateStore<u64, Vec<u32>> = KeyedStateStore::new(8);
        for k in 0..100u64 {
            store.get_or_default(k).push(k as u32);
        }
        let changed = store.take_changed_groups();
        assert!(!changed.is_empty() && changed.len() <= 8);
        assert!(store.take_changed_groups().is_empty());
        if let Some(v) = store.get_mut(&7) {
            v.push(1000);
        }
        let g7 = store.key_group_of(&7);
        assert_eq!(store.take_changed_groups(), vec![g7]);

        let mut restored: KeyedStateStore<u64, Vec<u32>> = KeyedStateStore::new(8);
        for g in 0..8 {
            restored.restore_group(g, &store.encode_group(g).unwrap()).unwrap();
        }
        assert_eq!(restored.len(), 100);
        assert_eq!(restored.get(&7), Some(&vec![7, 1000]));
        assert!(restored.restore_group(0, b"garbage").is_err());
    }

    #[test]
    fn a_view_keeps_the_state_it_was_taken_at_while_the_store_changes() {
        let mut store: KeyedStateStore<u64, Vec<u32>> = KeyedStateStore::new(8);
        for k in 0..1000u64 {
            store.get_or_default(k).push(k as u32);
        }
        let before: Vec<Vec<u8>> = (0..8).map(|g| store.encode_group(g).unwrap()).collect();
        let view = store.view(0..8);
        assert_eq!(view.len(), 1000);
        // Change, add and remove keys in every group after the view was taken.
        for k in 0..1000u64 {
            if let Some(v) = store.get_mut(&k) {
                v.push(7);
            }
        }
        for k in 1000..1100u64 {
            store.get_or_default(k).push(1);
        }
        for k in 0..100u64 {
            store.remove(&k);
        }
        assert!(store.shard_copies() > 0, "written shards were copied, not changed in place");
        let encoded: Vec<(u32, Vec<u8>)> = view.encode().map(Result::unwrap).collect();
        assert_eq!(encoded.iter().map(|(g, _)| *g).collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
        for (g, bytes) in &encoded {
            assert_eq!(bytes, &before[*g as usize], "group {g} leaked later writes into the view");
        }
        assert_eq!(store.len(), 1000);
        assert_eq!(store.get(&500), Some(&vec![500, 7]));
        // With the view gone, writes take the shards back without copying.
        let copies = store.shard_copies();
        for k in 100..1100u64 {
            store.get_or_default(k).push(2);
        }
        assert_eq!(store.shard_copies(), copies);
    }

    #[test]
    fn a_view_of_groups_without_keys_encodes_them_empty() {
        let mut store: KeyedStateStore<u64, u8> = KeyedStateStore::new(4);
        *store.get_or_default(1) = 1;
        let g = store.key_group_of(&1);
        store.remove(&1);
        let encoded: Vec<(u32, Vec<u8>)> = store.view([g]).encode().map(Result::unwrap).collect();
        assert_eq!(encoded, vec![(g, bincode::serialize(&Vec::<(u64, u8)>::new()).unwrap())]);
    }

    /// One step of the property test below.
    #[derive(Clone, Debug)]
    enum Op {
        Put(u16, u32),
        Add(u16, u32),
        Remove(u16),
        /// Take a view of every group (a snapshot).
        View,
        /// Encode the oldest view still held, and check it against the state it was taken at.
        Encode,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0u16..300, any::<u32>()).prop_map(|(k, v)| Op::Put(k, v)),
            4 => (0u16..300, any::<u32>()).prop_map(|(k, v)| Op::Add(k, v)),
            2 => (0u16..300).prop_map(Op::Remove),
            1 => Just(Op::View),
            1 => Just(Op::Encode),
        ]
    }

    proptest::proptest! {
        /// Random interleavings of updates, views (snapshots) and encodings of the views
        /// held: every view, encoded whenever, restores exactly the state as of its taking;
        /// the store always holds the latest state.
        #[test]
        fn views_are_consistent_snapshots_under_any_interleaving(ops in proptest::collection::vec(op(), 1..400)) {
            use std::collections::{BTreeMap, VecDeque};
            const GROUPS: u32 = 8;
            let mut store: KeyedStateStore<u16, u32> = KeyedStateStore::new(GROUPS);
            let mut model: BTreeMap<u16, u32> = BTreeMap::new();
            let mut views: VecDeque<(StateView<u16, u32>, BTreeMap<u16, u32>)> = VecDeque::new();
            let check = |view: StateView<u16, u32>, expected: &BTreeMap<u16, u32>| {
                let mut restored: KeyedStateStore<u16, u32> = KeyedStateStore::new(GROUPS);
                for encoded in view.encode() {
                    let (g, bytes) = encoded.unwrap();
                    restored.restore_group(g, &bytes).unwrap();
                }
                let got: BTreeMap<u16, u32> = restored.iter().map(|(k, v)| (*k, *v)).collect();
                proptest::prop_assert_eq!(&got, expected);
                Ok(())
            };
            for op in ops {
                match op {
                    Op::Put(k, v) => {
                        *store.get_or_default(k) = v;
                        model.insert(k, v);
                    }
                    Op::Add(k, v) => {
                        if let Some(s) = store.get_mut(&k) {
                            *s = s.wrapping_add(v);
                        }
                        if let Some(s) = model.get_mut(&k) {
                            *s = s.wrapping_add(v);
                        }
                    }
                    Op::Remove(k) => {
                        proptest::prop_assert_eq!(store.remove(&k), model.remove(&k));
                    }
                    Op::View => views.push_back((store.view(0..GROUPS), model.clone())),
                    Op::Encode => {
                        if let Some((view, expected)) = views.pop_front() {
                            check(view, &expected)?;
                        }
                    }
                }
            }
            for (view, expected) in views {
                check(view, &expected)?;
            }
            let now: BTreeMap<u16, u32> = store.iter().map(|(k, v)| (*k, *v)).collect();
            proptest::prop_assert_eq!(now, model);
        }
    }

    #[test]
    fn removing_the_last_key_drops_the_group() {
        let mut store: KeyedStateStore<String, u8> = KeyedStateStore::new(4);
        *store.get_or_default("x".into()) = 1;
        assert_eq!(store.remove(&"x".to_string()), Some(1));
        assert!(store.is_empty());
        let g = store.key_group_of(&"x".to_string());
        assert_eq!(store.encode_group(g).unwrap(), bincode::serialize(&Vec::<(String, u8)>::new()).unwrap());
    }
}
