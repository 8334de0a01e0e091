//! A seeded simulation of the group coordinator (Kafka's eager rebalance protocol, as embedded
//! consumers run it), on a manual clock so that sessions and rebalances time out when the seed
//! says so.
//!
//! Each seed drives up to five members of one group through random joins, rejoins, polls for
//! the assignment, heartbeats, offset-commit checks, subscription changes, leaves and silences
//! (the clock moves on while a member says nothing, as when its process hangs or dies). After
//! every step the checker holds the coordinator to its promises:
//! - generations never go back;
//! - within one generation, the assignments handed out are disjoint, and a member is told the
//!   same assignment every time it asks;
//! - a member is only ever assigned partitions of topics it subscribes to, and once the group
//!   is stable, every partition of every subscribed topic has an owner;
//! - a commit is accepted only from a member of the current generation that is still in the
//!   group, and refused from every earlier generation;
//! - a member silent past its session timeout is gone (its next call is `UnknownMember`) once
//!   the group is stable;
//! - at the end, members that keep calling converge: they all hold the same new generation.
//!
//! `WEIR_SIM_SEEDS=N` runs seeds 0..N (20,000 by default), `WEIR_SIM_SEEDS=A..B` seeds A..B,
//! `WEIR_SIM_SEED=S` seed S alone with its story.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use weir_log::group::{Assignment, AssignmentStrategy, GroupCoordinator, GroupState, MemberConfig};
use weir_log::{Clock, Error, GroupErrorKind, ManualClock};

use crate::simulation::seeds;

const SEEDS_DEFAULT: u64 = 20_000;
const STEPS_PER_SEED: usize = 60;
const MEMBERS: usize = 5;
const GROUP: &str = "sim-group";
/// Topics and their partitions; `missing` does not exist.
const TOPICS: [(&str, i32); 4] = [("a", 3), ("b", 2), ("c", 4), ("missing", 0)];
const SESSION_TIMEOUT_MS: i64 = 10_000;
const REBALANCE_TIMEOUT_MS: i64 = 30_000;

fn partitions_of(topic: &str) -> Option<i32> {
    TOPICS
        .iter()
        .find(|(t, n)| *t == topic && *n > 0)
        .map(|(_, n)| *n)
}

/// What one member (a consumer) knows of itself.
#[derive(Debug, Default, Clone)]
struct Member {
    id: Option<String>,
    topics: Vec<String>,
    /// The assignment it holds and consumes from, until told to give it up.
    owned: Option<Assignment>,
    /// When it last called the coordinator.
    last_call_ms: i64,
}

struct Run {
    rng: fastrand::Rng,
    clock: ManualClock,
    coordinator: GroupCoordinator,
    strategy: AssignmentStrategy,
    members: Vec<Member>,
    /// Every assignment handed out: generation → member id → partitions.
    handed_out: BTreeMap<i32, BTreeMap<String, Vec<(String, i32)>>>,
    /// Member ids that left or were found gone; they must never come back.
    gone: BTreeSet<String>,
    generation_seen: i32,
    stats: Stats,
    trace: Vec<String>,
}

/// What the runs exercised, summed over seeds: a simulation that never rebalanced, expired a
/// member or refused a zombie's commit would check nothing.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    assignments: u64,
    generations: u64,
    commits_accepted: u64,
    zombie_commits_refused: u64,
    members_dropped: u64,
    converged_with_two_or_more: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.assignments += o.assignments;
        self.generations += o.generations;
        self.commits_accepted += o.commits_accepted;
        self.zombie_commits_refused += o.zombie_commits_refused;
        self.members_dropped += o.members_dropped;
        self.converged_with_two_or_more += o.converged_with_two_or_more;
    }
}

fn kind(e: &Error) -> Option<&GroupErrorKind> {
    match e {
        Error::Group { reason, .. } => Some(reason),
        _ => None,
    }
}

impl Run {
    fn new(seed: u64) -> Run {
        let mut rng = fastrand::Rng::with_seed(seed);
        let clock = ManualClock::new(1_700_000_000_000);
        let strategy = [
            AssignmentStrategy::Range,
            AssignmentStrategy::RoundRobin,
            AssignmentStrategy::Sticky,
        ][rng.usize(0..3)];
        Run {
            rng,
            coordinator: GroupCoordinator::new(Arc::new(clock.clone())),
            clock,
            strategy,
            members: vec![Member::default(); MEMBERS],
            handed_out: BTreeMap::new(),
            gone: BTreeSet::new(),
            generation_seen: 0,
            stats: Stats::default(),
            trace: Vec::new(),
        }
    }

