//! [`WeirSession`]: a DataFusion session whose tables are the topics of one log.

use std::any::Any;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::common::TableReference;
use datafusion::dataframe::DataFrame;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{
    FairSpillPool, GreedyMemoryPool, MemoryConsumer, MemoryPool, TrackConsumersPool,
};
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::object_store::ObjectStore;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use weir_log::Log;

use crate::table::{ScanReport, TopicScanExec, TopicSource, TopicTable};
use crate::{Error, Result};

/// The default [`SessionOptions::memory_bytes_max`]: 1 GiB.
///
/// A fixed figure rather than a share of the machine's RAM, so that a query that runs on one
/// machine runs on another, and so that `weir sql` next to a job or `weir serve` cannot take
/// the memory they need. Ad-hoc aggregations and sorts over topics of millions of rows fit
/// with room to spare (a `GROUP BY` over 10M clicks holds a few MB); a runaway query (a cross
/// join, an `ORDER BY` over a huge join) fails within seconds instead of growing until the
/// kernel kills something.
pub const MEMORY_BYTES_MAX_DEFAULT: usize = 1 << 30;

/// Memory consumers a resources-exhausted error lists, largest first.
const MEMORY_CONSUMERS_REPORTED: NonZeroUsize = NonZeroUsize::new(3).expect("3 is not zero");

/// Settings of a [`WeirSession`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    /// DataFusion's parallelism (its `target_partitions`) and the session's worker threads.
    pub target_partitions: usize,
    /// Rows per decoded batch.
    pub batch_rows: usize,
    /// Allow reading and writing local files (`CREATE EXTERNAL TABLE`, `COPY`), DDL and DML.
    /// Off by default: a session reads topics and nothing else.
    pub file_access: bool,
    /// Most memory, in bytes, that one query's sorts, joins, aggregations and result rows may
    /// hold together ([`MEMORY_BYTES_MAX_DEFAULT`], 1 GiB, by default). A query that needs
    /// more spills to disk if `spill_bytes_max` allows it, and otherwise fails with
    /// [`Error::ResourcesExhausted`]. Batches in flight between operators are not counted, so
    /// the process may hold a few batches per thread more.
    pub memory_bytes_max: usize,
    /// Most bytes of spill files a query may write when it outgrows `memory_bytes_max` (sorts,
    /// aggregations and joins that can spill write their state to a private temporary
    /// directory, removed when the query ends). 0, the default: no spill files, a query that
    /// needs more memory fails, since a session writes no files unless its caller asks. With
    /// `file_access` on and this 0, spilling is as in DataFusion (up to its 100 GiB default).
    pub spill_bytes_max: u64,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
            batch_rows: 8192,
            file_access: false,
            memory_bytes_max: MEMORY_BYTES_MAX_DEFAULT,
            spill_bytes_max: 0,
        }
    }
}

impl SessionOptions {
    /// Checks the options, naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if self.memory_bytes_max == 0 {
            return Err(Error::Config {
                field: "memory_bytes_max",
                reason: "must be at least 1 byte".into(),
            });
        }
        Ok(())
    }

    /// The DataFusion runtime of these options: the memory bound, spilling, and (without file
    /// access) no object store.
    pub(crate) fn runtime_env(&self) -> Result<Arc<RuntimeEnv>> {
        let spill = self.spill_bytes_max > 0;
        // Without spilling, the first operator to ask gets the memory (greedy): a query fails
        // only when the whole bound is used. With spilling, operators that can spill share the
        // bound fairly, so that one of them cannot push the others into spilling early.
        let pool: Arc<dyn MemoryPool> = if spill {
            Arc::new(TrackConsumersPool::new(
                FairSpillPool::new(self.memory_bytes_max),
                MEMORY_CONSUMERS_REPORTED,
            ))
        } else {
            Arc::new(TrackConsumersPool::new(
                GreedyMemoryPool::new(self.memory_bytes_max),
                MEMORY_CONSUMERS_REPORTED,
            ))
        };
        let mut env = RuntimeEnvBuilder::new().with_memory_pool(pool);
        if spill {
            // A fresh temporary directory of the OS's, created on the first spill and removed
            // with the session: internal scratch, which no SQL statement can name or read.
            env = env.with_disk_manager_builder(
                DiskManagerBuilder::default()
                    .with_mode(DiskManagerMode::OsTmpDirectory)
                    .with_max_temp_directory_size(self.spill_bytes_max),
            );
        } else if !self.file_access {
            env = env.with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            );
        }
        if !self.file_access {
            // No object store at all (DataFusion registers the local file system by default).
            env = env.with_object_store_registry(Arc::new(NoFileAccess));
        }
        Ok(env.build_arc()?)
    }

    /// `e` as [`Error::ResourcesExhausted`] if it is DataFusion running out of memory or of
    /// spill space; otherwise `e`.
    fn exhausted(&self, e: Error) -> Error {
        let Error::DataFusion(df) = &e else {
            return e;
        };
        let reason = match df.find_root() {
            DataFusionError::ResourcesExhausted(msg) => msg.clone(),
            // The spill limit surfaces as an io error with this text (DataFusion 55's
            // disk_manager.rs); without the match its message names DataFusion's own setting.
            root if root.to_string().contains("spilling process has exceeded") => root.to_string(),
            _ => return e,
        };
        Error::ResourcesExhausted {
            memory_bytes_max: self.memory_bytes_max,
            spill_bytes_max: self.spill_bytes_max,
            reason,
        }
    }
}

