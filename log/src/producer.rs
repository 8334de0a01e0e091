//! The producer: accumulates records into per-partition batches bounded by bytes and linger time,
//! and appends them from a background sender thread, keeping up to `in_flight_batches_max` of
//! them waiting for their group commit at once (acks=all) so one producer still fills the disk.
//!
//! ```
//! use weir_log::{Acks, Log, LogConfig, Producer, ProducerConfig, ProducerRecord, TopicConfig};
//! # let dir = tempfile::tempdir().unwrap();
//! let log = Log::open(dir.path(), LogConfig::default())?;
//! log.create_topic("clicks", TopicConfig { partitions: 4, ..TopicConfig::default() })?;
//! let producer = Producer::new(&log, ProducerConfig { acks: Acks::All, ..ProducerConfig::default() })?;
//! producer.send(ProducerRecord::new("clicks", br#"{"ad_id":1}"#).key(b"1"))?;
//! let meta = producer.send_sync(ProducerRecord::new("clicks", b"{}").key(b"1"))?;
//! assert_eq!(meta.offset, 1); // same key, same partition, after the first record
//! producer.close()?;
//! # Ok::<(), weir_log::Error>(())
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use crate::format::{BatchBuilder, BatchOptions, Compression, Header};
use crate::partitioner::{Partitioner, partition_for_key};
use crate::{Acks, AppendInfo, Error, Log, Result, util};

/// Producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// When a batch counts as delivered.
    pub acks: Acks,
    /// How long a batch that is not full waits for more records.
    pub linger_ms: u64,
    /// A batch is sent once it would pass this size (uncompressed).
    pub batch_bytes_max: usize,
    /// Batches queued for or awaiting their append/fsync; `send` blocks beyond it (backpressure).
    pub in_flight_batches_max: usize,
    /// Codec for batches.
    pub compression: Compression,
    /// Producer id, epoch and sequences, so the log drops retried batches and refuses gaps.
    pub idempotent: bool,
    /// How records without an explicit partition are placed.
    pub partitioner: Partitioner,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::Leader,
            linger_ms: 5,
            batch_bytes_max: 1 << 20,
            in_flight_batches_max: 16,
            compression: Compression::None,
            idempotent: true,
            partitioner: Partitioner::Default,
        }
    }
}

impl ProducerConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.batch_bytes_max < 1024 {
            return Err(Error::config("batch_bytes_max", "must be at least 1024"));
        }
        if self.in_flight_batches_max == 0 || self.in_flight_batches_max > 1024 {
            return Err(Error::config(
                "in_flight_batches_max",
                "must be between 1 and 1024",
            ));
        }
        if self.linger_ms > 60_000 {
            return Err(Error::config("linger_ms", "must be at most 60000"));
        }
        Ok(())
    }
}

/// One record to send. Built with [`ProducerRecord::new`] and the chained setters.
#[derive(Debug, Clone, Copy)]
pub struct ProducerRecord<'a> {
    /// Target topic.
    pub topic: &'a str,
    /// Explicit partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// Key, hashed for partitioning and kept for compaction.
    pub key: Option<&'a [u8]>,
    /// Value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// Headers.
    pub headers: &'a [Header],
    /// Event timestamp in ms; `None` takes the current time.
    pub timestamp: Option<i64>,
}

impl<'a> ProducerRecord<'a> {
    /// A keyless record with a value.
    pub fn new(topic: &'a str, value: &'a [u8]) -> Self {
        ProducerRecord {
            topic,
            partition: None,
            key: None,
            value: Some(value),
            headers: &[],
            timestamp: None,
        }
    }

