//! The background work of one log: periodic jobs (cleaner rounds, transaction expiry), each on
//! a thread of its own so that a long cleaner round never delays a transaction timeout, all
//! stopped together by one [`Shutdown`] and joined by [`Scheduler::stop`].
//!
//! A job waits out its interval on the shutdown's condition variable, so a stop wakes it at once
//! (a `close` right after `open` must not wait for an interval), and long work inside a job (the
//! cleaner's paced I/O) waits on the same signal through [`Shutdown::wait`].

use std::ops::ControlFlow;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{Error, Result};

/// The stop flag shared by a scheduler and its jobs, with a condition variable so that every
/// wait on it ends as soon as it is raised.
#[derive(Debug, Default)]
pub(crate) struct Shutdown {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Shutdown {
    /// Raises the flag and wakes every waiter. Idempotent.
    pub(crate) fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }

    pub(crate) fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `timeout`, less if the flag is raised meanwhile; true once stopped.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        // The flag is checked under the lock before waiting: a stop that came before this wait
        // began is not missed (it once cost a whole interval).
        let (stopped, _) = self
            .wake
            .wait_timeout_while(stopped, timeout, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        *stopped
    }
}

/// Runs periodic jobs until stopped; stopping (or dropping) it stops and joins every job.
#[derive(Debug, Default)]
pub(crate) struct Scheduler {
    shutdown: Arc<Shutdown>,
    jobs: Mutex<Vec<JoinHandle<()>>>,
}

impl Scheduler {
    pub(crate) fn new() -> Scheduler {
        Scheduler::default()
    }

    /// The signal every job of this scheduler stops on, for work that waits inside a job.
    pub(crate) fn shutdown(&self) -> Arc<Shutdown> {
        self.shutdown.clone()
    }

    /// Runs `job` every `interval` on a thread named `name`, the first time one interval from
    /// now, until the scheduler stops or the job returns [`ControlFlow::Break`]. A job never
    /// starts once the scheduler has stopped.
    pub(crate) fn every(
        &self,
        name: &str,
        interval: Duration,
        mut job: impl FnMut(&Shutdown) -> ControlFlow<()> + Send + 'static,
    ) -> Result<()> {
        let shutdown = self.shutdown.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                while !shutdown.wait(interval) {
                    if job(&shutdown).is_break() {
                        return;
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("spawning {name}: {e}")))?;
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(thread);
        Ok(())
    }

    /// Stops every job and waits for them; a job under way ends at its next wait. Idempotent.
    pub(crate) fn stop(&self) {
        self.shutdown.stop();
        let jobs = std::mem::take(&mut *self.jobs.lock().unwrap_or_else(|e| e.into_inner()));
        for job in jobs {
            // A job's own thread may be the one stopping the scheduler (it dropped the last
            // handle that owned it): it cannot wait for itself, and it ends right after.
            if job.thread().id() != std::thread::current().id() {
                let _ = job.join();
            }
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn stop_wakes_a_job_waiting_out_an_hour() {
        let s = Scheduler::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        s.every("test-hourly", Duration::from_secs(3600), move |_| {
            r.fetch_add(1, Ordering::SeqCst);
            ControlFlow::Continue(())
        })
        .unwrap();
        // Were the wait not woken, this would hang for an hour.
        s.stop();
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert!(s.shutdown().is_stopped());
    }

    #[test]
    fn jobs_repeat_until_they_break_and_every_job_is_joined() {
        let s = Scheduler::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        s.every("test-thrice", Duration::from_millis(1), move |_| {
            if r.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        let handle = s.jobs.lock().unwrap().pop().unwrap();
        handle.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        s.stop();
    }

    #[test]
    fn a_stopped_shutdown_ends_waits_at_once() {
        let shutdown = Shutdown::default();
        assert!(!shutdown.wait(Duration::ZERO));
        shutdown.stop();
        assert!(shutdown.wait(Duration::from_secs(3600)));
    }
}
