//! State of tumbling and sliding windows: per window, the accumulators of its keys.
//!
//! Windows are held in a `BTreeMap` ordered by `(end, start)`, so the watermark closes them by
//! popping from the front, and within a window the keys keep their insertion order, so that the
//! emission order depends on the input sequence only (also across a snapshot and restore).

use std::collections::BTreeMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use super::{FastMap, Window, WindowError};

/// One key's accumulator in one window.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Entry<K, Acc> {
    pub(crate) key: K,
    pub(crate) acc: Acc,
    /// Changed since the last emission (early emission only emits changed windows).
    pub(crate) dirty: bool,
}

/// The keys of one window, in insertion order, with a hash index.
#[derive(Debug)]
struct KeyedAccs<K, Acc> {
    entries: Vec<Entry<K, Acc>>,
    index: FastMap<K, u32>,
}

impl<K, Acc> Default for KeyedAccs<K, Acc> {
    fn default() -> Self {
        KeyedAccs {
            entries: Vec::new(),
            index: FastMap::default(),
        }
    }
}

impl<K: Hash + Eq + Clone, Acc> KeyedAccs<K, Acc> {
    /// Appends `key`; the caller has checked that it is absent.
    fn push(&mut self, key: K, acc: Acc) -> &mut Entry<K, Acc> {
        let slot = u32::try_from(self.entries.len()).expect("fewer than 2^32 keys per window");
        let previous = self.index.insert(key.clone(), slot);
        debug_assert!(previous.is_none(), "key pushed twice");
        self.entries.push(Entry {
            key,
            acc,
            dirty: true,
        });
        self.entries.last_mut().expect("just pushed")
    }

    fn get_mut(&mut self, key: &K) -> Option<&mut Entry<K, Acc>> {
        let slot = *self.index.get(key)?;
        Some(&mut self.entries[slot as usize])
    }

    /// Empties the window but keeps the allocations, for reuse by a later window.
    fn clear(&mut self) {
        self.entries.clear();
        self.index.clear();
    }
}

/// Open tumbling or sliding windows, by `(end, start)`.
#[derive(Debug)]
pub(crate) struct FixedWindows<K, Acc> {
    windows: BTreeMap<(i64, i64), KeyedAccs<K, Acc>>,
    /// (key, window) pairs held.
    len: usize,
    /// The maps of the last closed window, kept for the next window so that a steady stream does
    /// not grow a fresh hash table for every window.
    spare: Option<KeyedAccs<K, Acc>>,
}

impl<K, Acc> Default for FixedWindows<K, Acc> {
    fn default() -> Self {
        FixedWindows {
            windows: BTreeMap::new(),
            len: 0,
            spare: None,
        }
    }
}

/// A window's serialized form: its bounds and its entries in insertion order.
pub(crate) type FixedSnapshot<K, Acc> = Vec<(Window, Vec<Entry<K, Acc>>)>;

impl<K: Hash + Eq + Clone, Acc> FixedWindows<K, Acc> {
    /// (key, window) pairs held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// `key`'s entry in `window`, created with `create()` when absent. The hot path: a short
    /// `BTreeMap` descent (a few open windows) and one hash lookup; no allocation unless the key
    /// is new to the window.
    #[inline]
    pub(crate) fn entry(
        &mut self,
        key: &K,
        window: Window,
        create: impl FnOnce() -> Acc,
    ) -> &mut Entry<K, Acc> {
        let spare = &mut self.spare;
        let accs = self
            .windows
            .entry((window.end, window.start))
            .or_insert_with(|| spare.take().unwrap_or_default());
        if let Some(&slot) = accs.index.get(key) {
            return &mut accs.entries[slot as usize];
        }
        self.len += 1;
        accs.push(key.clone(), create())
    }

    /// Inserts or merges an accumulator for `key` in `window`.
    pub(crate) fn merge(
        &mut self,
        key: K,
        window: Window,
        acc: Acc,
        merge: impl FnOnce(&mut Acc, Acc),
    ) {
        let spare = &mut self.spare;
        let accs = self
            .windows
            .entry((window.end, window.start))
            .or_insert_with(|| spare.take().unwrap_or_default());
        match accs.get_mut(&key) {
            Some(entry) => {
                merge(&mut entry.acc, acc);
                entry.dirty = true;
            }
            None => {
                self.len += 1;
                accs.push(key, acc);
            }
        }
    }

    /// Removes every window with `closed(end)`, front to back, emitting each entry as final.
    pub(crate) fn close(
        &mut self,
        closed: impl Fn(i64) -> bool,
        emit: &mut impl FnMut(&K, Window, &Acc, bool),
    ) {
        while let Some(first) = self.windows.first_entry() {
            let (end, start) = *first.key();
            if !closed(end) {
                break;
            }
            let mut accs = first.remove();
            let window = Window { start, end };
            for entry in &accs.entries {
                emit(&entry.key, window, &entry.acc, true);
            }
            self.len -= accs.entries.len();
            accs.clear();
            self.spare = Some(accs);
        }
    }

    /// Emits, as non-final, the changed entries of the windows whose `end` passes `selected`,
    /// front to back; stops at the first window past `until_end` (an end no later window can pass).
    pub(crate) fn emit_changed(
        &mut self,
        selected: impl Fn(i64) -> bool,
        until_end: i64,
        emit: &mut impl FnMut(&K, Window, &Acc, bool),
    ) {
        for (&(end, start), accs) in &mut self.windows {
            if end > until_end {
                break;
            }
            if !selected(end) {
                continue;
            }
            for entry in accs.entries.iter_mut().filter(|e| e.dirty) {
                emit(&entry.key, Window { start, end }, &entry.acc, false);
                entry.dirty = false;
            }
        }
    }

    /// The windows and their entries, in emission order, borrowed for serialization.
    pub(crate) fn snapshot(&self) -> Vec<(Window, &[Entry<K, Acc>])> {
        let windows = self.windows.iter();
        windows
            .map(|(&(end, start), accs)| (Window { start, end }, &accs.entries[..]))
            .collect()
    }

    /// Rebuilds the state from a snapshot, checking that no window is empty, inverted, listed
    /// twice, already closed (`closed(end)`), or holds a key twice.
    pub(crate) fn restore(
        snapshot: FixedSnapshot<K, Acc>,
        closed: impl Fn(i64) -> bool,
    ) -> Result<Self, WindowError> {
        let mut state = FixedWindows::default();
        for (window, entries) in snapshot {
            let bad = |what: &str| Err(WindowError::Snapshot(format!("window {window:?} {what}")));
            if window.start >= window.end {
                return bad("is empty or inverted");
            }
            if entries.is_empty() {
                return bad("has no keys");
            }
            if closed(window.end) {
                return bad("is closed by the snapshot's watermark");
            }
            let mut accs = KeyedAccs::default();
            for entry in entries {
                if accs.index.contains_key(&entry.key) {
                    return bad("holds a key twice");
                }
                let dirty = entry.dirty;
                accs.push(entry.key, entry.acc).dirty = dirty;
            }
            state.len += accs.entries.len();
            if state
                .windows
                .insert((window.end, window.start), accs)
                .is_some()
            {
                return bad("is listed twice");
            }
        }
        Ok(state)
    }
}
