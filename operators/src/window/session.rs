//! State of session windows: per key, its open sessions sorted by start, plus an index of all
//! sessions by end so that the watermark closes them by popping from the front.
//!
//! Invariant: a key's open sessions are pairwise neither overlapping nor touching
//! (`a.end < b.start` for consecutive `a`, `b`), so they are sorted by end as well, and a new
//! window intersects one contiguous run of them.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use super::{FastMap, Window, WindowError};

/// One open session of a key.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Session<Acc> {
    pub(crate) window: Window,
    /// Unique per session, so that the index keys `(end, start, seq)` are unique and ordered the
    /// same way on every run.
    pub(crate) seq: u64,
    pub(crate) acc: Acc,
    /// Changed since the last emission.
    pub(crate) dirty: bool,
}

/// Open session windows of every key.
#[derive(Debug)]
pub(crate) struct Sessions<K, Acc> {
    keys: FastMap<K, Vec<Session<Acc>>>,
    by_end: BTreeMap<(i64, i64, u64), K>,
    next_seq: u64,
}

impl<K, Acc> Default for Sessions<K, Acc> {
    fn default() -> Self {
        Sessions {
            keys: FastMap::default(),
            by_end: BTreeMap::new(),
            next_seq: 0,
        }
    }
}

/// The serialized form: every key's sessions, and the next sequence number.
pub(crate) type SessionSnapshot<K, Acc> = (Vec<(K, Vec<Session<Acc>>)>, u64);

/// [`SessionSnapshot`] borrowing the state, as written.
pub(crate) type SessionSnapshotRef<'a, K, Acc> = (Vec<(&'a K, &'a [Session<Acc>])>, u64);

impl<K: Hash + Eq + Clone, Acc> Sessions<K, Acc> {
    /// Sessions held.
    pub(crate) fn len(&self) -> usize {
        self.by_end.len()
    }

