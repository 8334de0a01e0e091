//! A `serde::Serializer` that writes one value as a binary row (see the [codec docs](super)).

use serde::ser::{self, Impossible, Serialize};

use super::{CodecError, RowError};

/// Appends `value` as a row to `out`. On error `out` may hold a partial row; the caller truncates.
pub(super) fn to_row<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    value
        .serialize(RowSerializer { out })
        .map_err(RowError::into_inner)
}

#[cold]
fn not_a_row(what: &str) -> RowError {
    RowError::encode(format!("a row must be a struct or a tuple, got {what}"))
}

#[cold]
fn not_a_column(what: &str) -> RowError {
    RowError::encode(format!(
        "{what} is not representable in a row (columns hold integers, floats, booleans, \
         strings, unit enum variants and Options of those)"
    ))
}

/// The top level: accepts only what makes a row.
struct RowSerializer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> ser::Serializer for RowSerializer<'a> {
    type Ok = ();
    type Error = RowError;
    type SerializeSeq = Impossible<(), RowError>;
    type SerializeTuple = RowWriter<'a>;
    type SerializeTupleStruct = RowWriter<'a>;
    type SerializeTupleVariant = Impossible<(), RowError>;
    type SerializeMap = Impossible<(), RowError>;
    type SerializeStruct = RowWriter<'a>;
    type SerializeStructVariant = Impossible<(), RowError>;

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<RowWriter<'a>, RowError> {
        Ok(RowWriter::begin(self.out, len))
    }

    fn serialize_tuple(self, len: usize) -> Result<RowWriter<'a>, RowError> {
        Ok(RowWriter::begin(self.out, len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<RowWriter<'a>, RowError> {
        Ok(RowWriter::begin(self.out, len))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), RowError> {
        value.serialize(self)
    }

    /// A row of no columns: no bitmap, no values.
    fn serialize_unit(self) -> Result<(), RowError> {
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), RowError> {
        Ok(())
    }

    fn serialize_bool(self, _v: bool) -> Result<(), RowError> {
        Err(not_a_row("a boolean"))
    }
    fn serialize_i8(self, _v: i8) -> Result<(), RowError> {
        Err(not_a_row("an integer"))
    }
    fn serialize_i16(self, _v: i16) -> Result<(), RowError> {
        Err(not_a_row("an integer"))
    }
    fn serialize_i32(self, _v: i32) -> Result<(), RowError> {
        Err(not_a_row("an integer"))
    }
    fn serialize_i64(self, _v: i64) -> Result<(), RowError> {
        Err(not_a_row("an integer"))
    }
    fn serialize_u8(self, _v: u8) -> Result<(), RowError> {
        Err(not_a_row("an integer"))
    }
    fn serialize_u16(self, _v: u16) -> Result<(), RowError> {
        Err(not_a_row("an integer"))
    }
    fn serialize_u32(self, _v: u32) -> Result<(), RowError> {
        Err(not_a_row("an integer"))
    }
    fn serialize_u64(self, _v: u64) -> Result<(), RowError> {
        Err(not_a_row("an integer"))
    }
    fn serialize_f32(self, _v: f32) -> Result<(), RowError> {
        Err(not_a_row("a float"))
    }
    fn serialize_f64(self, _v: f64) -> Result<(), RowError> {
        Err(not_a_row("a float"))
    }
    fn serialize_char(self, _v: char) -> Result<(), RowError> {
        Err(not_a_row("a char"))
    }
    fn serialize_str(self, _v: &str) -> Result<(), RowError> {
        Err(not_a_row("a string"))
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), RowError> {
        Err(not_a_row("bytes"))
    }
    fn serialize_none(self) -> Result<(), RowError> {
        Err(not_a_row("an Option"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), RowError> {
        Err(not_a_row("an Option"))
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), RowError> {
        Err(not_a_row(&format!("enum variant `{name}::{variant}`")))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _value: &T,
    ) -> Result<(), RowError> {
        Err(not_a_row(&format!("enum variant `{name}::{variant}`")))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, RowError> {
        Err(not_a_row("a sequence"))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, RowError> {
        Err(not_a_row(&format!("enum variant `{name}::{variant}`")))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, RowError> {
        Err(not_a_row("a map"))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, RowError> {
        Err(not_a_row(&format!("enum variant `{name}::{variant}`")))
    }
}

/// Writes the fields of one row: reserves the null bitmap, then each field in turn.
pub(super) struct RowWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Where the null bitmap starts in `out` (rows are appended to whatever `out` held).
    bitmap_at: usize,
    /// Fields the type announced; the bitmap has room for exactly these.
    len: usize,
    /// Fields written so far.
    written: usize,
}

impl<'a> RowWriter<'a> {
    fn begin(out: &'a mut Vec<u8>, len: usize) -> Self {
        let bitmap_at = out.len();
        out.resize(bitmap_at + len.div_ceil(8), 0);
        RowWriter {
            out,
            bitmap_at,
            len,
            written: 0,
        }
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
        name: impl FnOnce() -> String,
    ) -> Result<(), RowError> {
        let i = self.written;
        if i == self.len {
            return Err(RowError::encode(format!(
                "more fields than the {} the type announced",
                self.len
            ))
            .within(name));
        }
        self.written += 1;
        value
            .serialize(ColumnSerializer {
                out: self.out,
                null_byte: self.bitmap_at + i / 8,
                null_mask: 1 << (i % 8),
                in_option: false,
            })
            .map_err(|e| e.within(name))
    }

    fn finish(self) -> Result<(), RowError> {
        if self.written != self.len {
            return Err(RowError::encode(format!(
                "{} fields written, the type announced {}",
                self.written, self.len
            )));
        }
        Ok(())
    }
}

impl ser::SerializeStruct for RowWriter<'_> {
    type Ok = ();
    type Error = RowError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), RowError> {
        self.field(value, || key.to_string())
    }

    /// A skipped field would shift every later column, and the reader could not tell.
    fn skip_field(&mut self, key: &'static str) -> Result<(), RowError> {
        Err(RowError::encode(
            "skipped fields (skip_serializing_if) are not representable in a row; use an Option",
        )
        .within(|| key.to_string()))
    }

    fn end(self) -> Result<(), RowError> {
        self.finish()
    }
}

impl ser::SerializeTuple for RowWriter<'_> {
    type Ok = ();
    type Error = RowError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RowError> {
        let i = self.written;
        self.field(value, || i.to_string())
    }

    fn end(self) -> Result<(), RowError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for RowWriter<'_> {
    type Ok = ();
    type Error = RowError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RowError> {
        let i = self.written;
        self.field(value, || i.to_string())
    }

    fn end(self) -> Result<(), RowError> {
        self.finish()
    }
}

/// One column's value. Errors it returns carry no field name; the [`RowWriter`] adds it.
struct ColumnSerializer<'a> {
    out: &'a mut Vec<u8>,
    /// The byte and bit of this column in the null bitmap.
    null_byte: usize,
    null_mask: u8,
    /// Inside `Some(..)`: a second level of Option has no null bit of its own.
    in_option: bool,
}

impl ColumnSerializer<'_> {
    fn bigint(self, v: i64) -> Result<(), RowError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn int(self, v: i32) -> Result<(), RowError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
}

