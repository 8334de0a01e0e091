//! Partition assignors: pure functions from (members, subscriptions, partition counts, previous
//! assignment) to a new assignment.
//!
//! They are pure so that the coordinator can run them under its lock without I/O, and so that
//! they can be tested exhaustively without a group. Range and round-robin reproduce Kafka's
//! `RangeAssignor` and `RoundRobinAssignor` exactly, so a group moved between Kafka and weir
//! gets the same assignment for the same members.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// How a group's partitions are divided among its members.
///
/// All members of a group must use the same strategy: the coordinator computes one assignment
/// for the whole group, so there is nothing to negotiate.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AssignmentStrategy {
    /// Kafka's `range`: per topic, contiguous blocks of partitions. Co-partitioned topics land
    /// on the same member (partition *n* of every topic goes to the same member when the
    /// subscriptions are the same), which joins need. Kafka's default.
    #[default]
    Range,
    /// Kafka's `roundrobin`: all partitions of all topics dealt one at a time. Spreads many
    /// small topics more evenly than range, at the cost of co-partitioning.
    RoundRobin,
    /// Balanced like round-robin, but keeps each partition where it was whenever balance allows,
    /// so members keep their caches and local state across rebalances.
    Sticky,
}

impl AssignmentStrategy {
    /// The name Kafka clients use for it (`partition.assignment.strategy` short names).
    pub fn name(self) -> &'static str {
        match self {
            AssignmentStrategy::Range => "range",
            AssignmentStrategy::RoundRobin => "roundrobin",
            AssignmentStrategy::Sticky => "sticky",
        }
    }
}

impl fmt::Display for AssignmentStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AssignmentStrategy {
    type Err = Error;

    /// Accepts the Kafka names, case-insensitively, so configuration copied from a Kafka
    /// client works.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "range" => Ok(AssignmentStrategy::Range),
            "roundrobin" => Ok(AssignmentStrategy::RoundRobin),
            "sticky" => Ok(AssignmentStrategy::Sticky),
            _ => Err(Error::config(
                "strategy",
                format!("unknown assignment strategy '{s}' (expected range, roundrobin or sticky)"),
            )),
        }
    }
}

/// Computes an assignment.
///
/// * `members`: member ids with the topics each subscribes to. A duplicated id keeps its first
///   entry.
/// * `partitions`: partition count of every topic that exists; topics missing here (or with a
///   count of zero or less) are assigned to nobody, so a member subscribed only to a missing
///   topic gets an empty assignment rather than an error: the topic may be created later, and
///   the group then rebalances.
/// * `previous`: what each member held before; only [`AssignmentStrategy::Sticky`] looks at it.
///
/// Every member appears in the result, with its partitions sorted by (topic, partition). Each
/// partition of a subscribed, existing topic goes to exactly one member subscribed to it.
pub fn assign(
    strategy: AssignmentStrategy,
    members: &[(String, Vec<String>)],
    partitions: &BTreeMap<String, i32>,
    previous: &HashMap<String, Vec<(String, i32)>>,
) -> HashMap<String, Vec<(String, i32)>> {
    let mut subscriptions: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (id, topics) in members {
        subscriptions
            .entry(id.as_str())
            .or_insert_with(|| topics.iter().map(String::as_str).collect());
    }
    let partitions: BTreeMap<&str, i32> = partitions
        .iter()
        .filter(|&(_, &n)| n > 0)
        .map(|(t, &n)| (t.as_str(), n))
        .collect();
    let mut result = match strategy {
        AssignmentStrategy::Range => range(&subscriptions, &partitions),
        AssignmentStrategy::RoundRobin => round_robin(&subscriptions, &partitions),
        AssignmentStrategy::Sticky => sticky(&subscriptions, &partitions, previous),
    };
    for assigned in result.values_mut() {
        assigned.sort();
    }
    result
}

type Subscriptions<'a> = BTreeMap<&'a str, BTreeSet<&'a str>>;
type Output = HashMap<String, Vec<(String, i32)>>;

fn empty_output(subscriptions: &Subscriptions<'_>) -> Output {
    subscriptions
        .keys()
        .map(|id| (id.to_string(), Vec::new()))
        .collect()
}

