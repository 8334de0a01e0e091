//! The supported APIs and versions, and dispatch: a frame's header names the API and version;
//! the body is decoded with that version, handed to its family's handler, and the response
//! encoded with the same version behind a response header.
//!
//! Handlers are plain functions from a decoded request and the log to a response. They run in
//! request order on the connection's task (inside `block_in_place`, since log calls may wait
//! for a disk), as Kafka brokers process one connection's requests: a produce's append and the
//! next request's see each other in order. Only the waiting parts, a produce's fsync round and a
//! fetch's long poll, run beside later requests.

mod admin;
mod fetch;
mod groups;
mod metadata;
mod produce;
mod txn;

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

use crate::Shared;
use crate::auth::acl::{Acls, Operation, ResourceType};
use crate::auth::{self, Session};
use crate::connection::{ConnError, Pending};
use crate::errors::{KafkaCode, code};
use crate::memory::Pools;
use crate::reply::{Reply, ReplyBuf};

/// (API, lowest, highest version) served. Nothing is listed that is not implemented: no
/// KIP-848 consumer groups, no topic IDs (Produce/Fetch v13+), no `transaction.version` 2
/// (EndTxn v5, AddPartitionsToTxn v4+), no InitProducerId v6 (unstable in the spec).
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 6),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    // Served only with SASL on. SaslHandshake v0 (SASL tokens as raw frames after it) is not:
    // every client in use negotiates v1 and SaslAuthenticate.
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// The APIs this server serves with its settings, with their version ranges.
pub(crate) fn served_apis(shared: &Shared) -> impl Iterator<Item = (ApiKey, i16, i16)> + '_ {
    let sasl = shared.security.sasl();
    SUPPORTED.iter().copied().filter(move |(key, _, _)| {
        sasl || !matches!(key, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)
    })
}

/// The served version range of an API, if it is served at all.
pub(crate) fn served(shared: &Shared, key: ApiKey) -> Option<(i16, i16)> {
    served_apis(shared)
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (min, max))
}

/// What a handler gets besides its request.
pub(crate) struct Ctx<'a> {
    pub(crate) shared: &'a Arc<Shared>,
    pub(crate) version: i16,
    /// The client's self-chosen name (the request header's client id).
    pub(crate) client_id: &'a str,
    /// The client's address, as DescribeGroups reports members' hosts.
    pub(crate) peer: std::net::SocketAddr,
    /// Who the client authenticated as ([`crate::auth::ANONYMOUS`] without SASL).
    pub(crate) principal: &'a str,
    /// The ACLs in force for this request; `None`: everything is allowed.
    pub(crate) acls: Option<Arc<Acls>>,
    /// The connection's share of buffer bytes and the server's pool (fetch replies take from
    /// them).
    pub(crate) pools: &'a Pools,
}

impl Ctx<'_> {
    /// Whether this request's principal may do `op` on `kind`:`name`.
    pub(crate) fn allowed(&self, op: Operation, kind: ResourceType, name: &str) -> bool {
        self.acls
            .as_ref()
            .is_none_or(|acls| acls.allows(self.principal, op, kind, name))
    }

    pub(crate) fn topic_allowed(&self, op: Operation, topic: &str) -> bool {
        self.allowed(op, ResourceType::Topic, topic)
    }

    pub(crate) fn group_allowed(&self, op: Operation, group: &str) -> bool {
        self.allowed(op, ResourceType::Group, group)
    }

    /// TOPIC_AUTHORIZATION_FAILED with its message unless `op` on `topic` is allowed.
    pub(crate) fn check_topic(&self, op: Operation, topic: &str) -> Result<(), (i16, String)> {
        self.check(op, ResourceType::Topic, topic)
    }

    /// TOPIC_AUTHORIZATION_FAILED unless `op` is allowed on every topic of `offsets`.
    pub(crate) fn check_offset_topics(
        &self,
        op: Operation,
        offsets: &[(weir_log::TopicPartition, i64)],
    ) -> Result<(), (i16, String)> {
        offsets
            .iter()
            .try_for_each(|(tp, _)| self.check_topic(op, tp.topic()))
    }

    /// GROUP_AUTHORIZATION_FAILED with its message unless `op` on `group` is allowed.
    pub(crate) fn check_group(&self, op: Operation, group: &str) -> Result<(), (i16, String)> {
        self.check(op, ResourceType::Group, group)
    }

    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED unless `op` on the transactional id is allowed.
    pub(crate) fn check_txn_id(&self, op: Operation, id: &str) -> Result<(), (i16, String)> {
        self.check(op, ResourceType::TransactionalId, id)
    }

    fn check(&self, op: Operation, kind: ResourceType, name: &str) -> Result<(), (i16, String)> {
        if self.allowed(op, kind, name) {
            return Ok(());
        }
        let c = match kind {
            ResourceType::Topic => KafkaCode::TopicAuthorizationFailed,
            ResourceType::Group => KafkaCode::GroupAuthorizationFailed,
            ResourceType::TransactionalId => KafkaCode::TransactionalIdAuthorizationFailed,
        };
        Err((code(c), denied(self.principal, op, kind, name)))
    }
}

