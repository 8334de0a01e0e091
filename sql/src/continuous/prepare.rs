//! The vectorised step before the windows: rows are gathered into Arrow record batches, the
//! `WHERE` condition, group expressions and aggregate arguments are evaluated by DataFusion's
//! physical expressions on whole batches, and each surviving row goes on keyed.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder,
    Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::physical_expr::PhysicalExpr;
use weir_runtime::{Error as RuntimeError, Event, Operator, Output, Result as RuntimeResult};

use super::row::{Row, Value};

/// A row after the vectorised step: its group key, its aggregates' arguments, and the input
/// row itself (for the late side output).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PreparedRow {
    /// Group key values, in GROUP BY order.
    pub key: Vec<Value>,
    /// One argument per aggregate (`Null` for `count(*)`).
    pub args: Vec<Value>,
    /// The input row.
    pub row: Row,
}

/// The compiled expressions, over record batches of the source's value columns (`arrow`).
#[derive(Debug)]
pub(super) struct Prepared {
    pub(super) arrow: SchemaRef,
    pub(super) filter: Option<Arc<dyn PhysicalExpr>>,
    pub(super) groups: Vec<Arc<dyn PhysicalExpr>>,
    pub(super) args: Vec<Option<Arc<dyn PhysicalExpr>>>,
}

pub(super) struct Prepare {
    prepared: Arc<Prepared>,
    pending: Vec<Event<Row>>,
    batch_records_max: usize,
}

fn failed(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Operator {
        operator: "sql-prepare".into(),
        reason: e.to_string(),
    }
}

impl Prepare {
    pub(super) fn new(prepared: Arc<Prepared>, batch_records_max: usize) -> Prepare {
        Prepare {
            prepared,
            pending: Vec::with_capacity(batch_records_max),
            batch_records_max,
        }
    }

    /// The pending rows as a record batch of the source's Arrow schema.
    fn batch(&self) -> RuntimeResult<RecordBatch> {
        let schema = &self.prepared.arrow;
        let n = self.pending.len();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for (i, field) in schema.fields().iter().enumerate() {
            let values = self.pending.iter().map(|ev| &ev.value[i]);
            let array: ArrayRef = match field.data_type() {
                DataType::Int64 => {
                    let mut b = Int64Builder::with_capacity(n);
                    values.for_each(|v| b.append_option(as_i64(v)));
                    Arc::new(b.finish())
                }
                DataType::Int32 => {
                    let mut b = Int32Builder::with_capacity(n);
                    values.for_each(|v| {
                        b.append_option(as_i64(v).map(|x| {
                            i32::try_from(x).expect("RowCodec checks that INT values fit i32")
                        }))
                    });
                    Arc::new(b.finish())
                }
                DataType::Timestamp(_, _) => {
                    let mut b = TimestampMillisecondBuilder::with_capacity(n);
                    values.for_each(|v| b.append_option(as_i64(v)));
                    Arc::new(b.finish())
                }
                DataType::Float64 => {
                    let mut b = Float64Builder::with_capacity(n);
                    values.for_each(|v| b.append_option(as_f64(v)));
                    Arc::new(b.finish())
                }
                DataType::Float32 => {
                    let mut b = Float32Builder::with_capacity(n);
                    values.for_each(|v| b.append_option(as_f64(v).map(|x| x as f32)));
                    Arc::new(b.finish())
                }
                DataType::Boolean => {
                    let mut b = BooleanBuilder::with_capacity(n);
                    values.for_each(|v| {
                        b.append_option(match v {
                            Value::Bool(x) => Some(*x),
                            _ => None,
                        })
                    });
                    Arc::new(b.finish())
                }
                _ => {
                    let mut b = StringBuilder::with_capacity(n, n * 8);
                    values.for_each(|v| match v {
                        Value::Str(s) => b.append_value(s),
                        _ => b.append_null(),
                    });
                    Arc::new(b.finish())
                }
            };
            columns.push(array);
        }
        RecordBatch::try_new(schema.clone(), columns).map_err(failed)
    }