/// Kafka's `RangeAssignor`: per topic, subscribers sorted by member id get contiguous ranges;
/// the first `count % subscribers` of them get one extra partition.
fn range(subscriptions: &Subscriptions<'_>, partitions: &BTreeMap<&str, i32>) -> Output {
    let mut out = empty_output(subscriptions);
    for (&topic, &count) in partitions {
        let consumers: Vec<&str> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(&id, _)| id)
            .collect();
        if consumers.is_empty() {
            continue;
        }
        let n = i64::from(count);
        let m = consumers.len() as i64;
        let (per, extra) = (n / m, n % m);
        for (i, id) in consumers.iter().enumerate() {
            let i = i as i64;
            let start = per * i + i.min(extra);
            let len = per + i64::from(i < extra);
            if let Some(assigned) = out.get_mut(*id) {
                // start + len <= count, which is an i32.
                assigned.extend((start..start + len).map(|p| (topic.to_string(), p as i32)));
            }
        }
    }
    out
}

/// Kafka's `RoundRobinAssignor`: all partitions sorted by (topic, partition), dealt over the
/// members sorted by id in a circle that skips members not subscribed to the partition's topic.
fn round_robin(subscriptions: &Subscriptions<'_>, partitions: &BTreeMap<&str, i32>) -> Output {
    let mut out = empty_output(subscriptions);
    let consumers: Vec<(&str, &BTreeSet<&str>)> =
        subscriptions.iter().map(|(&id, t)| (id, t)).collect();
    let mut next = 0usize;
    for (&topic, &count) in partitions {
        if !consumers.iter().any(|(_, topics)| topics.contains(topic)) {
            continue;
        }
        for partition in 0..count {
            while !consumers[next].1.contains(topic) {
                next = (next + 1) % consumers.len();
            }
            if let Some(assigned) = out.get_mut(consumers[next].0) {
                assigned.push((topic.to_string(), partition));
            }
            next = (next + 1) % consumers.len();
        }
    }
    out
}

