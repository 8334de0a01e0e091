//! The background cleaner: **retention** deletes whole closed segments of ordinary topics by age
//! or size; **compaction** rewrites the closed segments of compacted topics, keeping the newest
//! record per key (tombstones expire after a delete horizon) at its original offset.
//!
//! The decisions are plain functions over values (`plan`); the I/O stays here and in `compact`,
//! paced by an [`IoBudget`]. [`clean_once`] runs one deterministic round (tests, the CLI);
//! [`Cleaner::start`] runs rounds every `cleaner_interval_ms` on a thread until stopped.

mod budget;
pub(crate) mod compact;
mod plan;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

pub use budget::IoBudget;

use crate::clock::{Clock, SystemClock};
use crate::log::{Inner, Log};
use crate::partition::Partition;
use crate::segment::Segment;
use crate::{Error, Result};

/// What a cleaning round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanerReport {
    /// Segments retention deleted.
    pub segments_deleted: usize,
    /// Bytes given back, by retention and compaction.
    pub bytes_freed: u64,
    /// Segments compaction rewrote.
    pub segments_compacted: usize,
    /// Records compaction removed.
    pub records_removed: u64,
}

impl std::ops::AddAssign for CleanerReport {
    fn add_assign(&mut self, other: CleanerReport) {
        self.segments_deleted += other.segments_deleted;
        self.bytes_freed += other.bytes_freed;
        self.segments_compacted += other.segments_compacted;
        self.records_removed += other.records_removed;
    }
}

/// Runs one cleaning round over every partition at `now_ms` (ms since the Unix epoch, the time
/// that record timestamps are judged against): retention for ordinary topics with a limit set,
/// compaction for compacted ones. Stops at the first error. I/O is paced by
/// [`LogConfig::cleaner_io_bytes_per_s`](crate::LogConfig::cleaner_io_bytes_per_s).
pub fn clean_once(log: &Log, now_ms: i64) -> Result<CleanerReport> {
    if !log.is_writable() {
        return Err(Error::ReadOnly("cannot clean".into()));
    }
    let mut throttle = Throttle::new(log.config().cleaner_io_bytes_per_s, None);
    let mut report = CleanerReport::default();
    for p in log.all_partitions()? {
        report += clean_partition(&p, now_ms, &mut throttle, None)?;
    }
    Ok(report)
}

/// What the background cleaner remembers of a compacted partition between rounds, so that it
/// does not re-read a partition that cannot have anything new to clean.
#[derive(Debug, Clone, Copy)]
struct Memo {
    /// Base of the active segment when last compacted: a roll brings new closed data.
    active_base: i64,
    /// When a kept tombstone passes its delete horizon (or `i64::MAX`).
    recheck_at_ms: i64,
}

fn clean_partition(
    p: &Partition,
    now_ms: i64,
    throttle: &mut Throttle,
    memo: Option<&mut HashMap<PathBuf, Memo>>,
) -> Result<CleanerReport> {
    if !p.is_writable() {
        return Ok(CleanerReport::default());
    }
    let _busy = PartitionGuard::lock(&p.dir);
    if !p.config.compacted {
        return apply_retention(p, now_ms);
    }
    let active_base = p.segments_snapshot().last().map_or(0, |s| s.base_offset);
    if let Some(m) = memo.as_ref().and_then(|m| m.get(&p.dir))
        && m.active_base == active_base
        && now_ms < m.recheck_at_ms
    {
        return Ok(CleanerReport::default());
    }
    let done = compact::compact_partition(p, now_ms, throttle)?;
    if let Some(memo) = memo {
        memo.insert(
            p.dir.clone(),
            Memo {
                active_base: done.active_base,
                recheck_at_ms: done.recheck_at_ms,
            },
        );
    }
    Ok(done.report)
}

