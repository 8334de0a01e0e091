//! Helpers shared by the log's tests: the log's own here, the ones every crate's tests use from
//! `weir-test-support`.

use weir_log::TopicConfig;
use weir_log::format::{BatchBuilder, BatchOptions};

pub use weir_test_support::child::spawn_child;
// Every record of a partition from an offset, in order, committed or not.
pub use weir_test_support::read_partition as read_all;
pub use weir_test_support::{open, seed};

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

/// One uncompressed batch of `values` with timestamp `ts`.
pub fn batch_of(values: &[Vec<u8>], ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(BatchOptions::default());
    for v in values {
        b.push(ts, None, Some(v), &[]);
    }
    b.finish(0)
}
