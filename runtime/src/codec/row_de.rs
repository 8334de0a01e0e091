//! A `serde::Deserializer` that reads one binary row (see the [codec docs](super)).
//!
//! This is the hot path: numeric fields are read without allocating, and strings are handed to
//! the visitor borrowed from the row (`visit_borrowed_str`), so a `&str` field costs nothing and
//! a `String` field one copy.

use serde::de::{self, Deserialize, DeserializeSeed, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;

use super::row_read::{RowFault, RowReader};
use super::{CodecError, RowError};

/// Decodes all of `row` as a `T`.
pub(super) fn from_row<'de, T: Deserialize<'de>>(row: &'de [u8]) -> Result<T, CodecError> {
    T::deserialize(RowDeserializer { row }).map_err(RowError::into_inner)
}

/// A [`RowFault`] in the words of a type's fields; the field's name is added by [`Fields`].
#[cold]
fn fault(fault: RowFault) -> RowError {
    RowError::decode(match fault {
        RowFault::ShortBitmap {
            row_bytes,
            bitmap_bytes,
        } => format!(
            "the row ({row_bytes} bytes) is shorter than its {bitmap_bytes}-byte null bitmap"
        ),
        RowFault::BitmapPadding => "the null bitmap has bits set past the last field".to_string(),
        RowFault::Truncated {
            needed_bytes,
            left_bytes,
            ..
        } => format!(
            "the row ends inside the field ({needed_bytes} bytes needed, {left_bytes} left)"
        ),
        RowFault::Boolean { byte } => format!("boolean byte {byte} (not 0 or 1)"),
        RowFault::Utf8(e) => format!("invalid UTF-8: {e}"),
        RowFault::Trailing { bytes } => format!("{bytes} trailing bytes after the last field"),
    })
}

#[cold]
fn not_a_row(what: &str) -> RowError {
    RowError::decode(format!(
        "a row decodes only into a struct or a tuple, not {what}"
    ))
}

#[cold]
fn not_a_column(what: &str) -> RowError {
    RowError::decode(format!(
        "{what} is not representable in a row (columns hold integers, floats, booleans, \
         strings, unit enum variants and Options of those)"
    ))
}

/// The names of a row's fields, for error messages only.
#[derive(Clone, Copy)]
enum FieldNames {
    /// A struct's field names, in order.
    Named(&'static [&'static str]),
    /// A tuple: fields are named by their index.
    Indexed,
}

impl FieldNames {
    #[cold]
    fn name(self, i: usize) -> String {
        match self {
            FieldNames::Named(names) => names
                .get(i)
                .map_or_else(|| i.to_string(), |n| n.to_string()),
            FieldNames::Indexed => i.to_string(),
        }
    }
}

/// The top level: accepts only what makes a row.
struct RowDeserializer<'de> {
    row: &'de [u8],
}

impl<'de> RowDeserializer<'de> {
    #[inline]
    fn row<V: Visitor<'de>>(
        self,
        len: usize,
        names: FieldNames,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        let mut reader = RowReader::new(self.row, len).map_err(fault)?;
        let mut fields = Fields {
            reader: &mut reader,
            names,
            len,
            next: 0,
        };
        let value = visitor.visit_seq(&mut fields)?;
        if fields.next != len {
            return Err(RowError::decode(format!(
                "the type read {} of its {len} fields",
                fields.next
            )));
        }
        reader.finish().map_err(fault)?;
        Ok(value)
    }

    /// A row of no columns: no bitmap, no values, so no bytes at all.
    fn empty(self) -> Result<(), RowError> {
        RowReader::new(self.row, 0)
            .and_then(RowReader::finish)
            .map_err(fault)
    }
}

