//! Windowed aggregation of keyed streams, with late records to a side output, partials
//! combined before the exchange, and hot keys salted over two stages.
//!
//! ```text
//! combined:      fold into partials ─► exchange(key) ─► merge partials, judge ─► results
//!                 (chained in the         (partials, and     whole records    └─► late records
//!                  upstream tasks)         records at risk of lateness, whole)
//! single stage:  exchange(key) ─► window + aggregate ─► results
//!                                        └──────────────► late records
//! two stages:    salt hot keys ─► exchange(key, salt) ─► window + pre-aggregate ─┐
//!                 (chained in the upstream tasks)                └─► late records │
//!                ┌────────────────────────────────────────────────────────────────┘
//!                └► exchange(key) ─► merge partials per window ─► results
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_runtime::{
    BoxOperator, Data, Either, Error, Event, ExchangeData, Key, KeyedStream, Operator, Output,
    Result, Stream, TaskContext,
};

use crate::aggregate::Aggregate;
use crate::hot_keys::{HotKeyConfig, HotKeyDetector};
use crate::window::{EmitMode, Late, LateReason, Window, WindowConfig, WindowSpec, WindowState};

mod combine;

use combine::{Combined, FinalBox, FinalOp, LocalBox, LocalOp};

/// One result of a window: the aggregate of `key`'s records in `[window_start, window_end)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowResult<K, O> {
    /// The key the records were grouped by.
    pub key: K,
    /// Inclusive start, ms since the epoch.
    pub window_start: i64,
    /// Exclusive end, ms since the epoch.
    pub window_end: i64,
    /// The aggregate over the key's records in the window (so far, for an early result).
    pub value: O,
    /// `false` for an early (updating) result; the final one follows when the window closes.
    pub is_final: bool,
}

/// A record that missed its window, with the reason: the windowed operators' side output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LateRecord<K, T> {
    /// The record's key.
    pub key: K,
    /// The record as it came in, whole: the late output loses nothing of it.
    pub value: T,
    /// The record's event time, ms since the epoch.
    pub ts: i64,
    /// Inclusive start of the (first) window it missed, ms since the epoch.
    pub window_start: i64,
    /// Exclusive end of that window, ms since the epoch.
    pub window_end: i64,
    /// How many of its windows it missed (sliding windows may take a record into several).
    pub windows_missed: u32,
    /// `behind_watermark` (late within its own source partition) or `window_closed` (its
    /// window had been closed while its input was idle).
    pub reason: String,
    /// The watermark it was judged against.
    pub watermark: i64,
}

/// Which keys to salt, and over how many salts.
#[derive(Debug, Clone)]
pub struct HotKeys<K> {
    salts: u32,
    /// `None`: salt only the named keys.
    detect: Option<HotKeyConfig<K>>,
    named: Vec<K>,
}

impl<K: Key> HotKeys<K> {
    /// Detect hot keys on the fly (a Space-Saving sketch per upstream task).
    pub fn detect() -> HotKeys<K> {
        HotKeys {
            salts: 8,
            detect: Some(HotKeyConfig::default()),
            named: Vec::new(),
        }
    }

    /// Salt exactly these keys.
    pub fn named(keys: Vec<K>) -> HotKeys<K> {
        HotKeys {
            salts: 8,
            detect: None,
            named: keys,
        }
    }

    /// Spread each hot key over `salts` pre-aggregation keys (default 8).
    pub fn salts(mut self, salts: u32) -> Self {
        self.salts = salts;
        self
    }

    /// A key is hot when its share of the records is at least `share` (detection only).
    pub fn share(mut self, share: f64) -> Self {
        if let Some(d) = &mut self.detect {
            d.hot_share = share;
        }
        self
    }

    /// Tunes the detecting sketch (its `named` keys are always salted).
    pub fn config(mut self, config: HotKeyConfig<K>) -> Self {
        self.detect = Some(config);
        self
    }
}

/// What salting did: readable while the job runs.
#[derive(Debug, Default)]
pub struct HotKeyStats<K> {
    inner: Mutex<Vec<HotKeyCount<K>>>,
    salts: u32,
}

/// One hot key and how many of its records were salted, per salt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotKeyCount<K> {
    /// A key that was salted.
    pub key: K,
    /// Records of the key sent to each salt.
    pub per_salt: Vec<u64>,
}

