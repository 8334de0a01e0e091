//! weir's topic settings as Kafka topic configs, and back: what `weir topic create
//! --bootstrap` sends, and what a job, a query or the command line reads of a cluster's topic.
//!
//! Kafka's own configs carry what both sides have (compaction, retention, segment size, the
//! largest batch). weir's schema and value format travel as configs of weir's own
//! ([`WEIR_SCHEMA`], [`WEIR_VALUE_FORMAT`]), which `weir serve` keeps and other clusters may
//! refuse; a topic without them is JSON without a schema.

use std::collections::BTreeMap;

use weir_client::{Admin, TopicDescription};
use weir_log::{TopicConfig, ValueFormat};

/// Kafka's `cleanup.policy` (`compact`, `delete`, or both).
pub const CLEANUP_POLICY: &str = "cleanup.policy";
/// Kafka's `retention.ms` (-1: no limit).
pub const RETENTION_MS: &str = "retention.ms";
/// Kafka's `retention.bytes` (-1: no limit).
pub const RETENTION_BYTES: &str = "retention.bytes";
/// Kafka's `segment.bytes`.
pub const SEGMENT_BYTES: &str = "segment.bytes";
/// Kafka's `max.message.bytes`: the largest batch a topic accepts.
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
/// weir's own: the topic's value schema (`weir topic create --schema`).
pub const WEIR_SCHEMA: &str = "weir.schema";
/// weir's own: how values are stored, `json` (the default) or `binary`.
pub const WEIR_VALUE_FORMAT: &str = "weir.value.format";

/// Why a cluster's topic has no settings weir can use.
#[derive(Debug, thiserror::Error)]
pub enum TopicConfigError {
    /// The cluster did not answer, or does not know the topic ([`weir_client::Error::UnknownTopic`]).
    #[error(transparent)]
    Client(#[from] weir_client::Error),
    /// A config holds a value weir cannot read.
    #[error("topic '{topic}': config {name}: {reason}")]
    Invalid {
        /// The topic.
        topic: String,
        /// The config.
        name: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
}

/// The Kafka topic configs that say what `config` says; `with_weir` adds weir's own (schema,
/// value format), which only some clusters accept.
pub fn kafka_configs(config: &TopicConfig, with_weir: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut set = |k: &str, v: String| out.push((k.to_string(), v));
    if config.compacted {
        set(CLEANUP_POLICY, "compact".into());
    }
    // -1: no limit (Kafka's spelling of weir's `None`).
    set(
        RETENTION_MS,
        config.retention_ms.map_or("-1".into(), |ms| ms.to_string()),
    );
    if let Some(b) = config.retention_bytes {
        set(RETENTION_BYTES, b.to_string());
    }
    if with_weir {
        out.extend(weir_configs(config));
    }
    out
}

/// weir's own configs for `config`: its schema, and its value format unless JSON.
pub fn weir_configs(config: &TopicConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(schema) = &config.schema {
        out.push((WEIR_SCHEMA.to_string(), schema.clone()));
    }
    if config.format != ValueFormat::Json {
        out.push((WEIR_VALUE_FORMAT.to_string(), config.format.to_string()));
    }
    out
}

/// Whether `config` needs weir's own topic configs (a schema or a value format other than
/// JSON).
pub fn needs_weir_configs(config: &TopicConfig) -> bool {
    config.schema.is_some() || config.format != ValueFormat::Json
}

/// A topic's settings as weir sees them, from a cluster's description of it.
pub fn topic_config(d: &TopicDescription) -> Result<TopicConfig, TopicConfigError> {
    settings_of(&d.name, d.partitions.len() as i32, &d.configs)
}

/// A topic's settings, asked of the cluster (its partitions and configs, no offsets).
pub fn fetch_topic_config(admin: &Admin, topic: &str) -> Result<TopicConfig, TopicConfigError> {
    let partitions = admin.partitions(topic)?.len() as i32;
    settings_of(topic, partitions, &admin.topic_configs(topic)?)
}

/// How a topic stores its values, from its configs: JSON unless `weir.value.format` says
/// otherwise.
pub fn value_format(
    topic: &str,
    configs: &BTreeMap<String, String>,
) -> Result<ValueFormat, TopicConfigError> {
    match configs.get(WEIR_VALUE_FORMAT) {
        None => Ok(ValueFormat::Json),
        Some(f) => f.parse().map_err(|e| TopicConfigError::Invalid {
            topic: topic.to_string(),
            name: WEIR_VALUE_FORMAT,
            reason: format!("{e}"),
        }),
    }
}

/// What the cluster does not report keeps weir's default.
fn settings_of(
    topic: &str,
    partitions: i32,
    c: &BTreeMap<String, String>,
) -> Result<TopicConfig, TopicConfigError> {
    let defaults = TopicConfig::default();
    let number = |name: &'static str| -> Result<Option<i64>, TopicConfigError> {
        match c.get(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| TopicConfigError::Invalid {
                    topic: topic.to_string(),
                    name,
                    reason: format!("not a number: '{v}'"),
                }),
        }
    };
    Ok(TopicConfig {
        partitions,
        compacted: c
            .get(CLEANUP_POLICY)
            .is_some_and(|p| p.split(',').any(|p| p.trim() == "compact")),
        retention_ms: match number(RETENTION_MS)? {
            None => defaults.retention_ms,
            Some(ms) if ms < 0 => None,
            Some(ms) => Some(ms),
        },
        retention_bytes: match number(RETENTION_BYTES)? {
            Some(b) if b >= 0 => Some(b as u64),
            _ => None,
        },
        segment_bytes_max: number(SEGMENT_BYTES)?
            .map_or(defaults.segment_bytes_max, |b| b.max(0) as u64),
        // Kafka's max.message.bytes bounds a batch; weir's per-record bound has no Kafka name
        // and keeps its default.
        batch_bytes_max: number(MAX_MESSAGE_BYTES)?
            .map_or(defaults.batch_bytes_max, |b| b.max(0) as usize),
        schema: c.get(WEIR_SCHEMA).cloned(),
        format: value_format(topic, c)?,
        ..defaults
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_kafka_configs() {
        let config = TopicConfig {
            partitions: 3,
            compacted: true,
            retention_ms: None,
            retention_bytes: Some(1 << 30),
            schema: Some("id BIGINT".into()),
            format: ValueFormat::Binary,
            ..TopicConfig::default()
        };
        let configs: BTreeMap<String, String> = kafka_configs(&config, true).into_iter().collect();
        assert_eq!(configs[CLEANUP_POLICY], "compact");
        assert_eq!(configs[RETENTION_MS], "-1");
        let d = TopicDescription {
            name: "t".into(),
            partitions: (0..3)
                .map(|p| weir_client::PartitionOffsets {
                    partition: p,
                    leader: 1,
                    log_start_offset: 0,
                    high_watermark: 0,
                    last_stable_offset: 0,
                })
                .collect(),
            configs,
        };
        assert_eq!(topic_config(&d).unwrap(), config);
        assert!(
            !kafka_configs(&config, false)
                .iter()
                .any(|(k, _)| k.starts_with("weir."))
        );
    }

    #[test]
    fn a_config_that_is_not_a_number_is_named() {
        let configs = BTreeMap::from([(RETENTION_MS.to_string(), "soon".to_string())]);
        let e = settings_of("t", 1, &configs).unwrap_err();
        assert_eq!(
            e.to_string(),
            "topic 't': config retention.ms: not a number: 'soon'"
        );
    }
}
