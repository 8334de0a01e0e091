//! Issue 18's defects of the log: each one gave a wrong answer or lost data without an error.
//! Every test here failed before its fix.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use weir_log::format::{BatchBuilder, BatchOptions, Record};
use weir_log::{
    Acks, Error, Log, LogConfig, Producer, ProducerConfig, ProducerRecord, TopicConfig,
    TopicPartition,
};

use crate::common::{batch_of, open, read_all, small_segments};

/// A scratch directory in memory where there is one: the property tests open and close logs
/// hundreds of times, and each close fsyncs.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

fn partition_dir(dir: &Path, topic: &str) -> PathBuf {
    dir.join(topic).join("0")
}

fn log_files(dir: &Path, topic: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(partition_dir(dir, topic))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// The first offset with a timestamp ≥ `target`, by reading every record.
fn first_at_or_after(records: &[Record], target: i64) -> Option<i64> {
    records
        .iter()
        .find(|r| r.timestamp >= target)
        .map(|r| r.offset)
}

/// Defect 1: five processes each produce 100 records; a seek to timestamp 0 skipped the first
/// batch of the segment because the time index, written after a reopen, said -1.
#[test]
fn time_seek_after_reopens_finds_the_first_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic("t", TopicConfig::default()).unwrap();
        log.close().unwrap();
    }
    for round in 0..5i64 {
        let log = open(dir.path());
        let values: Vec<Vec<u8>> = (0..100)
            .map(|i| {
                format!(
                    "{{\"round\":{round},\"i\":{i},\"pad\":\"................................\"}}"
                )
                .into_bytes()
            })
            .collect();
        log.append("t", 0, batch_of(&values, 1_000 + round), Acks::All)
            .unwrap();
        log.close().unwrap();
    }
    let log = Log::open_read_only(dir.path()).unwrap();
    assert_eq!(log.offset_for_timestamp("t", 0, 0).unwrap(), Some(0));
    assert_eq!(log.offset_for_timestamp("t", 0, 1_000).unwrap(), Some(0));
    assert_eq!(log.offset_for_timestamp("t", 0, 1_001).unwrap(), Some(100));
    assert_eq!(log.offset_for_timestamp("t", 0, 1_004).unwrap(), Some(400));
    assert_eq!(log.offset_for_timestamp("t", 0, 1_005).unwrap(), None);
}

/// Defect 1's second face: a reopened segment took the first new batch's timestamp as its
/// largest, hiding its older, later-stamped records from seeks (and ageing it for retention).
#[test]
fn a_reopened_segment_keeps_its_largest_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic("t", TopicConfig::default()).unwrap();
        log.append("t", 0, batch_of(&[b"new".to_vec()], 9_000), Acks::All)
            .unwrap();
        log.close().unwrap();
    }
    let log = open(dir.path());
    log.append("t", 0, batch_of(&[b"old".to_vec()], 100), Acks::All)
        .unwrap();
    assert_eq!(log.offset_for_timestamp("t", 0, 5_000).unwrap(), Some(0));
    log.close().unwrap();
}

#[derive(Debug, Clone)]
struct TimedBatch {
    timestamps: Vec<i64>,
    reopen_before: bool,
}

fn timed_batches() -> impl Strategy<Value = Vec<TimedBatch>> {
    prop::collection::vec(
        (prop::collection::vec(0i64..2_000, 1..8), any::<bool>()).prop_map(|(timestamps, r)| {
            TimedBatch {
                timestamps,
                reopen_before: r,
            }
        }),
        1..60,
    )
}

