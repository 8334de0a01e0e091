//! A producer: keyed or keyless records, acks, compression, idempotence, delivery reports.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message as _, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, ProducerContext};

use crate::config::{Acks, ClientConfig, Compression, config_error};
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};

/// How long a full send queue is waited on (serving delivery reports) before trying again.
const QUEUE_FULL_WAIT_MS: u64 = 10;
/// Delivery reports are served once every so many sends (and whenever the queue is full):
/// serving them after every send costs a lock and two clock reads per record, about a fifth
/// of the sending thread's time. They wait in librdkafka's queue meanwhile, bounded by
/// `queue_records_max` (a record counts against it until its report is served).
const SENDS_PER_POLL: u64 = 1024;

/// A producer's settings. Plain values; [`ProducerConfig::validate`] names a bad field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// When a record counts as written.
    pub acks: Acks,
    /// Batch compression.
    pub compression: Compression,
    /// Idempotent writes (a producer id and sequence numbers: no duplicates on retry, order
    /// kept); needs `acks` = [`Acks::All`].
    pub idempotence: bool,
    /// How long a batch waits for more records before it is sent.
    pub linger_ms: u64,
    /// Upper bound of one batch, bytes.
    pub batch_bytes_max: usize,
    /// Records waiting to be sent or acknowledged, at most; `send` waits when it is reached.
    pub queue_records_max: usize,
    /// How long a record may take to be acknowledged, retries included, before it fails.
    pub delivery_timeout_ms: u64,
}

impl Default for ProducerConfig {
    fn default() -> ProducerConfig {
        ProducerConfig {
            acks: Acks::Leader,
            compression: Compression::None,
            idempotence: false,
            linger_ms: 5,
            batch_bytes_max: 1 << 20,
            queue_records_max: 100_000,
            delivery_timeout_ms: 60_000,
        }
    }
}

impl ProducerConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.idempotence && self.acks != Acks::All {
            return Err(config_error("idempotence", "needs acks = all"));
        }
        if self.batch_bytes_max == 0 {
            return Err(config_error("batch_bytes_max", "must be positive"));
        }
        if self.queue_records_max == 0 {
            return Err(config_error("queue_records_max", "must be positive"));
        }
        if self.delivery_timeout_ms == 0 {
            return Err(config_error("delivery_timeout_ms", "must be positive"));
        }
        Ok(())
    }
}

/// A record to send.
#[derive(Debug, Clone, Copy)]
pub struct ProducerRecord<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition; `None`: by the key's murmur2 hash (as Kafka's Java client does), or
    /// sticky for keyless records.
    pub partition: Option<i32>,
    /// The key.
    pub key: Option<&'a [u8]>,
    /// The value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// The record's timestamp, ms since the epoch; `None`: now.
    pub timestamp_ms: Option<i64>,
    /// Its headers, in order.
    pub headers: &'a [Header<'a>],
}

/// A record header to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The header's key.
    pub key: &'a str,
    /// Its value; `None` for null.
    pub value: Option<&'a [u8]>,
}

impl<'a> ProducerRecord<'a> {
    /// A keyless record of `value` for `topic`.
    pub fn new(topic: &'a str, value: &'a [u8]) -> ProducerRecord<'a> {
        ProducerRecord {
            topic,
            partition: None,
            key: None,
            value: Some(value),
            timestamp_ms: None,
            headers: &[],
        }
    }

    /// With this key.
    pub fn key(self, key: &'a [u8]) -> ProducerRecord<'a> {
        ProducerRecord {
            key: Some(key),
            ..self
        }
    }

    /// To this partition.
    pub fn partition(self, partition: i32) -> ProducerRecord<'a> {
        ProducerRecord {
            partition: Some(partition),
            ..self
        }
    }
}

/// Counts of delivery reports so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deliveries {
    /// Records the cluster acknowledged.
    pub delivered: u64,
    /// Records that failed.
    pub failed: u64,
}

/// The first failed delivery: (topic, partition, code).
type FirstFailure = Option<(String, i32, ErrorCode)>;

/// Delivery reports, counted as librdkafka serves them.
#[derive(Default)]
pub(crate) struct DeliveryContext {
    client: Context,
    delivered: AtomicU64,
    failed: AtomicU64,
    first_failure: Mutex<FirstFailure>,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.client.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.client.error(error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, message)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_failure.lock().unwrap_or_else(|e| e.into_inner());
                if first.is_none() {
                    let code = e.rdkafka_error_code().unwrap_or(ErrorCode::Fail);
                    *first = Some((message.topic().to_string(), message.partition(), code));
                }
            }
        }
    }
}

