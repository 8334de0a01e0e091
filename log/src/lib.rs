//! # weir-log
#![warn(missing_docs)]

mod error;
pub mod format;

pub use error::{Error, GroupErrorKind, Result};
