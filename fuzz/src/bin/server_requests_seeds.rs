//! Writes the seed corpus of `server_requests`: one well-formed request of every served API,
//! encoded as a client would, and a few connections that chain them (join → sync → commit,
//! init → add → produce → end). `cargo run --bin server_requests_seeds -- fuzz/corpus/server_requests`
#![allow(clippy::unwrap_used)]

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use weir_log::format::{BatchBuilder, BatchOptions};

fn frame<R: Encodable + HeaderVersion>(key: ApiKey, version: i16, req: &R) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("seed")))
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    req.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&len.to_be_bytes());
    buf.to_vec()
}

fn s(x: &'static str) -> StrBytes {
    StrBytes::from_static_str(x)
}

fn batch(producer_id: i64, transactional: bool) -> bytes::Bytes {
    let mut b = BatchBuilder::new(BatchOptions {
        producer_id,
        producer_epoch: if producer_id >= 0 { 0 } else { -1 },
        base_sequence: if producer_id >= 0 { 0 } else { -1 },
        transactional,
        ..BatchOptions::default()
    });
    b.push(1_700_000_000_000, Some(b"k"), Some(br#"{"v":1}"#), &[]);
    b.finish(0).into()
}

fn produce(records: bytes::Bytes, txn: Option<&'static str>) -> ProduceRequest {
    ProduceRequest::default()
        .with_transactional_id(txn.map(|t| TransactionalId(s(t))))
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(TopicName(s("t")))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ])
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("the corpus directory"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut seeds: Vec<(&str, Vec<u8>)> = Vec::new();
    seeds.push((
        "api_versions",
        frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()),
    ));
    seeds.push((
        "metadata",
        frame(ApiKey::Metadata, 9, &MetadataRequest::default()),
    ));
    seeds.push((
        "produce",
        frame(ApiKey::Produce, 9, &produce(batch(-1, false), None)),
    ));
    let fetch = FetchRequest::default()
        .with_max_bytes(1 << 20)
        .with_isolation_level(1)
        .with_topics(vec![
            fetch_request::FetchTopic::default()
                .with_topic(TopicName(s("t")))
                .with_partitions(vec![
                    fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    seeds.push(("fetch", frame(ApiKey::Fetch, 11, &fetch)));
    let list = ListOffsetsRequest::default().with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1),
            ]),
    ]);
    seeds.push(("list_offsets", frame(ApiKey::ListOffsets, 6, &list)));
    let create = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s("new")))
            .with_num_partitions(3)
            .with_replication_factor(1)
            .with_configs(vec![
                create_topics_request::CreatableTopicConfig::default()
                    .with_name(s("cleanup.policy"))
                    .with_value(Some(s("compact"))),
            ]),
    ]);
    seeds.push(("create_topics", frame(ApiKey::CreateTopics, 5, &create)));
    seeds.push((
        "delete_topics",
        frame(
            ApiKey::DeleteTopics,
            4,
            &DeleteTopicsRequest::default().with_topic_names(vec![TopicName(s("new"))]),
        ),
    ));
    seeds.push((
        "describe_configs",
        frame(
            ApiKey::DescribeConfigs,
            4,
            &DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t")),
            ]),
        ),
    ));
    let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("t"))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(s("3600000"))),
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s("cleanup.policy"))
                    .with_config_operation(2)
                    .with_value(Some(s("compact"))),
            ]),
    ]);
    seeds.push((
        "incremental_alter_configs",
        frame(ApiKey::IncrementalAlterConfigs, 1, &alter),
    ));
    let delete_records = DeleteRecordsRequest::default()
        .with_timeout_ms(1000)
        .with_topics(vec![
            delete_records_request::DeleteRecordsTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(1),
                ]),
        ]);
    seeds.push((
        "delete_records",
        frame(ApiKey::DeleteRecords, 2, &delete_records),
    ));
    seeds.push((
        "find_coordinator",
        frame(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default().with_key(s("g")),
        ),
    ));
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_session_timeout_ms(10)
        .with_rebalance_timeout_ms(10)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            join_group_request::JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(bytes::Bytes::from_static(&[
                    0, 1, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 0,
                ])),
        ]);
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id(1)
        .with_member_id(s("m"));
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_committed_offset(1),
                ]),
        ]);
    let fetch_offsets = OffsetFetchRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_require_stable(true);
    let mut group = frame(ApiKey::JoinGroup, 3, &join);
    group.extend(frame(ApiKey::SyncGroup, 3, &sync));
    group.extend(frame(
        ApiKey::Heartbeat,
        3,
        &HeartbeatRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s("m")),
    ));
    group.extend(frame(ApiKey::OffsetCommit, 8, &commit));
    group.extend(frame(ApiKey::OffsetFetch, 7, &fetch_offsets));
    group.extend(frame(
        ApiKey::DescribeGroups,
        5,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))]),
    ));
    group.extend(frame(ApiKey::ListGroups, 4, &ListGroupsRequest::default()));
    group.extend(frame(
        ApiKey::LeaveGroup,
        4,
        &LeaveGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_members(vec![
                leave_group_request::MemberIdentity::default().with_member_id(s("m")),
            ]),
    ));
    group.extend(frame(
        ApiKey::DeleteGroups,
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))]),
    ));
    seeds.push(("group", group));
    let mut txn = frame(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s("x"))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    txn.extend(frame(
        ApiKey::AddPartitionsToTxn,
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s("x")))
            .with_v3_and_below_producer_id(ProducerId(0))
            .with_v3_and_below_topics(vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partitions(vec![0]),
            ]),
    ));
    txn.extend(frame(
        ApiKey::Produce,
        9,
        &produce(batch(0, true), Some("x")),
    ));
    txn.extend(frame(
        ApiKey::AddOffsetsToTxn,
        3,
        &AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s("x")))
            .with_group_id(GroupId(s("g"))),
    ));
    txn.extend(frame(
        ApiKey::TxnOffsetCommit,
        3,
        &TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s("x")))
            .with_group_id(GroupId(s("g")))
            .with_generation_id(-1)
            .with_topics(vec![
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partitions(vec![
                        txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                            .with_committed_offset(1),
                    ]),
            ]),
    ));
    txn.extend(frame(
        ApiKey::EndTxn,
        3,
        &EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s("x")))
            .with_committed(true),
    ));
    seeds.push(("transaction", txn));
    seeds.push((
        "create_partitions",
        frame(
            ApiKey::CreatePartitions,
            3,
            &CreatePartitionsRequest::default().with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_count(4),
            ]),
        ),
    ));
    for (name, bytes) in seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}
