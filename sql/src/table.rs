//! [`TopicTable`]: one topic as a DataFusion table, and [`TopicScanExec`], its scan.
//!
//! Pushdown: only the projected columns are decoded (no value is decoded when only metadata
//! columns are read); filters on `_partition` prune partitions, on `_offset` bound the offsets
//! read, and a lower bound on `_timestamp` seeks through the time index
//! ([`weir_log::Log::offset_for_timestamp`]). All three are reported to DataFusion as `Inexact`,
//! so it re-checks every row; the pushdown only saves reading.
//!
//! Each topic partition is one DataFusion partition, scanned in parallel. The scan reads at
//! `read_committed` up to each partition's last stable offset as of planning time, so a query
//! sees one consistent snapshot even while a writer appends.
//!
//! Where the records come from is a [`TopicSource`]: the embedded [`Log`] (its segments read in
//! place), or a cluster's client (Kafka's Fetch and ListOffsets; the `weir` CLI has one).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown, expr::InList,
};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use weir_log::{
    Consumer, ConsumerBatch, ConsumerConfig, IsolationLevel, Log, TopicConfig, ValueFormat,
};
use weir_runtime::schema::Schema;

use crate::decode::BatchDecoder;
use crate::schema::{OFFSET_COLUMN, PARTITION_COLUMN, TIMESTAMP_COLUMN, table_schema};
use crate::{Error, Result};

type DfResult<T> = std::result::Result<T, DataFusionError>;

/// Largest fetch one scan asks the log for per poll.
const POLL_BYTES_MAX: usize = 8 << 20;

/// Where a [`TopicTable`]'s records come from: the embedded [`Log`], or a cluster's client.
/// Reads are `read_committed`.
pub trait TopicSource: Send + Sync + fmt::Debug {
    /// The topics there are.
    fn topic_names(&self) -> Result<Vec<String>>;

    /// A topic's settings: its schema and value format above all.
    fn topic_config(&self, topic: &str) -> Result<TopicConfig>;

    /// Each partition of `topic`, in partition order, with the offsets it holds now.
    fn partitions(&self, topic: &str) -> Result<Vec<PartitionExtent>>;

    /// The first offset of a partition whose record has a timestamp ≥ `timestamp_ms`, `None`
    /// if there is none.
    fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<i64>>;

    /// Opens one partition's committed records in `[start_offset, end_offset)` of `scan`.
    fn open_partition(&self, topic: &str, scan: &PartitionScan)
    -> Result<Box<dyn PartitionSource>>;
}

/// A partition's offsets as [`TopicSource::partitions`] reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionExtent {
    /// The partition.
    pub partition: i32,
    /// Its first offset (the log start).
    pub start_offset: i64,
    /// Its last stable offset: a `read_committed` reader stops here.
    pub last_stable_offset: i64,
}

/// One record as a [`PartitionSource`] hands it over, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct SourceRecord<'a> {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp, ms since the Unix epoch.
    pub timestamp: i64,
    /// Its key, `None` for null.
    pub key: Option<&'a [u8]>,
    /// Its value, `None` for null.
    pub value: Option<&'a [u8]>,
}

