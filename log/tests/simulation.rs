//! A seeded simulation of the log on the fault-injecting storage.
//!
//! Each seed drives one run: random appends (acks none, leader, all), idempotent appends (with
//! a retry after a failure), transactions that commit or abort (the embedded producer's, and a
//! Kafka client's: transaction version 1, its epoch and sequences kept across transactions, some
//! with the group's offsets committed inside them, some left open until the coordinator aborts
//! them for their timeout), offset commits outside transactions, clean restarts, and crashes, at
//! a random point between operations or in the middle of one, while the storage fails fsyncs,
//! returns ENOSPC and tears writes. After each crash the log reopens on what the storage kept,
//! and the checker holds it to its promises:
//! - nothing acknowledged with acks=all is lost, and it keeps its offset;
//! - offsets are dense and increasing, batch after batch;
//! - an idempotent record is there at most once, exactly once when acknowledged;
//! - read_committed shows every transaction whole or not at all: all of a committed one, none
//!   of an aborted one, never part of one; every transaction is decided after recovery;
//! - what recovery cut off is in `Log::recovery_report`, byte for byte;
//! - the group's committed offset of each partition is that of its last acknowledged commit (or
//!   of a later commit whose outcome is unknown); an offset committed in a transaction shows
//!   exactly when the transaction's records do, and no offset commit is pending after recovery;
//! - a transaction the coordinator aborted for its timeout shows nothing, and its producer can
//!   no longer commit it.
//!
//! `WEIR_SIM_SEEDS=N` runs seeds 0..N (2,000 by default), `WEIR_SIM_SEEDS=A..B` seeds A..B;
//! `WEIR_SIM_SEED=S` runs seed S alone. A
//! failing seed is printed with the command that replays it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_log::format::{BatchBuilder, BatchOptions};
use weir_log::storage::Storage;
use weir_log::storage::sim::{FaultConfig, FaultStorage, OpKind};
use weir_log::{
    Acks, Clock, IsolationLevel, Log, LogConfig, LogOptions, ManualClock, ProducerRecord,
    TopicPartition, TransactionalConfig, TransactionalProducer,
};

use crate::common::small_segments;

const SEEDS_DEFAULT: u64 = 2_000;
const STEPS_PER_SEED: usize = 40;
const PARTITIONS: i32 = 3;
const TOPIC: &str = "sim";
const GROUP: &str = "sim-group";
const KAFKA_TXN_ID: &str = "sim-kafka";
const KAFKA_TXN_TIMEOUT_MS: i64 = 60_000;
const ROOT: &str = "/weir-sim";

/// Segment files and their lengths.
type Files = BTreeMap<PathBuf, u64>;

/// What the run was told, to check the log against.
#[derive(Default)]
struct Model {
    /// Records acknowledged with acks=all: (partition, offset) → value.
    acked: BTreeMap<(i32, i64), String>,
    /// Idempotent records acknowledged (acks=all), and every one ever sent.
    idempotent_acked: HashSet<String>,
    idempotent_sent: HashSet<String>,
    /// Transactions by outcome, each as its values.
    committed: Vec<Vec<String>>,
    aborted: Vec<Vec<String>>,
    /// Commit or abort failed (a crash, a fault): either outcome, but whole.
    undecided: Vec<Vec<String>>,
    /// The group's offset commits of each partition, in the order made.
    offset_commits: BTreeMap<i32, Vec<OffsetCommit>>,
    next_value: u64,
}

/// One offset commit of [`GROUP`] for a partition, and what became of it.
#[derive(Debug, Clone)]
struct OffsetCommit {
    /// The committed offset (unique within the run, so that the checker can tell commits apart).
    offset: i64,
    outcome: Outcome,
    /// For a commit inside a transaction: the transaction's records, whose visibility decides an
    /// undecided transaction's outcome for its offsets too.
    txn: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Acknowledged (or its transaction committed): must show until a later commit.
    Done,
    /// Refused, or its transaction aborted: must never show.
    Dropped,
    /// Unknown (a failure): may show or not.
    Undecided,
}

impl Model {
    /// A value never used before, padded to `pad` bytes more so that segments roll.
    fn value(&mut self, kind: &str, pad: usize) -> String {
        self.next_value += 1;
        format!("{kind}{}-{}", self.next_value, "p".repeat(pad))
    }
}

/// An idempotent producer's identity and next sequence per partition.
struct Idempotent {
    producer_id: i64,
    epoch: i16,
    sequences: Vec<i32>,
}

