//! The counters tasks bump without contention (each has a single writer, or is a gauge of
//! relaxed atomics), read by [`super::registry::MetricsRegistry::collect`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use super::snapshot::ExchangeMetrics;

/// Counters of one operator in one task (only that task writes them).
#[derive(Debug)]
pub struct OperatorCounters {
    pub(crate) operator: String,
    records_in: AtomicU64,
    records_out: AtomicU64,
    state_items: AtomicU64,
}

impl OperatorCounters {
    pub(crate) fn new(operator: &str) -> OperatorCounters {
        OperatorCounters {
            operator: operator.to_string(),
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            state_items: AtomicU64::new(0),
        }
    }

    /// Adds to the records-in and records-out counts.
    #[inline]
    pub fn add_in_out(&self, records_in: u64, records_out: u64) {
        // Single writer: a load and a store avoid the locked read-modify-write.
        if records_in != 0 {
            self.records_in
                .store(self.records_in.load(Relaxed) + records_in, Relaxed);
        }
        if records_out != 0 {
            self.records_out
                .store(self.records_out.load(Relaxed) + records_out, Relaxed);
        }
    }

    pub(crate) fn set_state_items(&self, n: usize) {
        self.state_items.store(n as u64, Relaxed);
    }
}

/// The depth of one exchange: records sent but not yet taken by the receiving tasks.
#[derive(Debug)]
pub struct ExchangeGauge {
    pub(crate) name: String,
    queued: AtomicI64,
    queued_max: AtomicI64,
    /// The most records the exchange's channels can hold (its bound).
    pub(crate) capacity_records: i64,
}

impl ExchangeGauge {
    pub(crate) fn new(name: &str, capacity_records: i64) -> ExchangeGauge {
        ExchangeGauge {
            name: name.to_string(),
            queued: AtomicI64::new(0),
            queued_max: AtomicI64::new(0),
            capacity_records,
        }
    }

    pub(crate) fn sent(&self, n: usize) {
        let now = self.queued.fetch_add(n as i64, Relaxed) + n as i64;
        self.queued_max.fetch_max(now, Relaxed);
    }

    pub(crate) fn received(&self, n: usize) {
        self.queued.fetch_sub(n as i64, Relaxed);
    }
}

/// Per-source-task progress.
#[derive(Debug, Default)]
pub(crate) struct SourceProgress {
    pub(crate) records: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) watermark: AtomicI64,
    /// Every partition of the task is idle (or drained): its watermark holds nothing back.
    pub(crate) idle: std::sync::atomic::AtomicBool,
    /// (topic, partition, position) of each owned partition.
    pub(crate) positions: Mutex<Vec<(String, i32, i64)>>,
    pub(crate) decode_errors: AtomicU64,
}

/// What the coordinator records of each commit, for [`super::JobMetrics`]'s checkpoint figures.
#[derive(Debug, Default)]
pub(crate) struct CheckpointStats {
    pub(crate) committed: AtomicU64,
    pub(crate) last_epoch: AtomicU64,
    pub(crate) last_ms: AtomicU64,
    pub(crate) max_ms: AtomicU64,
    pub(crate) total_ms: AtomicU64,
    pub(crate) last_state_bytes: AtomicU64,
}

pub(crate) fn load(a: &AtomicU64) -> u64 {
    a.load(Relaxed)
}

pub(crate) fn gauge_values(g: &ExchangeGauge) -> ExchangeMetrics {
    ExchangeMetrics {
        name: g.name.clone(),
        queued_records: g.queued.load(Relaxed),
        queued_records_max: g.queued_max.load(Relaxed),
        capacity_records: g.capacity_records,
    }
}

pub(crate) fn operator_values(c: &OperatorCounters) -> (u64, u64, u64) {
    (
        c.records_in.load(Relaxed),
        c.records_out.load(Relaxed),
        c.state_items.load(Relaxed),
    )
}
