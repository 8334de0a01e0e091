//! The golden queries: each `queries/NAME.sql` runs against the fixture and its output (the result
//! as a table, or the error, then what each topic scan read) must equal `queries/NAME.out`.
//! `WEIR_SQL_BLESS=1 cargo test -p weir-sql --test integration golden` rewrites the `.out` files.

use std::path::PathBuf;

use datafusion::arrow::util::pretty::pretty_format_batches;
use weir_sql::{SessionOptions, WeirSession};

use crate::fixture;

/// The output of one query as the `.out` files hold it.
fn render(session: &WeirSession, query: &str) -> String {
    match session.query(query) {
        Ok(out) => {
            let mut text = pretty_format_batches(&out.batches).unwrap().to_string();
            text.push_str("\n-- scans\n");
            for scan in &out.scans {
                text.push_str(&scan.to_string());
                text.push('\n');
            }
            text
        }
        Err(e) => format!("error: {e}\n"),
    }
}

#[test]
fn golden_queries() {
    let fixture = fixture::build();
    // Two worker threads whatever the machine, so plans (and their scan order) are the same.
    let session = WeirSession::with_options(
        &fixture.log,
        SessionOptions {
            target_partitions: 2,
            ..SessionOptions::default()
        },
    )
    .unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/queries");
    let bless = std::env::var_os("WEIR_SQL_BLESS").is_some_and(|v| v == "1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "golden queries missing in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for sql in &files {
        let query = std::fs::read_to_string(sql).unwrap();
        let got = render(&session, query.trim().trim_end_matches(';'));
        let out = sql.with_extension("out");
        if bless {
            std::fs::write(&out, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&out).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "{}:\n--- want\n{want}--- got\n{got}",
                sql.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden queries differ (WEIR_SQL_BLESS=1 rewrites them):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
