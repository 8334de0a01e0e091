//! Transactions as Kafka clients drive them (transaction version 1): InitProducerId with a
//! transactional id, AddPartitionsToTxn, idempotent transactional batches, AddOffsetsToTxn,
//! TxnOffsetCommit and EndTxn, the epoch kept across transactions; fencing, KIP-360 recovery
//! after a timeout, and crashes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use weir_log::format::{BatchBuilder, BatchOptions};
use weir_log::storage::Storage;
use weir_log::storage::sim::{FaultConfig, FaultStorage, OpKind};
use weir_log::txn::{TxnDescription, TxnStatus};
use weir_log::{
    AbortedTxn, Acks, Consumer, ConsumerConfig, Error, GroupErrorKind, IsolationLevel, Log,
    LogConfig, LogOptions, ManualClock, Result, TopicConfig, TopicPartition, TxnErrorKind,
};

fn topic(log: &Log, name: &str, partitions: i32) {
    log.create_topic(
        name,
        TopicConfig {
            partitions,
            ..TopicConfig::default()
        },
    )
    .unwrap();
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

/// A transactional batch of `values` as a Kafka client builds it.
fn txn_batch(producer_id: i64, epoch: i16, sequence: i32, values: &[&str]) -> Vec<u8> {
    let mut b = BatchBuilder::new(BatchOptions {
        producer_id,
        producer_epoch: epoch,
        base_sequence: sequence,
        transactional: true,
        ..BatchOptions::default()
    });
    for v in values {
        b.push(1, None, Some(v.as_bytes()), &[]);
    }
    b.finish(0)
}

/// The kind of a transaction refusal, or a description of what came instead.
fn kind<T: std::fmt::Debug>(r: Result<T>) -> TxnErrorKind {
    match r {
        Err(Error::Txn { kind, .. }) => kind,
        other => panic!("expected a transaction refusal, got {other:?}"),
    }
}

/// Every value visible in `topic` at `isolation`, per partition, in offset order.
fn read(log: &Log, topic: &str, isolation: IsolationLevel) -> Vec<Vec<String>> {
    let n = log.partition_count(topic).unwrap();
    let mut c = Consumer::new(
        log,
        ConsumerConfig {
            isolation,
            ..ConsumerConfig::default()
        },
    )
    .unwrap();
    c.assign_topic(topic).unwrap();
    c.seek_to_beginning().unwrap();
    let mut out = vec![Vec::new(); n as usize];
    loop {
        let batches = c.poll(Duration::from_millis(20)).unwrap();
        if batches.is_empty() {
            break;
        }
        for b in batches {
            for r in b.records() {
                let r = r.unwrap();
                out[b.partition as usize]
                    .push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
            }
        }
    }
    out
}

fn strings(parts: &[&[&str]]) -> Vec<Vec<String>> {
    parts
        .iter()
        .map(|p| p.iter().map(|s| s.to_string()).collect())
        .collect()
}

fn describe(log: &Log, txn_id: &str) -> TxnDescription {
    log.transactions()
        .into_iter()
        .find(|t| t.transactional_id == txn_id)
        .unwrap()
}

/// (last stable offset, high watermark) of a partition.
fn lso_hw(log: &Log, topic: &str, partition: i32) -> (i64, i64) {
    let d = log.describe_topic(topic).unwrap();
    let p = &d.partitions[partition as usize];
    (p.last_stable_offset, p.high_watermark)
}

#[test]
fn the_epoch_stays_across_transactions_and_sequences_continue_after_a_marker() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    topic(&log, "out", 2);
    let (pid, epoch) = log.init_transactional_id("k1", 60_000, None).unwrap();
    // First transaction: both partitions, committed.
    log.add_partitions_to_txn("k1", pid, epoch, &[tp("out", 0), tp("out", 1)])
        .unwrap();
    let first = log
        .append(
            "out",
            0,
            txn_batch(pid, epoch, 0, &["c0", "c1"]),
            Acks::Leader,
        )
        .unwrap();
    log.append("out", 1, txn_batch(pid, epoch, 0, &["c2"]), Acks::Leader)
        .unwrap();
    assert_eq!(
        lso_hw(&log, "out", 0),
        (0, 2),
        "the open transaction holds the LSO"
    );
    // A retried batch is answered with the original batch's offsets and not written again.
    let retry = log
        .append(
            "out",
            0,
            txn_batch(pid, epoch, 0, &["c0", "c1"]),
            Acks::Leader,
        )
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(
        (retry.base_offset, retry.last_offset),
        (first.base_offset, first.last_offset)
    );
    assert_eq!(lso_hw(&log, "out", 0), (0, 2));
    log.end_txn("k1", pid, epoch, true).unwrap();
    let d = describe(&log, "k1");
    assert_eq!(
        (d.producer_id, d.epoch, d.status),
        (pid, epoch, TxnStatus::CompleteCommit)
    );
    assert_eq!(lso_hw(&log, "out", 0), (3, 3), "data and the marker");
    // A retried EndTxn succeeds; the other decision does not fit.
    log.end_txn("k1", pid, epoch, true).unwrap();
    assert_eq!(
        kind(log.end_txn("k1", pid, epoch, false)),
        TxnErrorKind::InvalidTxnState
    );
    // Without AddPartitionsToTxn, the next transaction's batch is refused.
    assert_eq!(
        kind(log.append("out", 0, txn_batch(pid, epoch, 2, &["x"]), Acks::Leader)),
        TxnErrorKind::InvalidTxnState
    );
    // Second transaction: the same epoch, the sequences go on from the first; aborted.
    log.add_partitions_to_txn("k1", pid, epoch, &[tp("out", 0)])
        .unwrap();
    let second = log
        .append("out", 0, txn_batch(pid, epoch, 2, &["a0"]), Acks::Leader)
        .unwrap();
    assert!(matches!(
        log.append("out", 0, txn_batch(pid, epoch, 9, &["gap"]), Acks::Leader),
        Err(Error::OutOfOrderSequence {
            expected: 3,
            got: 9,
            ..
        })
    ));
    log.append("out", 0, txn_batch(pid, epoch, 3, &["a1"]), Acks::Leader)
        .unwrap();
    assert_eq!(lso_hw(&log, "out", 0), (second.base_offset, 5));
    log.end_txn("k1", pid, epoch, false).unwrap();
    let d = describe(&log, "k1");
    assert_eq!(
        (d.producer_id, d.epoch, d.status),
        (pid, epoch, TxnStatus::CompleteAbort)
    );
    assert_eq!(lso_hw(&log, "out", 0), (6, 6));
    assert_eq!(lso_hw(&log, "out", 1), (2, 2));
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        strings(&[&["c0", "c1"], &["c2"]])
    );
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadUncommitted),
        strings(&[&["c0", "c1", "a0", "a1"], &["c2"]])
    );
    let fetched = log
        .fetch_isolated("out", 0, 0, 1 << 20, IsolationLevel::ReadCommitted)
        .unwrap();
    assert_eq!(
        fetched.aborted,
        vec![AbortedTxn {
            producer_id: pid,
            first_offset: second.base_offset,
            last_offset: 5,
        }]
    );
    // Ending with no transaction open: a retried abort succeeds, a commit does not fit.
    log.end_txn("k1", pid, epoch, false).unwrap();
    assert_eq!(
        kind(log.end_txn("k1", pid, epoch, true)),
        TxnErrorKind::InvalidTxnState
    );
    // The same holds after a restart.
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(describe(&log, "k1").epoch, epoch);
    log.add_partitions_to_txn("k1", pid, epoch, &[tp("out", 1)])
        .unwrap();
    log.append("out", 1, txn_batch(pid, epoch, 1, &["c3"]), Acks::Leader)
        .unwrap();
    log.end_txn("k1", pid, epoch, true).unwrap();
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        strings(&[&["c0", "c1"], &["c2", "c3"]])
    );
}