/// Partitions being cleaned in this process, so that a background round and [`clean_once`] calls
/// never work on one partition at once (they would share its work directory and race on the
/// swap). Keyed by directory: one data directory has one writer process.
static CLEANING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static CLEANING_DONE: Condvar = Condvar::new();

/// Holds one partition in [`CLEANING`] until dropped.
struct PartitionGuard(PathBuf);

impl PartitionGuard {
    fn lock(dir: &Path) -> PartitionGuard {
        let mut busy = CLEANING.lock().unwrap_or_else(|e| e.into_inner());
        while busy.iter().any(|d| d == dir) {
            busy = CLEANING_DONE.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        busy.push(dir.to_path_buf());
        PartitionGuard(dir.to_path_buf())
    }
}

impl Drop for PartitionGuard {
    fn drop(&mut self) {
        CLEANING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|d| *d != self.0);
        CLEANING_DONE.notify_all();
    }
}

/// Deletes the segments retention picks ([`plan::retention_victims`]). Readers holding one keep
/// reading it: its files are unlinked, not truncated.
fn apply_retention(p: &Partition, now_ms: i64) -> Result<CleanerReport> {
    let cfg = &p.config;
    if cfg.retention_ms.is_none() && cfg.retention_bytes.is_none() {
        return Ok(CleanerReport::default());
    }
    let segs = p.segments_snapshot();
    let infos = segment_infos(&segs, now_ms, cfg.retention_ms)?;
    let victims = plan::retention_victims(&infos, now_ms, cfg.retention_ms, cfg.retention_bytes);
    if victims == 0 {
        return Ok(CleanerReport::default());
    }
    // Delete exactly the segments judged, should the list have changed meanwhile.
    let mut doomed = segs[..victims].iter();
    let removed = p.delete_oldest_while(|seg, _| {
        Ok(doomed
            .next()
            .is_some_and(|d| d.base_offset == seg.base_offset))
    })?;
    Ok(CleanerReport {
        segments_deleted: removed.len(),
        bytes_freed: removed.iter().map(|s| s.size()).sum(),
        ..CleanerReport::default()
    })
}

/// Sizes and newest timestamps of `segs`. A reopened segment's newest timestamp costs a walk of
/// its headers, so it is only computed where it can change the answer: up to the first segment
/// young enough to stop the age rule (the rest get `i64::MAX`, "young").
fn segment_infos(
    segs: &[Arc<Segment>],
    now_ms: i64,
    retention_ms: Option<i64>,
) -> Result<Vec<plan::SegmentInfo>> {
    let horizon = retention_ms.map(|ms| now_ms.saturating_sub(ms));
    let mut young_seen = horizon.is_none();
    let mut infos = Vec::with_capacity(segs.len());
    for (i, s) in segs.iter().enumerate() {
        let max_timestamp = if young_seen || i + 1 == segs.len() {
            i64::MAX
        } else {
            let ts = s.max_timestamp()?;
            young_seen = horizon.is_some_and(|h| ts >= h);
            ts
        };
        infos.push(plan::SegmentInfo {
            base_offset: s.base_offset,
            size_bytes: s.size(),
            max_timestamp,
        });
    }
    Ok(infos)
}

/// The stop flag of a background cleaner, with a condvar so that waits end at once on stop.
#[derive(Debug, Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }

    fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `timeout`; true once stopped.
    fn wait(&self, timeout: Duration) -> bool {
        let g = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = self
            .wake
            .wait_timeout_while(g, timeout, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }
}

/// The I/O edge of an [`IoBudget`]: charges, then waits on a monotonic clock. A background
/// cleaner's waits end early on stop, with [`Error::Closed`].
pub(crate) struct Throttle {
    budget: IoBudget,
    clock: SystemClock,
    stop: Option<Arc<StopSignal>>,
}

impl Throttle {
    fn new(bytes_per_s: u64, stop: Option<Arc<StopSignal>>) -> Throttle {
        let clock = SystemClock::new();
        Throttle {
            budget: IoBudget::new(bytes_per_s, clock.monotonic_ms()),
            clock,
            stop,
        }
    }

