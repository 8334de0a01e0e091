//! The transaction coordinator, after Kafka's KIP-98, KIP-360, KIP-447 and KIP-890.
//!
//! Per `transactional_id` it keeps the producer id, the epoch and the transaction's state and
//! partitions, made durable in the compacted internal topic `__transaction_state` *before* the
//! step they describe takes effect:
//!
//! ```text
//! init ──► Empty ──add partitions (durable)──► Ongoing ──end──► PrepareCommit|PrepareAbort (durable)
//!            ▲                                                        │
//!            └──────────── CompleteCommit|CompleteAbort ◄── markers to every partition (fsynced)
//! ```
//!
//! It serves two kinds of producer, told apart per transactional id by the call that
//! initialized it:
//! - the embedded [`crate::TransactionalProducer`] (KIP-890 style): the epoch is bumped at every
//!   transaction end and the markers carry the new epoch, so a late write of a finished
//!   transaction is fenced by the partition itself; the producer names its data's last offsets
//!   and group-commit round at the end;
//! - Kafka clients (transaction version 1, `Log::init_transactional_id` and friends): the
//!   (producer id, epoch) stays the same across transactions and the sequences simply continue
//!   after a marker; the epoch moves only to fence (a new instance, a timeout or recovery
//!   abort). A KIP-360 InitProducerId naming the epoch a coordinator abort superseded is accepted.
//!
//! Safety choices where Kafka's protocol has been shown unsafe (Jepsen on Bufstream, 2024): the
//! log accepts a transactional batch only for a partition already registered (durably) in the
//! producer's ongoing transaction with the current epoch, checked in-process at append *and
//! held through the append*, so a write can neither precede its registration nor slip in after
//! its transaction's markers.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::config::TopicConfig;
use crate::format::{BatchBuilder, BatchOptions, ControlType};
use crate::offset_store::{OFFSETS_TOPIC, OffsetStore};
use crate::producer_ids::ProducerIds;
use crate::topic_partition::TopicPartition;
use crate::topic_store::{Acks, TopicStore, TransactionalWriteCheck};
use crate::{Error, Result, TxnErrorKind};

mod kafka_clients;

/// The internal topic holding transaction state.
pub const TXN_TOPIC: &str = "__transaction_state";

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnStatus {
    /// No transaction open (after init).
    Empty,
    /// Open: partitions registered, records being written.
    Ongoing,
    /// Decided to commit; markers being written.
    PrepareCommit,
    /// Decided to abort; markers being written.
    PrepareAbort,
    /// Committed: every marker written.
    CompleteCommit,
    /// Aborted: every marker written.
    CompleteAbort,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TxnMeta {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) status: TxnStatus,
    pub(crate) partitions: BTreeSet<TopicPartition>,
    pub(crate) timeout_ms: i64,
    pub(crate) started_ms: i64,
    /// With a Prepare: the last offset of the transaction's data in each partition. Recovery
    /// commits only if every one of them survived; otherwise the transaction aborts.
    #[serde(default)]
    pub(crate) expected: Vec<(TopicPartition, i64)>,
    /// The group-commit round of the markers last written; the next state record waits for it,
    /// so that no record saying "done" is ever durable before the markers are.
    #[serde(skip)]
    pub(crate) markers_round: Option<u64>,
    /// Transaction version 1 (a Kafka client): the epoch stays the same across transactions and
    /// moves only to fence. False for the embedded producer (and in records written before).
    #[serde(default)]
    pub(crate) keeps_epoch: bool,
    /// The (producer id, epoch) a Kafka client may still hold legitimately: the one a
    /// coordinator abort (timeout, recovery) superseded, or the one its last InitProducerId
    /// bumped (the answer may have been lost). An InitProducerId naming it is accepted (KIP-360,
    /// Kafka's lastProducerEpoch).
    #[serde(default)]
    pub(crate) previous: Option<(i64, i16)>,
}

/// A transaction as `topic describe` and tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnDescription {
    /// The id the producer chose, stable across its restarts.
    pub transactional_id: String,
    /// The producer id its batches carry now (a fresh one once the epochs run out).
    pub producer_id: i64,
    /// The epoch of its current instance; older instances are fenced.
    pub epoch: i16,
    /// Where its current (or last) transaction stands.
    pub status: TxnStatus,
    /// The partitions registered in its transaction.
    pub partitions: Vec<TopicPartition>,
}

