//! A topic's weir schema as an Arrow schema.
//!
//! | weir        | Arrow                          |
//! |-------------|--------------------------------|
//! | `BIGINT`    | `Int64`                        |
//! | `INT`       | `Int32`                        |
//! | `DOUBLE`    | `Float64`                      |
//! | `FLOAT`     | `Float32`                      |
//! | `BOOLEAN`   | `Boolean`                      |
//! | `VARCHAR`   | `Utf8`                         |
//! | `TIMESTAMP` | `Timestamp(Millisecond, None)` |
//!
//! Every value column is nullable. After them come the record's metadata columns:
//! [`PARTITION_COLUMN`] (`Int32`), [`OFFSET_COLUMN`] (`Int64`), [`TIMESTAMP_COLUMN`]
//! (`Timestamp(Millisecond, None)`) and [`KEY_COLUMN`] (`Utf8`, null for a null key). A key that is
//! not valid UTF-8 is an error ([`crate::Error::Decode`]) when `_key` is read, never replaced
//! characters; queries that do not select `_key` never look at keys.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef, TimeUnit};
use weir_runtime::schema::{ColumnType, Schema};

/// The partition a record was read from.
pub const PARTITION_COLUMN: &str = "_partition";
/// The record's offset in its partition.
pub const OFFSET_COLUMN: &str = "_offset";
/// The record's timestamp (ms since the Unix epoch).
pub const TIMESTAMP_COLUMN: &str = "_timestamp";
/// The record's key, as UTF-8 text.
pub const KEY_COLUMN: &str = "_key";

/// The metadata columns, in the order they follow the value columns.
pub const METADATA_COLUMNS: [&str; 4] = [
    PARTITION_COLUMN,
    OFFSET_COLUMN,
    TIMESTAMP_COLUMN,
    KEY_COLUMN,
];

/// The Arrow type of a weir column type.
pub fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::BigInt => DataType::Int64,
        ColumnType::Int => DataType::Int32,
        ColumnType::Double => DataType::Float64,
        ColumnType::Float => DataType::Float32,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Varchar => DataType::Utf8,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
    }
}

/// The table schema of a topic: its value columns (nullable), then the metadata columns.
///
/// A schema column named like a metadata column (`_offset`, ...) would be ambiguous: the metadata
/// column wins and the value column is left out; [`crate::WeirSession`] reports such topics.
pub fn table_schema(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema
        .columns()
        .iter()
        .filter(|c| !METADATA_COLUMNS.contains(&c.name.as_str()))
        .map(|c| Field::new(&c.name, arrow_type(c.ty), true))
        .collect();
    fields.push(Field::new(PARTITION_COLUMN, DataType::Int32, false));
    fields.push(Field::new(OFFSET_COLUMN, DataType::Int64, false));
    fields.push(Field::new(
        TIMESTAMP_COLUMN,
        DataType::Timestamp(TimeUnit::Millisecond, None),
        false,
    ));
    fields.push(Field::new(KEY_COLUMN, DataType::Utf8, true));
    Arc::new(ArrowSchema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_type_and_appends_metadata() {
        let s: Schema = "a BIGINT, b INT, c DOUBLE, d FLOAT, e BOOLEAN, f VARCHAR, g TIMESTAMP"
            .parse()
            .unwrap();
        let arrow = table_schema(&s);
        let got: Vec<String> = arrow
            .fields()
            .iter()
            .map(|f| format!("{} {} {}", f.name(), f.data_type(), f.is_nullable()))
            .collect();
        assert_eq!(
            got,
            [
                "a Int64 true",
                "b Int32 true",
                "c Float64 true",
                "d Float32 true",
                "e Boolean true",
                "f Utf8 true",
                "g Timestamp(ms) true",
                "_partition Int32 false",
                "_offset Int64 false",
                "_timestamp Timestamp(ms) false",
                "_key Utf8 true",
            ]
        );
    }
}
