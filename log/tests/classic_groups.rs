//! Kafka's classic group protocol through the log's API, as `weir serve` drives it: threads play
//! Kafka clients (join → the leader assigns → sync), a manual clock drives sessions and
//! rebalance timeouts. No assertion depends on how long anything takes; `wait_until` only waits
//! for another thread to have reached a blocking call.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use weir_log::{
    ClassicMember, Consumer, ConsumerConfig, Error, GroupErrorKind, GroupMetadata, JoinOutcome,
    JoinedGroup, Log, LogConfig, LogOptions, ManualClock, TopicConfig, TopicPartition,
    TransactionalConfig, TransactionalProducer,
};

const SESSION_MS: i64 = 10_000;
const REBALANCE_MS: i64 = 5_000;
const G: &str = "g";

fn open(dir: &std::path::Path) -> (Log, ManualClock) {
    let clock = ManualClock::new(1_700_000_000_000);
    let log = Log::open_with(
        dir,
        LogConfig::default(),
        LogOptions {
            clock: Arc::new(clock.clone()),
            ..LogOptions::default()
        },
    )
    .unwrap();
    log.create_topic(
        "t",
        TopicConfig {
            partitions: 4,
            ..TopicConfig::default()
        },
    )
    .unwrap();
    (log, clock)
}

