//! Keyed exchanges: the sending side hashes each record's key to a downstream task and ships
//! records in batches over bounded channels; the receiving side merges its inputs, keeps the
//! watermark over them with a [`WatermarkValve`] and aligns checkpoint barriers.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Select, TryRecvError, bounded};

use crate::data::Key;
use crate::emitter::{Checkpoint, Emitter};
use crate::error::{Error, Result};
use crate::event::{Event, Message, WATERMARK_MIN};
use crate::hash::{stable_hash, task_for_hash};
use crate::metrics::ExchangeGauge;
use crate::task::{TaskEnv, TaskRun};
use crate::watermark::{ValveChange, WatermarkValve};

/// Hashes a key to route it: `task = hash × tasks / 2^64`.
pub type RouteFn<K> = Arc<dyn Fn(&K) -> u64 + Send + Sync>;

/// A key function with state of its own, one per sending task.
pub type TaskKeyFn<T, K> = Box<dyn FnMut(&T) -> K + Send>;

/// Makes a sending task's key function.
pub type MakeKey<T, K> = Arc<dyn Fn() -> TaskKeyFn<T, K> + Send + Sync>;

type Msg<K, T> = Message<(K, T)>;

/// The channel matrix of one exchange, handed out to tasks as they are built.
pub(crate) struct Channels<K, T> {
    #[allow(clippy::type_complexity)]
    senders: Rc<RefCell<Vec<Option<Vec<crossbeam_channel::Sender<Msg<K, T>>>>>>>,
    #[allow(clippy::type_complexity)]
    receivers: Rc<RefCell<Vec<Option<Vec<Receiver<Msg<K, T>>>>>>>,
}

impl<K, T> Clone for Channels<K, T> {
    fn clone(&self) -> Self {
        Channels {
            senders: self.senders.clone(),
            receivers: self.receivers.clone(),
        }
    }
}

impl<K: Key, T: Send + 'static> Channels<K, T> {
    /// `upstream × downstream` channels of `capacity` messages each.
    pub(crate) fn new(upstream: usize, downstream: usize, capacity: usize) -> Channels<K, T> {
        let mut senders = vec![Vec::with_capacity(downstream); upstream];
        let mut receivers = vec![Vec::with_capacity(upstream); downstream];
        for row in senders.iter_mut() {
            for rx in receivers.iter_mut() {
                let (s, r) = bounded(capacity);
                row.push(s);
                rx.push(r);
            }
        }
        Channels {
            senders: Rc::new(RefCell::new(senders.into_iter().map(Some).collect())),
            receivers: Rc::new(RefCell::new(receivers.into_iter().map(Some).collect())),
        }
    }

    pub(crate) fn senders(&self, task: usize) -> Vec<crossbeam_channel::Sender<Msg<K, T>>> {
        self.senders.borrow_mut()[task]
            .take()
            .expect("each upstream task takes its senders once")
    }

    pub(crate) fn receivers(&self, task: usize) -> Result<Vec<Receiver<Msg<K, T>>>> {
        self.receivers.borrow_mut()[task]
            .take()
            .ok_or_else(|| Error::Internal(format!("receivers of task {task} taken twice")))
    }
}

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

/// The receiving side: a task whose input is an exchange.
pub(crate) struct ReceiverTask<K, T> {
    inputs: Vec<Receiver<Msg<K, T>>>,
    /// The watermark over the inputs; also knows which inputs ended.
    valve: WatermarkValve,
    /// Per input: delivered the barrier of the epoch being aligned, so not read until the
    /// others do.
    blocked: Vec<bool>,
    chain: Box<dyn Emitter<(K, T)>>,
    /// The epoch whose barrier some inputs have delivered.
    aligning: Option<u64>,
    gauge: Arc<ExchangeGauge>,
}

