//! Values read against a topic's [`Schema`], column by column: the one binary row decoder and
//! the one schema-checking JSON decoder behind SQL scans, continuous queries and the command
//! line.
//!
//! Both hand each column's value to a [`ColumnVisitor`] as they read it, with no value tree in
//! between: a visitor appends to an Arrow builder, fills a row of typed values, or builds JSON.
//! The visitor is a type parameter, so each use compiles to its own loop with no dynamic call
//! per field. Both check the whole record, including the columns a visitor ignores: a record that
//! does not fit the schema is an error, never a silent null.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::{Number, Value};
use weir_log::ValueFormat;

use super::row_read::{RowFault, RowReader};
use crate::schema::{COLUMNS_MAX, Column, ColumnType, DecodedRow, Schema, SchemaError};

/// Receives the values of one record, one call per schema column (by its index in
/// [`Schema::columns`]).
///
/// Which call a column gets:
///
/// | column                 | call                                                       |
/// |------------------------|------------------------------------------------------------|
/// | null (any type)        | [`null`](Self::null)                                       |
/// | `BIGINT`, `TIMESTAMP`  | [`i64`](Self::i64)                                         |
/// | `INT`                  | [`i32`](Self::i32) (JSON integers are range-checked first) |
/// | `DOUBLE`               | [`f64`](Self::f64)                                         |
/// | `FLOAT`                | [`f32`](Self::f32) from binary rows; [`f64`](Self::f64) from JSON, not yet rounded |
/// | `BOOLEAN`              | [`bool`](Self::bool)                                       |
/// | `VARCHAR`              | [`str`](Self::str)                                         |
///
/// Binary rows call in column order; JSON objects in the order of their fields. A record that
/// decodes calls once per column; one that fails may have called for some columns first.
pub trait ColumnVisitor {
    /// Column `column` is null.
    fn null(&mut self, column: usize);
    /// A `BIGINT` or `TIMESTAMP` (ms since the Unix epoch) value.
    fn i64(&mut self, column: usize, value: i64);
    /// An `INT` value.
    fn i32(&mut self, column: usize, value: i32);
    /// A `DOUBLE` value, or a `FLOAT` one read from JSON.
    fn f64(&mut self, column: usize, value: f64);
    /// A `FLOAT` value read from a binary row.
    fn f32(&mut self, column: usize, value: f32);
    /// A `BOOLEAN` value.
    fn bool(&mut self, column: usize, value: bool);
    /// A `VARCHAR` value, borrowed from the record (or from the JSON parser, if it had escapes).
    fn str(&mut self, column: usize, value: &str);
}

/// Reads `bytes`, stored in `format`, as a record of `schema` into `visitor`.
///
/// ```
/// use weir_log::ValueFormat;
/// use weir_runtime::codec::{ColumnVisitor, visit_row};
/// use weir_runtime::schema::Schema;
///
/// /// Sums the BIGINT columns of a record.
/// #[derive(Default)]
/// struct Sum(i64);
/// impl ColumnVisitor for Sum {
///     fn null(&mut self, _: usize) {}
///     fn i64(&mut self, _: usize, v: i64) { self.0 += v }
///     fn i32(&mut self, _: usize, _: i32) {}
///     fn f64(&mut self, _: usize, _: f64) {}
///     fn f32(&mut self, _: usize, _: f32) {}
///     fn bool(&mut self, _: usize, _: bool) {}
///     fn str(&mut self, _: usize, _: &str) {}
/// }
///
/// let schema: Schema = "a BIGINT, b VARCHAR, c BIGINT".parse()?;
/// let json = br#"{"c": 2, "b": "x", "a": 40}"#;
/// let binary = schema.encode(&serde_json::from_slice(json)?)?;
/// for (format, bytes) in [(ValueFormat::Json, &json[..]), (ValueFormat::Binary, &binary[..])] {
///     let mut sum = Sum::default();
///     visit_row(format, &schema, bytes, &mut sum)?;
///     assert_eq!(sum.0, 42);
/// }
/// let err = visit_row(ValueFormat::Json, &schema, br#"{"a": 1, "b": "x"}"#, &mut Sum::default());
/// assert_eq!(err.unwrap_err().to_string(), "column 'c': missing (every column must be present; null is allowed)");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[inline]
pub fn visit_row<V: ColumnVisitor>(
    format: ValueFormat,
    schema: &Schema,
    bytes: &[u8],
    visitor: &mut V,
) -> Result<(), SchemaError> {
    match format {
        ValueFormat::Binary => visit_binary_row(schema, bytes, visitor),
        ValueFormat::Json => visit_json_row(schema, bytes, visitor),
    }
}

