//! An exchange on a cluster: a repartition topic the job creates, one partition per downstream
//! task, so that any instance can run any task of either stage (Kafka Streams' repartition
//! topics).
//!
//! The sending side ([`RepartitionSender`]) routes each record to a partition exactly as the
//! in-memory exchange routes it to a task, and writes it through the job's writer, in the
//! epoch's transaction. Watermarks and idleness cross the topic as marker records sent by each
//! upstream task to every partition, at the end of each epoch (they become visible with the
//! epoch's data, and not before). The receiving side ([`RepartitionReader`]) is a root task of
//! its instance: it reads one partition read_committed from the job's committed offset, keeps a
//! [`WatermarkValve`] over the upstream tasks (each counts from the start, as an in-memory
//! input does; an idle one stops counting, as it does in memory), and takes barriers from the
//! coordinator as a source does. Its snapshot holds the valve, since the markers it has read
//! lie before its committed offset.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::keys::{RouteFn, TaskKeyFn};
use crate::data::Key;
use crate::emitter::{Checkpoint, Emitter};
use crate::error::{Error, Result};
use crate::event::{Event, WATERMARK_MAX, WATERMARK_MIN};
use crate::hash::{stable_hash, task_for_hash};
use crate::metrics::ExchangeGauge;
use crate::task::{Shared, TaskContext, TaskEnv, TaskRun};
use crate::topics::{Isolation, OutgoingRecord, ReaderConfig, TopicReader};
use crate::watermark::WatermarkValve;

/// The repartition topic of the exchange that starts stage `stage_name` of job `job_id`.
/// Kafka's topic names allow `[A-Za-z0-9._-]`; anything else in an operator's name becomes `_`.
pub(crate) fn topic_name(job_id: &str, stage_name: &str) -> String {
    let stage: String = stage_name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            '@' => '-',
            _ => '_',
        })
        .collect();
    format!("{job_id}-{stage}-repartition")
}

/// A record on a repartition topic, as written (borrowing the record it carries).
#[derive(Serialize)]
enum WireOut<'a, K, T> {
    Data {
        from: u32,
        ts: i64,
        wm: i64,
        key: &'a K,
        value: &'a T,
    },
    Watermark {
        from: u32,
        wm: i64,
    },
    Idle {
        from: u32,
    },
}

/// A record on a repartition topic, as read. The same variants, in the same order, as
/// [`WireOut`].
#[derive(Deserialize)]
enum WireIn<K, T> {
    Data {
        from: u32,
        ts: i64,
        wm: i64,
        key: K,
        value: T,
    },
    Watermark {
        from: u32,
        wm: i64,
    },
    Idle {
        from: u32,
    },
}

fn wire_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// The sending side on a cluster, at the end of an upstream task's chain.
pub(crate) struct RepartitionSender<K, T> {
    topic: String,
    partitions: usize,
    /// This upstream task's index: what the markers and records say they come from.
    from: u32,
    key: TaskKeyFn<T, K>,
    route: Option<RouteFn<K>>,
    /// Records waiting for the next flush: (partition, value's range in `encoded`, timestamp).
    pending: Vec<(i32, std::ops::Range<usize>, i64)>,
    /// The pending records' values, one after another (no allocation per record).
    encoded: Vec<u8>,
    pending_max: usize,
    /// The highest watermark from upstream, and the highest sent as markers.
    watermark: i64,
    watermark_sent: i64,
    /// Upstream went idle and no record came since; whether markers said so.
    idle: bool,
    idle_sent: bool,
    shared: Arc<Shared>,
    gauge: Arc<ExchangeGauge>,
}

