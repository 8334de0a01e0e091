//! The checkpoint protocol as a state machine over plain values: when an epoch starts, which
//! acknowledgements complete it, when it may commit, and when the job is done. It reads no clock
//! (the caller passes the time, in ms of a monotonic clock) and does no I/O; the coordinator
//! around it moves the messages, writes the transaction and wakes the tasks.
//!
//! One epoch at a time: an epoch starts when the previous one has committed and either its
//! interval has passed or every source is drained (then it is the last). It completes when every
//! task has acknowledged it exactly once.

use std::fmt;

use crate::emitter::Checkpoint;

/// What the protocol needs to know of the job.
#[derive(Debug, Clone)]
pub(crate) struct ProtocolSettings {
    /// Every task of the job: each acknowledges each epoch.
    pub(crate) tasks: usize,
    /// Those of them that read sources (and report when drained).
    pub(crate) source_tasks: usize,
    /// How long after one epoch's start the next one starts.
    pub(crate) epoch_ms: u64,
    /// Whether the job ends with a last epoch once every source is drained.
    pub(crate) stop_when_drained: bool,
    /// Tasks pass records to each other through topics (a cluster's repartition topics), where
    /// what a drained task wrote last, and the watermark that says it is done, reach the
    /// tasks downstream only when an epoch commits: with `stop_when_drained`, the last source
    /// task of a stage to drain then starts an epoch at once rather than when the interval is
    /// up, so that the stages downstream drain in turn without waiting out an interval each.
    /// (Not each source task as it drains: under exactly-once every task that writes waits out
    /// each commit, so an epoch per drained task stalled the stage's others once per task.)
    pub(crate) drains_cross_commits: bool,
    /// The stage of each task, by task: which source tasks drain together.
    pub(crate) task_stages: Vec<usize>,
}

/// An epoch whose every task acknowledged: what the coordinator commits.
#[derive(Debug)]
pub(crate) struct CompleteEpoch {
    pub(crate) epoch: u64,
    /// One snapshot per task, in task order.
    pub(crate) checkpoints: Vec<Checkpoint>,
}

/// What the protocol reports once an epoch's transaction has committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Committed {
    pub(crate) epoch: u64,
    /// From the epoch's start (the barrier request) to its commit.
    pub(crate) duration_ms: u64,
    /// It was the last epoch: the job is done.
    pub(crate) finished: bool,
}

/// A message that breaks the protocol: a bug in a task or in the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProtocolError {
    /// An acknowledgement while no epoch waits for one.
    AckWithoutEpoch { task: usize, epoch: u64 },
    /// An acknowledgement of another epoch than the pending one, or a second one from a task.
    UnexpectedAck {
        task: usize,
        acked: u64,
        pending: u64,
    },
    /// A report from a task the job does not have.
    UnknownTask { task: usize },
    /// A commit reported while no epoch was complete.
    CommitWithoutEpoch,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::AckWithoutEpoch { task, epoch } => {
                write!(
                    f,
                    "an ack with no epoch pending (task {task}, epoch {epoch})"
                )
            }
            ProtocolError::UnexpectedAck {
                task,
                acked,
                pending,
            } => write!(
                f,
                "task {task} acked epoch {acked} while {pending} is pending"
            ),
            ProtocolError::UnknownTask { task } => write!(f, "a report from unknown task {task}"),
            ProtocolError::CommitWithoutEpoch => write!(f, "a commit with no epoch complete"),
        }
    }
}

impl From<ProtocolError> for crate::error::Error {
    fn from(e: ProtocolError) -> Self {
        crate::error::Error::Internal(e.to_string())
    }
}

#[derive(Debug)]
struct Aligning {
    epoch: u64,
    started_at_ms: i64,
    acks: Vec<Option<Checkpoint>>,
    received: usize,
    last: bool,
}

#[derive(Debug)]
enum Phase {
    /// No epoch open: the next starts when due.
    Between,
    /// Barriers requested; acknowledgements coming in.
    Aligning(Aligning),
    /// Every task acknowledged; the coordinator is committing.
    Committing {
        epoch: u64,
        started_at_ms: i64,
        last: bool,
    },
    /// The last epoch committed.
    Finished,
}

