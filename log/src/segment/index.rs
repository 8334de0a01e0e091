//! Sparse, memory-mapped indexes of one segment.
//!
//! Files are preallocated (sparse) to `index_bytes_max` and never shrunk while the log runs, so a
//! reader in another process that maps them can never fault on a truncated page. The writer backs
//! entries with disk blocks before it writes them (`reserve_next`, 64 KiB at a time): a store
//! through the map into a hole on a full disk would be a SIGBUS, where a reservation is ENOSPC. Which entries are
//! valid is told by the entries themselves: valid entries form a prefix and are never all-zero.
//!
//! - Offset index, 8-byte entries `relative offset: u32, position: u32` (big-endian), one about every
//!   `index_interval_bytes` of batches; position 0 is never indexed, so `position > 0` marks a valid
//!   entry.
//! - Time index, 12-byte entries `timestamp: i64, relative offset + 1: u32`: every record before
//!   that offset has a timestamp at most `timestamp`. Timestamps strictly increase along the file.

use std::path::{Path, PathBuf};

use crate::Result;
use crate::error::IoContext;
use crate::storage::{IndexMap, Storage};

/// A fixed-width entry file mapped into memory.
struct EntryFile<const W: usize> {
    path: PathBuf,
    /// `None`: a reader found no file (or one too short for an entry): no entries.
    map: Option<Box<dyn IndexMap>>,
    /// Valid entries, tracked by the writer; readers recount on every lookup.
    len: usize,
    writable: bool,
    /// Tells a valid entry from an unwritten (zero) one.
    is_valid: fn(&[u8]) -> bool,
}

impl<const W: usize> EntryFile<W> {
    fn open(
        storage: &dyn Storage,
        path: &Path,
        bytes_max: u32,
        writable: bool,
        is_valid: fn(&[u8]) -> bool,
    ) -> Result<Self> {
        let want = (bytes_max as u64 / W as u64) * W as u64;
        // A reader with no file (mid-swap by the cleaner, or never written) has no entries;
        // lookups scan instead.
        let map = storage.map_index(path, want, W as u64, writable).at(path)?;
        let mut f = EntryFile {
            path: path.to_path_buf(),
            map,
            len: 0,
            writable,
            is_valid,
        };
        f.len = f.count_valid();
        Ok(f)
    }

