//! # weir-sql
//!
//! Ad-hoc SQL over weir topics with Apache DataFusion.
//!
//! A [`WeirSession`] opens a DataFusion session over a [`weir_log::Log`] in which every topic
//! that has a schema is a table ([`TopicTable`]): its value columns (mapped to Arrow by
//! [`schema::table_schema`]) followed by `_partition`, `_offset`, `_timestamp` and `_key`.
//! Scans read at `read_committed` up to each partition's last stable offset, one DataFusion
//! partition per topic partition, decoding only the projected columns
//! ([`decode::BatchDecoder`], straight from the borrowed log records); filters on `_partition`, `_offset` and `_timestamp` prune
//! partitions and seek by index. The session cannot read or write files unless the caller enables
//! it ([`WeirSession::with_file_access`]), or allows spilling ([`SessionOptions::spill_bytes_max`]:
//! scratch files in a private temporary directory). A query holds at most
//! [`SessionOptions::memory_bytes_max`] bytes (1 GiB by default); past that it fails with
//! [`Error::ResourcesExhausted`].
//!
//! ```
//! use weir_log::{Log, LogConfig, Producer, ProducerConfig, ProducerRecord, TopicConfig};
//! use weir_sql::WeirSession;
//! # let dir = tempfile::tempdir().unwrap();
//! let log = Log::open(dir.path(), LogConfig::default())?;
//! let topic = TopicConfig { partitions: 2, schema: Some("ad_id BIGINT, campaign VARCHAR".into()), ..TopicConfig::default() };
//! log.create_topic("ads", topic)?;
//! let producer = Producer::new(&log, ProducerConfig::default())?;
//! producer.send(ProducerRecord::new("ads", br#"{"ad_id": 1, "campaign": "spring"}"#).partition(1))?;
//! producer.flush()?;
//!
//! let session = WeirSession::new(&log)?;
//! let out = session.query("SELECT campaign, _partition FROM ads WHERE _partition = 1")?;
//! let text = datafusion::arrow::util::pretty::pretty_format_batches(&out.batches)?.to_string();
//! assert!(text.contains("| spring   | 1          |"), "{text}");
//! assert_eq!(out.scans[0].partitions.len(), 1); // partition 0 was never read
//! assert!(session.sql("COPY ads TO '/tmp/x.csv'").is_err()); // no file access
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Continuous queries ([`continuous::ContinuousQuery`]) run a windowed `GROUP BY` as a runtime job
//! that writes each window's result into a topic exactly once.
#![warn(missing_docs)]

pub use error::{Error, Result};
pub use session::{MEMORY_BYTES_MAX_DEFAULT, QueryOutput, SessionOptions, WeirSession};
pub use table::{
    PartitionExtent, PartitionScan, PartitionSource, ScanReport, SourceRecord, TopicScanExec,
    TopicSource, TopicTable,
};

pub use datafusion;

pub mod continuous;
pub mod decode;
mod error;
pub mod schema;
mod session;
mod table;
