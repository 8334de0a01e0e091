//! Reading batches: header parsing, CRC verification, record iteration.

use bytes::Bytes;

use super::compression::{self, Compression};
use super::layout::{BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES, MAGIC_V2, NO_SEQUENCE, attributes};
use super::record::{Header, Record};
use super::varint::{get_varint, get_varlong};
use crate::{Error, Result};

// Byte positions of the header fields; see the layout in `super`.
pub(super) const BASE_OFFSET_AT: usize = 0;
pub(super) const BATCH_LENGTH_AT: usize = 8;
pub(super) const PARTITION_LEADER_EPOCH_AT: usize = 12;
pub(super) const MAGIC_AT: usize = 16;
pub(super) const CRC_AT: usize = 17;
/// The CRC covers everything from here to the end of the batch.
pub(super) const ATTRIBUTES_AT: usize = 21;
pub(super) const LAST_OFFSET_DELTA_AT: usize = 23;
pub(super) const BASE_TIMESTAMP_AT: usize = 27;
pub(super) const MAX_TIMESTAMP_AT: usize = 35;
pub(super) const PRODUCER_ID_AT: usize = 43;
pub(super) const PRODUCER_EPOCH_AT: usize = 51;
pub(super) const BASE_SEQUENCE_AT: usize = 53;
pub(super) const RECORDS_COUNT_AT: usize = 57;

/// The smallest valid `batchLength`: a header without records.
const BATCH_LENGTH_MIN: i32 = (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;

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
    /// Attribute bits, see [`attributes`].
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

/// The `N` bytes of the header field at `at`.
#[inline]
fn field<const N: usize>(header: &[u8; BATCH_HEADER_BYTES], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&header[at..at + N]);
    out
}

