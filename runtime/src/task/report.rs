//! What a task tells the coordinator.

use crate::emitter::Checkpoint;
use crate::error::Error;

/// What a task tells the coordinator.
#[derive(Debug)]
pub(crate) enum TaskReport {
    /// Task `task` passed the barrier of `cp.epoch` and hands over its snapshot.
    Ack { task: usize, cp: Checkpoint },
    /// Source task `task` read all its partitions to their end (with `stop_when_drained`).
    Drained { task: usize },
    /// A task failed; the job stops with `error`.
    Failed { error: Error },
}
