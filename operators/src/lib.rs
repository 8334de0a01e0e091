//! # weir-operators
//!
//! The operators that weir's jobs are built from. Not built yet: they arrive with the runtime issue.
//!
//! It will hold tumbling, sliding and session windows with allowed lateness and a late side output,
//! mergeable aggregates (count, sum, min, max, avg, HyperLogLog distinct, top-k, user-defined), the
//! keyed `process` operator with state and timers, stream–table enrichment, and salted two-stage
//! aggregation for hot keys. Each operator is an extension method on the runtime's stream type.
//!
//! Built so far: [`window`], the pure event-time window engine ([`WindowState`]) that the window
//! operators wrap, and the [`aggregate`] trait.
#![warn(missing_docs)]

pub use weir_runtime;
pub use window::{
    EmitMode, Late, LateReason, Window, WindowConfig, WindowError, WindowSpec, WindowState,
};

pub mod aggregate;
pub mod window;
