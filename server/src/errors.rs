//! Every log error a client can see, mapped to its Kafka error code: the one place where weir's
//! typed errors meet the protocol's numbers.

use kafka_protocol::ResponseError as Code;
use weir_log::{Error, GroupErrorKind, TxnErrorKind};

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
        Error::Txn { kind, .. } => txn_code(*kind),
        Error::Timeout(_) => Code::RequestTimedOut,
        Error::Io { .. } | Error::Corrupt { .. } | Error::NotDurable(_) => Code::KafkaStorageError,
        // The server holds the writer lock; these mean it is shutting down or misconfigured.
        Error::Closed | Error::ReadOnly(_) | Error::Locked { .. } => Code::NotLeaderOrFollower,
        _ => Code::UnknownServerError,
    };
    code.code()
}

fn txn_code(kind: TxnErrorKind) -> Code {
    match kind {
        TxnErrorKind::InvalidProducerEpoch => Code::InvalidProducerEpoch,
        TxnErrorKind::ProducerFenced => Code::ProducerFenced,
        TxnErrorKind::InvalidTxnState => Code::InvalidTxnState,
        TxnErrorKind::InvalidProducerIdMapping => Code::InvalidProducerIdMapping,
        TxnErrorKind::InvalidTransactionTimeout => Code::InvalidTransactionTimeout,
        TxnErrorKind::ConcurrentTransactions => Code::ConcurrentTransactions,
        _ => Code::UnknownServerError,
    }
}

/// [`error_code`] for a transaction API at a version that predates PRODUCER_FENCED (KIP-588:
/// InitProducerId v4, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn v2, TxnOffsetCommit v3);
/// older clients know it as INVALID_PRODUCER_EPOCH.
pub(crate) fn txn_error_code(err: &Error, knows_producer_fenced: bool) -> i16 {
    let c = error_code(err);
    if c == Code::ProducerFenced.code() && !knows_producer_fenced {
        Code::InvalidProducerEpoch.code()
    } else {
        c
    }
}

fn group_code(kind: &GroupErrorKind) -> Code {
    match kind {
        GroupErrorKind::UnknownMember(_) => Code::UnknownMemberId,
        GroupErrorKind::IllegalGeneration { .. } => Code::IllegalGeneration,
        GroupErrorKind::RebalanceInProgress => Code::RebalanceInProgress,
        GroupErrorKind::UnknownGroup => Code::GroupIdNotFound,
        GroupErrorKind::InconsistentGroupProtocol(_) => Code::InconsistentGroupProtocol,
        GroupErrorKind::NonEmptyGroup => Code::NonEmptyGroup,
        GroupErrorKind::InvalidSessionTimeout(_) => Code::InvalidSessionTimeout,
        GroupErrorKind::GroupMaxSizeReached => Code::GroupMaxSizeReached,
        GroupErrorKind::FencedInstanceId(_) => Code::FencedInstanceId,
        _ => Code::UnknownServerError,
    }
}

/// Shorthand for a code by name, so handlers read `code(Code::InvalidRequest)`.
pub(crate) fn code(c: Code) -> i16 {
    c.code()
}

pub(crate) use kafka_protocol::ResponseError as KafkaCode;
