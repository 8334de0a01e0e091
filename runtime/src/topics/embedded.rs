//! [`Topics`] over the embedded log: a job in the same process as its data directory.

use std::sync::Mutex;
use std::time::Duration;

use weir_log::format::{Compression, Header};
use weir_log::{
    Acks, Consumer, ConsumerConfig, GroupMetadata, IsolationLevel, Log, Producer, ProducerConfig,
    ProducerRecord, TopicConfig, TopicPartition, TransactionalConfig, TransactionalProducer,
};

use super::{
    EpochCommit, Isolation, OutgoingRecord, PartitionOffset, ReaderConfig, RecordChunk,
    RecordHeader, TopicReader, TopicRecord, TopicSpec, TopicWriter, Topics, WriterConfig,
};
use crate::config::Guarantee;
use crate::error::{Error, Result};

/// The embedded log as a job's topics. [`crate::Job::new`] wraps its log in one.
#[derive(Clone)]
pub struct EmbeddedTopics {
    log: Log,
}

impl std::fmt::Debug for EmbeddedTopics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedTopics")
            .field("dir", &self.log.dir())
            .finish()
    }
}

impl EmbeddedTopics {
    /// The topics of `log` (a handle: the log stays shared with its other users).
    pub fn new(log: Log) -> EmbeddedTopics {
        EmbeddedTopics { log }
    }

    /// The log underneath.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// A job writes its output, state and offsets: a log opened read-only cannot run one.
    fn check_writable(&self) -> Result<()> {
        if self.log.is_writable() {
            Ok(())
        } else {
            Err(Error::config("log", "a job needs a log opened for writing"))
        }
    }
}

impl Topics for EmbeddedTopics {
    fn partition_count(&self, topic: &str) -> Result<i32> {
        Ok(self.log.partition_count(topic)?)
    }

