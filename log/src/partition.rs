//! A partition: an ordered list of segments, the last one active. Owns the append path (offset
//! assignment, rolling, idempotence), the read path (offset and timestamp lookup) and recovery.

mod idempotence;
mod log_start;
pub(crate) mod txn_index;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use idempotence::{ProducerStateMap, SequenceCheck};
pub use txn_index::AbortedTxn;
use txn_index::TxnState;

use crate::clock::Clock;
use crate::config::{LogConfig, TopicConfig};
use crate::error::IoContext;
use crate::flusher::Flusher;
use crate::format::{BATCH_HEADER_BYTES, Batch, BatchHeader};
use crate::format::{BatchBuilder, BatchOptions, ControlRecord, ControlType};
use crate::live_config::LiveTopicConfig;
use crate::options::LogOptions;
use crate::segment::{Adopt, Found, Segment, SegmentSettings, Truncation, parse_log_name};
use crate::storage::Storage;
use crate::{Error, Result, util};

const RECOVERY_POINT_FILE: &str = "recovery-point";
/// Where compaction builds rewritten segments before swapping them in, inside the partition
/// directory. Not a segment name, and without an extension, so that open neither lists it as a
/// segment nor takes it for an atomic write's leftover; a writer's open removes it, and so does
/// compaction before use (what a crash left there).
pub(crate) const CLEANER_WORK_DIR: &str = "cleaner-work";
const PRODUCER_SNAPSHOT_FILE: &str = "producer-state.json";

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// True when the batch was a retry of one already in the log (nothing was written).
    pub duplicate: bool,
}

/// Checks the CRC-32C of an encoded batch (it covers attributes..end, from byte 21).
fn verify_crc(buf: &[u8]) -> Result<()> {
    let stored = u32::from_be_bytes([buf[17], buf[18], buf[19], buf[20]]);
    let actual = crc32c::crc32c(&buf[21..]);
    if stored != actual {
        return Err(Error::Malformed(format!(
            "CRC mismatch: stored {stored:#010x}, computed {actual:#010x}"
        )));
    }
    Ok(())
}

/// Held while appends to a partition are blocked; see [`Partition::block_appends`].
pub(crate) struct AppendsBlocked<'a>(#[allow(dead_code)] std::sync::MutexGuard<'a, WriteState>);

/// What the write path keeps under its lock.
struct WriteState {
    producers: ProducerStateMap,
}

pub(crate) struct Partition {
    pub(crate) topic: String,
    pub(crate) id: i32,
    pub(crate) dir: PathBuf,
    /// The topic's settings, shared with the topic: an altered config applies at once.
    topic_config: Arc<LiveTopicConfig>,
    log_config: Arc<LogConfig>,
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    writable: bool,
    segments: RwLock<Vec<Arc<Segment>>>,
    write: Mutex<WriteState>,
    high_watermark: AtomicI64,
    /// The start DeleteRecords checkpointed (0 if none); the log start offset is the larger of
    /// it and the first segment's base. See `log_start.rs`.
    start_checkpoint: AtomicI64,
    /// Last stable offset: below it every transaction is decided (read_committed stops here).
    last_stable: AtomicI64,
    /// Open and aborted transactions. Lock order: `write`, then `txn`.
    txn: Mutex<TxnState>,
    /// Guards directory listing and segment opening by followers.
    follow: Mutex<()>,
    /// Segments closed by a roll whose fsync is still to be scheduled, with the next base offset.
    pending_roll: Mutex<Vec<(Arc<Segment>, i64)>>,
    /// Written to (or recovered, truncated, cleaned) since it was opened: `close` has work to do.
    /// A partition only read leaves its files as the last close left them.
    changed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Partition({}-{})", self.topic, self.id)
    }
}

