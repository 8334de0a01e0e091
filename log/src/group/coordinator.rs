//! The group coordinator: membership, generations and eager rebalances.
//!
//! One [`GroupCoordinator`] serves every group of the embedding process, those of embedded
//! consumers (here) and those of Kafka clients (the classic protocol, `classic.rs`). It keeps
//! all state behind one mutex; a condition variable wakes members blocked in
//! [`GroupCoordinator::await_assignment`] (or a classic join or sync) whenever a group changes. Deadlines (sessions,
//! rebalance timeouts) are checked against the injected [`Clock`] at the start of every call
//! that touches a group, so there is no timer thread to start, stop or race with.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::assignor::{AssignmentStrategy, assign};
use super::classic::{ClassicGroup, ClassicMemberState};
use crate::clock::Clock;
use crate::{Error, GroupErrorKind, Result};

/// Most members (and member ids handed out but not yet used) a group holds; a join past it is
/// refused with [`GroupErrorKind::GroupMaxSizeReached`]. Kafka's `group.max.size` has no
/// default bound; this one keeps a client that joins in a loop from growing a group without end.
pub const MEMBERS_PER_GROUP_MAX: usize = 1_000;

/// What a member asks for when it joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConfig {
    /// The client's self-chosen name; it prefixes the member id so that ids say who they are
    /// in `describe` output and logs. May be empty, as in Kafka.
    pub client_id: String,
    /// Topics to consume. Order and duplicates do not matter.
    pub topics: Vec<String>,
    /// How long the member may stay silent before the coordinator assumes it is dead and gives
    /// its partitions to others.
    pub session_timeout_ms: i64,
    /// How long a rebalance waits for this member to rejoin before dropping it; a group waits
    /// for the longest of its members' values.
    pub rebalance_timeout_ms: i64,
    /// The assignor; every member of a group must name the same one.
    pub strategy: AssignmentStrategy,
}

impl MemberConfig {
    /// A configuration with Kafka's defaults: a 45 s session (Kafka 3.0+), a 5 min rebalance
    /// timeout (`max.poll.interval.ms`) and the range assignor.
    pub fn new<T: Into<String>>(
        client_id: impl Into<String>,
        topics: impl IntoIterator<Item = T>,
    ) -> Self {
        MemberConfig {
            client_id: client_id.into(),
            topics: topics.into_iter().map(Into::into).collect(),
            session_timeout_ms: 45_000,
            rebalance_timeout_ms: 300_000,
            strategy: AssignmentStrategy::Range,
        }
    }

    /// Refuses configurations that would make a member unassignable or immortal, before it can
    /// disturb a group.
    pub fn validate(&self) -> Result<()> {
        if self.session_timeout_ms <= 0 {
            return Err(Error::config(
                "session_timeout_ms",
                format!("must be positive, got {}", self.session_timeout_ms),
            ));
        }
        if self.rebalance_timeout_ms <= 0 {
            return Err(Error::config(
                "rebalance_timeout_ms",
                format!("must be positive, got {}", self.rebalance_timeout_ms),
            ));
        }
        if self.topics.is_empty() {
            return Err(Error::config(
                "topics",
                "a member must subscribe to at least one topic",
            ));
        }
        if self.topics.iter().any(String::is_empty) {
            return Err(Error::config("topics", "topic names must not be empty"));
        }
        Ok(())
    }

    fn normalized_topics(&self) -> Vec<String> {
        let mut topics = self.topics.clone();
        topics.sort();
        topics.dedup();
        topics
    }
}

/// The partitions a member owns for one generation.
///
/// The generation must accompany heartbeats and offset commits: it is how the coordinator
/// tells a current owner from one that slept through a rebalance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The group generation this assignment belongs to.
    pub generation: i32,
    /// The assigned (topic, partition) pairs, sorted.
    pub partitions: Vec<(String, i32)>,
}

/// Where a group is in its lifecycle: Kafka's states, minus `Dead` (a deleted group is simply
/// gone from the coordinator). Groups of embedded consumers skip `CompletingRebalance`: the
/// coordinator computes their assignment itself, so there is no sync phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum GroupState {
    /// No members.
    Empty,
    /// Waiting for members to rejoin; no assignment is handed out until all have (or the
    /// rebalance timeout drops the rest).
    PreparingRebalance,
    /// Classic groups only: the new generation is chosen and every member knows it; the
    /// coordinator waits for the leader to send the assignment (SyncGroup).
    CompletingRebalance,
    /// Every member holds the assignment of the current generation.
    Stable,
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        })
    }
}

/// A snapshot of a group, for operators and tools.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupDescription {
    /// The group name.
    pub group: String,
    /// Its state.
    pub state: GroupState,
    /// The generation of the last completed rebalance.
    pub generation: i32,
    /// The strategy the members use; `None` while the group is empty, since the next member to
    /// join chooses it, and for classic groups.
    pub strategy: Option<AssignmentStrategy>,
    /// Classic (client-assigned) groups: the assignment protocol chosen for the generation
    /// (`range`, `cooperative-sticky`, …), `None` before the first rebalance completes.
    #[serde(default)]
    pub protocol: Option<String>,
    /// The members, sorted by id.
    pub members: Vec<MemberDescription>,
}

/// One member in a [`GroupDescription`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberDescription {
    /// The id the coordinator gave it.
    pub member_id: String,
    /// The client id it joined with.
    pub client_id: String,
    /// Classic members: the static-membership id (`group.instance.id`) it joined with.
    #[serde(default)]
    pub group_instance_id: Option<String>,
    /// Classic members: where its connection comes from, as the server reported it.
    #[serde(default)]
    pub client_host: String,
    /// Its subscription, sorted (for classic members, read from their `consumer` protocol
    /// metadata; empty if that does not decode).
    pub topics: Vec<String>,
    /// The partitions handed to it in the group's current `generation`: during a rebalance,
    /// what it held before (which it gives up as it rejoins); empty for members that joined
    /// since. For classic members, decoded from the leader's `consumer` assignment bytes.
    pub assignment: Vec<(String, i32)>,
}

#[derive(Debug)]
pub(super) struct Member {
    pub(super) client_id: String,
    pub(super) topics: Vec<String>,
    pub(super) session_timeout_ms: i64,
    pub(super) rebalance_timeout_ms: i64,
    pub(super) last_seen_ms: i64,
    /// Rejoined during the current rebalance (and so revoked what it held).
    pub(super) rejoined: bool,
    /// Number of its calls blocked in the coordinator: a member waiting on us is alive.
    pub(super) waiting: u32,
    /// Handed out in the current generation.
    pub(super) assignment: Vec<(String, i32)>,
    /// Set for members of classic (client-assigned) groups.
    pub(super) classic: Option<ClassicMemberState>,
}

impl Member {
    fn session_deadline(&self) -> i64 {
        self.last_seen_ms.saturating_add(self.session_timeout_ms)
    }
}

#[derive(Debug)]
pub(super) struct Group {
    pub(super) state: GroupState,
    pub(super) generation: i32,
    /// Set while embedded consumers hold the group.
    pub(super) strategy: Option<AssignmentStrategy>,
    /// Set while Kafka clients (the classic protocol) hold the group; never with `strategy`.
    pub(super) classic: Option<ClassicGroup>,
    pub(super) members: BTreeMap<String, Member>,
    /// Member ids handed out with `MemberIdRequired` (KIP-394), by the ms they expire at: a
    /// rebalance waits for them to join with it.
    pub(super) pending: BTreeMap<String, i64>,
    pub(super) rebalance_started_ms: i64,
}

impl Group {
    pub(super) fn new() -> Self {
        Group {
            state: GroupState::Empty,
            generation: 0,
            strategy: None,
            classic: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            rebalance_started_ms: 0,
        }
    }

