//! The event-time window engine: per-key window state driven by records and watermarks.
//!
//! Pure: no threads, clocks or I/O. The runtime feeds it records (with the watermark of the
//! partition each came from) and operator watermarks, and forwards what it emits.

use std::cell::Cell;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::assign::{session_window, tumbling_window};
use super::fixed::{Entry, FixedSnapshot, FixedWindows};
use super::session::{SessionSnapshot, SessionSnapshotRef, Sessions};
use super::{EmitMode, Window, WindowConfig, WindowError, WindowSpec};
use crate::aggregate::Aggregate;

/// Why a record missed a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LateReason {
    /// The record was already late in its own source partition: the partition's watermark, just
    /// before the record, had passed the window's close.
    BehindWatermark,
    /// The record was on time in its partition, but the operator's watermark had already closed
    /// the window: the partition was idle, left out of the operator's watermark, and woke up.
    WindowClosed,
}

/// A record that missed at least one of its windows, for the late side output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Late {
    /// The record's event time.
    pub ts: i64,
    /// The first (earliest) window it missed.
    pub window: Window,
    /// How many of its windows it missed (1 for tumbling and session windows).
    pub windows_missed: u32,
    /// Why it missed the first window.
    pub reason: LateReason,
    /// The watermark that made it late: the record's input watermark for
    /// [`LateReason::BehindWatermark`], the operator's for [`LateReason::WindowClosed`].
    pub watermark: i64,
}

/// The watermark at which a window ending at `end` closes: `end - 1 + allowed_lateness_ms`,
/// saturating.
#[inline]
fn close_at(end: i64, allowed_lateness_ms: i64) -> i64 {
    end.saturating_sub(1).saturating_add(allowed_lateness_ms)
}

/// The state, shaped by the kind of window, with the spec's lengths at hand.
enum Store<K, Acc> {
    Tumbling {
        size_ms: i64,
        windows: FixedWindows<K, Acc>,
    },
    Sliding {
        spec: WindowSpec,
        windows: FixedWindows<K, Acc>,
    },
    Session {
        gap_ms: i64,
        sessions: Sessions<K, Acc>,
    },
}

impl<K, Acc> Store<K, Acc> {
    fn empty(spec: WindowSpec) -> Self {
        match spec {
            WindowSpec::Tumbling { size_ms } => Store::Tumbling {
                size_ms,
                windows: FixedWindows::default(),
            },
            WindowSpec::Sliding { .. } => Store::Sliding {
                spec,
                windows: FixedWindows::default(),
            },
            WindowSpec::Session { gap_ms } => Store::Session {
                gap_ms,
                sessions: Sessions::default(),
            },
        }
    }
}

/// Identifies a window state snapshot ("WWS1") and its layout version.
const SNAPSHOT_MAGIC: u32 = u32::from_be_bytes(*b"WWS1");
const SNAPSHOT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    magic: u32,
    version: u32,
    spec: WindowSpec,
    allowed_lateness_ms: i64,
    op_wm: i64,
}

