//! [`StableHasher`]: a 64-bit hash that is the same in every process, run and platform.
//!
//! `std`'s `RandomState` is seeded per process, and `Hasher`'s default integer methods
//! use native byte order, so neither suits values that are hashed in one process and
//! compared in another, such as the registers of
//! [`ApproximateDistinct`](super::ApproximateDistinct) accumulators built on different
//! workers. `StableHasher` fixes the seed, reads integers little-endian and `usize` /
//! `isize` as 64 bits. Its rounds follow MurmurHash3's 64-bit body with the `fmix64`
//! finalizer, so every output bit depends on every input bit. It is not keyed, so it
//! offers no protection against inputs chosen to collide.
//!
//! The hash of a value is stable as long as the value's `Hash` implementation is; that of
//! `#[derive(Hash)]` types, integers, `str` and slices has not changed in years but is not
//! formally guaranteed by Rust.

use std::hash::{Hash, Hasher};

const SEED: u64 = 0x243F_6A88_85A3_08D3;
const C1: u64 = 0x87C3_7B91_1142_53D5;
const C2: u64 = 0x4CF5_AD43_2745_937F;

/// MurmurHash3's 64-bit finalizer: a bijection with full avalanche.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

/// A deterministic, platform-independent 64-bit [`Hasher`]; see the [module docs](self).
///
/// ```
/// use millstream_model::combiners::{stable_hash, StableHasher};
/// use std::hash::{Hash, Hasher};
/// let mut hasher = StableHasher::new();
/// ("user", 42_u32).hash(&mut hasher);
/// assert_eq!(hasher.finish(), stable_hash(&("user", 42_u32)));
/// assert_ne!(stable_hash(&1_u64), stable_hash(&2_u64));
/// ```
#[derive(Clone, Debug)]
pub struct StableHasher {
    state: u64,
    words: u64,
}

impl StableHasher {
    /// A hasher with the fixed default seed.
    pub fn new() -> Self {
        Self::with_seed(SEED)
    }

    /// A hasher with another fixed seed, for an independent family of hashes.
    pub fn with_seed(seed: u64) -> Self {
        StableHasher { state: seed, words: 0 }
    }

    fn mix(&mut self, word: u64) {
        let k = word.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        self.state = (self.state ^ k).rotate_left(27).wrapping_mul(5).wrapping_add(0x52DC_E729);
        self.words = self.words.wrapping_add(1);
    }
}

impl Default for StableHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        fmix64(self.state ^ self.words)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            // Up to 7 bytes, with their count in the top byte so that trailing zeros count.
            let mut word = [0; 8];
            word[..tail.len()].copy_from_slice(tail);
            word[7] = tail.len() as u8;
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }
    fn write_u128(&mut self, i: u128) {
        self.mix(i as u64);
        self.mix((i >> 64) as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
    fn write_i8(&mut self, i: i8) {
        self.write_u8(i as u8);
    }
    fn write_i16(&mut self, i: i16) {
        self.write_u16(i as u16);
    }
    fn write_i32(&mut self, i: i32) {
        self.write_u32(i as u32);
    }
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    fn write_i128(&mut self, i: i128) {
        self.write_u128(i as u128);
    }
    fn write_isize(&mut self, i: isize) {
        self.write_u64(i as i64 as u64);
    }
}

/// The [`StableHasher`] hash of `value`.
///
/// ```
/// use millstream_model::combiners::stable_hash;
/// assert_eq!(stable_hash("millstream"), stable_hash(&String::from("millstream")));
/// ```
pub fn stable_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut hasher = StableHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::{stable_hash, StableHasher};
    use std::collections::HashSet;
    use std::hash::Hasher;

    #[test]
    fn pinned_values() {
        // Accumulators built by different versions must agree: these must never change.
        assert_eq!(stable_hash(&0_u64), PINNED[0]);
        assert_eq!(stable_hash(&42_u32), PINNED[1]);
        assert_eq!(stable_hash("millstream"), PINNED[2]);
        assert_eq!(stable_hash(&(7_i64, "a", [1_u8, 2, 3])), PINNED[3]);
    }

    const PINNED: [u64; 4] =
        [0xd147_aca6_49c0_3f6f, 0x2e19_0730_cfed_cb19, 0x1085_2879_bf62_f070, 0x78b4_87e5_43ea_44d1];

    #[test]
    fn platform_independent_integers() {
        assert_eq!(stable_hash(&5_usize), stable_hash(&5_u64));
        assert_eq!(stable_hash(&-5_isize), stable_hash(&-5_i64));
    }

    #[test]
    fn distinguishes_lengths_and_order() {
        let hash = |bytes: &[&[u8]]| {
            let mut hasher = StableHasher::new();
            for b in bytes {
                hasher.write(b);
            }
            hasher.finish()
        };
        let variants = [
            hash(&[]),
            hash(&[&[]]),
            hash(&[&[0]]),
            hash(&[&[0, 0]]),
            hash(&[&[0; 8]]),
            hash(&[&[0; 9]]),
            hash(&[&[1, 2]]),
            hash(&[&[2, 1]]),
        ];
        let distinct: HashSet<u64> = variants.iter().copied().collect();
        assert_eq!(distinct.len(), variants.len() - 1, "only writing nothing twice may collide");
        assert_ne!(stable_hash(&(1_u32, 2_u32)), stable_hash(&(2_u32, 1_u32)));
        assert_ne!(stable_hash(&[0_u64]), stable_hash(&[0_u64, 0]));
        assert_ne!(StableHasher::with_seed(1).finish(), StableHasher::with_seed(2).finish());
    }

    #[test]
    fn no_collisions_among_many_small_values() {
        let hashes: HashSet<u64> = (0..200_000_u64).map(|i| stable_hash(&i)).collect();
        assert_eq!(hashes.len(), 200_000);
        let hashes: HashSet<u64> = (0..200_000).map(|i| stable_hash(&format!("key-{i}"))).collect();
        assert_eq!(hashes.len(), 200_000);
    }

    #[test]
    fn bits_are_balanced() {
        // Every output bit should be set in about half of the hashes of sequential keys.
        let n = 20_000_u32;
        let mut ones = [0_u32; 64];
        for i in 0..n {
            let h = stable_hash(&i);
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += ((h >> bit) & 1) as u32;
            }
        }
        for (bit, &count) in ones.iter().enumerate() {
            let share = f64::from(count) / f64::from(n);
            assert!((0.48..0.52).contains(&share), "bit {bit} set in {share} of hashes");
        }
    }
}