    /// A tombstone for `key` (deletes it from a compacted topic).
    pub fn tombstone(topic: &'a str, key: &'a [u8]) -> Self {
        ProducerRecord {
            topic,
            partition: None,
            key: Some(key),
            value: None,
            headers: &[],
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets the partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the timestamp.
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Sets the headers.
    pub fn headers(mut self, headers: &'a [Header]) -> Self {
        self.headers = headers;
        self
    }
}

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// A delivered batch, as reported to a delivery callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offsets and whether it was a retry.
    pub info: AppendInfo,
}

/// Called on the sender thread for every batch once its acks are met.
pub type DeliveryCallback = Arc<dyn Fn(&Delivery) + Send + Sync>;

struct OpenBatch {
    builder: BatchBuilder,
    created: Instant,
}

struct TopicState {
    name: Arc<str>,
    partitions: i32,
    record_bytes_max: usize,
    compacted: bool,
    open: Vec<Option<OpenBatch>>,
    sequences: Vec<i32>,
    sticky: i32,
}

/// Open batches per topic. Producers mostly write one topic, so the last one used is checked
/// before hashing the name.
#[derive(Default)]
struct Accumulator {
    topics: Vec<TopicState>,
    index: HashMap<String, usize>,
    last: usize,
}

impl Accumulator {
    fn find(&mut self, topic: &str) -> Option<usize> {
        if self
            .topics
            .get(self.last)
            .is_some_and(|t| &*t.name == topic)
        {
            return Some(self.last);
        }
        let i = *self.index.get(topic)?;
        self.last = i;
        Some(i)
    }
}

struct ReadyBatch {
    topic: Arc<str>,
    partition: i32,
    bytes: Vec<u8>,
    reply: Option<Sender<Result<AppendInfo>>>,
}

enum Msg {
    Batch(ReadyBatch),
    Flush(Sender<Result<()>>),
    Close,
}

struct Shared {
    log: Log,
    config: ProducerConfig,
    producer: Option<(i64, i16)>,
    acc: Mutex<Accumulator>,
    tx: Sender<Msg>,
    failed: AtomicBool,
    error: Mutex<Option<String>>,
    /// Records delivered (per `acks`) so far: what a failure leaves written.
    delivered_records: std::sync::atomic::AtomicU64,
    on_delivery: Option<DeliveryCallback>,
}

impl Shared {
    /// The error of a producer that stopped at an earlier failure.
    fn stopped(&self) -> Error {
        Error::ProducerStopped {
            cause: self
                .error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or_default(),
            delivered_records: self.delivered_records.load(Ordering::Acquire),
        }
    }
}

/// A producer writing into an embedded [`Log`]. `send` takes `&self`: share it between threads
/// behind an `Arc`.
pub struct Producer {
    shared: Arc<Shared>,
    sender: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.shared.config)
            .field("producer", &self.shared.producer)
            .finish()
    }
}

impl Producer {
    /// A producer on `log`.
    pub fn new(log: &Log, config: ProducerConfig) -> Result<Producer> {
        Self::with_delivery_callback(log, config, None)
    }

    /// A producer that reports every delivered batch to `on_delivery`.
    pub fn with_delivery_callback(
        log: &Log,
        config: ProducerConfig,
        on_delivery: Option<DeliveryCallback>,
    ) -> Result<Producer> {
        config.validate()?;
        if !log.is_writable() {
            return Err(Error::ReadOnly(
                "cannot produce through a read-only log".into(),
            ));
        }
        let producer = if config.idempotent {
            Some(log.init_producer_id()?)
        } else {
            None
        };
        let (tx, rx) = bounded(config.in_flight_batches_max);
        let shared = Arc::new(Shared {
            log: log.clone(),
            config,
            producer,
            acc: Mutex::new(Accumulator::default()),
            tx,
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
            delivered_records: std::sync::atomic::AtomicU64::new(0),
            on_delivery,
        });
        let s = shared.clone();
        let sender = std::thread::Builder::new()
            .name("weir-producer".into())
            .spawn(move || sender_loop(&s, &rx))
            .map_err(|e| Error::Internal(format!("spawning the producer thread: {e}")))?;
        Ok(Producer {
            shared,
            sender: Mutex::new(Some(sender)),
        })
    }

    /// The producer id and epoch, when idempotent.
    pub fn producer_id(&self) -> Option<(i64, i16)> {
        self.shared.producer
    }

