//! The handle a running job is watched and stopped through, over one run of its tasks (a job on
//! the embedded log) or over an instance that joined its group (on a cluster, where each
//! assignment starts a new run of the tasks it owns).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::metrics::{JobMetrics, MetricsRegistry};
use crate::task::Shared;
use crate::topics::Topics;

/// One run of a job's tasks: the coordinator and a thread per task.
pub(crate) struct Run {
    shared: Arc<Shared>,
    coordinator: Option<JoinHandle<Result<()>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Run {
    /// A run whose coordinator and task threads have started.
    pub(crate) fn new(
        shared: Arc<Shared>,
        coordinator: JoinHandle<Result<()>>,
        threads: Vec<JoinHandle<()>>,
    ) -> Run {
        Run {
            shared,
            coordinator: Some(coordinator),
            threads,
        }
    }

    pub(crate) fn committed_epoch(&self) -> u64 {
        self.shared.signals.committed_epoch()
    }

    /// Whether the run ended (its final epoch committed, it failed or it was stopped).
    pub(crate) fn is_finished(&self) -> bool {
        self.coordinator.as_ref().is_none_or(|c| c.is_finished())
    }

    pub(crate) fn request_stop(&self) {
        self.shared.signals.request_stop();
    }

    /// Waits for the coordinator, then for every task: the run's result.
    pub(crate) fn join(&mut self) -> Result<()> {
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
        r
    }

    /// Stops the run (its open epoch is aborted) and waits for it.
    pub(crate) fn stop(&mut self) -> Result<()> {
        self.request_stop();
        self.join()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// What the handle of an instance on a cluster shares with the thread that serves its group.
pub(crate) struct GroupControl {
    stop: AtomicBool,
    /// The run of the current assignment, if one is running.
    run: Mutex<Option<Run>>,
    /// The last committed epoch of the runs that ended.
    committed: AtomicU64,
    pub(crate) metrics: Arc<MetricsRegistry>,
    topics: Arc<dyn Topics>,
    config: JobConfig,
}

impl GroupControl {
    pub(crate) fn new(topics: Arc<dyn Topics>, config: JobConfig) -> GroupControl {
        GroupControl {
            stop: AtomicBool::new(false),
            run: Mutex::new(None),
            committed: AtomicU64::new(0),
            metrics: Arc::new(MetricsRegistry::new()),
            topics,
            config,
        }
    }

    fn run(&self) -> MutexGuard<'_, Option<Run>> {
        self.run.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn request_stop(&self) {
        self.stop.store(true, SeqCst);
        if let Some(run) = self.run().as_ref() {
            run.request_stop();
        }
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.load(SeqCst)
    }

    /// Makes `run` the current run (after [`GroupControl::end_run`] ended the last).
    pub(crate) fn set_run(&self, run: Run) {
        let mut current = self.run();
        debug_assert!(current.is_none(), "one run at a time");
        *current = Some(run);
        if self.stop_requested()
            && let Some(run) = current.as_ref()
        {
            run.request_stop();
        }
    }

    /// Stops the current run, if any (its open epoch is aborted), and waits for it.
    pub(crate) fn end_run(&self) -> Option<Result<()>> {
        let mut run = self.run().take()?;
        let r = run.stop();
        self.committed.fetch_max(run.committed_epoch(), SeqCst);
        Some(r)
    }

    /// The result of the current run if it ended by itself (drained, or failed).
    pub(crate) fn take_finished(&self) -> Option<Result<()>> {
        let mut current = self.run();
        if !current.as_ref().is_some_and(Run::is_finished) {
            return None;
        }
        let mut run = current.take()?;
        drop(current);
        let r = run.join();
        self.committed.fetch_max(run.committed_epoch(), SeqCst);
        Some(r)
    }

    /// The last epoch committed by the runs that ended.
    pub(crate) fn last_committed_epoch(&self) -> u64 {
        self.committed.load(SeqCst)
    }

    fn committed_epoch(&self) -> u64 {
        let current = self.run().as_ref().map_or(0, Run::committed_epoch);
        current.max(self.committed.load(SeqCst))
    }

    fn metrics_now(&self) -> JobMetrics {
        self.metrics.collect(&*self.topics, &*self.config.clock)
    }
}

enum Inner {
    /// The job's only instance: one run of every task.
    Single(Run),
    /// An instance of a job shared through a group: the thread that serves the group and
    /// starts a run per assignment.
    Group {
        control: Arc<GroupControl>,
        member: Option<JoinHandle<Result<()>>>,
    },
}

/// A running job: read its metrics, wait for it to drain, or stop it. Dropping the handle
/// stops the job too (the open epoch is aborted).
pub struct JobHandle {
    inner: Inner,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::Single(run) => f
                .debug_struct("JobHandle")
                .field("job", &run.shared.config.name)
                .field("tasks", &run.threads.len())
                .finish(),
            Inner::Group { control, .. } => f
                .debug_struct("JobHandle")
                .field("job", &control.config.name)
                .field("group", &control.config.job_id())
                .finish(),
        }
    }
}

impl JobHandle {
    /// The handle of a job running as its only instance.
    pub(crate) fn single(run: Run) -> JobHandle {
        JobHandle {
            inner: Inner::Single(run),
        }
    }

