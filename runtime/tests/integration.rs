//! The integration tests of weir-runtime, in one binary to keep link time down.

mod codec;
mod job;