/// The message of an authorization failure.
pub(crate) fn denied(principal: &str, op: Operation, kind: ResourceType, name: &str) -> String {
    format!(
        "principal '{principal}' may not {} {} '{name}'",
        op.name(),
        kind.name()
    )
}

/// Decodes one frame and starts answering it.
pub(crate) fn dispatch(
    shared: &Arc<Shared>,
    peer: std::net::SocketAddr,
    session: &mut Session,
    pools: &Pools,
    mut frame: Bytes,
) -> Result<Pending, ConnError> {
    if frame.len() < 10 {
        return Err(ConnError::TooShort(frame.len() as i64));
    }
    let (api_key, version) = (frame.slice(0..2).get_i16(), frame.slice(2..4).get_i16());
    let Ok(key) = ApiKey::try_from(api_key) else {
        return Err(ConnError::UnknownApi(api_key));
    };
    let api = api_name(key);
    let served = served(shared, key);
    let in_range = served.is_some_and(|(min, max)| (min..=max).contains(&version));
    if !in_range {
        if key == ApiKey::ApiVersions {
            // KIP-511: a newer client than this server learns the supported range from a v0
            // answer carrying UNSUPPORTED_VERSION, and asks again.
            let correlation_id = frame.slice(4..8).get_i32();
            return Ok(Pending::Ready(Some(encode(
                correlation_id,
                0,
                api,
                &metadata::api_versions_unsupported(shared),
            )?)));
        }
        return Err(ConnError::UnsupportedVersion { api, version });
    }
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version))
        .map_err(|e| decode_error(api, version, e))?;
    let correlation_id = header.correlation_id;
    let client_id = header
        .client_id
        .as_ref()
        .map(StrBytes::as_str)
        .unwrap_or("");
    if !session.authenticated
        && !matches!(
            key,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        )
    {
        return Err(ConnError::Unauthenticated { api });
    }
    let reply = |response: &dyn ErasedEncode| response.encode_frame(correlation_id, version, api);
    match key {
        ApiKey::SaslHandshake => {
            let request =
                decode::<kafka_protocol::messages::SaslHandshakeRequest>(&mut frame, api, version)?;
            let response = auth::sasl_handshake(session, request);
            return Ok(Pending::Ready(Some(reply(&response)?)));
        }
        ApiKey::SaslAuthenticate => {
            let request = decode::<kafka_protocol::messages::SaslAuthenticateRequest>(
                &mut frame, api, version,
            )?;
            let response = tokio::task::block_in_place(|| {
                auth::sasl_authenticate(&shared.security, session, request)
            });
            return Ok(Pending::Ready(Some(reply(&response)?)));
        }
        _ => {}
    }
    let ctx = Ctx {
        shared,
        version,
        client_id,
        peer,
        principal: &session.principal,
        acls: shared.security.acls.as_ref().map(|a| a.current(false)),
        pools,
    };
    macro_rules! inline {
        ($req:ty, $handler:path) => {{
            let request = decode::<$req>(&mut frame, api, version)?;
            let response = tokio::task::block_in_place(|| $handler(&ctx, request));
            Ok(Pending::Ready(Some(encode(
                correlation_id,
                version,
                api,
                &response,
            )?)))
        }};
    }
    use kafka_protocol::messages as m;
    match key {
        ApiKey::ApiVersions => inline!(m::ApiVersionsRequest, metadata::api_versions),
        ApiKey::Metadata => inline!(m::MetadataRequest, metadata::metadata),
        ApiKey::FindCoordinator => inline!(m::FindCoordinatorRequest, metadata::find_coordinator),
        ApiKey::CreateTopics => inline!(m::CreateTopicsRequest, admin::create_topics),
        ApiKey::DeleteTopics => inline!(m::DeleteTopicsRequest, admin::delete_topics),
        ApiKey::CreatePartitions => inline!(m::CreatePartitionsRequest, admin::create_partitions),
        ApiKey::DescribeConfigs => inline!(m::DescribeConfigsRequest, admin::describe_configs),
        ApiKey::IncrementalAlterConfigs => inline!(
            m::IncrementalAlterConfigsRequest,
            admin::incremental_alter_configs
        ),
        ApiKey::DeleteRecords => inline!(m::DeleteRecordsRequest, admin::delete_records),
        ApiKey::ListOffsets => inline!(m::ListOffsetsRequest, fetch::list_offsets),
        ApiKey::JoinGroup => inline!(m::JoinGroupRequest, groups::join_group),
        ApiKey::SyncGroup => inline!(m::SyncGroupRequest, groups::sync_group),
        ApiKey::Heartbeat => inline!(m::HeartbeatRequest, groups::heartbeat),
        ApiKey::LeaveGroup => inline!(m::LeaveGroupRequest, groups::leave_group),
        ApiKey::OffsetCommit => inline!(m::OffsetCommitRequest, groups::offset_commit),
        ApiKey::OffsetFetch => inline!(m::OffsetFetchRequest, groups::offset_fetch),
        ApiKey::DescribeGroups => inline!(m::DescribeGroupsRequest, groups::describe_groups),
        ApiKey::ListGroups => inline!(m::ListGroupsRequest, groups::list_groups),
        ApiKey::DeleteGroups => inline!(m::DeleteGroupsRequest, groups::delete_groups),
        ApiKey::InitProducerId => inline!(m::InitProducerIdRequest, txn::init_producer_id),
        ApiKey::AddPartitionsToTxn => {
            inline!(m::AddPartitionsToTxnRequest, txn::add_partitions_to_txn)
        }
        ApiKey::AddOffsetsToTxn => inline!(m::AddOffsetsToTxnRequest, txn::add_offsets_to_txn),
        ApiKey::EndTxn => inline!(m::EndTxnRequest, txn::end_txn),
        ApiKey::TxnOffsetCommit => inline!(m::TxnOffsetCommitRequest, txn::txn_offset_commit),
        ApiKey::Produce => {
            let request = decode::<m::ProduceRequest>(&mut frame, api, version)?;
            Ok(produce::produce(&ctx, correlation_id, request))
        }
        ApiKey::Fetch => {
            let request = decode::<m::FetchRequest>(&mut frame, api, version)?;
            Ok(fetch::fetch(&ctx, correlation_id, request))
        }
        _ => Err(ConnError::UnsupportedVersion { api, version }),
    }
}

