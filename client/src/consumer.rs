//! A consumer: assigned partitions or a group subscription, isolation, seeking, watermarks,
//! explicit commits.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerGroupMetadata};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::{ClientConfig, Isolation, config_error};
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};

/// How long librdkafka waits to fetch a partition again once its local queue is full, ms.
const FETCH_QUEUE_BACKOFF_MS: u64 = 10;

/// Where a partition without a usable committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// Its first stored record.
    Earliest,
    /// Its end: only records produced from now on.
    #[default]
    Latest,
}

/// A consumer's settings. Plain values; [`ConsumerConfig::validate`] names a bad field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The consumer group to join (with [`Consumer::subscribe`]) or to commit offsets for.
    pub group: Option<String>,
    /// Which transactional records to see.
    pub isolation: Isolation,
    /// Where to start without a committed offset.
    pub offset_reset: OffsetReset,
    /// Report reaching the end of a partition as [`Event::PartitionEnd`].
    pub report_partition_end: bool,
    /// How long the cluster may hold a fetch for records to arrive.
    pub fetch_wait_max_ms: u64,
    /// A member that sends no heartbeat for this long leaves its group.
    pub session_timeout_ms: u64,
    /// Bytes one fetch asks for per partition (`max.partition.fetch.bytes`; a larger first
    /// batch is still returned whole).
    pub partition_fetch_bytes_max: usize,
}

impl Default for ConsumerConfig {
    fn default() -> ConsumerConfig {
        ConsumerConfig {
            group: None,
            isolation: Isolation::ReadCommitted,
            offset_reset: OffsetReset::Latest,
            report_partition_end: false,
            fetch_wait_max_ms: 100,
            session_timeout_ms: 10_000,
            partition_fetch_bytes_max: 1 << 20,
        }
    }
}

impl ConsumerConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.group.as_deref().is_some_and(str::is_empty) {
            return Err(config_error("group", "must not be empty"));
        }
        if self.session_timeout_ms == 0 {
            return Err(config_error("session_timeout_ms", "must be positive"));
        }
        if self.partition_fetch_bytes_max == 0 {
            return Err(config_error(
                "partition_fetch_bytes_max",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// Where an assigned partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Its first stored record.
    Beginning,
    /// Its end.
    End,
    /// This offset.
    Offset(i64),
    /// The group's committed offset, else [`ConsumerConfig::offset_reset`].
    Committed,
}

impl StartAt {
    fn offset(self) -> Offset {
        match self {
            StartAt::Beginning => Offset::Beginning,
            StartAt::End => Offset::End,
            StartAt::Offset(n) => Offset::Offset(n),
            StartAt::Committed => Offset::Stored,
        }
    }
}

/// A record as fetched, borrowed from the consumer until the next poll.
pub struct Record<'a>(BorrowedMessage<'a>);

impl Record<'_> {
    /// Its topic.
    pub fn topic(&self) -> &str {
        self.0.topic()
    }

    /// Its partition.
    pub fn partition(&self) -> i32 {
        self.0.partition()
    }

    /// Its offset.
    pub fn offset(&self) -> i64 {
        self.0.offset()
    }

    /// Its timestamp, ms since the epoch (-1 if it has none).
    pub fn timestamp_ms(&self) -> i64 {
        self.0.timestamp().to_millis().unwrap_or(-1)
    }

    /// Its key.
    pub fn key(&self) -> Option<&[u8]> {
        self.0.key()
    }

    /// Its value; `None` for a tombstone.
    pub fn value(&self) -> Option<&[u8]> {
        self.0.payload()
    }

    /// How many headers it carries.
    pub fn header_count(&self) -> usize {
        self.0.headers().map_or(0, |h| h.count())
    }

    /// Its headers in order, as (key, value); a null value is `None`.
    pub fn headers(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
        self.0
            .headers()
            .into_iter()
            .flat_map(|h| h.iter().map(|h| (h.key, h.value)))
    }
}

/// A consumer group's identity and generation as a consumer knows it, for
/// [`crate::TransactionalProducer::send_offsets`]: the group coordinator refuses the offsets
/// of a member whose generation has passed (KIP-447).
pub struct GroupMetadata(pub(crate) ConsumerGroupMetadata);