/// A Kafka client's transactional producer (transaction version 1): the (producer id, epoch)
/// it was given and its next sequence per partition, kept across its transactions.
struct KafkaTxn {
    producer_id: i64,
    epoch: i16,
    sequences: Vec<i32>,
}

struct Run {
    rng: fastrand::Rng,
    storage: FaultStorage,
    faults: FaultConfig,
    clock: ManualClock,
    dir: PathBuf,
    log: Option<Log>,
    idempotent: Option<Idempotent>,
    txn: Option<TransactionalProducer>,
    kafka_txn: Option<KafkaTxn>,
    model: Model,
    crashes: usize,
    /// What the run did, for the report of a failing seed.
    trace: Vec<String>,
}

fn log_config() -> LogConfig {
    LogConfig {
        index_interval_bytes: 256,
        index_bytes_max: 4096,
        // Neither runs on its own during a run: only what the run does touches the storage.
        cleaner_interval_ms: 3_600_000,
        txn_check_interval_ms: 3_600_000,
        ..LogConfig::default()
    }
}

impl Run {
    fn new(seed: u64, lie_about_segment_fsync: bool) -> Run {
        let mut rng = fastrand::Rng::with_seed(seed);
        let faults = FaultConfig {
            fsync_fail_per_mille: rng.u32(0..40),
            enospc_per_mille: rng.u32(0..20),
            torn_write_per_mille: rng.u32(0..20),
            torn_crash: rng.bool(),
            lie_about_segment_fsync,
        };
        Run {
            rng,
            storage: FaultStorage::new(ROOT, seed, faults),
            faults,
            clock: ManualClock::new(1_700_000_000_000),
            dir: Path::new(ROOT).join("data"),
            log: None,
            idempotent: None,
            txn: None,
            kafka_txn: None,
            model: Model::default(),
            crashes: 0,
            trace: Vec::new(),
        }
    }

    fn options(&self) -> LogOptions {
        LogOptions {
            storage: Arc::new(self.storage.clone()),
            clock: Arc::new(self.clock.clone()),
        }
    }

    /// Opens the log with faults off (opening is not what the run tests), topic created.
    fn open(&mut self) -> Result<(), String> {
        self.storage.set_faults(FaultConfig {
            fsync_fail_per_mille: 0,
            enospc_per_mille: 0,
            torn_write_per_mille: 0,
            ..self.faults
        });
        let log = match Log::open_with(&self.dir, log_config(), self.options()) {
            // A crash point armed before a clean restart may fall in the reopen: crash there.
            Err(_) if self.storage.is_crashed() => {
                self.storage = self.storage.reboot();
                return self.open();
            }
            opened => opened.map_err(|e| format!("reopening failed: {e}"))?,
        };
        if log.topic_config(TOPIC).is_err() {
            log.create_topic(TOPIC, small_segments(PARTITIONS, 4096))
                .map_err(|e| format!("creating the topic failed: {e}"))?;
        }
        self.log = Some(log);
        Ok(())
    }

    fn faults_on(&mut self) {
        self.storage.set_faults(self.faults);
        if self.rng.u8(0..2) == 0 {
            // Crash in the middle of a later append: the k-th write to a segment from now
            // (segments are written by this thread only, so the point replays exactly).
            let k = self.rng.u64(1..30);
            let seen = std::sync::atomic::AtomicU64::new(0);
            self.storage.crash_when(move |op| {
                op.kind == OpKind::Write
                    && op.path.extension().is_some_and(|e| e == "log")
                    && seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == k
            });
        }
    }

    fn log(&self) -> &Log {
        self.log.as_ref().expect("the log is open between steps")
    }

    /// The length of every segment file of the topic, as the storage holds them now.
    fn segment_files(&self) -> BTreeMap<PathBuf, u64> {
        let mut out = BTreeMap::new();
        for p in 0..PARTITIONS {
            let dir = self.dir.join(TOPIC).join(p.to_string());
            for e in self.storage.read_dir(&dir).unwrap_or_default() {
                if e.name.ends_with(".log") {
                    let path = dir.join(&e.name);
                    let len = self.storage.file_len(&path).unwrap_or(0);
                    out.insert(path, len);
                }
            }
        }
        out
    }

    fn crash_and_recover(&mut self) -> Result<(), String> {
        self.crashes += 1;
        self.trace
            .push(format!("crash (after {} storage ops)", self.storage.ops()));
        self.storage.crash();
        self.txn = None;
        self.kafka_txn = None;
        self.idempotent = None;
        self.log = None;
        self.storage = self.storage.reboot();
        let before = self.segment_files();
        self.open()?;
        let after = self.segment_files();
        self.check(Some((&before, &after)))
    }

