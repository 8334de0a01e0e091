//! # weir-log
//!
//! Weir's durable, partitioned commit log, embedded in the process that uses it.
//!
//! A [`Log`] is one data directory: topics split into partitions, each partition an
//! append-only list of segments in Kafka's RecordBatch v2 format ([`mod@format`]), CRC-checked,
//! with memory-mapped offset and time indexes. On top of it:
//!
//! - [`Producer`]: batching, Kafka's murmur2 and sticky partitioning ([`partitioner`]),
//!   compression, acks `none|leader|all` (group commit), idempotence;
//! - [`Consumer`]: assign, seek by offset or time, poll whole batches; consumer groups with an
//!   in-process coordinator ([`group`]) and offsets committed in `__consumer_offsets`;
//! - [`TransactionalProducer`]: atomic writes across partitions plus offset commits
//!   ([`txn`]), read by consumers at `read_committed`;
//! - retention and compaction in a background [`Cleaner`]; recovery after a crash.
//!
//! ```
//! use std::time::Duration;
//! use weir_log::{Consumer, ConsumerConfig, Log, LogConfig, Producer, ProducerConfig, ProducerRecord, TopicConfig};
//! # let dir = tempfile::tempdir().unwrap();
//! let log = Log::open(dir.path(), LogConfig::default())?;
//! log.create_topic("events", TopicConfig { partitions: 3, ..TopicConfig::default() })?;
//! let producer = Producer::new(&log, ProducerConfig::default())?;
//! producer.send(ProducerRecord::new("events", b"hello").key(b"k"))?;
//! producer.flush()?;
//! let mut consumer = Consumer::new(&log, ConsumerConfig::default())?;
//! consumer.assign_topic("events")?;
//! consumer.seek_to_beginning()?;
//! let batches = consumer.poll(Duration::from_secs(1))?;
//! assert_eq!(batches[0].records().next().unwrap()?.value.as_deref(), Some(&b"hello"[..]));
//! log.close()?; // the next open skips recovery
//! # Ok::<(), weir_log::Error>(())
//! ```
//!
//! One process at a time opens a data directory for writing ([`Log::open`]); others may open
//! it read-only ([`Log::open_read_only`]) and follow what it appends.
#![warn(missing_docs)]

mod cleaner;
pub mod clock;
mod config;
mod consumer;
mod error;
mod flusher;
pub mod format;
pub mod group;
mod groups;
mod log;
mod partition;
pub mod partitioner;
mod producer;
mod producer_state;
pub mod txn;
mod txn_state;
pub use txn::{GroupMetadata, TransactionalConfig, TransactionalProducer};
pub use txn_state::AbortedTxn;
mod segment;
mod util;

pub use cleaner::{Cleaner, CleanerReport, IoBudget, clean_once};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{LogConfig, PARTITIONS_MAX, TopicConfig, ValueFormat};
pub use consumer::{
    Consumer, ConsumerBatch, ConsumerConfig, IsolationLevel, OffsetReset, RebalanceEvent,
    RebalanceListener,
};
pub use error::{Error, GroupErrorKind, Result};
pub use groups::{CommittedOffset, OFFSETS_TOPIC, PartitionLag};
pub use log::{
    Acks, CLEAN_SHUTDOWN_FILE, Fetched, GroupInfo, Log, PartitionDescription, TopicDescription,
    validate_topic_name,
};
pub use partition::AppendInfo;
pub use partitioner::Partitioner;
pub use producer::{
    Delivery, DeliveryCallback, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};
pub use segment::Truncation;
