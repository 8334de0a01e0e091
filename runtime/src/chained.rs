//! The simple operators that run chained in their input's task: map, filter, flat_map, the
//! split of a side output, the fan-out to several consumers, and the end nobody consumes.

use std::sync::Arc;

use crate::emitter::{Checkpoint, Emitter};
use crate::error::Result;
use crate::event::Event;
use crate::metrics::OperatorCounters;

/// Drops everything (the end of a stream nobody consumes).
pub(crate) struct Discard;

impl<T: Send> Emitter<T> for Discard {
    fn event(&mut self, _: Event<T>) -> Result<()> {
        Ok(())
    }
    fn watermark(&mut self, _: i64) -> Result<()> {
        Ok(())
    }
    fn idle(&mut self) -> Result<()> {
        Ok(())
    }
    fn checkpoint(&mut self, _: &mut Checkpoint) -> Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Sends everything to several consumers of one stream.
pub(crate) struct FanOut<T> {
    pub(crate) outs: Vec<Box<dyn Emitter<T>>>,
}

impl<T: Clone + Send> Emitter<T> for FanOut<T> {
    fn event(&mut self, ev: Event<T>) -> Result<()> {
        let (last, rest) = self.outs.split_last_mut().expect("a fan-out has consumers");
        for out in rest {
            out.event(ev.clone())?;
        }
        last.event(ev)
    }
    fn watermark(&mut self, wm: i64) -> Result<()> {
        self.outs.iter_mut().try_for_each(|o| o.watermark(wm))
    }
    fn idle(&mut self) -> Result<()> {
        self.outs.iter_mut().try_for_each(|o| o.idle())
    }
    fn checkpoint(&mut self, cp: &mut Checkpoint) -> Result<()> {
        self.outs.iter_mut().try_for_each(|o| o.checkpoint(cp))
    }
    fn finish(&mut self) -> Result<()> {
        self.outs.iter_mut().try_for_each(|o| o.finish())
    }
}

/// Forwards watermarks, idleness, barriers and the end to `$down` (the stateless operators'
/// common part).
macro_rules! forward_control {
    () => {
        fn watermark(&mut self, wm: i64) -> Result<()> {
            self.down.watermark(wm)
        }
        fn idle(&mut self) -> Result<()> {
            self.down.idle()
        }
        fn checkpoint(&mut self, cp: &mut Checkpoint) -> Result<()> {
            self.down.checkpoint(cp)
        }
        fn finish(&mut self) -> Result<()> {
            self.down.finish()
        }
    };
}

pub(crate) struct MapOp<T, U> {
    pub(crate) f: Arc<dyn Fn(T) -> U + Send + Sync>,
    pub(crate) down: Box<dyn Emitter<U>>,
    pub(crate) counters: Arc<OperatorCounters>,
}

impl<T: Send, U: Send> Emitter<T> for MapOp<T, U> {
    fn event(&mut self, ev: Event<T>) -> Result<()> {
        self.counters.add_in_out(1, 1);
        let f = &self.f;
        self.down.event(ev.map(|v| f(v)))
    }
    forward_control!();
}

pub(crate) struct FilterOp<T> {
    pub(crate) f: Arc<dyn Fn(&T) -> bool + Send + Sync>,
    pub(crate) down: Box<dyn Emitter<T>>,
    pub(crate) counters: Arc<OperatorCounters>,
}

impl<T: Send> Emitter<T> for FilterOp<T> {
    fn event(&mut self, ev: Event<T>) -> Result<()> {
        if (self.f)(&ev.value) {
            self.counters.add_in_out(1, 1);
            self.down.event(ev)
        } else {
            self.counters.add_in_out(1, 0);
            Ok(())
        }
    }
    forward_control!();
}

pub(crate) struct FlatMapOp<T, U> {
    #[allow(clippy::type_complexity)]
    pub(crate) f: Arc<dyn Fn(T, &mut Vec<U>) + Send + Sync>,
    pub(crate) buf: Vec<U>,
    pub(crate) down: Box<dyn Emitter<U>>,
    pub(crate) counters: Arc<OperatorCounters>,
}

impl<T: Send, U: Send> Emitter<T> for FlatMapOp<T, U> {
    fn event(&mut self, ev: Event<T>) -> Result<()> {
        let (ts, wm) = (ev.ts, ev.wm);
        (self.f)(ev.value, &mut self.buf);
        self.counters.add_in_out(1, self.buf.len() as u64);
        for value in self.buf.drain(..) {
            self.down.event(Event { value, ts, wm })?;
        }
        Ok(())
    }
    forward_control!();
}

/// Either of two things: what an operator with a side output emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Either<L, R> {
    /// The main output.
    Left(L),
    /// The side output.
    Right(R),
}

pub(crate) struct SplitOp<L, R> {
    pub(crate) left: Box<dyn Emitter<L>>,
    pub(crate) right: Box<dyn Emitter<R>>,
}

impl<L: Send, R: Send> Emitter<Either<L, R>> for SplitOp<L, R> {
    fn event(&mut self, ev: Event<Either<L, R>>) -> Result<()> {
        let Event { value, ts, wm } = ev;
        match value {
            Either::Left(value) => self.left.event(Event { value, ts, wm }),
            Either::Right(value) => self.right.event(Event { value, ts, wm }),
        }
    }
    fn watermark(&mut self, wm: i64) -> Result<()> {
        self.left.watermark(wm)?;
        self.right.watermark(wm)
    }
    fn idle(&mut self) -> Result<()> {
        self.left.idle()?;
        self.right.idle()
    }
    fn checkpoint(&mut self, cp: &mut Checkpoint) -> Result<()> {
        self.left.checkpoint(cp)?;
        self.right.checkpoint(cp)
    }
    fn finish(&mut self) -> Result<()> {
        self.left.finish()?;
        self.right.finish()
    }
}