/// Queues `record` on `inner` (waiting, serving delivery reports, while its queue is full);
/// `sent` counts the records queued, to serve reports now and then.
pub(crate) fn send_queued(
    inner: &BaseProducer<DeliveryContext>,
    sent: &AtomicU64,
    record: ProducerRecord<'_>,
    request_timeout_ms: u64,
) -> Result<()> {
    let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(record.topic);
    if let Some(k) = record.key {
        r = r.key(k);
    }
    if let Some(v) = record.value {
        r = r.payload(v);
    }
    if let Some(p) = record.partition {
        r = r.partition(p);
    }
    if let Some(ts) = record.timestamp_ms {
        r = r.timestamp(ts);
    }
    if !record.headers.is_empty() {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for h in record.headers {
            headers = headers.insert(rdkafka::message::Header {
                key: h.key,
                value: h.value,
            });
        }
        r = r.headers(headers);
    }
    loop {
        match inner.send(r) {
            Ok(()) => {
                if sent
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(SENDS_PER_POLL)
                {
                    inner.poll(Duration::ZERO);
                }
                return Ok(());
            }
            Err((KafkaError::MessageProduction(ErrorCode::QueueFull), back)) => {
                r = back;
                inner.poll(Duration::from_millis(QUEUE_FULL_WAIT_MS));
            }
            Err((e, _)) => {
                return Err(Error::from_kafka(
                    format!("send to '{}'", record.topic),
                    e,
                    request_timeout_ms,
                ));
            }
        }
    }
}

impl DeliveryContext {
    /// The last connection error librdkafka reported.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.client.last_error()
    }
}

/// A producer. `send` queues a record (waiting while the queue is full); `flush` waits for
/// every queued record's delivery report and fails if any record failed.
pub struct Producer {
    config: ClientConfig,
    delivery_timeout_ms: u64,
    inner: BaseProducer<DeliveryContext>,
    /// Records queued so far: paces the serving of delivery reports.
    sent: AtomicU64,
}

impl Producer {
    /// A producer for `client`'s cluster with `config`'s settings.
    pub fn new(client: &ClientConfig, config: &ProducerConfig) -> Result<Producer> {
        config.validate()?;
        let mut c = client.rdkafka()?;
        c.set("acks", config.acks.as_rdkafka())
            .set("compression.codec", config.compression.as_rdkafka())
            .set("enable.idempotence", config.idempotence.to_string())
            .set("linger.ms", config.linger_ms.to_string())
            .set("batch.size", config.batch_bytes_max.to_string())
            .set(
                "queue.buffering.max.messages",
                config.queue_records_max.to_string(),
            )
            .set("message.timeout.ms", config.delivery_timeout_ms.to_string())
            .set("request.timeout.ms", client.request_timeout_ms.to_string())
            // Keys land where Kafka's Java client and weir's embedded producer put them.
            .set("partitioner", "murmur2_random");
        let inner = c
            .create_with_context(DeliveryContext::default())
            .map_err(|e| Error::from_kafka("creating a producer", e, 0))?;
        Ok(Producer {
            config: client.clone(),
            delivery_timeout_ms: config.delivery_timeout_ms,
            inner,
            sent: AtomicU64::new(0),
        })
    }

    /// Queues a record; waits (serving delivery reports) while the queue is full.
    pub fn send(&self, record: ProducerRecord<'_>) -> Result<()> {
        send_queued(
            &self.inner,
            &self.sent,
            record,
            self.config.request_timeout_ms,
        )
    }

    /// Delivery reports served so far.
    pub fn deliveries(&self) -> Deliveries {
        Deliveries {
            delivered: self.inner.context().delivered.load(Ordering::Relaxed),
            failed: self.inner.context().failed.load(Ordering::Relaxed),
        }
    }

    /// Serves the delivery reports that have arrived, waiting at most `wait`.
    pub fn poll(&self, wait: Duration) {
        self.inner.poll(wait);
    }

    /// Waits until every queued record is acknowledged or failed; fails with
    /// [`Error::Delivery`] if any record (since the producer was made) failed.
    pub fn flush(&self) -> Result<Deliveries> {
        // Each record fails by itself once its delivery timeout passes: wait a little longer.
        let wait = Duration::from_millis(
            self.config
                .request_timeout_ms
                .saturating_add(self.delivery_timeout_ms),
        );
        self.inner.flush(wait).map_err(|e| {
            Error::from_kafka("flush", e, wait.as_millis() as u64).with_cluster(
                &self.config.bootstrap,
                self.inner.context().client.last_error(),
            )
        })?;
        let deliveries = self.deliveries();
        let first = self
            .inner
            .context()
            .first_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match first {
            None => Ok(deliveries),
            Some((topic, partition, code)) => Err(Error::Delivery {
                failed: deliveries.failed,
                topic,
                partition,
                code,
            }),
        }
    }
}