fn member(client: &str, protocols: &[(&str, &[u8])]) -> ClassicMember {
    ClassicMember {
        client_id: client.to_string(),
        client_host: format!("/127.0.0.1:{}", 40_000 + client.len()),
        group_instance_id: None,
        protocol_type: "consumer".to_string(),
        protocols: protocols
            .iter()
            .map(|(n, m)| (n.to_string(), m.to_vec()))
            .collect(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
    }
}

fn range(client: &str) -> ClassicMember {
    member(client, &[("range", client.as_bytes())])
}

fn kind<T: std::fmt::Debug>(r: weir_log::Result<T>) -> GroupErrorKind {
    match r {
        Err(Error::Group { reason, .. }) => reason,
        other => panic!("expected a group error, got {other:?}"),
    }
}

/// The KIP-394 round: a new member's first join only hands out its id.
fn member_id(log: &Log, m: &ClassicMember) -> String {
    match log.join_group(G, "", true, m).unwrap() {
        JoinOutcome::MemberIdRequired(id) => id,
        other => panic!("expected MemberIdRequired, got {other:?}"),
    }
}

fn joined(outcome: weir_log::Result<JoinOutcome>) -> JoinedGroup {
    match outcome.unwrap() {
        JoinOutcome::Joined(j) => j,
        other => panic!("expected Joined, got {other:?}"),
    }
}

/// Joins every (id, member) at once, one thread each, as a rebalance needs; returns the
/// responses in the same order.
fn join_all(log: &Log, members: &[(&str, &ClassicMember)]) -> Vec<JoinedGroup> {
    thread::scope(|s| {
        let handles: Vec<_> = members
            .iter()
            .map(|(id, m)| s.spawn(move || joined(log.join_group(G, id, true, m))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The leader syncs with `assignments` while the followers sync in threads; every member's
/// bytes, in the order of `ids`.
fn sync_all(
    log: &Log,
    generation: i32,
    leader: &str,
    ids: &[&str],
    assignments: &[(&str, &[u8])],
) -> Vec<Vec<u8>> {
    let assignments: Vec<(String, Vec<u8>)> = assignments
        .iter()
        .map(|(id, a)| (id.to_string(), a.to_vec()))
        .collect();
    thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                let given = if *id == leader {
                    assignments.clone()
                } else {
                    Vec::new()
                };
                s.spawn(move || log.sync_group(G, id, generation, given).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Waits for another thread to reach a state (a blocking call registered); fails after a
/// minute, which only a hang takes.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < give_up, "never happened: {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

fn state(log: &Log) -> String {
    log.describe_group_members(G)
        .unwrap()
        .map(|d| d.state)
        .unwrap_or_else(|| "Dead".into())
}

/// `consumer` protocol bytes (Subscription / Assignment v0), as a Kafka client writes them.
fn subscription(topics: &[&str]) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend_from_slice(&(t.len() as i16).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b
}

fn assignment(topic: &str, partitions: &[i32]) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 0, 0, 1];
    b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    b.extend_from_slice(topic.as_bytes());
    b.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
    for p in partitions {
        b.extend_from_slice(&p.to_be_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b
}

#[test]
fn member_ids_then_leader_gets_all_metadata_and_assignments_reach_each_member() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _clock) = open(dir.path());
    let (ma, mb, mc) = (range("a"), range("b"), range("c"));
    let (a, b, c) = (
        member_id(&log, &ma),
        member_id(&log, &mb),
        member_id(&log, &mc),
    );
    assert!(a.starts_with("a-") && b.starts_with("b-") && c.starts_with("c-"));
    assert!(a != b && b != c);
    // A member id handed out is not a member yet, and starts no rebalance.
    assert_eq!(
        kind(log.heartbeat_group(G, &a, 0)),
        GroupErrorKind::UnknownMember(a.clone())
    );
    assert_eq!(state(&log), "Empty");

    let r = join_all(&log, &[(&a, &ma), (&b, &mb), (&c, &mc)]);
    for j in &r {
        assert_eq!(j.generation, 1);
        assert_eq!(j.protocol_type, "consumer");
        assert_eq!(j.protocol_name, "range");
        assert_eq!(j.leader, r[0].leader);
    }
    let leader = r[0].leader.clone();
    assert!([&a, &b, &c].contains(&&leader));
    for j in &r {
        if j.member_id == leader {
            let mut listed = j.members.clone();
            listed.sort();
            assert_eq!(
                listed,
                vec![
                    (a.clone(), None, b"a".to_vec()),
                    (b.clone(), None, b"b".to_vec()),
                    (c.clone(), None, b"c".to_vec()),
                ]
            );
        } else {
            assert!(j.members.is_empty(), "a follower got {:?}", j.members);
        }
    }
    assert_eq!(state(&log), "CompletingRebalance");
    // Heartbeats are fine while the leader assigns.
    log.heartbeat_group(G, &b, 1).unwrap();

    let got = sync_all(
        &log,
        1,
        &leader,
        &[&a, &b, &c],
        &[(&a, b"for a"), (&b, b"for b")],
    );
    assert_eq!(got, vec![b"for a".to_vec(), b"for b".to_vec(), Vec::new()]);
    // A sync in a stable group returns the member's current assignment.
    assert_eq!(log.sync_group(G, &b, 1, vec![]).unwrap(), b"for b");
    for id in [&a, &b, &c] {
        log.heartbeat_group(G, id, 1).unwrap();
    }

    let d = log.describe_group_members(G).unwrap().unwrap();
    assert_eq!(
        (
            d.state.as_str(),
            d.protocol_type.as_str(),
            d.protocol.as_str()
        ),
        ("Stable", "consumer", "range")
    );
    let ma_desc = &d.members[0];
    assert_eq!(ma_desc.member_id, a);
    assert_eq!(ma_desc.client_id, "a");
    assert_eq!(ma_desc.client_host, ma.client_host);
    assert_eq!(ma_desc.metadata, b"a");
    assert_eq!(ma_desc.assignment, b"for a");
    assert_eq!(d.members[2].assignment, b"");
}

#[test]
fn old_clients_join_at_once_and_the_protocol_is_voted() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _clock) = open(dir.path());
    // Without require_member_id (JoinGroup v3 and older) a new member is admitted at once.
    let first = member(
        "x",
        &[("range", b"r"), ("roundrobin", b"rr"), ("sticky", b"s")],
    );
    let j = joined(log.join_group(G, "", false, &first));
    assert_eq!((j.generation, j.protocol_name.as_str()), (1, "range"));
    assert_eq!(j.leader, j.member_id);
    assert_eq!(j.members, vec![(j.member_id.clone(), None, b"r".to_vec())]);
    let x = j.member_id;
    log.sync_group(G, &x, 1, vec![]).unwrap();

    // range and roundrobin are supported by all (sticky is not); two of three members put
    // roundrobin first, so the vote picks it over the leader's preference.
    let (my, mz) = (
        member("y", &[("roundrobin", b"y1"), ("range", b"y2")]),
        member("z", &[("roundrobin", b"z1"), ("range", b"z2")]),
    );
    let (y, z) = (member_id(&log, &my), member_id(&log, &mz));
    let r = thread::scope(|s| {
        let hy = s.spawn(|| joined(log.join_group(G, &y, true, &my)));
        wait_until("y's join starts a rebalance", || {
            state(&log) == "PreparingRebalance"
        });
        let hz = s.spawn(|| joined(log.join_group(G, &z, true, &mz)));
        // x learns of the rebalance from its heartbeat, and rejoins.
        wait_until("x's heartbeat says rebalance", || {
            matches!(
                log.heartbeat_group(G, &x, 1),
                Err(Error::Group {
                    reason: GroupErrorKind::RebalanceInProgress,
                    ..
                })
            )
        });
        let jx = joined(log.join_group(G, &x, true, &first));
        (jx, hy.join().unwrap(), hz.join().unwrap())
    });
    for j in [&r.0, &r.1, &r.2] {
        assert_eq!((j.generation, j.protocol_name.as_str()), (2, "roundrobin"));
        assert_eq!(j.leader, x, "the old leader rejoined, so it stays leader");
    }
    let mut listed = r.0.members.clone();
    listed.sort();
    let mut expected = vec![
        (x.clone(), None, b"rr".to_vec()),
        (y.clone(), None, b"y1".to_vec()),
        (z.clone(), None, b"z1".to_vec()),
    ];
    expected.sort();
    assert_eq!(listed, expected);

    // A member that shares no protocol with every member, or of another protocol type.
    let odd = member("o", &[("sticky", b"")]);
    assert!(matches!(
        kind(log.join_group(G, "", true, &odd)),
        GroupErrorKind::InconsistentGroupProtocol(_)
    ));
    let connect = ClassicMember {
        protocol_type: "connect".into(),
        ..member("k", &[("roundrobin", b"")])
    };
    assert!(matches!(
        kind(log.join_group(G, "", true, &connect)),
        GroupErrorKind::InconsistentGroupProtocol(_)
    ));
    assert!(matches!(
        kind(log.join_group(G, "", true, &member("e", &[]))),
        GroupErrorKind::InconsistentGroupProtocol(_)
    ));
    let immortal = ClassicMember {
        session_timeout_ms: 0,
        ..range("i")
    };
    assert_eq!(
        kind(log.join_group(G, "", true, &immortal)),
        GroupErrorKind::InvalidSessionTimeout(0)
    );
}

#[test]
fn a_join_rebalances_a_stable_group_and_commits_follow_the_generation() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _clock) = open(dir.path());
    let tp = |p| TopicPartition::new("t", p);
    let (ma, mb, mc) = (range("a"), range("b"), range("c"));
    let (a, b) = (member_id(&log, &ma), member_id(&log, &mb));
    let r = join_all(&log, &[(&a, &ma), (&b, &mb)]);
    let leader = r[0].leader.clone();
    sync_all(&log, 1, &leader, &[&a, &b], &[]);
    log.commit_offsets(G, Some((&a, 1)), &[(tp(0), 5)]).unwrap();
    // A commit without a member is refused while the group has members.
    assert!(matches!(
        kind(log.commit_offsets(G, None, &[(tp(0), 1)])),
        GroupErrorKind::UnknownMember(_)
    ));

    let c = member_id(&log, &mc);
    let r = thread::scope(|s| {
        let hc = s.spawn(|| joined(log.join_group(G, &c, true, &mc)));
        wait_until("c's join starts a rebalance", || {
            state(&log) == "PreparingRebalance"
        });
        // Every member sees it through its heartbeat; generation 1 may still commit.
        for id in [&a, &b] {
            assert_eq!(
                kind(log.heartbeat_group(G, id, 1)),
                GroupErrorKind::RebalanceInProgress
            );
        }
        log.commit_offsets(G, Some((&b, 1)), &[(tp(1), 7)]).unwrap();
        assert_eq!(
            kind(log.sync_group(G, &a, 1, vec![])),
            GroupErrorKind::RebalanceInProgress
        );
        let mut r = join_all(&log, &[(&a, &ma), (&b, &mb)]);
        r.push(hc.join().unwrap());
        r
    });
    assert!(r.iter().all(|j| j.generation == 2));
    assert_eq!(r[0].leader, leader);
    assert_eq!(state(&log), "CompletingRebalance");
    // Until the leader syncs: heartbeats fine, commits refused, the old generation fenced.
    log.heartbeat_group(G, &c, 2).unwrap();
    assert_eq!(
        kind(log.commit_offsets(G, Some((&c, 2)), &[(tp(2), 1)])),
        GroupErrorKind::RebalanceInProgress
    );
    for (given, r) in [
        (1, log.commit_offsets(G, Some((&a, 1)), &[(tp(0), 9)])),
        (1, log.heartbeat_group(G, &a, 1)),
        (1, log.sync_group(G, &a, 1, vec![]).map(|_| ())),
    ] {
        assert_eq!(
            kind(r),
            GroupErrorKind::IllegalGeneration { given, current: 2 }
        );
    }
    assert_eq!(
        kind(log.sync_group(G, "ghost", 2, vec![])),
        GroupErrorKind::UnknownMember("ghost".into())
    );
    sync_all(&log, 2, &leader, &[&a, &b, &c], &[]);
    log.commit_offsets(G, Some((&c, 2)), &[(tp(2), 3)]).unwrap();
    assert_eq!(log.committed_offset(G, "t", 0).unwrap(), Some(5));
    assert_eq!(log.committed_offset(G, "t", 1).unwrap(), Some(7));
    assert_eq!(log.committed_offset(G, "t", 2).unwrap(), Some(3));
}

#[test]
fn leave_and_session_expiry_rebalance_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (log, clock) = open(dir.path());
    let (ma, mb, mc) = (range("a"), range("b"), range("c"));
    let (a, b, c) = (
        member_id(&log, &ma),
        member_id(&log, &mb),
        member_id(&log, &mc),
    );
    let r = join_all(&log, &[(&a, &ma), (&b, &mb), (&c, &mc)]);
    sync_all(&log, 1, &r[0].leader, &[&a, &b, &c], &[]);

    log.leave_group(G, &b).unwrap();
    assert_eq!(
        kind(log.heartbeat_group(G, &a, 1)),
        GroupErrorKind::RebalanceInProgress
    );
    assert_eq!(
        kind(log.heartbeat_group(G, &b, 1)),
        GroupErrorKind::UnknownMember(b.clone())
    );
    let r = join_all(&log, &[(&a, &ma), (&c, &mc)]);
    assert_eq!(r[0].generation, 2);
    let leader = r[0].leader.clone();
    sync_all(&log, 2, &leader, &[&a, &c], &[]);

    // c falls silent; a keeps heartbeating.
    clock.advance(SESSION_MS - 1);
    log.heartbeat_group(G, &a, 2).unwrap();
    clock.advance(1);
    assert_eq!(
        kind(log.heartbeat_group(G, &a, 2)),
        GroupErrorKind::RebalanceInProgress
    );
    assert_eq!(
        kind(log.heartbeat_group(G, &c, 2)),
        GroupErrorKind::UnknownMember(c.clone())
    );
    // Alone, a completes the rebalance by itself and leads it.
    let j = joined(log.join_group(G, &a, true, &ma));
    assert_eq!((j.generation, j.leader.as_str()), (3, a.as_str()));
    assert_eq!(j.members, vec![(a.clone(), None, b"a".to_vec())]);
    assert_eq!(
        log.sync_group(G, &a, 3, vec![(a.clone(), b"all".to_vec())])
            .unwrap(),
        b"all"
    );

    log.leave_group(G, &a).unwrap();
    assert_eq!(state(&log), "Empty");
    // An empty group takes commits without a member.
    log.commit_offsets(G, None, &[(TopicPartition::new("t", 0), 1)])
        .unwrap();
}

#[test]
fn followers_waiting_for_a_leader_that_never_syncs_are_told_to_rejoin() {
    let dir = tempfile::tempdir().unwrap();
    let (log, clock) = open(dir.path());
    // A rebalance timeout longer than the session: the leader's session runs out first.
    let patient = |client| ClassicMember {
        rebalance_timeout_ms: 3 * SESSION_MS,
        ..range(client)
    };
    let (ma, mb) = (patient("a"), patient("b"));
    let (a, b) = (member_id(&log, &ma), member_id(&log, &mb));
    let r = join_all(&log, &[(&a, &ma), (&b, &mb)]);
    let leader = r[0].leader.clone();
    let follower = if leader == a { b.clone() } else { a.clone() };
    thread::scope(|s| {
        let waiting = s.spawn(|| log.sync_group(G, &follower, 1, vec![]));
        clock.advance(SESSION_MS - 1);
        log.heartbeat_group(G, &follower, 1).unwrap();
        clock.advance(1);
        // The leader is dropped; the rest rebalance, and the waiting sync learns it.
        wait_until("the leader's session expires", || {
            state(&log) == "PreparingRebalance"
        });
        assert_eq!(
            kind(waiting.join().unwrap()),
            GroupErrorKind::RebalanceInProgress
        );
    });
    assert_eq!(
        kind(log.heartbeat_group(G, &leader, 1)),
        GroupErrorKind::UnknownMember(leader.clone())
    );

    // Alone, the follower completes the next rebalance and leads it.
    let mf = if follower == a { &ma } else { &mb };
    let j = joined(log.join_group(G, &follower, true, mf));
    assert_eq!((j.generation, j.leader.as_str()), (2, follower.as_str()));
}

#[test]
fn delete_only_an_empty_group_and_its_offsets_stay_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _clock) = open(dir.path());
    let tp = |p| TopicPartition::new("t", p);
    let ma = range("a");
    let j = joined(log.join_group(G, "", false, &ma));
    log.sync_group(G, &j.member_id, 1, vec![]).unwrap();
    log.commit_offsets(G, Some((&j.member_id, 1)), &[(tp(0), 4), (tp(1), 2)])
        .unwrap();
    log.commit_offsets("other", None, &[(tp(0), 1)]).unwrap();
    assert_eq!(kind(log.delete_group(G)), GroupErrorKind::NonEmptyGroup);
    log.leave_group(G, &j.member_id).unwrap();
    log.delete_group(G).unwrap();
    assert_eq!(log.committed_offset(G, "t", 0).unwrap(), None);
    assert_eq!(log.list_groups().unwrap(), vec!["other".to_string()]);
    assert_eq!(log.describe_group_members(G).unwrap(), None);
    assert_eq!(kind(log.delete_group(G)), GroupErrorKind::UnknownGroup);
    assert_eq!(
        kind(log.delete_group("never")),
        GroupErrorKind::UnknownGroup
    );
    log.close().unwrap();
    drop(log);

    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.committed_offset(G, "t", 0).unwrap(), None);
    assert_eq!(log.committed_offset(G, "t", 1).unwrap(), None);
    assert_eq!(log.committed_offset("other", "t", 0).unwrap(), Some(1));
    assert_eq!(log.list_groups().unwrap(), vec!["other".to_string()]);
    // A group known only by its offsets (this process never saw a member) is deletable.
    log.delete_group("other").unwrap();
    assert!(log.list_groups().unwrap().is_empty());
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert!(log.list_groups().unwrap().is_empty());
}

