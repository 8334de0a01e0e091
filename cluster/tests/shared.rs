//! Instances sharing one job on `weir serve`: a windowed count per ad with a salted hot ad and
//! late clicks, run by several child processes that join the job's group. Instances start, are
//! SIGKILLed and restarted, one is paused (SIGSTOP) past its session timeout while the others
//! take its partitions, the count goes 1 → 3 → 2; then the job is drained by one instance. The
//! committed windows must be exactly those of the same input through one instance on the
//! embedded log (late clicks included), and each must equal an independent count of the input.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use weir_client::{ClientConfig, Producer, ProducerConfig, ProducerRecord};
use weir_cluster::KafkaTopics;
use weir_operators::aggregate::count;
use weir_operators::window::WindowSpec;
use weir_operators::windowed::{HotKeys, KeyedWindowExt, LateRecord, WindowResult};
use weir_runtime::{EmbeddedTopics, Job, JobConfig, JobHandle, Json, Topics};
use weir_test_support::child::{COMMITTED, spawn_child};

use crate::server::{self, Server, child_client, read_committed};
use crate::windows::{Click, Counts, MINUTE, T0, assert_same};

const PARTITIONS: u64 = 6;
/// Short, so that a paused instance is dropped soon; its open transaction is aborted after the
/// transaction timeout.
const SESSION_TIMEOUT_MS: u64 = 6_000;
/// How long a wait for an instance's commits may take before the test calls it a hang (not a
/// timing check: a loaded machine is far faster than this).
const HANG_MAX: Duration = Duration::from_secs(240);

/// `n` clicks over `minutes` in event-time order, a third on the viral ad 0, and one in 50 of
/// the others three minutes older than its neighbours: late once the watermark has passed.
fn clicks(n: u64, minutes: u64, ads: u64) -> Vec<Click> {
    (0..n)
        .map(|i| {
            let ts = T0 + (i * minutes * MINUTE as u64 / n) as i64;
            let ad_id = if i % 3 == 0 { 0 } else { 1 + (i * 7919) % ads };
            let late = ad_id != 0 && i % 50 == 1;
            Click {
                ad_id,
                ts: if late { ts - 3 * MINUTE } else { ts },
            }
        })
        .collect()
}

/// The partition a click goes to, the same on the embedded log and the server, so that both
/// runs see every partition in the same order (lateness is judged per partition).
fn partition_of(c: &Click) -> i32 {
    (c.ad_id % PARTITIONS) as i32
}

/// The job, wherever its topics are: one instance of it, or one of several sharing it.
fn start_counts(topics: Arc<dyn Topics>, stop_when_drained: bool) -> JobHandle {
    let mut config = JobConfig::new("shared-counts");
    config.stop_when_drained = stop_when_drained;
    config.epoch_ms = 100;
    config.parallelism_default = 2;
    config.session_timeout_ms = SESSION_TIMEOUT_MS;
    // No partition may go idle while the input arrives in bursts between kills and pauses:
    // idleness is processing time, and a partition left out of the watermark for a while
    // changes which clicks are late (the embedded reference reads everything at once).
    config.idle_timeout_ms = 600_000;
    let job = Job::with_topics(topics, config).unwrap();
    let out = job
        .source::<Click, _>("clicks", Json)
        .timestamps(|c| c.ts, 1_000)
        .key_by(|c| c.ad_id)
        .window(WindowSpec::tumbling(Duration::from_secs(60)))
        .hot_keys(HotKeys::named(vec![0u64]).salts(3))
        .aggregate(count());
    out.results
        .sink_keyed("counts", Json, |r: &WindowResult<u64, u64>| {
            r.key.to_string().into_bytes()
        });
    out.late.sink("late", Json);
    job.start().unwrap()
}

fn cluster_topics(client: &ClientConfig) -> Arc<dyn Topics> {
    Arc::new(KafkaTopics::new(client.clone()).unwrap())
}

