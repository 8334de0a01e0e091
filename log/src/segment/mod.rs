//! A segment: one log file of whole batches plus its two indexes, and, once the cleaner has
//! rewritten it, the witness of its offset gaps ([`gaps`]). A segment knows nothing of its topic
//! or partition; the partition owns its segments.

mod gaps;
mod index;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use bytes::{Bytes, BytesMut};

use crate::error::IoContext;
use crate::format::{BATCH_HEADER_BYTES, Batch, BatchHeader};
use crate::storage::{OpenHow, Storage, StorageFile};
use crate::{Error, Result};
pub(crate) use gaps::Gaps;
pub(crate) use index::{OffsetIndex, TimeIndex};

/// Bytes read at a time when walking batch headers.
const SCAN_CHUNK_BYTES: usize = 64 << 10;
/// Bytes read at a time when verifying whole batches during recovery.
const RECOVERY_CHUNK_BYTES: usize = 1 << 20;
/// Marker for a timestamp not yet computed.
const UNKNOWN_TS: i64 = i64::MIN;

/// File names of a segment: `<base_offset:020>.log|.index|.timeindex|.gaps`.
pub(crate) fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// What a segment's log file is renamed to when the segment is deleted, before its other
/// files go (see [`Segment::delete_files_of`]).
const DELETED_SUFFIX: &str = ".deleted";

fn deleted_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(DELETED_SUFFIX);
    PathBuf::from(name)
}

/// Parses a segment log file name back to its base offset.
pub(crate) fn parse_log_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// What a segment needs to know of its partition's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentSettings {
    pub index_interval_bytes: u32,
    pub index_bytes_max: u32,
    pub writable: bool,
    /// The topic was compacted at some time, so its segments may have offset gaps: between
    /// segments offsets need only increase, and within a segment the cleaner's witness says
    /// where the gaps are ([`Gaps`]). Otherwise offsets are dense: each batch starts right after
    /// the previous one ends.
    pub may_have_gaps: bool,
    /// Largest batch a recovery scan accepts before calling the rest torn.
    pub batch_bytes_max: usize,
}

impl SegmentSettings {
    /// True when a segment starting at `base_offset` may follow one that ended before
    /// `expected`.
    pub(crate) fn follows(&self, expected: i64, base_offset: i64) -> bool {
        if self.may_have_gaps {
            base_offset >= expected
        } else {
            base_offset == expected
        }
    }
}

/// When a writer opening a segment of a compacted topic may take in offset gaps that no witness
/// records, and write the witness (see [`gaps`]). Everywhere else a gap the witness does not
/// name is damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Adopt {
    /// The cleaner's swap was cut short: a segment whose index is missing may have its new log
    /// in place before its witness. Its gaps are expected and not reported.
    pub swap_interrupted: bool,
    /// The segment is closed: without a witness (written before witnesses existed, or the file
    /// was lost) its gaps are kept as found, and reported, since their base offsets cannot be
    /// checked.
    pub closed: bool,
}

/// How [`Segment::recover`] judges base offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// Each batch starts where the one before ended or where the witness says.
    Witnessed,
    /// Offsets need only increase; the gaps found become the witness.
    TakeInGaps,
}

/// What [`Segment::open`] found beside the segment.
#[derive(Debug)]
pub(crate) enum Found {
    /// Nothing to say.
    Sound,
    /// Damage, cut off (by a writer) and reported: what follows the segment cannot be kept.
    Cut(Truncation),
    /// Nothing cut, but something to report: gaps taken in unverified, a witness rebuilt.
    Noted(Truncation),
}

impl Found {
    fn cut(t: Option<Truncation>) -> Found {
        t.map_or(Found::Sound, Found::Cut)
    }

    /// What the recovery report gets.
    pub(crate) fn report(self) -> Option<Truncation> {
        match self {
            Found::Sound => None,
            Found::Cut(t) | Found::Noted(t) => Some(t),
        }
    }
}

/// What was found of a segment's witness when its files were opened.
enum Witness {
    Present,
    Absent,
    Damaged(Error),
}

/// Where a header walk from a known batch boundary stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WalkEnd {
    /// At `to`, at a header that does not parse, at a batch that runs past `to`, or where the
    /// callback broke: the position.
    Stopped(u64),
    /// At a batch whose offsets do not follow on from the previous batch's: corruption (the base
    /// offset lies outside the CRC).
    Misplaced {
        position: u64,
        base_offset: i64,
        expected: i64,
    },
}

struct Indexes {
    offset: OffsetIndex,
    time: TimeIndex,
    bytes_since_entry: u64,
    /// Largest timestamp of the records appended so far (within this segment).
    max_ts_so_far: i64,
}

