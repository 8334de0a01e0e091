//! A snapshot of a running job's metrics: what [`crate::JobHandle::metrics`] returns.

use std::fmt;
use std::time::Duration;

/// Counts of one operator, summed over its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorMetrics {
    /// The operator's name.
    pub operator: String,
    /// Records it received, summed over its tasks.
    pub records_in: u64,
    /// Records it passed downstream (results, for a window), summed over its tasks.
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
    /// Epochs committed by this run (a restart counts from zero).
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
    /// The depth of each exchange, in the order the graph declares them.
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
