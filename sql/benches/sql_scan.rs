//! `SELECT ad_id, count(*) FROM clicks GROUP BY ad_id` over 10 million Zipf clicks in an
//! 8-partition topic with binary values and one with JSON values, and, in the same run, the same
//! query in plain DataFusion over the same rows as a JSON-lines file and as an in-memory table
//! (a `MemTable`: the speed limit of the query itself). DataFusion uses both cores.
//! `WEIR_BENCH_EVENTS` changes the number of clicks. `weir bench sql` prints the same comparison
//! as `name: value` lines.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_adclick::sql_bench::{Fixture, FixtureConfig, QUERY};

fn sql_scan(c: &mut Criterion) {
    let events = std::env::var("WEIR_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = Fixture::load(
        dir.path(),
        FixtureConfig {
            events,
            partitions: 8,
            ads: 10_000,
            target_partitions: 2,
        },
    )
    .expect("load the clicks");
    let binary = fixture.session(&fixture.binary).expect("session");
    let json = fixture.session(&fixture.json).expect("session");

    let mut group = c.benchmark_group("sql_scan");
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    for (name, session, table) in [
        ("binary_topic", &binary, "clicks"),
        ("json_topic", &json, "clicks"),
        ("json_lines_file", &binary, "clicks_jsonl"),
        ("memory_table", &binary, "clicks_memory"),
    ] {
        let query = QUERY.replace("{}", table);
        group.bench_function(name, |b| {
            b.iter(|| session.sql(&query).expect("query"));
        });
    }
    group.finish();
    drop((binary, json));
    fixture.remove().expect("remove");
}

criterion_group!(benches, sql_scan);
criterion_main!(benches);
