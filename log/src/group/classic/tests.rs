//! The classic protocol's deadlines and races, on the coordinator itself: tests here can see
//! whether a blocked thread has registered its call, so a manual clock can be moved past a
//! deadline exactly when the test means to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::*;
use crate::clock::{ManualClock, SystemClock};
use crate::group::{GroupState, MEMBERS_PER_GROUP_MAX};

const SESSION_MS: i64 = 10_000;
const REBALANCE_MS: i64 = 5_000;

fn setup() -> (Arc<ManualClock>, GroupCoordinator) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let coordinator = GroupCoordinator::new(clock.clone());
    (clock, coordinator)
}

fn member(client: &str) -> ClassicMember {
    ClassicMember {
        client_id: client.to_string(),
        client_host: "/127.0.0.1".to_string(),
        group_instance_id: None,
        protocol_type: "consumer".to_string(),
        protocols: vec![("range".to_string(), client.as_bytes().to_vec())],
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
    }
}

fn kind<T: std::fmt::Debug>(r: Result<T>) -> GroupErrorKind {
    match r {
        Err(Error::Group { reason, .. }) => reason,
        other => panic!("expected a group error, got {other:?}"),
    }
}

fn new_id(c: &GroupCoordinator, m: &ClassicMember) -> String {
    match c.join_classic("g", "", true, m).expect("join") {
        JoinOutcome::MemberIdRequired(id) => id,
        other => panic!("expected MemberIdRequired, got {other:?}"),
    }
}

fn joined(r: Result<JoinOutcome>) -> JoinedGroup {
    match r.expect("join") {
        JoinOutcome::Joined(j) => j,
        other => panic!("expected Joined, got {other:?}"),
    }
}

/// Reads one member's state under the coordinator's lock.
fn peek<T>(c: &GroupCoordinator, id: &str, f: impl Fn(&Member) -> T) -> Option<T> {
    c.lock()
        .groups
        .get("g")
        .and_then(|g| g.members.get(id))
        .map(f)
}

/// Waits until another thread's call has registered (a minute means it hung).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < give_up, "never happened: {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

fn rejoined(c: &GroupCoordinator, id: &str) -> bool {
    peek(c, id, |m| m.rejoined).unwrap_or(false)
}

fn sync_waiting(c: &GroupCoordinator, id: &str) -> bool {
    peek(c, id, |m| {
        m.classic.as_ref().is_some_and(|s| s.sync_waiter.is_some())
    })
    .unwrap_or(false)
}

fn state(c: &GroupCoordinator) -> String {
    c.describe_members("g").map(|d| d.state).unwrap_or_default()
}

/// a and b, stable in generation 1; a leads.
fn two_stable(c: &GroupCoordinator) -> (String, String) {
    let a = joined(c.join_classic("g", "", false, &member("a"))).member_id;
    c.sync("g", &a, 1, vec![]).expect("sync");
    let b = new_id(c, &member("b"));
    thread::scope(|s| {
        let hb = s.spawn(|| joined(c.join_classic("g", &b, true, &member("b"))));
        wait_until("b rejoined", || rejoined(c, &b));
        let ja = joined(c.join_classic("g", &a, true, &member("a")));
        assert_eq!((ja.generation, ja.leader.as_str()), (2, a.as_str()));
        hb.join().expect("b");
    });
    let hb = thread::scope(|s| {
        let hb = s.spawn(|| c.sync("g", &b, 2, vec![]));
        c.sync("g", &a, 2, vec![]).expect("leader sync");
        hb.join().expect("b")
    });
    hb.expect("follower sync");
    (a, b)
}

#[test]
fn a_member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() {
    let (clock, c) = setup();
    let (a, b) = two_stable(&c);
    let d = new_id(&c, &member("d"));
    let (ja, jd) = thread::scope(|s| {
        let hd = s.spawn(|| joined(c.join_classic("g", &d, true, &member("d"))));
        let ha = s.spawn(|| joined(c.join_classic("g", &a, true, &member("a"))));
        wait_until("a and d rejoined", || rejoined(&c, &a) && rejoined(&c, &d));
        // b stays alive but never rejoins.
        clock.advance(REBALANCE_MS - 1);
        assert_eq!(
            kind(c.heartbeat("g", &b, 2)),
            GroupErrorKind::RebalanceInProgress
        );
        assert_eq!(state(&c), "PreparingRebalance");
        clock.advance(1);
        assert_eq!(state(&c), "CompletingRebalance");
        (ha.join().expect("a"), hd.join().expect("d"))
    });
    assert_eq!((ja.generation, jd.generation), (3, 3));
    let listed: Vec<&str> = ja.members.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(listed, vec![a.as_str(), d.as_str()]);
    assert_eq!(
        kind(c.heartbeat("g", &b, 2)),
        GroupErrorKind::UnknownMember(b.clone())
    );
}

