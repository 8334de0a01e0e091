//! The two schema-driven row decoders that every reader of a topic with a schema shares
//! ([`visit_binary_row`] for `--format binary`, [`visit_json_row`] for JSON checked against the
//! schema), on a schema the input chooses.
//!
//! An input is: one byte for the column count (1 to 8), one byte per column for its type, then
//! the value. Both decoders read the value. Oracles:
//! - a value that decodes visits every column exactly once, and only columns of the schema;
//! - a binary row that decodes, written back through the schema's JSON encoder, is the same
//!   bytes (the format has one encoding per value), for schemas without floating-point columns
//!   (NaN has no JSON);
//! - a JSON value that the strict decoder accepts, the schema's encoder accepts too.

use weir_runtime::codec::{ColumnVisitor, visit_binary_row, visit_json_row};
use weir_runtime::schema::Schema;

/// The column types, in the order an input's type bytes pick them (modulo their count).
pub const TYPES: [&str; 7] = [
    "BIGINT",
    "INT",
    "DOUBLE",
    "FLOAT",
    "BOOLEAN",
    "VARCHAR",
    "TIMESTAMP",
];

/// Counts the calls for each column.
struct Visits(Vec<u32>);

impl Visits {
    fn at(&mut self, column: usize) {
        assert!(column < self.0.len(), "column {column} is past the schema");
        self.0[column] += 1;
    }
}

impl ColumnVisitor for Visits {
    fn null(&mut self, c: usize) {
        self.at(c)
    }
    fn i64(&mut self, c: usize, _: i64) {
        self.at(c)
    }
    fn i32(&mut self, c: usize, _: i32) {
        self.at(c)
    }
    fn f64(&mut self, c: usize, _: f64) {
        self.at(c)
    }
    fn f32(&mut self, c: usize, _: f32) {
        self.at(c)
    }
    fn bool(&mut self, c: usize, _: bool) {
        self.at(c)
    }
    fn str(&mut self, c: usize, _: &str) {
        self.at(c)
    }
}

/// Splits an input into its schema and its value.
fn schema_and_value(data: &[u8]) -> Option<(Schema, bool, &[u8])> {
    let (&n, rest) = data.split_first()?;
    let n = usize::from(n % 8) + 1;
    if rest.len() < n {
        return None;
    }
    let (types, value) = rest.split_at(n);
    let text: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("c{i} {}", TYPES[usize::from(*t) % TYPES.len()]))
        .collect();
    let floats = types
        .iter()
        .any(|t| matches!(TYPES[usize::from(*t) % TYPES.len()], "DOUBLE" | "FLOAT"));
    let schema = Schema::parse(&text.join(", ")).expect("a schema of known types parses");
    Some((schema, floats, value))
}

/// Decodes the input's value both ways and checks what decodes.
pub fn run(data: &[u8]) {
    let Some((schema, floats, value)) = schema_and_value(data) else {
        return;
    };
    let columns = schema.columns().len();

    let mut visits = Visits(vec![0; columns]);
    if visit_binary_row(&schema, value, &mut visits).is_ok() {
        assert!(
            visits.0.iter().all(|&v| v == 1),
            "binary: every column once: {:?}",
            visits.0
        );
        if !floats {
            let decoded = schema.decode(value).expect("a row that visits decodes");
            let json = serde_json::to_value(&decoded).expect("a decoded row is JSON");
            let again = schema.encode(&json).expect("a decoded row encodes");
            assert_eq!(again, value, "binary → JSON → binary gives the same bytes");
        }
    }

    let mut visits = Visits(vec![0; columns]);
    if visit_json_row(&schema, value, &mut visits).is_ok() {
        assert!(
            visits.0.iter().all(|&v| v == 1),
            "JSON: every column once: {:?}",
            visits.0
        );
        let json: serde_json::Value =
            serde_json::from_slice(value).expect("what the strict decoder accepts is JSON");
        if let Err(e) = schema.encode(&json) {
            panic!("the strict JSON decoder accepts what the schema's encoder refuses: {e}");
        }
    }
}
