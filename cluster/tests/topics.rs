//! The `Topics` contract the runtime relies on, held by `KafkaTopics` over `weir serve`:
//! topic creation with its configs, offsets, read_committed positions past transaction
//! markers and aborted records, an epoch's commit of records and offsets together, fencing, and
//! records' headers, keys and timestamps both ways.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use weir_client::Admin;
use weir_cluster::KafkaTopics;
use weir_runtime::topics::{
    EpochCommit, Isolation, OutgoingRecord, PartitionOffset, ReaderConfig, RecordHeader,
    TopicReader, TopicSpec, WriterConfig,
};
use weir_runtime::{Guarantee, Topics};

use crate::server::{Server, read_committed};

fn reader(topics: &KafkaTopics, isolation: Isolation) -> Box<dyn TopicReader> {
    topics
        .reader(ReaderConfig {
            client_id: "test-reader".into(),
            isolation,
            fetch_bytes_max: 1 << 20,
            poll_bytes_max: 1 << 20,
        })
        .unwrap()
}

/// Polls until the reader's position in each partition of `ends` reaches its end, returning
/// the offsets of the records read, by partition (a hang, not a timing check, if it never
/// does).
fn read_to(
    reader: &mut dyn TopicReader,
    topic: &str,
    ends: &[(i32, i64)],
) -> BTreeMap<i32, Vec<i64>> {
    let mut offsets: BTreeMap<i32, Vec<i64>> = ends.iter().map(|&(p, _)| (p, vec![])).collect();
    let mut polls = 0;
    while ends
        .iter()
        .any(|&(p, end)| reader.position(topic, p).unwrap_or(0) < end)
    {
        polls += 1;
        assert!(
            polls < 1_000,
            "positions stuck short of {ends:?}; read {offsets:?}"
        );
        for chunk in reader.poll(Duration::from_millis(50)).unwrap() {
            assert!(chunk.records.windows(2).all(|w| w[0].offset < w[1].offset));
            offsets
                .get_mut(&chunk.partition)
                .expect("a partition the reader was assigned")
                .extend(chunk.records.iter().map(|r| r.offset));
        }
    }
    offsets
}

fn record<'a>(topic: &'a str, partition: i32, value: &'a [u8]) -> OutgoingRecord<'a> {
    OutgoingRecord {
        topic,
        partition: Some(partition),
        key: Some(value),
        value,
        timestamp: Some(1_000),
        headers: &[],
    }
}

