//! The crate's one integration-test binary (one link instead of one per file).

mod windows;
mod jobs;
