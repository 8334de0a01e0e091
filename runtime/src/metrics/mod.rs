//! Job metrics: counters the tasks bump without contention ([`counters`]), the registry that
//! knows every counter of a running job and reads them as one snapshot ([`registry`]), and the
//! snapshot itself ([`snapshot`]).

mod counters;
mod registry;
mod snapshot;

pub(crate) use counters::SourceProgress;
pub use counters::{ExchangeGauge, OperatorCounters};
pub(crate) use registry::MetricsRegistry;
pub use snapshot::{ExchangeMetrics, JobMetrics, OperatorMetrics};
