//! Property tests of the RecordBatch v2 codec: round trips through every codec, CRC coverage,
//! and no panics on hostile bytes.

use bytes::Bytes;
use proptest::prelude::*;
use weir_log::format::{
    BATCH_HEADER_BYTES, Batch, BatchBuilder, BatchOptions, Compression, Header, LOG_OVERHEAD_BYTES,
    Record, attributes,
};

/// Cap on decompressed records blocks in these tests: far above anything generated.
pub(crate) const DECOMPRESSED_BYTES_MAX: usize = 64 << 20;

/// One record to push, as the caller sees it.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    /// Offset delta minus the previous one minus one: 0 for `push`, more to leave a gap.
    pub gap: i32,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
}

pub(crate) fn codec() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd),
    ]
}

fn nullable_bytes(len_max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), 0..len_max))
}

pub(crate) fn header() -> impl Strategy<Value = Header> {
    // `.` covers any char, multi-byte UTF-8 included.
    (".{0,12}", nullable_bytes(24)).prop_map(|(key, value)| Header {
        key,
        value: value.map(Bytes::from),
    })
}

/// Timestamps near a base, with the occasional extreme that makes deltas wrap.
fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => 1_700_000_000_000i64..1_700_000_100_000,
        1 => -1_000i64..1_000,
        1 => any::<i64>(),
    ]
}

pub(crate) fn input() -> impl Strategy<Value = Input> {
    (
        prop_oneof![4 => Just(0i32), 1 => 1i32..1_000],
        timestamp(),
        nullable_bytes(200),
        nullable_bytes(300),
        proptest::collection::vec(header(), 0..4),
    )
        .prop_map(|(gap, timestamp, key, value, headers)| Input {
            gap,
            timestamp,
            key,
            value,
            headers,
        })
}

pub(crate) fn options() -> impl Strategy<Value = BatchOptions> {
    (
        codec(),
        prop_oneof![Just((-1i64, -1i16, -1i32)), (0i64.., 0i16.., 0i32..)],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                compression,
                (producer_id, producer_epoch, base_sequence),
                transactional,
                control,
                log_append_time,
            )| {
                BatchOptions {
                    compression,
                    producer_id,
                    producer_epoch,
                    base_sequence,
                    transactional,
                    control,
                    log_append_time,
                }
            },
        )
}

/// Builds the batch and the records a reader should see in it.
pub(crate) fn build(
    options: BatchOptions,
    base_offset: i64,
    inputs: &[Input],
) -> (Vec<u8>, Vec<Record>) {
    let mut builder = BatchBuilder::new(options);
    let mut expected = Vec::with_capacity(inputs.len());
    let mut offset_delta = -1i32;
    for input in inputs {
        if input.gap == 0 {
            builder.push(
                input.timestamp,
                input.key.as_deref(),
                input.value.as_deref(),
                &input.headers,
            );
            offset_delta += 1;
        } else {
            offset_delta += 1 + input.gap;
            builder.push_with_offset_delta(
                offset_delta,
                input.timestamp,
                input.key.as_deref(),
                input.value.as_deref(),
                &input.headers,
            );
        }
        expected.push(Record {
            offset: base_offset + i64::from(offset_delta),
            timestamp: input.timestamp,
            key: input.key.clone().map(Bytes::from),
            value: input.value.clone().map(Bytes::from),
            headers: input.headers.clone(),
        });
    }
    assert_eq!(builder.len(), inputs.len());
    let estimated_bytes = builder.estimated_bytes();
    let encoded = builder.finish(base_offset);
    if options.compression == Compression::None || inputs.is_empty() {
        assert_eq!(encoded.len(), estimated_bytes);
    }
    if options.log_append_time
        && let Some(max) = inputs.iter().map(|i| i.timestamp).max()
    {
        for record in &mut expected {
            record.timestamp = max;
        }
    }
    (encoded, expected)
}

