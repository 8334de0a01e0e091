//! The log's error type. Each variant says who is at fault: the caller (bad input, bad config,
//! unknown names), the data on disk (corruption), another party (fencing, locks), or weir itself
//! (`Internal`, a bug).

use std::path::PathBuf;

/// The result type of every fallible call in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error, with the file it concerned.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A group-commit round failed (an fsync, or the flush of a rolled segment): what it
    /// covered was written but is not known to be durable, and must not count as acknowledged.
    #[error("not durable: the group-commit round failed: {0}")]
    NotDurable(String),
    /// Bytes on disk that fail a check (CRC, framing, offsets): `position` is the byte position
    /// within `segment`, `offset` the log offset where known.
    #[error("corrupt data in {} at byte {position}{}: {reason}", segment.display(), offset_note(*offset))]
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// Byte position within the file.
        position: u64,
        /// The log offset concerned, or -1 where unknown.
        offset: i64,
        /// What check failed.
        reason: String,
    },
    /// A record batch that does not follow the RecordBatch v2 format (from a caller or a decoder).
    #[error("malformed record batch: {0}")]
    Malformed(String),
    /// No topic of that name exists.
    #[error("unknown topic '{0}'")]
    UnknownTopic(String),
    /// The topic was deleted while this handle read it.
    #[error("topic '{0}' was deleted")]
    TopicDeleted(String),
    /// The topic exists but has no such partition.
    #[error("topic '{topic}' has no partition {partition}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
    },
    /// A topic of that name already exists.
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    /// A configuration value is out of range; `field` names it.
    #[error("invalid configuration `{field}`: {reason}")]
    Config {
        /// The offending field.
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A single record is larger than the configured limit.
    #[error("record of {bytes} bytes exceeds record_bytes_max ({max} bytes)")]
    RecordTooLarge {
        /// Encoded size of the record.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A batch is larger than the configured limit.
    #[error("batch of {bytes} bytes exceeds batch_bytes_max ({max} bytes)")]
    BatchTooLarge {
        /// Encoded size of the batch.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A producer (or transactional producer, or group member) was superseded by a newer epoch
    /// or generation and may no longer write.
    #[error("fenced: {0}")]
    Fenced(String),
    /// An idempotent producer's batch does not follow the last sequence the log holds.
    #[error(
        "out-of-order sequence for producer {producer_id} on {topic}-{partition}: expected {expected}, got {got}"
    )]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The sequence the log expected.
        expected: i32,
        /// The sequence the batch carried.
        got: i32,
    },
    /// A batch carries the sequences of a batch already in the log but other content: not a
    /// retry, so not a duplicate to acknowledge (for example, a producer id handed out twice).
    #[error(
        "producer {producer_id} on {topic}-{partition}: sequences {first_sequence}..={last_sequence} are already in the log at offset {offset} with other content; refusing the batch"
    )]
    SequenceConflict {
        /// The producer.
        producer_id: i64,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// First sequence of the batch.
        first_sequence: i32,
        /// Last sequence of the batch.
        last_sequence: i32,
        /// Where the batch holding those sequences begins.
        offset: i64,
    },
    /// A producer stopped at an earlier failure (`cause`); what it had delivered before stays
    /// written, what it was sent since is refused.
    #[error(
        "the producer stopped after an earlier failure ({cause}); {delivered_records} records were delivered before it"
    )]
    ProducerStopped {
        /// The first failure.
        cause: String,
        /// Records delivered (appended, durable with acks=all) before the producer stopped.
        delivered_records: u64,
    },
    /// A producer id the partition does not know (for example, its state expired).
    #[error("unknown producer id {0}")]
    UnknownProducer(i64),
    /// A read or seek outside the partition's offsets.
    #[error("offset {offset} is out of range for {topic}-{partition} (valid {start}..={end})")]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset asked for.
        offset: i64,
        /// The first offset held.
        start: i64,
        /// The next offset to be written (the high watermark).
        end: i64,
    },
    /// Another process holds the data directory for writing.
    #[error("data directory {} is locked by another writer{}", dir.display(), holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The pid of the holder, where it could be read.
        holder: Option<u32>,
    },
    /// A write was attempted through a read-only handle.
    #[error("the log is open read-only: {0}")]
    ReadOnly(String),
    /// A consumer-group call that does not fit the group's state.
    #[error("group '{group}': {reason}")]
    Group {
        /// The group.
        group: String,
        /// What is wrong.
        reason: GroupErrorKind,
    },
    /// A call of the embedded [`crate::TransactionalProducer`] that does not fit its state (a
    /// second `begin`, a `send` outside a transaction), or a refusal of the coordinator other
    /// than fencing as that producer reports it (it reports fencing as [`Error::Fenced`]).
    #[error("transaction: {0}")]
    Transaction(String),
    /// The transaction coordinator, or a partition checking a transactional or idempotent
    /// batch against it, refused a call; `kind` says why (each kind is one Kafka error code).
    #[error("transaction{}: {kind}: {reason}", txn_id.as_deref().map(|t| format!(" '{t}'")).unwrap_or_default())]
    Txn {
        /// The transactional id, where the refusal concerns a known one.
        txn_id: Option<String>,
        /// Why.
        kind: TxnErrorKind,
        /// The details, for people.
        reason: String,
    },
    /// The log (or the client) has been closed.
    #[error("closed")]
    Closed,
    /// A call timed out.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A bug in weir: an invariant did not hold.
    #[error("internal error (a bug in weir): {0}")]
    Internal(String),
}

