//! The cleaner: retention by age and by size, compaction against an independent model (also
//! across a clean and an unclean reopen, and a swap cut short), transaction-aware compaction,
//! the background thread, and the I/O budget.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir_log::format::{BatchBuilder, BatchOptions, Compression};
use weir_log::{
    Acks, Cleaner, CleanerReport, Consumer, ConsumerConfig, Error, IoBudget, Log, LogConfig,
    ProducerRecord, TopicConfig, TransactionalConfig, TransactionalProducer, clean_once,
};

use crate::common::{open, read_all, seed, small_segments};

/// The time every test round runs at (ms since the epoch).
const NOW: i64 = 1_700_000_000_000;
const HOUR_MS: i64 = 3_600_000;
const DELETE_RETENTION_MS: i64 = 60_000;

/// One record as the tests write and read it: offset, key, value, timestamp.
type Rec = (i64, Option<Vec<u8>>, Option<Vec<u8>>, i64);
/// A record to append: key, value (`None`: a tombstone).
type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// A log whose offset and time indexes get an entry every few batches, so that a segment swap
/// that mixed old indexes with a new log would show.
fn open_indexed(dir: &Path) -> Log {
    let config = LogConfig {
        index_interval_bytes: 256,
        index_bytes_max: 4096,
        ..LogConfig::default()
    };
    Log::open(dir, config).expect("open log")
}

/// Appends one batch of (key, value) at `ts`; returns the records with their offsets.
fn append(log: &Log, topic: &str, records: &[KeyValue<'_>], ts: i64) -> Vec<Rec> {
    append_compressed(log, topic, records, ts, Compression::None)
}

fn append_compressed(
    log: &Log,
    topic: &str,
    records: &[KeyValue<'_>],
    ts: i64,
    compression: Compression,
) -> Vec<Rec> {
    let mut b = BatchBuilder::new(BatchOptions {
        compression,
        ..BatchOptions::default()
    });
    for (k, v) in records {
        b.push(ts, *k, *v, &[]);
    }
    let info = log
        .append(topic, 0, b.finish(0), Acks::Leader)
        .expect("append");
    assert!(!info.duplicate);
    records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            (
                info.base_offset + i as i64,
                k.map(<[u8]>::to_vec),
                v.map(<[u8]>::to_vec),
                ts,
            )
        })
        .collect()
}

fn read(log: &Log, topic: &str) -> Vec<Rec> {
    let (start, _) = log.offsets(topic, 0).expect("offsets");
    read_all(log, topic, 0, start)
        .expect("read")
        .into_iter()
        .map(|r| {
            (
                r.offset,
                r.key.map(|k| k.to_vec()),
                r.value.map(|v| v.to_vec()),
                r.timestamp,
            )
        })
        .collect()
}

fn partition_dir(log: &Log, topic: &str) -> PathBuf {
    log.dir().join(topic).join("0")
}

/// Base offsets of the segment files on disk (layout `<base:020>.log`), oldest first.
fn segment_bases(dir: &Path) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(dir)
        .expect("list partition")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    bases
}

fn segment_file(dir: &Path, base: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

fn segment_size(dir: &Path, base: i64) -> u64 {
    std::fs::metadata(segment_file(dir, base, "log"))
        .expect("segment size")
        .len()
}

/// The segment (index into `bases`) holding `offset`.
fn segment_of(bases: &[i64], offset: i64) -> usize {
    bases.partition_point(|&b| b <= offset) - 1
}

fn value(rng: &mut fastrand::Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.alphanumeric() as u8).collect()
}

/// Writes `batches` batches of two records at timestamps `ts_of(batch number)`.
fn fill(log: &Log, topic: &str, batches: usize, ts_of: impl Fn(usize) -> i64) -> Vec<Rec> {
    let mut rng = fastrand::Rng::with_seed(batches as u64);
    let mut out = Vec::new();
    for i in 0..batches {
        let (a, b) = (value(&mut rng, 60), value(&mut rng, 60));
        out.extend(append(
            log,
            topic,
            &[(None, Some(&a)), (None, Some(&b))],
            ts_of(i),
        ));
    }
    out
}

