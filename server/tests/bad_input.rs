//! Bad input from a client: each gets its error code or a closed connection, nothing panics, and
//! other clients carry on. The requests are encoded here with kafka-protocol (as a client would),
//! so a malformed one can be made on purpose; the real-client tests live in the weir package.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, DeleteRecordsRequest, DeleteRecordsResponse,
    FetchRequest, FetchResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    MetadataRequest, ProduceRequest, ProduceResponse, RequestHeader, TopicName,
};
use kafka_protocol::messages::{delete_records_request, incremental_alter_configs_request};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use weir_log::format::{BatchBuilder, BatchOptions};
use weir_log::{Log, LogConfig, TopicConfig};
use weir_server::{Server, ServerConfig};

struct Fixture {
    _dir: tempfile::TempDir,
    log: Log,
    server: Option<Server>,
    addr: SocketAddr,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic(
            "t",
            TopicConfig {
                partitions: 1,
                ..TopicConfig::default()
            },
        )
        .unwrap();
        let server = Server::start(
            log.clone(),
            ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                request_bytes_max: 1024 * 1024,
                ..ServerConfig::default()
            },
        )
        .unwrap();
        let addr = server.local_addr();
        Fixture {
            _dir: dir,
            log,
            server: Some(server),
            addr,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        // A hang is a failure, not a wait: no test here expects a reply to take long.
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    /// A well-formed request on a fresh connection still gets its answer.
    fn still_serves(&self) {
        let mut s = self.connect();
        let body = request(
            &mut s,
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default(),
        );
        let r = ApiVersionsResponse::decode(&mut body.clone(), 3).unwrap();
        assert_eq!(r.error_code, 0);
        assert!(
            r.api_keys
                .iter()
                .any(|k| k.api_key == ApiKey::Produce as i16)
        );
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
        let _ = self.log.close();
    }
}

fn frame<R: Encodable + HeaderVersion>(key: ApiKey, version: i16, req: &R) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("bad-input-test")))
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    req.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&len.to_be_bytes());
    buf.to_vec()
}

/// Sends one request and returns the response body (after the response header).
fn request<R: Encodable + HeaderVersion>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    req: &R,
) -> Bytes {
    s.write_all(&frame(key, version, req)).unwrap();
    read_response(s, key, version)
}

fn read_response(s: &mut TcpStream, key: ApiKey, version: i16) -> Bytes {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    let mut body = Bytes::from(body);
    assert_eq!(body.get_i32(), 7, "correlation id");
    if key.response_header_version(version) >= 1 {
        assert_eq!(body.get_u8(), 0, "no tagged fields in the response header");
    }
    body
}

/// The server closed the connection: a read returns end of file (or a reset).
fn assert_closed(mut s: TcpStream) {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("expected the connection closed, got {n} bytes"),
    }
}

#[test]
fn garbage_bytes_close_that_connection_only() {
    let f = Fixture::new();
    let mut s = f.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: weir\r\n\r\n")
        .unwrap();
    assert_closed(s);
    f.still_serves();
}

#[test]
fn a_2_gib_length_prefix_closes_the_connection_before_anything_is_allocated() {
    let f = Fixture::new();
    let mut s = f.connect();
    s.write_all(&0x7fff_ffffu32.to_be_bytes()).unwrap();
    assert_closed(s);
    let mut s = f.connect();
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert_closed(s);
    f.still_serves();
}

#[test]
fn an_unknown_api_key_closes_the_connection() {
    let f = Fixture::new();
    let mut s = f.connect();
    let mut bytes = frame(ApiKey::Metadata, 1, &MetadataRequest::default());
    bytes[4..6].copy_from_slice(&999i16.to_be_bytes());
    s.write_all(&bytes).unwrap();
    assert_closed(s);
    f.still_serves();
}

