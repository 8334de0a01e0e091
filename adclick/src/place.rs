//! Where the ad-click topics live: the embedded log, or a Kafka-protocol cluster reached through
//! weir-client. The generator, the job and the verifier are written once over [`Place`]; only
//! the few operations here know which one it is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_client::{
    Acks, Admin, ClientConfig, Consumer, ConsumerConfig, ErrorCode, Event, Isolation, NewTopic,
    StartAt,
};
use weir_cluster::{configs, topics_error};
use weir_log::{Log, ProducerConfig, ProducerRecord, TopicConfig, ValueFormat};
use weir_runtime::{EmbeddedTopics, JobConfig, Topics};

/// A committed read of a cluster's topic that receives nothing, not even a partition's end, for
/// this long fails: the cluster is gone or a transaction never ends.
const READ_STALL_MAX: Duration = Duration::from_secs(60);
/// How long one poll of a committed read waits.
const READ_POLL_MS: u64 = 100;

/// The embedded log or a cluster; cheap to copy. `&Log` and `&ClientConfig` convert into it, so
/// every function that takes `impl Into<Place>` takes either.
#[derive(Debug, Clone, Copy)]
pub enum Place<'a> {
    /// A log this process has open.
    Embedded(&'a Log),
    /// A Kafka-protocol cluster (`weir serve`, Apache Kafka, Redpanda), as a client.
    Cluster(&'a ClientConfig),
}

impl<'a> From<&'a Log> for Place<'a> {
    fn from(log: &'a Log) -> Place<'a> {
        Place::Embedded(log)
    }
}

impl<'a> From<&'a ClientConfig> for Place<'a> {
    fn from(cluster: &'a ClientConfig) -> Place<'a> {
        Place::Cluster(cluster)
    }
}

impl Place<'_> {
    /// The runtime's topics here, for a job: each call on a cluster makes a new client (one
    /// per job instance).
    pub fn topics(self) -> weir_runtime::Result<Arc<dyn Topics>> {
        Ok(match self {
            Place::Embedded(log) => Arc::new(EmbeddedTopics::new(log.clone())),
            Place::Cluster(cluster) => Arc::new(weir_cluster::KafkaTopics::new(cluster.clone())?),
        })
    }

    /// A job's configuration named `name`. On a cluster its state topic is `NAME-state`, one
    /// per job (as Kafka Streams keeps changelogs per application), so that the bench can delete
    /// a run's state with its topics; embedded, the runtime's default `__weir_state`.
    pub fn job_config(self, name: &str) -> JobConfig {
        let mut config = JobConfig::new(name);
        if let Place::Cluster(_) = self {
            config.state_topic = format!("{name}-state");
        }
        config
    }

    /// Whether `topic` exists.
    pub fn has_topic(self, topic: &str) -> weir_runtime::Result<bool> {
        match self {
            Place::Embedded(log) => Ok(log.partition_count(topic).is_ok()),
            Place::Cluster(cluster) => match admin(cluster)?.partitions(topic) {
                Ok(_) => Ok(true),
                Err(weir_client::Error::UnknownTopic { .. }) => Ok(false),
                Err(e) => Err(topics_error(format!("metadata of '{topic}'"), e)),
            },
        }
    }

    /// The partitions of `topic`; an error if it does not exist.
    pub fn partition_count(self, topic: &str) -> weir_runtime::Result<i32> {
        self.topics()?.partition_count(topic)
    }

    /// How `topic` stores its values, from its metadata (a cluster that reports no
    /// `weir.value.format` stores JSON).
    pub fn value_format(self, topic: &str) -> weir_runtime::Result<ValueFormat> {
        match self {
            Place::Embedded(log) => Ok(log.topic_config(topic)?.format),
            Place::Cluster(cluster) => {
                let c = admin(cluster)?
                    .topic_configs(topic)
                    .map_err(|e| topics_error(format!("configs of '{topic}'"), e))?;
                configs::value_format(topic, &c).map_err(|e| weir_runtime::Error::Topics {
                    operation: format!("the value format of '{topic}'"),
                    source: Box::new(e),
                })
            }
        }
    }

    /// Creates `topic` as `config` says (partitions, schema, value format) unless it exists.
    /// On a cluster the schema and format go as weir's topic configs; a cluster that refuses
    /// them gets a JSON topic without a schema (which only SQL reads), and a binary one fails.
    pub(crate) fn create_topic(self, topic: &str, config: TopicConfig) -> weir_runtime::Result<()> {
        let cluster = match self {
            Place::Embedded(log) => {
                if log.partition_count(topic).is_err() {
                    log.create_topic(topic, config)?;
                }
                return Ok(());
            }
            Place::Cluster(cluster) => cluster,
        };
        if self.has_topic(topic)? {
            return Ok(());
        }
        // weir's own topic configs carry the schema and format (as `weir topic create
        // --bootstrap` sends them; `weir serve` keeps them, other clusters may refuse them).
        let with_weir = configs::needs_weir_configs(&config);
        let new = NewTopic {
            name: topic.to_string(),
            partitions: config.partitions,
            replication_factor: None,
            configs: configs::weir_configs(&config),
        };
        let admin = admin(cluster)?;
        let created = match admin.create_topic(&new) {
            Err(e)
                if with_weir
                    && config.format == ValueFormat::Json
                    && e.code() == Some(ErrorCode::InvalidConfig) =>
            {
                admin.create_topic(&NewTopic {
                    configs: Vec::new(),
                    ..new
                })
            }
            other => other,
        };
        match created {
            Ok(()) => Ok(()),
            // Created meanwhile by another instance.
            Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => Ok(()),
            Err(e) => Err(topics_error(format!("create topic '{topic}'"), e)),
        }
    }

    /// Calls `f` with the value of every committed record of `topic` (read_committed, as a
    /// reader independent of any job), partition by partition up to where each ends now.
    pub fn read_committed(self, topic: &str, mut f: impl FnMut(&[u8])) -> weir_runtime::Result<()> {
        match self {
            Place::Embedded(log) => {
                read_embedded(log, topic, |r| f(r.value.as_deref().unwrap_or_default()))
            }
            Place::Cluster(cluster) => read_cluster(cluster, topic, f),
        }
    }
}

