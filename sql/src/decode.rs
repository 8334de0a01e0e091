//! Record values → Arrow columns, straight into builders.
//!
//! [`decode_batch`] turns a run of records of one partition into a [`RecordBatch`] of the
//! requested (projected) columns. Values are read by the runtime's decoders
//! ([`weir_runtime::codec::visit_row`]: binary rows and schema-checked JSON), which hand each
//! field to this module's Arrow builders (no per-record `serde_json::Value`). They check every
//! record completely, even the columns that are not projected: a record that does not fit the
//! schema (missing column, extra field, wrong type, bad bytes) is an [`Error::Decode`] naming
//! topic, partition and offset, never a silent null.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float32Builder, Float64Builder, Int32Array, Int32Builder, Int64Array,
    Int64Builder, StringBuilder, TimestampMillisecondArray, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use weir_runtime::codec::{ColumnVisitor, visit_row};
use weir_runtime::schema::{ColumnType, Schema};

use crate::schema::{KEY_COLUMN, OFFSET_COLUMN, PARTITION_COLUMN, TIMESTAMP_COLUMN};
use crate::{Error, Result};

/// How a topic stores its values: its `format` setting, re-exported here for [`decode_batch`].
pub use weir_log::ValueFormat;

/// Where the records of a batch come from, and their metadata columns, one entry per record.
#[derive(Debug, Clone, Copy)]
pub struct RecordMeta<'a> {
    /// The topic (for error messages).
    pub topic: &'a str,
    /// The partition, the same for every record.
    pub partition: i32,
    /// Offsets.
    pub offsets: &'a [i64],
    /// Timestamps, ms since the Unix epoch.
    pub timestamps: &'a [i64],
    /// Keys; `None` is a null key.
    pub keys: &'a [Option<&'a [u8]>],
}

/// Decodes `values` (one per record, described by `meta`) into a batch with exactly the columns
/// of `arrow_schema`: any subset, in any order, of the topic's table schema
/// ([`crate::schema::table_schema`]). When `arrow_schema` holds no value column, values are not
/// looked at (they may be empty slices).
///
/// ```
/// use std::sync::Arc;
/// use datafusion::arrow::datatypes::Schema as ArrowSchema;
/// use weir_sql::decode::{RecordMeta, ValueFormat, decode_batch};
/// use weir_sql::schema::table_schema;
///
/// let schema: weir_runtime::schema::Schema = "ad_id BIGINT, campaign VARCHAR".parse()?;
/// let full = table_schema(&schema);
/// let projected = Arc::new(full.project(&[1, 3])?); // campaign, _offset
/// let values: [&[u8]; 2] = [br#"{"ad_id": 1, "campaign": "a"}"#, br#"{"campaign": null, "ad_id": 2}"#];
/// let meta = RecordMeta { topic: "ads", partition: 0, offsets: &[7, 8], timestamps: &[0, 0], keys: &[None, None] };
/// let batch = decode_batch(&schema, projected, ValueFormat::Json, &values, &meta)?;
/// assert_eq!((batch.num_rows(), batch.num_columns()), (2, 2));
/// assert_eq!(batch.column(0).null_count(), 1);
///
/// let bad: [&[u8]; 1] = [br#"{"ad_id": "1", "campaign": "a"}"#];
/// let meta = RecordMeta { offsets: &[9], timestamps: &[0], keys: &[None], ..meta };
/// let err = decode_batch(&schema, table_schema(&schema), ValueFormat::Json, &bad, &meta).unwrap_err();
/// assert!(err.to_string().starts_with("topic 'ads' partition 0 offset 9: column 'ad_id'"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode_batch(
    schema: &Schema,
    arrow_schema: SchemaRef,
    format: ValueFormat,
    values: &[&[u8]],
    meta: &RecordMeta<'_>,
) -> Result<RecordBatch> {
    let rows = meta.offsets.len();
    if meta.timestamps.len() != rows || meta.keys.len() != rows {
        return Err(Error::Internal(format!(
            "decode_batch: {rows} offsets, {} timestamps, {} keys",
            meta.timestamps.len(),
            meta.keys.len()
        )));
    }
    let mut decoder = BatchDecoder::new(
        Arc::new(schema.clone()),
        arrow_schema,
        format,
        meta.topic.into(),
        meta.partition,
        rows,
    )?;
    if decoder.decodes_values() && values.len() != rows {
        return Err(Error::Internal(format!(
            "decode_batch: {} values for {rows} records",
            values.len()
        )));
    }
    for i in 0..rows {
        let value = values.get(i).copied();
        decoder.append(meta.offsets[i], meta.timestamps[i], meta.keys[i], value)?;
    }
    decoder.finish()
}