impl<K: Clone + PartialEq> HotKeyStats<K> {
    /// The keys salted so far, with their records per salt, summed over the upstream tasks.
    pub fn hot_keys(&self) -> Vec<HotKeyCount<K>> {
        self.inner.lock().expect("hot key stats lock").clone()
    }

    /// The number of salts each hot key is spread over.
    pub fn salts(&self) -> u32 {
        self.salts
    }

    fn add(&self, key: &K, salt: u32, n: u64) {
        let mut v = self.inner.lock().expect("hot key stats lock");
        let i = match v.iter().position(|h| &h.key == key) {
            Some(i) => i,
            None => {
                v.push(HotKeyCount {
                    key: key.clone(),
                    per_salt: vec![0; self.salts as usize],
                });
                v.len() - 1
            }
        };
        v[i].per_salt[salt as usize] += n;
    }
}

/// The outputs of a windowed aggregation.
pub struct WindowOutput<K, T, O> {
    /// One final result per (key, window) when the window closes, preceded by early results
    /// under [`EmitMode::Early`].
    pub results: Stream<WindowResult<K, O>>,
    /// Records that missed their window. Must be consumed (sent to a topic, usually): starting
    /// the job fails otherwise, so late data is never dropped silently.
    pub late: Stream<LateRecord<K, T>>,
    /// With hot-key salting: which keys were salted and how.
    pub hot_keys: Option<Arc<HotKeyStats<K>>>,
}

/// Adds `window` to keyed streams: the start of every windowed aggregation.
pub trait KeyedWindowExt<K, T> {
    /// Groups each key's records into event-time windows.
    fn window(&self, spec: WindowSpec) -> WindowedStream<K, T>;
}

impl<K: Key, T: ExchangeData> KeyedWindowExt<K, T> for KeyedStream<K, T> {
    fn window(&self, spec: WindowSpec) -> WindowedStream<K, T> {
        WindowedStream {
            keyed: KeyedStream::clone(self),
            config: WindowConfig {
                spec,
                allowed_lateness_ms: 0,
                emit: EmitMode::Final,
            },
            parallelism: None,
            hot_keys: None,
            combine: true,
            name: "window".to_string(),
        }
    }
}

/// A keyed stream with windows, before its aggregate is chosen.
pub struct WindowedStream<K, T> {
    keyed: KeyedStream<K, T>,
    config: WindowConfig,
    parallelism: Option<usize>,
    hot_keys: Option<HotKeys<K>>,
    combine: bool,
    name: String,
}

