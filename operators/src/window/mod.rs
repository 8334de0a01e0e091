//! Event-time windows: assignment, per-key window state, watermarks, lateness and emission.
//!
//! The engine here is pure: [`WindowState`] takes records and watermarks and calls back with
//! results; the runtime's window operator wraps it with threads, channels and checkpoints.
//!
//! # Semantics
//! - Time is `i64` milliseconds since the Unix epoch; windows are half-open `[start, end)`,
//!   epoch-aligned with Euclidean division ([`WindowSpec::assign`]).
//! - A watermark `W` promises no more records with `ts <= W`. A window is *complete* once
//!   `W >= end - 1` and *closed* once `W >= end - 1 + allowed_lateness_ms`: it fires its final
//!   result and its state is dropped.
//! - Each record carries `input_wm`, its source partition's watermark just before it, so whether it
//!   is late does not depend on thread scheduling. It is late for window `w` iff
//!   `w.end - 1 + allowed_lateness_ms <= max(input_wm, op_wm)`; [`LateReason`] tells whether its
//!   own partition's watermark or only the operator's (after an idle input woke up) made it late.
//!   Tumbling and sliding: the record goes into every window it is not late for and is reported
//!   once if it missed any. Sessions: the record's own window `[ts, ts + gap)` decides.
//! - Session windows of a key that overlap or touch merge into their cover. A closed session is
//!   gone, so a later on-time record overlapping it starts a new session (as in Flink).
//!
//! # Salted session windows
//! Stage two of salted aggregation merges partial sessions by the same overlap-or-touch rule
//! ([`WindowState::merge_partial`]), but the result is **not** the unsalted result in general, even
//! when every record reaches stage one in time. A salt sees only part of a key's records, so its
//! sessions are sub-sessions that end, and therefore close, earlier than the key's whole session:
//! with gap 10, records at 0 (salt A) and 8 (salt B) form one session `[0, 18)` unsalted, but salt
//! A closes `[0, 10)` at watermark 9 and stage two emits it before salt B's `[8, 18)` exists.
//! What does hold (and is property-tested): late decisions are the same; every stage-two session
//! lies inside one unsalted session of its key and the stage-two sessions inside an unsalted
//! session add up to it, i.e. salting splits sessions but never joins, loses or double-counts.
//! The two are equal exactly when no sub-session closes before the whole session does (for
//! instance with one salt). So the runtime should not salt session windows.

mod assign;
mod config;
mod fixed;
mod hash;
mod session;
mod state;

pub use assign::{WINDOWS_PER_RECORD_MAX, Window, WindowSpec};
pub use config::{EmitMode, WindowConfig, WindowError};
pub use hash::{FastBuildHasher, FastHasher, FastMap};
pub use state::{Late, LateReason, WindowState};
