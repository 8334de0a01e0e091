//! Reading a partition back: `Log::fetch` plus iterating every record (touching its value), and
//! the same through a `Consumer`'s `poll`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_log::{Acks, Consumer, ConsumerConfig, Log};

mod common;
use common::{TOPIC, VALUE_BYTES, full_batch, one_partition_log, values};

const BATCHES: usize = 64;
const FETCH_BYTES_MAX: usize = 1 << 20;
const DECOMPRESSED_BYTES_MAX: usize = 64 << 20;

/// Fills partition 0 with `BATCHES` 1 MiB batches of 100-byte records; returns (records, bytes).
fn fill(log: &Log) -> (u64, u64) {
    let values = values();
    let (mut records, mut bytes) = (0u64, 0u64);
    for _ in 0..BATCHES {
        let (batch, n) = full_batch(&values);
        bytes += batch.len() as u64;
        records += n;
        log.append(TOPIC, 0, batch, Acks::Leader).expect("append");
    }
    (records, bytes)
}

/// Reads the whole partition with `fetch`, touching every record; returns the value bytes.
fn fetch_all(log: &Log, end: i64) -> u64 {
    let mut offset = 0;
    let mut value_bytes = 0u64;
    while offset < end {
        for batch in log.fetch(TOPIC, 0, offset, FETCH_BYTES_MAX).expect("fetch") {
            for r in batch.records(DECOMPRESSED_BYTES_MAX).expect("records") {
                let r = r.expect("record");
                value_bytes += r.value.as_ref().map_or(0, |v| v.len() as u64);
            }
            offset = batch.header().last_offset() + 1;
        }
    }
    value_bytes
}

/// Reads the whole partition through a consumer; returns the records seen.
fn poll_all(log: &Log, records: u64) -> u64 {
    let mut consumer = Consumer::new(log, ConsumerConfig::default()).expect("consumer");
    consumer.assign_topic(TOPIC).expect("assign");
    consumer.seek_to_beginning().expect("seek");
    let mut seen = 0u64;
    while seen < records {
        for b in consumer.poll(Duration::from_secs(1)).expect("poll") {
            for r in b.records() {
                seen += black_box(r.expect("record").value.map_or(0, |v| v.len())).min(1) as u64;
            }
        }
    }
    seen
}

fn consume(c: &mut Criterion) {
    let (_dir, log) = one_partition_log();
    let (records, bytes) = fill(&log);
    let (_, end) = log.offsets(TOPIC, 0).expect("offsets");
    assert_eq!(end as u64, records);

    let mut group = c.benchmark_group("log_consume");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::ElementsAndBytes {
            elements: records,
            bytes,
        });
    group.bench_function("fetch_and_iterate_64MiB", |b| {
        b.iter(|| {
            assert_eq!(
                black_box(fetch_all(&log, end)),
                records * VALUE_BYTES as u64
            )
        });
    });
    group.bench_function("consumer_poll_64MiB", |b| {
        b.iter(|| assert_eq!(black_box(poll_all(&log, records)), records));
    });
    group.finish();
    log.close().expect("close log");
}

criterion_group!(benches, consume);
criterion_main!(benches);
