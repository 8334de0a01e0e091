//! A child process appends with acks=all and reports every acknowledged batch; the test kills it
//! with SIGKILL at random moments, many rounds, then checks that every acknowledged record is
//! there and intact, offsets are dense, and nothing torn is ever returned.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use weir_log::{Acks, Log, LogConfig};

use crate::common::{batch_of, read_all, seed, small_segments, spawn_child};

const TOPIC: &str = "crash";

#[test]
#[ignore = "child process of sigkill_at_random_moments_loses_no_acknowledged_record"]
fn crash_child_appender() {
    let Ok(dir) = std::env::var("WEIR_CRASH_DIR") else {
        return;
    };
    let round: u64 = std::env::var("WEIR_CRASH_ROUND").unwrap().parse().unwrap();
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    if log.topic_config(TOPIC).is_err() {
        log.create_topic(TOPIC, small_segments(2, 64 << 10))
            .unwrap();
    }
    let mut out = std::io::stdout().lock();
    let mut rng = fastrand::Rng::with_seed(round);
    for batch_no in 0u64.. {
        let n = rng.usize(1..20);
        let partition = rng.i32(0..2);
        let values: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                format!("{round}:{batch_no}:{i}:{}", "x".repeat(rng.usize(0..300))).into_bytes()
            })
            .collect();
        let info = log
            .append(
                TOPIC,
                partition,
                batch_of(&values, 1_700_000_000_000),
                Acks::All,
            )
            .unwrap();
        writeln!(
            out,
            "ACK {partition} {} {round} {batch_no} {n}",
            info.base_offset
        )
        .unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(seed());
    let rounds = 12;
    let mut acked: Vec<(i32, i64, u64, u64, usize)> = Vec::new();
    for round in 0..rounds {
        let mut child = spawn_child(
            "crash::crash_child_appender",
            &[
                ("WEIR_CRASH_DIR", dir.path().display().to_string()),
                ("WEIR_CRASH_ROUND", round.to_string()),
            ],
        );
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The harness may print "test … ... " on the same line first.
                let Some(i) = line.find("ACK ") else { continue };
                let f: Vec<&str> = line[i..].split_whitespace().collect();
                if f.len() == 6 {
                    acks.push((
                        f[1].parse().unwrap(),
                        f[2].parse().unwrap(),
                        f[3].parse().unwrap(),
                        f[4].parse().unwrap(),
                        f[5].parse().unwrap(),
                    ));
                }
            }
            acks
        });
        std::thread::sleep(Duration::from_millis(rng.u64(150..600)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        acked.extend(reader.join().unwrap());
    }
    assert!(
        acked.len() > rounds,
        "the child should have acknowledged batches, got {}",
        acked.len()
    );
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    for partition in 0..2 {
        let records = read_all(&log, TOPIC, partition, 0).unwrap();
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, i as i64, "offsets must be dense");
        }
        for &(p, base, round, batch_no, n) in acked.iter().filter(|a| a.0 == partition) {
            for i in 0..n {
                let r = records.get((base + i as i64) as usize).unwrap_or_else(|| {
                    panic!(
                        "acknowledged offset {} of partition {p} is missing",
                        base + i as i64
                    )
                });
                let v = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
                assert!(
                    v.starts_with(&format!("{round}:{batch_no}:{i}:")),
                    "offset {} holds {v:?}",
                    r.offset
                );
            }
        }
    }
    log.close().unwrap();
}
