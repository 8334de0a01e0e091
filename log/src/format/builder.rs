//! Writing batches.

use super::{Compression, Header};

/// What goes into a batch's header besides the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Codec for the records block.
    pub compression: Compression,
    /// -1 unless idempotent or transactional.
    pub producer_id: i64,
    /// -1 unless idempotent or transactional.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 unless idempotent or transactional.
    pub base_sequence: i32,
    /// Sets the transactional bit.
    pub transactional: bool,
    /// Sets the control bit.
    pub control: bool,
    /// Sets the LogAppendTime bit.
    pub log_append_time: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            compression: Compression::None,
            producer_id: super::NO_PRODUCER_ID,
            producer_epoch: super::NO_PRODUCER_EPOCH,
            base_sequence: super::NO_SEQUENCE,
            transactional: false,
            control: false,
            log_append_time: false,
        }
    }
}

/// Builds one batch record by record, encoding straight into its final buffer (uncompressed) or
/// into a records block compressed at [`BatchBuilder::finish`].
#[derive(Debug)]
pub struct BatchBuilder {
    _private: (),
}

impl BatchBuilder {
    /// An empty batch.
    pub fn new(options: BatchOptions) -> Self {
        let _ = options;
        unimplemented!()
    }

    /// Appends a record whose offset delta is the number of records pushed so far.
    pub fn push(&mut self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) {
        let _ = (timestamp, key, value, headers);
        unimplemented!()
    }

    /// Appends a record with an explicit offset delta, larger than every delta pushed before
    /// (compaction keeps original offsets, leaving gaps).
    pub fn push_with_offset_delta(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        let _ = (offset_delta, timestamp, key, value, headers);
        unimplemented!()
    }

    /// Encoded size of one record with these fields, including its length prefix.
    pub fn record_bytes(timestamp_delta: i64, offset_delta: i32, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
        let _ = (timestamp_delta, offset_delta, key, value, headers);
        unimplemented!()
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        unimplemented!()
    }

    /// True when no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Uncompressed size so far, header included: an upper bound on the finished size for
    /// every codec in practice, used to bound batches.
    pub fn estimated_bytes(&self) -> usize {
        unimplemented!()
    }

    /// Compresses if needed, fills the header (base offset, counts, timestamps, CRC) and returns
    /// the encoded batch.
    pub fn finish(self, base_offset: i64) -> Vec<u8> {
        let _ = base_offset;
        unimplemented!()
    }
}
