//! Source tasks: each owns some partitions of a topic, decodes their records, assigns event
//! time, tracks a watermark per partition (combined by a [`WatermarkValve`], idle partitions
//! excluded), and injects checkpoint barriers between polls, recording the positions they stand
//! for.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::codec::Codec;
use crate::data::Data;
use crate::emitter::{Checkpoint, Emitter};
use crate::error::{Error, Result};
use crate::event::{Event, WATERMARK_MAX, WATERMARK_MIN};
use crate::metrics::SourceProgress;
use crate::task::{TaskContext, TaskEnv, TaskRun};
use crate::topics::{
    Isolation, OutgoingRecord, ReaderConfig, RecordChunk, RecordHeader, TopicReader, TopicRecord,
};
use crate::watermark::WatermarkValve;

/// How a source assigns event time.
pub(crate) enum Timestamps<T> {
    /// The record's log timestamp; watermarks follow it exactly.
    LogTime,
    /// A field of the value, with bounded out-of-orderness (ms).
    #[allow(clippy::type_complexity)]
    Field(Arc<dyn Fn(&T) -> i64 + Send + Sync>, i64),
}

pub(crate) struct SourceSpec<T, C> {
    pub(crate) topic: String,
    codec: C,
    pub(crate) parallelism: Option<usize>,
    pub(crate) dead_letter: Option<String>,
    pub(crate) timestamps: Timestamps<T>,
}

impl<T, C> SourceSpec<T, C> {
    pub(crate) fn new(topic: &str, codec: C) -> SourceSpec<T, C> {
        SourceSpec {
            topic: topic.to_string(),
            codec,
            parallelism: None,
            dead_letter: None,
            timestamps: Timestamps::LogTime,
        }
    }
}

/// What a source task snapshots: the event-time progress of each partition. Positions are
/// committed as consumer-group offsets in the same transaction.
#[derive(Debug, Serialize, Deserialize)]
struct SourceState {
    /// (partition, highest event time seen).
    max_ts: Vec<(i32, i64)>,
}

struct PartitionState {
    partition: i32,
    max_ts: i64,
    watermark: i64,
    last_data_ms: i64,
    idle: bool,
    drained: bool,
    /// Records arrived in the current poll.
    got_data: bool,
}

pub(crate) struct SourceTask<T, C> {
    spec: Arc<SourceSpec<T, C>>,
    state_key: String,
    chain: Box<dyn Emitter<T>>,
    parts: Vec<PartitionState>,
    start_offsets: Vec<Option<i64>>,
    /// The task's watermark over its partitions (a drained partition has ended).
    valve: WatermarkValve,
    /// A task with no partition told downstream once that it is idle.
    idle_without_partitions: bool,
    drained: bool,
    progress: Arc<SourceProgress>,
}

pub(crate) fn task<T: Data, C: Codec<T>>(
    spec: Arc<SourceSpec<T, C>>,
    uid: &str,
    chain: Box<dyn Emitter<T>>,
    partitions: usize,
    ctx: &mut TaskContext<'_>,
) -> Result<Box<dyn TaskRun>> {
    let mine: Vec<i32> = (0..partitions)
        .filter(|p| p % ctx.parallelism() == ctx.index())
        .map(|p| p as i32)
        .collect();
    let restored: Option<SourceState> = match ctx.restored_state(uid) {
        Some(bytes) => Some(crate::state::decode(uid, bytes)?),
        None => None,
    };
    let now = ctx.config().clock.now_ms();
    let bound = match &spec.timestamps {
        Timestamps::LogTime => 0,
        Timestamps::Field(_, bound) => *bound,
    };
    let mut parts = Vec::new();
    let mut start_offsets = Vec::new();
    for &p in &mine {
        let max_ts = restored
            .as_ref()
            .and_then(|s| s.max_ts.iter().find(|(q, _)| *q == p).map(|(_, t)| *t))
            .unwrap_or(WATERMARK_MIN);
        parts.push(PartitionState {
            partition: p,
            max_ts,
            watermark: watermark_of(max_ts, bound),
            last_data_ms: now,
            idle: false,
            drained: false,
            got_data: false,
        });
        start_offsets.push(ctx.topics().committed_offset(
            &ctx.config().job_id(),
            &spec.topic,
            p,
        )?);
    }
    let progress = ctx.register_source();
    Ok(Box::new(SourceTask {
        spec,
        state_key: ctx.state_key(uid),
        chain,
        valve: WatermarkValve::new(parts.len()),
        parts,
        start_offsets,
        idle_without_partitions: false,
        drained: false,
        progress,
    }))
}

