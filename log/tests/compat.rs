//! Cross-checks with the independent RecordBatch v2 implementation of the `kafka-protocol` crate,
//! both directions, every codec.
//!
//! Known differences, each asserted below rather than hidden:
//! - kafka-protocol keeps headers in an `IndexMap`, so a repeated header key collapses; the
//!   generated headers here have distinct keys.
//! - kafka-protocol reads LogAppendTime batches with each record's own `base + delta`, where Kafka
//!   (and weir) give every record the batch's max timestamp; and it cannot write that bit.
//! - kafka-protocol writes `baseTimestamp` as the smallest timestamp, Kafka's Java producer and
//!   weir as the first record's; readers add deltas to whichever is stored, so both read alike.
//! - kafka-protocol writes snappy in the xerial framing, weir raw blocks; each reads the other.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};
use proptest::prelude::*;
use weir_log::format::{
    Batch, BatchOptions, Compression, ControlRecord, ControlType, Header, Record,
};

use crate::format_props::{DECOMPRESSED_BYTES_MAX, Input, build, codec, input, options};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn kp_codec(codec: Compression) -> KpCompression {
    match codec {
        Compression::None => KpCompression::None,
        Compression::Gzip => KpCompression::Gzip,
        Compression::Snappy => KpCompression::Snappy,
        Compression::Lz4 => KpCompression::Lz4,
        Compression::Zstd => KpCompression::Zstd,
    }
}

/// Drops repeated header keys (keeping the first), which kafka-protocol cannot represent.
fn distinct_headers(mut inputs: Vec<Input>) -> Vec<Input> {
    for input in &mut inputs {
        let mut seen = std::collections::HashSet::new();
        input.headers.retain(|h| seen.insert(h.key.clone()));
    }
    inputs
}

fn kp_headers(headers: &[Header]) -> IndexMap<StrBytes, Option<Bytes>> {
    headers
        .iter()
        .map(|h| (StrBytes::from_string(h.key.clone()), h.value.clone()))
        .collect()
}

fn weir_headers(headers: &IndexMap<StrBytes, Option<Bytes>>) -> Vec<Header> {
    headers
        .iter()
        .map(|(key, value)| Header {
            key: key.as_str().to_owned(),
            value: value.clone(),
        })
        .collect()
}

fn kp_decode(encoded: Vec<u8>) -> kafka_protocol::records::RecordSet {
    let mut buf = Bytes::from(encoded);
    let set = RecordBatchDecoder::decode(&mut buf).expect("kafka-protocol decodes weir's batch");
    assert!(buf.is_empty(), "kafka-protocol left {} bytes", buf.len());
    set
}

fn kp_encode(records: &[KpRecord], codec: Compression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression: kp_codec(codec),
        },
    )
    .expect("kafka-protocol encodes");
    buf.to_vec()
}

fn weir_read(encoded: Vec<u8>) -> (Batch, Vec<Record>) {
    let batch = Batch::parse(Bytes::from(encoded)).expect("weir parses kafka-protocol's batch");
    batch.verify_crc().expect("kafka-protocol's CRC verifies");
    let records = batch
        .records(DECOMPRESSED_BYTES_MAX)
        .expect("records block decompresses")
        .collect::<weir_log::Result<Vec<_>>>()
        .expect("records decode");
    (batch, records)
}

/// Checks kafka-protocol's view of a batch weir built from `inputs` with `options`.
fn check_weir_to_kp(options: BatchOptions, base_offset: i64, inputs: &[Input]) {
    let (encoded, expected) = build(options, base_offset, inputs);
    let set = kp_decode(encoded);
    assert_eq!(set.version, 2);
    assert_eq!(set.compression, kp_codec(options.compression));
    assert_eq!(set.records.len(), expected.len());
    for ((got, want), input) in set.records.iter().zip(&expected).zip(inputs) {
        assert_eq!(got.offset, want.offset);
        // kafka-protocol ignores LogAppendTime when reading: it yields the stored timestamps.
        assert_eq!(got.timestamp, input.timestamp);
        let timestamp_type = if options.log_append_time {
            TimestampType::LogAppend
        } else {
            TimestampType::Creation
        };
        assert_eq!(got.timestamp_type, timestamp_type);
        assert_eq!(got.key, want.key);
        assert_eq!(got.value, want.value);
        assert_eq!(weir_headers(&got.headers), want.headers);
        assert_eq!(got.producer_id, options.producer_id);
        assert_eq!(got.producer_epoch, options.producer_epoch);
        let offset_delta = (want.offset - base_offset) as i32;
        assert_eq!(
            got.sequence,
            options.base_sequence.wrapping_add(offset_delta)
        );
        assert_eq!(got.transactional, options.transactional);
        assert_eq!(got.control, options.control);
        assert!(!got.delete_horizon);
        assert_eq!(got.partition_leader_epoch, 0);
    }
}