    fn clean_restart(&mut self) -> Result<(), String> {
        self.trace.push("clean restart".into());
        self.txn = None;
        self.kafka_txn = None;
        self.idempotent = None;
        let closed = self.log().close();
        self.log = None;
        if closed.is_err() || self.storage.is_crashed() {
            // A close that failed (a fault) leaves what a crash would.
            return self.crash_and_recover();
        }
        self.open()?;
        self.check(None)
    }

    fn step(&mut self) -> Result<(), String> {
        match self.rng.u8(0..24) {
            0..=7 => self.plain_append(),
            8..=11 => self.idempotent_append(),
            12..=14 => self.transaction(),
            15..=17 => self.kafka_transaction(),
            18 => self.offset_commit(),
            19 => self.kafka_transaction_times_out()?,
            20 => self.clean_restart()?,
            21 => self
                .clock
                .advance(self.rng.i64(0..2 * KAFKA_TXN_TIMEOUT_MS)),
            _ => self.storage.crash(),
        }
        if self.storage.is_crashed() {
            self.crash_and_recover()?;
            self.faults_on();
        }
        Ok(())
    }

    fn batch(&mut self, kind: &str, n: usize, options: BatchOptions) -> (Vec<u8>, Vec<String>) {
        let mut b = BatchBuilder::new(options);
        let values: Vec<String> = (0..n)
            .map(|_| {
                let pad = self.rng.usize(0..400);
                self.model.value(kind, pad)
            })
            .collect();
        for v in &values {
            b.push(self.clock.now_ms(), None, Some(v.as_bytes()), &[]);
        }
        (b.finish(0), values)
    }

    fn plain_append(&mut self) {
        let p = self.rng.i32(0..PARTITIONS);
        let acks = [Acks::None, Acks::Leader, Acks::All][self.rng.usize(0..3)];
        let n = self.rng.usize(1..4);
        let (batch, values) = self.batch("v", n, BatchOptions::default());
        if let Ok(info) = self.log().append(TOPIC, p, batch, acks)
            && acks == Acks::All
        {
            for (i, v) in values.into_iter().enumerate() {
                self.model.acked.insert((p, info.base_offset + i as i64), v);
            }
        }
    }

    fn idempotent_append(&mut self) {
        if self.idempotent.is_none() {
            let Ok((producer_id, epoch)) = self.log().init_producer_id() else {
                return;
            };
            self.idempotent = Some(Idempotent {
                producer_id,
                epoch,
                sequences: vec![0; PARTITIONS as usize],
            });
        }
        let p = self.rng.i32(0..PARTITIONS);
        let n = self.rng.usize(1..4);
        let Some(id) = &self.idempotent else { return };
        let options = BatchOptions {
            producer_id: id.producer_id,
            producer_epoch: id.epoch,
            base_sequence: id.sequences[p as usize],
            ..BatchOptions::default()
        };
        let (batch, values) = self.batch("i", n, options);
        self.model.idempotent_sent.extend(values.iter().cloned());
        // A failure is retried once with the very same batch, as a producer would: if the
        // first attempt reached the log, the retry must be found a duplicate.
        let acked = self
            .log()
            .append(TOPIC, p, batch.clone(), Acks::All)
            .or_else(|_| self.log().append(TOPIC, p, batch, Acks::All));
        match acked {
            Ok(_) => {
                self.model.idempotent_acked.extend(values);
                if let Some(id) = &mut self.idempotent {
                    id.sequences[p as usize] += n as i32;
                }
            }
            // Where the batch stands is unknown: a new producer id starts clean.
            Err(_) => self.idempotent = None,
        }
    }

