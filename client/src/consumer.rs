//! A consumer: assigned partitions or a group subscription, isolation, seeking, watermarks,
//! explicit commits.

use std::time::Duration;

use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerGroupMetadata};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};
use rdkafka::{Offset, TopicPartitionList};
use std::ffi::CStr;

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
pub struct Record<'a>(Message<'a>);

enum Message<'a> {
    /// From [`Consumer::poll`].
    Borrowed(BorrowedMessage<'a>),
    /// From [`Consumer::poll_batch`]: librdkafka's message, destroyed after the batch.
    Raw(&'a rdsys::rd_kafka_message_t),
}

/// `len` bytes at `ptr` (none if null), borrowed for as long as the message lives.
///
/// # Safety
/// `ptr` must be null or point to `len` bytes that outlive `'a`.
unsafe fn bytes_of<'a>(ptr: *const std::ffi::c_void, len: usize) -> Option<&'a [u8]> {
    if ptr.is_null() {
        None
    } else {
        // SAFETY: the caller's promise.
        Some(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
    }
}

impl Record<'_> {
    /// Its topic.
    pub fn topic(&self) -> &str {
        match &self.0 {
            Message::Borrowed(m) => m.topic(),
            // SAFETY: a fetched message's topic handle lives as long as the message, and its
            // name is a NUL-terminated string; topic names are ASCII.
            Message::Raw(m) => unsafe { CStr::from_ptr(rdsys::rd_kafka_topic_name(m.rkt)) }
                .to_str()
                .unwrap_or(""),
        }
    }

    /// Its partition.
    pub fn partition(&self) -> i32 {
        match &self.0 {
            Message::Borrowed(m) => m.partition(),
            Message::Raw(m) => m.partition,
        }
    }

    /// Its offset.
    pub fn offset(&self) -> i64 {
        match &self.0 {
            Message::Borrowed(m) => m.offset(),
            Message::Raw(m) => m.offset,
        }
    }

    /// Its timestamp, ms since the epoch (-1 if it has none).
    pub fn timestamp_ms(&self) -> i64 {
        match &self.0 {
            Message::Borrowed(m) => m.timestamp().to_millis().unwrap_or(-1),
            Message::Raw(m) => {
                let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
                // SAFETY: a live message; librdkafka only reads it.
                let ts = unsafe { rdsys::rd_kafka_message_timestamp(*m, &mut kind) };
                if kind == rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE {
                    -1
                } else {
                    ts
                }
            }
        }
    }

    /// Its key.
    pub fn key(&self) -> Option<&[u8]> {
        match &self.0 {
            Message::Borrowed(m) => m.key(),
            // SAFETY: the key lies in the message, which outlives `self`.
            Message::Raw(m) => unsafe { bytes_of(m.key, m.key_len) },
        }
    }

    /// Its value; `None` for a tombstone.
    pub fn value(&self) -> Option<&[u8]> {
        match &self.0 {
            Message::Borrowed(m) => m.payload(),
            // SAFETY: the value lies in the message, which outlives `self`.
            Message::Raw(m) => unsafe { bytes_of(m.payload, m.len) },
        }
    }

    /// The raw message's headers, if it has any.
    fn raw_headers(m: &rdsys::rd_kafka_message_t) -> Option<*const rdsys::rd_kafka_headers_t> {
        let mut headers = std::ptr::null_mut();
        // SAFETY: a live message; the headers stay owned by it.
        let err = unsafe { rdsys::rd_kafka_message_headers(m, &mut headers) };
        (err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && !headers.is_null())
            .then_some(headers.cast_const())
    }

    /// How many headers it carries.
    pub fn header_count(&self) -> usize {
        match &self.0 {
            Message::Borrowed(m) => m.headers().map_or(0, |h| h.count()),
            Message::Raw(m) => Self::raw_headers(m).map_or(0, |h| {
                // SAFETY: headers owned by the live message.
                unsafe { rdsys::rd_kafka_header_cnt(h) }
            }),
        }
    }

    /// Its headers in order, as (key, value); a null value is `None`.
    pub fn headers(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
        let mut all: Vec<(&str, Option<&[u8]>)> = Vec::new();
        match &self.0 {
            Message::Borrowed(m) => {
                all.extend(
                    m.headers()
                        .into_iter()
                        .flat_map(|h| h.iter().map(|h| (h.key, h.value))),
                );
            }
            Message::Raw(m) => {
                if let Some(h) = Self::raw_headers(m) {
                    for idx in 0.. {
                        let (mut name, mut value, mut size) =
                            (std::ptr::null(), std::ptr::null(), 0usize);
                        // SAFETY: headers owned by the live message; out-pointers to locals.
                        let err = unsafe {
                            rdsys::rd_kafka_header_get_all(h, idx, &mut name, &mut value, &mut size)
                        };
                        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                            || name.is_null()
                        {
                            break;
                        }
                        // SAFETY: NUL-terminated name and `size` value bytes, owned by the
                        // message.
                        let key = unsafe { CStr::from_ptr(name) }.to_str().unwrap_or("");
                        all.push((key, unsafe { bytes_of(value, size) }));
                    }
                }
            }
        }
        all.into_iter()
    }
}

/// A reference to one of librdkafka's queues (the consumer's, or one split off it), released
/// when dropped.
pub(crate) struct ConsumerQueue(pub(crate) *mut rdsys::rd_kafka_queue_t);

// SAFETY: librdkafka's queues may be used from any thread.
unsafe impl Send for ConsumerQueue {}
// SAFETY: as above; every operation on a queue takes its lock.
unsafe impl Sync for ConsumerQueue {}

impl Drop for ConsumerQueue {
    fn drop(&mut self) {
        // SAFETY: our own reference (from rd_kafka_queue_get_consumer, _new or
        // _get_partition), released once.
        unsafe { rdsys::rd_kafka_queue_destroy(self.0) }
    }
}

/// The messages of one batch poll, destroyed together.
struct Fetched(Vec<*mut rdsys::rd_kafka_message_t>);

impl Drop for Fetched {
    fn drop(&mut self) {
        for &m in &self.0 {
            // SAFETY: each message was returned by rd_kafka_consume_batch_queue, once.
            unsafe { rdsys::rd_kafka_message_destroy(m) }
        }
    }
}

/// Polls `queue` as [`Consumer::poll_batch`] does: up to `records_max` records and partition
/// ends, waiting at most `wait` for the first, each handed to `each`; returns how many came.
///
/// # Safety
/// `queue` must be a live queue of a live consumer for the whole call.
pub(crate) unsafe fn poll_queue(
    queue: *mut rdsys::rd_kafka_queue_t,
    wait: Duration,
    records_max: usize,
    mut each: impl FnMut(Event<'_>) -> Result<()>,
) -> std::result::Result<usize, PollError> {
    let records_max = records_max.max(1);
    let mut fetched = Fetched(Vec::with_capacity(records_max));
    let wait_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: the caller's live queue, and room for `records_max` message pointers.
    let n = unsafe {
        rdsys::rd_kafka_consume_batch_queue(queue, wait_ms, fetched.0.as_mut_ptr(), records_max)
    };
    let Ok(n) = usize::try_from(n) else {
        // SAFETY: reads the calling thread's last error.
        let code = ErrorCode::from(unsafe { rdsys::rd_kafka_last_error() });
        return Err(PollError::Kafka(KafkaError::MessageConsumption(code)));
    };
    // SAFETY: librdkafka wrote `n <= records_max` message pointers.
    unsafe { fetched.0.set_len(n.min(records_max)) };
    for &m in &fetched.0 {
        // SAFETY: a message of this batch, destroyed only when `fetched` drops.
        let message = unsafe { &*m };
        match ErrorCode::from(message.err) {
            ErrorCode::NoError => {
                each(Event::Record(Record(Message::Raw(message)))).map_err(PollError::Each)?
            }
            ErrorCode::PartitionEOF => each(Event::PartitionEnd {
                partition: message.partition,
            })
            .map_err(PollError::Each)?,
            ErrorCode::BrokerTransportFailure | ErrorCode::AllBrokersDown => {}
            code => return Err(PollError::Kafka(KafkaError::MessageConsumption(code))),
        }
    }
    Ok(n)
}

/// Why [`poll_queue`] stopped: librdkafka's error, or the callback's.
pub(crate) enum PollError {
    Kafka(KafkaError),
    Each(Error),
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
    /// Declared before `inner`: the queue's reference goes before the client it belongs to.
    queue: ConsumerQueue,
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
        let inner: BaseConsumer<Context> = c
            .create_with_context(Context::default())
            .map_err(|e| Error::from_kafka("creating a consumer", e, 0))?;
        // SAFETY: a live client; the reference is released by ConsumerQueue's drop, before
        // the client's.
        let queue = unsafe { rdsys::rd_kafka_queue_get_consumer(inner.client().native_ptr()) };
        if queue.is_null() {
            return Err(Error::Config {
                field: "group".into(),
                reason: "librdkafka gave the consumer no queue".into(),
            });
        }
        Ok(Consumer {
            config: client.clone(),
            queue: ConsumerQueue(queue),
            inner,
        })
    }

    pub(crate) fn fail(&self, operation: impl Into<String>, e: KafkaError) -> Error {
        Error::from_kafka(operation, e, self.config.request_timeout_ms)
            .with_cluster(&self.config.bootstrap, self.inner.context().last_error())
    }

    pub(crate) fn poll_failed(&self, e: PollError) -> Error {
        match e {
            PollError::Kafka(e) => self.fail("poll", e),
            PollError::Each(e) => e,
        }
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
        self.learn_leaders(topic);
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
            Some(Ok(m)) => Ok(Some(Event::Record(Record(Message::Borrowed(m))))),
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

    /// Up to `records_max` records and partition ends, waiting at most `wait` for the first,
    /// each handed to `each` (borrowed until it returns); returns how many came. One call into
    /// librdkafka and one lock for all of them, where [`Consumer::poll`] makes one per record.
    /// For consumers given their partitions with [`Consumer::assign`]: a group subscription's
    /// rebalances are served by `poll` only.
    pub fn poll_batch(
        &self,
        wait: Duration,
        records_max: usize,
        each: impl FnMut(Event<'_>) -> Result<()>,
    ) -> Result<usize> {
        // SAFETY: the consumer's own queue, alive as long as `self`.
        unsafe { poll_queue(self.queue.0, wait, records_max, each) }
            .map_err(|e| self.poll_failed(e))
    }

    /// Adds partitions of `topic` to what this consumer reads, each from where it says
    /// (librdkafka's incremental assign; for consumers outside a group subscription).
    pub(crate) fn assign_more(&self, topic: &str, partitions: &[(i32, StartAt)]) -> Result<()> {
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for &(p, at) in partitions {
            tpl.add_partition_offset(topic, p, at.offset())
                .map_err(|e| self.fail("assign", e))?;
        }
        self.learn_leaders(topic);
        self.inner
            .incremental_assign(&tpl)
            .map_err(|e| self.fail(format!("assign partitions of '{topic}'"), e))
    }

    /// Asks for `topic`'s metadata before its partitions are assigned: a partition assigned
    /// before librdkafka knows its leader waits out a fixed 500 ms before it even asks where to
    /// start, however soon the metadata arrives. Only a head start: an unknown topic is reported
    /// by the reads that follow, as without it.
    fn learn_leaders(&self, topic: &str) {
        self.inner
            .fetch_metadata(Some(topic), self.config.timeout())
            .ok();
    }

    /// Stops reading these partitions of `topic` (librdkafka's incremental unassign).
    pub(crate) fn unassign_some(&self, topic: &str, partitions: &[i32]) -> Result<()> {
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for &p in partitions {
            tpl.add_partition(topic, p);
        }
        self.inner
            .incremental_unassign(&tpl)
            .map_err(|e| self.fail(format!("unassign partitions of '{topic}'"), e))
    }

    /// The client, for the queues split off it.
    pub(crate) fn native(&self) -> *mut rdsys::rd_kafka_t {
        self.inner.client().native_ptr()
    }

    /// Leaves the group (if any) and closes the connections.
    pub fn close(self) {
        self.inner.unsubscribe();
        drop(self.queue);
        drop(self.inner);
    }
}