fn read_all(batch: &Batch) -> Vec<Record> {
    batch
        .records(DECOMPRESSED_BYTES_MAX)
        .unwrap()
        .collect::<weir_log::Result<_>>()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip(
        options in options(),
        base_offset in 0i64..(1 << 48),
        inputs in proptest::collection::vec(input(), 0..40),
    ) {
        let (encoded, expected) = build(options, base_offset, &inputs);
        let batch = Batch::parse(Bytes::from(encoded)).unwrap();
        batch.verify_crc().unwrap();
        let header = *batch.header();

        let empty = inputs.is_empty();
        let codec = if empty { Compression::None } else { options.compression };
        let mut attrs = codec.attribute_bits();
        if options.log_append_time { attrs |= attributes::TIMESTAMP_TYPE; }
        if options.transactional { attrs |= attributes::TRANSACTIONAL; }
        if options.control { attrs |= attributes::CONTROL; }
        prop_assert_eq!(header.attributes, attrs);
        prop_assert_eq!(header.compression().unwrap(), codec);
        prop_assert_eq!(header.is_transactional(), options.transactional);
        prop_assert_eq!(header.is_control(), options.control);
        prop_assert_eq!(header.base_offset, base_offset);
        prop_assert_eq!(header.partition_leader_epoch, 0);
        prop_assert_eq!(header.magic, 2);
        prop_assert_eq!(header.producer_id, options.producer_id);
        prop_assert_eq!(header.producer_epoch, options.producer_epoch);
        prop_assert_eq!(header.base_sequence, options.base_sequence);
        prop_assert_eq!(header.records_count as usize, inputs.len());
        prop_assert_eq!(header.total_bytes(), batch.bytes().len());
        let last_offset = expected.last().map_or(base_offset, |r| r.offset);
        prop_assert_eq!(header.last_offset(), last_offset);
        prop_assert_eq!(header.last_offset_delta as i64, last_offset - base_offset);
        let base_timestamp = inputs.first().map_or(-1, |i| i.timestamp);
        let max_timestamp = inputs.iter().map(|i| i.timestamp).max().unwrap_or(-1);
        prop_assert_eq!(header.base_timestamp, base_timestamp);
        prop_assert_eq!(header.max_timestamp, max_timestamp);
        if options.base_sequence >= 0 {
            prop_assert_eq!(
                header.last_sequence(),
                options.base_sequence.wrapping_add(header.last_offset_delta) & i32::MAX
            );
        } else {
            prop_assert_eq!(header.last_sequence(), -1);
        }

        prop_assert_eq!(read_all(&batch), expected);
    }

    #[test]
    fn record_bytes_matches_the_encoding(
        inputs in proptest::collection::vec(input(), 1..10),
    ) {
        let (encoded, _) = build(BatchOptions::default(), 0, &inputs);
        let first = inputs[0].timestamp;
        let mut offset_delta = -1i32;
        let predicted: usize = inputs
            .iter()
            .map(|i| {
                offset_delta += 1 + i.gap;
                BatchBuilder::record_bytes(
                    i.timestamp.wrapping_sub(first),
                    offset_delta,
                    i.key.as_deref(),
                    i.value.as_deref(),
                    &i.headers,
                )
            })
            .sum();
        prop_assert_eq!(encoded.len(), BATCH_HEADER_BYTES + predicted);
    }

    #[test]
    fn any_flipped_byte_under_the_crc_is_caught(
        options in options(),
        inputs in proptest::collection::vec(input(), 1..8),
        position in any::<prop::sample::Index>(),
        flip in 1u8..,
    ) {
        let (mut encoded, _) = build(options, 1234, &inputs);
        // The CRC field itself (17..21) onwards: everything the check can catch.
        let at = 17 + position.index(encoded.len() - 17);
        encoded[at] ^= flip;
        match Batch::parse(Bytes::from(encoded)) {
            Ok(batch) => prop_assert!(batch.verify_crc().is_err(), "flip at {}", at),
            // Only a flipped sign bit of recordsCount fails framing before the CRC is checked.
            Err(_) => prop_assert_eq!(at, 57),
        }
    }

    #[test]
    fn bytes_outside_the_crc_do_not_matter(
        inputs in proptest::collection::vec(input(), 1..8),
        base_offset in any::<i64>(),
        epoch in any::<i32>(),
    ) {
        let (mut encoded, expected) = build(BatchOptions::default(), 0, &inputs);
        Batch::set_base_offset(&mut encoded, base_offset);
        Batch::set_partition_leader_epoch(&mut encoded, epoch);
        let batch = Batch::parse(Bytes::from(encoded)).unwrap();
        batch.verify_crc().unwrap();
        prop_assert_eq!(batch.header().partition_leader_epoch, epoch);
        let offsets: Vec<i64> = read_all(&batch).iter().map(|r| r.offset).collect();
        let want: Vec<i64> = expected.iter().map(|r| base_offset.wrapping_add(r.offset)).collect();
        prop_assert_eq!(offsets, want);
    }

    #[test]
    fn varints_round_trip(v in any::<i32>(), w in any::<i64>(), prefix in 0usize..3) {
        use weir_log::format::varint::*;
        let mut buf = vec![0xaa; prefix];
        put_varint(&mut buf, v);
        prop_assert_eq!(buf.len() - prefix, varint_len(v));
        put_varlong(&mut buf, w);
        prop_assert_eq!(buf.len() - prefix, varint_len(v) + varlong_len(w));
        let mut pos = prefix;
        prop_assert_eq!(get_varint(&buf, &mut pos), Some(v));
        prop_assert_eq!(get_varlong(&buf, &mut pos), Some(w));
        prop_assert_eq!(pos, buf.len());
        // Every strict prefix is truncated.
        for cut in prefix..prefix + varint_len(v) {
            let mut pos = prefix;
            prop_assert_eq!(get_varint(&buf[..cut], &mut pos), None);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        exercise(bytes);
    }

    #[test]
    fn random_records_blocks_never_panic(
        codec in codec(),
        count in -2i32..50,
        block in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        // A valid header (CRC included) around random records, so decoding gets past framing.
        let mut bytes = vec![0u8; BATCH_HEADER_BYTES];
        bytes[16] = 2;
        bytes.extend_from_slice(&block);
        let length = (bytes.len() - LOG_OVERHEAD_BYTES) as i32;
        bytes[8..12].copy_from_slice(&length.to_be_bytes());
        bytes[21..23].copy_from_slice(&codec.attribute_bits().to_be_bytes());
        bytes[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        exercise(bytes);
    }

    #[test]
    fn mutated_batches_never_panic(
        options in options(),
        inputs in proptest::collection::vec(input(), 1..6),
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let (mut encoded, _) = build(options, 0, &inputs);
        for (at, byte) in mutations {
            let at = at.index(encoded.len());
            encoded[at] = byte;
        }
        if truncate {
            encoded.truncate(cut.index(encoded.len()));
        }
        exercise(encoded);
    }
}

/// Drives every reading entry point; only panics matter.
fn exercise(bytes: Vec<u8>) {
    let _ = weir_log::format::BatchHeader::parse(&bytes);
    if let Ok(batch) = Batch::parse(Bytes::from(bytes)) {
        let _ = batch.verify_crc();
        let header = batch.header();
        let _ = (
            header.last_offset(),
            header.last_sequence(),
            header.total_bytes(),
        );
        if let Ok(records) = batch.records(1 << 16) {
            let mut yielded = 0usize;
            for record in records {
                yielded += 1;
                assert!(yielded <= header.records_count as usize + 1);
                if let Ok(record) = record {
                    let _ = weir_log::format::ControlRecord::decode(
                        record.key.as_deref().unwrap_or_default(),
                        record.value.as_deref().unwrap_or_default(),
                    );
                }
            }
        }
    }
}
