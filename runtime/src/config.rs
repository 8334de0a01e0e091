//! Job configuration.

use std::sync::Arc;

use crate::error::{Error, Result};
use weir_log::clock::{Clock, SystemClock};

/// What a job promises about its output after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Guarantee {
    /// Outputs, source offsets and state commit in one log transaction per epoch: after any
    /// crash, the committed output equals that of a run without one. Readers of the output must
    /// read `read_committed` (the default), and see results once per epoch.
    #[default]
    ExactlyOnce,
    /// No transaction: outputs are visible as soon as written and offsets are committed after
    /// them, so a crash may repeat the outputs of the last epoch. Lower latency.
    AtLeastOnce,
}

/// How a job runs. Every bound is named with its unit last.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// The job's name: it names its transactional id, consumer group and state in the log, so a
    /// restarted job must keep it.
    pub name: String,
    /// Exactly-once (default) or at-least-once.
    pub guarantee: Guarantee,
    /// Length of an epoch: how often state and offsets commit, and output becomes visible.
    pub epoch_ms: u64,
    /// Records per batch on an exchange channel.
    pub batch_records_max: usize,
    /// Batches one exchange channel holds before its sender blocks (backpressure).
    pub channel_batches_max: usize,
    /// Bytes a source task reads from the log per poll.
    pub source_poll_bytes_max: usize,
    /// A source partition with no new record for this long stops holding the watermark back.
    pub idle_timeout_ms: i64,
    /// Stop once every source partition is drained (read up to its last stable offset), after a
    /// final watermark that closes every window, and commit. Otherwise the job runs until stopped.
    pub stop_when_drained: bool,
    /// Parallelism of operators that do not set their own.
    pub parallelism_default: usize,
    /// The compacted topic holding operator state snapshots (created if missing).
    pub state_topic: String,
    /// Largest state record; bigger snapshots are split into chunks.
    pub state_chunk_bytes_max: usize,
    /// Print a metrics line to stderr this often (`None`: never).
    pub metrics_print_interval_ms: Option<u64>,
    /// On a cluster, where instances of the job share it through a consumer group: an instance
    /// that sends no heartbeat for this long is dropped from the group and its partitions move
    /// to the others.
    pub session_timeout_ms: u64,
    /// On a cluster: an epoch's transaction left open this long (by an instance that died or
    /// hangs) is aborted by the transaction coordinator, so that readers, and the instance
    /// that takes its partitions over, get past it (Kafka Streams' 10 s). On the embedded log
    /// a restarted job fences its predecessor at once, and a minute is allowed.
    pub transaction_timeout_ms: u64,
    /// On a cluster: at most this often, after an epoch commits, the records of the job's
    /// repartition topics before the offsets just committed for them are deleted (Kafka's
    /// DeleteRecords): no reader needs them again, and without the purge they would stay until
    /// retention. 0: after every commit. Kafka Streams' `repartition.purge.interval.ms`, 30 s.
    pub repartition_purge_interval_ms: u64,
    /// The job's clock. Its wall reading is processing time (idle timeouts, watermark lag); its
    /// monotonic reading paces the epochs, times their commits and paces the metrics line. A
    /// [`weir_log::clock::ManualClock`] here starts an epoch only when moved past `epoch_ms`
    /// (or when every source is drained, with `stop_when_drained`).
    pub clock: Arc<dyn Clock>,
}

impl JobConfig {
    /// Defaults for a job named `name`.
    pub fn new(name: impl Into<String>) -> JobConfig {
        JobConfig {
            name: name.into(),
            guarantee: Guarantee::ExactlyOnce,
            epoch_ms: 1_000,
            batch_records_max: 1_024,
            channel_batches_max: 8,
            source_poll_bytes_max: 1 << 20,
            idle_timeout_ms: 5_000,
            stop_when_drained: false,
            parallelism_default: std::thread::available_parallelism().map_or(1, |n| n.get()),
            state_topic: "__weir_state".to_string(),
            state_chunk_bytes_max: 512 << 10,
            metrics_print_interval_ms: None,
            session_timeout_ms: 10_000,
            transaction_timeout_ms: 10_000,
            repartition_purge_interval_ms: 30_000,
            clock: Arc::new(SystemClock::new()),
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 200
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !name_ok {
            return Err(Error::config(
                "name",
                "1 to 200 characters from [A-Za-z0-9._-]",
            ));
        }
        let bounds: [(&'static str, u64, u64, u64); 8] = [
            ("epoch_ms", self.epoch_ms, 1, 3_600_000),
            (
                "batch_records_max",
                self.batch_records_max as u64,
                1,
                1 << 20,
            ),
            (
                "channel_batches_max",
                self.channel_batches_max as u64,
                1,
                1 << 16,
            ),
            (
                "source_poll_bytes_max",
                self.source_poll_bytes_max as u64,
                1 << 10,
                1 << 30,
            ),
            (
                "parallelism_default",
                self.parallelism_default as u64,
                1,
                1024,
            ),
            (
                "state_chunk_bytes_max",
                self.state_chunk_bytes_max as u64,
                1 << 10,
                64 << 20,
            ),
            (
                "session_timeout_ms",
                self.session_timeout_ms,
                1_000,
                3_600_000,
            ),
            (
                "transaction_timeout_ms",
                self.transaction_timeout_ms,
                1_000,
                900_000,
            ),
        ];
        for (field, value, min, max) in bounds {
            if value < min || value > max {
                return Err(Error::config(
                    field,
                    format!("must be in {min}..={max}, got {value}"),
                ));
            }
        }
        if self.idle_timeout_ms < 1 {
            return Err(Error::config("idle_timeout_ms", "must be positive"));
        }
        if self.state_topic.is_empty() {
            return Err(Error::config("state_topic", "must not be empty"));
        }
        Ok(())
    }

    /// The transactional id and consumer group of the job.
    pub fn job_id(&self) -> String {
        format!("weir-job.{}", self.name)
    }
}
