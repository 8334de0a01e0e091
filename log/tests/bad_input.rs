//! Bad input gets a clear, typed error; idempotent producers get their retries deduplicated.

use weir_log::format::{BatchBuilder, BatchOptions};
use weir_log::{
    Acks, Error, Log, LogConfig, Producer, ProducerConfig, ProducerRecord, TopicConfig,
};

use crate::common::batch_of;

fn log() -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic(
        "t",
        TopicConfig {
            partitions: 2,
            ..TopicConfig::default()
        },
    )
    .unwrap();
    (dir, log)
}

#[test]
fn unknown_topic_and_partition() {
    let (_d, log) = log();
    assert!(
        matches!(log.append("nope", 0, batch_of(&[b"x".to_vec()], 1), Acks::Leader), Err(Error::UnknownTopic(t)) if t == "nope")
    );
    assert!(matches!(
        log.fetch("nope", 0, 0, 1024),
        Err(Error::UnknownTopic(_))
    ));
    assert!(matches!(
        log.fetch("t", 2, 0, 1024),
        Err(Error::UnknownPartition { partition: 2, .. })
    ));
    let p = Producer::new(&log, ProducerConfig::default()).unwrap();
    assert!(matches!(
        p.send(ProducerRecord::new("nope", b"x")),
        Err(Error::UnknownTopic(_))
    ));
    assert!(matches!(
        p.send(ProducerRecord::new("t", b"x").partition(5)),
        Err(Error::UnknownPartition { partition: 5, .. })
    ));
}

