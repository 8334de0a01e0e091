//! The crate's error type: who failed (the cluster, librdkafka, the caller's settings) and the
//! Kafka error name, never a bare string.

use rdkafka::error::KafkaError;

pub use rdkafka::types::RDKafkaErrorCode as ErrorCode;

/// What went wrong talking to a cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster (or librdkafka on its behalf) answered with a Kafka error code. Shown as the
    /// code's name, then librdkafka's description of it.
    #[error("{operation}: {code}")]
    Kafka {
        /// What was being done, e.g. `create topic 'clicks'`.
        operation: String,
        /// The Kafka (or librdkafka-local) error code.
        code: ErrorCode,
    },
    /// No answer in time: the cluster is down or unreachable, or slower than the timeout.
    #[error("{operation}: no answer from {bootstrap} within {timeout_ms} ms{}", last_error_suffix(.last_error))]
    Timeout {
        /// What was being done.
        operation: String,
        /// The timeout that passed.
        timeout_ms: u64,
        /// The cluster's bootstrap list.
        bootstrap: String,
        /// The last error librdkafka reported on its connections, if any (e.g. connection
        /// refused): usually the reason.
        last_error: Option<String>,
    },
    /// No broker could be reached (refused, reset, name not resolved): the cluster is down or
    /// the address wrong.
    #[error("{operation}: cannot reach the cluster at {bootstrap}: {code}{}", last_error_suffix(.last_error))]
    Unreachable {
        /// What was being done.
        operation: String,
        /// The cluster's bootstrap list.
        bootstrap: String,
        /// BrokerTransportFailure, AllBrokersDown or Resolve.
        code: ErrorCode,
        /// The last error librdkafka reported on its connections, if any.
        last_error: Option<String>,
    },
    /// A newer producer with the same identity, or the transaction coordinator, fenced this one
    /// off: it must stop (Kafka's ProducerFenced / InvalidProducerEpoch).
    #[error("{operation}: fenced: {code}")]
    Fenced {
        /// What was being done.
        operation: String,
        /// ProducerFenced or InvalidProducerEpoch.
        code: ErrorCode,
    },
    /// A transactional call failed without fencing: [`TransactionFailure`] says whether the
    /// call may be retried, the transaction must be aborted, or the producer is unusable.
    #[error("{operation}: {code} ({failure:?}): {message}")]
    Transaction {
        /// What was being done, e.g. `commit the transaction`.
        operation: String,
        /// The Kafka (or librdkafka-local) error code.
        code: ErrorCode,
        /// What the caller may do next.
        failure: TransactionFailure,
        /// librdkafka's description of this failure.
        message: String,
    },
    /// The topic does not exist on the cluster.
    #[error("unknown topic '{topic}'")]
    UnknownTopic {
        /// The topic asked for.
        topic: String,
    },
    /// The consumer group does not exist on the cluster.
    #[error("unknown group '{group}'")]
    UnknownGroup {
        /// The group asked for.
        group: String,
    },
    /// Records that were sent were not delivered: `failed` of them, the first with `code`.
    #[error(
        "{failed} record(s) not delivered, the first to '{topic}' partition {partition}: {code}"
    )]
    Delivery {
        /// How many records failed.
        failed: u64,
        /// The first failed record's topic.
        topic: String,
        /// Its partition (-1 if none was chosen).
        partition: i32,
        /// Why it failed.
        code: ErrorCode,
    },
    /// A setting the caller passed is invalid (checked here, or refused by librdkafka).
    #[error("invalid client setting {field}: {reason}")]
    Config {
        /// The setting, by its name in this crate's config structs (or librdkafka's).
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// librdkafka failed without a Kafka error code (client creation, a bad argument).
    #[error("{operation}: {source}")]
    Client {
        /// What was being done.
        operation: String,
        /// librdkafka's error.
        source: KafkaError,
    },
}

/// What a failed transactional call leaves the producer able to do (librdkafka's classes of
/// transactional errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionFailure {
    /// The call may be made again as it was (a timeout, a coordinator moving).
    Retriable,
    /// The open transaction cannot commit: abort it, then begin another.
    Abortable,
    /// The producer cannot be used any more: make a new one (which fences this one).
    Fatal,
}

