//! The ad-click job over a pre-loaded `clicks` topic (8 partitions, 10,000 Zipf ads, binary
//! values): 1-minute tumbling counts per ad, exactly-once, from start until drained and
//! committed. One run per iteration, each under a new job name (so it starts from the
//! beginning with no state). Also: the same with a viral ad taking half of the clicks, and the
//! speed limit (a single loop counting the same decoded clicks).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_adclick::{self as adclick, ClickGenerator, GeneratorConfig, JobOptions, ValueFormat};
use weir_log::{Log, LogConfig};
use weir_runtime::JobConfig;

const EVENTS: u64 = 1_000_000;

static RUN: AtomicU64 = AtomicU64::new(0);

fn loaded(hot_share: f64) -> (tempfile::TempDir, Log, Vec<adclick::Click>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), LogConfig::default()).expect("open");
    adclick::create_topics(&log, 8, ValueFormat::Binary).expect("topics");
    let config = GeneratorConfig {
        events: EVENTS,
        hot_share,
        ..GeneratorConfig::default()
    };
    let clicks: Vec<_> = ClickGenerator::new(config.clone()).collect();
    adclick::generate(
        &log,
        ClickGenerator::new(config),
        ValueFormat::Binary,
        |_| {},
    )
    .expect("generate");
    (dir, log, clicks)
}

fn run_job(log: &Log) {
    let mut config = JobConfig::new(format!("bench-{}", RUN.fetch_add(1, Ordering::Relaxed)));
    config.stop_when_drained = true;
    config.epoch_ms = 1_000;
    let (job, _) = adclick::build_job(log, config, &JobOptions::default()).expect("job");
    let m = job.start().expect("start").wait().expect("run");
    assert_eq!(m.source_records, EVENTS);
}

fn window_agg(c: &mut Criterion) {
    let mut g = c.benchmark_group("window_agg");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(EVENTS));
    let (_dir, log, clicks) = loaded(0.0);
    g.bench_function("adclick_exactly_once_binary", |b| b.iter(|| run_job(&log)));
    g.bench_function("speed_limit_single_loop", |b| {
        b.iter(|| {
            let mut counts: HashMap<(u64, i64), u64> = HashMap::with_capacity(1 << 16);
            for c in &clicks {
                *counts
                    .entry((c.ad_id, c.ts.div_euclid(adclick::MINUTE_MS)))
                    .or_default() += 1;
            }
            black_box(counts.len())
        })
    });
    drop(log);
    let (_dir, log, _) = loaded(0.5);
    g.bench_function("adclick_exactly_once_binary_hot_half", |b| {
        b.iter(|| run_job(&log))
    });
    g.finish();
}

criterion_group!(benches, window_agg);
criterion_main!(benches);
