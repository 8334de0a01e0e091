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
mod layout;
mod record;
pub mod varint;

pub use batch::{Batch, BatchHeader, RecordIter, RecordRef};
pub use builder::{BatchBuilder, BatchOptions};
pub use compression::Compression;
pub use control::{ControlRecord, ControlType};
pub use layout::{
    BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES, MAGIC_V2, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
    NO_SEQUENCE, attributes,
};
pub use record::{Header, Record};
