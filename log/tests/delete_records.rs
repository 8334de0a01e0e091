//! DeleteRecords (`Log::delete_records`): the log start offset it sets, exactly; fetches below it
//! refused; the start kept through a clean restart, an unclean one and a crash at every storage
//! operation (the old start or the new, never another); read-only handles; retention beside
//! it; transactions open across it; a damaged checkpoint.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use weir_log::format::{BatchBuilder, BatchOptions};
use weir_log::storage::Storage;
use weir_log::storage::sim::{FaultConfig, FaultStorage};
use weir_log::{
    Acks, Consumer, ConsumerConfig, Error, IsolationLevel, Log, LogConfig, LogOptions, ManualClock,
    TopicPartition, clean_once,
};

use crate::common::{open, read_all, small_segments};

const TOPIC: &str = "dr";
/// Records per appended batch: a start inside a batch shows that the batch stays whole.
const BATCH_RECORDS: usize = 5;
const NOW: i64 = 1_700_000_000_000;

/// Appends `batches` batches of [`BATCH_RECORDS`] records (values `"v<offset>"`) to partition 0.
fn fill(log: &Log, batches: usize) {
    for _ in 0..batches {
        let (_, hw) = log.offsets(TOPIC, 0).unwrap();
        let mut b = BatchBuilder::new(BatchOptions::default());
        for i in 0..BATCH_RECORDS as i64 {
            let v = format!("v{}{}", hw + i, "x".repeat(100));
            b.push(NOW, None, Some(v.as_bytes()), &[]);
        }
        log.append(TOPIC, 0, b.finish(0), Acks::All).unwrap();
    }
}

/// A log with a topic of two partitions, 4 KiB segments, partition 0 holding 100 records in
/// 20 batches (several segments).
fn filled(dir: &Path) -> Log {
    let log = open(dir);
    log.create_topic(TOPIC, small_segments(2, 4096)).unwrap();
    fill(&log, 20);
    log
}

fn start_and_end(log: &Log) -> (i64, i64) {
    log.offsets(TOPIC, 0).unwrap()
}

fn out_of_range(r: weir_log::Result<impl std::fmt::Debug>) -> (i64, i64, i64) {
    match r {
        Err(Error::OffsetOutOfRange {
            offset, start, end, ..
        }) => (offset, start, end),
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
}

#[test]
fn the_start_moves_exactly_and_fetches_below_it_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    let segments_before = log.describe_topic(TOPIC).unwrap().partitions[0].segments;
    assert!(segments_before >= 4, "{segments_before} segments");

    // Inside a batch (35..=39) of a segment that stays whole.
    assert_eq!(log.delete_records(TOPIC, 0, 37).unwrap(), 37);
    assert_eq!(start_and_end(&log), (37, 100));
    let d = log.describe_topic(TOPIC).unwrap();
    assert_eq!(d.partitions[0].log_start_offset, 37);
    assert_eq!(
        d.partitions[1].log_start_offset, 0,
        "the other partition is untouched"
    );
    assert!(d.partitions[0].segments < segments_before);
    assert_eq!(
        out_of_range(log.fetch(TOPIC, 0, 36, 1 << 20)),
        (36, 37, 100)
    );
    assert_eq!(out_of_range(log.fetch(TOPIC, 0, 0, 1 << 20)), (0, 37, 100));
    let batches = log.fetch(TOPIC, 0, 37, 1 << 20).unwrap();
    assert_eq!(
        batches[0].header().base_offset,
        35,
        "the batch holding the start comes whole"
    );
    let records = read_all(&log, TOPIC, 0, 37).unwrap();
    assert_eq!(records.first().map(|r| r.offset), Some(37));
    assert_eq!(records.len(), 63);
    assert_eq!(log.offset_for_timestamp(TOPIC, 0, 0).unwrap(), Some(37));

    // At or below the start: nothing changes.
    assert_eq!(log.delete_records(TOPIC, 0, 37).unwrap(), 37);
    assert_eq!(log.delete_records(TOPIC, 0, 10).unwrap(), 37);
    assert_eq!(log.delete_records(TOPIC, 0, 0).unwrap(), 37);
    // Past the high watermark, or below -1: refused, the start as it was.
    assert_eq!(
        out_of_range(log.delete_records(TOPIC, 0, 101)),
        (101, 37, 100)
    );
    assert_eq!(
        out_of_range(log.delete_records(TOPIC, 0, -2)),
        (-2, 37, 100)
    );
    assert!(matches!(
        log.delete_records(TOPIC, 2, 1),
        Err(Error::UnknownPartition { .. })
    ));
    assert!(matches!(
        log.delete_records("nope", 0, 1),
        Err(Error::UnknownTopic(_))
    ));
    assert_eq!(start_and_end(&log), (37, 100));

    // Retention beside it: the start stays where DeleteRecords put it.
    clean_once(&log, NOW).unwrap();
    assert_eq!(start_and_end(&log), (37, 100));

    // -1: the high watermark. Everything is gone; the next append follows on.
    assert_eq!(log.delete_records(TOPIC, 0, -1).unwrap(), 100);
    assert_eq!(start_and_end(&log), (100, 100));
    assert!(log.fetch(TOPIC, 0, 100, 1 << 20).unwrap().is_empty());
    assert_eq!(log.describe_topic(TOPIC).unwrap().partitions[0].segments, 1);
    assert_eq!(log.offset_for_timestamp(TOPIC, 0, 0).unwrap(), None);
    fill(&log, 1);
    assert_eq!(start_and_end(&log), (100, 105));
    let records = read_all(&log, TOPIC, 0, 100).unwrap();
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (100..105).collect::<Vec<_>>()
    );
    log.close().unwrap();
}

