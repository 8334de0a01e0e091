//! Sinks: the end of a chain. [`TopicSink`] writes to a topic through the job's producer (in the
//! epoch's transaction under exactly-once); [`ForEachSink`] hands batches to a function.

use std::sync::Arc;

use crate::codec::Codec;
use crate::emitter::{Checkpoint, Emitter};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::metrics::OperatorCounters;
use crate::task::{Shared, TaskContext};
use crate::topics::OutgoingRecord;

/// Computes a record's key bytes for a keyed sink.
pub(crate) type KeyFn<T> = Arc<dyn Fn(&T) -> Vec<u8> + Send + Sync>;

/// What [`ForEachSink`] calls with each batch.
pub(crate) type BatchFn<T> = Arc<dyn Fn(&[Event<T>]) + Send + Sync>;

pub(crate) struct TopicSink<T, C> {
    topic: String,
    codec: C,
    key: Option<KeyFn<T>>,
    /// Encoded (key, value, timestamp) waiting for the next flush; bounded by the batch size.
    pending: Vec<(Option<Vec<u8>>, Vec<u8>, i64)>,
    pending_max: usize,
    shared: Arc<Shared>,
    counters: Arc<OperatorCounters>,
}

impl<T, C: Codec<T>> TopicSink<T, C> {
    pub(crate) fn new(
        ctx: &TaskContext<'_>,
        topic: &str,
        codec: C,
        key: Option<KeyFn<T>>,
    ) -> TopicSink<T, C> {
        TopicSink {
            topic: topic.to_string(),
            codec,
            key,
            pending: Vec::new(),
            pending_max: ctx.config().batch_records_max,
            shared: ctx.shared().clone(),
            counters: ctx.counters(&format!("sink:{topic}")),
        }
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let records: Vec<OutgoingRecord<'_>> = self
            .pending
            .iter()
            .map(|(k, v, ts)| OutgoingRecord {
                topic: &self.topic,
                partition: None,
                key: k.as_deref(),
                value: v,
                timestamp: Some(*ts),
                headers: &[],
            })
            .collect();
        self.shared.output.send(&records)?;
        self.counters.add_in_out(0, records.len() as u64);
        self.pending.clear();
        Ok(())
    }
}

impl<T: Send, C: Codec<T>> Emitter<T> for TopicSink<T, C> {
    fn event(&mut self, ev: Event<T>) -> Result<()> {
        let mut value = Vec::new();
        self.codec
            .encode(&ev.value, &mut value)
            .map_err(|source| Error::Codec {
                topic: self.topic.clone(),
                source,
            })?;
        let key = self.key.as_ref().map(|k| k(&ev.value));
        self.counters.add_in_out(1, 0);
        // Windows may start before 1970 in tests; the log keeps non-negative timestamps.
        self.pending.push((key, value, ev.ts.max(0)));
        if self.pending.len() >= self.pending_max {
            self.flush()?;
        }
        Ok(())
    }
    fn watermark(&mut self, _wm: i64) -> Result<()> {
        Ok(())
    }
    fn idle(&mut self) -> Result<()> {
        Ok(())
    }
    fn checkpoint(&mut self, _cp: &mut Checkpoint) -> Result<()> {
        self.flush()
    }
    fn finish(&mut self) -> Result<()> {
        self.flush()
    }
}

pub(crate) struct ForEachSink<T> {
    f: BatchFn<T>,
    pending: Vec<Event<T>>,
    pending_max: usize,
    counters: Arc<OperatorCounters>,
}

impl<T> ForEachSink<T> {
    pub(crate) fn new(f: BatchFn<T>, ctx: &TaskContext<'_>) -> ForEachSink<T> {
        ForEachSink {
            f,
            pending: Vec::new(),
            pending_max: ctx.config().batch_records_max,
            counters: ctx.counters("for_each"),
        }
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            (self.f)(&self.pending);
            self.pending.clear();
        }
    }
}

impl<T: Send> Emitter<T> for ForEachSink<T> {
    fn event(&mut self, ev: Event<T>) -> Result<()> {
        self.counters.add_in_out(1, 0);
        self.pending.push(ev);
        if self.pending.len() >= self.pending_max {
            self.flush();
        }
        Ok(())
    }
    fn watermark(&mut self, _wm: i64) -> Result<()> {
        self.flush();
        Ok(())
    }
    fn idle(&mut self) -> Result<()> {
        self.flush();
        Ok(())
    }
    fn checkpoint(&mut self, _cp: &mut Checkpoint) -> Result<()> {
        self.flush();
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        self.flush();
        Ok(())
    }
}
