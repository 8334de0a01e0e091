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

mod aggregate;
mod prepare;
pub mod row;

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema as ArrowSchema, SchemaRef};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::Expr as DfExpr;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Insert, SelectItem,
    SetExpr, Statement, TableFactor, TableObject,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde::Serialize;
use weir_log::{Log, TopicConfig};
use weir_operators::WindowSpec;
use weir_operators::windowed::{HotKeys, KeyedWindowExt, LateRecord, WindowResult};
use weir_runtime::codec::{Codec, CodecError, Json};
use weir_runtime::schema::{ColumnType, Schema};
use weir_runtime::{Job, JobConfig, JobHandle};

pub use aggregate::{AggKind, SqlAggregates};
use prepare::{Prepare, Prepared};
use row::{Row, RowCodec, Value};

use crate::{Error, Result, SessionOptions};

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

/// One output column.
#[derive(Debug, Clone)]
enum OutputColumn {
    Group(usize),
    WindowStart,
    WindowEnd,
    Aggregate(usize),
}

/// A parsed continuous query.
#[derive(Debug)]
struct Plan {
    target: String,
    source: String,
    ts_column: usize,
    window: WindowSpec,
    filter: Option<String>,
    groups: Vec<String>,
    aggregates: Vec<(AggKind, Option<String>)>,
    output: Vec<(String, OutputColumn)>,
}

fn unsupported(what: impl Into<String>) -> Error {
    Error::Plan(format!(
        "{}: a continuous query is `INSERT INTO topic SELECT ... FROM TUMBLE|HOP|SESSION(topic, \
         ts_column, INTERVAL ...) [WHERE ...] GROUP BY ...`",
        what.into()
    ))
}

/// The topic's weir schema and its Arrow form (value columns only).
fn arrow_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .columns()
        .iter()
        .map(|c| Field::new(&c.name, crate::schema::arrow_type(c.ty), true))
        .collect();
    Arc::new(ArrowSchema::new(fields))
}

fn interval_ms(ctx: &SessionContext, e: &Expr) -> Result<i64> {
    let empty = DFSchema::empty();
    let expr = ctx.parse_sql_expr(&e.to_string(), &empty)?;
    let ms = match &expr {
        DfExpr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _) if v.months == 0 => {
            i64::from(v.days) * 86_400_000 + v.nanoseconds / 1_000_000
        }
        DfExpr::Literal(ScalarValue::IntervalDayTime(Some(v)), _) => {
            i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds)
        }
        DfExpr::Literal(ScalarValue::Int64(Some(ms)), _) => *ms,
        _ => {
            return Err(unsupported(format!(
                "`{e}` is not a fixed interval (e.g. INTERVAL '1' MINUTE)"
            )));
        }
    };
    if ms <= 0 {
        return Err(unsupported(format!("`{e}` must be a positive interval")));
    }
    Ok(ms)
}

/// The single `INSERT INTO` statement of `sql` and the topic it writes to.
fn parse_insert(sql: &str) -> Result<(Insert, String)> {
    let statements = Parser::parse_sql(&GenericDialect {}, sql)
        .map_err(|e| Error::Plan(format!("SQL syntax: {e}")))?;
    let mut statements = statements.into_iter();
    let (Some(Statement::Insert(insert)), None) = (statements.next(), statements.next()) else {
        return Err(unsupported("not a single INSERT INTO statement"));
    };
    let TableObject::TableName(target) = &insert.table else {
        return Err(unsupported("INSERT INTO must name a topic"));
    };
    let target = target.to_string().trim_matches('"').to_string();
    Ok((insert, target))
}

/// The topic a continuous query writes to (its `INSERT INTO` table), without planning the rest.
pub fn target_topic(sql: &str) -> Result<String> {
    parse_insert(sql).map(|(_, target)| target)
}

