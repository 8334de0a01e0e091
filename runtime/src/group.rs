//! A job shared by instances on a cluster (Kafka Streams' model): every instance joins the job's
//! consumer group for the job's sources and repartition topics, and runs the tasks whose input
//! partitions the group assigns it.
//!
//! A thread per instance serves the group. Each assignment starts a new run of the graph's
//! tasks that it owns ([`crate::start::launch`]): the run restores those tasks' state from their
//! own manifests and reads from the offsets the job committed. A rebalance first ends the run
//! (its open epoch is aborted, so nothing is committed for a partition once another instance
//! may own it), then the next assignment starts the next run. The run's commits carry the
//! assignment's membership, so that an instance the group dropped (paused past its session
//! timeout, cut off) cannot commit: its writer is refused and its open transaction aborted.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::handle::{GroupControl, JobHandle};
use crate::start::{self, GroupPlan, RunPlan};
use crate::state;
use crate::topics::{Assignment, GroupMember, GroupSpec, TopicSpec};

/// Segments of repartition topics roll at this size, so that purging what the job has read
/// frees disk soon (Kafka Streams' 50 MB).
const REPARTITION_SEGMENT_BYTES: u64 = 50 << 20;
/// How long the group thread waits in one poll of the group.
const GROUP_POLL_MS: u64 = 100;
/// After a run was fenced without a rebalance reaching this instance, how long it waits for
/// one before it starts the tasks of its last assignment again.
const FENCED_RETRY_MS: u64 = 1_000;
/// Runs of one assignment that may fail to start in a row (the cluster answered with an error:
/// a coordinator moving, a timeout) before the instance gives up.
const LAUNCH_ATTEMPTS_MAX: u32 = 10;

/// Checks the graph, creates the repartition topics, joins the group and starts the thread
/// that serves it.
pub(crate) fn start(g: Graph) -> Result<JobHandle> {
    start::check(&g)?;
    let config = g.config.clone();
    let topics = g.topics.clone();
    let job = config.job_id();
    state::ensure_topic(&*topics, &config.state_topic)?;
    for (topic, partitions) in &g.repartition_topics {
        topics.ensure_topic(
            topic,
            &TopicSpec {
                partitions: i32::try_from(*partitions)
                    .map_err(|_| Error::config("parallelism", "too many tasks"))?,
                compacted: false,
                record_bytes_max: 8 << 20,
                batch_bytes_max: 16 << 20,
                // Purged by the job once read (Kafka Streams' settings for the same reason).
                unlimited_retention: true,
                segment_bytes_max: Some(REPARTITION_SEGMENT_BYTES),
            },
        )?;
    }
    let mut inputs: Vec<String> = g.stages.iter().map(|s| s.input.clone()).collect();
    inputs.sort();
    inputs.dedup();
    let control = Arc::new(GroupControl::new(topics.clone(), config.clone()));
    let on_revoke = {
        let control = control.clone();
        Box::new(move || {
            // The run's result does not matter here: its epoch is aborted and replayed by
            // whoever owns the partitions next.
            let _ = control.end_run();
        })
    };
    let member = topics.join_group(GroupSpec {
        group: job.clone(),
        topics: inputs,
        session_timeout_ms: config.session_timeout_ms,
        client_id: format!("{job}-member"),
        on_revoke,
    })?;
    let transactional_id = format!("{job}-{}", instance_id());
    let thread = {
        let control = control.clone();
        std::thread::Builder::new()
            .name(format!("{}-group", config.name).chars().take(15).collect())
            .spawn(move || serve(g, member, &control, &transactional_id))
            .map_err(|e| Error::Internal(format!("spawning the group thread: {e}")))?
    };
    Ok(JobHandle::group(control, thread))
}

/// A name for this instance, unique among the job's instances: its transactional id's suffix.
fn instance_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos:x}", std::process::id())
}

/// The group thread: serves the group, and starts a run for each assignment, until the job is
/// stopped, a run fails, or (with `stop_when_drained`) a run drains what this instance owns.
fn serve(
    mut g: Graph,
    member: Box<dyn GroupMember>,
    control: &GroupControl,
    transactional_id: &str,
) -> Result<()> {
    let mut member = Some(member);
    let r = serve_until_done(&mut g, &mut member, control, transactional_id);
    control.end_run();
    if let Some(m) = member.take() {
        m.leave();
    }
    r
}

fn serve_until_done(
    g: &mut Graph,
    member: &mut Option<Box<dyn GroupMember>>,
    control: &GroupControl,
    transactional_id: &str,
) -> Result<()> {
    let mut current: Option<Assignment> = None;
    let mut retry_at: Option<Instant> = None;
    let mut failed_launches = 0u32;
    loop {
        if control.stop_requested() {
            return Err(Error::Stopped);
        }
        let m = member
            .as_mut()
            .ok_or_else(|| Error::Internal("the group member is gone".into()))?;
        let next = m.poll(Duration::from_millis(GROUP_POLL_MS))?;
        let due = retry_at.is_some_and(|at| Instant::now() >= at);
        let assignment = match next {
            Some(a) => Some(a),
            None if due => current.clone(),
            None => None,
        };
        if let Some(a) = assignment {
            retry_at = None;
            // The revoke callback ended the last run already; a run fenced meanwhile is gone.
            control.end_run();
            if !a.partitions.is_empty() {
                let plan = RunPlan {
                    group: Some(GroupPlan {
                        owned: a.partitions.iter().cloned().collect::<HashSet<_>>(),
                        membership: a.membership.clone(),
                        transactional_id: transactional_id.to_string(),
                        epoch_floor: control.last_committed_epoch(),
                    }),
                    metrics: control.metrics.clone(),
                };
                match start::launch(g, plan) {
                    Ok(run) => {
                        failed_launches = 0;
                        control.set_run(run);
                    }
                    // The cluster failed a request while the run started (reading committed
                    // offsets, restoring state): start it again shortly, a few times.
                    Err(Error::Topics { .. } | Error::Fenced { .. })
                        if failed_launches + 1 < LAUNCH_ATTEMPTS_MAX =>
                    {
                        failed_launches += 1;
                        retry_at = Some(Instant::now() + Duration::from_millis(FENCED_RETRY_MS));
                    }
                    Err(e) => return Err(e),
                }
            }
            current = Some(a);
            continue;
        }
        match control.take_finished() {
            None => {}
            Some(Ok(())) => return Ok(()),
            Some(Err(Error::Fenced { .. })) => {
                // The group moved on without this instance (it was paused or cut off past its
                // session timeout), or a newer writer took its transactional id: the epoch was
                // aborted. A rebalance is on its way; if none comes, run the last assignment
                // again (its commits are refused until the group has this instance back).
                retry_at = Some(Instant::now() + Duration::from_millis(FENCED_RETRY_MS));
            }
            Some(Err(e)) => return Err(e),
        }
    }
}