#[test]
fn the_start_survives_clean_and_unclean_restarts_and_read_only_handles_see_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    let follower = Log::open_read_only(dir.path()).unwrap();
    assert_eq!(follower.offsets(TOPIC, 0).unwrap(), (0, 100));
    assert_eq!(log.delete_records(TOPIC, 0, 42).unwrap(), 42);
    // A follower opened before sees it on its next look, and refuses fetches below it.
    assert_eq!(follower.offsets(TOPIC, 0).unwrap(), (42, 100));
    assert_eq!(
        out_of_range(follower.fetch(TOPIC, 0, 41, 1 << 20)),
        (41, 42, 100)
    );
    let fresh = Log::open_read_only(dir.path()).unwrap();
    assert_eq!(fresh.offsets(TOPIC, 0).unwrap(), (42, 100));
    assert_eq!(
        fresh.describe_topic(TOPIC).unwrap().partitions[0].log_start_offset,
        42
    );
    assert!(matches!(
        fresh.delete_records(TOPIC, 0, 50),
        Err(Error::ReadOnly(_))
    ));
    drop((follower, fresh));

    log.close().unwrap();
    let log = open(dir.path());
    assert_eq!(start_and_end(&log), (42, 100));
    assert_eq!(log.delete_records(TOPIC, 0, 60).unwrap(), 60);
    // An unclean stop: no close.
    drop(log);
    let log = open(dir.path());
    assert!(
        log.recovery_report().is_empty(),
        "{:?}",
        log.recovery_report()
    );
    assert_eq!(start_and_end(&log), (60, 100));
    assert_eq!(read_all(&log, TOPIC, 0, 60).unwrap().len(), 40);
    log.close().unwrap();
}

#[test]
fn a_damaged_checkpoint_is_a_corruption_error_not_a_panic_nor_a_silent_reset() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    log.delete_records(TOPIC, 0, 12).unwrap();
    log.close().unwrap();
    let checkpoint = dir.path().join(TOPIC).join("0").join("log-start-offset");
    let mut bytes = std::fs::read(&checkpoint).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&checkpoint, &bytes).unwrap();
    // After a clean stop, partitions open on first use.
    let log = open(dir.path());
    let err = log.offsets(TOPIC, 0).unwrap_err();
    assert!(
        matches!(err, Error::Corrupt { .. }) && err.to_string().contains("log-start-offset"),
        "{err}"
    );
    assert_eq!(
        log.offsets(TOPIC, 1).unwrap(),
        (0, 0),
        "other partitions work"
    );
    drop(log);
    // After an unclean one, every partition opens at once: the open fails, and says why.
    let err = Log::open(dir.path(), LogConfig::default()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    // Removing it, as the message says, brings the partition back from its first segment.
    std::fs::remove_file(&checkpoint).unwrap();
    let log = open(dir.path());
    let (start, end) = start_and_end(&log);
    assert!(start <= 12 && end == 100, "{start}..{end}");
}

/// The log on a fault-injecting storage at `dir` (under `root`), the clock fixed.
fn open_on(storage: &FaultStorage, dir: &Path) -> weir_log::Result<Log> {
    let config = LogConfig {
        cleaner_interval_ms: 3_600_000,
        txn_check_interval_ms: 3_600_000,
        ..LogConfig::default()
    };
    Log::open_with(
        dir,
        config,
        LogOptions {
            storage: Arc::new(storage.clone()),
            clock: Arc::new(ManualClock::new(NOW)),
        },
    )
}