    /// Moves on to the next generation. Wraps to 1 rather than overflowing, which would need
    /// two billion rebalances; 0 and below stay reserved for "never had a generation".
    pub(super) fn bump_generation(&mut self) {
        self.generation = self.generation.checked_add(1).unwrap_or(1);
    }

    /// Starts an eager rebalance: everyone must rejoin (revoking what they hold). With no
    /// members left the rebalance is trivially complete and the group is empty. Classic
    /// members still waiting for the assignment of the generation being abandoned learn that
    /// it will not come.
    pub(super) fn start_rebalance(&mut self, now: i64) {
        if self.members.is_empty() {
            self.become_empty();
            return;
        }
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                if let Some(c) = &mut member.classic {
                    c.answer_sync(Err(GroupErrorKind::RebalanceInProgress));
                }
            }
        }
        if let Some(c) = &mut self.classic {
            c.sync_deadline_ms = None;
        }
        self.state = GroupState::PreparingRebalance;
        self.rebalance_started_ms = now;
        for member in self.members.values_mut() {
            member.rejoined = false;
        }
    }

    /// Like Kafka, reaching Empty completes a (memberless) generation, so a commit carrying
    /// the last real generation is refused even if members come back.
    fn become_empty(&mut self) {
        if self.state != GroupState::Empty {
            self.bump_generation();
        }
        self.state = GroupState::Empty;
        self.strategy = None;
        self.classic = None;
    }

    pub(super) fn remove_member(&mut self, member_id: &str, now: i64) {
        if self.members.remove(member_id).is_none() {
            return;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.start_rebalance(now),
            GroupState::PreparingRebalance if self.members.is_empty() => self.become_empty(),
            GroupState::PreparingRebalance | GroupState::Empty => {}
        }
        self.complete_classic_if_ready(now, false);
    }

    fn rebalance_deadline(&self) -> Option<i64> {
        if self.state != GroupState::PreparingRebalance {
            return None;
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()?;
        Some(self.rebalance_started_ms.saturating_add(timeout))
    }

    /// Applies every deadline that has passed by `now`; true if the group changed.
    pub(super) fn expire(&mut self, now: i64) -> bool {
        let mut changed = false;
        let before = self.pending.len();
        self.pending.retain(|_, expires_ms| now < *expires_ms);
        if self.pending.len() != before {
            changed = true;
            self.complete_classic_if_ready(now, false);
        }
        let dead: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.waiting == 0 && now >= m.session_deadline())
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            self.remove_member(&id, now);
            changed = true;
        }
        if self.rebalance_deadline().is_some_and(|d| now >= d) {
            let laggards: Vec<String> = self
                .members
                .iter()
                .filter(|(_, m)| !m.rejoined)
                .map(|(id, _)| id.clone())
                .collect();
            for id in laggards {
                self.remove_member(&id, now);
                changed = true;
            }
            // Like Kafka, the rebalance timeout completes the join even if member ids handed
            // out with MemberIdRequired were never used.
            changed |= self.complete_classic_if_ready(now, true);
        }
        if let Some(deadline) = self.classic.as_ref().and_then(|c| c.sync_deadline_ms)
            && now >= deadline
        {
            // Members that got the new generation but never synced are gone (Kafka's pending
            // sync timeout): the rest rebalance without them.
            let unsynced: Vec<String> = self
                .members
                .iter()
                .filter(|(_, m)| m.classic.as_ref().is_some_and(|c| !c.synced()))
                .map(|(id, _)| id.clone())
                .collect();
            if let Some(c) = &mut self.classic {
                c.sync_deadline_ms = None;
            }
            for id in unsynced {
                self.remove_member(&id, now);
                changed = true;
            }
        }
        changed
    }

    /// When the next deadline falls, so a blocked waiter can wake up and apply it.
    pub(super) fn next_deadline(&self) -> Option<i64> {
        let sessions = self
            .members
            .values()
            .filter(|m| m.waiting == 0)
            .map(Member::session_deadline);
        let sync = self.classic.as_ref().and_then(|c| c.sync_deadline_ms);
        sessions
            .chain(self.rebalance_deadline())
            .chain(self.pending.values().copied())
            .chain(sync)
            .min()
    }

    /// Every member has rejoined (and, for classic groups, every member id handed out has
    /// been used, unless `force`d by the rebalance timeout).
    pub(super) fn ready_to_complete(&self, force: bool) -> bool {
        self.state == GroupState::PreparingRebalance
            && !self.members.is_empty()
            && self.members.values().all(|m| m.rejoined)
            && (force || self.classic.is_none() || self.pending.is_empty())
    }

    /// Ends the rebalance: next generation, fresh assignment for everyone.
    fn complete_rebalance(&mut self, partitions_of: &dyn Fn(&str) -> Option<i32>) {
        let strategy = self.strategy.unwrap_or_default();
        let members: Vec<(String, Vec<String>)> = self
            .members
            .iter()
            .map(|(id, m)| (id.clone(), m.topics.clone()))
            .collect();
        let mut partitions = BTreeMap::new();
        for (_, topics) in &members {
            for topic in topics {
                if !partitions.contains_key(topic)
                    && let Some(count) = partitions_of(topic).filter(|&n| n > 0)
                {
                    partitions.insert(topic.clone(), count);
                }
            }
        }
        let previous: HashMap<String, Vec<(String, i32)>> = self
            .members
            .iter()
            .map(|(id, m)| (id.clone(), m.assignment.clone()))
            .collect();
        let mut assignment = assign(strategy, &members, &partitions, &previous);
        self.bump_generation();
        self.state = GroupState::Stable;
        for (id, member) in &mut self.members {
            member.assignment = assignment.remove(id).unwrap_or_default();
            member.rejoined = false;
        }
    }

    fn describe(&self, name: &str) -> GroupDescription {
        let protocol = self.classic.as_ref().and_then(|c| c.protocol_name.clone());
        GroupDescription {
            group: name.to_string(),
            state: self.state,
            generation: self.generation,
            strategy: self.strategy,
            members: self
                .members
                .iter()
                .map(|(id, m)| match &m.classic {
                    None => MemberDescription {
                        member_id: id.clone(),
                        client_id: m.client_id.clone(),
                        group_instance_id: None,
                        client_host: String::new(),
                        topics: m.topics.clone(),
                        assignment: m.assignment.clone(),
                    },
                    Some(c) => c.describe(id, &m.client_id, protocol.as_deref()),
                })
                .collect(),
            protocol,
        }
    }
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) groups: BTreeMap<String, Group>,
    pub(super) next_member: u64,
}

/// Runs Kafka's classic ("eager") group protocol for every group in the process, computing
/// assignments itself (as KIP-848 does) so that members never talk to each other.
///
/// A member [`join`](Self::join)s, then [`await_assignment`](Self::await_assignment)s, then
/// [`heartbeat`](Self::heartbeat)s while it consumes. When membership or subscriptions change
/// the group enters [`GroupState::PreparingRebalance`]; heartbeats answer
/// [`GroupErrorKind::RebalanceInProgress`], and each member must give up all its partitions
/// and join again. Only when every member has rejoined (or the rebalance timeout has dropped
/// the rest) does the generation advance and the new assignment go out, so no partition is
/// ever owned by two live members, and a member that receives an assignment knows every other
/// member has already let go of its old one.
///
/// Groups of Kafka clients run the same protocol with the assignment left to their leader:
/// [`join_classic`](Self::join_classic) and [`sync`](Self::sync) (see the `classic` module).
/// A group is one kind or the other until it is empty again.
#[derive(Debug)]
pub struct GroupCoordinator {
    pub(super) clock: Arc<dyn Clock>,
    /// Random per coordinator, so ids from a previous process (or another coordinator) are
    /// unknown here instead of colliding with a new member's.
    id_prefix: String,
    inner: Mutex<Inner>,
    pub(super) changed: Condvar,
}