/// The watermark after seeing `max_ts`: nothing at or below it is expected any more.
fn watermark_of(max_ts: i64, out_of_orderness_ms: i64) -> i64 {
    if max_ts == WATERMARK_MIN {
        WATERMARK_MIN
    } else {
        max_ts.saturating_sub(out_of_orderness_ms).saturating_sub(1)
    }
}

impl<T: Data, C: Codec<T>> SourceTask<T, C> {
    fn checkpoint(&mut self, epoch: u64, consumer: &dyn TopicReader, env: &TaskEnv) -> Result<()> {
        let mut cp = Checkpoint::new(epoch);
        let state = SourceState {
            max_ts: self.parts.iter().map(|p| (p.partition, p.max_ts)).collect(),
        };
        cp.put_state(&self.state_key, crate::state::encode(&state)?);
        for p in &self.parts {
            if let Some(pos) = consumer.position(&self.spec.topic, p.partition) {
                cp.offsets.push((self.spec.topic.clone(), p.partition, pos));
            }
        }
        self.chain.checkpoint(&mut cp)?;
        env.ack(cp)
    }

    fn dead_letter(
        &self,
        env: &TaskEnv,
        r: &TopicRecord,
        partition: i32,
        reason: String,
    ) -> Result<()> {
        let Some(topic) = &self.spec.dead_letter else {
            return Ok(());
        };
        let headers = vec![
            RecordHeader {
                key: "weir.error".into(),
                value: Some(Bytes::from(reason)),
            },
            RecordHeader {
                key: "weir.topic".into(),
                value: Some(Bytes::from(self.spec.topic.clone())),
            },
            RecordHeader {
                key: "weir.partition".into(),
                value: Some(Bytes::from(partition.to_string())),
            },
            RecordHeader {
                key: "weir.offset".into(),
                value: Some(Bytes::from(r.offset.to_string())),
            },
        ];
        env.output(&[OutgoingRecord {
            topic,
            partition: None,
            key: r.key.as_deref(),
            value: r.value.as_deref().unwrap_or_default(),
            timestamp: Some(r.timestamp),
            headers: &headers,
        }])
    }

    fn process(&mut self, batches: Vec<RecordChunk>, env: &TaskEnv) -> Result<()> {
        let now = env.now_ms();
        let bound = match &self.spec.timestamps {
            Timestamps::LogTime => 0,
            Timestamps::Field(_, b) => *b,
        };
        let mut records = 0u64;
        let mut bytes = 0u64;
        for cb in batches {
            let Some(pi) = self.parts.iter().position(|p| p.partition == cb.partition) else {
                continue;
            };
            {
                let part = &mut self.parts[pi];
                part.last_data_ms = now;
                part.idle = false;
                part.got_data = true;
            }
            for r in &cb.records {
                let part = &mut self.parts[pi];
                let value = match &r.value {
                    Some(v) => {
                        bytes += v.len() as u64;
                        self.spec.codec.decode(v)
                    }
                    None => Err(crate::codec::CodecError::Decode {
                        field: None,
                        reason: "a tombstone (null value)".into(),
                    }),
                };
                let value = match value {
                    Ok(v) => v,
                    Err(e) => {
                        self.progress.decode_errors.fetch_add(1, Relaxed);
                        if self.spec.dead_letter.is_none() {
                            return Err(Error::Codec {
                                topic: format!(
                                    "{}/{} offset {}",
                                    self.spec.topic, cb.partition, r.offset
                                ),
                                source: e,
                            });
                        }
                        let (p, reason) = (part.partition, e.to_string());
                        self.dead_letter(env, r, p, reason)?;
                        continue;
                    }
                };
                let ts = match &self.spec.timestamps {
                    Timestamps::LogTime => r.timestamp,
                    Timestamps::Field(f, _) => f(&value),
                };
                let wm = part.watermark;
                if ts > part.max_ts {
                    part.max_ts = ts;
                    part.watermark = watermark_of(ts, bound);
                }
                records += 1;
                self.chain.event(Event { value, ts, wm })?;
            }
        }
        self.progress.records.fetch_add(records, Relaxed);
        self.progress.bytes.fetch_add(bytes, Relaxed);
        Ok(())
    }

