//! Starting a job, the checkpoint coordinator, and the handle a running job is watched and
//! stopped through.
//!
//! The coordinator asks the sources for a new epoch every `epoch_ms`. Each source snapshots its
//! positions and sends a barrier down its chain; every task snapshots when the barrier has come
//! in on all its inputs, and acknowledges with its state. Once every task has acknowledged, the
//! coordinator commits, in one log transaction: the epoch's output records (already written
//! by the sinks into the open transaction), the state snapshots and the source offsets. Tasks
//! with a sink wait for that commit before writing the next epoch's output, so no record of
//! epoch N+1 can ride in epoch N's transaction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};
use weir_log::format::Header;
use weir_log::{
    Acks, GroupMetadata, Log, Producer, ProducerConfig, ProducerRecord, TransactionalConfig,
    TransactionalProducer,
};

use crate::config::{Guarantee, JobConfig};
use crate::emitter::Checkpoint;
use crate::error::{Error, Result};
use crate::event::WATERMARK_MIN;
use crate::job::{Graph, TaskContext};
use crate::metrics::{
    self, CheckpointStats, ExchangeGauge, JobMetrics, OperatorCounters, OperatorMetrics,
    SourceProgress,
};
use crate::state::{self, Manifest};

/// A record a sink hands to the job's producer.
pub(crate) struct OutputRecord<'a> {
    pub(crate) topic: &'a str,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: &'a [u8],
    pub(crate) timestamp: Option<i64>,
    pub(crate) headers: &'a [Header],
}

enum OutputProducer {
    Transactional(Box<Mutex<TransactionalProducer>>),
    Plain(Producer),
}

enum CoordinatorMsg {
    Ack { task: usize, cp: Checkpoint },
    Drained { task: usize },
    Failed { error: Error },
}

/// What every task of a running job shares.
pub(crate) struct Shared {
    pub(crate) config: JobConfig,
    pub(crate) log: Log,
    producer: OutputProducer,
    stop: AtomicBool,
    /// The final epoch committed: stopping is success.
    finished: AtomicBool,
    requested_epoch: AtomicU64,
    epoch_cv: (Mutex<()>, Condvar),
    committed: (Mutex<u64>, Condvar),
    coordinator: crossbeam_channel::Sender<CoordinatorMsg>,
    counters: Mutex<Vec<Arc<OperatorCounters>>>,
    gauges: Mutex<Vec<Arc<ExchangeGauge>>>,
    sources: Mutex<Vec<Arc<SourceProgress>>>,
    checkpoints: CheckpointStats,
    started: Instant,
}

impl Shared {
    pub(crate) fn register_counters(&self, operator: &str) -> Arc<OperatorCounters> {
        let c = Arc::new(OperatorCounters::new(operator));
        self.counters.lock().expect("counters lock").push(c.clone());
        c
    }

    pub(crate) fn register_gauge(&self, gauge: &Arc<ExchangeGauge>) {
        let mut gauges = self.gauges.lock().expect("gauges lock");
        if !gauges.iter().any(|g| Arc::ptr_eq(g, gauge)) {
            gauges.push(gauge.clone());
        }
    }

    pub(crate) fn register_source(&self) -> Arc<SourceProgress> {
        let p = Arc::new(SourceProgress::default());
        p.watermark.store(WATERMARK_MIN, Relaxed);
        self.sources.lock().expect("sources lock").push(p.clone());
        p
    }

    /// Writes records through the job's producer (into the open transaction, under
    /// exactly-once).
    pub(crate) fn output(&self, records: &[OutputRecord<'_>]) -> Result<()> {
        fn rec<'a>(r: &'a OutputRecord<'a>) -> ProducerRecord<'a> {
            let mut pr = ProducerRecord::new(r.topic, r.value).headers(r.headers);
            if let Some(k) = r.key {
                pr = pr.key(k);
            }
            if let Some(ts) = r.timestamp {
                pr = pr.timestamp(ts);
            }
            pr
        }
        match &self.producer {
            OutputProducer::Transactional(p) => {
                let mut p = p.lock().map_err(|_| Error::Stopped)?;
                for r in records {
                    p.send(rec(r))?;
                }
            }
            OutputProducer::Plain(p) => {
                for r in records {
                    p.send(rec(r))?;
                }
            }
        }
        Ok(())
    }

    fn request_stop(&self) {
        self.stop.store(true, SeqCst);
        self.epoch_cv.1.notify_all();
        self.committed.1.notify_all();
    }
}

/// A task's view of the running job.
pub(crate) struct TaskEnv {
    task: usize,
    shared: Arc<Shared>,
    has_sink: bool,
}

impl TaskEnv {
    pub(crate) fn should_stop(&self) -> bool {
        self.shared.stop.load(Relaxed)
    }

