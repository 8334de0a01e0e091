//! [`KafkaWriter`]: the job's one writer, a Kafka transaction per epoch under exactly-once, an
//! idempotent producer and a group commit under at-least-once.

use std::collections::HashMap;
use std::sync::Mutex;

use weir_client::{
    Acks, ClientConfig, Compression, Consumer, ConsumerConfig, GroupMetadata, Header, Producer,
    ProducerConfig, ProducerRecord, TransactionalConfig, TransactionalProducer,
};
use weir_runtime::topics::{
    EpochCommit, GroupMembership, OutgoingRecord, TopicWriter, WriterConfig,
};
use weir_runtime::{Error, Guarantee, Result};

use crate::member::{Assignments, Current};
use crate::topics_error;

/// The largest record the writer sends, bytes: the state topic's records (its chunks are far
/// smaller) and anything a sink writes.
const RECORD_BYTES_MAX: usize = 16 << 20;

/// The consumer a commit's group is named through: its group metadata fences the offsets of a
/// transaction, or it commits them itself under at-least-once.
pub(crate) struct GroupHandle {
    consumer: Consumer,
    metadata: GroupMetadata,
}

/// The job's producer, chosen by its guarantee.
pub(crate) enum KafkaWriter {
    /// One transaction per epoch; the coordinator commits it and begins the next.
    Transactional {
        producer: TransactionalProducer,
        client: ClientConfig,
        /// By group name: a job commits for its own group only, so this holds one.
        groups: Mutex<HashMap<String, GroupHandle>>,
        assignments: Assignments,
    },
    /// Idempotent, `acks=all`; flushed before the offsets are committed.
    Plain {
        producer: Producer,
        client: ClientConfig,
        groups: Mutex<HashMap<String, GroupHandle>>,
        assignments: Assignments,
    },
}

impl KafkaWriter {
    pub(crate) fn new(
        client: &ClientConfig,
        config: WriterConfig,
        assignments: Assignments,
    ) -> Result<KafkaWriter> {
        let client = client.clone();
        Ok(match config.guarantee {
            Guarantee::ExactlyOnce => {
                let producer = TransactionalProducer::new(
                    &client,
                    &TransactionalConfig {
                        // lz4: state snapshots (sketches, sparse tables) shrink many times over.
                        compression: Compression::Lz4,
                        record_bytes_max: RECORD_BYTES_MAX,
                        transaction_timeout_ms: config.transaction_timeout_ms,
                        ..TransactionalConfig::new(config.transactional_id.clone())
                    },
                )
                .map_err(|e| {
                    topics_error(
                        format!("open transactional writer '{}'", config.transactional_id),
                        e,
                    )
                })?;
                producer
                    .begin()
                    .map_err(|e| topics_error("begin the first epoch's transaction", e))?;
                KafkaWriter::Transactional {
                    producer,
                    client,
                    groups: Mutex::new(HashMap::new()),
                    assignments,
                }
            }
            Guarantee::AtLeastOnce => KafkaWriter::Plain {
                producer: Producer::new(
                    &client,
                    &ProducerConfig {
                        acks: Acks::All,
                        idempotence: true,
                        ..ProducerConfig::default()
                    },
                )
                .map_err(|e| topics_error("open a writer", e))?,
                client,
                groups: Mutex::new(HashMap::new()),
                assignments,
            },
        })
    }

    fn send_each(
        records: &[OutgoingRecord<'_>],
        mut send: impl FnMut(ProducerRecord<'_>) -> weir_client::Result<()>,
    ) -> Result<()> {
        for r in records {
            // Most records carry none: an empty Vec is no allocation.
            let headers: Vec<Header<'_>> = r
                .headers
                .iter()
                .map(|h| Header {
                    key: &h.key,
                    value: h.value.as_deref(),
                })
                .collect();
            let record = ProducerRecord {
                topic: r.topic,
                partition: r.partition,
                key: r.key,
                value: Some(r.value),
                timestamp_ms: r.timestamp,
                headers: &headers,
            };
            send(record).map_err(|e| topics_error(format!("send to '{}'", r.topic), e))?;
        }
        Ok(())
    }
}

/// Runs `f` with the handle of `group`, made on first use.
fn with_group<T>(
    groups: &Mutex<HashMap<String, GroupHandle>>,
    client: &ClientConfig,
    group: &str,
    f: impl FnOnce(&GroupHandle) -> Result<T>,
) -> Result<T> {
    let mut groups = groups.lock().map_err(|_| Error::Stopped)?;
    let handle = match groups.entry(group.to_string()) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            let operation = || format!("name group '{group}'");
            let consumer = Consumer::new(
                client,
                &ConsumerConfig {
                    group: Some(group.to_string()),
                    ..ConsumerConfig::default()
                },
            )
            .map_err(|e| topics_error(operation(), e))?;
            let metadata = consumer
                .group_metadata()
                .map_err(|e| topics_error(operation(), e))?;
            e.insert(GroupHandle { consumer, metadata })
        }
    };
    f(handle)
}

