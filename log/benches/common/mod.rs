//! What the log benches share: a log with one partition that never expires, and full 1 MiB
//! batches of 100-byte records (so both benches move the same bytes).

use weir_log::format::{BatchBuilder, BatchOptions};
use weir_log::{Log, LogConfig, TopicConfig};

/// The one topic of a bench, with one partition.
pub const TOPIC: &str = "bench";
/// A batch holds as many records as fit in this many bytes.
pub const BATCH_BYTES: usize = 1 << 20;
/// The size of each record's value, in bytes.
pub const VALUE_BYTES: usize = 100;
/// Distinct values that records cycle through.
const VALUES: usize = 64;
/// The timestamp of every record, ms since the epoch.
const TIMESTAMP_MS: i64 = 1_700_000_000_000;

/// A log in a temporary directory (removed with the guard) holding [`TOPIC`], without
/// retention so that nothing is deleted while the bench runs.
pub fn one_partition_log() -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = Log::open(dir.path(), LogConfig::default()).expect("open log");
    log.create_topic(
        TOPIC,
        TopicConfig {
            partitions: 1,
            retention_ms: None,
            ..TopicConfig::default()
        },
    )
    .expect("create topic");
    (dir, log)
}

/// Pseudo-random printable values, the same at every run.
pub fn values() -> Vec<Vec<u8>> {
    let mut rng = fastrand::Rng::with_seed(7);
    (0..VALUES)
        .map(|_| (0..VALUE_BYTES).map(|_| rng.alphanumeric() as u8).collect())
        .collect()
}

/// One uncompressed batch of as many records (cycling through `values`) as fit in
/// [`BATCH_BYTES`], and its record count.
pub fn full_batch(values: &[Vec<u8>]) -> (Vec<u8>, u64) {
    let mut b = BatchBuilder::new(BatchOptions::default());
    let mut n = 0u64;
    loop {
        let value = &values[n as usize % values.len()];
        let record = BatchBuilder::record_bytes(0, n as i32, None, Some(value), &[]);
        if b.estimated_bytes() + record > BATCH_BYTES {
            break;
        }
        b.push(TIMESTAMP_MS, None, Some(value), &[]);
        n += 1;
    }
    (b.finish(0), n)
}