/// The batch-level fields of kafka-protocol records, which it repeats on every record.
#[derive(Debug, Clone, Copy)]
struct KpBatch {
    base_offset: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    partition_leader_epoch: i32,
}

impl Default for KpBatch {
    fn default() -> Self {
        KpBatch {
            base_offset: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
        }
    }
}

/// kafka-protocol records as a producer would send them: sequences that follow the offsets
/// (kafka-protocol splits batches where `offset - sequence` changes).
fn kp_records(inputs: &[Input], batch: KpBatch) -> Vec<KpRecord> {
    let mut offset = batch.base_offset - 1;
    inputs
        .iter()
        .map(|input| {
            offset += 1 + i64::from(input.gap);
            KpRecord {
                transactional: batch.transactional,
                control: batch.control,
                delete_horizon: false,
                partition_leader_epoch: batch.partition_leader_epoch,
                producer_id: batch.producer_id,
                producer_epoch: batch.producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset,
                sequence: batch
                    .base_sequence
                    .wrapping_add((offset - batch.base_offset) as i32),
                timestamp: input.timestamp,
                key: input.key.clone().map(Bytes::from),
                value: input.value.clone().map(Bytes::from),
                headers: kp_headers(&input.headers),
            }
        })
        .collect()
}

fn check_kp_to_weir(kp: &[KpRecord], codec: Compression) {
    let (batch, records) = weir_read(kp_encode(kp, codec));
    let header = *batch.header();
    let first = &kp[0];
    assert_eq!(header.compression().unwrap(), codec);
    assert_eq!(header.base_offset, first.offset);
    assert_eq!(header.partition_leader_epoch, first.partition_leader_epoch);
    assert_eq!(header.producer_id, first.producer_id);
    assert_eq!(header.producer_epoch, first.producer_epoch);
    assert_eq!(header.base_sequence, first.sequence);
    assert_eq!(header.is_transactional(), first.transactional);
    assert_eq!(header.is_control(), first.control);
    assert_eq!(header.records_count as usize, kp.len());
    assert_eq!(header.last_offset(), kp.last().unwrap().offset);
    assert_eq!(
        header.max_timestamp,
        kp.iter().map(|r| r.timestamp).max().unwrap()
    );
    assert_eq!(records.len(), kp.len());
    for (got, want) in records.iter().zip(kp) {
        assert_eq!(got.offset, want.offset);
        assert_eq!(got.timestamp, want.timestamp);
        assert_eq!(got.key, want.key);
        assert_eq!(got.value, want.value);
        assert_eq!(got.headers, weir_headers(&want.headers));
    }
}

/// Timestamps whose pairwise differences fit an i64: kafka-protocol adds and subtracts them
/// unchecked, which panics in debug builds.
fn tame_timestamps(mut inputs: Vec<Input>) -> Vec<Input> {
    for input in &mut inputs {
        input.timestamp = input.timestamp.clamp(-(1 << 60), 1 << 60);
    }
    inputs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn weir_batches_decode_with_kafka_protocol(
        options in options(),
        base_offset in 0i64..(1 << 48),
        inputs in proptest::collection::vec(input(), 1..30),
    ) {
        check_weir_to_kp(options, base_offset, &tame_timestamps(distinct_headers(inputs)));
    }

    #[test]
    fn kafka_protocol_batches_decode_with_weir(
        codec in codec(),
        base_offset in 0i64..(1 << 48),
        producer in prop_oneof![Just((-1i64, -1i16, -1i32)), (0i64.., 0i16.., 0i32..)],
        transactional in any::<bool>(),
        control in any::<bool>(),
        partition_leader_epoch in -1i32..100,
        inputs in proptest::collection::vec(input(), 1..30),
    ) {
        let inputs = tame_timestamps(distinct_headers(inputs));
        let (producer_id, producer_epoch, base_sequence) = producer;
        let batch = KpBatch {
            base_offset,
            producer_id,
            producer_epoch,
            base_sequence,
            transactional,
            control,
            partition_leader_epoch,
        };
        let kp = kp_records(&inputs, batch);
        check_kp_to_weir(&kp, codec);
    }
}

fn fixed_inputs() -> Vec<Input> {
    (0..50)
        .map(|i: i32| Input {
            gap: if i % 7 == 6 { 3 } else { 0 },
            timestamp: 1_700_000_000_000 + i64::from(i % 5) * 10 - 20,
            key: (i % 3 != 0).then(|| format!("key-{i}").into_bytes()),
            value: (i % 11 != 10).then(|| vec![b'a' + (i % 26) as u8; 100 + i as usize]),
            headers: (0..i % 3)
                .map(|h| Header {
                    key: format!("h{h}-é"),
                    value: (h != 1).then(|| Bytes::from(vec![h as u8; 3])),
                })
                .collect(),
        })
        .collect()
}

