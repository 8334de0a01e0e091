//! The graph a job builds before it runs: stages of tasks, and the ports operators attach to.
//!
//! Nothing runs while the graph is built: each attachment registers a factory, and the start-up
//! calls the factories once per task, from the sources down, so that every task gets its own
//! chain of operators.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::chained::{Discard, FanOut};
use crate::config::JobConfig;
use crate::data::Data;
use crate::emitter::Emitter;
use crate::error::Result;
use crate::task::{TaskContext, TaskKind, TaskRun};
use crate::topics::Topics;

/// Builds one consumer of a port in one task: its emitter, with everything downstream of it.
pub(crate) type Factory<T> =
    Box<dyn FnMut(&mut TaskContext<'_>) -> Result<Box<dyn Emitter<T>>> + Send>;

/// Runs once per task when the job starts, and returns the task's body.
pub(crate) type TaskFactory =
    Box<dyn FnMut(&mut TaskContext<'_>) -> Result<Box<dyn TaskRun>> + Send>;

/// A graph's parts are shared by the streams that build it and, on a cluster, rebuilt into
/// tasks on the job's own thread at each rebalance: a mutex the builder's calls take one at a
/// time (never two at once on one cell), where a `RefCell` would tie the graph to one thread.
pub(crate) struct Locked<T>(Mutex<T>);

impl<T> Locked<T> {
    pub(crate) fn new(value: T) -> Locked<T> {
        Locked(Mutex::new(value))
    }

    /// The value; a panic while building (a bug) does not make the graph unreadable.
    pub(crate) fn borrow(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value, to change (the same lock as [`Locked::borrow`]).
    pub(crate) fn borrow_mut(&self) -> MutexGuard<'_, T> {
        self.borrow()
    }
}

/// The tasks between two exchanges (or from a source to the first one): `parallelism` tasks
/// running the same chain.
pub(crate) struct Stage {
    /// Names the stage's threads and, with the parallelism, the job's shape in its checkpoints.
    pub(crate) name: String,
    pub(crate) kind: TaskKind,
    pub(crate) parallelism: usize,
    /// Whether the stage's chain writes to the job's producer (a topic sink, a dead-letter
    /// topic). Under exactly-once its tasks wait for each epoch to commit before going on.
    pub(crate) writes_output: bool,
    /// The topic whose partition `i` task `i` reads on a cluster (where instances split the
    /// tasks by the partitions the job's group assigns them): the source's topic, or the
    /// repartition topic of the exchange that starts the stage.
    pub(crate) input: String,
    pub(crate) make_task: TaskFactory,
}

/// A job's graph under construction.
pub(crate) struct Graph {
    pub(crate) config: JobConfig,
    pub(crate) topics: Arc<dyn Topics>,
    pub(crate) stages: Vec<Stage>,
    pub(crate) operators: usize,
    pub(crate) sinks: usize,
    /// On a cluster: the repartition topics the job's exchanges need, with their partitions.
    pub(crate) repartition_topics: Vec<(String, usize)>,
    /// Checks run by `start`: each returns an error message if the graph is not valid.
    pub(crate) checks: Vec<Box<dyn Fn() -> Option<String> + Send>>,
    /// Problems found while building, reported by `start`.
    pub(crate) errors: Vec<String>,
}

impl Graph {
    /// An empty graph; `errors` are reported when it starts.
    pub(crate) fn new(config: JobConfig, topics: Arc<dyn Topics>, errors: Vec<String>) -> Graph {
        Graph {
            config,
            topics,
            stages: Vec::new(),
            operators: 0,
            sinks: 0,
            repartition_topics: Vec::new(),
            checks: Vec::new(),
            errors,
        }
    }

    /// A unique, run-stable id for an operator named `name`.
    pub(crate) fn uid(&mut self, name: &str) -> String {
        self.operators += 1;
        format!("{name}#{}", self.operators)
    }

    /// Stage `stage` writes to the job's producer. (A stream kept past its job's start points
    /// at a stage the emptied graph no longer has: its attachments go nowhere.)
    pub(crate) fn mark_writes_output(&mut self, stage: usize) {
        if let Some(s) = self.stages.get_mut(stage) {
            s.writes_output = true;
        }
    }
}

/// Where a stream's records go in each task: the consumers attached to it.
pub(crate) struct Port<T> {
    pub(crate) consumers: Vec<Factory<T>>,
    /// The stage whose tasks run this port's consumers.
    pub(crate) stage: usize,
    pub(crate) parallelism: usize,
}

impl<T: Data> Port<T> {
    pub(crate) fn new(stage: usize, parallelism: usize) -> Arc<Locked<Port<T>>> {
        Arc::new(Locked::new(Port {
            consumers: Vec::new(),
            stage,
            parallelism,
        }))
    }

    /// Builds the chain downstream of `port` for one task.
    pub(crate) fn build(
        port: &Arc<Locked<Port<T>>>,
        ctx: &mut TaskContext<'_>,
    ) -> Result<Box<dyn Emitter<T>>> {
        let mut p = port.borrow_mut();
        let mut outs = p
            .consumers
            .iter_mut()
            .map(|f| f(ctx))
            .collect::<Result<Vec<_>>>()?;
        Ok(match outs.len() {
            0 => Box::new(Discard),
            1 => outs.pop().expect("one consumer"),
            _ => Box::new(FanOut { outs }),
        })
    }
}
