//! A stateful job on `weir serve`: windowed counts per key, hot keys salted over an exchange,
//! state in the job's compacted state topic. SIGKILLed instances, then a run to the end: every
//! (key, minute) is committed once with the count of the input.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_client::ClientConfig;
use weir_cluster::KafkaTopics;
use weir_operators::aggregate::count;
use weir_operators::window::WindowSpec;
use weir_operators::windowed::{HotKeys, KeyedWindowExt, WindowResult};
use weir_runtime::{Job, JobConfig, JobHandle, Json};
use weir_test_support::child::kill_after_commits;

use crate::server::{
    self, Server, child_client, produce_json, read_committed, report_commits_until_killed,
};

/// A click on an ad at an event time (also the shared-job tests' input).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub(crate) struct Click {
    pub(crate) ad_id: u64,
    pub(crate) ts: i64,
}

pub(crate) const MINUTE: i64 = 60_000;
/// 2026-11-22 00:00 UTC.
pub(crate) const T0: i64 = 1_795_305_600_000;

/// `n` clicks over `minutes`, in event-time order (nothing is late), a third of them on ad 0.
fn clicks(n: u64, minutes: u64, ads: u64) -> Vec<Click> {
    (0..n)
        .map(|i| Click {
            ad_id: if i % 3 == 0 { 0 } else { (i * 7919) % ads },
            ts: T0 + (i * minutes * MINUTE as u64 / n) as i64,
        })
        .collect()
}

fn create_topics(client: &ClientConfig) {
    server::create_topics(client, &[("clicks", 3), ("counts", 2), ("late", 1)]);
}

fn produce(client: &ClientConfig, input: &[Click]) {
    produce_json(client, "clicks", input, |c| c.ad_id);
}

fn start_counts(client: &ClientConfig, stop_when_drained: bool) -> JobHandle {
    let topics = KafkaTopics::new(client.clone()).unwrap();
    let mut config = JobConfig::new("counts");
    config.stop_when_drained = stop_when_drained;
    config.epoch_ms = 50;
    config.parallelism_default = 2;
    // After every commit, so that each SIGKILLed run's successor resumes on purged topics.
    config.repartition_purge_interval_ms = 0;
    let job = Job::with_topics(Arc::new(topics), config).unwrap();
    let out = job
        .source::<Click, _>("clicks", Json)
        .timestamps(|c| c.ts, 1_000)
        .key_by(|c| c.ad_id)
        .window(WindowSpec::tumbling(Duration::from_secs(60)))
        .hot_keys(HotKeys::detect().salts(3))
        .aggregate(count());
    out.results
        .sink_keyed("counts", Json, |r: &WindowResult<u64, u64>| {
            r.key.to_string().into_bytes()
        });
    out.late.sink("late", Json);
    job.start().unwrap()
}

pub(crate) type Counts = BTreeMap<(u64, i64), u64>;

/// Fails, naming the first windows that differ, unless `out` equals `expected`.
pub(crate) fn assert_same(out: &Counts, expected: &Counts, what: &str, seed: u64) {
    let differ: Vec<_> = expected
        .keys()
        .chain(out.keys())
        .filter(|w| out.get(w) != expected.get(w))
        .take(5)
        .map(|w| (w, out.get(w), expected.get(w)))
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: {} windows committed, {} expected; (window, committed, expected) first \
         differing: {differ:?} (seed {seed})",
        out.len(),
        expected.len()
    );
}

fn output_counts(client: &ClientConfig) -> Counts {
    let mut m = Counts::new();
    for r in read_committed(client, "counts") {
        let w: WindowResult<u64, u64> = serde_json::from_slice(&r.value).unwrap();
        assert!(w.is_final);
        let earlier = m.insert((w.key, w.window_start), w.value);
        assert!(
            earlier.is_none(),
            "window {:?} committed twice",
            (w.key, w.window_start)
        );
    }
    m
}

fn input_counts(input: &[Click]) -> Counts {
    let mut m = Counts::new();
    for c in input {
        *m.entry((c.ad_id, c.ts.div_euclid(MINUTE) * MINUTE))
            .or_default() += 1;
    }
    m
}

const CHILD_BOOTSTRAP_ENV: &str = "WEIR_CLUSTER_COUNTS_CHILD_BOOTSTRAP";

/// The child: runs the count job (following its input) until it is killed.
#[test]
#[ignore = "child process of windowed_counts_survive_sigkill"]
fn counts_child() {
    let Some(client) = child_client(CHILD_BOOTSTRAP_ENV) else {
        return;
    };
    report_commits_until_killed(start_counts(&client, false));
}

#[test]
fn windowed_counts_survive_sigkill_with_their_state_on_the_server() {
    let seed = weir_test_support::seed();
    let server = Server::start();
    let client = server.client();
    create_topics(&client);
    let input = clicks(30_000, 20, 40);
    // Each round: a fifth of the input more, so that the child has something to read; it
    // commits twice after it has read something (windows open, state in them), then is
    // SIGKILLed at a random moment. Its successor fences it, restores the state and resumes.
    let fifths: Vec<&[Click]> = input.chunks(input.len() / 5).collect();
    let env = [(CHILD_BOOTSTRAP_ENV, server.addr.clone())];
    for (round, fifth) in fifths[..4].iter().enumerate() {
        produce(&client, fifth);
        kill_after_commits("windows::counts_child", &env, 1, 2, seed + round as u64);
    }
    // Then the rest, to the end of the input in this process: every window closes.
    produce(&client, fifths[4]);
    start_counts(&client, true).wait().unwrap();
    assert!(
        read_committed(&client, "late").is_empty(),
        "in-order input: nothing is late"
    );
    let (out, expected) = (output_counts(&client), input_counts(&input));
    assert_same(
        &out,
        &expected,
        "windows (key, start) committed against the input",
        seed,
    );
    let purged = server::assert_repartition_purged(&client, "counts");
    assert!(purged > 0, "the repartition topic was purged");
    server.stop();
}
