//! A fixed, seedless 64-bit hash, so that sketches built from the same values are identical in
//! every run and every process.

use std::hash::{BuildHasherDefault, Hash, Hasher};

/// Odd multiplier of the folding step (2^64 divided by the golden ratio).
const FOLD_MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// Starting state (digits of pi): non-zero, so that `0`, `(0, 0)` and `()` hash apart.
const INITIAL_STATE: u64 = 0x243F_6A88_85A3_08D3;

/// A deterministic 64-bit [`Hasher`] with no seed.
///
/// `std`'s `RandomState` is seeded per process: two tasks would build HyperLogLog registers that
/// cannot be compared, and a restored checkpoint would stop matching new values. This hasher has
/// no seed. Values are fed through [`std::hash::Hash`], folded word by word with a rotate–xor–
/// multiply step, and finished with the splitmix64 finalizer, whose avalanche gives the
/// well-spread bits that HyperLogLog relies on.
///
/// Determinism holds across runs and processes on one platform; `usize` and `isize` hash as their
/// native width, so 32- and 64-bit builds differ for values that contain them.
///
/// It is not resistant to hash flooding: someone who controls the input can produce collisions.
/// Results stay correct under collisions (they only cost accuracy or speed), which is why it is
/// acceptable for sketches and for the hot-key counters.
#[derive(Debug, Clone, Copy)]
pub struct StableHasher {
    state: u64,
}

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher {
            state: INITIAL_STATE,
        }
    }
}

/// A [`std::hash::BuildHasher`] of [`StableHasher`], for `HashMap`s that must be fast and need
/// no protection against hash flooding.
pub type StableBuildHasher = BuildHasherDefault<StableHasher>;

impl StableHasher {
    #[inline]
    fn fold(&mut self, word: u64) {
        // Bijective in `word` for a fixed state and in the state for a fixed word.
        self.state = (self.state.rotate_left(26) ^ word).wrapping_mul(FOLD_MUL);
    }
}

/// The splitmix64 finalizer: a bijection whose every output bit depends on every input bit.
#[inline]
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Hasher for StableHasher {
    #[inline]
    fn finish(&self) -> u64 {
        splitmix64(self.state)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word: [u8; 8] = chunk.try_into().expect("chunks_exact yields 8 bytes");
            self.fold(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.fold(u64::from_le_bytes(word));
        }
        // Without the length, "a" and "a\0" would fold to the same state.
        self.fold(bytes.len() as u64);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.fold(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.fold(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.fold(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.fold(i);
    }

    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.fold(i as u64);
        self.fold((i >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.fold(i as u64);
    }
}

/// The [`StableHasher`] hash of one value (same in every run and process; see its docs).
#[inline]
pub fn stable_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut hasher = StableHasher::default();
    value.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_fixed_across_runs() {
        // Pinned values: a change here changes every stored HyperLogLog sketch.
        let fold = |state: u64, word: u64| (state.rotate_left(26) ^ word).wrapping_mul(FOLD_MUL);
        assert_eq!(stable_hash(&7u64), splitmix64(fold(INITIAL_STATE, 7)));
        assert_eq!(stable_hash(&7u64), 0x6859_32c4_57af_7f19_u64);
        assert_ne!(stable_hash(&0u64), stable_hash(&(0u64, 0u64)));
        assert_ne!(stable_hash(&0u64), stable_hash(&()));
        assert_eq!(stable_hash("weir"), stable_hash(&String::from("weir")));
    }

    #[test]
    fn separates_lengths_and_neighbours() {
        assert_ne!(stable_hash(&b"a"[..]), stable_hash(&b"a\0"[..]));
        assert_ne!(stable_hash("ab"), stable_hash("ba"));
        assert_ne!(stable_hash(&(1u32, 2u32)), stable_hash(&(2u32, 1u32)));
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000u64 {
            assert!(seen.insert(stable_hash(&i)), "collision at {i}");
        }
    }

    #[test]
    fn spreads_top_bits() {
        // HyperLogLog indexes registers by the top bits: sequential keys must fill them evenly.
        let buckets_len = 16;
        let mut buckets = vec![0u32; buckets_len];
        for i in 0..16_000u64 {
            buckets[(stable_hash(&i) >> 60) as usize] += 1;
        }
        for count in buckets {
            assert!((800..1200).contains(&count), "uneven bucket: {count}");
        }
    }
}