#[test]
fn a_new_instance_fences_the_old_and_aborts_its_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    topic(&log, "out", 2);
    let (pid, old) = log.init_transactional_id("z", 60_000, None).unwrap();
    log.add_partitions_to_txn("z", pid, old, &[tp("out", 0)])
        .unwrap();
    log.append("out", 0, txn_batch(pid, old, 0, &["zombie"]), Acks::Leader)
        .unwrap();
    // A batch to a partition the transaction did not add is refused, and nothing is written.
    assert_eq!(
        kind(log.append("out", 1, txn_batch(pid, old, 0, &["sneaky"]), Acks::Leader)),
        TxnErrorKind::InvalidTxnState
    );
    assert_eq!(log.offsets("out", 1).unwrap().1, 0);
    let (pid2, new) = log.init_transactional_id("z", 60_000, None).unwrap();
    assert_eq!(pid2, pid);
    assert!(new > old);
    // The old instance: its batches are refused for their epoch, its calls as fenced.
    assert_eq!(
        kind(log.append("out", 0, txn_batch(pid, old, 1, &["late"]), Acks::Leader)),
        TxnErrorKind::InvalidProducerEpoch
    );
    assert_eq!(
        kind(log.add_partitions_to_txn("z", pid, old, &[tp("out", 1)])),
        TxnErrorKind::ProducerFenced
    );
    assert_eq!(
        kind(log.add_offsets_to_txn("z", pid, old, "g")),
        TxnErrorKind::ProducerFenced
    );
    assert_eq!(
        kind(log.txn_offset_commit("z", pid, old, "g", None, &[(tp("out", 0), 1)])),
        TxnErrorKind::ProducerFenced
    );
    assert_eq!(
        kind(log.end_txn("z", pid, old, true)),
        TxnErrorKind::ProducerFenced
    );
    // Its open transaction was aborted.
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        vec![Vec::<String>::new(); 2]
    );
    let (lso, hw) = lso_hw(&log, "out", 0);
    assert_eq!(lso, hw);
    // The new instance writes from sequence 0 of its epoch.
    log.add_partitions_to_txn("z", pid, new, &[tp("out", 0)])
        .unwrap();
    log.append("out", 0, txn_batch(pid, new, 0, &["new"]), Acks::Leader)
        .unwrap();
    log.end_txn("z", pid, new, true).unwrap();
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        strings(&[&["new"], &[]])
    );
}

