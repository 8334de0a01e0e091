//! A first job: page views per page per 10 seconds of event time, exactly once.
//! `cargo run --release --example first_job`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::log::{
    Consumer, ConsumerConfig, Log, LogConfig, Producer, ProducerConfig, ProducerRecord, TopicConfig,
};
use weir::operators::{WindowSpec, aggregate::count, windowed::KeyedWindowExt};
use weir::runtime::{Job, JobConfig, Json};

#[derive(Clone, Serialize, Deserialize)]
struct View {
    page: String,
    ts: i64, // ms since the epoch
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path(), LogConfig::default())?;
    for topic in ["views", "views_per_10s", "views_late"] {
        log.create_topic(
            topic,
            TopicConfig {
                partitions: 2,
                ..TopicConfig::default()
            },
        )?;
    }
    let producer = Producer::new(&log, ProducerConfig::default())?;
    for i in 0..1_000i64 {
        let view = View {
            page: format!("/page/{}", i % 3),
            ts: 1_700_000_000_000 + i * 100,
        };
        producer.send(ProducerRecord::new("views", &serde_json::to_vec(&view)?))?;
    }
    producer.flush()?;

    let mut config = JobConfig::new("views-per-10s"); // exactly-once, 1 s epochs
    config.stop_when_drained = true; // a bounded run: stop when `views` is read to its end
    let job = Job::new(&log, config)?;
    let out = job
        .source::<View, _>("views", Json)
        .timestamps(|v| v.ts, 2_000) // event time; up to 2 s out of order
        .key_by(|v| v.page.clone())
        .window(WindowSpec::tumbling(Duration::from_secs(10)))
        .aggregate(count());
    out.results.sink("views_per_10s", Json); // one committed result per (page, window)
    out.late.sink("views_late", Json); // late views, with the reason (must be consumed)
    let metrics = job.start()?.wait()?;
    println!("{metrics}");

    let mut results = Consumer::new(&log, ConsumerConfig::default())?; // read_committed
    results.assign_topic("views_per_10s")?;
    for batch in results.poll(Duration::from_secs(1))?.iter().take(1) {
        for record in batch.records().take(3) {
            println!(
                "{}",
                String::from_utf8_lossy(&record?.value.unwrap_or_default())
            );
        }
    }
    Ok(())
}