#[test]
fn embedded_and_classic_members_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _clock) = open(dir.path());
    let mut embedded = Consumer::new(
        &log,
        ConsumerConfig {
            group: Some("embedded".into()),
            ..ConsumerConfig::default()
        },
    )
    .unwrap();
    embedded.subscribe(&["t"]).unwrap();
    embedded.poll(Duration::from_millis(100)).unwrap();
    assert!(matches!(
        kind(log.join_group("embedded", "", true, &range("k"))),
        GroupErrorKind::InconsistentGroupProtocol(_)
    ));
    // Kafka tools see the embedded group as a consumer group.
    let d = log.describe_group_members("embedded").unwrap().unwrap();
    assert_eq!(
        (
            d.state.as_str(),
            d.protocol_type.as_str(),
            d.protocol.as_str()
        ),
        ("Stable", "consumer", "range")
    );
    assert_eq!(d.members.len(), 1);
    assert!(!d.members[0].metadata.is_empty() && !d.members[0].assignment.is_empty());

    joined(log.join_group(G, "", false, &range("k")));
    let mut intruder = Consumer::new(
        &log,
        ConsumerConfig {
            group: Some(G.into()),
            ..ConsumerConfig::default()
        },
    )
    .unwrap();
    assert!(matches!(
        kind(intruder.subscribe(&["t"])),
        GroupErrorKind::InconsistentGroupProtocol(_)
    ));
}