    fn random_topics(&mut self) -> Vec<String> {
        let mut topics: Vec<String> = TOPICS
            .iter()
            .filter(|_| self.rng.u8(0..3) == 0)
            .map(|(t, _)| t.to_string())
            .collect();
        if topics.is_empty() {
            topics.push(TOPICS[self.rng.usize(0..3)].0.to_string());
        }
        topics
    }

    fn config(&self, m: usize) -> MemberConfig {
        MemberConfig {
            session_timeout_ms: SESSION_TIMEOUT_MS,
            rebalance_timeout_ms: REBALANCE_TIMEOUT_MS,
            strategy: self.strategy,
            ..MemberConfig::new(format!("m{m}"), self.members[m].topics.clone())
        }
    }

    /// The member lost its id (it left, or the coordinator dropped it): it must join anew.
    fn forget(&mut self, m: usize) {
        if let Some(id) = self.members[m].id.take() {
            self.gone.insert(id);
        }
        self.members[m].owned = None;
    }

    /// An error the member reacts to as a consumer does; anything else breaks the protocol.
    fn react(&mut self, m: usize, what: &str, e: &Error) -> Result<(), String> {
        match kind(e) {
            Some(GroupErrorKind::UnknownMember(_)) => {
                // Dropped by the coordinator: its session or a rebalance timed out.
                self.stats.members_dropped += 1;
                self.forget(m);
            }
            Some(GroupErrorKind::RebalanceInProgress)
            | Some(GroupErrorKind::IllegalGeneration { .. }) => self.members[m].owned = None,
            _ => return Err(format!("m{m} {what}: unexpected error {e}")),
        }
        Ok(())
    }

    fn join(&mut self, m: usize) -> Result<(), String> {
        if self.members[m].topics.is_empty() || self.rng.u8(0..4) == 0 {
            self.members[m].topics = self.random_topics();
        }
        let config = self.config(m);
        let id = self.members[m].id.clone();
        // Rejoining means giving up what it held.
        self.members[m].owned = None;
        match self.coordinator.join(GROUP, id.as_deref(), &config) {
            Ok(new_id) => {
                if id.is_none() && self.gone.contains(&new_id) {
                    return Err(format!(
                        "m{m} was given the id {new_id} of a member that left"
                    ));
                }
                self.members[m].id = Some(new_id);
                Ok(())
            }
            Err(e) => self.react(m, "join", &e),
        }
    }