#[test]
fn refusals_name_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    topic(&log, "out", 1);
    assert_eq!(
        kind(log.init_transactional_id("t", 0, None)),
        TxnErrorKind::InvalidTransactionTimeout
    );
    assert_eq!(
        kind(log.init_transactional_id("t", i64::MAX, None)),
        TxnErrorKind::InvalidTransactionTimeout
    );
    assert!(matches!(
        log.init_transactional_id("", 1_000, None),
        Err(Error::Config { .. })
    ));
    // An unknown transactional id, or a producer id not its own.
    assert_eq!(
        kind(log.end_txn("nobody", 1, 0, true)),
        TxnErrorKind::InvalidProducerIdMapping
    );
    let (pid, epoch) = log.init_transactional_id("t", 1_000, None).unwrap();
    assert_eq!(
        kind(log.add_partitions_to_txn("t", pid + 1, epoch, &[tp("out", 0)])),
        TxnErrorKind::InvalidProducerIdMapping
    );
    // Ending before anything was added.
    assert_eq!(
        kind(log.end_txn("t", pid, epoch, true)),
        TxnErrorKind::InvalidTxnState
    );
    // An unknown partition registers nothing.
    assert!(matches!(
        log.add_partitions_to_txn("t", pid, epoch, &[tp("out", 0), tp("out", 5)]),
        Err(Error::UnknownPartition { partition: 5, .. })
    ));
    assert_eq!(describe(&log, "t").status, TxnStatus::Empty);
    assert!(matches!(
        log.add_partitions_to_txn("t", pid, epoch, &[tp("nope", 0)]),
        Err(Error::UnknownTopic(_))
    ));
    // A transactional batch of a producer id no transactional id holds.
    assert_eq!(
        kind(log.append("out", 0, txn_batch(pid + 100, 0, 0, &["x"]), Acks::Leader)),
        TxnErrorKind::InvalidProducerIdMapping
    );
    // An idempotent batch of a producer the partition does not know, past sequence 0.
    let mut b = BatchBuilder::new(BatchOptions {
        producer_id: pid + 200,
        producer_epoch: 0,
        base_sequence: 5,
        ..BatchOptions::default()
    });
    b.push(1, None, Some(b"v"), &[]);
    assert!(matches!(
        log.append("out", 0, b.finish(0), Acks::Leader),
        Err(Error::UnknownProducer(p)) if p == pid + 200
    ));
}

