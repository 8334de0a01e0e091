//! A token bucket over bytes of I/O. The cleaner charges every read and write to it before doing
//! it and waits as long as it says, so that its I/O stays within
//! [`LogConfig::cleaner_io_bytes_per_s`](crate::LogConfig::cleaner_io_bytes_per_s) and never
//! starves producers. Pure accounting: the caller passes the time in.

use std::time::Duration;

/// Largest burst, as time at the full rate: after an idle spell the cleaner may do this much I/O
/// at once, and no more.
const BURST_MS: u64 = 100;

/// A token bucket over bytes of I/O.
///
/// It starts full, refills at `bytes_per_s` up to a burst of 100 ms worth, and may go into debt:
/// [`IoBudget::charge`] takes the bytes at once and answers with the wait that pays the debt
/// back. A caller that waits as told before each I/O has done, by any time `t` after the
/// bucket's start, at most `burst_bytes + bytes_per_s × t` bytes.
///
/// ```
/// use std::time::Duration;
/// use weir_log::IoBudget;
///
/// let mut budget = IoBudget::new(1 << 20, 0); // 1 MiB/s, from t = 0 ms
/// assert_eq!(budget.charge(budget.burst_bytes(), 0), Duration::ZERO);
/// // The bucket is empty: half a MiB more costs half a second.
/// assert_eq!(budget.charge(1 << 19, 0), Duration::from_millis(500));
/// ```
#[derive(Debug, Clone)]
pub struct IoBudget {
    bytes_per_s: u64,
    burst_bytes: u64,
    /// Bytes available × 1000 (negative while in debt), so that refills by whole milliseconds
    /// stay exact.
    milli_tokens: i128,
    last_ms: i64,
}

impl IoBudget {
    /// A full bucket at `now_ms` (any millisecond clock that does not go back; a reading before
    /// the last one counts as no time passing). A rate of 0 counts as 1 byte/s.
    pub fn new(bytes_per_s: u64, now_ms: i64) -> IoBudget {
        let bytes_per_s = bytes_per_s.max(1);
        let burst_bytes = (bytes_per_s as u128 * BURST_MS as u128 / 1000).max(1) as u64;
        IoBudget {
            bytes_per_s,
            burst_bytes,
            milli_tokens: burst_bytes as i128 * 1000,
            last_ms: now_ms,
        }
    }

    /// The sustained rate.
    pub fn bytes_per_s(&self) -> u64 {
        self.bytes_per_s
    }

    /// What a full bucket holds.
    pub fn burst_bytes(&self) -> u64 {
        self.burst_bytes
    }

    /// Takes `bytes` out of the bucket at `now_ms` and returns how long to wait before doing that
    /// I/O: zero while the bucket covers it, else the time the refill needs to pay the debt.
    pub fn charge(&mut self, bytes: u64, now_ms: i64) -> Duration {
        let elapsed_ms = now_ms.saturating_sub(self.last_ms).max(0);
        self.last_ms = self.last_ms.max(now_ms);
        let rate = self.bytes_per_s as i128;
        let full = self.burst_bytes as i128 * 1000;
        self.milli_tokens = (self.milli_tokens + elapsed_ms as i128 * rate).min(full);
        self.milli_tokens -= bytes as i128 * 1000;
        if self.milli_tokens >= 0 {
            return Duration::ZERO;
        }
        // Tokens come back at `rate` milli-bytes per millisecond; round the wait up.
        let owed = -self.milli_tokens;
        let wait_ms = (owed + rate - 1) / rate;
        Duration::from_millis(u64::try_from(wait_ms).unwrap_or(u64::MAX))
    }
}
