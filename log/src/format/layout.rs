//! The fixed facts of the RecordBatch v2 layout (see the module docs of `format`): header size,
//! magic, the "none" values of producer fields and the attribute bits.

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
