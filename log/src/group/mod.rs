//! Consumer groups: which member of a group consumes which partition.
//!
//! Runs inside the process that embeds the log. Members join a group through a
//! [`GroupCoordinator`], which runs Kafka's eager rebalance protocol and computes the assignment
//! itself with one of the [`AssignmentStrategy`] assignors. Offsets are not stored here; the
//! offset store asks [`GroupCoordinator::validate_generation`] before accepting a commit.

mod assignor;
mod coordinator;

pub use assignor::{AssignmentStrategy, assign};
pub use coordinator::{
    Assignment, GroupCoordinator, GroupDescription, GroupState, MemberConfig, MemberDescription,
};
