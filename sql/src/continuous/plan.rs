//! The planner of continuous queries: SQL text and the topics' settings in, a
//! [`ContinuousPlan`] out. Pure: it reads only the catalog it is given, creates no topic and
//! starts nothing; the expressions it returns are already DataFusion physical expressions, so
//! the job ([`super::ContinuousQuery`]) never parses SQL again.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema as ArrowSchema, SchemaRef};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::Expr as DfExpr;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::{
    Expr, ExprWithAlias, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Insert,
    SelectItem, SetExpr, Statement, TableFactor, TableObject,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use weir_log::{Log, TopicConfig, ValueFormat};
use weir_operators::WindowSpec;
use weir_runtime::schema::{ColumnType, Schema};

use super::ContinuousConfig;
use super::aggregate::AggKind;
use super::prepare::Prepared;
use crate::{Error, Result, SessionOptions};

/// The topics a planner may look at: their settings, by name. A [`Log`] is one; a map of
/// settings is another (for planning without a log, e.g. in tests).
pub trait TopicCatalog {
    /// The settings of `topic`, or why there are none (an unknown topic).
    fn topic_config(&self, topic: &str) -> weir_log::Result<TopicConfig>;
}

impl TopicCatalog for Log {
    fn topic_config(&self, topic: &str) -> weir_log::Result<TopicConfig> {
        Log::topic_config(self, topic)
    }
}

impl TopicCatalog for BTreeMap<String, TopicConfig> {
    fn topic_config(&self, topic: &str) -> weir_log::Result<TopicConfig> {
        self.get(topic)
            .cloned()
            .ok_or_else(|| weir_log::Error::UnknownTopic(topic.to_string()))
    }
}

/// Where one output column's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputColumn {
    /// The GROUP BY expression of this index (window columns not counted).
    Group(usize),
    /// The window's start, ms since the Unix epoch.
    WindowStart,
    /// The window's end (exclusive), ms since the Unix epoch.
    WindowEnd,
    /// The aggregate of this index, in SELECT order.
    Aggregate(usize),
}

/// A parsed continuous query: its expressions still as SQL text.
#[derive(Debug)]
struct Parsed {
    target: String,
    source: String,
    ts_column: usize,
    window: WindowSpec,
    filter: Option<Expr>,
    groups: Vec<Expr>,
    aggregates: Vec<(AggKind, Option<Expr>)>,
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
    let with_alias = ExprWithAlias {
        expr: e.clone(),
        alias: None,
    };
    let expr = ctx
        .state()
        .create_logical_expr_from_sql_expr(with_alias, &empty)?;
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

fn parse(
    catalog: &impl TopicCatalog,
    ctx: &SessionContext,
    sql: &str,
) -> Result<(Parsed, Arc<Schema>, TopicConfig)> {
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
    let config = catalog
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
    // Expressions are matched by their text (a SELECT item is a group column if it reads as
    // one) and kept as syntax trees for DataFusion to plan, never printed and parsed again.
    let groups: Vec<(String, &Expr)> = match &select.group_by {
        GroupByExpr::Expressions(exprs, _) => exprs.iter().map(|e| (e.to_string(), e)).collect(),
        GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL")),
    };
    let is_window_col =
        |s: &str| s.eq_ignore_ascii_case("window_start") || s.eq_ignore_ascii_case("window_end");
    let group_exprs: Vec<(String, &Expr)> = groups
        .iter()
        .filter(|(text, _)| !is_window_col(text))
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
                    [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => Some(e.clone()),
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
                .position(|(g, _)| *g == text)
                .ok_or_else(|| unsupported(format!("`{text}` must be in GROUP BY")))?;
            OutputColumn::Group(i)
        };
        output.push((name, column));
    }
    if !groups
        .iter()
        .any(|(g, _)| g.eq_ignore_ascii_case("window_start"))
    {
        return Err(unsupported(
            "GROUP BY must include window_start (and window_end)",
        ));
    }
    Ok((
        Parsed {
            target,
            source,
            ts_column,
            window,
            filter: select.selection.clone(),
            groups: group_exprs.into_iter().map(|(_, e)| e.clone()).collect(),
            aggregates,
            output,
        },
        schema,
        config,
    ))
}
/// A planned continuous query: what the job reads, computes and writes, with its expressions
/// already compiled. Making one reads topic settings and nothing else.
#[derive(Debug)]
pub struct ContinuousPlan {
    pub(super) target: String,
    pub(super) late_topic: String,
    pub(super) source: String,
    pub(super) source_schema: Arc<Schema>,
    pub(super) source_format: ValueFormat,
    /// The target's schema when it stores binary rows; `None`: JSON.
    pub(super) target_binary: Option<Arc<Schema>>,
    pub(super) ts_column: usize,
    pub(super) window: WindowSpec,
    pub(super) prepared: Arc<Prepared>,
    pub(super) aggregates: Vec<AggKind>,
    pub(super) output: Vec<(String, OutputColumn)>,
}