/// Waits until `partition`'s high watermark reaches `end`: records sent in an open transaction
/// reach the server in the background.
fn wait_for_end(topics: &KafkaTopics, topic: &str, partition: i32, end: i64) {
    for _ in 0..1_000 {
        if topics.end_offset(topic, partition).unwrap() >= end {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{topic}/{partition} never reached {end}");
}

#[test]
fn ensure_topic_creates_once_with_kafka_configs() {
    let server = Server::start();
    let topics = KafkaTopics::new(server.client()).unwrap();
    let spec = TopicSpec {
        partitions: 3,
        compacted: true,
        record_bytes_max: 2 << 20,
        batch_bytes_max: 4 << 20,
        unlimited_retention: false,
        segment_bytes_max: None,
    };
    assert!(topics.partition_count("state").is_err());
    topics.ensure_topic("state", &spec).unwrap();
    // A second call (another job, another instance) finds it and changes nothing.
    topics
        .ensure_topic(
            "state",
            &TopicSpec {
                partitions: 5,
                ..spec.clone()
            },
        )
        .unwrap();
    assert_eq!(topics.partition_count("state").unwrap(), 3);
    let described = Admin::connect(&server.client())
        .unwrap()
        .describe_topic("state")
        .unwrap();
    assert_eq!(described.config("cleanup.policy"), Some("compact"));
    assert_eq!(
        described.config("max.message.bytes"),
        Some((4 << 20).to_string().as_str())
    );
    assert_eq!(topics.end_offset("state", 2).unwrap(), 0);
    assert_eq!(topics.committed_offset("nobody", "state", 0).unwrap(), None);
    server.stop();
}

#[test]
fn an_epoch_commits_records_and_offsets_and_positions_pass_the_markers() {
    let server = Server::start();
    let topics = KafkaTopics::new(server.client()).unwrap();
    let spec = TopicSpec {
        partitions: 2,
        compacted: false,
        record_bytes_max: 1 << 20,
        batch_bytes_max: 1 << 20,
        unlimited_retention: false,
        segment_bytes_max: None,
    };
    topics.ensure_topic("out", &spec).unwrap();
    topics.ensure_topic("in", &spec).unwrap();
    let writer = topics
        .writer(WriterConfig {
            guarantee: Guarantee::ExactlyOnce,
            transactional_id: "epochs".into(),
            transaction_timeout_ms: 60_000,
        })
        .unwrap();

    // Epoch 1: three records sent, one more with the commit, and offsets for the group.
    writer
        .send(&[
            record("out", 0, b"a"),
            record("out", 0, b"b"),
            record("out", 1, b"c"),
        ])
        .unwrap();
    wait_for_end(&topics, "out", 0, 2);
    // Open: a read_committed reader cannot pass the transaction's first record.
    assert_eq!(topics.last_stable_offset("out", 0).unwrap(), 0);
    assert_eq!(topics.end_offset("out", 0).unwrap(), 2);
    let offsets = [PartitionOffset {
        topic: "in".into(),
        partition: 1,
        offset: 42,
    }];
    writer
        .commit_epoch(&EpochCommit {
            records: &[record("out", 0, b"d")],
            group: "epochs",
            offsets: &offsets,
            membership: None,
        })
        .unwrap();
    // Three records and the commit marker on partition 0 (a Kafka broker writes markers after
    // EndTxn answers).
    wait_for_end(&topics, "out", 0, 4);
    assert_eq!(topics.end_offset("out", 0).unwrap(), 4);
    assert_eq!(topics.last_stable_offset("out", 0).unwrap(), 4);
    assert_eq!(
        topics.committed_offset("epochs", "in", 1).unwrap(),
        Some(42)
    );
    assert_eq!(topics.committed_offset("epochs", "in", 0).unwrap(), None);

    // Epoch 2: sent, then abandoned (aborted): never visible, its offsets never committed.
    writer.send(&[record("out", 0, b"x")]).unwrap();
    wait_for_end(&topics, "out", 0, 5);
    writer.abandon();
    // The aborted record and its abort marker.
    wait_for_end(&topics, "out", 0, 6);
    assert_eq!(topics.end_offset("out", 0).unwrap(), 6);
    assert_eq!(topics.last_stable_offset("out", 0).unwrap(), 6);

    let mut committed = reader(&topics, Isolation::ReadCommitted);
    committed.assign("out", &[0]).unwrap();
    assert_eq!(
        read_to(&mut *committed, "out", &[(0, 6)])[&0],
        [0, 1, 2],
        "read_committed: the committed records, then a position past both markers and the \
         aborted record"
    );
    assert_eq!(committed.position("out", 0), Some(6));

    let mut uncommitted = reader(&topics, Isolation::ReadUncommitted);
    uncommitted.assign("out", &[0]).unwrap();
    assert_eq!(
        read_to(&mut *uncommitted, "out", &[(0, 6)])[&0],
        [0, 1, 2, 4]
    );

    // A seek before the first poll starts there; positions are per partition.
    let mut sought = reader(&topics, Isolation::ReadCommitted);
    sought.assign("out", &[0, 1]).unwrap();
    sought.seek("out", 0, 1).unwrap();
    assert_eq!(sought.position("out", 0), Some(1));
    let read = read_to(&mut *sought, "out", &[(0, 6), (1, 2)]);
    assert_eq!(read[&0], [1, 2]);
    assert_eq!(read[&1], [0]);

    let values: Vec<Vec<u8>> = read_committed(&server.client(), "out")
        .into_iter()
        .filter(|r| r.partition == 0)
        .map(|r| r.value)
        .collect();
    assert_eq!(values, [b"a".to_vec(), b"b".to_vec(), b"d".to_vec()]);
    server.stop();
}

#[test]
fn a_new_writer_fences_the_old_one_and_aborts_its_transaction() {
    let server = Server::start();
    let topics = KafkaTopics::new(server.client()).unwrap();
    Admin::connect(&server.client())
        .unwrap()
        .create_topic(&weir_client::NewTopic {
            name: "out".into(),
            partitions: 1,
            replication_factor: None,
            configs: Vec::new(),
        })
        .unwrap();
    let config = WriterConfig {
        guarantee: Guarantee::ExactlyOnce,
        transactional_id: "fenced".into(),
        transaction_timeout_ms: 60_000,
    };
    let old = topics.writer(config.clone()).unwrap();
    old.send(&[record("out", 0, b"zombie")]).unwrap();
    wait_for_end(&topics, "out", 0, 1);
    let new = topics.writer(config).unwrap();
    let commit = EpochCommit {
        records: &[],
        group: "fenced",
        offsets: &[],
        membership: None,
    };
    // Fencing is its own error, so that an instance in a group rejoins rather than fails.
    let e = old.commit_epoch(&commit).unwrap_err();
    assert!(
        matches!(e, weir_runtime::Error::Fenced { .. }),
        "the old writer is fenced: {e}"
    );
    new.send(&[record("out", 0, b"live")]).unwrap();
    new.commit_epoch(&commit).unwrap();
    let values: Vec<Vec<u8>> = read_committed(&server.client(), "out")
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(values, [b"live".to_vec()]);
    server.stop();
}

#[test]
fn at_least_once_flushes_then_commits_the_offsets() {
    let server = Server::start();
    let topics = KafkaTopics::new(server.client()).unwrap();
    topics
        .ensure_topic(
            "out",
            &TopicSpec {
                partitions: 1,
                compacted: false,
                record_bytes_max: 1 << 20,
                batch_bytes_max: 1 << 20,
                unlimited_retention: false,
                segment_bytes_max: None,
            },
        )
        .unwrap();
    let writer = topics
        .writer(WriterConfig {
            guarantee: Guarantee::AtLeastOnce,
            transactional_id: "alo".into(),
            transaction_timeout_ms: 60_000,
        })
        .unwrap();
    writer.send(&[record("out", 0, b"one")]).unwrap();
    let offsets = [PartitionOffset {
        topic: "out".into(),
        partition: 0,
        offset: 7,
    }];
    writer
        .commit_epoch(&EpochCommit {
            records: &[record("out", 0, b"two")],
            group: "alo",
            offsets: &offsets,
            membership: None,
        })
        .unwrap();
    assert_eq!(topics.end_offset("out", 0).unwrap(), 2);
    assert_eq!(topics.committed_offset("alo", "out", 0).unwrap(), Some(7));
    server.stop();
}

#[test]
fn headers_keys_and_timestamps_round_trip() {
    let server = Server::start();
    let topics = KafkaTopics::new(server.client()).unwrap();
    topics
        .ensure_topic(
            "dead",
            &TopicSpec {
                partitions: 1,
                compacted: false,
                record_bytes_max: 1 << 20,
                batch_bytes_max: 1 << 20,
                unlimited_retention: false,
                segment_bytes_max: None,
            },
        )
        .unwrap();
    let writer = topics
        .writer(WriterConfig {
            guarantee: Guarantee::ExactlyOnce,
            transactional_id: "headers".into(),
            transaction_timeout_ms: 60_000,
        })
        .unwrap();
    let headers = [
        RecordHeader {
            key: "weir.error".into(),
            value: Some(Bytes::from_static(b"bad json")),
        },
        RecordHeader {
            key: "weir.null".into(),
            value: None,
        },
    ];
    writer
        .send(&[
            OutgoingRecord {
                topic: "dead",
                partition: None,
                key: Some(b"k"),
                value: b"{",
                timestamp: Some(1_234),
                headers: &headers,
            },
            OutgoingRecord {
                topic: "dead",
                partition: Some(0),
                key: None,
                value: b"",
                timestamp: Some(5_678),
                headers: &[],
            },
        ])
        .unwrap();
    writer
        .commit_epoch(&EpochCommit {
            records: &[],
            group: "headers",
            offsets: &[],
            membership: None,
        })
        .unwrap();
    wait_for_end(&topics, "dead", 0, 3);
    let mut reader = reader(&topics, Isolation::ReadCommitted);
    reader.assign("dead", &[0]).unwrap();
    let mut got = Vec::new();
    while reader.position("dead", 0).unwrap_or(0) < 3 {
        for chunk in reader.poll(Duration::from_millis(50)).unwrap() {
            got.extend(chunk.records);
        }
    }
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(got[0].value.as_deref(), Some(&b"{"[..]));
    assert_eq!(got[0].timestamp, 1_234);
    assert_eq!(got[0].headers, headers);
    assert_eq!(got[1].key, None);
    assert_eq!(got[1].value.as_deref(), Some(&b""[..]));
    assert_eq!(got[1].timestamp, 5_678);
    assert!(got[1].headers.is_empty());
    server.stop();
}
