//! Building a job: sources, chained operators, keyed exchanges and sinks, as a typed graph.
//!
//! A [`Stream`] is a port that downstream operators attach to. Nothing runs while the graph is
//! built: each attachment registers a factory, and [`Job::start`] calls the factories once per
//! task, from the sources down, so that every task gets its own chain of operators.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use weir_log::Log;

use crate::codec::Codec;
use crate::config::JobConfig;
use crate::emitter::{Discard, Either, Emitter, FanOut, FilterOp, FlatMapOp, MapOp, SplitOp};
use crate::error::Result;
use crate::exchange;
use crate::handle::{self, JobHandle, Shared};
use crate::metrics::OperatorCounters;
use crate::operator::{BoxOperator, OperatorChain};
use crate::sink::{ForEachSink, TopicSink};
use crate::source::{SourceSpec, Timestamps};

/// What may flow through a stream.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

/// What may key a stream: hashed to route records to tasks, and kept in state snapshots.
pub trait Key: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static {}
impl<K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static> Key for K {}

/// Computes a record's key bytes for a keyed sink.
pub(crate) type KeyFn<T> = Arc<dyn Fn(&T) -> Vec<u8> + Send + Sync>;

pub(crate) type Factory<T> = Box<dyn FnMut(&mut TaskContext<'_>) -> Result<Box<dyn Emitter<T>>>>;

/// Runs once per task when the job starts, and returns the task's body.
pub(crate) type TaskFactory = Box<dyn FnMut(&mut TaskContext<'_>) -> Result<Box<dyn TaskRun>>>;

/// The body of one task, run on its own thread.
pub(crate) trait TaskRun: Send {
    fn run(self: Box<Self>, env: handle::TaskEnv) -> Result<()>;
}

pub(crate) struct Stage {
    pub(crate) name: String,
    pub(crate) parallelism: usize,
    pub(crate) make_task: TaskFactory,
}

pub(crate) struct Graph {
    pub(crate) config: JobConfig,
    pub(crate) log: Log,
    pub(crate) stages: Vec<Stage>,
    pub(crate) operators: usize,
    pub(crate) sinks: usize,
    /// Checks run by `start`: each returns an error message if the graph is not valid.
    pub(crate) checks: Vec<Box<dyn Fn() -> Option<String>>>,
    /// Problems found while building, reported by `start`.
    pub(crate) errors: Vec<String>,
    pub(crate) source_topics: Vec<String>,
}

impl Graph {
    /// A unique, run-stable id for an operator named `name`.
    fn uid(&mut self, name: &str) -> String {
        self.operators += 1;
        format!("{name}#{}", self.operators)
    }
}

/// What a task's factories see while its chain is built.
pub struct TaskContext<'a> {
    pub(crate) stage: &'a str,
    pub(crate) index: usize,
    pub(crate) parallelism: usize,
    pub(crate) restored: &'a HashMap<String, Vec<u8>>,
    pub(crate) shared: &'a Arc<Shared>,
    pub(crate) has_sink: bool,
}

impl TaskContext<'_> {
    /// This task's index among its operator's tasks.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many tasks the operator runs.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// The name of the stage (the tasks between two exchanges) this task belongs to.
    pub fn stage(&self) -> &str {
        self.stage
    }

    /// The log the job runs on.
    pub fn log(&self) -> &Log {
        &self.shared.log
    }

    /// The job's configuration.
    pub fn config(&self) -> &JobConfig {
        &self.shared.config
    }

    pub(crate) fn state_key(&self, uid: &str) -> String {
        format!("{uid}/{}", self.index)
    }

    /// The last committed snapshot of operator `uid` in this task, if any.
    pub fn restored_state(&self, uid: &str) -> Option<&[u8]> {
        self.restored.get(&self.state_key(uid)).map(Vec::as_slice)
    }

    /// Counters for an operator in this task, registered with the job's metrics.
    pub fn counters(&self, operator: &str) -> Arc<OperatorCounters> {
        self.shared.register_counters(operator)
    }
}