/// The coordinator's decisions, from the tasks' reports and the time.
#[derive(Debug)]
pub(crate) struct EpochProtocol {
    settings: ProtocolSettings,
    /// The newest epoch started (the last committed one, before the first start).
    started: u64,
    next_epoch_at_ms: i64,
    phase: Phase,
    drained: Vec<bool>,
    all_drained: bool,
    /// A stage's last source task drained since the last epoch started (with
    /// `drains_cross_commits`).
    drain_to_commit: bool,
}

impl EpochProtocol {
    /// The protocol of a job whose last committed epoch is `last_committed`, starting at
    /// `now_ms`: the first epoch is due one interval later.
    pub(crate) fn new(settings: ProtocolSettings, last_committed: u64, now_ms: i64) -> Self {
        EpochProtocol {
            started: last_committed,
            next_epoch_at_ms: now_ms.saturating_add(epoch_ms(&settings)),
            phase: Phase::Between,
            drained: vec![false; settings.tasks],
            all_drained: false,
            drain_to_commit: false,
            settings,
        }
    }

    /// Starts the next epoch if one is due at `now_ms`: the caller asks the sources for its
    /// barriers.
    pub(crate) fn start_epoch_if_due(&mut self, now_ms: i64) -> Option<u64> {
        if !matches!(self.phase, Phase::Between) {
            return None;
        }
        if now_ms < self.next_epoch_at_ms && !self.all_drained && !self.drain_to_commit {
            return None;
        }
        self.drain_to_commit = false;
        let epoch = self.started + 1;
        self.started = epoch;
        self.phase = Phase::Aligning(Aligning {
            epoch,
            started_at_ms: now_ms,
            acks: (0..self.settings.tasks).map(|_| None).collect(),
            received: 0,
            last: self.all_drained,
        });
        self.next_epoch_at_ms = now_ms.saturating_add(epoch_ms(&self.settings));
        Some(epoch)
    }

    /// How long from `now_ms` until the next epoch is due by time (0 if overdue); `None` while
    /// an epoch is open or after the last one, when only the tasks' reports move the protocol.
    pub(crate) fn ms_until_next_epoch(&self, now_ms: i64) -> Option<u64> {
        matches!(self.phase, Phase::Between).then(|| {
            if self.all_drained || self.drain_to_commit {
                return 0;
            }
            u64::try_from(self.next_epoch_at_ms.saturating_sub(now_ms)).unwrap_or(0)
        })
    }

    /// Source task `task` read all its partitions to their end.
    pub(crate) fn on_drained(&mut self, task: usize) -> Result<(), ProtocolError> {
        let slot = self
            .drained
            .get_mut(task)
            .ok_or(ProtocolError::UnknownTask { task })?;
        let newly = !std::mem::replace(slot, true);
        if newly && self.settings.stop_when_drained && self.settings.drains_cross_commits {
            let stage = self.settings.task_stages.get(task);
            let stage_drained = self
                .drained
                .iter()
                .zip(&self.settings.task_stages)
                .all(|(drained, s)| *drained || Some(s) != stage);
            self.drain_to_commit |= stage_drained;
        }
        self.all_drained = self.settings.stop_when_drained
            && self.drained.iter().filter(|d| **d).count() >= self.settings.source_tasks;
        Ok(())
    }

    /// Task `task` acknowledged with its snapshot. Returns the epoch once every task has: the
    /// caller commits it and then calls [`EpochProtocol::on_committed`].
    pub(crate) fn on_ack(
        &mut self,
        task: usize,
        cp: Checkpoint,
    ) -> Result<Option<CompleteEpoch>, ProtocolError> {
        if task >= self.settings.tasks {
            return Err(ProtocolError::UnknownTask { task });
        }
        let Phase::Aligning(a) = &mut self.phase else {
            return Err(ProtocolError::AckWithoutEpoch {
                task,
                epoch: cp.epoch,
            });
        };
        if cp.epoch != a.epoch || a.acks[task].is_some() {
            return Err(ProtocolError::UnexpectedAck {
                task,
                acked: cp.epoch,
                pending: a.epoch,
            });
        }
        a.acks[task] = Some(cp);
        a.received += 1;
        if a.received < self.settings.tasks {
            return Ok(None);
        }
        let (epoch, started_at_ms, last) = (a.epoch, a.started_at_ms, a.last);
        let checkpoints = std::mem::take(&mut a.acks).into_iter().flatten().collect();
        self.phase = Phase::Committing {
            epoch,
            started_at_ms,
            last,
        };
        Ok(Some(CompleteEpoch { epoch, checkpoints }))
    }

