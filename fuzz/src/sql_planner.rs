//! The continuous-query planner ([`ContinuousPlan::new`]) on arbitrary SQL text: parsing, the
//! checks of the windowed `GROUP BY` shape, and DataFusion's planning and compilation of the
//! filter, group and aggregate expressions, against a catalog of a JSON source, a JSON target
//! and a binary target. Nothing runs: a plan reads topic settings and nothing else.
//!
//! Oracle: an error or a plan, never a panic, a hang or a huge allocation; and a plan names the
//! topics of the catalog.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use weir_log::{TopicConfig, ValueFormat};
use weir_sql::continuous::{ContinuousConfig, ContinuousPlan, target_topic};

fn catalog() -> &'static (BTreeMap<String, TopicConfig>, ContinuousConfig) {
    static CATALOG: OnceLock<(BTreeMap<String, TopicConfig>, ContinuousConfig)> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let topic = |schema: &str, format| TopicConfig {
            schema: Some(schema.to_string()),
            format,
            ..TopicConfig::default()
        };
        let topics = BTreeMap::from([
            (
                "clicks".to_string(),
                topic(
                    "ad_id BIGINT, user_id BIGINT, ts TIMESTAMP, price DOUBLE, ok BOOLEAN, page VARCHAR, n INT",
                    ValueFormat::Json,
                ),
            ),
            (
                "out".to_string(),
                TopicConfig {
                    format: ValueFormat::Json,
                    ..TopicConfig::default()
                },
            ),
            (
                "outb".to_string(),
                topic(
                    "ad_id BIGINT, window_start BIGINT, window_end BIGINT, clicks BIGINT",
                    ValueFormat::Binary,
                ),
            ),
        ]);
        (topics, ContinuousConfig::new("fuzz"))
    })
}

/// Plans `data` as SQL text (inputs that are not UTF-8 are skipped: the caller's text is a
/// `&str`).
pub fn run(data: &[u8]) {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let (topics, config) = catalog();
    let _ = target_topic(sql);
    if let Ok(plan) = ContinuousPlan::new(topics, sql, config) {
        assert!(
            topics.contains_key(plan.source()),
            "the source is a topic of the catalog"
        );
        assert!(
            topics.contains_key(plan.target()),
            "the target is a topic of the catalog"
        );
    }
}