/// A job under construction. Build the graph from [`Job::source`], then [`Job::start`] it.
pub struct Job {
    g: Rc<RefCell<Graph>>,
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
    /// A new job on `log`. The configuration is checked here.
    pub fn new(log: &Log, config: JobConfig) -> Result<Job> {
        config.validate()?;
        Ok(Job {
            g: Rc::new(RefCell::new(Graph {
                config,
                log: log.clone(),
                stages: Vec::new(),
                operators: 0,
                sinks: 0,
                checks: Vec::new(),
                errors: Vec::new(),
                source_topics: Vec::new(),
            })),
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
            let empty = Graph {
                config: cell.config.clone(),
                log: cell.log.clone(),
                stages: Vec::new(),
                operators: 0,
                sinks: 0,
                checks: Vec::new(),
                errors: vec!["this job has already been started".into()],
                source_topics: Vec::new(),
            };
            std::mem::replace(&mut *cell, empty)
        };
        handle::start(g)
    }
}

/// A source being configured. It becomes a [`Stream`] with [`Source::timestamps`] or
/// [`Source::stream`].
pub struct Source<T, C> {
    g: Rc<RefCell<Graph>>,
    spec: SourceSpec<T, C>,
}

impl<T: Data, C: Codec<T>> Source<T, C> {
    /// Number of source tasks (default: the job's default parallelism, capped at the number of
    /// partitions).
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
        let port = Port::new(0);
        let out = port.clone();
        {
            let mut gm = g.borrow_mut();
            gm.source_topics.push(spec.topic.clone());
            let partitions = match gm.log.partition_count(&spec.topic) {
                Ok(n) => n as usize,
                Err(e) => {
                    gm.errors.push(format!("source `{}`: {e}", spec.topic));
                    1
                }
            };
            let default = gm.config.parallelism_default;
            let parallelism = spec
                .parallelism
                .unwrap_or(default)
                .clamp(1, partitions.max(1));
            if spec.parallelism.is_some_and(|p| p == 0) {
                gm.errors.push(format!(
                    "source `{}`: parallelism must be positive",
                    spec.topic
                ));
            }
            let uid = gm.uid(&format!("source:{}", spec.topic));
            let name = format!("source:{}", spec.topic);
            out.borrow_mut().parallelism = parallelism;
            let spec = Arc::new(spec);
            gm.stages.push(Stage {
                name,
                parallelism,
                make_task: Box::new(move |ctx| {
                    let chain = Port::build(&port, ctx)?;
                    crate::source::task(spec.clone(), &uid, chain, partitions, ctx)
                }),
            });
        }
        Stream { g, port: out }
    }
}

pub(crate) struct Port<T> {
    consumers: Vec<Factory<T>>,
    pub(crate) parallelism: usize,
}

impl<T: Data> Port<T> {
    pub(crate) fn new(parallelism: usize) -> Rc<RefCell<Port<T>>> {
        Rc::new(RefCell::new(Port {
            consumers: Vec::new(),
            parallelism,
        }))
    }

