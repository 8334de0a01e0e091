//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions (refused), DeleteRecords,
//! and DescribeConfigs and IncrementalAlterConfigs for the topic settings weir has, under
//! Kafka's config names (one mapping, [`set_config`] and [`config_entries`], for all three).

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, TopicName,
};
use weir_log::{Error, TopicConfig, ValueFormat};

use super::metadata::is_internal;
use super::{Ctx, text};
use crate::auth::acl::Operation;
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
            let outcome = ctx
                .check_topic(Operation::Create, &name.0)
                .and_then(|()| topic_config(ctx, &topic))
                .and_then(|config| {
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
        "max.message.bytes" => {
            // Kafka's limit is on a batch; a record can be no larger than its batch, so the
            // record limit follows (from its default, so the value alone decides it: setting the
            // default back restores both).
            config.batch_bytes_max = parse(key, value)?;
            config.record_bytes_max = TopicConfig::default()
                .record_bytes_max
                .min(config.batch_bytes_max);
        }
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
                ctx.check_topic(Operation::Delete, &name.0).and_then(|()| {
                    log.delete_topic(&name.0)
                        .map_err(|e| (error_code(&e), e.to_string()))
                })
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
                RESOURCE_TOPIC => {
                    match ctx.check_topic(Operation::Describe, &resource.resource_name) {
                        Err((err, message)) => result
                            .with_error_code(err)
                            .with_error_message(Some(text(message))),
                        Ok(()) => match log.topic_config(&resource.resource_name) {
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
                    }
                }
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

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub(crate) fn incremental_alter_configs(
    ctx: &Ctx<'_>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let log = &ctx.shared.log;
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let response = AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let name = resource.resource_name.as_str();
            let outcome = match resource.resource_type {
                RESOURCE_TOPIC if is_internal(name) => Err((
                    code(KafkaCode::InvalidTopicException),
                    format!("'{name}' is internal to weir: its settings are weir's"),
                )),
                RESOURCE_TOPIC => ctx
                    .check_topic(Operation::Alter, name)
                    .and_then(|()| {
                        log.topic_config(name)
                            .map_err(|e| (error_code(&e), e.to_string()))
                    })
                    .and_then(|current| altered_config(current, &resource.configs))
                    .and_then(|config| {
                        let applied = if request.validate_only {
                            log.check_topic_config_change(name, &config)
                        } else {
                            log.alter_topic_config(name, config)
                        };
                        applied.map_err(|e| (error_code(&e), e.to_string()))
                    }),
                RESOURCE_BROKER => Err((
                    code(KafkaCode::InvalidRequest),
                    "weir serve has no broker configs that can be altered; topic configs can"
                        .to_string(),
                )),
                other => Err((
                    code(KafkaCode::InvalidRequest),
                    format!("resource type {other} is not supported: only topics (2)"),
                )),
            };
            match outcome {
                Ok(()) => response,
                Err((err, message)) => response
                    .with_error_code(err)
                    .with_error_message(Some(text(message))),
            }
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// `current` with a resource's operations applied, in order, through the same mapping as
/// CreateTopics; the code and message refusing them otherwise. DELETE sets the default back;
/// APPEND and SUBTRACT apply to the one list config weir has, `cleanup.policy`, and must leave
/// exactly one policy (weir has no `compact,delete`).
fn altered_config(
    current: TopicConfig,
    ops: &[AlterableConfig],
) -> Result<TopicConfig, (i16, String)> {
    let invalid = |reason: String| (code(KafkaCode::InvalidConfig), reason);
    let mut seen: Vec<&str> = Vec::with_capacity(ops.len());
    for op in ops {
        let key = op.name.as_str();
        if seen.contains(&key) {
            return Err((
                code(KafkaCode::InvalidRequest),
                format!("config '{key}' appears twice in one resource"),
            ));
        }
        seen.push(key);
    }
    let defaults = config_entries(&TopicConfig::default());
    let mut config = current;
    for op in ops {
        let key = op.name.as_str();
        let value = op.value.as_ref().map(|v| v.as_str());
        match op.config_operation {
            OP_SET => set_config(&mut config, key, value.unwrap_or("")).map_err(invalid)?,
            OP_DELETE => {
                let default = defaults
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or("", |(_, v)| v.as_str());
                set_config(&mut config, key, default).map_err(invalid)?;
            }
            OP_APPEND | OP_SUBTRACT if key == "cleanup.policy" => {
                let mut policies = vec![if config.compacted {
                    "compact"
                } else {
                    "delete"
                }];
                for item in value.unwrap_or("").split(',').map(str::trim) {
                    if item.is_empty() {
                        continue;
                    }
                    if op.config_operation == OP_APPEND {
                        if !policies.contains(&item) {
                            policies.push(item);
                        }
                    } else {
                        policies.retain(|p| *p != item);
                    }
                }
                let [policy] = policies.as_slice() else {
                    return Err(invalid(format!(
                        "cleanup.policy would be '{}': weir has one policy per topic, 'compact' or 'delete'",
                        policies.join(",")
                    )));
                };
                set_config(&mut config, key, policy).map_err(invalid)?;
            }
            OP_APPEND | OP_SUBTRACT => {
                let known = key == "weir.schema" || defaults.iter().any(|(k, _)| *k == key);
                return Err(invalid(if known {
                    format!(
                        "config '{key}' is not a list: APPEND and SUBTRACT apply to list configs only"
                    )
                } else {
                    format!("config '{key}' is not supported by weir")
                }));
            }
            other => {
                return Err((
                    code(KafkaCode::InvalidRequest),
                    format!(
                        "config operation {other} is unknown (0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT)"
                    ),
                ));
            }
        }
    }
    Ok(config)
}

pub(crate) fn delete_records(
    ctx: &Ctx<'_>,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let log = &ctx.shared.log;
    // Every partition is done before the response: timeout_ms (how long the client would wait
    // for replicas) has nothing to bound here.
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.as_str();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    let deleted = if is_internal(name) {
                        Err(code(KafkaCode::InvalidTopicException))
                    } else if let Err((err, _)) = ctx.check_topic(Operation::Delete, name) {
                        Err(err)
                    } else {
                        log.delete_records(name, p.partition_index, p.offset)
                            .map_err(|e| error_code(&e))
                    };
                    match deleted {
                        Ok(low_watermark) => result.with_low_watermark(low_watermark),
                        Err(err) => result.with_low_watermark(-1).with_error_code(err),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
