//! The cleaner's decisions as plain functions over values: which segments retention deletes,
//! which records compaction keeps, and whether rewriting a segment is worth its I/O. Nothing here
//! touches a file or a clock.

use std::collections::{HashMap, HashSet};

/// Bookkeeping bytes charged per remembered key or transaction on top of the key bytes
/// themselves (hash-table slot, allocation header, offset).
const ENTRY_OVERHEAD_BYTES: usize = 48;
/// A record's framing beyond its key, value and headers, for size estimates.
const RECORD_OVERHEAD_BYTES: u64 = 8;
/// Bytes of a batch that do not shrink when records are removed.
const BATCH_OVERHEAD_BYTES: u64 = crate::format::BATCH_HEADER_BYTES as u64;

/// What retention needs to know of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    pub base_offset: i64,
    pub size_bytes: u64,
    /// Largest record timestamp (-1 when empty).
    pub max_timestamp: i64,
}

/// How many of the oldest segments retention deletes.
///
/// `segments` lists every segment of a partition, oldest first, the active one last: the active
/// segment is never a victim, but its size counts toward the partition's. As in Kafka, both rules
/// delete a prefix: by age, closed segments whose newest record is older than
/// `now_ms - retention_ms`, stopping at the first one young enough; by size, the oldest closed
/// segments while the partition without them still holds at least `retention_bytes`.
pub(crate) fn retention_victims(
    segments: &[SegmentInfo],
    now_ms: i64,
    retention_ms: Option<i64>,
    retention_bytes: Option<u64>,
) -> usize {
    let closed = &segments[..segments.len().saturating_sub(1)];
    let by_age = retention_ms.map_or(0, |ms| {
        let horizon = now_ms.saturating_sub(ms);
        closed
            .iter()
            .take_while(|s| s.max_timestamp < horizon)
            .count()
    });
    let by_size = retention_bytes.map_or(0, |bytes_max| {
        let mut total: u64 = segments.iter().map(|s| s.size_bytes).sum();
        closed
            .iter()
            .take_while(|s| {
                let deletable = total - s.size_bytes >= bytes_max;
                if deletable {
                    total -= s.size_bytes;
                }
                deletable
            })
            .count()
    });
    by_age.max(by_size)
}

/// Where a record stands with respect to transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnState {
    /// Written outside any transaction.
    None,
    /// Its transaction committed.
    Committed,
    /// Its transaction aborted: no read_committed reader ever sees it.
    Aborted,
    /// No marker yet (or none within what was mapped): its fate is unknown.
    Open,
}

/// What compaction needs to know of one record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordFacts<'a> {
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    /// A null value: on a compacted topic, the key's deletion.
    pub tombstone: bool,
    pub timestamp: i64,
    pub txn: TxnState,
}

/// Whether compaction keeps one record.
///
/// `newest` is the newest offset of the record's key over the mapped part of the partition
/// (committed and non-transactional records only). A record is kept iff it is the newest for its
/// key, except that a tombstone goes once `timestamp + delete_retention_ms < now_ms` (the delete
/// horizon: until then slow readers still see the deletion). `key_is_stale` says an older record of
/// the key survives in a segment that was not rewritten: the tombstone must then stay, or that
/// record would come back to life. Records without a key, and records of open transactions, are
/// kept; records of aborted transactions are dropped.
pub(crate) fn keep_record(
    r: &RecordFacts<'_>,
    newest: Option<i64>,
    key_is_stale: bool,
    now_ms: i64,
    delete_retention_ms: i64,
) -> bool {
    match r.txn {
        TxnState::Open => return true,
        TxnState::Aborted => return false,
        TxnState::None | TxnState::Committed => {}
    }
    if r.key.is_none() {
        return true;
    }
    if newest.is_some_and(|n| n > r.offset) {
        return false;
    }
    !(r.tombstone && !key_is_stale && tombstone_expired(r.timestamp, now_ms, delete_retention_ms))
}

