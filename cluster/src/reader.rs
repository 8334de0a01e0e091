//! [`KafkaReader`]: partitions of one topic read from a consumer the job's readers share (an
//! explicit assignment, no group subscription), its records handed out in chunks of one
//! partition.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use weir_client::{
    ConsumerConfig, Event, Isolation as ClientIsolation, PartitionReader, SharedConsumer, StartAt,
};
use weir_runtime::Result;
use weir_runtime::topics::{
    Isolation, ReaderConfig, RecordChunk, RecordHeader, TopicReader, TopicRecord,
};

use crate::topics_error;

/// Records one [`TopicReader::poll`] returns at most, besides its byte bound: librdkafka's
/// queue can hold many small records, and a poll should hand the task a batch, not all of it.
const POLL_RECORDS_MAX: usize = 64 * 1024;

/// Records asked of librdkafka per batch poll.
const POLL_BATCH_RECORDS: usize = 4 * 1024;

/// The settings of the consumer that readers of `config` share.
pub(crate) fn consumer_config(config: &ReaderConfig) -> ConsumerConfig {
    ConsumerConfig {
        isolation: match config.isolation {
            Isolation::ReadCommitted => ClientIsolation::ReadCommitted,
            Isolation::ReadUncommitted => ClientIsolation::ReadUncommitted,
        },
        partition_fetch_bytes_max: config.fetch_bytes_max.max(1),
        ..ConsumerConfig::default()
    }
}

/// A record of a poll, its key and value as ranges of the poll's buffer.
struct Fetched {
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<std::ops::Range<usize>>,
    value: Option<std::ops::Range<usize>>,
    headers: Vec<RecordHeader>,
}

/// An assigned partition.
struct Assigned {
    partition: i32,
    /// Where it starts: the beginning unless sought before the first poll.
    start: StartAt,
    /// The next offset to hand out, once known.
    position: Option<i64>,
    /// librdkafka's position when this one was last set by `assign` or `seek`: librdkafka does
    /// not reset its own on a seek, so until it differs it says nothing about this position.
    stale: Option<i64>,
}

/// Reads the partitions it is assigned, each from its own position.
pub(crate) struct KafkaReader {
    consumer: PartitionReader,
    topic: Option<Arc<str>>,
    parts: Vec<Assigned>,
    /// The assignment was changed since it was last given to the consumer: it is given at the
    /// next poll (a seek before the first fetch is then only an assignment at that offset).
    assignment_pending: bool,
    poll_bytes_max: usize,
}

impl KafkaReader {
    /// A reader of `shared`, the consumer [`consumer_config`] made for readers of `config`.
    pub(crate) fn new(shared: &Arc<SharedConsumer>, config: &ReaderConfig) -> Result<KafkaReader> {
        Ok(KafkaReader {
            consumer: shared
                .reader()
                .map_err(|e| topics_error("open a reader", e))?,
            topic: None,
            parts: Vec::new(),
            assignment_pending: false,
            poll_bytes_max: config.poll_bytes_max.max(1),
        })
    }

    fn part_mut(&mut self, topic: &str, partition: i32) -> Option<&mut Assigned> {
        if self.topic.as_deref() != Some(topic) {
            return None;
        }
        self.parts.iter_mut().find(|p| p.partition == partition)
    }

    /// librdkafka's positions of the assigned partitions, by index in `parts`.
    fn library_positions(&self) -> Result<Vec<Option<i64>>> {
        let Some(topic) = &self.topic else {
            return Ok(Vec::new());
        };
        let known = self
            .consumer
            .positions(topic)
            .map_err(|e| topics_error(format!("positions in '{topic}'"), e))?;
        Ok(self
            .parts
            .iter()
            .map(|p| {
                known
                    .iter()
                    .find(|(q, _)| *q == p.partition)
                    .map(|&(_, o)| o)
            })
            .collect())
    }

    /// Marks every partition's librdkafka position as stale, before it is assigned or moved.
    fn mark_stale(&mut self) -> Result<()> {
        let library = self.library_positions()?;
        for (p, lib) in self.parts.iter_mut().zip(library) {
            p.stale = lib;
        }
        Ok(())
    }

    fn give_assignment(&mut self) -> Result<()> {
        let Some(topic) = self.topic.clone() else {
            return Ok(());
        };
        let partitions: Vec<(i32, StartAt)> =
            self.parts.iter().map(|p| (p.partition, p.start)).collect();
        self.mark_stale()?;
        self.consumer
            .assign(&topic, &partitions)
            .map_err(|e| topics_error(format!("assign partitions of '{topic}'"), e))?;
        self.assignment_pending = false;
        Ok(())
    }
}