    /// The result of a task told to stop: success once the final epoch committed.
    pub(crate) fn stopped(&self) -> Result<()> {
        if self.shared.finished.load(SeqCst) {
            Ok(())
        } else {
            Err(Error::Stopped)
        }
    }

    pub(crate) fn config(&self) -> &JobConfig {
        &self.shared.config
    }

    pub(crate) fn log(&self) -> &Log {
        &self.shared.log
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.shared.config.clock.now_ms()
    }

    pub(crate) fn requested_epoch(&self) -> u64 {
        self.shared.requested_epoch.load(SeqCst)
    }

    /// Sleeps until an epoch after `epoch` is requested, the job stops, or `timeout` passes.
    pub(crate) fn wait_for_epoch(&self, epoch: u64, timeout: Duration) {
        let (lock, cv) = &self.shared.epoch_cv;
        let guard = lock.lock().expect("epoch lock");
        let _ = cv.wait_timeout_while(guard, timeout, |_| {
            self.requested_epoch() <= epoch && !self.should_stop()
        });
    }

    pub(crate) fn output(&self, records: &[OutputRecord<'_>]) -> Result<()> {
        self.shared.output(records)
    }

    /// Hands this task's snapshot for the epoch to the coordinator. A task with a sink then
    /// waits for the epoch to commit (under exactly-once), so that its next records go into the
    /// next transaction.
    pub(crate) fn ack(&self, cp: Checkpoint) -> Result<()> {
        let epoch = cp.epoch;
        self.shared
            .coordinator
            .send(CoordinatorMsg::Ack {
                task: self.task,
                cp,
            })
            .map_err(|_| Error::Stopped)?;
        if self.has_sink && self.shared.config.guarantee == Guarantee::ExactlyOnce {
            let (lock, cv) = &self.shared.committed;
            let guard = lock.lock().map_err(|_| Error::Stopped)?;
            let guard = cv
                .wait_while(guard, |c| *c < epoch && !self.should_stop())
                .map_err(|_| Error::Stopped)?;
            if *guard < epoch {
                return self.stopped();
            }
        }
        Ok(())
    }

    /// A source task read all its partitions to their end (with `stop_when_drained`).
    pub(crate) fn drained(&self) {
        let _ = self
            .shared
            .coordinator
            .send(CoordinatorMsg::Drained { task: self.task });
    }
}

/// Checks the graph, restores state, starts the coordinator and every task.
pub(crate) fn start(g: Graph) -> Result<JobHandle> {
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
    let Graph {
        config,
        log,
        mut stages,
        ..
    } = g;
    if !log.is_writable() {
        return Err(Error::config("log", "a job needs a log opened for writing"));
    }
    let job = config.job_id();
    state::ensure_topic(&log, &config.state_topic)?;
    let producer = match config.guarantee {
        Guarantee::ExactlyOnce => {
            // Fences an earlier instance of this job and aborts its open epoch.
            // lz4: state snapshots (sketches, sparse tables) shrink many times over.
            let mut p = TransactionalProducer::new(
                &log,
                TransactionalConfig {
                    compression: weir_log::format::Compression::Lz4,
                    ..TransactionalConfig::new(&job)
                },
            )?;
            p.begin()?;
            OutputProducer::Transactional(Box::new(Mutex::new(p)))
        }
        Guarantee::AtLeastOnce => OutputProducer::Plain(Producer::new(
            &log,
            ProducerConfig {
                acks: Acks::All,
                idempotent: true,
                ..ProducerConfig::default()
            },
        )?),
    };
    let restored = state::restore(&log, &config.state_topic, &job)?;
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
    let (tx, rx) = bounded(tasks_total * 4 + 16);
    let last_epoch = restored.manifest.as_ref().map_or(0, |m| m.epoch);
    let shared = Arc::new(Shared {
        config: config.clone(),
        log: log.clone(),
        producer,
        stop: AtomicBool::new(false),
        finished: AtomicBool::new(false),
        requested_epoch: AtomicU64::new(last_epoch),
        epoch_cv: (Mutex::new(()), Condvar::new()),
        committed: (Mutex::new(last_epoch), Condvar::new()),
        coordinator: tx,
        counters: Mutex::new(Vec::new()),
        gauges: Mutex::new(Vec::new()),
        sources: Mutex::new(Vec::new()),
        checkpoints: CheckpointStats::default(),
        started: Instant::now(),
    });
    let mut bodies = Vec::with_capacity(tasks_total);
    let mut source_tasks = 0;
    for stage in &mut stages {
        let is_source = stage.name.starts_with("source:");
        for index in 0..stage.parallelism {
            let mut ctx = TaskContext {
                stage: &stage.name,
                index,
                parallelism: stage.parallelism,
                restored: &restored.states,
                shared: &shared,
                has_sink: false,
            };
            let body = (stage.make_task)(&mut ctx)?;
            let has_sink = ctx.has_sink;
            bodies.push((format!("{}[{index}]", stage.name), body, has_sink));
            source_tasks += is_source as usize;
        }
    }
    drop(stages);
    let mut written: HashMap<String, Written> = HashMap::new();
    if let Some(m) = &restored.manifest {
        for (key, epoch, chunks) in &m.entries {
            if let Some(bytes) = restored.states.get(key) {
                written.insert(
                    key.clone(),
                    Written {
                        epoch: *epoch,
                        chunks: *chunks,
                        bytes: bytes.clone(),
                    },
                );
            }
        }
    }
    let coordinator = {
        let shared = shared.clone();
        let c = Coordinator {
            shared,
            rx,
            tasks: tasks_total,
            source_tasks,
            topology,
            written,
        };
        std::thread::Builder::new()
            .name(format!("{}-coordinator", config.name))
            .spawn(move || c.run())
            .map_err(|e| Error::Internal(format!("spawning the coordinator: {e}")))?
    };
    let mut threads = Vec::with_capacity(tasks_total);
    for (task, (name, body, has_sink)) in bodies.into_iter().enumerate() {
        let env = TaskEnv {
            task,
            shared: shared.clone(),
            has_sink,
        };
        let shared = shared.clone();
        let t = std::thread::Builder::new()
            .name(name.chars().take(15).collect())
            .spawn(move || {
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
                let _ = shared.coordinator.send(CoordinatorMsg::Failed { error });
                shared.request_stop();
            })
            .map_err(|e| Error::Internal(format!("spawning a task: {e}")))?;
        threads.push(t);
    }
    Ok(JobHandle {
        shared,
        coordinator: Some(coordinator),
        threads,
    })
}

struct Written {
    epoch: u64,
    chunks: u32,
    bytes: Vec<u8>,
}

struct Pending {
    epoch: u64,
    requested_at: Instant,
    acks: Vec<Option<Checkpoint>>,
    received: usize,
    last: bool,
}

struct Coordinator {
    shared: Arc<Shared>,
    rx: Receiver<CoordinatorMsg>,
    tasks: usize,
    source_tasks: usize,
    topology: String,
    written: HashMap<String, Written>,
}

impl Coordinator {
    fn run(mut self) -> Result<()> {
        let r = self.coordinate();
        self.shared.request_stop();
        if let OutputProducer::Transactional(p) = &self.shared.producer
            && let Ok(mut p) = p.lock()
        {
            // The open epoch is abandoned; a restart replays it.
            let _ = p.abort();
        }
        if let OutputProducer::Plain(p) = &self.shared.producer {
            let _ = p.flush();
        }
        r
    }