#[test]
fn kip_360_a_client_recovers_its_producer_after_a_timeout_abort() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let log = Log::open_with(
        dir.path(),
        LogConfig {
            // The test aborts, not the timer.
            txn_check_interval_ms: 3_600_000,
            ..LogConfig::default()
        },
        LogOptions {
            clock: clock.clone(),
            ..LogOptions::default()
        },
    )
    .unwrap();
    topic(&log, "out", 1);
    let (pid, epoch) = log.init_transactional_id("slow", 1_000, None).unwrap();
    log.add_partitions_to_txn("slow", pid, epoch, &[tp("out", 0)])
        .unwrap();
    log.append(
        "out",
        0,
        txn_batch(pid, epoch, 0, &["timed-out"]),
        Acks::Leader,
    )
    .unwrap();
    clock.advance(1_000);
    assert_eq!(log.abort_expired_transactions().unwrap(), 0, "not yet past");
    clock.advance(1);
    assert_eq!(log.abort_expired_transactions().unwrap(), 1);
    assert_eq!(describe(&log, "slow").status, TxnStatus::CompleteAbort);
    // The producer learns of the abort from its epoch (checked before the transaction's state,
    // KAFKA-19690), and may not end the transaction.
    assert_eq!(
        kind(log.append("out", 0, txn_batch(pid, epoch, 1, &["late"]), Acks::Leader)),
        TxnErrorKind::InvalidProducerEpoch
    );
    assert_eq!(
        kind(log.end_txn("slow", pid, epoch, false)),
        TxnErrorKind::ProducerFenced
    );
    // KIP-360: the client names the (producer id, epoch) it holds; others are fenced.
    assert_eq!(
        kind(log.init_transactional_id("slow", 1_000, Some((pid, epoch + 5)))),
        TxnErrorKind::ProducerFenced
    );
    assert_eq!(
        kind(log.init_transactional_id("slow", 1_000, Some((pid + 1, epoch)))),
        TxnErrorKind::ProducerFenced
    );
    let (pid_b, epoch_b) = log
        .init_transactional_id("slow", 1_000, Some((pid, epoch)))
        .unwrap();
    assert_eq!(pid_b, pid);
    assert!(epoch_b > epoch);
    // A retry of that call (its answer lost) gets the same.
    assert_eq!(
        log.init_transactional_id("slow", 1_000, Some((pid, epoch)))
            .unwrap(),
        (pid_b, epoch_b)
    );
    // The new epoch writes from sequence 0.
    log.add_partitions_to_txn("slow", pid, epoch_b, &[tp("out", 0)])
        .unwrap();
    log.append(
        "out",
        0,
        txn_batch(pid, epoch_b, 0, &["after"]),
        Acks::Leader,
    )
    .unwrap();
    log.end_txn("slow", pid, epoch_b, true).unwrap();
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        strings(&[&["after"]])
    );
    // Naming the current epoch bumps it; the epoch before the timeout is no longer accepted.
    let (_, epoch_c) = log
        .init_transactional_id("slow", 1_000, Some((pid, epoch_b)))
        .unwrap();
    assert_eq!(epoch_c, epoch_b + 1);
    assert_eq!(
        kind(log.init_transactional_id("slow", 1_000, Some((pid, epoch)))),
        TxnErrorKind::ProducerFenced
    );
    // Naming the current epoch with a transaction open aborts it; a retry gets the same.
    log.add_partitions_to_txn("slow", pid, epoch_c, &[tp("out", 0)])
        .unwrap();
    log.append(
        "out",
        0,
        txn_batch(pid, epoch_c, 0, &["dropped"]),
        Acks::Leader,
    )
    .unwrap();
    let bumped = log
        .init_transactional_id("slow", 1_000, Some((pid, epoch_c)))
        .unwrap();
    assert!(bumped.1 > epoch_c);
    assert_eq!(
        log.init_transactional_id("slow", 1_000, Some((pid, epoch_c)))
            .unwrap(),
        bumped
    );
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        strings(&[&["after"]])
    );
    let epoch_c = bumped.1;
    // `(-1, -1)` is a client without a producer id: a plain init, which fences the rest.
    let (_, epoch_d) = log
        .init_transactional_id("slow", 1_000, Some((-1, -1)))
        .unwrap();
    assert_eq!(epoch_d, epoch_c + 1);
    assert_eq!(
        kind(log.init_transactional_id("slow", 1_000, Some((pid, epoch_c)))),
        TxnErrorKind::ProducerFenced
    );
}