/// The body as written (borrowing the state); [`Body`] is the same layout, owned, as read back.
#[derive(Serialize)]
enum BodyRef<'a, K, Acc> {
    Fixed(Vec<(Window, &'a [Entry<K, Acc>])>),
    Session(SessionSnapshotRef<'a, K, Acc>),
}

#[derive(Deserialize)]
enum Body<K, Acc> {
    Fixed(FixedSnapshot<K, Acc>),
    Session(SessionSnapshot<K, Acc>),
}

/// Per-key event-time window state: assigns records to windows, folds them into accumulators,
/// detects late records, merges sessions, and emits results as the watermark advances.
///
/// A window `w` is *complete* when the watermark reaches `w.end - 1` and *closed* (final result
/// emitted, state dropped) when it reaches `w.end - 1 + allowed_lateness_ms`. A record is late for
/// `w` when `w.end - 1 + allowed_lateness_ms <= max(input_wm, watermark())`.
///
/// ```
/// use weir_operators::aggregate::Aggregate;
/// use weir_operators::window::{Window, WindowConfig, WindowSpec, WindowState};
///
/// #[derive(Clone)]
/// struct Count;
/// impl Aggregate<u32> for Count {
///     type Acc = u64;
///     type Out = u64;
///     fn create(&self) -> u64 { 0 }
///     fn add(&self, acc: &mut u64, _: &u32) { *acc += 1 }
///     fn merge(&self, acc: &mut u64, other: u64) { *acc += other }
///     fn finish(&self, acc: &u64) -> u64 { *acc }
/// }
///
/// let config = WindowConfig::new(WindowSpec::Tumbling { size_ms: 10 });
/// let mut state = WindowState::new(config, Count).unwrap();
/// assert!(state.add(&17u64, &7, 3, i64::MIN).is_none());
/// assert!(state.add(&17u64, &8, 9, i64::MIN).is_none());
/// let mut out = Vec::new();
/// state.advance(9, |key, window, acc, is_final| out.push((*key, window, *acc, is_final)));
/// assert_eq!(out, [(17, Window { start: 0, end: 10 }, 2, true)]);
/// // The window is closed: a record for it is late.
/// assert!(state.add(&17u64, &9, 5, i64::MIN).is_some());
/// ```
pub struct WindowState<K, In, A: Aggregate<In>> {
    config: WindowConfig,
    agg: A,
    /// The operator watermark: monotonic, `i64::MIN` until the first advance.
    op_wm: i64,
    store: Store<K, A::Acc>,
    /// Scratch space for sliding-window assignment, reused across records.
    assigned: Vec<Window>,
    _input: PhantomData<fn(&In)>,
}

impl<K, In, A: Aggregate<In>> fmt::Debug for WindowState<K, In, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowState")
            .field("config", &self.config)
            .field("watermark", &self.op_wm)
            .finish_non_exhaustive()
    }
}