impl BatchHeader {
    /// Parses the first [`BATCH_HEADER_BYTES`] of `buf`. Checks magic, a batch length that
    /// covers the header, and a non-negative record count; does not check the CRC.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader> {
        let Some(h) = buf.first_chunk::<BATCH_HEADER_BYTES>() else {
            return Err(Error::Malformed(format!(
                "batch header truncated: {} of {BATCH_HEADER_BYTES} bytes",
                buf.len()
            )));
        };
        let header = BatchHeader {
            base_offset: i64::from_be_bytes(field(h, BASE_OFFSET_AT)),
            batch_length: i32::from_be_bytes(field(h, BATCH_LENGTH_AT)),
            partition_leader_epoch: i32::from_be_bytes(field(h, PARTITION_LEADER_EPOCH_AT)),
            magic: i8::from_be_bytes(field(h, MAGIC_AT)),
            crc: u32::from_be_bytes(field(h, CRC_AT)),
            attributes: i16::from_be_bytes(field(h, ATTRIBUTES_AT)),
            last_offset_delta: i32::from_be_bytes(field(h, LAST_OFFSET_DELTA_AT)),
            base_timestamp: i64::from_be_bytes(field(h, BASE_TIMESTAMP_AT)),
            max_timestamp: i64::from_be_bytes(field(h, MAX_TIMESTAMP_AT)),
            producer_id: i64::from_be_bytes(field(h, PRODUCER_ID_AT)),
            producer_epoch: i16::from_be_bytes(field(h, PRODUCER_EPOCH_AT)),
            base_sequence: i32::from_be_bytes(field(h, BASE_SEQUENCE_AT)),
            records_count: i32::from_be_bytes(field(h, RECORDS_COUNT_AT)),
        };
        // Magic first: under another magic the other fields mean something else.
        if header.magic != MAGIC_V2 {
            return Err(Error::Malformed(format!(
                "unsupported magic {} at offset {} (only {MAGIC_V2} is supported)",
                header.magic, header.base_offset
            )));
        }
        if header.batch_length < BATCH_LENGTH_MIN {
            return Err(Error::Malformed(format!(
                "batch length {} at offset {} is below the header's {BATCH_LENGTH_MIN} bytes",
                header.batch_length, header.base_offset
            )));
        }
        if header.records_count < 0 {
            return Err(Error::Malformed(format!(
                "negative record count {} at offset {}",
                header.records_count, header.base_offset
            )));
        }
        Ok(header)
    }

    /// Bytes the whole batch occupies (`LOG_OVERHEAD_BYTES + batch_length`).
    pub fn total_bytes(&self) -> usize {
        // `parse` rejects negative lengths; a hand-built header with one counts as empty.
        LOG_OVERHEAD_BYTES + usize::try_from(self.batch_length).unwrap_or(0)
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// The compression codec; an error for codec bits 5-7.
    pub fn compression(&self) -> Result<Compression> {
        Compression::from_attributes(self.attributes)
    }

    /// True for batches written inside a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & attributes::TRANSACTIONAL != 0
    }

    /// True for control batches (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & attributes::CONTROL != 0
    }

    /// Sequence of the last record (wrapping at i32::MAX like Kafka), or -1.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        // DefaultRecordBatch.incrementSequence, with Java's wrapping int arithmetic.
        let (sequence, increment) = (self.base_sequence, self.last_offset_delta);
        if sequence > i32::MAX.wrapping_sub(increment) {
            increment
                .wrapping_sub(i32::MAX.wrapping_sub(sequence))
                .wrapping_sub(1)
        } else {
            sequence.wrapping_add(increment)
        }
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
        let header = BatchHeader::parse(&bytes)?;
        if bytes.len() != header.total_bytes() {
            return Err(Error::Malformed(format!(
                "batch at offset {} is {} bytes but its header says {}",
                header.base_offset,
                bytes.len(),
                header.total_bytes()
            )));
        }
        Ok(Batch { header, bytes })
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
        // `parse` guarantees the header is present.
        let computed = crc32c::crc32c(&self.bytes[ATTRIBUTES_AT..]);
        if computed != self.header.crc {
            return Err(Error::Malformed(format!(
                "CRC mismatch in batch at offset {}: stored {:#010x}, computed {computed:#010x}",
                self.header.base_offset, self.header.crc
            )));
        }
        Ok(())
    }

    /// The records, decompressing first if needed. `decompressed_bytes_max` bounds the size of the
    /// decompressed block (a guard against decompression bombs). Iteration yields an error, not a
    /// panic, on any malformed record, and checks that the count matches `records_count`.
    pub fn records(&self, decompressed_bytes_max: usize) -> Result<RecordIter> {
        let header = &self.header;
        let codec = header.compression()?;
        let block = self.bytes.slice(BATCH_HEADER_BYTES..);
        let buf = if codec == Compression::None {
            block
        } else if block.is_empty() {
            // Some writers leave out the stream of an empty batch (Java readers never open it
            // when the count is 0); a non-zero count then fails in iteration.
            block
        } else {
            compression::decompress(codec, &block, decompressed_bytes_max)
                .map_err(|e| {
                    Error::Malformed(format!("batch at offset {}: {e}", header.base_offset))
                })?
                .into()
        };
        let log_append_timestamp =
            (header.attributes & attributes::TIMESTAMP_TYPE != 0).then_some(header.max_timestamp);
        Ok(RecordIter {
            buf,
            pos: 0,
            records_left: header.records_count,
            records_count: header.records_count,
            base_offset: header.base_offset,
            base_timestamp: header.base_timestamp,
            log_append_timestamp,
        })
    }

    /// Overwrites `baseOffset` in an encoded batch. The CRC does not cover it, so the batch stays
    /// valid.
    ///
    /// # Panics
    /// If `buf` is shorter than the field: the caller passed something that is not a batch.
    pub fn set_base_offset(buf: &mut [u8], base_offset: i64) {
        buf[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    }

    /// Overwrites `partitionLeaderEpoch` likewise.
    ///
    /// # Panics
    /// If `buf` is shorter than the field.
    pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) {
        buf[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
            .copy_from_slice(&epoch.to_be_bytes());
    }
}

/// Iterator over the records of one batch.
#[derive(Debug)]
pub struct RecordIter {
    /// The records block, decompressed.
    buf: Bytes,
    /// Start of the next record; `buf.len()` once iteration is over or failed.
    pos: usize,
    /// Records still to decode; 0 once iteration is over or failed.
    records_left: i32,
    records_count: i32,
    base_offset: i64,
    base_timestamp: i64,
    /// Set for LogAppendTime batches, whose records all carry the batch's max timestamp.
    log_append_timestamp: Option<i64>,
}

