//! Changing a topic's config (`Log::alter_topic_config`): the exact settings after the change and
//! after clean and unclean restarts; retention and batch limits applied to the live partitions;
//! refusals that change nothing; and what a topic compacted once (or with a larger batch limit
//! once) keeps through a change back and a crash.

use weir_log::format::{BatchBuilder, BatchOptions};
use weir_log::{Acks, Error, Log, TopicConfig, ValueFormat, clean_once};

use crate::common::{open, read_all, small_segments};

const NOW: i64 = 1_700_000_000_000;
const HOUR_MS: i64 = 3_600_000;

fn batch(values: &[&[u8]], keys: Option<&[&[u8]]>, ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(BatchOptions::default());
    for (i, v) in values.iter().enumerate() {
        b.push(ts, keys.map(|k| k[i]), Some(v), &[]);
    }
    b.finish(0)
}

#[test]
fn the_altered_config_is_exact_after_the_change_and_after_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(
        "t",
        TopicConfig {
            partitions: 3,
            ..TopicConfig::default()
        },
    )
    .unwrap();
    // A partition open before the change, one not yet open.
    log.append("t", 0, batch(&[b"a"], None, NOW), Acks::All)
        .unwrap();
    let altered = TopicConfig {
        partitions: 3,
        compacted: true,
        retention_ms: Some(HOUR_MS),
        retention_bytes: Some(1 << 30),
        segment_bytes_max: 1 << 20,
        segment_age_ms_max: 10 * 60_000,
        delete_retention_ms: 60_000,
        record_bytes_max: 4096,
        batch_bytes_max: 65536,
        ..TopicConfig::default()
    };
    log.alter_topic_config("t", altered.clone()).unwrap();
    assert_eq!(log.topic_config("t").unwrap(), altered);
    assert_eq!(log.describe_topic("t").unwrap().config, altered);
    // The same again is no change, and fine.
    log.alter_topic_config("t", altered.clone()).unwrap();
    let reader = Log::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.topic_config("t").unwrap(), altered);
    drop(reader);
    log.close().unwrap();

    let log = open(dir.path());
    assert_eq!(log.topic_config("t").unwrap(), altered);
    // Back to the defaults; then an unclean stop.
    let defaults = TopicConfig {
        partitions: 3,
        ..TopicConfig::default()
    };
    log.alter_topic_config("t", defaults.clone()).unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.topic_config("t").unwrap(), defaults);
    assert_eq!(read_all(&log, "t", 0, 0).unwrap().len(), 1);
    log.close().unwrap();
}

#[test]
fn an_altered_retention_applies_at_the_next_cleaner_round() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let config = TopicConfig {
        retention_ms: None,
        ..small_segments(1, 4096)
    };
    log.create_topic("r", config.clone()).unwrap();
    let value = vec![b'x'; 500];
    for _ in 0..40 {
        log.append(
            "r",
            0,
            batch(&[&value], None, NOW - 2 * HOUR_MS),
            Acks::Leader,
        )
        .unwrap();
    }
    let segments = log.describe_topic("r").unwrap().partitions[0].segments;
    assert!(segments >= 4, "{segments} segments");
    assert_eq!(clean_once(&log, NOW).unwrap().segments_deleted, 0);
    log.alter_topic_config(
        "r",
        TopicConfig {
            retention_ms: Some(HOUR_MS),
            ..config.clone()
        },
    )
    .unwrap();
    let report = clean_once(&log, NOW).unwrap();
    assert_eq!(
        report.segments_deleted,
        segments - 1,
        "every closed segment is past the new retention"
    );
    let d = log.describe_topic("r").unwrap();
    assert_eq!(d.partitions[0].segments, 1);
    assert_eq!(d.partitions[0].high_watermark, 40);
    log.close().unwrap();
}

#[test]
fn a_smaller_batch_limit_applies_to_appends_and_the_next_segment_size_to_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let config = TopicConfig {
        partitions: 1,
        ..TopicConfig::default()
    };
    log.create_topic("b", config.clone()).unwrap();
    let big = vec![b'y'; 50_000];
    log.append("b", 0, batch(&[&big], None, NOW), Acks::All)
        .unwrap();
    log.alter_topic_config(
        "b",
        TopicConfig {
            batch_bytes_max: 8192,
            record_bytes_max: 4096,
            segment_bytes_max: 16384,
            ..config.clone()
        },
    )
    .unwrap();
    assert!(matches!(
        log.append("b", 0, batch(&[&big], None, NOW), Acks::All),
        Err(Error::BatchTooLarge { max: 8192, .. })
    ));
    // The active segment already holds more than the new segment size: the next append rolls.
    log.append("b", 0, batch(&[b"small"], None, NOW), Acks::All)
        .unwrap();
    assert_eq!(log.describe_topic("b").unwrap().partitions[0].segments, 2);
    // A crash: recovery still accepts the batch written under the larger limit.
    drop(log);
    let log = open(dir.path());
    assert!(
        log.recovery_report().is_empty(),
        "{:?}",
        log.recovery_report()
    );
    let records = read_all(&log, "b", 0, 0).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].value.as_deref(), Some(&big[..]));
    log.close().unwrap();
}