type Entry = Arc<Mutex<TxnMeta>>;

/// See the module docs. It works on the [`TopicStore`] it is given, allocates producer ids from
/// the log's [`ProducerIds`] and completes the offsets a transaction committed in the
/// [`OffsetStore`].
pub(crate) struct TxnCoordinator {
    store: Arc<TopicStore>,
    producer_ids: Arc<ProducerIds>,
    offsets: Arc<OffsetStore>,
    txns: Mutex<HashMap<String, Entry>>,
    by_producer: Mutex<HashMap<i64, Entry>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The caller's (producer id, epoch) is not the transactional id's current one.
fn fenced(txn_id: &str, producer_id: i64, epoch: i16, meta: &TxnMeta) -> Error {
    let kind = if producer_id == meta.producer_id {
        TxnErrorKind::ProducerFenced
    } else {
        TxnErrorKind::InvalidProducerIdMapping
    };
    Error::txn(
        txn_id,
        kind,
        format!(
            "producer {producer_id} epoch {epoch} was superseded by producer {} epoch {}",
            meta.producer_id, meta.epoch
        ),
    )
}

/// Per partition, the last offset of a transaction's data that must survive a crash for its
/// commit to go ahead at recovery.
type Expected = Vec<(TopicPartition, i64)>;

impl TxnCoordinator {
    /// The largest producer id a transactional id holds, or -1.
    pub(crate) fn max_producer_id(&self) -> i64 {
        lock(&self.by_producer).keys().copied().max().unwrap_or(-1)
    }

    /// Loads every transaction from the state topic and finishes what a crash interrupted:
    /// prepared transactions complete as decided, ongoing ones abort.
    pub(crate) fn load(
        store: Arc<TopicStore>,
        producer_ids: Arc<ProducerIds>,
        offsets: Arc<OffsetStore>,
    ) -> Result<TxnCoordinator> {
        let c = TxnCoordinator {
            store,
            producer_ids,
            offsets,
            txns: Mutex::default(),
            by_producer: Mutex::default(),
        };
        if c.store.topic_config(TXN_TOPIC).is_err() {
            return Ok(c);
        }
        let (start, end) = c.store.offsets(TXN_TOPIC, 0)?;
        let mut pos = start;
        let mut latest: HashMap<String, Option<TxnMeta>> = HashMap::new();
        let max = c.store.config().decompressed_bytes_max;
        while pos < end {
            let batches = c.store.fetch(TXN_TOPIC, 0, pos, 1 << 20)?;
            if batches.is_empty() {
                break;
            }
            for b in &batches {
                pos = b.header().last_offset() + 1;
                for r in b.records(max)? {
                    let r = r?;
                    let Some(k) = r
                        .key
                        .as_ref()
                        .and_then(|k| std::str::from_utf8(k).ok().map(str::to_string))
                    else {
                        continue;
                    };
                    let v = r
                        .value
                        .as_ref()
                        .and_then(|v| serde_json::from_slice::<TxnMeta>(v).ok());
                    latest.insert(k, v);
                }
            }
        }
        for (id, meta) in latest {
            if let Some(meta) = meta {
                let e = Arc::new(Mutex::new(meta.clone()));
                lock(&c.by_producer).insert(meta.producer_id, e.clone());
                lock(&c.txns).insert(id, e);
            }
        }
        let ids: Vec<String> = lock(&c.txns).keys().cloned().collect();
        // Every decision first, from the partitions as the crash left them: a marker written
        // below for one transaction moves a partition's end, and would let another's check
        // count that marker as the data it lost.
        for id in &ids {
            let e = c
                .entry(id)
                .ok_or_else(|| Error::Internal("transaction vanished".into()))?;
            let mut m = lock(&e);
            if m.status == TxnStatus::PrepareCommit && !c.data_survived(&m) {
                // An OS crash lost data the Prepare counted on: abort rather than commit part
                // of the transaction.
                m.status = TxnStatus::PrepareAbort;
            }
        }
        for id in ids {
            let e = c
                .entry(&id)
                .ok_or_else(|| Error::Internal("transaction vanished".into()))?;
            let mut m = lock(&e);
            match m.status {
                TxnStatus::Ongoing => c.abort_to_fence(&id, &mut m)?,
                TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => {
                    // Writing this transaction's markers again never touches a later
                    // transaction of the same producer: with the embedded producer the later
                    // one has a higher epoch, which the partitions refuse the marker over; a
                    // Kafka client's later transaction (same epoch) can only have written data
                    // once its registration, fsynced after this transaction's Complete record
                    // (`add_partitions`), was durable, and then this Prepare is not the last
                    // record.
                    c.write_markers_and_complete(&id, &mut m)?
                }
                _ => {}
            }
            c.settle(&id, &mut m)?;
        }
        Ok(c)
    }