impl Iterator for RecordIter {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut headers = Vec::new();
        let fields = match self.step(Some(&mut headers))? {
            Ok(fields) => fields,
            Err(e) => return Some(Err(e)),
        };
        let slice = |span: Option<(usize, usize)>| span.map(|(s, e)| self.buf.slice(s..e));
        Some(Ok(Record {
            offset: fields.offset,
            timestamp: fields.timestamp,
            key: slice(fields.key),
            value: slice(fields.value),
            headers,
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Plus one for a possible trailing error.
        let left = usize::try_from(self.records_left).unwrap_or(0);
        (0, Some(left + 1))
    }
}

/// A record borrowed from its batch, as [`RecordIter::next_ref`] yields it: no allocation and no
/// reference counting per record. Its headers are checked but not returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Absolute offset in the partition.
    pub offset: i64,
    /// Absolute timestamp, ms since the Unix epoch.
    pub timestamp: i64,
    /// Key, `None` for null.
    pub key: Option<&'a [u8]>,
    /// Value, `None` for null.
    pub value: Option<&'a [u8]>,
}

/// The fields of one decoded record, as spans of the records block.
struct Fields {
    offset: i64,
    timestamp: i64,
    key: Option<(usize, usize)>,
    value: Option<(usize, usize)>,
}

impl RecordIter {
    /// The next record, borrowed from the batch (a lending iterator: the record lives until the
    /// next call). The same records, checks and errors as [`Iterator::next`], for readers that
    /// copy what they need out of each record, such as columnar decoders.
    pub fn next_ref(&mut self) -> Option<Result<RecordRef<'_>>> {
        let fields = match self.step(None)? {
            Ok(fields) => fields,
            Err(e) => return Some(Err(e)),
        };
        let slice = |span: Option<(usize, usize)>| span.map(|(s, e)| &self.buf[s..e]);
        Some(Ok(RecordRef {
            offset: fields.offset,
            timestamp: fields.timestamp,
            key: slice(fields.key),
            value: slice(fields.value),
        }))
    }

    /// Decodes the next record (collecting its headers into `headers` if given), keeping count:
    /// `None` at the end, an error (which ends the iteration) for a malformed record or bytes
    /// left over.
    fn step(&mut self, headers: Option<&mut Vec<Header>>) -> Option<Result<Fields>> {
        if self.records_left == 0 {
            let leftover_bytes = self.buf.len().saturating_sub(self.pos);
            if leftover_bytes == 0 {
                return None;
            }
            self.pos = self.buf.len();
            return Some(Err(Error::Malformed(format!(
                "{leftover_bytes} bytes left over after the {} records of the batch at offset {}",
                self.records_count, self.base_offset
            ))));
        }
        match self.decode(headers) {
            Ok(fields) => {
                self.records_left -= 1;
                Some(Ok(fields))
            }
            Err(reason) => {
                // One error ends the iteration: nothing after a bad record can be trusted.
                let index = self.records_count - self.records_left;
                self.records_left = 0;
                self.pos = self.buf.len();
                Some(Err(Error::Malformed(format!(
                    "record {index} of {} in the batch at offset {}: {reason}",
                    self.records_count, self.base_offset
                ))))
            }
        }
    }
}

/// Why a record failed to decode; wrapped with its position by `RecordIter::next`.
type DecodeResult<T> = std::result::Result<T, String>;

impl RecordIter {
    fn decode(&mut self, headers: Option<&mut Vec<Header>>) -> DecodeResult<Fields> {
        let all: &[u8] = &self.buf;
        let mut pos = self.pos;
        if pos >= all.len() {
            return Err("the records block ends before this record".to_owned());
        }
        let length = get_varint(all, &mut pos).ok_or("truncated or over-long record length")?;
        if length < 0 {
            return Err(format!("negative record length {length}"));
        }
        let end = pos
            .checked_add(length as usize)
            .filter(|&end| end <= all.len())
            .ok_or_else(|| {
                format!(
                    "record length {length} exceeds the {} bytes left",
                    all.len() - pos
                )
            })?;
        // Every field read stays inside the record's own length.
        let rec = &all[..end];
        // Attributes: unused by every Kafka version so far.
        if pos >= end {
            return Err("record ends before its attributes".to_owned());
        }
        pos += 1;
        let timestamp_delta =
            get_varlong(rec, &mut pos).ok_or("truncated or over-long timestamp delta")?;
        let offset_delta =
            get_varint(rec, &mut pos).ok_or("truncated or over-long offset delta")?;
        let key = nullable_span(rec, &mut pos, "key")?;
        let value = nullable_span(rec, &mut pos, "value")?;
        let header_count =
            get_varint(rec, &mut pos).ok_or("truncated or over-long header count")?;
        match header_count {
            0 => {}
            n if n < 0 => return Err(format!("negative header count {n}")),
            n => self.headers(rec, &mut pos, n, headers)?,
        }
        if pos != end {
            return Err(format!(
                "record length {length} but its fields end {} bytes early",
                end - pos
            ));
        }
        self.pos = end;
        Ok(Fields {
            offset: self.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: self
                .log_append_timestamp
                .unwrap_or_else(|| self.base_timestamp.wrapping_add(timestamp_delta)),
            key,
            value,
        })
    }

