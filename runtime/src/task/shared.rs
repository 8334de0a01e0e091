//! What every task of a running job shares.

use crossbeam_channel::Sender;
use weir_log::Log;

use super::report::TaskReport;
use super::signals::EpochSignals;
use crate::config::JobConfig;
use crate::metrics::MetricsRegistry;
use crate::output::OutputProducer;

/// The running job as its threads see it: built once by the start-up, then read-only apart from
/// its signals, its counters and the producer's lock.
pub(crate) struct Shared {
    pub(crate) config: JobConfig,
    pub(crate) log: Log,
    /// Where sinks write (into the open epoch's transaction under exactly-once).
    pub(crate) output: OutputProducer,
    pub(crate) signals: EpochSignals,
    /// The coordinator's inbox.
    pub(crate) reports: Sender<TaskReport>,
    pub(crate) metrics: MetricsRegistry,
}
