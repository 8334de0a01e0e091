//! Value schemas (`col TYPE, ...`) and the compact binary row format of `--format binary` topics.
//!
//! A schema is the text stored in a topic's metadata ([`weir_log::TopicConfig::schema`]): `name
//! TYPE` pairs separated by commas. Names are identifiers (`[A-Za-z_][A-Za-z0-9_]*`, unique);
//! types, case-insensitive:
//!
//! | type                        | JSON value                      | encoded as            |
//! |-----------------------------|---------------------------------|-----------------------|
//! | `BIGINT`                    | integer in i64 range            | i64, little-endian    |
//! | `TIMESTAMP`                 | integer, ms since the Unix epoch| i64, little-endian    |
//! | `INT`                       | integer in i32 range            | i32, little-endian    |
//! | `DOUBLE`                    | number                          | f64, little-endian    |
//! | `FLOAT`                     | number (rounded to f32)         | f32, little-endian    |
//! | `BOOLEAN`                   | `true` / `false`                | one byte, 0 or 1      |
//! | `VARCHAR`, `STRING`, `TEXT` | string                          | u32-LE length + UTF-8 |
//!
//! # Row format
//!
//! ```text
//! null bitmap: ceil(ncols / 8) bytes; bit (i % 8) of byte (i / 8) set = column i is null
//!              (unused high bits of the last byte are zero)
//! then, for each non-null column in schema order, its value as in the table above
//! ```
//!
//! Every column must be present in the JSON object (`null` is allowed and sets the null bit), and
//! the object may hold no field outside the schema: a typo in a field name is an error rather than
//! silently lost data. Decoding checks every length and rejects trailing bytes; it never panics on
//! bad input. The decoders of rows and of schema-checked JSON live in [`crate::codec`]
//! ([`visit_row`](crate::codec::visit_row)); [`Schema::decode`] is one of their users.
//!
//! ```
//! use weir_runtime::schema::Schema;
//! let schema: Schema = "ad_id BIGINT, user VARCHAR, ok boolean".parse()?;
//! let value = serde_json::json!({"ad_id": 42, "user": "ann", "ok": null});
//! let row = schema.encode(&value)?;
//! assert_eq!(row.len(), 1 + 8 + 4 + 3); // bitmap, i64, length + "ann"
//! let back = serde_json::to_value(schema.decode(&row)?)?;
//! assert_eq!(back, value);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::ser::SerializeMap;
use serde_json::Value;

/// Most columns a schema may have (a bound, like everything else).
pub const COLUMNS_MAX: usize = 1024;

/// What went wrong with a schema, an encode or a decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The schema text does not follow `name TYPE, ...`.
    #[error("invalid schema: {0}")]
    Syntax(String),
    /// A JSON value does not fit the schema; `column` names the column, if one is concerned.
    #[error("{}{reason}", column.as_ref().map(|c| format!("column '{c}': ")).unwrap_or_default())]
    Encode {
        /// The column concerned.
        column: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// Bytes that are not a valid row of the schema (read by
    /// [`visit_binary_row`](crate::codec::visit_binary_row)); the text names the column.
    #[error("invalid binary row: {0}")]
    Decode(String),
    /// A stored JSON value that is not JSON, or not an object that fits the schema (read by
    /// [`visit_json_row`](crate::codec::visit_json_row)); the text names the column.
    #[error("{0}")]
    Json(String),
}

/// The type of one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// 64-bit signed integer.
    BigInt,
    /// 32-bit signed integer.
    Int,
    /// 64-bit float.
    Double,
    /// 32-bit float.
    Float,
    /// UTF-8 text (`VARCHAR`, `STRING` or `TEXT`).
    Varchar,
    /// `true` or `false`.
    Boolean,
    /// Milliseconds since the Unix epoch, as a 64-bit integer.
    Timestamp,
}

impl ColumnType {
    /// The canonical (upper-case) name.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::BigInt => "BIGINT",
            ColumnType::Int => "INT",
            ColumnType::Double => "DOUBLE",
            ColumnType::Float => "FLOAT",
            ColumnType::Varchar => "VARCHAR",
            ColumnType::Boolean => "BOOLEAN",
            ColumnType::Timestamp => "TIMESTAMP",
        }
    }
}