/// Committed windows, each once.
fn counts_of(results: impl IntoIterator<Item = WindowResult<u64, u64>>) -> Counts {
    let mut m = Counts::new();
    for w in results {
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

/// Late clicks, as a sorted list of (ad, ts).
fn late_of(late: impl IntoIterator<Item = LateRecord<u64, Click>>) -> Vec<(u64, i64)> {
    let mut v: Vec<(u64, i64)> = late.into_iter().map(|l| (l.key, l.value.ts)).collect();
    v.sort_unstable();
    v
}

/// The same input through one instance on the embedded log.
fn embedded_reference(input: &[Click]) -> (Counts, Vec<(u64, i64)>) {
    let (_dir, log) = weir_test_support::temp_log();
    weir_test_support::create_topic(&log, "clicks", PARTITIONS as i32);
    weir_test_support::create_topic(&log, "counts", 2);
    weir_test_support::create_topic(&log, "late", 1);
    let producer = weir_runtime::weir_log::Producer::new(
        &log,
        weir_runtime::weir_log::ProducerConfig::default(),
    )
    .unwrap();
    for c in input {
        let value = serde_json::to_vec(c).unwrap();
        let key = c.ad_id.to_string();
        producer
            .send(
                weir_runtime::weir_log::ProducerRecord::new("clicks", &value)
                    .key(key.as_bytes())
                    .partition(partition_of(c)),
            )
            .unwrap();
    }
    producer.flush().unwrap();
    start_counts(Arc::new(EmbeddedTopics::new(log.clone())), true)
        .wait()
        .unwrap();
    (
        counts_of(weir_test_support::read_values(&log, "counts")),
        late_of(weir_test_support::read_values(&log, "late")),
    )
}

fn produce(client: &ClientConfig, input: &[Click]) {
    let producer = Producer::new(client, &ProducerConfig::default()).unwrap();
    for c in input {
        let value = serde_json::to_vec(c).unwrap();
        let key = c.ad_id.to_string();
        producer
            .send(
                ProducerRecord::new("clicks", &value)
                    .key(key.as_bytes())
                    .partition(partition_of(c)),
            )
            .unwrap();
    }
    producer.flush().unwrap();
}

const CHILD_BOOTSTRAP_ENV: &str = "WEIR_CLUSTER_SHARED_CHILD_BOOTSTRAP";

/// The child: one instance of the shared job, following its input until it is killed.
#[test]
#[ignore = "child process of instances_share_a_job_through_kills_pauses_and_rebalances"]
fn shared_counts_child() {
    let Some(client) = child_client(CHILD_BOOTSTRAP_ENV) else {
        return;
    };
    // Every commit counts (not only those after the instance read a source record, as in the
    // single-instance tests): an instance may own only partitions that others have drained.
    let handle = start_counts(cluster_topics(&client), false);
    weir_test_support::child::report_commits_while_running(
        || handle.committed_epoch(),
        || handle.is_finished(),
    );
    panic!("the job stopped: {:?}", handle.wait());
}

/// A child instance, and the commits it has reported.
struct Instance {
    child: Child,
    commits: Arc<AtomicU64>,
}

impl Instance {
    fn start(env: &[(&str, String)]) -> Instance {
        let mut child = spawn_child("shared::shared_counts_child", env);
        let stdout = child.stdout.take().unwrap();
        let commits = Arc::new(AtomicU64::new(0));
        let c = commits.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with(COMMITTED) {
                    c.fetch_add(1, SeqCst);
                }
            }
        });
        Instance { child, commits }
    }

    /// Waits until this instance has reported `more` commits past what it had.
    fn wait_commits(&self, more: u64) {
        let target = self.commits.load(SeqCst) + more;
        let started = Instant::now();
        while self.commits.load(SeqCst) < target {
            assert!(
                started.elapsed() < HANG_MAX,
                "an instance stopped committing (pid {})",
                self.child.id()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: a signal to our own child, which has not been waited for (so the pid is
        // still its own).
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

#[test]
fn instances_share_a_job_through_kills_pauses_and_rebalances() {
    let seed = weir_test_support::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let input = clicks(24_000, 24, 30);
    let (expected_counts, expected_late) = embedded_reference(&input);
    assert!(!expected_late.is_empty(), "the input has late clicks");

    let server = Server::start();
    let client = server.client();
    server::create_topics(
        &client,
        &[("clicks", PARTITIONS as i32), ("counts", 2), ("late", 1)],
    );
    let env = [(CHILD_BOOTSTRAP_ENV, server.addr.clone())];
    let sixths: Vec<&[Click]> = input.chunks(input.len() / 6).collect();

    // One instance.
    produce(&client, sixths[0]);
    let a = Instance::start(&env);
    a.wait_commits(2);
    // Three: the group splits the partitions, state moves with them.
    produce(&client, sixths[1]);
    let b = Instance::start(&env);
    let c = Instance::start(&env);
    b.wait_commits(2);
    c.wait_commits(2);
    // One SIGKILLed at a random moment and started again.
    produce(&client, sixths[2]);
    std::thread::sleep(Duration::from_millis(rng.u64(0..300)));
    b.kill();
    let b = Instance::start(&env);
    b.wait_commits(2);
    // A zombie: paused past its session timeout, while the others take its partitions over
    // and commit; resumed, it must not commit (its writes are aborted, never seen).
    produce(&client, sixths[3]);
    c.signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(SESSION_TIMEOUT_MS + 2_000));
    produce(&client, sixths[4]);
    a.wait_commits(3);
    c.signal(libc::SIGCONT);
    b.wait_commits(2);
    // Down to two.
    std::thread::sleep(Duration::from_millis(rng.u64(0..300)));
    a.kill();
    produce(&client, sixths[5..].concat().as_slice());
    b.wait_commits(3);
    c.wait_commits(2);
    // Then everything down, and one instance drains the job to its end.
    b.kill();
    c.kill();
    start_counts(cluster_topics(&client), true).wait().unwrap();

    let out = counts_of(
        read_committed(&client, "counts")
            .into_iter()
            .map(|r| serde_json::from_slice::<WindowResult<u64, u64>>(&r.value).unwrap()),
    );
    let late = late_of(
        read_committed(&client, "late")
            .into_iter()
            .map(|r| serde_json::from_slice::<LateRecord<u64, Click>>(&r.value).unwrap()),
    );
    // An independent count: every click is in its window or among the late ones.
    let mut independent = Counts::new();
    for click in &input {
        *independent
            .entry((click.ad_id, click.ts.div_euclid(MINUTE) * MINUTE))
            .or_default() += 1;
    }
    for &(ad, ts) in &late {
        let w = independent
            .get_mut(&(ad, ts.div_euclid(MINUTE) * MINUTE))
            .unwrap();
        *w -= 1;
    }
    independent.retain(|_, n| *n > 0);
    assert_same(&out, &independent, "output plus late equals input", seed);
    assert_eq!(late, expected_late, "late clicks as embedded (seed {seed})");
    assert_same(&out, &expected_counts, "windows as embedded", seed);
    server.stop();
}