/// Writes `batches` to topic `t` (compacted if asked) and closes the log; `clean` runs one
/// compaction round first, which leaves offset gaps in the closed segments.
fn write_timed(dir: &Path, batches: &[TimedBatch], compacted: bool, clean: bool) {
    let config = TopicConfig {
        compacted,
        ..small_segments(1, 4096)
    };
    let small_index = LogConfig {
        index_interval_bytes: 256,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir, small_index.clone()).unwrap();
    log.create_topic("t", config).unwrap();
    for (i, b) in batches.iter().enumerate() {
        if b.reopen_before {
            log.close().unwrap();
            log = Log::open(dir, small_index.clone()).unwrap();
        }
        let mut builder = BatchBuilder::new(BatchOptions::default());
        for (j, ts) in b.timestamps.iter().enumerate() {
            let key = format!("k{}", (i * 7 + j) % 5);
            builder.push(
                *ts,
                Some(key.as_bytes()),
                Some(b"value-padding-padding"),
                &[],
            );
        }
        log.append("t", 0, builder.finish(0), Acks::Leader).unwrap();
    }
    if clean {
        weir_log::clean_once(&log, 1_700_000_000_000).unwrap();
    }
    log.close().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, max_shrink_iters: 256, ..ProptestConfig::default() })]

    /// Every timestamp seek answers what a full read answers, whatever the reopen points,
    /// segment rolls, out-of-order timestamps and index density.
    #[test]
    fn time_seek_equals_a_full_read(batches in timed_batches(), targets in prop::collection::vec(-5i64..2_100, 1..12)) {
        let dir = scratch();
        write_timed(dir.path(), &batches, false, false);
        for log in [Log::open_read_only(dir.path()).unwrap(), open(dir.path())] {
            let records = read_all(&log, "t", 0, 0).unwrap();
            for &t in &targets {
                prop_assert_eq!(log.offset_for_timestamp("t", 0, t).unwrap(), first_at_or_after(&records, t), "target {}", t);
            }
            let _ = log.close();
        }
    }
}

/// Defect 2: with the producer-id allocator's file lost, the next producer got an id already
/// used; its batches matched the old ones' sequences and were dropped as retries while the
/// producer was told they were written.
#[test]
fn a_lost_producer_id_file_does_not_make_writes_vanish() {
    let dir = tempfile::tempdir().unwrap();
    let produce_50 = |from: usize| {
        let log = open(dir.path());
        if from == 0 {
            log.create_topic("t", TopicConfig::default()).unwrap();
        }
        let p = Producer::new(
            &log,
            ProducerConfig {
                acks: Acks::All,
                idempotent: true,
                ..ProducerConfig::default()
            },
        )
        .unwrap();
        for i in from..from + 50 {
            let v = format!("{i}");
            p.send(ProducerRecord::new("t", v.as_bytes()).partition(0))
                .unwrap();
        }
        p.close().unwrap();
        log.close().unwrap();
    };
    produce_50(0);
    let ids_file = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains("producer-ids")
        })
        .expect("the allocator's file");
    std::fs::remove_file(ids_file).unwrap();
    produce_50(50);
    let log = Log::open_read_only(dir.path()).unwrap();
    assert_eq!(log.offsets("t", 0).unwrap(), (0, 100));
    let values: Vec<String> = read_all(&log, "t", 0, 0)
        .unwrap()
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    let expected: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    assert_eq!(values, expected);
}

/// Defect 2's mechanism: a batch with the sequences of one in the log but other bytes is not a
/// retry; it is refused, never acknowledged with the old batch's offsets.
#[test]
fn a_duplicate_must_be_the_same_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("t", TopicConfig::default()).unwrap();
    let (pid, epoch) = log.init_producer_id().unwrap();
    let batch = |value: &[u8]| {
        let mut b = BatchBuilder::new(BatchOptions {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: 0,
            ..BatchOptions::default()
        });
        b.push(1, None, Some(value), &[]);
        b.finish(0)
    };
    let first = log.append("t", 0, batch(b"first"), Acks::All).unwrap();
    assert!(!first.duplicate);
    // The very same batch again: a retry, answered with the original offsets.
    let retry = log.append("t", 0, batch(b"first"), Acks::All).unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, first.base_offset);
    // Same sequences, other content: refused.
    let err = log.append("t", 0, batch(b"other"), Acks::All).unwrap_err();
    assert!(matches!(err, Error::SequenceConflict { .. }), "{err}");
    assert_eq!(log.offsets("t", 0).unwrap(), (0, 1));
    log.close().unwrap();
}

fn two_batches_of_100(dir: &Path) {
    let log = open(dir);
    log.create_topic("t", TopicConfig::default()).unwrap();
    for round in 0..2 {
        let values: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("{round}-{i}").into_bytes())
            .collect();
        log.append("t", 0, batch_of(&values, 1_000), Acks::All)
            .unwrap();
    }
    log.close().unwrap();
}