impl FromStr for ColumnType {
    type Err = SchemaError;
    fn from_str(s: &str) -> Result<Self, SchemaError> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "BIGINT" => ColumnType::BigInt,
            "INT" => ColumnType::Int,
            "DOUBLE" => ColumnType::Double,
            "FLOAT" => ColumnType::Float,
            "VARCHAR" | "STRING" | "TEXT" => ColumnType::Varchar,
            "BOOLEAN" => ColumnType::Boolean,
            "TIMESTAMP" => ColumnType::Timestamp,
            _ => {
                return Err(SchemaError::Syntax(format!(
                    "unknown type '{s}' (expected BIGINT, INT, DOUBLE, FLOAT, VARCHAR, STRING, TEXT, BOOLEAN or TIMESTAMP)"
                )));
            }
        })
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One column of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Field name in the JSON object.
    pub name: String,
    /// Its type.
    pub ty: ColumnType,
}

/// A parsed value schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    columns: Vec<Column>,
}

fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Schema {
    /// Parses `name TYPE, ...`.
    pub fn parse(text: &str) -> Result<Schema, SchemaError> {
        if text.trim().is_empty() {
            return Err(SchemaError::Syntax(
                "empty schema (expected 'name TYPE, ...')".into(),
            ));
        }
        let mut columns: Vec<Column> = Vec::new();
        for (i, part) in text.split(',').enumerate() {
            let tokens: Vec<&str> = part.split_whitespace().collect();
            let (name, ty) = match tokens.as_slice() {
                [name, ty] => (*name, *ty),
                [] => {
                    return Err(SchemaError::Syntax(format!(
                        "column {} is empty (expected 'name TYPE')",
                        i + 1
                    )));
                }
                _ => {
                    return Err(SchemaError::Syntax(format!(
                        "column {} '{}' is not 'name TYPE'",
                        i + 1,
                        part.trim()
                    )));
                }
            };
            if !is_identifier(name) {
                return Err(SchemaError::Syntax(format!(
                    "column name '{name}' is not an identifier (letters, digits, _; not starting with a digit)"
                )));
            }
            if columns.iter().any(|c| c.name == name) {
                return Err(SchemaError::Syntax(format!(
                    "column '{name}' appears twice"
                )));
            }
            if columns.len() == COLUMNS_MAX {
                return Err(SchemaError::Syntax(format!(
                    "more than {COLUMNS_MAX} columns"
                )));
            }
            columns.push(Column {
                name: name.to_string(),
                ty: ty.parse()?,
            });
        }
        Ok(Schema { columns })
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    fn bitmap_bytes(&self) -> usize {
        self.columns.len().div_ceil(8)
    }

    /// Encodes a JSON object as a binary row.
    pub fn encode(&self, value: &Value) -> Result<Vec<u8>, SchemaError> {
        let Value::Object(object) = value else {
            return Err(SchemaError::Encode {
                column: None,
                reason: format!("expected a JSON object, got {}", json_kind(value)),
            });
        };
        if let Some(extra) = object
            .keys()
            .find(|k| !self.columns.iter().any(|c| &c.name == *k))
        {
            return Err(SchemaError::Encode {
                column: None,
                reason: format!("field '{extra}' is not in the topic's schema"),
            });
        }
        let bitmap = self.bitmap_bytes();
        let mut out = vec![0u8; bitmap];
        for (i, col) in self.columns.iter().enumerate() {
            let mismatch = |v: &Value| SchemaError::Encode {
                column: Some(col.name.clone()),
                reason: format!("expected {}, got {}", col.ty, json_kind(v)),
            };
            let v = object.get(&col.name).ok_or_else(|| SchemaError::Encode {
                column: Some(col.name.clone()),
                reason: "missing (every column must be present; null is allowed)".into(),
            })?;
            if v.is_null() {
                out[i / 8] |= 1 << (i % 8);
                continue;
            }
            match col.ty {
                ColumnType::BigInt | ColumnType::Timestamp => {
                    let n = v.as_i64().ok_or_else(|| mismatch(v))?;
                    out.extend_from_slice(&n.to_le_bytes());
                }
                ColumnType::Int => {
                    let n = v
                        .as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .ok_or_else(|| mismatch(v))?;
                    out.extend_from_slice(&n.to_le_bytes());
                }
                ColumnType::Double => {
                    let n = v.as_f64().ok_or_else(|| mismatch(v))?;
                    out.extend_from_slice(&n.to_le_bytes());
                }
                ColumnType::Float => {
                    let n = v.as_f64().ok_or_else(|| mismatch(v))? as f32;
                    out.extend_from_slice(&n.to_le_bytes());
                }
                ColumnType::Boolean => {
                    let b = v.as_bool().ok_or_else(|| mismatch(v))?;
                    out.push(u8::from(b));
                }
                ColumnType::Varchar => {
                    let s = v.as_str().ok_or_else(|| mismatch(v))?;
                    let len = u32::try_from(s.len()).map_err(|_| SchemaError::Encode {
                        column: Some(col.name.clone()),
                        reason: "string longer than 4 GiB".into(),
                    })?;
                    out.extend_from_slice(&len.to_le_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
        Ok(out)
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(n) if n.as_i64().is_none() => "an integer out of i64 range",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl FromStr for Schema {
    type Err = SchemaError;
    fn from_str(s: &str) -> Result<Self, SchemaError> {
        Schema::parse(s)
    }
}

impl fmt::Display for Schema {
    /// The canonical text: `name TYPE, ...` with upper-case types.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} {}", c.name, c.ty)?;
        }
        Ok(())
    }
}

/// A decoded row: serializes as a JSON object whose fields follow the schema's column order.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRow<'a> {
    schema: &'a Schema,
    values: Vec<Value>,
}

impl<'a> DecodedRow<'a> {
    pub(crate) fn new(schema: &'a Schema, values: Vec<Value>) -> DecodedRow<'a> {
        debug_assert_eq!(schema.columns.len(), values.len(), "one value per column");
        DecodedRow { schema, values }
    }

    /// The values, one per column.
    pub fn values(&self) -> &[Value] {
        &self.values
    }
}

impl serde::Serialize for DecodedRow<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.values.len()))?;
        for (col, v) in self.schema.columns.iter().zip(&self.values) {
            map.serialize_entry(&col.name, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema(s: &str) -> Schema {
        s.parse().expect("valid schema")
    }

    #[test]
    fn parses_every_type_case_insensitively() {
        let s = schema(
            "a bigint, b INT, c Double, d float, e varchar, f STRING, g text, h boolean, i TIMESTAMP",
        );
        let types: Vec<ColumnType> = s.columns().iter().map(|c| c.ty).collect();
        use ColumnType::*;
        assert_eq!(
            types,
            [
                BigInt, Int, Double, Float, Varchar, Varchar, Varchar, Boolean, Timestamp
            ]
        );
        assert_eq!(
            s.to_string(),
            "a BIGINT, b INT, c DOUBLE, d FLOAT, e VARCHAR, f VARCHAR, g VARCHAR, h BOOLEAN, i TIMESTAMP"
        );
        assert_eq!(schema("  x   INT  ").columns()[0].name, "x");
        assert_eq!(schema("_x1 INT").columns()[0].name, "_x1");
    }

    #[test]
    fn rejects_bad_schemas() {
        for bad in [
            "",
            "  ",
            "a",
            "a INT,",
            ",a INT",
            "a INT b INT",
            "a UUID",
            "1a INT",
            "a-b INT",
            "a INT, a BIGINT",
            "a INT NOT NULL",
        ] {
            let err = Schema::parse(bad).expect_err(bad);
            assert!(matches!(err, SchemaError::Syntax(_)), "{bad}: {err}");
        }
        let err = Schema::parse("a UUID").unwrap_err().to_string();
        assert!(err.contains("unknown type 'UUID'"), "{err}");
    }

    #[test]
    fn round_trips_every_type() {
        let s = schema(
            "a BIGINT, b INT, c DOUBLE, d FLOAT, e VARCHAR, f BOOLEAN, g TIMESTAMP, h BIGINT, i VARCHAR",
        );
        let v = json!({
            "a": i64::MIN, "b": i32::MAX, "c": -1.5e300, "d": 0.1, "e": "héllo, \"world\"",
            "f": true, "g": 1_700_000_000_000i64, "h": null, "i": ""
        });
        let row = s.encode(&v).unwrap();
        // 2 bitmap bytes (9 columns), h null.
        assert_eq!(row[..2], [0b1000_0000, 0]);
        assert_eq!(
            row.len(),
            2 + 8 + 4 + 8 + 4 + (4 + "héllo, \"world\"".len()) + 1 + 8 + 4
        );
        let back = serde_json::to_value(s.decode(&row).unwrap()).unwrap();
        assert_eq!(back, v);
        // Column order is kept in the JSON text.
        let text = serde_json::to_string(&s.decode(&row).unwrap()).unwrap();
        assert!(
            text.starts_with(r#"{"a":-9223372036854775808,"b":2147483647,"#),
            "{text}"
        );
    }

    #[test]
    fn all_nulls_and_exactly_eight_columns() {
        let s = schema("a INT, b INT, c INT, d INT, e INT, f INT, g INT, h INT");
        let v = json!({"a": null, "b": null, "c": null, "d": null, "e": null, "f": null, "g": null, "h": null});
        let row = s.encode(&v).unwrap();
        assert_eq!(row, [0xff]);
        assert_eq!(serde_json::to_value(s.decode(&row).unwrap()).unwrap(), v);
    }

    #[test]
    fn encode_errors_name_the_column() {
        let s = schema("id BIGINT, n INT, name VARCHAR, ok BOOLEAN");
        let cases = [
            (
                json!({"id": "1", "n": 1, "name": "x", "ok": true}),
                "column 'id': expected BIGINT, got a string",
            ),
            (
                json!({"id": 1.5, "n": 1, "name": "x", "ok": true}),
                "column 'id': expected BIGINT, got a fractional number",
            ),
            (
                json!({"id": 1, "n": 3_000_000_000i64, "name": "x", "ok": true}),
                "column 'n': expected INT",
            ),
            (
                json!({"id": 1, "n": 1, "name": 7, "ok": true}),
                "column 'name': expected VARCHAR, got an integer",
            ),
            (
                json!({"id": 1, "n": 1, "name": "x", "ok": 1}),
                "column 'ok': expected BOOLEAN",
            ),
            (
                json!({"id": 1, "n": 1, "name": "x"}),
                "column 'ok': missing",
            ),
            (
                json!({"id": 1, "n": 1, "name": "x", "ok": true, "extra": 1}),
                "field 'extra' is not in the topic's schema",
            ),
            (json!([1, 2]), "expected a JSON object, got an array"),
            (
                json!({"id": u64::MAX, "n": 1, "name": "x", "ok": true}),
                "got an integer out of i64 range",
            ),
        ];
        for (v, want) in cases {
            let err = s.encode(&v).expect_err(want).to_string();
            assert!(err.contains(want), "{v}: got '{err}', want '{want}'");
        }
    }

    #[test]
    fn decode_rejects_bad_rows_without_panicking() {
        let s = schema("id BIGINT, name VARCHAR, ok BOOLEAN");
        let good = s
            .encode(&json!({"id": 7, "name": "abc", "ok": false}))
            .unwrap();
        assert!(s.decode(&good).is_ok());
        // Every truncation is an error.
        for len in 0..good.len() {
            let err = s.decode(&good[..len]).expect_err("truncated row");
            assert!(matches!(err, SchemaError::Decode(_)), "{err}");
        }
        // Trailing bytes.
        let mut long = good.clone();
        long.push(0);
        assert!(
            s.decode(&long)
                .unwrap_err()
                .to_string()
                .contains("1 trailing bytes")
        );
        // A string length far past the end.
        let mut huge = good.clone();
        huge[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            s.decode(&huge)
                .unwrap_err()
                .to_string()
                .contains("ends inside column 'name'")
        );
        // Invalid boolean byte, invalid UTF-8, bitmap bits past the last column.
        let mut b = good.clone();
        *b.last_mut().unwrap() = 2;
        assert!(
            s.decode(&b)
                .unwrap_err()
                .to_string()
                .contains("boolean byte 2")
        );
        let mut u = good.clone();
        u[13] = 0xff;
        assert!(
            s.decode(&u)
                .unwrap_err()
                .to_string()
                .contains("invalid UTF-8")
        );
        let mut m = good;
        m[0] = 0b1000_0000;
        assert!(
            s.decode(&m)
                .unwrap_err()
                .to_string()
                .contains("past the last column")
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(4096))]
        #[test]
        fn decode_survives_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let s = schema(
                "a BIGINT, b VARCHAR, c FLOAT, d BOOLEAN, e INT, f DOUBLE, g TEXT, h INT, i BIGINT",
            );
            let _ = s.decode(&bytes);
        }
    }
}