/// Builds one [`RecordBatch`] record by record, straight from borrowed keys and values: the
/// engine of [`decode_batch`] and of the topic scans.
pub struct BatchDecoder {
    schema: Arc<Schema>,
    arrow_schema: SchemaRef,
    format: ValueFormat,
    topic: Arc<str>,
    partition: i32,
    /// One slot per schema column: a builder if the column is projected.
    slots: Vec<Option<ColumnBuilder>>,
    sources: Vec<Source>,
    any_value: bool,
    offsets: Option<Vec<i64>>,
    timestamps: Option<Vec<i64>>,
    keys: Option<StringBuilder>,
    rows: usize,
}

impl BatchDecoder {
    /// A decoder of records of `topic`/`partition` into batches of `arrow_schema`'s columns (any
    /// subset, in any order, of the table schema), with room for `rows` records.
    pub fn new(
        schema: Arc<Schema>,
        arrow_schema: SchemaRef,
        format: ValueFormat,
        topic: Arc<str>,
        partition: i32,
        rows: usize,
    ) -> Result<BatchDecoder> {
        let columns = schema.columns();
        let mut slots: Vec<Option<ColumnBuilder>> = columns.iter().map(|_| None).collect();
        let mut sources = Vec::with_capacity(arrow_schema.fields().len());
        let (mut offsets, mut timestamps, mut keys) = (None, None, None);
        for field in arrow_schema.fields() {
            let source = match field.name().as_str() {
                PARTITION_COLUMN => Source::Partition,
                OFFSET_COLUMN => {
                    offsets = Some(Vec::with_capacity(rows));
                    Source::Offset
                }
                TIMESTAMP_COLUMN => {
                    timestamps = Some(Vec::with_capacity(rows));
                    Source::Timestamp
                }
                KEY_COLUMN => {
                    keys = Some(StringBuilder::with_capacity(rows, 0));
                    Source::Key
                }
                name => {
                    let i = columns.iter().position(|c| c.name == name).ok_or_else(|| {
                        Error::Internal(format!("column '{name}' is not in the topic's schema"))
                    })?;
                    slots[i] = Some(ColumnBuilder::new(columns[i].ty, rows));
                    Source::Value(i)
                }
            };
            sources.push(source);
        }
        let any_value = slots.iter().any(Option::is_some);
        Ok(BatchDecoder {
            schema,
            arrow_schema,
            format,
            topic,
            partition,
            slots,
            sources,
            any_value,
            offsets,
            timestamps,
            keys,
            rows: 0,
        })
    }

    /// Whether values are looked at (a value column is projected).
    pub fn decodes_values(&self) -> bool {
        self.any_value
    }

    /// Records appended since the last [`BatchDecoder::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no record was appended since the last [`BatchDecoder::finish`].
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    fn error(&self, offset: i64, reason: String) -> Error {
        Error::Decode {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset,
            reason,
        }
    }

