//! Keys, their stable hash, and key groups: the unit of state partitioning.
//!
//! A key's group is `hash(key) % max_parallelism`; groups map to workers in contiguous
//! ranges (as in Flink), so that state saved with N workers can be redistributed to M
//! workers by moving whole key groups.

use std::hash::{Hash, Hasher};

/// The default number of key groups (the job's maximum parallelism).
pub const DEFAULT_KEY_GROUPS: u32 = 128;

/// What a grouping key must be: hashable, comparable and exchangeable between workers.
pub trait Key: crate::Element + Hash + Eq + Ord {}
impl<K: crate::Element + Hash + Eq + Ord> Key for K {}

/// A hash of `key` that is the same in every worker and process running the same binary.
pub fn stable_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    // Fixed keys, unlike RandomState, so every worker and process agrees.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(0x6d696c6c, 0x73747265616d);
    key.hash(&mut h);
    h.finish()
}

/// The key group of a key hash.
pub fn key_group(hash: u64, key_groups: u32) -> u32 {
    (hash % key_groups as u64) as u32
}

/// The worker that owns `group` among `workers` (contiguous ranges of groups).
pub fn worker_for_key_group(group: u32, key_groups: u32, workers: usize) -> usize {
    (group as usize * workers) / key_groups as usize
}

/// The worker that owns `key`.
pub fn worker_for_key<K: Hash + ?Sized>(key: &K, key_groups: u32, workers: usize) -> usize {
    worker_for_key_group(key_group(stable_hash(key), key_groups), key_groups, workers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_groups_cover_workers_in_ranges() {
        let owners: Vec<usize> = (0..128).map(|g| worker_for_key_group(g, 128, 3)).collect();
        assert_eq!(owners[0], 0);
        assert_eq!(owners[127], 2);
        assert!(owners.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(stable_hash("a"), stable_hash("a"));
        assert_ne!(stable_hash("a"), stable_hash("b"));
    }
}