    pub(crate) fn build(
        port: &Rc<RefCell<Port<T>>>,
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

/// A stream of records of type `T`, being built. Operators that do not change how records are
/// partitioned run chained in the same tasks as their input; [`Stream::key_by`] starts an
/// exchange.
pub struct Stream<T> {
    pub(crate) g: Rc<RefCell<Graph>>,
    pub(crate) port: Rc<RefCell<Port<T>>>,
}

impl<T: Data> Stream<T> {
    fn attach<U: Data>(
        &self,
        make: impl FnMut(&mut TaskContext<'_>, Box<dyn Emitter<U>>) -> Result<Box<dyn Emitter<T>>>
        + 'static,
    ) -> Stream<U> {
        let parallelism = self.port.borrow().parallelism;
        let out = Port::<U>::new(parallelism);
        let down = out.clone();
        let mut make = make;
        self.port
            .borrow_mut()
            .consumers
            .push(Box::new(move |ctx: &mut TaskContext<'_>| {
                let next = Port::build(&down, ctx)?;
                make(ctx, next)
            }));
        Stream {
            g: self.g.clone(),
            port: out,
        }
    }

    /// Records a problem found while building; [`Job::start`] reports it.
    pub fn graph_error(&self, message: impl Into<String>) {
        self.g.borrow_mut().errors.push(message.into());
    }

    /// The number of tasks this stream runs in.
    pub fn parallelism(&self) -> usize {
        self.port.borrow().parallelism
    }

    /// A unique, run-stable id for an operator named `name` (for state keys).
    pub fn operator_uid(&self, name: &str) -> String {
        self.g.borrow_mut().uid(name)
    }

    /// Applies `f` to each record.
    pub fn map<U: Data>(&self, f: impl Fn(T) -> U + Send + Sync + 'static) -> Stream<U> {
        let f: Arc<dyn Fn(T) -> U + Send + Sync> = Arc::new(f);
        self.attach(move |ctx, down| {
            Ok(Box::new(MapOp {
                f: f.clone(),
                down,
                counters: ctx.counters("map"),
            }))
        })
    }

    /// Keeps the records for which `f` is true.
    pub fn filter(&self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> Stream<T> {
        let f: Arc<dyn Fn(&T) -> bool + Send + Sync> = Arc::new(f);
        self.attach(move |ctx, down| {
            Ok(Box::new(FilterOp {
                f: f.clone(),
                down,
                counters: ctx.counters("filter"),
            }))
        })
    }

    /// Replaces each record by the records `f` pushes (zero or more, with the input's time).
    pub fn flat_map<U: Data>(
        &self,
        f: impl Fn(T, &mut Vec<U>) + Send + Sync + 'static,
    ) -> Stream<U> {
        #[allow(clippy::type_complexity)]
        let f: Arc<dyn Fn(T, &mut Vec<U>) + Send + Sync> = Arc::new(f);
        self.attach(move |ctx, down| {
            Ok(Box::new(FlatMapOp {
                f: f.clone(),
                buf: Vec::new(),
                down,
                counters: ctx.counters("flat_map"),
            }))
        })
    }

    /// Runs an operator chained in this stream's tasks. `factory` is called once per task with
    /// the operator's uid (to find its restored state with [`TaskContext::restored_state`]).
    pub fn transform<U: Data>(
        &self,
        name: &str,
        mut factory: impl FnMut(&mut TaskContext<'_>, &str) -> Result<BoxOperator<T, U>> + 'static,
    ) -> Stream<U> {
        let uid = self.operator_uid(name);
        let name = name.to_string();
        self.attach(move |ctx, down| {
            let op = factory(ctx, &uid)?;
            Ok(Box::new(OperatorChain {
                op,
                state_key: ctx.state_key(&uid),
                down,
                counters: ctx.counters(&name),
            }))
        })
    }

    /// Partitions the stream by `key`: records with equal keys go to the same downstream task.
    pub fn key_by<K: Key>(
        &self,
        key: impl Fn(&T) -> K + Send + Sync + 'static,
    ) -> KeyedStream<K, T> {
        KeyedStream {
            stream: Stream {
                g: self.g.clone(),
                port: self.port.clone(),
            },
            key: Arc::new(key),
            make_key: None,
            route: None,
        }
    }

    /// Like [`Stream::key_by`], with a key function per sending task that may keep state (to
    /// salt hot keys, for example); `key` is the stateless key the operators see documented.
    pub fn key_by_with<K: Key>(
        &self,
        key: impl Fn(&T) -> K + Send + Sync + 'static,
        make_key: impl Fn() -> TaskKeyFn<T, K> + Send + Sync + 'static,
    ) -> KeyedStream<K, T> {
        KeyedStream {
            stream: self.clone(),
            key: Arc::new(key),
            make_key: Some(Arc::new(make_key)),
            route: None,
        }
    }

    /// Writes each record to `topic`, encoded with `codec`, unkeyed (the partitioner spreads
    /// them). Under exactly-once, records become visible when their epoch commits.
    pub fn sink<C: Codec<T>>(&self, topic: &str, codec: C) {
        self.add_sink(topic, codec, None);
    }

    /// Like [`Stream::sink`], with each record keyed by `key(record)` (which also picks its
    /// partition).
    pub fn sink_keyed<C: Codec<T>>(
        &self,
        topic: &str,
        codec: C,
        key: impl Fn(&T) -> Vec<u8> + Send + Sync + 'static,
    ) {
        self.add_sink(topic, codec, Some(Arc::new(key)));
    }

    fn add_sink<C: Codec<T>>(&self, topic: &str, codec: C, key: Option<KeyFn<T>>) {
        let topic = topic.to_string();
        {
            let mut g = self.g.borrow_mut();
            g.sinks += 1;
            if let Err(e) = g.log.partition_count(&topic) {
                g.errors.push(format!("sink `{topic}`: {e}"));
            }
        }
        let _: Stream<()> = self.attach(move |ctx, _down: Box<dyn Emitter<()>>| {
            ctx.has_sink = true;
            Ok(Box::new(TopicSink::new(
                ctx,
                &topic,
                codec.clone(),
                key.clone(),
            )))
        });
    }

    /// Calls `f` on each batch of records (a sink for tests, metrics or external systems).
    /// Not transactional: after a crash, `f` may see the records of an uncommitted epoch again.
    pub fn for_each(&self, f: impl Fn(&[crate::Event<T>]) + Send + Sync + 'static) {
        self.g.borrow_mut().sinks += 1;
        let f: crate::sink::BatchFn<T> = Arc::new(f);
        let _: Stream<()> = self.attach(move |ctx, _down: Box<dyn Emitter<()>>| {
            Ok(Box::new(ForEachSink::new(f.clone(), ctx)))
        });
    }
}

impl<L: Data, R: Data> Stream<Either<L, R>> {
    /// Splits into the left (main) and right (side) streams. With `side_required`, starting the
    /// job fails unless the side stream is consumed (for outputs that must never be dropped
    /// silently, such as late records); the message names what to do.
    pub fn split(&self, side_required: Option<String>) -> (Stream<L>, Stream<R>) {
        let parallelism = self.port.borrow().parallelism;
        let left = Port::<L>::new(parallelism);
        let right = Port::<R>::new(parallelism);
        let (l, r) = (left.clone(), right.clone());
        self.port
            .borrow_mut()
            .consumers
            .push(Box::new(move |ctx: &mut TaskContext<'_>| {
                Ok(Box::new(SplitOp {
                    left: Port::build(&l, ctx)?,
                    right: Port::build(&r, ctx)?,
                }))
            }));
        if let Some(message) = side_required {
            let weak = Rc::downgrade(&right);
            self.g.borrow_mut().checks.push(Box::new(move || {
                let consumed = weak
                    .upgrade()
                    .is_some_and(|p| !p.borrow().consumers.is_empty());
                (!consumed).then(|| message.clone())
            }));
        }
        (
            Stream {
                g: self.g.clone(),
                port: left,
            },
            Stream {
                g: self.g.clone(),
                port: right,
            },
        )
    }
}

impl<T> Clone for Stream<T> {
    /// Another handle on the same stream: each consumer attached to either gets every record.
    fn clone(&self) -> Self {
        Stream {
            g: self.g.clone(),
            port: self.port.clone(),
        }
    }
}

impl<K, T> Clone for KeyedStream<K, T> {
    fn clone(&self) -> Self {
        KeyedStream {
            stream: self.stream.clone(),
            key: self.key.clone(),
            make_key: self.make_key.clone(),
            route: self.route.clone(),
        }
    }
}

/// A stream partitioned by key. Its operators run in a new stage of tasks that each own a share
/// of the keys.
pub struct KeyedStream<K, T> {
    stream: Stream<T>,
    key: Arc<dyn Fn(&T) -> K + Send + Sync>,
    /// Makes each sending task its own (stateful) key function, if set; else `key` is used.
    make_key: Option<MakeKey<T, K>>,
    /// The hash that routes a key to a task, if not the key's stable hash.
    route: Option<RouteFn<K>>,
}

/// Hashes a key to route it: `task = hash × tasks / 2^64`.
pub type RouteFn<K> = Arc<dyn Fn(&K) -> u64 + Send + Sync>;

/// A key function with state of its own, one per sending task.
pub type TaskKeyFn<T, K> = Box<dyn FnMut(&T) -> K + Send>;

/// Makes a sending task's key function.
pub type MakeKey<T, K> = Arc<dyn Fn() -> TaskKeyFn<T, K> + Send + Sync>;

impl<K: Key, T: Data> KeyedStream<K, T> {
    /// The stream before keying.
    pub fn unkeyed(&self) -> &Stream<T> {
        &self.stream
    }

    /// Routes keys with `route` instead of their stable hash: `task = route(key) × tasks /
    /// 2^64`. Equal keys must route equally.
    pub fn route_by(mut self, route: impl Fn(&K) -> u64 + Send + Sync + 'static) -> Self {
        self.route = Some(Arc::new(route));
        self
    }

    /// The key function.
    pub fn key_fn(&self) -> Arc<dyn Fn(&T) -> K + Send + Sync> {
        self.key.clone()
    }

    /// Runs `factory`'s operator on `parallelism` tasks (default: the job's), each receiving the
    /// records whose key hashes to it, as `(key, record)`. This is the hook windows, keyed
    /// processing and two-stage aggregation are built on.
    pub fn process_with<U: Data>(
        &self,
        name: &str,
        parallelism: Option<usize>,
        factory: impl FnMut(&mut TaskContext<'_>, &str) -> Result<BoxOperator<(K, T), U>> + 'static,
    ) -> Stream<U> {
        let exchanged = self.exchange(name, parallelism);
        exchanged.transform(name, factory)
    }

    /// The exchange alone: `(key, record)` pairs in the tasks that own the keys.
    pub fn exchange(&self, name: &str, parallelism: Option<usize>) -> Stream<(K, T)> {
        let g = self.stream.g.clone();
        let mut gm = g.borrow_mut();
        let downstream = parallelism.unwrap_or(gm.config.parallelism_default);
        if downstream == 0 {
            gm.errors
                .push(format!("`{name}`: parallelism must be positive"));
        }
        let downstream = downstream.max(1);
        let upstream = self.stream.port.borrow().parallelism;
        let channels =
            exchange::Channels::<K, T>::new(upstream, downstream, gm.config.channel_batches_max);
        let out = Port::<(K, T)>::new(downstream);
        let stage_name = format!("{name}@{}", gm.stages.len());
        let gauge_capacity = (upstream
            * downstream
            * (gm.config.channel_batches_max + 1)
            * gm.config.batch_records_max) as i64;
        let gauge = Arc::new(crate::metrics::ExchangeGauge::new(
            &stage_name,
            gauge_capacity,
        ));
        let key = self.key.clone();
        let make_key = self.make_key.clone();
        let route = self.route.clone();
        {
            let channels = channels.clone();
            let gauge = gauge.clone();
            self.stream.port.borrow_mut().consumers.push(Box::new(
                move |ctx: &mut TaskContext<'_>| {
                    ctx.shared.register_gauge(&gauge);
                    let key: TaskKeyFn<T, K> = match &make_key {
                        Some(make) => make(),
                        None => {
                            let key = key.clone();
                            Box::new(move |t: &T| key(t))
                        }
                    };
                    Ok(Box::new(exchange::Sender::new(
                        channels.senders(ctx.index),
                        key,
                        route.clone(),
                        ctx.shared.config.batch_records_max,
                        gauge.clone(),
                    )?))
                },
            ));
        }
        let port = out.clone();
        gm.stages.push(Stage {
            name: stage_name,
            parallelism: downstream,
            make_task: Box::new(move |ctx| {
                let receivers = channels.receivers(ctx.index)?;
                let chain = Port::build(&port, ctx)?;
                Ok(Box::new(exchange::ReceiverTask::new(
                    receivers,
                    chain,
                    gauge.clone(),
                )))
            }),
        });
        drop(gm);
        Stream { g, port: out }
    }
}