#[test]
fn retention_by_age_deletes_only_a_prefix_of_old_closed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let topic = "aged";
    log.create_topic(
        topic,
        TopicConfig {
            retention_ms: Some(HOUR_MS),
            ..small_segments(1, 4096)
        },
    )
    .unwrap();
    let old = NOW - 2 * HOUR_MS;
    let young = NOW - 10 * 60_000;
    // Old, then young, then old again (the active segment included).
    let written = fill(&log, topic, 150, |i| {
        if (40..60).contains(&i) { young } else { old }
    });
    let pdir = partition_dir(&log, topic);
    let bases = segment_bases(&pdir);
    assert!(bases.len() >= 6, "segments should roll: {bases:?}");
    let mut max_ts = vec![i64::MIN; bases.len()];
    for r in &written {
        let s = segment_of(&bases, r.0);
        max_ts[s] = max_ts[s].max(r.3);
    }
    // The model: the old prefix of closed segments.
    let victims = max_ts[..bases.len() - 1]
        .iter()
        .take_while(|&&ts| ts < NOW - HOUR_MS)
        .count();
    assert!(victims >= 1, "{max_ts:?}");
    assert!(
        max_ts[victims..bases.len() - 1]
            .iter()
            .any(|&ts| ts < NOW - HOUR_MS),
        "an old segment after a young one must stay"
    );
    assert!(
        *max_ts.last().unwrap() < NOW - HOUR_MS,
        "the active segment is old too, yet must stay"
    );
    let freed: u64 = bases[..victims]
        .iter()
        .map(|&b| segment_size(&pdir, b))
        .sum();
    let (_, hw) = log.offsets(topic, 0).unwrap();

    let report = clean_once(&log, NOW).unwrap();
    assert_eq!(
        report,
        CleanerReport {
            segments_deleted: victims,
            bytes_freed: freed,
            ..CleanerReport::default()
        }
    );
    assert_eq!(segment_bases(&pdir), bases[victims..].to_vec());
    assert_eq!(log.offsets(topic, 0).unwrap(), (bases[victims], hw));
    let kept: Vec<Rec> = written
        .iter()
        .filter(|r| r.0 >= bases[victims])
        .cloned()
        .collect();
    assert_eq!(read(&log, topic), kept);
    assert!(matches!(
        log.fetch(topic, 0, 0, 1 << 20),
        Err(Error::OffsetOutOfRange { .. })
    ));
    // Nothing more to delete at the same time.
    assert_eq!(clean_once(&log, NOW).unwrap(), CleanerReport::default());

    // Hours later everything is old: all closed segments go, the active one stays.
    let active = *bases.last().unwrap();
    let report = clean_once(&log, NOW + 10 * HOUR_MS).unwrap();
    assert_eq!(report.segments_deleted, bases.len() - 1 - victims);
    assert_eq!(segment_bases(&pdir), vec![active]);
    assert_eq!(log.offsets(topic, 0).unwrap(), (active, hw));
    let kept: Vec<Rec> = written.iter().filter(|r| r.0 >= active).cloned().collect();
    assert_eq!(read(&log, topic), kept);
    log.close().unwrap();
}

#[test]
fn retention_by_size_keeps_at_least_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let topic = "sized";
    let limit = 10_000u64;
    log.create_topic(
        topic,
        TopicConfig {
            retention_ms: None,
            retention_bytes: Some(limit),
            ..small_segments(1, 4096)
        },
    )
    .unwrap();
    let written = fill(&log, topic, 150, |_| NOW);
    let pdir = partition_dir(&log, topic);
    let bases = segment_bases(&pdir);
    let sizes: Vec<u64> = bases.iter().map(|&b| segment_size(&pdir, b)).collect();
    let mut total: u64 = sizes.iter().sum();
    let mut victims = 0;
    while victims + 1 < bases.len() && total - sizes[victims] >= limit {
        total -= sizes[victims];
        victims += 1;
    }
    assert!(victims >= 2, "{sizes:?}");

    let report = clean_once(&log, NOW).unwrap();
    assert_eq!(report.segments_deleted, victims);
    assert_eq!(report.bytes_freed, sizes[..victims].iter().sum::<u64>());
    assert_eq!(segment_bases(&pdir), bases[victims..].to_vec());
    let left: u64 = sizes[victims..].iter().sum();
    assert!(
        left >= limit && left - sizes[victims] < limit,
        "{left} bytes left of {sizes:?}"
    );
    assert_eq!(
        log.describe_topic(topic).unwrap().partitions[0].size_bytes,
        left
    );
    assert_eq!(log.offsets(topic, 0).unwrap().0, bases[victims]);
    let kept: Vec<Rec> = written
        .iter()
        .filter(|r| r.0 >= bases[victims])
        .cloned()
        .collect();
    assert_eq!(read(&log, topic), kept);
    log.close().unwrap();
}

