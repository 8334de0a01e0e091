//! Stateful operators: the interface that windows, keyed processing and the other operators of
//! `weir-operators` implement.

use std::sync::Arc;

use crate::emitter::{Checkpoint, Emitter};
use crate::error::Result;
use crate::event::Event;
use crate::metrics::OperatorCounters;

/// Where an operator sends its results.
pub struct Output<'a, T> {
    down: &'a mut dyn Emitter<T>,
    emitted: u64,
}

impl<T> Output<'_, T> {
    /// Sends one result downstream.
    pub fn emit(&mut self, ev: Event<T>) -> Result<()> {
        self.emitted += 1;
        self.down.event(ev)
    }
}

/// An operator as its factory returns it.
pub type BoxOperator<In, Out> = Box<dyn Operator<In, Out>>;

/// A stateful operator running in one task.
///
/// The runtime forwards watermarks itself, after [`Operator::on_watermark`] returns, so results
/// emitted there precede the watermark downstream. State is whatever [`Operator::snapshot`]
/// returns; the operator's factory receives the last committed snapshot on restart.
pub trait Operator<In, Out>: Send {
    /// One record.
    fn on_event(&mut self, ev: Event<In>, out: &mut Output<'_, Out>) -> Result<()>;
    /// The watermark advanced: fire timers and windows up to `wm`.
    fn on_watermark(&mut self, _wm: i64, _out: &mut Output<'_, Out>) -> Result<()> {
        Ok(())
    }
    /// The input ended (after its last watermark).
    fn on_finish(&mut self, _out: &mut Output<'_, Out>) -> Result<()> {
        Ok(())
    }
    /// The input went idle (no live source partition): emit whatever is buffered, since
    /// downstream stops waiting for this task's watermark. Called before idleness is passed on.
    fn on_idle(&mut self, _out: &mut Output<'_, Out>) -> Result<()> {
        Ok(())
    }
    /// A barrier is about to pass: emit whatever is buffered that belongs to this epoch.
    /// Called before [`Operator::snapshot`].
    fn on_checkpoint(&mut self, _out: &mut Output<'_, Out>) -> Result<()> {
        Ok(())
    }
    /// The operator's state, to be committed with the epoch; `None` if it has none.
    fn snapshot(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    /// How many items (windows, timers, keys) the operator holds, for metrics.
    fn state_items(&self) -> usize {
        0
    }
}

pub(crate) struct OperatorChain<In, Out> {
    pub(crate) op: Box<dyn Operator<In, Out>>,
    pub(crate) state_key: String,
    pub(crate) down: Box<dyn Emitter<Out>>,
    pub(crate) counters: Arc<OperatorCounters>,
}

impl<In: Send, Out: Send> Emitter<In> for OperatorChain<In, Out> {
    fn event(&mut self, ev: Event<In>) -> Result<()> {
        let mut out = Output {
            down: &mut *self.down,
            emitted: 0,
        };
        self.op.on_event(ev, &mut out)?;
        self.counters.add_in_out(1, out.emitted);
        Ok(())
    }

    fn watermark(&mut self, wm: i64) -> Result<()> {
        let mut out = Output {
            down: &mut *self.down,
            emitted: 0,
        };
        self.op.on_watermark(wm, &mut out)?;
        self.counters.add_in_out(0, out.emitted);
        self.counters.set_state_items(self.op.state_items());
        self.down.watermark(wm)
    }

    fn idle(&mut self) -> Result<()> {
        let mut out = Output {
            down: &mut *self.down,
            emitted: 0,
        };
        self.op.on_idle(&mut out)?;
        self.counters.add_in_out(0, out.emitted);
        self.down.idle()
    }

    fn checkpoint(&mut self, cp: &mut Checkpoint) -> Result<()> {
        let mut out = Output {
            down: &mut *self.down,
            emitted: 0,
        };
        self.op.on_checkpoint(&mut out)?;
        let emitted = out.emitted;
        self.counters.add_in_out(0, emitted);
        if let Some(bytes) = self.op.snapshot()? {
            cp.put_state(&self.state_key, bytes);
        }
        self.down.checkpoint(cp)
    }

    fn finish(&mut self) -> Result<()> {
        let mut out = Output {
            down: &mut *self.down,
            emitted: 0,
        };
        let r = self.op.on_finish(&mut out);
        let emitted = out.emitted;
        r?;
        self.counters.add_in_out(0, emitted);
        self.down.finish()
    }
}