/// True once a tombstone written at `timestamp` is past the delete horizon.
pub(crate) fn tombstone_expired(timestamp: i64, now_ms: i64, delete_retention_ms: i64) -> bool {
    timestamp.saturating_add(delete_retention_ms) < now_ms
}

/// A finished transaction of one producer: its first offset, its marker's offset, the outcome.
#[derive(Debug, Clone, Copy)]
struct TxnRange {
    first_offset: i64,
    marker_offset: i64,
    committed: bool,
}

/// A transaction still waiting for its marker, with the keys it wrote.
#[derive(Debug, Default)]
struct OpenTxn {
    first_offset: i64,
    keys: Vec<(Box<[u8]>, i64)>,
}

/// The newest offset of every key of a partition, fed batch by batch in offset order, and the
/// outcome of every transaction seen. A transaction's records count only once its COMMIT marker
/// is seen; aborted ones never. Keys are copied: a record's key shares its whole batch's buffer.
#[derive(Debug, Default)]
pub(crate) struct KeyMap {
    newest: HashMap<Box<[u8]>, i64>,
    open: HashMap<i64, OpenTxn>,
    finished: HashMap<i64, Vec<TxnRange>>,
    bytes: usize,
}

impl KeyMap {
    /// Memory held, approximately: what the caller bounds.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// A record written outside any transaction.
    pub(crate) fn add(&mut self, key: &[u8], offset: i64) {
        match self.newest.get_mut(key) {
            Some(newest) => *newest = (*newest).max(offset),
            None => {
                self.newest.insert(key.into(), offset);
                self.bytes += key.len() + ENTRY_OVERHEAD_BYTES;
            }
        }
    }

    /// A record of `producer_id`'s transaction; the first one opens the transaction.
    pub(crate) fn add_transactional(&mut self, producer_id: i64, offset: i64, key: Option<&[u8]>) {
        let txn = self.open.entry(producer_id).or_insert_with(|| {
            self.bytes += ENTRY_OVERHEAD_BYTES;
            OpenTxn {
                first_offset: offset,
                keys: Vec::new(),
            }
        });
        if let Some(key) = key {
            txn.keys.push((key.into(), offset));
            self.bytes += key.len() + ENTRY_OVERHEAD_BYTES;
        }
    }

    /// A COMMIT (`committed`) or ABORT marker of `producer_id` at `marker_offset`. A marker with
    /// no transaction open (a re-driven one) changes nothing.
    pub(crate) fn end_transaction(
        &mut self,
        producer_id: i64,
        marker_offset: i64,
        committed: bool,
    ) {
        let Some(txn) = self.open.remove(&producer_id) else {
            return;
        };
        let pending: usize = txn
            .keys
            .iter()
            .map(|(k, _)| k.len() + ENTRY_OVERHEAD_BYTES)
            .sum();
        self.bytes -= pending;
        if committed {
            for (key, offset) in &txn.keys {
                self.add(key, *offset);
            }
        }
        self.finished
            .entry(producer_id)
            .or_default()
            .push(TxnRange {
                first_offset: txn.first_offset,
                marker_offset,
                committed,
            });
    }

    /// Newest offset of `key` among committed and non-transactional records.
    pub(crate) fn newest(&self, key: &[u8]) -> Option<i64> {
        self.newest.get(key).copied()
    }

    /// Fate of a transactional record of `producer_id` at `offset`.
    pub(crate) fn txn_state(&self, producer_id: i64, offset: i64) -> TxnState {
        let Some(ranges) = self.finished.get(&producer_id) else {
            return TxnState::Open;
        };
        // A producer's transactions follow one another: ranges are sorted and disjoint.
        let i = ranges.partition_point(|r| r.first_offset <= offset);
        match i.checked_sub(1).map(|i| ranges[i]) {
            Some(r) if offset <= r.marker_offset && r.committed => TxnState::Committed,
            Some(r) if offset <= r.marker_offset => TxnState::Aborted,
            _ => TxnState::Open,
        }
    }
}

