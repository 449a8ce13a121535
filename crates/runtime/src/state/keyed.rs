//! [`KeyedStateStore`]: per-key state of one operator on one worker, by key group.

use crate::key::{key_group, stable_hash};
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::hash::Hash;

/// The keys of one key group with their state. Each access hashes the key twice, once
/// each: the stable hash picks the key group, and `ahash` (randomly keyed, so crafted keys
/// cannot force collisions; several times faster than SipHash) finds it in the group's
/// table with one probe, also when the key is absent and inserted.
type GroupTable<K, S> = HashTable<(K, S)>;

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
/// ```
/// use millstream_runtime::state::KeyedStateStore;
/// let mut store: KeyedStateStore<String, u64> = KeyedStateStore::new(128);
/// *store.get_or_default("a".to_string()) += 2;
/// let changed = store.take_changed_groups();
/// assert_eq!(changed.len(), 1);
/// let bytes = store.encode_group(changed[0]).unwrap();
/// let mut restored: KeyedStateStore<String, u64> = KeyedStateStore::new(128);
/// restored.restore_group(changed[0], &bytes).unwrap();
/// assert_eq!(restored.get(&"a".to_string()), Some(&2));
/// ```
#[derive(Debug)]
pub struct KeyedStateStore<K, S> {
    key_groups: u32,
    /// Indexed by key group; `None` until the group has a key.
    groups: Vec<Option<GroupTable<K, S>>>,
    /// Hashes keys within a group's table.
    hasher: ahash::RandomState,
    /// One bit per key group: changed since the last snapshot (a set bit costs no
    /// allocation and no ordered insert on the per-record path).
    changed: Vec<u64>,
}

impl<K: Hash + Eq + Clone, S> KeyedStateStore<K, S> {
    /// An empty store for a job with `key_groups` key groups.
    pub fn new(key_groups: u32) -> Self {
        let key_groups = key_groups.max(1);
        let n = key_groups as usize;
        KeyedStateStore {
            key_groups,
            groups: (0..n).map(|_| None).collect(),
            hasher: ahash::RandomState::new(),
            changed: vec![0; n.div_ceil(64)],
        }
    }

    /// The key group of `key`.
    pub fn key_group_of(&self, key: &K) -> u32 {
        key_group(stable_hash(key), self.key_groups)
    }

    /// The state of `key`, if any.
    pub fn get(&self, key: &K) -> Option<&S> {
        let table = self.groups.get(self.key_group_of(key) as usize)?.as_ref()?;
        table.find(self.hasher.hash_one(key), |(k, _)| k == key).map(|(_, s)| s)
    }

    /// The state of `key` for change, if any; its group counts as changed.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut S> {
        let g = self.key_group_of(key);
        let hash = self.hasher.hash_one(key);
        let table = self.groups.get_mut(g as usize)?.as_mut()?;
        let (_, state) = table.find_mut(hash, |(k, _)| k == key)?;
        mark(&mut self.changed, g);
        Some(state)
    }

    /// The state of `key`, created with `make` if absent; its group counts as changed.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> S) -> &mut S {
        // (Cloned again if absent: callers with a key to spare are rare off the hot path.)
        self.get_or_insert_with_ref(&key, make)
    }

    /// The state of `key`, created with `make` if absent (cloning the key only then); its
    /// group counts as changed. One probe of the group's table, hit or miss.
    pub fn get_or_insert_with_ref(&mut self, key: &K, make: impl FnOnce() -> S) -> &mut S {
        let g = self.key_group_of(key);
        mark(&mut self.changed, g);
        let hasher = &self.hasher;
        // `key_group` is below `key_groups`, the vector's length.
        let table = self.groups[g as usize].get_or_insert_with(HashTable::new);
        let entry = table.entry(hasher.hash_one(key), |(k, _)| k == key, |(k, _)| hasher.hash_one(k));
        let slot = match entry {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => v.insert((key.clone(), make())).into_mut(),
        };
        &mut slot.1
    }

    /// Removes `key`'s state.
    pub fn remove(&mut self, key: &K) -> Option<S> {
        let g = self.key_group_of(key);
        let hash = self.hasher.hash_one(key);
        let slot = self.groups.get_mut(g as usize)?;
        let table = slot.as_mut()?;
        let (_, removed) = table.find_entry(hash, |(k, _)| k == key).ok()?.remove().0;
        if table.is_empty() {
            *slot = None;
        }
        mark(&mut self.changed, g);
        Some(removed)
    }

    /// Number of keys with state.
    pub fn len(&self) -> usize {
        self.groups.iter().flatten().map(HashTable::len).sum()
    }

    /// Whether no key has state.
    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(Option::is_none)
    }

    /// Every key and its state.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &S)> {
        self.groups.iter().flatten().flat_map(|g| g.iter().map(|(k, s)| (k, s)))
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
}

/// Sets `group`'s bit in a changed-groups bitset.
fn mark(changed: &mut [u64], group: u32) {
    if let Some(word) = changed.get_mut(group as usize / 64) {
        *word |= 1 << (group % 64);
    }
}

impl<K: Hash + Eq + Clone + Default, S: Default> KeyedStateStore<K, S> {
    /// The state of `key`, created empty if absent.
    pub fn get_or_default(&mut self, key: K) -> &mut S {
        self.get_or_insert_with(key, S::default)
    }
}

impl<K, S> KeyedStateStore<K, S>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned,
    S: Serialize + DeserializeOwned,
{
    /// The state of one key group, encoded (an empty group encodes as no entries).
    pub fn encode_group(&self, group: u32) -> Result<Vec<u8>, StateCodecError> {
        let entries: Vec<(&K, &S)> = self
            .groups
            .get(group as usize)
            .and_then(Option::as_ref)
            .map(|g| g.iter().map(|(k, s)| (k, s)).collect())
            .unwrap_or_default();
        bincode::serialize(&entries).map_err(|e| StateCodecError { key_group: group, message: e.to_string() })
    }

    /// Replaces one key group's state with an encoded one.
    pub fn restore_group(&mut self, group: u32, bytes: &[u8]) -> Result<(), StateCodecError> {
        let entries: Vec<(K, S)> = bincode::deserialize(bytes)
            .map_err(|e| StateCodecError { key_group: group, message: e.to_string() })?;
        let slot = self.groups.get_mut(group as usize).ok_or_else(|| StateCodecError {
            key_group: group,
            message: format!("no such key group: the job has {} key groups", self.key_groups),
        })?;
        *slot = if entries.is_empty() {
            None
        } else {
            let mut table = HashTable::with_capacity(entries.len());
            for (k, s) in entries {
                let hash = self.hasher.hash_one(&k);
                // A restored group holds each key once: its snapshot came from a table.
                table.insert_unique(hash, (k, s), |(k, _)| self.hasher.hash_one(k));
            }
            Some(table)
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
    fn removing_the_last_key_drops_the_group() {
        let mut store: KeyedStateStore<String, u8> = KeyedStateStore::new(4);
        *store.get_or_default("x".into()) = 1;
        assert_eq!(store.remove(&"x".to_string()), Some(1));
        assert!(store.is_empty());
        let g = store.key_group_of(&"x".to_string());
        assert_eq!(store.encode_group(g).unwrap(), bincode::serialize(&Vec::<(String, u8)>::new()).unwrap());
    }
}
