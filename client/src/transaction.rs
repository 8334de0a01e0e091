//! A transactional producer (KIP-98, KIP-447): the records of a transaction and a consumer
//! group's offsets commit or abort together; a new producer with the same transactional id
//! fences the old one.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use rdkafka::producer::{BaseProducer, Producer as _, PurgeConfig};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::{ClientConfig, Compression, config_error};
use crate::consumer::GroupMetadata;
use crate::error::{Error, Result};
use crate::producer::{DeliveryContext, ProducerRecord, send_queued};

/// A transactional producer's settings. Plain values; [`TransactionalConfig::validate`] names a
/// bad field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionalConfig {
    /// The transactional id: one live producer per id; a new one fences the old and aborts its
    /// open transaction.
    pub transactional_id: String,
    /// Batch compression.
    pub compression: Compression,
    /// How long a batch waits for more records before it is sent.
    pub linger_ms: u64,
    /// Upper bound of one batch, bytes.
    pub batch_bytes_max: usize,
    /// The largest record (and request) the producer sends, bytes (`message.max.bytes`).
    pub record_bytes_max: usize,
    /// Records waiting to be sent or acknowledged, at most; `send` waits when it is reached.
    pub queue_records_max: usize,
    /// A transaction open longer than this is aborted by the coordinator.
    pub transaction_timeout_ms: u64,
}

