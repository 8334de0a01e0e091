//! The transactional producer: `init` (fencing older instances), `begin`, sends to any
//! partitions, `send_offsets`, `commit` or `abort`.
//!
//! ```
//! use weir_log::{Log, LogConfig, TopicConfig, TransactionalConfig, TransactionalProducer, ProducerRecord};
//! # let dir = tempfile::tempdir().unwrap();
//! let log = Log::open(dir.path(), LogConfig::default())?;
//! log.create_topic("out", TopicConfig { partitions: 2, ..TopicConfig::default() })?;
//! let mut producer = TransactionalProducer::new(&log, TransactionalConfig::new("copier-1"))?;
//! producer.begin()?;
//! producer.send(ProducerRecord::new("out", b"a").partition(0))?;
//! producer.send(ProducerRecord::new("out", b"b").partition(1))?;
//! producer.commit()?; // both records, or (after a crash or abort) neither
//! # Ok::<(), weir_log::Error>(())
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use crate::format::{BatchBuilder, BatchOptions, Compression};
use crate::partitioner::partition_for_key;
use crate::{Acks, Error, Log, ProducerRecord, Result, TopicPartition, TxnErrorKind};

/// Transactional producer settings.
#[derive(Debug, Clone)]
pub struct TransactionalConfig {
    /// Names the producer across restarts: a new instance with the same id fences the old.
    pub transactional_id: String,
    /// The coordinator aborts a transaction open longer than this.
    pub transaction_timeout_ms: i64,
    /// A batch is written once it would pass this size.
    pub batch_bytes_max: usize,
    /// Codec for batches.
    pub compression: Compression,
}

impl TransactionalConfig {
    /// Defaults for `transactional_id`: one-minute timeout, 64 KiB batches, no compression.
    pub fn new(transactional_id: impl Into<String>) -> Self {
        TransactionalConfig {
            transactional_id: transactional_id.into(),
            transaction_timeout_ms: 60_000,
            // Small enough that batches go out (and their fsyncs start) while the transaction
            // is still being written, instead of all at commit.
            batch_bytes_max: 64 << 10,
            compression: Compression::None,
        }
    }
}

/// A consumer's group membership, for offsets committed in a transaction (KIP-447): the commit
/// is refused if the group has moved to a newer generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadata {
    /// The group.
    pub group: String,
    /// The member id, or `None` outside group management (manual assignment).
    pub member_id: Option<String>,
    /// The generation of the member's assignment.
    pub generation: i32,
}

/// This producer's errors as its API has them: a refusal because its epoch (or producer id) was
/// superseded is [`Error::Fenced`], any other refusal of the coordinator
/// [`Error::Transaction`].
fn embedded_error(e: Error) -> Error {
    match e {
        Error::Txn {
            kind:
                TxnErrorKind::InvalidProducerEpoch
                | TxnErrorKind::ProducerFenced
                | TxnErrorKind::InvalidProducerIdMapping,
            reason,
            ..
        } => Error::Fenced(reason),
        e @ Error::Txn { .. } => Error::Transaction(e.to_string()),
        e => e,
    }
}

/// Per-partition state of one topic, indexed by partition: no hashing per record.
struct TopicSlots {
    name: Arc<str>,
    partitions: i32,
    record_bytes_max: usize,
    open: Vec<Option<BatchBuilder>>,
    registered: Vec<bool>,
    sequences: Vec<i32>,
}

/// A producer whose writes become visible atomically, on commit.
pub struct TransactionalProducer {
    log: Log,
    config: TransactionalConfig,
    producer_id: i64,
    epoch: i16,
    in_txn: bool,
    failed: Option<String>,
    topics: Vec<TopicSlots>,
    topic_index: HashMap<String, usize>,
    /// The topic of the last send, checked before hashing a name.
    last_topic: usize,
    /// Group-commit rounds of this transaction's batches.
    rounds: Vec<u64>,
    /// Last offset of this transaction's data per partition, for the Prepare record.
    written: HashMap<TopicPartition, i64>,
}

