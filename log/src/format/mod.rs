//! Kafka's RecordBatch v2, byte for byte.
//!
//! ```text
//! baseOffset: int64            ─┐ not covered by the CRC: the log assigns it at append
//! batchLength: int32            │ bytes after this field
//! partitionLeaderEpoch: int32  ─┘
//! magic: int8 (= 2)
//! crc: uint32                   CRC-32C of attributes .. end of batch
//! attributes: int16             bits 0-2 compression, 3 timestamp type, 4 transactional,
//!                               5 control, 6 delete horizon set
//! lastOffsetDelta: int32
//! baseTimestamp: int64
//! maxTimestamp: int64
//! producerId: int64
//! producerEpoch: int16
//! baseSequence: int32
//! recordsCount: int32
//! records: [Record]             compressed as one block when compression != none
//! ```
//! A record: `length: varint, attributes: int8, timestampDelta: varlong, offsetDelta: varint,
//! keyLength: varint, key, valueLength: varint, value, headersCount: varint, [headerKeyLength:
//! varint, headerKey, headerValueLength: varint, headerValue]`; a length of -1 means null.

mod batch;
mod builder;
mod compression;
mod control;
pub mod varint;

pub use batch::{Batch, BatchHeader, RecordIter, RecordRef};
pub use builder::{BatchBuilder, BatchOptions};
pub use compression::Compression;
pub use control::{ControlRecord, ControlType};

use bytes::Bytes;

/// Size of the fixed batch header, up to and including `recordsCount`.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before `batchLength` ends: a batch occupies `LOG_OVERHEAD_BYTES + batchLength` bytes.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The only magic value weir reads and writes.
pub const MAGIC_V2: i8 = 2;
/// `producerId` of a batch from a producer that is neither idempotent nor transactional.
pub const NO_PRODUCER_ID: i64 = -1;
/// `producerEpoch` likewise.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// `baseSequence` likewise.
pub const NO_SEQUENCE: i32 = -1;

/// Attribute bits of a batch.
pub mod attributes {
    /// Mask of the compression codec (bits 0-2).
    pub const COMPRESSION_MASK: i16 = 0x07;
    /// Timestamp type bit: set means LogAppendTime.
    pub const TIMESTAMP_TYPE: i16 = 0x08;
    /// Set on batches written inside a transaction.
    pub const TRANSACTIONAL: i16 = 0x10;
    /// Set on control batches (transaction markers).
    pub const CONTROL: i16 = 0x20;
    /// Set when `baseTimestamp` holds the delete horizon of a compacted batch.
    pub const DELETE_HORIZON: i16 = 0x40;
}

/// A record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key (UTF-8).
    pub key: String,
    /// Header value, `None` for null.
    pub value: Option<Bytes>,
}

/// One record as read from the log: absolute offset and timestamp, key, value and headers.
/// Key and value share the batch's buffer: reading a record does not copy its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset in the partition.
    pub offset: i64,
    /// Absolute timestamp, ms since the Unix epoch.
    pub timestamp: i64,
    /// Key, `None` for null.
    pub key: Option<Bytes>,
    /// Value, `None` for null (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}