/// The error for a failed `operation` of an epoch's commit: fencing (the group moved this
/// instance's partitions, or a newer writer took its transactional id) is
/// [`Error::Fenced`], so that the instance rejoins instead of failing.
fn commit_error(operation: &str, e: weir_client::Error) -> Error {
    use weir_client::ErrorCode as C;
    let fenced = matches!(e, weir_client::Error::Fenced { .. })
        || matches!(
            e.code(),
            Some(
                C::IllegalGeneration
                    | C::UnknownMemberId
                    | C::RebalanceInProgress
                    | C::FencedInstanceId
                    | C::ProducerFenced
                    | C::InvalidProducerEpoch
                    | C::InvalidProducerIdMapping
            )
        );
    if fenced {
        Error::Fenced {
            operation: operation.to_string(),
            reason: e.to_string(),
        }
    } else {
        topics_error(operation, e)
    }
}

/// Runs `f` with the current assignment of `m`'s group, or refuses: a commit made for an
/// assignment the group has since replaced must not reach the cluster.
fn with_assignment<T>(
    assignments: &Assignments,
    m: &GroupMembership,
    f: impl FnOnce(&Current) -> Result<T>,
) -> Result<T> {
    let current = assignments.lock().map_err(|_| Error::Stopped)?;
    match current.get(&m.group) {
        Some(c) if c.number == m.assignment => f(c),
        other => Err(Error::Fenced {
            operation: "commit the epoch's offsets".into(),
            reason: format!(
                "group '{}' reassigned this instance's partitions (assignment {} is not the \
                 current {})",
                m.group,
                m.assignment,
                other.map_or_else(|| "none".to_string(), |c| c.number.to_string())
            ),
        }),
    }
}

impl TopicWriter for KafkaWriter {
    fn send(&self, records: &[OutgoingRecord<'_>]) -> Result<()> {
        match self {
            KafkaWriter::Transactional { producer, .. } => {
                KafkaWriter::send_each(records, |r| producer.send(r))
            }
            KafkaWriter::Plain { producer, .. } => {
                KafkaWriter::send_each(records, |r| producer.send(r))
            }
        }
    }

    fn commit_epoch(&self, commit: &EpochCommit<'_>) -> Result<()> {
        let offsets: Vec<(&str, i32, i64)> = commit
            .offsets
            .iter()
            .map(|o| (o.topic.as_str(), o.partition, o.offset))
            .collect();
        match self {
            KafkaWriter::Transactional {
                producer,
                client,
                groups,
                assignments,
            } => {
                KafkaWriter::send_each(commit.records, |r| producer.send(r))?;
                let send = |metadata: &GroupMetadata| {
                    producer
                        .send_offsets(&offsets, metadata)
                        .map_err(|e| commit_error("send the epoch's offsets", e))
                };
                match (commit.membership, offsets.is_empty()) {
                    (_, true) => {}
                    (Some(m), false) => with_assignment(assignments, m, |c| send(&c.metadata))?,
                    (None, false) => {
                        with_group(groups, client, commit.group, |g| send(&g.metadata))?
                    }
                }
                producer
                    .commit()
                    .map_err(|e| commit_error("commit the epoch's transaction", e))?;
                producer
                    .begin()
                    .map_err(|e| topics_error("begin the next epoch's transaction", e))?;
            }
            KafkaWriter::Plain {
                producer,
                client,
                groups,
                assignments,
            } => {
                producer
                    .flush()
                    .map_err(|e| topics_error("flush the epoch's records", e))?;
                KafkaWriter::send_each(commit.records, |r| producer.send(r))?;
                producer
                    .flush()
                    .map_err(|e| topics_error("flush the epoch's state", e))?;
                match (commit.membership, offsets.is_empty()) {
                    (_, true) => {}
                    (Some(m), false) => with_assignment(assignments, m, |c| {
                        c.member
                            .commit(&offsets)
                            .map_err(|e| commit_error("commit the epoch's offsets", e))
                    })?,
                    (None, false) => with_group(groups, client, commit.group, |g| {
                        commit_offsets(&g.consumer, &offsets)
                    })?,
                }
            }
        }
        Ok(())
    }

    fn abandon(&self) {
        match self {
            KafkaWriter::Transactional { producer, .. } => {
                let _ = producer.abort();
            }
            KafkaWriter::Plain { producer, .. } => {
                let _ = producer.flush();
            }
        }
    }
}

/// Commits `offsets` for the consumer's group, one call per topic.
fn commit_offsets(consumer: &Consumer, offsets: &[(&str, i32, i64)]) -> Result<()> {
    let mut by_topic: Vec<(&str, Vec<(i32, i64)>)> = Vec::new();
    for &(topic, partition, offset) in offsets {
        match by_topic.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, v)) => v.push((partition, offset)),
            None => by_topic.push((topic, vec![(partition, offset)])),
        }
    }
    for (topic, partitions) in by_topic {
        consumer
            .commit(topic, &partitions)
            .map_err(|e| topics_error(format!("commit offsets of '{topic}'"), e))?;
    }
    Ok(())
}
