//! # weir-operators
//!
//! The operators that weir's jobs are built from. Not built yet: they arrive with the runtime issue.
//!
//! It will hold tumbling, sliding and session windows with allowed lateness and a late side output,
//! mergeable aggregates (count, sum, min, max, avg, HyperLogLog distinct, top-k, user-defined), the
//! keyed `process` operator with state and timers, stream–table enrichment, and salted two-stage
//! aggregation for hot keys. Each operator is an extension method on the runtime's stream type.
#![warn(missing_docs)]

pub use weir_runtime;

pub use aggregate::Aggregate;
pub use hot_keys::{HotKeyConfig, HotKeyDetector, SpaceSaving};

pub mod aggregate;
pub mod hot_keys;