/// Byte position of the second batch in the partition's first segment.
fn second_batch_position(dir: &Path) -> u64 {
    let seg = &log_files(dir, "t")[0];
    let bytes = std::fs::read(seg).unwrap();
    let len = i32::from_be_bytes(bytes[8..12].try_into().unwrap());
    12 + len as u64
}

fn write_at(path: &Path, position: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, position).unwrap();
}

/// Defect 3: a length field made huge after a clean shutdown cut the tail off silently; the
/// next append reused its offsets.
#[test]
fn a_corrupt_tail_after_a_clean_shutdown_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    two_batches_of_100(dir.path());
    let pos = second_batch_position(dir.path());
    write_at(
        &log_files(dir.path(), "t")[0],
        pos + 8,
        &0x7fff_ffffu32.to_be_bytes(),
    );
    assert!(dir.path().join(weir_log::CLEAN_SHUTDOWN_FILE).exists());
    // A reader: an error naming the segment and the byte.
    let err = Log::open_read_only(dir.path())
        .and_then(|log| log.describe_topic("t"))
        .unwrap_err();
    match &err {
        Error::Corrupt { position, .. } => assert_eq!(*position, pos, "{err}"),
        other => panic!("expected a corruption error, got {other}"),
    }
    // A writer: the damage is cut off and reported (when the partition opens, on first use)
    // before any offset is handed out again.
    let log = open(dir.path());
    assert_eq!(log.offsets("t", 0).unwrap(), (0, 100));
    let report = log.recovery_report();
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(report[0].position, pos);
    assert_eq!(report[0].offset, 100);
    assert_eq!(log.offsets("t", 0).unwrap(), (0, 100));
    log.close().unwrap();
}

/// Defect 3's second face: the base offset lies outside the CRC; a damaged one made a consumer
/// skip the batch's records as if they were before its position.
#[test]
fn a_damaged_base_offset_is_an_error_not_a_skip() {
    for (name, damage) in [("down", 0x00u8), ("up", 0x10u8)] {
        let dir = tempfile::tempdir().unwrap();
        two_batches_of_100(dir.path());
        let pos = second_batch_position(dir.path());
        // Bytes 6..8 of the base offset: 100 becomes 0x..64 ^ damage or 0 in its low bytes.
        write_at(&log_files(dir.path(), "t")[0], pos + 6, &[damage, damage]);
        let read_only = Log::open_read_only(dir.path()).and_then(|log| read_all(&log, "t", 0, 0));
        assert!(
            read_only.is_err(),
            "{name}: a reader read {} records",
            read_only.unwrap().len()
        );
        let log = open(dir.path());
        let records = read_all(&log, "t", 0, 0).unwrap();
        assert!(
            !log.recovery_report().is_empty(),
            "{name}: {} records, nothing reported",
            records.len()
        );
        assert_eq!(records.len(), 100, "{name}");
        log.close().unwrap();
    }
}

/// Every batch of a segment file: (position, base offset, last offset).
fn batch_positions(path: &Path) -> Vec<(u64, i64, i64)> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 27 <= bytes.len() {
        let field = |at: usize| bytes[pos + at..pos + at + 4].try_into().unwrap();
        let base = i64::from_be_bytes(bytes[pos..pos + 8].try_into().unwrap());
        let len = i32::from_be_bytes(field(8)) as usize;
        // baseOffset 8, batchLength 4, partitionLeaderEpoch 4, magic 1, crc 4, attributes 2.
        let last_delta = i32::from_be_bytes(field(23));
        out.push((pos as u64, base, base + i64::from(last_delta)));
        pos += 12 + len;
    }
    out
}

/// A compacted topic, cleaned once and closed cleanly; returns the records a reader gets. Every
/// other batch holds only keys written again later, so cleaning removes it whole and leaves a
/// gap in the offsets of the closed segments.
fn cleaned_topic(dir: &Path) -> Vec<(i64, Vec<u8>)> {
    let log = open(dir);
    log.create_topic(
        "t",
        TopicConfig {
            compacted: true,
            ..small_segments(1, 4096)
        },
    )
    .unwrap();
    for i in 0..80 {
        let mut builder = BatchBuilder::new(BatchOptions::default());
        for j in 0..3 {
            let key = if i % 2 == 0 {
                format!("again-{j}")
            } else {
                format!("once-{i}-{j}")
            };
            builder.push(1_000 + i, Some(key.as_bytes()), Some(b"value-padding"), &[]);
        }
        log.append("t", 0, builder.finish(0), Acks::Leader).unwrap();
    }
    weir_log::clean_once(&log, 1_700_000_000_000).unwrap();
    log.close().unwrap();
    read_everything(&Log::open_read_only(dir).unwrap()).unwrap()
}

