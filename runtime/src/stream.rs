//! Streams: the typed ports a job's operators attach to, and the operators that run chained in
//! the tasks of their input (map, filter, flat_map, custom operators, sinks, splits).

use std::sync::Arc;

use crate::chained::{Either, FilterOp, FlatMapOp, MapOp, SplitOp};
use crate::codec::Codec;
use crate::data::Data;
use crate::emitter::Emitter;
use crate::error::Result;
use crate::event::Event;
use crate::graph::{Graph, Locked, Port};
use crate::operator::{BoxOperator, OperatorChain};
use crate::sink::{BatchFn, ForEachSink, KeyFn, TopicSink};
use crate::task::TaskContext;

/// A stream of records of type `T`, being built. Operators that do not change how records are
/// partitioned run chained in the same tasks as their input; [`Stream::key_by`] starts an
/// exchange.
pub struct Stream<T> {
    pub(crate) g: Arc<Locked<Graph>>,
    pub(crate) port: Arc<Locked<Port<T>>>,
}

impl<T: Data> Stream<T> {
    fn attach<U: Data>(
        &self,
        make: impl FnMut(&mut TaskContext<'_>, Box<dyn Emitter<U>>) -> Result<Box<dyn Emitter<T>>>
        + Send
        + 'static,
    ) -> Stream<U> {
        let parallelism = self.port.borrow().parallelism;
        let out = Port::<U>::new(self.port.borrow().stage, parallelism);
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

    /// Records a problem found while building; [`Job::start`](crate::Job::start) reports it.
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
        mut factory: impl FnMut(&mut TaskContext<'_>, &str) -> Result<BoxOperator<T, U>>
        + Send
        + 'static,
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
            g.mark_writes_output(self.port.borrow().stage);
            if let Err(e) = g.topics.partition_count(&topic) {
                g.errors.push(format!("sink `{topic}`: {e}"));
            }
        }
        let _: Stream<()> = self.attach(move |ctx, _down: Box<dyn Emitter<()>>| {
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
    pub fn for_each(&self, f: impl Fn(&[Event<T>]) + Send + Sync + 'static) {
        self.g.borrow_mut().sinks += 1;
        let f: BatchFn<T> = Arc::new(f);
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
        let (stage, parallelism) = {
            let p = self.port.borrow();
            (p.stage, p.parallelism)
        };
        let left = Port::<L>::new(stage, parallelism);
        let right = Port::<R>::new(stage, parallelism);
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
            let weak = Arc::downgrade(&right);
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
