//! Rows of a continuous query's input: one typed value per schema column, decoded straight from
//! a record's bytes (binary rows by walking them, JSON by a streaming visitor), never through a
//! JSON value tree.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use weir_runtime::codec::{Codec, CodecError};
use weir_runtime::schema::{ColumnType, Schema};

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
    binary: bool,
}

impl RowCodec {
    /// A codec for values stored as `format` ("json" or "binary").
    pub fn new(schema: Arc<Schema>, format: &str) -> RowCodec {
        RowCodec {
            schema,
            binary: format == "binary",
        }
    }
}

fn bad(reason: impl Into<String>) -> CodecError {
    CodecError::Decode {
        field: None,
        reason: reason.into(),
    }
}

fn take<'a>(bytes: &mut &'a [u8], column: &str, n: usize) -> Result<&'a [u8], CodecError> {
    if bytes.len() < n {
        return Err(CodecError::Decode {
            field: Some(column.to_string()),
            reason: "the row ends early".into(),
        });
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

fn decode_binary(schema: &Schema, mut bytes: &[u8]) -> Result<Row, CodecError> {
    let columns = schema.columns();
    let bitmap = take(&mut bytes, "null bitmap", columns.len().div_ceil(8))?;
    let mut row = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        if bitmap[i / 8] & (1 << (i % 8)) != 0 {
            row.push(Value::Null);
            continue;
        }
        row.push(match c.ty {
            ColumnType::BigInt | ColumnType::Timestamp => Value::Int(i64::from_le_bytes(
                take(&mut bytes, &c.name, 8)?.try_into().expect("8 bytes"),
            )),
            ColumnType::Int => Value::Int(i64::from(i32::from_le_bytes(
                take(&mut bytes, &c.name, 4)?.try_into().expect("4 bytes"),
            ))),
            ColumnType::Double => Value::Float(f64::from_le_bytes(
                take(&mut bytes, &c.name, 8)?.try_into().expect("8 bytes"),
            )),
            ColumnType::Float => Value::Float(f64::from(f32::from_le_bytes(
                take(&mut bytes, &c.name, 4)?.try_into().expect("4 bytes"),
            ))),
            ColumnType::Boolean => match take(&mut bytes, &c.name, 1)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => {
                    return Err(CodecError::Decode {
                        field: Some(c.name.clone()),
                        reason: format!("boolean byte {b}"),
                    });
                }
            },
            ColumnType::Varchar => {
                let len =
                    u32::from_le_bytes(take(&mut bytes, &c.name, 4)?.try_into().expect("4 bytes"));
                let s = take(&mut bytes, &c.name, len as usize)?;
                Value::Str(
                    std::str::from_utf8(s)
                        .map_err(|_| CodecError::Decode {
                            field: Some(c.name.clone()),
                            reason: "not UTF-8".into(),
                        })?
                        .to_string(),
                )
            }
        });
    }
    if !bytes.is_empty() {
        return Err(bad(format!("{} trailing bytes", bytes.len())));
    }
    Ok(row)
}

struct RowSeed<'s>(&'s Schema);

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Row;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Row, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Row;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with the schema's columns")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
        let columns = self.0.columns();
        let mut row: Vec<Option<Value>> = vec![None; columns.len()];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let Some(i) = columns.iter().position(|c| c.name == key) else {
                return Err(de::Error::custom(format!(
                    "field '{key}' is not in the schema"
                )));
            };
            let name = &columns[i].name;
            let v: serde_json::Value = map.next_value()?;
            let value = match (&v, columns[i].ty) {
                (serde_json::Value::Null, _) => Value::Null,
                (
                    serde_json::Value::Number(n),
                    ty @ (ColumnType::BigInt | ColumnType::Timestamp | ColumnType::Int),
                ) => {
                    // Out of the column's range is an error, never a wrapped value (an INT
                    // column becomes an Int32 array).
                    let fits = n
                        .as_i64()
                        .filter(|v| ty != ColumnType::Int || i32::try_from(*v).is_ok());
                    Value::Int(fits.ok_or_else(|| {
                        de::Error::custom(format!(
                            "column '{name}': {n} is not an integer in {} range",
                            ty.name()
                        ))
                    })?)
                }
                (serde_json::Value::Number(n), ColumnType::Double | ColumnType::Float) => {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
                (serde_json::Value::Bool(b), ColumnType::Boolean) => Value::Bool(*b),
                (serde_json::Value::String(s), ColumnType::Varchar) => Value::Str(s.clone()),
                (other, ty) => {
                    return Err(de::Error::custom(format!(
                        "column '{name}': {other} is not a {}",
                        ty.name()
                    )));
                }
            };
            if row[i].replace(value).is_some() {
                return Err(de::Error::custom(format!("column '{name}' appears twice")));
            }
        }
        row.into_iter()
            .zip(columns)
            .map(|(v, c)| {
                v.ok_or_else(|| de::Error::custom(format!("missing column '{}'", c.name)))
            })
            .collect()
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
        if self.binary {
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
        if self.binary {
            decode_binary(&self.schema, bytes)
        } else {
            let mut d = serde_json::Deserializer::from_slice(bytes);
            let row = RowSeed(&self.schema)
                .deserialize(&mut d)
                .map_err(|e| bad(e.to_string()))?;
            d.end().map_err(|e| bad(e.to_string()))?;
            Ok(row)
        }
    }

    fn name(&self) -> &'static str {
        if self.binary { "binary" } else { "json" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_integers_out_of_their_column_range_are_errors_not_wrapped() {
        let schema: Arc<Schema> = Arc::new("b BIGINT, i INT".parse().expect("schema"));
        let codec = RowCodec::new(schema, "json");
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