/// Sticky: keep every valid previous ownership, hand the orphans to the least loaded eligible
/// members, then move single partitions from a member to an eligible one holding at least two
/// fewer until no such move exists.
///
/// The end state therefore has no member two partitions ahead of another member that could take
/// one of its partitions, which in particular means members with identical subscriptions
/// differ by at most one. Each move lowers the sum of squared loads, so the loop ends. Moves
/// always start at the most loaded member and prefer partitions it did not hold before, so a
/// partition that was held stays put unless balance requires otherwise; when members with
/// identical subscriptions were balanced before, removing one moves only its partitions and
/// adding one moves only partitions onto the newcomer.
fn sticky(
    subscriptions: &Subscriptions<'_>,
    partitions: &BTreeMap<&str, i32>,
    previous: &HashMap<String, Vec<(String, i32)>>,
) -> Output {
    let ids: Vec<&str> = subscriptions.keys().copied().collect();
    // Topics that exist and have at least one subscriber, with the members eligible for them.
    let mut topics: Vec<(&str, i32, Vec<usize>)> = Vec::new();
    for (&topic, &count) in partitions {
        let eligible: Vec<usize> = ids
            .iter()
            .enumerate()
            .filter(|(_, id)| subscriptions[**id].contains(topic))
            .map(|(i, _)| i)
            .collect();
        if !eligible.is_empty() {
            topics.push((topic, count, eligible));
        }
    }
    let topic_index: HashMap<&str, usize> = topics
        .iter()
        .enumerate()
        .map(|(i, (t, _, _))| (*t, i))
        .collect();

    // Keep previous ownership that is still valid; first member (by id) wins a duplicate.
    let mut owned: Vec<BTreeSet<(usize, i32)>> = vec![BTreeSet::new(); ids.len()];
    let mut claimed: HashSet<(usize, i32)> = HashSet::new();
    for (m, id) in ids.iter().enumerate() {
        for (topic, partition) in previous.get(*id).map(Vec::as_slice).unwrap_or_default() {
            let Some(&t) = topic_index.get(topic.as_str()) else {
                continue;
            };
            let (_, count, eligible) = &topics[t];
            if (0..*count).contains(partition)
                && eligible.contains(&m)
                && claimed.insert((t, *partition))
            {
                owned[m].insert((t, *partition));
            }
        }
    }
    let kept = owned.clone();

    // Orphans go to the least loaded eligible member; the most constrained topics first, so
    // that flexible members are still free to take them.
    let mut orphans: Vec<(usize, i32)> = topics
        .iter()
        .enumerate()
        .flat_map(|(t, (_, count, _))| (0..*count).map(move |p| (t, p)))
        .filter(|tp| !claimed.contains(tp))
        .collect();
    orphans.sort_by_key(|&(t, p)| (topics[t].2.len(), t, p));
    for (t, p) in orphans {
        if let Some(&m) = topics[t].2.iter().min_by_key(|&&m| (owned[m].len(), m)) {
            owned[m].insert((t, p));
        }
    }

    // Balance.
    loop {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&m| (Reverse(owned[m].len()), m));
        let mut chosen = None;
        'search: for &from in &order {
            let load = owned[from].len();
            if load < 2 {
                break;
            }
            let mut candidates: Vec<(usize, i32)> = owned[from].iter().copied().collect();
            candidates.sort_by_key(|tp| (kept[from].contains(tp), *tp));
            let mut target_of_topic: HashMap<usize, Option<usize>> = HashMap::new();
            for (t, p) in candidates {
                let target = *target_of_topic.entry(t).or_insert_with(|| {
                    topics[t]
                        .2
                        .iter()
                        .copied()
                        .filter(|&m| m != from)
                        .min_by_key(|&m| (owned[m].len(), m))
                });
                if let Some(to) = target
                    && owned[to].len() + 2 <= load
                {
                    chosen = Some((from, to, (t, p)));
                    break 'search;
                }
            }
        }
        let Some((from, to, tp)) = chosen else {
            break;
        };
        owned[from].remove(&tp);
        owned[to].insert(tp);
    }

    ids.iter()
        .zip(owned)
        .map(|(id, parts)| {
            let parts = parts
                .into_iter()
                .map(|(t, p)| (topics[t].0.to_string(), p))
                .collect();
            (id.to_string(), parts)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(spec: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        spec.iter()
            .map(|(id, topics)| {
                (
                    id.to_string(),
                    topics.iter().map(|t| t.to_string()).collect(),
                )
            })
            .collect()
    }

    fn counts(spec: &[(&str, i32)]) -> BTreeMap<String, i32> {
        spec.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn tps(spec: &[(&str, i32)]) -> Vec<(String, i32)> {
        spec.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn range_matches_kafka_example() {
        let m = members(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]);
        let out = assign(
            AssignmentStrategy::Range,
            &m,
            &counts(&[("t0", 3), ("t1", 3)]),
            &HashMap::new(),
        );
        assert_eq!(
            out["C0"],
            tps(&[("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)])
        );
        assert_eq!(out["C1"], tps(&[("t0", 2), ("t1", 2)]));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn range_gives_extra_partitions_to_the_first_members_by_id() {
        // Members listed out of order: the assignor sorts by id.
        let m = members(&[("c", &["t"]), ("a", &["t"]), ("b", &["t", "u"])]);
        let out = assign(
            AssignmentStrategy::Range,
            &m,
            &counts(&[("t", 8), ("u", 2)]),
            &HashMap::new(),
        );
        assert_eq!(out["a"], tps(&[("t", 0), ("t", 1), ("t", 2)]));
        assert_eq!(
            out["b"],
            tps(&[("t", 3), ("t", 4), ("t", 5), ("u", 0), ("u", 1)])
        );
        assert_eq!(out["c"], tps(&[("t", 6), ("t", 7)]));
    }

    #[test]
    fn round_robin_matches_kafka_example() {
        let m = members(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]);
        let out = assign(
            AssignmentStrategy::RoundRobin,
            &m,
            &counts(&[("t0", 3), ("t1", 3)]),
            &HashMap::new(),
        );
        assert_eq!(out["C0"], tps(&[("t0", 0), ("t0", 2), ("t1", 1)]));
        assert_eq!(out["C1"], tps(&[("t0", 1), ("t1", 0), ("t1", 2)]));
    }

    #[test]
    fn round_robin_skips_unsubscribed_members_like_kafka() {
        // The example from the javadoc of Kafka's RoundRobinAssignor.
        let m = members(&[
            ("C0", &["t0"]),
            ("C1", &["t0", "t1"]),
            ("C2", &["t0", "t1", "t2"]),
        ]);
        let out = assign(
            AssignmentStrategy::RoundRobin,
            &m,
            &counts(&[("t0", 1), ("t1", 2), ("t2", 3)]),
            &HashMap::new(),
        );
        assert_eq!(out["C0"], tps(&[("t0", 0)]));
        assert_eq!(out["C1"], tps(&[("t1", 0)]));
        assert_eq!(
            out["C2"],
            tps(&[("t1", 1), ("t2", 0), ("t2", 1), ("t2", 2)])
        );
    }

    #[test]
    fn missing_topics_give_nothing_but_every_member_is_listed() {
        let m = members(&[("a", &["gone"]), ("b", &["t", "gone"])]);
        for strategy in [
            AssignmentStrategy::Range,
            AssignmentStrategy::RoundRobin,
            AssignmentStrategy::Sticky,
        ] {
            let out = assign(
                strategy,
                &m,
                &counts(&[("t", 2), ("empty", 0)]),
                &HashMap::new(),
            );
            assert_eq!(out["a"], vec![], "{strategy}");
            assert_eq!(out["b"], tps(&[("t", 0), ("t", 1)]), "{strategy}");
        }
    }

    #[test]
    fn sticky_ignores_invalid_previous_ownership() {
        let m = members(&[("a", &["t"]), ("b", &["t"])]);
        let previous: HashMap<String, Vec<(String, i32)>> = [
            // t-0 claimed twice: a (first by id) keeps it; t-9 does not exist; u is not
            // subscribed.
            ("a".to_string(), tps(&[("t", 0), ("t", 9), ("u", 0)])),
            ("b".to_string(), tps(&[("t", 0), ("t", 1)])),
        ]
        .into_iter()
        .collect();
        let out = assign(
            AssignmentStrategy::Sticky,
            &m,
            &counts(&[("t", 4), ("u", 1)]),
            &previous,
        );
        assert_eq!(out["a"], tps(&[("t", 0), ("t", 2)]));
        assert_eq!(out["b"], tps(&[("t", 1), ("t", 3)]));
    }

    #[test]
    fn strategy_names_round_trip() {
        for strategy in [
            AssignmentStrategy::Range,
            AssignmentStrategy::RoundRobin,
            AssignmentStrategy::Sticky,
        ] {
            assert_eq!(
                strategy.to_string().parse::<AssignmentStrategy>().ok(),
                Some(strategy)
            );
        }
        assert_eq!(
            "RoundRobin".parse::<AssignmentStrategy>().ok(),
            Some(AssignmentStrategy::RoundRobin)
        );
        assert!(matches!(
            "cooperative-sticky".parse::<AssignmentStrategy>(),
            Err(Error::Config { .. })
        ));
    }

    /// Checks that every partition of a subscribed topic is assigned exactly once, to a
    /// subscriber, and that members with identical subscriptions differ by at most one.
    fn check_valid(
        m: &[(String, Vec<String>)],
        partitions: &BTreeMap<String, i32>,
        out: &Output,
        context: &str,
    ) {
        assert_eq!(out.len(), m.len(), "{context}");
        let mut seen: HashMap<(String, i32), &str> = HashMap::new();
        for (id, topics) in m {
            for tp in &out[id] {
                assert!(topics.contains(&tp.0), "{context}: {id} got {tp:?}");
                assert!(
                    partitions
                        .get(&tp.0)
                        .is_some_and(|&n| (0..n).contains(&tp.1)),
                    "{context}: {tp:?} does not exist"
                );
                if let Some(other) = seen.insert(tp.clone(), id) {
                    panic!("{context}: {tp:?} assigned to both {other} and {id}");
                }
            }
        }
        for (topic, &n) in partitions {
            if m.iter().any(|(_, t)| t.contains(topic)) {
                for p in 0..n {
                    assert!(
                        seen.contains_key(&(topic.clone(), p)),
                        "{context}: {topic}-{p} unassigned"
                    );
                }
            }
        }
        let mut by_subscription: HashMap<BTreeSet<&String>, Vec<usize>> = HashMap::new();
        for (id, topics) in m {
            by_subscription
                .entry(topics.iter().collect())
                .or_default()
                .push(out[id].len());
        }
        for loads in by_subscription.values() {
            let (min, max) = (loads.iter().min(), loads.iter().max());
            assert!(
                max.zip(min).is_none_or(|(max, min)| max - min <= 1),
                "{context}: unbalanced {loads:?}"
            );
        }
    }

    #[test]
    fn sticky_is_balanced_and_keeps_partitions_property() {
        let mut rng = fastrand::Rng::with_seed(0x5eed_57ac);
        for round in 0..300 {
            let member_count = rng.usize(1..=8);
            let topic_count = rng.usize(1..=4);
            let all_topics: Vec<String> = (0..topic_count).map(|t| format!("t{t}")).collect();
            let partitions: BTreeMap<String, i32> = all_topics
                .iter()
                .map(|t| (t.clone(), rng.i32(0..=12)))
                .collect();
            let m: Vec<(String, Vec<String>)> = (0..member_count)
                .map(|i| (format!("m{i}"), all_topics.clone()))
                .collect();
            let context = format!("round {round}, {member_count} members, {partitions:?}");

            let first = assign(AssignmentStrategy::Sticky, &m, &partitions, &HashMap::new());
            check_valid(&m, &partitions, &first, &context);

            // Remove one member: the others keep everything they had.
            let gone = rng.usize(0..member_count);
            let fewer: Vec<_> = m
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != gone)
                .map(|(_, x)| x.clone())
                .collect();
            let second = assign(AssignmentStrategy::Sticky, &fewer, &partitions, &first);
            check_valid(&fewer, &partitions, &second, &context);
            for (id, _) in &fewer {
                for tp in &first[id] {
                    assert!(
                        second[id].contains(tp),
                        "{context}: {id} lost {tp:?} after m{gone} left"
                    );
                }
            }

            // Add one member: partitions only move onto the newcomer.
            let mut more = m.clone();
            more.push(("new".to_string(), all_topics.clone()));
            let third = assign(AssignmentStrategy::Sticky, &more, &partitions, &first);
            check_valid(&more, &partitions, &third, &context);
            for (id, _) in &m {
                for tp in &third[id] {
                    assert!(first[id].contains(tp), "{context}: {tp:?} moved to {id}");
                }
            }
        }
    }

    #[test]
    fn sticky_with_mixed_subscriptions_stays_valid() {
        let mut rng = fastrand::Rng::with_seed(42);
        for round in 0..300 {
            let topic_count = rng.usize(1..=4);
            let all_topics: Vec<String> = (0..topic_count).map(|t| format!("t{t}")).collect();
            let mut partitions: BTreeMap<String, i32> = all_topics
                .iter()
                .map(|t| (t.clone(), rng.i32(0..=10)))
                .collect();
            let m: Vec<(String, Vec<String>)> = (0..rng.usize(1..=7))
                .map(|i| {
                    let mut topics: Vec<String> =
                        all_topics.iter().filter(|_| rng.bool()).cloned().collect();
                    if topics.is_empty() {
                        topics.push(all_topics[0].clone());
                    }
                    (format!("m{i}"), topics)
                })
                .collect();
            let context = format!("round {round}: {m:?} {partitions:?}");
            let first = assign(AssignmentStrategy::Sticky, &m, &partitions, &HashMap::new());
            check_valid(&m, &partitions, &first, &context);

            // Grow a topic and drop a member; the result must still be valid.
            if let Some(n) = partitions.get_mut(&all_topics[0]) {
                *n += 3;
            }
            let fewer: Vec<_> = m.iter().skip(1).cloned().collect();
            let second = assign(AssignmentStrategy::Sticky, &fewer, &partitions, &first);
            check_valid(&fewer, &partitions, &second, &context);
        }
    }

    #[test]
    fn range_and_round_robin_are_valid_on_random_inputs() {
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..200 {
            let all_topics: Vec<String> = (0..rng.usize(1..=4)).map(|t| format!("t{t}")).collect();
            let partitions: BTreeMap<String, i32> = all_topics
                .iter()
                .map(|t| (t.clone(), rng.i32(0..=10)))
                .collect();
            let m: Vec<(String, Vec<String>)> = (0..rng.usize(1..=6))
                .map(|i| (format!("m{i}"), all_topics.clone()))
                .collect();
            for strategy in [AssignmentStrategy::Range, AssignmentStrategy::RoundRobin] {
                let out = assign(strategy, &m, &partitions, &HashMap::new());
                let context = format!("round {round} {strategy}");
                // Exactly-once holds for both; range balances only per topic, so the full
                // check (which includes overall balance) is for round-robin.
                let total: usize = out.values().map(Vec::len).sum();
                let distinct: HashSet<&(String, i32)> = out.values().flatten().collect();
                let expected: i32 = partitions.values().sum();
                assert_eq!(total, expected as usize, "{context}");
                assert_eq!(
                    distinct.len(),
                    total,
                    "{context}: a partition assigned twice"
                );
                if strategy == AssignmentStrategy::RoundRobin {
                    check_valid(&m, &partitions, &out, &context);
                }
            }
        }
    }
}
