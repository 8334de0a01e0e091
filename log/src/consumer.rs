//! The consumer: reads assigned partitions from positions it tracks, by offset, timestamp,
//! beginning or end; in a group, it joins, heartbeats, rebalances (eager: it gives up every
//! partition before the group hands out new ones) and commits offsets.
//!
//! ```
//! use std::time::Duration;
//! use weir_log::{Consumer, ConsumerConfig, Log, LogConfig, Producer, ProducerConfig, ProducerRecord, TopicConfig};
//! # let dir = tempfile::tempdir().unwrap();
//! let log = Log::open(dir.path(), LogConfig::default())?;
//! log.create_topic("t", TopicConfig::default())?;
//! let producer = Producer::new(&log, ProducerConfig::default())?;
//! producer.send(ProducerRecord::new("t", b"hello"))?;
//! producer.flush()?;
//! let mut consumer = Consumer::new(&log, ConsumerConfig::default())?;
//! consumer.assign(&[("t", 0)])?;
//! let batches = consumer.poll(Duration::from_secs(1))?;
//! let record = batches[0].records().next().unwrap()?;
//! assert_eq!(record.value.as_deref(), Some(&b"hello"[..]));
//! # Ok::<(), weir_log::Error>(())
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::AbortedTxn;
use crate::format::{Batch, Record};
use crate::group::{AssignmentStrategy, MemberConfig};
use crate::{Error, GroupErrorKind, IsolationLevel, Log, Result, TopicPartition};

/// Where to start when a partition has no committed offset, or the position fell out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The log start.
    #[default]
    Earliest,
    /// The high watermark.
    Latest,
    /// Fail with the out-of-range error.
    None,
}

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Group to join (with `subscribe`) or to commit offsets for (with `assign`).
    pub group: Option<String>,
    /// Names the member in `groups describe`.
    pub client_id: String,
    /// Start position without a committed offset.
    pub auto_offset_reset: OffsetReset,
    /// Bytes fetched from one partition per poll (at least one batch is always returned).
    pub fetch_bytes_max: usize,
    /// Bytes returned by one poll across partitions.
    pub poll_bytes_max: usize,
    /// A member silent this long is removed from the group.
    pub session_timeout_ms: i64,
    /// How long a rebalance waits for every member to rejoin.
    pub rebalance_timeout_ms: i64,
    /// How often `poll` heartbeats.
    pub heartbeat_interval_ms: u64,
    /// How the group splits partitions.
    pub strategy: AssignmentStrategy,
    /// Commit positions every `auto_commit_interval_ms` during `poll`, before a rebalance and on
    /// close.
    pub auto_commit: bool,
    /// See `auto_commit`.
    pub auto_commit_interval_ms: u64,
    /// Transaction visibility.
    pub isolation: IsolationLevel,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group: None,
            client_id: "weir-consumer".into(),
            auto_offset_reset: OffsetReset::Earliest,
            fetch_bytes_max: 1 << 20,
            poll_bytes_max: 8 << 20,
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            heartbeat_interval_ms: 1_000,
            strategy: AssignmentStrategy::Range,
            auto_commit: true,
            auto_commit_interval_ms: 5_000,
            isolation: IsolationLevel::ReadCommitted,
        }
    }
}

impl ConsumerConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.fetch_bytes_max < 1024 {
            return Err(Error::config("fetch_bytes_max", "must be at least 1024"));
        }
        if self.poll_bytes_max < self.fetch_bytes_max {
            return Err(Error::config(
                "poll_bytes_max",
                "must be at least fetch_bytes_max",
            ));
        }
        if self.session_timeout_ms <= 0 || self.rebalance_timeout_ms <= 0 {
            return Err(Error::config(
                "session_timeout_ms",
                "timeouts must be positive",
            ));
        }
        if self.heartbeat_interval_ms as i64 >= self.session_timeout_ms {
            return Err(Error::config(
                "heartbeat_interval_ms",
                "must be below session_timeout_ms",
            ));
        }
        if let Some(g) = &self.group
            && g.is_empty()
        {
            return Err(Error::config("group", "must not be empty"));
        }
        Ok(())
    }
}

