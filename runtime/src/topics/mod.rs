//! How the runtime reaches topics: the [`Topics`] trait and the handles it opens, a
//! [`TopicReader`] for sources and the state restore, and a [`TopicWriter`] for sinks, dead
//! letters, the state topic and the epoch's commit.
//!
//! The trait speaks only the runtime's own types and plain data, so that one job runs unchanged
//! on the embedded log ([`EmbeddedTopics`]) and as a client of a Kafka-protocol cluster
//! (`weir_cluster::KafkaTopics`, over librdkafka, in its own crate so that the runtime does not
//! build librdkafka). Its shape follows what a Kafka client can do:
//! - reads come in chunks of one partition, each a call rather than a call per record (the hot
//!   path stays free of dynamic dispatch per record); a chunk need not be a whole stored batch,
//!   and offsets need not be dense (compaction and transaction markers leave gaps), so a reader's
//!   [`TopicReader::position`] is the truth about where it stands, not the last offset plus one;
//! - under exactly-once one transaction per epoch carries the sink records, the state records and
//!   the source offsets ([`TopicWriter::commit_epoch`]), as Kafka's
//!   `send_offsets_to_transaction` does;
//! - everything is synchronous: the runtime runs one thread per task.
//!
//! Errors are the runtime's [`Error`](crate::Error): the embedded log's as
//! [`Error::Log`](crate::Error::Log), another implementation's as
//! [`Error::Topics`](crate::Error::Topics).

mod embedded;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::Guarantee;
use crate::error::Result;

pub use embedded::EmbeddedTopics;

/// The topics a job reads and writes, wherever they live. One value serves the whole job: every
/// task thread and the coordinator share it (`Arc<dyn Topics>`).
pub trait Topics: Send + Sync {
    /// The number of partitions of `topic`; an error if it does not exist.
    fn partition_count(&self, topic: &str) -> Result<i32>;

    /// Creates `topic` as `spec` says unless it exists (whatever its configuration then). Two
    /// jobs racing to create it both succeed.
    fn ensure_topic(&self, topic: &str, spec: &TopicSpec) -> Result<()>;

    /// The end of a partition: the offset the next record appended will get (the high
    /// watermark), whether or not its records are committed.
    fn end_offset(&self, topic: &str, partition: i32) -> Result<i64>;

    /// The last stable offset of a partition: a read-committed reader cannot pass it while a
    /// transaction that wrote to the partition is open.
    fn last_stable_offset(&self, topic: &str, partition: i32) -> Result<i64>;

    /// The offset consumer group `group` committed for a partition (the next offset to read), if
    /// any.
    fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Result<Option<i64>>;

    /// Opens a reader that reads the partitions it is then assigned.
    fn reader(&self, config: ReaderConfig) -> Result<Box<dyn TopicReader>>;

    /// Opens the job's writer. Under exactly-once this fences an earlier writer with the same
    /// transactional id (aborting its open transaction) and begins the first epoch's
    /// transaction.
    fn writer(&self, config: WriterConfig) -> Result<Box<dyn TopicWriter>>;

    /// Deletes the records of each partition before its offset (Kafka's DeleteRecords): the
    /// partition's first offset becomes that offset. On a cluster the runtime asks this of its
    /// repartition topics once their readers' offsets are committed (every
    /// [`JobConfig::repartition_purge_interval_ms`](crate::JobConfig)), so that what crossed
    /// an exchange does not pile up there.
    fn delete_records(&self, before: &[PartitionOffset]) -> Result<()>;

    /// Whether instances of a job on these topics share its work through a consumer group
    /// ([`Topics::join_group`]), as on a cluster. When false (the embedded log, which one
    /// process owns) a job runs as a single instance with every task.
    fn shares_work(&self) -> bool {
        false
    }

    /// Joins the consumer group through which the instances of a job share its partitions.
    /// Only called when [`Topics::shares_work`] is true.
    fn join_group(&self, spec: GroupSpec) -> Result<Box<dyn GroupMember>> {
        Err(crate::Error::Config {
            field: "topics",
            reason: format!(
                "group `{}`: these topics do not share a job between instances",
                spec.group
            ),
        })
    }
}

