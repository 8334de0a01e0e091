//! Choosing a partition for a record: Kafka's default (murmur2 of the key, so a key lands where
//! Kafka's partitioner would put it), sticky for keyless records (KIP-480), or the user's own.

use std::sync::Arc;

/// Kafka's `Utils.murmur2`: MurmurHash2, seed 0x9747b28c, as Java computes it.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    // Java's switch falls through from 3 to 1; bytes are sign-extended then masked.
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for a keyed record.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    debug_assert!(partitions > 0);
    ((murmur2(key) as u32 & 0x7fff_ffff) % partitions as u32) as i32
}

/// A user-supplied partitioner: `(topic, key, partitions) -> partition`.
pub type CustomPartitioner = Arc<dyn Fn(&str, Option<&[u8]>, i32) -> i32 + Send + Sync>;

/// How a producer picks partitions for records that do not name one.
#[derive(Clone, Default)]
pub enum Partitioner {
    /// murmur2 of the key; keyless records stick to one partition until its batch is sent.
    #[default]
    Default,
    /// The user's function; its result is checked against the partition count.
    Custom(CustomPartitioner),
}

impl std::fmt::Debug for Partitioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Partitioner::Default => f.write_str("Default"),
            Partitioner::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_kafka() {
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (input, want) in cases {
            assert_eq!(murmur2(input.as_bytes()), want, "murmur2({input:?})");
        }
    }

    #[test]
    fn partition_for_key_is_positive_modulo() {
        for n in 1..20 {
            let p = partition_for_key(b"foobar", n);
            assert!((0..n).contains(&p));
            assert_eq!(
                p,
                ((-790_332_482i32 as u32 & 0x7fff_ffff) % n as u32) as i32
            );
        }
    }
}