#[test]
fn an_unsupported_version_of_api_versions_gets_a_v0_answer_naming_the_range() {
    let f = Fixture::new();
    let mut s = f.connect();
    let mut bytes = frame(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
    bytes[6..8].copy_from_slice(&99i16.to_be_bytes());
    s.write_all(&bytes).unwrap();
    let mut body = read_response(&mut s, ApiKey::ApiVersions, 0);
    let r = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(r.error_code, 35, "UNSUPPORTED_VERSION");
    let fetch = r
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Fetch as i16)
        .unwrap();
    assert_eq!((fetch.min_version, fetch.max_version), (4, 12));
    // Another API at an unsupported version closes the connection.
    let mut s = f.connect();
    let mut bytes = frame(ApiKey::Metadata, 1, &MetadataRequest::default());
    bytes[6..8].copy_from_slice(&99i16.to_be_bytes());
    s.write_all(&bytes).unwrap();
    assert_closed(s);
    f.still_serves();
}

#[test]
fn a_truncated_request_closes_the_connection() {
    let f = Fixture::new();
    // The frame's length is honest, but the body stops inside the Metadata request.
    let mut s = f.connect();
    let full = frame(ApiKey::Metadata, 4, &MetadataRequest::default());
    let header_bytes = 4 + 2 + 2 + 4 + 2 + "bad-input-test".len();
    let mut cut = full[..header_bytes + 1].to_vec();
    let len = (cut.len() - 4) as i32;
    cut[0..4].copy_from_slice(&len.to_be_bytes());
    s.write_all(&cut).unwrap();
    assert_closed(s);
    // And a frame that promises more than it sends, then hangs up.
    let mut s = f.connect();
    s.write_all(&100i32.to_be_bytes()).unwrap();
    s.write_all(&[0u8; 20]).unwrap();
    drop(s);
    f.still_serves();
}

fn produce_request(records: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records.into())),
                ]),
        ])
}

fn one_batch() -> Vec<u8> {
    let mut b = BatchBuilder::new(BatchOptions::default());
    b.push(1_700_000_000_000, Some(b"k"), Some(b"value"), &[]);
    b.finish(0)
}

#[test]
fn a_produce_with_a_corrupt_crc_is_refused_with_corrupt_message_and_nothing_is_stored() {
    let f = Fixture::new();
    let mut s = f.connect();
    let mut batch = one_batch();
    let last = batch.len() - 1;
    batch[last] ^= 0xff;
    let mut body = request(&mut s, ApiKey::Produce, 9, &produce_request(batch));
    let r = ProduceResponse::decode(&mut body, 9).unwrap();
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 2, "CORRUPT_MESSAGE: {:?}", p.error_message);
    assert_eq!(f.log.offsets("t", 0).unwrap(), (0, 0));
    // The same connection goes on: a good batch is stored.
    let mut body = request(&mut s, ApiKey::Produce, 9, &produce_request(one_batch()));
    let r = ProduceResponse::decode(&mut body, 9).unwrap();
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(f.log.offsets("t", 0).unwrap(), (0, 1));
}

#[test]
fn a_fetch_of_an_unknown_topic_gets_unknown_topic_or_partition() {
    let f = Fixture::new();
    let mut s = f.connect();
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("nope")))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let mut body = request(&mut s, ApiKey::Fetch, 11, &req);
    let r = FetchResponse::decode(&mut body, 11).unwrap();
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(
        p.records.as_deref(),
        Some(&[][..]),
        "empty bytes, never a null record set"
    );
    f.still_serves();
}

#[test]
fn a_produce_to_an_internal_topic_is_refused() {
    let f = Fixture::new();
    let mut s = f.connect();
    let mut req = produce_request(one_batch());
    req.topic_data[0].name = TopicName(StrBytes::from_static_str("__consumer_offsets"));
    let mut body = request(&mut s, ApiKey::Produce, 9, &req);
    let r = ProduceResponse::decode(&mut body, 9).unwrap();
    assert_eq!(
        r.responses[0].partition_responses[0].error_code, 17,
        "INVALID_TOPIC_EXCEPTION"
    );
}

/// Found by the fuzzer: a 20-byte Metadata request announcing 2^31 - 1 topics once made the
/// decoder reserve 139 GB and abort the server (third_party/README.md).
#[test]
fn an_array_count_far_beyond_the_request_closes_the_connection_without_reserving_it() {
    let f = Fixture::new();
    let mut s = f.connect();
    let mut bytes = frame(
        ApiKey::Metadata,
        1,
        &MetadataRequest::default().with_topics(Some(vec![])),
    );
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&i32::MAX.to_be_bytes());
    s.write_all(&bytes).unwrap();
    assert_closed(s);
    f.still_serves();
}

