//! The handle a running job is watched and stopped through.

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::metrics::JobMetrics;
use crate::task::Shared;

/// A running job: read its metrics, wait for it to drain, or stop it. Dropping the handle
/// stops the job too (the open epoch is aborted).
pub struct JobHandle {
    shared: Arc<Shared>,
    coordinator: Option<JoinHandle<Result<()>>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle")
            .field("job", &self.shared.config.name)
            .field("tasks", &self.threads.len())
            .finish()
    }
}

impl JobHandle {
    /// The handle of a job whose coordinator and task threads run.
    pub(crate) fn new(
        shared: Arc<Shared>,
        coordinator: JoinHandle<Result<()>>,
        threads: Vec<JoinHandle<()>>,
    ) -> JobHandle {
        JobHandle {
            shared,
            coordinator: Some(coordinator),
            threads,
        }
    }

    /// The job's metrics now.
    pub fn metrics(&self) -> JobMetrics {
        self.shared
            .metrics
            .collect(&*self.shared.topics, &*self.shared.config.clock)
    }

    /// The last committed epoch.
    pub fn committed_epoch(&self) -> u64 {
        self.shared.signals.committed_epoch()
    }

    /// Whether the job has ended (drained, failed or stopped).
    pub fn is_finished(&self) -> bool {
        self.coordinator.as_ref().is_none_or(|c| c.is_finished())
    }

    /// Waits for the job to end: with `stop_when_drained`, once the input is drained and the
    /// final epoch committed. Returns the final metrics, or the error that stopped it.
    pub fn wait(mut self) -> Result<JobMetrics> {
        self.join()
    }

    /// Stops the job. The open epoch is aborted (its records are never visible); a restart
    /// replays it from the last commit.
    pub fn stop(mut self) -> Result<JobMetrics> {
        self.shared.signals.request_stop();
        match self.join() {
            Err(Error::Stopped) => Ok(self.metrics()),
            r => r,
        }
    }

    fn join(&mut self) -> Result<JobMetrics> {
        let r = match self.coordinator.take() {
            Some(c) => c
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("the coordinator panicked".into()))),
            None => Ok(()),
        };
        self.shared.signals.request_stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        r.map(|()| self.metrics())
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        self.shared.signals.request_stop();
        let _ = self.join();
    }
}