/// Defect 10: in a compacted topic, offsets may have gaps, so a base offset that a flipped bit
/// raised (it lies outside the CRC) passed every check: readers got records at offsets they
/// never had. Each batch must now start where the one before ended or where the cleaner's
/// witness of gaps says, cleaned segment or not.
#[test]
fn a_raised_base_offset_in_a_compacted_topic_is_an_error() {
    // (which segment: the first, cleaned, with gaps; or the last, active, never cleaned) ×
    // (which batch in it: the first, the one after a gap, the last)
    for (segment, which) in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2)] {
        let dir = scratch();
        let intact = cleaned_topic(dir.path());
        let files = log_files(dir.path(), "t");
        assert!(files.len() >= 3, "{files:?}");
        let path = if segment == 0 {
            files[0].clone()
        } else {
            files.last().unwrap().clone()
        };
        let batches = batch_positions(&path);
        // The first batch that does not start where the one before it ended.
        let after_gap = batches
            .windows(2)
            .find(|w| w[1].1 != w[0].2 + 1)
            .map(|w| w[1]);
        if segment == 0 {
            assert!(
                after_gap.is_some(),
                "cleaning left no gap in {}",
                path.display()
            );
        }
        let (pos, base, _) = match which {
            0 => batches[0],
            1 => after_gap.unwrap(),
            _ => *batches.last().unwrap(),
        };
        let next_pos = batches.iter().map(|b| b.0).find(|&p| p > pos);
        // Up by one: still above the batch before it, still below the one after it (gaps are
        // wider than that here, and the last batch has nothing after it).
        write_at(&path, pos, &(base + 1).to_be_bytes());
        let what = format!("batch at byte {pos} of {}", path.display());
        // The error names the batch, or the one after it (whose start no longer follows on).
        let located = |e: &Error| match e {
            Error::Corrupt { position, .. } => *position == pos || Some(*position) == next_pos,
            _ => false,
        };
        let read_only = Log::open_read_only(dir.path()).and_then(|log| read_everything(&log));
        match read_only {
            Err(e) => assert!(located(&e), "{what}: {e}"),
            Ok(got) => panic!(
                "{what}: a reader read {} records, intact: {}",
                got.len(),
                got == intact
            ),
        }
        // A writer cuts it off and says so, or (where the damage lies before what it checks on
        // a clean open) refuses to read it.
        let log = open(dir.path());
        match read_everything(&log) {
            Err(e) => assert!(located(&e), "{what}: {e}"),
            Ok(got) => {
                assert!(
                    !log.recovery_report().is_empty(),
                    "{what}: nothing reported"
                );
                assert!(
                    got.len() < intact.len(),
                    "{what}: the damaged batch was kept"
                );
                assert_eq!(got[..], intact[..got.len()], "{what}");
            }
        }
        log.close().unwrap();
    }
}

/// Defect 10's other side: a cleaned segment whose witness of gaps is lost is reported when a
/// writer opens it, and refused to a reader, never read as if nothing were missing.
#[test]
fn a_lost_witness_of_gaps_is_reported() {
    let dir = scratch();
    let intact = cleaned_topic(dir.path());
    let first = &log_files(dir.path(), "t")[0];
    let witness = first.with_extension("gaps");
    assert!(witness.exists());
    std::fs::remove_file(&witness).unwrap();
    let read_only = Log::open_read_only(dir.path()).and_then(|log| read_everything(&log));
    assert!(
        matches!(read_only, Err(Error::Corrupt { .. })),
        "{read_only:?}"
    );
    // (A writer opens a partition on its first use.)
    let log = open(dir.path());
    let got = read_everything(&log).unwrap();
    let report = log.recovery_report();
    assert_eq!(got.len(), intact.len(), "{report:?}");
    assert_eq!(got, intact);
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(report[0].bytes_removed, 0);
    assert!(report[0].reason.contains("no witness"), "{report:?}");
    log.close().unwrap();
    // Written again: a reader reads it all.
    assert!(witness.exists());
    let log = Log::open_read_only(dir.path()).unwrap();
    assert_eq!(read_everything(&log).unwrap(), intact);
}

