//! What every task of a running job shares.

use std::sync::Arc;

use crossbeam_channel::Sender;

use super::report::TaskReport;
use super::signals::EpochSignals;
use crate::config::JobConfig;
use crate::metrics::MetricsRegistry;
use crate::topics::{GroupMembership, TopicWriter, Topics};

/// The running job as its threads see it: built once by the start-up, then read-only apart from
/// its signals, its counters and the producer's lock.
pub(crate) struct Shared {
    pub(crate) config: JobConfig,
    /// Where the job's topics live (the embedded log, or a cluster).
    pub(crate) topics: Arc<dyn Topics>,
    /// Where sinks write (into the open epoch's transaction under exactly-once).
    pub(crate) output: Box<dyn TopicWriter>,
    pub(crate) signals: EpochSignals,
    /// The coordinator's inbox.
    pub(crate) reports: Sender<TaskReport>,
    /// Counters; on a cluster one registry outlives the runs of each assignment.
    pub(crate) metrics: Arc<MetricsRegistry>,
    /// On a cluster, the group assignment this run's commits are fenced by.
    pub(crate) membership: Option<GroupMembership>,
}
