//! Writing batches.

use super::batch::{
    ATTRIBUTES_AT, BASE_OFFSET_AT, BASE_SEQUENCE_AT, BASE_TIMESTAMP_AT, BATCH_LENGTH_AT, CRC_AT,
    LAST_OFFSET_DELTA_AT, MAGIC_AT, MAX_TIMESTAMP_AT, PARTITION_LEADER_EPOCH_AT, PRODUCER_EPOCH_AT,
    PRODUCER_ID_AT, RECORDS_COUNT_AT,
};
use super::compression::{self, Compression};
use super::layout::{
    BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES, MAGIC_V2, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
    NO_SEQUENCE, attributes,
};
use super::record::Header;
use super::varint::{put_varint, put_varlong, varint_len, varlong_len};

/// Kafka's `RecordBatch.NO_TIMESTAMP`: the timestamps of a batch without records.
const NO_TIMESTAMP: i64 = -1;

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
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
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
    options: BatchOptions,
    /// Room for the header, filled at `finish`, then the uncompressed records. Compressed batches
    /// use the same buffer: the compressed block replaces the records at `finish`.
    buf: Vec<u8>,
    records_count: usize,
    first_timestamp: i64,
    max_timestamp: i64,
    last_offset_delta: i32,
}

/// A length as Kafka writes it; saturating keeps size estimates monotonic for absurd inputs.
#[inline]
fn length_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

#[inline]
fn nullable_bytes(field: Option<&[u8]>) -> usize {
    match field {
        None => 1,
        Some(bytes) => varint_len(length_i32(bytes.len())) + bytes.len(),
    }
}

#[inline]
fn put_nullable(buf: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        None => put_varint(buf, -1),
        Some(bytes) => {
            put_varint(buf, length_i32(bytes.len()));
            buf.extend_from_slice(bytes);
        }
    }
}

/// Size of a record after its length prefix.
#[inline]
fn body_bytes(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let mut bytes = 1 // attributes
        + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + nullable_bytes(key)
        + nullable_bytes(value)
        + varint_len(length_i32(headers.len()));
    for header in headers {
        bytes += varint_len(length_i32(header.key.len()))
            + header.key.len()
            + nullable_bytes(header.value.as_deref());
    }
    bytes
}

#[inline]
fn put_field<const N: usize>(buf: &mut [u8], at: usize, bytes: [u8; N]) {
    buf[at..at + N].copy_from_slice(&bytes);
}

impl BatchBuilder {
    /// An empty batch.
    pub fn new(options: BatchOptions) -> Self {
        BatchBuilder {
            options,
            buf: vec![0; BATCH_HEADER_BYTES],
            records_count: 0,
            first_timestamp: NO_TIMESTAMP,
            max_timestamp: NO_TIMESTAMP,
            last_offset_delta: 0,
        }
    }