#[test]
fn a_crash_at_any_storage_operation_keeps_the_old_start_or_the_new_one() {
    const ROOT: &str = "/sim";
    let dir = Path::new(ROOT).join("data");
    let mut crash_points = 0;
    for k in 1.. {
        let storage = FaultStorage::new(ROOT, k, FaultConfig::default());
        let log = open_on(&storage, &dir).unwrap();
        log.create_topic(TOPIC, small_segments(1, 4096)).unwrap();
        fill(&log, 20);
        assert_eq!(log.delete_records(TOPIC, 0, 23).unwrap(), 23);
        // The k-th storage operation of the next DeleteRecords crashes.
        storage.crash_at_op(storage.ops() + k);
        let deleted = log.delete_records(TOPIC, 0, 71);
        let crashed = storage.is_crashed();
        drop(log);
        let storage = storage.reboot();
        let log = open_on(&storage, &dir).unwrap();
        let (start, end) = start_and_end(&log);
        assert_eq!(
            end, 100,
            "crash at operation {k}: acknowledged records lost"
        );
        if crashed {
            assert!(
                start == 23 || start == 71,
                "crash at operation {k}: start {start}, neither the old nor the new"
            );
        } else {
            assert_eq!(deleted.unwrap(), 71);
            assert_eq!(start, 71);
        }
        let records = read_all(&log, TOPIC, 0, start).unwrap();
        assert_eq!(
            records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            (start..100).collect::<Vec<_>>(),
            "crash at operation {k}"
        );
        log.close().unwrap();
        if !crashed {
            break;
        }
        crash_points += 1;
    }
    assert!(
        crash_points >= 3,
        "only {crash_points} operations to crash at"
    );
}

/// A process killed between any two storage operations of a segment deletion (the page cache
/// keeps everything it did): the log reopens, with each segment whole or gone. Unlinking the log
/// file before its index used to leave an index without its log, which the next open refused as a
/// lost segment.
#[test]
fn a_process_killed_amid_a_segment_deletion_reopens_with_the_segment_whole_or_gone() {
    const ROOT: &str = "/sim";
    let dir = Path::new(ROOT).join("data");
    let mut kill_points = 0;
    for k in 1.. {
        let storage = FaultStorage::new(ROOT, k, FaultConfig::default());
        let log = open_on(&storage, &dir).unwrap();
        log.create_topic(TOPIC, small_segments(1, 4096)).unwrap();
        fill(&log, 20);
        storage.crash_at_op(storage.ops() + k);
        let deleted = log.delete_records(TOPIC, 0, 71);
        let killed = storage.is_crashed();
        drop(log);
        let storage = storage.after_kill();
        let log = open_on(&storage, &dir)
            .unwrap_or_else(|e| panic!("killed at operation {k}: the log does not reopen: {e}"));
        assert!(
            log.recovery_report().is_empty(),
            "killed at operation {k}: {:?}",
            log.recovery_report()
        );
        let (start, end) = start_and_end(&log);
        assert_eq!(end, 100, "killed at operation {k}");
        if !killed {
            assert_eq!(deleted.unwrap(), 71);
        }
        let records = read_all(&log, TOPIC, 0, start).unwrap();
        assert_eq!(
            records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            (start..100).collect::<Vec<_>>(),
            "killed at operation {k}"
        );
        // Nothing of a deleted segment is left once the log is open.
        let pdir = dir.join(TOPIC).join("0");
        let names: Vec<String> = storage
            .read_dir(&pdir)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(
            !names.iter().any(|n| n.ends_with(".deleted")),
            "killed at operation {k}: {names:?}"
        );
        log.close().unwrap();
        if !killed {
            break;
        }
        kill_points += 1;
    }
    assert!(kill_points >= 4, "only {kill_points} operations to kill at");
}

#[test]
fn a_start_past_what_a_crash_kept_starts_the_partition_over_there() {
    const ROOT: &str = "/sim";
    let dir = Path::new(ROOT).join("data");
    let storage = FaultStorage::new(ROOT, 7, FaultConfig::default());
    let log = open_on(&storage, &dir).unwrap();
    log.create_topic(TOPIC, small_segments(1, 1 << 20)).unwrap();
    fill(&log, 4);
    // Appended, not yet fsynced; DeleteRecords to the end makes the start durable.
    let mut b = BatchBuilder::new(BatchOptions::default());
    b.push(NOW, None, Some(b"unsynced"), &[]);
    log.append(TOPIC, 0, b.finish(0), Acks::Leader).unwrap();
    assert_eq!(log.delete_records(TOPIC, 0, -1).unwrap(), 21);
    storage.crash();
    drop(log);
    let storage = storage.reboot();
    let log = open_on(&storage, &dir).unwrap();
    assert_eq!(start_and_end(&log), (21, 21));
    fill(&log, 1);
    assert_eq!(start_and_end(&log), (21, 26));
    assert_eq!(read_all(&log, TOPIC, 0, 21).unwrap().len(), 5);
    assert!(storage.is_file(&dir.join(TOPIC).join("0").join("log-start-offset")));
    log.close().unwrap();
}

