//! The offset store: consumer groups as the log sees them. It owns the in-process group
//! coordinator (membership, generations, assignment; see [`crate::group`]) and the committed
//! offsets, kept in the compacted internal topic `__consumer_offsets` and loaded from it on first
//! use. It works on the [`TopicStore`] it is given, never on the log that owns it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::config::TopicConfig;
use crate::format::{BatchBuilder, BatchOptions};
use crate::group::{GroupCoordinator, GroupDescription};
use crate::topic_partition::TopicPartition;
use crate::topic_store::{Acks, TopicStore};
use crate::{Error, Result, published_groups};

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

#[derive(Serialize, Deserialize)]
struct OffsetValue {
    offset: i64,
    metadata: String,
    generation: i32,
    commit_ms: i64,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommittedOffset {
    /// The next offset the group will read.
    pub offset: i64,
    /// Free text stored with it.
    pub metadata: String,
    /// Generation of the member that committed (-1 outside group management).
    pub generation: i32,
    /// When, in ms since the epoch.
    pub commit_ms: i64,
}

/// Per-partition progress of a group, as `groups describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    /// The topic read.
    pub topic: String,
    /// The partition of `topic` read.
    pub partition: i32,
    /// The next offset the group will read there.
    pub committed: i64,
    /// The next offset the partition will write.
    pub high_watermark: i64,
    /// Records written but not yet consumed: `high_watermark - committed`, never below 0.
    pub lag: i64,
}

/// What `describe_group` reports.
#[derive(Debug, Clone)]
pub struct GroupInfo {
    /// The group's name.
    pub name: String,
    /// Members, generation and state: live from this process's coordinator, or as the writer
    /// process last published them (see `membership_published`).
    pub membership: Option<GroupDescription>,
    /// When `membership` comes from the writer's published file: (its pid, ms since the epoch).
    pub membership_published: Option<(u32, i64)>,
    /// Committed offsets and lag per partition.
    pub offsets: Vec<PartitionLag>,
}

/// (group, topic, partition): the key of a commit, as the offsets topic stores it (JSON).
type OffsetKey = (String, String, i32);

/// An offset committed in an open transaction: its key, value and position in the offsets topic
/// (`i64::MAX` until the append returns it).
type PendingEntry = (OffsetKey, CommittedOffset, i64);

fn offset_key(group: &str, tp: &TopicPartition) -> OffsetKey {
    (group.to_string(), tp.topic().to_string(), tp.partition())
}

/// A committed offset and the position of the record that committed it in the offsets topic.
/// A transaction's offsets, made visible when it commits, replace only offsets committed before
/// them in the topic (Kafka's rule): a plain commit made while the transaction was open wins
/// over it, in memory and after a restart alike.
#[derive(Debug, Clone)]
struct Entry {
    committed: CommittedOffset,
    written_at: i64,
}

/// Applies an offset written at `written_at` in the offsets topic (a commit, or a committed
/// transaction's) unless a record later in the topic already set the key.
fn apply_entry(
    map: &mut BTreeMap<OffsetKey, Entry>,
    key: OffsetKey,
    value: Option<CommittedOffset>,
    written_at: i64,
) {
    if map.get(&key).is_some_and(|e| e.written_at > written_at) {
        return;
    }
    match value {
        Some(committed) => {
            map.insert(
                key,
                Entry {
                    committed,
                    written_at,
                },
            );
        }
        None => {
            map.remove(&key);
        }
    }
}

/// See the module docs.
pub(crate) struct OffsetStore {
    store: Arc<TopicStore>,
    pub(crate) coordinator: GroupCoordinator,
    /// Set once the offsets topic was created (by a writer) and read; until then every call
    /// loads first, and a failed load is tried again by the next call.
    loaded: Mutex<bool>,
    offsets: RwLock<BTreeMap<OffsetKey, Entry>>,
    /// Offsets committed inside open transactions, by producer id, with their records'
    /// positions in the offsets topic: visible once committed.
    pending: Mutex<std::collections::HashMap<i64, Vec<PendingEntry>>>,
    /// Held while a group's membership is described and written: members of a group sync from
    /// several threads at once, and each write must describe the group no earlier than the
    /// one before it (and they share one temporary file name).
    publishing: Mutex<()>,
}

