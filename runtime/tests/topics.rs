//! Jobs on a `Topics` implementation other than the log itself: every read, write and commit of
//! a job goes through the trait, and another implementation's errors reach the caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use weir_runtime::topics::{
    EpochCommit, OutgoingRecord, PartitionOffset, ReaderConfig, RecordChunk, TopicReader,
    TopicSpec, TopicWriter, WriterConfig,
};
use weir_runtime::{EmbeddedTopics, Error, Guarantee, Job, JobConfig, Json, Result, Topics};
use weir_test_support::{create_topic as topic, open, produce_json, read_values as read_all};

/// What went through a [`Recording`] wrapper.
#[derive(Default)]
struct Seen {
    records_read: AtomicU64,
    records_sent: AtomicU64,
    epoch_commits: AtomicU64,
    offsets_committed: AtomicU64,
    topics_ensured: AtomicU64,
}

/// The embedded log behind a wrapper that counts what the job asks of it.
struct Recording {
    inner: EmbeddedTopics,
    seen: Arc<Seen>,
}

impl Topics for Recording {
    fn partition_count(&self, topic: &str) -> Result<i32> {
        self.inner.partition_count(topic)
    }
    fn ensure_topic(&self, topic: &str, spec: &TopicSpec) -> Result<()> {
        self.seen.topics_ensured.fetch_add(1, Relaxed);
        self.inner.ensure_topic(topic, spec)
    }
    fn end_offset(&self, topic: &str, partition: i32) -> Result<i64> {
        self.inner.end_offset(topic, partition)
    }
    fn last_stable_offset(&self, topic: &str, partition: i32) -> Result<i64> {
        self.inner.last_stable_offset(topic, partition)
    }
    fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Result<Option<i64>> {
        self.inner.committed_offset(group, topic, partition)
    }
    fn reader(&self, config: ReaderConfig) -> Result<Box<dyn TopicReader>> {
        Ok(Box::new(RecordingReader {
            inner: self.inner.reader(config)?,
            seen: self.seen.clone(),
        }))
    }
    fn delete_records(&self, before: &[PartitionOffset]) -> Result<()> {
        self.inner.delete_records(before)
    }
    fn writer(&self, config: WriterConfig) -> Result<Box<dyn TopicWriter>> {
        Ok(Box::new(RecordingWriter {
            inner: self.inner.writer(config)?,
            seen: self.seen.clone(),
        }))
    }
}

struct RecordingReader {
    inner: Box<dyn TopicReader>,
    seen: Arc<Seen>,
}

impl TopicReader for RecordingReader {
    fn assign(&mut self, topic: &str, partitions: &[i32]) -> Result<()> {
        self.inner.assign(topic, partitions)
    }
    fn seek(&mut self, topic: &str, partition: i32, offset: i64) -> Result<()> {
        self.inner.seek(topic, partition, offset)
    }
    fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.inner.position(topic, partition)
    }
    fn poll(&mut self, timeout: Duration) -> Result<Vec<RecordChunk>> {
        let chunks = self.inner.poll(timeout)?;
        let n: usize = chunks
            .iter()
            .filter(|c| &*c.topic == "readings")
            .map(|c| c.records.len())
            .sum();
        self.seen.records_read.fetch_add(n as u64, Relaxed);
        Ok(chunks)
    }
}

struct RecordingWriter {
    inner: Box<dyn TopicWriter>,
    seen: Arc<Seen>,
}