// ---------------------------------------------------------------------------------------------
// Binary rows

/// Reads a binary row of `schema` (the format of [`crate::schema`]) into `visitor`.
///
/// Errors are [`SchemaError::Decode`], naming the column where the row went wrong.
#[inline]
pub fn visit_binary_row<V: ColumnVisitor>(
    schema: &Schema,
    row: &[u8],
    visitor: &mut V,
) -> Result<(), SchemaError> {
    let columns = schema.columns();
    let mut reader = RowReader::new(row, columns.len()).map_err(|f| binary_error(f, None))?;
    for (i, column) in columns.iter().enumerate() {
        if reader.is_null(i) {
            visitor.null(i);
            continue;
        }
        let read = match column.ty {
            ColumnType::BigInt | ColumnType::Timestamp => reader.i64().map(|v| visitor.i64(i, v)),
            ColumnType::Int => reader.i32().map(|v| visitor.i32(i, v)),
            ColumnType::Double => reader.f64().map(|v| visitor.f64(i, v)),
            ColumnType::Float => reader.f32().map(|v| visitor.f32(i, v)),
            ColumnType::Boolean => reader.bool().map(|v| visitor.bool(i, v)),
            ColumnType::Varchar => reader.str().map(|v| visitor.str(i, v)),
        };
        read.map_err(|f| binary_error(f, Some(column)))?;
    }
    reader.finish().map_err(|f| binary_error(f, None))
}

/// A [`RowFault`] in the words of a schema's columns.
#[cold]
fn binary_error(fault: RowFault, column: Option<&Column>) -> SchemaError {
    let name = column.map_or("?", |c| c.name.as_str());
    SchemaError::Decode(match fault {
        RowFault::ShortBitmap {
            row_bytes,
            bitmap_bytes,
        } => format!("{row_bytes} bytes, shorter than the {bitmap_bytes}-byte null bitmap"),
        RowFault::BitmapPadding => "null bitmap has bits set past the last column".to_string(),
        RowFault::Truncated { row_bytes, .. } => match column {
            Some(c) => format!(
                "{row_bytes} bytes, ends inside column '{}' ({})",
                c.name, c.ty
            ),
            None => format!("{row_bytes} bytes, ends inside a column"),
        },
        RowFault::Boolean { byte } => format!("column '{name}': boolean byte {byte}"),
        RowFault::Utf8(e) => format!("column '{name}': invalid UTF-8: {e}"),
        RowFault::Trailing { bytes } => format!("{bytes} trailing bytes after the last column"),
    })
}

// ---------------------------------------------------------------------------------------------
// JSON values

/// Reads a JSON value as a record of `schema` into `visitor`: it must be one object holding
/// every column (`null` allowed) and no other field, each value of its column's type (integers
/// in range; any number for `DOUBLE` and `FLOAT`), with nothing after it.
///
/// Errors are [`SchemaError::Json`]: serde_json's message for text that is not JSON (after
/// `invalid JSON: `), else what does not fit and the column concerned.
pub fn visit_json_row<V: ColumnVisitor>(
    schema: &Schema,
    value: &[u8],
    visitor: &mut V,
) -> Result<(), SchemaError> {
    let columns = schema.columns();
    // Which columns the object held: a bitset on the stack, not a vector per record.
    let mut seen = [0u64; COLUMNS_MAX.div_ceil(64)];
    let mut de = serde_json::Deserializer::from_slice(value);
    ObjectSeed {
        schema,
        visitor,
        seen: &mut seen,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(json_error)?;
    if let Some(i) = (0..columns.len()).find(|&i| seen[i / 64] & (1 << (i % 64)) == 0) {
        return Err(SchemaError::Json(format!(
            "column '{}': missing (every column must be present; null is allowed)",
            columns[i].name
        )));
    }
    Ok(())
}

#[cold]
fn json_error(e: serde_json::Error) -> SchemaError {
    SchemaError::Json(match e.classify() {
        serde_json::error::Category::Data => e.to_string(),
        _ => format!("invalid JSON: {e}"),
    })
}

struct ObjectSeed<'a, V> {
    schema: &'a Schema,
    visitor: &'a mut V,
    seen: &'a mut [u64],
}

