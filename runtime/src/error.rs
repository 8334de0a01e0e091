//! The runtime's error type.

/// What went wrong while building or running a job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The log refused an operation (unknown topic, I/O, fenced, ...).
    #[error(transparent)]
    Log(#[from] weir_log::Error),
    /// A topic service other than the embedded log (a Kafka-protocol cluster) refused or failed
    /// an operation.
    #[error("{operation}: {source}")]
    Topics {
        /// What the runtime asked for (`fetch from clicks/3`, `commit the transaction`, ...).
        operation: String,
        /// The client's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// On a cluster: this instance's commit was refused because the job's group reassigned its
    /// partitions (it missed a rebalance, paused or cut off past its session timeout), or a
    /// newer writer took its transactional id. The epoch is aborted; the instance rejoins and
    /// whoever owns the partitions now replays it.
    #[error("{operation}: fenced: {reason}")]
    Fenced {
        /// What the runtime asked for.
        operation: String,
        /// Why it was refused.
        reason: String,
    },
    /// A configuration value is invalid; `field` names it.
    #[error("invalid job config `{field}`: {reason}")]
    Config {
        /// The field of [`crate::JobConfig`] (or the argument) that is invalid.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The job graph is not valid (an unconnected required output, a missing sink, ...).
    #[error("invalid job graph: {0}")]
    Graph(String),
    /// A record could not be encoded or decoded.
    #[error("{topic}: {source}")]
    Codec {
        /// The topic being read or written, with the partition and offset when known.
        topic: String,
        /// The codec's error.
        source: crate::codec::CodecError,
    },
    /// A snapshot in the state topic cannot be restored into this job.
    #[error("cannot restore state of `{operator}`: {reason}")]
    State {
        /// The operator whose state is at fault (the job's name for the job's shape).
        operator: String,
        /// What does not fit: a missing chunk, bytes that do not decode, a changed shape.
        reason: String,
    },
    /// A user function or operator failed.
    #[error("operator `{operator}` failed: {reason}")]
    Operator {
        /// The name of the operator that failed.
        operator: String,
        /// What the operator reported.
        reason: String,
    },
    /// The job was stopped (by the handle, or because another task failed).
    #[error("job stopped")]
    Stopped,
    /// A bug in weir: an invariant did not hold.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The runtime's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Error {
        Error::Config {
            field,
            reason: reason.into(),
        }
    }
}
