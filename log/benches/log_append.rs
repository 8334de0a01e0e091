//! Appending pre-built 1 MiB RecordBatches of 100-byte records to one partition, the path every
//! producer ends in: `Log::append` with acks=leader (page cache) and acks=all (group-commit fsync).

use std::cell::Cell;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use weir_log::Acks;

mod common;
use common::{TOPIC, full_batch, one_partition_log, values};

/// Truncate the partition (outside the timed part) once it holds this much, so the bench's disk
/// use stays bounded however fast the machine is.
const PARTITION_BYTES_MAX: u64 = 512 << 20;

fn append(c: &mut Criterion) {
    let (_dir, log) = one_partition_log();
    let (batch, records) = full_batch(&values());
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