impl<'de, V: ColumnVisitor> DeserializeSeed<'de> for ObjectSeed<'_, V> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, V: ColumnVisitor> Visitor<'de> for ObjectSeed<'_, V> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let columns = self.schema.columns();
        while let Some(i) = map.next_key_seed(KeySeed(self.schema))? {
            let column = &columns[i];
            let bit = 1 << (i % 64);
            if self.seen[i / 64] & bit != 0 {
                return Err(de::Error::custom(format!(
                    "field '{}' appears twice",
                    column.name
                )));
            }
            self.seen[i / 64] |= bit;
            map.next_value_seed(FieldSeed {
                column,
                index: i,
                visitor: &mut *self.visitor,
            })?;
        }
        Ok(())
    }
}

/// A field name → its column index; a name outside the schema is an error.
struct KeySeed<'a>(&'a Schema);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = usize;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<usize, E> {
        self.0
            .columns()
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| E::custom(format!("field '{name}' is not in the topic's schema")))
    }
}

/// One field's value, checked against its column's type and handed to the visitor.
struct FieldSeed<'a, V> {
    column: &'a Column,
    index: usize,
    visitor: &'a mut V,
}

impl<V: ColumnVisitor> FieldSeed<'_, V> {
    #[cold]
    fn mismatch<E: de::Error>(&self, got: &str) -> E {
        E::custom(format!(
            "column '{}': expected {}, got {got}",
            self.column.name, self.column.ty
        ))
    }

    fn int<E: de::Error>(self, v: i128) -> Result<(), E> {
        match self.column.ty {
            ColumnType::BigInt | ColumnType::Timestamp => {
                let v =
                    i64::try_from(v).map_err(|_| self.mismatch("an integer out of i64 range"))?;
                self.visitor.i64(self.index, v);
            }
            ColumnType::Int => {
                let v =
                    i32::try_from(v).map_err(|_| self.mismatch("an integer out of i32 range"))?;
                self.visitor.i32(self.index, v);
            }
            ColumnType::Double | ColumnType::Float => self.visitor.f64(self.index, v as f64),
            ColumnType::Boolean | ColumnType::Varchar => return Err(self.mismatch("an integer")),
        }
        Ok(())
    }

    fn float<E: de::Error>(self, v: f64) -> Result<(), E> {
        match self.column.ty {
            ColumnType::Double | ColumnType::Float => self.visitor.f64(self.index, v),
            // serde_json reads an integer too long for 64 bits as a float: say what it is.
            ColumnType::BigInt | ColumnType::Timestamp if is_integer_past_i64(v) => {
                return Err(self.mismatch("an integer out of i64 range"));
            }
            ColumnType::Int if is_integer_past_i64(v) => {
                return Err(self.mismatch("an integer out of i32 range"));
            }
            _ => return Err(self.mismatch("a fractional number")),
        }
        Ok(())
    }
}

/// Whether `v` is a whole number outside i64 (the only floats an integer column reads as
/// integers out of range rather than as fractions).
fn is_integer_past_i64(v: f64) -> bool {
    const I64_END: f64 = 9_223_372_036_854_775_808.0; // 2^63
    v.is_finite() && v.fract() == 0.0 && !(-I64_END..I64_END).contains(&v)
}

