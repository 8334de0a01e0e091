//! The integration tests of weir-operators, in one binary (one link instead of one per file).

mod aggregates;
mod hot_keys;
mod jobs;
mod keyed;
mod windows;
