//! Starting a job: check the graph, open the output producer (fencing an earlier instance),
//! restore the last committed state, build every task's chain, then start the coordinator and
//! one thread per task.

use std::sync::Arc;

use crossbeam_channel::bounded;

use crate::checkpoint::{Coordinator, EpochProtocol, ProtocolSettings, StateLedger};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::handle::JobHandle;
use crate::metrics::MetricsRegistry;
use crate::state;
use crate::task::{EpochSignals, Shared, TaskContext, TaskEnv, TaskKind, TaskReport, TaskRun};
use crate::topics::WriterConfig;

/// Room in the coordinator's inbox per task (an ack and a drained report at most are in flight
/// per task and epoch; the rest is slack).
const REPORTS_PER_TASK_MAX: usize = 4;
/// Room in the coordinator's inbox besides the per-task share.
const REPORTS_SLACK_MAX: usize = 16;

/// Checks the graph, restores state, starts the coordinator and every task.
pub(crate) fn start(g: Graph) -> Result<JobHandle> {
    check(&g)?;
    let Graph {
        config,
        topics,
        mut stages,
        ..
    } = g;
    let job = config.job_id();
    state::ensure_topic(&*topics, &config.state_topic)?;
    let output = topics.writer(WriterConfig {
        guarantee: config.guarantee,
        transactional_id: job.clone(),
    })?;
    let restored = state::restore(&*topics, &config.state_topic, &job)?;
    let topology = stages
        .iter()
        .map(|s| format!("{}x{}", s.name, s.parallelism))
        .collect::<Vec<_>>()
        .join(",");
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
    let tasks_total: usize = stages.iter().map(|s| s.parallelism).sum();
    let (reports, inbox) = bounded(tasks_total * REPORTS_PER_TASK_MAX + REPORTS_SLACK_MAX);
    let last_epoch = restored.manifest.as_ref().map_or(0, |m| m.epoch);
    let shared = Arc::new(Shared {
        config: config.clone(),
        topics,
        output,
        signals: EpochSignals::new(last_epoch),
        reports,
        metrics: MetricsRegistry::new(),
    });

    struct Built {
        thread_name: String,
        kind: TaskKind,
        writes_output: bool,
        body: Box<dyn TaskRun>,
    }
    let mut built = Vec::with_capacity(tasks_total);
    for stage in &mut stages {
        for index in 0..stage.parallelism {
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
    }
    drop(stages);
    let source_tasks = built.iter().filter(|b| b.kind == TaskKind::Source).count();

    let ledger = StateLedger::new(
        job,
        topology,
        config.state_chunk_bytes_max,
        restored.manifest.as_ref(),
        &restored.states,
    );
    let protocol = EpochProtocol::new(
        ProtocolSettings {
            tasks: tasks_total,
            source_tasks,
            epoch_ms: config.epoch_ms,
            stop_when_drained: config.stop_when_drained,
        },
        last_epoch,
        config.clock.monotonic_ms(),
    );
    let coordinator = {
        let c = Coordinator::new(shared.clone(), inbox, protocol, ledger);
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
    Ok(JobHandle::new(shared, coordinator, threads))
}

/// The graph errors `start` reports, first found first.
fn check(g: &Graph) -> Result<()> {
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
