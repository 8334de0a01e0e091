//! Every log error a client can see, mapped to its Kafka error code: the one place where weir's
//! typed errors meet the protocol's numbers.

use kafka_protocol::ResponseError as Code;
use weir_log::{Error, GroupErrorKind};

/// The Kafka error code for a log error, as a client should see it in a response.
///
/// Codes are chosen for what a client does next: a retriable code makes librdkafka and the Java
/// client retry, a fatal one surfaces to the application. Errors that are weir's fault or the
/// disk's map to `KAFKA_STORAGE_ERROR` (retriable: the client backs off) or `UNKNOWN_SERVER_ERROR`.
pub(crate) fn error_code(err: &Error) -> i16 {
    let code = match err {
        Error::UnknownTopic(_) | Error::TopicDeleted(_) | Error::UnknownPartition { .. } => {
            Code::UnknownTopicOrPartition
        }
        Error::TopicExists(_) => Code::TopicAlreadyExists,
        Error::Malformed(reason) if reason.contains("CRC") => Code::CorruptMessage,
        Error::Malformed(_) => Code::InvalidRecord,
        Error::RecordTooLarge { .. } | Error::BatchTooLarge { .. } => Code::MessageTooLarge,
        Error::Config { .. } => Code::InvalidConfig,
        Error::OutOfOrderSequence { .. } | Error::SequenceConflict { .. } => {
            Code::OutOfOrderSequenceNumber
        }
        Error::UnknownProducer(_) => Code::UnknownProducerId,
        Error::Fenced(_) => Code::InvalidProducerEpoch,
        Error::Transaction(_) => Code::InvalidTxnState,
        Error::OffsetOutOfRange { .. } => Code::OffsetOutOfRange,
        Error::Group { reason, .. } => group_code(reason),
        Error::Timeout(_) => Code::RequestTimedOut,
        Error::Io { .. } | Error::Corrupt { .. } => Code::KafkaStorageError,
        // The server holds the writer lock; these mean it is shutting down or misconfigured.
        Error::Closed | Error::ReadOnly(_) | Error::Locked { .. } => Code::NotLeaderOrFollower,
        _ => Code::UnknownServerError,
    };
    code.code()
}

fn group_code(kind: &GroupErrorKind) -> Code {
    match kind {
        GroupErrorKind::UnknownMember(_) => Code::UnknownMemberId,
        GroupErrorKind::IllegalGeneration { .. } => Code::IllegalGeneration,
        GroupErrorKind::RebalanceInProgress => Code::RebalanceInProgress,
        GroupErrorKind::UnknownGroup => Code::GroupIdNotFound,
        #[allow(unreachable_patterns)]
        _ => Code::UnknownServerError,
    }
}

/// Shorthand for a code by name, so handlers read `code(Code::InvalidRequest)`.
pub(crate) fn code(c: Code) -> i16 {
    c.code()
}

pub(crate) use kafka_protocol::ResponseError as KafkaCode;
