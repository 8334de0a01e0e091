//! The push interface between operators chained in one task, and the snapshots a barrier
//! gathers on its way through.
//!
//! A task runs a chain: its input (a source, or an exchange's receiving side) pushes each event
//! into the first [`Emitter`], which does its work and pushes into the next. Watermarks, idleness,
//! checkpoint barriers and the end of input travel the same path, in order with the data.

use crate::error::Result;
use crate::event::Event;

/// The state snapshots a task gathers while a barrier passes through its chain.
#[derive(Debug, Default)]
pub struct Checkpoint {
    /// The epoch the barrier ends.
    pub epoch: u64,
    pub(crate) states: Vec<(String, Vec<u8>)>,
    pub(crate) offsets: Vec<(String, i32, i64)>,
}

impl Checkpoint {
    pub(crate) fn new(epoch: u64) -> Checkpoint {
        Checkpoint {
            epoch,
            ..Checkpoint::default()
        }
    }

    /// Records the state of the operator `uid` (unique within the job and stable across runs).
    pub fn put_state(&mut self, uid: &str, bytes: Vec<u8>) {
        self.states.push((uid.to_string(), bytes));
    }
}

/// Receives the events, watermarks and barriers of one task's chain.
pub trait Emitter<T>: Send {
    /// One record.
    fn event(&mut self, ev: Event<T>) -> Result<()>;
    /// The watermark advanced to `wm` (never called with a smaller value than before).
    fn watermark(&mut self, wm: i64) -> Result<()>;
    /// Every input is idle; the next event or watermark ends the idleness.
    fn idle(&mut self) -> Result<()>;
    /// A barrier: snapshot state into `cp`, flush what is buffered, then pass it on.
    fn checkpoint(&mut self, cp: &mut Checkpoint) -> Result<()>;
    /// The input ended: flush and pass it on.
    fn finish(&mut self) -> Result<()>;
}
