//! The classic consumer-group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), the
//! group listing APIs, and committed offsets (OffsetCommit, OffsetFetch), all answered by the
//! log's own group coordinator and offset store. The leader's assignment is relayed as the
//! opaque bytes it sent, so client-side assignors (range, round-robin, sticky, cooperative)
//! work unchanged.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupRequest, SyncGroupResponse, TopicName,
};
use weir_log::{ClassicMember, Error, JoinOutcome, TopicPartition};

use super::{Ctx, text};
use crate::auth::acl::Operation;
use crate::errors::{KafkaCode, code, error_code};

pub(crate) fn join_group(ctx: &Ctx<'_>, request: JoinGroupRequest) -> JoinGroupResponse {
    let version = ctx.version;
    if let Err((err, _)) = ctx.check_group(Operation::Read, &request.group_id) {
        return JoinGroupResponse::default()
            .with_generation_id(-1)
            .with_error_code(err)
            .with_member_id(request.member_id);
    }
    let timeout_max = ctx.shared.config.group_timeout_ms_max;
    let member = ClassicMember {
        client_id: ctx.client_id.to_string(),
        client_host: ctx.peer.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.to_vec()))
            .collect(),
        session_timeout_ms: i64::from(request.session_timeout_ms),
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: i64::from(if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        })
        .min(timeout_max),
    };
    if member.session_timeout_ms > timeout_max {
        // As Kafka's group.max.session.timeout.ms: refused, not shortened behind its back.
        return JoinGroupResponse::default()
            .with_generation_id(-1)
            .with_error_code(code(KafkaCode::InvalidSessionTimeout))
            .with_member_id(request.member_id);
    }
    // KIP-394: from v4 a new member first learns its id, then joins with it.
    let require_member_id = version >= 4;
    let outcome = ctx.shared.log.join_group(
        &request.group_id,
        &request.member_id,
        require_member_id,
        &member,
    );
    let response = JoinGroupResponse::default().with_generation_id(-1);
    match outcome {
        Ok(JoinOutcome::MemberIdRequired(id)) => response
            .with_error_code(code(KafkaCode::MemberIdRequired))
            .with_member_id(text(id)),
        Ok(JoinOutcome::Joined(joined)) => {
            let members = joined
                .members
                .into_iter()
                .map(|(member_id, instance, metadata)| {
                    let m = JoinGroupResponseMember::default()
                        .with_member_id(text(member_id))
                        .with_metadata(metadata.into());
                    if version >= 5 {
                        m.with_group_instance_id(instance.map(text))
                    } else {
                        m
                    }
                })
                .collect();
            let response = response
                .with_generation_id(joined.generation)
                .with_protocol_name(Some(text(joined.protocol_name)))
                .with_leader(text(joined.leader))
                .with_member_id(text(joined.member_id))
                .with_members(members);
            if version >= 7 {
                response.with_protocol_type(Some(text(joined.protocol_type)))
            } else {
                response
            }
        }
        Err(e) => response
            .with_error_code(error_code(&e))
            .with_member_id(request.member_id),
    }
}

pub(crate) fn sync_group(ctx: &Ctx<'_>, request: SyncGroupRequest) -> SyncGroupResponse {
    if let Err((err, _)) = ctx.check_group(Operation::Read, &request.group_id) {
        return SyncGroupResponse::default().with_error_code(err);
    }
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.to_vec()))
        .collect();
    let outcome = ctx.shared.log.sync_group(
        &request.group_id,
        &request.member_id,
        request.generation_id,
        assignments,
    );
    let response = match outcome {
        Ok(assignment) => SyncGroupResponse::default().with_assignment(assignment.into()),
        Err(e) => SyncGroupResponse::default().with_error_code(error_code(&e)),
    };
    if ctx.version >= 5 {
        response
            .with_protocol_type(request.protocol_type)
            .with_protocol_name(request.protocol_name)
    } else {
        response
    }
}

pub(crate) fn heartbeat(ctx: &Ctx<'_>, request: HeartbeatRequest) -> HeartbeatResponse {
    if let Err((err, _)) = ctx.check_group(Operation::Read, &request.group_id) {
        return HeartbeatResponse::default().with_error_code(err);
    }
    match ctx.shared.log.heartbeat_group(
        &request.group_id,
        &request.member_id,
        request.generation_id,
    ) {
        Ok(()) => HeartbeatResponse::default(),
        Err(e) => HeartbeatResponse::default().with_error_code(error_code(&e)),
    }
}