    /// Checks `count` headers at `pos`, appending them to `out` if given.
    fn headers(
        &self,
        rec: &[u8],
        pos: &mut usize,
        count: i32,
        mut out: Option<&mut Vec<Header>>,
    ) -> DecodeResult<()> {
        if let Some(out) = out.as_deref_mut() {
            // A header takes at least two bytes (two empty lengths): a hostile count cannot make
            // this allocate beyond the record's own size.
            let fit = rec.len().saturating_sub(*pos) / 2;
            out.reserve(usize::try_from(count).unwrap_or(0).min(fit));
        }
        for i in 0..count {
            let key_length = get_varint(rec, pos)
                .ok_or_else(|| format!("truncated or over-long header {i} key length"))?;
            let (start, end) =
                span(rec, *pos, key_length).map_err(|e| format!("header {i} key: {e}"))?;
            let key = std::str::from_utf8(&rec[start..end])
                .map_err(|e| format!("header {i} key is not UTF-8: {e}"))?;
            *pos = end;
            let value = nullable_span(rec, pos, "header value")?;
            if let Some(out) = out.as_deref_mut() {
                out.push(Header {
                    key: key.to_owned(),
                    value: value.map(|(s, e)| self.buf.slice(s..e)),
                });
            }
        }
        Ok(())
    }
}

/// A varint length (-1 for null) and the span of that many bytes after it.
#[inline]
fn nullable_span(rec: &[u8], pos: &mut usize, what: &str) -> DecodeResult<Option<(usize, usize)>> {
    let length =
        get_varint(rec, pos).ok_or_else(|| format!("truncated or over-long {what} length"))?;
    if length == -1 {
        return Ok(None);
    }
    let (start, end) = span(rec, *pos, length).map_err(|e| format!("{what}: {e}"))?;
    *pos = end;
    Ok(Some((start, end)))
}