#[test]
fn static_members_are_reported_and_a_restarted_instance_replaces_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _clock) = open(dir.path());
    let stat = |client: &str, instance: &str| ClassicMember {
        group_instance_id: Some(instance.to_string()),
        ..member(client, &[("range", &subscription(&["t"]))])
    };
    // A static member skips the member-id round.
    let j1 = joined(log.join_group(G, "", true, &stat("a", "i-1")));
    assert_eq!(
        j1.members,
        vec![(
            j1.member_id.clone(),
            Some("i-1".into()),
            subscription(&["t"])
        )]
    );
    let a = j1.member_id;
    log.sync_group(G, &a, 1, vec![(a.clone(), assignment("t", &[0, 2]))])
        .unwrap();

    // What other processes read (weir groups describe): the member with its instance id,
    // host, subscription and the partitions the leader gave it.
    let ro = Log::open_read_only(dir.path()).unwrap();
    let published = ro.describe_group(G).unwrap().membership.unwrap();
    assert_eq!(published.protocol.as_deref(), Some("range"));
    let m = &published.members[0];
    assert_eq!(m.group_instance_id.as_deref(), Some("i-1"));
    assert_eq!(m.client_host, stat("a", "i-1").client_host);
    assert_eq!(m.topics, vec!["t".to_string()]);
    assert_eq!(
        m.assignment,
        vec![("t".to_string(), 0), ("t".to_string(), 2)]
    );

    // b (static, i-2) joins; a rejoins for the rebalance.
    let b = thread::scope(|s| {
        let hb = s.spawn(|| joined(log.join_group(G, "", true, &stat("b", "i-2"))));
        wait_until("b's join starts a rebalance", || {
            state(&log) == "PreparingRebalance"
        });
        let ja = joined(log.join_group(G, &a, true, &stat("a", "i-1")));
        let jb = hb.join().unwrap();
        assert_eq!((ja.generation, jb.generation), (2, 2));
        let mut instances: Vec<Option<String>> = ja.members.iter().map(|m| m.1.clone()).collect();
        instances.sort();
        assert_eq!(instances, vec![Some("i-1".into()), Some("i-2".into())]);
        jb.member_id
    });
    // A member claiming another member's instance id is fenced.
    assert_eq!(
        kind(log.join_group(G, &b, true, &stat("b", "i-1")).map(|_| ())),
        GroupErrorKind::FencedInstanceId("i-1".into())
    );
    // A restarted instance i-1 (no member id) takes a's place; a's id is gone.
    let (a2, leader) = thread::scope(|s| {
        let h = s.spawn(|| joined(log.join_group(G, "", true, &stat("a", "i-1"))));
        wait_until("the new instance starts a rebalance", || {
            state(&log) == "PreparingRebalance"
        });
        let jb = joined(log.join_group(G, &b, true, &stat("b", "i-2")));
        let j = h.join().unwrap();
        assert_eq!((j.generation, jb.generation), (3, 3));
        // a led, so its new incarnation leads.
        assert_eq!(j.leader, j.member_id);
        (j.member_id, j.leader)
    });
    assert_ne!(a2, a);
    assert_eq!(
        kind(log.heartbeat_group(G, &a, 2)),
        GroupErrorKind::UnknownMember(a.clone())
    );
    log.heartbeat_group(G, &a2, 3).unwrap();

    // In a stable group, a restarted instance takes its place without a rebalance (KIP-345):
    // the response names the leader as it was, so it syncs as a follower and gets the
    // assignment its previous incarnation had.
    let assignments: &[(&str, &[u8])] = &[(&a2, b"to a"), (&b, b"to b")];
    sync_all(&log, 3, &leader, &[&a2, &b], assignments);
    let j = joined(log.join_group(G, "", true, &stat("b", "i-2")));
    let b2 = j.member_id.clone();
    assert_ne!(b2, b);
    assert_eq!((j.generation, j.leader.as_str()), (3, leader.as_str()));
    assert!(j.members.is_empty());
    assert_eq!(state(&log), "Stable");
    assert_eq!(log.sync_group(G, &b2, 3, vec![]).unwrap(), b"to b");
    log.heartbeat_group(G, &a2, 3).unwrap();
    log.heartbeat_group(G, &b2, 3).unwrap();
    assert_eq!(
        kind(log.heartbeat_group(G, &b, 3)),
        GroupErrorKind::UnknownMember(b.clone())
    );
}