#[derive(Debug, Clone)]
enum Damage {
    /// XOR a byte of the n-th file (sorted) at a fraction of its length.
    Flip { file: usize, at: f64, xor: u8 },
    /// Cut the n-th file at a fraction of its length.
    Truncate { file: usize, at: f64 },
    /// Remove the n-th file.
    Remove { file: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<usize>(), 0.0f64..1.0, 1u8..=255).prop_map(|(file, at, xor)| Damage::Flip { file, at, xor }),
        1 => (any::<usize>(), 0.0f64..1.0).prop_map(|(file, at)| Damage::Truncate { file, at }),
        1 => any::<usize>().prop_map(|file| Damage::Remove { file }),
    ]
}

fn apply(dir: &Path, damage: &Damage) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(partition_dir(dir, "t"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let pick = |n: usize| files[n % files.len()].clone();
    match *damage {
        Damage::Flip { file, at, xor } => {
            let path = pick(file);
            let len = std::fs::metadata(&path).unwrap().len();
            if len == 0 {
                return format!("nothing to flip in {}", path.display());
            }
            let pos = ((len as f64 * at) as u64).min(len - 1);
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            let mut b = [0u8; 1];
            f.read_exact_at(&mut b, pos).unwrap();
            f.write_all_at(&[b[0] ^ xor], pos).unwrap();
            format!("flip {pos} of {}", path.display())
        }
        Damage::Truncate { file, at } => {
            let path = pick(file);
            let len = std::fs::metadata(&path).unwrap().len();
            let to = (len as f64 * at) as u64;
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(to)
                .unwrap();
            format!("truncate {} to {to}", path.display())
        }
        Damage::Remove { file } => {
            let path = pick(file);
            std::fs::remove_file(&path).unwrap();
            format!("remove {}", path.display())
        }
    }
}

/// What a reader got: every record, in order, or the first error.
fn read_everything(log: &Log) -> Result<Vec<(i64, Vec<u8>)>, Error> {
    let records = read_all(log, "t", 0, 0)?;
    Ok(records
        .into_iter()
        .map(|r| (r.offset, r.value.map(|v| v.to_vec()).unwrap_or_default()))
        .collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 256, ..ProptestConfig::default() })]

    /// Damage anywhere in a partition's files, after a clean shutdown: a reader or writer gets
    /// all the data, or an error, or (a writer) a recovery report naming what it cut off. Never
    /// less data and no word of it.
    #[test]
    fn damage_gives_the_data_or_a_located_error(damages in prop::collection::vec(damage(), 1..4), dense in any::<bool>(), cleaned in any::<bool>()) {
        let dir = scratch();
        let batches: Vec<TimedBatch> = (0..40)
            .map(|i| TimedBatch { timestamps: vec![1_000 + i; 3], reopen_before: i % 13 == 0 })
            .collect();
        // Compacted, and cleaned or not: a cleaned segment has gaps between its offsets.
        write_timed(dir.path(), &batches, !dense, !dense && cleaned);
        let intact = read_everything(&Log::open_read_only(dir.path()).unwrap()).unwrap();
        let what: Vec<String> = damages.iter().map(|d| apply(dir.path(), d)).collect();
        if let Ok(log) = Log::open_read_only(dir.path())
            && let Ok(got) = read_everything(&log)
        {
            prop_assert!(got == intact, "reader got {} of {} records after {:?}", got.len(), intact.len(), what);
        }
        if let Ok(log) = Log::open(dir.path(), LogConfig::default()) {
            let got = read_everything(&log);
            let reported = !log.recovery_report().is_empty();
            if let Ok(got) = got && !reported {
                prop_assert!(got == intact, "writer got {} of {} records, nothing reported, after {:?}", got.len(), intact.len(), what);
            }
            let _ = log.close();
        }
    }
}