#[test]
fn offsets_committed_in_a_kafka_transaction_are_pending_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    topic(&log, "in", 2);
    topic(&log, "out", 1);
    let mut consumer = Consumer::new(
        &log,
        ConsumerConfig {
            group: Some("g".into()),
            heartbeat_interval_ms: 10,
            ..ConsumerConfig::default()
        },
    )
    .unwrap();
    consumer.subscribe(&["in"]).unwrap();
    consumer.poll(Duration::from_millis(200)).unwrap();
    let gm = consumer.group_metadata().unwrap();
    let member_id = gm.member_id.clone().unwrap();
    let member = Some((member_id.as_str(), gm.generation));
    let (pid, epoch) = log.init_transactional_id("copier", 60_000, None).unwrap();
    log.add_partitions_to_txn("copier", pid, epoch, &[tp("out", 0)])
        .unwrap();
    // TxnOffsetCommit needs AddOffsetsToTxn first.
    assert_eq!(
        kind(log.txn_offset_commit("copier", pid, epoch, "g", member, &[(tp("in", 0), 5)])),
        TxnErrorKind::InvalidTxnState
    );
    log.add_offsets_to_txn("copier", pid, epoch, "g").unwrap();
    // A stale generation is refused (KIP-447).
    let stale = Some((member_id.as_str(), gm.generation - 1));
    assert!(matches!(
        log.txn_offset_commit("copier", pid, epoch, "g", stale, &[(tp("in", 0), 5)]),
        Err(Error::Group {
            reason: GroupErrorKind::IllegalGeneration { .. },
            ..
        })
    ));
    assert!(!log.offset_commit_pending("g", &tp("in", 0)));
    log.txn_offset_commit("copier", pid, epoch, "g", member, &[(tp("in", 0), 5)])
        .unwrap();
    log.append(
        "out",
        0,
        txn_batch(pid, epoch, 0, &["copied"]),
        Acks::Leader,
    )
    .unwrap();
    assert!(log.offset_commit_pending("g", &tp("in", 0)));
    assert!(!log.offset_commit_pending("g", &tp("in", 1)));
    assert!(!log.offset_commit_pending("other", &tp("in", 0)));
    assert_eq!(log.committed_offset("g", "in", 0).unwrap(), None);
    log.end_txn("copier", pid, epoch, true).unwrap();
    assert!(!log.offset_commit_pending("g", &tp("in", 0)));
    assert_eq!(log.committed_offset("g", "in", 0).unwrap(), Some(5));
    // Aborted: dropped. Without group metadata (TxnOffsetCommit before v3) the commit is
    // accepted although the group has members, as Kafka accepts it.
    log.add_offsets_to_txn("copier", pid, epoch, "g").unwrap();
    log.txn_offset_commit("copier", pid, epoch, "g", None, &[(tp("in", 0), 9)])
        .unwrap();
    // `("", -1)` is what a client outside a group sends: the same as no group metadata.
    log.txn_offset_commit(
        "copier",
        pid,
        epoch,
        "g",
        Some(("", -1)),
        &[(tp("in", 0), 10)],
    )
    .unwrap();
    assert!(log.offset_commit_pending("g", &tp("in", 0)));
    log.end_txn("copier", pid, epoch, false).unwrap();
    assert!(!log.offset_commit_pending("g", &tp("in", 0)));
    assert_eq!(log.committed_offset("g", "in", 0).unwrap(), Some(5));
    // A fenced instance's commit is refused and leaves nothing pending.
    log.add_offsets_to_txn("copier", pid, epoch, "g").unwrap();
    let (_, fencing) = log.init_transactional_id("copier", 60_000, None).unwrap();
    assert_eq!(
        kind(log.txn_offset_commit("copier", pid, epoch, "g", None, &[(tp("in", 1), 3)])),
        TxnErrorKind::ProducerFenced
    );
    assert!(!log.offset_commit_pending("g", &tp("in", 1)));
    assert!(fencing > epoch);
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        strings(&[&["copied"]])
    );
    drop(consumer);
}

// ---- Crashes ----

const SIM_ROOT: &str = "/weir-sim";

fn options_on(storage: &FaultStorage) -> LogOptions {
    LogOptions {
        storage: Arc::new(storage.clone()),
        ..LogOptions::default()
    }
}

/// True for the bytes of a control batch (a transaction marker): attributes bit 5.
fn is_control_batch(bytes: &[u8]) -> bool {
    bytes.len() > 22 && i16::from_be_bytes([bytes[21], bytes[22]]) & 0x20 != 0
}

