//! `SELECT ad_id, count(*) FROM clicks GROUP BY ad_id` through weir-sql over an 8-partition
//! `clicks` topic (1,000,000 Zipf clicks) with binary and with JSON values, beside plain
//! DataFusion over the same rows in memory (a MemTable): the speed limit of the query itself.
//! `weir bench sql` measures the same at 10 million clicks, with a JSON-lines baseline too.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir::adclick::{self, ClickGenerator, GeneratorConfig, ValueFormat};
use weir::log::{Log, LogConfig};
use weir::sql::datafusion::arrow::array::{ArrayRef, Int64Array};
use weir::sql::datafusion::arrow::datatypes::{DataType, Field, Schema};
use weir::sql::datafusion::arrow::record_batch::RecordBatch;
use weir::sql::datafusion::datasource::MemTable;
use weir::sql::{SessionOptions, WeirSession};

const EVENTS: u64 = 1_000_000;
const QUERY: &str = "SELECT ad_id, count(*) FROM clicks GROUP BY ad_id";

fn generator() -> ClickGenerator {
    ClickGenerator::new(GeneratorConfig {
        events: EVENTS,
        ..GeneratorConfig::default()
    })
}

fn options() -> SessionOptions {
    SessionOptions {
        target_partitions: 2,
        ..SessionOptions::default()
    }
}

fn loaded(format: ValueFormat) -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), LogConfig::default()).expect("open");
    adclick::create_topics(&log, 8, format).expect("topics");
    adclick::generate(&log, generator(), format, |_| {}).expect("generate");
    (dir, log)
}

fn sql_scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("sql_scan");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    for (name, format) in [("binary", ValueFormat::Binary), ("json", ValueFormat::Json)] {
        let (_dir, log) = loaded(format);
        let session = WeirSession::with_options(&log, options()).expect("session");
        group.bench_function(name, |b| {
            b.iter(|| session.sql(QUERY).expect("query"));
        });
    }

    let schema = Arc::new(Schema::new(vec![
        Field::new("ad_id", DataType::Int64, true),
        Field::new("user_id", DataType::Int64, true),
        Field::new("ts", DataType::Int64, true),
    ]));
    let clicks: Vec<_> = generator().collect();
    let mut partitions = vec![Vec::new(), Vec::new()];
    for (i, chunk) in clicks.chunks(8192).enumerate() {
        let col = |f: fn(&adclick::Click) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(chunk.iter().map(f)))
        };
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                col(|c| c.ad_id as i64),
                col(|c| c.user_id as i64),
                col(|c| c.ts),
            ],
        )
        .expect("batch");
        partitions[i % 2].push(batch);
    }
    let (_dir, empty) = {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path(), LogConfig::default()).expect("open");
        (dir, log)
    };
    let session = WeirSession::with_options(&empty, options()).expect("session");
    let table = MemTable::try_new(schema, partitions).expect("memtable");
    session
        .context()
        .register_table("clicks", Arc::new(table))
        .expect("register");
    group.bench_function("memory", |b| {
        b.iter(|| session.sql(QUERY).expect("query"));
    });
    group.finish();
}

criterion_group!(benches, sql_scan);
criterion_main!(benches);