impl ContinuousPlan {
    /// Plans `sql` against the topics of `catalog`: errors (SQL syntax, unknown topics and
    /// columns, unsupported shapes, DataFusion's messages for bad expressions) come here.
    pub fn new(
        catalog: &impl TopicCatalog,
        sql: &str,
        config: &ContinuousConfig,
    ) -> Result<ContinuousPlan> {
        // DataFusion only plans expressions here, and evaluates them later a batch of at most
        // `batch_records_max` rows at a time (windows and aggregates run in the runtime); the
        // context still gets an ad-hoc session's runtime (memory bound, no files) so that
        // nothing DataFusion runs for a query is unbounded.
        let ctx = SessionContext::new_with_config_rt(
            SessionConfig::new(),
            SessionOptions::default().runtime_env()?,
        );
        let (parsed, schema, source_config) = parse(catalog, &ctx, sql)?;
        let target_config = catalog
            .topic_config(&parsed.target)
            .map_err(|e| Error::Plan(format!("target `{}`: {e}", parsed.target)))?;
        let late_topic = config
            .late_topic
            .clone()
            .unwrap_or_else(|| format!("{}_late", parsed.target));
        let arrow = arrow_schema(&schema);
        let df_schema = DFSchema::try_from(arrow.as_ref().clone())?;
        let state = ctx.state();
        let compile = |expr: &Expr| -> Result<_> {
            let with_alias = ExprWithAlias {
                expr: expr.clone(),
                alias: None,
            };
            let e = state.create_logical_expr_from_sql_expr(with_alias, &df_schema)?;
            Ok(state.create_physical_expr(e, &df_schema)?)
        };
        let prepared = Prepared {
            arrow,
            filter: parsed.filter.as_ref().map(compile).transpose()?,
            groups: parsed.groups.iter().map(compile).collect::<Result<_>>()?,
            args: parsed
                .aggregates
                .iter()
                .map(|(_, a)| a.as_ref().map(compile).transpose())
                .collect::<Result<_>>()?,
        };
        let target_binary = match (target_config.format, &target_config.schema) {
            (ValueFormat::Binary, Some(s)) => {
                Some(Arc::new(Schema::parse(s).map_err(|e| {
                    Error::Plan(format!("target `{}`: {e}", parsed.target))
                })?))
            }
            (ValueFormat::Binary, None) => {
                return Err(Error::Plan(format!(
                    "target `{}` is binary but has no schema",
                    parsed.target
                )));
            }
            (ValueFormat::Json, _) => None,
        };
        Ok(ContinuousPlan {
            target: parsed.target,
            late_topic,
            source: parsed.source,
            source_schema: schema,
            source_format: source_config.format,
            target_binary,
            ts_column: parsed.ts_column,
            window: parsed.window,
            prepared: Arc::new(prepared),
            aggregates: parsed.aggregates.into_iter().map(|(k, _)| k).collect(),
            output: parsed.output,
        })
    }

    /// The topic the results go to.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The topic late rows go to (the job creates it if missing).
    pub fn late_topic(&self) -> &str {
        &self.late_topic
    }

    /// The topic the query reads.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The windows rows are grouped into.
    pub fn window(&self) -> WindowSpec {
        self.window
    }

    /// The aggregates computed per window and key, in SELECT order.
    pub fn aggregates(&self) -> &[AggKind] {
        &self.aggregates
    }

    /// The output columns: each one's name and where its value comes from.
    pub fn output(&self) -> &[(String, OutputColumn)] {
        &self.output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> BTreeMap<String, TopicConfig> {
        let topic = |schema: Option<&str>, format| TopicConfig {
            schema: schema.map(str::to_string),
            format,
            ..TopicConfig::default()
        };
        BTreeMap::from([
            (
                "clicks".to_string(),
                topic(Some("ad_id BIGINT, ts TIMESTAMP"), ValueFormat::Binary),
            ),
            ("out".to_string(), topic(None, ValueFormat::Json)),
        ])
    }

    #[test]
    fn plans_from_settings_alone() {
        let sql = "INSERT INTO out SELECT ad_id + 1 AS ad, window_start, count(*) AS n \
                   FROM TUMBLE(clicks, ts, INTERVAL '1' MINUTE) WHERE ad_id > 0 \
                   GROUP BY ad_id + 1, window_start, window_end";
        let plan =
            ContinuousPlan::new(&catalog(), sql, &ContinuousConfig::new("q")).expect("plans");
        assert_eq!(
            (plan.source(), plan.target(), plan.late_topic()),
            ("clicks", "out", "out_late")
        );
        assert_eq!(plan.window(), WindowSpec::Tumbling { size_ms: 60_000 });
        assert_eq!(plan.aggregates(), [AggKind::Count]);
        let output: Vec<_> = plan
            .output()
            .iter()
            .map(|(n, c)| (n.as_str(), c.clone()))
            .collect();
        assert_eq!(
            output,
            [
                ("ad", OutputColumn::Group(0)),
                ("window_start", OutputColumn::WindowStart),
                ("n", OutputColumn::Aggregate(0)),
            ]
        );
        assert!(plan.prepared.filter.is_some());
        assert_eq!(plan.prepared.groups.len(), 1);
        assert_eq!(plan.source_format, ValueFormat::Binary);
        assert!(plan.target_binary.is_none());
    }

    #[test]
    fn planning_errors_name_what_is_wrong() {
        let config = ContinuousConfig::new("q");
        let err = |sql: &str| {
            ContinuousPlan::new(&catalog(), sql, &config)
                .expect_err(sql)
                .to_string()
        };
        let from = "FROM TUMBLE(clicks, ts, INTERVAL '1' MINUTE) GROUP BY ad_id, window_start";
        assert!(
            err(&format!(
                "INSERT INTO nope SELECT ad_id, window_start, count(*) {from}"
            ))
            .contains("target `nope`")
        );
        assert!(
            err(&format!(
                "INSERT INTO out SELECT ad_id, window_start, sum(nope) {from}"
            ))
            .contains("nope")
        );
        assert!(
            err("INSERT INTO out SELECT ad_id, window_start, count(*) \
             FROM TUMBLE(clicks, ad_id, INTERVAL '0' MINUTE) GROUP BY ad_id, window_start")
            .contains("positive interval")
        );
    }
}
