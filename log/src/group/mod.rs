//! Consumer groups: which member of a group consumes which partition.
//!
//! Runs inside the process that embeds the log. Embedded [`Consumer`](crate::Consumer)s join a
//! group through a [`GroupCoordinator`], which runs Kafka's eager rebalance protocol and computes
//! the assignment itself with one of the [`AssignmentStrategy`] assignors. Kafka clients (through
//! `weir serve`) join groups of their own in the same coordinator with Kafka's classic protocol
//! ([`GroupCoordinator::join_classic`], [`GroupCoordinator::sync`]): their leader computes the
//! assignment and the coordinator relays it as opaque bytes. Offsets are not stored here; the
//! offset store asks [`GroupCoordinator::validate_generation`] before accepting a commit.

mod assignor;
mod classic;
mod consumer_protocol;
mod coordinator;

pub use assignor::{AssignmentStrategy, assign};
pub use classic::{
    ClassicMember, GroupMember, GroupMembers, JoinOutcome, JoinedGroup, SESSION_TIMEOUT_MS_MAX,
};
pub use coordinator::{
    Assignment, GroupCoordinator, GroupDescription, GroupState, MEMBERS_PER_GROUP_MAX,
    MemberConfig, MemberDescription,
};
