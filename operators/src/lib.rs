//! # weir-operators
//!
//! The operators weir's jobs are built from, as extension traits on the runtime's streams:
//!
//! - [`windowed`]: `keyed.window(spec).aggregate(agg)`: tumbling, sliding and session windows
//!   in event time, allowed lateness, final or early emission, late records to a side output
//!   that must be consumed, and salted two-stage aggregation of hot keys;
//! - [`aggregate`]: mergeable aggregates (count, sum, min, max, avg, HyperLogLog distinct,
//!   top-k, reduce, user-defined and tuples of them);
//! - [`process`]: a function per record with per-key state and event-time timers;
//! - [`enrich`]: stream–table enrichment from a compacted topic;
//! - [`hot_keys`]: the Space-Saving heavy-hitter sketch that finds hot keys on the fly;
//! - [`window`]: the pure window engine ([`WindowState`]) the window operators wrap.
//!
//! ```
//! use std::time::Duration;
//! use serde::{Deserialize, Serialize};
//! use weir_log::{Log, LogConfig, TopicConfig};
//! use weir_operators::aggregate::count;
//! use weir_operators::windowed::KeyedWindowExt;
//! use weir_operators::WindowSpec;
//! use weir_runtime::{Job, JobConfig, Json};
//!
//! #[derive(Clone, Serialize, Deserialize)]
//! struct Click { ad_id: u64, ts: i64 }
//!
//! let dir = tempfile::tempdir()?;
//! let log = Log::open(dir.path(), LogConfig::default())?;
//! for t in ["clicks", "per_minute", "late"] {
//!     log.create_topic(t, TopicConfig::default())?;
//! }
//! let job = Job::new(&log, JobConfig::new("clicks-per-minute"))?;
//! let out = job
//!     .source::<Click, _>("clicks", Json)
//!     .timestamps(|c| c.ts, 5_000)
//!     .key_by(|c| c.ad_id)
//!     .window(WindowSpec::tumbling(Duration::from_secs(60)))
//!     .aggregate(count());
//! out.results.sink("per_minute", Json);
//! out.late.sink("late", Json);
//! let running = job.start()?;
//! running.stop()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub use weir_runtime;
pub use window::{
    EmitMode, Late, LateReason, Window, WindowConfig, WindowError, WindowSpec, WindowState,
};

pub use aggregate::Aggregate;
pub use hot_keys::{HotKeyConfig, HotKeyDetector, SpaceSaving};

pub mod aggregate;
pub mod enrich;
pub mod hot_keys;
pub mod process;
pub mod window;
pub mod windowed;
