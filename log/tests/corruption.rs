//! Bytes flipped in a closed segment and in the tail: opening reports where, recovers what is
//! intact, and no read panics.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use weir_log::{Acks, Error, Log, LogConfig};

use crate::common::{batch_of, read_all, small_segments};

const TOPIC: &str = "c";

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join(TOPIC).join("0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// 300 batches of 3 records each across several 8 KiB segments.
fn build(dir: &Path) {
    let log = Log::open(dir, LogConfig::default()).unwrap();
    log.create_topic(TOPIC, small_segments(1, 8192)).unwrap();
    for i in 0..300 {
        let values: Vec<Vec<u8>> = (0..3)
            .map(|j| format!("value-{i}-{j}-padding-padding").into_bytes())
            .collect();
        log.append(TOPIC, 0, batch_of(&values, 1000 + i), Acks::Leader)
            .unwrap();
    }
    log.close().unwrap();
}

fn flip(path: &Path, position: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, position).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, position).unwrap();
}

#[test]
fn flipped_byte_in_a_closed_segment_is_reported_on_read_after_clean_open() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let segs = segment_files(dir.path());
    assert!(
        segs.len() >= 3,
        "expected several segments, got {}",
        segs.len()
    );
    flip(&segs[1], 200); // inside the second segment's third-or-so batch
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert!(
        log.recovery_report().is_empty(),
        "a clean open does not re-read closed segments"
    );
    let err = read_all(&log, TOPIC, 0, 0).unwrap_err();
    match err {
        Error::Corrupt {
            segment, offset, ..
        } => {
            assert_eq!(segment, segs[1]);
            assert!(offset >= 0);
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    // Everything before the bad batch and in later segments still reads.
    let first_of_third: i64 = segs[2]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let tail = read_all(&log, TOPIC, 0, first_of_third).unwrap();
    assert_eq!(tail.len() as i64, 900 - first_of_third);
}

#[test]
fn unclean_open_truncates_corrupt_batches_and_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let segs = segment_files(dir.path());
    let last = segs.last().unwrap().clone();
    let last_len = std::fs::metadata(&last).unwrap().len();
    flip(&segs[1], 200);
    flip(&last, last_len - 10); // in the tail's last batch
    // Simulate a crash with no recovery point: everything is re-read.
    std::fs::remove_file(dir.path().join(weir_log::CLEAN_SHUTDOWN_FILE)).unwrap();
    std::fs::remove_file(dir.path().join(TOPIC).join("0").join("recovery-point")).unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let report = log.recovery_report();
    // The damaged batch of the second segment and everything after it go, later segments too
    // (offsets must follow on; Kafka's recovery does the same), each one reported.
    assert_eq!(report.len(), segs.len() - 1, "{report:?}");
    assert_eq!(report[0].segment, segs[1]);
    assert!(report[0].position > 0 && report[0].bytes_removed > 0);
    assert!(
        report[0].reason.to_lowercase().contains("crc"),
        "{}",
        report[0].reason
    );
    for (t, seg) in report[1..].iter().zip(&segs[2..]) {
        assert_eq!(&t.segment, seg);
        assert!(
            t.reason.contains("follows a damaged segment"),
            "{}",
            t.reason
        );
    }
    // What is intact reads back, in order, with no error.
    let records = read_all(&log, TOPIC, 0, 0).unwrap();
    let second_base: i64 = segs[1]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(records.len() > second_base as usize);
    for w in records.windows(2) {
        assert_eq!(w[0].offset + 1, w[1].offset);
    }
    for r in &records {
        let v = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
        let batch = r.offset / 3;
        assert_eq!(v, format!("value-{batch}-{}-padding-padding", r.offset % 3));
    }
    // The log takes new appends after the truncated tail.
    let cut_at = report[0].offset;
    let hw = log.offsets(TOPIC, 0).unwrap().1;
    assert_eq!(
        hw, cut_at,
        "everything from the damaged batch on was cut off"
    );
    assert_eq!(records.len() as i64, cut_at);
    let info = log
        .append(TOPIC, 0, batch_of(&[b"after".to_vec()], 5), Acks::All)
        .unwrap();
    assert_eq!(info.base_offset, cut_at);
}

#[test]
fn torn_tail_is_truncated_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let last = segment_files(dir.path()).last().unwrap().clone();
    // Half a batch at the end, as a crash in the middle of a write leaves it.
    let half = &batch_of(&vec![b"torn".to_vec(); 5], 1)[..40];
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    std::io::Write::write_all(&mut &f, half).unwrap();
    std::fs::remove_file(dir.path().join(weir_log::CLEAN_SHUTDOWN_FILE)).unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let report = log.recovery_report();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].bytes_removed, 40);
    assert_eq!(report[0].offset, 900);
    assert_eq!(read_all(&log, TOPIC, 0, 0).unwrap().len(), 900);
}

#[test]
fn garbage_segment_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let mut rng = fastrand::Rng::with_seed(crate::common::seed());
    let segs = segment_files(dir.path());
    for seg in &segs {
        let len = std::fs::metadata(seg).unwrap().len();
        for _ in 0..20 {
            flip(seg, rng.u64(0..len));
        }
    }
    // Clean open: reads return errors, never panic. Damage to the framing is found (and cut off,
    // and reported) even after a clean shutdown.
    let reported_on_clean_open = {
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        for from in [0, 100, 450, 899] {
            let _ = read_all(&log, TOPIC, 0, from);
        }
        let reported = !log.recovery_report().is_empty();
        let _ = log.offset_for_timestamp(TOPIC, 0, 1100);
        log.close().unwrap();
        reported
    };
    // Unclean open with full recovery: whatever survives reads without error.
    std::fs::remove_file(dir.path().join(weir_log::CLEAN_SHUTDOWN_FILE)).unwrap();
    let _ = std::fs::remove_file(dir.path().join(TOPIC).join("0").join("recovery-point"));
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert!(reported_on_clean_open || !log.recovery_report().is_empty());
    let records = read_all(&log, TOPIC, 0, 0).unwrap();
    for r in &records {
        let v = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
        assert_eq!(
            v,
            format!("value-{}-{}-padding-padding", r.offset / 3, r.offset % 3)
        );
    }
}
