//! The integration tests of weir-operators, in one binary (one link instead of one per file).
// Tests fail loudly on an error, and `unwrap` says so. (clippy.toml's allow-unwrap-in-tests
// covers `#[test]` functions, not the helpers beside them.)
#![allow(clippy::unwrap_used)]

mod aggregates;
mod hot_keys;
mod jobs;
mod keyed;
mod windows;
