//! Commands as Kafka clients: the cluster from `--bootstrap` or `$WEIR_BOOTSTRAP`, and weir's
//! topic settings as Kafka topic configs (and back).

use std::collections::BTreeMap;

use anyhow::Result;
use weir::log::{TopicConfig, ValueFormat};
use weir_client::{Admin, ClientConfig, Error as ClientError, TopicDescription};

use super::usage;

const BOOTSTRAP_ENV: &str = "WEIR_BOOTSTRAP";

/// Kafka's names for the topic settings weir has.
pub const CLEANUP_POLICY: &str = "cleanup.policy";
pub const RETENTION_MS: &str = "retention.ms";
pub const RETENTION_BYTES: &str = "retention.bytes";
pub const SEGMENT_BYTES: &str = "segment.bytes";
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
/// weir's own settings, for clusters that keep topic configs they do not know.
pub const WEIR_SCHEMA: &str = "weir.schema";
pub const WEIR_VALUE_FORMAT: &str = "weir.value.format";

/// The cluster to talk to, if `--bootstrap` or `$WEIR_BOOTSTRAP` names one; a bad list is a
/// usage error.
pub fn resolve(flag: Option<String>) -> Result<Option<ClientConfig>> {
    let chosen = flag.or_else(|| std::env::var(BOOTSTRAP_ENV).ok().filter(|v| !v.is_empty()));
    let Some(bootstrap) = chosen else {
        return Ok(None);
    };
    if let Err(ClientError::Config { reason, .. }) = weir_client::parse_bootstrap(&bootstrap) {
        usage!("--bootstrap: {reason}");
    }
    Ok(Some(ClientConfig::new(bootstrap)))
}

/// The Kafka topic configs that say what `config` says; `with_weir` adds weir's own
/// (schema, value format), which only some clusters accept.
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
        if let Some(schema) = &config.schema {
            set(WEIR_SCHEMA, schema.clone());
        }
        if config.format != ValueFormat::Json {
            set(WEIR_VALUE_FORMAT, config.format.to_string());
        }
    }
    out
}

/// Whether `config` needs weir's own topic configs (a schema or a value format other than
/// JSON).
pub fn needs_weir_configs(config: &TopicConfig) -> bool {
    config.schema.is_some() || config.format != ValueFormat::Json
}

/// A topic's settings as weir sees them, from a cluster's description of it.
pub fn topic_config(d: &TopicDescription) -> Result<TopicConfig> {
    settings_of(&d.name, d.partitions.len() as i32, &d.configs)
}

/// A topic's settings, asked of the cluster (its partitions and configs, no offsets).
pub fn fetch_topic_config(admin: &Admin, topic: &str) -> Result<TopicConfig> {
    let partitions = admin.partitions(topic)?.len() as i32;
    settings_of(topic, partitions, &admin.topic_configs(topic)?)
}

/// A cluster's topics as the SQL planner sees them: their settings from the topic configs.
pub struct ClusterCatalog(pub Admin);

impl weir::sql::continuous::TopicCatalog for ClusterCatalog {
    fn topic_config(&self, topic: &str) -> weir::log::Result<TopicConfig> {
        match fetch_topic_config(&self.0, topic) {
            Ok(config) => Ok(config),
            Err(e) => match e.downcast_ref::<ClientError>() {
                Some(ClientError::UnknownTopic { .. }) => {
                    Err(weir::log::Error::UnknownTopic(topic.to_string()))
                }
                _ => Err(weir::log::Error::Config {
                    field: format!("topic '{topic}'"),
                    reason: format!("{e:#}"),
                }),
            },
        }
    }
}

/// What the cluster does not report keeps weir's default.
fn settings_of(topic: &str, partitions: i32, c: &BTreeMap<String, String>) -> Result<TopicConfig> {
    let defaults = TopicConfig::default();
    let number = |name: &str| -> Result<Option<i64>> {
        match c.get(name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                anyhow::anyhow!("topic '{topic}': config {name} is not a number: '{v}'")
            }),
        }
    };
    let format = match c.get(WEIR_VALUE_FORMAT) {
        None => ValueFormat::Json,
        Some(f) => f
            .parse()
            .map_err(|e| anyhow::anyhow!("topic '{topic}': {WEIR_VALUE_FORMAT}: {e}"))?,
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
        format,
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
}
