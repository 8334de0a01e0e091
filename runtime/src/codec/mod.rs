//! Value codecs: how a job's records (serde types) become the bytes of log records and back.
//!
//! Two codecs implement [`Codec`]:
//!
//! - [`Json`]: serde_json text; self-describing, any serde type.
//! - [`Binary`]: weir's compact binary row format, the one [`crate::schema`] defines for
//!   `--format binary` topics, written and read straight through serde (no intermediate value).
//!
//! Readers that know a topic's [`Schema`](crate::schema::Schema) rather than a Rust type (SQL
//! scans, continuous queries, the command line) read its values with [`visit_row`]: the one
//! decoder of binary rows and the one schema-checking decoder of JSON, handing each column to a
//! [`ColumnVisitor`]. Both kinds of row reader share the format's reading rules (lengths, the
//! null bitmap, booleans, UTF-8, trailing bytes).
//!
//! # The binary row mapping
//!
//! A top-level struct, tuple or tuple struct is one row; its fields, in declaration order, are the
//! columns. The row starts with a null bitmap of `ceil(nfields / 8)` bytes (bit `i % 8` of byte
//! `i / 8` set = field `i` is null; unused high bits zero), then each non-null field:
//!
//! | Rust type                                   | column    | bytes                          |
//! |---------------------------------------------|-----------|--------------------------------|
//! | `i64`, `u64`, `isize`, `usize`              | `BIGINT`  | i64, little-endian             |
//! | `i32`, `u32`, `i16`, `u16`, `i8`, `u8`      | `INT`     | i32, little-endian             |
//! | `f64`                                       | `DOUBLE`  | f64, little-endian             |
//! | `f32`                                       | `FLOAT`   | f32, little-endian             |
//! | `bool`                                      | `BOOLEAN` | one byte, 0 or 1               |
//! | `String`, `&str`, `char`, unit enum variant | `VARCHAR` | u32-LE length + UTF-8          |
//! | `Option<X>`                                 | as `X`    | `None` sets the null bit       |
//!
//! A `TIMESTAMP` column is an `i64` field. Newtype structs (`struct UserId(i64)`) are transparent,
//! at the top level and as fields. Unsigned values that do not fit the signed column (`u64` above
//! `i64::MAX`, `u32` above `i32::MAX`) are an encode error, never a wrap.
//!
//! Not representable, and an error naming the field: nested structs, tuples, sequences, maps,
//! bytes, 128-bit integers, `Option<Option<X>>`, enum variants that carry data, fields skipped
//! with `skip_serializing_if`, and types that need a self-describing format (`deserialize_any`).
//! Decoding checks every length, rejects a null bit on a field that is not an `Option` and rejects
//! trailing bytes; it never panics on bad input.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use weir_runtime::{Binary, Codec, Json};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Click {
//!     ad_id: i64,
//!     user: Option<String>,
//!     ok: bool,
//! }
//!
//! let click = Click { ad_id: 42, user: Some("ann".into()), ok: true };
//! let mut row = Vec::new();
//! Binary.encode(&click, &mut row)?;
//! assert_eq!(row.len(), 1 + 8 + (4 + 3) + 1); // bitmap, i64, length + "ann", bool
//! let back: Click = Binary.decode(&row)?; // `T` is the trait's parameter: name it here
//! assert_eq!(back, click);
//!
//! // The same bytes as the schema module writes for the same value as JSON.
//! let schema: weir_runtime::schema::Schema = "ad_id BIGINT, user VARCHAR, ok BOOLEAN".parse()?;
//! assert_eq!(schema.encode(&serde_json::to_value(&click)?)?, row);
//!
//! let mut text = Vec::new();
//! Json.encode(&click, &mut text)?;
//! assert_eq!(text, br#"{"ad_id":42,"user":"ann","ok":true}"#);
//! let back: Click = Json.decode(&text)?;
//! assert_eq!(back, click);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod columns;
mod row_de;
mod row_read;
mod row_ser;

use std::fmt;

use serde::Serialize;
use serde::de::{Deserialize, DeserializeOwned};

use weir_log::ValueFormat;

pub use columns::{ColumnVisitor, visit_binary_row, visit_json_row, visit_row};

