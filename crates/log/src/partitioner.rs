//! Key-based partitioning, compatible with Kafka's default partitioner.
//!
//! A keyed record goes to partition `(murmur2(key) & 0x7fffffff) % partitions`, where
//! `murmur2` is the 32-bit MurmurHash2 with seed `0x9747b28c` exactly as Kafka's
//! `org.apache.kafka.common.utils.Utils.murmur2` computes it. The result depends only on the
//! key bytes and the partition count: it is the same across runs, processes, platforms and
//! builds, and a keyed record lands in the same partition number as the Kafka Java producer
//! would put it in a topic with as many partitions.

/// Kafka's murmur2 hash of `data` (as a signed 32-bit integer, like Java's).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition a record with `key` goes to in a topic with `partitions` partitions
/// (`partitions` must be at least 1; 0 is treated as 1).
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    let positive = (murmur2(key) & 0x7fff_ffff) as u32;
    positive % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn matches_kafka_murmur2_vectors() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key), expected, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn partitions_are_deterministic_and_in_range() {
        // Fixed expectations: a change here would move keyed records between partitions.
        assert_eq!(partition_for_key(b"21", 4), (((-973_932_308i32) & 0x7fff_ffff) as u32) % 4);
        assert_eq!(partition_for_key(b"foobar", 10), ((-790_332_482i32 & 0x7fff_ffff) as u32) % 10);
        assert_eq!(partition_for_key(b"", 1), 0);
        assert_eq!(partition_for_key(b"anything", 0), 0);
        for i in 0..1000u32 {
            let key = i.to_string();
            let p = partition_for_key(key.as_bytes(), 7);
            assert!(p < 7);
            assert_eq!(p, partition_for_key(key.as_bytes(), 7));
        }
    }

    #[test]
    fn keys_spread_over_partitions() {
        let mut counts = [0u32; 8];
        for i in 0..8000u32 {
            counts[partition_for_key(format!("user-{i}").as_bytes(), 8) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (700..1300).contains(&c)), "{counts:?}");
    }
}