    /// Appends one record. A value that does not fit the schema (or a null value, when value
    /// columns are projected), or a key that is not UTF-8 when `_key` is, is an
    /// [`Error::Decode`] with the record's place; the batch is then unusable.
    pub fn append(
        &mut self,
        offset: i64,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<()> {
        if self.any_value {
            let Some(value) = value else {
                return Err(self.error(
                    offset,
                    "null value (a tombstone) where the schema expects a row".into(),
                ));
            };
            visit_row(
                self.format,
                &self.schema,
                value,
                &mut Builders(&mut self.slots),
            )
            .map_err(|e| self.error(offset, e.to_string()))?;
        }
        if let Some(offsets) = &mut self.offsets {
            offsets.push(offset);
        }
        if let Some(timestamps) = &mut self.timestamps {
            timestamps.push(timestamp);
        }
        if let Some(keys) = &mut self.keys {
            match key.map(std::str::from_utf8) {
                None => keys.append_null(),
                Some(Ok(s)) => keys.append_value(s),
                Some(Err(e)) => {
                    return Err(self.error(
                        offset,
                        format!("key is not valid UTF-8 ({e}); _key cannot show it"),
                    ));
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The batch of the records appended so far; the decoder starts over, empty.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let rows = std::mem::take(&mut self.rows);
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.sources.len());
        for source in &self.sources {
            let array: ArrayRef = match *source {
                Source::Value(i) => self.slots[i]
                    .as_mut()
                    .ok_or_else(|| Error::Internal("a value column without a builder".into()))?
                    .finish(),
                Source::Partition => Arc::new(Int32Array::from_value(self.partition, rows)),
                Source::Offset => Arc::new(Int64Array::from(std::mem::take(
                    self.offsets.as_mut().unwrap_or(&mut Vec::new()),
                ))),
                Source::Timestamp => Arc::new(TimestampMillisecondArray::from(std::mem::take(
                    self.timestamps.as_mut().unwrap_or(&mut Vec::new()),
                ))),
                Source::Key => Arc::new(
                    self.keys
                        .as_mut()
                        .map_or_else(|| StringBuilder::new().finish(), StringBuilder::finish),
                ),
            };
            arrays.push(array);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.arrow_schema),
            arrays,
            &options,
        )?)
    }
}

enum Source {
    Value(usize),
    Partition,
    Offset,
    Timestamp,
    Key,
}

/// The builder of one value column.
enum ColumnBuilder {
    Int64(Int64Builder),
    Int32(Int32Builder),
    Float64(Float64Builder),
    Float32(Float32Builder),
    Boolean(BooleanBuilder),
    Utf8(StringBuilder),
    Timestamp(TimestampMillisecondBuilder),
}

impl ColumnBuilder {
    fn new(ty: ColumnType, rows: usize) -> ColumnBuilder {
        match ty {
            ColumnType::BigInt => ColumnBuilder::Int64(Int64Builder::with_capacity(rows)),
            ColumnType::Int => ColumnBuilder::Int32(Int32Builder::with_capacity(rows)),
            ColumnType::Double => ColumnBuilder::Float64(Float64Builder::with_capacity(rows)),
            ColumnType::Float => ColumnBuilder::Float32(Float32Builder::with_capacity(rows)),
            ColumnType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::with_capacity(rows)),
            ColumnType::Varchar => {
                ColumnBuilder::Utf8(StringBuilder::with_capacity(rows, rows * 16))
            }
            ColumnType::Timestamp => {
                ColumnBuilder::Timestamp(TimestampMillisecondBuilder::with_capacity(rows))
            }
        }
    }

    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::Int32(b) => b.append_null(),
            ColumnBuilder::Float64(b) => b.append_null(),
            ColumnBuilder::Float32(b) => b.append_null(),
            ColumnBuilder::Boolean(b) => b.append_null(),
            ColumnBuilder::Utf8(b) => b.append_null(),
            ColumnBuilder::Timestamp(b) => b.append_null(),
        }
    }

    /// The column so far; the builder starts over, empty.
    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Float32(b) => Arc::new(b.finish()),
            ColumnBuilder::Boolean(b) => Arc::new(b.finish()),
            ColumnBuilder::Utf8(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
        }
    }
}