    fn entry(&self, txn_id: &str) -> Option<Entry> {
        lock(&self.txns).get(txn_id).cloned()
    }

    /// A fresh producer id, refused once the log is closed.
    fn allocate_producer_id(&self) -> Result<i64> {
        self.store.check_writable("allocate a producer id")?;
        self.producer_ids.allocate()
    }

    fn persist(&self, txn_id: &str, meta: &TxnMeta, acks: Acks) -> Result<()> {
        if let Some(round) = self.persist_deferred(txn_id, meta, acks)? {
            self.store.wait_durable(round)?;
        }
        Ok(())
    }

    /// Appends the state record; with acks=all returns the round that makes it durable.
    fn persist_deferred(&self, txn_id: &str, meta: &TxnMeta, acks: Acks) -> Result<Option<u64>> {
        if self.store.topic_config(TXN_TOPIC).is_err() {
            match self.store.create_topic(
                TXN_TOPIC,
                TopicConfig {
                    partitions: 1,
                    compacted: true,
                    retention_ms: None,
                    ..TopicConfig::default()
                },
            ) {
                Ok(()) | Err(Error::TopicExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let value = serde_json::to_vec(meta).map_err(|e| Error::Internal(e.to_string()))?;
        let mut b = BatchBuilder::new(BatchOptions::default());
        b.push(
            self.store.clock().now_ms(),
            Some(txn_id.as_bytes()),
            Some(&value),
            &[],
        );
        Ok(self
            .store
            .append_deferred(TXN_TOPIC, 0, b.finish(0), acks)?
            .1)
    }

    /// Once the last markers are durable, records that the transaction completed. Every state
    /// change after a commit goes through here first.
    fn settle(&self, txn_id: &str, m: &mut TxnMeta) -> Result<()> {
        let Some(r) = m.markers_round else {
            return Ok(());
        };
        if let Err(e) = self.store.wait_durable(r) {
            // The markers' round failed: they are not known durable, and until they are, no
            // later state of this id may be recorded (recovery would not write them again).
            // The flusher fsyncs a failed round's segments again in its next round: wait for
            // one. Kept until then, so that the next call tries again.
            let again = self
                .store
                .request_durable(&[TopicPartition::new(TXN_TOPIC, 0)])?;
            self.store.wait_durable(again).map_err(|_| e)?;
        }
        m.markers_round = None;
        self.persist(txn_id, m, Acks::Leader)
    }

    /// Settles every transaction whose markers are durable by now (the timer calls this, so
    /// idle producers' state is recorded as complete); with `wait`, all of them (on close).
    pub(crate) fn settle_all(&self, wait: bool) -> Result<()> {
        let all: Vec<(String, Entry)> = lock(&self.txns)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, e) in all {
            let mut m = lock(&e);
            if m.markers_round
                .is_some_and(|r| wait || self.store.is_durable(r))
            {
                self.settle(&id, &mut m)?;
            }
        }
        Ok(())
    }

    fn data_survived(&self, m: &TxnMeta) -> bool {
        m.expected.iter().all(
            |(tp, last)| match self.store.offsets(tp.topic(), tp.partition()) {
                Ok((_, hw)) => hw > *last,
                // A topic deleted since has nothing to lose.
                Err(_) => true,
            },
        )
    }

    fn check_timeout(&self, timeout_ms: i64) -> std::result::Result<(), String> {
        let max = self.store.config().txn_timeout_ms_max;
        if timeout_ms <= 0 || timeout_ms > max {
            return Err(format!(
                "transaction timeout {timeout_ms} ms must be between 1 and txn_timeout_ms_max ({max})"
            ));
        }
        Ok(())
    }

    /// A new transactional id: a fresh producer id at epoch 0, durable before it is returned.
    fn create(&self, txn_id: &str, timeout_ms: i64, keeps_epoch: bool) -> Result<(i64, i16)> {
        let producer_id = self.allocate_producer_id()?;
        let meta = TxnMeta {
            producer_id,
            epoch: 0,
            status: TxnStatus::Empty,
            partitions: BTreeSet::new(),
            timeout_ms,
            started_ms: 0,
            expected: Vec::new(),
            markers_round: None,
            keeps_epoch,
            previous: None,
        };
        self.persist(txn_id, &meta, Acks::All)?;
        let e = Arc::new(Mutex::new(meta));
        lock(&self.by_producer).insert(producer_id, e.clone());
        lock(&self.txns).insert(txn_id.to_string(), e);
        Ok((producer_id, 0))
    }

    /// Ends what an older instance left: an open transaction is aborted (fencing it), a
    /// prepared one completed as decided; then records the completion.
    fn complete_leftovers(&self, txn_id: &str, m: &mut TxnMeta) -> Result<()> {
        match m.status {
            TxnStatus::Ongoing => self.abort_to_fence(txn_id, m)?,
            TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => {
                // The decision stopped short of its markers (its round failed, say): it may not
                // be on disk yet.
                self.make_decision_durable(txn_id, m, None)?;
                self.write_markers_and_complete(txn_id, m)?
            }
            _ => {}
        }
        self.settle(txn_id, m)
    }

    /// Moves to the next epoch, or to a fresh producer id once the epochs run out (KIP-360).
    fn bump_epoch(&self, e: &Entry, m: &mut TxnMeta) -> Result<()> {
        if m.epoch >= i16::MAX - 1 {
            let producer_id = self.allocate_producer_id()?;
            lock(&self.by_producer).remove(&m.producer_id);
            lock(&self.by_producer).insert(producer_id, e.clone());
            m.producer_id = producer_id;
            m.epoch = 0;
        } else {
            m.epoch += 1;
        }
        Ok(())
    }

    /// The embedded producer's init: gives `txn_id` a producer id and a new epoch, fencing every
    /// older instance: an open transaction of theirs is aborted, a prepared one completed.
    pub(crate) fn init(&self, txn_id: &str, timeout_ms: i64) -> Result<(i64, i16)> {
        if txn_id.is_empty() {
            return Err(Error::config("transactional_id", "must not be empty"));
        }
        self.check_timeout(timeout_ms)
            .map_err(|why| Error::config("transaction_timeout_ms", why))?;
        let Some(e) = self.entry(txn_id) else {
            return self.create(txn_id, timeout_ms, false);
        };
        let mut m = lock(&e);
        self.complete_leftovers(txn_id, &mut m)?;
        self.bump_epoch(&e, &mut m)?;
        m.status = TxnStatus::Empty;
        m.partitions.clear();
        m.timeout_ms = timeout_ms;
        m.keeps_epoch = false;
        m.previous = None;
        self.persist(txn_id, &m, Acks::All)?;
        Ok((m.producer_id, m.epoch))
    }

    /// The entry of `txn_id`, if the caller holds its current (producer id, epoch).
    fn check(&self, txn_id: &str, producer_id: i64, epoch: i16) -> Result<Entry> {
        let e = self.entry(txn_id).ok_or_else(|| {
            Error::txn(
                txn_id,
                TxnErrorKind::InvalidProducerIdMapping,
                "unknown transactional id: call init first",
            )
        })?;
        {
            let m = lock(&e);
            if m.producer_id != producer_id || m.epoch != epoch {
                return Err(fenced(txn_id, producer_id, epoch, &m));
            }
        }
        Ok(e)
    }

    /// Registers partitions in the producer's transaction (opening it if needed), durably, before
    /// the log accepts transactional writes to them. Unknown partitions refuse the whole call.
    pub(crate) fn add_partitions(
        &self,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let e = self.check(txn_id, producer_id, epoch)?;
        let mut m = lock(&e);
        if m.producer_id != producer_id || m.epoch != epoch {
            return Err(fenced(txn_id, producer_id, epoch, &m));
        }
        let opening = match m.status {
            TxnStatus::Ongoing => false,
            TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort => true,
            s => {
                return Err(Error::txn(
                    txn_id,
                    TxnErrorKind::ConcurrentTransactions,
                    format!("the transaction is completing ({s:?}); no partition can join it"),
                ));
            }
        };
        for tp in partitions {
            let n = self.store.partition_count(tp.topic())?;
            if tp.partition() < 0 || tp.partition() >= n {
                return Err(Error::UnknownPartition {
                    topic: tp.topic().to_string(),
                    partition: tp.partition(),
                });
            }
        }
        if !opening && partitions.iter().all(|tp| m.partitions.contains(tp)) {
            return Ok(());
        }
        self.settle(txn_id, &mut m)?;
        let before = m.clone();
        if opening {
            m.status = TxnStatus::Ongoing;
            m.partitions.clear();
            m.started_ms = self.store.clock().now_ms();
        }
        m.partitions.extend(partitions.iter().cloned());
        // The embedded producer's registrations are not fsynced: the Prepare record (fsynced)
        // repeats the whole list, and after an OS crash that lost this record, open aborts any
        // transaction a partition holds open that the coordinator does not know
        // (`abort_orphans`); its next transaction has a higher epoch than any marker of this
        // one. A Kafka client's next transaction has the same epoch as the last one's markers:
        // its opening is fsynced, and with it the last one's Complete record before it in the
        // same file, so that recovery never writes the last one's markers again once data of
        // the new one may be durable.
        let acks = if opening && m.keeps_epoch {
            Acks::All
        } else {
            Acks::Leader
        };
        let persisted = self.persist(txn_id, &m, acks);
        if persisted.is_err() {
            // Not registered: a retry must write the record again, not find the partitions
            // registered and let data precede a durable opening.
            *m = before;
        }
        persisted
    }

    /// Runs `append` (a transactional batch's append) if producer `producer_id` at `epoch` may
    /// write to `tp` now: its ongoing transaction registered it. The transaction's lock is held
    /// through the append, so that the transaction cannot end between the check and the write
    /// (a Kafka client's epoch does not move at the end, so the partition could not tell a late
    /// batch from one of the next transaction). The epoch is checked first (KAFKA-19690: a
    /// producer whose transaction the coordinator aborted must learn of its epoch, not of a
    /// state it cannot make sense of).
    fn append_if_registered(
        &self,
        producer_id: i64,
        epoch: i16,
        tp: &TopicPartition,
        append: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        let e = lock(&self.by_producer)
            .get(&producer_id)
            .cloned()
            .ok_or_else(|| Error::Txn {
                txn_id: None,
                kind: TxnErrorKind::InvalidProducerIdMapping,
                reason: format!("producer {producer_id} has no transactional id: call init first"),
            })?;
        let m = lock(&e);
        if m.producer_id != producer_id || m.epoch != epoch {
            return Err(Error::Txn {
                txn_id: None,
                kind: TxnErrorKind::InvalidProducerEpoch,
                reason: format!(
                    "producer {producer_id} epoch {epoch} is not the current epoch {} of producer {}",
                    m.epoch, m.producer_id
                ),
            });
        }
        if m.status != TxnStatus::Ongoing || !m.partitions.contains(tp) {
            return Err(Error::Txn {
                txn_id: None,
                kind: TxnErrorKind::InvalidTxnState,
                reason: format!(
                    "{tp} is not registered in producer {producer_id}'s ongoing transaction"
                ),
            });
        }
        append()
    }

    /// The embedded producer's end: commits or aborts. Returns the new epoch (bumped at every
    /// transaction end, KIP-890) the producer uses for its next transaction.
    pub(crate) fn end(
        &self,
        txn_id: &str,
        (producer_id, epoch): (i64, i16),
        commit: bool,
        expected: Expected,
        data_round: Option<u64>,
    ) -> Result<(i64, i16)> {
        let e = self.check(txn_id, producer_id, epoch)?;
        let mut m = lock(&e);
        if m.producer_id != producer_id || m.epoch != epoch {
            return Err(fenced(txn_id, producer_id, epoch, &m));
        }
        match m.status {
            TxnStatus::Ongoing => {
                m.epoch = m.epoch.saturating_add(1);
                self.finish(txn_id, &mut m, commit, expected, data_round)?
            }
            TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort => {
                // Nothing was written: only the epoch moves on.
                self.settle(txn_id, &mut m)?;
                m.epoch += 1;
                m.status = if commit {
                    TxnStatus::CompleteCommit
                } else {
                    TxnStatus::CompleteAbort
                };
                self.persist(txn_id, &m, Acks::All)?;
            }
            s => {
                return Err(Error::txn(
                    txn_id,
                    TxnErrorKind::ConcurrentTransactions,
                    format!("the transaction is already completing ({s:?})"),
                ));
            }
        }
        Ok((m.producer_id, m.epoch))
    }

    /// Aborts the ongoing transaction on the coordinator's own initiative (a new instance, a
    /// timeout, recovery), with the next epoch: the producer's late batches are refused by the
    /// partitions from then on. A Kafka client may then recover with KIP-360 naming the epoch
    /// it held.
    fn abort_to_fence(&self, txn_id: &str, m: &mut TxnMeta) -> Result<()> {
        if m.keeps_epoch {
            m.previous = Some((m.producer_id, m.epoch));
        }
        m.epoch = m.epoch.saturating_add(1);
        self.finish(txn_id, m, false, Vec::new(), None)
    }

    /// Ongoing → Prepare (durable) → markers (fsynced) → Complete, at `m.epoch` (the caller has
    /// moved it where the ending requires).
    /// The decision: Prepare (with the data's last offsets) made durable in the same
    /// group-commit round as the transaction's last data (`data_round`): recovery checks the
    /// offsets, so the Prepare never counts on data that did not survive. Then the markers.
    fn finish(
        &self,
        txn_id: &str,
        m: &mut TxnMeta,
        commit: bool,
        expected: Expected,
        data_round: Option<u64>,
    ) -> Result<()> {
        debug_assert_eq!(m.status, TxnStatus::Ongoing);
        m.status = if commit {
            TxnStatus::PrepareCommit
        } else {
            TxnStatus::PrepareAbort
        };
        m.expected = expected;
        self.make_decision_durable(txn_id, m, data_round)?;
        self.write_markers_and_complete(txn_id, m)
    }

    /// Writes the Prepare and makes it durable with the data it names, in one round; were the
    /// data lost anyway (an OS crash mid-round), recovery sees `expected` unmet and aborts. No
    /// marker may be written before this succeeds: a marker made durable for a decision that
    /// was not would let recovery decide otherwise for the other partitions.
    fn make_decision_durable(
        &self,
        txn_id: &str,
        m: &TxnMeta,
        data_round: Option<u64>,
    ) -> Result<()> {
        self.persist_deferred(txn_id, m, Acks::Leader)?;
        let mut durable: Vec<TopicPartition> =
            m.expected.iter().map(|(tp, _)| tp.clone()).collect();
        durable.push(TopicPartition::new(TXN_TOPIC, 0));
        let round = self.store.request_durable(&durable)?;
        self.store.wait_durable(round.max(data_round.unwrap_or(0)))
    }

    /// Writes the markers (with the Prepare's epoch) and completes the transaction in memory.
    /// The markers become durable in the background; the record of completion waits for them
    /// (`settle`), and recovery writes them again from the Prepare if they were lost: a marker of
    /// an older epoch than a partition already saw is refused there. The embedded producer's
    /// next transaction has an epoch one above the markers'; a Kafka client's keeps theirs.
    fn write_markers_and_complete(&self, txn_id: &str, m: &mut TxnMeta) -> Result<()> {
        let commit = m.status == TxnStatus::PrepareCommit;
        let kind = if commit {
            ControlType::Commit
        } else {
            ControlType::Abort
        };
        let mut last_round = None;
        for tp in &m.partitions {
            match self
                .store
                .append_marker(tp.topic(), tp.partition(), m.producer_id, m.epoch, kind)
            {
                Ok(r) => last_round = last_round.max(Some(r)),
                // A deleted topic has nothing left to mark; a newer epoch there means this
                // marker was written before (recovery writing it again).
                Err(Error::UnknownTopic(_) | Error::UnknownPartition { .. } | Error::Fenced(_)) => {
                }
                Err(e) => return Err(e),
            }
        }
        if m.partitions
            .contains(&TopicPartition::new(OFFSETS_TOPIC, 0))
        {
            self.offsets.complete_txn(m.producer_id, commit)?;
        }
        m.status = if commit {
            TxnStatus::CompleteCommit
        } else {
            TxnStatus::CompleteAbort
        };
        m.partitions.clear();
        m.expected.clear();
        if !m.keeps_epoch {
            if m.epoch >= i16::MAX - 2 {
                // Epochs exhausted: the next transaction gets a fresh producer id (KIP-360).
                let producer_id = self.allocate_producer_id()?;
                let e = lock(&self.by_producer).remove(&m.producer_id);
                if let Some(e) = e {
                    lock(&self.by_producer).insert(producer_id, e);
                }
                m.producer_id = producer_id;
                m.epoch = 0;
            } else {
                m.epoch += 1;
            }
        }
        m.markers_round = last_round;
        if last_round.is_none() {
            self.persist(txn_id, m, Acks::Leader)?;
        }
        Ok(())
    }

    /// After recovery: aborts transactions that partitions hold open but no ongoing
    /// transaction of the coordinator covers (their registration was lost in a crash), so that
    /// no partition's LSO hangs forever. Returns how many markers were written.
    pub(crate) fn abort_orphans(&self) -> Result<usize> {
        let live: std::collections::HashSet<(i64, TopicPartition)> = lock(&self.txns)
            .values()
            .flat_map(|e| {
                let m = lock(e);
                let pid = m.producer_id;
                let ongoing = m.status == TxnStatus::Ongoing;
                m.partitions
                    .iter()
                    .filter(move |_| ongoing)
                    .map(move |tp| (pid, tp.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut n = 0;
        let mut last_round = None;
        for (tp, producer_id, epoch) in self.store.open_transactions_everywhere() {
            if live.contains(&(producer_id, tp.clone())) {
                continue;
            }
            last_round = Some(self.store.append_marker(
                tp.topic(),
                tp.partition(),
                producer_id,
                epoch,
                ControlType::Abort,
            )?);
            n += 1;
        }
        if let Some(r) = last_round {
            self.store.wait_durable(r)?;
        }
        Ok(n)
    }

    /// Aborts every transaction open longer than its timeout; returns how many.
    pub(crate) fn abort_expired(&self, now_ms: i64) -> Result<usize> {
        let all: Vec<(String, Entry)> = lock(&self.txns)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut n = 0;
        for (id, e) in all {
            let mut m = lock(&e);
            if m.status == TxnStatus::Ongoing && now_ms - m.started_ms > m.timeout_ms {
                self.abort_to_fence(&id, &mut m)?;
                self.settle(&id, &mut m)?;
                n += 1;
            } else if m.markers_round.is_some_and(|r| self.store.is_durable(r)) {
                self.settle(&id, &mut m)?;
            }
        }
        Ok(n)
    }

    /// Every known transaction.
    pub(crate) fn describe(&self) -> Vec<TxnDescription> {
        let mut out: Vec<TxnDescription> = lock(&self.txns)
            .iter()
            .map(|(id, e)| {
                let m = lock(e);
                TxnDescription {
                    transactional_id: id.clone(),
                    producer_id: m.producer_id,
                    epoch: m.epoch,
                    status: m.status,
                    partitions: m.partitions.iter().cloned().collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }
}

impl TransactionalWriteCheck for TxnCoordinator {
    fn append_transactional(
        &self,
        producer_id: i64,
        epoch: i16,
        partition: &TopicPartition,
        append: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        self.append_if_registered(producer_id, epoch, partition, append)
    }
}
