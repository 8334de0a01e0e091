//! Keyed processing: a function called per record with that key's state, and event-time timers
//! that fire when the watermark passes them (Flink's `KeyedProcessFunction`).
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use weir_operators::process::{KeyedProcessExt, ProcessContext, ProcessFunction};
//!
//! /// Emits a key's running total one minute (event time) after its first record.
//! #[derive(Clone)]
//! struct DelayedTotal;
//!
//! #[derive(Default, Clone, Serialize, Deserialize)]
//! struct Total { sum: i64, armed: bool }
//!
//! impl ProcessFunction<u64, i64, (u64, i64)> for DelayedTotal {
//!     type State = Total;
//!     fn process(&self, _key: &u64, value: i64, ts: i64, s: &mut Total, ctx: &mut ProcessContext<'_, (u64, i64)>) {
//!         s.sum += value;
//!         if !s.armed {
//!             s.armed = true;
//!             ctx.register_timer(ts + 60_000);
//!         }
//!     }
//!     fn on_timer(&self, key: &u64, _at: i64, s: &mut Total, ctx: &mut ProcessContext<'_, (u64, i64)>) {
//!         ctx.emit((*key, s.sum));
//!         ctx.clear_state();
//!     }
//! }
//! ```

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use serde::de::DeserializeOwned;
use weir_runtime::hash::StableBuildHasher;
use weir_runtime::{
    BoxOperator, Data, Error, Event, ExchangeData, Key, KeyedStream, Operator, Output, Result,
    Stream, TaskContext,
};

/// What a process function may do besides changing its key's state.
pub struct ProcessContext<'a, Out> {
    emitted: &'a mut Vec<(Out, i64)>,
    timers: &'a mut Vec<TimerOp>,
    clear: &'a mut bool,
    watermark: i64,
    ts: i64,
}

enum TimerOp {
    Register(i64),
    Delete(i64),
}

impl<Out> ProcessContext<'_, Out> {
    /// Emits a record with the current record's (or timer's) time.
    pub fn emit(&mut self, value: Out) {
        self.emitted.push((value, self.ts));
    }

    /// Emits a record with event time `ts`.
    pub fn emit_at(&mut self, value: Out, ts: i64) {
        self.emitted.push((value, ts));
    }

    /// Calls `on_timer` for this key once the watermark reaches `ts` (once per key and time).
    pub fn register_timer(&mut self, ts: i64) {
        self.timers.push(TimerOp::Register(ts));
    }

    /// Cancels a timer registered for this key.
    pub fn delete_timer(&mut self, ts: i64) {
        self.timers.push(TimerOp::Delete(ts));
    }

    /// Drops this key's state after the call.
    pub fn clear_state(&mut self) {
        *self.clear = true;
    }

    /// The operator's current watermark.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }
}

/// A function run per record of a keyed stream, with per-key state and timers.
pub trait ProcessFunction<K, In, Out>: Clone + Send + Sync + 'static {
    /// The per-key state (created with `Default` on a key's first record).
    type State: Default + Clone + Send + Serialize + DeserializeOwned + 'static;
    /// One record of `key`, with its event time.
    fn process(
        &self,
        key: &K,
        value: In,
        ts: i64,
        state: &mut Self::State,
        ctx: &mut ProcessContext<'_, Out>,
    );
    /// A timer of `key` registered for `at` fired (the watermark reached it).
    fn on_timer(
        &self,
        _key: &K,
        _at: i64,
        _state: &mut Self::State,
        _ctx: &mut ProcessContext<'_, Out>,
    ) {
    }
}

/// Adds `process` to keyed streams: a function per record, with the key's state and
/// event-time timers.
pub trait KeyedProcessExt<K, T> {
    /// Runs `f` per record, with the key's state and timers, on `parallelism` tasks.
    fn process<Out: Data, F: ProcessFunction<K, T, Out>>(
        &self,
        name: &str,
        parallelism: Option<usize>,
        f: F,
    ) -> Stream<Out>;
}