impl ser::Serializer for ColumnSerializer<'_> {
    type Ok = ();
    type Error = RowError;
    type SerializeSeq = Impossible<(), RowError>;
    type SerializeTuple = Impossible<(), RowError>;
    type SerializeTupleStruct = Impossible<(), RowError>;
    type SerializeTupleVariant = Impossible<(), RowError>;
    type SerializeMap = Impossible<(), RowError>;
    type SerializeStruct = Impossible<(), RowError>;
    type SerializeStructVariant = Impossible<(), RowError>;

    fn serialize_i64(self, v: i64) -> Result<(), RowError> {
        self.bigint(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), RowError> {
        let v = i64::try_from(v).map_err(|_| {
            RowError::encode(format!("{v} does not fit a BIGINT column (max i64::MAX)"))
        })?;
        self.bigint(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), RowError> {
        self.int(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), RowError> {
        let v = i32::try_from(v).map_err(|_| {
            RowError::encode(format!("{v} does not fit an INT column (max i32::MAX)"))
        })?;
        self.int(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), RowError> {
        self.int(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), RowError> {
        self.int(v.into())
    }
    fn serialize_i8(self, v: i8) -> Result<(), RowError> {
        self.int(v.into())
    }
    fn serialize_u8(self, v: u8) -> Result<(), RowError> {
        self.int(v.into())
    }
    fn serialize_i128(self, _v: i128) -> Result<(), RowError> {
        Err(not_a_column("a 128-bit integer"))
    }
    fn serialize_u128(self, _v: u128) -> Result<(), RowError> {
        Err(not_a_column("a 128-bit integer"))
    }
    fn serialize_f64(self, v: f64) -> Result<(), RowError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), RowError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_bool(self, v: bool) -> Result<(), RowError> {
        self.out.push(u8::from(v));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), RowError> {
        let len = u32::try_from(v.len())
            .map_err(|_| RowError::encode("string longer than 4 GiB (u32 length)"))?;
        self.out.reserve(4 + v.len());
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), RowError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), RowError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), RowError> {
        value.serialize(self)
    }
    fn serialize_none(self) -> Result<(), RowError> {
        if self.in_option {
            return Err(not_a_column("a nested Option (Option<Option<_>>)"));
        }
        self.out[self.null_byte] |= self.null_mask;
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), RowError> {
        if self.in_option {
            return Err(not_a_column("a nested Option (Option<Option<_>>)"));
        }
        value.serialize(ColumnSerializer {
            in_option: true,
            ..self
        })
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<(), RowError> {
        Err(not_a_column("a byte string"))
    }
    fn serialize_unit(self) -> Result<(), RowError> {
        Err(not_a_column("a unit value"))
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<(), RowError> {
        Err(not_a_column(&format!("unit struct `{name}`")))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _value: &T,
    ) -> Result<(), RowError> {
        Err(not_a_column(&format!(
            "enum variant `{name}::{variant}` (it carries data)"
        )))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, RowError> {
        Err(not_a_column("a sequence"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, RowError> {
        Err(not_a_column("a nested tuple"))
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, RowError> {
        Err(not_a_column(&format!("nested tuple struct `{name}`")))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, RowError> {
        Err(not_a_column(&format!(
            "enum variant `{name}::{variant}` (it carries data)"
        )))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, RowError> {
        Err(not_a_column("a map"))
    }
    fn serialize_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, RowError> {
        Err(not_a_column(&format!("nested struct `{name}`")))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, RowError> {
        Err(not_a_column(&format!(
            "enum variant `{name}::{variant}` (it carries data)"
        )))
    }
}
