//! # weir-log
#![warn(missing_docs)]

mod cleaner;
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
pub use config::{LogConfig, PARTITIONS_MAX, TopicConfig};
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