#[test]
fn a_kafka_transaction_survives_a_crash_after_its_decision_and_the_next_one_is_untouched() {
    let storage = FaultStorage::new(SIM_ROOT, 12, FaultConfig::default());
    let dir = PathBuf::from(SIM_ROOT).join("data");
    let log = Log::open_with(&dir, LogConfig::default(), options_on(&storage)).unwrap();
    topic(&log, "out", 2);
    let (pid, epoch) = log.init_transactional_id("kc", 60_000, None).unwrap();
    log.add_partitions_to_txn("kc", pid, epoch, &[tp("out", 0), tp("out", 1)])
        .unwrap();
    // acks=1: nothing fsyncs the data before the end does, with the decision.
    log.append(
        "out",
        0,
        txn_batch(pid, epoch, 0, &["c0", "c1"]),
        Acks::Leader,
    )
    .unwrap();
    log.append("out", 1, txn_batch(pid, epoch, 0, &["c2"]), Acks::Leader)
        .unwrap();
    // The machine crashes once the decision is durable, at the first marker.
    let out_dir = dir.join("out");
    storage.crash_when(move |op| {
        op.kind == OpKind::Write && op.path.starts_with(&out_dir) && is_control_batch(op.bytes)
    });
    assert!(log.end_txn("kc", pid, epoch, true).is_err());
    assert!(storage.is_crashed(), "the crash point was reached");
    drop(log);
    let storage = storage.reboot();
    let log = Log::open_with(&dir, LogConfig::default(), options_on(&storage)).unwrap();
    let d = describe(&log, "kc");
    assert_eq!(
        (d.producer_id, d.epoch, d.status),
        (pid, epoch, TxnStatus::CompleteCommit)
    );
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        strings(&[&["c0", "c1"], &["c2"]])
    );
    // The client, which got no answer, retries its EndTxn: success.
    log.end_txn("kc", pid, epoch, true).unwrap();

    // A second transaction of the same epoch commits; a third, of the same epoch again, is
    // open with durable data when the machine crashes, right after the second's end (its
    // Complete record written but not fsynced, for all the second's end waited for). Recovery
    // must abort the third, not commit it with the second's markers written again: the third's
    // opening record was fsynced (and the second's Complete with it) before its data could be
    // written, so the second's Prepare is not the last durable word on "kc".
    log.add_partitions_to_txn("kc", pid, epoch, &[tp("out", 0)])
        .unwrap();
    log.append(
        "out",
        0,
        txn_batch(pid, epoch, 2, &["second"]),
        Acks::Leader,
    )
    .unwrap();
    log.end_txn("kc", pid, epoch, true).unwrap();
    log.add_partitions_to_txn("kc", pid, epoch, &[tp("out", 0), tp("out", 1)])
        .unwrap();
    log.append("out", 0, txn_batch(pid, epoch, 3, &["third"]), Acks::All)
        .unwrap();
    log.append("out", 1, txn_batch(pid, epoch, 1, &["third-1"]), Acks::All)
        .unwrap();
    storage.crash();
    drop(log);
    let storage = storage.reboot();
    let log = Log::open_with(&dir, LogConfig::default(), options_on(&storage)).unwrap();
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        strings(&[&["c0", "c1", "second"], &["c2"]])
    );
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadUncommitted),
        strings(&[&["c0", "c1", "second", "third"], &["c2", "third-1"]])
    );
    for p in 0..2 {
        let (lso, hw) = lso_hw(&log, "out", p);
        assert_eq!(lso, hw, "partition {p}: nothing left open");
    }
    // Recovery aborted the third by fencing its epoch; the client recovers with KIP-360.
    let d = describe(&log, "kc");
    assert_eq!(d.status, TxnStatus::CompleteAbort);
    assert!(d.epoch > epoch);
    assert_eq!(
        kind(log.append("out", 0, txn_batch(pid, epoch, 4, &["late"]), Acks::Leader)),
        TxnErrorKind::InvalidProducerEpoch
    );
    let (_, next) = log
        .init_transactional_id("kc", 60_000, Some((pid, epoch)))
        .unwrap();
    log.add_partitions_to_txn("kc", pid, next, &[tp("out", 1)])
        .unwrap();
    log.append("out", 1, txn_batch(pid, next, 0, &["fourth"]), Acks::Leader)
        .unwrap();
    log.end_txn("kc", pid, next, true).unwrap();
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        strings(&[&["c0", "c1", "second"], &["c2", "fourth"]])
    );
}