/// Defect 4: a group's committed offset outlived its topic, so a consumer of the topic created
/// again under the same name skipped its first records.
#[test]
fn deleting_a_topic_deletes_its_committed_offsets() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic("t", TopicConfig::default()).unwrap();
        log.create_topic("other", TopicConfig::default()).unwrap();
        log.commit_offsets(
            "g",
            None,
            &[
                (TopicPartition::new("t", 0), 100),
                (TopicPartition::new("other", 0), 7),
            ],
        )
        .unwrap();
        log.delete_topic("t").unwrap();
        log.create_topic("t", TopicConfig::default()).unwrap();
        assert_eq!(log.committed_offset("g", "t", 0).unwrap(), None);
        assert_eq!(log.committed_offset("g", "other", 0).unwrap(), Some(7));
        log.close().unwrap();
    }
    // And durably so.
    let log = open(dir.path());
    assert_eq!(log.committed_offset("g", "t", 0).unwrap(), None);
    assert_eq!(log.committed_offset("g", "other", 0).unwrap(), Some(7));
    log.close().unwrap();
}

/// Defect 5: topics named like the log's own files broke every writer.
#[test]
fn topic_names_never_collide_with_the_logs_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        ".clean-shutdown",
        "producer-ids",
        ".lock",
        "recovery-point",
        "topic.json",
    ];
    for round in 0..3 {
        let log = open(dir.path());
        for name in names {
            if round == 0 {
                log.create_topic(name, TopicConfig::default()).unwrap();
            }
            log.append(name, 0, batch_of(&[b"x".to_vec()], 1), Acks::All)
                .unwrap();
        }
        let (pid, _) = log.init_producer_id().unwrap();
        assert!(pid >= 0);
        log.close().unwrap();
        // A clean close is seen as one, whatever the topics are called.
        let log = open(dir.path());
        for name in names {
            log.offsets(name, 0).unwrap();
        }
        assert!(log.recovery_report().is_empty());
        log.close().unwrap();
    }
    let log = Log::open_read_only(dir.path()).unwrap();
    for name in names {
        assert_eq!(log.offsets(name, 0).unwrap(), (0, 3), "{name}");
    }
}

/// Files under `dir` this process holds: open descriptors and memory mappings. (Only those
/// under `dir`: the tests running beside this one open logs of their own.)
fn held_under(dir: &Path) -> usize {
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| {
        d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir))
            .count()
    });
    let maps = std::fs::read_to_string("/proc/self/maps").map_or(0, |m| {
        m.lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .filter(|path| Path::new(path).starts_with(dir))
            .count()
    });
    fds + maps
}

/// Defect 7: every partition of every topic was opened (a file and two index mappings per
/// segment) by every open of the data directory, so 10,000 partitions made each command slow
/// and heavy. Partitions now open on first use.
#[test]
fn opening_a_data_directory_does_not_open_every_partition() {
    let dir = tempfile::tempdir().unwrap();
    let partitions = 2_000;
    let dir_path = dir.path().canonicalize().unwrap();
    let held = || held_under(&dir_path);
    {
        let log = open(dir.path());
        log.create_topic(
            "wide",
            TopicConfig {
                partitions,
                ..TopicConfig::default()
            },
        )
        .unwrap();
        log.create_topic("narrow", TopicConfig::default()).unwrap();
        assert!(
            held() < 100,
            "creating a wide topic opened its partitions: {} files held",
            held()
        );
        log.append("wide", 1_999, batch_of(&[b"x".to_vec()], 1), Acks::All)
            .unwrap();
        log.close().unwrap();
    }
    let log = open(dir.path());
    log.append("narrow", 0, batch_of(&[b"y".to_vec()], 1), Acks::All)
        .unwrap();
    assert!(held() < 100, "{} files held for one append", held());
    // What was written to the wide topic is there when asked for.
    assert_eq!(log.offsets("wide", 1_999).unwrap(), (0, 1));
    assert_eq!(log.offsets("wide", 0).unwrap(), (0, 0));
    assert_eq!(log.describe_topic("wide").unwrap().partitions.len(), 2_000);
    log.close().unwrap();
    let log = Log::open_read_only(dir.path()).unwrap();
    assert_eq!(log.offsets("wide", 1_999).unwrap(), (0, 1));
}

