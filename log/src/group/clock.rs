//! Time as the coordinator sees it.
//!
//! Session and rebalance timeouts are judged against an injected [`Clock`] rather than the
//! system time directly, so that tests can move time forward by hand and get the same answer on
//! every run, and so that the coordinator needs no background thread: it checks deadlines
//! whenever it is called, with whatever time the clock reports.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

/// A source of milliseconds for deadline arithmetic.
///
/// Only differences between two readings of the same clock matter; the origin is arbitrary.
/// Readings must not go backwards, or members could outlive their session.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the clock's (arbitrary) origin.
    fn now_ms(&self) -> i64;
}

/// The clock for production use.
///
/// It is monotonic ([`Instant`]-based) on purpose: a wall clock stepped back or forward by NTP
/// or an operator would otherwise expire every member at once, or none for hours.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
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
        i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock that only moves when told to, so tests of timeouts are exact and never sleep.
///
/// Moving it does not wake callers blocked in
/// [`GroupCoordinator::await_assignment`](super::GroupCoordinator::await_assignment): tests
/// should advance the clock and then call the coordinator.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        ManualClock {
            now: AtomicI64::new(start_ms),
        }
    }

    /// Moves the clock forward by `ms` (backward if negative, which a real clock never does;
    /// allowed so tests can probe that case).
    pub fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the reading to `ms`.
    pub fn set(&self, ms: i64) {
        self.now.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(250);
        assert_eq!(clock.now_ms(), 1_250);
        clock.set(7);
        assert_eq!(clock.now_ms(), 7);
    }

    #[test]
    fn system_clock_is_monotonic_and_starts_near_zero() {
        let clock = SystemClock::new();
        let a = clock.now_ms();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = clock.now_ms();
        assert!(
            (0..1_000).contains(&a),
            "origin is construction time, got {a}"
        );
        assert!(b >= a + 5, "{b} should be at least 5 ms after {a}");
    }
}