/// Everything compaction decides per record within one partition: the key map, the delete
/// horizon, and the keys with a superseded record left behind in a segment that was not
/// rewritten (see [`keep_record`]).
#[derive(Debug)]
pub(crate) struct Planner {
    pub keys: KeyMap,
    stale: HashSet<Box<[u8]>>,
    pub now_ms: i64,
    pub delete_retention_ms: i64,
}

impl Planner {
    pub(crate) fn new(keys: KeyMap, now_ms: i64, delete_retention_ms: i64) -> Planner {
        Planner {
            keys,
            stale: HashSet::new(),
            now_ms,
            delete_retention_ms,
        }
    }

    /// Whether compaction keeps this record.
    pub(crate) fn keep(&self, r: &RecordFacts<'_>) -> bool {
        let (newest, stale) = match r.key {
            Some(k) => (self.keys.newest(k), self.stale.contains(k)),
            None => (None, false),
        };
        keep_record(r, newest, stale, self.now_ms, self.delete_retention_ms)
    }

    /// The fate of a record in a (transactional or not) batch of `producer_id` at `offset`.
    pub(crate) fn txn_state(&self, transactional: bool, producer_id: i64, offset: i64) -> TxnState {
        if transactional {
            self.keys.txn_state(producer_id, offset)
        } else {
            TxnState::None
        }
    }

    /// Records of `key` that [`Planner::keep`] would drop stay on disk (their segment is not
    /// rewritten): later tombstones of the key must stay too.
    pub(crate) fn mark_stale(&mut self, key: Box<[u8]>) {
        self.stale.insert(key);
    }
}

/// Weight of a record in size estimates: its payload plus framing.
pub(crate) fn record_weight(key_bytes: usize, value_bytes: usize, header_bytes: usize) -> u64 {
    (key_bytes + value_bytes + header_bytes) as u64 + RECORD_OVERHEAD_BYTES
}

/// The size a segment would have after compaction, estimated batch by batch before writing
/// anything: a batch losing records shrinks in proportion to their weight (compression kept).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ShrinkEstimate {
    pub old_bytes: u64,
    pub new_bytes: u64,
}

impl ShrinkEstimate {
    /// One batch of `bytes` whose records weigh `total_weight` in all, `kept_weight` of which
    /// compaction keeps (`kept` of `records` records).
    pub(crate) fn add_batch(
        &mut self,
        bytes: u64,
        records: usize,
        kept: usize,
        total_weight: u64,
        kept_weight: u64,
    ) {
        self.old_bytes += bytes;
        self.new_bytes += if kept == records {
            bytes
        } else if kept == 0 {
            0
        } else {
            let body = bytes.saturating_sub(BATCH_OVERHEAD_BYTES) as u128;
            let shrunk = body * kept_weight as u128 / total_weight.max(1) as u128;
            BATCH_OVERHEAD_BYTES + shrunk as u64
        };
    }