/// What [`Topics::join_group`] joins.
pub struct GroupSpec {
    /// The group (the job's id).
    pub group: String,
    /// The topics whose partitions the group splits among its members: the job's sources and
    /// its repartition topics. Topics of equal partition counts are split alike (partition
    /// `p` of each goes to the same member), so co-partitioned topics are assigned together.
    pub topics: Vec<String>,
    /// A member that sends no heartbeat for this long is dropped and its partitions move.
    pub session_timeout_ms: u64,
    /// Names the member to the service.
    pub client_id: String,
    /// Runs before this member's partitions are taken away (on the thread that calls
    /// [`GroupMember::poll`]): the job ends its open epoch here, so that nothing is written
    /// for a partition once another member may own it.
    pub on_revoke: Box<dyn FnMut() + Send>,
}

impl std::fmt::Debug for GroupSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupSpec")
            .field("group", &self.group)
            .field("topics", &self.topics)
            .field("session_timeout_ms", &self.session_timeout_ms)
            .finish_non_exhaustive()
    }
}

/// A member of a job's group: serves the group protocol and hands out assignments.
pub trait GroupMember: Send {
    /// Serves the group for up to `timeout` (heartbeats may run elsewhere; rebalances happen
    /// here, calling [`GroupSpec::on_revoke`] first). Returns the member's new assignment when a
    /// rebalance has completed, else `None`.
    fn poll(&mut self, timeout: Duration) -> Result<Option<Assignment>>;

    /// Leaves the group now, so that the others need not wait out the session timeout.
    fn leave(self: Box<Self>);
}

/// The partitions a rebalance gave one member, and the membership its commits are fenced by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Fences this assignment's commits (see [`EpochCommit::membership`]).
    pub membership: GroupMembership,
    /// (topic, partition) pairs, of the topics the group was joined for.
    pub partitions: Vec<(String, i32)>,
}

/// Reads assigned partitions, each from its own position on.
pub trait TopicReader: Send {
    /// Reads `partitions` of `topic` (replacing any earlier assignment), each from the
    /// beginning of what is retained until [`TopicReader::seek`] says otherwise.
    fn assign(&mut self, topic: &str, partitions: &[i32]) -> Result<()>;

    /// Moves an assigned partition's position to `offset` (the next offset to read).
    fn seek(&mut self, topic: &str, partition: i32, offset: i64) -> Result<()>;

    /// The next offset this reader will return for an assigned partition: one past the last
    /// record returned, or further when what follows holds no record for this reader (aborted
    /// records, transaction markers). `None` while not yet known.
    fn position(&self, topic: &str, partition: i32) -> Option<i64>;

    /// Waits up to `timeout` for records and returns what arrived, in chunks of one partition
    /// each with offsets increasing; empty when nothing came. Positions move past what is
    /// returned.
    fn poll(&mut self, timeout: Duration) -> Result<Vec<RecordChunk>>;
}

