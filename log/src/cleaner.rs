//! The background cleaner: **retention** deletes whole closed segments of ordinary topics by age
//! or size; **compaction** rewrites the closed segments of compacted topics, keeping the newest
//! record per key (tombstones expire after a delete horizon) at its original offset.
//!
//! The decisions are plain functions over values (`plan`); the I/O stays here and in `compact`,
//! paced by an [`IoBudget`] (`throttle`). [`crate::clean_once`] runs one deterministic round
//! (tests, the CLI); the log's scheduler runs a round every `cleaner_interval_ms`
//! ([`schedule`]), and so does a [`Cleaner`] of one's own. The cleaner works on the
//! [`TopicStore`] it is given, never on the log that owns it.

mod budget;
mod compact;
mod plan;
mod report;
mod throttle;

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

pub use budget::IoBudget;
pub use report::CleanerReport;
use throttle::Throttle;

use crate::config::TopicConfig;
use crate::partition::Partition;
use crate::scheduler::{Scheduler, Shutdown};
use crate::segment::Segment;
use crate::topic_store::TopicStore;
use crate::{Error, Result};

/// Runs one cleaning round over every partition of `store` at `now_ms` (ms since the Unix
/// epoch, the time that record timestamps are judged against): retention for ordinary topics
/// with a limit set, compaction for compacted ones. Stops at the first error. I/O is paced by
/// [`LogConfig::cleaner_io_bytes_per_s`](crate::LogConfig::cleaner_io_bytes_per_s).
pub(crate) fn clean_round(store: &TopicStore, now_ms: i64) -> Result<CleanerReport> {
    if !store.is_writable() {
        return Err(Error::ReadOnly("cannot clean".into()));
    }
    let mut throttle = Throttle::new(store.config().cleaner_io_bytes_per_s, None);
    let mut report = CleanerReport::default();
    for p in store.all_partitions()? {
        report += clean_partition(store, &p, now_ms, &mut throttle, None)?;
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
    store: &TopicStore,
    p: &Partition,
    now_ms: i64,
    throttle: &mut Throttle,
    memo: Option<&mut HashMap<PathBuf, Memo>>,
) -> Result<CleanerReport> {
    if !p.is_writable() {
        return Ok(CleanerReport::default());
    }
    let _busy = store.lock_for_cleaning(&p.dir);
    // What DeleteRecords left behind (it deletes them itself; a crash in between leaves them).
    let below_start = p.delete_segments_below_start()?;
    let mut report = CleanerReport {
        segments_deleted: below_start.len(),
        bytes_freed: below_start.iter().map(|s| s.size()).sum(),
        ..CleanerReport::default()
    };
    let config = p.config();
    if !config.compacted {
        report += apply_retention(p, &config, now_ms)?;
        return Ok(report);
    }
    let active_base = p.segments_snapshot().last().map_or(0, |s| s.base_offset);
    if let Some(m) = memo.as_ref().and_then(|m| m.get(&p.dir))
        && m.active_base == active_base
        && now_ms < m.recheck_at_ms
    {
        return Ok(CleanerReport::default());
    }
    let done = compact::compact_partition(p, &config, now_ms, throttle)?;
    if let Some(memo) = memo {
        memo.insert(
            p.dir.clone(),
            Memo {
                active_base: done.active_base,
                recheck_at_ms: done.recheck_at_ms,
            },
        );
    }
    report += done.report;
    Ok(report)
}

/// Deletes the segments retention picks ([`plan::retention_victims`]). Readers holding one keep
/// reading it: its files are unlinked, not truncated.
fn apply_retention(p: &Partition, cfg: &TopicConfig, now_ms: i64) -> Result<CleanerReport> {
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

/// A background cleaner of one's own, beside the one the log runs: a thread named
/// `weir-cleaner` that runs a round every
/// [`LogConfig::cleaner_interval_ms`](crate::LogConfig::cleaner_interval_ms) until
/// [`Cleaner::stop`] or drop. It holds the log's store weakly: once every [`crate::Log`] handle
/// is gone it exits. A failing partition is reported on stderr (one line) and retried next round.
pub struct Cleaner {
    scheduler: Scheduler,
}

impl std::fmt::Debug for Cleaner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cleaner")
            .field("stopped", &self.scheduler.shutdown().is_stopped())
            .finish()
    }
}

impl Cleaner {
    /// Starts a cleaner on `store` (no thread for a read-only store: it must not write). The
    /// first round runs one interval from now.
    pub(crate) fn start_on(store: &Arc<TopicStore>) -> Cleaner {
        let scheduler = Scheduler::new();
        if store.is_writable()
            && let Err(e) = schedule(&scheduler, Arc::downgrade(store))
        {
            eprintln!(
                "weir-cleaner: cannot start the cleaner thread, nothing will be cleaned: {e}"
            );
        }
        Cleaner { scheduler }
    }

    /// Stops the thread and waits for it; a round under way ends at its next I/O. Idempotent.
    pub fn stop(&self) {
        self.scheduler.stop();
    }
}

/// Runs a cleaner round on `store` every `cleaner_interval_ms`, on `scheduler`, while the store
/// lives. Its paced I/O waits on the scheduler's shutdown, so a stop ends a round at its next I/O.
pub(crate) fn schedule(scheduler: &Scheduler, store: Weak<TopicStore>) -> Result<()> {
    let Some(config) = store.upgrade().map(|s| s.config().clone()) else {
        return Ok(());
    };
    let interval = Duration::from_millis(config.cleaner_interval_ms);
    let mut throttle = Throttle::new(config.cleaner_io_bytes_per_s, Some(scheduler.shutdown()));
    let mut memo = HashMap::new();
    scheduler.every("weir-cleaner", interval, move |shutdown| {
        let Some(store) = store.upgrade() else {
            return ControlFlow::Break(());
        };
        background_round(&store, &mut throttle, &mut memo, shutdown);
        ControlFlow::Continue(())
    })
}

fn background_round(
    store: &TopicStore,
    throttle: &mut Throttle,
    memo: &mut HashMap<PathBuf, Memo>,
    shutdown: &Shutdown,
) {
    let now_ms = store.clock().now_ms();
    // One partition that fails to open (damage a reader would report) must not stop the
    // cleaning of the others.
    let mut partitions = Vec::new();
    for topic in store.topic_names() {
        for id in 0..store.partition_count(&topic).unwrap_or(0) {
            match store.partition(&topic, id) {
                Ok(p) => partitions.push(p),
                Err(e) => eprintln!("weir-cleaner: {topic}-{id}: {e} (retrying next round)"),
            }
        }
    }
    for p in &partitions {
        if shutdown.is_stopped() {
            return;
        }
        if let Err(e) = clean_partition(store, p, now_ms, throttle, Some(&mut *memo)) {
            if shutdown.is_stopped() || throttle.is_stopped() {
                return;
            }
            eprintln!(
                "weir-cleaner: {}-{}: {e} (retrying next round)",
                p.topic, p.id
            );
        }
    }
    // Forget deleted partitions (a set: a log may hold tens of thousands of partitions).
    let live: HashSet<&Path> = partitions.iter().map(|p| p.dir.as_path()).collect();
    memo.retain(|dir, _| live.contains(dir.as_path()));
}
