//! A job under construction, and the sources it reads.
//!
//! A [`Stream`] is a port that downstream operators attach to; see [`crate::graph`] for how the
//! graph becomes running tasks at [`Job::start`].

use std::sync::Arc;

use weir_log::Log;

use crate::codec::Codec;
use crate::config::JobConfig;
use crate::data::Data;
use crate::error::Result;
use crate::graph::{Graph, Locked, Port, Stage};
use crate::handle::JobHandle;
use crate::source::{SourceSpec, Timestamps};
use crate::stream::Stream;
use crate::task::TaskKind;
use crate::topics::{EmbeddedTopics, Topics};

/// A job under construction. Build the graph from [`Job::source`], then [`Job::start`] it.
pub struct Job {
    g: Arc<Locked<Graph>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.g.borrow();
        f.debug_struct("Job")
            .field("name", &g.config.name)
            .field(
                "stages",
                &g.stages.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Job {
    /// A new job on the embedded `log`. The configuration is checked here.
    pub fn new(log: &Log, config: JobConfig) -> Result<Job> {
        Job::with_topics(Arc::new(EmbeddedTopics::new(log.clone())), config)
    }

    /// A new job on `topics`: the embedded log ([`Job::new`] is the short way) or another
    /// implementation of [`Topics`]. The configuration is checked here.
    pub fn with_topics(topics: Arc<dyn Topics>, config: JobConfig) -> Result<Job> {
        config.validate()?;
        Ok(Job {
            g: Arc::new(Locked::new(Graph::new(config, topics, Vec::new()))),
        })
    }

    /// The job's configuration.
    pub fn config(&self) -> JobConfig {
        self.g.borrow().config.clone()
    }

    /// Reads `topic`, decoding values with `codec`. Partitions are spread over the source's
    /// tasks (the default parallelism, at most one task per partition).
    pub fn source<T: Data, C: Codec<T>>(&self, topic: &str, codec: C) -> Source<T, C> {
        Source {
            g: self.g.clone(),
            spec: SourceSpec::new(topic, codec),
        }
    }

    /// Checks the graph and starts every task. Restores the last committed state, if the job
    /// ran before under the same name.
    pub fn start(self) -> Result<JobHandle> {
        // Streams still held by the caller keep the graph's cell alive; take the graph out and
        // leave an empty one behind (anything attached to it later goes nowhere).
        let g = {
            let mut cell = self.g.borrow_mut();
            let empty = Graph::new(
                cell.config.clone(),
                cell.topics.clone(),
                vec!["this job has already been started".into()],
            );
            std::mem::replace(&mut *cell, empty)
        };
        if g.topics.shares_work() {
            crate::group::start(g)
        } else {
            crate::start::start(g)
        }
    }
}

/// A source being configured. It becomes a [`Stream`] with [`Source::timestamps`] or
/// [`Source::stream`].
pub struct Source<T, C> {
    g: Arc<Locked<Graph>>,
    spec: SourceSpec<T, C>,
}

impl<T: Data, C: Codec<T>> Source<T, C> {
    /// Number of source tasks (default: the job's default parallelism, capped at the number of
    /// partitions). On a cluster a source has one task per partition, whatever this says.
    pub fn parallelism(mut self, tasks: usize) -> Self {
        self.spec.parallelism = Some(tasks);
        self
    }

    /// Values that do not decode go to `topic` (value: the raw bytes; headers `weir.error`
    /// with the reason, `weir.topic`, `weir.partition`, `weir.offset`) instead of failing the job.
    pub fn dead_letter_to(mut self, topic: &str) -> Self {
        self.spec.dead_letter = Some(topic.to_string());
        self
    }

    /// Event time from `ts` (ms since the epoch), with watermarks trailing the highest time
    /// seen in each partition by `out_of_orderness_ms`.
    pub fn timestamps(
        mut self,
        ts: impl Fn(&T) -> i64 + Send + Sync + 'static,
        out_of_orderness_ms: i64,
    ) -> Stream<T> {
        self.spec.timestamps = Timestamps::Field(Arc::new(ts), out_of_orderness_ms);
        self.stream()
    }

    /// The stream, with event time taken from the records' log timestamps (and no
    /// out-of-orderness) unless [`Source::timestamps`] was used.
    pub fn stream(self) -> Stream<T> {
        let Source { g, spec } = self;
        let mut gm = g.borrow_mut();
        let partitions = match gm.topics.partition_count(&spec.topic) {
            Ok(n) => n as usize,
            Err(e) => {
                gm.errors.push(format!("source `{}`: {e}", spec.topic));
                1
            }
        };
        let default = gm.config.parallelism_default;
        // On a cluster a task per partition, so that a partition (with its state) can move to
        // any instance on its own.
        let parallelism = if gm.topics.shares_work() {
            partitions.max(1)
        } else {
            spec.parallelism
                .unwrap_or(default)
                .clamp(1, partitions.max(1))
        };
        if spec.parallelism.is_some_and(|p| p == 0) {
            gm.errors.push(format!(
                "source `{}`: parallelism must be positive",
                spec.topic
            ));
        }
        let uid = gm.uid(&format!("source:{}", spec.topic));
        let name = format!("source:{}", spec.topic);
        let stage = gm.stages.len();
        let port = Port::new(stage, parallelism);
        let out = port.clone();
        let writes_output = spec.dead_letter.is_some();
        let spec = Arc::new(spec);
        gm.stages.push(Stage {
            name,
            kind: TaskKind::Source,
            parallelism,
            writes_output,
            input: spec.topic.clone(),
            make_task: Box::new(move |ctx| {
                let chain = Port::build(&port, ctx)?;
                crate::source::task(spec.clone(), &uid, chain, partitions, ctx)
            }),
        });
        drop(gm);
        Stream { g, port: out }
    }
}