impl OffsetStore {
    /// A store of the committed offsets in `store`, loaded on first use.
    pub(crate) fn new(store: Arc<TopicStore>) -> OffsetStore {
        let clock = store.clock().clone();
        OffsetStore {
            store,
            coordinator: GroupCoordinator::new(clock),
            loaded: Mutex::new(false),
            publishing: Mutex::new(()),
            offsets: RwLock::new(BTreeMap::new()),
            pending: Default::default(),
        }
    }

    /// Creates the offsets topic if needed and loads every committed offset from it, once;
    /// every use of the store goes through here first.
    pub(crate) fn loaded(&self) -> Result<&OffsetStore> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if *loaded {
            return Ok(self);
        }
        if self.store.is_writable() && self.store.topic_config(OFFSETS_TOPIC).is_err() {
            self.store.create_topic(
                OFFSETS_TOPIC,
                TopicConfig {
                    partitions: 1,
                    compacted: true,
                    retention_ms: None,
                    ..TopicConfig::default()
                },
            )?;
        }
        self.reload()?;
        *loaded = true;
        Ok(self)
    }

    /// Re-reads the offsets topic (read-only handles call this to see new commits).
    fn reload(&self) -> Result<()> {
        let Ok((start, end)) = self.store.offsets(OFFSETS_TOPIC, 0) else {
            return Ok(()); // no group ever committed
        };
        let mut map = BTreeMap::new();
        let mut in_txn: std::collections::HashMap<
            i64,
            Vec<(OffsetKey, Option<CommittedOffset>, i64)>,
        > = Default::default();
        let mut pos = start;
        let max = self.store.config().decompressed_bytes_max;
        while pos < end {
            let batches = self.store.fetch(OFFSETS_TOPIC, 0, pos, 1 << 20)?;
            if batches.is_empty() {
                break;
            }
            for b in &batches {
                pos = b.header().last_offset() + 1;
                let h = *b.header();
                if h.is_control() {
                    let Some(r) = b.records(max)?.next().transpose()? else {
                        continue;
                    };
                    let (Some(k), Some(v)) = (r.key.as_ref(), r.value.as_ref()) else {
                        continue;
                    };
                    let Ok(marker) = crate::format::ControlRecord::decode(k, v) else {
                        continue;
                    };
                    let entries = in_txn.remove(&h.producer_id).unwrap_or_default();
                    if marker.kind == crate::format::ControlType::Commit {
                        for (k, v, written_at) in entries {
                            apply_entry(&mut map, k, v, written_at);
                        }
                    }
                    continue;
                }
                for r in b.records(max)? {
                    let r = r?;
                    let Some(key) = r.key.as_ref() else { continue };
                    let Ok(key) = serde_json::from_slice::<OffsetKey>(key) else {
                        continue;
                    };
                    if h.is_transactional() {
                        let value = r
                            .value
                            .as_ref()
                            .and_then(|v| serde_json::from_slice::<OffsetValue>(v).ok())
                            .map(|v| CommittedOffset {
                                offset: v.offset,
                                metadata: v.metadata,
                                generation: v.generation,
                                commit_ms: v.commit_ms,
                            });
                        in_txn
                            .entry(h.producer_id)
                            .or_default()
                            .push((key, value, r.offset));
                        continue;
                    }
                    match r
                        .value
                        .as_ref()
                        .map(|v| serde_json::from_slice::<OffsetValue>(v))
                    {
                        Some(Ok(v)) => {
                            map.insert(
                                key,
                                Entry {
                                    committed: CommittedOffset {
                                        offset: v.offset,
                                        metadata: v.metadata,
                                        generation: v.generation,
                                        commit_ms: v.commit_ms,
                                    },
                                    written_at: r.offset,
                                },
                            );
                        }
                        None => {
                            map.remove(&key);
                        }
                        Some(Err(_)) => {}
                    }
                }
            }
        }
        *self.offsets.write().unwrap_or_else(|e| e.into_inner()) = map;
        Ok(())
    }

    /// Commits `offsets` for `group`, fenced by `member` (member id, generation) when given;
    /// durable (acks=all) before it returns.
    pub(crate) fn commit(
        &self,
        group: &str,
        member: Option<(&str, i32)>,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<()> {
        self.loaded()?
            .commit_as(group, member, offsets, None, false)
            .map(|_| ())
    }

    /// Commits offsets inside producer `producer_id`'s transaction (KIP-447): fenced by the
    /// group generation now, visible to the group only once the transaction commits.
    /// `manual_into_active_group` allows a commit without `member` into a group that has
    /// members, as Kafka's TxnOffsetCommit does (its versions before 3 carry no member).
    pub(crate) fn commit_in_txn(
        &self,
        (producer_id, epoch): (i64, i16),
        group: &str,
        member: Option<(&str, i32)>,
        offsets: &[(TopicPartition, i64)],
        manual_into_active_group: bool,
    ) -> Result<Option<(i64, Option<u64>)>> {
        self.loaded()?.commit_as(
            group,
            member,
            offsets,
            Some((producer_id, epoch)),
            manual_into_active_group,
        )
    }

    /// True while an offset of `group` for `tp` committed in a transaction awaits its end.
    pub(crate) fn is_pending(&self, group: &str, tp: &TopicPartition) -> bool {
        let key = offset_key(group, tp);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|entries| entries.iter().any(|(k, _, _)| *k == key))
    }

    fn lock_pending(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, Vec<PendingEntry>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes a transaction's offsets visible (commit) or drops them (abort).
    pub(crate) fn complete_txn(&self, producer_id: i64, commit: bool) -> Result<()> {
        self.loaded()?;
        let entries = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&producer_id);
        if let (true, Some(entries)) = (commit, entries) {
            let mut map = self.offsets.write().unwrap_or_else(|e| e.into_inner());
            for (key, committed, written_at) in entries {
                apply_entry(&mut map, key, Some(committed), written_at);
            }
        }
        Ok(())
    }

    fn commit_as(
        &self,
        group: &str,
        member: Option<(&str, i32)>,
        offsets: &[(TopicPartition, i64)],
        txn: Option<(i64, i16)>,
        manual_into_active_group: bool,
    ) -> Result<Option<(i64, Option<u64>)>> {
        let generation = match member {
            Some((member_id, generation)) if txn.is_some() => {
                self.coordinator
                    .validate_txn_generation(group, member_id, generation)?;
                generation
            }
            Some((member_id, generation)) => {
                self.coordinator
                    .validate_generation(group, member_id, generation)?;
                generation
            }
            // Kafka takes transactional commits without group metadata (TxnOffsetCommit before
            // v3, KIP-98 producers) into any group: the producer epoch fences them.
            None if txn.is_some() => -1,
            None => {
                // Outside group management (manual assignment), as Kafka allows for groups
                // without active members.
                if !manual_into_active_group
                    && let Some(d) = self.coordinator.describe(group)
                    && !d.members.is_empty()
                {
                    return Err(Error::Group {
                        group: group.to_string(),
                        reason: crate::GroupErrorKind::UnknownMember(
                            "(none: manual commit into an active group)".into(),
                        ),
                    });
                }
                -1
            }
        };
        let now = self.store.clock().now_ms();
        let mut b = BatchBuilder::new(match txn {
            Some((producer_id, producer_epoch)) => BatchOptions {
                producer_id,
                producer_epoch,
                transactional: true,
                ..BatchOptions::default()
            },
            None => BatchOptions::default(),
        });
        let mut entries = Vec::with_capacity(offsets.len());
        for (tp, offset) in offsets {
            let key = offset_key(group, tp);
            let k = serde_json::to_vec(&key).map_err(|e| Error::Internal(e.to_string()))?;
            let v = serde_json::to_vec(&OffsetValue {
                offset: *offset,
                metadata: String::new(),
                generation,
                commit_ms: now,
            })
            .map_err(|e| Error::Internal(e.to_string()))?;
            b.push(now, Some(&k), Some(&v), &[]);
            entries.push((
                key,
                CommittedOffset {
                    offset: *offset,
                    metadata: String::new(),
                    generation,
                    commit_ms: now,
                },
            ));
        }
        if entries.is_empty() {
            return Ok(None);
        }
        if let Some((producer_id, _)) = txn {
            // Pending before the append: once the append is in, the transaction may end at
            // any moment (the coordinator holds it only through the append), and its end must
            // find these. Taken back if the append is refused, unless an abort took them.
            let first = {
                let mut pending = self.lock_pending();
                let held = pending.entry(producer_id).or_default();
                let first = held.len();
                held.extend(
                    entries
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone(), i64::MAX)),
                );
                first
            };
            // Made durable with the transaction's data, before its Prepare counts on it: the
            // caller gets the offset and the group-commit round.
            let appended = self
                .store
                .append_deferred(OFFSETS_TOPIC, 0, b.finish(0), Acks::All);
            let (info, round) = match appended {
                Ok(done) => done,
                Err(e) => {
                    let mut pending = self.lock_pending();
                    if let Some(held) = pending.get_mut(&producer_id)
                        && held.len() == first + entries.len()
                        && held[first..].iter().all(|(_, _, at)| *at == i64::MAX)
                    {
                        held.truncate(first);
                    }
                    return Err(e);
                }
            };
            // Their positions, before the caller can end the transaction with a commit (an
            // abort, which may come sooner, drops them whatever their positions).
            if let Some(held) = self.lock_pending().get_mut(&producer_id)
                && let Some(mine) = held.get_mut(first..first + entries.len())
            {
                for (i, (_, _, at)) in mine.iter_mut().enumerate() {
                    *at = info.base_offset + i as i64;
                }
            }
            return Ok(Some((info.last_offset, round)));
        }
        let info = self
            .store
            .append(OFFSETS_TOPIC, 0, b.finish(0), Acks::All)?;
        let mut map = self.offsets.write().unwrap_or_else(|e| e.into_inner());
        for (i, (key, committed)) in entries.into_iter().enumerate() {
            // By position: of two commits racing, the one later in the topic wins, as it
            // will when the topic is read again.
            apply_entry(&mut map, key, Some(committed), info.base_offset + i as i64);
        }
        Ok(None)
    }

    /// Deletes every group's committed offsets for `topic` (tombstones in the offsets topic,
    /// durable before this returns), and those pending in open transactions: a topic created
    /// again under the same name starts with no committed offsets, as in Kafka.
    pub(crate) fn forget_topic(&self, topic: &str) -> Result<()> {
        self.loaded()?;
        for entries in self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values_mut()
        {
            entries.retain(|(k, _, _)| k.1 != topic);
        }
        let mut map = self.offsets.write().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<OffsetKey> = map.keys().filter(|k| k.1 == topic).cloned().collect();
        if keys.is_empty() {
            return Ok(());
        }
        self.remove_durably(&mut map, &keys)
    }

    /// Writes a tombstone for each key to the offsets topic (durable before it returns), then
    /// drops the keys from `map`.
    fn remove_durably(
        &self,
        map: &mut BTreeMap<OffsetKey, Entry>,
        keys: &[OffsetKey],
    ) -> Result<()> {
        let now = self.store.clock().now_ms();
        let mut b = BatchBuilder::new(BatchOptions::default());
        for key in keys {
            let k = serde_json::to_vec(key).map_err(|e| Error::Internal(e.to_string()))?;
            b.push(now, Some(&k), None, &[]);
        }
        self.store
            .append(OFFSETS_TOPIC, 0, b.finish(0), Acks::All)?;
        for key in keys {
            map.remove(key);
        }
        Ok(())
    }

    /// Deletes an empty group (Kafka's DeleteGroups): the coordinator forgets it and its
    /// committed offsets get tombstones in the offsets topic, durable before this returns, so
    /// it stays deleted after a restart. Offsets pending in open transactions are left to
    /// them: a transaction that commits later commits them anew.
    ///
    /// Errors: [`crate::GroupErrorKind::NonEmptyGroup`] while it has members,
    /// [`crate::GroupErrorKind::UnknownGroup`] if it has neither members nor offsets.
    pub(crate) fn delete_group(&self, group: &str) -> Result<()> {
        self.loaded()?;
        let known = self.coordinator.delete(group)?;
        let mut map = self.offsets.write().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<OffsetKey> = map.keys().filter(|k| k.0 == group).cloned().collect();
        if !known && keys.is_empty() {
            return Err(Error::Group {
                group: group.to_string(),
                reason: crate::GroupErrorKind::UnknownGroup,
            });
        }
        if !keys.is_empty() {
            self.remove_durably(&mut map, &keys)?;
        }
        drop(map);
        // Other processes must not keep showing its last membership either.
        published_groups::remove(&self.store, group)
    }

    /// The offset `group` committed for `tp`, if any.
    pub(crate) fn committed(
        &self,
        group: &str,
        tp: &TopicPartition,
    ) -> Result<Option<CommittedOffset>> {
        Ok(self
            .loaded()?
            .offsets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&offset_key(group, tp))
            .map(|e| e.committed.clone()))
    }

    /// Every group with committed offsets or live members, sorted.
    pub(crate) fn names(&self) -> Result<Vec<String>> {
        self.loaded()?;
        if !self.store.is_writable() {
            self.reload()?;
        }
        let mut names: BTreeSet<String> = self
            .offsets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .map(|k| k.0.clone())
            .collect();
        names.extend(self.coordinator.list());
        Ok(names.into_iter().collect())
    }

    /// A group's members (this process's coordinator's, else those the writer published),
    /// committed offsets and lag.
    pub(crate) fn describe(&self, group: &str) -> Result<GroupInfo> {
        self.loaded()?;
        if !self.store.is_writable() {
            self.reload()?;
        }
        let committed: Vec<(OffsetKey, CommittedOffset)> = self
            .offsets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(k, _)| k.0 == group)
            .map(|(k, e)| (k.clone(), e.committed.clone()))
            .collect();
        let mut lag = Vec::new();
        for ((_, topic, partition), c) in committed {
            let hw = self
                .store
                .offsets(&topic, partition)
                .map_or(c.offset, |(_, hw)| hw);
            lag.push(PartitionLag {
                topic,
                partition,
                committed: c.offset,
                high_watermark: hw,
                lag: (hw - c.offset).max(0),
            });
        }
        let mut members = self.coordinator.describe(group);
        let mut membership_published = None;
        if members.is_none()
            && let Some(p) = published_groups::read(&self.store, group)
        {
            membership_published = Some((p.pid, p.published_ms));
            members = Some(p.description);
        }
        if members.is_none() && lag.is_empty() {
            return Err(Error::Group {
                group: group.to_string(),
                reason: crate::GroupErrorKind::UnknownGroup,
            });
        }
        Ok(GroupInfo {
            name: group.to_string(),
            membership: members,
            membership_published,
            offsets: lag,
        })
    }

    /// Writes the group's membership where other processes (`weir groups describe`) can read
    /// it. Consumers call this when an assignment changes; the writer is the only process
    /// with live membership.
    pub(crate) fn publish(&self, group: &str) -> Result<()> {
        if !self.store.is_writable() {
            return Ok(());
        }
        let _one_at_a_time = self.publishing.lock().unwrap_or_else(|e| e.into_inner());
        match self.loaded()?.coordinator.describe(group) {
            Some(description) => published_groups::publish(&self.store, description),
            None => Ok(()),
        }
    }
}