/// ` (offset N)` where the offset is known.
fn offset_note(offset: i64) -> String {
    if offset >= 0 {
        format!(" (offset {offset})")
    } else {
        String::new()
    }
}

/// Why a consumer-group call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupErrorKind {
    /// The member id is not (or no longer) in the group, e.g. after its session timed out.
    #[error("unknown member '{0}'")]
    UnknownMember(String),
    /// The caller's generation is not the group's current one (a rebalance happened).
    #[error("illegal generation {given} (current {current})")]
    IllegalGeneration {
        /// The generation the caller gave.
        given: i32,
        /// The group's generation.
        current: i32,
    },
    /// A rebalance is under way: the member must rejoin.
    #[error("rebalance in progress")]
    RebalanceInProgress,
    /// No group of that name has members or committed offsets.
    #[error("unknown group")]
    UnknownGroup,
    /// The member's protocol does not fit the group's: another protocol type, no assignment
    /// protocol in common with every other member, or a Kafka client (client-assigned,
    /// "classic") joining a group of embedded consumers (whose assignments the log computes) or
    /// the reverse. The text says which.
    #[error("inconsistent group protocol: {0}")]
    InconsistentGroupProtocol(String),
    /// The group still has members, so it cannot be deleted.
    #[error("the group has members")]
    NonEmptyGroup,
    /// A session timeout outside `1..=`[`crate::group::SESSION_TIMEOUT_MS_MAX`].
    #[error("invalid session timeout {0} ms")]
    InvalidSessionTimeout(i64),
    /// The group already holds [`crate::group::MEMBERS_PER_GROUP_MAX`] members (pending
    /// member ids included).
    #[error("the group is full")]
    GroupMaxSizeReached,
    /// A static member (`group.instance.id`) called with a member id that is no longer the
    /// one of its instance id: a newer instance replaced it.
    #[error("instance '{0}' is fenced by a newer member with the same group.instance.id")]
    FencedInstanceId(String),
}

/// Why the transaction coordinator (or a partition, for a transactional batch) refused a call.
/// Each kind answers to one Kafka error code, named in its docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxnErrorKind {
    /// A batch's (or call's) epoch is not the producer's current one: a newer instance or a
    /// coordinator abort (timeout, fencing) moved it on. Kafka's INVALID_PRODUCER_EPOCH (47),
    /// what a partition answers to a transactional batch of an old epoch.
    #[error("invalid producer epoch")]
    InvalidProducerEpoch,
    /// The caller's epoch was superseded at the coordinator: it may do nothing more with this
    /// transactional id. Kafka's PRODUCER_FENCED (90).
    #[error("producer fenced")]
    ProducerFenced,
    /// The call does not fit the transaction's state: a transactional batch to a partition not
    /// added to the ongoing transaction, an end without a transaction, commit after abort.
    /// Kafka's INVALID_TXN_STATE (48).
    #[error("invalid transaction state")]
    InvalidTxnState,
    /// The producer id does not belong to the transactional id (or the transactional id is
    /// unknown). Kafka's INVALID_PRODUCER_ID_MAPPING (49).
    #[error("invalid producer id mapping")]
    InvalidProducerIdMapping,
    /// The transaction timeout is not between 1 ms and `txn_timeout_ms_max`. Kafka's
    /// INVALID_TRANSACTION_TIMEOUT (50).
    #[error("invalid transaction timeout")]
    InvalidTransactionTimeout,
    /// The transaction is completing (its decision stopped short of its markers): retry.
    /// Kafka's CONCURRENT_TRANSACTIONS (51).
    #[error("concurrent transactions")]
    ConcurrentTransactions,
}

impl Error {
    /// A refusal of the transaction coordinator concerning `txn_id`.
    pub(crate) fn txn(txn_id: &str, kind: TxnErrorKind, reason: impl Into<String>) -> Self {
        Error::Txn {
            txn_id: Some(txn_id.to_string()),
            kind,
            reason: reason.into(),
        }
    }

    /// The kind of a transaction refusal, if this is one.
    pub fn txn_kind(&self) -> Option<TxnErrorKind> {
        match self {
            Error::Txn { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Wraps an I/O error with the path it concerned.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A configuration error naming the field.
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Adds a path to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