    fn check_failed(&self) -> Result<()> {
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(self.shared.stopped());
        }
        Ok(())
    }

    /// Records delivered so far (appended, and with acks=all durable).
    pub fn delivered_records(&self) -> u64 {
        self.shared.delivered_records.load(Ordering::Acquire)
    }

    /// Adds a record to its partition's batch; a full batch goes to the sender, blocking when
    /// `in_flight_batches_max` are already queued. Errors of earlier batches surface here.
    pub fn send(&self, record: ProducerRecord<'_>) -> Result<()> {
        self.send_inner(record, None).map(|_| ())
    }

    /// Sends one record and waits until it is delivered; returns its offset. Slow (a batch per
    /// call): for bulk writes, `send` then `flush`.
    pub fn send_sync(&self, record: ProducerRecord<'_>) -> Result<RecordMetadata> {
        let (rtx, rrx) = bounded(1);
        let (partition, index) = self.send_inner(record, Some(rtx))?;
        let info = rrx.recv().map_err(|_| Error::Closed)??;
        Ok(RecordMetadata {
            topic: record.topic.to_string(),
            partition,
            offset: info.base_offset + index as i64,
        })
    }

    fn send_inner(
        &self,
        r: ProducerRecord<'_>,
        reply: Option<Sender<Result<AppendInfo>>>,
    ) -> Result<(i32, usize)> {
        self.check_failed()?;
        let s = &*self.shared;
        let mut acc = s.acc.lock().unwrap_or_else(|e| e.into_inner());
        let i = match acc.find(r.topic) {
            Some(i) => i,
            None => {
                let cfg = s.log.topic_config(r.topic)?;
                acc.topics.push(TopicState {
                    name: Arc::from(r.topic),
                    partitions: cfg.partitions,
                    record_bytes_max: cfg.record_bytes_max,
                    compacted: cfg.compacted,
                    open: (0..cfg.partitions).map(|_| None).collect(),
                    sequences: vec![0; cfg.partitions as usize],
                    sticky: fastrand_like(cfg.partitions),
                });
                let i = acc.topics.len() - 1;
                acc.index.insert(r.topic.to_string(), i);
                i
            }
        };
        let t = &mut acc.topics[i];
        let rec_bytes = BatchBuilder::record_bytes(0, 0, r.key, r.value, r.headers);
        if rec_bytes > t.record_bytes_max {
            return Err(Error::RecordTooLarge {
                bytes: rec_bytes,
                max: t.record_bytes_max,
            });
        }
        if t.compacted && r.key.is_none() {
            return Err(Error::config(
                "key",
                format!("topic '{}' is compacted: every record needs a key", r.topic),
            ));
        }
        let partition = match (r.partition, r.key, &s.config.partitioner) {
            (Some(p), _, _) => p,
            (None, key, Partitioner::Custom(f)) => f(r.topic, key, t.partitions),
            (None, Some(key), Partitioner::Default) => partition_for_key(key, t.partitions),
            (None, None, Partitioner::Default) => t.sticky,
        };
        if partition < 0 || partition >= t.partitions {
            return Err(Error::UnknownPartition {
                topic: r.topic.to_string(),
                partition,
            });
        }
        let mut p = partition as usize;
        let timestamp = r.timestamp.unwrap_or_else(|| s.log.clock().coarse_now_ms());
        let full = t.open[p].as_ref().is_some_and(|b| {
            !b.builder.is_empty()
                && b.builder.estimated_bytes() + rec_bytes > s.config.batch_bytes_max
        });
        if full {
            self.ship(t, p, None)?;
            let sticky = r.partition.is_none()
                && r.key.is_none()
                && matches!(s.config.partitioner, Partitioner::Default);
            if sticky && t.partitions > 1 {
                // KIP-480: once the sticky partition's batch is full, keyless records move on
                // to another partition, chosen at random.
                t.sticky = (t.sticky + 1 + fastrand_like(t.partitions - 1)) % t.partitions;
                p = t.sticky as usize;
            }
        }
        let batch = t.open[p].get_or_insert_with(|| {
            let (producer_id, producer_epoch, base_sequence) = match s.producer {
                Some((id, epoch)) => (id, epoch, t.sequences[p]),
                None => (-1, -1, -1),
            };
            OpenBatch {
                builder: BatchBuilder::new(BatchOptions {
                    compression: s.config.compression,
                    producer_id,
                    producer_epoch,
                    base_sequence,
                    ..BatchOptions::default()
                }),
                created: Instant::now(),
            }
        });
        batch.builder.push(timestamp, r.key, r.value, r.headers);
        let index = batch.builder.len() - 1;
        if reply.is_some() {
            self.ship(t, p, reply)?;
        }
        Ok((p as i32, index))
    }

    /// Finishes partition `p`'s open batch and queues it. Called under the accumulator lock, so
    /// batches of a partition reach the queue in order.
    fn ship(
        &self,
        t: &mut TopicState,
        p: usize,
        reply: Option<Sender<Result<AppendInfo>>>,
    ) -> Result<()> {
        let Some(batch) = t.open[p].take() else {
            return Ok(());
        };
        if self.shared.producer.is_some() {
            t.sequences[p] = t.sequences[p].wrapping_add(batch.builder.len() as i32) & i32::MAX;
        }
        let msg = Msg::Batch(ReadyBatch {
            topic: t.name.clone(),
            partition: p as i32,
            bytes: batch.builder.finish(0),
            reply,
        });
        self.shared.tx.send(msg).map_err(|_| Error::Closed)
    }

    /// Sends every open batch and waits until all sent records are delivered (per `acks`: with
    /// `none`, it only hands them to the sender thread).
    pub fn flush(&self) -> Result<()> {
        {
            let mut acc = self.shared.acc.lock().unwrap_or_else(|e| e.into_inner());
            for t in acc.topics.iter_mut() {
                for p in 0..t.open.len() {
                    self.ship(t, p, None)?;
                }
            }
        }
        if self.shared.config.acks == Acks::None {
            // Fire and forget: the batches are handed to the sender; nobody waits for them
            // (close() still drains them before the sender stops).
            return self.check_failed();
        }
        self.wait_sent()
    }

    /// Waits until the sender has appended (and, with acks=all, made durable) everything
    /// queued so far.
    fn wait_sent(&self) -> Result<()> {
        let (rtx, rrx) = bounded(1);
        self.shared
            .tx
            .send(Msg::Flush(rtx))
            .map_err(|_| Error::Closed)?;
        rrx.recv().map_err(|_| Error::Closed)??;
        self.check_failed()
    }

    /// Flushes and stops the sender thread.
    pub fn close(&self) -> Result<()> {
        let flushed = self.flush().and_then(|()| self.wait_sent());
        let _ = self.shared.tx.send(Msg::Close);
        if let Some(t) = self.sender.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        flushed
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// A cheap pseudo-random partition choice for the sticky partitioner (quality does not matter).
fn fastrand_like(n: i32) -> i32 {
    use std::hash::{BuildHasher, Hasher};
    if n <= 1 {
        return 0;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(util::now_ms() as u64);
    (h.finish() % n as u64) as i32
}

struct InFlight {
    round: u64,
    delivery: Delivery,
    reply: Option<Sender<Result<AppendInfo>>>,
}

fn sender_loop(s: &Shared, rx: &Receiver<Msg>) {
    let linger = Duration::from_millis(s.config.linger_ms.max(1));
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    loop {
        complete(s, &mut in_flight, false);
        match rx.recv_timeout(linger) {
            Ok(Msg::Batch(b)) => append(s, b, &mut in_flight),
            Ok(Msg::Flush(reply)) => {
                complete(s, &mut in_flight, true);
                let r = if s.failed.load(Ordering::Acquire) {
                    Err(s.stopped())
                } else {
                    Ok(())
                };
                let _ = reply.send(r);
            }
            Ok(Msg::Close) | Err(RecvTimeoutError::Disconnected) => {
                complete(s, &mut in_flight, true);
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                // Lingered batches. try_lock: a sender blocked on a full queue holds the lock,
                // and the queue only drains through us.
                let Ok(mut acc) = s.acc.try_lock() else {
                    continue;
                };
                let now = Instant::now();
                let mut ready = Vec::new();
                for t in acc.topics.iter_mut() {
                    for p in 0..t.open.len() {
                        if t.open[p]
                            .as_ref()
                            .is_some_and(|b| now.duration_since(b.created) >= linger)
                            && let Some(b) = t.open[p].take()
                        {
                            if s.producer.is_some() {
                                t.sequences[p] =
                                    t.sequences[p].wrapping_add(b.builder.len() as i32) & i32::MAX;
                            }
                            ready.push(ReadyBatch {
                                topic: t.name.clone(),
                                partition: p as i32,
                                bytes: b.builder.finish(0),
                                reply: None,
                            });
                        }
                    }
                }
                drop(acc);
                // Batches queued before we took the lock precede these in their partitions.
                while let Ok(msg) = rx.try_recv() {
                    match msg {
                        Msg::Batch(b) => append(s, b, &mut in_flight),
                        Msg::Flush(reply) => {
                            complete(s, &mut in_flight, true);
                            let _ = reply.send(Ok(()));
                        }
                        Msg::Close => {
                            for b in ready {
                                append(s, b, &mut in_flight);
                            }
                            complete(s, &mut in_flight, true);
                            return;
                        }
                    }
                }
                for b in ready {
                    append(s, b, &mut in_flight);
                }
            }
        }
    }
}

fn fail(s: &Shared, e: &Error) {
    let mut err = s.error.lock().unwrap_or_else(|e| e.into_inner());
    if err.is_none() {
        *err = Some(e.to_string());
    }
    s.failed.store(true, Ordering::Release);
}

fn append(s: &Shared, b: ReadyBatch, in_flight: &mut VecDeque<InFlight>) {
    if s.failed.load(Ordering::Acquire) {
        if let Some(r) = b.reply {
            let _ = r.send(Err(s.stopped()));
        }
        return;
    }
    match s
        .log
        .append_deferred(&b.topic, b.partition, b.bytes, s.config.acks)
    {
        Ok((info, round)) => {
            let delivery = Delivery {
                topic: b.topic,
                partition: b.partition,
                info,
            };
            match round {
                Some(round) => {
                    in_flight.push_back(InFlight {
                        round,
                        delivery,
                        reply: b.reply,
                    });
                    while in_flight.len() >= s.config.in_flight_batches_max {
                        complete_one(s, in_flight);
                    }
                }
                None => deliver(s, &delivery, b.reply),
            }
        }
        Err(e) => {
            fail(s, &e);
            if let Some(r) = b.reply {
                let _ = r.send(Err(e));
            }
        }
    }
}

fn deliver(s: &Shared, d: &Delivery, reply: Option<Sender<Result<AppendInfo>>>) {
    if !d.info.duplicate {
        s.delivered_records.fetch_add(
            (d.info.last_offset - d.info.base_offset + 1) as u64,
            Ordering::AcqRel,
        );
    }
    if let Some(cb) = &s.on_delivery {
        cb(d);
    }
    if let Some(r) = reply {
        let _ = r.send(Ok(d.info));
    }
}

fn complete_one(s: &Shared, in_flight: &mut VecDeque<InFlight>) {
    let Some(f) = in_flight.pop_front() else {
        return;
    };
    match s.log.wait_durable(f.round) {
        Ok(()) => deliver(s, &f.delivery, f.reply),
        Err(e) => {
            fail(s, &e);
            if let Some(r) = f.reply {
                let _ = r.send(Err(e));
            }
        }
    }
}

/// Delivers finished rounds in order; with `all`, waits for every one.
fn complete(s: &Shared, in_flight: &mut VecDeque<InFlight>, all: bool) {
    while let Some(f) = in_flight.front() {
        if !all && !s.log.is_durable(f.round) {
            break;
        }
        complete_one(s, in_flight);
    }
}