#[test]
fn bad_topic_configs_name_the_field() {
    let (_d, log) = log();
    for (cfg, field) in [
        (
            TopicConfig {
                partitions: 0,
                ..TopicConfig::default()
            },
            "partitions",
        ),
        (
            TopicConfig {
                partitions: -3,
                ..TopicConfig::default()
            },
            "partitions",
        ),
        (
            TopicConfig {
                retention_ms: Some(0),
                ..TopicConfig::default()
            },
            "retention_ms",
        ),
        (
            TopicConfig {
                segment_bytes_max: 10,
                ..TopicConfig::default()
            },
            "segment_bytes_max",
        ),
    ] {
        match log.create_topic("x", cfg) {
            Err(Error::Config { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected a config error on {field}, got {other:?}"),
        }
    }
    assert!(matches!(
        log.create_topic("bad/name", TopicConfig::default()),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        log.create_topic("t", TopicConfig::default()),
        Err(Error::TopicExists(_))
    ));
}

#[test]
fn oversized_records_and_batches() {
    let (_d, log) = log();
    let p = Producer::new(&log, ProducerConfig::default()).unwrap();
    let big = vec![0u8; (1 << 20) + 1];
    match p.send(ProducerRecord::new("t", &big)) {
        Err(Error::RecordTooLarge { bytes, max }) => assert!(bytes > max && max == 1 << 20),
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    let mut b = BatchBuilder::new(BatchOptions::default());
    for _ in 0..20 {
        b.push(1, None, Some(&vec![1u8; 1 << 20]), &[]);
    }
    assert!(matches!(
        log.append("t", 0, b.finish(0), Acks::Leader),
        Err(Error::BatchTooLarge { .. })
    ));
}

#[test]
fn malformed_batches_are_refused() {
    let (_d, log) = log();
    let mut bad_crc = batch_of(&[b"hello".to_vec()], 1);
    let n = bad_crc.len();
    bad_crc[n - 1] ^= 1;
    assert!(matches!(
        log.append("t", 0, bad_crc, Acks::Leader),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        log.append("t", 0, vec![0u8; 10], Acks::Leader),
        Err(Error::Malformed(_))
    ));
    let mut wrong_len = batch_of(&[b"hello".to_vec()], 1);
    wrong_len.push(0);
    assert!(matches!(
        log.append("t", 0, wrong_len, Acks::Leader),
        Err(Error::Malformed(_))
    ));
    assert_eq!(log.offsets("t", 0).unwrap(), (0, 0), "nothing was written");
}

#[test]
fn reading_out_of_range_is_an_error() {
    let (_d, log) = log();
    log.append("t", 0, batch_of(&[b"a".to_vec()], 1), Acks::Leader)
        .unwrap();
    assert!(matches!(
        log.fetch("t", 0, 5, 1024),
        Err(Error::OffsetOutOfRange {
            offset: 5,
            end: 1,
            ..
        })
    ));
    assert!(log.fetch("t", 0, 1, 1024).unwrap().is_empty());
}

fn idempotent_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(BatchOptions {
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        ..BatchOptions::default()
    });
    for i in 0..n {
        b.push(1, None, Some(format!("{seq}-{i}").as_bytes()), &[]);
    }
    b.finish(0)
}

#[test]
fn idempotent_retries_gaps_and_fencing_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("t", TopicConfig::default()).unwrap();
    let (pid, epoch) = log.init_producer_id().unwrap();
    let first = log
        .append("t", 0, idempotent_batch(pid, epoch, 0, 3), Acks::All)
        .unwrap();
    let second = log
        .append("t", 0, idempotent_batch(pid, epoch, 3, 2), Acks::All)
        .unwrap();
    for clean in [true, false] {
        // A retry of either batch gets its original offsets and writes nothing.
        let retry = log
            .append("t", 0, idempotent_batch(pid, epoch, 0, 3), Acks::All)
            .unwrap();
        assert!(retry.duplicate);
        assert_eq!(
            (retry.base_offset, retry.last_offset),
            (first.base_offset, first.last_offset)
        );
        let retry = log
            .append("t", 0, idempotent_batch(pid, epoch, 3, 2), Acks::All)
            .unwrap();
        assert_eq!(retry.base_offset, second.base_offset);
        assert_eq!(log.offsets("t", 0).unwrap().1, 5);
        // A gap is refused.
        assert!(matches!(
            log.append("t", 0, idempotent_batch(pid, epoch, 9, 1), Acks::All),
            Err(Error::OutOfOrderSequence {
                expected: 5,
                got: 9,
                ..
            })
        ));
        if clean {
            log.close().unwrap();
        }
        drop(log);
        log = Log::open(dir.path(), LogConfig::default()).unwrap();
    }
    // A newer epoch fences the old one.
    log.append("t", 0, idempotent_batch(pid, epoch + 1, 0, 1), Acks::All)
        .unwrap();
    assert!(matches!(
        log.append("t", 0, idempotent_batch(pid, epoch, 5, 1), Acks::All),
        Err(Error::Fenced(_))
    ));
    // Producer ids are never handed out twice, across restarts too.
    let (pid2, _) = log.init_producer_id().unwrap();
    assert!(pid2 > pid);
}

#[test]
fn keyed_records_land_where_kafka_would_put_them() {
    let (_d, log) = log();
    let p = Producer::new(&log, ProducerConfig::default()).unwrap();
    // murmur2("foobar") = -790332482; (that & 0x7fffffff) % 2 = 0
    let m = p
        .send_sync(ProducerRecord::new("t", b"v").key(b"foobar"))
        .unwrap();
    assert_eq!(
        m.partition,
        ((-790_332_482i32 as u32 & 0x7fff_ffff) % 2) as i32
    );
    let m = p
        .send_sync(ProducerRecord::new("t", b"v").key(b"21"))
        .unwrap();
    assert_eq!(
        m.partition,
        ((-973_932_308i32 as u32 & 0x7fff_ffff) % 2) as i32
    );
}

#[test]
fn read_only_handles_refuse_writes() {
    let (d, log) = log();
    log.close().unwrap();
    let ro = Log::open_read_only(d.path()).unwrap();
    assert!(matches!(
        ro.append("t", 0, batch_of(&[b"x".to_vec()], 1), Acks::Leader),
        Err(Error::ReadOnly(_))
    ));
    assert!(matches!(
        ro.create_topic("u", TopicConfig::default()),
        Err(Error::ReadOnly(_))
    ));
    assert!(matches!(
        Producer::new(&ro, ProducerConfig::default()),
        Err(Error::ReadOnly(_))
    ));
}

#[test]
fn keyless_records_stick_to_a_partition_until_its_batch_is_full_then_move_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic(
        "s",
        TopicConfig {
            partitions: 4,
            ..TopicConfig::default()
        },
    )
    .unwrap();
    let p = Producer::new(
        &log,
        ProducerConfig {
            batch_bytes_max: 1024,
            linger_ms: 60_000,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    for _ in 0..2000 {
        p.send(ProducerRecord::new("s", &[7u8; 40])).unwrap();
    }
    p.close().unwrap();
    let mut counts = Vec::new();
    for part in 0..4 {
        let batches = crate::common::read_all(&log, "s", part, 0).unwrap();
        counts.push(batches.len());
    }
    assert_eq!(counts.iter().sum::<usize>(), 2000);
    assert!(
        counts.iter().all(|&c| c > 0),
        "every partition gets batches: {counts:?}"
    );
    // Each full batch stays whole in one partition: the sticky partition changes between batches.
    let max = *counts.iter().max().unwrap();
    assert!(max < 2000 * 3 / 4, "records spread: {counts:?}");
}

#[test]
fn acks_none_flush_does_not_wait_but_close_drains_everything() {
    let (_d, log) = log();
    let p = Producer::new(
        &log,
        ProducerConfig {
            acks: Acks::None,
            batch_bytes_max: 1024,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    for i in 0..1000 {
        p.send(ProducerRecord::new("t", format!("{i}").as_bytes()).partition(0))
            .unwrap();
    }
    p.flush().unwrap();
    p.close().unwrap();
    let records = crate::common::read_all(&log, "t", 0, 0).unwrap();
    let values: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    let want: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    assert_eq!(values, want);
}

#[test]
fn a_failed_fsync_is_a_typed_not_durable_error_and_the_next_round_recovers() {
    use std::sync::Arc;
    use weir_log::storage::sim::{FaultConfig, FaultStorage};
    use weir_log::{LogOptions, SystemClock};

    let storage = FaultStorage::new("/sim", 3, FaultConfig::default());
    let options = LogOptions {
        storage: Arc::new(storage.clone()),
        clock: Arc::new(SystemClock::new()),
    };
    let log = Log::open_with("/sim/data", LogConfig::default(), options).unwrap();
    log.create_topic("t", TopicConfig::default()).unwrap();
    log.append("t", 0, batch_of(&[b"before".to_vec()], 1), Acks::All)
        .unwrap();
    storage.set_faults(FaultConfig {
        fsync_fail_per_mille: 1000,
        ..FaultConfig::default()
    });
    let failed = log.append("t", 0, batch_of(&[b"during".to_vec()], 1), Acks::All);
    assert!(
        matches!(failed, Err(Error::NotDurable(ref why)) if why.contains("Input/output error")),
        "{failed:?}"
    );
    storage.set_faults(FaultConfig::default());
    // The failed round's segment is fsynced again with the next, which then succeeds.
    let after = log
        .append("t", 0, batch_of(&[b"after".to_vec()], 1), Acks::All)
        .unwrap();
    assert_eq!(after.base_offset, 2);
}
