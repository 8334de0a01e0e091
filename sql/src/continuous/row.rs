//! Rows of a continuous query's input: one typed value per schema column, decoded straight from
//! a record's bytes by the runtime's decoders ([`weir_runtime::codec::visit_row`]), never
//! through a JSON value tree.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weir_log::ValueFormat;
use weir_runtime::codec::{Codec, CodecError, ColumnVisitor, visit_row};
use weir_runtime::schema::Schema;

/// One column value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// BIGINT, INT and TIMESTAMP (ms).
    Int(i64),
    /// DOUBLE and FLOAT.
    Float(f64),
    /// BOOLEAN.
    Bool(bool),
    /// VARCHAR.
    Str(String),
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Value::Null => state.write_u8(0),
            Value::Int(i) => {
                state.write_u8(1);
                i.hash(state);
            }
            Value::Float(f) => {
                state.write_u8(2);
                f.to_bits().hash(state);
            }
            Value::Bool(b) => {
                state.write_u8(3);
                b.hash(state);
            }
            Value::Str(s) => {
                state.write_u8(4);
                s.hash(state);
            }
        }
    }
}

impl Value {
    /// As JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Int(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::Bool(b) => (*b).into(),
            Value::Str(s) => s.clone().into(),
        }
    }
}

/// One input record.
pub type Row = Vec<Value>;

/// Decodes records of a topic with `schema` into [`Row`]s.
#[derive(Debug, Clone)]
pub struct RowCodec {
    schema: Arc<Schema>,
    format: ValueFormat,
}

impl RowCodec {
    /// A codec for values of `schema` stored as `format`.
    pub fn new(schema: Arc<Schema>, format: ValueFormat) -> RowCodec {
        RowCodec { schema, format }
    }
}

/// A row being filled, column by column.
struct RowValues(Row);

impl ColumnVisitor for RowValues {
    fn null(&mut self, column: usize) {
        self.0[column] = Value::Null;
    }
    fn i64(&mut self, column: usize, value: i64) {
        self.0[column] = Value::Int(value);
    }
    fn i32(&mut self, column: usize, value: i32) {
        self.0[column] = Value::Int(value.into());
    }
    fn f64(&mut self, column: usize, value: f64) {
        self.0[column] = Value::Float(value);
    }
    fn f32(&mut self, column: usize, value: f32) {
        self.0[column] = Value::Float(value.into());
    }
    fn bool(&mut self, column: usize, value: bool) {
        self.0[column] = Value::Bool(value);
    }
    fn str(&mut self, column: usize, value: &str) {
        self.0[column] = Value::Str(value.to_string());
    }
}

impl Codec<Row> for RowCodec {
    fn encode(&self, row: &Row, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let object: serde_json::Map<String, serde_json::Value> = self
            .schema
            .columns()
            .iter()
            .zip(row)
            .map(|(c, v)| (c.name.clone(), v.to_json()))
            .collect();
        let value = serde_json::Value::Object(object);
        if self.format == ValueFormat::Binary {
            let bytes = self.schema.encode(&value).map_err(|e| CodecError::Encode {
                field: None,
                reason: e.to_string(),
            })?;
            out.extend_from_slice(&bytes);
            Ok(())
        } else {
            serde_json::to_writer(out, &value).map_err(|e| CodecError::Encode {
                field: None,
                reason: e.to_string(),
            })
        }
    }

    fn decode(&self, bytes: &[u8]) -> Result<Row, CodecError> {
        let mut row = RowValues(vec![Value::Null; self.schema.columns().len()]);
        visit_row(self.format, &self.schema, bytes, &mut row).map_err(|e| CodecError::Decode {
            field: None,
            reason: e.to_string(),
        })?;
        Ok(row.0)
    }

    fn name(&self) -> &'static str {
        self.format.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_integers_out_of_their_column_range_are_errors_not_wrapped() {
        let schema: Arc<Schema> = Arc::new("b BIGINT, i INT".parse().expect("schema"));
        let codec = RowCodec::new(schema, ValueFormat::Json);
        let row = codec
            .decode(br#"{"b": -9223372036854775808, "i": 2147483647}"#)
            .expect("in range");
        assert_eq!(row, [Value::Int(i64::MIN), Value::Int(i64::from(i32::MAX))]);
        for (json, column) in [
            (&br#"{"b": 1, "i": 2147483648}"#[..], "column 'i'"),
            (br#"{"b": 1, "i": -2147483649}"#, "column 'i'"),
            (br#"{"b": 9223372036854775808, "i": 1}"#, "column 'b'"),
            (
                br#"{"b": 123456789012345678901234567890, "i": 1}"#,
                "column 'b'",
            ),
        ] {
            let err = codec.decode(json).expect_err("out of range").to_string();
            assert!(err.contains(column) && err.contains("range"), "{err}");
        }
    }
}
