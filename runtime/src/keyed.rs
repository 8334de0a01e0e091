//! Keyed streams: [`Stream::key_by`] partitions a stream by key, and the exchange behind it
//! starts a new stage whose tasks each own a share of the keys.
//!
//! `key_by` is defined here, with the type it returns, so that this module builds on
//! [`crate::stream`] and not the reverse.

use std::sync::Arc;

use crate::data::{ExchangeData, Key};
use crate::emitter::Emitter;
use crate::error::Result;
use crate::exchange::{self, MakeKey, RouteFn, TaskKeyFn};
use crate::graph::{Port, Stage};
use crate::metrics::ExchangeGauge;
use crate::operator::BoxOperator;
use crate::stream::Stream;
use crate::task::{TaskContext, TaskKind, TaskRun};

impl<T: ExchangeData> Stream<T> {
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

impl<K: Key, T: ExchangeData> KeyedStream<K, T> {
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

    /// The stateless key function the stream was keyed by (what operators see as the key).
    pub fn key_fn(&self) -> Arc<dyn Fn(&T) -> K + Send + Sync> {
        self.key.clone()
    }

    /// Runs `factory`'s operator on `parallelism` tasks (default: the job's), each receiving the
    /// records whose key hashes to it, as `(key, record)`. This is the hook windows, keyed
    /// processing and two-stage aggregation are built on.
    pub fn process_with<U: crate::data::Data>(
        &self,
        name: &str,
        parallelism: Option<usize>,
        factory: impl FnMut(&mut TaskContext<'_>, &str) -> Result<BoxOperator<(K, T), U>>
        + Send
        + 'static,
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
        let on_cluster = gm.topics.shares_work();
        // In memory the channel matrix; on a cluster a repartition topic instead (the channels
        // are then never made).
        let channels = exchange::Channels::<K, T>::new(
            if on_cluster { 0 } else { upstream },
            if on_cluster { 0 } else { downstream },
            gm.config.channel_batches_max,
        );
        let stage = gm.stages.len();
        let out = Port::<(K, T)>::new(stage, downstream);
        let stage_name = format!("{name}@{}", gm.stages.len());
        let topic = exchange::repartition_topic(&gm.config.job_id(), &stage_name);
        // The reader's valve is state; its uid exists only on a cluster, so that the uids (and
        // the state keys) of a job on the embedded log stay as they were.
        let reader_uid = on_cluster.then(|| gm.uid(&format!("repartition:{name}")));
        if on_cluster {
            gm.repartition_topics.push((topic.clone(), downstream));
            // The upstream tasks write the exchange's records into the epoch's transaction.
            gm.mark_writes_output(self.stream.port.borrow().stage);
        }
        let gauge_capacity = (upstream
            * downstream
            * (gm.config.channel_batches_max + 1)
            * gm.config.batch_records_max) as i64;
        let gauge = Arc::new(ExchangeGauge::new(&stage_name, gauge_capacity));
        let key = self.key.clone();
        let make_key = self.make_key.clone();
        let route = self.route.clone();
        {
            let channels = channels.clone();
            let gauge = gauge.clone();
            let topic = topic.clone();
            self.stream.port.borrow_mut().consumers.push(Box::new(
                move |ctx: &mut TaskContext<'_>| -> Result<Box<dyn Emitter<T>>> {
                    ctx.register_gauge(&gauge);
                    let key: TaskKeyFn<T, K> = match &make_key {
                        Some(make) => make(),
                        None => {
                            let key = key.clone();
                            Box::new(move |t: &T| key(t))
                        }
                    };
                    if on_cluster {
                        return Ok(Box::new(exchange::RepartitionSender::new(
                            ctx,
                            topic.clone(),
                            downstream,
                            key,
                            route.clone(),
                            gauge.clone(),
                        )?));
                    }
                    Ok(Box::new(exchange::Sender::new(
                        channels.senders(ctx.index),
                        key,
                        route.clone(),
                        ctx.config().batch_records_max,
                        gauge.clone(),
                    )?))
                },
            ));
        }
        let port = out.clone();
        gm.stages.push(Stage {
            name: stage_name,
            kind: if on_cluster {
                TaskKind::Source
            } else {
                TaskKind::Exchange
            },
            parallelism: downstream,
            writes_output: on_cluster,
            input: topic.clone(),
            make_task: Box::new(move |ctx| -> Result<Box<dyn TaskRun>> {
                let chain = Port::build(&port, ctx)?;
                if let Some(uid) = &reader_uid {
                    return Ok(Box::new(exchange::RepartitionReader::new(
                        ctx,
                        uid,
                        topic.clone(),
                        upstream,
                        chain,
                        gauge.clone(),
                    )?));
                }
                let receivers = channels.receivers(ctx.index)?;
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