impl std::fmt::Debug for GroupMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupMetadata")
    }
}

/// What a poll returns.
pub enum Event<'a> {
    /// A record.
    Record(Record<'a>),
    /// The consumer reached the end of this partition (its high watermark, or its last stable
    /// offset under read_committed); only with [`ConsumerConfig::report_partition_end`].
    PartitionEnd {
        /// The partition.
        partition: i32,
    },
}

/// A consumer. With a group it may [`subscribe`](Consumer::subscribe) (the group assigns the
/// partitions) and [`commit`](Consumer::commit); without, it reads the partitions it is
/// [`assign`](Consumer::assign)ed. Commits are explicit only. Dropping it leaves the group.
pub struct Consumer {
    config: ClientConfig,
    inner: BaseConsumer<Context>,
}

impl Consumer {
    /// A consumer for `client`'s cluster with `config`'s settings.
    pub fn new(client: &ClientConfig, config: &ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        let mut c = client.rdkafka()?;
        c.set("isolation.level", config.isolation.as_rdkafka())
            .set(
                "auto.offset.reset",
                match config.offset_reset {
                    OffsetReset::Earliest => "earliest",
                    OffsetReset::Latest => "latest",
                },
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "enable.partition.eof",
                config.report_partition_end.to_string(),
            )
            .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string())
            // Once a partition's local queue passes its thresholds (queued.min.messages,
            // queued.max.messages.kbytes), librdkafka 2.3+ waits this long before fetching it
            // again: its default of a second left a fast reader idle for most of each second.
            .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS.to_string())
            .set("session.timeout.ms", config.session_timeout_ms.to_string())
            .set(
                "max.partition.fetch.bytes",
                config.partition_fetch_bytes_max.to_string(),
            );
        // librdkafka assigns partitions only with a group.id, even one never joined or
        // committed to: a consumer without a group gets a name of its own.
        let group = config.group.clone().unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("weir-assign-{}-{nanos}", std::process::id())
        });
        c.set("group.id", group);
        let inner = c
            .create_with_context(Context::default())
            .map_err(|e| Error::from_kafka("creating a consumer", e, 0))?;
        Ok(Consumer {
            config: client.clone(),
            inner,
        })
    }

    fn fail(&self, operation: impl Into<String>, e: KafkaError) -> Error {
        Error::from_kafka(operation, e, self.config.request_timeout_ms)
            .with_cluster(&self.config.bootstrap, self.inner.context().last_error())
    }

    /// Joins the group for these topics; partitions are assigned (and taken away) during polls.
    pub fn subscribe(&self, topics: &[&str]) -> Result<()> {
        self.inner
            .subscribe(topics)
            .map_err(|e| self.fail("subscribe", e))
    }

    /// Reads exactly these partitions of `topic`, each from where it says.
    pub fn assign(&self, topic: &str, partitions: &[(i32, StartAt)]) -> Result<()> {
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for &(p, at) in partitions {
            tpl.add_partition_offset(topic, p, at.offset())
                .map_err(|e| self.fail("assign", e))?;
        }
        self.inner.assign(&tpl).map_err(|e| self.fail("assign", e))
    }

    /// The partitions this consumer reads now, as (topic, partition).
    pub fn assignment(&self) -> Result<Vec<(String, i32)>> {
        let tpl = self
            .inner
            .assignment()
            .map_err(|e| self.fail("assignment", e))?;
        Ok(tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect())
    }

    /// The next offset this consumer will hand out for a partition, once it has handed out a
    /// record of it (or was assigned it at an offset).
    pub fn position(&self, topic: &str, partition: i32) -> Result<Option<i64>> {
        let tpl = self
            .inner
            .position()
            .map_err(|e| self.fail("position", e))?;
        Ok(tpl
            .find_partition(topic, partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(n) => Some(n),
                _ => None,
            }))
    }

    /// The next offset of every assigned partition of `topic` that is known, as (partition,
    /// offset). It moves past transaction markers and aborted records as polls skip them, not
    /// only past records handed out.
    pub fn positions(&self, topic: &str) -> Result<Vec<(i32, i64)>> {
        let tpl = self
            .inner
            .position()
            .map_err(|e| self.fail("position", e))?;
        Ok(tpl
            .elements()
            .iter()
            .filter(|e| e.topic() == topic)
            .filter_map(|e| match e.offset() {
                Offset::Offset(n) => Some((e.partition(), n)),
                _ => None,
            })
            .collect())
    }

    /// The group this consumer names (its `group`, or the name of its own it was given), its
    /// member id and generation: what a transaction's offsets are fenced by. Outside a
    /// subscription the member id is empty and the generation -1 (a standalone commit).
    pub fn group_metadata(&self) -> Result<GroupMetadata> {
        self.inner
            .group_metadata()
            .map(GroupMetadata)
            .ok_or_else(|| Error::Config {
                field: "group".into(),
                reason: "the consumer has no group metadata".into(),
            })
    }

    /// Moves an assigned partition to `offset`.
    pub fn seek(&self, topic: &str, partition: i32, offset: i64) -> Result<()> {
        self.inner
            .seek(
                topic,
                partition,
                Offset::Offset(offset),
                self.config.timeout(),
            )
            .map_err(|e| self.fail(format!("seek '{topic}' partition {partition}"), e))
    }

    /// A topic's partition numbers, sorted.
    pub fn partitions(&self, topic: &str) -> Result<Vec<i32>> {
        let metadata = self
            .inner
            .fetch_metadata(Some(topic), self.config.timeout())
            .map_err(|e| self.fail(format!("metadata of topic '{topic}'"), e))?;
        let t = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .ok_or_else(|| Error::UnknownTopic {
                topic: topic.to_string(),
            })?;
        let mut partitions: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        partitions.sort_unstable();
        if partitions.is_empty() {
            return Err(Error::UnknownTopic {
                topic: topic.to_string(),
            });
        }
        Ok(partitions)
    }

    /// `(low, high)` watermarks of a partition under this consumer's isolation: `high` is the
    /// last stable offset under read_committed, the high watermark under read_uncommitted.
    pub fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        self.inner
            .fetch_watermarks(topic, partition, self.config.timeout())
            .map_err(|e| self.fail(format!("offsets of '{topic}' partition {partition}"), e))
    }

    /// The group's committed offsets for these partitions of `topic` (`None`: none committed).
    pub fn committed(&self, topic: &str, partitions: &[i32]) -> Result<Vec<(i32, Option<i64>)>> {
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for &p in partitions {
            tpl.add_partition(topic, p);
        }
        let got = self
            .inner
            .committed_offsets(tpl, self.config.timeout())
            .map_err(|e| self.fail("committed offsets", e))?;
        Ok(partitions
            .iter()
            .map(|&p| {
                let offset = got.find_partition(topic, p).and_then(|e| match e.offset() {
                    Offset::Offset(n) => Some(n),
                    _ => None,
                });
                (p, offset)
            })
            .collect())
    }

    /// Commits, for the group, the next offset to read of each partition given; waits for the
    /// coordinator's answer.
    pub fn commit(&self, topic: &str, offsets: &[(i32, i64)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::with_capacity(offsets.len());
        for &(p, next) in offsets {
            tpl.add_partition_offset(topic, p, Offset::Offset(next))
                .map_err(|e| self.fail("commit", e))?;
        }
        self.inner
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| self.fail("commit", e))
    }

    /// The next record or partition end, waiting at most `wait`; `None` if nothing came.
    /// Errors the client recovers from by itself (a broker connection lost and retried) are
    /// not returned.
    pub fn poll(&self, wait: Duration) -> Result<Option<Event<'_>>> {
        match self.inner.poll(wait) {
            None => Ok(None),
            Some(Ok(m)) => Ok(Some(Event::Record(Record(m)))),
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                Ok(Some(Event::PartitionEnd { partition }))
            }
            Some(Err(e))
                if matches!(
                    e.rdkafka_error_code(),
                    Some(ErrorCode::BrokerTransportFailure | ErrorCode::AllBrokersDown)
                ) =>
            {
                Ok(None)
            }
            Some(Err(e)) => Err(self.fail("poll", e)),
        }
    }

    /// Leaves the group (if any) and closes the connections.
    pub fn close(self) {
        self.inner.unsubscribe();
        drop(self.inner);
    }
}
