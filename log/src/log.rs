//! The front door: [`Log`], the handle on one data directory. It owns the parts and delegates to
//! them: the [`TopicStore`] (topics, appends, fetches, group commit), the [`OffsetStore`] (groups
//! and committed offsets), the [`TxnCoordinator`], the producer-id allocator and the
//! [`Scheduler`] that runs the background jobs (cleaner rounds, transaction expiry). Each part
//! gets the store it needs, never the log.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::cleaner::{self, Cleaner, CleanerReport};
use crate::config::{LogConfig, TopicConfig};
use crate::format::Batch;
use crate::group::{ClassicMember, GroupMembers, JoinOutcome};
use crate::offset_store::{CommittedOffset, GroupInfo, OFFSETS_TOPIC, OffsetStore};
use crate::options::LogOptions;
use crate::partition::AppendInfo;
use crate::producer_ids::ProducerIds;
use crate::scheduler::Scheduler;
use crate::segment::Truncation;
use crate::topic_partition::TopicPartition;
use crate::topic_store::{
    Acks, Fetched, IsolationLevel, TopicDescription, TopicStore, TransactionalWriteCheck,
};
use crate::txn::coordinator::{TxnCoordinator, TxnDescription};
use crate::{Error, Result};

struct Inner {
    /// Declared first, so dropped first: every background job has stopped before the parts it
    /// works on go.
    scheduler: Scheduler,
    store: Arc<TopicStore>,
    offsets: Arc<OffsetStore>,
    /// Writers only.
    producer_ids: Option<Arc<ProducerIds>>,
    /// Writers only.
    txn: Option<Arc<TxnCoordinator>>,
}

/// An open data directory. Cheap to clone; every clone is the same log.
///
/// One process at a time opens a directory for writing ([`Log::open`], guarded by a lock file);
/// any number may open it read-only ([`Log::open_read_only`]) and follow what the writer appends.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir())
            .field("writable", &self.is_writable())
            .finish()
    }
}

/// Runs one cleaning round over every partition of `log` at `now_ms` (ms since the Unix epoch,
/// the time that record timestamps are judged against): retention for ordinary topics with a
/// limit set, compaction for compacted ones. Stops at the first error. I/O is paced by
/// [`LogConfig::cleaner_io_bytes_per_s`].
pub fn clean_once(log: &Log, now_ms: i64) -> Result<CleanerReport> {
    cleaner::clean_round(&log.inner.store, now_ms)
}

impl Cleaner {
    /// Starts a cleaner thread on `log` beside the log's own (none for a read-only handle: it
    /// must not write). The first round runs one interval from now.
    pub fn start(log: &Log) -> Cleaner {
        Cleaner::start_on(&log.inner.store)
    }
}