/// One batch handed out by `poll`. Records below the consumer's position when it was fetched
/// are skipped by [`ConsumerBatch::records`].
#[derive(Debug, Clone)]
pub struct ConsumerBatch {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// The batch as stored.
    pub batch: Batch,
    skip_below: i64,
    decompressed_bytes_max: usize,
}

impl ConsumerBatch {
    /// The batch's records from the consumer's position on.
    pub fn records(&self) -> impl Iterator<Item = Result<Record>> + '_ {
        let skip = self.skip_below;
        let iter = self.batch.records(self.decompressed_bytes_max);
        let (first, rest) = match iter {
            Ok(it) => (None, Some(it)),
            Err(e) => (Some(Err(e)), None),
        };
        first
            .into_iter()
            .chain(rest.into_iter().flatten())
            .filter(move |r| r.as_ref().map_or(true, |r| r.offset >= skip))
    }

    /// Calls `f` with each record from the consumer's position on, borrowed from the batch (no
    /// allocation per record, see [`RecordIter::next_ref`](crate::format::RecordIter::next_ref));
    /// stops early when `f` returns `Ok(false)`. A malformed record is an error, as in
    /// [`ConsumerBatch::records`].
    pub fn for_each_ref<E: From<Error>>(
        &self,
        mut f: impl FnMut(crate::format::RecordRef<'_>) -> std::result::Result<bool, E>,
    ) -> std::result::Result<(), E> {
        let mut records = self.batch.records(self.decompressed_bytes_max)?;
        while let Some(record) = records.next_ref() {
            let record = record?;
            if record.offset >= self.skip_below && !f(record)? {
                break;
            }
        }
        Ok(())
    }

    /// Offset of the first record [`ConsumerBatch::records`] yields (the consumer's position when
    /// fetched, or the batch start).
    pub fn start_offset(&self) -> i64 {
        self.skip_below.max(self.batch.header().base_offset)
    }

    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.batch.header().last_offset()
    }
}

/// Skips the records of aborted transactions, as Kafka's fetcher does: a producer's transactional
/// batches are dropped from its aborted transaction's first offset until its ABORT marker.
struct AbortFilter {
    /// Sorted by first offset.
    pending: std::collections::VecDeque<AbortedTxn>,
    /// Producers inside an aborted transaction at the current batch.
    active: std::collections::HashSet<i64>,
    /// Offsets of the ABORT markers.
    markers: std::collections::HashSet<i64>,
}

impl AbortFilter {
    fn new(mut aborted: Vec<AbortedTxn>) -> AbortFilter {
        aborted.sort_by_key(|a| a.first_offset);
        AbortFilter {
            markers: aborted.iter().map(|a| a.last_offset).collect(),
            pending: aborted.into(),
            active: Default::default(),
        }
    }

    /// True when the batch goes to the user: not a control batch, not aborted.
    fn keep(&mut self, h: &crate::format::BatchHeader) -> bool {
        while let Some(a) = self.pending.front()
            && a.first_offset <= h.last_offset()
        {
            self.active.insert(a.producer_id);
            self.pending.pop_front();
        }
        if h.is_control() {
            if self.markers.contains(&h.base_offset) {
                self.active.remove(&h.producer_id);
            }
            return false;
        }
        !(h.is_transactional() && self.active.contains(&h.producer_id))
    }
}

struct Membership {
    group: String,
    member_id: Option<String>,
    generation: i32,
    topics: Vec<String>,
    /// Joined, waiting for the group to hand out assignments.
    joining: bool,
    last_heartbeat: Instant,
}

/// What a rebalance listener hears, as Kafka's `ConsumerRebalanceListener` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    /// These partitions are given up (after their offsets were committed, with auto-commit).
    /// Until the next `Assigned`, this consumer owns nothing.
    Revoked(Vec<TopicPartition>),
    /// These partitions are now this consumer's, for the given generation.
    Assigned {
        /// The group generation.
        generation: i32,
        /// The partitions assigned, all of them (eager rebalancing: nothing is kept over).
        partitions: Vec<TopicPartition>,
    },
}