#[test]
fn transactional_commits_are_fenced_by_member_and_generation_only() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _clock) = open(dir.path());
    let tp = TopicPartition::new("t", 0);
    let (ma, mb) = (range("a"), range("b"));
    let (a, b) = (member_id(&log, &ma), member_id(&log, &mb));
    let r = join_all(&log, &[(&a, &ma), (&b, &mb)]);
    assert_eq!(state(&log), "CompletingRebalance");
    let gm = |member: &str, generation| GroupMetadata {
        group: G.into(),
        member_id: Some(member.to_string()),
        generation,
    };
    let mut p = TransactionalProducer::new(&log, TransactionalConfig::new("copier")).unwrap();
    p.begin().unwrap();
    // Kafka's TxnOffsetCommit checks the member and generation, not the group's state; a
    // plain commit in CompletingRebalance is refused.
    p.send_offsets(&[(tp.clone(), 3)], &gm(&a, 1)).unwrap();
    assert_eq!(
        kind(log.commit_offsets(G, Some((&a, 1)), &[(tp.clone(), 3)])),
        GroupErrorKind::RebalanceInProgress
    );
    assert_eq!(
        kind(p.send_offsets(&[(tp.clone(), 4)], &gm(&a, 0))),
        GroupErrorKind::IllegalGeneration {
            given: 0,
            current: 1
        }
    );
    p.abort().unwrap();
    let mut p = TransactionalProducer::new(&log, TransactionalConfig::new("copier")).unwrap();
    p.begin().unwrap();
    // Without group metadata (older clients), as Kafka allows, even into an active group.
    let no_member = GroupMetadata {
        member_id: None,
        ..gm(&a, -1)
    };
    p.send_offsets(&[(tp.clone(), 5)], &no_member).unwrap();
    p.commit().unwrap();
    assert_eq!(log.committed_offset(G, "t", 0).unwrap(), Some(5));
    sync_all(&log, 1, &r[0].leader, &[&a, &b], &[]);
}
