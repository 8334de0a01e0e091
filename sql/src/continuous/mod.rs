//! Continuous queries: a windowed `GROUP BY` that runs as a runtime job, writing each window's
//! result into a topic exactly once.
//!
//! # Syntax
//!
//! ```sql
//! INSERT INTO target
//! SELECT <group columns>, window_start, window_end, <aggregates>
//! FROM TUMBLE(source, ts_column, INTERVAL '1' MINUTE)            -- or
//!      HOP(source, ts_column, INTERVAL '10' SECOND, INTERVAL '1' MINUTE)   -- slide, size
//!      SESSION(source, ts_column, INTERVAL '30' SECOND)                    -- gap
//! [WHERE <condition>]
//! GROUP BY <group columns>, window_start, window_end
//! ```
//!
//! - Event time comes from `ts_column` (TIMESTAMP or BIGINT ms); the watermark trails the highest
//!   time seen in each source partition by [`ContinuousConfig::watermark_delay_ms`].
//! - Aggregates: `count(*)`, `count(x)`, `sum(x)`, `min(x)`, `max(x)`, `avg(x)`,
//!   `approx_distinct(x)`. Group columns and aggregate arguments are any scalar expressions
//!   DataFusion can evaluate on the source's columns; output columns are named by their alias
//!   (`AS name`) or else by the expression's text.
//! - `WHERE`, the group expressions and the aggregates' arguments run vectorised on Arrow record
//!   batches of up to `batch_records_max` rows (DataFusion physical expressions); the windows
//!   and aggregates run in the runtime, split into partial and final aggregation when hot keys
//!   are salted (tumbling and hopping windows).
//! - `window_start` and `window_end` are written as ms since the epoch.
//! - Late rows go to the side topic `<target>_late` (created if missing) with the reason.
//! - The target topic must exist; its format (json, or binary with a schema whose columns match
//!   the output) decides the encoding.
//!
//! # Plan, then job
//!
//! [`ContinuousPlan::new`] is the planner: SQL text and the topics' settings (a
//! [`TopicCatalog`], such as the [`Log`]) in, a plan with compiled expressions out, and nothing
//! created or started. [`ContinuousQuery::from_plan`] builds the job from a plan: it creates the
//! late topic if missing and wires source, windows and sinks; [`ContinuousQuery::start`] runs
//! it. [`ContinuousQuery::new`] does both steps.

mod aggregate;
mod plan;
mod prepare;
pub mod row;

use std::sync::Arc;

use serde::Serialize;
use weir_log::{Log, TopicConfig};
use weir_operators::WindowSpec;
use weir_operators::windowed::{HotKeys, KeyedWindowExt, LateRecord, WindowResult};
use weir_runtime::codec::{Codec, CodecError, Json};
use weir_runtime::schema::Schema;
use weir_runtime::topics::TopicSpec;
use weir_runtime::{Job, JobConfig, JobHandle, Topics};

pub use aggregate::{AggKind, SqlAggregates};
pub use plan::{ContinuousPlan, OutputColumn, TopicCatalog, target_topic};
use prepare::Prepare;
use row::{Row, RowCodec, Value};

use crate::{Error, Result};

/// How a continuous query runs.
#[derive(Debug, Clone)]
pub struct ContinuousConfig {
    /// The job (its name keys its state and offsets: keep it to resume).
    pub job: JobConfig,
    /// Watermarks trail the highest event time of each source partition by this much.
    pub watermark_delay_ms: i64,
    /// Salt hot keys over this many salts (tumbling and hopping windows); `None`: never.
    pub salts: Option<u32>,
    /// Where late rows go (created if missing); default `<target>_late`.
    pub late_topic: Option<String>,
}

impl ContinuousConfig {
    /// Defaults for a query whose job is named `name`.
    pub fn new(name: &str) -> ContinuousConfig {
        ContinuousConfig {
            job: JobConfig::new(name),
            watermark_delay_ms: 5_000,
            salts: Some(8),
            late_topic: None,
        }
    }
}

