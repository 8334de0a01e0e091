//! Transaction state of one partition: the open transactions (whose first offsets hold back the
//! last stable offset, LSO) and the aborted ones (which `read_committed` readers skip). Rebuilt on
//! open from the producer snapshot plus the batches after it; aborted transactions also live in
//! an append-only file, `aborted-txns`, so that readers of old data need no scan.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::IoContext;
use crate::format::{BatchHeader, ControlType};
use crate::storage::{OpenHow, Storage};
use crate::{Result, util};

/// File of aborted transactions: 24-byte entries `producer id, first offset, last offset`
/// (big-endian i64s), in the order their ABORT markers were written.
pub(crate) const ABORTED_FILE: &str = "aborted-txns";

/// A transaction that aborted: readers at `read_committed` skip `producer_id`'s transactional
/// records from `first_offset` up to its ABORT marker at `last_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer whose records to skip.
    pub producer_id: i64,
    /// First offset of the transaction in this partition.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub last_offset: i64,
}

#[derive(Debug, Default)]
pub(crate) struct TxnState {
    /// Producer id → first offset of its open transaction in this partition.
    pub(crate) ongoing: BTreeMap<i64, i64>,
    /// Sorted by `last_offset`.
    pub(crate) aborted: Vec<AbortedTxn>,
    /// An entry could not be appended to the aborted-transactions file (a full disk, a failed
    /// write): the file lacks it, and may end in a torn entry that later appends would follow
    /// out of step. It is rewritten whole from `aborted` before anything is appended to it again
    /// and before a producer snapshot vouches for the offsets it covers.
    pub(crate) index_stale: bool,
}

impl TxnState {
    /// A data batch was appended.
    pub(crate) fn on_data(&mut self, h: &BatchHeader) {
        if h.is_transactional() && !h.is_control() {
            self.ongoing.entry(h.producer_id).or_insert(h.base_offset);
        }
    }

    /// A COMMIT or ABORT marker of `producer_id` was appended at `offset`. Returns the aborted
    /// transaction to record, if any.
    pub(crate) fn on_marker(
        &mut self,
        producer_id: i64,
        kind: ControlType,
        offset: i64,
    ) -> Option<AbortedTxn> {
        let first = self.ongoing.remove(&producer_id)?;
        if kind != ControlType::Abort {
            return None;
        }
        let a = AbortedTxn {
            producer_id,
            first_offset: first,
            last_offset: offset,
        };
        if self.aborted.last().is_none_or(|l| l.last_offset < offset) {
            self.aborted.push(a);
        }
        Some(a)
    }

    /// The last stable offset: below it, every transaction is decided.
    pub(crate) fn lso(&self, high_watermark: i64) -> i64 {
        self.ongoing
            .values()
            .copied()
            .min()
            .unwrap_or(high_watermark)
            .min(high_watermark)
    }

    /// Aborted transactions that overlap `[from, to)`.
    pub(crate) fn aborted_in(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset < to)
            .copied()
            .collect()
    }

    /// Forgets everything at or past `offset` (before a replay from there).
    pub(crate) fn truncate(&mut self, offset: i64) {
        self.aborted.retain(|a| a.last_offset < offset);
        self.ongoing.retain(|_, first| *first < offset);
    }
}

pub(crate) fn load_aborted(storage: &dyn Storage, dir: &Path) -> Vec<AbortedTxn> {
    let Ok(bytes) = storage.read(&dir.join(ABORTED_FILE)) else {
        return Vec::new();
    };
    let mut out: Vec<AbortedTxn> = bytes
        .chunks_exact(24)
        .map(|c| {
            let i = |k: usize| i64::from_be_bytes(c[k..k + 8].try_into().unwrap_or([0; 8]));
            AbortedTxn {
                producer_id: i(0),
                first_offset: i(8),
                last_offset: i(16),
            }
        })
        .collect();
    // A torn last entry (a crash mid-write) was dropped by chunks_exact; keep the order strict.
    out.dedup_by_key(|a| a.last_offset);
    out.sort_by_key(|a| a.last_offset);
    out
}

fn encode(a: &AbortedTxn) -> [u8; 24] {
    let mut e = [0u8; 24];
    e[..8].copy_from_slice(&a.producer_id.to_be_bytes());
    e[8..16].copy_from_slice(&a.first_offset.to_be_bytes());
    e[16..].copy_from_slice(&a.last_offset.to_be_bytes());
    e
}

