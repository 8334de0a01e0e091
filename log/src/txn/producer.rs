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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::format::{BatchBuilder, BatchOptions, Compression};
use crate::log::{Acks, Log};
use crate::partitioner::partition_for_key;
use crate::{Error, ProducerRecord, Result, util};

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
    /// Defaults for `transactional_id`: one-minute timeout, 1 MiB batches, no compression.
    pub fn new(transactional_id: impl Into<String>) -> Self {
        TransactionalConfig {
            transactional_id: transactional_id.into(),
            transaction_timeout_ms: 60_000,
            batch_bytes_max: 1 << 20,
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

type Tp = (Arc<str>, i32);

/// A producer whose writes become visible atomically, on commit.
pub struct TransactionalProducer {
    log: Log,
    config: TransactionalConfig,
    producer_id: i64,
    epoch: i16,
    in_txn: bool,
    failed: Option<String>,
    registered: HashSet<Tp>,
    open: HashMap<Tp, BatchBuilder>,
    sequences: HashMap<Tp, i32>,
    /// Group-commit rounds of this transaction's batches.
    rounds: Vec<u64>,
    topics: HashMap<String, (Arc<str>, i32, usize)>,
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
        let (producer_id, epoch) = log.txn_coordinator()?.init(
            log,
            &config.transactional_id,
            config.transaction_timeout_ms,
        )?;
        Ok(TransactionalProducer {
            log: log.clone(),
            config,
            producer_id,
            epoch,
            in_txn: false,
            failed: None,
            registered: HashSet::new(),
            open: HashMap::new(),
            sequences: HashMap::new(),
            rounds: Vec::new(),
            topics: HashMap::new(),
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

    /// Registers `tp`, and with it every partition holding buffered records, in one durable
    /// coordinator write: registration costs an fsync, so it is batched like the data.
    fn register(&mut self, tp: &Tp) -> Result<()> {
        if self.registered.contains(tp) {
            return Ok(());
        }
        let mut new: Vec<Tp> = self.open.keys().filter(|k| !self.registered.contains(*k)).cloned().collect();
        if !new.contains(tp) {
            new.push(tp.clone());
        }
        let list: Vec<(String, i32)> = new.iter().map(|(t, p)| (t.to_string(), *p)).collect();
        let r = self.log.txn_coordinator()?.add_partitions(
            &self.log,
            &self.config.transactional_id,
            self.producer_id,
            self.epoch,
            &list,
        );
        self.fail(r)?;
        self.registered.extend(new);
        Ok(())
    }

    /// Adds a record to the transaction. Its partition is registered with the coordinator
    /// (durably) before the first batch for it is written.
    pub fn send(&mut self, r: ProducerRecord<'_>) -> Result<()> {
        self.require_txn()?;
        if !self.topics.contains_key(r.topic) {
            let cfg = self.log.topic_config(r.topic)?;
            self.topics.insert(
                r.topic.to_string(),
                (Arc::from(r.topic), cfg.partitions, cfg.record_bytes_max),
            );
        }
        let (name, partitions, record_bytes_max) = self.topics[r.topic].clone();
        let rec_bytes = BatchBuilder::record_bytes(0, 0, r.key, r.value, r.headers);
        if rec_bytes > record_bytes_max {
            return Err(Error::RecordTooLarge {
                bytes: rec_bytes,
                max: record_bytes_max,
            });
        }
        let partition = match (r.partition, r.key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for_key(k, partitions),
            (None, None) => (util::now_ms() % partitions as i64) as i32,
        };
        if partition < 0 || partition >= partitions {
            return Err(Error::UnknownPartition {
                topic: r.topic.to_string(),
                partition,
            });
        }
        let tp: Tp = (name, partition);
        let full = self.open.get(&tp).is_some_and(|b| {
            !b.is_empty() && b.estimated_bytes() + rec_bytes > self.config.batch_bytes_max
        });
        if full {
            self.write_batch(&tp)?;
        }
        let (producer_id, epoch, compression) =
            (self.producer_id, self.epoch, self.config.compression);
        let seq = *self.sequences.get(&tp).unwrap_or(&0);
        let b = self.open.entry(tp).or_insert_with(|| {
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
            r.timestamp.unwrap_or_else(util::coarse_now_ms),
            r.key,
            r.value,
            r.headers,
        );
        Ok(())
    }

    fn write_batch(&mut self, tp: &Tp) -> Result<()> {
        if !self.open.contains_key(tp) {
            return Ok(());
        }
        // A write never precedes its partition's registration.
        self.register(tp)?;
        let Some(b) = self.open.remove(tp) else {
            return Ok(());
        };
        let n = b.len() as i32;
        let r = self
            .log
            .append_deferred(&tp.0, tp.1, b.finish(0), Acks::All);
        let (_, round) = self.fail(r)?;
        let seq = self.sequences.entry(tp.clone()).or_insert(0);
        *seq = seq.wrapping_add(n) & i32::MAX;
        if let Some(round) = round {
            self.rounds.push(round);
        }
        Ok(())
    }

    /// Commits consumed offsets as part of the transaction (the copier pattern: read, write,
    /// commit input positions, all or nothing). Each offset is the next one to read.
    pub fn send_offsets(
        &mut self,
        offsets: &[(&str, i32, i64)],
        group: &GroupMetadata,
    ) -> Result<()> {
        self.require_txn()?;
        let tp: Tp = (Arc::from(crate::OFFSETS_TOPIC), 0);
        self.log.ensure_groups()?;
        self.register(&tp)?;
        let offsets: Vec<(String, i32, i64)> = offsets
            .iter()
            .map(|(t, p, o)| (t.to_string(), *p, *o))
            .collect();
        let member = group.member_id.as_deref().map(|m| (m, group.generation));
        let r = self.log.commit_offsets_in_txn(
            self.producer_id,
            self.epoch,
            &group.group,
            member,
            &offsets,
        );
        self.fail(r)
    }

    /// Writes the buffered records of the open transaction to the log and waits until they are
    /// durable. They stay invisible to read_committed readers until the commit.
    pub fn flush(&mut self) -> Result<()> {
        let open: Vec<Tp> = self.open.keys().cloned().collect();
        for tp in open {
            self.write_batch(&tp)?;
        }
        if let Some(r) = self.rounds.iter().max().copied() {
            let r = self.log.wait_durable(r);
            self.fail(r)?;
        }
        self.rounds.clear();
        Ok(())
    }

    fn end(&mut self, commit: bool) -> Result<()> {
        let r = self.log.txn_coordinator()?.end(
            &self.log,
            &self.config.transactional_id,
            self.producer_id,
            self.epoch,
            commit,
        );
        let (producer_id, epoch) = self.fail(r)?;
        // The epoch moved on (KIP-890): sequences start over.
        self.producer_id = producer_id;
        self.epoch = epoch;
        self.in_txn = false;
        self.registered.clear();
        self.sequences.clear();
        Ok(())
    }

    /// Writes what is buffered, waits until it is durable, then commits: every record and offset
    /// of the transaction becomes visible at once.
    pub fn commit(&mut self) -> Result<()> {
        self.require_txn()?;
        self.flush()?;
        self.end(true)
    }

    /// Drops what is buffered and aborts: no record of the transaction is ever visible to
    /// read_committed readers.
    pub fn abort(&mut self) -> Result<()> {
        self.require_txn()?;
        self.open.clear();
        if let Some(r) = self.rounds.iter().max().copied() {
            let _ = self.log.wait_durable(r);
        }
        self.rounds.clear();
        self.end(false)
    }
}