    fn flush(&mut self, out: &mut Output<'_, PreparedRow>) -> RuntimeResult<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = self.batch()?;
        let n = batch.num_rows();
        let eval = |e: &Arc<dyn PhysicalExpr>| -> RuntimeResult<ArrayRef> {
            e.evaluate(&batch)
                .and_then(|c| c.into_array(n))
                .map_err(failed)
        };
        let keep: Option<BooleanArray> = match &self.prepared.filter {
            Some(f) => {
                let a = eval(f)?;
                Some(
                    a.as_any()
                        .downcast_ref::<BooleanArray>()
                        .ok_or_else(|| failed("WHERE must be a boolean condition"))?
                        .clone(),
                )
            }
            None => None,
        };
        let groups: Vec<ArrayRef> = self
            .prepared
            .groups
            .iter()
            .map(eval)
            .collect::<RuntimeResult<_>>()?;
        let args: Vec<Option<ArrayRef>> = self
            .prepared
            .args
            .iter()
            .map(|a| a.as_ref().map(eval).transpose())
            .collect::<RuntimeResult<_>>()?;
        for (i, ev) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            if let Some(k) = &keep
                && !(k.is_valid(i) && k.value(i))
            {
                continue;
            }
            let key = groups
                .iter()
                .map(|a| cell(a.as_ref(), i))
                .collect::<RuntimeResult<_>>()?;
            let args = args
                .iter()
                .map(|a| a.as_ref().map_or(Ok(Value::Null), |a| cell(a.as_ref(), i)))
                .collect::<RuntimeResult<_>>()?;
            let Event { value: row, ts, wm } = ev;
            out.emit(Event {
                value: PreparedRow { key, args, row },
                ts,
                wm,
            })?;
        }
        Ok(())
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Float(f) => Some(*f),
        Value::Int(i) => Some(*i as f64),
        _ => None,
    }
}

/// One cell of an evaluated column as a [`Value`].
fn cell(array: &dyn Array, i: usize) -> RuntimeResult<Value> {
    let s = ScalarValue::try_from_array(array, i).map_err(failed)?;
    Ok(match s {
        s if s.is_null() => Value::Null,
        ScalarValue::Int8(Some(v)) => Value::Int(v.into()),
        ScalarValue::Int16(Some(v)) => Value::Int(v.into()),
        ScalarValue::Int32(Some(v)) => Value::Int(v.into()),
        ScalarValue::Int64(Some(v)) => Value::Int(v),
        ScalarValue::UInt8(Some(v)) => Value::Int(v.into()),
        ScalarValue::UInt16(Some(v)) => Value::Int(v.into()),
        ScalarValue::UInt32(Some(v)) => Value::Int(v.into()),
        ScalarValue::UInt64(Some(v)) => Value::Int(v as i64),
        ScalarValue::Float32(Some(v)) => Value::Float(v.into()),
        ScalarValue::Float64(Some(v)) => Value::Float(v),
        ScalarValue::Boolean(Some(v)) => Value::Bool(v),
        ScalarValue::TimestampMillisecond(Some(v), _) => Value::Int(v),
        ScalarValue::TimestampSecond(Some(v), _) => Value::Int(v * 1_000),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Value::Int(v / 1_000),
        ScalarValue::TimestampNanosecond(Some(v), _) => Value::Int(v / 1_000_000),
        ScalarValue::Utf8(Some(v))
        | ScalarValue::LargeUtf8(Some(v))
        | ScalarValue::Utf8View(Some(v)) => Value::Str(v),
        other => Value::Str(other.to_string()),
    })
}

impl Operator<Row, PreparedRow> for Prepare {
    fn on_event(&mut self, ev: Event<Row>, out: &mut Output<'_, PreparedRow>) -> RuntimeResult<()> {
        self.pending.push(ev);
        if self.pending.len() >= self.batch_records_max {
            self.flush(out)?;
        }
        Ok(())
    }

    fn on_watermark(&mut self, _wm: i64, out: &mut Output<'_, PreparedRow>) -> RuntimeResult<()> {
        // Rows read before the watermark go before it.
        self.flush(out)
    }

    fn on_checkpoint(&mut self, out: &mut Output<'_, PreparedRow>) -> RuntimeResult<()> {
        self.flush(out)
    }

    fn on_finish(&mut self, out: &mut Output<'_, PreparedRow>) -> RuntimeResult<()> {
        self.flush(out)
    }
}