fn parse(log: &Log, ctx: &SessionContext, sql: &str) -> Result<(Plan, Arc<Schema>, TopicConfig)> {
    let (insert, target) = parse_insert(sql)?;
    let Some(query) = &insert.source else {
        return Err(unsupported("INSERT INTO needs a SELECT"));
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err(unsupported("the query must be one SELECT"));
    };
    let [from] = select.from.as_slice() else {
        return Err(unsupported("FROM must be exactly one window function"));
    };
    if !from.joins.is_empty() {
        return Err(unsupported("joins are not supported in continuous queries"));
    }
    let TableFactor::Table {
        name,
        args: Some(args),
        ..
    } = &from.relation
    else {
        return Err(unsupported(
            "FROM must be TUMBLE(...), HOP(...) or SESSION(...)",
        ));
    };
    let args: Vec<&Expr> = args
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
            other => Err(unsupported(format!("window argument `{other}`"))),
        })
        .collect::<Result<_>>()?;
    let function = name.to_string().to_ascii_uppercase();
    if args.len() < 3 {
        return Err(unsupported(format!(
            "{function} takes (topic, ts_column, interval...)"
        )));
    }
    let source = args[0].to_string().trim_matches('"').to_string();
    let config = log
        .topic_config(&source)
        .map_err(|e| Error::Plan(format!("source `{source}`: {e}")))?;
    let schema_text = config
        .schema
        .clone()
        .ok_or_else(|| Error::Plan(format!("source `{source}` has no schema")))?;
    let schema = Arc::new(
        Schema::parse(&schema_text).map_err(|e| Error::Plan(format!("source `{source}`: {e}")))?,
    );
    let ts_name = args[1].to_string().trim_matches('"').to_string();
    let ts_column = schema
        .columns()
        .iter()
        .position(|c| c.name == ts_name)
        .ok_or_else(|| Error::Plan(format!("`{source}` has no column `{ts_name}`")))?;
    if !matches!(
        schema.columns()[ts_column].ty,
        ColumnType::Timestamp | ColumnType::BigInt
    ) {
        return Err(Error::Plan(format!(
            "event time column `{ts_name}` must be TIMESTAMP or BIGINT (ms)"
        )));
    }
    let window = match (function.as_str(), args.len()) {
        ("TUMBLE", 3) => WindowSpec::Tumbling {
            size_ms: interval_ms(ctx, args[2])?,
        },
        ("HOP", 4) => WindowSpec::Sliding {
            slide_ms: interval_ms(ctx, args[2])?,
            size_ms: interval_ms(ctx, args[3])?,
        },
        ("SESSION", 3) => WindowSpec::Session {
            gap_ms: interval_ms(ctx, args[2])?,
        },
        (f, n) => return Err(unsupported(format!("{f} with {n} arguments"))),
    };
    let groups: Vec<String> = match &select.group_by {
        GroupByExpr::Expressions(exprs, _) => exprs.iter().map(|e| e.to_string()).collect(),
        GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL")),
    };
    let is_window_col =
        |s: &str| s.eq_ignore_ascii_case("window_start") || s.eq_ignore_ascii_case("window_end");
    let group_exprs: Vec<String> = groups
        .iter()
        .filter(|g| !is_window_col(g))
        .cloned()
        .collect();
    let mut aggregates = Vec::new();
    let mut output = Vec::new();
    for item in &select.projection {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
            other => return Err(unsupported(format!("select item `{other}`"))),
        };
        let text = expr.to_string();
        let name = alias.unwrap_or_else(|| text.clone());
        let column = if text.eq_ignore_ascii_case("window_start") {
            OutputColumn::WindowStart
        } else if text.eq_ignore_ascii_case("window_end") {
            OutputColumn::WindowEnd
        } else if let Expr::Function(f) = expr {
            let kind = AggKind::parse(&f.name.to_string()).ok_or_else(|| {
                unsupported(format!("`{text}` is not an aggregate or a GROUP BY column"))
            })?;
            let arg = match &f.args {
                FunctionArguments::List(list) => match list.args.as_slice() {
                    [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if kind == AggKind::Count => {
                        None
                    }
                    [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => Some(e.to_string()),
                    _ => return Err(unsupported(format!("`{text}`: one argument expected"))),
                },
                _ => return Err(unsupported(format!("`{text}`: one argument expected"))),
            };
            let kind = if kind == AggKind::Count && arg.is_some() {
                AggKind::CountNonNull
            } else {
                kind
            };
            aggregates.push((kind, arg));
            OutputColumn::Aggregate(aggregates.len() - 1)
        } else {
            let i = group_exprs
                .iter()
                .position(|g| *g == text)
                .ok_or_else(|| unsupported(format!("`{text}` must be in GROUP BY")))?;
            OutputColumn::Group(i)
        };
        output.push((name, column));
    }
    if !groups
        .iter()
        .any(|g| g.eq_ignore_ascii_case("window_start"))
    {
        return Err(unsupported(
            "GROUP BY must include window_start (and window_end)",
        ));
    }
    Ok((
        Plan {
            target,
            source,
            ts_column,
            window,
            filter: select.selection.as_ref().map(|e| e.to_string()),
            groups: group_exprs,
            aggregates,
            output,
        },
        schema,
        config,
    ))
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
    /// Plans `sql` against the topics of `log`: errors (SQL syntax, unknown topics and columns,
    /// unsupported shapes, DataFusion's messages for bad expressions) come here, before
    /// anything runs.
    pub fn new(log: &Log, sql: &str, config: ContinuousConfig) -> Result<ContinuousQuery> {
        // DataFusion only plans and evaluates expressions here, a batch of at most
        // `batch_records_max` rows at a time (windows and aggregates run in the runtime), and
        // accounts no memory for that; the context still gets an ad-hoc session's runtime
        // (memory bound, no files) so that nothing DataFusion runs for a query is unbounded.
        let ctx = SessionContext::new_with_config_rt(
            SessionConfig::new(),
            SessionOptions::default().runtime_env()?,
        );
        let (plan, schema, source_config) = parse(log, &ctx, sql)?;
        let target_config = log
            .topic_config(&plan.target)
            .map_err(|e| Error::Plan(format!("target `{}`: {e}", plan.target)))?;
        let late_topic = config
            .late_topic
            .clone()
            .unwrap_or_else(|| format!("{}_late", plan.target));
        if log.partition_count(&late_topic).is_err() {
            log.create_topic(&late_topic, TopicConfig::default())
                .map_err(|e| Error::Plan(format!("creating `{late_topic}`: {e}")))?;
        }
        let arrow = arrow_schema(&schema);
        let df_schema = DFSchema::try_from(arrow.as_ref().clone())?;
        let compile = |text: &str| -> Result<_> {
            let e = ctx.parse_sql_expr(text, &df_schema)?;
            Ok(ctx.create_physical_expr(e, &df_schema)?)
        };
        let prepared = Prepared {
            arrow: arrow.clone(),
            filter: plan.filter.as_deref().map(compile).transpose()?,
            groups: plan
                .groups
                .iter()
                .map(|g| compile(g))
                .collect::<Result<_>>()?,
            args: plan
                .aggregates
                .iter()
                .map(|(_, a)| a.as_deref().map(compile).transpose())
                .collect::<Result<_>>()?,
        };
        let target_binary = match (target_config.format.as_str(), &target_config.schema) {
            ("binary", Some(s)) => {
                Some(Arc::new(Schema::parse(s).map_err(|e| {
                    Error::Plan(format!("target `{}`: {e}", plan.target))
                })?))
            }
            ("binary", None) => {
                return Err(Error::Plan(format!(
                    "target `{}` is binary but has no schema",
                    plan.target
                )));
            }
            _ => None,
        };

        let job = Job::new(log, config.job.clone())?;
        let ts_column = plan.ts_column;
        let rows = job
            .source::<Row, _>(
                &plan.source,
                RowCodec::new(schema.clone(), &source_config.format),
            )
            .timestamps(
                move |r: &Row| match r[ts_column] {
                    Value::Int(t) => t,
                    _ => i64::MIN,
                },
                config.watermark_delay_ms,
            );
        let prepared = Arc::new(prepared);
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
        let aggs = SqlAggregates::new(plan.aggregates.iter().map(|(k, _)| *k).collect());
        let out = windows.aggregate(aggs);
        let layout = Arc::new(plan.output.clone());
        let names: Vec<String> = schema.columns().iter().map(|c| c.name.clone()).collect();
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
                    binary: target_binary,
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