impl TransactionalConfig {
    /// The default settings for `transactional_id`.
    pub fn new(transactional_id: impl Into<String>) -> TransactionalConfig {
        TransactionalConfig {
            transactional_id: transactional_id.into(),
            compression: Compression::None,
            linger_ms: 5,
            batch_bytes_max: 1 << 20,
            record_bytes_max: 16 << 20,
            queue_records_max: 100_000,
            transaction_timeout_ms: 60_000,
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.transactional_id.is_empty() {
            return Err(config_error("transactional_id", "must not be empty"));
        }
        if self.batch_bytes_max == 0 {
            return Err(config_error("batch_bytes_max", "must be positive"));
        }
        if self.record_bytes_max < self.batch_bytes_max {
            return Err(config_error(
                "record_bytes_max",
                "must be at least batch_bytes_max",
            ));
        }
        if self.queue_records_max == 0 {
            return Err(config_error("queue_records_max", "must be positive"));
        }
        if self.transaction_timeout_ms == 0 {
            return Err(config_error("transaction_timeout_ms", "must be positive"));
        }
        Ok(())
    }
}

/// A transactional producer. [`new`](TransactionalProducer::new) registers the id (fencing an
/// older producer); then, per transaction: [`begin`](TransactionalProducer::begin),
/// [`send`](TransactionalProducer::send)s, optionally
/// [`send_offsets`](TransactionalProducer::send_offsets), and
/// [`commit`](TransactionalProducer::commit) or [`abort`](TransactionalProducer::abort).
///
/// Errors are typed: [`Error::Fenced`] (a newer producer took over: stop), or
/// [`Error::Transaction`] whose [`TransactionFailure`](crate::TransactionFailure) says whether to
/// retry the call, abort the transaction, or drop the producer. Every call may be made from any
/// thread.
pub struct TransactionalProducer {
    config: ClientConfig,
    inner: BaseProducer<DeliveryContext>,
    /// Records queued so far: paces the serving of delivery reports.
    sent: AtomicU64,
}

impl TransactionalProducer {
    /// A producer for `client`'s cluster, registered under `config.transactional_id`: an older
    /// producer with that id is fenced and its open transaction aborted before this returns.
    pub fn new(
        client: &ClientConfig,
        config: &TransactionalConfig,
    ) -> Result<TransactionalProducer> {
        config.validate()?;
        let mut c = client.rdkafka()?;
        c.set("transactional.id", &config.transactional_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.codec", config.compression.as_rdkafka())
            .set("linger.ms", config.linger_ms.to_string())
            .set("batch.size", config.batch_bytes_max.to_string())
            .set("message.max.bytes", config.record_bytes_max.to_string())
            .set(
                "queue.buffering.max.messages",
                config.queue_records_max.to_string(),
            )
            .set(
                "transaction.timeout.ms",
                config.transaction_timeout_ms.to_string(),
            )
            .set("request.timeout.ms", client.request_timeout_ms.to_string())
            // librdkafka refuses a socket timeout past the transaction timeout (+100 ms): a
            // short transaction timeout (a job's on a cluster) shortens the socket's.
            .set(
                "socket.timeout.ms",
                client
                    .request_timeout_ms
                    .min(config.transaction_timeout_ms)
                    .to_string(),
            )
            // Keys land where Kafka's Java client and weir's embedded producer put them.
            .set("partitioner", "murmur2_random");
        let inner: BaseProducer<DeliveryContext> = c
            .create_with_context(DeliveryContext::default())
            .map_err(|e| Error::from_kafka("creating a transactional producer", e, 0))?;
        let producer = TransactionalProducer {
            config: client.clone(),
            inner,
            sent: AtomicU64::new(0),
        };
        producer
            .inner
            .init_transactions(producer.config.timeout())
            .map_err(|e| {
                producer.named(Error::from_transaction(
                    format!("register transactional id '{}'", config.transactional_id),
                    e,
                ))
            })?;
        Ok(producer)
    }

    /// Names the cluster and the last connection error in a timeout.
    fn named(&self, e: Error) -> Error {
        e.with_cluster(&self.config.bootstrap, self.inner.context().last_error())
    }

    /// Begins a transaction (local: nothing is sent until the first record or offsets).
    pub fn begin(&self) -> Result<()> {
        self.inner
            .begin_transaction()
            .map_err(|e| self.named(Error::from_transaction("begin a transaction", e)))
    }

    /// Queues a record into the open transaction; waits (serving delivery reports) while the
    /// queue is full. A failed delivery fails the [`commit`](TransactionalProducer::commit).
    pub fn send(&self, record: ProducerRecord<'_>) -> Result<()> {
        send_queued(
            &self.inner,
            &self.sent,
            record,
            self.config.request_timeout_ms,
        )
    }

    /// Adds `offsets` (topic, partition, the next offset to read) to the open transaction,
    /// committed for `group`'s group if the transaction commits. The coordinator refuses them
    /// if `group`'s generation has passed.
    pub fn send_offsets(&self, offsets: &[(&str, i32, i64)], group: &GroupMetadata) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::with_capacity(offsets.len());
        for &(topic, partition, next) in offsets {
            tpl.add_partition_offset(topic, partition, Offset::Offset(next))
                .map_err(|e| Error::from_kafka("send offsets to the transaction", e, 0))?;
        }
        self.inner
            .send_offsets_to_transaction(&tpl, &group.0, self.config.timeout())
            .map_err(|e| {
                self.named(Error::from_transaction(
                    "send offsets to the transaction",
                    e,
                ))
            })
    }

    /// Sends what is queued, then commits the transaction: its records and offsets become
    /// visible to read_committed readers, all together.
    pub fn commit(&self) -> Result<()> {
        self.inner
            .commit_transaction(self.config.timeout())
            // A record that failed to be delivered fails the commit (abortable).
            .map_err(|e| self.named(Error::from_transaction("commit the transaction", e)))
    }

    /// Aborts the open transaction: its records are never visible to read_committed readers,
    /// its offsets never committed.
    pub fn abort(&self) -> Result<()> {
        // librdkafka waits for the delivery reports of what was sent before it aborts, and only
        // a poll serves them: drop what is still queued, then serve the reports of what is in
        // flight (all of it fails with the abort anyway).
        self.inner.purge(PurgeConfig::default().queue());
        let _ = self.inner.flush(self.config.timeout());
        self.inner
            .abort_transaction(self.config.timeout())
            .map_err(|e| self.named(Error::from_transaction("abort the transaction", e)))
    }

    /// Serves the delivery reports that have arrived, waiting at most `wait`.
    pub fn poll(&self, wait: Duration) {
        self.inner.poll(wait);
    }
}
