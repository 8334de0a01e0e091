//! Idempotent-producer state of one partition: per producer id, its epoch and the last few
//! batches' sequence ranges, so a retried batch gets its original offsets back, a gap is refused
//! and an old epoch is fenced. Rebuilt on open from a snapshot plus the batch headers after it.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::format::BatchHeader;
use crate::{Error, Result};

/// Sequence range and offsets of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    /// The batch's CRC: a retry carries the same bytes, so the same CRC. `None` in snapshots
    /// written before it was kept.
    #[serde(default)]
    pub crc: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    pub last_timestamp: i64,
}

/// The verdict on an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Append it.
    Append,
    /// A retry of a batch already in the log: answer with these offsets, write nothing.
    Duplicate { base_offset: i64, last_offset: i64 },
}

fn no_producer_id() -> i64 {
    -1
}

/// Kafka's sequence arithmetic wraps at i32::MAX back to 0.
fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ProducerStateMap {
    producers: HashMap<i64, ProducerEntry>,
    /// The largest producer id this partition has seen, expired producers included: the log
    /// never hands it out again, even if its allocator's file is lost.
    #[serde(default = "no_producer_id")]
    max_producer_id: i64,
}

impl Default for ProducerStateMap {
    fn default() -> ProducerStateMap {
        ProducerStateMap {
            producers: HashMap::new(),
            max_producer_id: -1,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    /// State covers every batch before this offset.
    offset: i64,
    producers: HashMap<i64, ProducerEntry>,
    /// See [`ProducerStateMap::max_producer_id`]; absent in older snapshots.
    #[serde(default = "no_producer_id")]
    max_producer_id: i64,
    /// Open transactions: producer id → first offset in the partition.
    #[serde(default)]
    ongoing: std::collections::BTreeMap<i64, i64>,
}

impl ProducerStateMap {
    /// Checks an idempotent batch against the producer's state.
    pub(crate) fn check(
        &self,
        h: &BatchHeader,
        topic: &str,
        partition: i32,
    ) -> Result<SequenceCheck> {
        if h.producer_id < 0 {
            return Ok(SequenceCheck::Append);
        }
        if let Some(entry) = self.producers.get(&h.producer_id)
            && h.producer_epoch < entry.epoch
        {
            // Also for batches without sequences (transactional offset commits): a marker with a
            // newer epoch ended the transaction this batch belonged to.
            return Err(Error::Fenced(format!(
                "producer {} epoch {} is older than the current epoch {} on {topic}-{partition}",
                h.producer_id, h.producer_epoch, entry.epoch
            )));
        }
        if h.base_sequence < 0 {
            return Ok(SequenceCheck::Append);
        }
        let out_of_order = |expected: i32| Error::OutOfOrderSequence {
            producer_id: h.producer_id,
            topic: topic.to_string(),
            partition,
            expected,
            got: h.base_sequence,
        };
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return if h.base_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(Error::UnknownProducer(h.producer_id))
            };
        };
        if h.producer_epoch < entry.epoch {
            return Err(Error::Fenced(format!(
                "producer {} epoch {} is older than the current epoch {} on {topic}-{partition}",
                h.producer_id, h.producer_epoch, entry.epoch
            )));
        }
        if h.producer_epoch > entry.epoch {
            return if h.base_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(out_of_order(0))
            };
        }
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence())
        {
            // Acknowledging a batch as written while dropping it is loss unless it is the very
            // batch already in the log (a retry); anything else is refused.
            if b.crc.is_some_and(|crc| crc != h.crc) {
                return Err(Error::SequenceConflict {
                    producer_id: h.producer_id,
                    topic: topic.to_string(),
                    partition,
                    first_sequence: h.base_sequence,
                    last_sequence: h.last_sequence(),
                    offset: b.base_offset,
                });
            }
            return Ok(SequenceCheck::Duplicate {
                base_offset: b.base_offset,
                last_offset: b.last_offset,
            });
        }
        let expected = entry.batches.back().map_or(0, |b| next_seq(b.last_seq));
        if h.base_sequence != expected {
            return Err(out_of_order(expected));
        }
        Ok(SequenceCheck::Append)
    }

    /// Records an appended batch (`h.base_offset` already assigned) at wall-clock `now_ms`
    /// (record timestamps are the producer's and say nothing of when it was last seen).
    pub(crate) fn record(&mut self, h: &BatchHeader, batches_max: usize, now_ms: i64) {
        self.max_producer_id = self.max_producer_id.max(h.producer_id);
        if h.producer_id < 0 || h.base_sequence < 0 {
            return;
        }
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: h.producer_epoch,
                batches: VecDeque::new(),
                last_timestamp: now_ms,
            });
        if h.producer_epoch > entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            crc: Some(h.crc),
        });
        while entry.batches.len() > batches_max {
            entry.batches.pop_front();
        }
        entry.last_timestamp = entry.last_timestamp.max(now_ms);
    }

    /// Drops producers idle since before `horizon_ms`.
    pub(crate) fn expire(&mut self, horizon_ms: i64) {
        self.producers.retain(|_, e| e.last_timestamp >= horizon_ms);
    }

    /// Writes a snapshot valid up to `offset` (exclusive), atomically.
    pub(crate) fn write_snapshot(
        &self,
        storage: &dyn crate::storage::Storage,
        path: &Path,
        offset: i64,
        ongoing: &std::collections::BTreeMap<i64, i64>,
    ) -> Result<()> {
        let snap = Snapshot {
            offset,
            producers: self.producers.clone(),
            max_producer_id: self.max_producer_id,
            ongoing: ongoing.clone(),
        };
        let bytes = serde_json::to_vec(&snap)
            .map_err(|e| Error::Internal(format!("producer snapshot: {e}")))?;
        crate::util::write_atomically(storage, path, &bytes)
    }

    /// Reads a snapshot; `None` when absent or unreadable (state is then rebuilt from the log).
    pub(crate) fn read_snapshot(
        storage: &dyn crate::storage::Storage,
        path: &Path,
    ) -> Option<(ProducerStateMap, std::collections::BTreeMap<i64, i64>, i64)> {
        let bytes = storage.read(path).ok()?;
        let snap: Snapshot = serde_json::from_slice(&bytes).ok()?;
        let max_producer_id = snap
            .producers
            .keys()
            .copied()
            .fold(snap.max_producer_id, i64::max);
        Some((
            ProducerStateMap {
                producers: snap.producers,
                max_producer_id,
            },
            snap.ongoing,
            snap.offset,
        ))
    }

    /// Records a transaction marker: it carries the producer's (possibly bumped) epoch, which
    /// fences batches of older epochs from then on.
    pub(crate) fn record_marker(&mut self, producer_id: i64, epoch: i16, now_ms: i64) {
        self.max_producer_id = self.max_producer_id.max(producer_id);
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch,
                batches: VecDeque::new(),
                last_timestamp: now_ms,
            });
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = entry.last_timestamp.max(now_ms);
    }

    /// The largest producer id seen here, or -1.
    pub(crate) fn max_producer_id(&self) -> i64 {
        self.max_producer_id
    }

    /// The epoch this partition knows for `producer_id`.
    pub(crate) fn epoch(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|e| e.epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, base: i64) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: 49,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    #[test]
    fn duplicates_gaps_and_fencing() {
        let mut s = ProducerStateMap::default();
        let b0 = header(7, 0, 0, 10, 100);
        assert_eq!(s.check(&b0, "t", 0).unwrap(), SequenceCheck::Append);
        s.record(&b0, 5, 0);
        let b1 = header(7, 0, 10, 5, 110);
        assert_eq!(s.check(&b1, "t", 0).unwrap(), SequenceCheck::Append);
        s.record(&b1, 5, 0);
        // A retry of the first batch gets its original offsets.
        assert_eq!(
            s.check(&header(7, 0, 0, 10, -1), "t", 0).unwrap(),
            SequenceCheck::Duplicate {
                base_offset: 100,
                last_offset: 109
            }
        );
        // A gap is refused.
        assert!(matches!(
            s.check(&header(7, 0, 16, 1, -1), "t", 0),
            Err(Error::OutOfOrderSequence {
                expected: 15,
                got: 16,
                ..
            })
        ));
        // A new epoch starts at 0 and fences the old one.
        let e1 = header(7, 1, 0, 1, 115);
        assert_eq!(s.check(&e1, "t", 0).unwrap(), SequenceCheck::Append);
        s.record(&e1, 5, 0);
        assert_eq!(s.epoch(7), Some(1));
        assert!(matches!(
            s.check(&header(7, 0, 15, 1, -1), "t", 0),
            Err(Error::Fenced(_))
        ));
        // Unknown producers must start at 0.
        assert!(matches!(
            s.check(&header(8, 0, 3, 1, -1), "t", 0),
            Err(Error::UnknownProducer(8))
        ));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStateMap::default();
        for i in 0..7 {
            let h = header(1, 0, i, 1, i as i64);
            s.check(&h, "t", 0).unwrap();
            s.record(&h, 5, 0);
        }
        assert!(matches!(
            s.check(&header(1, 0, 2, 1, -1), "t", 0).unwrap(),
            SequenceCheck::Duplicate { base_offset: 2, .. }
        ));
        assert!(s.check(&header(1, 0, 1, 1, -1), "t", 0).is_err());
    }
}
