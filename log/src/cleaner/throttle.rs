//! The I/O edge of an [`IoBudget`]: the cleaner charges every read and write, then waits as
//! long as the budget says, on a monotonic clock.

use std::sync::Arc;

use super::budget::IoBudget;
use crate::clock::{Clock, SystemClock};
use crate::scheduler::Shutdown;
use crate::{Error, Result};

/// Charges, then waits. A background round's waits end early when its scheduler stops, with
/// [`Error::Closed`]; a round run by hand ([`crate::clean_once`]) just sleeps.
pub(crate) struct Throttle {
    budget: IoBudget,
    clock: SystemClock,
    shutdown: Option<Arc<Shutdown>>,
}

impl Throttle {
    pub(crate) fn new(bytes_per_s: u64, shutdown: Option<Arc<Shutdown>>) -> Throttle {
        let clock = SystemClock::new();
        Throttle {
            budget: IoBudget::new(bytes_per_s, clock.monotonic_ms()),
            clock,
            shutdown,
        }
    }

    /// True once the scheduler of a background round stopped.
    pub(crate) fn is_stopped(&self) -> bool {
        self.shutdown.as_ref().is_some_and(|s| s.is_stopped())
    }

    /// Call before reading or writing `bytes`.
    pub(crate) fn charge(&mut self, bytes: u64) -> Result<()> {
        let wait = self.budget.charge(bytes, self.clock.monotonic_ms());
        match &self.shutdown {
            _ if wait.is_zero() => Ok(()),
            Some(shutdown) if shutdown.wait(wait) => Err(Error::Closed),
            Some(_) => Ok(()),
            None => {
                std::thread::sleep(wait);
                Ok(())
            }
        }
    }
}