/// Defect 9: a reader following a topic that the writer deleted waited forever.
#[test]
fn a_follower_hears_that_its_topic_was_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let writer = open(dir.path());
    writer.create_topic("t", TopicConfig::default()).unwrap();
    writer
        .append("t", 0, batch_of(&[b"x".to_vec()], 1), Acks::All)
        .unwrap();
    let reader = Log::open_read_only(dir.path()).unwrap();
    let mut consumer =
        weir_log::Consumer::new(&reader, weir_log::ConsumerConfig::default()).unwrap();
    consumer.assign(&[("t", 0)]).unwrap();
    let mut seen = 0;
    while seen < 1 {
        seen += consumer
            .poll(std::time::Duration::from_millis(50))
            .unwrap()
            .iter()
            .map(|b| b.records().count())
            .sum::<usize>();
    }
    writer.delete_topic("t").unwrap();
    // A bounded number of polls, not a timed assertion: the first poll after the deletion
    // already sees it; a few more allow for a writer midway through removing the files.
    let err = (0..100)
        .find_map(|_| consumer.poll(std::time::Duration::from_millis(10)).err())
        .expect("the consumer never heard of the deletion");
    assert!(
        matches!(err, Error::TopicDeleted(ref t) if t == "t"),
        "{err}"
    );
    writer.close().unwrap();
}

/// Defect 9: a long group name made a file name longer than the file system allows, so the
/// group's membership was never published (and nobody was told).
#[test]
fn a_long_group_name_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic("t", TopicConfig::default()).unwrap();
    let group = "g".repeat(5_000);
    let mut consumer = weir_log::Consumer::new(
        &log,
        weir_log::ConsumerConfig {
            group: Some(group.clone()),
            ..weir_log::ConsumerConfig::default()
        },
    )
    .unwrap();
    consumer.subscribe(&["t"]).unwrap();
    let _ = consumer
        .poll(std::time::Duration::from_millis(100))
        .unwrap();
    let reader = Log::open_read_only(dir.path()).unwrap();
    let info = reader.describe_group(&group).unwrap();
    let published = info.membership.expect("membership published");
    assert_eq!(published.group, group);
    assert_eq!(published.members.len(), 1);
    // Another long name with the same start is another group.
    assert!(reader.describe_group(&format!("{group}h")).is_err());
    drop(consumer);
    log.close().unwrap();
}

/// Defect 9: `partitions: 0` written into a topic's metadata made its data vanish without an
/// error.
#[test]
fn impossible_topic_metadata_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    two_batches_of_100(dir.path());
    let meta = dir.path().join("t").join("topic.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    assert!(text.contains("\"partitions\": 1"), "{text}");
    std::fs::write(
        &meta,
        text.replace("\"partitions\": 1", "\"partitions\": 0"),
    )
    .unwrap();
    for err in [
        Log::open_read_only(dir.path()).unwrap_err(),
        Log::open(dir.path(), LogConfig::default()).unwrap_err(),
    ] {
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("partitions"), "{err}");
    }
}

/// Defect 9: a failed write left an empty temporary file beside the one it was to replace, and a
/// producer that stopped at a failure called it "fenced" and said nothing of what it had kept.
#[test]
fn a_producer_that_stopped_says_what_it_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(
        "t",
        TopicConfig {
            batch_bytes_max: 4096,
            record_bytes_max: 4096,
            ..TopicConfig::default()
        },
    )
    .unwrap();
    let p = Producer::new(
        &log,
        ProducerConfig {
            acks: Acks::All,
            batch_bytes_max: 1 << 20,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    p.send_sync(ProducerRecord::new("t", b"kept").partition(0))
        .unwrap();
    // Two records that fit the topic's record limit, in one batch that does not fit its batch
    // limit: the log refuses the batch, and the producer stops.
    let big = vec![b'x'; 3000];
    p.send(ProducerRecord::new("t", &big).partition(0)).unwrap();
    p.send(ProducerRecord::new("t", &big).partition(0)).unwrap();
    assert!(p.flush().is_err());
    let err = p
        .send_sync(ProducerRecord::new("t", b"after").partition(0))
        .unwrap_err();
    match &err {
        Error::ProducerStopped {
            delivered_records, ..
        } => assert_eq!(*delivered_records, 1, "{err}"),
        other => panic!("expected ProducerStopped, got {other}"),
    }
    assert!(!err.to_string().contains("fenced"), "{err}");
    assert_eq!(p.delivered_records(), 1);
    let _ = p.close();
    log.close().unwrap();
    let leftovers: Vec<PathBuf> = walk(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
