//! Writes the seed corpora of `record_batch`, `rows` and `sql_planner`: well-formed inputs of
//! every shape each target reads, from which the fuzzer mutates. From `fuzz/`:
//! `cargo run --bin corpus_seeds -- corpus`
#![allow(clippy::unwrap_used)]

use std::path::Path;

use bytes::Bytes;
use weir_log::format::{
    BatchBuilder, BatchOptions, Compression, ControlRecord, ControlType, Header,
};
use weir_runtime::schema::Schema;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

fn batches(dir: &Path) {
    let codecs = [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ];
    let mut all = Vec::new();
    for (name, compression) in codecs {
        let mut b = BatchBuilder::new(BatchOptions {
            compression,
            ..BatchOptions::default()
        });
        b.push(1_700_000_000_000, Some(b"k1"), Some(br#"{"ad_id":1}"#), &[]);
        b.push(1_700_000_000_005, None, Some(b"value without a key"), &[]);
        b.push(1_700_000_000_001, Some(b"tombstone"), None, &[]);
        b.push(
            1_700_000_000_002,
            Some(b"k2"),
            Some(b"with headers"),
            &[
                Header {
                    key: "h1".into(),
                    value: Some(Bytes::from_static(b"v1")),
                },
                Header {
                    key: "h2".into(),
                    value: None,
                },
            ],
        );
        let bytes = b.finish(42);
        write(dir, "record_batch", name, &bytes);
        all.extend_from_slice(&bytes);
    }
    let mut txn = BatchBuilder::new(BatchOptions {
        producer_id: 7,
        producer_epoch: 1,
        base_sequence: 0,
        transactional: true,
        ..BatchOptions::default()
    });
    txn.push(
        1_700_000_000_000,
        Some(b"k"),
        Some(b"in a transaction"),
        &[],
    );
    write(dir, "record_batch", "transactional", &txn.finish(0));
    let mut control = BatchBuilder::new(BatchOptions {
        producer_id: 7,
        producer_epoch: 1,
        transactional: true,
        control: true,
        ..BatchOptions::default()
    });
    let (key, value) = ControlRecord {
        kind: ControlType::Commit,
        coordinator_epoch: 0,
    }
    .encode();
    control.push(1_700_000_000_000, Some(&key), Some(&value), &[]);
    write(dir, "record_batch", "control", &control.finish(1));
    let mut append_time = BatchBuilder::new(BatchOptions {
        log_append_time: true,
        ..BatchOptions::default()
    });
    append_time.push(5, None, Some(b"log append time"), &[]);
    write(
        dir,
        "record_batch",
        "log-append-time",
        &append_time.finish(0),
    );
    // Back to back, as a segment or a fetch response, the last cut short.
    let cut = all.len() - 9;
    write(dir, "record_batch", "several-cut", &all[..cut]);
}

fn rows(dir: &Path) {
    let types = weir_fuzz::rows::TYPES;
    let cases: [(&[u8], &str); 5] = [
        (
            &[0, 2, 0, 5, 6],
            r#"{"c0": 1.5, "c1": null, "c2": "x", "c3": 1700000000000}"#,
        ),
        (&[0, 5], r#"{"c0": "caf\u00e9 \"quoted\""}"#),
        (
            &[0, 0, 1, 4, 5],
            r#"{"c0": -9223372036854775808, "c1": 2147483647, "c2": true, "c3": null}"#,
        ),
        (&[0, 2, 3], r#"{"c0": 1.5e300, "c1": -0.25}"#),
        (
            &[0, 6, 6, 6, 6, 6, 6, 6, 6],
            r#"{"c0":1,"c1":2,"c2":3,"c3":4,"c4":5,"c5":6,"c6":7,"c7":8}"#,
        ),
    ];
    for (i, (spec, json)) in cases.iter().enumerate() {
        // The input's layout: column count - 1, then one type byte per column.
        let n = spec.len() - 1;
        let columns: Vec<String> = spec[1..]
            .iter()
            .enumerate()
            .map(|(c, t)| format!("c{c} {}", types[usize::from(*t)]))
            .collect();
        let schema = Schema::parse(&columns.join(", ")).unwrap();
        let mut head = vec![(n - 1) as u8];
        head.extend_from_slice(&spec[1..]);
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        let binary = schema.encode(&value).unwrap();
        write(
            dir,
            "rows",
            &format!("{i}-json"),
            &[&head[..], json.as_bytes()].concat(),
        );
        write(
            dir,
            "rows",
            &format!("{i}-binary"),
            &[&head[..], &binary[..]].concat(),
        );
    }
}

fn queries(dir: &Path) {
    let queries = [
        "INSERT INTO out SELECT ad_id, window_start, window_end, count(*) AS clicks FROM TUMBLE(clicks, ts, INTERVAL '1' MINUTE) GROUP BY ad_id, window_start, window_end",
        "INSERT INTO outb SELECT ad_id, window_start, window_end, count(*) AS clicks FROM TUMBLE(clicks, ts, INTERVAL '1' MINUTE) WHERE ok GROUP BY ad_id, window_start, window_end",
        "INSERT INTO out SELECT page, window_start, window_end, sum(price) AS revenue, avg(price), min(n), max(n), approx_distinct(user_id) AS users FROM HOP(clicks, ts, INTERVAL '10' SECOND, INTERVAL '1' MINUTE) WHERE price > 0.5 AND page LIKE 'home%' GROUP BY page, window_start, window_end",
        "INSERT INTO out SELECT user_id, window_start, window_end, count(page) FROM SESSION(clicks, ts, INTERVAL '30' SECOND) GROUP BY user_id, window_start, window_end",
        "INSERT INTO out SELECT ad_id % 10 AS bucket, upper(page) AS p, window_start, window_end, count(*) FROM TUMBLE(clicks, ts, INTERVAL '5' SECOND) WHERE ts > to_timestamp_millis(0) GROUP BY ad_id % 10, upper(page), window_start, window_end",
        "INSERT INTO out SELECT CASE WHEN n > 3 THEN 'big' ELSE 'small' END AS size, window_start, window_end, sum(CAST(n AS BIGINT)) FROM TUMBLE(clicks, ts, INTERVAL '1' HOUR) GROUP BY CASE WHEN n > 3 THEN 'big' ELSE 'small' END, window_start, window_end",
        "INSERT INTO nope SELECT ad_id, window_start, count(*) FROM TUMBLE(clicks, ts, INTERVAL '1' MINUTE) GROUP BY ad_id, window_start",
        "SELECT ad_id FROM clicks",
    ];
    for (i, q) in queries.iter().enumerate() {
        write(dir, "sql_planner", &i.to_string(), q.as_bytes());
    }
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: corpus_seeds CORPUS_DIR");
    let dir = Path::new(&dir);
    batches(dir);
    rows(dir);
    queries(dir);
}
