//! Time behind a trait, for every crate of weir.
//!
//! Two readings, because they answer two questions:
//! - [`Clock::now_ms`] is the wall clock (milliseconds since the Unix epoch): record timestamps,
//!   time retention, transaction timeouts, a job's processing time;
//! - [`Clock::monotonic_ms`] never goes back and has an arbitrary origin: deadlines (group
//!   sessions and rebalances, I/O budgets), where a wall clock stepped by NTP or an operator would
//!   expire every member at once, or none for hours.
//!
//! Production code uses [`SystemClock`]; tests use [`ManualClock`], which moves only when told to,
//! so a test of a timeout is exact and never sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A source of milliseconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Milliseconds since an arbitrary origin, never going backwards. Only differences between
    /// two readings of the same clock mean anything.
    fn monotonic_ms(&self) -> i64;

    /// [`Clock::now_ms`], possibly coarser (by a few ms) and cheaper: for timestamps taken once
    /// per record on the produce path. The default is `now_ms` itself.
    fn coarse_now_ms(&self) -> i64 {
        self.now_ms()
    }
}

/// The clock of the machine: the system's wall clock and a monotonic [`Instant`].
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose monotonic origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        wall_clock_ms()
    }

    fn monotonic_ms(&self) -> i64 {
        i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// The kernel's coarse clock: a few ns instead of a full clock read, at the cost of
    /// resolution (one scheduler tick, 1-4 ms); a read per record was a tenth of the produce
    /// path's budget.
    fn coarse_now_ms(&self) -> i64 {
        coarse_wall_clock_ms()
    }
}

/// Milliseconds since the Unix epoch from `CLOCK_REALTIME_COARSE`.
fn coarse_wall_clock_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_REALTIME_COARSE exists on
    // every Linux since 2.6.32.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 {
        return wall_clock_ms();
    }
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// Milliseconds since the Unix epoch from the system clock (0 if it reads before 1970).
pub(crate) fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A clock that only moves when told to; both readings move together. Clones share one reading.
///
/// Moving it wakes nobody: a test advances the clock and then calls the code under test (for
/// example [`GroupCoordinator`](crate::group::GroupCoordinator), which checks its deadlines at
/// every call).
#[derive(Debug, Default, Clone)]
pub struct ManualClock {
    now_ms: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        ManualClock {
            now_ms: Arc::new(AtomicI64::new(start_ms)),
        }
    }

    /// Moves the clock forward by `ms` (backward if negative, which a real clock never does;
    /// allowed so tests can probe that case).
    pub fn advance(&self, ms: i64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the reading to `ms`.
    pub fn set(&self, ms: i64) {
        self.now_ms.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn monotonic_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        assert_eq!(clock.monotonic_ms(), 1_000);
        clock.advance(250);
        assert_eq!(clock.now_ms(), 1_250);
        let shared = clock.clone();
        shared.set(7);
        assert_eq!(clock.now_ms(), 7);
    }

    #[test]
    fn system_clock_is_monotonic_and_starts_near_zero() {
        let clock = SystemClock::new();
        let a = clock.monotonic_ms();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = clock.monotonic_ms();
        assert!(
            (0..1_000).contains(&a),
            "origin is construction time, got {a}"
        );
        assert!(b >= a + 5, "{b} should be at least 5 ms after {a}");
        // The wall clock reads after 2020-01-01.
        assert!(clock.now_ms() > 1_577_836_800_000);
    }
}
