//! The log's integration tests, one binary. Tests that need a second process re-run this binary
//! as a child (see `common::spawn_child`).
// Tests fail loudly on an error, and `unwrap` says so. (clippy.toml's allow-unwrap-in-tests
// covers `#[test]` functions, not the helpers beside them.)
#![allow(clippy::unwrap_used)]

mod common;

mod alter_config;
mod bad_input;
mod classic_groups;
mod cleaner;
mod compat;
mod corruption;
mod crash;
mod delete_records;
mod follow;
mod format_props;
mod full_disk;
mod fuzz_corpus;
mod groups;
mod model;
mod silent_loss;
mod simulation;
mod simulation_groups;
mod txn;
mod txn_kafka;
