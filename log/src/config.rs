//! Configuration: plain structs with defaults, each with a `validate()` that names the bad field.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// How a topic's values are stored: the one list of value formats every crate matches on.
///
/// The log itself stores values as opaque bytes; the format tells the readers above it (the
/// runtime's codecs, SQL, the command line) how to read them. It is written in the topic's
/// metadata as its name (`"json"`, `"binary"`), so a data directory written before this type
/// existed reads unchanged.
///
/// ```
/// use weir_log::ValueFormat;
/// assert_eq!("binary".parse::<ValueFormat>()?, ValueFormat::Binary);
/// assert_eq!(ValueFormat::Json.to_string(), "json");
/// assert!("xml".parse::<ValueFormat>().unwrap_err().to_string().contains("must be json or binary, got 'xml'"));
/// # Ok::<(), weir_log::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ValueFormat {
    /// One JSON document per record (for SQL, an object holding every schema column).
    #[default]
    Json,
    /// Weir's compact binary rows, laid out by the topic's schema (so a schema is required).
    Binary,
}

impl ValueFormat {
    /// Every format, in the order error messages list them.
    pub const ALL: [ValueFormat; 2] = [ValueFormat::Json, ValueFormat::Binary];

    /// The name stored in topic metadata and accepted on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            ValueFormat::Json => "json",
            ValueFormat::Binary => "binary",
        }
    }
}

impl fmt::Display for ValueFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ValueFormat {
    type Err = Error;

    /// The format named exactly `name` (metadata and flags are lower-case); anything else is
    /// the `format` configuration error that validation gave when the field was free text.
    fn from_str(name: &str) -> Result<ValueFormat> {
        ValueFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
            .ok_or_else(|| Error::config("format", format!("must be json or binary, got '{name}'")))
    }
}

impl Serialize for ValueFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ValueFormat {
    /// Reads the stored name; an unknown one fails with the same words as [`FromStr`], so
    /// metadata naming a format this weir does not know is reported as it always was.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

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
    /// How values are stored; [`ValueFormat::Binary`] needs a `schema`. The log stores values as
    /// bytes either way: the format is for the readers above it.
    pub format: ValueFormat,
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
            format: ValueFormat::Json,
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
        if self.format == ValueFormat::Binary && self.schema.is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_format_reads_and_writes_the_names_stored_before_it_was_typed() {
        for (format, name) in [
            (ValueFormat::Json, "\"json\""),
            (ValueFormat::Binary, "\"binary\""),
        ] {
            assert_eq!(serde_json::to_string(&format).expect("serializes"), name);
            let back: ValueFormat = serde_json::from_str(name).expect("reads");
            assert_eq!(back, format);
        }
        // Metadata written by an older weir: the format as free text, the schema beside it.
        let old = r#"{"partitions":2,"schema":"a BIGINT","format":"binary"}"#;
        let config: TopicConfig = serde_json::from_str(old).expect("old metadata reads");
        assert_eq!(config.format, ValueFormat::Binary);
        assert!(config.validate().is_ok());
        let text = serde_json::to_string(&config).expect("serializes");
        assert!(text.contains(r#""format":"binary""#), "{text}");
    }

    #[test]
    fn an_unknown_format_is_the_format_configuration_error() {
        let err = serde_json::from_str::<TopicConfig>(r#"{"format":"xml"}"#)
            .expect_err("unknown format")
            .to_string();
        assert!(
            err.contains("invalid configuration `format`: must be json or binary, got 'xml'"),
            "{err}"
        );
        let err = "JSON"
            .parse::<ValueFormat>()
            .expect_err("names are lower-case");
        assert!(
            matches!(err, Error::Config { ref field, .. } if field == "format"),
            "{err}"
        );
    }
}
