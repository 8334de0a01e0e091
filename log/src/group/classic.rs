//! Kafka's classic group protocol, as Kafka clients speak it through `weir serve`: the
//! coordinator picks a leader, hands it every member's opaque subscription metadata in the
//! JoinGroup response, and relays the leader's opaque per-member assignment through SyncGroup.
//!
//! These groups live in the same [`GroupCoordinator`] as those of embedded consumers, with the
//! same generations, sessions, rebalance timeouts and offset fencing; only the assignment is
//! computed elsewhere (by the leader), which adds Kafka's `CompletingRebalance` phase. A group
//! is one or the other: an embedded consumer cannot join a group of Kafka clients, nor the
//! reverse ([`GroupErrorKind::InconsistentGroupProtocol`]).
//!
//! Calls block, as Kafka's responses are delayed: a join until the rebalance completes, a
//! follower's sync until the leader's assignment arrives. Every blocked call is bounded by a
//! group deadline (rebalance timeout, the leader's session, the sync timeout).

use std::collections::HashMap;
use std::sync::MutexGuard;
use std::time::Duration;

use super::consumer_protocol;
use super::coordinator::{
    Group, GroupCoordinator, GroupState, Inner, Member, MemberDescription, check_room,
    empty_with_members, group_error, unknown_member,
};
use crate::{Error, GroupErrorKind, Result};

/// Longest session timeout a member may ask for: Kafka's `group.max.session.timeout.ms`
/// default (30 minutes). A dead member holds its partitions that long.
pub const SESSION_TIMEOUT_MS_MAX: i64 = 30 * 60 * 1000;

/// Longest a blocked call sleeps before it looks at the group again, even with no deadline due
/// (a safety net; changes and deadlines wake it sooner).
const WAIT_SLICE_MAX: Duration = Duration::from_secs(1);

/// A Kafka client's JoinGroup request, as far as the coordinator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMember {
    /// The client's `client.id`; it prefixes the member id.
    pub client_id: String,
    /// Where the connection comes from (shown by DescribeGroups).
    pub client_host: String,
    /// Static membership (KIP-345): the same id across restarts of one instance.
    pub group_instance_id: Option<String>,
    /// `consumer` for consumer groups; every member of a group must give the same.
    pub protocol_type: String,
    /// (protocol name, member metadata), in the member's order of preference
    pub protocols: Vec<(String, Vec<u8>)>,
    /// How long the member may stay silent before it is dropped: 1 to
    /// [`SESSION_TIMEOUT_MS_MAX`].
    pub session_timeout_ms: i64,
    /// How long a rebalance waits for the member to rejoin; 0 or less (JoinGroup v0 has no such
    /// field) means the session timeout.
    pub rebalance_timeout_ms: i64,
}

/// What a JoinGroup call ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// KIP-394: a new member must join again with this id (remembered for a session timeout).
    MemberIdRequired(String),
    /// The rebalance completed with the member in it.
    Joined(JoinedGroup),
}

/// The JoinGroup response of a member for a completed rebalance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedGroup {
    /// The new generation.
    pub generation: i32,
    /// The group's protocol type (`consumer`).
    pub protocol_type: String,
    /// The assignment protocol every member supports, chosen by vote.
    pub protocol_name: String,
    /// The member that computes the assignment.
    pub leader: String,
    /// The caller's member id.
    pub member_id: String,
    /// (member id, group instance id, metadata): the leader's response only
    pub members: Vec<(String, Option<String>, Vec<u8>)>,
}

/// A group as Kafka's DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembers {
    /// `Empty`, `PreparingRebalance`, `CompletingRebalance` or `Stable`.
    pub state: String,
    /// `consumer` for groups with members (embedded consumers too), else empty.
    pub protocol_type: String,
    /// The assignment protocol of the generation; empty unless `Stable` (as in Kafka).
    pub protocol: String,
    /// The members, sorted by id.
    pub members: Vec<GroupMember>,
}

/// One member in [`GroupMembers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Its member id.
    pub member_id: String,
    /// Its static-membership id.
    pub group_instance_id: Option<String>,
    /// The client id it joined with.
    pub client_id: String,
    /// Where it connects from (empty for embedded consumers).
    pub client_host: String,
    /// Its metadata for the group's protocol (for embedded consumers, their subscription in
    /// the `consumer` encoding); empty unless the group is `Stable`, as in Kafka.
    pub metadata: Vec<u8>,
    /// The assignment the leader gave it (for embedded consumers, in the `consumer`
    /// encoding); empty unless the group is `Stable`.
    pub assignment: Vec<u8>,
}