/// The job's one writer: every task and the coordinator write through it.
pub trait TopicWriter: Send + Sync {
    /// Writes records: into the open epoch's transaction under exactly-once, idempotently and
    /// acknowledged by all replicas under at-least-once.
    fn send(&self, records: &[OutgoingRecord<'_>]) -> Result<()>;

    /// Ends an epoch. Under exactly-once: writes `commit.records` and the offsets into the open
    /// transaction, commits it and begins the next. Under at-least-once: makes what was sent
    /// durable, then writes `commit.records`, makes them durable, then commits the offsets for
    /// the group.
    fn commit_epoch(&self, commit: &EpochCommit<'_>) -> Result<()>;

    /// The job is ending: under exactly-once the open transaction is aborted (a restart replays
    /// the epoch); under at-least-once what was sent is flushed. Errors are ignored: the job
    /// already has its result.
    fn abandon(&self);
}

/// How a topic the runtime creates is configured (the state topic, repartition topics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Partitions.
    pub partitions: i32,
    /// Compacted (the newest record per key is kept) rather than deleted by age.
    pub compacted: bool,
    /// The largest record the topic accepts, in bytes.
    pub record_bytes_max: usize,
    /// The largest batch of records the topic accepts, in bytes.
    pub batch_bytes_max: usize,
    /// Records stay until compaction or [`Topics::delete_records`] removes them, whatever their
    /// age or the topic's size: a repartition topic's records carry event times, and retention
    /// by age would delete old events before the job read them. `false`: the service's
    /// retention.
    pub unlimited_retention: bool,
    /// The size at which the topic's segments roll, in bytes (retention and purges free whole
    /// segments only); `None`: the service's default.
    pub segment_bytes_max: Option<u64>,
}

/// Which records a reader returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Only committed transactions' records (and those written outside transactions), never
    /// past the last stable offset.
    ReadCommitted,
    /// Every record appended, up to the high watermark.
    ReadUncommitted,
}

/// How a reader reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderConfig {
    /// Names the reader to the service (in its logs and metrics).
    pub client_id: String,
    /// Which records it returns.
    pub isolation: Isolation,
    /// Bytes read per partition per fetch.
    pub fetch_bytes_max: usize,
    /// Bytes returned by one [`TopicReader::poll`] (at least one chunk, whatever its size).
    pub poll_bytes_max: usize,
}

/// A record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// Header key (UTF-8).
    pub key: String,
    /// Header value, `None` for null.
    pub value: Option<Bytes>,
}

/// One record as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    /// Offset in the partition.
    pub offset: i64,
    /// Timestamp, ms since the Unix epoch.
    pub timestamp: i64,
    /// Key, `None` for null.
    pub key: Option<Bytes>,
    /// Value, `None` for null (a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<RecordHeader>,
}

/// Records of one partition returned by one [`TopicReader::poll`], offsets increasing (not
/// necessarily by one).
#[derive(Debug, Clone)]
pub struct RecordChunk {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// The records.
    pub records: Vec<TopicRecord>,
}

/// A record to write, borrowed from its writer's buffer.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingRecord<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition; `None` lets the writer choose (by the key's hash, as Kafka's default
    /// partitioner does).
    pub partition: Option<i32>,
    /// Key, `None` for null.
    pub key: Option<&'a [u8]>,
    /// Value.
    pub value: &'a [u8],
    /// Timestamp, ms since the Unix epoch; `None` for the time of writing.
    pub timestamp: Option<i64>,
    /// Headers, in order.
    pub headers: &'a [RecordHeader],
}

/// How the job's writer writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterConfig {
    /// Exactly-once (a transaction per epoch) or at-least-once.
    pub guarantee: Guarantee,
    /// The transactional id under exactly-once (the job's id): a new writer with the same id
    /// fences the old one.
    pub transactional_id: String,
    /// An open transaction older than this is aborted by the coordinator.
    pub transaction_timeout_ms: u64,
}

/// A source partition's position committed with an epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to read.
    pub offset: i64,
}

/// The membership that fences a commit of group offsets: a commit made for an assignment the
/// group has since replaced is refused (by the implementation if it knows, else by the group
/// coordinator, which checks the group generation the offsets carry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembership {
    /// The group.
    pub group: String,
    /// Which of this member's assignments (1, 2, ... in the order received): the implementation
    /// maps it to the group generation it stands for.
    pub assignment: u64,
}

/// What ends an epoch besides the records already sent: see [`TopicWriter::commit_epoch`].
#[derive(Debug, Clone, Copy)]
pub struct EpochCommit<'a> {
    /// Records written last, before the offsets (the state chunks and the manifest).
    pub records: &'a [OutgoingRecord<'a>],
    /// The consumer group the offsets are committed for (the job's id).
    pub group: &'a str,
    /// The sources' positions; nothing is committed for the group when empty.
    pub offsets: &'a [PartitionOffset],
    /// The group membership the commit is fenced by; `None` for a standalone job (a single
    /// instance, whose writer's transactional id fences its predecessors).
    pub membership: Option<&'a GroupMembership>,
}
