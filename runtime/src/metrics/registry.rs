//! The registry of a running job's counters, and the snapshot read from them.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use weir_log::clock::Clock;

use crate::topics::Topics;

use super::counters::{self, CheckpointStats, ExchangeGauge, OperatorCounters, SourceProgress};
use super::snapshot::{JobMetrics, OperatorMetrics};
use crate::event::WATERMARK_MIN;

/// Every counter of a running job. Tasks register theirs while they are built (a lock, once per
/// task and operator); the coordinator records checkpoints; the handle reads snapshots.
#[derive(Debug)]
pub(crate) struct MetricsRegistry {
    counters: Mutex<Vec<Arc<OperatorCounters>>>,
    gauges: Mutex<Vec<Arc<ExchangeGauge>>>,
    sources: Mutex<Vec<Arc<SourceProgress>>>,
    checkpoints: CheckpointStats,
    /// For the snapshot's elapsed time and rate, which report processing speed, not event time.
    started: Instant,
}

impl MetricsRegistry {
    /// An empty registry; the job's elapsed time counts from now.
    pub(crate) fn new() -> MetricsRegistry {
        MetricsRegistry {
            counters: Mutex::new(Vec::new()),
            gauges: Mutex::new(Vec::new()),
            sources: Mutex::new(Vec::new()),
            checkpoints: CheckpointStats::default(),
            started: Instant::now(),
        }
    }

    /// New counters for `operator` in one task.
    pub(crate) fn register_counters(&self, operator: &str) -> Arc<OperatorCounters> {
        let c = Arc::new(OperatorCounters::new(operator));
        self.counters.lock().expect("counters lock").push(c.clone());
        c
    }

    /// An exchange's gauge (shared by its tasks; registered once however many call).
    pub(crate) fn register_gauge(&self, gauge: &Arc<ExchangeGauge>) {
        let mut gauges = self.gauges.lock().expect("gauges lock");
        if !gauges.iter().any(|g| Arc::ptr_eq(g, gauge)) {
            gauges.push(gauge.clone());
        }
    }

    /// New progress counters for one source task.
    pub(crate) fn register_source(&self) -> Arc<SourceProgress> {
        let p = Arc::new(SourceProgress::default());
        p.watermark.store(WATERMARK_MIN, Relaxed);
        self.sources.lock().expect("sources lock").push(p.clone());
        p
    }

    /// Epoch `epoch` committed, `duration_ms` after its barriers were requested, writing
    /// `state_bytes` of changed state.
    pub(crate) fn record_checkpoint(&self, epoch: u64, duration_ms: u64, state_bytes: u64) {
        let s = &self.checkpoints;
        s.committed.fetch_add(1, Relaxed);
        s.last_epoch.store(epoch, Relaxed);
        s.last_ms.store(duration_ms, Relaxed);
        s.max_ms.fetch_max(duration_ms, Relaxed);
        s.total_ms.fetch_add(duration_ms, Relaxed);
        s.last_state_bytes.store(state_bytes, Relaxed);
    }

    /// A snapshot of every counter. `topics` gives the source partitions' ends (for the lag),
    /// `clock` the processing time (for the watermark lag).
    pub(crate) fn collect(&self, topics: &dyn Topics, clock: &dyn Clock) -> JobMetrics {
        let elapsed = self.started.elapsed();
        let mut operators: Vec<OperatorMetrics> = Vec::new();
        for c in self.counters.lock().expect("counters lock").iter() {
            let (i, o, s) = counters::operator_values(c);
            match operators.iter_mut().find(|m| m.operator == c.operator) {
                Some(m) => {
                    m.records_in += i;
                    m.records_out += o;
                    m.state_items += s;
                }
                None => operators.push(OperatorMetrics {
                    operator: c.operator.clone(),
                    records_in: i,
                    records_out: o,
                    state_items: s,
                }),
            }
        }
        let exchanges = self
            .gauges
            .lock()
            .expect("gauges lock")
            .iter()
            .map(|g| counters::gauge_values(g))
            .collect();
        let (mut records, mut bytes, mut decode_errors, mut lag) = (0, 0, 0, 0);
        // What the operators see: the minimum over live sources (the maximum if all are idle).
        let (mut live_min, mut idle_max): (Option<i64>, Option<i64>) = (None, None);
        for s in self.sources.lock().expect("sources lock").iter() {
            records += counters::load(&s.records);
            bytes += counters::load(&s.bytes);
            decode_errors += counters::load(&s.decode_errors);
            let wm = s.watermark.load(Relaxed);
            if s.idle.load(Relaxed) {
                idle_max = Some(idle_max.map_or(wm, |w| w.max(wm)));
            } else {
                live_min = Some(live_min.map_or(wm, |w| w.min(wm)));
            }
            for (topic, p, pos) in s.positions.lock().expect("positions lock").iter() {
                if let Ok(end) = topics.end_offset(topic, *p) {
                    lag += (end - pos).max(0);
                }
            }
        }
        let watermark = live_min.or(idle_max).filter(|w| *w != WATERMARK_MIN);
        let now = clock.now_ms();
        let c = &self.checkpoints;
        JobMetrics {
            elapsed,
            source_records: records,
            source_bytes: bytes,
            events_per_s: records as f64 / elapsed.as_secs_f64().max(1e-9),
            source_lag: lag,
            decode_errors,
            watermark,
            watermark_lag_ms: watermark
                .filter(|w| *w != i64::MAX)
                .map(|w| now.saturating_sub(w)),
            checkpoints: counters::load(&c.committed),
            last_epoch: counters::load(&c.last_epoch),
            checkpoint_last_ms: counters::load(&c.last_ms),
            checkpoint_max_ms: counters::load(&c.max_ms),
            checkpoint_state_bytes: counters::load(&c.last_state_bytes),
            operators,
            exchanges,
        }
    }
}