    /// Rewrite only segments that shrink by at least a tenth: not for nothing.
    pub(crate) fn worth_rewriting(&self) -> bool {
        self.new_bytes < self.old_bytes && self.new_bytes * 10 <= self.old_bytes * 9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn seg(base_offset: i64, size_bytes: u64, max_timestamp: i64) -> SegmentInfo {
        SegmentInfo {
            base_offset,
            size_bytes,
            max_timestamp,
        }
    }

    #[test]
    fn retention_by_age_deletes_a_prefix_of_closed_segments() {
        let old = NOW - 2_000;
        let young = NOW - 10;
        let segs = [
            seg(0, 100, old),
            seg(10, 100, old),
            seg(20, 100, young),
            seg(30, 100, old),
            seg(40, 100, old),
        ];
        assert_eq!(retention_victims(&segs, NOW, Some(1_000), None), 2);
        // Exactly at the horizon is young enough.
        let segs = [seg(0, 100, NOW - 1_000), seg(10, 100, old)];
        assert_eq!(retention_victims(&segs, NOW, Some(1_000), None), 0);
        // The active segment stays however old.
        let segs = [seg(0, 100, old), seg(10, 100, old), seg(20, 100, old)];
        assert_eq!(retention_victims(&segs, NOW, Some(1_000), None), 2);
        assert_eq!(retention_victims(&segs[..1], NOW, Some(1_000), None), 0);
        assert_eq!(retention_victims(&[], NOW, Some(1_000), Some(1)), 0);
        assert_eq!(retention_victims(&segs, NOW, None, None), 0);
    }

    #[test]
    fn retention_by_size_keeps_at_least_the_limit() {
        let segs = [
            seg(0, 400, NOW),
            seg(10, 300, NOW),
            seg(20, 200, NOW),
            seg(30, 100, NOW),
        ];
        // Total 1000: without the first, 600 >= 500; without the second too, 300 < 500.
        assert_eq!(retention_victims(&segs, NOW, None, Some(500)), 1);
        assert_eq!(retention_victims(&segs, NOW, None, Some(600)), 1);
        assert_eq!(retention_victims(&segs, NOW, None, Some(601)), 0);
        assert_eq!(retention_victims(&segs, NOW, None, Some(300)), 2);
        // Never the active segment, even when it alone exceeds the limit.
        assert_eq!(retention_victims(&segs, NOW, None, Some(1)), 3);
        // Both rules: the longer prefix wins.
        let mixed = [
            seg(0, 400, NOW - 5_000),
            seg(10, 300, NOW - 5_000),
            seg(20, 200, NOW),
            seg(30, 100, NOW),
        ];
        assert_eq!(retention_victims(&mixed, NOW, Some(1_000), Some(500)), 2);
        assert_eq!(retention_victims(&mixed, NOW, Some(1_000), Some(100)), 3);
    }

    fn rec(offset: i64, key: &[u8], tombstone: bool, timestamp: i64) -> RecordFacts<'_> {
        RecordFacts {
            offset,
            key: Some(key),
            tombstone,
            timestamp,
            txn: TxnState::None,
        }
    }

    #[test]
    fn only_the_newest_record_per_key_survives() {
        let drm = 100;
        assert!(keep_record(
            &rec(5, b"k", false, 0),
            Some(5),
            false,
            NOW,
            drm
        ));
        assert!(!keep_record(
            &rec(4, b"k", false, 0),
            Some(5),
            false,
            NOW,
            drm
        ));
        // A key the map does not know is kept (conservative).
        assert!(keep_record(&rec(4, b"k", false, 0), None, false, NOW, drm));
        let no_key = RecordFacts {
            key: None,
            ..rec(1, b"", false, 0)
        };
        assert!(keep_record(&no_key, None, false, NOW, drm));
    }

    #[test]
    fn tombstones_expire_after_the_delete_horizon() {
        let drm = 100;
        // Newest, written at NOW - 101: 101 > 100, past the horizon.
        assert!(!keep_record(
            &rec(5, b"k", true, NOW - 101),
            Some(5),
            false,
            NOW,
            drm
        ));
        // NOW - 100 + 100 == NOW: not yet past.
        assert!(keep_record(
            &rec(5, b"k", true, NOW - 100),
            Some(5),
            false,
            NOW,
            drm
        ));
        // An expired tombstone stays while an older record of its key is left behind.
        assert!(keep_record(
            &rec(5, b"k", true, NOW - 101),
            Some(5),
            true,
            NOW,
            drm
        ));
        // A superseded tombstone goes whatever its age.
        assert!(!keep_record(
            &rec(4, b"k", true, NOW),
            Some(5),
            false,
            NOW,
            drm
        ));
    }