    /// The handle of an instance in its job's group, served by the `member` thread.
    pub(crate) fn group(control: Arc<GroupControl>, member: JoinHandle<Result<()>>) -> JobHandle {
        JobHandle {
            inner: Inner::Group {
                control,
                member: Some(member),
            },
        }
    }

    /// The job's metrics now (on a cluster: this instance's, over all its assignments).
    pub fn metrics(&self) -> JobMetrics {
        match &self.inner {
            Inner::Single(run) => run
                .shared
                .metrics
                .collect(&*run.shared.topics, &*run.shared.config.clock),
            Inner::Group { control, .. } => control.metrics_now(),
        }
    }

    /// The last committed epoch (on a cluster: the newest this instance committed).
    pub fn committed_epoch(&self) -> u64 {
        match &self.inner {
            Inner::Single(run) => run.committed_epoch(),
            Inner::Group { control, .. } => control.committed_epoch(),
        }
    }

    /// Whether the job has ended (drained, failed or stopped).
    pub fn is_finished(&self) -> bool {
        match &self.inner {
            Inner::Single(run) => run.is_finished(),
            Inner::Group { member, .. } => member.as_ref().is_none_or(|m| m.is_finished()),
        }
    }

    /// Waits for the job to end: with `stop_when_drained`, once the input is drained and the
    /// final epoch committed. Returns the final metrics, or the error that stopped it.
    pub fn wait(mut self) -> Result<JobMetrics> {
        self.join()
    }

    /// Stops the job. The open epoch is aborted (its records are never visible); a restart
    /// replays it from the last commit.
    pub fn stop(mut self) -> Result<JobMetrics> {
        self.request_stop();
        match self.join() {
            Err(Error::Stopped) => Ok(self.metrics()),
            r => r,
        }
    }

    fn request_stop(&self) {
        match &self.inner {
            Inner::Single(run) => run.request_stop(),
            Inner::Group { control, .. } => control.request_stop(),
        }
    }

    fn join(&mut self) -> Result<JobMetrics> {
        let r = match &mut self.inner {
            Inner::Single(run) => run.join(),
            Inner::Group { control, member } => {
                let r = match member.take() {
                    Some(m) => m.join().unwrap_or_else(|_| {
                        Err(Error::Internal("the group thread panicked".into()))
                    }),
                    None => Ok(()),
                };
                control.request_stop();
                if let Some(Err(e)) = control.end_run()
                    && r.is_ok()
                    && !matches!(e, Error::Stopped)
                {
                    return Err(e);
                }
                r
            }
        };
        r.map(|()| self.metrics())
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        self.request_stop();
        let _ = self.join();
    }
}
