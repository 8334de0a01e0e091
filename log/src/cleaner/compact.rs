//! Compaction's I/O: map the partition's keys, survey each closed segment, rewrite those worth it
//! into a work directory, then swap the new files in so that a crash at any point leaves either
//! segment whole (an index that is missing is rebuilt by `Segment::open`, and while the work
//! directory is there, the new log's gaps are taken in without their witness).

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::plan::{self, KeyMap, Planner, RecordFacts, ShrinkEstimate, TxnState};
use super::report::CleanerReport;
use super::throttle::Throttle;
use crate::config::TopicConfig;
use crate::error::IoContext;
use crate::format::{
    Batch, BatchBuilder, BatchHeader, BatchOptions, ControlRecord, ControlType, Record, attributes,
};
use crate::partition::{CLEANER_WORK_DIR, Partition};
use crate::segment::{Adopt, Segment, SegmentSettings};
use crate::storage::Storage;
use crate::{Error, Result, util};

/// Bytes read at a time from a segment.
const READ_CHUNK_BYTES: u64 = 1 << 20;
/// Memory the key map of one partition may take (Kafka's dedupe buffer). Past it, only the
/// closed segments mapped so far are compacted this round.
const KEY_MAP_BYTES_MAX: usize = 128 << 20;

/// What compacting one partition did.
#[derive(Debug)]
pub(super) struct Compacted {
    pub report: CleanerReport,
    /// Base of the active segment when compaction began.
    pub active_base: i64,
    /// When to look again though no segment rolled: the earliest delete horizon of a kept
    /// tombstone; `i64::MAX` for never.
    pub recheck_at_ms: i64,
}

/// Compacts the closed segments of `p` (see [`plan::keep_record`]).
pub(super) fn compact_partition(
    p: &Partition,
    config: &TopicConfig,
    now_ms: i64,
    throttle: &mut Throttle,
) -> Result<Compacted> {
    let segs = p.segments_snapshot();
    let mut done = Compacted {
        report: CleanerReport::default(),
        active_base: segs.last().map_or(0, |s| s.base_offset),
        recheck_at_ms: i64::MAX,
    };
    if segs.len() < 2 {
        return Ok(done);
    }
    let decompressed_bytes_max = p.log_config().decompressed_bytes_max;
    let (keys, mapped) = map_keys(&segs, throttle, decompressed_bytes_max)?;
    let mut planner = Planner::new(keys, now_ms, config.delete_retention_ms);
    let work = p.dir.join(CLEANER_WORK_DIR);
    remove_work_dir(&**p.storage(), &work)?;
    let closed = &segs[..segs.len() - 1];
    for seg in &closed[..mapped.min(closed.len())] {
        if seg.is_empty() {
            continue; // compacted away entirely in an earlier round
        }
        let survey = survey(seg, &planner, throttle, decompressed_bytes_max)?;
        done.recheck_at_ms = done.recheck_at_ms.min(survey.next_expiry_ms);
        if !survey.estimate.worth_rewriting() {
            // Its droppable records stay: their keys' tombstones must stay too.
            for key in survey.dropped_keys {
                planner.mark_stale(key);
            }
            continue;
        }
        let result = rewrite(
            p,
            seg,
            &planner,
            &work,
            now_ms,
            throttle,
            decompressed_bytes_max,
        );
        let removed = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = remove_work_dir(&**p.storage(), &work);
                return Err(e);
            }
        };
        if let Some((old_bytes, new_bytes, records_removed)) = removed {
            done.report.segments_compacted += 1;
            done.report.bytes_freed += old_bytes.saturating_sub(new_bytes);
            done.report.records_removed += records_removed;
        }
    }
    if mapped < closed.len() {
        // The key map filled up: the rest waits for a later round (after the next roll).
        done.recheck_at_ms = i64::MAX;
    }
    remove_work_dir(&**p.storage(), &work)?;
    Ok(done)
}

fn remove_work_dir(storage: &dyn Storage, work: &Path) -> Result<()> {
    match storage.remove_dir_all(work) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(work, e)),
    }
}

