//! # weir-sql
//!
//! SQL over weir topics through Apache DataFusion. Not built yet: it arrives with the SQL issue.
//!
//! It will expose every topic that has a schema as a DataFusion table (with `_partition`,
//! `_offset`, `_timestamp` and `_key` columns, projection and offset/timestamp pushdown, reads at
//! `read_committed`), and turn windowed `GROUP BY` queries (`TUMBLE`, `HOP`, `SESSION`) into
//! continuous runtime jobs that write into a topic exactly once.
#![warn(missing_docs)]

pub use weir_operators;