/// What compaction must leave: in closed segments, the newest record per key unless it is a
/// tombstone past the delete horizon; the active segment as it was.
fn compaction_model(written: &[Rec], active_base: i64) -> Vec<Rec> {
    let mut newest: HashMap<&[u8], i64> = HashMap::new();
    for (offset, key, _, _) in written {
        if let Some(k) = key {
            newest.insert(k, *offset);
        }
    }
    written
        .iter()
        .filter(|(offset, key, value, ts)| {
            let k = key.as_deref().expect("every record has a key");
            *offset >= active_base
                || (newest[k] == *offset && !(value.is_none() && ts + DELETE_RETENTION_MS < NOW))
        })
        .cloned()
        .collect()
}

/// A fetch at any offset, kept or compacted away, starts with the batch holding the first kept
/// record at or after it (through the offset index).
fn assert_random_access(log: &Log, topic: &str, expected: &[Rec]) {
    let (start, end) = log.offsets(topic, 0).unwrap();
    for offset in start..end {
        let want = expected
            .iter()
            .find(|r| r.0 >= offset)
            .expect("the active segment's records are all kept")
            .0;
        let batches = log.fetch(topic, 0, offset, 1).unwrap();
        let h = batches.first().expect("a batch").header();
        assert!(
            h.base_offset <= want && want <= h.last_offset(),
            "fetch at {offset} gave {}..={}, want {want}",
            h.base_offset,
            h.last_offset()
        );
    }
}

fn compacted_topic() -> TopicConfig {
    TopicConfig {
        compacted: true,
        retention_ms: None,
        delete_retention_ms: DELETE_RETENTION_MS,
        ..small_segments(1, 4096)
    }
}