impl<K, In, A> WindowState<K, In, A>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned,
    A: Aggregate<In>,
{
    /// An empty state with watermark `i64::MIN`; fails if the config is invalid.
    pub fn new(config: WindowConfig, agg: A) -> Result<Self, WindowError> {
        config.validate()?;
        Ok(WindowState {
            store: Store::empty(config.spec),
            config,
            agg,
            op_wm: i64::MIN,
            assigned: Vec::new(),
            _input: PhantomData,
        })
    }

    /// The spec, allowed lateness and emission mode the state was made with; a snapshot
    /// restores only under the same.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// The aggregate, e.g. to `finish` emitted accumulators.
    pub fn aggregate(&self) -> &A {
        &self.agg
    }

    /// Adds one record of `key` at event time `ts`; `input_wm` is the watermark of the record's
    /// source partition just before it. Returns `Some(Late)` when the record missed at least one
    /// of its windows (it is still added to the others); for session windows the record's own
    /// window `[ts, ts + gap)` decides, and a late record is not merged at all.
    #[inline]
    pub fn add(&mut self, key: &K, value: &In, ts: i64, input_wm: i64) -> Option<Late> {
        let lateness = self.config.allowed_lateness_ms;
        let late_at = input_wm.max(self.op_wm);
        let agg = &self.agg;
        match &mut self.store {
            Store::Tumbling { size_ms, windows } => {
                let window = tumbling_window(ts, *size_ms);
                if close_at(window.end, lateness) <= late_at {
                    return Some(self.late(ts, window, 1, input_wm));
                }
                let entry = windows.entry(key, window, || agg.create());
                agg.add(&mut entry.acc, value);
                entry.dirty = true;
                None
            }
            Store::Sliding { spec, windows } => {
                spec.assign(ts, &mut self.assigned);
                let (mut missed, mut first_missed) = (0u32, None);
                for &window in &self.assigned {
                    if close_at(window.end, lateness) <= late_at {
                        missed += 1;
                        first_missed.get_or_insert(window);
                    } else {
                        let entry = windows.entry(key, window, || agg.create());
                        agg.add(&mut entry.acc, value);
                        entry.dirty = true;
                    }
                }
                first_missed.map(|window| self.late(ts, window, missed, input_wm))
            }
            Store::Session { gap_ms, sessions } => {
                let window = session_window(ts, *gap_ms);
                if close_at(window.end, lateness) <= late_at {
                    return Some(self.late(ts, window, 1, input_wm));
                }
                sessions.insert(
                    key,
                    window,
                    || agg.create(),
                    |acc| agg.add(acc, value),
                    |acc, other| agg.merge(acc, other),
                );
                None
            }
        }
    }

    /// The late report for a record at `ts` whose first missed window is `window`.
    fn late(&self, ts: i64, window: Window, windows_missed: u32, input_wm: i64) -> Late {
        let behind = close_at(window.end, self.config.allowed_lateness_ms) <= input_wm;
        let (reason, watermark) = if behind {
            (LateReason::BehindWatermark, input_wm)
        } else {
            (LateReason::WindowClosed, self.op_wm)
        };
        Late {
            ts,
            window,
            windows_missed,
            reason,
            watermark,
        }
    }

    /// Merges a pre-aggregated partial accumulator of `key` for `window` (stage two of salted
    /// aggregation). Never late: partials of a window arrive before the watermark that closes it
    /// here, so they are merged even if the window is complete.
    ///
    /// For session windows the partial window is inserted like a record's window: merged with
    /// every open session of the key it overlaps or touches. Salted sessions are *not* in general
    /// equal to unsalted ones; see the [module docs](super#salted-session-windows).
    ///
    /// A partial for a window this state's watermark has already closed breaks that contract; it
    /// is kept (a debug build asserts) and emitted by the next advance.
    pub fn merge_partial(&mut self, key: K, window: Window, acc: A::Acc) {
        debug_assert!(window.start < window.end, "empty partial window {window:?}");
        debug_assert!(
            close_at(window.end, self.config.allowed_lateness_ms) > self.op_wm,
            "partial for {window:?} arrived after watermark {} closed it",
            self.op_wm
        );
        let agg = &self.agg;
        match &mut self.store {
            Store::Tumbling { windows, .. } | Store::Sliding { windows, .. } => {
                windows.merge(key, window, acc, |acc, other| agg.merge(acc, other));
            }
            Store::Session { sessions, .. } => {
                // The partial becomes the new session's accumulator, or is merged into the
                // accumulator it joins: exactly one of the two closures runs with it.
                let partial = Cell::new(Some(acc));
                sessions.insert(
                    &key,
                    window,
                    || partial.take().expect("create runs first and once"),
                    |acc| {
                        if let Some(other) = partial.take() {
                            agg.merge(acc, other);
                        }
                    },
                    |acc, other| agg.merge(acc, other),
                );
            }
        }
    }

    /// Advances the operator watermark to `wm` (a smaller or equal `wm` is a no-op) and calls
    /// `emit(key, window, acc, is_final)` for every window that fires: first the final results of
    /// the windows `wm` closes (their state is dropped), then, in [`EmitMode::Early`], the
    /// non-final updates; each in order of window end, then start, then per-key insertion order
    /// (sessions: creation order), so the same input sequence always emits the same sequence.
    pub fn advance(&mut self, wm: i64, mut emit: impl FnMut(&K, Window, &A::Acc, bool)) {
        if wm <= self.op_wm {
            return;
        }
        let old = self.op_wm;
        self.op_wm = wm;
        let lateness = self.config.allowed_lateness_ms;
        let closed = |end: i64| close_at(end, lateness) <= wm;
        match &mut self.store {
            Store::Tumbling { windows, .. } | Store::Sliding { windows, .. } => {
                windows.close(closed, &mut emit)
            }
            Store::Session { sessions, .. } => sessions.close(closed, &mut emit),
        }
        let EmitMode::Early { every_ms } = self.config.emit else {
            return;
        };
        let (selected, until_end): (Box<dyn Fn(i64) -> bool>, i64) =
            if old.div_euclid(every_ms) != wm.div_euclid(every_ms) {
                // The watermark crossed a multiple of every_ms: every changed open window.
                (Box::new(|_| true), i64::MAX)
            } else if lateness > 0 {
                // The windows this advance completes (end - 1 in (old, wm]).
                let completes = move |end: i64| end.saturating_sub(1) > old;
                (Box::new(completes), wm.saturating_add(1))
            } else {
                return;
            };
        match &mut self.store {
            Store::Tumbling { windows, .. } | Store::Sliding { windows, .. } => {
                windows.emit_changed(selected, until_end, &mut emit)
            }
            Store::Session { sessions, .. } => {
                sessions.emit_changed(selected, until_end, &mut emit)
            }
        }
    }

    /// The operator watermark: the largest `advance`d so far, `i64::MIN` initially.
    pub fn watermark(&self) -> i64 {
        self.op_wm
    }

    /// (key, window) pairs held: open windows for tumbling and sliding, open sessions.
    pub fn open_windows(&self) -> usize {
        match &self.store {
            Store::Tumbling { windows, .. } | Store::Sliding { windows, .. } => windows.len(),
            Store::Session { sessions, .. } => sessions.len(),
        }
    }

    /// Serializes the whole state (with the watermark and the config it was taken under) with
    /// bincode, for a checkpoint.
    pub fn snapshot(&self) -> Result<Vec<u8>, WindowError> {
        let header = Header {
            magic: SNAPSHOT_MAGIC,
            version: SNAPSHOT_VERSION,
            spec: self.config.spec,
            allowed_lateness_ms: self.config.allowed_lateness_ms,
            op_wm: self.op_wm,
        };
        let body = match &self.store {
            Store::Tumbling { windows, .. } | Store::Sliding { windows, .. } => {
                BodyRef::Fixed(windows.snapshot())
            }
            Store::Session { sessions, .. } => BodyRef::Session(sessions.snapshot()),
        };
        bincode::serde::encode_to_vec((header, body), bincode::config::standard())
            .map_err(|e| WindowError::Snapshot(format!("encode: {e}")))
    }

    /// Replaces the state with a [`snapshot`](Self::snapshot). Fails, leaving the state as it was,
    /// if the bytes are not a valid snapshot or were taken under another window spec or allowed
    /// lateness (the emit mode may differ).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), WindowError> {
        let bad = |what: String| Err(WindowError::Snapshot(what));
        let ((header, body), read): ((Header, Body<K, A::Acc>), usize) =
            bincode::serde::decode_from_slice(bytes, bincode::config::standard())
                .map_err(|e| WindowError::Snapshot(format!("decode: {e}")))?;
        if header.magic != SNAPSHOT_MAGIC || header.version != SNAPSHOT_VERSION {
            return bad(format!(
                "not a version {SNAPSHOT_VERSION} window state snapshot"
            ));
        }
        if read != bytes.len() {
            return bad(format!("{} bytes after the snapshot", bytes.len() - read));
        }
        if header.spec != self.config.spec
            || header.allowed_lateness_ms != self.config.allowed_lateness_ms
        {
            return bad(format!(
                "taken under {:?} with allowed lateness {} ms, restored under {:?} with {} ms",
                header.spec,
                header.allowed_lateness_ms,
                self.config.spec,
                self.config.allowed_lateness_ms
            ));
        }
        let (op_wm, lateness) = (header.op_wm, header.allowed_lateness_ms);
        let closed = |end: i64| close_at(end, lateness) <= op_wm;
        let mut store = Store::empty(self.config.spec);
        match (&mut store, body) {
            (Store::Tumbling { windows, .. } | Store::Sliding { windows, .. }, Body::Fixed(b)) => {
                *windows = FixedWindows::restore(b, closed)?;
            }
            (Store::Session { sessions, .. }, Body::Session(b)) => {
                *sessions = Sessions::restore(b, closed)?;
            }
            _ => return bad("the body does not match the window spec".into()),
        }
        self.store = store;
        self.op_wm = op_wm;
        Ok(())
    }
}
