//! weir-cluster against a real Kafka-protocol server: each test starts `weir serve` on a free
//! loopback port over a scratch directory and stops it by pid.
//!
//! The server is the `weir` binary of this workspace's debug build: `cargo build -p weir --bin
//! weir` first (`.ci/run` does); without it these tests fail and say so.
#![allow(clippy::unwrap_used)]

mod jobs;
mod server;
mod topics;
