//! What a task is: the body that runs on its thread ([`TaskRun`]), what kind of task it is
//! ([`TaskKind`]), what it sees while its chain is built ([`TaskContext`]) and while it runs
//! ([`TaskEnv`]), what it reports to the coordinator ([`TaskReport`]), and the state every task
//! of a running job shares ([`Shared`]).
//!
//! This module is the leaf the task bodies (sources, exchanges, sinks), the graph, the
//! coordinator and the handle all build on; it imports none of them.

mod context;
mod env;
mod shared;
mod signals;

pub use context::TaskContext;
pub(crate) use env::TaskEnv;
pub(crate) use shared::Shared;
pub(crate) use signals::EpochSignals;

use crate::emitter::Checkpoint;
use crate::error::{Error, Result};

/// What drives a task: where its records come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskKind {
    /// Reads partitions of a topic, and starts each epoch's barriers.
    Source,
    /// Receives the records of an exchange from the upstream stage's tasks, and aligns their
    /// barriers.
    Exchange,
}

/// The body of one task, run on its own thread.
pub(crate) trait TaskRun: Send {
    /// Runs the task until its input ends or the job stops.
    fn run(self: Box<Self>, env: TaskEnv) -> Result<()>;
}

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