/// Turns values of `T` into bytes and back.
///
/// Codecs are small, cheap to clone and shared between the tasks of a job.
pub trait Codec<T>: Clone + Send + Sync + 'static {
    /// Appends the encoding of `value` to `out`. On error `out` is left as it was.
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Decodes one value from all of `bytes`.
    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError>;

    /// A short, stable name for messages: a [`ValueFormat`]'s name (`"json"`, `"binary"`) for
    /// the codecs of those formats.
    fn name(&self) -> &'static str;
}

/// What went wrong encoding or decoding a value, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value cannot be written in the codec's format.
    #[error("cannot encode{}: {reason}", in_field(.field))]
    Encode {
        /// The field (column) concerned, if one is: its name, or its index for tuples.
        field: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// The bytes are not a valid encoding of the type.
    #[error("cannot decode{}: {reason}", in_field(.field))]
    Decode {
        /// The field (column) concerned, if one is: its name, or its index for tuples.
        field: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// serde_json failed, encoding or decoding; the message is serde_json's.
    #[error("json: {0}")]
    Json(String),
}

fn in_field(field: &Option<String>) -> String {
    field
        .as_ref()
        .map(|f| format!(" field '{f}'"))
        .unwrap_or_default()
}

impl CodecError {
    /// The field concerned, if the error names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            CodecError::Encode { field, .. } | CodecError::Decode { field, .. } => field.as_deref(),
            CodecError::Json(_) => None,
        }
    }

    pub(crate) fn encode(reason: impl Into<String>) -> Self {
        CodecError::Encode {
            field: None,
            reason: reason.into(),
        }
    }

    pub(crate) fn decode(reason: impl Into<String>) -> Self {
        CodecError::Decode {
            field: None,
            reason: reason.into(),
        }
    }
}

/// The serde error type of the row serializer and deserializer: a [`CodecError`] behind one
/// pointer, so that the `Result` of every field travels in registers rather than through 56
/// bytes of stack (unboxed, decoding ran at under half the speed).
#[derive(Debug)]
pub(crate) struct RowError(Box<CodecError>);

impl RowError {
    #[cold]
    pub(crate) fn encode(reason: impl Into<String>) -> Self {
        RowError(Box::new(CodecError::encode(reason)))
    }

    #[cold]
    pub(crate) fn decode(reason: impl Into<String>) -> Self {
        RowError(Box::new(CodecError::decode(reason)))
    }

    pub(crate) fn into_inner(self) -> CodecError {
        *self.0
    }

    /// Names the field, unless an inner error already did; errors raised inside a field's own
    /// (de)serialization, serde's included, thus come back carrying the field's name. `name`
    /// runs only on this (cold) path.
    #[cold]
    pub(crate) fn within(mut self, name: impl FnOnce() -> String) -> Self {
        if let CodecError::Encode { field, .. } | CodecError::Decode { field, .. } = &mut *self.0
            && field.is_none()
        {
            *field = Some(name());
        }
        self
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for RowError {}

impl serde::ser::Error for RowError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        RowError::encode(msg.to_string())
    }
}

impl serde::de::Error for RowError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        RowError::decode(msg.to_string())
    }
}

/// JSON through serde_json, for any `Serialize + DeserializeOwned` type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Json;

impl<T: Serialize + DeserializeOwned> Codec<T> for Json {
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let start = out.len();
        serde_json::to_writer(&mut *out, value).map_err(|e| {
            out.truncate(start);
            CodecError::Json(e.to_string())
        })
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::Json(e.to_string()))
    }

    fn name(&self) -> &'static str {
        ValueFormat::Json.as_str()
    }
}

/// Weir's binary row format (see the [module docs](self) and [`crate::schema`]), for structs and
/// tuples whose fields are numbers, booleans, strings, unit enum variants or `Option`s of those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Binary;

impl Binary {
    /// Decodes a row into a type that may borrow from `bytes` (a `&str` field points into the
    /// row instead of allocating).
    pub fn decode_borrowed<'de, T: Deserialize<'de>>(
        &self,
        bytes: &'de [u8],
    ) -> Result<T, CodecError> {
        row_de::from_row(bytes)
    }
}

impl<T: Serialize + DeserializeOwned> Codec<T> for Binary {
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let start = out.len();
        row_ser::to_row(value, out).inspect_err(|_| out.truncate(start))
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        row_de::from_row(bytes)
    }

    fn name(&self) -> &'static str {
        ValueFormat::Binary.as_str()
    }
}
