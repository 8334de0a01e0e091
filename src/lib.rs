//! # weir
//!
//! A stream-processing framework with its own durable, partitioned commit log. This facade
//! re-exports the crates that divide the work:
//!
//! - [`log`] (`weir-log`): topics, partitions and segments in Kafka's RecordBatch v2 format,
//!   producers, consumers and consumer groups, over one data directory on local disk;
//! - [`runtime`] (`weir-runtime`): the engine that runs dataflow jobs over the log;
//! - [`operators`] (`weir-operators`): windows, aggregates and the other operators of a job;
//! - [`sql`] (`weir-sql`): SQL over topics, ad hoc and continuous;
//!
//! and holds what the `weir` command line shares with library users: [`schema`], the value
//! schemas of topics and their compact binary row format.
//!
//! ```
//! use std::time::Duration;
//! use weir::{Consumer, ConsumerConfig, Log, LogConfig, Producer, ProducerConfig, ProducerRecord, TopicConfig};
//! # let dir = tempfile::tempdir().unwrap();
//! let log = Log::open(dir.path(), LogConfig::default())?;
//! log.create_topic("clicks", TopicConfig { partitions: 2, ..TopicConfig::default() })?;
//!
//! let producer = Producer::new(&log, ProducerConfig::default())?;
//! producer.send(ProducerRecord::new("clicks", br#"{"ad_id":42}"#).key(b"42"))?;
//! producer.flush()?;
//!
//! let mut consumer = Consumer::new(&log, ConsumerConfig::default())?;
//! consumer.assign_topic("clicks")?;
//! consumer.seek_to_beginning()?;
//! let batches = consumer.poll(Duration::from_secs(1))?;
//! let record = batches[0].records().next().expect("one record")?;
//! assert_eq!(record.key.as_deref(), Some(&b"42"[..]));
//! log.close()?;
//! # Ok::<(), weir::log::Error>(())
//! ```
//!
//! The `weir` binary wraps the same API for the shell; see `docs/cli.md`.
#![warn(missing_docs)]

pub use weir_log as log;
pub use weir_operators as operators;
pub use weir_runtime as runtime;
pub use weir_server as server;
pub use weir_sql as sql;

pub use weir_log::{
    Acks, Consumer, ConsumerConfig, IsolationLevel, Log, LogConfig, Producer, ProducerConfig,
    ProducerRecord, TopicConfig,
};

// The schema module lives in the runtime, whose binary codec shares its row format.
pub use weir_runtime::schema;
