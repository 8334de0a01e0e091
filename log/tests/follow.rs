//! Sharing a data directory: one writer process holds the lock; a read-only reader in another
//! process follows what it appends.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use weir_log::{Acks, Consumer, ConsumerConfig, Error, Log, LogConfig};

use crate::common::{batch_of, small_segments, spawn_child};

const TOPIC: &str = "follow";
const BATCHES: usize = 40;
const PER_BATCH: usize = 25;

#[test]
#[ignore = "child process of a_reader_process_follows_a_writer_process"]
fn follow_child_writer() {
    let Ok(dir) = std::env::var("WEIR_FOLLOW_DIR") else {
        return;
    };
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    log.create_topic(TOPIC, small_segments(2, 16 << 10))
        .unwrap();
    // Straight to the process stdout: the test harness captures println!.
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY {}", std::process::id()).unwrap();
    out.flush().unwrap();
    drop(out);
    for b in 0..BATCHES {
        let values: Vec<Vec<u8>> = (0..PER_BATCH)
            .map(|i| format!("{b}-{i}").into_bytes())
            .collect();
        log.append(
            TOPIC,
            (b % 2) as i32,
            batch_of(&values, b as i64),
            Acks::Leader,
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    // Stay alive (holding the lock) until the parent has read everything and killed us.
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_reader_process_follows_a_writer_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_child(
        "follow::follow_child_writer",
        &[("WEIR_FOLLOW_DIR", dir.path().display().to_string())],
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let pid: u32 = loop {
        let line = lines.next().expect("child exited early").unwrap();
        // The harness may print "test … ... " on the same line first.
        if let Some(i) = line.find("READY ") {
            break line[i + 6..].trim().parse().unwrap();
        }
    };
    // A second writer is refused, naming the holder.
    match Log::open(dir.path(), LogConfig::default()) {
        Err(Error::Locked { holder, .. }) => assert_eq!(holder, Some(pid)),
        other => panic!("expected Locked, got {other:?}"),
    }
    let log = Log::open_read_only(dir.path()).unwrap();
    let mut consumer = Consumer::new(&log, ConsumerConfig::default()).unwrap();
    consumer.assign(&[(TOPIC, 0), (TOPIC, 1)]).unwrap();
    consumer.seek_to_beginning().unwrap();
    let mut seen: [Vec<(i64, String)>; 2] = [Vec::new(), Vec::new()];
    while seen[0].len() + seen[1].len() < BATCHES * PER_BATCH {
        for b in consumer.poll(Duration::from_millis(200)).unwrap() {
            for r in b.records() {
                let r = r.unwrap();
                seen[b.partition as usize].push((
                    r.offset,
                    String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                ));
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for (p, records) in seen.iter().enumerate() {
        assert_eq!(records.len(), BATCHES * PER_BATCH / 2);
        for (i, (offset, value)) in records.iter().enumerate() {
            assert_eq!(*offset, i as i64);
            let batch = p + 2 * (i / PER_BATCH);
            assert_eq!(value, &format!("{batch}-{}", i % PER_BATCH));
        }
    }
}
