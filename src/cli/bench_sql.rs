//! `weir bench sql`: `SELECT ad_id, count(*) FROM clicks GROUP BY ad_id` over a topic of binary
//! and of JSON values, against the same query in plain DataFusion over the same rows as a
//! JSON-lines file and as an in-memory table, all in the same run.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::Args;
use weir::adclick::{self, ClickGenerator, GeneratorConfig, ValueFormat};
use weir::log::{Log, LogConfig};
use weir::sql::datafusion::arrow::array::{Array, Int64Array, Int64Builder};
use weir::sql::datafusion::arrow::datatypes::{DataType, Field, Schema};
use weir::sql::datafusion::arrow::record_batch::RecordBatch;
use weir::sql::datafusion::datasource::MemTable;
use weir::sql::datafusion::prelude::JsonReadOptions;
use weir::sql::{SessionOptions, WeirSession};

use super::bench::Report;

/// Rows per in-memory batch (DataFusion's default batch size).
const MEMORY_BATCH_ROWS: usize = 8192;

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
    /// Runs per variant; the best counts
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    runs: u64,
}

const QUERY: &str = "SELECT ad_id, count(*) FROM {} GROUP BY ad_id";

fn generator(a: &SqlBench) -> ClickGenerator {
    ClickGenerator::new(GeneratorConfig {
        events: a.events,
        ads: a.ads,
        ..GeneratorConfig::default()
    })
}

/// Best rows/s of `runs` runs of the query over `table`, checking that the counts add up.
fn measure(session: &WeirSession, table: &str, a: &SqlBench) -> Result<f64> {
    let query = QUERY.replace("{}", table);
    let mut best = 0f64;
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
        best = best.max(a.events as f64 / secs);
    }
    Ok(best)
}

fn load(dir: &Path, a: &SqlBench, format: ValueFormat) -> Result<Log> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = Log::open(dir, LogConfig::default())?;
    adclick::create_topics(&log, a.partitions, format)?;
    adclick::generate(&log, generator(a), format, |_| {})?;
    Ok(log)
}

pub fn bench(place: &Path, a: &SqlBench, report: &mut Report) -> Result<()> {
    report.line("query", QUERY.replace("{}", "clicks"));
    report.line("events", a.events);
    report.line("partitions", a.partitions);
    report.line("ads", a.ads);
    report.line("target_partitions", a.target_partitions);
    report.line("runs_per_variant", a.runs);
    let options = SessionOptions {
        target_partitions: a.target_partitions as usize,
        ..SessionOptions::default()
    };

    let t = Instant::now();
    let binary = load(&place.join("sql-binary"), a, ValueFormat::Binary)?;
    let json = load(&place.join("sql-json"), a, ValueFormat::Json)?;
    // The same rows as a JSON-lines file and as in-memory batches.
    let jsonl = place.join("sql-clicks.json");
    let mut file = BufWriter::new(
        std::fs::File::create(&jsonl).with_context(|| format!("creating {}", jsonl.display()))?,
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("ad_id", DataType::Int64, true),
        Field::new("user_id", DataType::Int64, true),
        Field::new("ts", DataType::Int64, true),
    ]));
    let parts = a.target_partitions as usize;
    let mut memory: Vec<Vec<RecordBatch>> = vec![Vec::new(); parts];
    let mut builders = [
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
    ];
    let mut rows = 0usize;
    let mut flush = |builders: &mut [Int64Builder; 3], n: usize| -> Result<()> {
        let columns = builders
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as Arc<dyn Array>)
            .collect();
        memory[n % parts].push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
        Ok(())
    };
    for c in generator(a) {
        writeln!(
            file,
            "{{\"ad_id\":{},\"user_id\":{},\"ts\":{}}}",
            c.ad_id, c.user_id, c.ts
        )?;
        builders[0].append_value(c.ad_id as i64);
        builders[1].append_value(c.user_id as i64);
        builders[2].append_value(c.ts);
        rows += 1;
        if rows.is_multiple_of(MEMORY_BATCH_ROWS) {
            flush(&mut builders, rows / MEMORY_BATCH_ROWS)?;
        }
    }
    if !rows.is_multiple_of(MEMORY_BATCH_ROWS) {
        flush(&mut builders, rows / MEMORY_BATCH_ROWS + 1)?;
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    report.line("load_s", format!("{:.1}", t.elapsed().as_secs_f64()));

    // Plain DataFusion (file access on) for the baselines; the topic tables are there too.
    let session = WeirSession::with_options(&binary, options.clone())?.with_file_access(true)?;
    let ctx = session.context();
    let path = jsonl.to_str().context("non-UTF-8 data directory")?;
    session.block_on(ctx.register_json(
        "clicks_jsonl",
        path,
        JsonReadOptions::default().schema(&schema),
    ))?;
    ctx.register_table(
        "clicks_memory",
        Arc::new(MemTable::try_new(Arc::clone(&schema), memory)?),
    )?;

    let binary_rate = measure(&session, "clicks", a)?;
    report.line("binary_rows_per_s", format!("{binary_rate:.0}"));
    // The floor under both topic figures: reading the records with no value decoded.
    let query = "SELECT _partition, count(*) FROM clicks GROUP BY _partition";
    let mut best = 0f64;
    for _ in 0..a.runs {
        let start = Instant::now();
        session.sql(query)?;
        best = best.max(a.events as f64 / start.elapsed().as_secs_f64());
    }
    report.line("read_only_rows_per_s", format!("{best:.0}"));
    let json_session = WeirSession::with_options(&json, options)?;
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
    binary.close()?;
    json.close()?;
    std::fs::remove_file(&jsonl).ok();
    for d in ["sql-binary", "sql-json"] {
        std::fs::remove_dir_all(place.join(d)).ok();
    }
    Ok(())
}