/// What a member's generation is checked for.
#[derive(Debug, Clone, Copy)]
enum Check {
    Heartbeat,
    Commit,
    TxnCommit,
}

pub(super) fn group_error(group: &str, reason: GroupErrorKind) -> Error {
    Error::Group {
        group: group.to_string(),
        reason,
    }
}

pub(super) fn unknown_member(group: &str, member_id: &str) -> Error {
    group_error(group, GroupErrorKind::UnknownMember(member_id.to_string()))
}

fn embedded_in_sync(group: &str) -> Error {
    Error::Internal(format!(
        "group '{group}' of embedded consumers is in CompletingRebalance"
    ))
}

pub(super) fn empty_with_members(group: &str) -> Error {
    Error::Internal(format!("group '{group}' is Empty but has members"))
}

/// Refuses a member that would take the group past [`MEMBERS_PER_GROUP_MAX`].
pub(super) fn check_room(group_name: &str, g: &Group) -> Result<()> {
    if g.members.len() + g.pending.len() >= MEMBERS_PER_GROUP_MAX {
        return Err(group_error(group_name, GroupErrorKind::GroupMaxSizeReached));
    }
    Ok(())
}

impl GroupCoordinator {
    /// A coordinator with no groups, judging timeouts by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let hasher = std::collections::hash_map::RandomState::new();
        let (a, b) = (hasher.hash_one(1u8), hasher.hash_one(2u8));
        let id_prefix = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b & 0xffff
        );
        GroupCoordinator {
            clock,
            id_prefix,
            inner: Mutex::new(Inner {
                groups: BTreeMap::new(),
                next_member: 0,
            }),
            changed: Condvar::new(),
        }
    }

    /// The state stays consistent even if a holder panicked (every mutation is completed
    /// before anything can panic), so a poisoned lock is still usable.
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A member id no other member of any coordinator has or had: the client id (so ids say
    /// who they are), this coordinator's random prefix and a counter.
    pub(super) fn new_member_id(&self, inner: &mut Inner, client_id: &str) -> String {
        inner.next_member += 1;
        format!(
            "{client_id}-{}-{:012x}",
            self.id_prefix,
            inner.next_member - 1
        )
    }

    /// Applies the group's passed deadlines, waking waiters if that changed it.
    pub(super) fn expire_group(&self, inner: &mut Inner, group: &str, now: i64) {
        if let Some(g) = inner.groups.get_mut(group)
            && g.expire(now)
        {
            self.changed.notify_all();
        }
    }

    /// Looks a group up after applying its deadlines.
    pub(super) fn group<'a>(
        &self,
        inner: &'a mut Inner,
        group: &str,
        now: i64,
    ) -> Option<&'a mut Group> {
        self.expire_group(inner, group, now);
        inner.groups.get_mut(group)
    }

    /// Joins `group`, or rejoins it.
    ///
    /// With `member_id` `None` the caller is a new member and receives a fresh id, which it
    /// must pass on every later call. With an id, the member declares it has revoked every
    /// partition it held and is ready for a new assignment. A new member, or one whose
    /// subscription or strategy changed, starts a rebalance; during a rebalance, rejoining is
    /// what the coordinator waits for. A rejoin with nothing changed in a stable group changes
    /// nothing: the member gets its current assignment back.
    ///
    /// Never blocks: follow with [`await_assignment`](Self::await_assignment).
    ///
    /// Errors: [`Error::Config`] for an invalid configuration, an empty group name, or a
    /// strategy different from the other members'; [`GroupErrorKind::UnknownMember`] for an
    /// id the group does not hold (it expired, left or was dropped: join again without one).
    pub fn join(
        &self,
        group: &str,
        member_id: Option<&str>,
        config: &MemberConfig,
    ) -> Result<String> {
        config.validate()?;
        if group.is_empty() {
            return Err(Error::config("group", "group names must not be empty"));
        }
        let topics = config.normalized_topics();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let now = self.clock.monotonic_ms();
        if let Some(id) = member_id
            && !inner.groups.contains_key(group)
        {
            // No group is created for a member that cannot be in it.
            return Err(unknown_member(group, id));
        }
        let new_id = member_id
            .is_none()
            .then(|| self.new_member_id(inner, &config.client_id));
        self.expire_group(inner, group, now);
        let g = inner
            .groups
            .entry(group.to_string())
            .or_insert_with(Group::new);
        if let Some(id) = member_id
            && !g.members.contains_key(id)
        {
            return Err(unknown_member(group, id));
        }
        if g.classic.is_some() {
            return Err(group_error(
                group,
                GroupErrorKind::InconsistentGroupProtocol(
                    "Kafka clients hold this group (they assign partitions themselves); an \
                     embedded consumer cannot join it"
                        .into(),
                ),
            ));
        }
        if member_id.is_none() {
            check_room(group, g)?;
        }
        if let Some(current) = g.strategy
            && current != config.strategy
            && g.members.keys().any(|id| Some(id.as_str()) != member_id)
        {
            return Err(Error::config(
                "strategy",
                format!(
                    "group '{group}' uses the {current} strategy; all members must use the same one"
                ),
            ));
        }
        let strategy_changed = g.strategy != Some(config.strategy);
        g.strategy = Some(config.strategy);

        let id = match member_id {
            Some(id) => {
                let state = g.state;
                let Some(member) = g.members.get_mut(id) else {
                    return Err(unknown_member(group, id));
                };
                let subscription_changed = member.topics != topics;
                member.client_id.clone_from(&config.client_id);
                member.topics = topics;
                member.session_timeout_ms = config.session_timeout_ms;
                member.rebalance_timeout_ms = config.rebalance_timeout_ms;
                member.last_seen_ms = now;
                match state {
                    GroupState::Stable if subscription_changed || strategy_changed => {
                        g.start_rebalance(now);
                    }
                    GroupState::Stable => {}
                    GroupState::PreparingRebalance => {}
                    GroupState::Empty => return Err(empty_with_members(group)),
                    GroupState::CompletingRebalance => return Err(embedded_in_sync(group)),
                }
                if let Some(member) = g.members.get_mut(id) {
                    member.rejoined = true;
                }
                id.to_string()
            }
            None => {
                let id = new_id.unwrap_or_default();
                g.members.insert(
                    id.clone(),
                    Member {
                        client_id: config.client_id.clone(),
                        topics,
                        session_timeout_ms: config.session_timeout_ms,
                        rebalance_timeout_ms: config.rebalance_timeout_ms,
                        last_seen_ms: now,
                        rejoined: true,
                        waiting: 0,
                        assignment: Vec::new(),
                        classic: None,
                    },
                );
                if g.state != GroupState::PreparingRebalance {
                    g.start_rebalance(now);
                }
                if let Some(member) = g.members.get_mut(&id) {
                    member.rejoined = true;
                }
                id
            }
        };
        self.changed.notify_all();
        Ok(id)
    }

    /// Waits up to `wait` for the assignment of the rebalance this member joined.
    ///
    /// `Ok(Some(_))` once the group is stable with this member in it; `Ok(None)` if the
    /// rebalance is still waiting for others after `wait` (call again: waiting keeps the
    /// session alive). The rebalance itself is completed by whichever waiter first finds every
    /// member rejoined, which is why the caller supplies `partitions_of` (partition count of a
    /// topic, `None` if it does not exist): the coordinator holds no reference to the log.
    /// It runs under the coordinator's lock, so it must not call the coordinator.
    ///
    /// Errors: [`GroupErrorKind::UnknownMember`] if the member is gone (session or rebalance
    /// timeout, or it left); [`GroupErrorKind::RebalanceInProgress`] if a newer rebalance began
    /// that this member has not rejoined, so it must [`join`](Self::join) again first.
    pub fn await_assignment(
        &self,
        group: &str,
        member_id: &str,
        wait: Duration,
        partitions_of: &dyn Fn(&str) -> Option<i32>,
    ) -> Result<Option<Assignment>> {
        let give_up = Instant::now().checked_add(wait);
        let mut guard = self.lock();
        loop {
            let now = self.clock.monotonic_ms();
            let Some(g) = self.group(&mut guard, group, now) else {
                return Err(unknown_member(group, member_id));
            };
            let Some(member) = g.members.get_mut(member_id) else {
                return Err(unknown_member(group, member_id));
            };
            member.last_seen_ms = now;
            match g.state {
                GroupState::Stable => {
                    return Ok(Some(Assignment {
                        generation: g.generation,
                        partitions: member.assignment.clone(),
                    }));
                }
                GroupState::PreparingRebalance if !member.rejoined => {
                    return Err(group_error(group, GroupErrorKind::RebalanceInProgress));
                }
                GroupState::PreparingRebalance => {
                    if g.ready_to_complete(false) {
                        g.complete_rebalance(partitions_of);
                        self.changed.notify_all();
                        continue;
                    }
                }
                GroupState::Empty => return Err(empty_with_members(group)),
                GroupState::CompletingRebalance => return Err(embedded_in_sync(group)),
            }

            // Sleep until woken, the caller's patience runs out, or the group's next deadline
            // (so a timed-out rebalance completes even if nobody else calls).
            let remaining = match give_up {
                Some(t) => t.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if remaining.is_zero() {
                return Ok(None);
            }
            let until_deadline = g
                .next_deadline()
                .map(|d| Duration::from_millis(d.saturating_sub(now).max(0) as u64 + 1))
                .unwrap_or(Duration::MAX);
            if let Some(member) = g.members.get_mut(member_id) {
                member.waiting += 1;
            }
            let (woken, _) = self
                .changed
                .wait_timeout(guard, remaining.min(until_deadline))
                .unwrap_or_else(|e| e.into_inner());
            guard = woken;
            let now = self.clock.monotonic_ms();
            if let Some(member) = guard
                .groups
                .get_mut(group)
                .and_then(|g| g.members.get_mut(member_id))
            {
                member.last_seen_ms = now;
                member.waiting -= 1;
            }
        }
    }

    /// Proves the member alive and asks whether it may keep its partitions.
    ///
    /// `Ok(())` while the group is stable in `generation`. Otherwise the member must stop
    /// consuming, give up its partitions and [`join`](Self::join) again:
    /// [`GroupErrorKind::RebalanceInProgress`] during a rebalance,
    /// [`GroupErrorKind::IllegalGeneration`] if it missed a generation (checked first, as Kafka
    /// does), [`GroupErrorKind::UnknownMember`] if it is no longer in the group (rejoin without
    /// an id).
    pub fn heartbeat(&self, group: &str, member_id: &str, generation: i32) -> Result<()> {
        self.check_member(group, member_id, generation, Check::Heartbeat)
    }

    /// Checks that an offset commit comes from a current owner.
    ///
    /// Like [`heartbeat`](Self::heartbeat) (and it counts as one), except that during a
    /// rebalance a member of the current generation is still allowed, as Kafka allows: it is
    /// how members commit what they processed before revoking, and nobody else can own those
    /// partitions until the next generation. In a classic group's `CompletingRebalance` a
    /// commit is refused with [`GroupErrorKind::RebalanceInProgress`] (as in Kafka: the member
    /// has not yet received the partitions it would commit for).
    pub fn validate_generation(&self, group: &str, member_id: &str, generation: i32) -> Result<()> {
        self.check_member(group, member_id, generation, Check::Commit)
    }

    /// Checks that an offset commit inside a transaction (KIP-447) comes from a current member:
    /// only the member and its generation count, whatever the group's state, as in Kafka's
    /// TxnOffsetCommit; the transaction's own fencing does the rest.
    pub fn validate_txn_generation(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
    ) -> Result<()> {
        self.check_member(group, member_id, generation, Check::TxnCommit)
    }

    fn check_member(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        check: Check,
    ) -> Result<()> {
        let mut guard = self.lock();
        let now = self.clock.monotonic_ms();
        let Some(g) = self.group(&mut guard, group, now) else {
            return Err(unknown_member(group, member_id));
        };
        let Some(member) = g.members.get_mut(member_id) else {
            return Err(unknown_member(group, member_id));
        };
        member.last_seen_ms = now;
        if generation != g.generation {
            return Err(group_error(
                group,
                GroupErrorKind::IllegalGeneration {
                    given: generation,
                    current: g.generation,
                },
            ));
        }
        let rebalancing = || Err(group_error(group, GroupErrorKind::RebalanceInProgress));
        match (g.state, check) {
            (GroupState::Empty, _) => Err(empty_with_members(group)),
            (_, Check::TxnCommit) | (GroupState::Stable, _) => Ok(()),
            (GroupState::PreparingRebalance, Check::Commit) => Ok(()),
            (GroupState::PreparingRebalance, Check::Heartbeat) => rebalancing(),
            // The member knows the new generation from its join response; heartbeats while it
            // waits for the leader's assignment are normal.
            (GroupState::CompletingRebalance, Check::Heartbeat) => Ok(()),
            (GroupState::CompletingRebalance, Check::Commit) => rebalancing(),
        }
    }

    /// Leaves the group at once, instead of making the others wait out the session timeout.
    /// The caller must have stopped consuming first; the rest of the group rebalances.
    pub fn leave(&self, group: &str, member_id: &str) -> Result<()> {
        let mut guard = self.lock();
        let now = self.clock.monotonic_ms();
        let Some(g) = self.group(&mut guard, group, now) else {
            return Err(unknown_member(group, member_id));
        };
        if g.pending.remove(member_id).is_some() {
            g.complete_classic_if_ready(now, false);
            self.changed.notify_all();
            return Ok(());
        }
        if !g.members.contains_key(member_id) {
            return Err(unknown_member(group, member_id));
        }
        g.remove_member(member_id, now);
        self.changed.notify_all();
        Ok(())
    }

    /// A snapshot of `group` (after applying its deadlines), or `None` if no member ever
    /// joined it.
    pub fn describe(&self, group: &str) -> Option<GroupDescription> {
        let mut guard = self.lock();
        let now = self.clock.monotonic_ms();
        self.group(&mut guard, group, now)
            .map(|g| g.describe(group))
    }

    /// Names of all groups ever joined, sorted; empty groups are kept because their committed
    /// offsets still matter.
    pub fn list(&self) -> Vec<String> {
        self.lock().groups.keys().cloned().collect()
    }

    /// Tells the coordinator that `topic` was created, deleted or changed its partition count,
    /// so that stable groups subscribed to it rebalance and the new partitions get owners.
    /// Groups already rebalancing need nothing: they read partition counts when they complete.
    pub fn topic_changed(&self, topic: &str) {
        let mut guard = self.lock();
        let now = self.clock.monotonic_ms();
        for g in guard.groups.values_mut() {
            g.expire(now);
            // Kafka clients watch topic metadata themselves; their leader rejoins to rebalance.
            if g.state == GroupState::Stable
                && g.classic.is_none()
                && g.members
                    .values()
                    .any(|m| m.topics.iter().any(|t| t == topic))
            {
                g.start_rebalance(now);
            }
        }
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::thread;

    use super::*;
    use crate::clock::{ManualClock, SystemClock};

    const NOW: Duration = Duration::ZERO;
    const SESSION_MS: i64 = 10_000;
    const REBALANCE_MS: i64 = 5_000;

    fn setup() -> (Arc<ManualClock>, GroupCoordinator) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let coordinator = GroupCoordinator::new(clock.clone());
        (clock, coordinator)
    }

    fn config(client_id: &str, topics: &[&str]) -> MemberConfig {
        MemberConfig {
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: REBALANCE_MS,
            ..MemberConfig::new(client_id, topics.iter().copied())
        }
    }

    /// Topic "t" has 6 partitions, "u" 3; nothing else exists.
    fn partitions(topic: &str) -> Option<i32> {
        match topic {
            "t" => Some(6),
            "u" => Some(3),
            _ => None,
        }
    }

    fn tps(spec: &[(&str, i32)]) -> Vec<(String, i32)> {
        spec.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    fn t(ps: &[i32]) -> Vec<(String, i32)> {
        ps.iter().map(|&p| ("t".to_string(), p)).collect()
    }

    fn group_error_kind<T: fmt::Debug>(result: Result<T>) -> GroupErrorKind {
        match result {
            Err(Error::Group { reason, .. }) => reason,
            other => panic!("expected a group error, got {other:?}"),
        }
    }

    fn join(c: &GroupCoordinator, member: Option<&str>, cfg: &MemberConfig) -> String {
        c.join("g", member, cfg).expect("join")
    }

    /// The assignment, which must be ready now.
    fn ready(c: &GroupCoordinator, member: &str) -> Assignment {
        c.await_assignment("g", member, NOW, &partitions)
            .expect("await_assignment")
            .expect("assignment should be ready")
    }

    fn pending(c: &GroupCoordinator, member: &str) {
        let got = c
            .await_assignment("g", member, NOW, &partitions)
            .expect("await_assignment");
        assert_eq!(got, None, "{member} must not get an assignment yet");
    }

    /// Asserts that the assignments share a generation and cover `expected` exactly once.
    fn assert_exclusive_complete(assignments: &[&Assignment], expected: &[(String, i32)]) {
        let mut seen = HashSet::new();
        for a in assignments {
            assert_eq!(a.generation, assignments[0].generation);
            for tp in &a.partitions {
                assert!(seen.insert(tp.clone()), "{tp:?} assigned twice");
            }
        }
        let expected: HashSet<(String, i32)> = expected.iter().cloned().collect();
        assert_eq!(seen, expected);
    }

    /// Three members a < b < c on topic "t", stable in generation 1.
    fn three_stable(c: &GroupCoordinator) -> [String; 3] {
        let cfg = config("m", &["t"]);
        let ids = [
            join(c, None, &cfg),
            join(c, None, &cfg),
            join(c, None, &cfg),
        ];
        for id in &ids {
            assert_eq!(ready(c, id).generation, 1);
        }
        ids
    }

    #[test]
    fn three_members_get_an_exclusive_complete_assignment() {
        let (_clock, c) = setup();
        let cfg = config("m", &["t"]);
        let a = join(&c, None, &cfg);
        let b = join(&c, None, &cfg);
        let d = join(&c, None, &cfg);
        assert!(a < b && b < d, "ids sort in join order: {a} {b} {d}");
        let desc = c.describe("g").expect("group exists");
        assert_eq!(desc.state, GroupState::PreparingRebalance);
        assert_eq!(desc.generation, 0);

        let (aa, bb, dd) = (ready(&c, &a), ready(&c, &b), ready(&c, &d));
        assert_eq!(
            aa,
            Assignment {
                generation: 1,
                partitions: t(&[0, 1])
            }
        );
        assert_eq!(
            bb,
            Assignment {
                generation: 1,
                partitions: t(&[2, 3])
            }
        );
        assert_eq!(
            dd,
            Assignment {
                generation: 1,
                partitions: t(&[4, 5])
            }
        );
        assert_exclusive_complete(&[&aa, &bb, &dd], &t(&[0, 1, 2, 3, 4, 5]));
        for id in [&a, &b, &d] {
            c.heartbeat("g", id, 1).expect("stable heartbeat");
        }
        assert_eq!(c.describe("g").map(|d| d.state), Some(GroupState::Stable));
    }

    #[test]
    fn new_member_triggers_eager_rebalance() {
        let (_clock, c) = setup();
        let [a, b, d] = three_stable(&c);
        let e = join(&c, None, &config("m", &["t"]));

        // Everyone learns of the rebalance; nobody gets generation 2 before all rejoined.
        assert_eq!(
            group_error_kind(c.heartbeat("g", &a, 1)),
            GroupErrorKind::RebalanceInProgress
        );
        pending(&c, &e);
        let desc = c.describe("g").expect("group");
        assert_eq!(desc.state, GroupState::PreparingRebalance);
        assert_eq!(desc.generation, 1);
        assert_eq!(desc.members.len(), 4);
        assert_eq!(desc.members[0].assignment, t(&[0, 1]));
        assert_eq!(desc.members[3].assignment, vec![]);

        assert_eq!(join(&c, Some(&a), &config("m", &["t"])), a);
        pending(&c, &a);
        pending(&c, &e);
        join(&c, Some(&b), &config("m", &["t"]));
        pending(&c, &b);
        // d has not rejoined: it still owns its generation-1 partitions and may commit them.
        c.validate_generation("g", &d, 1)
            .expect("commit during rebalance");
        assert_eq!(
            group_error_kind(c.heartbeat("g", &d, 1)),
            GroupErrorKind::RebalanceInProgress
        );
        pending(&c, &a);
        join(&c, Some(&d), &config("m", &["t"]));

        // The last to rejoin completes the rebalance; then everyone gets generation 2.
        let dd = ready(&c, &d);
        let (aa, bb, ee) = (ready(&c, &a), ready(&c, &b), ready(&c, &e));
        // Range over four members: the first two by id get 2 partitions, the others 1.
        assert_eq!(aa.partitions, t(&[0, 1]));
        assert_eq!(bb.partitions, t(&[2, 3]));
        assert_eq!(dd.partitions, t(&[4]));
        assert_eq!(ee.partitions, t(&[5]));
        assert_eq!(dd.generation, 2);
        assert_exclusive_complete(&[&aa, &bb, &dd, &ee], &t(&[0, 1, 2, 3, 4, 5]));
        for id in [&a, &b, &d, &e] {
            c.heartbeat("g", id, 2).expect("stable again");
        }
        assert_eq!(
            group_error_kind(c.heartbeat("g", &a, 1)),
            GroupErrorKind::IllegalGeneration {
                given: 1,
                current: 2
            }
        );
    }

    #[test]
    fn await_before_rejoining_a_new_rebalance_is_refused() {
        let (_clock, c) = setup();
        let [a, _, _] = three_stable(&c);
        join(&c, None, &config("m", &["t"]));
        assert_eq!(
            group_error_kind(c.await_assignment("g", &a, NOW, &partitions)),
            GroupErrorKind::RebalanceInProgress
        );
    }

    #[test]
    fn silent_member_is_removed_after_session_timeout() {
        let (clock, c) = setup();
        let [a, b, d] = three_stable(&c);
        clock.advance(6_000);
        c.heartbeat("g", &a, 1).expect("alive");
        c.heartbeat("g", &b, 1).expect("alive");
        clock.advance(SESSION_MS - 6_000 - 1);
        c.heartbeat("g", &a, 1).expect("d has one millisecond left");
        clock.advance(1);
        assert_eq!(
            group_error_kind(c.heartbeat("g", &a, 1)),
            GroupErrorKind::RebalanceInProgress
        );
        assert_eq!(
            group_error_kind(c.heartbeat("g", &d, 1)),
            GroupErrorKind::UnknownMember(d.clone())
        );
        assert_eq!(
            group_error_kind(c.validate_generation("g", &d, 1)),
            GroupErrorKind::UnknownMember(d.clone())
        );
        join(&c, Some(&a), &config("m", &["t"]));
        join(&c, Some(&b), &config("m", &["t"]));
        let (aa, bb) = (ready(&c, &a), ready(&c, &b));
        assert_eq!(
            aa,
            Assignment {
                generation: 2,
                partitions: t(&[0, 1, 2])
            }
        );
        assert_eq!(
            bb,
            Assignment {
                generation: 2,
                partitions: t(&[3, 4, 5])
            }
        );

        // Everyone falls silent: the group empties at the next call, keeping its name.
        clock.advance(SESSION_MS);
        let desc = c.describe("g").expect("group kept");
        assert_eq!(desc.state, GroupState::Empty);
        assert_eq!(desc.generation, 3);
        assert!(desc.members.is_empty());
        assert_eq!(c.list(), vec!["g".to_string()]);
    }

    #[test]
    fn member_that_never_rejoins_is_dropped_after_the_longest_rebalance_timeout() {
        let (clock, c) = setup();
        let cfg = config("m", &["t"]);
        let a = join(&c, None, &cfg);
        let b = join(&c, None, &cfg);
        ready(&c, &a);
        ready(&c, &b);
        let slow = MemberConfig {
            rebalance_timeout_ms: 8_000,
            ..config("m", &["t"])
        };
        let e = join(&c, None, &slow);
        join(&c, Some(&a), &cfg);
        pending(&c, &a);
        // b keeps its session alive but never rejoins.
        clock.advance(REBALANCE_MS);
        assert_eq!(
            group_error_kind(c.heartbeat("g", &b, 1)),
            GroupErrorKind::RebalanceInProgress
        );
        pending(&c, &a);
        clock.advance(8_000 - REBALANCE_MS - 1);
        c.validate_generation("g", &b, 1).expect("b still a member");
        pending(&c, &e);
        clock.advance(1);
        let (aa, ee) = (ready(&c, &a), ready(&c, &e));
        assert_eq!(
            aa,
            Assignment {
                generation: 2,
                partitions: t(&[0, 1, 2])
            }
        );
        assert_eq!(
            ee,
            Assignment {
                generation: 2,
                partitions: t(&[3, 4, 5])
            }
        );
        assert_eq!(
            group_error_kind(c.heartbeat("g", &b, 1)),
            GroupErrorKind::UnknownMember(b.clone())
        );
    }

    #[test]
    fn rebalance_timeout_completes_for_a_blocked_waiter_with_the_real_clock() {
        let c = GroupCoordinator::new(Arc::new(SystemClock::new()));
        let cfg = MemberConfig {
            session_timeout_ms: 60_000,
            rebalance_timeout_ms: 100,
            ..MemberConfig::new("m", ["t"])
        };
        let a = c.join("g", None, &cfg).expect("join");
        let b = c.join("g", None, &cfg).expect("join");
        for id in [&a, &b] {
            c.await_assignment("g", id, NOW, &partitions)
                .expect("await")
                .expect("ready");
        }
        let e = c.join("g", None, &cfg).expect("join");
        c.join("g", Some(&a), &cfg).expect("rejoin");
        // Nobody calls while e waits; b never rejoins. The waiter must wake at the rebalance
        // deadline and complete the rebalance itself.
        let started = Instant::now();
        let got = c
            .await_assignment("g", &e, Duration::from_secs(30), &partitions)
            .expect("await")
            .expect("completed by rebalance timeout");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(
            got,
            Assignment {
                generation: 2,
                partitions: t(&[3, 4, 5])
            }
        );
        assert_eq!(
            group_error_kind(c.heartbeat("g", &b, 1)),
            GroupErrorKind::UnknownMember(b.clone())
        );
    }

    #[test]
    fn stale_generation_and_unknown_members_are_refused() {
        let (_clock, c) = setup();
        let [a, _, _] = three_stable(&c);
        assert_eq!(
            group_error_kind(c.heartbeat("g", &a, 0)),
            GroupErrorKind::IllegalGeneration {
                given: 0,
                current: 1
            }
        );
        assert_eq!(
            group_error_kind(c.heartbeat("g", &a, 2)),
            GroupErrorKind::IllegalGeneration {
                given: 2,
                current: 1
            }
        );
        assert_eq!(
            group_error_kind(c.heartbeat("g", "ghost", 1)),
            GroupErrorKind::UnknownMember("ghost".to_string())
        );
        assert_eq!(
            group_error_kind(c.heartbeat("nogroup", &a, 1)),
            GroupErrorKind::UnknownMember(a.clone())
        );
        assert_eq!(
            group_error_kind(c.join("g", Some("ghost"), &config("m", &["t"]))),
            GroupErrorKind::UnknownMember("ghost".to_string())
        );
        assert_eq!(
            group_error_kind(c.join("other", Some(&a), &config("m", &["t"]))),
            GroupErrorKind::UnknownMember(a.clone())
        );
        assert_eq!(
            group_error_kind(c.leave("g", "ghost")),
            GroupErrorKind::UnknownMember("ghost".to_string())
        );
        assert_eq!(
            group_error_kind(c.await_assignment("g", "ghost", NOW, &partitions)),
            GroupErrorKind::UnknownMember("ghost".to_string())
        );
        // Failed calls create no group and disturb none.
        assert_eq!(c.list(), vec!["g".to_string()]);
        c.heartbeat("g", &a, 1).expect("still stable");
    }

    #[test]
    fn validate_generation_follows_kafka_commit_rules() {
        let (_clock, c) = setup();
        let [a, b, d] = three_stable(&c);
        c.validate_generation("g", &a, 1)
            .expect("stable, current generation");
        assert_eq!(
            group_error_kind(c.validate_generation("g", &a, 0)),
            GroupErrorKind::IllegalGeneration {
                given: 0,
                current: 1
            }
        );
        let e = join(&c, None, &config("m", &["t"]));
        // During the rebalance, generation-1 members may commit, rejoined or not.
        c.validate_generation("g", &a, 1).expect("before rejoining");
        join(&c, Some(&a), &config("m", &["t"]));
        c.validate_generation("g", &a, 1).expect("after rejoining");
        for id in [&b, &d] {
            join(&c, Some(id), &config("m", &["t"]));
        }
        let ea = ready(&c, &e);
        assert_eq!(ea.generation, 2);
        assert_eq!(
            group_error_kind(c.validate_generation("g", &a, 1)),
            GroupErrorKind::IllegalGeneration {
                given: 1,
                current: 2
            }
        );
        c.validate_generation("g", &e, 2).expect("current");
        assert_eq!(
            group_error_kind(c.validate_generation("g", "ghost", 2)),
            GroupErrorKind::UnknownMember("ghost".to_string())
        );
    }

    #[test]
    fn leave_triggers_rebalance_and_empty_group_keeps_counting() {
        let (_clock, c) = setup();
        let [a, b, d] = three_stable(&c);
        c.leave("g", &b).expect("leave");
        assert_eq!(
            group_error_kind(c.leave("g", &b)),
            GroupErrorKind::UnknownMember(b.clone())
        );
        assert_eq!(
            group_error_kind(c.heartbeat("g", &a, 1)),
            GroupErrorKind::RebalanceInProgress
        );
        join(&c, Some(&a), &config("m", &["t"]));
        pending(&c, &a);
        join(&c, Some(&d), &config("m", &["t"]));
        let (aa, dd) = (ready(&c, &a), ready(&c, &d));
        assert_eq!(
            aa,
            Assignment {
                generation: 2,
                partitions: t(&[0, 1, 2])
            }
        );
        assert_eq!(
            dd,
            Assignment {
                generation: 2,
                partitions: t(&[3, 4, 5])
            }
        );

        c.leave("g", &a).expect("leave");
        c.leave("g", &d).expect("leave");
        let desc = c.describe("g").expect("empty groups are kept");
        assert_eq!(
            desc,
            GroupDescription {
                group: "g".to_string(),
                state: GroupState::Empty,
                generation: 3,
                strategy: None,
                protocol: None,
                members: vec![],
            }
        );
        assert_eq!(c.list(), vec!["g".to_string()]);

        let f = join(&c, None, &config("m", &["t"]));
        assert_eq!(
            ready(&c, &f),
            Assignment {
                generation: 4,
                partitions: t(&[0, 1, 2, 3, 4, 5])
            }
        );
    }

    #[test]
    fn describe_shows_members_and_assignments() {
        let (_clock, c) = setup();
        assert_eq!(c.describe("g"), None);
        let cfg = MemberConfig {
            strategy: AssignmentStrategy::RoundRobin,
            ..config("client-a", &["u", "t", "t"])
        };
        let a = join(&c, None, &cfg);
        let b = join(
            &c,
            None,
            &MemberConfig {
                client_id: "client-b".into(),
                ..cfg.clone()
            },
        );
        assert!(a.starts_with("client-a-"), "{a}");
        assert!(b.starts_with("client-b-"), "{b}");
        ready(&c, &a);
        ready(&c, &b);
        let topics = vec!["t".to_string(), "u".to_string()];
        assert_eq!(
            c.describe("g"),
            Some(GroupDescription {
                group: "g".to_string(),
                state: GroupState::Stable,
                generation: 1,
                strategy: Some(AssignmentStrategy::RoundRobin),
                protocol: None,
                members: vec![
                    MemberDescription {
                        member_id: a.clone(),
                        client_id: "client-a".to_string(),
                        group_instance_id: None,
                        client_host: String::new(),
                        topics: topics.clone(),
                        assignment: tps(&[("t", 0), ("t", 2), ("t", 4), ("u", 0), ("u", 2)]),
                    },
                    MemberDescription {
                        member_id: b.clone(),
                        client_id: "client-b".to_string(),
                        group_instance_id: None,
                        client_host: String::new(),
                        topics,
                        assignment: tps(&[("t", 1), ("t", 3), ("t", 5), ("u", 1)]),
                    },
                ],
            })
        );
    }

    #[test]
    fn subscription_change_rebalances_but_plain_rejoin_does_not() {
        let (_clock, c) = setup();
        let cfg = config("m", &["t"]);
        let a = join(&c, None, &cfg);
        let b = join(&c, None, &cfg);
        assert_eq!(ready(&c, &a).partitions, t(&[0, 1, 2]));
        ready(&c, &b);

        // Same subscription: nothing to rebalance, a gets its partitions back.
        join(&c, Some(&a), &cfg);
        c.heartbeat("g", &b, 1).expect("still stable");
        assert_eq!(
            ready(&c, &a),
            Assignment {
                generation: 1,
                partitions: t(&[0, 1, 2])
            }
        );

        join(&c, Some(&a), &config("m", &["u", "t"]));
        assert_eq!(
            group_error_kind(c.heartbeat("g", &b, 1)),
            GroupErrorKind::RebalanceInProgress
        );
        join(&c, Some(&b), &cfg);
        assert_eq!(
            ready(&c, &a).partitions,
            tps(&[("t", 0), ("t", 1), ("t", 2), ("u", 0), ("u", 1), ("u", 2)])
        );
        assert_eq!(ready(&c, &b).partitions, t(&[3, 4, 5]));
    }

    #[test]
    fn topic_changes_rebalance_subscribed_groups_only() {
        let (_clock, c) = setup();
        let counts = Mutex::new(HashMap::from([("t".to_string(), 2), ("u".to_string(), 1)]));
        let partitions_of = |topic: &str| counts.lock().expect("counts").get(topic).copied();
        let get = |group: &str, id: &str| {
            c.await_assignment(group, id, NOW, &partitions_of)
                .expect("await")
                .expect("ready")
        };
        let a = c
            .join("g1", None, &config("m", &["t", "later"]))
            .expect("join");
        let b = c.join("g2", None, &config("m", &["u"])).expect("join");
        assert_eq!(get("g1", &a).partitions, t(&[0, 1]));
        assert_eq!(get("g2", &b).partitions, tps(&[("u", 0)]));

        counts.lock().expect("counts").insert("t".to_string(), 4);
        c.topic_changed("t");
        assert_eq!(
            group_error_kind(c.heartbeat("g1", &a, 1)),
            GroupErrorKind::RebalanceInProgress
        );
        c.heartbeat("g2", &b, 1).expect("g2 is not subscribed to t");
        c.join("g1", Some(&a), &config("m", &["t", "later"]))
            .expect("rejoin");
        assert_eq!(
            get("g1", &a),
            Assignment {
                generation: 2,
                partitions: t(&[0, 1, 2, 3])
            }
        );

        // A topic created after the member subscribed.
        counts
            .lock()
            .expect("counts")
            .insert("later".to_string(), 1);
        c.topic_changed("later");
        c.join("g1", Some(&a), &config("m", &["t", "later"]))
            .expect("rejoin");
        assert_eq!(
            get("g1", &a).partitions,
            tps(&[("later", 0), ("t", 0), ("t", 1), ("t", 2), ("t", 3)])
        );
    }

    #[test]
    fn sticky_group_keeps_partitions_when_a_member_leaves() {
        let (_clock, c) = setup();
        let cfg = MemberConfig {
            strategy: AssignmentStrategy::Sticky,
            ..config("m", &["t", "u"])
        };
        let ids: Vec<String> = (0..3).map(|_| join(&c, None, &cfg)).collect();
        let before: Vec<Assignment> = ids.iter().map(|id| ready(&c, id)).collect();
        assert_exclusive_complete(
            &before.iter().collect::<Vec<_>>(),
            &[t(&[0, 1, 2, 3, 4, 5]), tps(&[("u", 0), ("u", 1), ("u", 2)])].concat(),
        );
        c.leave("g", &ids[1]).expect("leave");
        join(&c, Some(&ids[0]), &cfg);
        join(&c, Some(&ids[2]), &cfg);
        for i in [0, 2] {
            let after = ready(&c, &ids[i]);
            assert_eq!(after.generation, 2);
            assert!(
                before[i]
                    .partitions
                    .iter()
                    .all(|tp| after.partitions.contains(tp)),
                "{before:?} -> {after:?}"
            );
        }
    }

    #[test]
    fn mixed_strategies_are_refused() {
        let (_clock, c) = setup();
        let a = join(&c, None, &config("m", &["t"]));
        let sticky = MemberConfig {
            strategy: AssignmentStrategy::Sticky,
            ..config("m", &["t"])
        };
        match c.join("g", None, &sticky) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "strategy"),
            other => panic!("expected a config error, got {other:?}"),
        }
        // The sole member may change the strategy; an empty group takes any.
        join(&c, Some(&a), &sticky);
        assert_eq!(
            c.describe("g").and_then(|d| d.strategy),
            Some(AssignmentStrategy::Sticky)
        );
        c.leave("g", &a).expect("leave");
        join(&c, None, &config("m", &["t"]));
    }

    #[test]
    fn invalid_configurations_are_refused() {
        let (_clock, c) = setup();
        let cases = [
            (
                "session_timeout_ms",
                MemberConfig {
                    session_timeout_ms: 0,
                    ..config("m", &["t"])
                },
            ),
            (
                "rebalance_timeout_ms",
                MemberConfig {
                    rebalance_timeout_ms: -1,
                    ..config("m", &["t"])
                },
            ),
            ("topics", config("m", &[])),
            ("topics", config("m", &["t", ""])),
        ];
        for (expected, cfg) in cases {
            match c.join("g", None, &cfg) {
                Err(Error::Config { field, .. }) => assert_eq!(field, expected),
                other => panic!("expected a config error on {expected}, got {other:?}"),
            }
        }
        match c.join("", None, &config("m", &["t"])) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "group"),
            other => panic!("expected a config error, got {other:?}"),
        }
        assert!(c.list().is_empty());
    }

    #[test]
    fn member_ids_are_unique_per_coordinator_and_across_coordinators() {
        let (_clock, c) = setup();
        let cfg = config("client", &["t"]);
        let ids: HashSet<String> = (0..200).map(|_| join(&c, None, &cfg)).collect();
        assert_eq!(ids.len(), 200);
        assert!(ids.iter().all(|id| id.starts_with("client-")));
        let (_clock, other) = setup();
        let first = other.join("g", None, &cfg).expect("join");
        assert!(
            !ids.contains(&first),
            "{first} reused by a second coordinator"
        );
        // An id from another coordinator (e.g. before a restart) is unknown here.
        assert_eq!(
            group_error_kind(other.heartbeat("g", ids.iter().next().map_or("", |s| s), 0)),
            GroupErrorKind::UnknownMember(ids.iter().next().cloned().unwrap_or_default())
        );
    }

    #[test]
    fn coordinator_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<GroupCoordinator>();
        assert_send_sync::<Arc<dyn Clock>>();
    }

    type Owners = Mutex<HashMap<(String, String, i32), (String, i32)>>;

    fn is_kind(e: &Error, f: impl Fn(&GroupErrorKind) -> bool) -> bool {
        matches!(e, Error::Group { reason, .. } if f(reason))
    }

    /// One consumer: join, wait for the assignment, record ownership, heartbeat while
    /// "consuming", and give everything up (in the table first) before rejoining or leaving.
    /// Returns how many assignments it received.
    fn consumer(
        coordinator: &GroupCoordinator,
        owners: &Owners,
        group: &str,
        strategy: AssignmentStrategy,
        seed: u64,
        until: Instant,
    ) -> usize {
        let mut rng = fastrand::Rng::with_seed(seed);
        let partitions_of = |topic: &str| match topic {
            "a" => Some(7),
            "b" => Some(3),
            _ => None,
        };
        let mut cfg = MemberConfig {
            session_timeout_ms: 1_000,
            rebalance_timeout_ms: 1_000,
            strategy,
            ..MemberConfig::new(format!("c{seed}"), ["a", "b"])
        };
        let release = |member: &str| {
            owners
                .lock()
                .expect("owners")
                .retain(|(g, _, _), (m, _)| !(g == group && m == member));
        };
        let mut id: Option<String> = None;
        let mut received = 0;
        while Instant::now() < until {
            let member = match coordinator.join(group, id.as_deref(), &cfg) {
                Ok(member) => member,
                Err(e) if is_kind(&e, |k| matches!(k, GroupErrorKind::UnknownMember(_))) => {
                    id = None;
                    continue;
                }
                Err(e) => panic!("join: {e}"),
            };
            id = Some(member.clone());
            let assignment = loop {
                match coordinator.await_assignment(
                    group,
                    &member,
                    Duration::from_millis(20),
                    &partitions_of,
                ) {
                    Ok(Some(a)) => break Some(a),
                    Ok(None) => {}
                    Err(e) if is_kind(&e, |k| *k == GroupErrorKind::RebalanceInProgress) => {
                        break None;
                    }
                    Err(e) if is_kind(&e, |k| matches!(k, GroupErrorKind::UnknownMember(_))) => {
                        id = None;
                        break None;
                    }
                    Err(e) => panic!("await_assignment: {e}"),
                }
            };
            let Some(assignment) = assignment else {
                continue;
            };
            received += 1;
            {
                let mut table = owners.lock().expect("owners");
                for (topic, p) in &assignment.partitions {
                    let key = (group.to_string(), topic.clone(), *p);
                    let mine = (member.clone(), assignment.generation);
                    if let Some((other, generation)) = table.insert(key, mine) {
                        panic!(
                            "{group} {topic}-{p}: {member} got it in generation {} while {other} \
                             (generation {generation}) still owned it",
                            assignment.generation
                        );
                    }
                }
            }
            while Instant::now() < until {
                thread::sleep(Duration::from_millis(rng.u64(1..4)));
                match rng.u32(0..100) {
                    0 => {
                        release(&member);
                        let _ = coordinator.leave(group, &member);
                        id = None;
                        thread::sleep(Duration::from_millis(rng.u64(0..20)));
                        break;
                    }
                    1 => {
                        release(&member);
                        cfg.topics = if cfg.topics.len() == 2 {
                            vec!["a".into()]
                        } else {
                            vec!["a".into(), "b".into()]
                        };
                        break;
                    }
                    _ => {}
                }
                match coordinator.heartbeat(group, &member, assignment.generation) {
                    Ok(()) => {}
                    Err(e) if is_kind(&e, |k| matches!(k, GroupErrorKind::UnknownMember(_))) => {
                        release(&member);
                        id = None;
                        break;
                    }
                    Err(e)
                        if is_kind(&e, |k| {
                            matches!(
                                k,
                                GroupErrorKind::RebalanceInProgress
                                    | GroupErrorKind::IllegalGeneration { .. }
                            )
                        }) =>
                    {
                        release(&member);
                        break;
                    }
                    Err(e) => panic!("heartbeat: {e}"),
                }
            }
        }
        if let Some(member) = id {
            release(&member);
            let _ = coordinator.leave(group, &member);
        }
        received
    }

    #[test]
    fn threads_never_own_the_same_partition_at_once() {
        let coordinator = Arc::new(GroupCoordinator::new(Arc::new(SystemClock::new())));
        let owners: Arc<Owners> = Arc::default();
        let until = Instant::now() + Duration::from_millis(2_000);
        let strategies = [
            AssignmentStrategy::Range,
            AssignmentStrategy::RoundRobin,
            AssignmentStrategy::Sticky,
        ];

        // A member of the first group that takes its assignment and then crashes: it owns
        // nothing any more but never calls again, so only its session timeout removes it.
        let crash_cfg = MemberConfig {
            session_timeout_ms: 1_000,
            rebalance_timeout_ms: 1_000,
            strategy: strategies[0],
            ..MemberConfig::new("crasher", ["a"])
        };
        let crasher = coordinator.join("range", None, &crash_cfg).expect("join");

        let mut handles = Vec::new();
        for strategy in strategies {
            for i in 0..3u64 {
                let (coordinator, owners) = (coordinator.clone(), owners.clone());
                let seed = i * 10 + strategy as u64;
                handles.push(thread::spawn(move || {
                    let group = strategy.to_string();
                    let received = consumer(&coordinator, &owners, &group, strategy, seed, until);
                    (group, received)
                }));
            }
        }
        let mut received: HashMap<String, usize> = HashMap::new();
        for handle in handles {
            let (group, n) = handle.join().expect("consumer thread panicked");
            *received.entry(group).or_default() += n;
        }

        assert!(owners.lock().expect("owners").is_empty());
        for strategy in strategies {
            let group = strategy.to_string();
            let desc = coordinator.describe(&group).expect("group exists");
            assert_eq!(desc.state, GroupState::Empty, "{desc:?}");
            assert!(
                desc.generation > 5,
                "{group} made little progress: {desc:?}"
            );
            assert!(received[&group] > 5, "{group}: {received:?}");
        }
        assert_eq!(
            group_error_kind(coordinator.heartbeat("range", &crasher, 1)),
            GroupErrorKind::UnknownMember(crasher.clone())
        );
    }
}
