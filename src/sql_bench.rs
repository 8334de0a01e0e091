//! The data behind `weir bench sql` and the criterion bench `sql_scan`: the same generated clicks
//! as an 8-partition topic of binary values, a topic of JSON values, a JSON-lines file and
//! in-memory Arrow batches, so that one query can be timed over each in the same run.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_sql::datafusion::arrow::array::{Array, ArrayBuilder, Int64Builder};
use weir_sql::datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use weir_sql::datafusion::arrow::record_batch::RecordBatch;
use weir_sql::datafusion::datasource::MemTable;
use weir_sql::datafusion::prelude::JsonReadOptions;
use weir_sql::{SessionOptions, WeirSession};

use crate::adclick::{self, ClickGenerator, GeneratorConfig, ValueFormat};
use crate::log::{Log, LogConfig};

/// The query every variant runs, with `{}` for the table.
pub const QUERY: &str = "SELECT ad_id, count(*) FROM {} GROUP BY ad_id";

/// Rows per in-memory batch (DataFusion's default batch size).
const MEMORY_BATCH_ROWS: usize = 8192;

/// What to generate.
#[derive(Debug, Clone)]
pub struct FixtureConfig {
    /// Clicks in each copy.
    pub events: u64,
    /// Partitions of both topics.
    pub partitions: i32,
    /// Ads (Zipf popularity).
    pub ads: u64,
    /// DataFusion's target partitions; the in-memory table gets as many partitions.
    pub target_partitions: usize,
}

/// The same clicks four ways, under one directory (removed with [`Fixture::remove`]).
#[derive(Debug)]
pub struct Fixture {
    dir: PathBuf,
    /// `clicks` with binary values.
    pub binary: Log,
    /// `clicks` with JSON values.
    pub json: Log,
    /// One `{"ad_id":..,"user_id":..,"ts":..}` object per line.
    pub json_lines: PathBuf,
    /// The clicks' columns as Arrow.
    pub schema: SchemaRef,
    /// In-memory batches, `target_partitions` partitions.
    pub memory: Vec<Vec<RecordBatch>>,
    config: FixtureConfig,
}

impl Fixture {
    /// Generates the clicks into `dir` (created) four ways.
    pub fn load(dir: &Path, config: FixtureConfig) -> anyhow::Result<Fixture> {
        let generator = || {
            ClickGenerator::new(GeneratorConfig {
                events: config.events,
                ads: config.ads,
                ..GeneratorConfig::default()
            })
        };
        let topic = |name: &str, format: ValueFormat| -> anyhow::Result<Log> {
            let path = dir.join(name);
            std::fs::create_dir_all(&path)?;
            let log = Log::open(&path, LogConfig::default())?;
            adclick::create_topics(&log, config.partitions, format)?;
            adclick::generate(&log, generator(), format, |_| {})?;
            Ok(log)
        };
        let binary = topic("binary", ValueFormat::Binary)?;
        let json = topic("json", ValueFormat::Json)?;

        let schema = Arc::new(Schema::new(vec![
            Field::new("ad_id", DataType::Int64, true),
            Field::new("user_id", DataType::Int64, true),
            Field::new("ts", DataType::Int64, true),
        ]));
        let json_lines = dir.join("clicks.json");
        let mut file = BufWriter::new(std::fs::File::create(&json_lines)?);
        let parts = config.target_partitions.max(1);
        let mut memory: Vec<Vec<RecordBatch>> = vec![Vec::new(); parts];
        let mut builders: [Int64Builder; 3] = Default::default();
        let mut batches = 0usize;
        let mut flush = |builders: &mut [Int64Builder; 3]| -> anyhow::Result<()> {
            let columns = builders
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as Arc<dyn Array>)
                .collect();
            memory[batches % parts].push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
            batches += 1;
            Ok(())
        };
        for c in generator() {
            writeln!(
                file,
                "{{\"ad_id\":{},\"user_id\":{},\"ts\":{}}}",
                c.ad_id, c.user_id, c.ts
            )?;
            builders[0].append_value(c.ad_id as i64);
            builders[1].append_value(c.user_id as i64);
            builders[2].append_value(c.ts);
            if builders[0].len() == MEMORY_BATCH_ROWS {
                flush(&mut builders)?;
            }
        }
        if builders[0].len() > 0 {
            flush(&mut builders)?;
        }
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(Fixture {
            dir: dir.to_path_buf(),
            binary,
            json,
            json_lines,
            schema,
            memory,
            config,
        })
    }

    /// A session over `log` with the baselines registered as `clicks_jsonl` (DataFusion's
    /// JSON reader over the file, file access enabled) and `clicks_memory` (a `MemTable`).
    pub fn session(&self, log: &Log) -> anyhow::Result<WeirSession> {
        let options = SessionOptions {
            target_partitions: self.config.target_partitions,
            ..SessionOptions::default()
        };
        let session = WeirSession::with_options(log, options)?.with_file_access(true)?;
        let ctx = session.context();
        let path = self
            .json_lines
            .to_str()
            .ok_or_else(|| anyhow::anyhow!("non-UTF-8 path {}", self.json_lines.display()))?;
        session.block_on(ctx.register_json(
            "clicks_jsonl",
            path,
            JsonReadOptions::default().schema(&self.schema),
        ))?;
        ctx.register_table(
            "clicks_memory",
            Arc::new(MemTable::try_new(
                Arc::clone(&self.schema),
                self.memory.clone(),
            )?),
        )?;
        Ok(session)
    }

    /// Closes the logs and removes the files.
    pub fn remove(self) -> anyhow::Result<()> {
        self.binary.close()?;
        self.json.close()?;
        std::fs::remove_dir_all(&self.dir)?;
        Ok(())
    }
}