#[test]
fn a_kafka_transaction_ended_before_the_process_died_is_complete_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (pid, epoch) = {
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        topic(&log, "out", 1);
        let (pid, epoch) = log.init_transactional_id("p", 60_000, None).unwrap();
        log.add_partitions_to_txn("p", pid, epoch, &[tp("out", 0)])
            .unwrap();
        log.append("out", 0, txn_batch(pid, epoch, 0, &["kept"]), Acks::None)
            .unwrap();
        log.end_txn("p", pid, epoch, true).unwrap();
        log.add_partitions_to_txn("p", pid, epoch, &[tp("out", 0)])
            .unwrap();
        log.append("out", 0, txn_batch(pid, epoch, 1, &["open"]), Acks::None)
            .unwrap();
        // The process dies: no close.
        (pid, epoch)
    };
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        strings(&[&["kept"]])
    );
    let (lso, hw) = lso_hw(&log, "out", 0);
    assert_eq!(lso, hw);
    assert_eq!(describe(&log, "p").status, TxnStatus::CompleteAbort);
    assert_eq!(
        kind(log.end_txn("p", pid, epoch, true)),
        TxnErrorKind::ProducerFenced
    );
}

#[test]
fn a_batch_racing_the_end_of_its_transaction_is_in_it_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    topic(&log, "out", 1);
    let (pid, epoch) = log.init_transactional_id("race", 60_000, None).unwrap();
    let mut sequence = 0;
    for round in 0..40 {
        log.add_partitions_to_txn("race", pid, epoch, &[tp("out", 0)])
            .unwrap();
        let (_, hw_before) = lso_hw(&log, "out", 0);
        let writer = {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut sequence = sequence;
                loop {
                    match log.append(
                        "out",
                        0,
                        txn_batch(pid, epoch, sequence, &["r"]),
                        Acks::Leader,
                    ) {
                        Ok(_) => sequence += 1,
                        Err(Error::Txn {
                            kind: TxnErrorKind::InvalidTxnState,
                            ..
                        }) => return sequence,
                        Err(e) => panic!("round {round}: {e}"),
                    }
                }
            })
        };
        // End while the writer is at it.
        while log.offsets("out", 0).unwrap().1 == hw_before {
            std::thread::yield_now();
        }
        log.end_txn("race", pid, epoch, round % 2 == 0).unwrap();
        sequence = writer.join().unwrap();
        let (lso, hw) = lso_hw(&log, "out", 0);
        assert_eq!(
            lso, hw,
            "round {round}: no batch slipped in after the markers"
        );
    }
}

#[test]
fn an_abort_marker_whose_index_entry_fails_still_ends_its_transaction_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    topic(&log, "out", 1);
    let (pid, epoch) = log.init_transactional_id("ix", 60_000, None).unwrap();
    log.add_partitions_to_txn("ix", pid, epoch, &[tp("out", 0)])
        .unwrap();
    log.append(
        "out",
        0,
        txn_batch(pid, epoch, 0, &["aborted"]),
        Acks::Leader,
    )
    .unwrap();
    // The aborted-transactions file cannot be written (a directory stands in its way).
    let index = dir.path().join("out").join("0").join("aborted-txns");
    std::fs::create_dir(&index).unwrap();
    assert!(log.end_txn("ix", pid, epoch, false).is_err());
    // The marker is in the log: the next batch comes after it, and readers skip the aborted
    // record.
    let mut b = BatchBuilder::new(BatchOptions::default());
    b.push(1, None, Some(b"plain"), &[]);
    let plain = log.append("out", 0, b.finish(0), Acks::Leader).unwrap();
    assert_eq!(plain.base_offset, 2);
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        strings(&[&["plain"]])
    );
    // Once the file can be written, the retried end completes, and the file is whole again
    // before a clean close vouches for it.
    std::fs::remove_dir(&index).unwrap();
    log.end_txn("ix", pid, epoch, false).unwrap();
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        strings(&[&["plain"]])
    );
}