/// What recovery found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The segment file.
    pub segment: PathBuf,
    /// Byte position of the first bad batch; everything from here was removed.
    pub position: u64,
    /// Offset the bad batch claimed, or the next expected offset if unreadable.
    pub offset: i64,
    /// Bytes removed.
    pub bytes_removed: u64,
    /// What check failed.
    pub reason: String,
}

pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    pub(crate) log_path: PathBuf,
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    file: Box<dyn StorageFile>,
    settings: SegmentSettings,
    /// Bytes of complete batches: readers never look past it.
    size: AtomicU64,
    next_offset: AtomicI64,
    /// Largest record timestamp, or `UNKNOWN_TS` until computed.
    max_timestamp: AtomicI64,
    /// Wall-clock ms when the segment was created (or reopened), for rolling by age.
    created_ms: AtomicI64,
    indexes: Mutex<Indexes>,
    /// Where batches do not follow on (empty unless the cleaner rewrote the segment).
    gaps: RwLock<Gaps>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.log_path)
            .field("size", &self.size())
            .field("next_offset", &self.next_offset())
            .finish()
    }
}

impl Segment {
    fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base_offset);
        (
            dir.join(format!("{stem}.log")),
            dir.join(format!("{stem}.index")),
            dir.join(format!("{stem}.timeindex")),
        )
    }

    /// The witness of the gaps of the segment at `base_offset` in `dir`.
    fn gaps_path(dir: &Path, base_offset: i64) -> PathBuf {
        dir.join(format!("{}.gaps", file_stem(base_offset)))
    }

    /// Creates an empty segment.
    pub(crate) fn create(
        storage: &Arc<dyn Storage>,
        dir: &Path,
        base_offset: i64,
        settings: SegmentSettings,
        now_ms: i64,
    ) -> Result<Segment> {
        let (log, _, _) = Self::paths(dir, base_offset);
        storage.open(&log, OpenHow::CreateNew).at(&log)?;
        // A witness left by a segment of this base that was deleted part way.
        let gaps = Self::gaps_path(dir, base_offset);
        crate::storage::remove_if_present(&**storage, &gaps).at(&gaps)?;
        let (seg, _) = Self::open_files(storage, dir, base_offset, settings)?;
        seg.created_ms.store(now_ms, Ordering::Relaxed);
        seg.max_timestamp.store(-1, Ordering::Relaxed);
        Ok(seg)
    }

    fn open_files(
        storage: &Arc<dyn Storage>,
        dir: &Path,
        base_offset: i64,
        settings: SegmentSettings,
    ) -> Result<(Segment, Witness)> {
        let (log_path, index_path, time_path) = Self::paths(dir, base_offset);
        let how = if settings.writable {
            OpenHow::ReadWrite
        } else {
            OpenHow::Read
        };
        let file = storage.open(&log_path, how).at(&log_path)?;
        let size = file.len().at(&log_path)?;
        let writable = settings.writable;
        let bytes_max = settings.index_bytes_max;
        let offset = OffsetIndex::open(&**storage, &index_path, base_offset, bytes_max, writable)?;
        let time = TimeIndex::open(&**storage, &time_path, base_offset, bytes_max, writable)?;
        let (gaps, witness) = match Gaps::read(&**storage, &Self::gaps_path(dir, base_offset)) {
            Ok(Some(g)) => (g, Witness::Present),
            Ok(None) => (Gaps::default(), Witness::Absent),
            Err(e @ Error::Corrupt { .. }) => (Gaps::default(), Witness::Damaged(e)),
            Err(e) => return Err(e),
        };
        let seg = Segment {
            base_offset,
            log_path,
            dir: dir.to_path_buf(),
            storage: storage.clone(),
            file,
            settings,
            size: AtomicU64::new(size),
            next_offset: AtomicI64::new(base_offset),
            max_timestamp: AtomicI64::new(UNKNOWN_TS),
            created_ms: AtomicI64::new(0),
            indexes: Mutex::new(Indexes {
                offset,
                time,
                bytes_since_entry: 0,
                max_ts_so_far: -1,
            }),
            gaps: RwLock::new(gaps),
        };
        Ok((seg, witness))
    }

    /// Opens a segment trusting its contents (after a clean shutdown, or for a closed segment below
    /// the recovery point): finds its end from the last index entry, reading at most one index
    /// interval of headers, checking that offsets follow on from batch to batch.
    ///
    /// Trust has limits: when the file does not frame exactly to its end, or offsets do not
    /// follow on, the segment is damaged. A writer then re-reads it whole ([`Segment::recover`]:
    /// the damage is cut off and reported, never silently skipped or overwritten). A reader
    /// leaves out an incomplete tail only while a writer may be appending to it (`tail_may_grow`);
    /// otherwise, and for misplaced offsets, it gets a [`Error::Corrupt`] naming the position.
    ///
    /// `adopt` says whether a writer may take in gaps that no witness records (see [`Adopt`]).
    pub(crate) fn open(
        storage: &Arc<dyn Storage>,
        dir: &Path,
        base_offset: i64,
        settings: SegmentSettings,
        now_ms: i64,
        tail_may_grow: &dyn Fn() -> bool,
        adopt: Adopt,
    ) -> Result<(Segment, Found)> {
        let (_, index_path, _) = Self::paths(dir, base_offset);
        let index_missing = !storage.exists(&index_path);
        let (seg, witness) = Self::open_files(storage, dir, base_offset, settings)?;
        seg.created_ms.store(now_ms, Ordering::Relaxed);
        if let Witness::Damaged(e) = witness {
            if !settings.writable {
                return Err(e);
            }
            // Rebuilt from the data: where gaps may be, they are taken as found, and said so.
            let mode = if settings.may_have_gaps {
                Recovery::TakeInGaps
            } else {
                Recovery::Witnessed
            };
            let found = match seg.recover_as(mode)? {
                Some(t) => Found::Cut(t),
                None => Found::Noted(Truncation {
                    segment: seg.log_path.clone(),
                    position: 0,
                    offset: base_offset,
                    bytes_removed: 0,
                    reason: format!(
                        "{e}; rebuilt from the segment, whose gaps' base offsets (outside the \
                         CRC) are unverified"
                    ),
                }),
            };
            return Ok((seg, found));
        }
        let quietly = adopt.swap_interrupted && index_missing;
        let reporting = adopt.closed && matches!(witness, Witness::Absent);
        if settings.writable && settings.may_have_gaps && (quietly || reporting) {
            let t = seg.recover_as(Recovery::TakeInGaps)?;
            if t.is_some() || quietly {
                return Ok((seg, Found::cut(t)));
            }
            let first = seg.read_gaps().first();
            let found = match first {
                None => Found::Sound,
                Some((position, offset)) => Found::Noted(Truncation {
                    segment: seg.log_path.clone(),
                    position,
                    offset,
                    bytes_removed: 0,
                    reason: "offset gaps with no witness of them (the cleaner writes one): kept \
                             as found, though their base offsets (outside the CRC) are \
                             unverified; the witness is written now"
                        .into(),
                }),
            };
            return Ok((seg, found));
        }
        if index_missing && settings.writable {
            // Lost: rebuild it (and the time index) by a full recovery scan.
            let t = seg.recover()?;
            return Ok((seg, Found::cut(t)));
        }
        let file_len = seg.size.load(Ordering::Relaxed);
        let (indexed_offset, indexed_pos) = seg.lock_indexes().offset.lookup(i64::MAX);
        if indexed_pos > 0 && indexed_pos >= file_len && (settings.writable || !tail_may_grow()) {
            // The index names a batch past the end: the file was cut short (a writer's index
            // never points past its data; a compaction swap replaces the index after the log).
            let e = seg.corrupt(
                file_len,
                indexed_offset,
                format!(
                    "the file ends at byte {file_len}, but its index has a batch (offset {indexed_offset}) at byte {indexed_pos}: it was cut short"
                ),
            );
            if !settings.writable {
                return Err(e);
            }
            let t = seg.recover()?;
            let t = t.unwrap_or_else(|| Truncation {
                segment: seg.log_path.clone(),
                position: seg.size(),
                offset: indexed_offset,
                bytes_removed: 0,
                reason: e.to_string(),
            });
            return Ok((seg, Found::Cut(t)));
        }
        let (start_offset, start_pos) = if indexed_pos <= file_len {
            (indexed_offset, indexed_pos)
        } else {
            (base_offset, 0)
        };
        // (where it stopped, next offset, bytes since the last index entry, largest timestamp seen)
        let walk = |from: u64, expected: i64| -> Result<(WalkEnd, i64, u64, i64)> {
            let (mut next, mut bytes_since, mut ts_max) = (expected, 0u64, -1i64);
            let end = seg.walk_chain(from, expected, file_len, |_, h| {
                next = h.last_offset() + 1;
                bytes_since += h.total_bytes() as u64;
                ts_max = ts_max.max(h.max_timestamp);
                ControlFlow::Continue(())
            })?;
            Ok((end, next, bytes_since, ts_max))
        };
        let mut walked = walk(start_pos, start_offset)?;
        if start_pos > 0 && matches!(walked.0, WalkEnd::Misplaced { .. }) {
            if settings.writable {
                // The index or the data is damaged: a full scan tells which, rebuilds the
                // indexes and cuts off (and reports) damaged data.
                let t = seg.recover()?;
                return Ok((seg, Found::cut(t)));
            }
            // The index entry itself may be what is wrong: judge the file from its start.
            walked = walk(0, base_offset)?;
        }
        let (end, next, bytes_since, walked_ts_max) = walked;
        let damage = match end {
            WalkEnd::Stopped(pos) if pos == file_len => None,
            WalkEnd::Stopped(pos) if !settings.writable && tail_may_grow() => {
                // A writer may be mid-append: its batch becomes visible once whole.
                seg.size.store(pos, Ordering::Release);
                None
            }
            WalkEnd::Stopped(pos) => Some(seg.corrupt(
                pos,
                next,
                format!(
                    "{} bytes at the end of the segment do not frame as a batch",
                    file_len - pos
                ),
            )),
            WalkEnd::Misplaced {
                position,
                base_offset,
                expected,
            } => Some(seg.corrupt(
                position,
                base_offset,
                format!("batch offsets start at {base_offset}, expected {expected}"),
            )),
        };
        if let Some(e) = damage {
            if !settings.writable {
                return Err(e);
            }
            let t = seg.recover()?;
            return Ok((seg, Found::cut(t)));
        }
        {
            let mut ix = seg.lock_indexes();
            ix.bytes_since_entry = bytes_since;
            // Every record before the last time entry is at most its timestamp, and the walk saw
            // every batch after the last offset entry (both are written for the same batch): the
            // largest timestamp so far is the larger of the two. (The last time entry alone misses
            // the batches after it, and a segment without entries would start again from -1: a
            // later entry would then claim older records were older than they are, and a
            // timestamp seek would skip them.)
            let indexed = ix.time.last().map_or(-1, |(ts, _)| ts);
            ix.max_ts_so_far = indexed.max(walked_ts_max);
            seg.max_timestamp.store(ix.max_ts_so_far, Ordering::Release);
        }
        seg.next_offset.store(next, Ordering::Release);
        Ok((seg, Found::Sound))
    }

    fn lock_indexes(&self) -> std::sync::MutexGuard<'_, Indexes> {
        self.indexes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_gaps(&self) -> RwLockReadGuard<'_, Gaps> {
        self.gaps.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the witness of the segment's gaps (a writer's, where gaps may be).
    pub(crate) fn write_gaps(&self) -> Result<()> {
        if !self.settings.writable {
            return Ok(());
        }
        let path = Self::gaps_path(&self.dir, self.base_offset);
        self.read_gaps().write(&*self.storage, &path)
    }

    /// True when the segment has a witness file.
    pub(crate) fn has_gaps_file(&self) -> bool {
        self.storage
            .exists(&Self::gaps_path(&self.dir, self.base_offset))
    }

    /// Forgets the gaps at or past `position` once the log is cut there, on disk too.
    fn cut_gaps(&self, position: u64) -> Result<()> {
        let cut = self
            .gaps
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .truncate_to_position(position);
        if cut { self.write_gaps() } else { Ok(()) }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub(crate) fn created_ms(&self) -> i64 {
        self.created_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size() == 0
    }

    /// Reads `len` bytes at `position` (fewer at end of file).
    fn read_exact_or_short(&self, position: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let filled = self.fill_at(&mut buf, position)?;
        buf.truncate(filled);
        Ok(buf)
    }

    /// Fills `buf` from `position`, stopping early only at end of file; returns the bytes read.
    fn fill_at(&self, buf: &mut [u8], position: u64) -> Result<usize> {
        crate::storage::fill_at(&*self.file, buf, position).at(&self.log_path)
    }

    /// Walks batch headers from `from` while whole batches fit before `to`, without checking CRCs.
    /// Stops early when `f` breaks or at a header that does not parse. Returns the position where
    /// the walk stopped.
    pub(crate) fn walk_headers(
        &self,
        from: u64,
        to: u64,
        mut f: impl FnMut(u64, &BatchHeader) -> ControlFlow<()>,
    ) -> Result<u64> {
        let mut pos = from;
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_start = from;
        loop {
            if pos + BATCH_HEADER_BYTES as u64 > to {
                return Ok(pos);
            }
            let in_buf =
                pos >= buf_start && pos + BATCH_HEADER_BYTES as u64 <= buf_start + buf.len() as u64;
            if !in_buf {
                let want = SCAN_CHUNK_BYTES.min((to - pos) as usize);
                buf = self.read_exact_or_short(pos, want)?;
                buf_start = pos;
                if buf.len() < BATCH_HEADER_BYTES {
                    return Ok(pos);
                }
            }
            let at = (pos - buf_start) as usize;
            let Ok(h) = BatchHeader::parse(&buf[at..at + BATCH_HEADER_BYTES]) else {
                return Ok(pos);
            };
            let total = h.total_bytes() as u64;
            if pos + total > to {
                return Ok(pos);
            }
            if f(pos, &h).is_break() {
                return Ok(pos);
            }
            pos += total;
        }
    }

    /// [`Segment::walk_headers`] from a batch boundary whose batch starts at offset `expected`,
    /// checking that each batch's offsets follow on from the previous one's.
    fn walk_chain(
        &self,
        from: u64,
        mut expected: i64,
        to: u64,
        mut f: impl FnMut(u64, &BatchHeader) -> ControlFlow<()>,
    ) -> Result<WalkEnd> {
        let mut misplaced = None;
        let gaps = self.read_gaps();
        let stopped = self.walk_headers(from, to, |pos, h| {
            if !gaps.placed(pos, expected, h.base_offset) || h.last_offset() < h.base_offset {
                misplaced = Some(WalkEnd::Misplaced {
                    position: pos,
                    base_offset: h.base_offset,
                    expected,
                });
                return ControlFlow::Break(());
            }
            expected = h.last_offset() + 1;
            f(pos, h)
        })?;
        Ok(misplaced.unwrap_or(WalkEnd::Stopped(stopped)))
    }

    /// Re-reads the whole segment, checking every batch (framing, CRC, offsets that follow on or
    /// sit where the witness of gaps says), and rebuilds both indexes. A bad batch and
    /// everything after it is cut off (when writable) and reported.
    pub(crate) fn recover(&self) -> Result<Option<Truncation>> {
        self.recover_as(Recovery::Witnessed)
    }

    /// [`Segment::recover`], judging base offsets as `mode` says.
    fn recover_as(&self, mode: Recovery) -> Result<Option<Truncation>> {
        let batch_bytes_limit = self
            .settings
            .batch_bytes_max
            .max(crate::format::LOG_OVERHEAD_BYTES);
        let file_len = self.file.len().at(&self.log_path)?;
        {
            let mut ix = self.lock_indexes();
            ix.offset.truncate_to_position(0);
            ix.time.truncate_to_offset(self.base_offset - 1);
            ix.bytes_since_entry = 0;
            ix.max_ts_so_far = -1;
        }
        self.size.store(0, Ordering::Release);
        self.next_offset.store(self.base_offset, Ordering::Release);
        self.max_timestamp.store(-1, Ordering::Release);
        let mut pos = 0u64;
        let mut expected = self.base_offset;
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_start = 0u64;
        let witnessed = self.read_gaps().clone();
        let mut found = Gaps::default();
        let bad = loop {
            if pos == file_len {
                break None;
            }
            if pos + BATCH_HEADER_BYTES as u64 > file_len {
                break Some((
                    expected,
                    format!("torn batch header: {} bytes left", file_len - pos),
                ));
            }
            let header_in_buf =
                pos >= buf_start && pos + BATCH_HEADER_BYTES as u64 <= buf_start + buf.len() as u64;
            if !header_in_buf {
                buf = self.read_exact_or_short(
                    pos,
                    RECOVERY_CHUNK_BYTES.min((file_len - pos) as usize),
                )?;
                buf_start = pos;
            }
            let at = (pos - buf_start) as usize;
            let h = match BatchHeader::parse(&buf[at..at + BATCH_HEADER_BYTES]) {
                Ok(h) => h,
                Err(e) => break Some((expected, e.to_string())),
            };
            let total = h.total_bytes();
            if total > batch_bytes_limit || pos + total as u64 > file_len {
                break Some((
                    h.base_offset,
                    format!(
                        "torn or oversized batch: {total} bytes claimed, {} left",
                        file_len - pos
                    ),
                ));
            }
            if at + total > buf.len() {
                buf = self.read_exact_or_short(
                    pos,
                    total.max(RECOVERY_CHUNK_BYTES.min((file_len - pos) as usize)),
                )?;
                buf_start = pos;
            }
            let at = (pos - buf_start) as usize;
            let batch = match Batch::parse(Bytes::copy_from_slice(&buf[at..at + total])) {
                Ok(b) => b,
                Err(e) => break Some((h.base_offset, e.to_string())),
            };
            if let Err(e) = batch.verify_crc() {
                break Some((h.base_offset, e.to_string()));
            }
            // baseOffset is outside the CRC: a batch that does not start exactly where the last
            // one ended, or where the witness of gaps says, is corrupt.
            let placed = match mode {
                Recovery::Witnessed => witnessed.placed(pos, expected, h.base_offset),
                Recovery::TakeInGaps => h.base_offset >= expected,
            };
            if !placed
                || h.last_offset() < h.base_offset
                || h.last_offset() - self.base_offset > i32::MAX as i64
            {
                break Some((
                    h.base_offset,
                    format!(
                        "offsets {}..={} do not follow {}",
                        h.base_offset,
                        h.last_offset(),
                        expected - 1
                    ),
                ));
            }
            if h.base_offset != expected {
                found.push(pos, h.base_offset);
            }
            self.index_batch(pos, &h);
            pos += total as u64;
            expected = h.last_offset() + 1;
            self.size.store(pos, Ordering::Release);
            self.next_offset.store(expected, Ordering::Release);
        };
        if mode == Recovery::TakeInGaps || found != witnessed {
            // Taken in, or cut (the witness names no gap the scan did not pass).
            *self.gaps.write().unwrap_or_else(|e| e.into_inner()) = found;
            self.write_gaps()?;
        }
        let Some((offset, reason)) = bad else {
            return Ok(None);
        };
        if self.settings.writable {
            self.file.set_len(pos).at(&self.log_path)?;
            self.file.sync_all().at(&self.log_path)?;
        }
        Ok(Some(Truncation {
            segment: self.log_path.clone(),
            position: pos,
            offset,
            bytes_removed: file_len - pos,
            reason,
        }))
    }

    fn index_batch(&self, position: u64, h: &BatchHeader) {
        let mut ix = self.lock_indexes();
        if position > 0 && ix.bytes_since_entry >= self.settings.index_interval_bytes as u64 {
            ix.offset.push(h.base_offset, position);
            let before = ix.max_ts_so_far;
            ix.time.push(before, h.base_offset);
            ix.bytes_since_entry = 0;
        }
        ix.bytes_since_entry += h.total_bytes() as u64;
        ix.max_ts_so_far = ix.max_ts_so_far.max(h.max_timestamp);
        self.raise_max_timestamp(h.max_timestamp);
    }

    /// Takes in a batch's largest timestamp, unless the segment's is not yet computed (it then
    /// stays unknown, to be computed over every batch: raising it from one batch would hide the
    /// older ones from time seeks and age it early for retention).
    fn raise_max_timestamp(&self, ts: i64) {
        let _ = self
            .max_timestamp
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |known| {
                (known != UNKNOWN_TS && ts > known).then_some(ts)
            });
    }

    /// True when a batch of `bytes` (last offset `last_offset`) must go to a new segment.
    pub(crate) fn must_roll(
        &self,
        bytes: usize,
        last_offset: i64,
        bytes_max: u64,
        age_ms_max: i64,
        now_ms: i64,
    ) -> bool {
        let size = self.size();
        if size == 0 {
            return false;
        }
        let ix = self.lock_indexes();
        size + bytes as u64 > bytes_max
            || now_ms - self.created_ms() >= age_ms_max
            || ix.offset.is_full()
            || ix.time.is_full()
            || last_offset - self.base_offset > i32::MAX as i64
    }

    /// Appends one encoded, validated batch whose offsets follow `next_offset`. The caller holds
    /// the partition's write lock.
    pub(crate) fn append(&self, buf: &[u8], h: &BatchHeader) -> Result<()> {
        debug_assert!(h.base_offset >= self.next_offset(), "offsets must increase");
        debug_assert_eq!(buf.len(), h.total_bytes());
        let pos = self.size();
        {
            // The batch may bring an index entry: its blocks first, so that a full disk fails
            // the append here, before any byte of it is written.
            let mut ix = self.lock_indexes();
            ix.offset.reserve_next()?;
            ix.time.reserve_next()?;
        }
        if let Err(e) = self.file.write_all_at(buf, pos) {
            // A full disk or a failed write may leave part of the batch behind: cut it off
            // (best effort), so that a clean close never vouches for a torn batch past the end.
            let _ = self.file.set_len(pos);
            return Err(Error::io(&self.log_path, e));
        }
        if h.base_offset != self.next_offset() {
            // Only the cleaner's rewrite leaves gaps; it writes their witness when done.
            self.gaps
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .push(pos, h.base_offset);
        }
        self.index_batch(pos, h);
        self.next_offset
            .store(h.last_offset() + 1, Ordering::Release);
        self.size.store(pos + buf.len() as u64, Ordering::Release);
        Ok(())
    }

    /// For a read-only follower: takes in batches the writer appended since we last looked,
    /// checking each batch's CRC so that a half-written one is never exposed.
    pub(crate) fn refresh(&self) -> Result<()> {
        let file_len = self.file.len().at(&self.log_path)?;
        let from = self.size();
        if file_len <= from {
            return Ok(());
        }
        let mut ok_end = from;
        let mut next = self.next_offset();
        let mut max_ts = -1;
        let gaps = self.read_gaps();
        self.walk_headers(from, file_len, |pos, h| {
            let whole = self
                .read_exact_or_short(pos, h.total_bytes())
                .ok()
                .and_then(|b| Batch::parse(Bytes::from(b)).ok())
                .is_some_and(|b| b.verify_crc().is_ok());
            if !whole || !gaps.placed(pos, next, h.base_offset) {
                return ControlFlow::Break(());
            }
            ok_end = pos + h.total_bytes() as u64;
            next = h.last_offset() + 1;
            max_ts = max_ts.max(h.max_timestamp);
            ControlFlow::Continue(())
        })?;
        drop(gaps);
        self.raise_max_timestamp(max_ts);
        self.next_offset.store(next, Ordering::Release);
        self.size.store(ok_end, Ordering::Release);
        Ok(())
    }

    /// Position of the first batch whose last offset is ≥ `offset`, or `None` if there is none.
    /// The walk there checks that offsets follow on from batch to batch: a batch whose base
    /// offset was damaged is an error, never skipped as if it held earlier offsets.
    pub(crate) fn find_position(&self, offset: i64) -> Result<Option<u64>> {
        let size = self.size();
        let (mut start_offset, mut start) = self.lock_indexes().offset.lookup(offset);
        if start >= size {
            // A follower's view may lag the writer's index: fall back to a scan.
            (start_offset, start) = (self.base_offset, 0);
        }
        let seek = |from: u64, expected: i64| -> Result<(Option<u64>, WalkEnd)> {
            let mut found = None;
            let end = self.walk_chain(from, expected, size, |pos, h| {
                if h.last_offset() >= offset {
                    found = Some(pos);
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            })?;
            Ok((found, end))
        };
        let (mut found, mut end) = seek(start, start_offset)?;
        let walked_to_the_end = end == WalkEnd::Stopped(size);
        if found.is_none() && start > 0 && !walked_to_the_end {
            // The index entry may point at something that is not the batch it names: judge the
            // file from its start.
            (found, end) = seek(0, self.base_offset)?;
        }
        match (found, end) {
            (
                _,
                WalkEnd::Misplaced {
                    position,
                    base_offset,
                    expected,
                },
            ) => Err(self.corrupt(
                position,
                base_offset,
                format!("batch offsets start at {base_offset}, expected {expected}"),
            )),
            (Some(pos), _) => Ok(Some(pos)),
            (None, WalkEnd::Stopped(stop)) if stop < size => {
                // Never skip silently past bytes we cannot frame.
                Err(self.corrupt(stop, offset, "unreadable batch header".into()))
            }
            (None, _) => Ok(None),
        }
    }

    /// Whole batches from `position`, about `max_bytes` of them but at least one.
    pub(crate) fn read(&self, position: u64, max_bytes: usize) -> Result<Vec<Batch>> {
        self.read_with(position, max_bytes, &mut BytesMut::new())
    }

    /// Reads `len` bytes at `position` (fewer at end of file) into `buf`, reusing its
    /// allocation once the batches handed out from it earlier are dropped.
    fn read_into(&self, position: u64, len: usize, buf: &mut BytesMut) -> Result<()> {
        buf.clear();
        buf.resize(len, 0);
        let filled = self.fill_at(buf, position)?;
        buf.truncate(filled);
        Ok(())
    }

    /// [`Segment::read`] into a reusable buffer: a consumer that keeps one avoids a fresh
    /// allocation (and its page faults) per fetch.
    pub(crate) fn read_with(
        &self,
        position: u64,
        max_bytes: usize,
        buf: &mut BytesMut,
    ) -> Result<Vec<Batch>> {
        let size = self.size();
        if position >= size {
            return Ok(Vec::new());
        }
        let want = (max_bytes as u64)
            .min(size - position)
            .max(BATCH_HEADER_BYTES as u64 + 1) as usize;
        self.read_into(position, want.min((size - position) as usize), buf)?;
        let first = BatchHeader::parse(buf.get(..BATCH_HEADER_BYTES).unwrap_or(&[]))
            .map_err(|e| self.corrupt(position, -1, e.to_string()))?;
        if first.total_bytes() > buf.len() {
            if position + first.total_bytes() as u64 > size {
                return Err(self.corrupt(
                    position,
                    first.base_offset,
                    "batch runs past the segment end".into(),
                ));
            }
            self.read_into(position, first.total_bytes(), buf)?;
        }
        let bytes = buf.split().freeze();
        let mut out: Vec<Batch> = Vec::new();
        let mut at = 0usize;
        let gaps = self.read_gaps();
        while at + BATCH_HEADER_BYTES <= bytes.len() {
            let h = BatchHeader::parse(&bytes[at..at + BATCH_HEADER_BYTES])
                .map_err(|e| self.corrupt(position + at as u64, -1, e.to_string()))?;
            let total = h.total_bytes();
            if at + total > bytes.len() {
                break;
            }
            let here = position + at as u64;
            let expected = match out.last() {
                Some(prev) => prev.header().last_offset() + 1,
                // The first batch read: only the witness knows where it starts, if anyone.
                None => gaps.base_at(here).unwrap_or(h.base_offset),
            };
            if !gaps.placed(here, expected, h.base_offset) {
                return Err(self.corrupt(
                    here,
                    h.base_offset,
                    format!(
                        "batch offsets start at {}, expected {expected}",
                        h.base_offset
                    ),
                ));
            }
            let batch = Batch::parse(bytes.slice(at..at + total))
                .map_err(|e| self.corrupt(position + at as u64, h.base_offset, e.to_string()))?;
            // Checksum on write, verify on read: a flipped bit never reaches a reader.
            batch
                .verify_crc()
                .map_err(|e| self.corrupt(position + at as u64, h.base_offset, e.to_string()))?;
            out.push(batch);
            at += total;
        }
        Ok(out)
    }

    pub(crate) fn corrupt(&self, position: u64, offset: i64, reason: String) -> Error {
        Error::Corrupt {
            segment: self.log_path.clone(),
            position,
            offset,
            reason,
        }
    }

    /// An offset from which to scan for the first record with timestamp ≥ `target`.
    pub(crate) fn time_lookup(&self, target: i64) -> i64 {
        self.lock_indexes().time.lookup(target)
    }

    /// Largest record timestamp in the segment (-1 if empty); computed once for reopened segments.
    pub(crate) fn max_timestamp(&self) -> Result<i64> {
        let known = self.max_timestamp.load(Ordering::Acquire);
        if known != UNKNOWN_TS {
            return Ok(known);
        }
        let mut max = -1;
        self.walk_headers(0, self.size(), |_, h| {
            max = max.max(h.max_timestamp);
            ControlFlow::Continue(())
        })?;
        self.max_timestamp.fetch_max(max, Ordering::AcqRel);
        Ok(self.max_timestamp.load(Ordering::Acquire))
    }

    /// Removes every batch whose last offset is ≥ `offset`; returns the new next offset.
    pub(crate) fn truncate_to(&self, offset: i64) -> Result<i64> {
        let Some(pos) = self.find_position(offset)? else {
            return Ok(self.next_offset());
        };
        let mut next = self.base_offset;
        self.walk_headers(0, pos, |_, h| {
            next = h.last_offset() + 1;
            ControlFlow::Continue(())
        })?;
        self.file.set_len(pos).at(&self.log_path)?;
        self.cut_gaps(pos)?;
        {
            let mut ix = self.lock_indexes();
            ix.offset.truncate_to_position(pos);
            ix.time.truncate_to_offset(next);
            ix.bytes_since_entry = ix.offset.last().map_or(pos, |(_, p)| pos.saturating_sub(p));
        }
        self.size.store(pos, Ordering::Release);
        self.next_offset.store(next, Ordering::Release);
        self.max_timestamp.store(UNKNOWN_TS, Ordering::Release);
        Ok(next)
    }

    /// fsyncs the log file's data (group commit calls this).
    pub(crate) fn sync_data(&self) -> Result<()> {
        self.file.sync_data().at(&self.log_path)
    }

    /// fsyncs everything, indexes included (on roll and close).
    pub(crate) fn flush_all(&self) -> Result<()> {
        self.file.sync_all().at(&self.log_path)?;
        let ix = self.lock_indexes();
        ix.offset.flush()?;
        ix.time.flush()
    }

    /// Deletes the segment's files. Open handles (readers) keep working on the unlinked inode.
    pub(crate) fn delete_files(&self) -> Result<()> {
        Self::delete_files_of(&*self.storage, &self.dir, self.base_offset)
    }

    /// Deletes the files of the segment at `base_offset` in `dir`, without opening it.
    pub(crate) fn delete_files_of(
        storage: &dyn Storage,
        dir: &Path,
        base_offset: i64,
    ) -> Result<()> {
        let (log, index, time) = Self::paths(dir, base_offset);
        // The rename is the deletion, and the unlinks after it tidy up: a process killed
        // between two unlinks would otherwise leave an index without its log, which the next
        // open must take for a lost segment. It finishes the deletion instead
        // ([`Self::finish_deletions`]); Kafka renames to `.deleted` for the same reason.
        let doomed = deleted_path(&log);
        match storage.rename(&log, &doomed) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other.at(&log)?,
        }
        for p in [index, time, Self::gaps_path(dir, base_offset), doomed] {
            crate::storage::remove_if_present(storage, &p).at(&p)?;
        }
        Ok(())
    }

    /// Finishes the deletions a killed process left half done in `dir` (a writer removes what
    /// is left of them), and returns the base offsets of those segments: their remaining files
    /// are not a segment.
    pub(crate) fn finish_deletions(
        storage: &dyn Storage,
        dir: &Path,
        writable: bool,
    ) -> Result<Vec<i64>> {
        let mut bases = Vec::new();
        for entry in storage.read_dir(dir).at(dir)? {
            let Some(base) = entry
                .name
                .strip_suffix(DELETED_SUFFIX)
                .and_then(parse_log_name)
            else {
                continue;
            };
            if writable {
                Self::delete_files_of(storage, dir, base)?;
            }
            bases.push(base);
        }
        bases.sort_unstable();
        Ok(bases)
    }

    /// Paths of the four files (log, offset index, time index, witness of gaps), for the
    /// compaction swap.
    pub(crate) fn file_paths(&self) -> [PathBuf; 4] {
        let (a, b, c) = Self::paths(&self.dir, self.base_offset);
        [a, b, c, Self::gaps_path(&self.dir, self.base_offset)]
    }
}
