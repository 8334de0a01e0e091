//! WeirSession beyond the golden files: which topics become tables, typed errors, file access.

use weir_sql::{Error, SessionOptions, WeirSession};

use crate::fixture;

#[test]
fn topics_without_schema_are_skipped() {
    let f = fixture::build();
    let session = WeirSession::new(&f.log).unwrap();
    assert_eq!(
        session.tables(),
        ["ads", "bad_clicks", "bad_rows", "clicks", "clicks_json"]
    );
    assert_eq!(
        session.skipped(),
        [("notes".to_string(), "no schema".to_string())]
    );
}

#[test]
fn a_record_that_does_not_fit_is_a_decode_error_with_its_place() {
    let f = fixture::build();
    let session = WeirSession::new(&f.log).unwrap();
    let err = session
        .sql("SELECT count(*) FROM bad_clicks WHERE ad_id > 0")
        .unwrap_err();
    match err {
        Error::Decode {
            topic,
            partition,
            offset,
            reason,
        } => {
            assert_eq!((topic.as_str(), partition, offset), ("bad_clicks", 1, 1));
            assert!(
                reason.contains("column 'ad_id': expected BIGINT, got a string"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Metadata-only queries never decode values, so they read the same topic fine.
    let batches = session.sql("SELECT count(*) FROM bad_clicks").unwrap();
    assert_eq!(batches[0].num_rows(), 1);
}

#[test]
fn binary_and_json_topics_read_the_same() {
    let f = fixture::build();
    let session = WeirSession::new(&f.log).unwrap();
    let q = |t: &str| {
        let batches = session
            .sql(&format!(
                "SELECT ad_id, user_id, ts, _partition, _offset, _timestamp, _key FROM {t} ORDER BY _partition, _offset"
            ))
            .unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    };
    let binary = q("clicks");
    assert_eq!(binary.lines().count(), fixture::CLICKS as usize + 4);
    assert_eq!(binary, q("clicks_json"));
}

#[test]
fn files_only_with_file_access() {
    let f = fixture::build();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, "a,b\n1,2\n3,4\n").unwrap();
    let create = format!(
        "CREATE EXTERNAL TABLE x (a BIGINT, b BIGINT) STORED AS CSV LOCATION '{}' OPTIONS ('format.has_header' 'true')",
        csv.display()
    );
    let session = WeirSession::new(&f.log).unwrap();
    let err = session.sql(&create).unwrap_err().to_string();
    assert!(err.contains("DDL not supported"), "{err}");
    let copy = format!(
        "COPY (SELECT 1) TO '{}'",
        dir.path().join("y.csv").display()
    );
    let err = session.sql(&copy).unwrap_err().to_string();
    assert!(err.contains("not supported"), "{err}");
    // The DataFrame API would reach files through the object store: there is none.
    let err = session
        .dataframe("SELECT 1")
        .map(|_| ())
        .and_then(|()| {
            let ctx = session.context();
            let read = session.block_on(ctx.read_csv(csv.to_str().unwrap(), Default::default()));
            read.map(|_| ()).map_err(Error::from)
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("file access is disabled"), "{err}");
    assert!(!dir.path().join("y.csv").exists());

    let open = WeirSession::new(&f.log)
        .unwrap()
        .with_file_access(true)
        .unwrap();
    open.sql(&create).unwrap();
    let batches = open.sql("SELECT sum(a + b) AS s FROM x").unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(text.contains("| 10 |"), "{text}");
}

#[test]
fn a_topic_without_schema_is_a_typed_error_naming_it() {
    let f = fixture::build();
    let session = WeirSession::new(&f.log).unwrap();
    match session.sql("SELECT count(*) FROM notes").unwrap_err() {
        Error::NoSchema { topic } => assert_eq!(topic, "notes"),
        other => panic!("{other:?}"),
    }
    // Names that are no topic at all are still DataFusion's "not found".
    let err = session.sql("SELECT * FROM nope").unwrap_err().to_string();
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn memory_bytes_max_bounds_the_operators_and_the_result() {
    let f = fixture::build();
    let options = |memory_bytes_max| SessionOptions {
        memory_bytes_max,
        ..SessionOptions::default()
    };
    let err = WeirSession::with_options(&f.log, options(0)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                field: "memory_bytes_max",
                ..
            }
        ),
        "{err}"
    );
    // 40^3 rows: a few MB to sort, and as many to hold as the result.
    let cube = "SELECT a.ts, b.ts, c.ts FROM clicks a, clicks b, clicks c";
    let small = WeirSession::with_options(&f.log, options(256 << 10)).unwrap();
    for query in [format!("{cube} ORDER BY 1, 2, 3"), cube.to_string()] {
        match small.sql(&query).unwrap_err() {
            Error::ResourcesExhausted {
                memory_bytes_max,
                spill_bytes_max,
                reason,
            } => {
                assert_eq!((memory_bytes_max, spill_bytes_max), (256 << 10, 0));
                assert!(!reason.is_empty());
            }
            other => panic!("{query}: {other:?}"),
        }
    }
    let text = small.sql("SELECT count(*) FROM clicks").unwrap();
    assert_eq!(text[0].num_rows(), 1);
    let default = WeirSession::new(&f.log).unwrap();
    let rows: usize = default
        .sql(&format!("{cube} ORDER BY 1, 2, 3"))
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 40 * 40 * 40);
}