fn txn_batch(producer_id: i64, epoch: i16, sequence: i32, values: &[&str]) -> Vec<u8> {
    let mut b = BatchBuilder::new(BatchOptions {
        producer_id,
        producer_epoch: epoch,
        base_sequence: sequence,
        transactional: true,
        ..BatchOptions::default()
    });
    for v in values {
        b.push(NOW, None, Some(v.as_bytes()), &[]);
    }
    b.finish(0)
}

fn plain_batch(values: &[&str]) -> Vec<u8> {
    let mut b = BatchBuilder::new(BatchOptions::default());
    for v in values {
        b.push(NOW, None, Some(v.as_bytes()), &[]);
    }
    b.finish(0)
}

/// Every value of partition 0 a consumer at `isolation` reads from the beginning.
fn values(log: &Log, isolation: IsolationLevel) -> Vec<String> {
    let mut c = Consumer::new(
        log,
        ConsumerConfig {
            isolation,
            ..ConsumerConfig::default()
        },
    )
    .unwrap();
    c.assign(&[TopicPartition::new(TOPIC, 0)]).unwrap();
    c.seek_to_beginning().unwrap();
    let mut out = Vec::new();
    loop {
        let batches = c.poll(Duration::from_millis(50)).unwrap();
        if batches.is_empty() {
            return out;
        }
        for b in batches {
            for r in b.records() {
                out.push(String::from_utf8(r.unwrap().value.unwrap().to_vec()).unwrap());
            }
        }
    }
}

#[test]
fn a_start_inside_an_open_transaction_holds_the_lso_there_and_aborted_records_stay_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(TOPIC, small_segments(1, 1 << 20)).unwrap();
    log.append(TOPIC, 0, plain_batch(&["a0", "a1"]), Acks::Leader)
        .unwrap();
    let (pid, epoch) = log.init_transactional_id("t", 60_000, None).unwrap();
    log.add_partitions_to_txn("t", pid, epoch, &[TopicPartition::new(TOPIC, 0)])
        .unwrap();
    // The transaction starts at 2 and writes 2..=3 and 6..=7; plain records 4..=5 between.
    log.append(
        TOPIC,
        0,
        txn_batch(pid, epoch, 0, &["t2", "t3"]),
        Acks::Leader,
    )
    .unwrap();
    log.append(TOPIC, 0, plain_batch(&["p4", "p5"]), Acks::Leader)
        .unwrap();
    log.append(
        TOPIC,
        0,
        txn_batch(pid, epoch, 2, &["t6", "t7"]),
        Acks::Leader,
    )
    .unwrap();
    let lso = |log: &Log| log.describe_topic(TOPIC).unwrap().partitions[0].last_stable_offset;
    assert_eq!(lso(&log), 2);

    assert_eq!(log.delete_records(TOPIC, 0, 5).unwrap(), 5);
    assert_eq!(lso(&log), 5, "the LSO is never below the start");
    let f = log
        .fetch_isolated(TOPIC, 0, 5, 1 << 20, IsolationLevel::ReadCommitted)
        .unwrap();
    assert!(f.batches.is_empty(), "nothing stable past the start yet");
    assert_eq!(f.last_stable_offset, 5);
    assert_eq!(
        values(&log, IsolationLevel::ReadCommitted),
        Vec::<String>::new()
    );
    assert_eq!(
        values(&log, IsolationLevel::ReadUncommitted),
        ["p5", "t6", "t7"],
        "from the batch holding the start, the record below it skipped"
    );

    log.end_txn("t", pid, epoch, false).unwrap();
    log.append(TOPIC, 0, plain_batch(&["a9"]), Acks::Leader)
        .unwrap();
    assert_eq!(lso(&log), 10);
    assert_eq!(values(&log, IsolationLevel::ReadCommitted), ["p5", "a9"]);
    // The same after an unclean restart, which rebuilds the transaction state from the log
    // (and may write the abort's marker again: the coordinator completes it anew).
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.offsets(TOPIC, 0).unwrap().0, 5);
    assert_eq!(values(&log, IsolationLevel::ReadCommitted), ["p5", "a9"]);
    log.close().unwrap();
}