fn admin(cluster: &ClientConfig) -> weir_runtime::Result<Admin> {
    Admin::connect(cluster).map_err(|e| topics_error("connect", e))
}

/// Every committed record of an embedded topic, up to each partition's last stable offset.
fn read_embedded(
    log: &Log,
    topic: &str,
    mut f: impl FnMut(&weir_log::format::Record),
) -> weir_runtime::Result<()> {
    let mut consumer = weir_log::Consumer::new(log, weir_log::ConsumerConfig::default())?;
    consumer.assign_topic(topic)?;
    let partitions = log.partition_count(topic)?;
    loop {
        let batches = consumer.poll(Duration::from_millis(READ_POLL_MS))?;
        if batches.is_empty() {
            // Stop at the last stable offset: nothing more is committed.
            let description = log.describe_topic(topic)?;
            let done = (0..partitions).all(|p| {
                consumer.position(topic, p).unwrap_or(0)
                    >= description.partitions[p as usize].last_stable_offset
            });
            if done {
                return Ok(());
            }
            continue;
        }
        for b in batches {
            for r in b.records() {
                f(&r?);
            }
        }
    }
}

/// Every committed record of a cluster's topic, by a read_committed consumer assigned every
/// partition from the beginning, until each partition reports its end.
fn read_cluster(
    cluster: &ClientConfig,
    topic: &str,
    mut f: impl FnMut(&[u8]),
) -> weir_runtime::Result<()> {
    let operation = || format!("read '{topic}'");
    let consumer = Consumer::new(
        cluster,
        &ConsumerConfig {
            isolation: Isolation::ReadCommitted,
            report_partition_end: true,
            ..ConsumerConfig::default()
        },
    )
    .map_err(|e| topics_error(operation(), e))?;
    let partitions = consumer
        .partitions(topic)
        .map_err(|e| topics_error(operation(), e))?;
    let assignment: Vec<(i32, StartAt)> = partitions
        .iter()
        .map(|&p| (p, StartAt::Beginning))
        .collect();
    consumer
        .assign(topic, &assignment)
        .map_err(|e| topics_error(operation(), e))?;
    let mut ended = std::collections::BTreeSet::new();
    let mut last_event = Instant::now();
    while ended.len() < partitions.len() {
        match consumer
            .poll(Duration::from_millis(READ_POLL_MS))
            .map_err(|e| topics_error(operation(), e))?
        {
            None => {
                if last_event.elapsed() > READ_STALL_MAX {
                    return Err(weir_runtime::Error::Internal(format!(
                        "reading '{topic}': nothing arrived for {} s and {} of {} partitions \
                         have not reached their end",
                        READ_STALL_MAX.as_secs(),
                        partitions.len() - ended.len(),
                        partitions.len()
                    )));
                }
                continue;
            }
            Some(Event::PartitionEnd { partition }) => {
                ended.insert(partition);
            }
            Some(Event::Record(r)) => f(r.value().unwrap_or_default()),
        }
        last_event = Instant::now();
    }
    Ok(())
}

/// Where `generate` writes the clicks: the embedded log's idempotent producer or weir-client's.
pub(crate) enum ClickWriter {
    Embedded(weir_log::Producer),
    Cluster(weir_client::Producer),
}

impl ClickWriter {
    /// An idempotent producer, batching for 5 ms, at `place`.
    pub(crate) fn open(place: Place<'_>) -> weir_runtime::Result<ClickWriter> {
        Ok(match place {
            Place::Embedded(log) => ClickWriter::Embedded(weir_log::Producer::new(
                log,
                ProducerConfig {
                    idempotent: true,
                    linger_ms: 5,
                    ..ProducerConfig::default()
                },
            )?),
            Place::Cluster(cluster) => ClickWriter::Cluster(
                weir_client::Producer::new(
                    cluster,
                    &weir_client::ProducerConfig {
                        acks: Acks::All,
                        idempotence: true,
                        linger_ms: 5,
                        ..weir_client::ProducerConfig::default()
                    },
                )
                .map_err(|e| topics_error("create a producer", e))?,
            ),
        })
    }

    /// Queues one record of `topic`.
    pub(crate) fn send(
        &self,
        topic: &str,
        key: &[u8],
        value: &[u8],
        timestamp_ms: i64,
    ) -> weir_runtime::Result<()> {
        match self {
            ClickWriter::Embedded(p) => {
                p.send(
                    ProducerRecord::new(topic, value)
                        .key(key)
                        .timestamp(timestamp_ms),
                )?;
            }
            ClickWriter::Cluster(p) => p
                .send(weir_client::ProducerRecord {
                    timestamp_ms: Some(timestamp_ms),
                    ..weir_client::ProducerRecord::new(topic, value).key(key)
                })
                .map_err(|e| topics_error(format!("send to '{topic}'"), e))?,
        }
        Ok(())
    }

    /// Waits until every record is acknowledged; fails if any was not.
    pub(crate) fn finish(self) -> weir_runtime::Result<()> {
        match self {
            ClickWriter::Embedded(p) => {
                p.flush()?;
                p.close()?;
            }
            ClickWriter::Cluster(p) => {
                p.flush().map_err(|e| topics_error("flush", e))?;
            }
        }
        Ok(())
    }
}
