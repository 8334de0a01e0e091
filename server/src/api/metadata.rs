//! Where things are: ApiVersions, Metadata, FindCoordinator. weir serve is a cluster of one
//! broker (node 0), the leader of every partition and the coordinator of every group and
//! transactional id.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, BrokerId, FindCoordinatorRequest,
    FindCoordinatorResponse, MetadataRequest, MetadataResponse, TopicName,
};
use weir_log::{Error, TopicConfig};

use super::{Ctx, served_apis, text};
use crate::Shared;
use crate::auth::acl::Operation;
use crate::errors::{KafkaCode, code, error_code};

/// The one broker's id.
pub(crate) const NODE_ID: i32 = 0;
/// What Metadata calls this cluster.
const CLUSTER_ID: &str = "weir";

fn api_keys(shared: &Shared) -> Vec<ApiVersion> {
    served_apis(shared)
        .map(|(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

pub(crate) fn api_versions(ctx: &Ctx<'_>, _request: ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys(ctx.shared))
}

/// The answer to an ApiVersions request of a version this server does not know (sent as v0).
pub(crate) fn api_versions_unsupported(shared: &Shared) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(code(KafkaCode::UnsupportedVersion))
        .with_api_keys(api_keys(shared))
}

/// Topics whose names the log reserves for itself: listed as internal, never auto-created,
/// never written or changed by clients. As in Kafka, these are the group and transaction
/// coordinators' topics (and the `@` names of the log's own files); other `__` names are
/// ordinary topics, such as the `__weir_state` topic weir's jobs keep their state in.
pub(crate) fn is_internal(topic: &str) -> bool {
    topic == weir_log::OFFSETS_TOPIC || topic == weir_log::txn::TXN_TOPIC || topic.starts_with('@')
}

pub(crate) fn metadata(ctx: &Ctx<'_>, request: MetadataRequest) -> MetadataResponse {
    let log = &ctx.shared.log;
    let version = ctx.version;
    // v0: an empty list means every topic; v1+: null means every topic.
    let wanted: Option<Vec<String>> = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .filter_map(|t| t.name.map(|n| n.0.to_string()))
                .collect(),
        ),
    };
    let auto_create =
        ctx.shared.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    let all = wanted.is_none();
    let names = match wanted {
        Some(names) => names,
        // Every topic: only those the principal may describe, as Kafka lists them.
        None => log
            .topic_names()
            .into_iter()
            .filter(|t| ctx.topic_allowed(Operation::Describe, t))
            .collect(),
    };
    let mut topics = Vec::with_capacity(names.len());
    for name in names {
        if !all && !ctx.topic_allowed(Operation::Describe, &name) {
            topics.push(
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(text(name))))
                    .with_error_code(code(KafkaCode::TopicAuthorizationFailed)),
            );
            continue;
        }
        if auto_create
            && !is_internal(&name)
            && ctx.topic_allowed(Operation::Create, &name)
            && log.partition_count(&name).is_err()
        {
            let config = TopicConfig {
                partitions: ctx.shared.config.default_partitions,
                ..TopicConfig::default()
            };
            match log.create_topic(&name, config) {
                Ok(()) | Err(Error::TopicExists(_)) => {}
                Err(e) => eprintln!("weir serve: auto-creating topic '{name}': {e}"),
            }
        }
        topics.push(topic_metadata(ctx, &name));
    }
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(NODE_ID))
        .with_host(text(ctx.shared.host.clone()))
        .with_port(ctx.shared.port);
    let mut response = MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_topics(topics);
    if version >= 1 {
        response = response.with_controller_id(BrokerId(NODE_ID));
    }
    if version >= 2 {
        response = response.with_cluster_id(Some(text(CLUSTER_ID)));
    }
    response
}

fn topic_metadata(ctx: &Ctx<'_>, name: &str) -> MetadataResponseTopic {
    let topic = MetadataResponseTopic::default().with_name(Some(TopicName(text(name))));
    let topic = if ctx.version >= 1 {
        topic.with_is_internal(is_internal(name))
    } else {
        topic
    };
    match ctx.shared.log.partition_count(name) {
        Ok(n) => topic.with_partitions(
            (0..n)
                .map(|p| {
                    MetadataResponsePartition::default()
                        .with_partition_index(p)
                        .with_leader_id(BrokerId(NODE_ID))
                        .with_replica_nodes(vec![BrokerId(NODE_ID)])
                        .with_isr_nodes(vec![BrokerId(NODE_ID)])
                })
                .collect(),
        ),
        Err(e) => topic.with_error_code(error_code(&e)),
    }
}

pub(crate) fn find_coordinator(
    ctx: &Ctx<'_>,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let host = text(ctx.shared.host.clone());
    let port = ctx.shared.port;
    // Key types: 0 group, 1 transaction; both live here. Anything else is refused, and so is
    // a key the principal may not describe.
    let refused_key = |key: &str| match request.key_type {
        0 => ctx
            .check_group(Operation::Describe, key)
            .err()
            .map(|(err, _)| err),
        1 => ctx
            .check_txn_id(Operation::Describe, key)
            .err()
            .map(|(err, _)| err),
        _ => Some(code(KafkaCode::InvalidRequest)),
    };
    if ctx.version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let refused = refused_key(&key);
                let c = Coordinator::default().with_key(key);
                match refused {
                    Some(err) => c
                        .with_error_code(err)
                        .with_node_id(BrokerId(-1))
                        .with_port(-1),
                    None => c
                        .with_node_id(BrokerId(NODE_ID))
                        .with_host(host.clone())
                        .with_port(port),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match refused_key(&request.key) {
        Some(err) => FindCoordinatorResponse::default()
            .with_error_code(err)
            .with_node_id(BrokerId(-1))
            .with_port(-1),
        None => FindCoordinatorResponse::default()
            .with_node_id(BrokerId(NODE_ID))
            .with_host(host)
            .with_port(port),
    }
}