impl<K: Key, T: Serialize + Send + 'static> RepartitionSender<K, T> {
    pub(crate) fn new(
        ctx: &TaskContext<'_>,
        topic: String,
        partitions: usize,
        key: TaskKeyFn<T, K>,
        route: Option<RouteFn<K>>,
        gauge: Arc<ExchangeGauge>,
    ) -> Result<RepartitionSender<K, T>> {
        let from = u32::try_from(ctx.index())
            .map_err(|_| Error::Internal(format!("task index {} too large", ctx.index())))?;
        Ok(RepartitionSender {
            topic,
            partitions,
            from,
            key,
            route,
            pending: Vec::new(),
            encoded: Vec::new(),
            pending_max: ctx.config().batch_records_max,
            watermark: WATERMARK_MIN,
            watermark_sent: WATERMARK_MIN,
            idle: false,
            idle_sent: false,
            shared: ctx.shared().clone(),
            gauge,
        })
    }

    /// Appends `record`'s encoding to `encoded`; returns where it lies.
    fn encode(&mut self, record: &WireOut<'_, K, T>) -> Result<std::ops::Range<usize>> {
        let start = self.encoded.len();
        bincode::serde::encode_into_std_write(record, &mut self.encoded, wire_config()).map_err(
            |e| {
                Error::Internal(format!(
                    "a record for `{}` does not serialize: {e}",
                    self.topic
                ))
            },
        )?;
        Ok(start..self.encoded.len())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let records: Vec<OutgoingRecord<'_>> = self
            .pending
            .iter()
            .map(|(partition, value, ts)| OutgoingRecord {
                topic: &self.topic,
                partition: Some(*partition),
                key: None,
                value: &self.encoded[value.clone()],
                timestamp: Some(*ts),
                headers: &[],
            })
            .collect();
        self.shared.output.send(&records)?;
        self.gauge.sent(records.len());
        self.pending.clear();
        self.encoded.clear();
        Ok(())
    }

    /// Sends `marker` to every partition, after the records before it.
    fn broadcast(&mut self, marker: WireOut<'_, K, T>) -> Result<()> {
        let now = self.shared.config.clock.now_ms().max(0);
        for p in 0..self.partitions {
            let value = self.encode(&marker)?;
            self.pending.push((p as i32, value, now));
        }
        self.flush()
    }

    /// The markers of the epoch's end: the watermark if it rose, then idleness if it began.
    fn send_markers(&mut self) -> Result<()> {
        self.flush()?;
        if self.watermark > self.watermark_sent {
            self.watermark_sent = self.watermark;
            let (from, wm) = (self.from, self.watermark);
            self.broadcast(WireOut::Watermark { from, wm })?;
        }
        if self.idle && !self.idle_sent {
            self.idle_sent = true;
            let from = self.from;
            self.broadcast(WireOut::Idle { from })?;
        }
        Ok(())
    }
}

impl<K: Key, T: Serialize + Send + 'static> Emitter<T> for RepartitionSender<K, T> {
    fn event(&mut self, ev: Event<T>) -> Result<()> {
        let k = (self.key)(&ev.value);
        let partition = if self.partitions == 1 {
            0
        } else {
            let hash = match &self.route {
                None => stable_hash(&k),
                Some(route) => route(&k),
            };
            task_for_hash(hash, self.partitions)
        };
        // A record ends idleness downstream by itself.
        self.idle = false;
        self.idle_sent = false;
        let from = self.from;
        let value = self.encode(&WireOut::Data {
            from,
            ts: ev.ts,
            wm: ev.wm,
            key: &k,
            value: &ev.value,
        })?;
        // The log keeps non-negative timestamps (windows may start before 1970 in tests).
        self.pending.push((partition as i32, value, ev.ts.max(0)));
        if self.pending.len() >= self.pending_max {
            self.flush()?;
        }
        Ok(())
    }

    fn watermark(&mut self, wm: i64) -> Result<()> {
        self.watermark = self.watermark.max(wm);
        Ok(())
    }

    fn idle(&mut self) -> Result<()> {
        self.idle = true;
        Ok(())
    }

    fn checkpoint(&mut self, _cp: &mut Checkpoint) -> Result<()> {
        self.send_markers()
    }

    fn finish(&mut self) -> Result<()> {
        self.send_markers()
    }
}

/// What a reader snapshots: per upstream task, its watermark and whether it is idle.
#[derive(Debug, Serialize, Deserialize)]
struct ReaderState {
    inputs: Vec<(i64, bool)>,
}

/// The receiving side on a cluster: a root task reading one partition of the repartition
/// topic.
pub(crate) struct RepartitionReader<K, T> {
    topic: String,
    partition: i32,
    state_key: String,
    start_offset: Option<i64>,
    inputs: Vec<(i64, bool)>,
    valve: WatermarkValve,
    chain: Box<dyn Emitter<(K, T)>>,
    drained: bool,
    gauge: Arc<ExchangeGauge>,
}

