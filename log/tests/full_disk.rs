//! A real full disk: the log on a tmpfs of a few MiB, written until the file system says ENOSPC.
//! The writer must get a clear error (never a crash: an index page written through a memory map
//! on a full tmpfs is a SIGBUS), nothing acknowledged may go missing, nothing half-written may be
//! read, and writing must resume once space is freed — in the same process and after a restart.

use std::collections::BTreeMap;
use std::io;

use weir_log::{Acks, Error, Log, LogConfig};
use weir_test_support::small_disk::SmallDisk;

use crate::common::{batch_of, read_all, small_segments};

const TOPIC: &str = "full";
const PARTITIONS: i32 = 2;

/// What was acknowledged: (partition, offset) → value.
type Acked = BTreeMap<(i32, i64), Vec<u8>>;

/// Appends batches with acks=all, alternating partitions, until one fails; returns the error.
fn append_until_full(log: &Log, acked: &mut Acked, tag: &str) -> Error {
    for batch_no in 0u64.. {
        let partition = (batch_no % PARTITIONS as u64) as i32;
        let values: Vec<Vec<u8>> = (0..8)
            .map(|i| format!("{tag}:{batch_no}:{i}:{}", "v".repeat(900)).into_bytes())
            .collect();
        match log.append(
            TOPIC,
            partition,
            batch_of(&values, 1_700_000_000_000),
            Acks::All,
        ) {
            Ok(info) => {
                for (i, v) in values.into_iter().enumerate() {
                    acked.insert((partition, info.base_offset + i as i64), v);
                }
            }
            Err(e) => return e,
        }
        assert!(batch_no < 1_000_000, "the disk never filled");
    }
    unreachable!()
}

fn is_disk_full(e: &Error) -> bool {
    match e {
        Error::Io { source, .. } => source.kind() == io::ErrorKind::StorageFull,
        Error::NotDurable(reason) => reason.contains("No space left"),
        _ => false,
    }
}

/// Every record of every partition equals what was acknowledged: none lost, none extra (a
/// failed append leaves nothing readable), offsets dense from 0.
fn assert_log_holds(log: &Log, acked: &Acked) {
    for p in 0..PARTITIONS {
        let records = read_all(log, TOPIC, p, 0).unwrap();
        let want: Vec<(i64, &[u8])> = acked
            .range((p, 0)..(p + 1, 0))
            .map(|((_, o), v)| (*o, v.as_slice()))
            .collect();
        let got: Vec<(i64, &[u8])> = records
            .iter()
            .map(|r| (r.offset, r.value.as_deref().unwrap_or_default()))
            .collect();
        assert_eq!(
            got.len(),
            want.len(),
            "partition {p}: records read vs acknowledged"
        );
        assert!(
            got == want,
            "partition {p}: the records read differ from those acknowledged"
        );
        for (i, (o, _)) in got.iter().enumerate() {
            assert_eq!(*o, i as i64, "partition {p}: offsets are dense");
        }
    }
}

/// Fills the disk, checks, frees space, fills again, restarts on the full disk, frees the rest.
fn fill_free_restart(segment_bytes_max: u64) -> Error {
    let disk = SmallDisk::mount(6 << 20);
    let ballast = disk.ballast("ballast", 1 << 20);
    let ballast_after_restart = disk.ballast("ballast-2", 1 << 20);
    let dir = disk.path().join("data");
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    log.create_topic(TOPIC, small_segments(PARTITIONS, segment_bytes_max))
        .unwrap();
    let mut acked = Acked::new();

    let first = append_until_full(&log, &mut acked, "a");
    eprintln!("full after {} records: {first}", acked.len());
    let e = &first;
    assert!(is_disk_full(e), "a full disk is reported as such, got: {e}");
    assert!(!acked.is_empty(), "some appends fit before the disk filled");
    // Full, it stays an error, not a crash or a hang, and leaves nothing behind.
    for _ in 0..3 {
        let e = append_until_full(&log, &mut acked, "b");
        assert!(is_disk_full(&e), "still full: {e}");
    }
    assert_log_holds(&log, &acked);

    disk.free(&ballast);
    let before = acked.len();
    let _ = append_until_full(&log, &mut acked, "c");
    assert!(
        acked.len() > before,
        "appends resume once space is freed ({} free bytes)",
        disk.free_bytes()
    );
    assert_log_holds(&log, &acked);

    // A restart on the full disk recovers everything acknowledged, and takes writes again once
    // space is freed.
    drop(log);
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    assert_log_holds(&log, &acked);
    disk.free(&ballast_after_restart);
    let before = acked.len();
    let e = append_until_full(&log, &mut acked, "d");
    assert!(
        acked.len() > before,
        "appends resume after a restart once space is freed"
    );
    assert!(is_disk_full(&e), "and fill the disk again: {e}");
    assert_log_holds(&log, &acked);
    drop(log);
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    assert_log_holds(&log, &acked);
    first
}

#[test]
fn segments_rolling_on_a_full_disk_fail_at_their_index_and_writing_resumes_once_space_is_freed() {
    // Segments of 256 KiB: new segments keep coming, and their index files are what fills up.
    let e = fill_free_restart(256 << 10);
    assert!(e.to_string().contains("index"), "{e}");
}

#[test]
fn a_batch_cut_off_by_a_full_disk_is_never_served_and_writing_resumes_once_space_is_freed() {
    // One segment larger than the disk: a batch's write itself runs out of space halfway.
    let e = fill_free_restart(64 << 20);
    assert!(
        e.to_string()
            .ends_with(".log: No space left on device (os error 28)"),
        "{e}"
    );
}