#[test]
fn a_leader_that_never_syncs_is_dropped_at_the_sync_timeout() {
    let (clock, c) = setup();
    let (a, b) = two_stable(&c);
    c.leave("g", &b).expect("leave");
    let d = new_id(&c, &member("d"));
    thread::scope(|s| {
        let hd = s.spawn(|| joined(c.join_classic("g", &d, true, &member("d"))));
        wait_until("d rejoined", || rejoined(&c, &d));
        let ja = joined(c.join_classic("g", &a, true, &member("a")));
        assert_eq!(ja.leader, a);
        assert_eq!(hd.join().expect("d").generation, ja.generation);
        let generation = ja.generation;
        let (c, d) = (&c, &d);
        let waiting = s.spawn(move || c.sync("g", d, generation, vec![]));
        wait_until("d waits for the assignment", || sync_waiting(c, d));
        // The leader stays alive but never sends the assignment.
        clock.advance(REBALANCE_MS - 1);
        c.heartbeat("g", &a, generation).expect("alive");
        assert_eq!(state(c), "CompletingRebalance");
        clock.advance(1);
        assert_eq!(state(c), "PreparingRebalance");
        assert_eq!(
            kind(waiting.join().expect("d")),
            GroupErrorKind::RebalanceInProgress
        );
        assert_eq!(
            kind(c.heartbeat("g", &a, generation)),
            GroupErrorKind::UnknownMember(a.clone())
        );
    });
}

#[test]
fn handed_out_member_ids_hold_a_rebalance_until_used_or_timed_out() {
    let (clock, c) = setup();
    let a = joined(c.join_classic("g", "", false, &member("a"))).member_id;
    c.sync("g", &a, 1, vec![]).expect("sync");
    let b = new_id(&c, &member("b"));
    let d = new_id(&c, &member("d"));
    assert_eq!(state(&c), "Stable", "handing out ids starts no rebalance");
    thread::scope(|s| {
        let hd = s.spawn(|| joined(c.join_classic("g", &d, true, &member("d"))));
        let ha = s.spawn(|| joined(c.join_classic("g", &a, true, &member("a"))));
        wait_until("a and d rejoined", || rejoined(&c, &a) && rejoined(&c, &d));
        // Everyone known has rejoined, but b's id may still come.
        assert_eq!(state(&c), "PreparingRebalance");
        clock.advance(REBALANCE_MS);
        assert_eq!(state(&c), "CompletingRebalance");
        let (ja, jd) = (ha.join().expect("a"), hd.join().expect("d"));
        assert_eq!((ja.generation, jd.generation), (2, 2));
        assert_eq!(ja.members.len(), 2);
    });
    // b's id is still good until its session timeout: using it rebalances again.
    thread::scope(|s| {
        let hb = s.spawn(|| joined(c.join_classic("g", &b, true, &member("b"))));
        wait_until("b joined", || rejoined(&c, &b));
        c.leave("g", &d).expect("leave");
        let ja = joined(c.join_classic("g", &a, true, &member("a")));
        assert_eq!(ja.generation, 3);
        assert_eq!(hb.join().expect("b").generation, 3);
    });
    // An id never used expires with its session timeout.
    let e = new_id(&c, &member("e"));
    clock.advance(SESSION_MS);
    c.heartbeat("g", &a, 3).map(|_| ()).unwrap_err();
    assert_eq!(
        kind(c.join_classic("g", &e, true, &member("e"))),
        GroupErrorKind::UnknownMember(e.clone())
    );
}

#[test]
fn a_newer_join_of_the_same_member_supersedes_a_blocked_one() {
    let (_clock, c) = setup();
    let (a, b) = two_stable(&c);
    let d = new_id(&c, &member("d"));
    thread::scope(|s| {
        let hd = s.spawn(|| joined(c.join_classic("g", &d, true, &member("d"))));
        wait_until("d rejoined", || rejoined(&c, &d));
        let first = s.spawn(|| c.join_classic("g", &b, true, &member("b")));
        wait_until("b rejoined", || rejoined(&c, &b));
        // The client gave up on its first request and sends another on a new connection.
        let second = s.spawn(|| c.join_classic("g", &b, true, &member("b")));
        assert_eq!(
            kind(first.join().expect("first")),
            GroupErrorKind::RebalanceInProgress
        );
        let ja = joined(c.join_classic("g", &a, true, &member("a")));
        assert_eq!(
            joined(second.join().expect("second")).generation,
            ja.generation
        );
        assert_eq!(hd.join().expect("d").generation, ja.generation);
    });
}