impl<K: Key, T: ExchangeData> WindowedStream<K, T> {
    /// Keeps windows open this long after they are complete; records arriving meanwhile still
    /// count (default 0).
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.config.allowed_lateness_ms = lateness.as_millis() as i64;
        self
    }

    /// Also emits early (non-final) results each time the watermark passes a multiple of
    /// `every` while a window is open and has changed.
    pub fn emit_early(mut self, every: Duration) -> Self {
        self.config.emit = EmitMode::Early {
            every_ms: every.as_millis() as i64,
        };
        self
    }

    /// The number of window tasks (default: the job's parallelism).
    pub fn parallelism(mut self, tasks: usize) -> Self {
        self.parallelism = Some(tasks);
        self
    }

    /// Names the operator (in metrics and state).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Salts hot keys: two-stage aggregation whose result equals the single-stage one exactly.
    pub fn hot_keys(mut self, hot_keys: HotKeys<K>) -> Self {
        self.hot_keys = Some(hot_keys);
        self
    }

    /// Aggregates each window with `agg`.
    pub fn aggregate<A>(mut self, agg: A) -> WindowOutput<K, T, A::Out>
    where
        A: Aggregate<T>,
        A::Out: Data,
        A::Acc: Data,
    {
        let late_message = format!(
            "the late records of `{}` are not consumed: send `late` to a topic \
             (e.g. `out.late.sink(\"late\", Json)`) so they are never dropped silently",
            self.name
        );
        let problem = match (&self.config.validate(), &self.hot_keys, &self.config.emit) {
            (Err(e), _, _) => Some(e.to_string()),
            (Ok(()), Some(_), EmitMode::Early { .. }) => Some(
                "early emission cannot be combined with hot-key salting (partial results \
                 would be merged twice)"
                    .to_string(),
            ),
            (Ok(()), Some(_), _) if matches!(self.config.spec, WindowSpec::Session { .. }) => Some(
                "session windows cannot be salted: sessions split over salts may close apart \
                 and not merge back (see the `window` module docs)"
                    .to_string(),
            ),
            _ => None,
        };
        if let Some(problem) = problem {
            // Reported by `start`, with the graph's other problems.
            self.keyed
                .unkeyed()
                .graph_error(format!("`{}`: {problem}", self.name));
        }
        let combinable = !matches!(self.config.spec, WindowSpec::Session { .. })
            && matches!(self.config.emit, EmitMode::Final)
            && self.config.allowed_lateness_ms == 0
            && self.combine;
        match self.hot_keys.take() {
            None if combinable => self.combined(agg, late_message),
            None => self.single_stage(agg, late_message),
            Some(hot) => self.two_stage(agg, hot, late_message),
        }
    }

    /// Whether each upstream task folds its records into one partial per (key, window) before
    /// the exchange, which then carries partials instead of records (default `true`). It
    /// applies to tumbling and sliding windows with final results only, no allowed lateness and
    /// no hot-key salting; other aggregations are single-stage whatever this says. The results
    /// and late records are the single stage's exactly (see the module docs). `false` sends
    /// every record through the exchange.
    pub fn combine(mut self, combine: bool) -> Self {
        self.combine = combine;
        self
    }

    /// Partials folded in the upstream tasks, merged after the exchange (`combine` module).
    fn combined<A>(self, agg: A, late_message: String) -> WindowOutput<K, T, A::Out>
    where
        A: Aggregate<T>,
        A::Out: Data,
        A::Acc: Data,
    {
        let config = self.config;
        let key = self.keyed.key_fn();
        let local_agg = agg.clone();
        let spec = config.spec;
        let partials = self.keyed.unkeyed().transform(
            &format!("{}-combine", self.name),
            move |ctx: &mut TaskContext<'_>, uid: &str| -> Result<LocalBox<K, T, A>> {
                Ok(Box::new(LocalOp::new(
                    key.clone(),
                    spec,
                    local_agg.clone(),
                    ctx.restored_state(uid),
                    uid,
                )?))
            },
        );
        let both = partials
            .key_by(|c: &Combined<K, T, A::Acc>| c.key())
            .process_with(
                &self.name,
                self.parallelism,
                move |ctx: &mut TaskContext<'_>, uid: &str| -> Result<FinalBox<K, T, A>> {
                    let state = new_state(ctx, uid, config, agg.clone())?;
                    Ok(Box::new(FinalOp(WindowOp {
                        state,
                        agg: agg.clone(),
                        fired: Vec::new(),
                    })))
                },
            );
        let (results, late) = both.split(Some(late_message));
        WindowOutput {
            results,
            late,
            hot_keys: None,
        }
    }

    /// Reduces each window's records with `f` (associative and commutative), as
    /// `aggregate(reduce(f))`.
    pub fn reduce<F>(self, f: F) -> WindowOutput<K, T, Option<T>>
    where
        F: Fn(&mut T, &T) + Clone + Send + Sync + 'static,
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        self.aggregate(crate::aggregate::reduce(f))
    }

    fn single_stage<A>(self, agg: A, late_message: String) -> WindowOutput<K, T, A::Out>
    where
        A: Aggregate<T>,
        A::Out: Data,
        A::Acc: Data,
    {
        let config = self.config;
        let both = self.keyed.process_with(
            &self.name,
            self.parallelism,
            move |ctx: &mut TaskContext<'_>, uid: &str| -> Result<BoxOperator<(K, T), _>> {
                let state = new_state(ctx, uid, config, agg.clone())?;
                Ok(Box::new(WindowOp {
                    state,
                    agg: agg.clone(),
                    fired: Vec::new(),
                }))
            },
        );
        let (results, late) = both.split(Some(late_message));
        WindowOutput {
            results,
            late,
            hot_keys: None,
        }
    }

    fn two_stage<A>(
        self,
        agg: A,
        hot: HotKeys<K>,
        late_message: String,
    ) -> WindowOutput<K, T, A::Out>
    where
        A: Aggregate<T>,
        A::Out: Data,
        A::Acc: Data,
    {
        let stats = Arc::new(HotKeyStats {
            inner: Mutex::new(Vec::new()),
            salts: hot.salts.max(1),
        });
        let key = self.keyed.key_fn();
        if let Some(c) = &hot.detect
            && let Err(e) = HotKeyDetector::new(c.clone())
        {
            self.keyed
                .unkeyed()
                .graph_error(format!("`{}`: hot keys: {e}", self.name));
        }
        let s = stats.clone();
        let plain = key.clone();
        // Salting happens in the exchange's key function, in the upstream tasks: each keeps
        // its own detector.
        let salted = self.keyed.unkeyed().key_by_with(
            move |t: &T| (plain(t), 0u32),
            move || {
                let mut salter = SaltingKey {
                    key: key.clone(),
                    detector: hot
                        .detect
                        .as_ref()
                        .and_then(|c| HotKeyDetector::new(c.clone()).ok()),
                    named: hot.named.clone(),
                    salts: hot.salts.max(1),
                    next_salt: 0,
                    stats: s.clone(),
                    pending: Vec::new(),
                    pending_records: 0,
                    last: 0,
                };
                Box::new(move |t: &T| salter.salt(t))
            },
        );
        // A hot key's salts go to consecutive tasks, so S salts over P tasks split S/P each
        // (hashing (key, salt) could put most of them on one task).
        let step = u64::MAX / u64::from(hot.salts.max(1)) + 1;
        let salted = salted.route_by(move |(k, salt): &(K, u32)| {
            weir_runtime::hash::stable_hash(k).wrapping_add(u64::from(*salt).wrapping_mul(step))
        });
        let config = self.config;
        let a1 = agg.clone();
        let stage_one = salted.process_with(
            &format!("{}-partial", self.name),
            self.parallelism,
            move |ctx: &mut TaskContext<'_>, uid: &str| -> Result<StageOne<K, T, A>> {
                let state = new_state(ctx, uid, config, a1.clone())?;
                Ok(Box::new(PartialOp {
                    state,
                    fired: Vec::new(),
                }))
            },
        );
        let (partials, late) = stage_one.split(Some(late_message));
        let mut merge_config = self.config;
        merge_config.allowed_lateness_ms = self.config.allowed_lateness_ms;
        let a2 = agg.clone();
        let results = partials
            .key_by(|p: &Partial<K, A::Acc>| p.key.clone())
            .process_with(
                &format!("{}-merge", self.name),
                self.parallelism,
                move |ctx: &mut TaskContext<'_>, uid: &str| -> Result<StageTwo<K, T, A>> {
                    let state = new_state(ctx, uid, merge_config, a2.clone())?;
                    Ok(Box::new(MergeOp {
                        state,
                        agg: a2.clone(),
                        fired: Vec::new(),
                    }))
                },
            );
        WindowOutput {
            results,
            late,
            hot_keys: Some(stats),
        }
    }
}