/// Encodes output rows for the target topic: JSON, or binary rows of its schema.
#[derive(Debug, Clone)]
struct TargetCodec {
    binary: Option<Arc<Schema>>,
}

/// An output record: its key (the group values) and its value.
type OutputRecord = (Vec<u8>, serde_json::Value);

impl Codec<OutputRecord> for TargetCodec {
    fn encode(&self, (_, v): &OutputRecord, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match &self.binary {
            Some(schema) => {
                let bytes = schema.encode(v).map_err(|e| CodecError::Encode {
                    field: None,
                    reason: e.to_string(),
                })?;
                out.extend_from_slice(&bytes);
                Ok(())
            }
            None => serde_json::to_writer(out, v).map_err(|e| CodecError::Encode {
                field: None,
                reason: e.to_string(),
            }),
        }
    }
    fn decode(&self, _bytes: &[u8]) -> Result<OutputRecord, CodecError> {
        Err(CodecError::Decode {
            field: None,
            reason: "the target codec only encodes".into(),
        })
    }
    fn name(&self) -> &'static str {
        "target"
    }
}

/// A late row in `<target>_late`.
#[derive(Debug, Serialize)]
struct LateRow {
    key: serde_json::Value,
    value: serde_json::Value,
    ts: i64,
    window_start: i64,
    window_end: i64,
    windows_missed: u32,
    reason: String,
    watermark: i64,
}

fn key_json(key: &[Value]) -> serde_json::Value {
    match key {
        [one] => one.to_json(),
        many => serde_json::Value::Array(many.iter().map(Value::to_json).collect()),
    }
}

/// A continuous query, ready to start.
pub struct ContinuousQuery {
    job: Job,
    /// The topic the results go to.
    pub target: String,
    /// The topic late rows go to.
    pub late_topic: String,
}

impl std::fmt::Debug for ContinuousQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContinuousQuery")
            .field("target", &self.target)
            .finish()
    }
}

impl ContinuousQuery {
    /// Plans `sql` against the topics of `log` ([`ContinuousPlan::new`]) and builds its job
    /// ([`ContinuousQuery::from_plan`]): planning errors (SQL syntax, unknown topics and columns,
    /// unsupported shapes, DataFusion's messages for bad expressions) come here, before
    /// anything runs or is created.
    pub fn new(log: &Log, sql: &str, config: ContinuousConfig) -> Result<ContinuousQuery> {
        let plan = ContinuousPlan::new(log, sql, &config)?;
        ContinuousQuery::from_plan(log, plan, config)
    }

    /// The job of `plan` on `log`, not yet started: creates the late topic if it is missing.
    /// `config` gives the job's settings (its `late_topic` was read by the planner).
    pub fn from_plan(
        log: &Log,
        plan: ContinuousPlan,
        config: ContinuousConfig,
    ) -> Result<ContinuousQuery> {
        let late_topic = plan.late_topic.clone();
        if log.partition_count(&late_topic).is_err() {
            log.create_topic(&late_topic, TopicConfig::default())
                .map_err(|e| Error::Plan(format!("creating `{late_topic}`: {e}")))?;
        }
        let job = Job::new(log, config.job.clone())?;
        ContinuousQuery::build(job, plan, config)
    }

    /// Plans `sql` against the topics `catalog` describes and builds its job on `topics`: on
    /// a Kafka-protocol cluster, `weir_cluster::KafkaTopics`, where the instances started with
    /// the same job name share the query's work. The late topic is created there if missing.
    pub fn with_topics(
        catalog: &impl TopicCatalog,
        topics: Arc<dyn Topics>,
        sql: &str,
        config: ContinuousConfig,
    ) -> Result<ContinuousQuery> {
        let plan = ContinuousPlan::new(catalog, sql, &config)?;
        let late_topic = plan.late_topic.clone();
        let defaults = TopicConfig::default();
        topics
            .ensure_topic(
                &late_topic,
                &TopicSpec {
                    partitions: 1,
                    compacted: false,
                    record_bytes_max: defaults.record_bytes_max,
                    batch_bytes_max: defaults.batch_bytes_max,
                    unlimited_retention: false,
                    segment_bytes_max: None,
                },
            )
            .map_err(|e| Error::Plan(format!("creating `{late_topic}`: {e}")))?;
        let job = Job::with_topics(topics, config.job.clone())?;
        ContinuousQuery::build(job, plan, config)
    }