/// Base offsets of the segment files in `dir`, sorted.
fn list_segments(storage: &dyn Storage, dir: &Path) -> Result<Vec<i64>> {
    let mut bases = Vec::new();
    for entry in storage.read_dir(dir).at(dir)? {
        if let Some(base) = parse_log_name(&entry.name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// How a partition is opened.
#[derive(Clone, Copy)]
pub(crate) struct OpenMode<'a> {
    /// A writer (which recovers and may cut off damage) or a reader.
    pub writable: bool,
    /// The last writer closed cleanly: segments are trusted (within limits: see
    /// [`Segment::open`]) rather than re-read.
    pub clean: bool,
    /// For a reader: whether a writer may be appending (an incomplete last batch is then in
    /// flight, not damage).
    pub tail_may_grow: &'a dyn Fn() -> bool,
}

/// An index file without its log file means a segment was lost: never carry on without it as if
/// its offsets had never existed. `deleting`: segments whose deletion is under way (their log
/// file renamed away), whose other files may still be there.
fn check_segment_files(
    storage: &dyn Storage,
    dir: &Path,
    bases: &[i64],
    deleting: &[i64],
) -> Result<()> {
    for entry in storage.read_dir(dir).at(dir)? {
        let name = entry.name.as_str();
        let stem = name
            .strip_suffix(".index")
            .or_else(|| name.strip_suffix(".timeindex"))
            .or_else(|| name.strip_suffix(".gaps"));
        let Some(base) = stem.and_then(|s| parse_log_name(&format!("{s}.log"))) else {
            continue;
        };
        if bases.binary_search(&base).is_err() && deleting.binary_search(&base).is_err() {
            return Err(Error::Corrupt {
                segment: dir.join(format!("{}.log", crate::segment::file_stem(base))),
                position: 0,
                offset: base,
                reason: format!("the segment's log file is missing (its index {name} is there)"),
            });
        }
    }
    Ok(())
}

/// Deletes the segments at `bases` in `dir` (whole: they follow damage or a gap) and reports
/// each.
fn cut_segments(
    storage: &dyn Storage,
    dir: &Path,
    bases: &[i64],
    reason: &str,
    truncations: &mut Vec<Truncation>,
) -> Result<()> {
    for &base in bases {
        let log_path = dir.join(format!("{}.log", crate::segment::file_stem(base)));
        let bytes_removed = storage.file_len(&log_path).at(&log_path)?;
        truncations.push(Truncation {
            segment: log_path,
            position: 0,
            offset: base,
            bytes_removed,
            reason: reason.to_string(),
        });
        Segment::delete_files_of(storage, dir, base)?;
    }
    util::sync_dir(storage, dir)
}

/// Each segment must start where the one before ends (dense offsets), or after it (compacted).
fn check_segments_follow_on(segments: &[Arc<Segment>], settings: SegmentSettings) -> Result<()> {
    for pair in segments.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        if !settings.follows(before.next_offset(), after.base_offset) {
            return Err(Error::Corrupt {
                segment: after.log_path.clone(),
                position: 0,
                offset: after.base_offset,
                reason: format!(
                    "the segment starts at offset {}, but the one before it ends at {}",
                    after.base_offset,
                    before.next_offset()
                ),
            });
        }
    }
    Ok(())
}

impl Partition {
    /// What segments need of the topic's settings. From its history, not only its settings
    /// now: a topic compacted once keeps its offset gaps, and batches appended under a larger
    /// limit stay readable (see [`crate::live_config::ConfigHistory`]).
    fn settings(
        config: &LiveTopicConfig,
        log_config: &LogConfig,
        writable: bool,
    ) -> SegmentSettings {
        let history = config.history();
        SegmentSettings {
            index_interval_bytes: log_config.index_interval_bytes,
            index_bytes_max: log_config.index_bytes_max,
            writable,
            may_have_gaps: history.compacted_once,
            batch_bytes_max: history.batch_bytes_max_ever,
        }
    }

    pub(crate) fn segment_settings(&self, writable: bool) -> SegmentSettings {
        Self::settings(&self.topic_config, &self.log_config, writable)
    }

    /// The topic's settings now.
    pub(crate) fn config(&self) -> Arc<TopicConfig> {
        self.topic_config.get()
    }

    /// Opens (creating if needed, when writable) the partition in `dir`. Without `clean`, every
    /// segment from the recovery point on is re-read and checked; what recovery cut off is
    /// returned.
    pub(crate) fn open(
        dir: &Path,
        topic: &str,
        id: i32,
        config: Arc<LiveTopicConfig>,
        log_config: Arc<LogConfig>,
        options: &LogOptions,
        mode: OpenMode<'_>,
    ) -> Result<(Partition, Vec<Truncation>)> {
        let OpenMode {
            writable,
            clean,
            tail_may_grow,
        } = mode;
        let storage = &options.storage;
        let now = options.clock.now_ms();
        // The cleaner's work directory lives from its first rewrite to its last swap: if it is
        // there, a swap may have been cut short, leaving a new log before its witness of gaps.
        let work = dir.join(CLEANER_WORK_DIR);
        let swap_interrupted = writable && storage.is_dir(&work);
        if writable {
            storage.create_dir_all(dir).at(dir)?;
            // Leftovers of an interrupted compaction or atomic write.
            if swap_interrupted {
                storage.remove_dir_all(&work).at(&work)?;
            }
            for entry in storage.read_dir(dir).at(dir)? {
                let p = dir.join(&entry.name);
                if !entry.is_dir
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("cleaned" | "tmp")
                    )
                {
                    storage.remove_file(&p).at(&p)?;
                }
            }
        }
        let settings = Self::settings(&config, &log_config, writable);
        let deleting = Segment::finish_deletions(&**storage, dir, writable)?;
        if writable && !deleting.is_empty() {
            util::sync_dir(&**storage, dir)?;
        }
        let mut bases = list_segments(&**storage, dir)?;
        // A partition without segments (never written) gets its first one on its first append:
        // opening it to read costs nothing on disk.
        let recovery_point = storage
            .read(&dir.join(RECOVERY_POINT_FILE))
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let mut truncations = Vec::new();
        let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(bases.len());
        let mut orphans = Vec::new();
        let last = bases.len().saturating_sub(1);
        for (i, &base) in bases.iter().enumerate() {
            let must_recover = writable && !clean && (base >= recovery_point || i == last);
            if writable
                && !clean
                && let Some(before) = segments.last()
                && !settings.follows(before.next_offset(), base)
            {
                let log_path = dir.join(format!("{}.log", crate::segment::file_stem(base)));
                if storage.file_len(&log_path).at(&log_path)? == 0 {
                    // A roll that failed before the crash left an empty segment: it holds
                    // nothing, and what follows it is sound.
                    let reason = "an empty segment a failed roll left behind";
                    cut_segments(&**storage, dir, &[base], reason, &mut truncations)?;
                    orphans.push(base);
                    continue;
                }
                // A crash took the end of the segment before (its tail was not yet flushed when
                // this one began): offsets must follow on, so this one and those after it go.
                let reason = format!(
                    "follows a gap: the segment before it ends at offset {}",
                    before.next_offset()
                );
                cut_segments(&**storage, dir, &bases[i..], &reason, &mut truncations)?;
                bases.truncate(i);
                break;
            }
            let adopt = Adopt {
                swap_interrupted,
                closed: i < last,
            };
            let (seg, found) =
                Segment::open(storage, dir, base, settings, now, tail_may_grow, adopt)?;
            let found = match found {
                Found::Sound if must_recover => match seg.recover()? {
                    Some(t) => Found::Cut(t),
                    None => Found::Sound,
                },
                found => found,
            };
            let cut = matches!(found, Found::Cut(_));
            truncations.extend(found.report());
            segments.push(Arc::new(seg));
            if cut && i < last {
                // Offsets must follow on: what comes after damage cannot be kept (Kafka's
                // recovery does the same).
                let reason = "follows a damaged segment";
                cut_segments(&**storage, dir, &bases[i + 1..], reason, &mut truncations)?;
                bases.truncate(i + 1);
                break;
            }
        }
        bases.retain(|b| !orphans.contains(b));
        let writer_live = !writable && tail_may_grow();
        check_segment_files(&**storage, dir, &bases, &deleting)?;
        if !writer_live {
            // A reader racing a writer may see a closed segment short of its last batch.
            check_segments_follow_on(&segments, settings)?;
        }
        let start_checkpoint = log_start::read(&**storage, dir)?;
        let mut hw = segments.last().map_or(0, |s| s.next_offset());
        if writable && start_checkpoint > hw {
            // DeleteRecords deleted up to offsets that the crash then took (appended, not yet
            // fsynced): nothing the log holds is readable. Start over at the checkpoint, as
            // Kafka does, so that offsets stay above the start.
            let dropped: Vec<i64> = segments.iter().map(|s| s.base_offset).collect();
            let reason = format!(
                "wholly below the log start offset {start_checkpoint}, which DeleteRecords set \
                 before a crash took the records up to it (the partition ended at {hw})"
            );
            segments.clear();
            cut_segments(&**storage, dir, &dropped, &reason, &mut truncations)?;
            hw = start_checkpoint;
        }
        let part = Partition {
            topic: topic.to_string(),
            id,
            dir: dir.to_path_buf(),
            topic_config: config,
            log_config,
            storage: storage.clone(),
            clock: options.clock.clone(),
            writable,
            segments: RwLock::new(segments),
            write: Mutex::new(WriteState {
                producers: ProducerStateMap::default(),
            }),
            high_watermark: AtomicI64::new(hw),
            start_checkpoint: AtomicI64::new(start_checkpoint),
            last_stable: AtomicI64::new(hw),
            txn: Mutex::new(TxnState::default()),
            follow: Mutex::new(()),
            pending_roll: Mutex::new(Vec::new()),
            changed: std::sync::atomic::AtomicBool::new(!clean || !truncations.is_empty()),
        };
        if let Some(covered) = part.rebuild_producer_state(clean)?
            && !writer_live
            && truncations.is_empty()
        {
            // The producer snapshot saw offsets up to `covered`: the log once held them.
            let last = part
                .active()
                .map(|s| s.log_path.clone())
                .unwrap_or_default();
            let reason = format!(
                "the partition ends at offset {hw}, but its producer snapshot covered offsets up to {covered}: records {hw}..{covered} are missing (a segment lost or cut short)"
            );
            if !writable {
                return Err(Error::Corrupt {
                    segment: last,
                    position: 0,
                    offset: hw,
                    reason,
                });
            }
            truncations.push(Truncation {
                segment: last,
                position: part.active().map_or(0, |s| s.size()),
                offset: hw,
                bytes_removed: 0,
                reason,
            });
        }
        Ok((part, truncations))
    }

    /// Loads the producer snapshot (producers and open transactions) and replays the batches
    /// written after it; aborted transactions come from their file, re-derived past the
    /// snapshot. Followers do the same, read-only.
    ///
    /// Returns the snapshot's offset when it covers more than the log holds: records it saw are
    /// gone (the snapshot is then not used).
    fn rebuild_producer_state(&self, clean: bool) -> Result<Option<i64>> {
        let path = self.dir.join(PRODUCER_SNAPSHOT_FILE);
        let hw = self.high_watermark();
        let mut beyond_log = None;
        let (mut producers, ongoing, from) =
            match ProducerStateMap::read_snapshot(&*self.storage, &path) {
                Some((s, ongoing, off)) if off <= hw => (s, ongoing, off),
                Some((_, _, off)) => {
                    beyond_log = Some(off);
                    if self.writable {
                        // Gone for good, before any append: once the log grew past `off`
                        // again, this snapshot would pass for one of the new log, and its
                        // producers and open transactions (of the log that was lost) would
                        // replace the real ones (found by the simulation: an aborted
                        // transaction read as committed after a second crash).
                        crate::storage::remove_if_present(&*self.storage, &path).at(&path)?;
                        util::sync_dir(&*self.storage, &self.dir)?;
                    }
                    (ProducerStateMap::default(), Default::default(), i64::MIN)
                }
                None => (ProducerStateMap::default(), Default::default(), i64::MIN),
            };
        let mut txn = TxnState {
            ongoing,
            aborted: txn_index::load_aborted(&*self.storage, &self.dir),
            index_stale: false,
        };
        if !(clean && from == hw) {
            txn.truncate(from);
            self.replay(from, hw, Some(&mut producers), &mut txn)?;
        }
        producers.expire(self.clock.now_ms() - self.log_config.producer_idle_ms_max);
        if self.writable && !clean {
            // Rewritten whole after an unclean stop: drops a torn entry and anything recovery
            // cut off. (After a clean one the file is whole: rewriting it cost two fsyncs per
            // partition at every open.)
            txn_index::rewrite_aborted(&*self.storage, &self.dir, &txn.aborted)?;
        }
        self.last_stable.store(txn.lso(hw), Ordering::Release);
        *self.lock_txn() = txn;
        self.lock_write().producers = producers;
        Ok(beyond_log)
    }

    /// Applies the batches in `[from, to)` to producer and transaction state, in order. Control
    /// batches are read to tell COMMIT from ABORT; data batches need only their headers.
    fn replay(
        &self,
        from: i64,
        to: i64,
        mut producers: Option<&mut ProducerStateMap>,
        txn: &mut TxnState,
    ) -> Result<()> {
        let batches_max = self.log_config.producer_batches_max;
        // Replayed producers count as seen now: we cannot know when they last wrote.
        let now = self.clock.now_ms();
        let max = self.log_config.decompressed_bytes_max;
        for seg in self.segments_snapshot() {
            if seg.next_offset() <= from || seg.base_offset >= to {
                continue;
            }
            // Start at the batch holding `from` (through the index), not at the segment start:
            // followers replay each new stretch as they see it.
            let start = if from > seg.base_offset {
                seg.find_position(from)?.unwrap_or(seg.size())
            } else {
                0
            };
            let mut events: Vec<(u64, BatchHeader)> = Vec::new();
            seg.walk_headers(start, seg.size(), |pos, h| {
                if h.base_offset >= to {
                    return ControlFlow::Break(());
                }
                if h.base_offset >= from {
                    events.push((pos, *h));
                }
                ControlFlow::Continue(())
            })?;
            for (pos, h) in events {
                if !h.is_control() {
                    if let Some(p) = producers.as_deref_mut() {
                        p.record(&h, batches_max, now);
                    }
                    txn.on_data(&h);
                    continue;
                }
                let batch = seg.read(pos, h.total_bytes())?;
                let Some(b) = batch.first() else { continue };
                let Some(r) = b.records(max)?.next().transpose()? else {
                    continue;
                };
                let (Some(k), Some(v)) = (r.key.as_ref(), r.value.as_ref()) else {
                    continue;
                };
                let Ok(marker) = ControlRecord::decode(k, v) else {
                    continue;
                };
                if let Some(p) = producers.as_deref_mut() {
                    p.record_marker(h.producer_id, h.producer_epoch, now);
                }
                txn.on_marker(h.producer_id, marker.kind, h.base_offset);
            }
        }
        Ok(())
    }

    fn lock_txn(&self) -> std::sync::MutexGuard<'_, TxnState> {
        self.txn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offsets below which every transaction is decided. Never below the log start offset (as
    /// in Kafka): a transaction that began below it may still be open, but what it wrote
    /// there is gone, and a read_committed reader at the start must be told the start, not an
    /// offset it may no longer fetch. It waits there until the transaction ends.
    pub(crate) fn last_stable_offset(&self) -> i64 {
        self.last_stable
            .load(Ordering::Acquire)
            .max(self.log_start_offset())
            .min(self.high_watermark())
    }

    /// Aborted transactions overlapping `[from, to)`, for read_committed readers.
    pub(crate) fn aborted_in(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.lock_txn().aborted_in(from, to)
    }

    /// The largest producer id this partition has seen (in its state or its batches), or -1.
    pub(crate) fn max_producer_id(&self) -> i64 {
        self.lock_write().producers.max_producer_id()
    }

    /// The epoch this partition knows for a producer.
    pub(crate) fn producer_epoch(&self, producer_id: i64) -> Option<i16> {
        self.lock_write().producers.epoch(producer_id)
    }

    /// Open transactions: (producer id, first offset).
    pub(crate) fn open_transactions(&self) -> Vec<(i64, i64)> {
        self.lock_txn()
            .ongoing
            .iter()
            .map(|(p, o)| (*p, *o))
            .collect()
    }

    fn lock_write(&self) -> std::sync::MutexGuard<'_, WriteState> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn segments_snapshot(&self) -> Vec<Arc<Segment>> {
        self.segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn active(&self) -> Option<Arc<Segment>> {
        self.segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned()
    }

    /// Next offset to be written; readers see every offset below it.
    pub(crate) fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// First offset still held: where DeleteRecords moved the start, or where retention and
    /// compaction left the first segment, whichever is later.
    pub(crate) fn log_start_offset(&self) -> i64 {
        let first_base = self
            .segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .map_or(0, |s| s.base_offset);
        first_base.max(self.start_checkpoint.load(Ordering::Acquire))
    }

    /// Bytes on disk across segments.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.segments_snapshot().iter().map(|s| s.size()).sum()
    }

    /// Validates and appends one encoded batch, assigning its offsets. Returns the segment written
    /// (for acks=all) with the offsets.
    pub(crate) fn append(&self, mut buf: Vec<u8>) -> Result<(AppendInfo, Option<Arc<Segment>>)> {
        if !self.writable {
            return Err(Error::ReadOnly(format!(
                "cannot append to {}-{}",
                self.topic, self.id
            )));
        }
        let batch_bytes_max = self.config().batch_bytes_max;
        if buf.len() > batch_bytes_max {
            return Err(Error::BatchTooLarge {
                bytes: buf.len(),
                max: batch_bytes_max,
            });
        }
        let h = BatchHeader::parse(buf.get(..BATCH_HEADER_BYTES).unwrap_or(&[]))?;
        if h.total_bytes() != buf.len() {
            return Err(Error::Malformed(format!(
                "batch length says {} bytes, buffer holds {}",
                h.total_bytes(),
                buf.len()
            )));
        }
        if h.records_count < 1 || h.last_offset_delta < h.records_count - 1 {
            return Err(Error::Malformed(format!(
                "{} records with last offset delta {}",
                h.records_count, h.last_offset_delta
            )));
        }
        verify_crc(&buf)?;
        if h.is_control() {
            return Err(Error::Malformed(
                "control batches are written by the transaction coordinator only".into(),
            ));
        }
        let mut w = self.lock_write();
        if let SequenceCheck::Duplicate {
            base_offset,
            last_offset,
        } = w.producers.check(&h, &self.topic, self.id)?
        {
            return Ok((
                AppendInfo {
                    base_offset,
                    last_offset,
                    duplicate: true,
                },
                None,
            ));
        }
        let base = self.high_watermark();
        Batch::set_base_offset(&mut buf, base);
        let h = BatchHeader {
            base_offset: base,
            ..h
        };
        let seg = self.segment_for_append(&h, buf.len(), &w)?;
        seg.append(&buf, &h)?;
        w.producers.record(
            &h,
            self.log_config.producer_batches_max,
            self.clock.now_ms(),
        );
        let hw = h.last_offset() + 1;
        {
            let mut txn = self.lock_txn();
            txn.on_data(&h);
            self.last_stable.store(txn.lso(hw), Ordering::Release);
        }
        self.high_watermark.store(hw, Ordering::Release);
        Ok((
            AppendInfo {
                base_offset: base,
                last_offset: h.last_offset(),
                duplicate: false,
            },
            Some(seg),
        ))
    }

    /// The active segment, rolled first if this batch must go to a new one. Called under the
    /// write lock.
    fn segment_for_append(
        &self,
        h: &BatchHeader,
        bytes: usize,
        w: &WriteState,
    ) -> Result<Arc<Segment>> {
        self.changed.store(true, Ordering::Release);
        let now = self.clock.now_ms();
        let Some(active) = self.active() else {
            // The first append: the partition's first segment.
            return self.roll(h.base_offset, w, now);
        };
        let config = self.config();
        if !active.must_roll(
            bytes,
            h.last_offset(),
            config.segment_bytes_max,
            config.segment_age_ms_max,
            now,
        ) {
            return Ok(active);
        }
        self.roll(h.base_offset, w, now)
    }

    /// Closes the active segment and starts a new one at `base_offset`. The old segment's fsync
    /// and the recovery-point update run on the flusher thread, via `roll_tasks`.
    fn roll(&self, base_offset: i64, w: &WriteState, now: i64) -> Result<Arc<Segment>> {
        let settings = self.segment_settings(true);
        let seg = Arc::new(Segment::create(
            &self.storage,
            &self.dir,
            base_offset,
            settings,
            now,
        )?);
        let closing = self.active();
        let ready = util::sync_dir(&*self.storage, &self.dir).and_then(|()| {
            if let Some(old) = &closing
                && settings.may_have_gaps
                && !old.has_gaps_file()
            {
                // Closed, and as dense as appends are (or as its witness says): written down
                // now, so that a writer opening the partition later need not read it whole.
                old.write_gaps()?;
            }
            let mut txn = self.lock_txn();
            txn.make_index_durable(&*self.storage, &self.dir)?;
            w.producers.write_snapshot(
                &*self.storage,
                &self.dir.join(PRODUCER_SNAPSHOT_FILE),
                base_offset,
                &txn.ongoing,
            )
        });
        if let Err(e) = ready {
            // Left behind, the new file would take the name every later roll needs (each would
            // fail), and after a crash sit inside the partition where offsets must follow on.
            let _ = seg.delete_files();
            return Err(e);
        }
        let mut segs = self.segments.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = segs.last() {
            self.pending_roll
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((old.clone(), base_offset));
        }
        segs.push(seg.clone());
        Ok(seg)
    }

    /// Hands closed segments waiting for their fsync to the flusher.
    pub(crate) fn schedule_roll_flushes(self: &Arc<Self>, flusher: &Flusher) {
        let pending =
            std::mem::take(&mut *self.pending_roll.lock().unwrap_or_else(|e| e.into_inner()));
        for (seg, new_base) in pending {
            let dir = self.dir.clone();
            let storage = self.storage.clone();
            flusher.schedule(Box::new(move || {
                seg.flush_all()?;
                util::write_atomically(
                    &*storage,
                    &dir.join(RECOVERY_POINT_FILE),
                    new_base.to_string().as_bytes(),
                )
            }));
        }
    }

    /// For a read-only follower: takes in what the writer appended since we last looked,
    /// including new segments.
    pub(crate) fn refresh(&self) -> Result<()> {
        if self.writable {
            return Ok(());
        }
        let _guard = self.follow.lock().unwrap_or_else(|e| e.into_inner());
        // The writer's DeleteRecords: only ever forward.
        let start = log_start::read(&*self.storage, &self.dir)?;
        self.start_checkpoint.fetch_max(start, Ordering::AcqRel);
        let old_hw = self.high_watermark();
        match self.active() {
            None => self.open_new_segments(i64::MIN)?,
            Some(active) => {
                let before = active.next_offset();
                active.refresh()?;
                if active.next_offset() == before {
                    self.open_new_segments(active.base_offset)?;
                }
            }
        }
        let last = self.active().map_or(0, |s| s.next_offset());
        self.high_watermark.fetch_max(last, Ordering::AcqRel);
        let hw = self.high_watermark();
        if hw > old_hw {
            // Follow the writer's transactions too: open ones hold the LSO back.
            let mut txn = self.lock_txn();
            self.replay(old_hw, hw, None, &mut txn)?;
            self.last_stable.store(txn.lso(hw), Ordering::Release);
        }
        Ok(())
    }

    fn open_new_segments(&self, after: i64) -> Result<()> {
        let settings = self.segment_settings(false);
        let now = self.clock.now_ms();
        let bases = match list_segments(&*self.storage, &self.dir) {
            Ok(b) => b,
            // The writer deleted the topic: a follower must hear of it, not wait for records
            // that will never come.
            Err(_) if !self.storage.exists(&self.dir) => {
                return Err(Error::TopicDeleted(self.topic.clone()));
            }
            Err(e) => return Err(e),
        };
        for base in bases.into_iter().filter(|&b| b > after) {
            // The writer is live (it just rolled): a new segment's tail may be mid-append.
            let (seg, _) = Segment::open(
                &self.storage,
                &self.dir,
                base,
                settings,
                now,
                &|| true,
                Adopt::default(),
            )?;
            let seg = Arc::new(seg);
            seg.refresh()?;
            self.segments
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .push(seg);
        }
        let last = self.active().map_or(0, |s| s.next_offset());
        self.high_watermark.fetch_max(last, Ordering::AcqRel);
        Ok(())
    }

    fn out_of_range(&self, offset: i64) -> Error {
        Error::OffsetOutOfRange {
            topic: self.topic.clone(),
            partition: self.id,
            offset,
            start: self.log_start_offset(),
            end: self.high_watermark(),
        }
    }

    /// Whole batches holding offsets from `offset` up to (not including) `max_offset`, about
    /// `max_bytes` of them but at least one batch when any is available. The first batch may begin
    /// before `offset` (readers skip those records).
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<Vec<Batch>> {
        self.read_with(offset, max_bytes, max_offset, &mut bytes::BytesMut::new())
    }

    /// [`Partition::read`] into a reusable buffer.
    pub(crate) fn read_with(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        buf: &mut bytes::BytesMut,
    ) -> Result<Vec<Batch>> {
        if !self.writable && offset >= self.high_watermark() {
            self.refresh()?;
        }
        let hw = self.high_watermark().min(max_offset);
        if offset < self.log_start_offset() || offset > self.high_watermark() {
            return Err(self.out_of_range(offset));
        }
        if offset >= hw {
            return Ok(Vec::new());
        }
        let segs = self.segments_snapshot();
        let first = segs
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        for seg in &segs[first..] {
            let Some(pos) = seg.find_position(offset)? else {
                continue;
            };
            let mut batches = seg.read_with(pos, max_bytes, buf)?;
            batches.retain(|b| b.header().base_offset < hw);
            if !batches.is_empty() {
                return Ok(batches);
            }
        }
        Ok(Vec::new())
    }

    /// The earliest offset whose record timestamp is ≥ `timestamp`, or `None` if every record is
    /// older.
    pub(crate) fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<i64>> {
        self.refresh()?;
        let hw = self.high_watermark();
        // Records below the start (in a segment DeleteRecords cut into) are not there to find.
        let log_start = self.log_start_offset();
        for seg in self.segments_snapshot() {
            if seg.next_offset() <= log_start || seg.max_timestamp()? < timestamp {
                continue;
            }
            let start = seg.time_lookup(timestamp).max(log_start);
            let Some(mut pos) = seg.find_position(start)? else {
                continue;
            };
            while pos < seg.size() {
                let batches = seg.read(pos, 1 << 20)?;
                if batches.is_empty() {
                    break;
                }
                for b in &batches {
                    pos += b.bytes().len() as u64;
                    let h = b.header();
                    if h.base_offset >= hw {
                        return Ok(None);
                    }
                    if h.max_timestamp < timestamp || h.is_control() {
                        continue;
                    }
                    for r in b.records(self.log_config.decompressed_bytes_max)? {
                        let r = r?;
                        if r.offset >= start && r.timestamp >= timestamp {
                            return Ok(Some(r.offset));
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// Writes a COMMIT or ABORT marker for `producer_id`'s transaction. The marker carries
    /// `epoch` (bumped by the coordinator at every transaction end), so this partition fences
    /// older epochs from then on.
    pub(crate) fn append_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        kind: ControlType,
        coordinator_epoch: i32,
    ) -> Result<(AppendInfo, Arc<Segment>)> {
        if !self.writable {
            return Err(Error::ReadOnly(format!(
                "cannot append to {}-{}",
                self.topic, self.id
            )));
        }
        let mut w = self.lock_write();
        if let Some(known) = w.producers.epoch(producer_id)
            && epoch < known
        {
            return Err(Error::Fenced(format!(
                "marker of producer {producer_id} epoch {epoch} is older than epoch {known} on {}-{}",
                self.topic, self.id
            )));
        }
        let (key, value) = ControlRecord {
            kind,
            coordinator_epoch,
        }
        .encode();
        let mut b = BatchBuilder::new(BatchOptions {
            producer_id,
            producer_epoch: epoch,
            transactional: true,
            control: true,
            ..BatchOptions::default()
        });
        let now = self.clock.now_ms();
        b.push(now, Some(&key), Some(&value), &[]);
        let base = self.high_watermark();
        let buf = b.finish(base);
        let h = BatchHeader::parse(&buf[..BATCH_HEADER_BYTES])?;
        let seg = self.segment_for_append(&h, buf.len(), &w)?;
        seg.append(&buf, &h)?;
        w.producers.record_marker(producer_id, epoch, now);
        let hw = base + 1;
        let indexed = {
            let mut txn = self.lock_txn();
            let indexed = match txn.on_marker(producer_id, kind, base) {
                Some(a) => txn.index_aborted(&*self.storage, &self.dir, &a),
                None => Ok(()),
            };
            self.last_stable.store(txn.lso(hw), Ordering::Release);
            indexed
        };
        // The marker is in the segment: the partition moves past it even if its index entry
        // failed (the file is then rewritten before it is relied on), or the next append would
        // be given the marker's offset.
        self.high_watermark.store(hw, Ordering::Release);
        indexed?;
        Ok((
            AppendInfo {
                base_offset: base,
                last_offset: base,
                duplicate: false,
            },
            seg,
        ))
    }

    /// Kafka's DeleteRecords: moves the log start offset up to `before_offset` (-1: the high
    /// watermark) and returns the start then. An offset at or below the start changes nothing;
    /// one past the high watermark (or below -1) is [`Error::OffsetOutOfRange`]. The new start
    /// is durable before this returns; segments wholly below it are deleted (a segment
    /// straddling it stays whole, and reads start at the new offset within it).
    pub(crate) fn delete_records(&self, before_offset: i64) -> Result<i64> {
        if !self.writable {
            return Err(Error::ReadOnly(format!(
                "cannot delete records of {}-{}",
                self.topic, self.id
            )));
        }
        let start = {
            // Under the write lock: appends and truncation wait, so the high watermark checked
            // is the one the start is set against.
            let _w = self.lock_write();
            let hw = self.high_watermark();
            let target = if before_offset == -1 {
                hw
            } else {
                before_offset
            };
            if target < 0 || target > hw {
                return Err(self.out_of_range(before_offset));
            }
            let current = self.log_start_offset();
            if target <= current {
                return Ok(current);
            }
            self.changed.store(true, Ordering::Release);
            log_start::write(&*self.storage, &self.dir, target)?;
            self.start_checkpoint.fetch_max(target, Ordering::AcqRel);
            target
        };
        self.delete_segments_below_start()?;
        Ok(start)
    }

    /// Deletes the closed segments that hold only offsets below the log start offset (the
    /// active one stays, whatever it holds).
    pub(crate) fn delete_segments_below_start(&self) -> Result<Vec<Arc<Segment>>> {
        let start = self.start_checkpoint.load(Ordering::Acquire);
        // `base_offset < start` too: a segment compaction emptied holds no offset at all, and
        // stays unless DeleteRecords passed it (compaction keeps emptied segments).
        self.delete_oldest_while(|seg, _| Ok(seg.base_offset < start && seg.next_offset() <= start))
    }

    /// Removes every record at or after `offset` (rounded down to a batch boundary); returns the
    /// new high watermark.
    pub(crate) fn truncate_to(&self, offset: i64) -> Result<i64> {
        let _w = self.lock_write();
        self.changed.store(true, Ordering::Release);
        let mut segs = self.segments.write().unwrap_or_else(|e| e.into_inner());
        while segs.len() > 1 && segs.last().is_some_and(|s| s.base_offset >= offset) {
            if let Some(s) = segs.pop() {
                s.delete_files()?;
            }
        }
        let hw = match segs.last() {
            Some(last) => last.truncate_to(offset)?,
            None => 0,
        };
        drop(segs);
        if hw < self.start_checkpoint.load(Ordering::Acquire) {
            // Truncated below where DeleteRecords had moved the start: the start follows the
            // end down, or the offsets appended next would sit below it, unreadable.
            log_start::write(&*self.storage, &self.dir, hw)?;
            self.start_checkpoint.store(hw, Ordering::Release);
        }
        self.high_watermark.store(hw, Ordering::Release);
        drop(_w);
        let _ = self
            .storage
            .remove_file(&self.dir.join(PRODUCER_SNAPSHOT_FILE));
        // The snapshot was removed above: it cannot cover more than the log.
        self.rebuild_producer_state(false)?;
        Ok(hw)
    }

    /// Flushes everything and writes the producer snapshot and recovery point (clean shutdown).
    pub(crate) fn close(&self) -> Result<()> {
        if !self.writable || !self.changed.load(Ordering::Acquire) {
            return Ok(());
        }
        let w = self.lock_write();
        for seg in self.segments_snapshot() {
            seg.flush_all()?;
        }
        let hw = self.high_watermark();
        let mut txn = self.lock_txn();
        txn.make_index_durable(&*self.storage, &self.dir)?;
        w.producers.write_snapshot(
            &*self.storage,
            &self.dir.join(PRODUCER_SNAPSHOT_FILE),
            hw,
            &txn.ongoing,
        )?;
        drop(txn);
        let active_base = self.active().map_or(0, |s| s.base_offset);
        util::write_atomically(
            &*self.storage,
            &self.dir.join(RECOVERY_POINT_FILE),
            active_base.to_string().as_bytes(),
        )
    }

    /// Removes the oldest segments (never the active one) while `drop(segment)` says so.
    pub(crate) fn delete_oldest_while(
        &self,
        mut drop_it: impl FnMut(&Segment, u64) -> Result<bool>,
    ) -> Result<Vec<Arc<Segment>>> {
        let mut removed = Vec::new();
        loop {
            let total: u64 = self.size_bytes();
            let segs = self.segments_snapshot();
            if segs.len() < 2 {
                break;
            }
            if !drop_it(&segs[0], total)? {
                break;
            }
            let mut current = self.segments.write().unwrap_or_else(|e| e.into_inner());
            // Another caller (retention beside a DeleteRecords) may have removed it meanwhile:
            // remove only the segment judged, and judge the new first one.
            if current.len() < 2 || !Arc::ptr_eq(&current[0], &segs[0]) {
                continue;
            }
            let seg = current.remove(0);
            drop(current);
            self.changed.store(true, Ordering::Release);
            seg.delete_files()?;
            removed.push(seg);
        }
        Ok(removed)
    }

    /// Blocks appends (and truncation) while the guard lives: the cleaner swaps segment files
    /// under it, so that the segment it replaces cannot become active meanwhile.
    pub(crate) fn block_appends(&self) -> AppendsBlocked<'_> {
        AppendsBlocked(self.lock_write())
    }

    /// Replaces the closed segment `old` by `new` (same base offset) in the list.
    pub(crate) fn replace_segment(&self, old: &Arc<Segment>, new: Arc<Segment>) -> bool {
        self.changed.store(true, Ordering::Release);
        let mut segs = self.segments.write().unwrap_or_else(|e| e.into_inner());
        match segs.iter().position(|s| Arc::ptr_eq(s, old)) {
            Some(i) if i + 1 < segs.len() => {
                segs[i] = new;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    pub(crate) fn log_config(&self) -> &LogConfig {
        &self.log_config
    }

    /// The storage this partition's files live on (the cleaner writes its segments there).
    pub(crate) fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
}
