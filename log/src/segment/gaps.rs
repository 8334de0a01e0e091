//! A segment's witness of its offset gaps (`<base_offset:020>.gaps`).
//!
//! A batch's base offset lies outside its CRC, so a flipped bit there is invisible to the
//! checksum. Where offsets are dense, the chain catches it: each batch must start where the one
//! before ended. Compaction leaves gaps, and a chain that allows gaps would pass a base offset
//! that a flip raised. So the cleaner writes down every gap it leaves: the position of each batch
//! that does not start where the one before it ended, and the offset it starts at. Every batch of
//! a segment then starts either exactly where the one before ended or exactly where the witness
//! says; anything else is damage.
//!
//! A segment that no cleaner rewrote has no gaps and needs no witness. Appends never leave gaps:
//! the log hands out offsets one after the other.

use std::path::Path;

use crate::Result;
use crate::storage::Storage;
use crate::util;

/// Bytes of one entry: position (u64) and base offset (i64), big-endian.
const ENTRY_BYTES: usize = 16;
/// Leading bytes of the payload, to tell the file from any other.
const MAGIC: &[u8; 4] = b"WGP1";

/// Where a segment's batches do not follow on: (byte position, base offset), by position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Gaps {
    entries: Vec<(u64, i64)>,
}

impl Gaps {
    /// The base offset the witness gives for the batch at `position`, if it starts after a gap.
    pub(crate) fn base_at(&self, position: u64) -> Option<i64> {
        self.entries
            .binary_search_by_key(&position, |&(p, _)| p)
            .ok()
            .map(|i| self.entries[i].1)
    }

    /// True when a batch at `position` starting at `base_offset` is where it belongs after one
    /// that ended before `expected`: right there, or where the witness says.
    pub(crate) fn placed(&self, position: u64, expected: i64, base_offset: i64) -> bool {
        match self.base_at(position) {
            Some(witnessed) => base_offset == witnessed && witnessed >= expected,
            None => base_offset == expected,
        }
    }

    /// Records a batch at `position` that starts at `base_offset`, after a gap. Positions only
    /// grow.
    pub(crate) fn push(&mut self, position: u64, base_offset: i64) {
        debug_assert!(self.entries.last().is_none_or(|&(p, _)| p < position));
        self.entries.push((position, base_offset));
    }

    /// Forgets the gaps at or past `position` (the segment was cut there). True if any went.
    pub(crate) fn truncate_to_position(&mut self, position: u64) -> bool {
        let keep = self.entries.partition_point(|&(p, _)| p < position);
        let cut = keep < self.entries.len();
        self.entries.truncate(keep);
        cut
    }

    /// The first gap: (position, base offset).
    pub(crate) fn first(&self) -> Option<(u64, i64)> {
        self.entries.first().copied()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + self.entries.len() * ENTRY_BYTES);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for &(p, o) in &self.entries {
            out.extend_from_slice(&p.to_be_bytes());
            out.extend_from_slice(&o.to_be_bytes());
        }
        out
    }

    fn decode(payload: &[u8]) -> std::result::Result<Gaps, String> {
        let rest = payload
            .strip_prefix(MAGIC)
            .ok_or_else(|| "not a gap witness (bad magic)".to_string())?;
        let (count, body) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| "too short for its entry count".to_string())?;
        let count = u32::from_be_bytes(*count) as usize;
        if body.len() != count.saturating_mul(ENTRY_BYTES) {
            return Err(format!(
                "{count} entries claimed, {} bytes of them",
                body.len()
            ));
        }
        let mut entries = Vec::with_capacity(count);
        for e in body.chunks_exact(ENTRY_BYTES) {
            let p = u64::from_be_bytes(e[..8].try_into().unwrap_or_default());
            let o = i64::from_be_bytes(e[8..].try_into().unwrap_or_default());
            if entries.last().is_some_and(|&(q, _): &(u64, i64)| q >= p) {
                return Err(format!("positions out of order at byte {p}"));
            }
            entries.push((p, o));
        }
        Ok(Gaps { entries })
    }

    /// Reads the witness at `path`: `None` if there is none, [`crate::Error::Corrupt`] if it is
    /// damaged.
    pub(crate) fn read(storage: &dyn Storage, path: &Path) -> Result<Option<Gaps>> {
        let Some(payload) = util::read_checksummed(storage, path)? else {
            return Ok(None);
        };
        Gaps::decode(&payload)
            .map(Some)
            .map_err(|reason| crate::Error::Corrupt {
                segment: path.to_path_buf(),
                position: 0,
                offset: -1,
                reason,
            })
    }

    /// Writes the witness to `path`, atomically and durably.
    pub(crate) fn write(&self, storage: &dyn Storage, path: &Path) -> Result<()> {
        util::write_checksummed(storage, path, &self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_placed_densely_or_where_the_witness_says() {
        let mut g = Gaps::default();
        g.push(0, 5);
        g.push(300, 40);
        // At a witnessed position: exactly the witnessed offset, and never backwards.
        assert!(g.placed(0, 0, 5));
        assert!(!g.placed(0, 0, 6));
        assert!(g.placed(300, 20, 40));
        assert!(!g.placed(300, 41, 40));
        // Elsewhere: dense.
        assert!(g.placed(100, 9, 9));
        assert!(!g.placed(100, 9, 10));
        assert!(g.truncate_to_position(300));
        assert!(g.placed(300, 20, 20));
        assert!(!g.truncate_to_position(300));
    }

    #[test]
    fn the_file_round_trips_and_damage_is_refused() {
        let mut g = Gaps::default();
        g.push(0, 5);
        g.push(1 << 40, i64::MAX - 1);
        assert_eq!(Gaps::decode(&g.encode()).unwrap(), g);
        let mut bytes = g.encode();
        bytes.pop();
        assert!(Gaps::decode(&bytes).is_err());
        let swapped = Gaps {
            entries: vec![(9, 1), (3, 2)],
        };
        assert!(Gaps::decode(&swapped.encode()).is_err());
        assert!(Gaps::decode(b"nope").is_err());
    }
}