/// The range of `length` bytes at `start`, checked against `rec`.
#[inline]
fn span(rec: &[u8], start: usize, length: i32) -> DecodeResult<(usize, usize)> {
    let Ok(n) = usize::try_from(length) else {
        return Err(format!("negative length {length}"));
    };
    match start.checked_add(n) {
        Some(end) if end <= rec.len() => Ok((start, end)),
        _ => Err(format!(
            "length {length} exceeds the {} bytes left in the record",
            rec.len().saturating_sub(start)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{BatchBuilder, BatchOptions, ControlRecord, ControlType};

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    fn collect(batch: &Batch) -> Result<Vec<Record>> {
        batch.records(1 << 20)?.collect()
    }

    /// A two-record batch laid out by hand from the format description; the CRC was computed
    /// with an independent bitwise CRC-32C.
    const GOLDEN: &str = "
        0102030405060708 00000046 00000000 02 3bbffbda
        0010 00000001 00000000000003e8 00000000000003e8 0000000000000007 0002 0000000b 00000002
        12 00 00 00 02 6b 04 7631 00
        14 00 03 02 01 02 78 02 02 68 01";

    fn golden_builder() -> BatchBuilder {
        let mut builder = BatchBuilder::new(BatchOptions {
            producer_id: 7,
            producer_epoch: 2,
            base_sequence: 11,
            transactional: true,
            ..BatchOptions::default()
        });
        builder.push(1000, Some(b"k"), Some(b"v1"), &[]);
        let header = Header {
            key: "h".to_owned(),
            value: None,
        };
        builder.push(998, None, Some(b"x"), &[header]);
        builder
    }

    #[test]
    fn golden_batch_bytes() {
        let builder = golden_builder();
        assert_eq!(builder.len(), 2);
        assert_eq!(builder.estimated_bytes(), 82);
        let encoded = builder.finish(0x0102_0304_0506_0708);
        assert_eq!(encoded, hex(GOLDEN));

        let batch = Batch::parse(Bytes::from(encoded)).unwrap();
        batch.verify_crc().unwrap();
        let header = *batch.header();
        assert_eq!(
            header,
            BatchHeader {
                base_offset: 0x0102_0304_0506_0708,
                batch_length: 70,
                partition_leader_epoch: 0,
                magic: 2,
                crc: 0x3bbf_fbda,
                attributes: attributes::TRANSACTIONAL,
                last_offset_delta: 1,
                base_timestamp: 1000,
                max_timestamp: 1000,
                producer_id: 7,
                producer_epoch: 2,
                base_sequence: 11,
                records_count: 2,
            }
        );
        assert_eq!(header.total_bytes(), 82);
        assert_eq!(header.last_offset(), 0x0102_0304_0506_0709);
        assert_eq!(header.last_sequence(), 12);
        assert!(header.is_transactional());
        assert!(!header.is_control());
        assert_eq!(header.compression().unwrap(), Compression::None);

        let records = collect(&batch).unwrap();
        assert_eq!(
            records,
            vec![
                Record {
                    offset: 0x0102_0304_0506_0708,
                    timestamp: 1000,
                    key: Some(Bytes::from_static(b"k")),
                    value: Some(Bytes::from_static(b"v1")),
                    headers: vec![],
                },
                Record {
                    offset: 0x0102_0304_0506_0709,
                    timestamp: 998,
                    key: None,
                    value: Some(Bytes::from_static(b"x")),
                    headers: vec![Header {
                        key: "h".to_owned(),
                        value: None
                    }],
                },
            ]
        );
    }

    #[test]
    fn values_share_the_batch_buffer() {
        let batch = Batch::parse(Bytes::from(hex(GOLDEN))).unwrap();
        let record = batch.records(0).unwrap().next().unwrap().unwrap();
        let value = record.value.unwrap();
        let start = batch.bytes().as_ptr() as usize;
        assert_eq!(
            value.as_ptr() as usize,
            start + 61 + 7,
            "value points into the batch"
        );
    }

    #[test]
    fn foreign_golden_batch() {
        // kafka-protocol's documented FetchResponse batch: one record at offset delta 1 with a
        // non-zero record attributes byte, which readers ignore.
        let bytes = hex("
            0000000000000000 00000043 00000000 02 736d297b
            0000 00000003 0000000000000000 0000010000000000 0000000000000000 0000 00000000 00000001
            22 01 d00f 02 0a 68656c6c6f 0a 776f726c64 00");
        let batch = Batch::parse(Bytes::from(bytes)).unwrap();
        batch.verify_crc().unwrap();
        assert_eq!(batch.header().last_offset(), 3);
        assert_eq!(batch.header().max_timestamp, 1 << 40);
        assert_eq!(batch.header().last_sequence(), 3);
        let records = collect(&batch).unwrap();
        assert_eq!(
            records,
            vec![Record {
                offset: 1,
                timestamp: 1000,
                key: Some(Bytes::from_static(b"hello")),
                value: Some(Bytes::from_static(b"world")),
                headers: vec![],
            }]
        );
    }

    fn malformed_reason(result: Result<impl std::fmt::Debug>) -> String {
        match result {
            Err(Error::Malformed(reason)) => reason,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn header_checks() {
        let golden = hex(GOLDEN);
        for len in 0..BATCH_HEADER_BYTES {
            let reason = malformed_reason(BatchHeader::parse(&golden[..len]));
            assert!(reason.contains("truncated"), "{reason}");
        }
        let mut bad_magic = golden.clone();
        bad_magic[MAGIC_AT] = 1;
        assert!(malformed_reason(BatchHeader::parse(&bad_magic)).contains("magic 1"));

        let mut short = golden.clone();
        short[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&48i32.to_be_bytes());
        assert!(malformed_reason(BatchHeader::parse(&short)).contains("batch length 48"));
        short[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&49i32.to_be_bytes());
        assert_eq!(BatchHeader::parse(&short).unwrap().total_bytes(), 61);
        short[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(BatchHeader::parse(&short).is_err());

        let mut negative = golden.clone();
        negative[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(malformed_reason(BatchHeader::parse(&negative)).contains("negative record count"));

        let mut codec = golden;
        codec[ATTRIBUTES_AT + 1] |= 5;
        let header = BatchHeader::parse(&codec).unwrap();
        assert!(header.compression().is_err());
        assert!(
            Batch::parse(Bytes::from(codec))
                .unwrap()
                .records(100)
                .is_err()
        );
    }

    #[test]
    fn batch_length_must_match_exactly() {
        let golden = hex(GOLDEN);
        for len in 0..golden.len() {
            assert!(
                Batch::parse(Bytes::copy_from_slice(&golden[..len])).is_err(),
                "{len}"
            );
        }
        let mut long = golden.clone();
        long.push(0);
        let reason = malformed_reason(Batch::parse(Bytes::from(long)));
        assert!(
            reason.contains("83 bytes but its header says 82"),
            "{reason}"
        );
    }

    #[test]
    fn crc_mismatch_is_reported_but_uncovered_fields_are_free() {
        let mut bytes = hex(GOLDEN);
        Batch::set_base_offset(&mut bytes, 42);
        Batch::set_partition_leader_epoch(&mut bytes, 9);
        let batch = Batch::parse(Bytes::from(bytes.clone())).unwrap();
        batch.verify_crc().unwrap();
        assert_eq!(batch.header().base_offset, 42);
        assert_eq!(batch.header().partition_leader_epoch, 9);
        assert_eq!(collect(&batch).unwrap()[1].offset, 43);

        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let batch = Batch::parse(Bytes::from(bytes)).unwrap();
        let reason = malformed_reason(batch.verify_crc());
        assert!(reason.contains("CRC mismatch"), "{reason}");
        assert!(reason.contains("0x3bbffbda"), "{reason}");
    }

    /// A batch around a hand-made records block, CRC and length fixed up.
    fn reframe(records: &[u8], count: i32, attributes: i16) -> Batch {
        let mut bytes = hex(GOLDEN);
        bytes.truncate(BATCH_HEADER_BYTES);
        bytes.extend_from_slice(records);
        let length = (bytes.len() - LOG_OVERHEAD_BYTES) as i32;
        bytes[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
        bytes[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        bytes[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[ATTRIBUTES_AT..]);
        bytes[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        let batch = Batch::parse(Bytes::from(bytes)).unwrap();
        batch.verify_crc().unwrap();
        batch
    }

    fn records_error(records: &[u8], count: i32) -> String {
        malformed_reason(collect(&reframe(records, count, 0)))
    }

    #[test]
    fn count_must_match_the_records() {
        let records = &hex(GOLDEN)[BATCH_HEADER_BYTES..];
        assert_eq!(collect(&reframe(records, 2, 0)).unwrap().len(), 2);
        let reason = records_error(records, 3);
        assert!(reason.contains("record 2 of 3"), "{reason}");
        let reason = records_error(records, 1);
        assert!(
            reason.contains("11 bytes left over after the 1 records"),
            "{reason}"
        );
        assert!(records_error(records, 0).contains("21 bytes left over"));
        assert!(records_error(&[], 1).contains("record 0 of 1"));
        assert_eq!(collect(&reframe(&[], 0, 0)).unwrap(), vec![]);
    }

    #[test]
    fn iteration_stops_after_an_error() {
        let records = &hex(GOLDEN)[BATCH_HEADER_BYTES..];
        let mut iter = reframe(records, 3, 0).records(100).unwrap();
        assert!(iter.next().unwrap().is_ok());
        assert!(iter.next().unwrap().is_ok());
        assert!(iter.next().unwrap().is_err());
        assert!(iter.next().is_none());
        assert!(iter.next().is_none());
    }

    #[test]
    fn every_truncation_of_the_records_is_an_error() {
        let records = &hex(GOLDEN)[BATCH_HEADER_BYTES..];
        for len in 0..records.len() {
            assert!(collect(&reframe(&records[..len], 2, 0)).is_err(), "{len}");
        }
    }

    #[test]
    fn malformed_fields_are_errors() {
        let cases: &[(&str, &str)] = &[
            ("01", "negative record length -1"),
            ("03", "negative record length -2"),
            ("02 00", "timestamp delta"),
            ("0c 00 00 00 03 6b 04 7631 00", "key: negative length -2"),
            ("0c 00 00 00 01 05 7631 00", "value: negative length -3"),
            ("0c 00 00 00 01 01 01", "negative header count -1"),
            ("12 00 00 00 01 01 02 02 ff 01", "not UTF-8"),
            (
                "12 00 00 00 01 01 02 01 61 01",
                "header 0 key: negative length -1",
            ),
            (
                "12 00 00 00 01 01 02 06 61 01",
                "length 3 exceeds the 2 bytes left",
            ),
            ("0e 00 00 00 01 01 00 00", "fields end 1 bytes early"),
            ("0c 00 00 00 01 01 02", "over-long header 0 key length"),
            (
                "10 00 00 00 01 01 02",
                "record length 8 exceeds the 6 bytes left",
            ),
            (
                "20 00 ffffffffffffffffffff01 00 01 01 00",
                "over-long timestamp delta",
            ),
            ("16 00 00 ffffffffff0f 01 01 00", "over-long offset delta"),
        ];
        for (records, expected) in cases {
            let reason = records_error(&hex(records), 1);
            assert!(reason.contains(expected), "{records}: {reason}");
        }
    }

    /// A record's offset, timestamp, key and value, or an error's text.
    type Seen = std::result::Result<(i64, i64, Option<Vec<u8>>, Option<Vec<u8>>), String>;

    /// What `next_ref` yields, as owned records (headers left out) or the error's text.
    fn collect_refs(batch: &Batch) -> Vec<Seen> {
        let mut out = Vec::new();
        let mut iter = batch.records(1 << 20).unwrap();
        while let Some(r) = iter.next_ref() {
            out.push(
                r.map(|r| {
                    (
                        r.offset,
                        r.timestamp,
                        r.key.map(<[u8]>::to_vec),
                        r.value.map(<[u8]>::to_vec),
                    )
                })
                .map_err(|e| e.to_string()),
            );
        }
        out
    }

    #[test]
    fn borrowed_records_are_the_owned_records() {
        let owned = |batch: &Batch| -> Vec<Seen> {
            batch
                .records(1 << 20)
                .unwrap()
                .map(|r| {
                    r.map(|r| {
                        (
                            r.offset,
                            r.timestamp,
                            r.key.map(|k| k.to_vec()),
                            r.value.map(|v| v.to_vec()),
                        )
                    })
                    .map_err(|e| e.to_string())
                })
                .collect()
        };
        let golden = Batch::parse(Bytes::from(hex(GOLDEN))).unwrap();
        let refs = collect_refs(&golden);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs, owned(&golden));
        // Malformed records and truncations: the same records, then the same error, then the end.
        let records = &hex(GOLDEN)[BATCH_HEADER_BYTES..];
        for len in 0..records.len() {
            let batch = reframe(&records[..len], 2, 0);
            let refs = collect_refs(&batch);
            assert!(refs.last().is_some_and(|r| r.is_err()), "{len}");
            assert_eq!(refs, owned(&batch), "{len}");
        }
        let bad = reframe(&hex("12 00 00 00 01 01 02 02 ff 01"), 1, 0);
        assert_eq!(collect_refs(&bad), owned(&bad));
        assert!(
            collect_refs(&bad)[0]
                .as_ref()
                .unwrap_err()
                .contains("not UTF-8")
        );
    }

    #[test]
    fn extreme_deltas_wrap_instead_of_panicking() {
        // Timestamp delta i64::MAX on a base of 1000; offset delta i32::MAX on a large base.
        let records = hex("26 00 feffffffffffffffff01 feffffff0f 01 01 00");
        let mut bytes = reframe(&records, 1, 0).bytes().to_vec();
        Batch::set_base_offset(&mut bytes, i64::MAX);
        let record = collect(&Batch::parse(Bytes::from(bytes)).unwrap())
            .unwrap()
            .remove(0);
        assert_eq!(record.offset, i64::MAX.wrapping_add(i64::from(i32::MAX)));
        assert_eq!(record.timestamp, 1000i64.wrapping_add(i64::MAX));
    }

    #[test]
    fn log_append_time_uses_the_max_timestamp() {
        let mut builder = BatchBuilder::new(BatchOptions {
            log_append_time: true,
            ..BatchOptions::default()
        });
        builder.push(50, None, Some(b"a"), &[]);
        builder.push(70, None, Some(b"b"), &[]);
        builder.push(60, None, Some(b"c"), &[]);
        let batch = Batch::parse(Bytes::from(builder.finish(0))).unwrap();
        assert_eq!(batch.header().attributes, attributes::TIMESTAMP_TYPE);
        assert_eq!(batch.header().base_timestamp, 50);
        assert_eq!(batch.header().max_timestamp, 70);
        let timestamps: Vec<i64> = collect(&batch)
            .unwrap()
            .iter()
            .map(|r| r.timestamp)
            .collect();
        assert_eq!(timestamps, [70, 70, 70]);
    }

    #[test]
    fn offset_gaps_and_negative_timestamp_deltas() {
        let mut builder = BatchBuilder::new(BatchOptions::default());
        builder.push_with_offset_delta(3, 1_000, None, Some(b"a"), &[]);
        builder.push_with_offset_delta(10, 400, None, Some(b"b"), &[]);
        builder.push(2_000, None, Some(b"c"), &[]);
        let batch = Batch::parse(Bytes::from(builder.finish(100))).unwrap();
        batch.verify_crc().unwrap();
        let header = batch.header();
        assert_eq!(header.last_offset_delta, 11);
        assert_eq!(header.records_count, 3);
        assert_eq!(
            (header.base_timestamp, header.max_timestamp),
            (1_000, 2_000)
        );
        let got: Vec<(i64, i64)> = collect(&batch)
            .unwrap()
            .iter()
            .map(|r| (r.offset, r.timestamp))
            .collect();
        assert_eq!(got, [(103, 1_000), (110, 400), (111, 2_000)]);
    }

    #[test]
    fn empty_batches_are_valid_and_uncompressed() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let builder = BatchBuilder::new(BatchOptions {
                compression,
                producer_id: 5,
                producer_epoch: 1,
                base_sequence: 0,
                ..BatchOptions::default()
            });
            assert!(builder.is_empty());
            let encoded = builder.finish(77);
            assert_eq!(encoded.len(), BATCH_HEADER_BYTES);
            let batch = Batch::parse(Bytes::from(encoded)).unwrap();
            batch.verify_crc().unwrap();
            let header = batch.header();
            assert_eq!(header.records_count, 0);
            assert_eq!(header.last_offset_delta, 0);
            assert_eq!(header.last_offset(), 77);
            assert_eq!((header.base_timestamp, header.max_timestamp), (-1, -1));
            assert_eq!(header.producer_id, 5);
            assert_eq!(header.compression().unwrap(), Compression::None);
            assert!(collect(&batch).unwrap().is_empty());
        }
    }

    #[test]
    fn compressed_batches_round_trip_and_respect_the_cap() {
        let value = vec![b'v'; 1000];
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut builder = BatchBuilder::new(BatchOptions {
                compression,
                ..BatchOptions::default()
            });
            for i in 0..100 {
                builder.push(i, Some(b"key"), Some(&value), &[]);
            }
            let uncompressed_bytes = builder.estimated_bytes() - BATCH_HEADER_BYTES;
            let encoded = builder.finish(0);
            assert!(
                encoded.len() < uncompressed_bytes / 10,
                "{compression}: {} bytes",
                encoded.len()
            );
            let batch = Batch::parse(Bytes::from(encoded)).unwrap();
            batch.verify_crc().unwrap();
            assert_eq!(batch.header().compression().unwrap(), compression);
            let records: Vec<Record> = batch
                .records(uncompressed_bytes)
                .unwrap()
                .collect::<Result<_>>()
                .unwrap();
            assert_eq!(records.len(), 100);
            assert!(
                records
                    .iter()
                    .all(|r| r.value.as_deref() == Some(&value[..]))
            );
            let reason = malformed_reason(batch.records(uncompressed_bytes - 1));
            assert!(reason.contains("more than"), "{compression}: {reason}");
        }
    }

    #[test]
    fn control_batches_iterate_normally() {
        let marker = ControlRecord {
            kind: ControlType::Commit,
            coordinator_epoch: 3,
        };
        let (key, value) = marker.encode();
        let mut builder = BatchBuilder::new(BatchOptions {
            producer_id: 9,
            producer_epoch: 0,
            transactional: true,
            control: true,
            ..BatchOptions::default()
        });
        builder.push(5, Some(&key), Some(&value), &[]);
        let batch = Batch::parse(Bytes::from(builder.finish(40))).unwrap();
        assert!(batch.header().is_control() && batch.header().is_transactional());
        let record = collect(&batch).unwrap().remove(0);
        assert_eq!(record.offset, 40);
        let decoded = ControlRecord::decode(&record.key.unwrap(), &record.value.unwrap()).unwrap();
        assert_eq!(decoded, marker);
    }

    #[test]
    fn last_sequence_wraps_like_kafka() {
        let header = BatchHeader::parse(&hex(GOLDEN)).unwrap();
        let with = |base_sequence, last_offset_delta| BatchHeader {
            base_sequence,
            last_offset_delta,
            ..header
        };
        assert_eq!(with(-1, 5).last_sequence(), -1);
        assert_eq!(with(0, 0).last_sequence(), 0);
        assert_eq!(with(5, 3).last_sequence(), 8);
        assert_eq!(with(i32::MAX, 0).last_sequence(), i32::MAX);
        assert_eq!(with(i32::MAX - 1, 1).last_sequence(), i32::MAX);
        assert_eq!(with(i32::MAX - 1, 2).last_sequence(), 0);
        assert_eq!(with(i32::MAX - 1, 3).last_sequence(), 1);
        assert_eq!(with(i32::MAX, 1).last_sequence(), 0);
        assert_eq!(with(i32::MAX, i32::MAX).last_sequence(), i32::MAX - 1);
    }

    #[test]
    fn mutated_batches_never_panic() {
        let golden = hex(GOLDEN);
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..20_000 {
            let mut bytes = golden.clone();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(..bytes.len());
                bytes[at] = rng.u8(..);
            }
            if rng.bool() {
                bytes.truncate(rng.usize(..=bytes.len()));
            }
            let _ = BatchHeader::parse(&bytes);
            if let Ok(batch) = Batch::parse(Bytes::from(bytes)) {
                let _ = batch.verify_crc();
                if let Ok(records) = batch.records(1 << 16) {
                    for record in records {
                        let _ = record;
                    }
                }
            }
        }
    }
}
