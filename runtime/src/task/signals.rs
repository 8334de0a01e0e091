//! The few facts every thread of a running job waits on: stop, the epoch requested, the epoch
//! committed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};

/// Stop and epoch signals between the coordinator, the tasks and the handle.
#[derive(Debug)]
pub(crate) struct EpochSignals {
    stop: AtomicBool,
    /// The last committed epoch when the job started.
    restored_epoch: u64,
    /// The final epoch committed: stopping is success.
    finished: AtomicBool,
    requested: AtomicU64,
    requested_cv: (Mutex<()>, Condvar),
    committed: (Mutex<u64>, Condvar),
}

impl EpochSignals {
    /// Signals of a job whose last committed epoch is `last_committed` (0 for a first run).
    pub(crate) fn new(last_committed: u64) -> EpochSignals {
        EpochSignals {
            stop: AtomicBool::new(false),
            restored_epoch: last_committed,
            finished: AtomicBool::new(false),
            requested: AtomicU64::new(last_committed),
            requested_cv: (Mutex::new(()), Condvar::new()),
            committed: (Mutex::new(last_committed), Condvar::new()),
        }
    }

    /// Tells every thread to stop, and wakes those that wait.
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, SeqCst);
        self.requested_cv.1.notify_all();
        self.committed.1.notify_all();
    }

    /// Whether the job is stopping. Sequentially consistent: whoever sees the stop also sees
    /// what the stopping thread sent before (a failing task's report).
    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.load(SeqCst)
    }

    /// The final epoch committed: tasks that stop now succeed.
    pub(crate) fn finish(&self) {
        self.finished.store(true, SeqCst);
    }

    /// Whether the final epoch committed.
    pub(crate) fn finished(&self) -> bool {
        self.finished.load(SeqCst)
    }

    /// The last committed epoch when the job started: the first epoch a source's barrier ends
    /// is the one after it, however late the source's thread gets going (by then the
    /// coordinator may have requested that epoch already).
    pub(crate) fn restored_epoch(&self) -> u64 {
        self.restored_epoch
    }

    /// The newest epoch whose barriers the sources were asked for.
    pub(crate) fn requested_epoch(&self) -> u64 {
        self.requested.load(SeqCst)
    }

    /// Asks the sources for the barriers of `epoch`, waking those that sleep.
    pub(crate) fn request_epoch(&self, epoch: u64) {
        {
            // Under the lock, so a source between its check and its wait cannot miss it.
            let _g = self.requested_cv.0.lock().expect("epoch lock");
            self.requested.store(epoch, SeqCst);
        }
        self.requested_cv.1.notify_all();
    }

    /// Sleeps until an epoch after `epoch` is requested, the job stops, or `timeout` passes.
    pub(crate) fn wait_for_epoch_after(&self, epoch: u64, timeout: Duration) {
        let (lock, cv) = &self.requested_cv;
        let guard = lock.lock().expect("epoch lock");
        let _ = cv.wait_timeout_while(guard, timeout, |_| {
            self.requested_epoch() <= epoch && !self.stop_requested()
        });
    }

    /// The last committed epoch.
    pub(crate) fn committed_epoch(&self) -> u64 {
        *self.committed.0.lock().expect("committed lock")
    }

    /// Epoch `epoch` committed: wakes the tasks waiting for it.
    pub(crate) fn set_committed(&self, epoch: u64) -> Result<()> {
        {
            let mut c = self.committed.0.lock().map_err(|_| Error::Stopped)?;
            *c = epoch;
        }
        self.committed.1.notify_all();
        Ok(())
    }

    /// Waits until `epoch` has committed (true) or the job stops first (false).
    pub(crate) fn wait_committed(&self, epoch: u64) -> Result<bool> {
        let (lock, cv) = &self.committed;
        let guard = lock.lock().map_err(|_| Error::Stopped)?;
        let guard = cv
            .wait_while(guard, |c| *c < epoch && !self.stop_requested())
            .map_err(|_| Error::Stopped)?;
        Ok(*guard >= epoch)
    }
}
