//! What a task is: the body that runs on its thread ([`TaskRun`]), what kind of task it is
//! ([`TaskKind`]), what it sees while its chain is built ([`TaskContext`]) and while it runs
//! ([`TaskEnv`]), what it reports to the coordinator ([`TaskReport`]), and the state every task
//! of a running job shares ([`Shared`]).
//!
//! This module is the leaf the task bodies (sources, exchanges, sinks), the graph, the
//! coordinator and the handle all build on; it imports none of them.

mod context;
mod env;
mod kind;
mod report;
mod run;
mod shared;
mod signals;

pub use context::TaskContext;
pub(crate) use env::TaskEnv;
pub(crate) use kind::TaskKind;
pub(crate) use report::TaskReport;
pub(crate) use run::TaskRun;
pub(crate) use shared::Shared;
pub(crate) use signals::EpochSignals;