    /// Adds `window` to `key`'s sessions, merging it with every session it overlaps or touches
    /// into their cover (accumulators combined with `merge`, in start order); `fold` then folds
    /// the new input into the resulting accumulator, or `create` makes it for a new session.
    pub(crate) fn insert(
        &mut self,
        key: &K,
        window: Window,
        create: impl FnOnce() -> Acc,
        fold: impl FnOnce(&mut Acc),
        mut merge: impl FnMut(&mut Acc, Acc),
    ) {
        let Some(list) = self.keys.get_mut(key) else {
            let seq = self.take_seq();
            self.by_end
                .insert((window.end, window.start, seq), key.clone());
            let mut acc = create();
            fold(&mut acc);
            self.keys.insert(
                key.clone(),
                vec![Session {
                    window,
                    seq,
                    acc,
                    dirty: true,
                }],
            );
            return;
        };
        // Ends are sorted: skip the sessions ending before the window starts, then take those
        // starting no later than it ends.
        let first = list.partition_point(|s| s.window.end < window.start);
        let mut last = first;
        while last < list.len() && list[last].window.start <= window.end {
            last += 1;
        }
        if first == last {
            let seq = self.next_seq;
            self.next_seq += 1; // not take_seq(): `list` borrows `self.keys`
            self.by_end
                .insert((window.end, window.start, seq), key.clone());
            let mut acc = create();
            fold(&mut acc);
            list.insert(
                first,
                Session {
                    window,
                    seq,
                    acc,
                    dirty: true,
                },
            );
            return;
        }
        let target = &list[first].window;
        if last == first + 1 && target.start <= window.start && window.end <= target.end {
            // The common case: the record falls inside a session it does not extend.
            let session = &mut list[first];
            fold(&mut session.acc);
            session.dirty = true;
            return;
        }
        let mut cover = window;
        let mut indexed_key = None;
        for session in &list[first..last] {
            cover = cover.cover(&session.window);
            let indexed = (session.window.end, session.window.start, session.seq);
            indexed_key = self.by_end.remove(&indexed);
        }
        for _ in first + 1..last {
            let other = list.remove(first + 1);
            merge(&mut list[first].acc, other.acc);
        }
        let session = &mut list[first];
        session.window = cover;
        session.dirty = true;
        fold(&mut session.acc);
        let key = indexed_key.unwrap_or_else(|| key.clone());
        self.by_end
            .insert((cover.end, cover.start, session.seq), key);
        debug_assert!(list.windows(2).all(|w| w[0].window.end < w[1].window.start));
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Removes every session with `closed(end)`, in `(end, start, seq)` order, emitting each as
    /// final.
    pub(crate) fn close(
        &mut self,
        closed: impl Fn(i64) -> bool,
        emit: &mut impl FnMut(&K, Window, &Acc, bool),
    ) {
        while let Some(first) = self.by_end.first_entry() {
            let (end, _, seq) = *first.key();
            if !closed(end) {
                break;
            }
            let key = first.remove();
            let Some(list) = self.keys.get_mut(&key) else {
                debug_assert!(false, "index names a key without sessions");
                continue;
            };
            // The earliest-ending session of a key is its first one.
            let Some(at) = list.iter().position(|s| s.seq == seq) else {
                debug_assert!(false, "index names a missing session");
                continue;
            };
            debug_assert_eq!(at, 0);
            let session = list.remove(at);
            if list.is_empty() {
                self.keys.remove(&key);
            }
            emit(&key, session.window, &session.acc, true);
        }
    }

    /// Emits, as non-final, the changed sessions whose `end` passes `selected`, in index order;
    /// stops at the first session ending after `until_end`.
    pub(crate) fn emit_changed(
        &mut self,
        selected: impl Fn(i64) -> bool,
        until_end: i64,
        emit: &mut impl FnMut(&K, Window, &Acc, bool),
    ) {
        for (&(end, _, seq), key) in &self.by_end {
            if end > until_end {
                break;
            }
            if !selected(end) {
                continue;
            }
            let list = self.keys.get_mut(key).map(|l| l.iter_mut());
            if let Some(session) = list.and_then(|mut l| l.find(|s| s.seq == seq))
                && session.dirty
            {
                emit(key, session.window, &session.acc, false);
                session.dirty = false;
            }
        }
    }

    /// Every key's sessions, in index order of each key's first session, borrowed for
    /// serialization, and the next sequence number.
    pub(crate) fn snapshot(&self) -> SessionSnapshotRef<'_, K, Acc> {
        let mut seen: HashSet<&K, super::FastBuildHasher> = HashSet::default();
        let mut keys = Vec::with_capacity(self.keys.len());
        for key in self.by_end.values() {
            if seen.insert(key) {
                keys.push((key, &self.keys[key][..]));
            }
        }
        (keys, self.next_seq)
    }

    /// Rebuilds the state from a snapshot, checking each key's sessions are non-empty, valid,
    /// sorted, not touching, open (not `closed(end)`), with unique sequence numbers below the
    /// next one.
    pub(crate) fn restore(
        (keys, next_seq): SessionSnapshot<K, Acc>,
        closed: impl Fn(i64) -> bool,
    ) -> Result<Self, WindowError> {
        let bad = |what: String| Err(WindowError::Snapshot(what));
        let mut state = Sessions {
            next_seq,
            ..Sessions::default()
        };
        let mut seqs: HashSet<u64, super::FastBuildHasher> = HashSet::default();
        for (key, list) in keys {
            if list.is_empty() {
                return bad("a key has no sessions".into());
            }
            for (i, s) in list.iter().enumerate() {
                let w = s.window;
                if w.start >= w.end || closed(w.end) {
                    return bad(format!("session {w:?} is empty, inverted or closed"));
                }
                if i > 0 && list[i - 1].window.end >= w.start {
                    return bad(format!(
                        "session {w:?} is out of order or touches its neighbour"
                    ));
                }
                if s.seq >= next_seq || !seqs.insert(s.seq) {
                    return bad(format!("session {w:?} has a bad sequence number {}", s.seq));
                }
                state.by_end.insert((w.end, w.start, s.seq), key.clone());
            }
            if state.keys.insert(key, list).is_some() {
                return bad("a key is listed twice".into());
            }
        }
        Ok(state)
    }
}
