//! What a task's factories see while its chain is built.

use std::collections::HashMap;
use std::sync::Arc;

use super::shared::Shared;
use crate::config::JobConfig;
use crate::metrics::{ExchangeGauge, OperatorCounters, SourceProgress};
use crate::topics::Topics;

/// What a task's factories see while its chain is built: where the task stands in its stage,
/// the job's topics and configuration, and the state restored for it.
pub struct TaskContext<'a> {
    pub(crate) stage: &'a str,
    pub(crate) index: usize,
    pub(crate) parallelism: usize,
    pub(crate) restored: &'a HashMap<String, Vec<u8>>,
    pub(crate) shared: &'a Arc<Shared>,
}

impl TaskContext<'_> {
    /// This task's index among its operator's tasks.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many tasks the operator runs.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// The name of the stage (the tasks between two exchanges) this task belongs to.
    pub fn stage(&self) -> &str {
        self.stage
    }

    /// The topics the job runs on (the embedded log, or a cluster).
    pub fn topics(&self) -> &dyn Topics {
        &*self.shared.topics
    }

    /// The job's configuration.
    pub fn config(&self) -> &JobConfig {
        &self.shared.config
    }

    /// The key of operator `uid`'s state in this task: one snapshot per operator and task.
    pub(crate) fn state_key(&self, uid: &str) -> String {
        format!("{uid}/{}", self.index)
    }

    /// The last committed snapshot of operator `uid` in this task, if any.
    pub fn restored_state(&self, uid: &str) -> Option<&[u8]> {
        self.restored.get(&self.state_key(uid)).map(Vec::as_slice)
    }

    /// Counters for an operator in this task, registered with the job's metrics.
    pub fn counters(&self, operator: &str) -> Arc<OperatorCounters> {
        self.shared.metrics.register_counters(operator)
    }

    /// Registers an exchange's gauge with the job's metrics (once, however many tasks call).
    pub(crate) fn register_gauge(&self, gauge: &Arc<ExchangeGauge>) {
        self.shared.metrics.register_gauge(gauge);
    }

    /// Progress counters for this source task, registered with the job's metrics.
    pub(crate) fn register_source(&self) -> Arc<SourceProgress> {
        self.shared.metrics.register_source()
    }

    /// The running job, for a sink that keeps a handle on the job's producer.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        self.shared
    }
}