    /// The query's graph on `job`.
    fn build(job: Job, plan: ContinuousPlan, config: ContinuousConfig) -> Result<ContinuousQuery> {
        let late_topic = plan.late_topic.clone();
        let ts_column = plan.ts_column;
        let rows = job
            .source::<Row, _>(
                &plan.source,
                RowCodec::new(plan.source_schema.clone(), plan.source_format),
            )
            .timestamps(
                move |r: &Row| match r[ts_column] {
                    Value::Int(t) => t,
                    _ => i64::MIN,
                },
                config.watermark_delay_ms,
            );
        let prepared = plan.prepared;
        let input = rows.transform("sql-prepare", move |ctx, _uid| {
            Ok(Box::new(Prepare::new(
                prepared.clone(),
                ctx.config().batch_records_max,
            )))
        });
        let mut windows = input
            .key_by(|p: &prepare::PreparedRow| p.key.clone())
            .window(plan.window)
            .name("sql-window");
        let sessions = matches!(plan.window, WindowSpec::Session { .. });
        if let (Some(salts), false) = (config.salts, sessions) {
            windows = windows.hot_keys(HotKeys::detect().salts(salts));
        }
        let aggs = SqlAggregates::new(plan.aggregates);
        let out = windows.aggregate(aggs);
        let layout = Arc::new(plan.output);
        let names: Vec<String> = plan
            .source_schema
            .columns()
            .iter()
            .map(|c| c.name.clone())
            .collect();
        out.results
            .map(move |r: WindowResult<Vec<Value>, Vec<Value>>| {
                let mut object = serde_json::Map::new();
                for (name, column) in layout.iter() {
                    let v = match column {
                        OutputColumn::Group(i) => r.key[*i].to_json(),
                        OutputColumn::WindowStart => r.window_start.into(),
                        OutputColumn::WindowEnd => r.window_end.into(),
                        OutputColumn::Aggregate(i) => r.value[*i].to_json(),
                    };
                    object.insert(name.clone(), v);
                }
                let key = match r.key.as_slice() {
                    [Value::Str(s)] => s.clone().into_bytes(),
                    k => key_json(k).to_string().into_bytes(),
                };
                (key, serde_json::Value::Object(object))
            })
            .sink_keyed(
                &plan.target,
                TargetCodec {
                    binary: plan.target_binary,
                },
                |r: &OutputRecord| r.0.clone(),
            );
        out.late
            .map(move |l: LateRecord<Vec<Value>, prepare::PreparedRow>| {
                let object: serde_json::Map<String, serde_json::Value> = names
                    .iter()
                    .zip(&l.value.row)
                    .map(|(n, v)| (n.clone(), v.to_json()))
                    .collect();
                serde_json::to_value(LateRow {
                    key: key_json(&l.key),
                    value: serde_json::Value::Object(object),
                    ts: l.ts,
                    window_start: l.window_start,
                    window_end: l.window_end,
                    windows_missed: l.windows_missed,
                    reason: l.reason,
                    watermark: l.watermark,
                })
                .unwrap_or(serde_json::Value::Null)
            })
            .sink(&late_topic, Json);
        Ok(ContinuousQuery {
            job,
            target: plan.target,
            late_topic,
        })
    }

    /// Starts the job.
    pub fn start(self) -> Result<JobHandle> {
        Ok(self.job.start()?)
    }
}