#[test]
fn every_codec_both_directions() {
    for codec in CODECS {
        let options = BatchOptions {
            compression: codec,
            producer_id: 1234,
            producer_epoch: 5,
            base_sequence: i32::MAX - 10,
            transactional: true,
            ..BatchOptions::default()
        };
        check_weir_to_kp(options, 1_000, &fixed_inputs());
        let batch = KpBatch {
            base_offset: 1_000,
            producer_id: 1234,
            producer_epoch: 5,
            base_sequence: i32::MAX - 10,
            transactional: true,
            control: false,
            partition_leader_epoch: 7,
        };
        let kp = kp_records(&fixed_inputs(), batch);
        check_kp_to_weir(&kp, codec);
    }
}

#[test]
fn kafka_protocol_snappy_is_xerial_framed_and_weir_snappy_is_raw() {
    let kp = kp_records(&fixed_inputs(), KpBatch::default());
    let encoded = kp_encode(&kp, Compression::Snappy);
    assert_eq!(&encoded[61..69], b"\x82SNAPPY\0");
    let (encoded, _) = build(
        BatchOptions {
            compression: Compression::Snappy,
            ..BatchOptions::default()
        },
        0,
        &fixed_inputs(),
    );
    assert_ne!(&encoded[61..69], b"\x82SNAPPY\0");
    // The records block is one raw snappy block of the uncompressed records.
    let uncompressed = build(BatchOptions::default(), 0, &fixed_inputs()).0;
    let block = snap::raw::Decoder::new()
        .decompress_vec(&encoded[61..])
        .unwrap();
    assert_eq!(block, &uncompressed[61..]);
}

#[test]
fn control_batches_both_directions() {
    for kind in [ControlType::Commit, ControlType::Abort] {
        let marker = ControlRecord {
            kind,
            coordinator_epoch: 17,
        };
        let (key, value) = marker.encode();
        let input = Input {
            gap: 0,
            timestamp: 1_700_000_000_000,
            key: Some(key.clone()),
            value: Some(value.clone()),
            headers: vec![],
        };
        let options = BatchOptions {
            producer_id: 99,
            producer_epoch: 3,
            transactional: true,
            control: true,
            ..BatchOptions::default()
        };
        check_weir_to_kp(options, 500, std::slice::from_ref(&input));
        let set = kp_decode(build(options, 500, std::slice::from_ref(&input)).0);
        let record = &set.records[0];
        assert!(record.control && record.transactional);
        assert_eq!(record.key.as_deref(), Some(&key[..]));

        let batch = KpBatch {
            base_offset: 500,
            producer_id: 99,
            producer_epoch: 3,
            transactional: true,
            control: true,
            ..KpBatch::default()
        };
        let kp = kp_records(std::slice::from_ref(&input), batch);
        let (batch, records) = weir_read(kp_encode(&kp, Compression::None));
        assert!(batch.header().is_control() && batch.header().is_transactional());
        let record = &records[0];
        let decoded = ControlRecord::decode(
            record.key.as_deref().unwrap(),
            record.value.as_deref().unwrap(),
        )
        .unwrap();
        assert_eq!(decoded, marker);
    }
}

#[test]
fn kafka_protocol_base_timestamp_is_the_minimum() {
    // The first record is not the oldest: kafka-protocol stores the minimum as the base and a
    // positive delta for the first record; weir reads the same absolute timestamps either way.
    let inputs = fixed_inputs()[1..6].to_vec();
    let kp = kp_records(&inputs, KpBatch::default());
    let (batch, records) = weir_read(kp_encode(&kp, Compression::None));
    let min = inputs.iter().map(|i| i.timestamp).min().unwrap();
    assert_ne!(inputs[0].timestamp, min);
    assert_eq!(batch.header().base_timestamp, min);
    let got: Vec<i64> = records.iter().map(|r| r.timestamp).collect();
    let want: Vec<i64> = inputs.iter().map(|i| i.timestamp).collect();
    assert_eq!(got, want);

    let (encoded, _) = build(BatchOptions::default(), 0, &inputs);
    let weir = Batch::parse(Bytes::from(encoded)).unwrap();
    assert_eq!(weir.header().base_timestamp, inputs[0].timestamp);
}

#[test]
fn uncompressed_bytes_are_identical_when_the_first_record_is_the_oldest() {
    // With the first record oldest and no producer state, both writers must agree byte for byte.
    let mut inputs = fixed_inputs();
    for (i, input) in inputs.iter_mut().enumerate() {
        input.gap = 0;
        input.timestamp = 1_700_000_000_000 + i as i64;
    }
    let (weir, _) = build(BatchOptions::default(), 42, &inputs);
    let batch = KpBatch {
        base_offset: 42,
        ..KpBatch::default()
    };
    let kp = kp_records(&inputs, batch);
    assert_eq!(weir, kp_encode(&kp, Compression::None));
}
