//! The crate's error type: who is at fault, and where.

use datafusion::error::DataFusionError;

/// What went wrong in a query over topics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// DataFusion refused or failed the query: a syntax error, an unknown table or column, a
    /// statement this session does not allow (file access, DDL, DML). Its message is kept as is.
    #[error("{0}")]
    DataFusion(DataFusionError),
    /// The log failed (I/O, a corrupt segment, an unknown topic).
    #[error(transparent)]
    Log(#[from] weir_log::Error),
    /// A [`TopicSource`](crate::TopicSource) other than the log failed: a cluster that cannot be
    /// reached, a topic it does not know, a fetch it refused. The message names the operation.
    #[error("{0}")]
    Source(String),
    /// A topic's schema (its metadata) is not a valid weir schema.
    #[error("topic '{topic}': {reason}")]
    Schema {
        /// The topic.
        topic: String,
        /// What is wrong with its schema.
        reason: String,
    },
    /// A record does not fit its topic's schema. Never silently read as null.
    #[error("topic '{topic}' partition {partition} offset {offset}: {reason}")]
    Decode {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// What does not fit.
        reason: String,
    },
    /// The query names a topic that has no schema, so it is not a table.
    #[error(
        "topic '{topic}' has no schema: create it with a schema (weir topic create --schema \
         'col TYPE, ...') to query it with SQL"
    )]
    NoSchema {
        /// The topic.
        topic: String,
    },
    /// The query needed more memory than [`SessionOptions::memory_bytes_max`] and could not
    /// spill (spilling is off, the operator cannot spill, or the spill files reached
    /// [`SessionOptions::spill_bytes_max`]).
    ///
    /// [`SessionOptions::memory_bytes_max`]: crate::SessionOptions::memory_bytes_max
    /// [`SessionOptions::spill_bytes_max`]: crate::SessionOptions::spill_bytes_max
    #[error(
        "resources exhausted: the query needs more than its memory limit (memory_bytes_max = \
         {memory_bytes_max} bytes, {}): {reason}",
        spill_text(*spill_bytes_max)
    )]
    ResourcesExhausted {
        /// The session's memory limit.
        memory_bytes_max: usize,
        /// The session's spill limit (0: no spilling).
        spill_bytes_max: u64,
        /// DataFusion's account: who asked for how much, and the largest consumers.
        reason: String,
    },
    /// Invalid session options.
    #[error("invalid {field}: {reason}")]
    Config {
        /// The option.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A continuous query that cannot be planned: its shape, an unknown topic or column.
    #[error("{0}")]
    Plan(String),
    /// The runtime refused or failed the continuous query's job.
    #[error(transparent)]
    Runtime(#[from] weir_runtime::Error),
    /// A bug in weir-sql.
    #[error("internal error: {0}")]
    Internal(String),
}

fn spill_text(spill_bytes_max: u64) -> String {
    if spill_bytes_max == 0 {
        "no spilling: spill_bytes_max = 0".to_string()
    } else {
        format!("spill_bytes_max = {spill_bytes_max} bytes")
    }
}

/// `Result` with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<DataFusionError> for Error {
    /// DataFusion carries weir's own errors raised inside a scan or a table lookup as
    /// `External`; they come back out as themselves, so a bad record reads as a
    /// [`Error::Decode`] and a topic without a schema as [`Error::NoSchema`], not as DataFusion
    /// errors.
    fn from(e: DataFusionError) -> Error {
        if let DataFusionError::External(inner) = e.find_root() {
            match inner.downcast_ref::<Error>() {
                Some(Error::Decode {
                    topic,
                    partition,
                    offset,
                    reason,
                }) => {
                    return Error::Decode {
                        topic: topic.clone(),
                        partition: *partition,
                        offset: *offset,
                        reason: reason.clone(),
                    };
                }
                Some(Error::NoSchema { topic }) => {
                    return Error::NoSchema {
                        topic: topic.clone(),
                    };
                }
                _ => {}
            }
        }
        Error::DataFusion(e)
    }
}

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(e: datafusion::arrow::error::ArrowError) -> Error {
        Error::DataFusion(DataFusionError::ArrowError(Box::new(e), None))
    }
}

impl From<Error> for DataFusionError {
    fn from(e: Error) -> DataFusionError {
        match e {
            Error::DataFusion(e) => e,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}
