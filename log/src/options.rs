//! What a [`Log`](crate::Log) runs on: its storage and its clock.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::storage::{RealStorage, Storage};

/// The storage and the clock of a [`Log`](crate::Log), for
/// [`Log::open_with`](crate::Log::open_with). [`Log::open`](crate::Log::open) uses the default:
/// the local file system and the system clock. Tests put a
/// [`FaultStorage`](crate::storage::sim::FaultStorage) or a
/// [`ManualClock`](crate::ManualClock) here.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Every file operation of the log goes through it.
    pub storage: Arc<dyn Storage>,
    /// Every reading of the time: record timestamps, rolling and retention by age, producer
    /// expiry, transaction timeouts.
    pub clock: Arc<dyn Clock>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            storage: Arc::new(RealStorage),
            clock: Arc::new(SystemClock::new()),
        }
    }
}
