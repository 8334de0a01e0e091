//! The integration tests of weir-operators, in one binary.

mod aggregates;
mod hot_keys;