    /// Call before reading or writing `bytes`.
    pub(crate) fn charge(&mut self, bytes: u64) -> Result<()> {
        let wait = self.budget.charge(bytes, self.clock.monotonic_ms());
        match &self.stop {
            _ if wait.is_zero() => Ok(()),
            Some(stop) if stop.wait(wait) => Err(Error::Closed),
            Some(_) => Ok(()),
            None => {
                std::thread::sleep(wait);
                Ok(())
            }
        }
    }
}

/// The background cleaner of one log: a thread named `weir-cleaner` that runs a round every
/// [`LogConfig::cleaner_interval_ms`](crate::LogConfig::cleaner_interval_ms) until
/// [`Cleaner::stop`] or drop. It holds the log weakly: once every [`Log`] handle is gone it
/// exits. A failing partition is reported on stderr (one line) and retried next round.
pub struct Cleaner {
    signal: Arc<StopSignal>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Cleaner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cleaner")
            .field("stopped", &self.signal.is_stopped())
            .finish()
    }
}

impl Cleaner {
    /// Starts the cleaner thread of `log` (none for a read-only handle: it must not write). The
    /// first round runs one interval from now.
    pub fn start(log: &Log) -> Cleaner {
        let signal = Arc::new(StopSignal::default());
        let mut thread = None;
        if log.is_writable() {
            let weak = Arc::downgrade(&log.inner);
            let interval = Duration::from_millis(log.config().cleaner_interval_ms);
            let bytes_per_s = log.config().cleaner_io_bytes_per_s;
            let s = signal.clone();
            match std::thread::Builder::new()
                .name("weir-cleaner".into())
                .spawn(move || run(&weak, &s, interval, bytes_per_s))
            {
                Ok(t) => thread = Some(t),
                Err(e) => eprintln!(
                    "weir-cleaner: cannot start the cleaner thread, nothing will be cleaned: {e}"
                ),
            }
        }
        Cleaner {
            signal,
            thread: Mutex::new(thread),
        }
    }

    /// Stops the thread and waits for it; a round under way ends at its next I/O. Idempotent.
    pub fn stop(&self) {
        self.signal.stop();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle
            // The thread itself may drop the last log handle, and with it this cleaner.
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }
}

impl Drop for Cleaner {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(log: &Weak<Inner>, signal: &Arc<StopSignal>, interval: Duration, bytes_per_s: u64) {
    let mut throttle = Throttle::new(bytes_per_s, Some(signal.clone()));
    let mut memo = HashMap::new();
    while !signal.wait(interval) {
        let Some(inner) = log.upgrade() else {
            return;
        };
        background_round(&Log { inner }, &mut throttle, &mut memo, signal);
    }
}

fn background_round(
    log: &Log,
    throttle: &mut Throttle,
    memo: &mut HashMap<PathBuf, Memo>,
    signal: &StopSignal,
) {
    let now_ms = log.clock().now_ms();
    // One partition that fails to open (damage a reader would report) must not stop the
    // cleaning of the others.
    let mut partitions = Vec::new();
    for topic in log.topic_names() {
        for id in 0..log.partition_count(&topic).unwrap_or(0) {
            match log.partition(&topic, id) {
                Ok(p) => partitions.push(p),
                Err(e) => eprintln!("weir-cleaner: {topic}-{id}: {e} (retrying next round)"),
            }
        }
    }
    for p in &partitions {
        if signal.is_stopped() {
            return;
        }
        if let Err(e) = clean_partition(p, now_ms, throttle, Some(&mut *memo)) {
            if signal.is_stopped() {
                return;
            }
            eprintln!(
                "weir-cleaner: {}-{}: {e} (retrying next round)",
                p.topic, p.id
            );
        }
    }
    // Forget deleted partitions.
    memo.retain(|dir, _| partitions.iter().any(|p| &p.dir == dir));
}