/// The classic part of a group's state.
#[derive(Debug)]
pub(super) struct ClassicGroup {
    pub(super) protocol_type: String,
    /// Chosen when a rebalance completes.
    pub(super) protocol_name: Option<String>,
    pub(super) leader: Option<String>,
    /// Kafka's pending-sync timeout: members that have not synced by then are dropped.
    pub(super) sync_deadline_ms: Option<i64>,
}

/// The classic part of a member's state.
#[derive(Debug)]
pub(super) struct ClassicMemberState {
    client_host: String,
    group_instance_id: Option<String>,
    protocols: Vec<(String, Vec<u8>)>,
    /// What the leader gave it in the current generation.
    assignment: Vec<u8>,
    /// Sent SyncGroup in the current generation.
    synced: bool,
    /// Numbers the member's blocking calls, so that a newer call (a client retrying on a new
    /// connection) supersedes an older one still blocked.
    last_ticket: u64,
    join_waiter: Option<u64>,
    join_result: Option<JoinedGroup>,
    sync_waiter: Option<u64>,
    sync_result: Option<std::result::Result<Vec<u8>, GroupErrorKind>>,
}

impl ClassicMemberState {
    /// The member's metadata for `protocol` (empty if it names no such protocol).
    fn metadata_for(&self, protocol: &str) -> &[u8] {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map_or(&[][..], |(_, m)| m)
    }

    fn next_ticket(&mut self) -> u64 {
        self.last_ticket += 1;
        self.last_ticket
    }

    pub(super) fn synced(&self) -> bool {
        self.synced
    }

    /// Hands `outcome` to the member's blocked sync call, if it has one.
    pub(super) fn answer_sync(&mut self, outcome: std::result::Result<Vec<u8>, GroupErrorKind>) {
        if self.sync_waiter.is_some() {
            self.sync_result = Some(outcome);
        }
    }

    pub(super) fn describe(
        &self,
        member_id: &str,
        client_id: &str,
        protocol: Option<&str>,
    ) -> MemberDescription {
        let metadata = match protocol {
            Some(p) => self.metadata_for(p),
            None => self.protocols.first().map_or(&[][..], |(_, m)| m),
        };
        MemberDescription {
            member_id: member_id.to_string(),
            client_id: client_id.to_string(),
            group_instance_id: self.group_instance_id.clone(),
            client_host: self.client_host.clone(),
            topics: consumer_protocol::decode_subscription_topics(metadata).unwrap_or_default(),
            assignment: consumer_protocol::decode_assignment(&self.assignment).unwrap_or_default(),
        }
    }
}

fn inconsistent(group: &str, why: impl Into<String>) -> Error {
    group_error(group, GroupErrorKind::InconsistentGroupProtocol(why.into()))
}

/// Refuses a member whose protocol type or protocols do not fit the other members'
/// (`member_id` excluded, so a sole member may change its protocols).
fn check_protocols(group: &str, g: &Group, member_id: &str, member: &ClassicMember) -> Result<()> {
    if g.strategy.is_some() {
        return Err(inconsistent(
            group,
            "embedded consumers hold this group (the log computes their assignment); a Kafka \
             client cannot join it",
        ));
    }
    let others: Vec<&ClassicMemberState> = g
        .members
        .iter()
        .filter(|(id, _)| id.as_str() != member_id)
        .filter_map(|(_, m)| m.classic.as_ref())
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    if let Some(c) = &g.classic
        && c.protocol_type != member.protocol_type
    {
        return Err(inconsistent(
            group,
            format!(
                "protocol type '{}', but the group's is '{}'",
                member.protocol_type, c.protocol_type
            ),
        ));
    }
    let common = member.protocols.iter().any(|(name, _)| {
        others
            .iter()
            .all(|o| o.protocols.iter().any(|(n, _)| n == name))
    });
    if !common {
        return Err(inconsistent(
            group,
            "none of the member's assignment protocols is supported by every other member",
        ));
    }
    Ok(())
}

