//! The integration tests of weir-runtime, in one binary to keep link time down.
// Tests fail loudly on an error, and `unwrap` says so. (clippy.toml's allow-unwrap-in-tests
// covers `#[test]` functions, not the helpers beside them.)
#![allow(clippy::unwrap_used)]

mod codec;
mod fuzz_corpus;
mod job;
mod topics;