#[test]
fn compaction_matches_the_model_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let topic = "table";
    let mut rng = fastrand::Rng::with_seed(seed());
    let log = open_indexed(dir.path());
    log.create_topic(topic, compacted_topic()).unwrap();
    let pdir = partition_dir(&log, topic);
    let old = NOW - 10 * DELETE_RETENTION_MS;
    let mut written = Vec::new();
    // Batches of every codec: rebuilt ones must keep theirs.
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut codec_of: HashMap<i64, Compression> = HashMap::new();
    let mut random_batches = |log: &Log, written: &mut Vec<Rec>, batches: usize| {
        for _ in 0..batches {
            let recs: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..rng.usize(1..=6))
                .map(|_| {
                    let k = format!("k{}", rng.u8(0..12)).into_bytes();
                    let len = rng.usize(5..40);
                    let v = (rng.u8(0..100) >= 15).then(|| value(&mut rng, len));
                    (k, v)
                })
                .collect();
            let refs: Vec<KeyValue<'_>> = recs
                .iter()
                .map(|(k, v)| (Some(&k[..]), v.as_deref()))
                .collect();
            let codec = codecs[rng.usize(..codecs.len())];
            let recs = append_compressed(log, topic, &refs, old + rng.i64(0..1000), codec);
            codec_of.extend(recs.iter().map(|r| (r.0, codec)));
            written.extend(recs);
        }
    };
    random_batches(&log, &mut written, 120);
    // Tombstones that are the newest of their key: long expired, recent, and exactly at the horizon
    // (`ts + delete_retention_ms == now` is not yet past it).
    written.extend(append(
        &log,
        topic,
        &[
            (Some(b"gone-old"), Some(b"v")),
            (Some(b"gone-new"), Some(b"v")),
            (Some(b"edge"), Some(b"v")),
        ],
        old,
    ));
    written.extend(append(&log, topic, &[(Some(b"gone-old"), None)], old));
    written.extend(append(
        &log,
        topic,
        &[(Some(b"gone-new"), None)],
        NOW - DELETE_RETENTION_MS / 2,
    ));
    written.extend(append(
        &log,
        topic,
        &[(Some(b"edge"), None)],
        NOW - DELETE_RETENTION_MS,
    ));
    // More traffic until the tombstones sit in a closed segment.
    let segments_before = segment_bases(&pdir).len();
    while segment_bases(&pdir).len() < segments_before + 2 {
        random_batches(&log, &mut written, 1);
    }
    // In the active segment: a record superseding closed ones, a key written twice (both stay),
    // and an old tombstone (stays: the active segment is never touched).
    written.extend(append(
        &log,
        topic,
        &[(Some(b"k0"), Some(b"active-0"))],
        NOW,
    ));
    written.extend(append(
        &log,
        topic,
        &[(Some(b"twice"), Some(b"1")), (Some(b"twice"), Some(b"2"))],
        NOW,
    ));
    written.extend(append(&log, topic, &[(Some(b"k1"), None)], old));

    let bases = segment_bases(&pdir);
    let active_base = *bases.last().unwrap();
    assert!(bases.len() >= 5, "segments should roll: {bases:?}");
    let expected = compaction_model(&written, active_base);
    assert!(
        expected
            .iter()
            .any(|r| r.1.as_deref() == Some(b"gone-new") && r.2.is_none())
    );
    assert!(
        expected
            .iter()
            .any(|r| r.1.as_deref() == Some(b"edge") && r.2.is_none())
    );
    assert!(!expected.iter().any(|r| r.1.as_deref() == Some(b"gone-old")));
    let hw_offsets = log.offsets(topic, 0).unwrap();
    let active_bytes = std::fs::read(segment_file(&pdir, active_base, "log")).unwrap();
    let closed_bytes_before: u64 = bases[..bases.len() - 1]
        .iter()
        .map(|&b| segment_size(&pdir, b))
        .sum();

    let index_of = |base| std::fs::read(segment_file(&pdir, base, "index")).unwrap();
    let indexes_before: Vec<Vec<u8>> = bases[..bases.len() - 1]
        .iter()
        .map(|&b| index_of(b))
        .collect();
    assert!(
        indexes_before
            .iter()
            .all(|ix| ix.iter().any(|&byte| byte != 0)),
        "indexes have entries"
    );

    let report = clean_once(&log, NOW).unwrap();
    for (&base, before) in bases.iter().zip(&indexes_before) {
        // (Not assert_ne: the files are kilobytes of mostly zeros.)
        assert!(
            index_of(base) != *before,
            "segment {base} kept the index of its old log"
        );
    }
    let closed_bytes_after: u64 = bases[..bases.len() - 1]
        .iter()
        .map(|&b| segment_size(&pdir, b))
        .sum();
    assert_eq!(
        report,
        CleanerReport {
            segments_deleted: 0,
            bytes_freed: closed_bytes_before - closed_bytes_after,
            // Every closed segment loses far more than a tenth with twelve keys.
            segments_compacted: bases.len() - 1,
            records_removed: (written.len() - expected.len()) as u64,
        }
    );
    assert!(closed_bytes_after * 4 < closed_bytes_before);
    assert_eq!(
        segment_bases(&pdir),
        bases,
        "compaction keeps every segment, even emptied ones"
    );
    assert_eq!(
        std::fs::read(segment_file(&pdir, active_base, "log")).unwrap(),
        active_bytes
    );
    assert_eq!(log.offsets(topic, 0).unwrap(), hw_offsets);
    assert_eq!(read(&log, topic), expected);
    assert_random_access(&log, topic, &expected);
    let (mut pos, end) = log.offsets(topic, 0).unwrap();
    while pos < end {
        for b in log.fetch(topic, 0, pos, 1 << 20).unwrap() {
            pos = b.header().last_offset() + 1;
            let codec = b.header().compression().unwrap();
            for r in b.records(1 << 20).unwrap() {
                let offset = r.unwrap().offset;
                let original = codec_of.get(&offset).copied().unwrap_or(Compression::None);
                assert_eq!(codec, original, "record {offset}");
            }
        }
    }
    assert!(!pdir.join("cleaner-work").exists());
    // Done: a second round finds nothing worth rewriting.
    assert_eq!(clean_once(&log, NOW).unwrap(), CleanerReport::default());

    // A consumer reads across the gaps.
    let mut consumer = Consumer::new(&log, ConsumerConfig::default()).unwrap();
    consumer.assign_topic(topic).unwrap();
    consumer.seek_to_beginning().unwrap();
    let mut consumed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while consumed.len() < expected.len() && Instant::now() < deadline {
        for b in consumer.poll(Duration::from_millis(50)).unwrap() {
            for r in b.records() {
                let r = r.unwrap();
                consumed.push((
                    r.offset,
                    r.key.map(|k| k.to_vec()),
                    r.value.map(|v| v.to_vec()),
                    r.timestamp,
                ));
            }
        }
    }
    assert_eq!(consumed, expected);
    drop(consumer);

    // An unclean stop (no close, nothing removed), then a clean one: the same records.
    drop(log);
    let log = open_indexed(dir.path());
    assert!(
        log.recovery_report().is_empty(),
        "{:?}",
        log.recovery_report()
    );
    assert_eq!(log.offsets(topic, 0).unwrap(), hw_offsets);
    assert_eq!(read(&log, topic), expected);
    log.close().unwrap();
    drop(log);
    let log = open_indexed(dir.path());
    assert_eq!(read(&log, topic), expected);
    assert_random_access(&log, topic, &expected);
    log.close().unwrap();
    drop(log);

    // A crash between the log rename and the index moves leaves a compacted log without indexes,
    // and (the first) without the witness of its gaps.
    for &base in &bases[..2] {
        std::fs::remove_file(segment_file(&pdir, base, "index")).unwrap();
        std::fs::remove_file(segment_file(&pdir, base, "timeindex")).unwrap();
    }
    std::fs::remove_file(segment_file(&pdir, bases[0], "gaps")).unwrap();
    // And a crash while writing leaves a half-built segment in the work directory.
    std::fs::create_dir_all(pdir.join("cleaner-work")).unwrap();
    std::fs::write(
        segment_file(&pdir.join("cleaner-work"), bases[0], "log"),
        b"torn",
    )
    .unwrap();
    let log = open_indexed(dir.path());
    assert_eq!(read(&log, topic), expected);
    // An interrupted swap is no damage: nothing to report.
    assert!(
        log.recovery_report().is_empty(),
        "{:?}",
        log.recovery_report()
    );
    assert!(segment_file(&pdir, bases[0], "gaps").exists());
    assert_random_access(&log, topic, &expected);
    assert_eq!(
        log.offset_for_timestamp(topic, 0, NOW).unwrap(),
        expected.iter().find(|r| r.3 >= NOW).map(|r| r.0)
    );
    assert_eq!(clean_once(&log, NOW).unwrap(), CleanerReport::default());
    assert!(!pdir.join("cleaner-work").exists());
    log.close().unwrap();
}

