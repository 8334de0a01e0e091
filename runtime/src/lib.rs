//! # weir-runtime
//!
//! The engine that runs weir's dataflow jobs over topics of [`weir_log`].
//!
//! A [`Job`] is a graph built from typed streams: sources read topics, chained operators
//! (`map`, `filter`, `flat_map`, custom [`Operator`]s) run in the same task as their input, and
//! [`Stream::key_by`] starts a keyed exchange that hashes each key to one task of the next stage
//! over bounded channels, so a slow stage slows its producers instead of growing memory. Data
//! moves in batches. Each stage runs as N tasks on threads.
//!
//! **Event time.** Sources assign timestamps and keep a watermark per partition (bounded
//! out-of-orderness); a task's watermark is the minimum over its live inputs, and a partition
//! with no new data for `idle_timeout_ms` stops holding it back. Every event carries the
//! watermark of its partition when it was read, so operators can judge lateness in a way that
//! does not depend on thread scheduling.
//!
//! **Exactly-once.** The job advances in epochs. The coordinator asks the sources for a barrier
//! every `epoch_ms`; barriers flow with the data and are aligned at every exchange; each task
//! snapshots its state; then one log transaction commits the epoch's outputs, the source offsets
//! and the snapshots (to a compacted state topic). A restart fences the old instance, restores
//! the last committed snapshots and seeks the sources to the committed offsets. Whatever the
//! crash point, the committed output equals that of a run without a crash.
//!
//! **Topics.** The runtime reaches topics only through the [`Topics`] trait (readers, the job's
//! one writer with a commit per epoch, offsets and metadata): [`Job::new`] runs a job on the
//! embedded log ([`EmbeddedTopics`]), [`Job::with_topics`] on any implementation.
//!
//! **On a cluster** (an implementation whose [`Topics::shares_work`] is true, such as
//! `weir_cluster::KafkaTopics`) the same job started N times shares the work, as Kafka Streams
//! instances do: every instance joins the job's consumer group, runs the tasks whose input
//! partitions it is assigned (a source has a task per partition; an exchange becomes a
//! repartition topic, with watermarks crossing it as marker records), restores their state
//! from their own manifests, and commits each epoch in its own transaction fenced by its
//! assignment. A rebalance ends the instance's run of its tasks and starts the next.
//!
//! Windows, aggregates, keyed processing and hot-key salting live in `weir-operators`, built on
//! [`KeyedStream::process_with`].
//!
//! ```
//! use weir_log::{Log, LogConfig, Producer, ProducerConfig, ProducerRecord, TopicConfig};
//! use weir_runtime::{Job, JobConfig, Json};
//!
//! let dir = tempfile::tempdir()?;
//! let log = Log::open(dir.path(), LogConfig::default())?;
//! log.create_topic("numbers", TopicConfig { partitions: 2, ..TopicConfig::default() })?;
//! log.create_topic("doubled", TopicConfig::default())?;
//! let producer = Producer::new(&log, ProducerConfig::default())?;
//! for n in 0..100u64 {
//!     producer.send(ProducerRecord::new("numbers", n.to_string().as_bytes()))?;
//! }
//! producer.flush()?;
//!
//! let mut config = JobConfig::new("doubler");
//! config.stop_when_drained = true;
//! let job = Job::new(&log, config)?;
//! job.source::<u64, _>("numbers", Json)
//!     .stream()
//!     .map(|n| n * 2)
//!     .sink("doubled", Json);
//! let metrics = job.start()?.wait()?;
//! assert_eq!(metrics.source_records, 100);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## How the modules divide the work
//!
//! - Building a job: `job` ([`Job`], [`Source`]) and the streams `stream` ([`Stream`]) and
//!   `keyed` ([`KeyedStream`]) register factories in `graph` (stages of tasks, and the ports
//!   operators attach to). Nothing runs until `start`.
//! - What flows: `event` ([`Event`], watermarks), `data` ([`Data`], [`Key`]), `codec`,
//!   `schema`; the push interface between chained operators, `emitter` ([`Emitter`],
//!   [`Checkpoint`]); the simple chained operators, `chained` (map, filter, split, ...); and
//!   stateful operators, `operator` ([`Operator`]).
//! - What a task is: `task` (its body, its kind, what it sees while built and while running,
//!   what every task of a running job shares), the leaf every task body builds on. The bodies:
//!   `source` (reads partitions, injects barriers), `exchange` (routes by key, aligns barriers),
//!   `sink` (writes through the job's `topics` writer). Both inputs combine their watermarks
//!   with one `watermark` valve.
//! - Running a job: `start` builds the tasks and starts the threads (`launch`, once for a job
//!   on the embedded log, once per assignment on a cluster, where `group` serves the job's
//!   consumer group and decides which tasks run here); `checkpoint` runs the
//!   epochs (a pure `protocol` and `ledger`, and the `coordinator` thread that does their I/O);
//!   `handle` ([`JobHandle`]) watches and stops the job; `metrics` counts; `state` puts
//!   snapshots in the log.
//!
//! Imports point one way: each module uses only modules on lines below its own (checked by
//! reading every file's `use crate::` and `use super::` lines; inside `task`, `checkpoint`,
//! `exchange` and `metrics` the files follow the same rule, and each `mod.rs` only declares and
//! re-exports).
//!
//! ```text
//! job                       the builder's entry: Job, Source
//! keyed                     KeyedStream, and Stream::key_by
//! stream                    Stream and the operators chained on it
//! group                     on a cluster: the job's group, a run per assignment
//! start                     builds every task's chain, starts the threads
//! graph  handle  checkpoint (coordinator → protocol, ledger)
//! source  exchange  sink    the task bodies (exchange: sender, receiver → channels, keys;
//!                           repartition, on a cluster → keys)
//! task                      (run → env → shared → report, signals; context → shared; kind)
//! watermark  operator  chained  state
//! emitter
//! metrics
//! topics                    the trait; embedded: the log behind it
//! config
//! error
//! codec  schema  hash  event  data
//! ```
#![warn(missing_docs)]

pub use weir_log;

/// Time behind a trait (one [`Clock`] for every crate of weir; it lives in `weir-log`).
pub use weir_log::clock;

mod chained;
mod checkpoint;
pub mod codec;
mod config;
mod data;
mod emitter;
mod error;
mod event;
mod exchange;
mod graph;
mod group;
mod handle;
pub mod hash;
mod job;
mod keyed;
mod metrics;
mod operator;
pub mod schema;
mod sink;
mod source;
mod start;
pub mod state;
mod stream;
mod task;
pub mod topics;
mod watermark;

pub use chained::Either;
pub use codec::{Binary, Codec, CodecError, Json};
pub use config::{Guarantee, JobConfig};
pub use data::{Data, ExchangeData, Key};
pub use emitter::{Checkpoint, Emitter};
pub use error::{Error, Result};
pub use event::{Event, WATERMARK_MAX, WATERMARK_MIN};
pub use exchange::{MakeKey, RouteFn, TaskKeyFn};
pub use handle::JobHandle;
pub use job::{Job, Source};
pub use keyed::KeyedStream;
pub use metrics::{ExchangeMetrics, JobMetrics, OperatorCounters, OperatorMetrics};
pub use operator::{BoxOperator, Operator, Output};
pub use stream::Stream;
pub use task::TaskContext;
pub use topics::{EmbeddedTopics, Topics};
pub use weir_log::clock::{Clock, ManualClock, SystemClock};
