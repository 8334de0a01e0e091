//! The sending side of an exchange, at the end of an upstream task's chain.

use std::sync::Arc;

use super::channels::Msg;
use super::keys::{RouteFn, TaskKeyFn};
use crate::data::Key;
use crate::emitter::{Checkpoint, Emitter};
use crate::error::{Error, Result};
use crate::event::{Event, Message, WATERMARK_MIN};
use crate::hash::{stable_hash, task_for_hash};
use crate::metrics::ExchangeGauge;

/// The sending side, at the end of an upstream task's chain.
pub(crate) struct Sender<K, T> {
    outs: Vec<crossbeam_channel::Sender<Msg<K, T>>>,
    key: TaskKeyFn<T, K>,
    route: Option<RouteFn<K>>,
    buffers: Vec<Vec<Event<(K, T)>>>,
    batch_records_max: usize,
    watermark: i64,
    gauge: Arc<ExchangeGauge>,
}

impl<K: Key, T: Send + 'static> Sender<K, T> {
    pub(crate) fn new(
        outs: Vec<crossbeam_channel::Sender<Msg<K, T>>>,
        key: TaskKeyFn<T, K>,
        route: Option<RouteFn<K>>,
        batch_records_max: usize,
        gauge: Arc<ExchangeGauge>,
    ) -> Result<Sender<K, T>> {
        let buffers = (0..outs.len())
            .map(|_| Vec::with_capacity(batch_records_max))
            .collect();
        Ok(Sender {
            outs,
            key,
            route,
            buffers,
            batch_records_max,
            watermark: WATERMARK_MIN,
            gauge,
        })
    }

    fn send(&self, task: usize, msg: Msg<K, T>) -> Result<()> {
        // A closed channel means the receiving task is gone: the job is stopping.
        self.outs[task].send(msg).map_err(|_| Error::Stopped)
    }

    fn flush_one(&mut self, task: usize) -> Result<()> {
        if self.buffers[task].is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(
            &mut self.buffers[task],
            Vec::with_capacity(self.batch_records_max),
        );
        self.gauge.sent(batch.len());
        self.send(task, Message::Data(batch))
    }

    fn flush(&mut self) -> Result<()> {
        (0..self.outs.len()).try_for_each(|t| self.flush_one(t))
    }

    fn broadcast(&mut self, msg: impl Fn() -> Msg<K, T>) -> Result<()> {
        self.flush()?;
        (0..self.outs.len()).try_for_each(|t| self.send(t, msg()))
    }
}

impl<K: Key, T: Send + 'static> Emitter<T> for Sender<K, T> {
    #[inline]
    fn event(&mut self, ev: Event<T>) -> Result<()> {
        let k = (self.key)(&ev.value);
        let task = if self.outs.len() == 1 {
            0
        } else {
            let hash = match &self.route {
                None => stable_hash(&k),
                Some(route) => route(&k),
            };
            task_for_hash(hash, self.outs.len())
        };
        let buf = &mut self.buffers[task];
        buf.push(Event {
            value: (k, ev.value),
            ts: ev.ts,
            wm: ev.wm,
        });
        if buf.len() >= self.batch_records_max {
            self.flush_one(task)?;
        }
        Ok(())
    }

    fn watermark(&mut self, wm: i64) -> Result<()> {
        if wm > self.watermark {
            self.watermark = wm;
            self.broadcast(|| Message::Watermark(wm))?;
        }
        Ok(())
    }

    fn idle(&mut self) -> Result<()> {
        self.broadcast(|| Message::Idle)
    }

    fn checkpoint(&mut self, cp: &mut Checkpoint) -> Result<()> {
        let epoch = cp.epoch;
        self.broadcast(|| Message::Barrier(epoch))
    }

    fn finish(&mut self) -> Result<()> {
        self.broadcast(|| Message::End)
    }
}
