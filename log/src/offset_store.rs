//! Consumer groups as the log sees them: the in-process coordinator (membership, generations,
//! assignment; see [`crate::group`]) and committed offsets, kept in the compacted internal topic
//! `__consumer_offsets` and loaded from it on open.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::clock::SystemClock;
use crate::config::TopicConfig;
use crate::format::{BatchBuilder, BatchOptions};
use crate::group::GroupCoordinator;
use crate::log::{Acks, Log};
use crate::{Error, Result};

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
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset.
    pub committed: i64,
    /// High watermark.
    pub high_watermark: i64,
    /// high_watermark - committed.
    pub lag: i64,
}

type OffsetKey = (String, String, i32);

pub(crate) struct Groups {
    pub(crate) coordinator: GroupCoordinator,
    offsets: RwLock<BTreeMap<OffsetKey, CommittedOffset>>,
    /// Offsets committed inside open transactions, by producer id: visible once committed.
    pending: std::sync::Mutex<std::collections::HashMap<i64, Vec<(OffsetKey, CommittedOffset)>>>,
}

impl Groups {
    /// Creates the offsets topic if needed and loads every committed offset from it.
    pub(crate) fn load(log: &Log) -> Result<Groups> {
        if log.is_writable() && log.topic_config(OFFSETS_TOPIC).is_err() {
            log.create_topic(
                OFFSETS_TOPIC,
                TopicConfig {
                    partitions: 1,
                    compacted: true,
                    retention_ms: None,
                    ..TopicConfig::default()
                },
            )?;
        }
        let groups = Groups {
            coordinator: GroupCoordinator::new(Arc::new(SystemClock::new())),
            offsets: RwLock::new(BTreeMap::new()),
            pending: Default::default(),
        };
        groups.reload(log)?;
        Ok(groups)
    }

    /// Re-reads the offsets topic (read-only handles call this to see new commits).
    pub(crate) fn reload(&self, log: &Log) -> Result<()> {
        let Ok((start, end)) = log.offsets(OFFSETS_TOPIC, 0) else {
            return Ok(()); // no group ever committed
        };
        let mut map = BTreeMap::new();
        let mut in_txn: std::collections::HashMap<i64, Vec<(OffsetKey, Option<CommittedOffset>)>> =
            Default::default();
        let mut pos = start;
        let max = log.config().decompressed_bytes_max;
        while pos < end {
            let batches = log.fetch(OFFSETS_TOPIC, 0, pos, 1 << 20)?;
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
                        for (k, v) in entries {
                            match v {
                                Some(v) => map.insert(k, v),
                                None => map.remove(&k),
                            };
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
                        in_txn.entry(h.producer_id).or_default().push((key, value));
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
                                CommittedOffset {
                                    offset: v.offset,
                                    metadata: v.metadata,
                                    generation: v.generation,
                                    commit_ms: v.commit_ms,
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

    pub(crate) fn commit(
        &self,
        log: &Log,
        group: &str,
        member: Option<(&str, i32)>,
        offsets: &[(String, i32, i64)],
    ) -> Result<()> {
        self.commit_as(log, group, member, offsets, None)
            .map(|_| ())
    }

    /// Commits offsets inside producer `producer_id`'s transaction (KIP-447): fenced by the
    /// group generation now, visible to the group only once the transaction commits.
    pub(crate) fn commit_in_txn(
        &self,
        log: &Log,
        producer_id: i64,
        epoch: i16,
        group: &str,
        member: Option<(&str, i32)>,
        offsets: &[(String, i32, i64)],
    ) -> Result<Option<(i64, Option<u64>)>> {
        self.commit_as(log, group, member, offsets, Some((producer_id, epoch)))
    }

    /// Makes a transaction's offsets visible (commit) or drops them (abort).
    pub(crate) fn complete_txn(&self, producer_id: i64, commit: bool) {
        let entries = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&producer_id);
        if let (true, Some(entries)) = (commit, entries) {
            self.offsets
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .extend(entries);
        }
    }

    fn commit_as(
        &self,
        log: &Log,
        group: &str,
        member: Option<(&str, i32)>,
        offsets: &[(String, i32, i64)],
        txn: Option<(i64, i16)>,
    ) -> Result<Option<(i64, Option<u64>)>> {
        let generation = match member {
            Some((member_id, generation)) => {
                self.coordinator
                    .validate_generation(group, member_id, generation)?;
                generation
            }
            None => {
                // Outside group management (manual assignment), as Kafka allows for groups
                // without active members.
                if let Some(d) = self.coordinator.describe(group)
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
        let now = log.clock().now_ms();
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
        for (topic, partition, offset) in offsets {
            let key = (group.to_string(), topic.clone(), *partition);
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
            // Made durable with the transaction's data, before its Prepare counts on it: the
            // caller gets the offset and the group-commit round.
            let (info, round) = log.append_deferred(OFFSETS_TOPIC, 0, b.finish(0), Acks::All)?;
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(producer_id)
                .or_default()
                .extend(entries);
            return Ok(Some((info.last_offset, round)));
        }
        log.append(OFFSETS_TOPIC, 0, b.finish(0), Acks::All)?;
        let mut map = self.offsets.write().unwrap_or_else(|e| e.into_inner());
        map.extend(entries);
        Ok(None)
    }

    /// Deletes every group's committed offsets for `topic` (tombstones in the offsets topic,
    /// durable before this returns), and those pending in open transactions: a topic created
    /// again under the same name starts with no committed offsets, as in Kafka.
    pub(crate) fn forget_topic(&self, log: &Log, topic: &str) -> Result<()> {
        for entries in self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values_mut()
        {
            entries.retain(|(k, _)| k.1 != topic);
        }
        let mut map = self.offsets.write().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<OffsetKey> = map.keys().filter(|k| k.1 == topic).cloned().collect();
        if keys.is_empty() {
            return Ok(());
        }
        let now = log.clock().now_ms();
        let mut b = BatchBuilder::new(BatchOptions::default());
        for key in &keys {
            let k = serde_json::to_vec(key).map_err(|e| Error::Internal(e.to_string()))?;
            b.push(now, Some(&k), None, &[]);
        }
        log.append(OFFSETS_TOPIC, 0, b.finish(0), Acks::All)?;
        for key in &keys {
            map.remove(key);
        }
        Ok(())
    }

    pub(crate) fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Option<CommittedOffset> {
        self.offsets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(group.to_string(), topic.to_string(), partition))
            .cloned()
    }

    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self
            .offsets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .map(|k| k.0.clone())
            .collect();
        names.extend(self.coordinator.list());
        names.into_iter().collect()
    }

    pub(crate) fn committed_of(&self, group: &str) -> Vec<(String, i32, CommittedOffset)> {
        self.offsets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(k, _)| k.0 == group)
            .map(|(k, v)| (k.1.clone(), k.2, v.clone()))
            .collect()
    }
}
