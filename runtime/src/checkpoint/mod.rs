//! Exactly-once in epochs.
//!
//! The coordinator asks the sources for a new epoch every `epoch_ms`. Each source snapshots its
//! positions and sends a barrier down its chain; every task snapshots when the barrier has come
//! in on all its inputs, and acknowledges with its state. Once every task has acknowledged, the
//! coordinator commits, in one log transaction: the epoch's output records (already written
//! by the sinks into the open transaction), the state snapshots and the source offsets. Tasks
//! that write output wait for that commit before writing the next epoch's records, so no record
//! of epoch N+1 can ride in epoch N's transaction.
//!
//! The decisions are [`protocol`]'s (a state machine over values and the time it is given) and
//! [`ledger`]'s (which state records a commit writes); [`coordinator`] is the thread around them
//! that reads the clock, receives the tasks' reports and writes the transaction. On a cluster,
//! [`purge`] decides when the records of repartition topics before committed offsets go.

pub(crate) mod coordinator;
pub(crate) mod ledger;
pub(crate) mod protocol;
pub(crate) mod purge;

pub(crate) use coordinator::Coordinator;
pub(crate) use ledger::StateLedger;
pub(crate) use protocol::{EpochProtocol, ProtocolSettings};
pub(crate) use purge::Purge;
