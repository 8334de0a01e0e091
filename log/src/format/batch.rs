//! Reading batches: header parsing, CRC verification, record iteration.

use bytes::Bytes;

use super::{Compression, Record};
use crate::Result;

/// The fixed header of a RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the `batchLength` field.
    pub batch_length: i32,
    /// Leader epoch (weir writes 0).
    pub partition_leader_epoch: i32,
    /// Always 2.
    pub magic: i8,
    /// CRC-32C of attributes..end.
    pub crc: u32,
    /// Attribute bits, see [`super::attributes`].
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (or the delete horizon, see attributes).
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id, -1 when none.
    pub producer_id: i64,
    /// Producer epoch, -1 when none.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 when none.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the first [`super::BATCH_HEADER_BYTES`] of `buf`. Checks magic, a batch length that
    /// covers the header, and a non-negative record count; does not check the CRC.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader> {
        let _ = buf;
        unimplemented!()
    }

    /// Bytes the whole batch occupies (`LOG_OVERHEAD_BYTES + batch_length`).
    pub fn total_bytes(&self) -> usize {
        unimplemented!()
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        unimplemented!()
    }

    /// The compression codec; an error for codec bits 5-7.
    pub fn compression(&self) -> Result<Compression> {
        unimplemented!()
    }

    /// True for batches written inside a transaction.
    pub fn is_transactional(&self) -> bool {
        unimplemented!()
    }

    /// True for control batches (transaction markers).
    pub fn is_control(&self) -> bool {
        unimplemented!()
    }

    /// Sequence of the last record (wrapping at i32::MAX like Kafka), or -1.
    pub fn last_sequence(&self) -> i32 {
        unimplemented!()
    }
}

/// One complete batch over shared bytes.
#[derive(Debug, Clone)]
pub struct Batch {
    header: BatchHeader,
    bytes: Bytes,
}

impl Batch {
    /// Takes exactly one batch: `bytes.len()` must equal the header's total size. Checks framing
    /// as [`BatchHeader::parse`] does; the CRC is checked by [`Batch::verify_crc`].
    pub fn parse(bytes: Bytes) -> Result<Batch> {
        let _ = bytes;
        unimplemented!()
    }

    /// The parsed header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The batch's bytes, as on disk.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Checks the stored CRC-32C against the bytes.
    pub fn verify_crc(&self) -> Result<()> {
        unimplemented!()
    }

    /// The records, decompressing first if needed. `decompressed_bytes_max` bounds the size of the
    /// decompressed block (a guard against decompression bombs). Iteration yields an error, not a
    /// panic, on any malformed record, and checks that the count matches `records_count`.
    pub fn records(&self, decompressed_bytes_max: usize) -> Result<RecordIter> {
        let _ = decompressed_bytes_max;
        unimplemented!()
    }

    /// Overwrites `baseOffset` in an encoded batch. The CRC does not cover it, so the batch stays
    /// valid.
    pub fn set_base_offset(buf: &mut [u8], base_offset: i64) {
        let _ = (buf, base_offset);
        unimplemented!()
    }

    /// Overwrites `partitionLeaderEpoch` likewise.
    pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) {
        let _ = (buf, epoch);
        unimplemented!()
    }
}

/// Iterator over the records of one batch.
#[derive(Debug)]
pub struct RecordIter {
    _private: (),
}

impl Iterator for RecordIter {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        unimplemented!()
    }
}
