//! The receiving side of an exchange: a task that merges its upstream tasks' channels, keeps
//! their watermark and aligns their barriers.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Select, TryRecvError};

use super::channels::Msg;
use crate::data::Key;
use crate::emitter::{Checkpoint, Emitter};
use crate::error::{Error, Result};
use crate::event::Message;
use crate::metrics::ExchangeGauge;
use crate::task::{TaskEnv, TaskRun};
use crate::watermark::{ValveChange, WatermarkValve};

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