    /// Marks idle and drained partitions, then passes on the watermark (or idleness).
    fn update_status(&mut self, consumer: &dyn TopicReader, env: &TaskEnv) -> Result<()> {
        let now = env.now_ms();
        let topics = env.topics();
        let idle_timeout = env.config().idle_timeout_ms;
        let stop_when_drained = env.config().stop_when_drained;
        for p in &mut self.parts {
            let got_data = std::mem::take(&mut p.got_data);
            if p.drained || got_data || (!stop_when_drained && now - p.last_data_ms < idle_timeout)
            {
                continue;
            }
            let pos = consumer
                .position(&self.spec.topic, p.partition)
                .unwrap_or(0);
            let end = topics.end_offset(&self.spec.topic, p.partition)?;
            let caught_up = pos >= end;
            if caught_up && stop_when_drained {
                p.drained = true;
            } else if caught_up && now - p.last_data_ms >= idle_timeout {
                p.idle = true;
            }
        }
        let mut positions = self.progress.positions.lock().expect("positions lock");
        positions.clear();
        for p in &self.parts {
            let pos = consumer
                .position(&self.spec.topic, p.partition)
                .unwrap_or(0);
            positions.push((self.spec.topic.clone(), p.partition, pos));
        }
        drop(positions);
        if !self.drained && self.parts.iter().all(|p| p.drained) {
            // Bounded input: every window can close.
            self.drained = true;
            self.progress.watermark.store(WATERMARK_MAX, Relaxed);
            self.chain.watermark(WATERMARK_MAX)?;
            env.drained();
            return Ok(());
        }
        for (i, p) in self.parts.iter().enumerate() {
            self.valve.raise(i, p.watermark);
            self.valve.set_idle(i, p.idle);
            if p.drained {
                self.valve.end(i);
            }
        }
        let change = self.valve.update();
        self.progress.idle.store(self.valve.is_idle(), Relaxed);
        if let Some(wm) = change.watermark {
            self.progress.watermark.store(wm, Relaxed);
            self.chain.watermark(wm)?;
        }
        if change.went_idle {
            self.chain.idle()?;
        }
        Ok(())
    }
}

impl<T: Data, C: Codec<T>> TaskRun for SourceTask<T, C> {
    fn run(mut self: Box<Self>, env: TaskEnv) -> Result<()> {
        let config = env.config();
        let mut consumer = env.topics().reader(ReaderConfig {
            client_id: format!("{}-source", config.job_id()),
            isolation: Isolation::ReadCommitted,
            fetch_bytes_max: config.source_poll_bytes_max.min(1 << 20),
            poll_bytes_max: config.source_poll_bytes_max,
        })?;
        let topic = self.spec.topic.clone();
        let assigned: Vec<i32> = self.parts.iter().map(|p| p.partition).collect();
        consumer.assign(&topic, &assigned)?;
        for (p, offset) in self.parts.iter().zip(&self.start_offsets) {
            if let Some(offset) = offset {
                consumer.seek(&topic, p.partition, *offset)?;
            }
        }
        // Not the epoch requested now: the coordinator may have asked for the next one while
        // this thread was opening its consumer, and that barrier must still be sent.
        let mut epoch = env.restored_epoch();
        loop {
            if env.should_stop() {
                return env.stopped();
            }
            let requested = env.requested_epoch();
            if requested > epoch {
                epoch = requested;
                self.checkpoint(epoch, &*consumer, &env)?;
            }
            if self.drained || self.parts.is_empty() {
                if !self.drained && config.stop_when_drained {
                    self.drained = true;
                    self.chain.watermark(WATERMARK_MAX)?;
                    env.drained();
                } else if !self.idle_without_partitions && !self.drained {
                    // Only a task without partitions gets here undrained: nothing to wait for.
                    self.idle_without_partitions = true;
                    self.progress.idle.store(true, Relaxed);
                    self.chain.idle()?;
                }
                env.wait_for_epoch(epoch, Duration::from_millis(50));
                continue;
            }
            let batches = consumer.poll(Duration::from_millis(20))?;
            self.process(batches, &env)?;
            self.update_status(&*consumer, &env)?;
        }
    }
}