    fn transaction(&mut self) {
        if self.txn.is_none() {
            match TransactionalProducer::new(self.log(), TransactionalConfig::new("sim")) {
                Ok(t) => self.txn = Some(t),
                Err(_) => return,
            }
        }
        let n = self.rng.usize(1..5);
        let commit = self.rng.u8(0..10) < 7;
        let sends: Vec<(i32, String)> = (0..n)
            .map(|_| {
                let pad = self.rng.usize(0..400);
                (self.rng.i32(0..PARTITIONS), self.model.value("x", pad))
            })
            .collect();
        let values: Vec<String> = sends.iter().map(|(_, v)| v.clone()).collect();
        let Some(t) = &mut self.txn else { return };
        let mut written = t.begin();
        for (p, v) in &sends {
            written = written
                .and_then(|()| t.send(ProducerRecord::new(TOPIC, v.as_bytes()).partition(*p)));
        }
        let outcome = match &written {
            Ok(()) if commit => t.commit().map(|()| true),
            _ => t.abort().map(|()| false),
        };
        let short = |v: &String| v.split('-').next().unwrap_or_default().to_string();
        self.trace.push(format!(
            "transaction {:?} to partitions {:?}: written {:?}, {} {:?}",
            values.iter().map(short).collect::<Vec<_>>(),
            sends.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            written.as_ref().err().map(|e| e.to_string()),
            if commit { "commit" } else { "abort" },
            outcome.as_ref().map_err(|e| e.to_string())
        ));
        match outcome {
            Ok(true) => self.model.committed.push(values),
            Ok(false) => self.model.aborted.push(values),
            Err(_) => {
                self.model.undecided.push(values);
                // A producer whose transaction is stuck is replaced; the next one fences it.
                self.txn = None;
            }
        }
    }

    /// A transaction as a Kafka client runs it: AddPartitionsToTxn, one idempotent
    /// transactional batch per record (a failed one retried once, as a client would), EndTxn.
    /// After any failure it aborts; after a failed end it is replaced (the next init fences it).
    fn kafka_transaction(&mut self) {
        const TXN_ID: &str = KAFKA_TXN_ID;
        if !self.init_kafka_txn() {
            return;
        }
        let n = self.rng.usize(1..5);
        let mut commit = self.rng.u8(0..10) < 7;
        let sends: Vec<(i32, String, Acks)> = (0..n)
            .map(|_| {
                let pad = self.rng.usize(0..400);
                let acks = [Acks::None, Acks::Leader, Acks::All][self.rng.usize(0..3)];
                (
                    self.rng.i32(0..PARTITIONS),
                    self.model.value("k", pad),
                    acks,
                )
            })
            .collect();
        let values: Vec<String> = sends.iter().map(|(_, v, _)| v.clone()).collect();
        let Some(k) = &self.kafka_txn else { return };
        let (producer_id, epoch) = (k.producer_id, k.epoch);
        let mut sequences = k.sequences.clone();
        let partitions: Vec<TopicPartition> = sends
            .iter()
            .map(|(p, _, _)| TopicPartition::new(TOPIC, *p))
            .collect();
        let mut failure = self
            .log()
            .add_partitions_to_txn(TXN_ID, producer_id, epoch, &partitions)
            .err()
            .map(|e| format!("add partitions: {e}"));
        for (p, v, acks) in &sends {
            if failure.is_some() {
                break;
            }
            let mut b = BatchBuilder::new(BatchOptions {
                producer_id,
                producer_epoch: epoch,
                base_sequence: sequences[*p as usize],
                transactional: true,
                ..BatchOptions::default()
            });
            b.push(self.clock.now_ms(), None, Some(v.as_bytes()), &[]);
            let batch = b.finish(0);
            let appended = self
                .log()
                .append(TOPIC, *p, batch.clone(), *acks)
                .or_else(|_| self.log().append(TOPIC, *p, batch, *acks));
            match appended {
                Ok(_) => sequences[*p as usize] += 1,
                Err(e) => failure = Some(format!("append: {e}")),
            }
        }
        // Half of them commit the group's offsets with the records, as a consume-transform-
        // produce loop does.
        let offsets: Vec<(TopicPartition, i64)> = if failure.is_none() && self.rng.bool() {
            (0..self.rng.i32(1..=PARTITIONS))
                .map(|p| (TopicPartition::new(TOPIC, p), self.next_offset()))
                .collect()
        } else {
            Vec::new()
        };
        if !offsets.is_empty() {
            failure = self
                .log()
                .add_offsets_to_txn(TXN_ID, producer_id, epoch, GROUP)
                .and_then(|()| {
                    self.log()
                        .txn_offset_commit(TXN_ID, producer_id, epoch, GROUP, None, &offsets)
                })
                .err()
                .map(|e| format!("offsets: {e}"));
        }
        if failure.is_some() {
            commit = false;
        }
        let outcome = self
            .log()
            .end_txn(TXN_ID, producer_id, epoch, commit)
            .map(|()| commit);
        let offsets_outcome = match &outcome {
            Ok(true) => Outcome::Done,
            Ok(false) => Outcome::Dropped,
            Err(_) => Outcome::Undecided,
        };
        for (tp, offset) in &offsets {
            self.model
                .offset_commits
                .entry(tp.partition())
                .or_default()
                .push(OffsetCommit {
                    offset: *offset,
                    outcome: offsets_outcome,
                    txn: Some(values.clone()),
                });
        }
        let short = |v: &String| v.split('-').next().unwrap_or_default().to_string();
        self.trace.push(format!(
            "kafka transaction {:?} to partitions {:?} at epoch {epoch}, offsets {:?}: {:?}, {} {:?}",
            values.iter().map(short).collect::<Vec<_>>(),
            sends.iter().map(|(p, _, _)| *p).collect::<Vec<_>>(),
            offsets.iter().map(|(tp, o)| (tp.partition(), *o)).collect::<Vec<_>>(),
            failure,
            if commit { "commit" } else { "abort" },
            outcome.as_ref().map_err(|e| e.to_string())
        ));
        match outcome {
            Ok(true) => self.model.committed.push(values),
            Ok(false) => self.model.aborted.push(values),
            Err(_) => {
                self.model.undecided.push(values);
                self.kafka_txn = None;
                return;
            }
        }
        if let Some(k) = &mut self.kafka_txn {
            k.sequences = sequences;
        }
    }

