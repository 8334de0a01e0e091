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

use weir_log::{Log, LogConfig};

use crate::{ClickGenerator, GeneratorConfig, ValueFormat};

/// Why the fixture could not be built, opened or removed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the JSON-lines file or creating and removing the fixture's directories.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Opening, filling or closing one of the logs.
    #[error(transparent)]
    Log(#[from] weir_log::Error),
    /// Producing the generated clicks.
    #[error(transparent)]
    Runtime(#[from] weir_runtime::Error),
    /// Building the in-memory batches or registering the baseline tables.
    #[error(transparent)]
    Sql(#[from] weir_sql::Error),
    /// DataFusion's JSON reader takes the file's path as a string.
    #[error("{0}: not a UTF-8 path, which DataFusion's JSON reader needs")]
    NonUtf8Path(PathBuf),
}

/// What [`Fixture`]'s methods return.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The query every variant runs, with `{}` for the table.
pub const QUERY: &str = "SELECT ad_id, count(*) FROM {} GROUP BY ad_id";

/// Rows per in-memory batch (DataFusion's default batch size).
const MEMORY_BATCH_ROWS: usize = 8192;

/// How many clicks to generate, and how the copies are laid out.
#[derive(Debug, Clone)]
pub struct FixtureConfig {
    /// Clicks in each of the four copies.
    pub events: u64,
    /// Partitions of both topics (binary and JSON values).
    pub partitions: i32,
    /// Distinct ads, with Zipf popularity.
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
    pub fn load(dir: &Path, config: FixtureConfig) -> Result<Fixture> {
        let generator = || {
            ClickGenerator::new(GeneratorConfig {
                events: config.events,
                ads: config.ads,
                ..GeneratorConfig::default()
            })
        };
        let topic = |name: &str, format: ValueFormat| -> Result<Log> {
            let path = dir.join(name);
            std::fs::create_dir_all(&path).map_err(io_at(&path))?;
            let log = Log::open(&path, LogConfig::default())?;
            crate::create_topics(&log, config.partitions, format)?;
            crate::generate(&log, generator(), format, |_| {})?;
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
        let mut file =
            BufWriter::new(std::fs::File::create(&json_lines).map_err(io_at(&json_lines))?);
        let parts = config.target_partitions.max(1);
        let mut memory: Vec<Vec<RecordBatch>> = vec![Vec::new(); parts];
        let mut builders: [Int64Builder; 3] = Default::default();
        let mut batches = 0usize;
        let mut flush = |builders: &mut [Int64Builder; 3]| -> Result<()> {
            let columns = builders
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as Arc<dyn Array>)
                .collect();
            let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
                .map_err(weir_sql::Error::from)?;
            memory[batches % parts].push(batch);
            batches += 1;
            Ok(())
        };
        for c in generator() {
            writeln!(
                file,
                "{{\"ad_id\":{},\"user_id\":{},\"ts\":{}}}",
                c.ad_id, c.user_id, c.ts
            )
            .map_err(io_at(&json_lines))?;
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
        file.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .map_err(io_at(&json_lines))?;
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
    pub fn session(&self, log: &Log) -> Result<WeirSession> {
        let options = SessionOptions {
            target_partitions: self.config.target_partitions,
            ..SessionOptions::default()
        };
        let session = WeirSession::with_options(log, options)?.with_file_access(true)?;
        let ctx = session.context();
        let path = self
            .json_lines
            .to_str()
            .ok_or_else(|| Error::NonUtf8Path(self.json_lines.clone()))?;
        session
            .block_on(ctx.register_json(
                "clicks_jsonl",
                path,
                JsonReadOptions::default().schema(&self.schema),
            ))
            .map_err(weir_sql::Error::from)?;
        let memory = MemTable::try_new(Arc::clone(&self.schema), self.memory.clone())
            .map_err(weir_sql::Error::from)?;
        ctx.register_table("clicks_memory", Arc::new(memory))
            .map_err(weir_sql::Error::from)?;
        Ok(session)
    }

    /// Closes the logs and removes the files.
    pub fn remove(self) -> Result<()> {
        self.binary.close()?;
        self.json.close()?;
        std::fs::remove_dir_all(&self.dir).map_err(io_at(&self.dir))?;
        Ok(())
    }
}