/// The committed records of one partition's range, read a fetch at a time.
pub trait PartitionSource: Send {
    /// Hands the next records of the range to `each`, in offset order, stopping early when it
    /// returns `Ok(false)`. Returns false once the range is done (nothing below its end is left
    /// to read).
    fn read(&mut self, each: &mut dyn FnMut(SourceRecord<'_>) -> Result<bool>) -> Result<bool>;
}

/// One topic with a schema, as a DataFusion table.
#[derive(Debug, Clone)]
pub struct TopicTable {
    source: Arc<dyn TopicSource>,
    topic: Arc<str>,
    schema: Arc<Schema>,
    format: ValueFormat,
    table_schema: SchemaRef,
}

impl TopicTable {
    /// The table of `topic`, or `None` if the topic has no schema (SQL cannot read it).
    pub fn try_new(log: &Log, topic: &str) -> Result<Option<TopicTable>> {
        TopicTable::from_source(Arc::new(log.clone()), topic)
    }

    /// The table of `topic` read from `source`, or `None` if the topic has no schema.
    pub fn from_source(source: Arc<dyn TopicSource>, topic: &str) -> Result<Option<TopicTable>> {
        let config = source.topic_config(topic)?;
        let Some(text) = config.schema else {
            return Ok(None);
        };
        let schema: Schema = text.parse().map_err(|e| Error::Schema {
            topic: topic.to_string(),
            reason: format!("{e}"),
        })?;
        Ok(Some(TopicTable {
            source,
            topic: Arc::from(topic),
            table_schema: table_schema(&schema),
            schema: Arc::new(schema),
            format: config.format,
        }))
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The offset ranges a scan with these filters reads, one per partition left after pruning.
    pub fn plan_ranges(&self, filters: &[Expr]) -> Result<Vec<PartitionScan>> {
        let mut bounds = Bounds::default();
        for f in filters {
            bounds.add(f);
        }
        let mut ranges = Vec::new();
        for p in self.source.partitions(&self.topic)? {
            if !bounds.partition_matches(p.partition) {
                continue;
            }
            let mut start = p.start_offset.max(bounds.offset_min);
            let end = p.last_stable_offset.min(bounds.offset_end);
            if let Some(ts) = bounds.timestamp_min
                && start < end
            {
                match self
                    .source
                    .offset_for_timestamp(&self.topic, p.partition, ts)?
                {
                    Some(o) => start = start.max(o),
                    None => start = end,
                }
            }
            if start < end {
                ranges.push(PartitionScan {
                    partition: p.partition,
                    start_offset: start,
                    end_offset: end,
                    records_read: 0,
                });
            }
        }
        Ok(ranges)
    }
}

#[async_trait]
impl TableProvider for TopicTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.table_schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let projected = match projection {
            Some(p) => Arc::new(self.table_schema.project(p)?),
            None => Arc::clone(&self.table_schema),
        };
        let ranges = self.plan_ranges(filters)?;
        Ok(Arc::new(TopicScanExec::new(
            self.clone(),
            projected,
            ranges,
            limit,
        )))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if Bounds::default().add(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }
}

/// What filters allow a scan to skip. Offsets are `[offset_min, offset_end)`.
#[derive(Debug, Clone)]
struct Bounds {
    partitions: Vec<PartitionPredicate>,
    offset_min: i64,
    offset_end: i64,
    timestamp_min: Option<i64>,
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds {
            partitions: Vec::new(),
            offset_min: 0,
            offset_end: i64::MAX,
            timestamp_min: None,
        }
    }
}

#[derive(Debug, Clone)]
enum PartitionPredicate {
    Compare(Operator, i64),
    In(Vec<i64>),
}

impl Bounds {
    /// Narrows the bounds by `filter`; false if the filter says nothing usable.
    fn add(&mut self, filter: &Expr) -> bool {
        match filter {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::And => {
                // Both sides narrow; report usable if either does (the rest is re-checked).
                let l = self.add(left);
                let r = self.add(right);
                l || r
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::Or => {
                // `_partition IN (1, 3)` reaches here as `_partition = 1 OR _partition = 3`.
                match (partition_values(left), partition_values(right)) {
                    (Some(mut l), Some(r)) => {
                        l.extend(r);
                        self.partitions.push(PartitionPredicate::In(l));
                        true
                    }
                    _ => false,
                }
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (column, op, value) = match (column_name(left), literal_i64(right)) {
                    (Some(c), Some(v)) => (c, *op, v),
                    _ => match (column_name(right), literal_i64(left), op.swap()) {
                        (Some(c), Some(v), Some(op)) => (c, op, v),
                        _ => return false,
                    },
                };
                self.compare(column, op, value)
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => match (column_name(expr), literal_i64(low), literal_i64(high)) {
                (Some(c), Some(lo), Some(hi)) => {
                    self.compare(c, Operator::GtEq, lo) && self.compare(c, Operator::LtEq, hi)
                }
                _ => false,
            },
            Expr::InList(InList {
                expr,
                list,
                negated: false,
            }) if column_name(expr) == Some(PARTITION_COLUMN) => {
                let values: Option<Vec<i64>> = list.iter().map(literal_i64).collect();
                match values {
                    Some(v) => {
                        self.partitions.push(PartitionPredicate::In(v));
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }

    fn compare(&mut self, column: &str, op: Operator, v: i64) -> bool {
        match column {
            PARTITION_COLUMN => match op {
                Operator::Eq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq => {
                    self.partitions.push(PartitionPredicate::Compare(op, v));
                    true
                }
                _ => false,
            },
            OFFSET_COLUMN => {
                let (min, end) = match op {
                    Operator::Eq => (v, v.saturating_add(1)),
                    Operator::Gt => (v.saturating_add(1), i64::MAX),
                    Operator::GtEq => (v, i64::MAX),
                    Operator::Lt => (0, v),
                    Operator::LtEq => (0, v.saturating_add(1)),
                    _ => return false,
                };
                self.offset_min = self.offset_min.max(min);
                self.offset_end = self.offset_end.min(end);
                true
            }
            TIMESTAMP_COLUMN => {
                let min = match op {
                    Operator::Eq | Operator::GtEq => v,
                    Operator::Gt => v.saturating_add(1),
                    _ => return false,
                };
                self.timestamp_min = Some(self.timestamp_min.map_or(min, |t| t.max(min)));
                true
            }
            _ => false,
        }
    }

    fn partition_matches(&self, p: i32) -> bool {
        let p = i64::from(p);
        self.partitions.iter().all(|pred| match pred {
            PartitionPredicate::In(list) => list.contains(&p),
            PartitionPredicate::Compare(op, v) => match op {
                Operator::Eq => p == *v,
                Operator::Lt => p < *v,
                Operator::LtEq => p <= *v,
                Operator::Gt => p > *v,
                Operator::GtEq => p >= *v,
                _ => true,
            },
        })
    }
}

/// The partitions an equality, an IN list or an OR of them on `_partition` allows.
fn partition_values(e: &Expr) -> Option<Vec<i64>> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::Or => {
                let mut l = partition_values(left)?;
                l.extend(partition_values(right)?);
                Some(l)
            }
            Operator::Eq => match (column_name(left), literal_i64(right)) {
                (Some(PARTITION_COLUMN), Some(v)) => Some(vec![v]),
                _ => match (column_name(right), literal_i64(left)) {
                    (Some(PARTITION_COLUMN), Some(v)) => Some(vec![v]),
                    _ => None,
                },
            },
            _ => None,
        },
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) if column_name(expr) == Some(PARTITION_COLUMN) => list.iter().map(literal_i64).collect(),
        _ => None,
    }
}

/// The metadata column an expression names, seen through widening integer casts.
fn column_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        Expr::Cast(c) if c.field.data_type().is_integer() => column_name(&c.expr),
        _ => None,
    }
}

/// An integer or timestamp literal as i64 (timestamps in ms, rounded down: the bound stays safe).
fn literal_i64(e: &Expr) -> Option<i64> {
    let Expr::Literal(v, _) = e else {
        return None;
    };
    match v {
        ScalarValue::Int8(Some(v)) => Some(i64::from(*v)),
        ScalarValue::Int16(Some(v)) => Some(i64::from(*v)),
        ScalarValue::Int32(Some(v)) => Some(i64::from(*v)),
        ScalarValue::Int64(Some(v)) => Some(*v),
        ScalarValue::UInt8(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt16(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt32(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).ok(),
        ScalarValue::TimestampMillisecond(Some(v), None) => Some(*v),
        ScalarValue::TimestampSecond(Some(v), None) => v.checked_mul(1000),
        ScalarValue::TimestampMicrosecond(Some(v), None) => Some(v.div_euclid(1000)),
        ScalarValue::TimestampNanosecond(Some(v), None) => Some(v.div_euclid(1_000_000)),
        _ => None,
    }
}

/// One partition's part of a scan: the offsets `[start_offset, end_offset)` planned, and how many
/// records were read once it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionScan {
    /// The topic partition.
    pub partition: i32,
    /// First offset to read (after offset and timestamp pushdown).
    pub start_offset: i64,
    /// One past the last offset to read (the last stable offset at planning, or less).
    pub end_offset: i64,
    /// Records read so far (committed data records only; aborted ones and markers are skipped).
    pub records_read: u64,
}

/// What one table scan of a query read: for tests and `EXPLAIN ANALYZE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// The topic.
    pub topic: String,
    /// The projected columns.
    pub columns: Vec<String>,
    /// The partitions read, after pruning (in partition order).
    pub partitions: Vec<PartitionScan>,
}

impl fmt::Display for ScanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scan {} [{}]:", self.topic, self.columns.join(", "))?;
        if self.partitions.is_empty() {
            return f.write_str(" no partition");
        }
        for p in &self.partitions {
            write!(
                f,
                " p{} [{}, {}) read {};",
                p.partition, p.start_offset, p.end_offset, p.records_read
            )?;
        }
        Ok(())
    }
}