pub(crate) fn leave_group(ctx: &Ctx<'_>, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let log = &ctx.shared.log;
    if let Err((err, _)) = ctx.check_group(Operation::Read, &request.group_id) {
        return LeaveGroupResponse::default().with_error_code(err);
    }
    if ctx.version < 3 {
        return match log.leave_group(&request.group_id, &request.member_id) {
            Ok(()) => LeaveGroupResponse::default(),
            Err(e) => LeaveGroupResponse::default().with_error_code(error_code(&e)),
        };
    }
    let members = request
        .members
        .into_iter()
        .map(|m| {
            let err = match log.leave_group(&request.group_id, &m.member_id) {
                Ok(()) => 0,
                Err(e) => error_code(&e),
            };
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(err)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

pub(crate) fn describe_groups(
    ctx: &Ctx<'_>,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let log = &ctx.shared.log;
    let groups = request
        .groups
        .into_iter()
        .map(|group| {
            let described = DescribedGroup::default().with_group_id(group.clone());
            if let Err((err, _)) = ctx.check_group(Operation::Describe, &group) {
                return described.with_error_code(err);
            }
            match log.describe_group_members(&group) {
                Ok(Some(g)) => {
                    let members = g
                        .members
                        .into_iter()
                        .map(|m| {
                            let member = DescribedGroupMember::default()
                                .with_member_id(text(m.member_id))
                                .with_client_id(text(m.client_id))
                                .with_client_host(text(m.client_host))
                                .with_member_metadata(m.metadata.into())
                                .with_member_assignment(m.assignment.into());
                            if ctx.version >= 4 {
                                member.with_group_instance_id(m.group_instance_id.map(text))
                            } else {
                                member
                            }
                        })
                        .collect();
                    described
                        .with_group_state(text(g.state))
                        .with_protocol_type(text(g.protocol_type))
                        .with_protocol_data(text(g.protocol))
                        .with_members(members)
                }
                // Known only by its committed offsets (or not at all): Kafka answers Dead for
                // a group it does not have.
                Ok(None) => described.with_group_state(text(
                    if log
                        .list_groups()
                        .is_ok_and(|g| g.iter().any(|n| n.as_str() == group.as_str()))
                    {
                        "Empty"
                    } else {
                        "Dead"
                    },
                )),
                Err(e) => described.with_error_code(error_code(&e)),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

pub(crate) fn list_groups(ctx: &Ctx<'_>, _request: ListGroupsRequest) -> ListGroupsResponse {
    let log = &ctx.shared.log;
    match log.list_groups() {
        Ok(names) => {
            // Only the groups the principal may describe, as Kafka lists them.
            let groups = names
                .into_iter()
                .filter(|name| ctx.group_allowed(Operation::Describe, name))
                .map(|name| {
                    let listed = ListedGroup::default()
                        .with_group_id(GroupId(text(name.clone())))
                        .with_protocol_type(text("consumer"));
                    if ctx.version >= 4 {
                        let state = log
                            .describe_group_members(&name)
                            .ok()
                            .flatten()
                            .map_or_else(|| "Empty".to_string(), |g| g.state);
                        listed.with_group_state(text(state))
                    } else {
                        listed
                    }
                })
                .collect();
            ListGroupsResponse::default().with_groups(groups)
        }
        Err(e) => ListGroupsResponse::default().with_error_code(error_code(&e)),
    }
}

pub(crate) fn delete_groups(ctx: &Ctx<'_>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let results = request
        .groups_names
        .into_iter()
        .map(|group| {
            let err = match ctx.check_group(Operation::Delete, &group) {
                Err((err, _)) => err,
                Ok(()) => match ctx.shared.log.delete_group(&group) {
                    Ok(()) => 0,
                    Err(e) => error_code(&e),
                },
            };
            DeletableGroupResult::default()
                .with_group_id(group)
                .with_error_code(err)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}

pub(crate) fn offset_commit(ctx: &Ctx<'_>, request: OffsetCommitRequest) -> OffsetCommitResponse {
    // Generation -1 with no member id: a commit from outside group management (an assign()
    // consumer), allowed only while the group has no members.
    let member = (request.generation_id_or_member_epoch >= 0 || !request.member_id.is_empty())
        .then(|| {
            (
                request.member_id.as_str(),
                request.generation_id_or_member_epoch,
            )
        });
    let offsets: Vec<(TopicPartition, i64)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    TopicPartition::new(t.name.0.as_str(), p.partition_index),
                    p.committed_offset,
                )
            })
        })
        .collect();
    // Kafka's rule: READ on the group, and READ on every topic committed for.
    let denied = ctx
        .check_group(Operation::Read, &request.group_id)
        .and_then(|()| ctx.check_offset_topics(Operation::Read, &offsets));
    let err = match denied {
        Err((err, _)) => err,
        Ok(()) => {
            let result = check_partitions(ctx, &offsets).and_then(|()| {
                ctx.shared
                    .log
                    .commit_offsets(&request.group_id, member, &offsets)
            });
            match &result {
                Ok(()) => 0,
                Err(e) => error_code(e),
            }
        }
    };
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(err)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Offsets may be committed only for partitions that exist (Kafka answers
/// UNKNOWN_TOPIC_OR_PARTITION otherwise).
fn check_partitions(ctx: &Ctx<'_>, offsets: &[(TopicPartition, i64)]) -> Result<(), Error> {
    for (tp, _) in offsets {
        let n = ctx.shared.log.partition_count(tp.topic())?;
        if tp.partition() < 0 || tp.partition() >= n {
            return Err(Error::UnknownPartition {
                topic: tp.topic().to_string(),
                partition: tp.partition(),
            });
        }
    }
    Ok(())
}

pub(crate) fn offset_fetch(ctx: &Ctx<'_>, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let log = &ctx.shared.log;
    let group = request.group_id.as_str();
    let require_stable = ctx.version >= 7 && request.require_stable;
    if let Err((err, _)) = ctx.check_group(Operation::Describe, group) {
        // v1 has no top-level code: each asked partition carries it.
        let topics = request
            .topics
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partition_indexes
                    .iter()
                    .map(|&p| {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(-1)
                            .with_error_code(err)
                    })
                    .collect();
                OffsetFetchResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        let response = OffsetFetchResponse::default().with_topics(topics);
        return if ctx.version >= 2 {
            response.with_error_code(err)
        } else {
            response
        };
    }
    // Null topics (v2+): every partition the group has committed.
    let wanted: Vec<(TopicName, Vec<i32>)> = match request.topics {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect(),
        None => {
            let mut by_topic: Vec<(TopicName, Vec<i32>)> = Vec::new();
            if let Ok(info) = log.describe_group(group) {
                for lag in info.offsets {
                    match by_topic.iter_mut().find(|(t, _)| t.0.as_str() == lag.topic) {
                        Some((_, ps)) => ps.push(lag.partition),
                        None => by_topic.push((TopicName(text(lag.topic)), vec![lag.partition])),
                    }
                }
            }
            by_topic
        }
    };
    let topics = wanted
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|p| {
                    let response = OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_metadata(Some(text("")));
                    let tp = TopicPartition::new(name.0.as_str(), p);
                    if let Err((err, _)) = ctx.check_topic(Operation::Describe, tp.topic()) {
                        return response.with_committed_offset(-1).with_error_code(err);
                    }
                    if require_stable && log.offset_commit_pending(group, &tp) {
                        return response
                            .with_committed_offset(-1)
                            .with_error_code(code(KafkaCode::UnstableOffsetCommit));
                    }
                    match log.committed_offset(group, name.0.as_str(), p) {
                        Ok(offset) => response.with_committed_offset(offset.unwrap_or(-1)),
                        // An unknown topic has no committed offset: -1, no error (as Kafka).
                        Err(Error::UnknownTopic(_) | Error::UnknownPartition { .. }) => {
                            response.with_committed_offset(-1)
                        }
                        Err(e) => response
                            .with_committed_offset(-1)
                            .with_error_code(error_code(&e)),
                    }
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
