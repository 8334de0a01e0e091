//! A fast, deterministic hasher for the window state's per-key maps.
//!
//! The window state hashes every record's key once, so the hasher is on the hot path. SipHash (the
//! standard library's default) is built to resist collision attacks from untrusted keys, which
//! costs several times more per key than a multiply-rotate hash. Keys here come from the job's own
//! data, and the state must behave the same on every run (no random seed), so a small Fx-style hash
//! fits.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplier from rustc-hash 2 (an odd constant with well-spread bits).
const SEED: u64 = 0xf135_7aea_2e62_a9c5;

/// An Fx-style hasher: each word is added and the state multiplied by an odd constant; `finish`
/// rotates so that the well-mixed high bits land where hash tables take their bucket index.
///
/// Deterministic (no per-process seed) and not collision resistant: use it for keys that come from
/// the job's data, not for maps an adversary fills.
#[derive(Clone, Copy, Debug, Default)]
pub struct FastHasher {
    hash: u64,
}

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = self.hash.wrapping_add(word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(
                chunk.try_into().expect("chunks_exact yields 8 bytes"),
            ));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length goes into the top byte, so that "a" and "a\0" differ.
            word[7] = rest.len() as u8;
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

/// Builds [`FastHasher`]s; every one starts from the same state.
pub type FastBuildHasher = BuildHasherDefault<FastHasher>;

/// A `HashMap` with the [`FastHasher`]: deterministic across runs and cheap per lookup.
pub type FastMap<K, V> = HashMap<K, V, FastBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn equal_keys_hash_equal_and_nearby_keys_spread() {
        let build = FastBuildHasher::default();
        assert_eq!(build.hash_one("ad-17"), build.hash_one("ad-17"));
        assert_ne!(build.hash_one("a"), build.hash_one("a\0"));
        // Consecutive integers must not collide in the top 7 bits for all of them (hash tables use
        // those as a tag) nor in the low bits (the bucket index).
        let hashes: Vec<u64> = (0u64..64).map(|i| build.hash_one(i)).collect();
        let tags: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        let buckets: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 63).collect();
        assert!(tags.len() > 16, "tags: {}", tags.len());
        assert!(buckets.len() > 16, "buckets: {}", buckets.len());
    }
}