impl<'de> de::Deserializer<'de> for RowDeserializer<'de> {
    type Error = RowError;

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, RowError> {
        self.row(fields.len(), FieldNames::Named(fields), visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        self.row(len, FieldNames::Indexed, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        self.row(len, FieldNames::Indexed, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        visitor.visit_newtype_struct(self)
    }

    /// A row of no columns: no bitmap, no values.
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        self.empty()?;
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        self.empty()?;
        visitor.visit_unit()
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, RowError> {
        Err(not_a_row("this type"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, RowError> {
        Err(not_a_row(&format!("enum `{name}`")))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option seq map identifier ignored_any
    }
}

/// The fields of one row, handed to the type's visitor as a sequence.
struct Fields<'a, 'de> {
    reader: &'a mut RowReader<'de>,
    names: FieldNames,
    len: usize,
    next: usize,
}

impl<'de> SeqAccess<'de> for Fields<'_, 'de> {
    type Error = RowError;

    #[inline]
    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, RowError> {
        let i = self.next;
        if i == self.len {
            return Ok(None);
        }
        self.next += 1;
        let value = if self.reader.is_null(i) {
            seed.deserialize(NullColumn)
        } else {
            seed.deserialize(ColumnDeserializer {
                reader: self.reader,
            })
        };
        match value {
            Ok(value) => Ok(Some(value)),
            Err(e) => {
                let names = self.names;
                Err(e.within(|| names.name(i)))
            }
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.len - self.next)
    }
}

/// A column whose null bit is set: only an `Option` accepts it.
struct NullColumn;

impl<'de> de::Deserializer<'de> for NullColumn {
    type Error = RowError;

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_none()
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, RowError> {
        Err(RowError::decode(
            "null (its null bit is set), but the field is not an Option",
        ))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

/// One non-null column. Errors it returns carry no field name; [`Fields`] adds it.
struct ColumnDeserializer<'a, 'de> {
    reader: &'a mut RowReader<'de>,
}

impl<'de> ColumnDeserializer<'_, 'de> {
    #[inline]
    fn bigint(self) -> Result<i64, RowError> {
        self.reader.i64().map_err(fault)
    }

    #[inline]
    fn int(self) -> Result<i32, RowError> {
        self.reader.i32().map_err(fault)
    }

    #[inline]
    fn str(self) -> Result<&'de str, RowError> {
        self.reader.str().map_err(fault)
    }
}

// Integers are handed to the visitor as read (i64 or i32): serde's own visitors for narrower and
// unsigned types check the range and reject what does not fit, e.g. a negative u64.
impl<'de> de::Deserializer<'de> for ColumnDeserializer<'_, 'de> {
    type Error = RowError;

    #[inline]
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_i64(self.bigint()?)
    }
    #[inline]
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_i64(self.bigint()?)
    }
    #[inline]
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_i32(self.int()?)
    }
    #[inline]
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_i32(self.int()?)
    }
    #[inline]
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_i32(self.int()?)
    }
    #[inline]
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_i32(self.int()?)
    }
    #[inline]
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_i32(self.int()?)
    }
    #[inline]
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_i32(self.int()?)
    }
    #[inline]
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_f64(self.reader.f64().map_err(fault)?)
    }
    #[inline]
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_f32(self.reader.f32().map_err(fault)?)
    }
    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_bool(self.reader.bool().map_err(fault)?)
    }
    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_borrowed_str(self.str()?)
    }
    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_borrowed_str(self.str()?)
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_borrowed_str(self.str()?)
    }
    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_some(ColumnDeserializer {
            reader: self.reader,
        })
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        visitor.visit_newtype_struct(self)
    }
    /// Unit variants only: the column holds the variant's name, which the enum's visitor looks
    /// up; a variant that carries data is refused by the string's variant access.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, RowError> {
        let variant = self.str()?;
        visitor.visit_enum(de::value::BorrowedStrDeserializer::<RowError>::new(variant))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, RowError> {
        Err(not_a_column(
            "a type that needs a self-describing format (deserialize_any)",
        ))
    }
    fn deserialize_i128<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, RowError> {
        Err(not_a_column("a 128-bit integer"))
    }
    fn deserialize_u128<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, RowError> {
        Err(not_a_column("a 128-bit integer"))
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, RowError> {
        Err(not_a_column("a byte string"))
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, RowError> {
        Err(not_a_column("a byte string"))
    }
    fn deserialize_unit<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, RowError> {
        Err(not_a_column("a unit value"))
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, RowError> {
        Err(not_a_column(&format!("unit struct `{name}`")))
    }
    fn deserialize_seq<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, RowError> {
        Err(not_a_column("a sequence"))
    }
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, RowError> {
        Err(not_a_column("a nested tuple"))
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, RowError> {
        Err(not_a_column(&format!("nested tuple struct `{name}`")))
    }
    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, RowError> {
        Err(not_a_column("a map"))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, RowError> {
        Err(not_a_column(&format!("nested struct `{name}`")))
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        self.deserialize_str(visitor)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, RowError> {
        Err(not_a_column(
            "a type that needs a self-describing format (deserialize_ignored_any)",
        ))
    }
}