/// The result of [`WeirSession::query`]: the rows, and what each topic scan read.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// The result rows.
    pub batches: Vec<RecordBatch>,
    /// One report per table scan in the plan, in plan order.
    pub scans: Vec<ScanReport>,
}

/// A SQL session over a log: every topic with a schema is a table of the same name.
///
/// Table names are the topic names, registered verbatim: a name that is not a plain lower-case
/// identifier (`my-topic`, `Clicks`, `a.b`) must be double-quoted in SQL (`"my-topic"`).
/// The session owns a small tokio runtime, so its methods are synchronous.
pub struct WeirSession {
    source: Arc<dyn TopicSource>,
    options: SessionOptions,
    context: SessionContext,
    runtime: tokio::runtime::Runtime,
    tables: Vec<String>,
    skipped: Vec<(String, String)>,
}

/// Why a topic is not a table.
#[derive(Debug, Clone)]
enum NotATable {
    NoSchema,
    /// Its schema or format does not parse: the error's text.
    Invalid(String),
}

impl std::fmt::Debug for WeirSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeirSession")
            .field("options", &self.options)
            .field("tables", &self.tables)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl WeirSession {
    /// A session over `log` with default options: no file access.
    pub fn new(log: &Log) -> Result<WeirSession> {
        WeirSession::with_options(log, SessionOptions::default())
    }

    /// A session over `log` with `options`.
    pub fn with_options(log: &Log, options: SessionOptions) -> Result<WeirSession> {
        WeirSession::over(Arc::new(log.clone()), options)
    }

    /// A session over the topics of `source` (the embedded log, or a cluster's client) with
    /// `options`.
    pub fn over(source: Arc<dyn TopicSource>, options: SessionOptions) -> Result<WeirSession> {
        options.validate()?;
        let threads = options.target_partitions.max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("weir-sql")
            .build()
            .map_err(|e| Error::Internal(format!("starting the query runtime: {e}")))?;
        let config = SessionConfig::new()
            .with_target_partitions(threads)
            .with_batch_size(options.batch_rows.max(1))
            .with_information_schema(true);
        let catalog_name = config.options().catalog.default_catalog.clone();
        let schema_name = config.options().catalog.default_schema.clone();
        let context = SessionContext::new_with_config_rt(config, options.runtime_env()?);
        let mut tables = Vec::new();
        let mut skipped = Vec::new();
        let mut not_tables = HashMap::new();
        let mut names = source.topic_names()?;
        names.sort();
        let mut found = Vec::new();
        for topic in names {
            match TopicTable::from_source(Arc::clone(&source), &topic) {
                Ok(Some(table)) => found.push((topic, table)),
                Ok(None) => {
                    not_tables.insert(topic.clone(), NotATable::NoSchema);
                    skipped.push((topic, "no schema".to_string()));
                }
                Err(e) => {
                    not_tables.insert(topic.clone(), NotATable::Invalid(e.to_string()));
                    skipped.push((topic, e.to_string()));
                }
            }
        }
        // The default schema knows the topics that are not tables, so that a query naming one
        // says why instead of "table not found".
        let catalog = context.catalog(&catalog_name).ok_or_else(|| {
            Error::Internal(format!(
                "the session has no default catalog '{catalog_name}'"
            ))
        })?;
        catalog.register_schema(
            &schema_name,
            Arc::new(TopicSchema {
                tables: MemorySchemaProvider::new(),
                not_tables,
            }),
        )?;
        for (topic, table) in found {
            context.register_table(TableReference::bare(topic.as_str()), Arc::new(table))?;
            tables.push(topic);
        }
        Ok(WeirSession {
            source,
            options,
            context,
            runtime,
            tables,
            skipped,
        })
    }

    /// The same session with local file access allowed or not (off by default). With it on,
    /// `CREATE EXTERNAL TABLE`, `COPY`, DDL and DML work as in DataFusion; only for trusted callers.
    pub fn with_file_access(self, allow: bool) -> Result<WeirSession> {
        let options = SessionOptions {
            file_access: allow,
            ..self.options.clone()
        };
        WeirSession::over(self.source, options)
    }

    /// The topics registered as tables, sorted.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// Topics not registered, with the reason (no schema, or a schema that does not parse).
    pub fn skipped(&self) -> &[(String, String)] {
        &self.skipped
    }

    /// The DataFusion context (its tables are the topics).
    pub fn context(&self) -> &SessionContext {
        &self.context
    }

    /// Runs `future` (say, on [`WeirSession::context`]) on the session's runtime. Not from inside
    /// another tokio runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    fn sql_options(&self) -> SQLOptions {
        let allow = self.options.file_access;
        SQLOptions::new()
            .with_allow_ddl(allow)
            .with_allow_dml(allow)
            .with_allow_statements(allow)
    }

    /// Plans one SQL statement.
    pub fn dataframe(&self, query: &str) -> Result<DataFrame> {
        let options = self.sql_options();
        let planned = self
            .runtime
            .block_on(self.context.sql_with_options(query, options));
        match planned {
            // SQLOptions' refusals, with the reason this session gives them.
            Err(DataFusionError::Plan(msg))
                if !self.options.file_access && msg.contains(" not supported: ") =>
            {
                Err(Error::DataFusion(DataFusionError::Plan(format!(
                    "{msg} (this session reads topics only: no files, DDL, DML or SET)"
                ))))
            }
            planned => Ok(planned?),
        }
    }

    /// Runs one SQL statement and returns its rows.
    pub fn sql(&self, query: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.query(query)?.batches)
    }

    /// Runs one SQL statement and returns its rows with what each topic scan read.
    ///
    /// The query, its result included, holds at most [`SessionOptions::memory_bytes_max`]
    /// bytes; past that it fails with [`Error::ResourcesExhausted`].
    pub fn query(&self, query: &str) -> Result<QueryOutput> {
        let df = self.dataframe(query)?;
        let output = self.runtime.block_on(async {
            let task = Arc::new(df.task_ctx());
            let plan = df.create_physical_plan().await?;
            // The result counts against the same bound as the operators: without it, a
            // `SELECT *` of a big topic would collect it all outside the bound.
            let reservation = MemoryConsumer::new("query result").register(task.memory_pool());
            let mut stream = execute_stream(Arc::clone(&plan), task)?;
            let mut batches = Vec::new();
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                reservation.try_grow(batch.get_array_memory_size())?;
                batches.push(batch);
            }
            let mut scans = Vec::new();
            collect_scans(&plan, &mut scans);
            Ok::<_, Error>(QueryOutput { batches, scans })
        });
        output.map_err(|e| self.options.exhausted(e))
    }
}

