//! The log's integration tests, one binary.
mod compat;
mod format_props;