    fn poll(&mut self, m: usize) -> Result<(), String> {
        let Some(id) = self.members[m].id.clone() else {
            return Ok(());
        };
        match self
            .coordinator
            .await_assignment(GROUP, &id, Duration::ZERO, &partitions_of)
        {
            Ok(Some(a)) => {
                let seen = self
                    .handed_out
                    .entry(a.generation)
                    .or_default()
                    .entry(id.clone())
                    .or_insert_with(|| a.partitions.clone());
                if *seen != a.partitions {
                    return Err(format!(
                        "m{m} was told two assignments in generation {}: {seen:?} and {:?}",
                        a.generation, a.partitions
                    ));
                }
                for (t, _) in &a.partitions {
                    if !self.members[m].topics.contains(t) {
                        return Err(format!(
                            "m{m} was assigned {t}, which it does not subscribe to ({:?})",
                            self.members[m].topics
                        ));
                    }
                }
                self.members[m].owned = Some(a);
                self.stats.assignments += 1;
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => self.react(m, "poll", &e),
        }
    }

    fn heartbeat(&mut self, m: usize) -> Result<(), String> {
        let (Some(id), Some(a)) = (self.members[m].id.clone(), self.members[m].owned.clone())
        else {
            return self.poll(m);
        };
        match self.coordinator.heartbeat(GROUP, &id, a.generation) {
            Ok(()) => Ok(()),
            Err(e) => self.react(m, "heartbeat", &e),
        }
    }

    /// The check an offset commit goes through, from the generation the member holds (or,
    /// sometimes, an older one: a zombie's commit).
    fn commit(&mut self, m: usize) -> Result<(), String> {
        let (Some(id), Some(a)) = (self.members[m].id.clone(), self.members[m].owned.clone())
        else {
            return Ok(());
        };
        let generation = if self.rng.u8(0..4) == 0 {
            a.generation - self.rng.i32(1..3)
        } else {
            a.generation
        };
        let current = self.coordinator.describe(GROUP);
        let accepted = self.coordinator.validate_generation(GROUP, &id, generation);
        let Some(current) = current else {
            return match accepted {
                Ok(()) => Err(format!(
                    "m{m}'s commit was accepted by a group that does not exist"
                )),
                Err(e) => self.react(m, "commit", &e),
            };
        };
        match accepted {
            Ok(()) if generation != current.generation => Err(format!(
                "m{m}'s commit from generation {generation} was accepted in generation {}",
                current.generation
            )),
            Ok(()) if !current.members.iter().any(|d| d.member_id == id) => Err(format!(
                "m{m}'s commit was accepted though it is not in the group"
            )),
            Ok(()) => {
                self.stats.commits_accepted += 1;
                Ok(())
            }
            // A zombie's commit: refused, whatever the reason.
            Err(_) if generation != a.generation => {
                self.stats.zombie_commits_refused += 1;
                Ok(())
            }
            Err(e) => self.react(m, "commit", &e),
        }
    }

    fn leave(&mut self, m: usize) -> Result<(), String> {
        let Some(id) = self.members[m].id.clone() else {
            return Ok(());
        };
        let left = self.coordinator.leave(GROUP, &id);
        self.forget(m);
        match left {
            Ok(()) => Ok(()),
            Err(e) if matches!(kind(&e), Some(GroupErrorKind::UnknownMember(_))) => Ok(()),
            Err(e) => Err(format!("m{m} leave: unexpected error {e}")),
        }
    }

    fn step(&mut self) -> Result<(), String> {
        let m = self.rng.usize(0..MEMBERS);
        let what = self.rng.u8(0..20);
        let before = self.members[m].clone();
        match what {
            0..=3 => self.join(m)?,
            4..=8 => self.poll(m)?,
            9..=12 => self.heartbeat(m)?,
            13..=15 => self.commit(m)?,
            16 => self.leave(m)?,
            // The clock moves on; members that do not call in time are silent.
            _ => {
                let ms = self.rng.i64(0..SESSION_TIMEOUT_MS * 2);
                self.clock.advance(ms);
                self.trace.push(format!("clock +{ms} ms"));
                return self.check();
            }
        }
        self.members[m].last_call_ms = self.clock.now_ms();
        let after = &self.members[m];
        self.trace.push(format!(
            "m{m} {}: id {:?} → {:?}, owns {:?} → {:?}",
            [
                "join",
                "join",
                "join",
                "join",
                "poll",
                "poll",
                "poll",
                "poll",
                "poll",
                "heartbeat",
                "heartbeat",
                "heartbeat",
                "heartbeat",
                "commit",
                "commit",
                "commit",
                "leave"
            ][usize::from(what)],
            before.id.as_deref().map(short),
            after.id.as_deref().map(short),
            before
                .owned
                .as_ref()
                .map(|a| (a.generation, a.partitions.len())),
            after
                .owned
                .as_ref()
                .map(|a| (a.generation, a.partitions.len())),
        ));
        self.check()
    }

    fn check(&mut self) -> Result<(), String> {
        let Some(d) = self.coordinator.describe(GROUP) else {
            return Ok(());
        };
        if d.generation < self.generation_seen {
            return Err(format!(
                "the generation went back from {} to {}",
                self.generation_seen, d.generation
            ));
        }
        self.stats.generations += (d.generation - self.generation_seen) as u64;
        self.generation_seen = d.generation;
        for (generation, assignments) in &self.handed_out {
            let mut owner: BTreeMap<&(String, i32), &String> = BTreeMap::new();
            for (id, partitions) in assignments {
                for p in partitions {
                    if let Some(other) = owner.insert(p, id) {
                        return Err(format!(
                            "partition {p:?} was assigned to {} and {} in generation {generation}",
                            short(other),
                            short(id)
                        ));
                    }
                }
            }
        }
        for gone in &self.gone {
            if d.members.iter().any(|m| &m.member_id == gone) {
                return Err(format!(
                    "{} left or was dropped but is a member",
                    short(gone)
                ));
            }
        }
        if d.state == GroupState::Stable {
            let subscribed: BTreeSet<(String, i32)> = d
                .members
                .iter()
                .flat_map(|m| m.topics.iter())
                .filter_map(|t| partitions_of(t).map(|n| (t, n)))
                .flat_map(|(t, n)| (0..n).map(move |p| (t.clone(), p)))
                .collect();
            let assigned: BTreeSet<(String, i32)> = d
                .members
                .iter()
                .flat_map(|m| m.assignment.iter().cloned())
                .collect();
            if assigned != subscribed {
                return Err(format!(
                    "stable in generation {}, but the assignment {assigned:?} is not every subscribed partition {subscribed:?}",
                    d.generation
                ));
            }
            // `describe` applies the deadlines first, as every call does.
            let now = self.clock.now_ms();
            for (i, m) in self.members.iter().enumerate() {
                let Some(id) = &m.id else { continue };
                if now - m.last_call_ms > SESSION_TIMEOUT_MS
                    && d.members.iter().any(|d| &d.member_id == id)
                {
                    return Err(format!(
                        "m{i} was silent for {} ms (session {SESSION_TIMEOUT_MS} ms) and is still a member of the stable group",
                        now - m.last_call_ms
                    ));
                }
            }
        }
        Ok(())
    }

    /// No more chaos: every member with an id keeps calling (rejoin, poll, heartbeat) until
    /// all hold the group's current generation; it must come within a bounded number of calls.
    fn converge(&mut self) -> Result<(), String> {
        for round in 0..50 {
            let live: Vec<usize> = (0..MEMBERS)
                .filter(|&m| self.members[m].id.is_some())
                .collect();
            if live.is_empty() {
                return Ok(());
            }
            let Some(d) = self.coordinator.describe(GROUP) else {
                return Err("live members but no group".into());
            };
            let settled = d.state == GroupState::Stable
                && live.iter().all(|&m| {
                    self.members[m]
                        .owned
                        .as_ref()
                        .is_some_and(|a| a.generation == d.generation)
                });
            if settled {
                if live.len() >= 2 {
                    self.stats.converged_with_two_or_more += 1;
                }
                return Ok(());
            }
            for m in live {
                if self.members[m].id.is_none() {
                    continue;
                }
                if self.members[m].owned.is_none() && round % 2 == 0 {
                    self.join(m)?;
                }
                self.poll(m)?;
                self.heartbeat(m)?;
                self.members[m].last_call_ms = self.clock.now_ms();
                self.check()?;
            }
            self.clock.advance(100);
        }
        Err(format!(
            "members that keep calling did not converge: {:?}, group {:?}",
            self.members,
            self.coordinator.describe(GROUP)
        ))
    }
}

fn short(id: &str) -> String {
    // "m3-<prefix>-<counter>": the client id and the counter say who.
    let client = id.split('-').next().unwrap_or_default();
    let counter = id.rsplit('-').next().unwrap_or_default();
    format!("{client}#{}", counter.trim_start_matches('0'))
}

fn run_seed(seed: u64) -> Result<Stats, String> {
    let mut run = Run::new(seed);
    let outcome = (|| {
        for _ in 0..STEPS_PER_SEED {
            run.step()?;
        }
        run.converge()
    })();
    outcome.map(|()| run.stats).map_err(|why| {
        let alone = std::env::var("WEIR_SIM_SEED").is_ok();
        let from = if alone {
            0
        } else {
            run.trace.len().saturating_sub(6)
        };
        format!(
            "{why}\n    strategy {:?}; after: {}",
            run.strategy,
            run.trace[from..].join("\n           ")
        )
    })
}

#[test]
fn every_seed_keeps_the_group_coordinators_promises() {
    let mut failures = Vec::new();
    let mut stats = Stats::default();
    let seeds = seeds(SEEDS_DEFAULT);
    let all = seeds.end - seeds.start > 1;
    for seed in seeds {
        let outcome = std::panic::catch_unwind(|| run_seed(seed))
            .unwrap_or_else(|_| Err("panicked".to_string()));
        if let Ok(s) = outcome {
            stats += s;
        }
        if let Err(why) = outcome {
            eprintln!(
                "group simulation seed {seed} failed: {why}\n  replay: WEIR_SIM_SEED={seed} cargo test -p weir-log --test integration simulation_groups::"
            );
            failures.push(seed);
        }
    }
    assert!(
        failures.is_empty(),
        "seeds {failures:?} broke an invariant (see above)"
    );
    eprintln!("group simulation: {stats:?}");
    if all {
        let Stats {
            assignments,
            generations,
            commits_accepted,
            zombie_commits_refused,
            members_dropped,
            converged_with_two_or_more,
        } = stats;
        assert!(
            assignments > 0
                && generations > 0
                && commits_accepted > 0
                && zombie_commits_refused > 0
                && members_dropped > 0
                && converged_with_two_or_more > 0,
            "the runs did not exercise every promise: {stats:?}"
        );
    }
}
