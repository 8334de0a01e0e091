//! A running task's view of its job.

use std::sync::Arc;
use std::time::Duration;

use super::kind::TaskKind;
use super::report::TaskReport;
use super::shared::Shared;
use crate::config::{Guarantee, JobConfig};
use crate::emitter::Checkpoint;
use crate::error::{Error, Result};
use crate::topics::{OutgoingRecord, Topics};

/// What a task's body reaches while it runs: the stop and epoch signals, the job's producer and
/// the coordinator.
pub(crate) struct TaskEnv {
    task: usize,
    kind: TaskKind,
    /// Whether the task's chain writes to the job's producer (a topic sink, a dead-letter topic):
    /// such a task waits for each epoch's commit before writing the next epoch's records.
    writes_output: bool,
    shared: Arc<Shared>,
}

impl TaskEnv {
    /// The environment of task number `task` (its index among all the job's tasks).
    pub(crate) fn new(
        task: usize,
        kind: TaskKind,
        writes_output: bool,
        shared: Arc<Shared>,
    ) -> TaskEnv {
        TaskEnv {
            task,
            kind,
            writes_output,
            shared,
        }
    }

    /// Whether the job is stopping: the task returns [`TaskEnv::stopped`] at its next look.
    pub(crate) fn should_stop(&self) -> bool {
        self.shared.signals.stop_requested()
    }

    /// The result of a task told to stop: success once the final epoch committed.
    pub(crate) fn stopped(&self) -> Result<()> {
        if self.shared.signals.finished() {
            Ok(())
        } else {
            Err(Error::Stopped)
        }
    }

    /// The job's configuration.
    pub(crate) fn config(&self) -> &JobConfig {
        &self.shared.config
    }

    /// The topics the job reads and writes.
    pub(crate) fn topics(&self) -> &dyn Topics {
        &*self.shared.topics
    }

    /// Processing time from the job's clock, ms since the Unix epoch.
    pub(crate) fn now_ms(&self) -> i64 {
        self.shared.config.clock.now_ms()
    }

    /// The last committed epoch when the job started: a source's first barrier ends the next.
    pub(crate) fn restored_epoch(&self) -> u64 {
        self.shared.signals.restored_epoch()
    }

    /// The newest epoch the coordinator asked for; a source that has not yet sent its barrier
    /// sends it at its next poll.
    pub(crate) fn requested_epoch(&self) -> u64 {
        self.shared.signals.requested_epoch()
    }

    /// Sleeps until an epoch after `epoch` is requested, the job stops, or `timeout` passes.
    pub(crate) fn wait_for_epoch(&self, epoch: u64, timeout: Duration) {
        self.shared.signals.wait_for_epoch_after(epoch, timeout);
    }

    /// Writes records through the job's producer (into the open epoch's transaction, under
    /// exactly-once).
    pub(crate) fn output(&self, records: &[OutgoingRecord<'_>]) -> Result<()> {
        self.shared.output.send(records)
    }

    /// Hands this task's snapshot for the epoch to the coordinator. A task that writes output
    /// then waits for the epoch to commit (under exactly-once), so that its next records go into
    /// the next transaction.
    pub(crate) fn ack(&self, cp: Checkpoint) -> Result<()> {
        let epoch = cp.epoch;
        self.shared
            .reports
            .send(TaskReport::Ack {
                task: self.task,
                cp,
            })
            .map_err(|_| Error::Stopped)?;
        if self.writes_output
            && self.shared.config.guarantee == Guarantee::ExactlyOnce
            && !self.shared.signals.wait_committed(epoch)?
        {
            return self.stopped();
        }
        Ok(())
    }

    /// A source task read all its partitions to their end (with `stop_when_drained`).
    pub(crate) fn drained(&self) {
        debug_assert_eq!(self.kind, TaskKind::Source, "only sources drain");
        let _ = self
            .shared
            .reports
            .send(TaskReport::Drained { task: self.task });
    }
}