/// Calls `f` on each whole batch of `seg` below byte `end`, oldest first, reading in chunks
/// charged to the budget.
fn for_each_batch(
    seg: &Segment,
    end: u64,
    throttle: &mut Throttle,
    mut f: impl FnMut(&Batch, &mut Throttle) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let mut pos = 0u64;
    while pos < end {
        let want = READ_CHUNK_BYTES.min(end - pos);
        throttle.charge(want)?;
        let batches = seg.read(pos, want as usize)?;
        let got: u64 = batches.iter().map(|b| b.bytes().len() as u64).sum();
        if got == 0 {
            return Err(seg.corrupt(pos, -1, "no whole batch where the segment has bytes".into()));
        }
        if got > want {
            // One batch larger than a chunk: pay for the rest.
            throttle.charge(got - want)?;
        }
        for b in &batches {
            if pos >= end {
                return Ok(());
            }
            pos += b.bytes().len() as u64;
            if f(b, throttle)?.is_break() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The outcome of a control batch: `Some(true)` for COMMIT, `Some(false)` for ABORT, `None` when
/// it does not decode (its transaction then stays open: everything of it is kept).
fn control_outcome(b: &Batch, decompressed_bytes_max: usize) -> Option<bool> {
    let r = b.records(decompressed_bytes_max).ok()?.next()?.ok()?;
    let c = ControlRecord::decode(r.key.as_deref()?, r.value.as_deref()?).ok()?;
    Some(c.kind == ControlType::Commit)
}

/// Maps every key of the partition to its newest offset, oldest segment first, until the map is
/// full. Returns the map and how many segments it covers whole (the active one's tail as of now).
fn map_keys(
    segs: &[Arc<Segment>],
    throttle: &mut Throttle,
    decompressed_bytes_max: usize,
) -> Result<(KeyMap, usize)> {
    let mut keys = KeyMap::default();
    for (i, seg) in segs.iter().enumerate() {
        let mut full = false;
        for_each_batch(seg, seg.size(), throttle, |b, _| {
            if keys.bytes() > KEY_MAP_BYTES_MAX {
                full = true;
                return Ok(ControlFlow::Break(()));
            }
            let h = b.header();
            if h.is_control() {
                if let Some(committed) = control_outcome(b, decompressed_bytes_max) {
                    keys.end_transaction(h.producer_id, h.base_offset, committed);
                }
                return Ok(ControlFlow::Continue(()));
            }
            for r in b.records(decompressed_bytes_max)? {
                let r = r?;
                if h.is_transactional() {
                    keys.add_transactional(h.producer_id, r.offset, r.key.as_deref());
                } else if let Some(k) = &r.key {
                    keys.add(k, r.offset);
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        if full {
            return Ok((keys, i));
        }
    }
    Ok((keys, segs.len()))
}

fn facts<'a>(r: &'a Record, txn: TxnState) -> RecordFacts<'a> {
    RecordFacts {
        offset: r.offset,
        key: r.key.as_deref(),
        tombstone: r.value.is_none(),
        timestamp: r.timestamp,
        txn,
    }
}

fn weight(r: &Record) -> u64 {
    let headers: usize = r
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
        .sum();
    plan::record_weight(
        r.key.as_ref().map_or(0, |k| k.len()),
        r.value.as_ref().map_or(0, |v| v.len()),
        headers,
    )
}

/// What compaction would do to one segment, found without writing anything.
struct Survey {
    estimate: ShrinkEstimate,
    /// Keys of the records it would drop (copied: a record's key shares its batch's buffer).
    dropped_keys: HashSet<Box<[u8]>>,
    /// Earliest time a tombstone it keeps passes the delete horizon later than now, or
    /// `i64::MAX`.
    next_expiry_ms: i64,
}

fn survey(
    seg: &Segment,
    planner: &Planner,
    throttle: &mut Throttle,
    decompressed_bytes_max: usize,
) -> Result<Survey> {
    let mut s = Survey {
        estimate: ShrinkEstimate::default(),
        dropped_keys: HashSet::new(),
        next_expiry_ms: i64::MAX,
    };
    for_each_batch(seg, seg.size(), throttle, |b, _| {
        let h = b.header();
        let bytes = b.bytes().len() as u64;
        if h.is_control() {
            s.estimate.add_batch(bytes, 1, 1, 1, 1);
            return Ok(ControlFlow::Continue(()));
        }
        let txn = planner.txn_state(h.is_transactional(), h.producer_id, h.base_offset);
        let (mut records, mut kept, mut total_weight, mut kept_weight) = (0, 0, 0, 0);
        for r in b.records(decompressed_bytes_max)? {
            let r = r?;
            let w = weight(&r);
            records += 1;
            total_weight += w;
            if planner.keep(&facts(&r, txn)) {
                kept += 1;
                kept_weight += w;
                // Expired ones kept here are protected by a stale key: only a roll changes that.
                let expiry = r
                    .timestamp
                    .saturating_add(planner.delete_retention_ms)
                    .saturating_add(1);
                if r.value.is_none() && r.key.is_some() && expiry > planner.now_ms {
                    s.next_expiry_ms = s.next_expiry_ms.min(expiry);
                }
            } else if let Some(k) = &r.key
                && !s.dropped_keys.contains(k.as_ref())
            {
                s.dropped_keys.insert(k.as_ref().into());
            }
        }
        s.estimate
            .add_batch(bytes, records, kept, total_weight, kept_weight);
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(s)
}

/// A batch holding only the kept records of `records` (from the batch of header `h`), at their
/// original offsets: same producer, sequence, flags and compression; its base offset is the
/// first kept record's.
fn rebuild(h: &BatchHeader, records: &[Record], keep: &[bool]) -> Result<Batch> {
    let mut kept = records
        .iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(r, _)| r)
        .peekable();
    let base = kept
        .peek()
        .map(|r| r.offset)
        .ok_or_else(|| Error::Internal("rebuilding a batch with no record kept".into()))?;
    let mut builder = BatchBuilder::new(BatchOptions {
        compression: h.compression()?,
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        base_sequence: h.base_sequence,
        transactional: h.is_transactional(),
        control: false,
        log_append_time: h.attributes & attributes::TIMESTAMP_TYPE != 0,
    });
    for r in kept {
        let delta = i32::try_from(r.offset - base).map_err(|_| {
            Error::Internal(format!(
                "offset {} too far from batch base {base}",
                r.offset
            ))
        })?;
        builder.push_with_offset_delta(
            delta,
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
    }
    let mut buf = builder.finish(base);
    Batch::set_partition_leader_epoch(&mut buf, h.partition_leader_epoch);
    let batch = Batch::parse(Bytes::from(buf))?;
    // Checksum on write, verified before it reaches the disk.
    batch.verify_crc()?;
    if batch.header().base_offset != base || batch.header().last_offset() > h.last_offset() {
        return Err(Error::Internal(format!(
            "rebuilt batch holds offsets {}..={}, expected from {base} up to {}",
            batch.header().base_offset,
            batch.header().last_offset(),
            h.last_offset()
        )));
    }
    Ok(batch)
}

/// Rewrites `seg` with only the records `planner` keeps and swaps it in. Returns (old bytes, new
/// bytes, records removed), or `None` if the segment left the partition meanwhile.
fn rewrite(
    p: &Partition,
    seg: &Arc<Segment>,
    planner: &Planner,
    work: &Path,
    now_ms: i64,
    throttle: &mut Throttle,
    decompressed_bytes_max: usize,
) -> Result<Option<(u64, u64, u64)>> {
    // Not create_dir_all: a partition deleted meanwhile must not come back.
    let storage = p.storage();
    storage
        .create_dir(work)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Ok(())
            } else {
                Err(e)
            }
        })
        .at(work)?;
    let settings = p.segment_settings(true);
    let fresh = Segment::create(storage, work, seg.base_offset, settings, now_ms)?;
    let mut removed = 0u64;
    let write = |b: &Batch, throttle: &mut Throttle| -> Result<()> {
        throttle.charge(b.bytes().len() as u64)?;
        fresh.append(b.bytes(), b.header())
    };
    let old_bytes = seg.size();
    for_each_batch(seg, old_bytes, throttle, |b, throttle| {
        let h = b.header();
        if h.is_control() {
            // Transaction markers stay as they are.
            return write(b, throttle).map(|()| ControlFlow::Continue(()));
        }
        let txn = planner.txn_state(h.is_transactional(), h.producer_id, h.base_offset);
        let records = b
            .records(decompressed_bytes_max)?
            .collect::<Result<Vec<Record>>>()?;
        let keep: Vec<bool> = records
            .iter()
            .map(|r| planner.keep(&facts(r, txn)))
            .collect();
        let kept = keep.iter().filter(|k| **k).count();
        removed += (records.len() - kept) as u64;
        if kept == records.len() {
            write(b, throttle)?;
        } else if kept > 0 {
            write(&rebuild(h, &records, &keep)?, throttle)?;
        }
        Ok(ControlFlow::Continue(()))
    })?;
    fresh.flush_all()?;
    // Every gap the rewrite left, for readers to check base offsets against (see
    // `crate::segment::Gaps`).
    fresh.write_gaps()?;
    let new_bytes = fresh.size();
    let fresh_paths = fresh.file_paths();
    drop(fresh);
    util::sync_dir(&**storage, work)?;
    if !swap_in(p, seg, &fresh_paths, settings, now_ms)? {
        return Ok(None);
    }
    Ok(Some((old_bytes, new_bytes, removed)))
}

fn remove_if_exists(storage: &dyn Storage, path: &Path) -> Result<()> {
    crate::storage::remove_if_present(storage, path).at(path)
}

/// True while `seg` is in the partition and not its active segment.
fn is_closed_in(p: &Partition, seg: &Arc<Segment>) -> bool {
    let segs = p.segments_snapshot();
    segs.iter()
        .position(|s| Arc::ptr_eq(s, seg))
        .is_some_and(|i| i + 1 < segs.len())
}

/// Puts the rewritten files (`fresh`: .log, .index, .timeindex, .gaps in the work directory) in
/// place of `old`'s, in an order that survives a crash at any step:
/// 1. remove the old indexes (durably, before anything else changes);
/// 2. rename the new .log over the old one, atomically: the old or the new log, whole;
/// 3. move the new .gaps, the new .timeindex, then the new .index in (while .index is missing
///    and the work directory is there, open rebuilds the indexes and takes the gaps as found).
///
/// Then opens the new segment and puts it in the partition's list. Readers holding the old one
/// keep reading its unlinked files. False if `old` left the partition (or became active) first.
fn swap_in(
    p: &Partition,
    old: &Arc<Segment>,
    fresh: &[std::path::PathBuf; 4],
    settings: SegmentSettings,
    now_ms: i64,
) -> Result<bool> {
    // Appends wait while files move: the segment cannot become active under us.
    let _blocked = p.block_appends();
    if !is_closed_in(p, old) {
        return Ok(false);
    }
    let [log, index, time, gaps] = old.file_paths();
    let dir = log
        .parent()
        .ok_or_else(|| Error::Internal("segment file without a directory".into()))?;
    let storage = p.storage();
    remove_if_exists(&**storage, &index)?;
    remove_if_exists(&**storage, &time)?;
    util::sync_dir(&**storage, dir)?;
    storage.rename(&fresh[0], &log).at(&log)?;
    util::sync_dir(&**storage, dir)?;
    storage.rename(&fresh[3], &gaps).at(&gaps)?;
    storage.rename(&fresh[2], &time).at(&time)?;
    storage.rename(&fresh[1], &index).at(&index)?;
    util::sync_dir(&**storage, dir)?;
    let (new, found) = Segment::open(
        storage,
        dir,
        old.base_offset,
        settings,
        now_ms,
        &|| false,
        Adopt::default(),
    )?;
    if let Some(t) = found.report() {
        return Err(Error::Internal(format!(
            "the segment compaction just wrote is damaged: {} at byte {}: {}",
            t.segment.display(),
            t.position,
            t.reason
        )));
    }
    let new = Arc::new(new);
    if p.replace_segment(old, new.clone()) {
        return Ok(true);
    }
    // Truncated away between the check and now (an administrative truncation). If no segment of
    // this base remains, the files just renamed in must go too, or a restart would revive them.
    let base = old.base_offset;
    if !p.segments_snapshot().iter().any(|s| s.base_offset == base) {
        new.delete_files()?;
        return Ok(false);
    }
    Err(Error::Internal(format!(
        "segment {} became active while being compacted",
        log.display()
    )))
}