/// The physical scan of a [`TopicTable`]: one output partition per topic partition to read.
#[derive(Debug)]
pub struct TopicScanExec {
    table: TopicTable,
    projected: SchemaRef,
    ranges: Arc<Mutex<Vec<PartitionScan>>>,
    partitions: usize,
    limit: Option<usize>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl TopicScanExec {
    fn new(
        table: TopicTable,
        projected: SchemaRef,
        ranges: Vec<PartitionScan>,
        limit: Option<usize>,
    ) -> TopicScanExec {
        // DataFusion expects at least one partition; with everything pruned, one empty one.
        let partitions = ranges.len().max(1);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&projected)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        TopicScanExec {
            table,
            projected,
            ranges: Arc::new(Mutex::new(ranges)),
            partitions,
            limit,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// What this scan planned to read and, once executed, how much it read.
    pub fn report(&self) -> ScanReport {
        ScanReport {
            topic: self.table.topic.to_string(),
            columns: self
                .projected
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
            partitions: self
                .ranges
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

impl DisplayAs for TopicScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                let report = self.report();
                write!(f, "TopicScanExec: topic={}, ranges=[", report.topic)?;
                for (i, p) in report.partitions.iter().enumerate() {
                    let sep = if i > 0 { ", " } else { "" };
                    write!(
                        f,
                        "{sep}p{}:[{},{})",
                        p.partition, p.start_offset, p.end_offset
                    )?;
                }
                write!(f, "], projection=[{}]", report.columns.join(", "))?;
                if let Some(l) = self.limit {
                    write!(f, ", limit={l}")?;
                }
                Ok(())
            }
            DisplayFormatType::TreeRender => write!(f, "topic={}", self.table.topic),
        }
    }
}

impl ExecutionPlan for TopicScanExec {
    fn name(&self) -> &'static str {
        "TopicScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition >= self.partitions {
            return Err(DataFusionError::Internal(format!(
                "TopicScanExec: partition {partition} of {}",
                self.partitions
            )));
        }
        let range = self
            .ranges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(partition)
            .cloned();
        let schema = Arc::clone(&self.projected);
        let Some(range) = range else {
            let empty = futures::stream::empty();
            return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, empty)));
        };
        let records = self
            .table
            .source
            .open_partition(&self.table.topic, &range)?;
        let batch_rows = context.session_config().batch_size().max(1);
        let decoder = BatchDecoder::new(
            Arc::clone(&self.table.schema),
            Arc::clone(&schema),
            self.table.format,
            Arc::clone(&self.table.topic),
            range.partition,
            batch_rows,
        )?;
        let reader = PartitionReader {
            decoder,
            records,
            slot: partition,
            report: Arc::clone(&self.ranges),
            exhausted: false,
            batch_rows,
            rows_left: self.limit.unwrap_or(usize::MAX),
            records_read: MetricBuilder::new(&self.metrics).counter("records_read", partition),
            output_rows: MetricBuilder::new(&self.metrics).output_rows(partition),
        };
        let stream = futures::stream::iter(reader);
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Reads one partition's range and decodes it batch by batch. Reads are synchronous (`pread` of
/// the segments, or a client's fetch), so this is a plain iterator driven from DataFusion's
/// stream. Records are decoded straight from what the source fetched (borrowed) into the Arrow
/// builders: an output batch holds at least `batch_rows` records, or the rest.
struct PartitionReader {
    decoder: BatchDecoder,
    records: Box<dyn PartitionSource>,
    slot: usize,
    report: Arc<Mutex<Vec<PartitionScan>>>,
    /// Nothing more to read below the end of the range.
    exhausted: bool,
    batch_rows: usize,
    rows_left: usize,
    records_read: datafusion::physical_plan::metrics::Count,
    output_rows: datafusion::physical_plan::metrics::Count,
}