    /// Gets the Kafka client's transactional producer id, unless it has one; false when the
    /// coordinator refused (a fault).
    fn init_kafka_txn(&mut self) -> bool {
        if self.kafka_txn.is_some() {
            return true;
        }
        let Ok((producer_id, epoch)) =
            self.log()
                .init_transactional_id(KAFKA_TXN_ID, KAFKA_TXN_TIMEOUT_MS, None)
        else {
            return false;
        };
        self.kafka_txn = Some(KafkaTxn {
            producer_id,
            epoch,
            sequences: vec![0; PARTITIONS as usize],
        });
        true
    }

    /// An offset never committed before in this run.
    fn next_offset(&mut self) -> i64 {
        self.model.next_value += 1;
        self.model.next_value as i64
    }

    /// The group's offsets committed outside any transaction (a manual commit: no member).
    fn offset_commit(&mut self) {
        let offsets: Vec<(TopicPartition, i64)> = (0..self.rng.i32(1..=PARTITIONS))
            .map(|_| {
                let p = self.rng.i32(0..PARTITIONS);
                (TopicPartition::new(TOPIC, p), self.next_offset())
            })
            .collect();
        let outcome = match self.log().commit_offsets(GROUP, None, &offsets) {
            Ok(()) => Outcome::Done,
            Err(_) => Outcome::Undecided,
        };
        self.trace.push(format!(
            "offset commit {:?}: {outcome:?}",
            offsets
                .iter()
                .map(|(tp, o)| (tp.partition(), *o))
                .collect::<Vec<_>>()
        ));
        for (tp, offset) in offsets {
            self.model
                .offset_commits
                .entry(tp.partition())
                .or_default()
                .push(OffsetCommit {
                    offset,
                    outcome,
                    txn: None,
                });
        }
    }

    /// A Kafka client's transaction that writes a record and then goes quiet past its timeout:
    /// the coordinator's check aborts it, after which the producer cannot commit it.
    fn kafka_transaction_times_out(&mut self) -> Result<(), String> {
        if !self.init_kafka_txn() {
            return Ok(());
        }
        let Some(k) = self.kafka_txn.take() else {
            return Ok(());
        };
        let p = self.rng.i32(0..PARTITIONS);
        let value = self.model.value("t", self.rng.usize(0..400));
        let mut b = BatchBuilder::new(BatchOptions {
            producer_id: k.producer_id,
            producer_epoch: k.epoch,
            base_sequence: k.sequences[p as usize],
            transactional: true,
            ..BatchOptions::default()
        });
        b.push(self.clock.now_ms(), None, Some(value.as_bytes()), &[]);
        let written = self
            .log()
            .add_partitions_to_txn(
                KAFKA_TXN_ID,
                k.producer_id,
                k.epoch,
                &[TopicPartition::new(TOPIC, p)],
            )
            .and_then(|()| self.log().append(TOPIC, p, b.finish(0), Acks::Leader));
        self.clock.advance(KAFKA_TXN_TIMEOUT_MS + 1);
        let expired = self.log().abort_expired_transactions();
        let late_commit = self
            .log()
            .end_txn(KAFKA_TXN_ID, k.producer_id, k.epoch, true);
        self.trace.push(format!(
            "kafka transaction [{}] to partition {p} at epoch {} left to time out: written {:?}, expired {:?}, late commit {:?}",
            value.split('-').next().unwrap_or_default(),
            k.epoch,
            written.as_ref().err().map(|e| e.to_string()),
            expired.as_ref().map_err(|e| e.to_string()),
            late_commit.as_ref().err().map(|e| e.to_string()),
        ));
        match (&written, &expired) {
            (Ok(_), Ok(0)) => {
                return Err(format!(
                    "a transaction open past its timeout ({KAFKA_TXN_TIMEOUT_MS} ms) was not aborted"
                ));
            }
            (Ok(_), Ok(_)) if late_commit.is_ok() => {
                return Err(
                    "a transaction the coordinator aborted for its timeout was committed by its producer"
                        .into(),
                );
            }
            (Ok(_), Ok(_)) => self.model.aborted.push(vec![value]),
            _ => self.model.undecided.push(vec![value]),
        }
        Ok(())
    }

