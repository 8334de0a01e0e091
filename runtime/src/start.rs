//! Starting a job: check the graph, open the output producer (fencing an earlier instance),
//! restore the last committed state, build every task's chain, then start the coordinator and
//! one thread per task.

use std::collections::HashSet;
use std::sync::Arc;

use crossbeam_channel::bounded;

use crate::checkpoint::{Coordinator, EpochProtocol, ProtocolSettings, Purge, StateLedger};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::handle::{JobHandle, Run};
use crate::metrics::MetricsRegistry;
use crate::state;
use crate::task::{EpochSignals, Shared, TaskContext, TaskEnv, TaskKind, TaskReport, TaskRun};
use crate::topics::{GroupMembership, WriterConfig};

/// Room in the coordinator's inbox per task (an ack and a drained report at most are in flight
/// per task and epoch; the rest is slack).
const REPORTS_PER_TASK_MAX: usize = 4;
/// The transaction timeout of a job run as one instance: a restart fences the last instance's
/// transaction at once, so only an epoch that takes this long is at risk.
const EMBEDDED_TRANSACTION_TIMEOUT_MS: u64 = 60_000;
/// Room in the coordinator's inbox besides the per-task share.
const REPORTS_SLACK_MAX: usize = 16;

/// Checks the graph, restores state, starts the coordinator and every task: the job as its
/// only instance.
pub(crate) fn start(mut g: Graph) -> Result<JobHandle> {
    check(&g)?;
    let plan = RunPlan {
        group: None,
        metrics: Arc::new(MetricsRegistry::new()),
    };
    Ok(JobHandle::single(launch(&mut g, plan)?))
}

/// Which of a graph's tasks a run starts, and what its commits carry.
pub(crate) struct RunPlan {
    /// On a cluster, this instance's share; `None`: every task, the job's only instance.
    pub(crate) group: Option<GroupPlan>,
    pub(crate) metrics: Arc<MetricsRegistry>,
}

/// An instance's share of a job on a cluster.
pub(crate) struct GroupPlan {
    /// The (topic, partition) pairs the group assigned: task `i` of a stage runs here if
    /// partition `i` of the stage's input topic is among them.
    pub(crate) owned: HashSet<(String, i32)>,
    /// What the run's commits are fenced by.
    pub(crate) membership: GroupMembership,
    /// The instance's transactional id (one per instance, not per job: its commits are
    /// fenced by the membership, as in Kafka Streams' exactly-once v2).
    pub(crate) transactional_id: String,
    /// The last epoch this instance committed: its epochs keep rising from run to run, whatever
    /// the epochs of the tasks it restores.
    pub(crate) epoch_floor: u64,
}