    fn ensure_topic(&self, topic: &str, spec: &TopicSpec) -> Result<()> {
        self.check_writable()?;
        if self.log.partition_count(topic).is_ok() {
            return Ok(());
        }
        let defaults = TopicConfig::default();
        let config = TopicConfig {
            partitions: spec.partitions,
            compacted: spec.compacted,
            record_bytes_max: spec.record_bytes_max,
            batch_bytes_max: spec.batch_bytes_max,
            retention_ms: match spec.unlimited_retention {
                true => None,
                false => defaults.retention_ms,
            },
            retention_bytes: match spec.unlimited_retention {
                true => None,
                false => defaults.retention_bytes,
            },
            segment_bytes_max: spec.segment_bytes_max.unwrap_or(defaults.segment_bytes_max),
            ..defaults
        };
        match self.log.create_topic(topic, config) {
            Ok(()) => Ok(()),
            // Created meanwhile by another job of this process.
            Err(_) if self.log.partition_count(topic).is_ok() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn end_offset(&self, topic: &str, partition: i32) -> Result<i64> {
        Ok(self.log.offsets(topic, partition)?.1)
    }

    fn last_stable_offset(&self, topic: &str, partition: i32) -> Result<i64> {
        let description = self.log.describe_topic(topic)?;
        usize::try_from(partition)
            .ok()
            .and_then(|p| description.partitions.get(p))
            .map(|p| p.last_stable_offset)
            .ok_or_else(|| {
                weir_log::Error::UnknownPartition {
                    topic: topic.to_string(),
                    partition,
                }
                .into()
            })
    }

    fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Result<Option<i64>> {
        Ok(self.log.committed_offset(group, topic, partition)?)
    }

    fn reader(&self, config: ReaderConfig) -> Result<Box<dyn TopicReader>> {
        let consumer = Consumer::new(
            &self.log,
            ConsumerConfig {
                client_id: config.client_id,
                auto_commit: false,
                isolation: match config.isolation {
                    Isolation::ReadCommitted => IsolationLevel::ReadCommitted,
                    Isolation::ReadUncommitted => IsolationLevel::ReadUncommitted,
                },
                fetch_bytes_max: config.fetch_bytes_max,
                poll_bytes_max: config.poll_bytes_max,
                ..ConsumerConfig::default()
            },
        )?;
        Ok(Box::new(EmbeddedReader { consumer }))
    }

    fn delete_records(&self, before: &[PartitionOffset]) -> Result<()> {
        self.check_writable()?;
        for p in before {
            self.log.delete_records(&p.topic, p.partition, p.offset)?;
        }
        Ok(())
    }

    fn writer(&self, config: WriterConfig) -> Result<Box<dyn TopicWriter>> {
        self.check_writable()?;
        Ok(Box::new(match config.guarantee {
            Guarantee::ExactlyOnce => {
                // lz4: state snapshots (sketches, sparse tables) shrink many times over.
                let mut producer = TransactionalProducer::new(
                    &self.log,
                    TransactionalConfig {
                        compression: Compression::Lz4,
                        transaction_timeout_ms: i64::try_from(config.transaction_timeout_ms)
                            .unwrap_or(i64::MAX),
                        ..TransactionalConfig::new(config.transactional_id)
                    },
                )?;
                producer.begin()?;
                EmbeddedWriter::Transactional(Box::new(Mutex::new(producer)))
            }
            Guarantee::AtLeastOnce => EmbeddedWriter::Plain {
                producer: Producer::new(
                    &self.log,
                    ProducerConfig {
                        acks: Acks::All,
                        idempotent: true,
                        ..ProducerConfig::default()
                    },
                )?,
                log: self.log.clone(),
            },
        }))
    }
}

/// A consumer with a manual assignment and no group.
struct EmbeddedReader {
    consumer: Consumer,
}

impl TopicReader for EmbeddedReader {
    fn assign(&mut self, topic: &str, partitions: &[i32]) -> Result<()> {
        let assigned: Vec<(&str, i32)> = partitions.iter().map(|&p| (topic, p)).collect();
        Ok(self.consumer.assign(&assigned)?)
    }

    fn seek(&mut self, topic: &str, partition: i32, offset: i64) -> Result<()> {
        Ok(self.consumer.seek(topic, partition, offset)?)
    }

    fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.consumer.position(topic, partition)
    }

    fn poll(&mut self, timeout: Duration) -> Result<Vec<RecordChunk>> {
        let batches = self.consumer.poll(timeout)?;
        let mut chunks = Vec::with_capacity(batches.len());
        for batch in batches {
            // A hint only: compaction and skipped records leave fewer.
            let span = (batch.last_offset() - batch.start_offset() + 1).clamp(0, 1 << 16);
            let mut records = Vec::with_capacity(span as usize);
            for r in batch.records() {
                let r = r?;
                records.push(TopicRecord {
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key,
                    value: r.value,
                    // Most records carry none: an empty Vec maps without allocating.
                    headers: r
                        .headers
                        .into_iter()
                        .map(|h| RecordHeader {
                            key: h.key,
                            value: h.value,
                        })
                        .collect(),
                });
            }
            chunks.push(RecordChunk {
                topic: batch.topic,
                partition: batch.partition,
                records,
            });
        }
        Ok(chunks)
    }
}

/// The job's producer, chosen by its guarantee.
enum EmbeddedWriter {
    /// One transaction per epoch; the coordinator commits it and begins the next.
    Transactional(Box<Mutex<TransactionalProducer>>),
    /// Idempotent, `acks=all`; flushed before the offsets are committed.
    Plain { producer: Producer, log: Log },
}

/// The log's form of a record; `headers` holds its converted headers (left empty, with no
/// allocation, when it has none).
fn producer_record<'a>(r: &OutgoingRecord<'a>, headers: &'a [Header]) -> ProducerRecord<'a> {
    let mut pr = ProducerRecord::new(r.topic, r.value).headers(headers);
    if let Some(k) = r.key {
        pr = pr.key(k);
    }
    if let Some(p) = r.partition {
        pr = pr.partition(p);
    }
    if let Some(ts) = r.timestamp {
        pr = pr.timestamp(ts);
    }
    pr
}

fn log_headers(headers: &[RecordHeader]) -> Vec<Header> {
    headers
        .iter()
        .map(|h| Header {
            key: h.key.clone(),
            value: h.value.clone(),
        })
        .collect()
}

impl EmbeddedWriter {
    fn send_each(
        records: &[OutgoingRecord<'_>],
        mut send: impl FnMut(ProducerRecord<'_>) -> weir_log::Result<()>,
    ) -> Result<()> {
        for r in records {
            let headers = log_headers(r.headers);
            send(producer_record(r, &headers))?;
        }
        Ok(())
    }
}

impl TopicWriter for EmbeddedWriter {
    fn send(&self, records: &[OutgoingRecord<'_>]) -> Result<()> {
        match self {
            EmbeddedWriter::Transactional(p) => {
                let mut p = p.lock().map_err(|_| Error::Stopped)?;
                EmbeddedWriter::send_each(records, |r| p.send(r))
            }
            EmbeddedWriter::Plain { producer, .. } => {
                EmbeddedWriter::send_each(records, |r| producer.send(r))
            }
        }
    }

    fn commit_epoch(&self, commit: &EpochCommit<'_>) -> Result<()> {
        if let Some(m) = commit.membership {
            // The embedded log does not share jobs (`shares_work` is false): no runtime asks.
            return Err(Error::config(
                "membership",
                format!(
                    "group `{}`: the embedded log runs a job as one instance, not in a group",
                    m.group
                ),
            ));
        }
        let offsets: Vec<(TopicPartition, i64)> = commit
            .offsets
            .iter()
            .map(|o| (TopicPartition::new(o.topic.as_str(), o.partition), o.offset))
            .collect();
        match self {
            EmbeddedWriter::Transactional(p) => {
                let mut p = p.lock().map_err(|_| Error::Stopped)?;
                EmbeddedWriter::send_each(commit.records, |r| p.send(r))?;
                if !offsets.is_empty() {
                    p.send_offsets(
                        &offsets,
                        &GroupMetadata {
                            group: commit.group.to_string(),
                            member_id: None,
                            generation: -1,
                        },
                    )?;
                }
                p.commit()?;
                p.begin()?;
            }
            EmbeddedWriter::Plain { producer, log } => {
                producer.flush()?;
                EmbeddedWriter::send_each(commit.records, |r| producer.send(r))?;
                producer.flush()?;
                if !offsets.is_empty() {
                    log.commit_offsets(commit.group, None, &offsets)?;
                }
            }
        }
        Ok(())
    }

    fn abandon(&self) {
        match self {
            EmbeddedWriter::Transactional(p) => {
                if let Ok(mut p) = p.lock() {
                    let _ = p.abort();
                }
            }
            EmbeddedWriter::Plain { producer, .. } => {
                let _ = producer.flush();
            }
        }
    }
}
