//! # weir-runtime
//!
//! The engine that will run weir's dataflow jobs. Not built yet: it arrives with the runtime issue.
//!
//! It will hold the job graph (operators, each run as N parallel tasks on threads), source tasks
//! that own topic partitions of [`weir_log`], keyed exchanges over bounded channels (so a slow stage
//! slows its producers instead of growing memory), event time and watermarks (the minimum over live
//! inputs, idle inputs excluded), and the exactly-once protocol: epochs ended by aligned barriers,
//! state snapshots, and one log transaction per epoch committing outputs, source offsets and state.
#![warn(missing_docs)]

pub use codec::{Binary, Codec, CodecError, Json};
pub use weir_log;

pub mod codec;
pub mod schema;