#[test]
fn compaction_counts_only_committed_transactions_and_keeps_markers() {
    let dir = tempfile::tempdir().unwrap();
    let topic = "txn-table";
    let log = open_indexed(dir.path());
    log.create_topic(topic, compacted_topic()).unwrap();
    let pdir = partition_dir(&log, topic);
    let hw = || log.offsets(topic, 0).unwrap().1;
    let a0 = append(&log, topic, &[(Some(b"a"), Some(b"a0"))], NOW)[0].0;
    let send = |p: &mut TransactionalProducer, k: &[u8], v: &[u8]| {
        p.send(
            ProducerRecord::new(topic, v)
                .key(k)
                .partition(0)
                .timestamp(NOW),
        )
        .unwrap();
    };
    // Committed: a1, b1.
    let mut t7 = TransactionalProducer::new(&log, TransactionalConfig::new("t7")).unwrap();
    t7.begin().unwrap();
    let a1 = hw();
    send(&mut t7, b"a", b"a1");
    send(&mut t7, b"b", b"b1");
    t7.commit().unwrap();
    let commit = hw() - 1;
    // Aborted: a2, c2.
    let mut t8 = TransactionalProducer::new(&log, TransactionalConfig::new("t8")).unwrap();
    t8.begin().unwrap();
    let aborted = hw();
    send(&mut t8, b"a", b"a2");
    send(&mut t8, b"c", b"c2");
    t8.flush().unwrap();
    t8.abort().unwrap();
    let abort = hw() - 1;
    // Still open: b3.
    let mut t9 = TransactionalProducer::new(&log, TransactionalConfig::new("t9")).unwrap();
    t9.begin().unwrap();
    let open_txn = hw();
    send(&mut t9, b"b", b"b3");
    t9.flush().unwrap();
    let (p7, p8) = (t7.producer_id().0, t8.producer_id().0);
    // Roll: plain records of one more key, superseding one another.
    let mut last_z = None;
    let mut i = 0;
    while segment_bases(&pdir).len() < 2 {
        let v = format!("z{i:0>200}");
        last_z = Some(append(&log, topic, &[(Some(b"z"), Some(v.as_bytes()))], NOW)[0].clone());
        i += 1;
    }
    let last_z = last_z.unwrap();
    assert_eq!(
        segment_bases(&pdir),
        vec![0, last_z.0],
        "the last z opened the active segment"
    );
    let report = clean_once(&log, NOW).unwrap();
    assert_eq!(report.segments_compacted, 1);

    // Read everything, markers included.
    let mut data = Vec::new();
    let mut markers = Vec::new();
    let (mut pos, end) = log.offsets(topic, 0).unwrap();
    while pos < end {
        let batches = log.fetch(topic, 0, pos, 1 << 20).unwrap();
        assert!(!batches.is_empty(), "nothing at {pos} below {end}");
        for b in batches {
            b.verify_crc().unwrap();
            pos = b.header().last_offset() + 1;
            if b.header().is_control() {
                markers.push((b.header().base_offset, b.header().producer_id));
                continue;
            }
            for r in b.records(1 << 20).unwrap() {
                let r = r.unwrap();
                data.push((r.offset, r.key.unwrap().to_vec(), r.value.unwrap().to_vec()));
            }
        }
    }
    assert_eq!(markers, vec![(commit, p7), (abort, p8)]);
    let expected: Vec<(i64, Vec<u8>, Vec<u8>)> = vec![
        (a1, b"a".to_vec(), b"a1".to_vec()), // committed: supersedes a0
        (a1 + 1, b"b".to_vec(), b"b1".to_vec()), // the open b3 does not supersede it
        (open_txn, b"b".to_vec(), b"b3".to_vec()),
        (last_z.0, b"z".to_vec(), last_z.2.clone().unwrap()),
    ];
    assert_eq!(
        data, expected,
        "a0 at {a0} superseded, the aborted batch at {aborted} gone"
    );
    log.close().unwrap();
}

