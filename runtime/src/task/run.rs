//! The body of a task.

use super::env::TaskEnv;
use crate::error::Result;

/// The body of one task, run on its own thread.
pub(crate) trait TaskRun: Send {
    /// Runs the task until its input ends or the job stops.
    fn run(self: Box<Self>, env: TaskEnv) -> Result<()>;
}
