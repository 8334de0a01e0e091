//! Helpers that the integration tests of weir's crates share, so that each test file states what
//! it checks rather than how to open a log or read a topic back:
//!
//! - [`open`] and [`temp_log`]: a log with the default configuration;
//! - [`create_topic`], [`produce_json`]: topics and records to run on;
//! - [`read_values`] (what a read_committed consumer sees) and [`read_partition`] (every record,
//!   committed or not);
//! - [`seed`]: a seed that a failing test prints and `WEIR_TEST_SEED` replays;
//! - [`child`]: re-running the test binary as a child process, and killing it with SIGKILL after it
//!   reports commits;
//! - [`small_disk`]: a tmpfs of a fixed size, for tests that fill a disk for real;
//! - [`replay_fuzz_corpus`]: a fuzz target's corpus through its checks, without a fuzzer.
//!
//! Helpers panic with a short reason instead of returning errors: they are for tests.
//!
//! ```
//! use weir_test_support::{create_topic, produce_json, read_values, temp_log};
//! let (_dir, log) = temp_log();
//! create_topic(&log, "numbers", 2);
//! produce_json(&log, "numbers", &[1u64, 2, 3], |n| n.to_string());
//! let mut read: Vec<u64> = read_values(&log, "numbers");
//! read.sort();
//! assert_eq!(read, [1, 2, 3]);
//! ```
#![warn(missing_docs)]

pub mod child;
pub mod small_disk;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use weir_log::format::Record;
use weir_log::{
    Consumer, ConsumerConfig, Log, LogConfig, Producer, ProducerConfig, ProducerRecord, Result,
    TopicConfig,
};

/// How long a poll waits before an empty answer counts as the end of a topic, in milliseconds.
const POLL_EMPTY_MS: u64 = 50;
/// The bytes one fetch of [`read_partition`] asks for.
const FETCH_BYTES_MAX: usize = 1 << 20;
/// The decompressed bytes [`read_partition`] allows a batch.
const DECOMPRESSED_BYTES_MAX: usize = 64 << 20;

/// The log in `dir` (created by the log if need be), default configuration.
pub fn open(dir: &Path) -> Log {
    Log::open(dir, LogConfig::default()).expect("open log")
}

/// A log in a new temporary directory; the directory goes when the guard is dropped, so keep it
/// alive as long as the log.
pub fn temp_log() -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = open(dir.path());
    (dir, log)
}

/// Creates `name` with `partitions` partitions and otherwise the default topic configuration.
pub fn create_topic(log: &Log, name: &str, partitions: i32) {
    log.create_topic(
        name,
        TopicConfig {
            partitions,
            ..TopicConfig::default()
        },
    )
    .expect("create topic");
}

/// Produces each of `values` to `topic` as JSON, keyed by `key` (so records of one key share a
/// partition), and flushes.
pub fn produce_json<T: Serialize>(
    log: &Log,
    topic: &str,
    values: &[T],
    key: impl Fn(&T) -> String,
) {
    let producer = Producer::new(log, ProducerConfig::default()).expect("producer");
    for value in values {
        let bytes = serde_json::to_vec(value).expect("json");
        producer
            .send(ProducerRecord::new(topic, &bytes).key(key(value).as_bytes()))
            .expect("send");
    }
    producer.flush().expect("flush");
}

/// Every value of `topic` that a consumer with the default configuration (read_committed, from
/// the beginning) reads, decoded from JSON, partition by partition as the consumer returns them.
/// The topic counts as read once a poll waits [`POLL_EMPTY_MS`] for nothing.
pub fn read_values<T: DeserializeOwned>(log: &Log, topic: &str) -> Vec<T> {
    let mut consumer = Consumer::new(log, ConsumerConfig::default()).expect("consumer");
    consumer.assign_topic(topic).expect("assign");
    let mut out = Vec::new();
    loop {
        let batches = consumer
            .poll(Duration::from_millis(POLL_EMPTY_MS))
            .expect("poll");
        if batches.is_empty() {
            return out;
        }
        for batch in batches {
            for record in batch.records() {
                let record = record.expect("record");
                let value = record.value.as_deref().expect("value");
                out.push(serde_json::from_slice(value).expect("json"));
            }
        }
    }
}

/// Every record of one partition from offset `from` to its end, in order, committed or not
/// (transaction markers are not records).
pub fn read_partition(log: &Log, topic: &str, partition: i32, from: i64) -> Result<Vec<Record>> {
    let (_, end) = log.offsets(topic, partition)?;
    let mut out = Vec::new();
    let mut position = from;
    while position < end {
        let batches = log.fetch(topic, partition, position, FETCH_BYTES_MAX)?;
        if batches.is_empty() {
            break;
        }
        for batch in &batches {
            for record in batch.records(DECOMPRESSED_BYTES_MAX)? {
                let record = record?;
                if record.offset >= position {
                    out.push(record);
                }
            }
            position = position.max(batch.header().last_offset() + 1);
        }
    }
    Ok(out)
}

/// A seed for a randomized test: `WEIR_TEST_SEED` if set, else the clock. Printed on stderr so
/// that a failure can be replayed with the same seed.
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

/// Runs every input of the fuzz corpus `fuzz/corpus/TARGET` through `run` (the target's own
/// checks, which panic on a broken one), so that `cargo test` keeps every input the fuzzer once
/// found interesting passing; fails unless the corpus holds at least `inputs_min` inputs.
pub fn replay_fuzz_corpus(target: &str, inputs_min: usize, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("the corpus {}: {e}", dir.display()));
    let mut inputs = 0;
    for entry in entries {
        let path = entry.expect("a corpus entry").path();
        let data =
            std::fs::read(&path).unwrap_or_else(|e| panic!("corpus input {}: {e}", path.display()));
        run(&data);
        inputs += 1;
    }
    assert!(
        inputs >= inputs_min,
        "the corpus is there: {inputs} inputs in {}",
        dir.display()
    );
}