#[test]
fn background_cleaner_runs_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    // Log::open starts the background cleaner; no round runs for an hour, so the setup below
    // sees every segment, then a second log on the same data runs rounds every 20 ms.
    let log = Log::open(
        dir.path(),
        LogConfig {
            cleaner_interval_ms: 3_600_000,
            ..LogConfig::default()
        },
    )
    .unwrap();
    let topic = "bg";
    log.create_topic(
        topic,
        TopicConfig {
            retention_ms: Some(HOUR_MS),
            ..small_segments(1, 4096)
        },
    )
    .unwrap();
    // Timestamps from 1970: long past retention by the wall clock.
    fill(&log, topic, 100, |_| 1_000);
    let pdir = partition_dir(&log, topic);
    let bases = segment_bases(&pdir);
    assert!(bases.len() >= 3);
    log.close().unwrap();
    drop(log);
    let log = Log::open(
        dir.path(),
        LogConfig {
            cleaner_interval_ms: 20,
            ..LogConfig::default()
        },
    )
    .unwrap();
    // Bounded wait for the background rounds; the assertion is on what they did, not on time.
    let deadline = Instant::now() + Duration::from_secs(60);
    while segment_bases(&pdir).len() > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(segment_bases(&pdir), vec![*bases.last().unwrap()]);
    assert_eq!(log.offsets(topic, 0).unwrap().0, *bases.last().unwrap());
    log.close().unwrap();
}

#[test]
fn background_cleaner_stops_at_once_and_never_keeps_the_log_alive() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        LogConfig {
            cleaner_interval_ms: 3_600_000,
            ..LogConfig::default()
        },
    )
    .unwrap();
    let cleaner = Cleaner::start(&log);
    // Stops a thread waiting out an hour-long interval: were it to wait, this test would hang.
    drop(cleaner);

    // The thread holds the log weakly: once the last handle goes, the directory is free again.
    let _cleaner = Cleaner::start(&log);
    drop(log);
    let reopened = Log::open(dir.path(), LogConfig::default());
    assert!(reopened.is_ok(), "{:?}", reopened.err());
}

