//! The log's integration tests, one binary. Tests that need a second process re-run this binary
//! as a child (see `common::spawn_child`).

mod common;

mod bad_input;
mod cleaner;
mod compat;
mod corruption;
mod crash;
mod follow;
mod format_props;
mod groups;
mod model;
mod silent_loss;
mod simulation;
mod txn;