    /// Appends a record whose offset delta follows the last one pushed: the number of records
    /// pushed so far, unless [`BatchBuilder::push_with_offset_delta`] left gaps.
    ///
    /// # Panics
    /// If the record is 2 GiB or more (callers bound records with [`BatchBuilder::record_bytes`]).
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        let offset_delta = if self.records_count == 0 {
            0
        } else {
            self.last_offset_delta.wrapping_add(1)
        };
        self.push_with_offset_delta(offset_delta, timestamp, key, value, headers);
    }

    /// Appends a record with an explicit offset delta, larger than every delta pushed before
    /// (compaction keeps original offsets, leaving gaps).
    ///
    /// # Panics
    /// If the record is 2 GiB or more; in debug builds, if the delta does not grow.
    pub fn push_with_offset_delta(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        debug_assert!(
            self.records_count == 0 || offset_delta > self.last_offset_delta,
            "offset delta {offset_delta} after {}",
            self.last_offset_delta
        );
        if self.records_count == 0 {
            self.first_timestamp = timestamp;
            self.max_timestamp = timestamp;
        } else {
            self.max_timestamp = self.max_timestamp.max(timestamp);
        }
        // Kafka computes deltas in wrapping Java longs; so does the reader.
        let timestamp_delta = timestamp.wrapping_sub(self.first_timestamp);
        let body = body_bytes(timestamp_delta, offset_delta, key, value, headers);
        let body_i32 = i32::try_from(body).expect("a record of 2 GiB or more cannot be encoded");

        let buf = &mut self.buf;
        buf.reserve(varint_len(body_i32) + body);
        put_varint(buf, body_i32);
        buf.push(0); // attributes: no record-level bits are defined
        put_varlong(buf, timestamp_delta);
        put_varint(buf, offset_delta);
        put_nullable(buf, key);
        put_nullable(buf, value);
        put_varint(buf, length_i32(headers.len()));
        for header in headers {
            put_varint(buf, length_i32(header.key.len()));
            buf.extend_from_slice(header.key.as_bytes());
            put_nullable(buf, header.value.as_deref());
        }

        self.records_count += 1;
        self.last_offset_delta = self.last_offset_delta.max(offset_delta);
    }

    /// Encoded size of one record with these fields, including its length prefix.
    pub fn record_bytes(
        timestamp_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let body = body_bytes(timestamp_delta, offset_delta, key, value, headers);
        varint_len(length_i32(body)) + body
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.records_count
    }

    /// True when no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Uncompressed size so far, header included: an upper bound on the finished size for
    /// every codec in practice, used to bound batches.
    pub fn estimated_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Compresses if needed, fills the header (base offset, counts, timestamps, CRC) and returns
    /// the encoded batch. An empty batch is written uncompressed with timestamps -1, as Kafka
    /// writes empty batches: there is no records block to compress.
    ///
    /// # Panics
    /// If the batch is 2 GiB or more (callers bound batches with
    /// [`BatchBuilder::estimated_bytes`]).
    pub fn finish(self, base_offset: i64) -> Vec<u8> {
        let BatchBuilder {
            options,
            mut buf,
            records_count,
            first_timestamp,
            max_timestamp,
            last_offset_delta,
        } = self;
        let codec = if records_count == 0 {
            Compression::None
        } else {
            options.compression
        };
        if codec != Compression::None {
            let block = compression::compress(codec, &buf[BATCH_HEADER_BYTES..]);
            buf.truncate(BATCH_HEADER_BYTES);
            buf.extend_from_slice(&block);
        }
        let batch_length = i32::try_from(buf.len() - LOG_OVERHEAD_BYTES)
            .expect("a batch of 2 GiB or more cannot be encoded");
        // Every record takes at least 7 bytes, so a count over i32::MAX means an uncompressed
        // batch over 14 GiB, far past any configured bound.
        let records_count =
            i32::try_from(records_count).expect("more than i32::MAX records in one batch");

        let mut attrs = codec.attribute_bits();
        if options.log_append_time {
            attrs |= attributes::TIMESTAMP_TYPE;
        }
        if options.transactional {
            attrs |= attributes::TRANSACTIONAL;
        }
        if options.control {
            attrs |= attributes::CONTROL;
        }

        put_field(&mut buf, BASE_OFFSET_AT, base_offset.to_be_bytes());
        put_field(&mut buf, BATCH_LENGTH_AT, batch_length.to_be_bytes());
        put_field(&mut buf, PARTITION_LEADER_EPOCH_AT, 0i32.to_be_bytes());
        put_field(&mut buf, MAGIC_AT, MAGIC_V2.to_be_bytes());
        put_field(&mut buf, ATTRIBUTES_AT, attrs.to_be_bytes());
        put_field(
            &mut buf,
            LAST_OFFSET_DELTA_AT,
            last_offset_delta.to_be_bytes(),
        );
        put_field(&mut buf, BASE_TIMESTAMP_AT, first_timestamp.to_be_bytes());
        put_field(&mut buf, MAX_TIMESTAMP_AT, max_timestamp.to_be_bytes());
        put_field(&mut buf, PRODUCER_ID_AT, options.producer_id.to_be_bytes());
        put_field(
            &mut buf,
            PRODUCER_EPOCH_AT,
            options.producer_epoch.to_be_bytes(),
        );
        put_field(
            &mut buf,
            BASE_SEQUENCE_AT,
            options.base_sequence.to_be_bytes(),
        );
        put_field(&mut buf, RECORDS_COUNT_AT, records_count.to_be_bytes());
        let crc = crc32c::crc32c(&buf[ATTRIBUTES_AT..]);
        put_field(&mut buf, CRC_AT, crc.to_be_bytes());
        buf
    }
}