impl TopicReader for KafkaReader {
    fn assign(&mut self, topic: &str, partitions: &[i32]) -> Result<()> {
        self.topic = Some(Arc::from(topic));
        self.parts = partitions
            .iter()
            .map(|&partition| Assigned {
                partition,
                start: StartAt::Beginning,
                position: None,
                stale: None,
            })
            .collect();
        self.assignment_pending = true;
        Ok(())
    }

    fn seek(&mut self, topic: &str, partition: i32, offset: i64) -> Result<()> {
        let pending = self.assignment_pending;
        let Some(part) = self.part_mut(topic, partition) else {
            return Err(weir_runtime::Error::Internal(format!(
                "seek in {topic}/{partition}, which the reader is not assigned"
            )));
        };
        part.start = StartAt::Offset(offset);
        part.position = Some(offset);
        if pending {
            return Ok(());
        }
        let library = self.library_positions()?;
        let index = self
            .parts
            .iter()
            .position(|p| p.partition == partition)
            .expect("found above");
        self.parts[index].stale = library[index];
        self.consumer
            .seek(topic, partition, offset)
            .map_err(|e| topics_error(format!("seek {topic}/{partition} to {offset}"), e))
    }

    fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        if self.topic.as_deref() != Some(topic) {
            return None;
        }
        self.parts
            .iter()
            .find(|p| p.partition == partition)
            .and_then(|p| p.position)
    }

    fn poll(&mut self, timeout: Duration) -> Result<Vec<RecordChunk>> {
        if self.assignment_pending {
            self.give_assignment()?;
        }
        let Some(topic) = self.topic.clone() else {
            std::thread::sleep(timeout);
            return Ok(Vec::new());
        };
        // Keys and values of the whole poll go into one buffer, sliced once it is full: no
        // allocation per record.
        let mut buf = BytesMut::new();
        let mut fetched: Vec<Fetched> = Vec::new();
        let mut bytes = 0usize;
        let mut wait = timeout;
        let parts = &mut self.parts;
        while fetched.len() < POLL_RECORDS_MAX && bytes < self.poll_bytes_max {
            let room = POLL_RECORDS_MAX - fetched.len();
            let came = self
                .consumer
                .poll_batch(wait, room.min(POLL_BATCH_RECORDS), |event| {
                    let Event::Record(record) = event else {
                        return Ok(());
                    };
                    // Only this reader's partitions (of its one topic) come to its queue.
                    let partition = record.partition();
                    let offset = record.offset();
                    let Some(part) = parts.iter_mut().find(|p| p.partition == partition) else {
                        return Ok(());
                    };
                    debug_assert!(
                        part.position.is_none_or(|p| offset >= p),
                        "offsets go forward"
                    );
                    part.position = Some(offset + 1);
                    let mut range = |b: Option<&[u8]>| {
                        b.map(|b| {
                            let at = buf.len();
                            buf.extend_from_slice(b);
                            at..buf.len()
                        })
                    };
                    let key = range(record.key());
                    let value = range(record.value());
                    let headers = if record.header_count() == 0 {
                        Vec::new()
                    } else {
                        record
                            .headers()
                            .map(|(key, value)| RecordHeader {
                                key: key.to_string(),
                                value: value.map(Bytes::copy_from_slice),
                            })
                            .collect()
                    };
                    fetched.push(Fetched {
                        partition,
                        offset,
                        timestamp: record.timestamp_ms(),
                        key,
                        value,
                        headers,
                    });
                    Ok(())
                })
                .map_err(|e| topics_error(format!("fetch from '{topic}'"), e))?;
            bytes = buf.len();
            // Only the first poll waits: after it, what librdkafka has ready is drained.
            wait = Duration::ZERO;
            if came == 0 {
                break;
            }
        }
        let buf = buf.freeze();
        let mut chunks: Vec<RecordChunk> = Vec::new();
        for f in fetched {
            let chunk = match chunks.iter_mut().position(|c| c.partition == f.partition) {
                Some(i) => &mut chunks[i],
                None => {
                    chunks.push(RecordChunk {
                        topic: topic.clone(),
                        partition: f.partition,
                        records: Vec::new(),
                    });
                    chunks.last_mut().expect("just pushed")
                }
            };
            chunk.records.push(TopicRecord {
                offset: f.offset,
                timestamp: f.timestamp,
                key: f.key.map(|r| buf.slice(r)),
                value: f.value.map(|r| buf.slice(r)),
                headers: f.headers,
            });
        }
        // Transaction markers and aborted records are never handed out, but librdkafka moves
        // its position past them as the polls above skip them: past the last record of a
        // committed transaction is its marker, and the partition's end one further.
        let library = self.library_positions()?;
        for (p, lib) in self.parts.iter_mut().zip(library) {
            if let Some(lib) = lib
                && Some(lib) != p.stale
                && p.position.is_none_or(|pos| lib > pos)
            {
                p.position = Some(lib);
            }
        }
        Ok(chunks)
    }
}
