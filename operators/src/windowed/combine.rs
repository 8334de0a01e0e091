//! Local-global aggregation: each upstream task folds its own records into one partial
//! accumulator per (key, window) before the exchange, so the exchange carries partials rather
//! than records (Flink's two-phase aggregation, a combiner in MapReduce's terms). On a cluster
//! that exchange is a repartition topic; combining spares it one write and one read per record.
//!
//! The result is the single stage's exactly, late records included:
//!
//! - **A partial never arrives late.** The local operator hands on a window's partial before it
//!   hands on a watermark that closes the window, at each barrier, and before its task goes
//!   idle. The final operator's watermark is the minimum over its inputs, so it cannot have
//!   closed the window meanwhile.
//! - **Lateness is judged where the single stage judges it.** A record that is already late by
//!   its own partition's watermark (or the task's) travels whole, and the final operator
//!   decides on it as the single stage would. Only a record that no watermark upstream has
//!   closed any of its windows for is folded in, and such a record is on time downstream too.
//! - **After idleness, records travel whole.** While a task is idle the final operator does not
//!   wait for it, so its watermark may pass windows this task has not seen the end of. Records
//!   after that could be late there, and only the final operator can tell which. From its first
//!   idleness on, a local operator therefore hands every record on whole; the flag is in its
//!   snapshot, so this holds across restarts and partition moves too.
//!
//! Session windows, early emission and allowed lateness are not combined (their results depend
//! on when each record arrives, not only on the window's contents): those aggregations stay
//! single-stage.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weir_runtime::{
    BoxOperator, Data, Either, Error, Event, Key, Operator, Output, Result, WATERMARK_MIN,
};

use super::{LateRecord, Partial, WindowOp, WindowResult};
use crate::aggregate::{Aggregate, StableBuildHasher};
use crate::window::{Window, WindowSpec};

/// (key, window) accumulators one local operator holds at most; reaching it hands them all on
/// (they merge downstream, so an early hand-on costs records, not correctness).
pub(super) const COMBINE_ENTRIES_MAX: usize = 1 << 16;

/// What crosses the exchange of a combined aggregation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Combined<K, T, Acc> {
    /// A task's accumulator for one key and window.
    Partial(Partial<K, Acc>),
    /// A record the final operator must judge itself (see the module docs).
    Whole {
        /// The record's key.
        key: K,
        /// The record.
        value: T,
    },
}

impl<K: Clone, T, Acc> Combined<K, T, Acc> {
    /// The key it routes by.
    pub(super) fn key(&self) -> K {
        match self {
            Combined::Partial(p) => p.key.clone(),
            Combined::Whole { key, .. } => key.clone(),
        }
    }
}

/// The local operator as its factory returns it.
pub(super) type LocalBox<K, T, A> = BoxOperator<T, Combined<K, T, <A as Aggregate<T>>::Acc>>;
/// The final operator as its factory returns it.
pub(super) type FinalBox<K, T, A> =
    BoxOperator<(K, Combined<K, T, <A as Aggregate<T>>::Acc>), FinalOut<K, T, A>>;

/// The local operator, chained in the upstream tasks.
pub(super) struct LocalOp<K, T, A: Aggregate<T>> {
    pub(super) key: Arc<dyn Fn(&T) -> K + Send + Sync>,
    pub(super) spec: WindowSpec,
    pub(super) agg: A,
    pub(super) accs: HashMap<(K, Window), A::Acc, StableBuildHasher>,
    /// The smallest end of a window in `accs` (`i64::MAX` when empty): a watermark below it
    /// closes nothing held.
    pub(super) end_min: i64,
    /// The task's watermark, as passed through this operator.
    pub(super) watermark: i64,
    /// The task was idle once: every record goes on whole.
    pub(super) whole: bool,
    pub(super) assigned: Vec<Window>,
}

impl<K: Key, T, A: Aggregate<T>> LocalOp<K, T, A> {
    pub(super) fn new(
        key: Arc<dyn Fn(&T) -> K + Send + Sync>,
        spec: WindowSpec,
        agg: A,
        restored: Option<&[u8]>,
        uid: &str,
    ) -> Result<Self> {
        let whole = match restored {
            None | Some([0]) => false,
            Some([1]) => true,
            Some(other) => {
                return Err(Error::State {
                    operator: uid.to_string(),
                    reason: format!(
                        "a combining operator's state is one byte, 0 or 1, not {other:?}"
                    ),
                });
            }
        };
        Ok(LocalOp {
            key,
            spec,
            agg,
            accs: HashMap::with_hasher(StableBuildHasher::default()),
            end_min: i64::MAX,
            watermark: WATERMARK_MIN,
            whole,
            assigned: Vec::new(),
        })
    }