/// A response of any type, encoded behind its header.
trait ErasedEncode {
    fn encode_frame(
        &self,
        correlation_id: i32,
        version: i16,
        api: &'static str,
    ) -> Result<Bytes, ConnError>;
}

impl<R: Encodable + HeaderVersion> ErasedEncode for R {
    fn encode_frame(
        &self,
        correlation_id: i32,
        version: i16,
        api: &'static str,
    ) -> Result<Bytes, ConnError> {
        encode(correlation_id, version, api, self)
    }
}

fn decode<R: Decodable>(
    frame: &mut Bytes,
    api: &'static str,
    version: i16,
) -> Result<R, ConnError> {
    R::decode(frame, version).map_err(|e| decode_error(api, version, e))
}

fn decode_error(api: &'static str, version: i16, e: impl std::fmt::Display) -> ConnError {
    ConnError::Decode {
        api,
        version,
        reason: e.to_string(),
    }
}

/// One response frame: length, response header (its version follows the API's), body.
pub(crate) fn encode<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    api: &'static str,
    response: &R,
) -> Result<Bytes, ConnError> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    encode_into(&mut buf, correlation_id, version, api, response)?;
    let len = i32::try_from(buf.len() - 4).map_err(|e| encode_error(api, version, &e))?;
    buf[0..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// As [`encode`], into a frame that shares the response's large byte strings (a fetch's
/// records) rather than copying them.
pub(crate) fn encode_reply<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    api: &'static str,
    response: &R,
) -> Result<Reply, ConnError> {
    let mut buf = ReplyBuf::default();
    encode_into(&mut buf, correlation_id, version, api, response)?;
    buf.finish().map_err(|e| encode_error(api, version, &e))
}

/// The response header and body, after whatever `buf` holds.
fn encode_into<R: Encodable + HeaderVersion, B: ByteBufMut>(
    buf: &mut B,
    correlation_id: i32,
    version: i16,
    api: &'static str,
    response: &R,
) -> Result<(), ConnError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(buf, R::header_version(version))
        .map_err(|e| encode_error(api, version, &e))?;
    response
        .encode(buf, version)
        .map_err(|e| encode_error(api, version, &e))
}

fn encode_error(api: &'static str, version: i16, e: &dyn std::fmt::Display) -> ConnError {
    ConnError::Encode {
        api,
        version,
        reason: e.to_string(),
    }
}

fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::SaslAuthenticate => "SaslAuthenticate",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::AddPartitionsToTxn => "AddPartitionsToTxn",
        ApiKey::AddOffsetsToTxn => "AddOffsetsToTxn",
        ApiKey::EndTxn => "EndTxn",
        ApiKey::TxnOffsetCommit => "TxnOffsetCommit",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        _ => "an unsupported API",
    }
}

/// A string field of a response.
pub(crate) fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