    /// The group's committed offsets against the commits made: the last one done, or a later
    /// one whose outcome is unknown; an undecided transaction's offsets go with its records.
    fn check_offsets(&self, visible: &HashSet<String>, recovered: bool) -> Result<(), String> {
        let log = self.log();
        for p in 0..PARTITIONS {
            let tp = TopicPartition::new(TOPIC, p);
            if recovered && log.offset_commit_pending(GROUP, &tp) {
                return Err(format!(
                    "partition {p}: an offset commit is still pending after recovery"
                ));
            }
            let actual = log
                .committed_offset(GROUP, TOPIC, p)
                .map_err(|e| format!("committed offset of partition {p}: {e}"))?;
            let commits = self
                .model
                .offset_commits
                .get(&p)
                .cloned()
                .unwrap_or_default();
            let decided = |c: &OffsetCommit| match (&c.txn, c.outcome) {
                (Some(values), Outcome::Undecided) => {
                    if visible.contains(&values[0]) {
                        Outcome::Done
                    } else {
                        Outcome::Dropped
                    }
                }
                (_, outcome) => outcome,
            };
            let last_done = commits.iter().rposition(|c| decided(c) == Outcome::Done);
            let mut allowed: Vec<Option<i64>> = match last_done {
                Some(i) => vec![Some(commits[i].offset)],
                None => vec![None],
            };
            let later = last_done.map_or(0, |i| i + 1);
            allowed.extend(
                commits[later..]
                    .iter()
                    .filter(|c| decided(c) == Outcome::Undecided)
                    .map(|c| Some(c.offset)),
            );
            if !allowed.contains(&actual) {
                let lost = last_done.is_some_and(|i| commits[i].txn.is_none());
                return Err(format!(
                    "{}partition {p}: the group's committed offset is {actual:?}, expected one of {allowed:?} (commits {:?})",
                    if lost {
                        "lost acknowledged write: "
                    } else {
                        ""
                    },
                    commits
                        .iter()
                        .map(|c| (c.offset, decided(c)))
                        .collect::<Vec<_>>()
                ));
            }
        }
        Ok(())
    }

