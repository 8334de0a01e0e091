//! Record values between the command line's JSON and a topic's storage format.

use std::borrow::Cow;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use weir::log::{TopicConfig, ValueFormat};
use weir::schema::{DecodedRow, Schema, SchemaError};

/// How the command line turns a topic's stored values into JSON and back: its
/// [`ValueFormat`], with the schema that binary rows need.
#[derive(Debug)]
pub enum ValueCodec {
    /// Compact JSON text.
    Json,
    /// Binary rows of a schema (see [`weir::schema`]).
    Binary(Schema),
}

impl ValueCodec {
    pub fn of_topic(name: &str, config: &TopicConfig) -> Result<ValueCodec> {
        match config.format {
            ValueFormat::Json => Ok(ValueCodec::Json),
            ValueFormat::Binary => {
                let text = config.schema.as_deref().with_context(|| {
                    format!("topic '{name}' stores binary values but has no schema")
                })?;
                let schema = Schema::parse(text)
                    .with_context(|| format!("topic '{name}' has a bad schema"))?;
                Ok(ValueCodec::Binary(schema))
            }
        }
    }

    /// The bytes to store for a JSON value.
    pub fn encode(&self, value: &Value) -> Result<Vec<u8>, SchemaError> {
        match self {
            ValueCodec::Json => {
                Ok(serde_json::to_vec(value).expect("a serde_json::Value always serializes"))
            }
            ValueCodec::Binary(schema) => schema.encode(value),
        }
    }

    /// A stored value as JSON: JSON text as it is; other bytes as a JSON string of their lossy
    /// UTF-8; a binary row decoded to an object; [`OutValue::Tombstone`] for no value.
    pub fn decode<'a>(&'a self, bytes: Option<&'a [u8]>) -> Result<OutValue<'a>, SchemaError> {
        let Some(bytes) = bytes else {
            return Ok(OutValue::Tombstone);
        };
        match self {
            ValueCodec::Json => Ok(match serde_json::from_slice::<&RawValue>(bytes) {
                // JSON with line breaks (written by another client) would break one record per
                // line: print it compacted.
                Ok(raw) if raw.get().contains(['\n', '\r']) => OutValue::Compacted(
                    serde_json::from_str(raw.get()).expect("RawValue checked it is JSON"),
                ),
                Ok(raw) => OutValue::Json(raw),
                Err(_) => OutValue::Text(String::from_utf8_lossy(bytes)),
            }),
            ValueCodec::Binary(schema) => schema.decode(bytes).map(OutValue::Row),
        }
    }
}

/// A value as `consume` prints it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum OutValue<'a> {
    /// A tombstone (a record without a value): serializes as `null`, like a stored JSON `null`,
    /// so `consume` marks it apart (see [`OutValue::is_tombstone`]).
    Tombstone,
    /// Valid JSON, printed as stored.
    Json(&'a RawValue),
    /// Valid JSON stored with line breaks, re-serialized on one line.
    Compacted(Value),
    /// Not JSON: printed as a JSON string.
    Text(Cow<'a, str>),
    /// A decoded binary row.
    Row(DecodedRow<'a>),
}

/// How `--format text` prints a tombstone: kcat's spelling (`-Z`), apart from a JSON `null`
/// value, which prints as its text `null`.
pub const TOMBSTONE_TEXT: &str = "NULL";

impl OutValue<'_> {
    /// Whether this is a tombstone rather than a value (a stored JSON `null` is a value).
    pub fn is_tombstone(&self) -> bool {
        matches!(self, OutValue::Tombstone)
    }

    /// The value as plain text (`--format text`).
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            OutValue::Tombstone => Cow::Borrowed(TOMBSTONE_TEXT),
            OutValue::Json(raw) => Cow::Borrowed(raw.get()),
            OutValue::Text(s) => Cow::Borrowed(s),
            OutValue::Compacted(v) => Cow::Owned(v.to_string()),
            OutValue::Row(row) => {
                Cow::Owned(serde_json::to_string(row).expect("a decoded row always serializes"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_values_print_as_stored_and_others_as_strings() {
        let f = ValueCodec::Json;
        let stored = f.encode(&json!({"b": 1, "a": [true, null]})).unwrap();
        assert_eq!(stored, br#"{"a":[true,null],"b":1}"#);
        let v = f.decode(Some(br#"{"z":1,"a":2}"#)).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"z":1,"a":2}"#);
        let v = f.decode(Some(b"{\n  \"a\": [1,\r\n 2]\n}\n")).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"a":[1,2]}"#);
        assert_eq!(v.to_text(), r#"{"a":[1,2]}"#);
        let v = f.decode(Some(b"not json \xff")).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"not json \u{fffd}\"");
        assert_eq!(v.to_text(), "not json \u{fffd}");
        let v = f.decode(None).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "null");
        assert!(v.is_tombstone());
        assert_eq!(v.to_text(), "NULL");
        let v = f.decode(Some(b"null")).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "null");
        assert!(!v.is_tombstone());
        assert_eq!(v.to_text(), "null");
    }

    #[test]
    fn binary_values_round_trip_through_json() {
        let f = ValueCodec::Binary("id BIGINT, name VARCHAR".parse().unwrap());
        let stored = f.encode(&json!({"name": "x", "id": 3})).unwrap();
        let v = f.decode(Some(&stored)).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"id":3,"name":"x"}"#);
        assert_eq!(v.to_text(), r#"{"id":3,"name":"x"}"#);
        assert!(f.decode(Some(&stored[..5])).is_err());
    }
}