impl TopicWriter for RecordingWriter {
    fn send(&self, records: &[OutgoingRecord<'_>]) -> Result<()> {
        self.seen
            .records_sent
            .fetch_add(records.len() as u64, Relaxed);
        self.inner.send(records)
    }
    fn commit_epoch(&self, commit: &EpochCommit<'_>) -> Result<()> {
        self.seen.epoch_commits.fetch_add(1, Relaxed);
        self.seen
            .offsets_committed
            .fetch_add(commit.offsets.len() as u64, Relaxed);
        self.inner.commit_epoch(commit)
    }
    fn abandon(&self) {
        self.inner.abandon()
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
struct Reading {
    sensor: u64,
    value: i64,
}

#[test]
fn a_job_reads_writes_and_commits_only_through_its_topics() {
    for guarantee in [Guarantee::ExactlyOnce, Guarantee::AtLeastOnce] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path());
        topic(&log, "readings", 3);
        topic(&log, "doubled", 2);
        let input: Vec<Reading> = (0..5_000)
            .map(|i| Reading {
                sensor: i % 7,
                value: i as i64,
            })
            .collect();
        produce_json(&log, "readings", &input, |r| r.sensor.to_string());
        let seen = Arc::new(Seen::default());
        let topics = Arc::new(Recording {
            inner: EmbeddedTopics::new(log.clone()),
            seen: seen.clone(),
        });
        let mut config = JobConfig::new("through-topics");
        config.guarantee = guarantee;
        config.stop_when_drained = true;
        config.epoch_ms = 20;
        let job = Job::with_topics(topics, config).expect("job");
        job.source::<Reading, _>("readings", Json)
            .parallelism(2)
            .stream()
            .map(|r| r.value * 2)
            .sink("doubled", Json);
        let metrics = job.start().expect("start").wait().expect("run");

        let mut got: Vec<i64> = read_all::<i64>(&log, "doubled");
        got.sort_unstable();
        let want: Vec<i64> = (0..5_000).map(|v| v * 2).collect();
        assert_eq!(got, want, "{guarantee:?}");
        assert_eq!(seen.records_read.load(Relaxed), 5_000, "{guarantee:?}");
        assert_eq!(seen.records_sent.load(Relaxed), 5_000, "{guarantee:?}");
        assert_eq!(
            seen.epoch_commits.load(Relaxed),
            metrics.checkpoints,
            "{guarantee:?}"
        );
        assert!(seen.offsets_committed.load(Relaxed) >= 3, "{guarantee:?}");
        assert_eq!(seen.topics_ensured.load(Relaxed), 1, "the state topic");
    }
}

/// Topics whose writer cannot be opened, as a cluster that refuses the transactional id would.
struct Refusing(EmbeddedTopics);

impl Topics for Refusing {
    fn partition_count(&self, topic: &str) -> Result<i32> {
        self.0.partition_count(topic)
    }
    fn ensure_topic(&self, topic: &str, spec: &TopicSpec) -> Result<()> {
        self.0.ensure_topic(topic, spec)
    }
    fn end_offset(&self, topic: &str, partition: i32) -> Result<i64> {
        self.0.end_offset(topic, partition)
    }
    fn last_stable_offset(&self, topic: &str, partition: i32) -> Result<i64> {
        self.0.last_stable_offset(topic, partition)
    }
    fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Result<Option<i64>> {
        self.0.committed_offset(group, topic, partition)
    }
    fn reader(&self, config: ReaderConfig) -> Result<Box<dyn TopicReader>> {
        self.0.reader(config)
    }
    fn delete_records(&self, before: &[PartitionOffset]) -> Result<()> {
        self.0.delete_records(before)
    }
    fn writer(&self, config: WriterConfig) -> Result<Box<dyn TopicWriter>> {
        Err(Error::Topics {
            operation: format!("init transactions for `{}`", config.transactional_id),
            source: "transactional id authorization failed".into(),
        })
    }
}

#[test]
fn another_implementations_error_reaches_the_caller_with_its_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    topic(&log, "readings", 1);
    topic(&log, "out", 1);
    let job = Job::with_topics(
        Arc::new(Refusing(EmbeddedTopics::new(log.clone()))),
        JobConfig::new("refused"),
    )
    .expect("job");
    job.source::<Reading, _>("readings", Json)
        .stream()
        .sink("out", Json);
    let err = job.start().expect_err("the writer is refused");
    assert!(matches!(err, Error::Topics { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "init transactions for `weir-job.refused`: transactional id authorization failed"
    );
}