#[test]
fn too_many_members_are_refused() {
    let (_clock, c) = setup();
    for _ in 0..MEMBERS_PER_GROUP_MAX {
        new_id(&c, &member("m"));
    }
    assert_eq!(
        kind(c.join_classic("g", "", true, &member("m"))),
        GroupErrorKind::GroupMaxSizeReached
    );
}

type Owners = Mutex<HashMap<i32, (String, i32)>>;

/// One Kafka consumer: the member-id round, join, the leader assigns partitions 0..7 round
/// robin over the members it was given, sync, record ownership, heartbeat while "consuming",
/// and release everything (in the table first) before rejoining or leaving.
fn kafka_consumer(c: &GroupCoordinator, owners: &Owners, seed: u64, until: Instant) -> usize {
    let mut rng = fastrand::Rng::with_seed(seed);
    let m = ClassicMember {
        session_timeout_ms: 1_000,
        rebalance_timeout_ms: 1_000,
        ..member(&format!("c{seed}"))
    };
    let release = |id: &str| owners.lock().expect("owners").retain(|_, (o, _)| o != id);
    let is = |e: &Error, f: fn(&GroupErrorKind) -> bool| matches!(e, Error::Group { reason, .. } if f(reason));
    let mut id = String::new();
    let mut received = 0;
    while Instant::now() < until {
        let j = match c.join_classic("g", &id, true, &m) {
            Ok(JoinOutcome::MemberIdRequired(new)) => {
                id = new;
                continue;
            }
            Ok(JoinOutcome::Joined(j)) => j,
            Err(e) if is(&e, |k| matches!(k, GroupErrorKind::UnknownMember(_))) => {
                id.clear();
                continue;
            }
            Err(e) if is(&e, |k| *k == GroupErrorKind::RebalanceInProgress) => continue,
            Err(e) => panic!("join: {e}"),
        };
        let assignments: Vec<(String, Vec<u8>)> = if j.leader == id {
            let mut ids: Vec<&str> = j.members.iter().map(|m| m.0.as_str()).collect();
            ids.sort();
            ids.iter()
                .enumerate()
                .map(|(i, mid)| {
                    let mine: Vec<u8> = (0..7u8).filter(|p| *p as usize % ids.len() == i).collect();
                    (mid.to_string(), mine)
                })
                .collect()
        } else {
            Vec::new()
        };
        let mine = match c.sync("g", &id, j.generation, assignments) {
            Ok(bytes) => bytes,
            Err(e)
                if is(&e, |k| {
                    matches!(
                        k,
                        GroupErrorKind::RebalanceInProgress
                            | GroupErrorKind::IllegalGeneration { .. }
                    )
                }) =>
            {
                continue;
            }
            Err(e) if is(&e, |k| matches!(k, GroupErrorKind::UnknownMember(_))) => {
                id.clear();
                continue;
            }
            Err(e) => panic!("sync: {e}"),
        };
        received += 1;
        {
            let mut table = owners.lock().expect("owners");
            for p in &mine {
                if let Some((other, generation)) =
                    table.insert(i32::from(*p), (id.clone(), j.generation))
                {
                    panic!(
                        "partition {p}: {id} got it in generation {} while {other} (generation \
                         {generation}) still owned it",
                        j.generation
                    );
                }
            }
        }
        while Instant::now() < until {
            thread::sleep(Duration::from_millis(rng.u64(1..4)));
            if rng.u32(0..100) == 0 {
                release(&id);
                let _ = c.leave("g", &id);
                id.clear();
                break;
            }
            match c.heartbeat("g", &id, j.generation) {
                Ok(()) => {}
                Err(e) => {
                    release(&id);
                    if is(&e, |k| matches!(k, GroupErrorKind::UnknownMember(_))) {
                        id.clear();
                    }
                    break;
                }
            }
        }
    }
    release(&id);
    if !id.is_empty() {
        let _ = c.leave("g", &id);
    }
    received
}

#[test]
fn kafka_consumers_never_own_the_same_partition_at_once() {
    let c = GroupCoordinator::new(Arc::new(SystemClock::new()));
    let owners = Owners::default();
    let until = Instant::now() + Duration::from_millis(1_500);
    let received: usize = thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|seed| {
                let (c, owners) = (&c, &owners);
                s.spawn(move || kafka_consumer(c, owners, seed, until))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("consumer"))
            .sum()
    });
    assert!(owners.lock().expect("owners").is_empty());
    let d = c.describe("g").expect("group");
    assert_eq!(d.state, GroupState::Empty, "{d:?}");
    assert!(d.generation > 3, "little progress: {d:?}");
    assert!(received > 3, "{received}");
}