impl Log {
    /// Opens `dir` for writing, creating it if needed. After an unclean stop, the tail of every
    /// partition is re-read and checked; see [`Log::recovery_report`].
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        Self::open_with(dir, config, LogOptions::default())
    }

    /// [`Log::open`] on the storage and clock in `options` (a test's fault-injecting storage,
    /// say) instead of the local file system and the system clock.
    pub fn open_with(dir: impl AsRef<Path>, config: LogConfig, options: LogOptions) -> Result<Log> {
        config.validate()?;
        let store = Arc::new(TopicStore::open_writer(
            dir.as_ref(),
            Arc::new(config),
            options,
        )?);
        let producer_ids = Arc::new(ProducerIds::recover(&store)?);
        let offsets = Arc::new(OffsetStore::new(store.clone()));
        // Finish what a crash interrupted before anyone reads: prepared transactions complete,
        // open ones abort.
        let txn = Arc::new(TxnCoordinator::load(
            store.clone(),
            producer_ids.clone(),
            offsets.clone(),
        )?);
        // Transactional ids keep their producer id while they have written nothing yet.
        producer_ids.raise_above(txn.max_producer_id());
        let check: Weak<dyn TransactionalWriteCheck> = Arc::downgrade(&txn) as _;
        store.set_transactional_write_check(check);
        txn.abort_orphans()?;

        let scheduler = Scheduler::new();
        let interval = Duration::from_millis(store.config().txn_check_interval_ms);
        let (timer_store, timer_txn) = (store.clone(), txn.clone());
        scheduler.every("weir-txn-timer", interval, move |_| {
            if timer_store.check_writable("use transactions").is_ok()
                && let Err(e) = timer_txn.abort_expired(timer_store.clock().now_ms())
            {
                eprintln!("weir: aborting timed-out transactions failed (will retry): {e}");
            }
            ControlFlow::Continue(())
        })?;
        if let Err(e) = cleaner::schedule(&scheduler, Arc::downgrade(&store)) {
            eprintln!(
                "weir-cleaner: cannot start the cleaner thread, nothing will be cleaned: {e}"
            );
        }
        Ok(Log {
            inner: Arc::new(Inner {
                scheduler,
                store,
                offsets,
                producer_ids: Some(producer_ids),
                txn: Some(txn),
            }),
        })
    }

    /// The clock the log reads (producers take record timestamps from it).
    pub(crate) fn clock(&self) -> &Arc<dyn crate::Clock> {
        self.inner.store.clock()
    }

    /// Opens `dir` read-only: no lock, no recovery, nothing written. Reads follow the writer.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Log> {
        let store = Arc::new(TopicStore::open_read_only(dir.as_ref())?);
        Ok(Log {
            inner: Arc::new(Inner {
                scheduler: Scheduler::new(),
                offsets: Arc::new(OffsetStore::new(store.clone())),
                store,
                producer_ids: None,
                txn: None,
            }),
        })
    }

    fn store(&self) -> &TopicStore {
        &self.inner.store
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.store().dir()
    }

    /// The log's configuration.
    pub fn config(&self) -> &LogConfig {
        self.store().config()
    }

    /// True for a handle from [`Log::open`].
    pub fn is_writable(&self) -> bool {
        self.store().is_writable()
    }

    /// What recovery cut off: when this handle opened the log after an unclean stop, and when a
    /// partition, opened on first use, was found damaged.
    pub fn recovery_report(&self) -> Vec<Truncation> {
        self.store().recovery_report()
    }

    /// Creates a topic: 1 to [`crate::PARTITIONS_MAX`] partitions, each making its first segment
    /// when first used.
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<()> {
        self.store().create_topic(name, config)
    }

    /// Deletes a topic, its data and every group's committed offsets for it.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        self.store().check_writable("delete a topic")?;
        if !self.store().contains_topic(name) {
            return Err(Error::UnknownTopic(name.to_string()));
        }
        // Offsets first: a crash midway must not leave them to a topic created again later
        // (its consumers would skip its first records).
        if name != OFFSETS_TOPIC && self.store().topic_config(OFFSETS_TOPIC).is_ok() {
            self.groups()?.forget_topic(name)?;
        }
        self.store().delete_topic(name)
    }

    /// Names of every topic, internal ones (`__…`) included, sorted.
    pub fn topic_names(&self) -> Vec<String> {
        self.store().topic_names()
    }

    /// A topic's settings.
    pub fn topic_config(&self, name: &str) -> Result<TopicConfig> {
        self.store().topic_config(name)
    }

    /// Replaces a topic's settings with `config` (Kafka's IncrementalAlterConfigs: the caller
    /// reads [`Log::topic_config`], changes what it alters, and passes the whole). Validated as
    /// [`Log::create_topic`] validates; written durably to the topic's metadata (atomically: a
    /// crash leaves the old settings or the new, whole) before it applies to the live
    /// partitions, so a later open sees it. Retention, segment rolling, `compacted`,
    /// `delete_retention_ms` and `batch_bytes_max` take effect at the next append or cleaner
    /// round; `record_bytes_max` at the next producer that reads the topic's config.
    ///
    /// Fixed at creation, so [`Error::Config`] naming the field: `partitions` (keys would move),
    /// `schema` and `format` (records already written were encoded under them). Passing them
    /// unchanged is fine. An unknown topic is [`Error::UnknownTopic`]; an invalid value is
    /// [`Error::Config`], and nothing changes.
    pub fn alter_topic_config(&self, topic: &str, config: TopicConfig) -> Result<()> {
        self.store().alter_topic_config(topic, config)
    }

    /// Everything [`Log::alter_topic_config`] checks (the values, the fields fixed at creation,
    /// the topic, a writable log), without changing anything: IncrementalAlterConfigs'
    /// `validate_only`.
    pub fn check_topic_config_change(&self, topic: &str, config: &TopicConfig) -> Result<()> {
        self.store().check_topic_config_change(topic, config)
    }

    /// Kafka's DeleteRecords on one partition: moves its log start offset up to
    /// `before_offset` (-1: the high watermark) and returns the log start offset then (Kafka's
    /// low watermark). An offset at or below the current start changes nothing and returns the
    /// start; one above the high watermark, or below -1, is [`Error::OffsetOutOfRange`].
    ///
    /// The new start is durable (a checksummed checkpoint in the partition directory) before
    /// this returns, and holds at once: fetches below it are [`Error::OffsetOutOfRange`],
    /// [`Log::offsets`] and [`Log::describe_topic`] report it, read-only handles see it.
    /// Segments wholly below it are deleted; the one it falls in stays whole, so a fetch at the
    /// start may return a batch that begins earlier (readers skip records below their offset,
    /// as for any fetch). The last stable offset is never below the start: a transaction open
    /// across it holds read_committed readers at the start until it ends.
    pub fn delete_records(&self, topic: &str, partition: i32, before_offset: i64) -> Result<i64> {
        self.store().delete_records(topic, partition, before_offset)
    }

    /// Number of partitions of a topic.
    pub fn partition_count(&self, name: &str) -> Result<i32> {
        self.store().partition_count(name)
    }

    /// A topic's settings and per-partition offsets and sizes.
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        self.store().describe_topic(name)
    }

    /// Appends one encoded RecordBatch v2 (see [`crate::format::BatchBuilder`]) and returns its
    /// offsets once `acks` is met. The log assigns the offsets, checks the CRC, size limits and,
    /// for idempotent producers, the sequence.
    pub fn append(
        &self,
        topic: &str,
        partition: i32,
        batch: Vec<u8>,
        acks: Acks,
    ) -> Result<AppendInfo> {
        self.store().append(topic, partition, batch, acks)
    }

    /// Appends without waiting for the fsync: with acks=all, returns the group-commit round to
    /// pass to [`Log::wait_durable`] (so a producer can keep several batches in flight).
    pub fn append_deferred(
        &self,
        topic: &str,
        partition: i32,
        batch: Vec<u8>,
        acks: Acks,
    ) -> Result<(AppendInfo, Option<u64>)> {
        self.store().append_deferred(topic, partition, batch, acks)
    }

    /// Requests one group-commit round covering the active segments of these partitions (what
    /// was appended to them so far); returns the round to wait for.
    pub(crate) fn request_durable(&self, partitions: &[TopicPartition]) -> Result<u64> {
        self.store().request_durable(partitions)
    }

    /// Waits until a group-commit round from [`Log::append_deferred`] is durable.
    pub fn wait_durable(&self, round: u64) -> Result<()> {
        self.store().wait_durable(round)
    }

    /// True once a group-commit round is durable (or failed); never blocks.
    pub fn is_durable(&self, round: u64) -> bool {
        self.store().is_durable(round)
    }

    /// A counter that moves on every append; pass it to [`Log::wait_for_data`].
    pub fn data_version(&self) -> u64 {
        self.store().data_version()
    }

    /// Waits up to `timeout` for an append after `seen` (in this process; read-only handles
    /// simply sleep a little, then the caller re-reads).
    pub fn wait_for_data(&self, seen: u64, timeout: Duration) {
        self.store().wait_for_data(seen, timeout)
    }

    /// Whole batches from `offset` on (the first may begin earlier), about `max_bytes` of them but
    /// at least one when any is available; empty at the high watermark. Batches are not yet
    /// CRC-checked: readers call [`Batch::verify_crc`].
    pub fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Batch>> {
        self.store().fetch(topic, partition, offset, max_bytes)
    }

    /// Like [`Log::fetch`], at an isolation level: `ReadCommitted` stops at the last stable
    /// offset and lists the aborted transactions whose records the reader must skip (the
    /// [`crate::Consumer`] does this).
    pub fn fetch_isolated(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        isolation: IsolationLevel,
    ) -> Result<Fetched> {
        self.fetch_isolated_with(
            topic,
            partition,
            offset,
            max_bytes,
            isolation,
            &mut bytes::BytesMut::new(),
        )
    }

    /// [`Log::fetch_isolated`] reading into `buf`, whose allocation is reused once the batches
    /// of earlier fetches are dropped (a consumer keeps one).
    pub fn fetch_isolated_with(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        isolation: IsolationLevel,
        buf: &mut bytes::BytesMut,
    ) -> Result<Fetched> {
        self.store()
            .fetch_isolated_with(topic, partition, offset, max_bytes, isolation, buf)
    }

    /// (log start offset, high watermark) of a partition.
    pub fn offsets(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        self.store().offsets(topic, partition)
    }

    /// The earliest offset whose timestamp is ≥ `timestamp` (through the time index), or `None`
    /// if every record is older.
    pub fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<Option<i64>> {
        self.store()
            .offset_for_timestamp(topic, partition, timestamp)
    }

    /// Removes every record at or after `offset` (down to a batch boundary); returns the new end.
    /// An administrative operation: producers writing meanwhile see their offsets vanish.
    pub fn truncate_to(&self, topic: &str, partition: i32, offset: i64) -> Result<i64> {
        self.store().truncate_to(topic, partition, offset)
    }

    /// A fresh producer id (epoch 0) for an idempotent producer.
    pub fn init_producer_id(&self) -> Result<(i64, i16)> {
        self.store().check_writable("allocate a producer id")?;
        let ids = (self.inner.producer_ids.as_ref())
            .ok_or_else(|| Error::Internal("a writer without a producer-id allocator".into()))?;
        Ok((ids.allocate()?, 0))
    }

    /// Flushes every partition, writes producer snapshots and the clean-shutdown marker, and
    /// releases the directory. Later calls on any clone fail with [`Error::Closed`].
    pub fn close(&self) -> Result<()> {
        let store = self.store();
        if !store.is_writable() || store.is_closed() {
            return Ok(());
        }
        // Record completed transactions once their markers are durable, so the next open has
        // nothing to finish.
        if let Some(c) = &self.inner.txn {
            c.settle_all(true)?;
        }
        if !store.mark_closed() {
            return Ok(());
        }
        // Every background job first: the cleaner may be mid-swap, holding partition locks.
        self.inner.scheduler.stop();
        store.close_files()
    }

    pub(crate) fn txn_coordinator(&self) -> Result<Arc<TxnCoordinator>> {
        self.store().check_writable("use transactions")?;
        self.inner
            .txn
            .clone()
            .ok_or_else(|| Error::Internal("no transaction coordinator".into()))
    }

    /// Every transactional id the coordinator knows, with its state (writer handles only).
    pub fn transactions(&self) -> Vec<TxnDescription> {
        self.inner
            .txn
            .as_ref()
            .map(|c| c.describe())
            .unwrap_or_default()
    }

    /// Aborts every transaction open longer than its timeout, now (the background timer does
    /// this every `txn_check_interval_ms`); returns how many.
    pub fn abort_expired_transactions(&self) -> Result<usize> {
        self.txn_coordinator()?
            .abort_expired(self.inner.store.clock().now_ms())
    }

    /// The offset store, loaded (the offsets topic created and read) on first use.
    pub(crate) fn groups(&self) -> Result<Arc<OffsetStore>> {
        self.inner.offsets.loaded()?;
        Ok(self.inner.offsets.clone())
    }

    /// Commits offsets inside producer `producer_id`'s transaction; see
    /// [`OffsetStore::commit_in_txn`].
    pub(crate) fn commit_offsets_in_txn(
        &self,
        producer_id: i64,
        epoch: i16,
        group: &str,
        member: Option<(&str, i32)>,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<Option<(i64, Option<u64>)>> {
        self.groups()?
            .commit_in_txn((producer_id, epoch), group, member, offsets, false)
    }

    /// InitProducerId with a transactional id, for a Kafka client (transaction version 1: the
    /// epoch stays the same across its transactions). `current` is the (producer id, epoch) the
    /// client already has (InitProducerId v3+, KIP-360), or `None` (`(-1, -1)` counts as none).
    /// Fences older instances: an ongoing transaction is aborted, a prepared one completed;
    /// returns the (producer id, epoch) to use. With `current` given it must match the
    /// coordinator's (the epoch is then bumped), or the one a coordinator abort (timeout,
    /// fencing, recovery) or this client's previous init superseded (the current epoch is then
    /// returned, as Kafka's lastProducerEpoch allows); else [`TxnErrorKind::ProducerFenced`].
    /// A timeout outside `1..=txn_timeout_ms_max` is
    /// [`TxnErrorKind::InvalidTransactionTimeout`]; an empty id is [`Error::Config`].
    ///
    /// [`TxnErrorKind::ProducerFenced`]: crate::TxnErrorKind::ProducerFenced
    /// [`TxnErrorKind::InvalidTransactionTimeout`]: crate::TxnErrorKind::InvalidTransactionTimeout
    pub fn init_transactional_id(
        &self,
        txn_id: &str,
        timeout_ms: i64,
        current: Option<(i64, i16)>,
    ) -> Result<(i64, i16)> {
        self.txn_coordinator()?
            .init_client(txn_id, timeout_ms, current)
    }

    /// AddPartitionsToTxn: registers partitions in the transaction (opening one if none is),
    /// before any transactional batch to them is accepted. Refusals: an unknown id or a producer
    /// id not its own, `InvalidProducerIdMapping`; another epoch, `ProducerFenced`; a
    /// transaction completing, `ConcurrentTransactions`; an unknown topic or partition,
    /// [`Error::UnknownTopic`] / [`Error::UnknownPartition`] (and nothing is registered).
    pub fn add_partitions_to_txn(
        &self,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        self.txn_coordinator()?
            .add_partitions(txn_id, producer_id, epoch, partitions)
    }

    /// AddOffsetsToTxn: registers the group's offsets partition in the transaction, so that
    /// [`Log::txn_offset_commit`] may write to it. Refusals as for
    /// [`Log::add_partitions_to_txn`].
    pub fn add_offsets_to_txn(
        &self,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        group: &str,
    ) -> Result<()> {
        if group.is_empty() {
            return Err(Error::config("group", "must not be empty"));
        }
        self.groups()?;
        self.txn_coordinator()?.add_partitions(
            txn_id,
            producer_id,
            epoch,
            &[TopicPartition::new(OFFSETS_TOPIC, 0)],
        )
    }

    /// TxnOffsetCommit: commits `group`'s offsets inside the transaction; they are visible to
    /// [`Log::committed_offset`] once it commits, dropped if it aborts, and
    /// [`Log::offset_commit_pending`] meanwhile. `member` = (member id, generation) when the
    /// client sends group metadata (KIP-447, v3+): the commit is fenced by the group generation
    /// ([`Error::Group`] with `IllegalGeneration` or `UnknownMember`). Without it (or with
    /// `("", -1)`, what a client sends outside a group), the commit is accepted even while the
    /// group has members, as Kafka accepts it. Needs
    /// [`Log::add_offsets_to_txn`] first (else `InvalidTxnState`); other refusals as for
    /// [`Log::add_partitions_to_txn`].
    pub fn txn_offset_commit(
        &self,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        group: &str,
        member: Option<(&str, i32)>,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<()> {
        let member =
            member.filter(|&(member_id, generation)| !member_id.is_empty() || generation >= 0);
        let coordinator = self.txn_coordinator()?;
        coordinator.check_registered(
            txn_id,
            producer_id,
            epoch,
            &TopicPartition::new(OFFSETS_TOPIC, 0),
        )?;
        // Made durable by the end of the transaction, with its decision.
        self.groups()?
            .commit_in_txn((producer_id, epoch), group, member, offsets, true)?;
        Ok(())
    }

    /// EndTxn: commits or aborts the transaction; the epoch stays the same afterwards
    /// (transaction version 1) and the producer's sequences continue. The transaction's data is
    /// durable with the decision, whatever acks its produce requests used, before this returns.
    /// Repeating an end that completed succeeds; ending an empty transaction, or aborting a
    /// committed one, is `InvalidTxnState`; other refusals as for
    /// [`Log::add_partitions_to_txn`].
    pub fn end_txn(&self, txn_id: &str, producer_id: i64, epoch: i16, commit: bool) -> Result<()> {
        self.txn_coordinator()?
            .end_client(txn_id, producer_id, epoch, commit)
    }

    /// True while a transactional offset commit for this group and partition awaits its
    /// transaction's end (OffsetFetch's requireStable answers UNSTABLE_OFFSET_COMMIT then).
    pub fn offset_commit_pending(&self, group: &str, partition: &TopicPartition) -> bool {
        self.inner.offsets.is_pending(group, partition)
    }

    /// The offset `group` committed for a partition, if any.
    pub fn committed_offset(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>> {
        Ok(self.committed(group, topic, partition)?.map(|c| c.offset))
    }

    /// A committed offset with its metadata.
    pub fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<CommittedOffset>> {
        self.inner
            .offsets
            .committed(group, &TopicPartition::new(topic, partition))
    }

    /// Commits offsets (the next offset to read, per partition) for `group`. With `member`
    /// (member id, generation) the commit is fenced: refused unless that member holds the
    /// group's current generation. Without, it is a manual commit, refused while the group has
    /// active members.
    pub fn commit_offsets(
        &self,
        group: &str,
        member: Option<(&str, i32)>,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<()> {
        self.store().check_writable("commit offsets")?;
        self.inner.offsets.commit(group, member, offsets)
    }

    /// Every group with committed offsets or live members, sorted.
    pub fn list_groups(&self) -> Result<Vec<String>> {
        self.inner.offsets.names()
    }

    /// A group's members (those of this process's coordinator), committed offsets and lag.
    pub fn describe_group(&self, group: &str) -> Result<GroupInfo> {
        self.inner.offsets.describe(group)
    }

    /// Kafka's JoinGroup for a client-assigned ("classic") member; `member_id` is empty for a
    /// new one. Blocks (the server calls it from tokio's `spawn_blocking`) until the rebalance
    /// completes; see [`GroupCoordinator::join_classic`](crate::group::GroupCoordinator::join_classic).
    pub fn join_group(
        &self,
        group: &str,
        member_id: &str,
        require_member_id: bool,
        member: &ClassicMember,
    ) -> Result<JoinOutcome> {
        self.store().check_writable("join a group")?;
        let outcome = self.inner.offsets.coordinator.join_classic(
            group,
            member_id,
            require_member_id,
            member,
        )?;
        if matches!(outcome, JoinOutcome::Joined(_)) {
            self.publish_quietly(group);
        }
        Ok(outcome)
    }

    /// Kafka's SyncGroup: the leader passes every member's assignment bytes, the others none.
    /// Blocks until the leader's assignment arrives, then returns the caller's bytes; see
    /// [`GroupCoordinator::sync`](crate::group::GroupCoordinator::sync).
    pub fn sync_group(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        assignments: Vec<(String, Vec<u8>)>,
    ) -> Result<Vec<u8>> {
        self.store().check_writable("sync a group")?;
        let assignment =
            self.inner
                .offsets
                .coordinator
                .sync(group, member_id, generation, assignments)?;
        self.publish_quietly(group);
        Ok(assignment)
    }

    /// Kafka's Heartbeat: `Ok` while the member may keep its partitions; see
    /// [`GroupCoordinator::heartbeat`](crate::group::GroupCoordinator::heartbeat).
    pub fn heartbeat_group(&self, group: &str, member_id: &str, generation: i32) -> Result<()> {
        self.inner
            .offsets
            .coordinator
            .heartbeat(group, member_id, generation)
    }

    /// Kafka's LeaveGroup: the member leaves at once and the rest rebalance.
    pub fn leave_group(&self, group: &str, member_id: &str) -> Result<()> {
        self.inner.offsets.coordinator.leave(group, member_id)?;
        self.publish_quietly(group);
        Ok(())
    }

    /// Kafka's DeleteGroups: deletes a group without members and its committed offsets,
    /// durably. Errors: [`GroupErrorKind::NonEmptyGroup`](crate::GroupErrorKind::NonEmptyGroup),
    /// [`GroupErrorKind::UnknownGroup`](crate::GroupErrorKind::UnknownGroup).
    pub fn delete_group(&self, group: &str) -> Result<()> {
        self.store().check_writable("delete a group")?;
        self.inner.offsets.delete_group(group)
    }

    /// A group as Kafka's DescribeGroups shows it, embedded consumers' groups included.
    /// `None` if the coordinator has never seen the group (it may still have committed offsets).
    pub fn describe_group_members(&self, group: &str) -> Result<Option<GroupMembers>> {
        Ok(self.inner.offsets.coordinator.describe_members(group))
    }

    /// Publishes the group's membership for other processes; a failure only makes `weir groups
    /// describe` elsewhere show older membership, so it must not fail the group call.
    fn publish_quietly(&self, group: &str) {
        if let Err(e) = self.publish_group(group) {
            eprintln!("weir: publishing the membership of group '{group}' failed: {e}");
        }
    }

    /// Writes the group's membership where other processes (`weir groups describe`) can read
    /// it; consumers call this when an assignment changes.
    pub(crate) fn publish_group(&self, group: &str) -> Result<()> {
        self.inner.offsets.publish(group)
    }
}