    fn coordinate(&mut self) -> Result<()> {
        let config = self.shared.config.clone();
        let epoch_every = Duration::from_millis(config.epoch_ms);
        let print_every = config.metrics_print_interval_ms.map(Duration::from_millis);
        let mut next_epoch_at = Instant::now() + epoch_every;
        let mut next_print_at = print_every.map(|d| Instant::now() + d);
        let mut pending: Option<Pending> = None;
        let mut drained = vec![false; self.tasks];
        let mut all_drained = false;
        loop {
            if self.shared.stop.load(SeqCst) {
                // A failing task stops the job first, then reports why.
                while let Ok(msg) = self.rx.try_recv() {
                    if let CoordinatorMsg::Failed { error } = msg {
                        return Err(error);
                    }
                }
                return Err(Error::Stopped);
            }
            let now = Instant::now();
            if pending.is_none() && (now >= next_epoch_at || all_drained) {
                let epoch = self.shared.requested_epoch.load(SeqCst) + 1;
                pending = Some(Pending {
                    epoch,
                    requested_at: now,
                    acks: (0..self.tasks).map(|_| None).collect(),
                    received: 0,
                    last: all_drained,
                });
                {
                    let _g = self.shared.epoch_cv.0.lock().expect("epoch lock");
                    self.shared.requested_epoch.store(epoch, SeqCst);
                }
                self.shared.epoch_cv.1.notify_all();
                next_epoch_at = now + epoch_every;
            }
            if let (Some(at), Some(every)) = (next_print_at, print_every)
                && now >= at
            {
                eprintln!("[{}] {}", config.name, collect_metrics(&self.shared));
                next_print_at = Some(now + every);
            }
            let wait = next_epoch_at
                .saturating_duration_since(now)
                .min(Duration::from_millis(100));
            let msg = match self.rx.recv_timeout(wait) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Err(Error::Stopped),
            };
            match msg {
                CoordinatorMsg::Failed { error } => return Err(error),
                CoordinatorMsg::Drained { task } => {
                    drained[task] = true;
                    all_drained = config.stop_when_drained
                        && drained.iter().filter(|d| **d).count() >= self.source_tasks;
                }
                CoordinatorMsg::Ack { task, cp } => {
                    let p = pending
                        .as_mut()
                        .ok_or_else(|| Error::Internal("an ack with no epoch pending".into()))?;
                    if cp.epoch != p.epoch || p.acks[task].is_some() {
                        return Err(Error::Internal(format!(
                            "task {task} acked epoch {} while {} is pending",
                            cp.epoch, p.epoch
                        )));
                    }
                    p.acks[task] = Some(cp);
                    p.received += 1;
                    if p.received == self.tasks {
                        let p = pending.take().expect("pending epoch");
                        let last = p.last;
                        self.commit(p)?;
                        if last {
                            self.shared.finished.store(true, SeqCst);
                            self.shared.request_stop();
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    fn commit(&mut self, p: Pending) -> Result<()> {
        let config = &self.shared.config;
        let job = config.job_id();
        let mut records: Vec<(String, Vec<u8>)> = Vec::new();
        let mut entries = Vec::new();
        let mut offsets: Vec<(String, i32, i64)> = Vec::new();
        let mut state_bytes = 0u64;
        for cp in p.acks.into_iter().flatten() {
            offsets.extend(cp.offsets);
            for (key, bytes) in cp.states {
                let unchanged = self.written.get(&key).is_some_and(|w| w.bytes == bytes);
                if !unchanged {
                    state_bytes += bytes.len() as u64;
                    let chunks =
                        state::chunks(&job, &key, p.epoch, &bytes, config.state_chunk_bytes_max)?;
                    let n = chunks.len() as u32;
                    records.extend(chunks);
                    self.written.insert(
                        key.clone(),
                        Written {
                            epoch: p.epoch,
                            chunks: n,
                            bytes,
                        },
                    );
                }
                let w = &self.written[&key];
                entries.push((key, w.epoch, w.chunks));
            }
        }
        entries.sort();
        let manifest = state::encode_manifest(&Manifest {
            epoch: p.epoch,
            topology: self.topology.clone(),
            entries,
        })?;
        let manifest_key = state::manifest_key(&job);
        let topic = config.state_topic.as_str();
        let offset_refs: Vec<(weir_log::TopicPartition, i64)> = offsets
            .iter()
            .map(|(t, p, o)| (weir_log::TopicPartition::new(t.as_str(), *p), *o))
            .collect();
        match &self.shared.producer {
            OutputProducer::Transactional(producer) => {
                let mut producer = producer.lock().map_err(|_| Error::Stopped)?;
                for (k, v) in &records {
                    producer.send(ProducerRecord::new(topic, v).key(k.as_bytes()).partition(0))?;
                }
                producer.send(
                    ProducerRecord::new(topic, &manifest)
                        .key(manifest_key.as_bytes())
                        .partition(0),
                )?;
                if !offset_refs.is_empty() {
                    producer.send_offsets(
                        &offset_refs,
                        &GroupMetadata {
                            group: job.clone(),
                            member_id: None,
                            generation: -1,
                        },
                    )?;
                }
                producer.commit()?;
                producer.begin()?;
            }
            OutputProducer::Plain(producer) => {
                producer.flush()?;
                for (k, v) in &records {
                    producer.send(ProducerRecord::new(topic, v).key(k.as_bytes()).partition(0))?;
                }
                producer.send(
                    ProducerRecord::new(topic, &manifest)
                        .key(manifest_key.as_bytes())
                        .partition(0),
                )?;
                producer.flush()?;
                if !offsets.is_empty() {
                    self.shared.log.commit_offsets(&job, None, &offset_refs)?;
                }
            }
        }
        let ms = p.requested_at.elapsed().as_millis() as u64;
        let s = &self.shared.checkpoints;
        s.committed.fetch_add(1, Relaxed);
        s.last_epoch.store(p.epoch, Relaxed);
        s.last_ms.store(ms, Relaxed);
        s.max_ms.fetch_max(ms, Relaxed);
        s.total_ms.fetch_add(ms, Relaxed);
        s.last_state_bytes.store(state_bytes, Relaxed);
        {
            let mut c = self.shared.committed.0.lock().map_err(|_| Error::Stopped)?;
            *c = p.epoch;
        }
        self.shared.committed.1.notify_all();
        Ok(())
    }
}

fn collect_metrics(shared: &Shared) -> JobMetrics {
    let elapsed = shared.started.elapsed();
    let mut operators: Vec<OperatorMetrics> = Vec::new();
    for c in shared.counters.lock().expect("counters lock").iter() {
        let (i, o, s) = metrics::operator_values(c);
        match operators.iter_mut().find(|m| m.operator == c.operator) {
            Some(m) => {
                m.records_in += i;
                m.records_out += o;
                m.state_items += s;
            }
            None => operators.push(OperatorMetrics {
                operator: c.operator.clone(),
                records_in: i,
                records_out: o,
                state_items: s,
            }),
        }
    }
    let exchanges = shared
        .gauges
        .lock()
        .expect("gauges lock")
        .iter()
        .map(|g| metrics::gauge_values(g))
        .collect();
    let (mut records, mut bytes, mut decode_errors, mut lag) = (0, 0, 0, 0);
    // What the operators see: the minimum over live sources (the maximum if all are idle).
    let (mut live_min, mut idle_max): (Option<i64>, Option<i64>) = (None, None);
    for s in shared.sources.lock().expect("sources lock").iter() {
        records += metrics::load(&s.records);
        bytes += metrics::load(&s.bytes);
        decode_errors += metrics::load(&s.decode_errors);
        let wm = s.watermark.load(Relaxed);
        if s.idle.load(Relaxed) {
            idle_max = Some(idle_max.map_or(wm, |w| w.max(wm)));
        } else {
            live_min = Some(live_min.map_or(wm, |w| w.min(wm)));
        }
        for (topic, p, pos) in s.positions.lock().expect("positions lock").iter() {
            if let Ok((_, end)) = shared.log.offsets(topic, *p) {
                lag += (end - pos).max(0);
            }
        }
    }
    let watermark = live_min.or(idle_max).filter(|w| *w != WATERMARK_MIN);
    let now = shared.config.clock.now_ms();
    let c = &shared.checkpoints;
    JobMetrics {
        elapsed,
        source_records: records,
        source_bytes: bytes,
        events_per_s: records as f64 / elapsed.as_secs_f64().max(1e-9),
        source_lag: lag,
        decode_errors,
        watermark,
        watermark_lag_ms: watermark
            .filter(|w| *w != i64::MAX)
            .map(|w| now.saturating_sub(w)),
        checkpoints: metrics::load(&c.committed),
        last_epoch: metrics::load(&c.last_epoch),
        checkpoint_last_ms: metrics::load(&c.last_ms),
        checkpoint_max_ms: metrics::load(&c.max_ms),
        checkpoint_state_bytes: metrics::load(&c.last_state_bytes),
        operators,
        exchanges,
    }
}

/// A running job.
pub struct JobHandle {
    shared: Arc<Shared>,
    coordinator: Option<JoinHandle<Result<()>>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle")
            .field("job", &self.shared.config.name)
            .field("tasks", &self.threads.len())
            .finish()
    }
}

impl JobHandle {
    /// The job's metrics now.
    pub fn metrics(&self) -> JobMetrics {
        collect_metrics(&self.shared)
    }

    /// The last committed epoch.
    pub fn committed_epoch(&self) -> u64 {
        *self.shared.committed.0.lock().expect("committed lock")
    }

    /// Whether the job has ended (drained, failed or stopped).
    pub fn is_finished(&self) -> bool {
        self.coordinator.as_ref().is_none_or(|c| c.is_finished())
    }

    /// Waits for the job to end: with `stop_when_drained`, once the input is drained and the
    /// final epoch committed. Returns the final metrics, or the error that stopped it.
    pub fn wait(mut self) -> Result<JobMetrics> {
        self.join()
    }

    /// Stops the job. The open epoch is aborted (its records are never visible); a restart
    /// replays it from the last commit.
    pub fn stop(mut self) -> Result<JobMetrics> {
        self.shared.request_stop();
        match self.join() {
            Err(Error::Stopped) => Ok(self.metrics()),
            r => r,
        }
    }

    fn join(&mut self) -> Result<JobMetrics> {
        let r = match self.coordinator.take() {
            Some(c) => c
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("the coordinator panicked".into()))),
            None => Ok(()),
        };
        self.shared.request_stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        r.map(|()| collect_metrics(&self.shared))
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        self.shared.request_stop();
        let _ = self.join();
    }
}