/// Called from inside `poll` on every rebalance.
pub type RebalanceListener = Box<dyn FnMut(&RebalanceEvent) + Send>;

/// A consumer of an embedded [`Log`].
pub struct Consumer {
    log: Log,
    config: ConsumerConfig,
    assignment: Vec<TopicPartition>,
    positions: HashMap<TopicPartition, i64>,
    membership: Option<Membership>,
    next_partition: usize,
    last_commit: Instant,
    listener: Option<RebalanceListener>,
    /// Fetch buffer, reused once the batches read into it are dropped.
    buf: bytes::BytesMut,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group", &self.config.group)
            .field("assignment", &self.assignment)
            .finish()
    }
}

impl Consumer {
    /// A consumer with nothing assigned yet.
    pub fn new(log: &Log, config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        Ok(Consumer {
            log: log.clone(),
            config,
            assignment: Vec::new(),
            positions: HashMap::new(),
            membership: None,
            next_partition: 0,
            last_commit: Instant::now(),
            listener: None,
            buf: bytes::BytesMut::new(),
        })
    }

    fn tp(&self, topic: &str, partition: i32) -> Result<TopicPartition> {
        let n = self.log.partition_count(topic)?;
        if partition < 0 || partition >= n {
            return Err(Error::UnknownPartition {
                topic: topic.to_string(),
                partition,
            });
        }
        Ok(TopicPartition::new(topic, partition))
    }

    /// Reads exactly these partitions (no group management). Positions start from the group's
    /// committed offsets if a group is configured, else per `auto_offset_reset`.
    ///
    /// Takes [`TopicPartition`]s or `(&str, i32)` pairs: `consumer.assign(&[("t", 0), ("t", 1)])`.
    pub fn assign<P: Clone + Into<TopicPartition>>(&mut self, partitions: &[P]) -> Result<()> {
        if self.membership.is_some() {
            return Err(Error::config(
                "assign",
                "this consumer already subscribed to a group",
            ));
        }
        let mut tps = Vec::with_capacity(partitions.len());
        for tp in partitions {
            let tp: TopicPartition = tp.clone().into();
            tps.push(self.tp(tp.topic(), tp.partition())?);
        }
        self.positions.retain(|k, _| tps.contains(k));
        self.assignment = tps;
        Ok(())
    }

    /// Every partition of `topic`.
    pub fn assign_topic(&mut self, topic: &str) -> Result<()> {
        let n = self.log.partition_count(topic)?;
        let parts: Vec<TopicPartition> = (0..n).map(|p| TopicPartition::new(topic, p)).collect();
        self.assign(&parts)
    }

    /// Sets the callback told of partitions revoked and assigned by rebalances.
    pub fn set_rebalance_listener(&mut self, listener: RebalanceListener) {
        self.listener = Some(listener);
    }

    fn revoke_all(&mut self) {
        let revoked = self.assignment();
        self.assignment.clear();
        self.positions.clear();
        if let Some(l) = &mut self.listener {
            l(&RebalanceEvent::Revoked(revoked));
        }
    }

