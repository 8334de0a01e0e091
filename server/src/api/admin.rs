//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions (refused), and
//! DescribeConfigs for the topic settings weir has, under Kafka's config names.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    TopicName,
};
use weir_log::{Error, TopicConfig, ValueFormat};

use super::metadata::is_internal;
use super::{Ctx, text};
use crate::errors::{KafkaCode, code, error_code};

/// DescribeConfigs resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// DescribeConfigs config sources.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

pub(crate) fn create_topics(ctx: &Ctx<'_>, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let log = &ctx.shared.log;
    let version = ctx.version;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.clone();
            let result = CreatableTopicResult::default().with_name(name.clone());
            let outcome = topic_config(ctx, &topic).and_then(|config| {
                if request.validate_only {
                    weir_log::validate_topic_name(&name.0)
                        .map_err(|e| (error_code_for_create(&e), e.to_string()))?;
                    if log.partition_count(&name.0).is_ok() {
                        let e = Error::TopicExists(name.0.to_string());
                        return Err((error_code(&e), e.to_string()));
                    }
                    return Ok(config);
                }
                log.create_topic(&name.0, config.clone())
                    .map(|()| config)
                    .map_err(|e| (error_code_for_create(&e), e.to_string()))
            });
            match outcome {
                Ok(config) if version >= 5 => result
                    .with_num_partitions(config.partitions)
                    .with_replication_factor(1)
                    .with_configs(Some(Vec::new())),
                Ok(_) => result,
                Err((err, message)) => {
                    let result = result.with_error_code(err);
                    let result = if version >= 1 {
                        result.with_error_message(Some(text(message)))
                    } else {
                        result
                    };
                    if version >= 5 {
                        result.with_num_partitions(-1).with_replication_factor(-1)
                    } else {
                        result
                    }
                }
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

/// A bad name is INVALID_TOPIC_EXCEPTION to a client, not a config error.
fn error_code_for_create(e: &Error) -> i16 {
    match e {
        Error::Config { field, .. } if field == "topic" || field == "name" => {
            code(KafkaCode::InvalidTopicException)
        }
        e => error_code(e),
    }
}

/// The log's settings for a CreateTopics entry, or the code and message refusing it.
fn topic_config(ctx: &Ctx<'_>, topic: &CreatableTopic) -> Result<TopicConfig, (i16, String)> {
    let name = topic.name.0.as_str();
    if is_internal(name) {
        return Err((
            code(KafkaCode::InvalidTopicException),
            format!("'{name}': names starting with '__' or '@' are weir's own"),
        ));
    }
    if weir_log::validate_topic_name(name).is_err() {
        return Err((
            code(KafkaCode::InvalidTopicException),
            format!("'{name}' is not a valid topic name"),
        ));
    }
    if !matches!(topic.replication_factor, -1 | 1) {
        return Err((
            code(KafkaCode::InvalidReplicationFactor),
            format!(
                "replication factor {} asked, but weir serve is one broker (use -1 or 1)",
                topic.replication_factor
            ),
        ));
    }
    if !topic.assignments.is_empty() {
        return Err((
            code(KafkaCode::InvalidReplicaAssignment),
            "weir serve is one broker: manual replica assignments mean nothing here".into(),
        ));
    }
    let mut config = TopicConfig {
        partitions: if topic.num_partitions == -1 {
            ctx.shared.config.default_partitions
        } else {
            topic.num_partitions
        },
        ..TopicConfig::default()
    };
    if config.partitions <= 0 {
        return Err((
            code(KafkaCode::InvalidPartitions),
            format!("{} partitions asked; at least 1", topic.num_partitions),
        ));
    }
    for entry in &topic.configs {
        let value = entry.value.as_ref().map(|v| v.as_str()).unwrap_or("");
        set_config(&mut config, entry.name.as_str(), value)
            .map_err(|reason| (code(KafkaCode::InvalidConfig), reason))?;
    }
    Ok(config)
}

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{key}: '{value}' is not a valid number"))
}

/// Applies one Kafka topic config to weir's settings. `weir.schema` and `weir.value.format`
/// carry what `weir topic create --schema/--format` sets, so weir's own CLI can create the
/// same topics over the protocol.
fn set_config(config: &mut TopicConfig, key: &str, value: &str) -> Result<(), String> {
    match key {
        "cleanup.policy" => {
            config.compacted = match value {
                "compact" => true,
                "delete" => false,
                other => {
                    return Err(format!(
                        "cleanup.policy '{other}' is not supported: 'compact' or 'delete'"
                    ));
                }
            }
        }
        "retention.ms" => {
            let ms: i64 = parse(key, value)?;
            config.retention_ms = (ms >= 0).then_some(ms);
        }
        "retention.bytes" => {
            let bytes: i64 = parse(key, value)?;
            config.retention_bytes = u64::try_from(bytes).ok();
        }
        "segment.bytes" => config.segment_bytes_max = parse(key, value)?,
        "segment.ms" => config.segment_age_ms_max = parse(key, value)?,
        "delete.retention.ms" => config.delete_retention_ms = parse(key, value)?,
        "max.message.bytes" => config.batch_bytes_max = parse(key, value)?,
        "weir.schema" => config.schema = (!value.is_empty()).then(|| value.to_string()),
        "weir.value.format" => {
            config.format = match value {
                "json" => ValueFormat::Json,
                "binary" => ValueFormat::Binary,
                other => return Err(format!("weir.value.format '{other}': 'json' or 'binary'")),
            }
        }
        other => return Err(format!("config '{other}' is not supported by weir")),
    }
    Ok(())
}

/// A topic's settings under Kafka's names (and weir's own for schema and format).
fn config_entries(config: &TopicConfig) -> Vec<(&'static str, String)> {
    let mut entries = vec![
        (
            "cleanup.policy",
            if config.compacted {
                "compact"
            } else {
                "delete"
            }
            .to_string(),
        ),
        (
            "retention.ms",
            config.retention_ms.unwrap_or(-1).to_string(),
        ),
        (
            "retention.bytes",
            config.retention_bytes.map_or(-1, |b| b as i64).to_string(),
        ),
        ("segment.bytes", config.segment_bytes_max.to_string()),
        ("segment.ms", config.segment_age_ms_max.to_string()),
        (
            "delete.retention.ms",
            config.delete_retention_ms.to_string(),
        ),
        ("max.message.bytes", config.batch_bytes_max.to_string()),
        (
            "weir.value.format",
            match config.format {
                ValueFormat::Json => "json",
                ValueFormat::Binary => "binary",
            }
            .to_string(),
        ),
    ];
    if let Some(schema) = &config.schema {
        entries.push(("weir.schema", schema.clone()));
    }
    entries
}

pub(crate) fn delete_topics(ctx: &Ctx<'_>, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let log = &ctx.shared.log;
    let names: Vec<TopicName> = if ctx.version >= 6 {
        request.topics.into_iter().filter_map(|t| t.name).collect()
    } else {
        request.topic_names
    };
    let responses = names
        .into_iter()
        .map(|name| {
            let result = DeletableTopicResult::default().with_name(Some(name.clone()));
            let outcome = if is_internal(&name.0) {
                Err((
                    code(KafkaCode::InvalidTopicException),
                    format!("'{}' is internal to weir", &*name.0),
                ))
            } else {
                log.delete_topic(&name.0)
                    .map_err(|e| (error_code(&e), e.to_string()))
            };
            match outcome {
                Ok(()) => result,
                Err((err, message)) if ctx.version >= 5 => result
                    .with_error_code(err)
                    .with_error_message(Some(text(message))),
                Err((err, _)) => result.with_error_code(err),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

pub(crate) fn create_partitions(
    _ctx: &Ctx<'_>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let results = request
        .topics
        .into_iter()
        .map(|topic| {
            CreatePartitionsTopicResult::default()
                .with_name(topic.name)
                .with_error_code(code(KafkaCode::InvalidPartitions))
                .with_error_message(Some(text(
                    "weir fixes a topic's partition count at creation: adding partitions would move keys \
                     to other partitions and break per-key order; create a new topic instead",
                )))
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

pub(crate) fn describe_configs(
    ctx: &Ctx<'_>,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let log = &ctx.shared.log;
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let wanted = |key: &str| {
                resource
                    .configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == key))
            };
            match resource.resource_type {
                RESOURCE_TOPIC => match log.topic_config(&resource.resource_name) {
                    Ok(config) => {
                        let defaults = config_entries(&TopicConfig {
                            partitions: config.partitions,
                            ..TopicConfig::default()
                        });
                        let configs = config_entries(&config)
                            .into_iter()
                            .filter(|(k, _)| wanted(k))
                            .map(|(k, v)| {
                                let is_default =
                                    defaults.iter().any(|(dk, dv)| *dk == k && *dv == v);
                                DescribeConfigsResourceResult::default()
                                    .with_name(text(k))
                                    .with_value(Some(text(v)))
                                    .with_config_source(if is_default {
                                        SOURCE_DEFAULT
                                    } else {
                                        SOURCE_TOPIC
                                    })
                            })
                            .collect();
                        result.with_configs(configs)
                    }
                    Err(e) => result
                        .with_error_code(error_code(&e))
                        .with_error_message(Some(text(e.to_string()))),
                },
                // The one broker has no settings a client can read; an empty list, as a broker
                // with everything at defaults and nothing exposed.
                RESOURCE_BROKER => result,
                other => result
                    .with_error_code(code(KafkaCode::InvalidRequest))
                    .with_error_message(Some(text(format!(
                        "resource type {other} is not supported"
                    )))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
