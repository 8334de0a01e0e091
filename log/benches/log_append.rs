//! Appending pre-built 1 MiB RecordBatches of 100-byte records to one partition, the path every
//! producer ends in: `Log::append` with acks=leader (page cache) and acks=all (group-commit fsync).

use std::cell::Cell;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use weir_log::format::{BatchBuilder, BatchOptions};
use weir_log::{Acks, Log, LogConfig, TopicConfig};

const TOPIC: &str = "bench";
const BATCH_BYTES: usize = 1 << 20;
const VALUE_BYTES: usize = 100;
/// Truncate the partition (outside the timed part) once it holds this much, so the bench's disk
/// use stays bounded however fast the machine is.
const PARTITION_BYTES_MAX: u64 = 512 << 20;

/// One batch of as many 100-byte records as fit in 1 MiB, and its record count.
fn build_batch() -> (Vec<u8>, u64) {
    let mut rng = fastrand::Rng::with_seed(7);
    let values: Vec<Vec<u8>> = (0..64)
        .map(|_| (0..VALUE_BYTES).map(|_| rng.alphanumeric() as u8).collect())
        .collect();
    let mut b = BatchBuilder::new(BatchOptions::default());
    let now = 1_700_000_000_000;
    let mut n = 0u64;
    loop {
        let value = &values[n as usize % values.len()];
        let record = BatchBuilder::record_bytes(0, n as i32, None, Some(value), &[]);
        if b.estimated_bytes() + record > BATCH_BYTES {
            break;
        }
        b.push(now, None, Some(value), &[]);
        n += 1;
    }
    (b.finish(0), n)
}

fn append(c: &mut Criterion) {
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
    let (batch, records) = build_batch();
    let written = Cell::new(0u64);

    let mut group = c.benchmark_group("log_append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::ElementsAndBytes {
            elements: records,
            bytes: batch.len() as u64,
        });
    for (name, acks) in [
        ("1MiB_batch_acks_leader", Acks::Leader),
        ("1MiB_batch_acks_all", Acks::All),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    if written.get() >= PARTITION_BYTES_MAX {
                        log.truncate_to(TOPIC, 0, 0).expect("truncate");
                        written.set(0);
                    }
                    written.set(written.get() + batch.len() as u64);
                    batch.clone()
                },
                |batch| log.append(TOPIC, 0, batch, acks).expect("append"),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
    log.close().expect("close log");
}

criterion_group!(benches, append);
criterion_main!(benches);
