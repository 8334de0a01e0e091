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
//!   in-process coordinator ([`group`]) and offsets committed in `__consumer_offsets`; the same
//!   coordinator runs Kafka clients' (classic, client-assigned) groups for `weir serve`
//!   ([`Log::join_group`], [`Log::sync_group`]);
//! - [`TransactionalProducer`]: atomic writes across partitions plus offset commits
//!   ([`txn`]), read by consumers at `read_committed`; the same coordinator serves Kafka
//!   clients' transactions ([`Log::init_transactional_id`], [`Log::add_partitions_to_txn`],
//!   [`Log::add_offsets_to_txn`], [`Log::txn_offset_commit`], [`Log::end_txn`]);
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
//!
//! ## Module map
//!
//! Parents own children; a child gets the narrow part it needs, never its owner.
//!
//! ```text
//! log.rs              Log, the front door: opens the directory, owns the parts below, delegates
//! ├─ topic_store.rs   TopicStore: topics, writer lock, append / marker / fetch / offsets,
//! │  │                group-commit durability, the one-cleaner-per-partition exclusion
//! │  ├─ flusher.rs    group commit: one thread fsyncs what every writer appended
//! │  └─ partition.rs  one partition: its segments, append and read paths, recovery
//! │     ├─ partition/idempotence.rs  idempotent-producer state (sequences, epochs)
//! │     ├─ partition/txn_index.rs    open and aborted transactions (LSO, aborted-txns file)
//! │     └─ segment/                  one log file and its indexes (knows no topic)
//! ├─ offset_store.rs  committed offsets (`__consumer_offsets`) and the group coordinator
//! │  ├─ group/        membership, generations, assignors, Kafka clients' classic groups
//! │  │                (group/classic.rs): pure, no I/O but the clock
//! │  └─ published_groups.rs  membership written for other processes to read
//! ├─ txn/coordinator.rs  the transaction coordinator (`__transaction_state`)
//! │  └─ coordinator/kafka_clients.rs  its entry points for Kafka clients (transaction version 1)
//! ├─ producer_ids.rs  the producer-id allocator (`@producer-ids`)
//! ├─ cleaner.rs       retention and compaction rounds (plan: pure; compact: I/O; throttle)
//! └─ scheduler.rs     the background jobs (cleaner rounds, transaction expiry), stopped on close
//!
//! Below every part, passed in rather than reached for (`Log::open_with` and [`LogOptions`]):
//! storage/ (the [`Storage`](storage::Storage) trait: the real file system, and a seeded
//! fault-injecting one for simulation) and clock.rs (the one [`Clock`] of every crate).
//!
//! Users of a Log (they hold a clone; the log knows nothing of them):
//! producer.rs (Producer), consumer.rs (Consumer), txn/transactional_producer.rs.
//! Leaves used everywhere: format/ (RecordBatch v2), topic_partition.rs, config.rs, error.rs,
//! clock.rs, partitioner.rs, util.rs.
//! ```
#![warn(missing_docs)]

mod cleaner;
pub mod clock;
mod config;
mod consumer;
mod error;
mod flusher;
pub mod format;
pub mod group;
mod live_config;
mod log;
mod offset_store;
mod options;
mod partition;
pub mod partitioner;
mod producer;
mod producer_ids;
mod published_groups;
mod scheduler;
mod segment;
pub mod storage;
mod topic_partition;
mod topic_store;
pub mod txn;
mod util;

pub use cleaner::{Cleaner, CleanerReport, IoBudget};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{LogConfig, PARTITIONS_MAX, TopicConfig, ValueFormat};
pub use consumer::{
    Consumer, ConsumerBatch, ConsumerConfig, OffsetReset, RebalanceEvent, RebalanceListener,
};
pub use error::{Error, GroupErrorKind, Result, TxnErrorKind};
pub use group::{ClassicMember, GroupMember, GroupMembers, JoinOutcome, JoinedGroup};
pub use log::{Log, clean_once};
pub use offset_store::{CommittedOffset, GroupInfo, OFFSETS_TOPIC, PartitionLag};
pub use options::LogOptions;
pub use partition::{AbortedTxn, AppendInfo};
pub use partitioner::Partitioner;
pub use producer::{
    Delivery, DeliveryCallback, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};
pub use segment::Truncation;
pub use topic_partition::TopicPartition;
pub use topic_store::{
    Acks, CLEAN_SHUTDOWN_FILE, Fetched, IsolationLevel, PartitionDescription, TopicDescription,
    validate_topic_name,
};
pub use txn::{GroupMetadata, TransactionalConfig, TransactionalProducer};
