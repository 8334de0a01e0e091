//! Weir's Kafka-protocol client: a thin, typed layer over librdkafka (through `rdkafka`) for
//! talking to `weir serve` or any Kafka cluster. Everything librdkafka-specific lives here;
//! callers see plain config structs, blocking calls and [`Error`] values that name the Kafka
//! error.
//!
//! - [`Admin`]: create, list, describe and delete topics; list and describe consumer groups
//!   (members, committed offsets, lag).
//! - [`Producer`]: keyed or keyless records with acks, compression and idempotence; `flush`
//!   reports failed deliveries.
//! - [`Consumer`]: assigned partitions or a group subscription, isolation level, seeking,
//!   watermarks (for reading up to a partition's end), explicit commits.
//! - [`SharedConsumer`]: one consumer's partitions read by many [`PartitionReader`]s, each
//!   polling its own partitions (a job's tasks share one consumer's connections and fetches).
//! - [`TransactionalProducer`]: Kafka transactions (KIP-98): records and a group's offsets
//!   committed or aborted together, an older producer of the same transactional id fenced.
//!
//! ```no_run
//! use weir_client::{Admin, ClientConfig, NewTopic, Producer, ProducerConfig, ProducerRecord};
//!
//! let cluster = ClientConfig::new("127.0.0.1:9092");
//! let admin = Admin::connect(&cluster)?;
//! admin.create_topic(&NewTopic {
//!     name: "clicks".into(),
//!     partitions: 4,
//!     replication_factor: None,
//!     configs: vec![("retention.ms".into(), "86400000".into())],
//! })?;
//! let producer = Producer::new(&cluster, &ProducerConfig::default())?;
//! producer.send(ProducerRecord::new("clicks", br#"{"ad_id":1}"#).key(b"1"))?;
//! let delivered = producer.flush()?.delivered;
//! assert_eq!(delivered, 1);
//! # Ok::<(), weir_client::Error>(())
//! ```
#![warn(missing_docs)]

mod admin;
mod config;
mod consumer;
mod context;
mod error;
mod groups;
mod member;
mod producer;
mod shared;
mod transaction;

pub use admin::{Admin, NewTopic, PartitionOffsets, TopicDescription};
pub use config::{Acks, ClientConfig, Compression, Isolation, parse_bootstrap};
pub use consumer::{Consumer, ConsumerConfig, Event, GroupMetadata, OffsetReset, Record, StartAt};
pub use error::{Error, ErrorCode, Result, TransactionFailure};
pub use groups::{GroupDescription, GroupMember, GroupOffset, parse_assignment};
pub use member::{Assigned, Membership, OnRevoke};
pub use producer::{Deliveries, Header, Producer, ProducerConfig, ProducerRecord};
pub use shared::{PartitionReader, SharedConsumer};
pub use transaction::{TransactionalConfig, TransactionalProducer};