/// The projected columns' builders, as the runtime's decoders see them: a column without a
/// builder (not projected) is checked by the decoder and then ignored here.
struct Builders<'a>(&'a mut [Option<ColumnBuilder>]);

impl ColumnVisitor for Builders<'_> {
    #[inline]
    fn null(&mut self, column: usize) {
        if let Some(b) = &mut self.0[column] {
            b.append_null();
        }
    }

    #[inline]
    fn i64(&mut self, column: usize, value: i64) {
        match &mut self.0[column] {
            Some(ColumnBuilder::Int64(b)) => b.append_value(value),
            Some(ColumnBuilder::Timestamp(b)) => b.append_value(value),
            _ => {}
        }
    }

    #[inline]
    fn i32(&mut self, column: usize, value: i32) {
        if let Some(ColumnBuilder::Int32(b)) = &mut self.0[column] {
            b.append_value(value);
        }
    }

    #[inline]
    fn f64(&mut self, column: usize, value: f64) {
        match &mut self.0[column] {
            Some(ColumnBuilder::Float64(b)) => b.append_value(value),
            // A JSON number in a FLOAT column: rounded here, to the column's type.
            Some(ColumnBuilder::Float32(b)) => b.append_value(value as f32),
            _ => {}
        }
    }

    #[inline]
    fn f32(&mut self, column: usize, value: f32) {
        if let Some(ColumnBuilder::Float32(b)) = &mut self.0[column] {
            b.append_value(value);
        }
    }

    #[inline]
    fn bool(&mut self, column: usize, value: bool) {
        if let Some(ColumnBuilder::Boolean(b)) = &mut self.0[column] {
            b.append_value(value);
        }
    }

    #[inline]
    fn str(&mut self, column: usize, value: &str) {
        if let Some(ColumnBuilder::Utf8(b)) = &mut self.0[column] {
            b.append_value(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use serde_json::json;

    use super::*;
    use crate::schema::table_schema;

    const SCHEMA: &str =
        "a BIGINT, b INT, c DOUBLE, d FLOAT, e VARCHAR, f BOOLEAN, g TIMESTAMP, h TEXT, i INT";

    fn decode(format: ValueFormat, values: &[&[u8]], columns: &[usize]) -> Result<String> {
        let schema: Schema = SCHEMA.parse().unwrap();
        let arrow = Arc::new(table_schema(&schema).project(columns).unwrap());
        let n = values.len();
        let offsets: Vec<i64> = (10..10 + n as i64).collect();
        let keys: Vec<Option<&[u8]>> = vec![Some(b"k"); n];
        let meta = RecordMeta {
            topic: "t",
            partition: 3,
            offsets: &offsets,
            timestamps: &vec![1_000; n],
            keys: &keys,
        };
        let batch = decode_batch(&schema, arrow, format, values, &meta)?;
        Ok(pretty_format_batches(&[batch]).unwrap().to_string())
    }

    fn rows() -> Vec<serde_json::Value> {
        vec![
            json!({"a": -1, "b": 2, "c": 0.5, "d": 1.5, "e": "x", "f": true, "g": 1_700_000_000_000i64, "h": "", "i": null}),
            json!({"i": 9, "h": "é", "g": null, "f": false, "e": null, "d": 2, "c": 3, "b": null, "a": null}),
        ]
    }

    #[test]
    fn binary_and_json_decode_alike_under_any_projection() {
        let schema: Schema = SCHEMA.parse().unwrap();
        let json: Vec<Vec<u8>> = rows().iter().map(|v| v.to_string().into_bytes()).collect();
        let binary: Vec<Vec<u8>> = rows().iter().map(|v| schema.encode(v).unwrap()).collect();
        let json: Vec<&[u8]> = json.iter().map(Vec::as_slice).collect();
        let binary: Vec<&[u8]> = binary.iter().map(Vec::as_slice).collect();
        for columns in [
            (0..13).collect::<Vec<_>>(),
            vec![8, 4, 12],
            vec![6],
            vec![9, 10],
            vec![],
        ] {
            let b = decode(ValueFormat::Binary, &binary, &columns).unwrap();
            let j = decode(ValueFormat::Json, &json, &columns).unwrap();
            assert_eq!(b, j, "{columns:?}");
        }
        let all = decode(ValueFormat::Binary, &binary, &(0..13).collect::<Vec<_>>()).unwrap();
        assert!(all.contains("| -1 | 2 | 0.5 | 1.5 | x | true  | 2023-11-14T22:13:20 |   |   | 3          | 10      | 1970-01-01T00:00:01 | k    |"), "{all}");
        // Metadata only: values are not looked at at all.
        assert!(decode(ValueFormat::Json, &[b"garbage", b""], &[10]).is_ok());
    }

    #[test]
    fn records_that_do_not_fit_are_errors_with_their_offset() {
        let base = rows()[0].clone();
        let with = |k: &str, v: serde_json::Value| {
            let mut o = base.clone();
            o[k] = v;
            o.to_string()
        };
        let mut missing = base.clone();
        missing.as_object_mut().unwrap().remove("h");
        let cases: Vec<(String, &str)> = vec![
            (
                with("a", json!("1")),
                "column 'a': expected BIGINT, got a string",
            ),
            (
                with("a", json!(1.5)),
                "column 'a': expected BIGINT, got a fractional number",
            ),
            (
                with("b", json!(1i64 << 40)),
                "column 'b': expected INT, got an integer out of i32 range",
            ),
            (
                with("f", json!(1)),
                "column 'f': expected BOOLEAN, got an integer",
            ),
            (
                with("e", json!([1])),
                "column 'e': expected VARCHAR, got an array",
            ),
            (
                with("x", json!(1)),
                "field 'x' is not in the topic's schema",
            ),
            (missing.to_string(), "column 'h': missing"),
            (
                "[1]".into(),
                "invalid type: sequence, expected a JSON object",
            ),
            ("{\"a\":".into(), "invalid JSON"),
            (format!("{} x", base), "invalid JSON: trailing characters"),
        ];
        let first = base.to_string();
        for (value, want) in cases {
            // Projecting only `i` still checks every column.
            let err = decode(
                ValueFormat::Json,
                &[first.as_bytes(), value.as_bytes()],
                &[8],
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.starts_with("topic 't' partition 3 offset 11: "),
                "{err}"
            );
            assert!(err.contains(want), "{value}: got '{err}', want '{want}'");
        }
        let schema: Schema = SCHEMA.parse().unwrap();
        let good = schema.encode(&base).unwrap();
        for len in 0..good.len() {
            let err = decode(ValueFormat::Binary, &[&good, &good[..len]], &[0]).unwrap_err();
            assert!(
                err.to_string().contains("offset 11: invalid binary row"),
                "{err}"
            );
        }
        let mut long = good.clone();
        long.push(0);
        let err = decode(ValueFormat::Binary, &[&long], &[0])
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 trailing bytes"), "{err}");
    }

    #[test]
    fn a_key_that_is_not_utf8_is_an_error_only_when_read() {
        let schema: Schema = "a BIGINT".parse().unwrap();
        let full = table_schema(&schema);
        let meta = RecordMeta {
            topic: "t",
            partition: 0,
            offsets: &[5],
            timestamps: &[0],
            keys: &[Some(&[0xff, 0xfe])],
        };
        let value: &[u8] = br#"{"a": 1}"#;
        let only_a = Arc::new(full.project(&[0]).unwrap());
        assert!(decode_batch(&schema, only_a, ValueFormat::Json, &[value], &meta).is_ok());
        let key = Arc::new(full.project(&[4]).unwrap());
        let err = decode_batch(&schema, key, ValueFormat::Json, &[value], &meta)
            .unwrap_err()
            .to_string();
        assert!(err.contains("offset 5: key is not valid UTF-8"), "{err}");
    }
}
