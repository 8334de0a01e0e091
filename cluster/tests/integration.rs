//! weir-cluster against a real Kafka-protocol server: each test starts `weir serve` on a free
//! loopback port over a scratch directory and stops it by pid.
//!
//! The server is the `weir` binary of the same build profile as these tests: `cargo test
//! --workspace` builds it; `cargo test -p weir-cluster` alone needs `cargo build -p weir --bin
//! weir` first. Without it these tests fail and say so.
#![allow(clippy::unwrap_used)]

mod jobs;
mod server;
mod shared;
mod topics;
mod windows;
