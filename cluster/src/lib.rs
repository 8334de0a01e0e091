//! Weir jobs as clients of a Kafka-protocol cluster (`weir serve`, Apache Kafka, Redpanda):
//! [`KafkaTopics`] implements the runtime's [`Topics`](weir_runtime::Topics) over
//! [`weir_client`] (librdkafka), so a job written for the embedded log runs unchanged against a
//! cluster.
//!
//! Instances of a job share it through the job's consumer group (the runtime's side of it is
//! `weir_runtime`'s group module): each instance joins with a [`weir_client::Membership`] that
//! only takes assignments, and runs the tasks of the partitions it is given. Its sources and
//! repartition readers read assigned partitions from the offsets the job committed; sinks,
//! repartition records and the state topic are written in one Kafka transaction per epoch per
//! instance that also commits the offsets read, fenced by the group metadata of the assignment
//! (exactly-once, Kafka Streams' exactly-once v2), or by an idempotent producer followed by a
//! group commit (at-least-once).
//!
//! ```no_run
//! use std::sync::Arc;
//! use weir_client::ClientConfig;
//! use weir_cluster::KafkaTopics;
//! use weir_runtime::{Job, JobConfig, Json};
//!
//! let topics = KafkaTopics::new(ClientConfig::new("127.0.0.1:9092"))?;
//! let job = Job::with_topics(Arc::new(topics), JobConfig::new("doubler"))?;
//! job.source::<i64, _>("numbers", Json)
//!     .stream()
//!     .map(|n| n * 2)
//!     .sink("doubled", Json);
//! job.start()?.wait()?;
//! # Ok::<(), weir_runtime::Error>(())
//! ```
#![warn(missing_docs)]

pub mod configs;
mod member;
mod reader;
#[cfg(feature = "sql")]
pub mod sql;
mod topics;
mod writer;

pub use topics::KafkaTopics;

/// The runtime's error for a client error while doing `operation`; the client's error stays
/// the source, so a caller can tell fencing ([`weir_client::Error::Fenced`]) from the rest.
/// For programs that reach the cluster through `weir_client` beside their jobs too.
pub fn topics_error(
    operation: impl Into<String>,
    source: weir_client::Error,
) -> weir_runtime::Error {
    weir_runtime::Error::Topics {
        operation: operation.into(),
        source: Box::new(source),
    }
}