impl Group {
    fn add_classic_member(
        &mut self,
        id: &str,
        member: &ClassicMember,
        rebalance_timeout_ms: i64,
        now: i64,
    ) {
        let classic = self.classic.get_or_insert_with(|| ClassicGroup {
            protocol_type: member.protocol_type.clone(),
            protocol_name: None,
            leader: None,
            sync_deadline_ms: None,
        });
        // Kafka's leader is the first member to join; a rebalance keeps it if it rejoined.
        if classic.leader.is_none() {
            classic.leader = Some(id.to_string());
        }
        self.members.insert(
            id.to_string(),
            Member {
                client_id: member.client_id.clone(),
                topics: Vec::new(),
                session_timeout_ms: member.session_timeout_ms,
                rebalance_timeout_ms,
                last_seen_ms: now,
                rejoined: true,
                waiting: 0,
                assignment: Vec::new(),
                classic: Some(ClassicMemberState {
                    client_host: member.client_host.clone(),
                    group_instance_id: member.group_instance_id.clone(),
                    protocols: member.protocols.clone(),
                    assignment: Vec::new(),
                    synced: false,
                    last_ticket: 0,
                    join_waiter: None,
                    join_result: None,
                    sync_waiter: None,
                    sync_result: None,
                }),
            },
        );
        if self.state != GroupState::PreparingRebalance {
            self.start_rebalance(now);
        }
    }

