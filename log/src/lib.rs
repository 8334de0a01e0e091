//! # weir-log
#![warn(missing_docs)]

mod config;
mod error;
mod flusher;
pub mod format;
mod log;
mod partition;
mod producer_state;
mod segment;
mod util;

pub use config::{LogConfig, TopicConfig};
pub use error::{Error, GroupErrorKind, Result};
pub use log::{validate_topic_name, Acks, Log, PartitionDescription, TopicDescription};
pub use partition::AppendInfo;
pub use segment::Truncation;
