//! The reading rules of the binary row format, in one place: the null bitmap and its padding,
//! fixed-width little-endian values, length-prefixed UTF-8 strings, booleans that are 0 or 1, and
//! no trailing bytes. Every decoder of rows reads through [`RowReader`]: the serde one that
//! fills Rust types ([`super::row_de`]) and the schema-driven one ([`super::columns`]) that SQL
//! scans, continuous queries and the command line use.
//!
//! Errors are a small [`RowFault`] (no allocation, no text); each decoder words it for its
//! reader, who thinks of either a type's fields or a schema's columns.

use std::str::Utf8Error;

/// What makes bytes not a valid row. The reader is left as it was before the failed read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowFault {
    /// The row is shorter than the null bitmap its column count implies.
    ShortBitmap {
        row_bytes: usize,
        bitmap_bytes: usize,
    },
    /// Bits past the last column in the bitmap's last byte are set (they must be zero).
    BitmapPadding,
    /// The row ends inside a value.
    Truncated {
        row_bytes: usize,
        needed_bytes: usize,
        left_bytes: usize,
    },
    /// A boolean byte that is neither 0 nor 1.
    Boolean { byte: u8 },
    /// A string that is not UTF-8.
    Utf8(Utf8Error),
    /// Bytes left after the last column.
    Trailing { bytes: usize },
}

/// One row being read, column by column, front to back.
pub(crate) struct RowReader<'r> {
    bitmap: &'r [u8],
    rest: &'r [u8],
    row_bytes: usize,
}

impl<'r> RowReader<'r> {
    /// Starts reading `row` as a row of `columns` columns: checks its null bitmap.
    #[inline]
    pub(crate) fn new(row: &'r [u8], columns: usize) -> Result<RowReader<'r>, RowFault> {
        let bitmap_bytes = columns.div_ceil(8);
        let Some((bitmap, rest)) = row.split_at_checked(bitmap_bytes) else {
            return Err(RowFault::ShortBitmap {
                row_bytes: row.len(),
                bitmap_bytes,
            });
        };
        let unused = bitmap_bytes * 8 - columns;
        if unused > 0 && bitmap[bitmap_bytes - 1] >> (8 - unused) != 0 {
            return Err(RowFault::BitmapPadding);
        }
        Ok(RowReader {
            bitmap,
            rest,
            row_bytes: row.len(),
        })
    }

    /// Whether column `i` is null (its value is then absent from the row).
    #[inline]
    pub(crate) fn is_null(&self, i: usize) -> bool {
        debug_assert!(i < self.bitmap.len() * 8, "column {i} is past the bitmap");
        self.bitmap[i / 8] & (1 << (i % 8)) != 0
    }

    #[cold]
    fn truncated(&self, needed_bytes: usize) -> RowFault {
        RowFault::Truncated {
            row_bytes: self.row_bytes,
            needed_bytes,
            left_bytes: self.rest.len(),
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], RowFault> {
        let Some((head, tail)) = self.rest.split_first_chunk::<N>() else {
            return Err(self.truncated(N));
        };
        self.rest = tail;
        Ok(*head)
    }

    /// A `BIGINT` or `TIMESTAMP` value.
    #[inline]
    pub(crate) fn i64(&mut self) -> Result<i64, RowFault> {
        self.array().map(i64::from_le_bytes)
    }

    /// An `INT` value.
    #[inline]
    pub(crate) fn i32(&mut self) -> Result<i32, RowFault> {
        self.array().map(i32::from_le_bytes)
    }

    /// A `DOUBLE` value.
    #[inline]
    pub(crate) fn f64(&mut self) -> Result<f64, RowFault> {
        self.array().map(f64::from_le_bytes)
    }

    /// A `FLOAT` value.
    #[inline]
    pub(crate) fn f32(&mut self) -> Result<f32, RowFault> {
        self.array().map(f32::from_le_bytes)
    }

    /// A `BOOLEAN` value: one byte, 0 or 1.
    #[inline]
    pub(crate) fn bool(&mut self) -> Result<bool, RowFault> {
        let Some((&byte, tail)) = self.rest.split_first() else {
            return Err(self.truncated(1));
        };
        let value = match byte {
            0 => false,
            1 => true,
            byte => return Err(RowFault::Boolean { byte }),
        };
        self.rest = tail;
        Ok(value)
    }

    /// A `VARCHAR` value: a u32-LE length, then that many bytes of UTF-8, borrowed from the row.
    #[inline]
    pub(crate) fn str(&mut self) -> Result<&'r str, RowFault> {
        let Some((len, tail)) = self.rest.split_first_chunk::<4>() else {
            return Err(self.truncated(4));
        };
        let len = u32::from_le_bytes(*len) as usize;
        let Some((bytes, tail)) = tail.split_at_checked(len) else {
            return Err(self.truncated(4 + len));
        };
        let s = std::str::from_utf8(bytes).map_err(RowFault::Utf8)?;
        self.rest = tail;
        Ok(s)
    }

    /// Ends the row: every byte must have been read.
    #[inline]
    pub(crate) fn finish(self) -> Result<(), RowFault> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(RowFault::Trailing {
                bytes: self.rest.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_kind_and_reports_each_fault() {
        // Three columns, the second null: one bitmap byte, then an i32 and a string.
        let row = [
            &[0b010u8][..],
            &7i32.to_le_bytes(),
            &2u32.to_le_bytes(),
            b"hi",
        ]
        .concat();
        let mut r = RowReader::new(&row, 3).expect("bitmap");
        assert!(!r.is_null(0) && r.is_null(1) && !r.is_null(2));
        assert_eq!(r.i32(), Ok(7));
        assert_eq!(r.str(), Ok("hi"));
        assert_eq!(r.finish(), Ok(()));

        assert_eq!(
            RowReader::new(&[], 9).err(),
            Some(RowFault::ShortBitmap {
                row_bytes: 0,
                bitmap_bytes: 2
            })
        );
        assert_eq!(
            RowReader::new(&[0b1000], 3).err(),
            Some(RowFault::BitmapPadding)
        );
        let mut r = RowReader::new(&[0, 1, 2], 1).expect("bitmap");
        assert_eq!(
            r.i64(),
            Err(RowFault::Truncated {
                row_bytes: 3,
                needed_bytes: 8,
                left_bytes: 2
            })
        );
        // A failed read leaves the reader where it was.
        assert_eq!(r.bool(), Ok(true));
        assert_eq!(r.bool(), Err(RowFault::Boolean { byte: 2 }));
        assert_eq!(
            RowReader::new(&[0, 9], 1).and_then(RowReader::finish),
            Err(RowFault::Trailing { bytes: 1 })
        );
        let bad = [&[0u8][..], &1u32.to_le_bytes(), &[0xff]].concat();
        assert!(matches!(
            RowReader::new(&bad, 1).and_then(|mut r| r.str()),
            Err(RowFault::Utf8(_))
        ));
        let huge = [&[0u8][..], &u32::MAX.to_le_bytes()].concat();
        assert!(matches!(
            RowReader::new(&huge, 1).and_then(|mut r| r.str()),
            Err(RowFault::Truncated { .. })
        ));
    }
}