impl std::fmt::Debug for TransactionalProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionalProducer")
            .field("transactional_id", &self.config.transactional_id)
            .field("producer_id", &self.producer_id)
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl TransactionalProducer {
    /// Initializes `transactional_id`: gets its producer id and a new epoch, fencing any older
    /// instance (its open transaction is aborted, its later writes and commits refused).
    pub fn new(log: &Log, config: TransactionalConfig) -> Result<TransactionalProducer> {
        if config.batch_bytes_max < 1024 {
            return Err(Error::config("batch_bytes_max", "must be at least 1024"));
        }
        let (producer_id, epoch) = log
            .txn_coordinator()?
            .init(&config.transactional_id, config.transaction_timeout_ms)
            .map_err(embedded_error)?;
        Ok(TransactionalProducer {
            log: log.clone(),
            config,
            producer_id,
            epoch,
            in_txn: false,
            failed: None,
            topics: Vec::new(),
            topic_index: HashMap::new(),
            last_topic: 0,
            rounds: Vec::new(),
            written: HashMap::new(),
        })
    }

    /// Producer id and current epoch.
    pub fn producer_id(&self) -> (i64, i16) {
        (self.producer_id, self.epoch)
    }

    fn check(&self) -> Result<()> {
        if let Some(why) = &self.failed {
            return Err(Error::Fenced(why.clone()));
        }
        Ok(())
    }

    /// Remembers a fatal error: after fencing, this instance can do nothing more.
    fn fail<T>(&mut self, r: Result<T>) -> Result<T> {
        let r = r.map_err(embedded_error);
        if let Err(Error::Fenced(why)) = &r {
            self.failed = Some(why.clone());
        }
        r
    }

    /// Starts a transaction.
    pub fn begin(&mut self) -> Result<()> {
        self.check()?;
        if self.in_txn {
            return Err(Error::Transaction("a transaction is already open".into()));
        }
        self.in_txn = true;
        Ok(())
    }

    fn require_txn(&self) -> Result<()> {
        self.check()?;
        if !self.in_txn {
            return Err(Error::Transaction(
                "no transaction is open: call begin first".into(),
            ));
        }
        Ok(())
    }

    /// Registers every partition holding buffered records and not yet registered, in one
    /// coordinator call: a write never precedes its partition's registration.
    fn register_open(&mut self) -> Result<()> {
        let list: Vec<TopicPartition> = self
            .topics
            .iter()
            .flat_map(|t| {
                (0..t.partitions as usize)
                    .filter(|&p| t.open[p].is_some() && !t.registered[p])
                    .map(|p| TopicPartition::new(t.name.clone(), p as i32))
            })
            .collect();
        if list.is_empty() {
            return Ok(());
        }
        let r = self.log.txn_coordinator()?.add_partitions(
            &self.config.transactional_id,
            self.producer_id,
            self.epoch,
            &list,
        );
        self.fail(r)?;
        for t in &mut self.topics {
            for p in 0..t.partitions as usize {
                if t.open[p].is_some() {
                    t.registered[p] = true;
                }
            }
        }
        Ok(())
    }

    fn topic_slot(&mut self, topic: &str) -> Result<usize> {
        if self
            .topics
            .get(self.last_topic)
            .is_some_and(|t| &*t.name == topic)
        {
            return Ok(self.last_topic);
        }
        let i = match self.topic_index.get(topic) {
            Some(&i) => i,
            None => {
                let cfg = self.log.topic_config(topic)?;
                let n = cfg.partitions as usize;
                self.topics.push(TopicSlots {
                    name: Arc::from(topic),
                    partitions: cfg.partitions,
                    record_bytes_max: cfg.record_bytes_max,
                    open: (0..n).map(|_| None).collect(),
                    registered: vec![false; n],
                    sequences: vec![0; n],
                });
                self.topic_index
                    .insert(topic.to_string(), self.topics.len() - 1);
                self.topics.len() - 1
            }
        };
        self.last_topic = i;
        Ok(i)
    }

    /// Adds a record to the transaction. Its partition is registered with the coordinator
    /// before the first batch for it is written.
    pub fn send(&mut self, r: ProducerRecord<'_>) -> Result<()> {
        self.require_txn()?;
        let ti = self.topic_slot(r.topic)?;
        let t = &self.topics[ti];
        let rec_bytes = BatchBuilder::record_bytes(0, 0, r.key, r.value, r.headers);
        if rec_bytes > t.record_bytes_max {
            return Err(Error::RecordTooLarge {
                bytes: rec_bytes,
                max: t.record_bytes_max,
            });
        }
        let partition = match (r.partition, r.key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for_key(k, t.partitions),
            (None, None) => (self.log.clock().coarse_now_ms() % t.partitions as i64) as i32,
        };
        if partition < 0 || partition >= t.partitions {
            return Err(Error::UnknownPartition {
                topic: r.topic.to_string(),
                partition,
            });
        }
        let p = partition as usize;
        let full = t.open[p].as_ref().is_some_and(|b| {
            !b.is_empty() && b.estimated_bytes() + rec_bytes > self.config.batch_bytes_max
        });
        if full {
            self.write_batch(ti, p)?;
        }
        let (producer_id, epoch, compression) =
            (self.producer_id, self.epoch, self.config.compression);
        let t = &mut self.topics[ti];
        let seq = t.sequences[p];
        let b = t.open[p].get_or_insert_with(|| {
            BatchBuilder::new(BatchOptions {
                compression,
                producer_id,
                producer_epoch: epoch,
                base_sequence: seq,
                transactional: true,
                ..BatchOptions::default()
            })
        });
        b.push(
            r.timestamp
                .unwrap_or_else(|| self.log.clock().coarse_now_ms()),
            r.key,
            r.value,
            r.headers,
        );
        Ok(())
    }

    fn write_batch(&mut self, ti: usize, p: usize) -> Result<()> {
        if self.topics[ti].open[p].is_none() {
            return Ok(());
        }
        if !self.topics[ti].registered[p] {
            self.register_open()?;
        }
        let t = &mut self.topics[ti];
        let Some(b) = t.open[p].take() else {
            return Ok(());
        };
        let n = b.len() as i32;
        let name = t.name.clone();
        let r = self
            .log
            .append_deferred(&name, p as i32, b.finish(0), Acks::Leader);
        let (info, round) = self.fail(r)?;
        self.written
            .insert(TopicPartition::new(name, p as i32), info.last_offset);
        let t = &mut self.topics[ti];
        t.sequences[p] = t.sequences[p].wrapping_add(n) & i32::MAX;
        if let Some(round) = round {
            self.rounds.push(round);
        }
        Ok(())
    }

    /// Commits consumed offsets as part of the transaction (the copier pattern: read, write,
    /// commit input positions, all or nothing). Each offset is the next one to read.
    pub fn send_offsets(
        &mut self,
        offsets: &[(TopicPartition, i64)],
        group: &GroupMetadata,
    ) -> Result<()> {
        self.require_txn()?;
        self.log.groups()?;
        let ti = self.topic_slot(crate::OFFSETS_TOPIC)?;
        if !self.topics[ti].registered[0] {
            let r = self.log.txn_coordinator()?.add_partitions(
                &self.config.transactional_id,
                self.producer_id,
                self.epoch,
                &[TopicPartition::new(crate::OFFSETS_TOPIC, 0)],
            );
            self.fail(r)?;
            self.topics[ti].registered[0] = true;
        }
        let member = group.member_id.as_deref().map(|m| (m, group.generation));
        let r = self.log.commit_offsets_in_txn(
            self.producer_id,
            self.epoch,
            &group.group,
            member,
            offsets,
        );
        if let Some((last_offset, round)) = self.fail(r)? {
            self.written.insert(
                TopicPartition::new(self.topics[ti].name.clone(), 0),
                last_offset,
            );
            self.rounds.extend(round);
        }
        Ok(())
    }

    /// Writes the buffered records of the open transaction to the log and waits until they are
    /// durable. They stay invisible to read_committed readers until the commit.
    pub fn flush(&mut self) -> Result<()> {
        self.register_open()?;
        for ti in 0..self.topics.len() {
            for p in 0..self.topics[ti].partitions as usize {
                self.write_batch(ti, p)?;
            }
        }
        let parts: Vec<TopicPartition> = self.written.keys().cloned().collect();
        let r = self.log.request_durable(&parts);
        let round = self
            .fail(r)?
            .max(self.rounds.iter().max().copied().unwrap_or(0));
        let r = self.log.wait_durable(round);
        self.fail(r)?;
        self.rounds.clear();
        Ok(())
    }

    fn end(&mut self, commit: bool) -> Result<()> {
        let expected: Vec<(TopicPartition, i64)> = if commit {
            self.written
                .iter()
                .map(|(tp, o)| (tp.clone(), *o))
                .collect()
        } else {
            Vec::new()
        };
        let data_round = self.rounds.iter().max().copied();
        let r = self.log.txn_coordinator()?.end(
            &self.config.transactional_id,
            (self.producer_id, self.epoch),
            commit,
            expected,
            data_round,
        );
        self.rounds.clear();
        self.written.clear();
        let (producer_id, epoch) = self.fail(r)?;
        // The epoch moved on (KIP-890): sequences start over.
        self.producer_id = producer_id;
        self.epoch = epoch;
        self.in_txn = false;
        for t in &mut self.topics {
            t.registered.fill(false);
            t.sequences.fill(0);
        }
        Ok(())
    }

    /// Writes what is buffered and commits: every record and offset of the transaction becomes
    /// visible at once, on return. The decision (a Prepare record naming each partition's last
    /// offset) is made durable in the same group-commit round as the last data; the markers'
    /// own fsync then runs while the next transaction is written.
    pub fn commit(&mut self) -> Result<()> {
        self.require_txn()?;
        self.register_open()?;
        for ti in 0..self.topics.len() {
            for p in 0..self.topics[ti].partitions as usize {
                self.write_batch(ti, p)?;
            }
        }
        self.end(true)
    }

    /// Drops what is buffered and aborts: no record of the transaction is ever visible to
    /// read_committed readers.
    pub fn abort(&mut self) -> Result<()> {
        self.require_txn()?;
        for t in &mut self.topics {
            t.open.iter_mut().for_each(|b| *b = None);
        }
        self.end(false)
    }
}
