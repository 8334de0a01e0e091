//! weir-sql's one integration-test binary: the golden queries and the fixture they run on.
// Tests fail loudly on an error, and `unwrap` says so. (clippy.toml's allow-unwrap-in-tests
// covers `#[test]` functions, not the helpers beside them.)
#![allow(clippy::unwrap_used)]

mod continuous;
mod fixture;
mod fuzz_corpus;
mod golden;
mod pushdown;
mod session;
