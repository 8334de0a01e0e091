//! Job metrics: counters the tasks bump without contention, read as one snapshot by the handle.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

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

/// Checkpoint statistics.
#[derive(Debug, Default)]
pub(crate) struct CheckpointStats {
    pub(crate) committed: AtomicU64,
    pub(crate) last_epoch: AtomicU64,
    pub(crate) last_ms: AtomicU64,
    pub(crate) max_ms: AtomicU64,
    pub(crate) total_ms: AtomicU64,
    pub(crate) last_state_bytes: AtomicU64,
}

/// Counts of one operator, summed over its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorMetrics {
    /// The operator's name.
    pub operator: String,
    /// Records it received.
    pub records_in: u64,
    /// Records it emitted.
    pub records_out: u64,
    /// Windows, timers or keys held in state (operators that report it).
    pub state_items: u64,
}

/// Depth of one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeMetrics {
    /// The exchange's name (the stage it feeds).
    pub name: String,
    /// Records queued in its channels now.
    pub queued_records: i64,
    /// The most ever queued at once.
    pub queued_records_max: i64,
    /// Its bound: channels × batches per channel × records per batch.
    pub capacity_records: i64,
}

/// A snapshot of a running job's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct JobMetrics {
    /// Time since the job started.
    pub elapsed: Duration,
    /// Records read from the sources.
    pub source_records: u64,
    /// Bytes of record values read from the sources.
    pub source_bytes: u64,
    /// Source records per second since the start.
    pub events_per_s: f64,
    /// Records still to read: high watermark minus position, over the source partitions.
    pub source_lag: i64,
    /// Values the sources could not decode (sent to the dead-letter topic or failed the job).
    pub decode_errors: u64,
    /// The lowest source watermark (event time), or `None` before any.
    pub watermark: Option<i64>,
    /// Processing time minus that watermark, in ms.
    pub watermark_lag_ms: Option<i64>,
    /// Epochs committed.
    pub checkpoints: u64,
    /// The last committed epoch.
    pub last_epoch: u64,
    /// How long the last commit took (from the epoch's barrier request to the commit), in ms.
    pub checkpoint_last_ms: u64,
    /// The longest so far, in ms.
    pub checkpoint_max_ms: u64,
    /// Bytes of state written by the last checkpoint.
    pub checkpoint_state_bytes: u64,
    /// Per operator, summed over tasks.
    pub operators: Vec<OperatorMetrics>,
    /// Per exchange.
    pub exchanges: Vec<ExchangeMetrics>,
}

impl JobMetrics {
    /// The most records queued in any exchange at any time: what the backpressure bound caps.
    pub fn queued_records_max(&self) -> i64 {
        self.exchanges
            .iter()
            .map(|e| e.queued_records_max)
            .max()
            .unwrap_or(0)
    }

    /// The metrics of the operator named `name`, if any.
    pub fn operator(&self, name: &str) -> Option<&OperatorMetrics> {
        self.operators.iter().find(|o| o.operator == name)
    }
}

impl fmt::Display for JobMetrics {
    /// One line, for periodic printing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>6.1}s  in {} ({:.0} ev/s)  lag {}  wm-lag {}  epoch {} (ckpt {} ms, max {} ms)",
            self.elapsed.as_secs_f64(),
            self.source_records,
            self.events_per_s,
            self.source_lag,
            self.watermark_lag_ms
                .map_or_else(|| "-".to_string(), |l| format!("{l} ms")),
            self.last_epoch,
            self.checkpoint_last_ms,
            self.checkpoint_max_ms,
        )?;
        for o in &self.operators {
            write!(f, "  {}: {}→{}", o.operator, o.records_in, o.records_out)?;
        }
        Ok(())
    }
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
