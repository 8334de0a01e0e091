//! Jobs through `Job::with_topics(KafkaTopics)` on `weir serve`: exact output under
//! exactly-once, a restart that resumes from committed offsets, and SIGKILLed instances whose
//! open transactions never show.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weir_client::ClientConfig;
use weir_cluster::KafkaTopics;
use weir_runtime::{Guarantee, Job, JobConfig, JobHandle, Json};
use weir_test_support::child::kill_after_commits;

use crate::server::{
    self, Server, child_client, produce_json, read_committed, report_commits_until_killed,
};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Reading {
    id: u64,
    sensor: u64,
    value: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct Doubled {
    id: u64,
    doubled: i64,
}

fn readings(ids: std::ops::Range<u64>) -> Vec<Reading> {
    ids.map(|id| Reading {
        id,
        sensor: (id * 7919) % 13,
        value: (id % 101) as i64 - 50,
    })
    .collect()
}

fn create_topics(client: &ClientConfig) {
    server::create_topics(client, &[("readings", 3), ("doubled", 2)]);
}

/// Produces `input` to `readings` keyed by sensor, as JSON, and waits for every delivery.
fn produce(client: &ClientConfig, input: &[Reading]) {
    produce_json(client, "readings", input, |r| r.sensor);
}

/// The doubling job on `client`'s cluster, started.
fn start_doubler(
    client: &ClientConfig,
    guarantee: Guarantee,
    stop_when_drained: bool,
) -> JobHandle {
    let topics = KafkaTopics::new(client.clone()).unwrap();
    let mut config = JobConfig::new("doubler");
    config.guarantee = guarantee;
    config.stop_when_drained = stop_when_drained;
    config.epoch_ms = 50;
    // weir serve keeps names starting with `__` for itself: the default `__weir_state` is refused.
    config.state_topic = "doubler-state".into();
    let job = Job::with_topics(Arc::new(topics), config).unwrap();
    job.source::<Reading, _>("readings", Json)
        .parallelism(2)
        .stream()
        .map(|r| Doubled {
            id: r.id,
            doubled: r.value * 2,
        })
        .sink("doubled", Json);
    job.start().unwrap()
}

/// The committed output, by id; panics naming an id written twice.
fn output(client: &ClientConfig) -> BTreeMap<u64, i64> {
    let mut out = BTreeMap::new();
    for r in read_committed(client, "doubled") {
        let d: Doubled = serde_json::from_slice(&r.value).unwrap();
        let earlier = out.insert(d.id, d.doubled);
        assert!(
            earlier.is_none(),
            "id {} committed twice (again at doubled/{} offset {})",
            d.id,
            r.partition,
            r.offset
        );
    }
    out
}

fn expected(input: &[Reading]) -> BTreeMap<u64, i64> {
    input.iter().map(|r| (r.id, r.value * 2)).collect()
}

#[test]
fn a_job_on_the_server_writes_exactly_its_output_and_resumes_where_it_committed() {
    let server = Server::start();
    let client = server.client();
    create_topics(&client);
    let input = readings(0..6_000);
    produce(&client, &input[..4_000]);
    let metrics = start_doubler(&client, Guarantee::ExactlyOnce, true)
        .wait()
        .unwrap();
    assert_eq!(metrics.source_records, 4_000);
    assert!(metrics.checkpoints >= 1);
    assert_eq!(output(&client), expected(&input[..4_000]));

    // A second run of the same job reads only what the first did not commit.
    produce(&client, &input[4_000..]);
    let metrics = start_doubler(&client, Guarantee::ExactlyOnce, true)
        .wait()
        .unwrap();
    assert_eq!(
        metrics.source_records, 2_000,
        "the second run starts at the committed offsets"
    );
    assert_eq!(output(&client), expected(&input));
    server.stop();
}

#[test]
fn a_job_drains_a_transactional_input_past_its_commit_markers() {
    let server = Server::start();
    let client = server.client();
    create_topics(&client);
    let input = readings(0..2_000);
    produce(&client, &input);
    start_doubler(&client, Guarantee::ExactlyOnce, true)
        .wait()
        .unwrap();
    // `doubled` was written in transactions: each partition ends with a commit marker, which a
    // draining source must count as read (its position passes it) or it never stops.
    server::create_topics(&client, &[("copied", 1)]);
    let mut config = JobConfig::new("copier");
    config.stop_when_drained = true;
    config.epoch_ms = 50;
    config.state_topic = "copier-state".into();
    let job =
        Job::with_topics(Arc::new(KafkaTopics::new(client.clone()).unwrap()), config).unwrap();
    job.source::<Doubled, _>("doubled", Json)
        .stream()
        .sink("copied", Json);
    let metrics = job.start().unwrap().wait().unwrap();
    assert_eq!(metrics.source_records, 2_000);
    assert_eq!(read_committed(&client, "copied").len(), 2_000);
    server.stop();
}

#[test]
fn an_at_least_once_job_on_the_server_writes_every_record() {
    let server = Server::start();
    let client = server.client();
    create_topics(&client);
    let input = readings(0..3_000);
    produce(&client, &input);
    let metrics = start_doubler(&client, Guarantee::AtLeastOnce, true)
        .wait()
        .unwrap();
    assert_eq!(metrics.source_records, 3_000);
    // No crash: nothing is written twice either.
    assert_eq!(output(&client), expected(&input));
    server.stop();
}

// ---- exactly-once under SIGKILL ----------------------------------------------------------

/// The server the child runs its job against.
const CHILD_BOOTSTRAP_ENV: &str = "WEIR_CLUSTER_CHILD_BOOTSTRAP";

/// The child: runs the doubling job (following its input) on the server, printing a line per
/// committed epoch, until it is killed.
#[test]
#[ignore = "child process of sigkilled_jobs_leave_no_duplicate"]
fn doubler_child() {
    let Some(client) = child_client(CHILD_BOOTSTRAP_ENV) else {
        return;
    };
    report_commits_until_killed(start_doubler(&client, Guarantee::ExactlyOnce, false));
}

#[test]
fn sigkilled_jobs_leave_no_duplicate_and_no_gap() {
    let seed = weir_test_support::seed();
    let server = Server::start();
    let client = server.client();
    create_topics(&client);
    let input = readings(0..40_000);
    // Each round: a fifth of the input more, so that the child has something to read; it
    // commits twice after it has read something, then is SIGKILLed at a random moment
    // (mid-epoch, mid-commit, or caught up); its successor fences it and aborts its open
    // transaction.
    let fifths: Vec<&[Reading]> = input.chunks(input.len() / 5).collect();
    let env = [(CHILD_BOOTSTRAP_ENV, server.addr.clone())];
    for (round, fifth) in fifths[..4].iter().enumerate() {
        produce(&client, fifth);
        kill_after_commits("jobs::doubler_child", &env, 1, 2, seed + round as u64);
    }
    // Then the rest, and once more in this process to the end of the input.
    produce(&client, fifths[4]);
    start_doubler(&client, Guarantee::ExactlyOnce, true)
        .wait()
        .unwrap();
    assert_eq!(output(&client), expected(&input), "seed {seed}");
    server.stop();
}