impl<'de, V: ColumnVisitor> DeserializeSeed<'de> for FieldSeed<'_, V> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, V: ColumnVisitor> Visitor<'de> for FieldSeed<'_, V> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} value", self.column.ty)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.visitor.null(self.index);
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.int(i128::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.int(i128::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.float(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        if self.column.ty != ColumnType::Boolean {
            return Err(self.mismatch("a boolean"));
        }
        self.visitor.bool(self.index, v);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if self.column.ty != ColumnType::Varchar {
            return Err(self.mismatch("a string"));
        }
        self.visitor.str(self.index, v);
        Ok(())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.mismatch("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.mismatch("an object"))
    }
}

// ---------------------------------------------------------------------------------------------
// Binary rows as JSON (the command line's view of them)

impl Schema {
    /// Decodes a binary row. The result serializes as a JSON object with the columns in schema
    /// order.
    pub fn decode(&self, row: &[u8]) -> Result<DecodedRow<'_>, SchemaError> {
        let mut values = JsonValues(vec![Value::Null; self.columns().len()]);
        visit_binary_row(self, row, &mut values)?;
        Ok(DecodedRow::new(self, values.0))
    }
}

/// A row's values as JSON, one per column.
struct JsonValues(Vec<Value>);

impl ColumnVisitor for JsonValues {
    fn null(&mut self, column: usize) {
        self.0[column] = Value::Null;
    }
    fn i64(&mut self, column: usize, value: i64) {
        self.0[column] = Value::from(value);
    }
    fn i32(&mut self, column: usize, value: i32) {
        self.0[column] = Value::from(value);
    }
    fn f64(&mut self, column: usize, value: f64) {
        self.0[column] = float_value(value);
    }
    fn f32(&mut self, column: usize, value: f32) {
        // Through the f32's shortest decimal form, so 0.1 reads back as 0.1 rather than
        // 0.10000000149011612.
        let shortest = value.to_string().parse::<f64>().unwrap_or(f64::from(value));
        self.0[column] = float_value(shortest);
    }
    fn bool(&mut self, column: usize, value: bool) {
        self.0[column] = Value::Bool(value);
    }
    fn str(&mut self, column: usize, value: &str) {
        self.0[column] = Value::String(value.to_string());
    }
}

/// Finite floats as JSON numbers; NaN and infinities (which JSON cannot hold) as null.
fn float_value(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every call, as text, in the order made.
    #[derive(Default)]
    struct Calls(Vec<String>);

    impl ColumnVisitor for Calls {
        fn null(&mut self, c: usize) {
            self.0.push(format!("{c}:null"));
        }
        fn i64(&mut self, c: usize, v: i64) {
            self.0.push(format!("{c}:i64 {v}"));
        }
        fn i32(&mut self, c: usize, v: i32) {
            self.0.push(format!("{c}:i32 {v}"));
        }
        fn f64(&mut self, c: usize, v: f64) {
            self.0.push(format!("{c}:f64 {v}"));
        }
        fn f32(&mut self, c: usize, v: f32) {
            self.0.push(format!("{c}:f32 {v}"));
        }
        fn bool(&mut self, c: usize, v: bool) {
            self.0.push(format!("{c}:bool {v}"));
        }
        fn str(&mut self, c: usize, v: &str) {
            self.0.push(format!("{c}:str {v}"));
        }
    }

    const SCHEMA: &str = "a BIGINT, b INT, c DOUBLE, d FLOAT, e VARCHAR, f BOOLEAN, g TIMESTAMP";

    fn calls(format: ValueFormat, bytes: &[u8]) -> Result<Vec<String>, SchemaError> {
        let schema: Schema = SCHEMA.parse().expect("schema");
        let mut calls = Calls::default();
        visit_row(format, &schema, bytes, &mut calls)?;
        Ok(calls.0)
    }

    #[test]
    fn binary_and_json_make_the_same_calls_per_column() {
        let schema: Schema = SCHEMA.parse().expect("schema");
        // Written out, not built with `json!`, whose objects sort their keys.
        let json = r#"{"g": 5, "f": true, "e": "é", "d": 0.5, "c": 2, "b": -3, "a": null}"#;
        let value: Value = serde_json::from_str(json).expect("json");
        let binary = schema.encode(&value).expect("encodes");
        let mut from_json = calls(ValueFormat::Json, json.as_bytes()).expect("json");
        let from_binary = calls(ValueFormat::Binary, &binary).expect("binary");
        assert_eq!(
            from_binary,
            [
                "0:null",
                "1:i32 -3",
                "2:f64 2",
                "3:f32 0.5",
                "4:str é",
                "5:bool true",
                "6:i64 5"
            ]
        );
        // JSON calls in field order, and gives FLOAT columns the number as read.
        assert_eq!(from_json[0], "6:i64 5");
        from_json.sort();
        let mut want = from_binary.clone();
        want[3] = "3:f64 0.5".into();
        want.sort();
        assert_eq!(from_json, want);
    }

    #[test]
    fn json_integers_past_their_column_are_out_of_range_not_fractions() {
        for (field, number, want) in [
            (
                "a",
                "123456789012345678901234567890",
                "column 'a': expected BIGINT, got an integer out of i64 range",
            ),
            (
                "a",
                "9223372036854775808",
                "column 'a': expected BIGINT, got an integer out of i64 range",
            ),
            (
                "b",
                "2147483648",
                "column 'b': expected INT, got an integer out of i32 range",
            ),
            (
                "b",
                "1e40",
                "column 'b': expected INT, got an integer out of i32 range",
            ),
            (
                "a",
                "1.5",
                "column 'a': expected BIGINT, got a fractional number",
            ),
            (
                "a",
                "1.0",
                "column 'a': expected BIGINT, got a fractional number",
            ),
        ] {
            let mut object = serde_json::Map::new();
            for c in ["a", "b", "c", "d", "e", "f", "g"] {
                object.insert(c.into(), Value::Null);
            }
            let text = Value::Object(object).to_string().replace(
                &format!("\"{field}\":null"),
                &format!("\"{field}\":{number}"),
            );
            let err = calls(ValueFormat::Json, text.as_bytes()).expect_err(number);
            assert!(err.to_string().starts_with(want), "{number}: {err}");
        }
    }
}
