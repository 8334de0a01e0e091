//! What flows through a job: events carrying their event time, and the watermark they were read
//! under.

/// The lowest watermark: nothing is known yet.
pub const WATERMARK_MIN: i64 = i64::MIN;
/// The highest watermark: the input is complete, every window can close.
pub const WATERMARK_MAX: i64 = i64::MAX;

/// One record in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<T> {
    /// The record.
    pub value: T,
    /// Its event time, ms since the Unix epoch.
    pub ts: i64,
    /// The watermark of the source partition the record came from, as it stood just before the
    /// record was read. Operators judge lateness against it (as well as their own watermark), so
    /// whether a record is late does not depend on how threads were scheduled.
    pub wm: i64,
}

impl<T> Event<T> {
    /// The same timing with another value.
    pub fn with<U>(&self, value: U) -> Event<U> {
        Event {
            value,
            ts: self.ts,
            wm: self.wm,
        }
    }

    /// Replaces the value, keeping the timing.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Event<U> {
        Event {
            value: f(self.value),
            ts: self.ts,
            wm: self.wm,
        }
    }
}

/// A message on an exchange channel between two tasks.
#[derive(Debug)]
pub(crate) enum Message<T> {
    /// Records, in order.
    Data(Vec<Event<T>>),
    /// The sender's watermark advanced.
    Watermark(i64),
    /// The sender has no live input: do not wait for its watermark.
    Idle,
    /// The end of an epoch: everything before it belongs to the epoch.
    Barrier(u64),
    /// The sender will send nothing more.
    End,
}