#[test]
fn a_topic_compacted_then_switched_to_delete_keeps_its_gapped_offsets_through_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let config = TopicConfig {
        compacted: true,
        ..small_segments(1, 4096)
    };
    log.create_topic("c", config.clone()).unwrap();
    let value = vec![b'z'; 300];
    // A key of its own per round, and one key written every round: compaction keeps the
    // former and the newest of the latter, leaving gaps inside and between segments.
    for round in 0..10u8 {
        let own = format!("own-{round}");
        for key in [own.as_bytes(), b"hot", b"hot"] {
            let v = [&value[..], &[round]].concat();
            log.append("c", 0, batch(&[&v], Some(&[key]), NOW), Acks::Leader)
                .unwrap();
        }
    }
    let report = clean_once(&log, NOW).unwrap();
    assert!(report.records_removed > 0, "{report:?}");
    let before: Vec<i64> = read_all(&log, "c", 0, 0)
        .unwrap()
        .iter()
        .map(|r| r.offset)
        .collect();
    assert!(before.windows(2).any(|w| w[1] > w[0] + 1), "{before:?}");
    log.alter_topic_config(
        "c",
        TopicConfig {
            compacted: false,
            ..config.clone()
        },
    )
    .unwrap();
    log.append("c", 0, batch(&[b"after"], None, NOW), Acks::All)
        .unwrap();
    drop(log); // unclean
    let log = open(dir.path());
    assert!(
        log.recovery_report().is_empty(),
        "{:?}",
        log.recovery_report()
    );
    assert!(!log.topic_config("c").unwrap().compacted);
    let after: Vec<i64> = read_all(&log, "c", 0, 0)
        .unwrap()
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(after[..before.len()], before[..]);
    assert_eq!(after.len(), before.len() + 1);
    log.close().unwrap();
}

#[test]
fn refused_changes_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let config = TopicConfig {
        partitions: 2,
        schema: Some("a BIGINT".into()),
        format: ValueFormat::Binary,
        ..TopicConfig::default()
    };
    log.create_topic("x", config.clone()).unwrap();
    let field = |r: weir_log::Result<()>| match r {
        Err(Error::Config { field, .. }) => field,
        other => panic!("expected a config error, got {other:?}"),
    };
    let with = |f: &dyn Fn(&mut TopicConfig)| {
        let mut c = config.clone();
        f(&mut c);
        c
    };
    assert_eq!(
        field(log.alter_topic_config("x", with(&|c| c.partitions = 3))),
        "partitions"
    );
    assert_eq!(
        field(log.alter_topic_config("x", with(&|c| c.schema = Some("b TEXT".into())))),
        "schema"
    );
    assert_eq!(
        field(log.alter_topic_config("x", with(&|c| c.format = ValueFormat::Json))),
        "format"
    );
    assert_eq!(
        field(log.alter_topic_config("x", with(&|c| c.retention_ms = Some(0)))),
        "retention_ms"
    );
    assert_eq!(
        field(log.alter_topic_config("x", with(&|c| c.segment_bytes_max = 100))),
        "segment_bytes_max"
    );
    assert_eq!(
        field(log.alter_topic_config("x", with(&|c| c.record_bytes_max = c.batch_bytes_max + 1))),
        "record_bytes_max"
    );
    assert!(matches!(
        log.alter_topic_config("nope", config.clone()),
        Err(Error::UnknownTopic(_))
    ));
    let reader = Log::open_read_only(dir.path()).unwrap();
    assert!(matches!(
        reader.alter_topic_config("x", with(&|c| c.retention_ms = None)),
        Err(Error::ReadOnly(_))
    ));
    assert_eq!(log.topic_config("x").unwrap(), config);
    log.close().unwrap();
    let log = open(dir.path());
    assert_eq!(log.topic_config("x").unwrap(), config);
    log.close().unwrap();
}