    /// Hands on the partials of windows ending at or before `end` (all of them with
    /// `i64::MAX`), in window order.
    fn hand_on(&mut self, end: i64, out: &mut Output<'_, Combined<K, T, A::Acc>>) -> Result<()> {
        if self.end_min > end {
            return Ok(());
        }
        let mut due: Vec<(K, Window)> = self
            .accs
            .keys()
            .filter(|(_, w)| w.end <= end)
            .cloned()
            .collect();
        due.sort_by_key(|(_, w)| *w);
        for (key, window) in due {
            let Some(acc) = self.accs.remove(&(key.clone(), window)) else {
                continue;
            };
            out.emit(Event {
                value: Combined::Partial(Partial { key, window, acc }),
                ts: window.end - 1,
                wm: self.watermark,
            })?;
        }
        self.end_min = self
            .accs
            .keys()
            .map(|(_, w)| w.end)
            .min()
            .unwrap_or(i64::MAX);
        Ok(())
    }
}

impl<K: Key, T: Send + 'static, A: Aggregate<T>> Operator<T, Combined<K, T, A::Acc>>
    for LocalOp<K, T, A>
{
    fn on_event(
        &mut self,
        ev: Event<T>,
        out: &mut Output<'_, Combined<K, T, A::Acc>>,
    ) -> Result<()> {
        let key = (self.key)(&ev.value);
        self.spec.assign(ev.ts, &mut self.assigned);
        // A window closes once the watermark reaches its last millisecond (no lateness).
        let judged_at = ev.wm.max(self.watermark);
        let at_risk = self.assigned.iter().any(|w| w.end - 1 <= judged_at);
        if self.whole || at_risk {
            return out.emit(ev.map(|value| Combined::Whole { key, value }));
        }
        if self.accs.len() + self.assigned.len() > COMBINE_ENTRIES_MAX {
            self.hand_on(i64::MAX, out)?;
        }
        for &w in &self.assigned {
            let acc = self
                .accs
                .entry((key.clone(), w))
                .or_insert_with(|| self.agg.create());
            self.agg.add(acc, &ev.value);
            self.end_min = self.end_min.min(w.end);
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        wm: i64,
        out: &mut Output<'_, Combined<K, T, A::Acc>>,
    ) -> Result<()> {
        self.watermark = self.watermark.max(wm);
        // Windows this watermark closes (end - 1 <= wm) go before it.
        self.hand_on(wm.saturating_add(1), out)
    }

    fn on_idle(&mut self, out: &mut Output<'_, Combined<K, T, A::Acc>>) -> Result<()> {
        self.whole = true;
        self.hand_on(i64::MAX, out)
    }

    fn on_checkpoint(&mut self, out: &mut Output<'_, Combined<K, T, A::Acc>>) -> Result<()> {
        self.hand_on(i64::MAX, out)
    }

    fn on_finish(&mut self, out: &mut Output<'_, Combined<K, T, A::Acc>>) -> Result<()> {
        self.hand_on(i64::MAX, out)
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>> {
        // Everything was handed on at the barrier: only the flag is left.
        Ok(Some(vec![u8::from(self.whole)]))
    }

    fn state_items(&self) -> usize {
        self.accs.len()
    }
}

/// The final operator: the single stage's window operator, which also merges partials.
pub(super) struct FinalOp<K, T, A: Aggregate<T>>(pub(super) WindowOp<K, T, A>);

pub(super) type FinalOut<K, T, A> =
    Either<WindowResult<K, <A as Aggregate<T>>::Out>, LateRecord<K, T>>;

impl<K: Key, T: Data, A: Aggregate<T>> Operator<(K, Combined<K, T, A::Acc>), FinalOut<K, T, A>>
    for FinalOp<K, T, A>
where
    A::Out: Data,
{
    fn on_event(
        &mut self,
        ev: Event<(K, Combined<K, T, A::Acc>)>,
        out: &mut Output<'_, FinalOut<K, T, A>>,
    ) -> Result<()> {
        let Event {
            value: (_, combined),
            ts,
            wm,
        } = ev;
        match combined {
            Combined::Partial(p) => {
                self.0.state.merge_partial(p.key, p.window, p.acc);
                Ok(())
            }
            // Judged as the single stage judges it.
            Combined::Whole { key, value } => self.0.on_event(
                Event {
                    value: (key, value),
                    ts,
                    wm,
                },
                out,
            ),
        }
    }

    fn on_watermark(&mut self, wm: i64, out: &mut Output<'_, FinalOut<K, T, A>>) -> Result<()> {
        self.0.on_watermark(wm, out)
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>> {
        self.0.snapshot()
    }

    fn state_items(&self) -> usize {
        self.0.state_items()
    }
}