impl<K: Key + Ord, T: ExchangeData> KeyedProcessExt<K, T> for KeyedStream<K, T> {
    fn process<Out: Data, F: ProcessFunction<K, T, Out>>(
        &self,
        name: &str,
        parallelism: Option<usize>,
        f: F,
    ) -> Stream<Out> {
        self.process_with(
            name,
            parallelism,
            move |ctx: &mut TaskContext<'_>, uid: &str| -> Result<BoxOperator<(K, T), Out>> {
                let mut op = ProcessOp {
                    f: f.clone(),
                    states: HashMap::default(),
                    timers: BTreeSet::new(),
                    watermark: i64::MIN,
                    emitted: Vec::new(),
                    timer_ops: Vec::new(),
                };
                if let Some(bytes) = ctx.restored_state(uid) {
                    let (states, timers, watermark): Snapshot<K, F::State> =
                        weir_runtime::state::decode(uid, bytes)?;
                    op.states = states.into_iter().collect();
                    op.timers = timers.into_iter().collect();
                    op.watermark = watermark;
                }
                Ok(Box::new(op))
            },
        )
    }
}

type Snapshot<K, S> = (Vec<(K, S)>, Vec<(i64, K)>, i64);

struct ProcessOp<K, T, Out, F: ProcessFunction<K, T, Out>> {
    f: F,
    states: HashMap<K, F::State, StableBuildHasher>,
    timers: BTreeSet<(i64, K)>,
    watermark: i64,
    emitted: Vec<(Out, i64)>,
    timer_ops: Vec<TimerOp>,
}

impl<K: Key + Ord, T: Data, Out: Data, F: ProcessFunction<K, T, Out>> ProcessOp<K, T, Out, F> {
    /// Applies what a call asked for: timers, state clearing, emissions.
    fn settle(&mut self, key: &K, clear: bool, out: &mut Output<'_, Out>) -> Result<()> {
        for op in self.timer_ops.drain(..) {
            match op {
                TimerOp::Register(at) => self.timers.insert((at, key.clone())),
                TimerOp::Delete(at) => self.timers.remove(&(at, key.clone())),
            };
        }
        if clear {
            self.states.remove(key);
        }
        for (value, ts) in self.emitted.drain(..) {
            out.emit(Event {
                value,
                ts,
                wm: self.watermark,
            })?;
        }
        Ok(())
    }
}

impl<K: Key + Ord, T: Data, Out: Data, F: ProcessFunction<K, T, Out>> Operator<(K, T), Out>
    for ProcessOp<K, T, Out, F>
{
    fn on_event(&mut self, ev: Event<(K, T)>, out: &mut Output<'_, Out>) -> Result<()> {
        let Event {
            value: (key, value),
            ts,
            ..
        } = ev;
        let mut clear = false;
        let state = self.states.entry(key.clone()).or_default();
        let mut ctx = ProcessContext {
            emitted: &mut self.emitted,
            timers: &mut self.timer_ops,
            clear: &mut clear,
            watermark: self.watermark,
            ts,
        };
        self.f.process(&key, value, ts, state, &mut ctx);
        self.settle(&key, clear, out)
    }

    fn on_watermark(&mut self, wm: i64, out: &mut Output<'_, Out>) -> Result<()> {
        self.watermark = self.watermark.max(wm);
        while let Some((at, _)) = self.timers.first()
            && *at <= self.watermark
        {
            let (at, key) = self.timers.pop_first().expect("a first timer");
            let mut clear = false;
            let state = self.states.entry(key.clone()).or_default();
            let mut ctx = ProcessContext {
                emitted: &mut self.emitted,
                timers: &mut self.timer_ops,
                clear: &mut clear,
                watermark: self.watermark,
                ts: at,
            };
            self.f.on_timer(&key, at, state, &mut ctx);
            self.settle(&key, clear, out)?;
        }
        Ok(())
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>> {
        let mut states: Vec<(K, F::State)> = self
            .states
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        let snap: Snapshot<K, F::State> = (
            states,
            self.timers.iter().cloned().collect(),
            self.watermark,
        );
        weir_runtime::state::encode(&snap)
            .map(Some)
            .map_err(|e| Error::Internal(e.to_string()))
    }

    fn state_items(&self) -> usize {
        self.states.len() + self.timers.len()
    }
}