impl TxnState {
    /// Records `a` (just pushed to `aborted`) in the aborted-transactions file of `dir`. On
    /// failure the file is marked stale (see `index_stale`) and the error returned; the
    /// in-memory state stays right either way.
    pub(crate) fn index_aborted(
        &mut self,
        storage: &dyn Storage,
        dir: &Path,
        a: &AbortedTxn,
    ) -> Result<()> {
        let written = if self.index_stale {
            rewrite_aborted(storage, dir, &self.aborted)
        } else {
            append_aborted(storage, dir, a)
        };
        self.index_stale = written.is_err();
        written
    }

    /// Makes the aborted-transactions file durable and whole (rewriting it if an append failed),
    /// before a producer snapshot says the log up to an offset needs no replay.
    pub(crate) fn make_index_durable(&mut self, storage: &dyn Storage, dir: &Path) -> Result<()> {
        if self.index_stale {
            rewrite_aborted(storage, dir, &self.aborted)?;
            self.index_stale = false;
            return Ok(());
        }
        sync_aborted(storage, dir)
    }
}

/// Appends one entry (the marker in the log is the truth; this file is an index of it).
fn append_aborted(storage: &dyn Storage, dir: &Path, a: &AbortedTxn) -> Result<()> {
    let path = dir.join(ABORTED_FILE);
    let f = storage.open(&path, OpenHow::Create).at(&path)?;
    let end = f.len().at(&path)?;
    f.write_all_at(&encode(a), end).at(&path)
}

/// fsyncs the file (when there is one): entries are appended without an fsync, and a producer
/// snapshot, which says the log up to an offset needs no replay, must not outlive them.
fn sync_aborted(storage: &dyn Storage, dir: &Path) -> Result<()> {
    let path = dir.join(ABORTED_FILE);
    if !storage.is_file(&path) {
        return Ok(());
    }
    storage
        .open(&path, OpenHow::Read)
        .and_then(|f| f.sync_data())
        .at(&path)
}

/// Rewrites the file with exactly `entries` (after recovery or truncation).
pub(crate) fn rewrite_aborted(
    storage: &dyn Storage,
    dir: &Path,
    entries: &[AbortedTxn],
) -> Result<()> {
    let bytes: Vec<u8> = entries.iter().flat_map(encode).collect();
    util::write_atomically(storage, &dir.join(ABORTED_FILE), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealStorage;
    use std::io::Write;

    #[test]
    fn lso_and_aborted_ranges() {
        let mut t = TxnState::default();
        assert_eq!(t.lso(10), 10);
        t.ongoing.insert(7, 3);
        t.ongoing.insert(8, 5);
        assert_eq!(t.lso(10), 3);
        assert_eq!(
            t.on_marker(7, ControlType::Abort, 11),
            Some(AbortedTxn {
                producer_id: 7,
                first_offset: 3,
                last_offset: 11
            })
        );
        assert_eq!(t.lso(12), 5);
        assert_eq!(t.on_marker(8, ControlType::Commit, 12), None);
        assert_eq!(t.lso(13), 13);
        assert_eq!(t.aborted_in(0, 3), vec![]);
        assert_eq!(t.aborted_in(0, 4).len(), 1);
        assert_eq!(t.aborted_in(12, 20), vec![]);
        // A marker for a producer with nothing open here changes nothing.
        assert_eq!(t.on_marker(9, ControlType::Abort, 13), None);
    }

    #[test]
    fn aborted_file_round_trip_ignores_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let a = AbortedTxn {
            producer_id: 1,
            first_offset: 2,
            last_offset: 3,
        };
        let b = AbortedTxn {
            producer_id: 4,
            first_offset: 5,
            last_offset: 6,
        };
        append_aborted(&RealStorage, dir.path(), &a).unwrap();
        append_aborted(&RealStorage, dir.path(), &b).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(ABORTED_FILE))
            .unwrap();
        f.write_all(&[1, 2, 3]).unwrap();
        assert_eq!(load_aborted(&RealStorage, dir.path()), vec![a, b]);
        rewrite_aborted(&RealStorage, dir.path(), &[b]).unwrap();
        assert_eq!(load_aborted(&RealStorage, dir.path()), vec![b]);
    }
}