    /// Holds the reopened log to every invariant. `sizes`: the segment files and their lengths
    /// before and after the reopen that followed a crash.
    fn check(&self, sizes: Option<(&Files, &Files)>) -> Result<(), String> {
        let log = self.log();
        let mut all: HashMap<String, usize> = HashMap::new();
        for p in 0..PARTITIONS {
            let (start, end) = log
                .offsets(TOPIC, p)
                .map_err(|e| format!("offsets of partition {p}: {e}"))?;
            let mut at: BTreeMap<i64, String> = BTreeMap::new();
            let mut expected = start;
            while expected < end {
                let batches = log
                    .fetch(TOPIC, p, expected, 1 << 20)
                    .map_err(|e| format!("reading partition {p} at {expected}: {e}"))?;
                if batches.is_empty() {
                    return Err(format!(
                        "partition {p}: nothing to read at {expected}, its end is {end}"
                    ));
                }
                for b in &batches {
                    let h = b.header();
                    if h.base_offset != expected {
                        return Err(format!(
                            "partition {p}: offsets not dense: a batch starts at {}, expected {expected}",
                            h.base_offset
                        ));
                    }
                    b.verify_crc()
                        .map_err(|e| format!("partition {p}: a batch fails its CRC: {e}"))?;
                    expected = h.last_offset() + 1;
                    if h.is_control() {
                        continue;
                    }
                    for r in b.records(1 << 20).map_err(|e| e.to_string())? {
                        let r = r.map_err(|e| e.to_string())?;
                        let v =
                            String::from_utf8_lossy(r.value.as_deref().unwrap_or(&[])).into_owned();
                        *all.entry(v.clone()).or_default() += 1;
                        at.insert(r.offset, v);
                    }
                }
            }
            for ((_, offset), v) in self.model.acked.range((p, i64::MIN)..=(p, i64::MAX)) {
                if at.get(offset) != Some(v) {
                    return Err(format!(
                        "lost acknowledged write: partition {p} offset {offset} should hold {v} (acks=all), holds {:?}",
                        at.get(offset)
                    ));
                }
            }
            let d = log
                .describe_topic(TOPIC)
                .map_err(|e| format!("describe: {e}"))?;
            let part = &d.partitions[p as usize];
            if sizes.is_some() && part.last_stable_offset != part.high_watermark {
                return Err(format!(
                    "partition {p}: a transaction is still open after recovery (LSO {} < end {})",
                    part.last_stable_offset, part.high_watermark
                ));
            }
        }
        for v in &self.model.idempotent_sent {
            let n = all.get(v).copied().unwrap_or(0);
            if n > 1 {
                return Err(format!("idempotent record {v} is in the log {n} times"));
            }
            if n == 0 && self.model.idempotent_acked.contains(v) {
                return Err(format!(
                    "lost acknowledged write: idempotent record {v} (acks=all)"
                ));
            }
        }
        let visible = self.read_committed()?;
        if std::env::var("WEIR_SIM_SEED").is_ok() {
            self.print_state();
        }
        self.check_offsets(&visible, sizes.is_some())?;
        let shown = |values: &[String]| values.iter().filter(|v| visible.contains(*v)).count();
        for t in &self.model.committed {
            if shown(t) != t.len() {
                return Err(format!(
                    "a committed transaction shows {} of its {} records at read_committed: {t:?}",
                    shown(t),
                    t.len()
                ));
            }
        }
        for t in &self.model.aborted {
            if shown(t) != 0 {
                return Err(format!(
                    "an aborted transaction shows {} records at read_committed: {t:?}",
                    shown(t)
                ));
            }
        }
        for t in &self.model.undecided {
            let n = shown(t);
            if n != 0 && n != t.len() {
                return Err(format!(
                    "a torn transaction: {n} of its {} records show at read_committed: {t:?}",
                    t.len()
                ));
            }
        }
        if let Some((before, after)) = sizes {
            // Recovery may append (it aborts the transactions the crash left open), never cut
            // without saying so: a segment cut short or removed has a report entry that
            // accounts for every byte it held.
            let report = log.recovery_report();
            for (path, &len) in before {
                let cuts: Vec<_> = report.iter().filter(|t| &t.segment == path).collect();
                let kept = after.get(path).copied();
                if cuts.is_empty() {
                    if kept.is_none_or(|k| k < len) {
                        return Err(format!(
                            "recovery cut {} from {len} to {kept:?} bytes without a report: {report:?}",
                            path.display()
                        ));
                    }
                } else if !cuts.iter().any(|t| t.position + t.bytes_removed == len) {
                    return Err(format!(
                        "the report of {} does not account for its {len} bytes: {cuts:?}",
                        path.display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// For a replayed seed: what the reopened log holds (the recovery report, the
    /// transactions, and every batch of each partition, with the start of its first value).
    fn print_state(&self) {
        let log = self.log();
        eprintln!("recovery report: {:#?}", log.recovery_report());
        eprintln!("transactions: {:#?}", log.transactions());
        for p in 0..PARTITIONS {
            let Ok((mut pos, end)) = log.offsets(TOPIC, p) else {
                continue;
            };
            eprintln!("partition {p}: offsets {pos}..{end}");
            while pos < end {
                let Ok(batches) = log.fetch(TOPIC, p, pos, 1 << 20) else {
                    break;
                };
                if batches.is_empty() {
                    break;
                }
                for b in &batches {
                    let h = b.header();
                    pos = h.last_offset() + 1;
                    let first = b.records(1 << 20).ok().and_then(|mut r| r.next()?.ok());
                    let value = first
                        .and_then(|r| r.value)
                        .map(|v| String::from_utf8_lossy(&v[..v.len().min(6)]).into_owned());
                    eprintln!(
                        "  {}..={} producer {} epoch {} transactional {} control {} {value:?}",
                        h.base_offset,
                        h.last_offset(),
                        h.producer_id,
                        h.producer_epoch,
                        h.is_transactional(),
                        h.is_control(),
                    );
                }
            }
        }
    }

    /// Every value a read_committed reader gets.
    fn read_committed(&self) -> Result<HashSet<String>, String> {
        let log = self.log();
        let mut out = HashSet::new();
        for p in 0..PARTITIONS {
            let mut pos = log.offsets(TOPIC, p).map_err(|e| e.to_string())?.0;
            let mut aborted = Vec::new();
            loop {
                let f = log
                    .fetch_isolated(TOPIC, p, pos, 1 << 20, IsolationLevel::ReadCommitted)
                    .map_err(|e| format!("read_committed fetch of partition {p}: {e}"))?;
                if f.batches.is_empty() {
                    break;
                }
                aborted.extend(f.aborted);
                for b in &f.batches {
                    let h = b.header();
                    pos = pos.max(h.last_offset() + 1);
                    let skipped = h.is_transactional()
                        && aborted.iter().any(|a| {
                            a.producer_id == h.producer_id
                                && a.first_offset <= h.base_offset
                                && h.base_offset <= a.last_offset
                        });
                    if h.is_control() || skipped {
                        continue;
                    }
                    for r in b.records(1 << 20).map_err(|e| e.to_string())? {
                        let r = r.map_err(|e| e.to_string())?;
                        out.insert(
                            String::from_utf8_lossy(r.value.as_deref().unwrap_or(&[])).into_owned(),
                        );
                    }
                }
            }
        }
        Ok(out)
    }
}

/// One seed's run; the first broken invariant, if any.
fn run_seed(seed: u64, lie_about_segment_fsync: bool) -> Result<usize, String> {
    let mut run = Run::new(seed, lie_about_segment_fsync);
    let outcome = (|| {
        run.open()?;
        run.faults_on();
        for _ in 0..STEPS_PER_SEED {
            run.step()?;
            run.clock.advance(1);
        }
        // The end is a crash too: whatever was acknowledged must be there after it.
        run.crash_and_recover()
    })();
    match outcome {
        Ok(()) => Ok(run.crashes),
        // Alone (a replay), the whole story; otherwise its end.
        Err(why) => {
            let alone = std::env::var("WEIR_SIM_SEED").is_ok();
            let from = if alone {
                0
            } else {
                run.trace.len().saturating_sub(4)
            };
            Err(format!(
                "{why}\n    after: {}",
                run.trace[from..].join("\n           ")
            ))
        }
    }
}

/// Runs `seed`, turning a panic inside the log into a failure of that seed.
fn run_seed_caught(seed: u64, lie: bool) -> Result<usize, String> {
    std::panic::catch_unwind(|| run_seed(seed, lie)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("panicked: {why}"))
    })
}

/// The seeds to run: `WEIR_SIM_SEED=S` alone, `WEIR_SIM_SEEDS=N` (0..N) or `A..B`, else
/// `0..default`.
pub(crate) fn seeds(default: u64) -> std::ops::Range<u64> {
    if let Some(seed) = std::env::var("WEIR_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return seed..seed + 1;
    }
    let Ok(spec) = std::env::var("WEIR_SIM_SEEDS") else {
        return 0..default;
    };
    let parse = |s: &str| {
        s.trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("WEIR_SIM_SEEDS={spec}: expected N or A..B"))
    };
    match spec.split_once("..") {
        Some((a, b)) => parse(a)..parse(b),
        None => 0..parse(&spec),
    }
}

fn replay_command(seed: u64) -> String {
    format!("WEIR_SIM_SEED={seed} cargo test -p weir-log --test integration simulation::")
}

#[test]
fn every_seed_keeps_the_logs_promises_through_faults_and_crashes() {
    let mut failures = Vec::new();
    let mut crashes = 0;
    for seed in seeds(SEEDS_DEFAULT) {
        match run_seed_caught(seed, false) {
            Ok(n) => crashes += n,
            Err(why) => {
                eprintln!(
                    "simulation seed {seed} failed: {why}\n  replay: {}",
                    replay_command(seed)
                );
                failures.push(seed);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "seeds {failures:?} broke an invariant (see above); replay one with {}",
        replay_command(failures[0])
    );
    assert!(crashes > 0, "the runs crashed the storage");
}

/// The checker is only worth its invariants if it catches a broken one: with a disk that
/// acknowledges segment fsyncs without making anything durable, acknowledged writes are lost
/// at the first crash, and the simulation must say so.
#[test]
fn a_disk_that_lies_about_fsync_is_caught_losing_acknowledged_writes() {
    let caught = (0..20u64).find_map(|seed| run_seed_caught(seed, true).err().map(|e| (seed, e)));
    let (seed, why) = caught.expect("some seed loses an acknowledged write");
    assert!(
        why.starts_with("lost acknowledged write"),
        "seed {seed} failed for another reason: {why}"
    );
}