    fn capacity(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len()) / W
    }

    /// Entry `i` (below the capacity).
    fn entry(&self, i: usize) -> [u8; W] {
        let mut e = [0u8; W];
        if let Some(m) = &self.map {
            m.read(i * W, &mut e);
        }
        e
    }

    /// Valid entries form a prefix: binary search for its end, within the blocks the file has
    /// (entries are written only there; reading a hole can fault on a full disk).
    fn count_valid(&self) -> usize {
        let backed = self.map.as_ref().map_or(0, |m| m.backed_len()) / W;
        let (mut lo, mut hi) = (0, self.capacity().min(backed));
        while lo < hi {
            let mid = (lo + hi) / 2;
            if (self.is_valid)(&self.entry(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Valid entries: tracked by the writer, recounted by readers (the writer may have added
    /// some since).
    fn valid_len(&self) -> usize {
        if self.writable {
            self.len
        } else {
            self.count_valid()
        }
    }

    /// True when a writer has no room for another entry.
    fn is_full(&self) -> bool {
        self.writable && self.len >= self.capacity()
    }

    /// Backs the next entry with disk blocks ([`IndexMap::reserve`]), so that pushing it cannot
    /// fault; a no-op for readers and full files.
    fn reserve_next(&mut self) -> std::io::Result<()> {
        let end = (self.len + 1) * W;
        match &mut self.map {
            Some(m) if self.writable && end <= m.len() => m.reserve(end),
            _ => Ok(()),
        }
    }

    /// Appends an entry; false when full, or when its blocks cannot be reserved (a full disk: the
    /// entry is left out, which costs lookups a longer scan, never a wrong answer).
    fn push(&mut self, entry: [u8; W]) -> bool {
        let at = self.len * W;
        match &mut self.map {
            Some(m) if self.writable && at + W <= m.len() => {
                if m.reserve(at + W).is_err() {
                    return false;
                }
                m.write(at, &entry);
                self.len += 1;
                true
            }
            _ => false,
        }
    }

    fn truncate(&mut self, len: usize) {
        if let Some(m) = &mut self.map
            && self.writable
            && len < self.len
        {
            m.zero(len * W, (self.len - len) * W);
            self.len = len;
        }
    }

    fn flush(&self) -> Result<()> {
        if let Some(m) = &self.map
            && self.writable
        {
            m.flush().at(&self.path)?;
        }
        Ok(())
    }

    /// Largest `i` in `0..len` with `pred(entry(i))`, given `pred` holds on a prefix.
    fn last_where(&self, len: usize, pred: impl Fn(&[u8]) -> bool) -> Option<usize> {
        let (mut lo, mut hi) = (0, len);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if pred(&self.entry(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

/// Offset → file position, sparse.
pub(crate) struct OffsetIndex {
    file: EntryFile<8>,
    base_offset: i64,
}

fn offset_entry_valid(e: &[u8]) -> bool {
    be_u32(&e[4..8]) > 0
}

impl OffsetIndex {
    pub(crate) fn open(
        storage: &dyn Storage,
        path: &Path,
        base_offset: i64,
        bytes_max: u32,
        writable: bool,
    ) -> Result<Self> {
        Ok(OffsetIndex {
            file: EntryFile::open(storage, path, bytes_max, writable, offset_entry_valid)?,
            base_offset,
        })
    }

    fn len(&self) -> usize {
        self.file.valid_len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Backs the next entry with disk blocks: fails (ENOSPC) on a full disk.
    pub(crate) fn reserve_next(&mut self) -> Result<()> {
        self.file.reserve_next().at(&self.file.path)
    }

    /// Records that the batch starting at `offset` begins at `position`. Returns false if full.
    pub(crate) fn push(&mut self, offset: i64, position: u64) -> bool {
        debug_assert!(position > 0 && position <= u32::MAX as u64);
        let rel = (offset - self.base_offset) as u32;
        if let Some(last) = self.last() {
            debug_assert!(
                offset > last.0 && position > last.1,
                "index entries must increase"
            );
        }
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&rel.to_be_bytes());
        e[4..].copy_from_slice(&(position as u32).to_be_bytes());
        self.file.push(e)
    }

    /// The last entry, as (absolute offset, position).
    pub(crate) fn last(&self) -> Option<(i64, u64)> {
        let n = self.len();
        (n > 0).then(|| self.decode(n - 1))
    }

    fn decode(&self, i: usize) -> (i64, u64) {
        let e = self.file.entry(i);
        (
            self.base_offset + be_u32(&e[..4]) as i64,
            be_u32(&e[4..]) as u64,
        )
    }

    /// The greatest indexed (offset, position) with offset ≤ `target`, else the segment start.
    pub(crate) fn lookup(&self, target: i64) -> (i64, u64) {
        let n = self.len();
        let base = self.base_offset;
        match self
            .file
            .last_where(n, |e| base + be_u32(&e[..4]) as i64 <= target)
        {
            Some(i) => self.decode(i),
            None => (self.base_offset, 0),
        }
    }

    /// Drops entries at or past `position`.
    pub(crate) fn truncate_to_position(&mut self, position: u64) {
        let keep = self
            .file
            .last_where(self.file.len, |e| (be_u32(&e[4..]) as u64) < position);
        self.file.truncate(keep.map_or(0, |i| i + 1));
    }

    pub(crate) fn flush(&self) -> Result<()> {
        self.file.flush()
    }
}

/// Timestamp → offset, sparse.
pub(crate) struct TimeIndex {
    file: EntryFile<12>,
    base_offset: i64,
}

fn time_entry_valid(e: &[u8]) -> bool {
    be_u32(&e[8..12]) > 0
}

impl TimeIndex {
    pub(crate) fn open(
        storage: &dyn Storage,
        path: &Path,
        base_offset: i64,
        bytes_max: u32,
        writable: bool,
    ) -> Result<Self> {
        Ok(TimeIndex {
            file: EntryFile::open(storage, path, bytes_max, writable, time_entry_valid)?,
            base_offset,
        })
    }

    fn len(&self) -> usize {
        self.file.valid_len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Backs the next entry with disk blocks: fails (ENOSPC) on a full disk.
    pub(crate) fn reserve_next(&mut self) -> Result<()> {
        self.file.reserve_next().at(&self.file.path)
    }

    fn decode(&self, i: usize) -> (i64, i64) {
        let e = self.file.entry(i);
        (
            be_i64(&e[..8]),
            self.base_offset + be_u32(&e[8..]) as i64 - 1,
        )
    }

    /// The last entry as (timestamp, offset).
    pub(crate) fn last(&self) -> Option<(i64, i64)> {
        let n = self.len();
        (n > 0).then(|| self.decode(n - 1))
    }

    /// Records that every record before `offset` has a timestamp ≤ `timestamp`. Only a larger
    /// timestamp than the last entry's is recorded.
    pub(crate) fn push(&mut self, timestamp: i64, offset: i64) -> bool {
        if let Some((ts, off)) = self.last()
            && (timestamp <= ts || offset <= off)
        {
            return true;
        }
        let rel = (offset - self.base_offset + 1) as u32;
        let mut e = [0u8; 12];
        e[..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..].copy_from_slice(&rel.to_be_bytes());
        self.file.push(e)
    }

    /// An offset from which to scan for the first record with timestamp ≥ `target`: every record
    /// before it is older than `target`.
    pub(crate) fn lookup(&self, target: i64) -> i64 {
        let n = self.len();
        match self.file.last_where(n, |e| be_i64(&e[..8]) < target) {
            Some(i) => self.decode(i).1,
            None => self.base_offset,
        }
    }

    /// Drops entries whose offset is past `offset`.
    pub(crate) fn truncate_to_offset(&mut self, offset: i64) {
        let base = self.base_offset;
        let keep = self.file.last_where(self.file.len, |e| {
            base + (be_u32(&e[8..]) as i64) - 1 <= offset
        });
        self.file.truncate(keep.map_or(0, |i| i + 1));
    }

    pub(crate) fn flush(&self) -> Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealStorage;

    #[test]
    fn offset_index_lookup_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.index");
        let mut idx = OffsetIndex::open(&RealStorage, &p, 100, 4096, true).unwrap();
        assert_eq!(idx.lookup(150), (100, 0));
        assert!(idx.push(110, 4100));
        assert!(idx.push(130, 8200));
        assert_eq!(idx.lookup(109), (100, 0));
        assert_eq!(idx.lookup(110), (110, 4100));
        assert_eq!(idx.lookup(129), (110, 4100));
        assert_eq!(idx.lookup(1000), (130, 8200));
        idx.flush().unwrap();
        let ro = OffsetIndex::open(&RealStorage, &p, 100, 4096, false).unwrap();
        assert_eq!(ro.last(), Some((130, 8200)));
        let mut rw = OffsetIndex::open(&RealStorage, &p, 100, 4096, true).unwrap();
        assert_eq!(rw.last(), Some((130, 8200)));
        rw.truncate_to_position(8200);
        assert_eq!(rw.last(), Some((110, 4100)));
        // The reader sees the writer's change through the shared mapping.
        assert_eq!(ro.last(), Some((110, 4100)));
    }

    #[test]
    fn offset_index_fills_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx =
            OffsetIndex::open(&RealStorage, &dir.path().join("i"), 0, 4096, true).unwrap();
        for i in 1..=512 {
            assert!(idx.push(i, i as u64 * 10));
        }
        assert!(idx.is_full());
        assert!(!idx.push(513, 5130));
    }

    #[test]
    fn time_index_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TimeIndex::open(&RealStorage, &dir.path().join("t"), 0, 4096, true).unwrap();
        assert_eq!(idx.lookup(5), 0);
        idx.push(1000, 10);
        idx.push(900, 20); // not larger: ignored
        idx.push(2000, 30);
        assert_eq!(idx.last(), Some((2000, 30)));
        assert_eq!(idx.lookup(1000), 0);
        assert_eq!(idx.lookup(1001), 10);
        assert_eq!(idx.lookup(5000), 30);
        idx.truncate_to_offset(29);
        assert_eq!(idx.last(), Some((1000, 10)));
        // Timestamps of 0 and offset 0 are valid entries.
        let mut z = TimeIndex::open(&RealStorage, &dir.path().join("z"), 0, 4096, true).unwrap();
        z.push(0, 0);
        assert_eq!(z.last(), Some((0, 0)));
    }
}
