//! [`KeyedStateStore`]: per-key state of one operator on one worker, by key group.

use crate::key::{key_group, stable_hash};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

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
    groups: HashMap<u32, HashMap<K, S>>,
    changed: BTreeSet<u32>,
}

impl<K: Hash + Eq + Clone, S> KeyedStateStore<K, S> {
    /// An empty store for a job with `key_groups` key groups.
    pub fn new(key_groups: u32) -> Self {
        KeyedStateStore { key_groups: key_groups.max(1), groups: HashMap::new(), changed: BTreeSet::new() }
    }

    /// The key group of `key`.
    pub fn key_group_of(&self, key: &K) -> u32 {
        key_group(stable_hash(key), self.key_groups)
    }

    /// The state of `key`, if any.
    pub fn get(&self, key: &K) -> Option<&S> {
        self.groups.get(&self.key_group_of(key))?.get(key)
    }

    /// The state of `key` for change, if any; its group counts as changed.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut S> {
        let g = self.key_group_of(key);
        let s = self.groups.get_mut(&g)?.get_mut(key)?;
        self.changed.insert(g);
        Some(s)
    }

    /// The state of `key`, created with `make` if absent; its group counts as changed.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> S) -> &mut S {
        let g = self.key_group_of(&key);
        self.changed.insert(g);
        self.groups.entry(g).or_default().entry(key).or_insert_with(make)
    }

    /// Removes `key`'s state.
    pub fn remove(&mut self, key: &K) -> Option<S> {
        let g = self.key_group_of(key);
        let group = self.groups.get_mut(&g)?;
        let removed = group.remove(key);
        if removed.is_some() {
            self.changed.insert(g);
            if group.is_empty() {
                self.groups.remove(&g);
            }
        }
        removed
    }

    /// Number of keys with state.
    pub fn len(&self) -> usize {
        self.groups.values().map(HashMap::len).sum()
    }

    /// Whether no key has state.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Every key and its state.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &S)> {
        self.groups.values().flat_map(|g| g.iter())
    }

    /// The groups changed since the last call, in order; they count as unchanged after.
    pub fn take_changed_groups(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.changed).into_iter().collect()
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
        let entries: Vec<(&K, &S)> = self.groups.get(&group).map(|g| g.iter().collect()).unwrap_or_default();
        bincode::serialize(&entries).map_err(|e| StateCodecError { key_group: group, message: e.to_string() })
    }

    /// Replaces one key group's state with an encoded one.
    pub fn restore_group(&mut self, group: u32, bytes: &[u8]) -> Result<(), StateCodecError> {
        let entries: Vec<(K, S)> = bincode::deserialize(bytes)
            .map_err(|e| StateCodecError { key_group: group, message: e.to_string() })?;
        if entries.is_empty() {
            self.groups.remove(&group);
        } else {
            self.groups.insert(group, entries.into_iter().collect());
        }
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
