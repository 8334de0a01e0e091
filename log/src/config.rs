//! Configuration: plain structs with defaults, each with a `validate()` that names the bad field.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Settings of one topic, stored in its metadata file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TopicConfig {
    /// Number of partitions, fixed at creation.
    pub partitions: i32,
    /// Keep only the newest record per key (a compacted topic) instead of deleting by age/size.
    pub compacted: bool,
    /// Delete closed segments whose newest record is older than this; `None` keeps forever.
    pub retention_ms: Option<i64>,
    /// Delete the oldest closed segments while a partition is larger than this; `None`: no limit.
    pub retention_bytes: Option<u64>,
    /// Roll to a new segment once the active one would pass this size.
    pub segment_bytes_max: u64,
    /// Roll to a new segment once the active one's first batch is older than this.
    pub segment_age_ms_max: i64,
    /// How long a tombstone (null value) survives compaction, so slow readers still see it.
    pub delete_retention_ms: i64,
    /// Largest record (key + value + headers, encoded) a producer may send.
    pub record_bytes_max: usize,
    /// Largest batch the log accepts in one append.
    pub batch_bytes_max: usize,
    /// Value schema as `col TYPE, ...`, for SQL and binary values; free text to the log.
    pub schema: Option<String>,
    /// Value storage format: `json` or `binary`; free text to the log.
    pub format: String,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            partitions: 1,
            compacted: false,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            segment_bytes_max: 1 << 30,
            segment_age_ms_max: 7 * 24 * 3600 * 1000,
            delete_retention_ms: 24 * 3600 * 1000,
            record_bytes_max: 1 << 20,
            batch_bytes_max: 16 << 20,
            schema: None,
            format: "json".to_string(),
        }
    }
}

/// Hard bounds that no configuration may exceed.
pub const PARTITIONS_MAX: i32 = 10_000;
/// Offsets within a segment are 32-bit relative to its base; positions too.
pub const SEGMENT_BYTES_LIMIT: u64 = i32::MAX as u64;

impl TopicConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.partitions < 1 || self.partitions > PARTITIONS_MAX {
            return Err(Error::config(
                "partitions",
                format!(
                    "must be between 1 and {PARTITIONS_MAX}, got {}",
                    self.partitions
                ),
            ));
        }
        if let Some(ms) = self.retention_ms
            && ms <= 0
        {
            return Err(Error::config(
                "retention_ms",
                format!("must be positive, got {ms}"),
            ));
        }
        if self.retention_bytes == Some(0) {
            return Err(Error::config("retention_bytes", "must be positive"));
        }
        if self.segment_bytes_max < 4096 || self.segment_bytes_max > SEGMENT_BYTES_LIMIT {
            return Err(Error::config(
                "segment_bytes_max",
                format!(
                    "must be between 4096 and {SEGMENT_BYTES_LIMIT}, got {}",
                    self.segment_bytes_max
                ),
            ));
        }
        if self.segment_age_ms_max <= 0 {
            return Err(Error::config("segment_age_ms_max", "must be positive"));
        }
        if self.delete_retention_ms < 0 {
            return Err(Error::config("delete_retention_ms", "must not be negative"));
        }
        if self.record_bytes_max == 0 || self.record_bytes_max > self.batch_bytes_max {
            return Err(Error::config(
                "record_bytes_max",
                format!(
                    "must be between 1 and batch_bytes_max ({})",
                    self.batch_bytes_max
                ),
            ));
        }
        if self.batch_bytes_max as u64 > self.segment_bytes_max {
            return Err(Error::config(
                "batch_bytes_max",
                format!(
                    "must not exceed segment_bytes_max ({})",
                    self.segment_bytes_max
                ),
            ));
        }
        if self.format != "json" && self.format != "binary" {
            return Err(Error::config(
                "format",
                format!("must be json or binary, got '{}'", self.format),
            ));
        }
        if self.format == "binary" && self.schema.is_none() {
            return Err(Error::config("format", "binary values need a schema"));
        }
        Ok(())
    }
}

/// Settings of an open log (one data directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// Defaults for topics created without explicit settings (and for internal topics).
    pub topic_defaults: TopicConfig,
    /// Write an offset-index entry after about this many bytes of batches.
    pub index_interval_bytes: u32,
    /// Size each index file is preallocated to (sparse); a segment rolls when its index is full.
    pub index_bytes_max: u32,
    /// Upper bound on a decompressed batch's records block.
    pub decompressed_bytes_max: usize,
    /// How often the background cleaner runs retention and compaction.
    pub cleaner_interval_ms: u64,
    /// I/O budget of the cleaner (reads plus writes), so it never starves producers.
    pub cleaner_io_bytes_per_s: u64,
    /// Batches per producer per partition remembered for deduplicating retries (Kafka: 5).
    pub producer_batches_max: usize,
    /// Forget an idle producer's state after this long (Kafka's transactional.id.expiration.ms).
    pub producer_idle_ms_max: i64,
    /// How often the transaction coordinator looks for transactions open past their timeout.
    pub txn_check_interval_ms: u64,
    /// Longest timeout a transactional producer may ask for (Kafka's
    /// transaction.max.timeout.ms).
    pub txn_timeout_ms_max: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            topic_defaults: TopicConfig::default(),
            index_interval_bytes: 4096,
            index_bytes_max: 10 << 20,
            decompressed_bytes_max: 64 << 20,
            cleaner_interval_ms: 15_000,
            cleaner_io_bytes_per_s: 64 << 20,
            producer_batches_max: 5,
            producer_idle_ms_max: 7 * 24 * 3600 * 1000,
            txn_check_interval_ms: 1_000,
            txn_timeout_ms_max: 15 * 60 * 1000,
        }
    }
}

impl LogConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        self.topic_defaults.validate()?;
        if self.index_interval_bytes == 0 {
            return Err(Error::config("index_interval_bytes", "must be positive"));
        }
        if self.index_bytes_max < 4096 {
            return Err(Error::config("index_bytes_max", "must be at least 4096"));
        }
        if self.decompressed_bytes_max < self.topic_defaults.batch_bytes_max {
            return Err(Error::config(
                "decompressed_bytes_max",
                "must be at least topic_defaults.batch_bytes_max",
            ));
        }
        if self.cleaner_interval_ms == 0 {
            return Err(Error::config("cleaner_interval_ms", "must be positive"));
        }
        if self.cleaner_io_bytes_per_s < 1 << 20 {
            return Err(Error::config(
                "cleaner_io_bytes_per_s",
                "must be at least 1 MiB/s",
            ));
        }
        if self.txn_check_interval_ms == 0 {
            return Err(Error::config("txn_check_interval_ms", "must be positive"));
        }
        if self.txn_timeout_ms_max <= 0 {
            return Err(Error::config("txn_timeout_ms_max", "must be positive"));
        }
        if self.producer_batches_max == 0 || self.producer_batches_max > 100 {
            return Err(Error::config(
                "producer_batches_max",
                "must be between 1 and 100",
            ));
        }
        Ok(())
    }
}