    /// Gives static member `old`'s place (its assignment, its leadership) to `new_id`, the same
    /// instance restarted; `old` is unknown from now on. In a stable group whose protocol
    /// would stay the same that is all (Kafka's rejoin without rebalance, KIP-345): the
    /// response is returned, naming the leader as it was, so that the new member syncs as a
    /// follower and gets the old member's assignment. Otherwise the group rebalances (in
    /// `CompletingRebalance` the leader may be assigning to the old id) and `None` says the
    /// caller must wait for it.
    fn replace_static_member(
        &mut self,
        old: &str,
        new_id: &str,
        member: &ClassicMember,
        rebalance_timeout_ms: i64,
        now: i64,
    ) -> Option<JoinedGroup> {
        let previous_leader = self.leader().map(str::to_string);
        let mut m = self.members.remove(old)?;
        let protocols_changed = m
            .classic
            .as_ref()
            .is_none_or(|c| c.protocols != member.protocols);
        m.client_id.clone_from(&member.client_id);
        m.session_timeout_ms = member.session_timeout_ms;
        m.rebalance_timeout_ms = rebalance_timeout_ms;
        m.last_seen_ms = now;
        // Calls of the old id still blocked find it gone; they no longer keep anyone alive.
        m.waiting = 0;
        if let Some(c) = &mut m.classic {
            c.protocols.clone_from(&member.protocols);
            c.client_host.clone_from(&member.client_host);
            c.join_waiter = None;
            c.join_result = None;
            c.sync_waiter = None;
            c.sync_result = None;
        }
        self.members.insert(new_id.to_string(), m);
        if let Some(c) = &mut self.classic
            && c.leader.as_deref() == Some(old)
        {
            c.leader = Some(new_id.to_string());
        }
        let protocol = self.classic.as_ref().and_then(|c| c.protocol_name.clone());
        match self.state {
            GroupState::Stable if !protocols_changed || self.select_protocol() == protocol => {
                let mut joined = self.joined(new_id);
                joined.members.clear();
                joined.leader = previous_leader.unwrap_or_default();
                Some(joined)
            }
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.start_rebalance(now);
                None
            }
            GroupState::PreparingRebalance | GroupState::Empty => None,
        }
    }

    fn leader(&self) -> Option<&str> {
        self.classic.as_ref().and_then(|c| c.leader.as_deref())
    }

    /// The protocol for the next generation: among those every member supports (in the
    /// leader's order of preference), the one most members put first; ties go to the earlier.
    fn select_protocol(&self) -> Option<String> {
        let members: Vec<&ClassicMemberState> = self
            .members
            .values()
            .filter_map(|m| m.classic.as_ref())
            .collect();
        let first = self
            .leader()
            .and_then(|l| self.members.get(l))
            .and_then(|m| m.classic.as_ref())
            .or_else(|| members.first().copied())?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| {
                members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
            .collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in &members {
            if let Some((name, _)) = m
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n.as_str()))
            {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for c in candidates {
            let n = votes.get(c).copied().unwrap_or(0);
            if best.is_none_or(|(_, most)| n > most) {
                best = Some((c, n));
            }
        }
        best.map(|(name, _)| name.to_string())
    }

    /// The JoinGroup response for `member_id` in the current generation.
    fn joined(&self, member_id: &str) -> JoinedGroup {
        let classic = self.classic.as_ref();
        let protocol_name = classic
            .and_then(|c| c.protocol_name.clone())
            .unwrap_or_default();
        let leader = self.leader().unwrap_or_default().to_string();
        let members = if leader == member_id {
            self.members
                .iter()
                .filter_map(|(id, m)| {
                    let c = m.classic.as_ref()?;
                    Some((
                        id.clone(),
                        c.group_instance_id.clone(),
                        c.metadata_for(&protocol_name).to_vec(),
                    ))
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinedGroup {
            generation: self.generation,
            protocol_type: classic.map(|c| c.protocol_type.clone()).unwrap_or_default(),
            protocol_name,
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    /// Completes a classic group's rebalance once every member has rejoined (or, `force`d by
    /// the rebalance timeout, once the laggards are gone): next generation, a protocol, a
    /// leader, and every blocked join answered. True if it completed.
    pub(super) fn complete_classic_if_ready(&mut self, now: i64, force: bool) -> bool {
        if self.classic.is_none() || !self.ready_to_complete(force) {
            return false;
        }
        let Some(protocol) = self.select_protocol() else {
            // Every join checks that the members share a protocol, so this is a bug; starting
            // over would loop, so the members learn of it through their joins instead.
            debug_assert!(false, "classic group with no common protocol");
            return false;
        };
        let first = self.members.keys().next().cloned();
        let rebalance_timeout_ms = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        let in_group =
            |id: &Option<String>| id.as_ref().is_some_and(|l| self.members.contains_key(l));
        let keep_leader = self.classic.as_ref().is_some_and(|c| in_group(&c.leader));
        self.bump_generation();
        self.state = GroupState::CompletingRebalance;
        if let Some(c) = &mut self.classic {
            c.protocol_name = Some(protocol);
            if !keep_leader {
                c.leader = first;
            }
            c.sync_deadline_ms = Some(now.saturating_add(rebalance_timeout_ms));
        }
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let joined = self.joined(&id);
            if let Some(m) = self.members.get_mut(&id) {
                m.rejoined = false;
                m.last_seen_ms = now;
                if let Some(c) = &mut m.classic {
                    c.synced = false;
                    c.assignment.clear();
                    if c.join_waiter.is_some() {
                        c.join_result = Some(joined);
                    }
                }
            }
        }
        true
    }

    /// The leader's SyncGroup: each member gets its bytes (empty if the leader gave none) and
    /// the group is stable.
    fn apply_assignment(&mut self, assignments: Vec<(String, Vec<u8>)>) {
        let mut by_member: HashMap<String, Vec<u8>> = assignments.into_iter().collect();
        for (id, m) in &mut self.members {
            if let Some(c) = &mut m.classic {
                c.assignment = by_member.remove(id).unwrap_or_default();
                c.answer_sync(Ok(c.assignment.clone()));
            }
        }
        self.state = GroupState::Stable;
        self.clear_sync_deadline_if_all_synced();
    }

    fn clear_sync_deadline_if_all_synced(&mut self) {
        let all_synced = self
            .members
            .values()
            .all(|m| m.classic.as_ref().is_none_or(|c| c.synced));
        if let (true, Some(c)) = (all_synced, &mut self.classic) {
            c.sync_deadline_ms = None;
        }
    }

    fn describe_members(&self) -> GroupMembers {
        let stable = self.state == GroupState::Stable;
        let protocol = match (&self.classic, self.strategy) {
            (Some(c), _) => c.protocol_name.clone().unwrap_or_default(),
            (None, Some(strategy)) => strategy.to_string(),
            (None, None) => String::new(),
        };
        let protocol_type = match &self.classic {
            Some(c) => c.protocol_type.clone(),
            None if self.members.is_empty() => String::new(),
            None => "consumer".to_string(),
        };
        let members = self
            .members
            .iter()
            .map(|(id, m)| {
                let (metadata, assignment) = match (&m.classic, stable) {
                    (_, false) => (Vec::new(), Vec::new()),
                    (Some(c), true) => (c.metadata_for(&protocol).to_vec(), c.assignment.clone()),
                    (None, true) => (
                        consumer_protocol::encode_subscription(&m.topics),
                        consumer_protocol::encode_assignment(&m.assignment),
                    ),
                };
                let classic = m.classic.as_ref();
                GroupMember {
                    member_id: id.clone(),
                    group_instance_id: classic.and_then(|c| c.group_instance_id.clone()),
                    client_id: m.client_id.clone(),
                    client_host: classic.map(|c| c.client_host.clone()).unwrap_or_default(),
                    metadata,
                    assignment,
                }
            })
            .collect();
        GroupMembers {
            state: self.state.to_string(),
            protocol_type,
            protocol: if stable { protocol } else { String::new() },
            members,
        }
    }
}

impl GroupCoordinator {
    /// Kafka's JoinGroup for a client-assigned member. `member_id` is empty for a new member.
    ///
    /// A new member with `require_member_id` (JoinGroup v4+, KIP-394, and no
    /// `group_instance_id`) gets [`JoinOutcome::MemberIdRequired`] and must call again with that
    /// id. A new member, or a known one whose protocols changed (or the leader, which rejoins to
    /// ask for a rebalance), starts a rebalance; the call then blocks until every member has
    /// rejoined or the rebalance timeout dropped those that did not, and returns the new
    /// generation. Only the leader's response lists the members. A known member rejoining
    /// with nothing changed outside a rebalance gets the current generation at once.
    ///
    /// A new member whose `group_instance_id` is already in the group replaces that member
    /// (a restarted static member, KIP-345); the old member id is then unknown. In a stable
    /// group this needs no rebalance: the call returns at once and the member's sync returns
    /// the assignment its previous incarnation had.
    ///
    /// Errors ([`Error::Group`]): `UnknownMember` for an id the group does not hold,
    /// `InconsistentGroupProtocol` (another protocol type, no protocol in common, or a group of
    /// embedded consumers), `InvalidSessionTimeout`, `GroupMaxSizeReached`,
    /// `FencedInstanceId` (a known member id joining with another member's instance id),
    /// `RebalanceInProgress` if a newer join of the same member superseded this one;
    /// [`Error::Config`] for an empty group name.
    pub fn join_classic(
        &self,
        group: &str,
        member_id: &str,
        require_member_id: bool,
        member: &ClassicMember,
    ) -> Result<JoinOutcome> {
        if group.is_empty() {
            return Err(Error::config("group", "group names must not be empty"));
        }
        if !(1..=SESSION_TIMEOUT_MS_MAX).contains(&member.session_timeout_ms) {
            return Err(group_error(
                group,
                GroupErrorKind::InvalidSessionTimeout(member.session_timeout_ms),
            ));
        }
        if member.protocol_type.is_empty() || member.protocols.is_empty() {
            return Err(inconsistent(
                group,
                "a member must name a protocol type and at least one protocol",
            ));
        }
        let rebalance_timeout_ms = if member.rebalance_timeout_ms > 0 {
            member.rebalance_timeout_ms
        } else {
            member.session_timeout_ms
        };
        let mut guard = self.lock();
        let inner = &mut *guard;
        let now = self.clock.monotonic_ms();
        self.expire_group(inner, group, now);
        if !member_id.is_empty() && !inner.groups.contains_key(group) {
            // No group is created for a member that cannot be in it.
            return Err(unknown_member(group, member_id));
        }
        let new_id = member_id
            .is_empty()
            .then(|| self.new_member_id(inner, &member.client_id));
        let g = inner
            .groups
            .entry(group.to_string())
            .or_insert_with(Group::new);
        check_protocols(group, g, member_id, member)?;
        let instance_holder: Option<String> = member.group_instance_id.as_ref().and_then(|iid| {
            g.members
                .iter()
                .find(|(_, m)| {
                    m.classic
                        .as_ref()
                        .and_then(|c| c.group_instance_id.as_ref())
                        == Some(iid)
                })
                .map(|(id, _)| id.clone())
        });

        let id = match new_id {
            Some(id) => {
                if let Some(old) = &instance_holder {
                    // A restarted static member (KIP-345) takes its instance's place.
                    if let Some(j) =
                        g.replace_static_member(old, &id, member, rebalance_timeout_ms, now)
                    {
                        return Ok(JoinOutcome::Joined(j));
                    }
                } else {
                    check_room(group, g)?;
                    if require_member_id && member.group_instance_id.is_none() {
                        g.pending
                            .insert(id.clone(), now.saturating_add(member.session_timeout_ms));
                        return Ok(JoinOutcome::MemberIdRequired(id));
                    }
                    g.add_classic_member(&id, member, rebalance_timeout_ms, now);
                }
                id
            }
            None if g.pending.remove(member_id).is_some() => {
                if let Some(old) = &instance_holder {
                    g.remove_member(old, now);
                }
                g.add_classic_member(member_id, member, rebalance_timeout_ms, now);
                member_id.to_string()
            }
            None => {
                if instance_holder.as_deref().is_some_and(|h| h != member_id) {
                    return Err(group_error(
                        group,
                        GroupErrorKind::FencedInstanceId(
                            member.group_instance_id.clone().unwrap_or_default(),
                        ),
                    ));
                }
                let state = g.state;
                let is_leader = g.leader() == Some(member_id);
                let Some(m) = g.members.get_mut(member_id) else {
                    return Err(unknown_member(group, member_id));
                };
                let Some(c) = &mut m.classic else {
                    return Err(inconsistent(group, "an embedded consumer's member id"));
                };
                let protocols_changed = c.protocols != member.protocols;
                c.protocols.clone_from(&member.protocols);
                c.client_host.clone_from(&member.client_host);
                if member.group_instance_id.is_some() {
                    c.group_instance_id.clone_from(&member.group_instance_id);
                }
                m.client_id.clone_from(&member.client_id);
                m.session_timeout_ms = member.session_timeout_ms;
                m.rebalance_timeout_ms = rebalance_timeout_ms;
                m.last_seen_ms = now;
                match state {
                    GroupState::PreparingRebalance => {}
                    GroupState::CompletingRebalance if !protocols_changed => {
                        return Ok(JoinOutcome::Joined(g.joined(member_id)));
                    }
                    GroupState::Stable if !protocols_changed && !is_leader => {
                        return Ok(JoinOutcome::Joined(g.joined(member_id)));
                    }
                    GroupState::CompletingRebalance | GroupState::Stable => {
                        g.start_rebalance(now);
                    }
                    GroupState::Empty => return Err(empty_with_members(group)),
                }
                member_id.to_string()
            }
        };

        let Some(c) = g.members.get_mut(&id).and_then(|m| {
            m.rejoined = true;
            m.classic.as_mut()
        }) else {
            return Err(Error::Internal(format!(
                "group '{group}': member {id} vanished while joining"
            )));
        };
        let ticket = c.next_ticket();
        c.join_waiter = Some(ticket);
        c.join_result = None;
        g.complete_classic_if_ready(now, false);
        self.changed.notify_all();
        loop {
            let now = self.clock.monotonic_ms();
            let Some(g) = self.group(&mut guard, group, now) else {
                return Err(unknown_member(group, &id));
            };
            let Some(c) = g.members.get_mut(&id).and_then(|m| m.classic.as_mut()) else {
                return Err(unknown_member(group, &id));
            };
            if c.join_waiter != Some(ticket) {
                return Err(group_error(group, GroupErrorKind::RebalanceInProgress));
            }
            if let Some(joined) = c.join_result.take() {
                c.join_waiter = None;
                return Ok(JoinOutcome::Joined(joined));
            }
            guard = self.wait_on(guard, group, &id, now);
        }
    }

    /// Kafka's SyncGroup. The leader's call stores each member's assignment and makes the group
    /// stable; a follower's call blocks until then. Every caller gets its own bytes (empty if
    /// the leader gave it none). In a stable group it returns the member's current assignment.
    ///
    /// Errors ([`Error::Group`]): `UnknownMember`, `IllegalGeneration`,
    /// `RebalanceInProgress` during a rebalance, or when one starts before the leader's
    /// assignment arrives (the leader left, its session expired, someone joined).
    pub fn sync(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        assignments: Vec<(String, Vec<u8>)>,
    ) -> Result<Vec<u8>> {
        let mut guard = self.lock();
        let now = self.clock.monotonic_ms();
        let Some(g) = self.group(&mut guard, group, now) else {
            return Err(unknown_member(group, member_id));
        };
        let (state, current) = (g.state, g.generation);
        let is_leader = g.leader() == Some(member_id);
        let Some(m) = g.members.get_mut(member_id) else {
            return Err(unknown_member(group, member_id));
        };
        m.last_seen_ms = now;
        let Some(c) = &mut m.classic else {
            return Err(inconsistent(
                group,
                "an embedded consumer gets its assignment from the log, not through a sync",
            ));
        };
        if generation != current {
            return Err(group_error(
                group,
                GroupErrorKind::IllegalGeneration {
                    given: generation,
                    current,
                },
            ));
        }
        match state {
            GroupState::Empty => return Err(empty_with_members(group)),
            GroupState::PreparingRebalance => {
                return Err(group_error(group, GroupErrorKind::RebalanceInProgress));
            }
            GroupState::Stable => {
                c.synced = true;
                let assignment = c.assignment.clone();
                g.clear_sync_deadline_if_all_synced();
                return Ok(assignment);
            }
            GroupState::CompletingRebalance => c.synced = true,
        }
        if is_leader {
            g.apply_assignment(assignments);
            self.changed.notify_all();
            return Ok(g
                .members
                .get(member_id)
                .and_then(|m| m.classic.as_ref())
                .map(|c| c.assignment.clone())
                .unwrap_or_default());
        }
        let ticket = c.next_ticket();
        c.sync_waiter = Some(ticket);
        c.sync_result = None;
        loop {
            let now = self.clock.monotonic_ms();
            let Some(g) = self.group(&mut guard, group, now) else {
                return Err(unknown_member(group, member_id));
            };
            let Some(c) = g
                .members
                .get_mut(member_id)
                .and_then(|m| m.classic.as_mut())
            else {
                return Err(unknown_member(group, member_id));
            };
            if c.sync_waiter != Some(ticket) {
                return Err(group_error(group, GroupErrorKind::RebalanceInProgress));
            }
            if let Some(outcome) = c.sync_result.take() {
                c.sync_waiter = None;
                return outcome.map_err(|reason| group_error(group, reason));
            }
            guard = self.wait_on(guard, group, member_id, now);
        }
    }

    /// Sleeps until the coordinator changes or the group's next deadline, with the member
    /// counted as waiting (so alive) meanwhile.
    fn wait_on<'a>(
        &self,
        mut guard: MutexGuard<'a, Inner>,
        group: &str,
        member_id: &str,
        now: i64,
    ) -> MutexGuard<'a, Inner> {
        let mut timeout = WAIT_SLICE_MAX;
        if let Some(g) = guard.groups.get_mut(group) {
            if let Some(m) = g.members.get_mut(member_id) {
                m.waiting += 1;
            }
            if let Some(deadline) = g.next_deadline() {
                let ms = u64::try_from(deadline.saturating_sub(now)).unwrap_or(0);
                timeout = timeout.min(Duration::from_millis(ms.saturating_add(1)));
            }
        }
        let (mut guard, _) = self
            .changed
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|e| e.into_inner());
        let now = self.clock.monotonic_ms();
        if let Some(m) = guard
            .groups
            .get_mut(group)
            .and_then(|g| g.members.get_mut(member_id))
        {
            m.last_seen_ms = now;
            m.waiting = m.waiting.saturating_sub(1);
        }
        guard
    }

    /// Forgets `group` if it has no members (Kafka's DeleteGroups); true if it knew the group.
    /// The caller deletes its committed offsets.
    ///
    /// Errors: [`GroupErrorKind::NonEmptyGroup`] while it has members.
    pub fn delete(&self, group: &str) -> Result<bool> {
        let mut guard = self.lock();
        let now = self.clock.monotonic_ms();
        let Some(g) = self.group(&mut guard, group, now) else {
            return Ok(false);
        };
        if !g.members.is_empty() {
            return Err(group_error(group, GroupErrorKind::NonEmptyGroup));
        }
        guard.groups.remove(group);
        self.changed.notify_all();
        Ok(true)
    }

    /// `group` as Kafka's DescribeGroups shows it (after applying its deadlines), or `None` if
    /// no member ever joined it. Groups of embedded consumers are shown as `consumer` groups
    /// whose protocol is their strategy.
    pub fn describe_members(&self, group: &str) -> Option<GroupMembers> {
        let mut guard = self.lock();
        let now = self.clock.monotonic_ms();
        self.group(&mut guard, group, now)
            .map(|g| g.describe_members())
    }
}

#[cfg(test)]
mod tests;