impl<K: Key, T: Send + 'static> ReceiverTask<K, T> {
    pub(crate) fn new(
        inputs: Vec<Receiver<Msg<K, T>>>,
        chain: Box<dyn Emitter<(K, T)>>,
        gauge: Arc<ExchangeGauge>,
    ) -> ReceiverTask<K, T> {
        ReceiverTask {
            valve: WatermarkValve::new(inputs.len()),
            blocked: vec![false; inputs.len()],
            inputs,
            chain,
            aligning: None,
            gauge,
        }
    }

    fn readable(&self, i: usize) -> bool {
        !self.valve.is_ended(i) && !self.blocked[i]
    }

    fn all_ended(&self) -> bool {
        (0..self.inputs.len()).all(|i| self.valve.is_ended(i))
    }

    /// Passes on what the valve decided: a rise of the watermark, then idleness.
    fn update_watermark(&mut self) -> Result<()> {
        let ValveChange {
            watermark,
            went_idle,
        } = self.valve.update();
        if let Some(wm) = watermark {
            self.chain.watermark(wm)?;
        }
        if went_idle {
            self.chain.idle()?;
        }
        Ok(())
    }

    fn handle(&mut self, i: usize, msg: Msg<K, T>, env: &TaskEnv) -> Result<()> {
        match msg {
            Message::Data(batch) => {
                self.gauge.received(batch.len());
                // Data ends the input's idleness; its next watermark moves the valve.
                self.valve.set_idle(i, false);
                for ev in batch {
                    self.chain.event(ev)?;
                }
            }
            Message::Watermark(wm) => {
                self.valve.raise(i, wm);
                self.valve.set_idle(i, false);
                self.update_watermark()?;
            }
            Message::Idle => {
                self.valve.set_idle(i, true);
                self.update_watermark()?;
            }
            Message::Barrier(epoch) => {
                debug_assert!(self.aligning.is_none_or(|e| e == epoch));
                self.blocked[i] = true;
                self.aligning = Some(epoch);
                self.try_align(env)?;
            }
            Message::End => {
                self.valve.end(i);
                self.update_watermark()?;
                self.try_align(env)?;
            }
        }
        Ok(())
    }

    fn try_align(&mut self, env: &TaskEnv) -> Result<()> {
        let Some(epoch) = self.aligning else {
            return Ok(());
        };
        let aligned = (0..self.inputs.len()).all(|i| self.valve.is_ended(i) || self.blocked[i]);
        if aligned {
            self.aligning = None;
            let mut cp = Checkpoint::new(epoch);
            self.chain.checkpoint(&mut cp)?;
            env.ack(cp)?;
            self.blocked.fill(false);
        }
        Ok(())
    }
}

impl<K: Key, T: Send + 'static> TaskRun for ReceiverTask<K, T> {
    fn run(mut self: Box<Self>, env: TaskEnv) -> Result<()> {
        let n = self.inputs.len();
        let mut next = 0;
        loop {
            if env.should_stop() {
                return env.stopped();
            }
            if self.all_ended() {
                self.chain.finish()?;
                return Ok(());
            }
            // Drain ready inputs round-robin, then block on the readable ones.
            let mut progressed = false;
            for k in 0..n {
                let i = (next + k) % n;
                if !self.readable(i) {
                    continue;
                }
                match self.inputs[i].try_recv() {
                    Ok(msg) => {
                        self.handle(i, msg, &env)?;
                        progressed = true;
                    }
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => return env.stopped(),
                }
            }
            next = (next + 1) % n;
            if progressed {
                continue;
            }
            let mut sel = Select::new();
            let mut index = Vec::with_capacity(n);
            for i in 0..n {
                if self.readable(i) {
                    sel.recv(&self.inputs[i]);
                    index.push(i);
                }
            }
            if index.is_empty() {
                return Err(Error::Internal(
                    "every input blocked on a barrier but none aligned".into(),
                ));
            }
            let Ok(op) = sel.select_timeout(Duration::from_millis(100)) else {
                continue;
            };
            let i = index[op.index()];
            match op.recv(&self.inputs[i]) {
                Ok(msg) => self.handle(i, msg, &env)?,
                Err(_) => return env.stopped(),
            }
        }
    }
}