    #[test]
    fn transactions_count_once_committed() {
        let mut keys = KeyMap::default();
        keys.add(b"a", 0);
        keys.add_transactional(7, 1, Some(b"a")); // committed below
        keys.add_transactional(8, 2, Some(b"b")); // aborted below
        keys.add(b"b", 3);
        keys.add_transactional(7, 4, Some(b"c"));
        keys.end_transaction(7, 5, true);
        keys.end_transaction(8, 6, false);
        keys.add_transactional(8, 7, Some(b"a")); // never finished
        keys.end_transaction(9, 8, true); // a marker without a transaction
        assert_eq!(keys.newest(b"a"), Some(1));
        assert_eq!(keys.newest(b"b"), Some(3));
        assert_eq!(keys.newest(b"c"), Some(4));
        assert_eq!(keys.txn_state(7, 1), TxnState::Committed);
        assert_eq!(keys.txn_state(7, 5), TxnState::Committed);
        assert_eq!(keys.txn_state(8, 2), TxnState::Aborted);
        assert_eq!(keys.txn_state(8, 7), TxnState::Open);
        assert_eq!(keys.txn_state(9, 8), TxnState::Open);
        // A committed transactional record older than a plain one does not win.
        keys.add(b"d", 20);
        keys.add_transactional(7, 10, Some(b"d"));
        keys.end_transaction(7, 21, true);
        assert_eq!(keys.newest(b"d"), Some(20));

        let planner = Planner::new(keys, NOW, 100);
        let at = |offset, key, txn| RecordFacts {
            txn,
            ..rec(offset, key, false, NOW)
        };
        assert!(!planner.keep(&at(0, b"a", TxnState::None)));
        assert!(planner.keep(&at(1, b"a", TxnState::Committed)));
        assert!(!planner.keep(&at(2, b"b", TxnState::Aborted)));
        assert!(planner.keep(&at(7, b"a", TxnState::Open)));
        assert_eq!(planner.txn_state(false, 8, 2), TxnState::None);
        assert_eq!(planner.txn_state(true, 8, 2), TxnState::Aborted);
    }

    #[test]
    fn key_map_accounts_for_its_memory() {
        let mut keys = KeyMap::default();
        keys.add(b"abc", 0);
        keys.add(b"abc", 5);
        assert_eq!(keys.bytes(), 3 + ENTRY_OVERHEAD_BYTES);
        keys.add_transactional(1, 6, Some(b"xy"));
        assert_eq!(keys.bytes(), 3 + 2 + 3 * ENTRY_OVERHEAD_BYTES);
        keys.end_transaction(1, 7, true);
        // The transaction's slot now holds its outcome; "xy" moved into the map.
        assert_eq!(keys.bytes(), 3 + 2 + 3 * ENTRY_OVERHEAD_BYTES);
        keys.add_transactional(1, 8, None);
        keys.end_transaction(1, 9, false);
        assert_eq!(keys.bytes(), 3 + 2 + 4 * ENTRY_OVERHEAD_BYTES);
    }

    #[test]
    fn stale_keys_protect_their_tombstones() {
        let mut keys = KeyMap::default();
        keys.add(b"k", 9);
        let mut planner = Planner::new(keys, NOW, 100);
        let tombstone = rec(9, b"k", true, 0);
        assert!(!planner.keep(&tombstone));
        planner.mark_stale(b"k".to_vec().into_boxed_slice());
        assert!(planner.keep(&tombstone));
    }

    #[test]
    fn rewriting_needs_a_tenth_shrink() {
        let mut e = ShrinkEstimate::default();
        e.add_batch(1_000, 10, 10, 500, 500);
        assert_eq!(
            e,
            ShrinkEstimate {
                old_bytes: 1_000,
                new_bytes: 1_000
            }
        );
        assert!(!e.worth_rewriting());
        e.add_batch(161, 4, 2, 100, 50);
        assert_eq!(e.new_bytes, 1_000 + 61 + 50);
        assert!(
            !e.worth_rewriting(),
            "1111 of 1161 bytes is not a tenth less"
        );
        let mut e = ShrinkEstimate::default();
        e.add_batch(300, 3, 0, 30, 0);
        e.add_batch(700, 5, 5, 50, 50);
        assert_eq!(e.new_bytes, 700);
        assert!(e.worth_rewriting());
        let mut e = ShrinkEstimate::default();
        e.add_batch(900, 1, 1, 1, 1);
        e.add_batch(100, 1, 0, 1, 0);
        assert!(e.worth_rewriting(), "exactly 10% is enough");
        assert!(
            !ShrinkEstimate::default().worth_rewriting(),
            "an empty segment never shrinks"
        );
    }
}
