//! Helpers shared by the log's tests.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use weir_log::format::{BatchBuilder, BatchOptions, Record};
use weir_log::{Log, LogConfig, Result, TopicConfig};

/// A log with small segments, so that tests see rolling.
pub fn small_segments(partitions: i32, segment_bytes_max: u64) -> TopicConfig {
    TopicConfig {
        partitions,
        segment_bytes_max,
        batch_bytes_max: segment_bytes_max.min(1 << 20) as usize,
        record_bytes_max: (segment_bytes_max / 2).min(1 << 20) as usize,
        ..TopicConfig::default()
    }
}

pub fn open(dir: &Path) -> Log {
    Log::open(dir, LogConfig::default()).expect("open log")
}

/// One uncompressed batch of `values` with timestamp `ts`.
pub fn batch_of(values: &[Vec<u8>], ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(BatchOptions::default());
    for v in values {
        b.push(ts, None, Some(v), &[]);
    }
    b.finish(0)
}

/// Every record of a partition from `from`, in order.
pub fn read_all(log: &Log, topic: &str, partition: i32, from: i64) -> Result<Vec<Record>> {
    let (_, end) = log.offsets(topic, partition)?;
    let mut out = Vec::new();
    let mut pos = from;
    while pos < end {
        let batches = log.fetch(topic, partition, pos, 1 << 20)?;
        if batches.is_empty() {
            break;
        }
        for b in &batches {
            for r in b.records(64 << 20)? {
                let r = r?;
                if r.offset >= pos {
                    out.push(r);
                }
            }
            pos = pos.max(b.header().last_offset() + 1);
        }
    }
    Ok(out)
}

/// Runs the ignored test `name` of this very test binary as a child process, with `env` set.
/// Child tests return at once unless their env var is there, so a normal run skips them.
pub fn spawn_child(name: &str, env: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child test process")
}

/// A seed for randomized tests: `WEIR_TEST_SEED` or the clock; printed so a failure can be
/// replayed.
pub fn seed() -> u64 {
    let seed = std::env::var("WEIR_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("WEIR_TEST_SEED={seed}");
    seed
}