    /// The complete epoch committed at `now_ms`.
    pub(crate) fn on_committed(&mut self, now_ms: i64) -> Result<Committed, ProtocolError> {
        let Phase::Committing {
            epoch,
            started_at_ms,
            last,
        } = self.phase
        else {
            return Err(ProtocolError::CommitWithoutEpoch);
        };
        self.phase = if last {
            Phase::Finished
        } else {
            Phase::Between
        };
        Ok(Committed {
            epoch,
            duration_ms: u64::try_from(now_ms.saturating_sub(started_at_ms)).unwrap_or(0),
            finished: last,
        })
    }
}

fn epoch_ms(settings: &ProtocolSettings) -> i64 {
    i64::try_from(settings.epoch_ms).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use weir_log::clock::{Clock, ManualClock};

    use super::*;

    fn settings(tasks: usize, source_tasks: usize, stop_when_drained: bool) -> ProtocolSettings {
        ProtocolSettings {
            tasks,
            source_tasks,
            epoch_ms: 1_000,
            stop_when_drained,
            drains_cross_commits: false,
            task_stages: (0..tasks).collect(),
        }
    }

    fn ack(p: &mut EpochProtocol, task: usize, epoch: u64) -> Option<CompleteEpoch> {
        let mut cp = Checkpoint::new(epoch);
        cp.put_state(&format!("op/{task}"), vec![task as u8]);
        p.on_ack(task, cp).expect("a valid ack")
    }

    #[test]
    fn an_epoch_starts_each_interval_and_completes_with_every_ack() {
        let clock = ManualClock::new(10_000);
        let mut p = EpochProtocol::new(settings(3, 1, false), 0, clock.monotonic_ms());
        assert_eq!(p.start_epoch_if_due(clock.monotonic_ms()), None);
        assert_eq!(p.ms_until_next_epoch(clock.monotonic_ms()), Some(1_000));
        clock.advance(999);
        assert_eq!(p.start_epoch_if_due(clock.monotonic_ms()), None);
        clock.advance(1);
        assert_eq!(p.start_epoch_if_due(clock.monotonic_ms()), Some(1));
        clock.advance(5_000);
        assert_eq!(
            p.ms_until_next_epoch(clock.monotonic_ms()),
            None,
            "an epoch is open"
        );
        clock.set(11_000);
        assert!(ack(&mut p, 2, 1).is_none());
        assert!(ack(&mut p, 0, 1).is_none());
        let done = ack(&mut p, 1, 1).expect("every task acked");
        assert_eq!(done.epoch, 1);
        let order: Vec<_> = done.checkpoints.iter().map(|c| c.states[0].1[0]).collect();
        assert_eq!(order, vec![0, 1, 2], "snapshots in task order");
        clock.advance(40);
        let c = p.on_committed(clock.monotonic_ms()).expect("committing");
        assert_eq!(
            c,
            Committed {
                epoch: 1,
                duration_ms: 40,
                finished: false
            }
        );
        // The next epoch is due one interval after the previous one started.
        assert_eq!(p.ms_until_next_epoch(clock.monotonic_ms()), Some(960));
        clock.advance(960);
        assert_eq!(p.start_epoch_if_due(clock.monotonic_ms()), Some(2));
    }

    #[test]
    fn a_restarted_job_continues_after_its_last_committed_epoch() {
        let mut p = EpochProtocol::new(settings(1, 1, false), 41, 0);
        assert_eq!(p.start_epoch_if_due(1_000), Some(42));
    }

    #[test]
    fn no_epoch_starts_while_one_is_open_however_late() {
        let clock = ManualClock::new(0);
        let mut p = EpochProtocol::new(settings(2, 1, false), 0, 0);
        clock.advance(1_000);
        assert_eq!(p.start_epoch_if_due(clock.monotonic_ms()), Some(1));
        clock.advance(10_000);
        assert_eq!(p.start_epoch_if_due(clock.monotonic_ms()), None, "aligning");
        ack(&mut p, 0, 1);
        assert!(ack(&mut p, 1, 1).is_some());
        clock.advance(10_000);
        // A commit that never returns (the transaction failed): no second epoch starts.
        assert_eq!(
            p.start_epoch_if_due(clock.monotonic_ms()),
            None,
            "committing"
        );
        p.on_committed(clock.monotonic_ms()).expect("committing");
        assert_eq!(
            p.start_epoch_if_due(clock.monotonic_ms()),
            Some(2),
            "overdue"
        );
    }

    #[test]
    fn acks_that_break_the_protocol_are_errors() {
        let mut p = EpochProtocol::new(settings(2, 1, false), 0, 0);
        assert_eq!(
            p.on_ack(0, Checkpoint::new(1)).unwrap_err(),
            ProtocolError::AckWithoutEpoch { task: 0, epoch: 1 }
        );
        assert_eq!(p.start_epoch_if_due(1_000), Some(1));
        assert_eq!(
            p.on_ack(0, Checkpoint::new(2)).unwrap_err(),
            ProtocolError::UnexpectedAck {
                task: 0,
                acked: 2,
                pending: 1
            },
            "another epoch"
        );
        ack(&mut p, 0, 1);
        let twice = p.on_ack(0, Checkpoint::new(1)).unwrap_err();
        assert_eq!(
            twice,
            ProtocolError::UnexpectedAck {
                task: 0,
                acked: 1,
                pending: 1
            }
        );
        assert_eq!(twice.to_string(), "task 0 acked epoch 1 while 1 is pending");
        assert_eq!(
            p.on_ack(5, Checkpoint::new(1)).unwrap_err(),
            ProtocolError::UnknownTask { task: 5 }
        );
        assert_eq!(p.on_drained(9), Err(ProtocolError::UnknownTask { task: 9 }));
        assert_eq!(
            p.on_committed(1_000),
            Err(ProtocolError::CommitWithoutEpoch)
        );
        // Errors changed nothing: the epoch still completes with the missing ack.
        assert!(ack(&mut p, 1, 1).is_some());
        // An ack while committing is one with no epoch pending.
        assert!(matches!(
            p.on_ack(0, Checkpoint::new(1)),
            Err(ProtocolError::AckWithoutEpoch { .. })
        ));
    }

    #[test]
    fn drained_sources_end_the_job_with_a_last_epoch_at_once() {
        // Tasks 0 and 1 are sources, task 2 an exchange.
        let mut p = EpochProtocol::new(settings(3, 2, true), 0, 0);
        p.on_drained(0).expect("a source");
        assert_eq!(p.start_epoch_if_due(10), None, "one source still reads");
        p.on_drained(1).expect("a source");
        assert_eq!(
            p.start_epoch_if_due(10),
            Some(1),
            "no need to wait out the interval"
        );
        for t in 0..2 {
            ack(&mut p, t, 1);
        }
        assert!(ack(&mut p, 2, 1).is_some());
        let c = p.on_committed(25).expect("committing");
        assert!(c.finished);
        assert_eq!(c.duration_ms, 15);
        assert_eq!(
            p.start_epoch_if_due(1_000_000),
            None,
            "nothing after the last"
        );
    }

    #[test]
    fn on_a_cluster_each_drained_source_commits_at_once_for_the_stages_downstream() {
        // Task 0 reads a source topic, task 1 the repartition topic it writes: task 1 can
        // drain only once what task 0 wrote last is committed.
        let mut p = EpochProtocol::new(
            ProtocolSettings {
                drains_cross_commits: true,
                ..settings(2, 2, true)
            },
            0,
            0,
        );
        p.on_drained(0).expect("a source");
        assert_eq!(p.ms_until_next_epoch(10), Some(0));
        assert_eq!(p.start_epoch_if_due(10), Some(1), "not at 1000");
        p.on_drained(0).expect("again");
        ack(&mut p, 0, 1);
        assert!(ack(&mut p, 1, 1).is_some());
        assert!(!p.on_committed(20).expect("committing").finished);
        assert_eq!(p.start_epoch_if_due(30), None, "nothing new drained");
        p.on_drained(1).expect("the repartition reader");
        assert_eq!(p.start_epoch_if_due(40), Some(2), "the last, at once");
        ack(&mut p, 0, 2);
        assert!(ack(&mut p, 1, 2).is_some());
        assert!(p.on_committed(50).expect("committing").finished);
    }

    #[test]
    fn on_a_cluster_a_stage_commits_once_its_last_source_task_drains() {
        // Tasks 0 and 1 read a source topic's partitions, task 2 the repartition topic they
        // write.
        let mut p = EpochProtocol::new(
            ProtocolSettings {
                drains_cross_commits: true,
                task_stages: vec![0, 0, 1],
                ..settings(3, 3, true)
            },
            0,
            0,
        );
        p.on_drained(1).expect("a source");
        assert_eq!(p.start_epoch_if_due(10), None, "task 0 still reads");
        assert_eq!(p.ms_until_next_epoch(10), Some(990));
        p.on_drained(0).expect("a source");
        assert_eq!(p.start_epoch_if_due(20), Some(1), "the stage drained");
        for t in 0..3 {
            ack(&mut p, t, 1);
        }
        assert!(!p.on_committed(30).expect("committing").finished);
        p.on_drained(2).expect("the repartition reader");
        assert_eq!(p.start_epoch_if_due(40), Some(2), "the last, at once");
    }

    #[test]
    fn draining_during_an_epoch_makes_the_next_one_the_last() {
        let mut p = EpochProtocol::new(settings(1, 1, true), 0, 0);
        assert_eq!(p.start_epoch_if_due(1_000), Some(1));
        p.on_drained(0).expect("a source");
        assert!(ack(&mut p, 0, 1).is_some());
        assert!(!p.on_committed(1_001).expect("committing").finished);
        assert_eq!(p.start_epoch_if_due(1_001), Some(2), "drained: due at once");
        assert!(ack(&mut p, 0, 2).is_some());
        assert!(p.on_committed(1_002).expect("committing").finished);
    }

    #[test]
    fn without_stop_when_drained_drained_sources_change_nothing() {
        let mut p = EpochProtocol::new(settings(1, 1, false), 0, 0);
        p.on_drained(0).expect("a source");
        assert_eq!(p.start_epoch_if_due(999), None);
        assert_eq!(p.start_epoch_if_due(1_000), Some(1));
        assert!(ack(&mut p, 0, 1).is_some());
        assert!(!p.on_committed(1_000).expect("committing").finished);
    }

    #[test]
    fn a_clock_that_steps_back_never_makes_a_negative_duration() {
        let mut p = EpochProtocol::new(settings(1, 1, false), 0, 5_000);
        assert_eq!(p.start_epoch_if_due(6_000), Some(1));
        assert!(ack(&mut p, 0, 1).is_some());
        assert_eq!(p.on_committed(5_500).expect("committing").duration_ms, 0);
        assert_eq!(p.ms_until_next_epoch(9_000), Some(0));
    }

    #[test]
    fn scripted_runs_commit_every_epoch_once_and_in_order() {
        // Seeded scripts: the clock moves by random steps, tasks ack in random order, sources
        // drain at random times. Whatever the script, epochs start one at a time and in order,
        // each completes only with every task's ack, and the run ends with one last epoch.
        for seed in 1..=200u64 {
            let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut next = move |n: u64| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng % n
            };
            let (tasks, sources) = (1 + next(4) as usize, 1);
            let clock = ManualClock::new(0);
            let mut p = EpochProtocol::new(settings(tasks, sources, true), 0, 0);
            let (mut open, mut committed, mut finished) = (None::<u64>, 0u64, false);
            let mut unacked: Vec<usize> = Vec::new();
            for _ in 0..500 {
                clock.advance(next(400) as i64);
                let now = clock.monotonic_ms();
                if let Some(e) = p.start_epoch_if_due(now) {
                    assert!(open.is_none(), "seed {seed}: epoch {e} while one is open");
                    assert_eq!(e, committed + 1, "seed {seed}");
                    open = Some(e);
                    unacked = (0..tasks).collect();
                }
                if next(20) == 0 {
                    p.on_drained(0).expect("a source");
                }
                if let Some(e) = open
                    && !unacked.is_empty()
                {
                    let task = unacked.remove(next(unacked.len() as u64) as usize);
                    let done = p.on_ack(task, Checkpoint::new(e)).expect("a valid ack");
                    assert_eq!(done.is_some(), unacked.is_empty(), "seed {seed}");
                    if let Some(done) = done {
                        assert_eq!(done.checkpoints.len(), tasks);
                        let c = p.on_committed(clock.monotonic_ms()).expect("committing");
                        assert_eq!(c.epoch, e);
                        committed = e;
                        open = None;
                        if c.finished {
                            finished = true;
                            break;
                        }
                    }
                }
            }
            assert!(finished, "seed {seed}: the drained run did not end");
            assert_eq!(p.start_epoch_if_due(i64::MAX), None, "seed {seed}");
        }
    }
}