    /// Joins the configured group for these topics; `poll` receives the assignment.
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        let group = self
            .config
            .group
            .clone()
            .ok_or_else(|| Error::config("group", "subscribe needs a group"))?;
        if !self.assignment.is_empty() && self.membership.is_none() {
            return Err(Error::config(
                "subscribe",
                "this consumer already has a manual assignment",
            ));
        }
        for t in topics {
            self.log.partition_count(t)?;
        }
        let mut m = Membership {
            group,
            member_id: None,
            generation: -1,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            joining: false,
            last_heartbeat: Instant::now(),
        };
        self.join(&mut m)?;
        self.membership = Some(m);
        Ok(())
    }

    fn member_config(&self, topics: &[String]) -> MemberConfig {
        MemberConfig {
            client_id: self.config.client_id.clone(),
            topics: topics.to_vec(),
            session_timeout_ms: self.config.session_timeout_ms,
            rebalance_timeout_ms: self.config.rebalance_timeout_ms,
            strategy: self.config.strategy,
        }
    }

    fn join(&self, m: &mut Membership) -> Result<()> {
        let groups = self.log.groups()?;
        let id = groups.coordinator.join(
            &m.group,
            m.member_id.as_deref(),
            &self.member_config(&m.topics),
        )?;
        m.member_id = Some(id);
        m.joining = true;
        m.last_heartbeat = Instant::now();
        Ok(())
    }

    /// Drives the group protocol: heartbeats, and on a rebalance gives up the assignment
    /// (committing first), rejoins and waits (up to `wait`) for the new assignment.
    fn drive_group(&mut self, wait: Duration) -> Result<()> {
        let Some(mut m) = self.membership.take() else {
            return Ok(());
        };
        let r = self.drive_group_inner(&mut m, wait);
        self.membership = Some(m);
        r
    }

    fn drive_group_inner(&mut self, m: &mut Membership, wait: Duration) -> Result<()> {
        let groups = self.log.groups()?;
        if !m.joining
            && m.last_heartbeat.elapsed()
                >= Duration::from_millis(self.config.heartbeat_interval_ms)
        {
            let member_id = m.member_id.clone().unwrap_or_default();
            match groups
                .coordinator
                .heartbeat(&m.group, &member_id, m.generation)
            {
                Ok(()) => m.last_heartbeat = Instant::now(),
                Err(Error::Group { reason, .. }) => {
                    if matches!(reason, GroupErrorKind::RebalanceInProgress)
                        && self.config.auto_commit
                    {
                        // Commit while our generation is still accepted, then give everything up.
                        let _ = self.commit_positions(Some((&member_id, m.generation)), &m.group);
                    }
                    self.revoke_all();
                    if !matches!(reason, GroupErrorKind::RebalanceInProgress) {
                        m.member_id = None;
                    }
                    self.join(m)?;
                }
                Err(e) => return Err(e),
            }
        }
        if m.joining {
            let member_id = m.member_id.clone().unwrap_or_default();
            let log = self.log.clone();
            let partitions_of = move |t: &str| log.partition_count(t).ok();
            match groups
                .coordinator
                .await_assignment(&m.group, &member_id, wait, &partitions_of)
            {
                Ok(Some(a)) => {
                    m.generation = a.generation;
                    m.joining = false;
                    m.last_heartbeat = Instant::now();
                    let partitions: Vec<TopicPartition> = a
                        .partitions
                        .iter()
                        .cloned()
                        .map(TopicPartition::from)
                        .collect();
                    self.assignment = partitions.clone();
                    self.positions.clear();
                    let _ = self.log.publish_group(&m.group);
                    if let Some(l) = &mut self.listener {
                        l(&RebalanceEvent::Assigned {
                            generation: a.generation,
                            partitions,
                        });
                    }
                }
                Ok(None) => {}
                Err(Error::Group { .. }) => {
                    self.revoke_all();
                    m.member_id = None;
                    self.join(m)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The partitions this consumer reads now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.clone()
    }

    /// Group, member id and generation, for offsets committed in a transaction
    /// ([`crate::TransactionalProducer::send_offsets`]); `None` without a group.
    pub fn group_metadata(&self) -> Option<crate::GroupMetadata> {
        let group = self.config.group.clone()?;
        Some(match &self.membership {
            Some(m) => crate::GroupMetadata {
                group,
                member_id: m.member_id.clone(),
                generation: m.generation,
            },
            None => crate::GroupMetadata {
                group,
                member_id: None,
                generation: -1,
            },
        })
    }

    /// The group generation of the current assignment (-1 outside a group).
    pub fn generation(&self) -> i32 {
        self.membership
            .as_ref()
            .map_or(-1, |m| if m.joining { -1 } else { m.generation })
    }

    /// Next offset to be read from a partition, once known.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.positions
            .get(&TopicPartition::new(topic, partition))
            .copied()
    }

    fn assigned(&self, topic: &str, partition: i32) -> Result<TopicPartition> {
        self.assignment
            .iter()
            .find(|tp| tp.topic() == topic && tp.partition() == partition)
            .cloned()
            .ok_or_else(|| {
                Error::config(
                    "partition",
                    format!("{topic}-{partition} is not assigned to this consumer"),
                )
            })
    }

    /// Reads `topic`-`partition` from `offset` next.
    pub fn seek(&mut self, topic: &str, partition: i32, offset: i64) -> Result<()> {
        let tp = self.assigned(topic, partition)?;
        let (start, end) = self.log.offsets(topic, partition)?;
        if offset < start || offset > end {
            return Err(Error::OffsetOutOfRange {
                topic: topic.to_string(),
                partition,
                offset,
                start,
                end,
            });
        }
        self.positions.insert(tp, offset);
        Ok(())
    }

    /// Every assigned partition from its first offset.
    pub fn seek_to_beginning(&mut self) -> Result<()> {
        for tp in self.assignment.clone() {
            let (start, _) = self.log.offsets(tp.topic(), tp.partition())?;
            self.positions.insert(tp, start);
        }
        Ok(())
    }

    /// Every assigned partition from its high watermark (only new records).
    pub fn seek_to_end(&mut self) -> Result<()> {
        for tp in self.assignment.clone() {
            let (_, end) = self.log.offsets(tp.topic(), tp.partition())?;
            self.positions.insert(tp, end);
        }
        Ok(())
    }

    /// Every assigned partition from its first record with timestamp ≥ `timestamp` (via the time
    /// index), or its end if there is none.
    pub fn seek_to_timestamp(&mut self, timestamp: i64) -> Result<()> {
        for tp in self.assignment.clone() {
            let off = match self
                .log
                .offset_for_timestamp(tp.topic(), tp.partition(), timestamp)?
            {
                Some(o) => o,
                None => self.log.offsets(tp.topic(), tp.partition())?.1,
            };
            self.positions.insert(tp, off);
        }
        Ok(())
    }

    fn initial_position(&self, tp: &TopicPartition) -> Result<i64> {
        if let Some(g) = &self.config.group
            && let Some(c) = self.log.committed_offset(g, tp.topic(), tp.partition())?
        {
            return Ok(c);
        }
        self.reset_position(tp, None)
    }

    fn reset_position(&self, tp: &TopicPartition, err: Option<Error>) -> Result<i64> {
        let (start, end) = self.log.offsets(tp.topic(), tp.partition())?;
        match self.config.auto_offset_reset {
            OffsetReset::Earliest => Ok(start),
            OffsetReset::Latest => Ok(end),
            OffsetReset::None => Err(err.unwrap_or_else(|| {
                Error::config("auto_offset_reset", format!("no committed offset for {tp}"))
            })),
        }
    }

    /// Waits up to `timeout` for records; returns whole batches (control batches never), at most
    /// about `poll_bytes_max` of them, and moves positions past them.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerBatch>> {
        let deadline = Instant::now() + timeout;
        loop {
            self.drive_group(deadline.saturating_duration_since(Instant::now()))?;
            self.maybe_auto_commit();
            let seen = self.log.data_version();
            let out = self.fetch_once()?;
            if !out.is_empty() {
                return Ok(out);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(out);
            }
            let step = left.min(Duration::from_millis(
                self.config.heartbeat_interval_ms.max(1),
            ));
            self.log.wait_for_data(seen, step);
        }
    }

    fn fetch_once(&mut self) -> Result<Vec<ConsumerBatch>> {
        let mut out = Vec::new();
        let n = self.assignment.len();
        let mut bytes = 0usize;
        let max = self.log.config().decompressed_bytes_max;
        for i in 0..n {
            if bytes >= self.config.poll_bytes_max {
                break;
            }
            let tp = self.assignment[(self.next_partition + i) % n].clone();
            let pos = match self.positions.get(&tp) {
                Some(p) => *p,
                None => {
                    let p = self.initial_position(&tp)?;
                    self.positions.insert(tp.clone(), p);
                    p
                }
            };
            let want = self
                .config
                .fetch_bytes_max
                .min(self.config.poll_bytes_max - bytes);
            let fetched = match self.log.fetch_isolated_with(
                tp.topic(),
                tp.partition(),
                pos,
                want,
                self.config.isolation,
                &mut self.buf,
            ) {
                Ok(f) => f,
                Err(e @ Error::OffsetOutOfRange { .. }) => {
                    let p = self.reset_position(&tp, Some(e))?;
                    self.positions.insert(tp.clone(), p);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut next = pos;
            let mut aborted = AbortFilter::new(fetched.aborted);
            for b in fetched.batches {
                let last = b.header().last_offset();
                if last < next {
                    continue;
                }
                bytes += b.bytes().len();
                let skip_below = next;
                next = last + 1;
                if aborted.keep(b.header()) {
                    out.push(ConsumerBatch {
                        topic: tp.shared_topic(),
                        partition: tp.partition(),
                        batch: b,
                        skip_below,
                        decompressed_bytes_max: max,
                    });
                }
            }
            self.positions.insert(tp, next);
        }
        if n > 0 {
            self.next_partition = (self.next_partition + 1) % n;
        }
        Ok(out)
    }

    fn maybe_auto_commit(&mut self) {
        if !self.config.auto_commit || self.config.group.is_none() {
            return;
        }
        if self.last_commit.elapsed() >= Duration::from_millis(self.config.auto_commit_interval_ms)
        {
            let _ = self.commit_sync();
        }
    }

    fn commit_positions(&self, member: Option<(&str, i32)>, group: &str) -> Result<()> {
        let offsets: Vec<(TopicPartition, i64)> = self
            .assignment
            .iter()
            .filter_map(|tp| self.positions.get(tp).map(|o| (tp.clone(), *o)))
            .collect();
        self.log.groups()?.commit(group, member, &offsets)
    }

    /// Commits the current positions of every assigned partition for the group. In a group,
    /// fenced (an error) if a rebalance has moved the group to a newer generation.
    pub fn commit_sync(&mut self) -> Result<()> {
        let offsets: Vec<(TopicPartition, i64)> = self
            .assignment
            .iter()
            .filter_map(|tp| self.positions.get(tp).map(|o| (tp.clone(), *o)))
            .collect();
        self.commit_offsets(&offsets)
    }

    /// Commits these offsets (each the next offset to read) for the group, fenced like
    /// [`Consumer::commit_sync`]. For committing exactly what was processed.
    pub fn commit_offsets(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        let group = self
            .config
            .group
            .clone()
            .ok_or_else(|| Error::config("group", "committing offsets needs a group"))?;
        let member = self
            .membership
            .as_ref()
            .map(|m| (m.member_id.clone().unwrap_or_default(), m.generation));
        self.log.groups()?.commit(
            &group,
            member.as_ref().map(|(id, g)| (id.as_str(), *g)),
            offsets,
        )?;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Lag per assigned partition: high watermark minus position (or committed offset).
    pub fn lag(&self) -> Result<Vec<(TopicPartition, i64)>> {
        let mut out = Vec::new();
        for tp in &self.assignment {
            let (_, end) = self.log.offsets(tp.topic(), tp.partition())?;
            let pos = match self.positions.get(tp) {
                Some(p) => *p,
                None => self.initial_position(tp)?,
            };
            out.push((tp.clone(), end - pos));
        }
        Ok(out)
    }

    /// Commits (with auto-commit) and leaves the group.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let mut result = Ok(());
        if self.config.auto_commit
            && self.config.group.is_some()
            && !self.membership.as_ref().is_some_and(|m| m.joining)
        {
            result = self.commit_sync();
        }
        if let Some(m) = self.membership.take()
            && let Some(id) = &m.member_id
            && let Ok(g) = self.log.groups()
        {
            let _ = g.coordinator.leave(&m.group, id);
            let _ = self.log.publish_group(&m.group);
        }
        if !self.assignment.is_empty() {
            self.revoke_all();
        }
        result
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
