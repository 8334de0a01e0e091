//! `weir bench sql`: `SELECT ad_id, count(*) FROM clicks GROUP BY ad_id` over a topic of binary
//! and of JSON values, against the same query in plain DataFusion over the same rows as a
//! JSON-lines file and as an in-memory table, all in the same run.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::Args;
use weir::sql::WeirSession;
use weir::sql::datafusion::arrow::array::Int64Array;
use weir_adclick::sql_bench::{Fixture, FixtureConfig, QUERY};

use super::report::Report;

#[derive(Debug, Args)]
pub struct SqlBench {
    /// Clicks in the topic (and in each baseline)
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Partitions of `clicks`
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=1024))]
    partitions: i32,
    /// Ads (Zipf popularity)
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    ads: u64,
    /// DataFusion's target_partitions (and worker threads)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=256))]
    target_partitions: u64,
    /// Runs per variant; the median counts
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    runs: u64,
}

/// Median rows/s of `runs` runs of the query over `table`, checking that the counts add up.
fn measure(session: &WeirSession, table: &str, a: &SqlBench) -> Result<f64> {
    let query = QUERY.replace("{}", table);
    let mut rates = Vec::new();
    for _ in 0..a.runs {
        let start = Instant::now();
        let batches = session
            .sql(&query)
            .with_context(|| format!("query over {table}"))?;
        let secs = start.elapsed().as_secs_f64();
        let total: i64 = batches
            .iter()
            .map(|b| {
                b.column(1)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .map_or(0, |c| c.iter().flatten().sum::<i64>())
            })
            .sum();
        ensure!(
            total == a.events as i64,
            "{table}: counts add up to {total}, not {}",
            a.events
        );
        rates.push(a.events as f64 / secs);
    }
    Ok(median(rates))
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

pub fn bench(place: &Path, a: &SqlBench, report: &mut Report) -> Result<()> {
    report.line("query", QUERY.replace("{}", "clicks"));
    report.line("events", a.events);
    report.line("partitions", a.partitions);
    report.line("ads", a.ads);
    report.line("target_partitions", a.target_partitions);
    report.line("runs_per_variant", a.runs);
    let t = Instant::now();
    let fixture = Fixture::load(
        &place.join("sql"),
        FixtureConfig {
            events: a.events,
            partitions: a.partitions,
            ads: a.ads,
            target_partitions: a.target_partitions as usize,
        },
    )?;
    report.line("load_s", format!("{:.1}", t.elapsed().as_secs_f64()));

    // Plain DataFusion for the baselines, in the session of the binary topic.
    let session = fixture.session(&fixture.binary)?;
    let binary_rate = measure(&session, "clicks", a)?;
    report.line("binary_rows_per_s", format!("{binary_rate:.0}"));
    // The floor under both topic figures: reading the records with no value decoded.
    let query = "SELECT _partition, count(*) FROM clicks GROUP BY _partition";
    let mut rates = Vec::new();
    for _ in 0..a.runs {
        let start = Instant::now();
        session.sql(query)?;
        rates.push(a.events as f64 / start.elapsed().as_secs_f64());
    }
    report.line("read_only_rows_per_s", format!("{:.0}", median(rates)));
    let json_session = fixture.session(&fixture.json)?;
    let json_rate = measure(&json_session, "clicks", a)?;
    report.line("json_rows_per_s", format!("{json_rate:.0}"));
    let jsonl_rate = measure(&session, "clicks_jsonl", a)?;
    report.line("jsonl_rows_per_s", format!("{jsonl_rate:.0}"));
    let memory_rate = measure(&session, "clicks_memory", a)?;
    report.line("memory_rows_per_s", format!("{memory_rate:.0}"));
    report.line(
        "binary_vs_jsonl",
        format!("{:.2}", binary_rate / jsonl_rate),
    );
    report.line(
        "binary_vs_memory",
        format!("{:.2}", binary_rate / memory_rate),
    );
    report.line("json_vs_jsonl", format!("{:.2}", json_rate / jsonl_rate));

    drop((session, json_session));
    Ok(fixture.remove()?)
}