impl PartitionReader {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        while self.rows_left > 0 && self.decoder.len() < self.batch_rows && !self.exhausted {
            let (decoder, rows_left) = (&mut self.decoder, &mut self.rows_left);
            let more = self.records.read(&mut |r| {
                decoder.append(r.offset, r.timestamp, r.key, r.value)?;
                *rows_left -= 1;
                Ok(*rows_left > 0)
            })?;
            self.exhausted = !more;
        }
        let n = self.decoder.len();
        if n == 0 {
            return Ok(None);
        }
        let batch = self.decoder.finish()?;
        self.records_read.add(n);
        self.output_rows.add(n);
        if let Some(p) = self
            .report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(self.slot)
        {
            p.records_read += n as u64;
        }
        Ok(Some(batch))
    }
}

/// The embedded log as a [`TopicSource`]: its segments read in place.
impl TopicSource for Log {
    fn topic_names(&self) -> Result<Vec<String>> {
        Ok(Log::topic_names(self))
    }

    fn topic_config(&self, topic: &str) -> Result<TopicConfig> {
        Ok(Log::topic_config(self, topic)?)
    }

    fn partitions(&self, topic: &str) -> Result<Vec<PartitionExtent>> {
        Ok(self
            .describe_topic(topic)?
            .partitions
            .iter()
            .map(|p| PartitionExtent {
                partition: p.partition,
                start_offset: p.log_start_offset,
                last_stable_offset: p.last_stable_offset,
            })
            .collect())
    }

    fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<i64>> {
        Ok(Log::offset_for_timestamp(
            self,
            topic,
            partition,
            timestamp_ms,
        )?)
    }

    fn open_partition(
        &self,
        topic: &str,
        scan: &PartitionScan,
    ) -> Result<Box<dyn PartitionSource>> {
        let mut consumer = Consumer::new(
            self,
            ConsumerConfig {
                isolation: IsolationLevel::ReadCommitted,
                auto_commit: false,
                poll_bytes_max: POLL_BYTES_MAX,
                ..ConsumerConfig::default()
            },
        )?;
        consumer.assign(&[(topic, scan.partition)])?;
        consumer.seek(topic, scan.partition, scan.start_offset)?;
        Ok(Box::new(LogPartition {
            consumer,
            topic: Arc::from(topic),
            partition: scan.partition,
            end_offset: scan.end_offset,
            pending: VecDeque::new(),
            fetched_all: false,
        }))
    }
}

/// One partition's range of the embedded log: whole log batches fetched, records borrowed from
/// them.
struct LogPartition {
    consumer: Consumer,
    topic: Arc<str>,
    partition: i32,
    end_offset: i64,
    /// Log batches fetched and not yet handed over.
    pending: VecDeque<ConsumerBatch>,
    /// Nothing more to fetch below the end of the range.
    fetched_all: bool,
}

impl LogPartition {
    fn fetch(&mut self) -> Result<()> {
        let before = self.consumer.position(&self.topic, self.partition);
        let batches = self.consumer.poll(Duration::ZERO)?;
        let after = self.consumer.position(&self.topic, self.partition);
        // Nothing more below the end: done (markers or aborted records may end the range).
        if after.is_none_or(|a| a >= self.end_offset) || (batches.is_empty() && after == before) {
            self.fetched_all = true;
        }
        self.pending.extend(batches);
        Ok(())
    }
}

impl PartitionSource for LogPartition {
    fn read(&mut self, each: &mut dyn FnMut(SourceRecord<'_>) -> Result<bool>) -> Result<bool> {
        if self.pending.is_empty() && !self.fetched_all {
            self.fetch()?;
        }
        let Some(batch) = self.pending.pop_front() else {
            return Ok(!self.fetched_all);
        };
        let end = self.end_offset;
        let mut past_end = false;
        batch.for_each_ref(|r| -> Result<bool> {
            if r.offset >= end {
                past_end = true;
                return Ok(false);
            }
            each(SourceRecord {
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
            })
        })?;
        if past_end {
            self.fetched_all = true;
            self.pending.clear();
        }
        Ok(!(self.fetched_all && self.pending.is_empty()))
    }
}

impl Iterator for PartitionReader {
    type Item = DfResult<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_batch() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => None,
            Err(e) => {
                self.rows_left = 0;
                Some(Err(e.into()))
            }
        }
    }
}