/// The session's default schema: the topics that are tables, and why the others are not.
#[derive(Debug)]
struct TopicSchema {
    /// The tables (topics, and with file access whatever DDL registers).
    tables: MemorySchemaProvider,
    not_tables: HashMap<String, NotATable>,
}

#[async_trait::async_trait]
impl SchemaProvider for TopicSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.table_names()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        if let Some(table) = self.tables.table(name).await? {
            return Ok(Some(table));
        }
        match self.not_tables.get(name) {
            None => Ok(None),
            Some(NotATable::NoSchema) => {
                Err(DataFusionError::External(Box::new(Error::NoSchema {
                    topic: name.to_string(),
                })))
            }
            Some(NotATable::Invalid(reason)) => Err(DataFusionError::Plan(format!(
                "{reason}: so it is not a table"
            ))),
        }
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        self.tables.register_table(name, table)
    }

    fn deregister_table(
        &self,
        name: &str,
    ) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        self.tables.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.table_exist(name)
    }
}

fn collect_scans(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<ScanReport>) {
    let any: &dyn Any = plan.as_ref();
    if let Some(scan) = any.downcast_ref::<TopicScanExec>() {
        out.push(scan.report());
    }
    for child in plan.children() {
        collect_scans(child, out);
    }
}

/// An object-store registry with no store: every file or URL access fails with a clear message.
#[derive(Debug)]
struct NoFileAccess;

const NO_FILE_ACCESS: &str = "file access is disabled in this session: SQL reads topics only (WeirSession::with_file_access)";

impl ObjectStoreRegistry for NoFileAccess {
    fn register_store(
        &self,
        _url: &url::Url,
        _store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        None
    }

    fn get_store(&self, url: &url::Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        Err(DataFusionError::Plan(format!(
            "{NO_FILE_ACCESS} (asked for {url})"
        )))
    }
}
