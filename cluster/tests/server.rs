//! Starting and stopping `weir serve`, creating and filling topics, reading a topic back as an
//! independent read_committed consumer, and the child side of the SIGKILL tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use weir_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, Event, Isolation, NewTopic, Producer,
    ProducerConfig, ProducerRecord, StartAt,
};
use weir_runtime::JobHandle;
use weir_test_support::child::report_commits_while_running;

/// How long a server may take to stop after SIGTERM: a hang, not a timing check.
const STOP_WAIT_MAX: Duration = Duration::from_secs(60);

/// The `weir` binary of this workspace, from the same build profile as this test binary
/// (`target/<profile>/deps/integration-*` beside `target/<profile>/weir`): `cargo test
/// --workspace` builds it, `cargo test -p weir-cluster` alone does not.
fn weir_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lies in target/<profile>/deps");
    let bin = profile_dir.join("weir");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build -p weir --bin weir`, with `--release` for a \
         release test run)",
        bin.display()
    );
    bin
}

/// A `weir serve` child process; killed (SIGKILL) when dropped unless stopped first.
pub(crate) struct Server {
    child: Option<Child>,
    /// HOST:PORT it listens on.
    pub(crate) addr: String,
    /// Its data directory, removed when the server is dropped.
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `weir serve` on 127.0.0.1 (a port the OS picks) over a new scratch directory and
    /// waits for its `listening:` line.
    pub(crate) fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(weir_binary())
            .arg("--data-dir")
            .arg(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("WEIR_DATA_DIR")
            .env_remove("WEIR_BOOTSTRAP")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening: ")
            .unwrap_or_else(|| panic!("weir serve printed {line:?}, not `listening: ADDR`"))
            .to_string();
        Server {
            child: Some(child),
            addr,
            _dir: dir,
        }
    }

    /// Client settings for this server.
    pub(crate) fn client(&self) -> ClientConfig {
        ClientConfig {
            request_timeout_ms: 10_000,
            ..ClientConfig::new(self.addr.clone())
        }
    }

    /// SIGTERM by pid, then waits: the server closes its log cleanly and exits 0.
    pub(crate) fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid, which we have not yet waited for.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > STOP_WAIT_MAX {
                let _ = child.kill();
                panic!("weir serve did not stop within {STOP_WAIT_MAX:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "weir serve exited with {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A record read back.
pub(crate) struct ReadBack {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) value: Vec<u8>,
}

/// Every committed record of `topic`, read by a plain read_committed consumer of weir-client
/// up to each partition's end.
pub(crate) fn read_committed(client: &ClientConfig, topic: &str) -> Vec<ReadBack> {
    let consumer = Consumer::new(
        client,
        &ConsumerConfig {
            isolation: Isolation::ReadCommitted,
            report_partition_end: true,
            ..ConsumerConfig::default()
        },
    )
    .unwrap();
    let partitions = consumer.partitions(topic).unwrap();
    let assignment: Vec<(i32, StartAt)> = partitions
        .iter()
        .map(|&p| (p, StartAt::Beginning))
        .collect();
    consumer.assign(topic, &assignment).unwrap();
    let mut ended = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    while ended.len() < partitions.len() {
        match consumer.poll(Duration::from_millis(100)).unwrap() {
            None => {}
            Some(Event::PartitionEnd { partition }) => {
                ended.insert(partition);
            }
            Some(Event::Record(r)) => out.push(ReadBack {
                partition: r.partition(),
                offset: r.offset(),
                value: r.value().unwrap_or_default().to_vec(),
            }),
        }
    }
    out
}

/// Creates each `(name, partitions)` topic with the server's defaults.
pub(crate) fn create_topics(client: &ClientConfig, topics: &[(&str, i32)]) {
    let admin = Admin::connect(client).unwrap();
    for &(name, partitions) in topics {
        admin
            .create_topic(&NewTopic {
                name: name.into(),
                partitions,
                replication_factor: None,
                configs: Vec::new(),
            })
            .unwrap();
    }
}

/// Produces `items` to `topic` as JSON, each keyed by `key` of it, and waits for every delivery.
pub(crate) fn produce_json<T: Serialize>(
    client: &ClientConfig,
    topic: &str,
    items: &[T],
    key: impl Fn(&T) -> u64,
) {
    let producer = Producer::new(client, &ProducerConfig::default()).unwrap();
    for item in items {
        let k = key(item).to_string();
        let value = serde_json::to_vec(item).unwrap();
        producer
            .send(ProducerRecord::new(topic, &value).key(k.as_bytes()))
            .unwrap();
    }
    producer.flush().unwrap();
}

/// A child test's client of the server its parent names in `env`, or `None` when the test runs
/// by itself rather than as a child.
pub(crate) fn child_client(env: &str) -> Option<ClientConfig> {
    let bootstrap = std::env::var(env).ok()?;
    Some(ClientConfig {
        request_timeout_ms: 10_000,
        ..ClientConfig::new(bootstrap)
    })
}

/// The child's side of a SIGKILL test: reports the job's committed epochs until it is killed.
/// Commits count once the job has read something: a kill must interrupt work in progress, not
/// an instance still connecting.
pub(crate) fn report_commits_until_killed(handle: JobHandle) -> ! {
    report_commits_while_running(
        || {
            if handle.metrics().source_records > 0 {
                handle.committed_epoch()
            } else {
                0
            }
        },
        || handle.is_finished(),
    );
    panic!("the job stopped: {:?}", handle.wait());
}

/// Fails unless every repartition topic of job `name` keeps its records until purged, and
/// starts (its log start offset, as ListOffsets reports it) exactly where the job's group
/// committed its readers' offsets: the records before were purged, none after. Returns the
/// records purged in all.
pub(crate) fn assert_repartition_purged(client: &ClientConfig, name: &str) -> i64 {
    let admin = Admin::connect(client).unwrap();
    let group = format!("weir-job.{name}");
    let committed = admin.describe_group(&group).unwrap().offsets;
    let repartition: Vec<String> = admin
        .list_topics()
        .unwrap()
        .into_iter()
        .filter(|t| t.starts_with(&group) && t.ends_with("-repartition"))
        .collect();
    assert!(
        !repartition.is_empty(),
        "job {name} has a repartition topic"
    );
    let mut purged = 0;
    for topic in &repartition {
        let configs = admin.topic_configs(topic).unwrap();
        assert_eq!(
            configs["retention.ms"], "-1",
            "{topic}: never expires unread"
        );
        assert_eq!(configs["segment.bytes"], (50 << 20).to_string(), "{topic}");
        for p in admin.partition_offsets(topic).unwrap() {
            let at = committed
                .iter()
                .find(|o| &o.topic == topic && o.partition == p.partition)
                .map(|o| o.committed)
                .unwrap_or_else(|| panic!("no committed offset for {topic}/{}", p.partition));
            assert_eq!(
                p.log_start_offset, at,
                "{topic}/{}: the log starts where the job committed (high watermark {})",
                p.partition, p.high_watermark
            );
            purged += p.log_start_offset;
        }
    }
    purged
}