impl<K: Key, T: DeserializeOwned + Send + 'static> RepartitionReader<K, T> {
    /// The reader of partition `ctx.index()` of `topic`, fed by `upstream` tasks; its valve is
    /// restored from operator `uid`'s snapshot.
    pub(crate) fn new(
        ctx: &mut TaskContext<'_>,
        uid: &str,
        topic: String,
        upstream: usize,
        chain: Box<dyn Emitter<(K, T)>>,
        gauge: Arc<ExchangeGauge>,
    ) -> Result<RepartitionReader<K, T>> {
        let partition = i32::try_from(ctx.index())
            .map_err(|_| Error::Internal(format!("task index {} too large", ctx.index())))?;
        let mut inputs = vec![(WATERMARK_MIN, false); upstream];
        if let Some(bytes) = ctx.restored_state(uid) {
            let s: ReaderState = crate::state::decode(uid, bytes)?;
            if s.inputs.len() != upstream {
                return Err(Error::State {
                    operator: uid.to_string(),
                    reason: format!(
                        "{} upstream tasks in the snapshot, {upstream} now",
                        s.inputs.len()
                    ),
                });
            }
            inputs = s.inputs;
        }
        let mut valve = WatermarkValve::new(upstream);
        for (i, &(wm, idle)) in inputs.iter().enumerate() {
            valve.raise(i, wm);
            valve.set_idle(i, idle);
        }
        let start_offset =
            ctx.topics()
                .committed_offset(&ctx.config().job_id(), &topic, partition)?;
        Ok(RepartitionReader {
            topic,
            partition,
            state_key: ctx.state_key(uid),
            start_offset,
            inputs,
            valve,
            chain,
            drained: false,
            gauge,
        })
    }

    fn input(&self, from: u32) -> Result<usize> {
        let i = from as usize;
        if i < self.inputs.len() {
            Ok(i)
        } else {
            Err(Error::State {
                operator: self.topic.clone(),
                reason: format!(
                    "a record from upstream task {from} of {} (the job's shape changed?)",
                    self.inputs.len()
                ),
            })
        }
    }

    fn update_watermark(&mut self) -> Result<()> {
        let change = self.valve.update();
        if let Some(wm) = change.watermark {
            self.chain.watermark(wm)?;
        }
        if change.went_idle {
            self.chain.idle()?;
        }
        Ok(())
    }

    fn checkpoint(&mut self, epoch: u64, reader: &dyn TopicReader, env: &TaskEnv) -> Result<()> {
        let mut cp = Checkpoint::new(epoch);
        let state = ReaderState {
            inputs: self.inputs.clone(),
        };
        cp.put_state(&self.state_key, crate::state::encode(&state)?);
        if let Some(pos) = reader.position(&self.topic, self.partition) {
            cp.offsets.push((self.topic.clone(), self.partition, pos));
        }
        self.chain.checkpoint(&mut cp)?;
        env.ack(cp)
    }

    fn handle(&mut self, value: &[u8]) -> Result<()> {
        let (record, read): (WireIn<K, T>, usize) =
            bincode::serde::decode_from_slice(value, wire_config()).map_err(|e| Error::State {
                operator: self.topic.clone(),
                reason: format!("a record does not decode: {e}"),
            })?;
        if read != value.len() {
            return Err(Error::State {
                operator: self.topic.clone(),
                reason: format!("{} trailing bytes in a record", value.len() - read),
            });
        }
        match record {
            WireIn::Data {
                from,
                ts,
                wm,
                key,
                value,
            } => {
                let i = self.input(from)?;
                if self.inputs[i].1 {
                    self.inputs[i].1 = false;
                    self.valve.set_idle(i, false);
                }
                self.chain.event(Event {
                    value: (key, value),
                    ts,
                    wm,
                })?;
            }
            WireIn::Watermark { from, wm } => {
                let i = self.input(from)?;
                self.inputs[i] = (self.inputs[i].0.max(wm), false);
                self.valve.raise(i, wm);
                self.valve.set_idle(i, false);
                self.update_watermark()?;
            }
            WireIn::Idle { from } => {
                let i = self.input(from)?;
                self.inputs[i].1 = true;
                self.valve.set_idle(i, true);
                self.update_watermark()?;
            }
        }
        Ok(())
    }
}

impl<K: Key, T: DeserializeOwned + Send + 'static> TaskRun for RepartitionReader<K, T> {
    fn run(mut self: Box<Self>, env: TaskEnv) -> Result<()> {
        let config = env.config();
        let mut reader = env.topics().reader(ReaderConfig {
            client_id: format!("{}-repartition", config.job_id()),
            isolation: Isolation::ReadCommitted,
            fetch_bytes_max: config.source_poll_bytes_max.min(1 << 20),
            poll_bytes_max: config.source_poll_bytes_max,
        })?;
        reader.assign(&self.topic, &[self.partition])?;
        if let Some(offset) = self.start_offset {
            reader.seek(&self.topic, self.partition, offset)?;
        }
        // A restored valve may already stand somewhere: downstream learns it first.
        self.update_watermark()?;
        let mut epoch = env.restored_epoch();
        loop {
            if env.should_stop() {
                return env.stopped();
            }
            let requested = env.requested_epoch();
            if requested > epoch {
                epoch = requested;
                self.checkpoint(epoch, &*reader, &env)?;
            }
            if !self.drained
                && config.stop_when_drained
                && self.inputs.iter().all(|&(wm, _)| wm == WATERMARK_MAX)
            {
                // Every upstream task drained its input and said so: nothing more will come.
                self.drained = true;
                env.drained();
            }
            let chunks = reader.poll(Duration::from_millis(20))?;
            for chunk in chunks {
                for r in &chunk.records {
                    if let Some(value) = r.value.as_deref() {
                        self.handle(value)?;
                    }
                }
                self.gauge.received(chunk.records.len());
            }
        }
    }
}