fn new_state<K: Key, T, A: Aggregate<T>>(
    ctx: &TaskContext<'_>,
    uid: &str,
    config: WindowConfig,
    agg: A,
) -> Result<WindowState<K, T, A>> {
    let mut state = WindowState::new(config, agg).map_err(|e| Error::Operator {
        operator: uid.to_string(),
        reason: e.to_string(),
    })?;
    if let Some(bytes) = ctx.restored_state(uid) {
        state.restore(bytes).map_err(|e| Error::State {
            operator: uid.to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(state)
}

fn late_record<K, T>(key: K, value: T, late: Late) -> LateRecord<K, T> {
    LateRecord {
        key,
        value,
        ts: late.ts,
        window_start: late.window.start,
        window_end: late.window.end,
        windows_missed: late.windows_missed,
        reason: match late.reason {
            LateReason::BehindWatermark => "behind_watermark",
            LateReason::WindowClosed => "window_closed",
        }
        .to_string(),
        watermark: late.watermark,
    }
}

fn snapshot_of<K: Key, T, A: Aggregate<T>>(
    state: &WindowState<K, T, A>,
) -> Result<Option<Vec<u8>>> {
    state
        .snapshot()
        .map(Some)
        .map_err(|e| Error::Internal(format!("window snapshot: {e}")))
}

/// Advances `state` to `wm` and hands each fired window's result to `emit`, timed at the
/// window's last millisecond. `fired` is a reused buffer.
fn fire<K: Key, T, A: Aggregate<T>>(
    state: &mut WindowState<K, T, A>,
    agg: &A,
    fired: &mut Vec<(K, Window, A::Out, bool)>,
    wm: i64,
    mut emit: impl FnMut(Event<WindowResult<K, A::Out>>) -> Result<()>,
) -> Result<()> {
    state.advance(wm, |k, w, acc, is_final| {
        fired.push((k.clone(), w, agg.finish(acc), is_final));
    });
    for (key, w, value, is_final) in fired.drain(..) {
        emit(Event {
            value: WindowResult {
                key,
                window_start: w.start,
                window_end: w.end,
                value,
                is_final,
            },
            ts: w.end - 1,
            wm,
        })?;
    }
    Ok(())
}

/// Single stage: windows and final results.
struct WindowOp<K, T, A: Aggregate<T>> {
    state: WindowState<K, T, A>,
    agg: A,
    fired: Vec<(K, Window, A::Out, bool)>,
}

impl<K: Key, T: Data, A: Aggregate<T>>
    Operator<(K, T), Either<WindowResult<K, A::Out>, LateRecord<K, T>>> for WindowOp<K, T, A>
where
    A::Out: Data,
{
    fn on_event(
        &mut self,
        ev: Event<(K, T)>,
        out: &mut Output<'_, Either<WindowResult<K, A::Out>, LateRecord<K, T>>>,
    ) -> Result<()> {
        let Event {
            value: (key, value),
            ts,
            wm,
        } = ev;
        if let Some(late) = self.state.add(&key, &value, ts, wm) {
            let wm_now = self.state.watermark();
            out.emit(Event {
                value: Either::Right(late_record(key, value, late)),
                ts,
                wm: wm_now.max(wm),
            })?;
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        wm: i64,
        out: &mut Output<'_, Either<WindowResult<K, A::Out>, LateRecord<K, T>>>,
    ) -> Result<()> {
        fire(&mut self.state, &self.agg, &mut self.fired, wm, |r| {
            out.emit(r.map(Either::Left))
        })
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>> {
        snapshot_of(&self.state)
    }

    fn state_items(&self) -> usize {
        self.state.open_windows()
    }
}

/// Stage one's operator as its factory returns it.
type StageOne<K, T, A> =
    BoxOperator<(SaltedKey<K>, T), Either<Partial<K, <A as Aggregate<T>>::Acc>, LateRecord<K, T>>>;
/// Stage two's operator.
type StageTwo<K, T, A> = BoxOperator<
    (K, Partial<K, <A as Aggregate<T>>::Acc>),
    WindowResult<K, <A as Aggregate<T>>::Out>,
>;

/// A key and the salt that spreads it.
type SaltedKey<K> = (K, u32);

/// Stage one's output: a pre-aggregate of one salt of a key.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Partial<K, Acc> {
    key: K,
    window: Window,
    acc: Acc,
}

/// Records salted between two updates of the shared stats.
const SALT_STATS_RECORDS: u64 = 1 << 16;

/// The key function of stage one's exchange, one per upstream task: spreads hot keys over the
/// salts round-robin; other keys keep salt 0.
struct SaltingKey<K: Key, T> {
    key: Arc<dyn Fn(&T) -> K + Send + Sync>,
    detector: Option<HotKeyDetector<K>>,
    named: Vec<K>,
    salts: u32,
    next_salt: u32,
    stats: Arc<HotKeyStats<K>>,
    /// Records salted since the stats were last updated: (key, records per salt).
    pending: Vec<(K, Vec<u64>)>,
    pending_records: u64,
    /// The index in `pending` of the last key salted (hot keys come in runs).
    last: usize,
}

impl<K: Key, T> SaltingKey<K, T> {
    #[inline]
    fn salt(&mut self, t: &T) -> (K, u32) {
        let k = (self.key)(t);
        let hot = match &mut self.detector {
            Some(d) => d.observe(&k),
            None => self.named.contains(&k),
        };
        if !hot {
            return (k, 0);
        }
        self.next_salt += 1;
        if self.next_salt == self.salts {
            self.next_salt = 0;
        }
        let salt = self.next_salt;
        self.count(&k, salt);
        (k, salt)
    }

    fn count(&mut self, k: &K, salt: u32) {
        let i = match self.pending.get(self.last) {
            Some((pk, _)) if pk == k => self.last,
            _ => match self.pending.iter().position(|(pk, _)| pk == k) {
                Some(i) => i,
                None => {
                    self.pending.push((k.clone(), vec![0; self.salts as usize]));
                    self.pending.len() - 1
                }
            },
        };
        self.last = i;
        self.pending[i].1[salt as usize] += 1;
        self.pending_records += 1;
        if self.pending_records >= SALT_STATS_RECORDS {
            self.flush_stats();
        }
    }

    fn flush_stats(&mut self) {
        for (k, per_salt) in self.pending.drain(..) {
            for (salt, n) in per_salt.into_iter().enumerate() {
                if n > 0 {
                    self.stats.add(&k, salt as u32, n);
                }
            }
        }
        self.last = 0;
        self.pending_records = 0;
    }
}

impl<K: Key, T> Drop for SaltingKey<K, T> {
    fn drop(&mut self) {
        self.flush_stats();
    }
}

/// Stage one: windows per (key, salt), emitting pre-aggregates when they close.
struct PartialOp<K, T, A: Aggregate<T>> {
    state: WindowState<(K, u32), T, A>,
    fired: Vec<((K, u32), Window, A::Acc)>,
}

impl<K: Key, T: Data, A: Aggregate<T>>
    Operator<(SaltedKey<K>, T), Either<Partial<K, A::Acc>, LateRecord<K, T>>> for PartialOp<K, T, A>
where
    A::Acc: Data,
{
    fn on_event(
        &mut self,
        ev: Event<(SaltedKey<K>, T)>,
        out: &mut Output<'_, Either<Partial<K, A::Acc>, LateRecord<K, T>>>,
    ) -> Result<()> {
        let Event {
            value: (ks, value),
            ts,
            wm,
        } = ev;
        if let Some(late) = self.state.add(&ks, &value, ts, wm) {
            let wm_now = self.state.watermark();
            out.emit(Event {
                value: Either::Right(late_record(ks.0, value, late)),
                ts,
                wm: wm_now.max(wm),
            })?;
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        wm: i64,
        out: &mut Output<'_, Either<Partial<K, A::Acc>, LateRecord<K, T>>>,
    ) -> Result<()> {
        let fired = &mut self.fired;
        self.state.advance(wm, |k, w, acc, _is_final| {
            fired.push((k.clone(), w, acc.clone()));
        });
        for ((key, _salt), window, acc) in self.fired.drain(..) {
            out.emit(Event {
                value: Either::Left(Partial { key, window, acc }),
                ts: window.end - 1,
                wm,
            })?;
        }
        Ok(())
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>> {
        snapshot_of(&self.state)
    }

    fn state_items(&self) -> usize {
        self.state.open_windows()
    }
}

/// Stage two: merges the partials of each key and window, and emits the result.
struct MergeOp<K, T, A: Aggregate<T>> {
    state: WindowState<K, T, A>,
    agg: A,
    fired: Vec<(K, Window, A::Out, bool)>,
}

impl<K: Key, T: Data, A: Aggregate<T>> Operator<(K, Partial<K, A::Acc>), WindowResult<K, A::Out>>
    for MergeOp<K, T, A>
where
    A::Out: Data,
    A::Acc: Data,
{
    fn on_event(
        &mut self,
        ev: Event<(K, Partial<K, A::Acc>)>,
        _out: &mut Output<'_, WindowResult<K, A::Out>>,
    ) -> Result<()> {
        let (key, p) = ev.value;
        self.state.merge_partial(key, p.window, p.acc);
        Ok(())
    }

    fn on_watermark(
        &mut self,
        wm: i64,
        out: &mut Output<'_, WindowResult<K, A::Out>>,
    ) -> Result<()> {
        fire(&mut self.state, &self.agg, &mut self.fired, wm, |r| {
            out.emit(r)
        })
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>> {
        snapshot_of(&self.state)
    }

    fn state_items(&self) -> usize {
        self.state.open_windows()
    }
}