/// Opens the writer (fencing an earlier one with its transactional id), restores the state of
/// the tasks `plan` names, builds their chains, then starts the coordinator and one thread per
/// task. The graph's factories are called again for every run.
pub(crate) fn launch(g: &mut Graph, plan: RunPlan) -> Result<Run> {
    let config = g.config.clone();
    let topics = g.topics.clone();
    let job = config.job_id();
    let repartition_topics: Vec<String> = g
        .repartition_topics
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    let stages = &mut g.stages;
    state::ensure_topic(&*topics, &config.state_topic)?;
    let topology = stages
        .iter()
        .map(|s| format!("{}x{}", s.name, s.parallelism))
        .collect::<Vec<_>>()
        .join(",");
    // (stage, index) of every task this run starts.
    let tasks: Vec<(usize, usize)> = stages
        .iter()
        .enumerate()
        .flat_map(|(s, stage)| (0..stage.parallelism).map(move |i| (s, i)))
        .filter(|&(s, i)| {
            plan.group.as_ref().is_none_or(|p| {
                p.owned
                    .contains(&(stages[s].input.clone(), i32::try_from(i).unwrap_or(-1)))
            })
        })
        .collect();
    let output = topics.writer(WriterConfig {
        guarantee: config.guarantee,
        transactional_id: plan
            .group
            .as_ref()
            .map_or_else(|| job.clone(), |p| p.transactional_id.clone()),
        transaction_timeout_ms: match plan.group {
            Some(_) => config.transaction_timeout_ms,
            None => EMBEDDED_TRANSACTION_TIMEOUT_MS,
        },
    })?;
    let task_names: Option<Vec<String>> = plan.group.as_ref().map(|_| {
        tasks
            .iter()
            .map(|&(s, i)| state::task_name(&stages[s].name, i))
            .collect()
    });
    let restored = match &task_names {
        None => state::restore(&*topics, &config.state_topic, &job)?,
        Some(names) => state::restore_tasks(&*topics, &config.state_topic, &job, names, &topology)?,
    };
    if let Some(m) = &restored.manifest
        && m.topology != topology
    {
        return Err(Error::State {
            operator: config.name.clone(),
            reason: format!(
                "the job's shape changed since its last checkpoint (was `{}`, now `{topology}`): \
                 run it with the same operators and parallelism, or under a new name",
                m.topology
            ),
        });
    }
    let tasks_total = tasks.len();
    let (reports, inbox) = bounded(tasks_total * REPORTS_PER_TASK_MAX + REPORTS_SLACK_MAX);
    let last_epoch = restored
        .epoch()
        .max(plan.group.as_ref().map_or(0, |p| p.epoch_floor));
    let shared = Arc::new(Shared {
        config: config.clone(),
        topics,
        output,
        signals: EpochSignals::new(last_epoch),
        reports,
        metrics: plan.metrics.clone(),
        membership: plan.group.as_ref().map(|p| p.membership.clone()),
    });

    struct Built {
        thread_name: String,
        kind: TaskKind,
        writes_output: bool,
        body: Box<dyn TaskRun>,
    }
    let mut built = Vec::with_capacity(tasks_total);
    for &(s, index) in &tasks {
        let stage = &mut stages[s];
        let mut ctx = TaskContext {
            stage: &stage.name,
            index,
            parallelism: stage.parallelism,
            restored: &restored.states,
            shared: &shared,
        };
        built.push(Built {
            thread_name: format!("{}[{index}]", stage.name),
            kind: stage.kind,
            writes_output: stage.writes_output,
            body: (stage.make_task)(&mut ctx)?,
        });
    }
    let source_tasks = built.iter().filter(|b| b.kind == TaskKind::Source).count();

    let ledger = StateLedger::new(
        job,
        topology,
        config.state_chunk_bytes_max,
        restored.manifest.iter().chain(&restored.task_manifests),
        &restored.states,
        task_names,
    );
    let protocol = EpochProtocol::new(
        ProtocolSettings {
            tasks: tasks_total,
            source_tasks,
            epoch_ms: config.epoch_ms,
            stop_when_drained: config.stop_when_drained,
            drains_cross_commits: !repartition_topics.is_empty(),
            task_stages: tasks.iter().map(|&(s, _)| s).collect(),
        },
        last_epoch,
        config.clock.monotonic_ms(),
    );
    let coordinator = {
        let purge = Purge::new(
            repartition_topics,
            config.repartition_purge_interval_ms,
            config.clock.monotonic_ms(),
        );
        let c = Coordinator::new(shared.clone(), inbox, protocol, ledger, purge);
        std::thread::Builder::new()
            .name(format!("{}-coordinator", config.name))
            .spawn(move || c.run())
            .map_err(|e| Error::Internal(format!("spawning the coordinator: {e}")))?
    };
    let mut threads = Vec::with_capacity(tasks_total);
    for (task, b) in built.into_iter().enumerate() {
        let env = TaskEnv::new(task, b.kind, b.writes_output, shared.clone());
        let shared = shared.clone();
        let Built {
            thread_name: name,
            body,
            ..
        } = b;
        let t = std::thread::Builder::new()
            .name(name.chars().take(15).collect())
            .spawn(move || run_task(name, body, env, &shared))
            .map_err(|e| Error::Internal(format!("spawning a task: {e}")))?;
        threads.push(t);
    }
    Ok(Run::new(shared, coordinator, threads))
}

/// The graph errors `start` reports, first found first.
pub(crate) fn check(g: &Graph) -> Result<()> {
    if let Some(e) = g.errors.first() {
        return Err(Error::Graph(e.clone()));
    }
    if let Some(message) = g.checks.iter().find_map(|c| c()) {
        return Err(Error::Graph(message));
    }
    if g.stages.is_empty() {
        return Err(Error::Graph("the job reads no source".into()));
    }
    if g.sinks == 0 {
        return Err(Error::Graph(
            "the job has no sink: its results would go nowhere (add `.sink(..)` or `.for_each(..)`)"
                .into(),
        ));
    }
    Ok(())
}

/// A task's thread: runs the body; a failure (or a panic) is reported and stops the job.
fn run_task(name: String, body: Box<dyn TaskRun>, env: TaskEnv, shared: &Shared) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body.run(env)));
    let error = match r {
        Ok(Ok(())) | Ok(Err(Error::Stopped)) => return,
        Ok(Err(e)) => e,
        Err(panic) => Error::Internal(format!(
            "task {name} panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("?")
        )),
    };
    let _ = shared.reports.send(TaskReport::Failed { error });
    shared.signals.request_stop();
}
