//! A log with small deterministic topics, for the golden queries.

use weir_log::{Log, LogConfig, Producer, ProducerConfig, ProducerRecord, TopicConfig};
use weir_runtime::schema::Schema;

pub const CLICK_SCHEMA: &str = "ad_id BIGINT, user_id BIGINT, ts TIMESTAMP";
/// 2023-11-14T22:13:20Z.
pub const T0: i64 = 1_700_000_000_000;
pub const CLICKS: i64 = 40;

/// The log and the directory that holds it.
pub struct Fixture {
    pub log: Log,
    _dir: tempfile::TempDir,
}

fn topic(log: &Log, name: &str, partitions: i32, schema: Option<&str>, format: &str) {
    log.create_topic(
        name,
        TopicConfig {
            partitions,
            retention_ms: None,
            schema: schema.map(str::to_string),
            format: format.parse().expect("a known value format"),
            ..TopicConfig::default()
        },
    )
    .unwrap();
}

/// - `clicks` (binary) and `clicks_json` (json): the same 40 clicks, 4 partitions; click `i` has
///   ad_id 1 + i % 5, user_id 100 + i % 7, ts T0 + i s (also its record timestamp), key the
///   ad id, and goes to partition i % 4 (so offset i / 4), produced in batches of 5 clicks.
/// - `ads` (json, 1 partition): ad_id, campaign, budget for ads 1..=5 (one null campaign).
/// - `bad_clicks` (json, 2 partitions): partition 1 offset 1 has a string ad_id; offset 2 lacks
///   user_id.
/// - `bad_rows` (binary, 1 partition): offset 1 is truncated.
/// - `notes` (no schema): not a table.
pub fn build() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    topic(&log, "clicks", 4, Some(CLICK_SCHEMA), "binary");
    topic(&log, "clicks_json", 4, Some(CLICK_SCHEMA), "json");
    topic(
        &log,
        "ads",
        1,
        Some("ad_id BIGINT, campaign VARCHAR, budget DOUBLE"),
        "json",
    );
    topic(&log, "bad_clicks", 2, Some(CLICK_SCHEMA), "json");
    topic(&log, "bad_rows", 1, Some(CLICK_SCHEMA), "binary");
    topic(&log, "notes", 1, None, "json");
    let producer = Producer::new(
        &log,
        ProducerConfig {
            linger_ms: 0,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    let schema: Schema = CLICK_SCHEMA.parse().unwrap();
    for i in 0..CLICKS {
        let ad = 1 + i % 5;
        let ts = T0 + i * 1000;
        let json = serde_json::json!({"ad_id": ad, "user_id": 100 + i % 7, "ts": ts});
        let binary = schema.encode(&json).unwrap();
        let text = json.to_string();
        let key = ad.to_string();
        let p = (i % 4) as i32;
        for (t, value) in [
            ("clicks", binary.as_slice()),
            ("clicks_json", text.as_bytes()),
        ] {
            producer
                .send(
                    ProducerRecord::new(t, value)
                        .key(key.as_bytes())
                        .partition(p)
                        .timestamp(ts),
                )
                .unwrap();
        }
        if i % 5 == 4 {
            producer.flush().unwrap();
        }
    }
    let ads = [
        r#"{"ad_id": 1, "campaign": "spring", "budget": 100.0}"#,
        r#"{"ad_id": 2, "campaign": "spring", "budget": 250.5}"#,
        r#"{"ad_id": 3, "campaign": "summer", "budget": 80}"#,
        r#"{"ad_id": 4, "campaign": "autumn", "budget": 10.25}"#,
        r#"{"ad_id": 5, "campaign": null, "budget": 0.0}"#,
    ];
    for a in ads {
        producer
            .send(ProducerRecord::new("ads", a.as_bytes()).timestamp(T0))
            .unwrap();
    }
    let bad = [
        (0, r#"{"ad_id": 1, "user_id": 1, "ts": 1}"#),
        (1, r#"{"ad_id": 1, "user_id": 1, "ts": 1}"#),
        (1, r#"{"ad_id": "seven", "user_id": 1, "ts": 1}"#),
        (1, r#"{"ad_id": 7, "ts": 1}"#),
    ];
    for (p, v) in bad {
        producer
            .send(
                ProducerRecord::new("bad_clicks", v.as_bytes())
                    .partition(p)
                    .timestamp(T0),
            )
            .unwrap();
    }
    let good = schema
        .encode(&serde_json::json!({"ad_id": 1, "user_id": 2, "ts": 3}))
        .unwrap();
    for v in [&good[..], &good[..10]] {
        producer
            .send(ProducerRecord::new("bad_rows", v).timestamp(T0))
            .unwrap();
    }
    producer
        .send(ProducerRecord::new("notes", b"free text").timestamp(T0))
        .unwrap();
    producer.flush().unwrap();
    producer.close().unwrap();
    Fixture { log, _dir: dir }
}
