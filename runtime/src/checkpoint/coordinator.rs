//! The coordinator's thread: the I/O around the checkpoint protocol. It reads the job's clock,
//! receives the tasks' reports, publishes epoch requests and commits, writes each epoch's
//! transaction, and prints the metrics line when asked to.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::ledger::{CommitPlan, StateLedger};
use super::protocol::{CompleteEpoch, EpochProtocol};
use super::purge::Purge;
use crate::error::{Error, Result};
use crate::task::{Shared, TaskReport};
use crate::topics::{EpochCommit, OutgoingRecord, PartitionOffset};

/// The longest the coordinator sleeps between two looks at the stop flag, in ms.
const WAKE_INTERVAL_MS_MAX: u64 = 100;

/// The checkpoint coordinator of one running job.
pub(crate) struct Coordinator {
    shared: Arc<Shared>,
    reports: Receiver<TaskReport>,
    protocol: EpochProtocol,
    ledger: StateLedger,
    purge: Purge,
}

impl Coordinator {
    pub(crate) fn new(
        shared: Arc<Shared>,
        reports: Receiver<TaskReport>,
        protocol: EpochProtocol,
        ledger: StateLedger,
        purge: Purge,
    ) -> Coordinator {
        Coordinator {
            shared,
            reports,
            protocol,
            ledger,
            purge,
        }
    }

    /// Runs until the job finishes, fails or is stopped; then stops every task and abandons the
    /// open epoch.
    pub(crate) fn run(mut self) -> Result<()> {
        let r = self.coordinate();
        self.shared.signals.request_stop();
        self.shared.output.abandon();
        r
    }

    fn now_ms(&self) -> i64 {
        self.shared.config.clock.monotonic_ms()
    }

    fn coordinate(&mut self) -> Result<()> {
        let config = self.shared.config.clone();
        let print_every_ms = config.metrics_print_interval_ms;
        let mut next_print_at_ms =
            print_every_ms.map(|every| self.now_ms().saturating_add(every as i64));
        loop {
            if self.shared.signals.stop_requested() {
                // A failing task stops the job first, then reports why.
                while let Ok(report) = self.reports.try_recv() {
                    if let TaskReport::Failed { error } = report {
                        return Err(error);
                    }
                }
                return Err(Error::Stopped);
            }
            let now_ms = self.now_ms();
            if let Some(epoch) = self.protocol.start_epoch_if_due(now_ms) {
                self.shared.signals.request_epoch(epoch);
            }
            if let (Some(at), Some(every)) = (next_print_at_ms, print_every_ms)
                && now_ms >= at
            {
                let metrics = self
                    .shared
                    .metrics
                    .collect(&*self.shared.topics, &*config.clock);
                eprintln!("[{}] {metrics}", config.name);
                next_print_at_ms = Some(now_ms.saturating_add(every as i64));
            }
            // While an epoch is open only a report moves the protocol: sleep until one comes
            // (or the stop flag needs a look), not until the next epoch's nominal start.
            let wait_ms = self
                .protocol
                .ms_until_next_epoch(now_ms)
                .map_or(WAKE_INTERVAL_MS_MAX, |ms| ms.min(WAKE_INTERVAL_MS_MAX));
            let report = match self.reports.recv_timeout(Duration::from_millis(wait_ms)) {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Err(Error::Stopped),
            };
            match report {
                TaskReport::Failed { error } => return Err(error),
                TaskReport::Drained { task } => self.protocol.on_drained(task)?,
                TaskReport::Ack { task, cp } => {
                    if let Some(complete) = self.protocol.on_ack(task, cp)?
                        && self.commit(complete)?
                    {
                        self.shared.signals.finish();
                        self.shared.signals.request_stop();
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Commits a complete epoch; true if it was the last.
    fn commit(&mut self, complete: CompleteEpoch) -> Result<bool> {
        let plan = self.ledger.plan(complete.epoch, complete.checkpoints)?;
        self.write(&plan)?;
        let committed = self.protocol.on_committed(self.now_ms())?;
        self.shared.metrics.record_checkpoint(
            committed.epoch,
            committed.duration_ms,
            plan.state_bytes,
        );
        self.shared.signals.set_committed(committed.epoch)?;
        self.purge_repartition_topics(&plan.offsets);
        Ok(committed.finished)
    }

    /// Deletes what the job's repartition topics hold before the offsets just committed, when
    /// a purge is due. A failure costs only disk until the next purge asks again, so the job
    /// goes on and says so.
    fn purge_repartition_topics(&mut self, offsets: &[(String, i32, i64)]) {
        let due = self.purge.due(offsets, self.now_ms());
        if due.is_empty() {
            return;
        }
        match self.shared.topics.delete_records(&due) {
            Ok(()) => self.purge.done(&due),
            Err(e) => eprintln!(
                "[{}] purging the repartition topics failed (asked again at the next purge): {e}",
                self.shared.config.name
            ),
        }
    }

    /// Writes the state records, the manifest and the source offsets, and ends the epoch: a
    /// transaction commit (and the next one's begin), or a flush then an offset commit.
    fn write(&self, plan: &CommitPlan) -> Result<()> {
        let config = &self.shared.config;
        let job = config.job_id();
        let records: Vec<OutgoingRecord<'_>> =
            state_records(plan, config.state_topic.as_str()).collect();
        let offsets: Vec<PartitionOffset> = plan
            .offsets
            .iter()
            .map(|(topic, partition, offset)| PartitionOffset {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect();
        self.shared.output.commit_epoch(&EpochCommit {
            records: &records,
            group: &job,
            offsets: &offsets,
            // On a cluster, the assignment this run was started for; standalone, none.
            membership: self.shared.membership.as_ref(),
        })
    }
}

/// The records that carry an epoch's state into the state topic: the changed state chunks, then
/// the manifest that names them, all on partition 0.
fn state_records<'a>(
    plan: &'a CommitPlan,
    topic: &'a str,
) -> impl Iterator<Item = OutgoingRecord<'a>> {
    plan.state_records
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_slice()))
        .chain(
            plan.manifests
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_slice())),
        )
        .map(move |(key, value)| OutgoingRecord {
            topic,
            partition: Some(0),
            key: Some(key),
            value,
            timestamp: None,
            headers: &[],
        })
}