#[test]
fn io_budget_bounds_throughput_with_a_fake_clock() {
    let rate = 1u64 << 20;
    let mut budget = IoBudget::new(rate, 0);
    let burst = budget.burst_bytes();
    assert_eq!(burst, rate / 10);
    let mut rng = fastrand::Rng::with_seed(seed());
    let (mut now_ms, mut done) = (0i64, 0u64);
    for _ in 0..2_000 {
        let bytes = rng.u64(1..=256 << 10);
        now_ms += budget.charge(bytes, now_ms).as_millis() as i64;
        done += bytes; // the I/O happens now
        // Never ahead of the rate, beyond one burst.
        assert!(
            done as u128 * 1000 <= burst as u128 * 1000 + rate as u128 * now_ms as u128,
            "{done} bytes by {now_ms} ms"
        );
    }
    // And never slower than needed: the caller always had I/O waiting.
    let needed_ms = ((done - burst) as u128 * 1000).div_ceil(rate as u128) as i64;
    assert_eq!(now_ms, needed_ms);

    // After a long idle spell the bucket holds one burst, not the whole spell's worth.
    now_ms += 10_000;
    assert_eq!(budget.charge(burst, now_ms), Duration::ZERO);
    assert_eq!(budget.charge(rate / 2, now_ms), Duration::from_millis(500));
    // A clock reading from the past refills nothing.
    assert_eq!(
        budget.charge(rate, now_ms - 5_000),
        Duration::from_millis(1_500)
    );
}

#[test]
fn clean_once_is_paced_by_the_io_budget() {
    let dir = tempfile::tempdir().unwrap();
    let rate = 1u64 << 20; // the smallest budget allowed
    let log = Log::open(
        dir.path(),
        LogConfig {
            cleaner_io_bytes_per_s: rate,
            ..LogConfig::default()
        },
    )
    .unwrap();
    let topic = "paced";
    log.create_topic(
        topic,
        TopicConfig {
            segment_bytes_max: 64 << 10,
            ..compacted_topic()
        },
    )
    .unwrap();
    let mut rng = fastrand::Rng::with_seed(1);
    for i in 0..200 {
        let recs: Vec<(Vec<u8>, Vec<u8>)> = (0..8)
            .map(|j| {
                (
                    format!("k{}", (i * 8 + j) % 50).into_bytes(),
                    value(&mut rng, 200),
                )
            })
            .collect();
        let refs: Vec<KeyValue<'_>> = recs
            .iter()
            .map(|(k, v)| (Some(&k[..]), Some(&v[..])))
            .collect();
        append(&log, topic, &refs, NOW);
    }
    let pdir = partition_dir(&log, topic);
    let bases = segment_bases(&pdir);
    let total: u64 = bases.iter().map(|&b| segment_size(&pdir, b)).sum();
    let closed: u64 = total - segment_size(&pdir, *bases.last().unwrap());
    // At least: the key map reads everything, the survey every closed segment.
    let floor = Duration::from_millis(((total + closed - rate / 10) * 1000 / rate) as u64);
    assert!(floor > Duration::from_millis(300), "{floor:?}");
    // A lower bound only: load on the machine can make the round slower, never faster, so this
    // cannot flake; it fails only if the cleaner ignores its I/O budget.
    let t = Instant::now();
    let report = clean_once(&log, NOW).unwrap();
    assert!(
        t.elapsed() >= floor,
        "took {:?}, budget allows no less than {floor:?}",
        t.elapsed()
    );
    assert_eq!(report.segments_compacted, bases.len() - 1);
    log.close().unwrap();
}

#[test]
fn concurrent_rounds_never_step_on_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleaner_interval_ms: 1,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config).unwrap();
    let topic = "busy";
    log.create_topic(topic, compacted_topic()).unwrap();
    let mut rng = fastrand::Rng::with_seed(seed());
    let mut written = Vec::new();
    for _ in 0..300 {
        let (k, v) = (format!("k{}", rng.u8(0..8)), value(&mut rng, 30));
        written.extend(append(&log, topic, &[(Some(k.as_bytes()), Some(&v))], NOW));
    }
    let bases = segment_bases(&partition_dir(&log, topic));
    assert!(bases.len() >= 4, "{bases:?}");
    let cleaner = Cleaner::start(&log);
    let rounds: Vec<_> = (0..3)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    clean_once(&log, NOW).expect("a round beside others");
                }
            })
        })
        .collect();
    for r in rounds {
        r.join().unwrap();
    }
    cleaner.stop();
    let expected = compaction_model(&written, *bases.last().unwrap());
    assert_eq!(read(&log, topic), expected);
    log.close().unwrap();
}