#[test]
fn recovery_markers_of_one_transaction_never_stand_in_for_anothers_lost_data() {
    let storage = FaultStorage::new(SIM_ROOT, 13, FaultConfig::default());
    let dir = PathBuf::from(SIM_ROOT).join("data");
    let log = Log::open_with(&dir, LogConfig::default(), options_on(&storage)).unwrap();
    topic(&log, "out", 2);
    // "open" registered partition 0 and wrote nothing: recovery aborts it with a marker there.
    let (a, a_epoch) = log.init_transactional_id("open", 60_000, None).unwrap();
    log.add_partitions_to_txn("open", a, a_epoch, &[tp("out", 0)])
        .unwrap();
    // "prepared" wrote one record to each partition and decided to commit.
    let (b, b_epoch) = log.init_transactional_id("prepared", 60_000, None).unwrap();
    log.add_partitions_to_txn("prepared", b, b_epoch, &[tp("out", 0), tp("out", 1)])
        .unwrap();
    log.append("out", 0, txn_batch(b, b_epoch, 0, &["b0"]), Acks::Leader)
        .unwrap();
    log.append("out", 1, txn_batch(b, b_epoch, 0, &["b1"]), Acks::Leader)
        .unwrap();
    let out_dir = dir.join("out");
    storage.crash_when(move |op| {
        op.kind == OpKind::Write && op.path.starts_with(&out_dir) && is_control_batch(op.bytes)
    });
    assert!(log.end_txn("prepared", b, b_epoch, true).is_err());
    assert!(storage.is_crashed());
    drop(log);
    let storage = storage.reboot();
    // As an OS crash might: partition 0 lost its record, the decision survived. "open"'s
    // recovery marker takes the lost record's offset; "prepared" must still see the loss.
    let seg = dir.join("out").join("0").join("00000000000000000000.log");
    storage
        .open(&seg, weir_log::storage::OpenHow::ReadWrite)
        .unwrap()
        .set_len(0)
        .unwrap();
    let log = Log::open_with(&dir, LogConfig::default(), options_on(&storage)).unwrap();
    assert_eq!(describe(&log, "prepared").status, TxnStatus::CompleteAbort);
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        vec![Vec::<String>::new(); 2],
        "never part of a transaction"
    );
}

#[test]
fn a_registration_that_failed_to_be_durable_registers_nothing() {
    let storage = FaultStorage::new(SIM_ROOT, 14, FaultConfig::default());
    let dir = PathBuf::from(SIM_ROOT).join("data");
    let log = Log::open_with(&dir, LogConfig::default(), options_on(&storage)).unwrap();
    topic(&log, "out", 1);
    let (pid, epoch) = log.init_transactional_id("r", 60_000, None).unwrap();
    storage.set_faults(FaultConfig {
        fsync_fail_per_mille: 1000,
        ..FaultConfig::default()
    });
    assert!(
        log.add_partitions_to_txn("r", pid, epoch, &[tp("out", 0)])
            .is_err()
    );
    storage.set_faults(FaultConfig::default());
    assert_eq!(describe(&log, "r").status, TxnStatus::Empty);
    assert_eq!(
        kind(log.append("out", 0, txn_batch(pid, epoch, 0, &["early"]), Acks::Leader)),
        TxnErrorKind::InvalidTxnState
    );
    // The retry registers it, durably, and the transaction goes on.
    log.add_partitions_to_txn("r", pid, epoch, &[tp("out", 0)])
        .unwrap();
    log.append("out", 0, txn_batch(pid, epoch, 0, &["v"]), Acks::Leader)
        .unwrap();
    log.end_txn("r", pid, epoch, true).unwrap();
    assert_eq!(
        read(&log, "out", IsolationLevel::ReadCommitted),
        strings(&[&["v"]])
    );
}

/// Kafka's rule for a group's offsets: a transaction's offset commit, made visible when the
/// transaction commits, does not replace a commit written after it (found by the simulation:
/// a plain commit made while a transaction with an offset for the same partition was open was
/// undone when the transaction's commit was completed, and again after a restart).
#[test]
fn a_plain_commit_made_while_a_transaction_holds_an_offset_wins_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    topic(&log, "in", 2);
    let (pid, epoch) = log.init_transactional_id("copier", 60_000, None).unwrap();
    log.add_offsets_to_txn("copier", pid, epoch, "g").unwrap();
    log.txn_offset_commit(
        "copier",
        pid,
        epoch,
        "g",
        None,
        &[(tp("in", 0), 10), (tp("in", 1), 11)],
    )
    .unwrap();
    // Written after the transaction's offsets: it must stand.
    log.commit_offsets("g", None, &[(tp("in", 0), 20)]).unwrap();
    log.end_txn("copier", pid, epoch, true).unwrap();
    assert_eq!(log.committed_offset("g", "in", 0).unwrap(), Some(20));
    assert_eq!(log.committed_offset("g", "in", 1).unwrap(), Some(11));
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.committed_offset("g", "in", 0).unwrap(), Some(20));
    assert_eq!(log.committed_offset("g", "in", 1).unwrap(), Some(11));
}