fn alterable(
    name: &str,
    op: i8,
    value: Option<&str>,
) -> incremental_alter_configs_request::AlterableConfig {
    incremental_alter_configs_request::AlterableConfig::default()
        .with_name(StrBytes::from_string(name.into()))
        .with_config_operation(op)
        .with_value(value.map(|v| StrBytes::from_string(v.into())))
}

fn topic_resource(
    name: &str,
    configs: Vec<incremental_alter_configs_request::AlterableConfig>,
) -> incremental_alter_configs_request::AlterConfigsResource {
    incremental_alter_configs_request::AlterConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_string(name.into()))
        .with_configs(configs)
}

/// Odd alters get their codes, per resource and in order, at both versions (v1 is flexible),
/// and change nothing; a good one beside them applies.
#[test]
fn odd_config_alters_get_their_codes_and_change_nothing() {
    let f = Fixture::new();
    let before = f.log.topic_config("t").unwrap();
    for version in [0, 1] {
        let mut s = f.connect();
        let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
            topic_resource(
                "t",
                vec![
                    alterable("retention.ms", 0, Some("1")),
                    alterable("retention.ms", 0, Some("2")),
                ],
            ),
            topic_resource("t", vec![alterable("retention.ms", 9, Some("1"))]),
            topic_resource(
                "__consumer_offsets",
                vec![alterable("retention.ms", 0, Some("1"))],
            ),
            topic_resource("t", vec![alterable("cleanup.policy", 3, Some("delete"))]),
            topic_resource("t", vec![alterable("segment.bytes", 0, None)]),
            topic_resource("t", vec![alterable("retention.ms", 0, Some("3600000"))]),
        ]);
        let mut body = request(&mut s, ApiKey::IncrementalAlterConfigs, version, &alter);
        let r = IncrementalAlterConfigsResponse::decode(&mut body, version).unwrap();
        let codes: Vec<i16> = r.responses.iter().map(|r| r.error_code).collect();
        // INVALID_REQUEST twice, INVALID_TOPIC_EXCEPTION, INVALID_CONFIG twice, none.
        assert_eq!(codes, [42, 42, 17, 40, 40, 0], "v{version}");
        assert!(r.responses[..5].iter().all(|r| r.error_message.is_some()));
        assert_eq!(&*r.responses[2].resource_name, "__consumer_offsets");
        assert_eq!(
            f.log.topic_config("t").unwrap(),
            weir_log::TopicConfig {
                retention_ms: Some(3_600_000),
                ..before.clone()
            }
        );
    }
    f.still_serves();
}

/// DeleteRecords answers each partition on its own, at v0 and v2 (flexible): an unknown
/// partition or topic, an offset below -1 or past the end, and a good one beside them.
#[test]
fn delete_records_answers_each_partition_with_its_code() {
    let f = Fixture::new();
    for version in [0, 2] {
        let mut s = f.connect();
        let partitions = |offsets: &[(i32, i64)]| {
            offsets
                .iter()
                .map(|&(p, o)| {
                    delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(p)
                        .with_offset(o)
                })
                .collect::<Vec<_>>()
        };
        let delete = DeleteRecordsRequest::default()
            .with_timeout_ms(1000)
            .with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(partitions(&[(0, 0), (0, -5), (0, 1), (7, 0)])),
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("nope")))
                    .with_partitions(partitions(&[(0, 0)])),
            ]);
        let mut body = request(&mut s, ApiKey::DeleteRecords, version, &delete);
        let r = DeleteRecordsResponse::decode(&mut body, version).unwrap();
        let answers: Vec<Vec<(i32, i64, i16)>> = r
            .topics
            .iter()
            .map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.low_watermark, p.error_code))
                    .collect()
            })
            .collect();
        assert_eq!(
            answers,
            [
                vec![(0, 0, 0), (0, -1, 1), (0, -1, 1), (7, -1, 3)],
                vec![(0, -1, 3)]
            ],
            "v{version}: the empty partition's start is 0; -5 and 1 are out of range"
        );
    }
    f.still_serves();
}
