//! Consumer groups: 3 consumers join and leave while 100k records on 6 partitions are consumed;
//! every record is processed, no partition is owned twice at once, and committed offsets resume
//! correctly after a restart.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_log::{
    Consumer, ConsumerConfig, Log, LogConfig, Producer, ProducerConfig, ProducerRecord,
    RebalanceEvent, TopicConfig, TopicPartition,
};

const TOPIC: &str = "events";
const PARTITIONS: i32 = 6;
const RECORDS: usize = 100_000;

fn config(client: &str) -> ConsumerConfig {
    ConsumerConfig {
        group: Some("g".into()),
        client_id: client.into(),
        session_timeout_ms: 3_000,
        rebalance_timeout_ms: 5_000,
        heartbeat_interval_ms: 20,
        auto_commit_interval_ms: 50,
        fetch_bytes_max: 1024,
        poll_bytes_max: 2048,
        ..ConsumerConfig::default()
    }
}

#[test]
fn members_join_and_leave_and_every_record_is_processed_once_owned() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic(
        TOPIC,
        TopicConfig {
            partitions: PARTITIONS,
            ..TopicConfig::default()
        },
    )
    .unwrap();
    // Small batches, so that consuming takes many polls and members come and go meanwhile.
    let producer = Producer::new(
        &log,
        ProducerConfig {
            batch_bytes_max: 4096,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    for i in 0..RECORDS {
        let v = i.to_string();
        producer
            .send(ProducerRecord::new(TOPIC, v.as_bytes()).key(v.as_bytes()))
            .unwrap();
    }
    producer.close().unwrap();

    let owners: Arc<Mutex<HashMap<i32, String>>> = Arc::default();
    let processed: Arc<Mutex<HashSet<(i32, i64)>>> = Arc::default();
    let violations: Arc<Mutex<Vec<String>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let generations: Arc<Mutex<HashSet<i32>>> = Arc::default();
    // Each member joins once `start` records are processed and leaves at `stop`.
    let plan = [
        ("c0", 0usize, 60_000usize),
        ("c1", 10_000, usize::MAX),
        ("c2", 30_000, 85_000),
    ];
    let mut threads = Vec::new();
    for (name, start, stop) in plan {
        let (log, owners, processed, violations, done) = (
            log.clone(),
            owners.clone(),
            processed.clone(),
            violations.clone(),
            done.clone(),
        );
        let gens = generations.clone();
        threads.push(std::thread::spawn(move || {
            while processed.lock().unwrap().len() < start {
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut c = Consumer::new(&log, config(name)).unwrap();
            let (o, v) = (owners.clone(), violations.clone());
            c.set_rebalance_listener(Box::new(move |e| {
                let mut o = o.lock().unwrap();
                match e {
                    RebalanceEvent::Revoked(ps) => {
                        for tp in ps {
                            let p = &tp.partition();
                            if o.remove(p).as_deref() != Some(name) {
                                v.lock()
                                    .unwrap()
                                    .push(format!("{name} revoked {p} it did not own"));
                            }
                        }
                    }
                    RebalanceEvent::Assigned {
                        partitions,
                        generation,
                    } => {
                        gens.lock().unwrap().insert(*generation);
                        for tp in partitions {
                            let p = &tp.partition();
                            if let Some(prev) = o.insert(*p, name.to_string()) {
                                v.lock()
                                    .unwrap()
                                    .push(format!("{name} got {p} while {prev} owned it"));
                            }
                        }
                    }
                }
            }));
            c.subscribe(&[TOPIC]).unwrap();
            while !done.load(Ordering::Acquire) && processed.lock().unwrap().len() < stop {
                for b in c.poll(Duration::from_millis(20)).unwrap() {
                    let mut set = processed.lock().unwrap();
                    for r in b.records() {
                        set.insert((b.partition, r.unwrap().offset));
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            c.close().unwrap();
        }));
    }
    // The last member standing (c1) runs until everything is processed.
    while processed.lock().unwrap().len() < RECORDS {
        std::thread::sleep(Duration::from_millis(20));
    }
    done.store(true, Ordering::Release);
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        violations.lock().unwrap().is_empty(),
        "{:?}",
        violations.lock().unwrap()
    );
    assert_eq!(processed.lock().unwrap().len(), RECORDS);
    // c0 alone, +c1, +c2, -c0, -c2: at least five generations handed out assignments.
    assert!(
        generations.lock().unwrap().len() >= 5,
        "generations: {:?}",
        generations.lock().unwrap()
    );

    // Restart: the committed offsets survive a close and reopen and resume exactly.
    let mut ends = HashMap::new();
    for p in 0..PARTITIONS {
        ends.insert(p, log.offsets(TOPIC, p).unwrap().1);
    }
    let committed: HashMap<i32, i64> = (0..PARTITIONS)
        .map(|p| (p, log.committed_offset("g", TOPIC, p).unwrap().unwrap()))
        .collect();
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    for p in 0..PARTITIONS {
        assert_eq!(
            log.committed_offset("g", TOPIC, p).unwrap(),
            Some(committed[&p])
        );
    }
    let producer = Producer::new(&log, ProducerConfig::default()).unwrap();
    for i in 0..600 {
        producer
            .send(
                ProducerRecord::new(TOPIC, format!("new-{i}").as_bytes()).partition(i % PARTITIONS),
            )
            .unwrap();
    }
    producer.close().unwrap();
    let mut c = Consumer::new(&log, config("after-restart")).unwrap();
    c.subscribe(&[TOPIC]).unwrap();
    let mut got: Vec<(i32, i64)> = Vec::new();
    let expected_total: i64 = (0..PARTITIONS)
        .map(|p| ends[&p] + 100 - committed[&p])
        .sum();
    while (got.len() as i64) < expected_total {
        for b in c.poll(Duration::from_millis(100)).unwrap() {
            for r in b.records() {
                got.push((b.partition, r.unwrap().offset));
            }
        }
    }
    for p in 0..PARTITIONS {
        let offsets: Vec<i64> = got.iter().filter(|g| g.0 == p).map(|g| g.1).collect();
        let want: Vec<i64> = (committed[&p]..ends[&p] + 100).collect();
        assert_eq!(
            offsets, want,
            "partition {p} resumes at its committed offset"
        );
    }
    c.close().unwrap();
}

#[test]
fn a_stale_generation_cannot_commit() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic(
        TOPIC,
        TopicConfig {
            partitions: 2,
            ..TopicConfig::default()
        },
    )
    .unwrap();
    let mut a = Consumer::new(&log, config("a")).unwrap();
    a.subscribe(&[TOPIC]).unwrap();
    a.poll(Duration::from_millis(200)).unwrap();
    let generation = a.generation();
    assert!(generation >= 1);
    let err = log
        .commit_offsets(
            "g",
            Some(("a-bogus", generation)),
            &[(TopicPartition::new(TOPIC, 0), 1)],
        )
        .unwrap_err();
    assert!(matches!(err, weir_log::Error::Group { .. }), "{err}");
    let member_err = log
        .commit_offsets("g", None, &[(TopicPartition::new(TOPIC, 0), 1)])
        .unwrap_err();
    assert!(
        matches!(member_err, weir_log::Error::Group { .. }),
        "{member_err}"
    );
}

#[test]
fn another_process_sees_the_members_the_writer_published() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic(
        TOPIC,
        TopicConfig {
            partitions: 4,
            ..TopicConfig::default()
        },
    )
    .unwrap();
    let mut a = Consumer::new(&log, config("alpha")).unwrap();
    a.subscribe(&[TOPIC]).unwrap();
    a.poll(Duration::from_millis(200)).unwrap();
    a.commit_sync().unwrap();
    // A read-only handle has no live coordinator: it reads what the writer published.
    let ro = Log::open_read_only(dir.path()).unwrap();
    let info = ro.describe_group("g").unwrap();
    assert_eq!(
        info.membership_published.map(|p| p.0),
        Some(std::process::id())
    );
    let m = info.membership.unwrap();
    assert_eq!(m.members.len(), 1);
    assert_eq!(m.members[0].client_id, "alpha");
    assert_eq!(m.members[0].assignment.len(), 4);
    assert_eq!(info.offsets.len(), 4);
    a.close().unwrap();
    let after = ro.describe_group("g").unwrap().membership.unwrap();
    assert!(
        after.members.is_empty(),
        "leaving publishes the group without the member"
    );
}