fn last_error_suffix(last: &Option<String>) -> String {
    match last {
        Some(e) => format!(" (last connection error: {e})"),
        None => String::new(),
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The Kafka error code, where there is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Kafka { code, .. }
            | Error::Unreachable { code, .. }
            | Error::Fenced { code, .. }
            | Error::Transaction { code, .. }
            | Error::Delivery { code, .. } => Some(*code),
            Error::Client { source, .. } => source.rdkafka_error_code(),
            _ => None,
        }
    }

    /// An error for `code` while doing `operation`: timeouts and fencing get their own variants.
    pub(crate) fn from_code(
        operation: impl Into<String>,
        code: ErrorCode,
        timeout_ms: u64,
    ) -> Error {
        let operation = operation.into();
        match code {
            ErrorCode::OperationTimedOut
            | ErrorCode::RequestTimedOut
            | ErrorCode::MessageTimedOut => Error::Timeout {
                operation,
                timeout_ms,
                bootstrap: String::new(),
                last_error: None,
            },
            ErrorCode::BrokerTransportFailure | ErrorCode::AllBrokersDown | ErrorCode::Resolve => {
                Error::Unreachable {
                    operation,
                    bootstrap: String::new(),
                    code,
                    last_error: None,
                }
            }
            ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch | ErrorCode::Fenced => {
                Error::Fenced { operation, code }
            }
            code => Error::Kafka { operation, code },
        }
    }

    /// librdkafka's error while doing `operation`.
    pub(crate) fn from_kafka(
        operation: impl Into<String>,
        e: KafkaError,
        timeout_ms: u64,
    ) -> Error {
        match e.rdkafka_error_code() {
            Some(code) => Error::from_code(operation, code, timeout_ms),
            None => Error::Client {
                operation: operation.into(),
                source: e,
            },
        }
    }

    /// A transactional call's error: fencing as [`Error::Fenced`], anything else as
    /// [`Error::Transaction`] with its class.
    pub(crate) fn from_transaction(operation: impl Into<String>, e: KafkaError) -> Error {
        let operation = operation.into();
        let KafkaError::Transaction(txn) = &e else {
            return Error::from_kafka(operation, e, 0);
        };
        let code = txn.code();
        if matches!(
            code,
            ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch | ErrorCode::Fenced
        ) {
            return Error::Fenced { operation, code };
        }
        let failure = if txn.is_fatal() {
            TransactionFailure::Fatal
        } else if txn.txn_requires_abort() {
            TransactionFailure::Abortable
        } else if txn.is_retriable() {
            TransactionFailure::Retriable
        } else {
            // Neither retriable nor abortable (a call out of order): only a new producer is
            // sure to be in a known state.
            TransactionFailure::Fatal
        };
        Error::Transaction {
            operation,
            code,
            failure,
            message: txn.string(),
        }
    }

    /// Names the cluster in a timeout or an unreachable cluster, with the last connection
    /// error if one is known: they say nothing of the cause otherwise.
    pub(crate) fn with_cluster(mut self, cluster: &str, last: Option<String>) -> Error {
        if let Error::Timeout {
            bootstrap,
            last_error,
            ..
        }
        | Error::Unreachable {
            bootstrap,
            last_error,
            ..
        } = &mut self
        {
            *bootstrap = cluster.to_string();
            if last_error.is_none() {
                *last_error = last;
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_kafka_error() {
        let e = Error::from_code("create topic 't'", ErrorCode::TopicAlreadyExists, 1000);
        let text = e.to_string();
        assert!(
            text.starts_with("create topic 't': TopicAlreadyExists (Broker: "),
            "{text}"
        );
        assert_eq!(e.code(), Some(ErrorCode::TopicAlreadyExists));
    }

    #[test]
    fn timeouts_and_fencing_are_typed() {
        let e = Error::from_code("list topics", ErrorCode::OperationTimedOut, 500)
            .with_cluster("h:1", Some("Connection refused".into()));
        assert!(matches!(
            e,
            Error::Timeout {
                timeout_ms: 500,
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "list topics: no answer from h:1 within 500 ms (last connection error: Connection refused)"
        );
        let e = Error::from_code("send", ErrorCode::ProducerFenced, 500);
        assert!(matches!(e, Error::Fenced { .. }), "{e}");
    }
}
