//! [`KafkaTopics`]: metadata, offsets and topic creation through the admin client; readers and
//! writers opened per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use weir_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, Error as ClientError,
    Isolation as ClientIsolation, NewTopic, SharedConsumer,
};
use weir_runtime::topics::{
    GroupMember, GroupSpec, Isolation, PartitionOffset, ReaderConfig, TopicReader, TopicSpec,
    TopicWriter, Topics, WriterConfig,
};
use weir_runtime::{Error, Result};

use crate::configs::{
    CLEANUP_POLICY, MAX_MESSAGE_BYTES, RETENTION_BYTES, RETENTION_MS, SEGMENT_BYTES,
};
use crate::member::{Assignments, KafkaMember};
use crate::reader::{KafkaReader, consumer_config};
use crate::topics_error;
use crate::writer::KafkaWriter;

/// Groups whose committed offsets are read through a consumer kept for them, at most: a job
/// asks for its own group only; more are read through a consumer made for the call.
const OFFSET_READERS_MAX: usize = 16;

/// Times a committed offset is asked for while the answer times out (each attempt waits for
/// the client's request timeout).
const COMMITTED_ATTEMPTS_MAX: u32 = 4;

/// A Kafka-protocol cluster as a job's topics. One value serves the whole job (task threads and
/// the coordinator share it); connections are made on first use.
pub struct KafkaTopics {
    client: ClientConfig,
    admin: Admin,
    /// A consumer per group asked about (not subscribed: it only reads committed offsets).
    offset_readers: Mutex<HashMap<String, Consumer>>,
    /// The current assignment of each group joined through these topics, which fences the
    /// commits of the writers opened here.
    assignments: Assignments,
    /// The consumers readers share, by what they were opened for: a job's source tasks share
    /// one, its repartition readers another. Each goes with its last reader.
    shared_consumers: Mutex<Vec<(ReaderKey, Weak<SharedConsumer>)>>,
}

/// What readers that share a consumer have in common: their client id, isolation and fetch size.
type ReaderKey = (String, Isolation, usize);

impl std::fmt::Debug for KafkaTopics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTopics")
            .field("bootstrap", &self.client.bootstrap)
            .finish()
    }
}

impl KafkaTopics {
    /// The topics of the cluster `client` names. Checks the settings; reaches the cluster only
    /// when first asked something.
    pub fn new(client: ClientConfig) -> Result<KafkaTopics> {
        let admin = Admin::connect(&client).map_err(|e| topics_error("connect", e))?;
        Ok(KafkaTopics {
            client,
            admin,
            offset_readers: Mutex::new(HashMap::new()),
            assignments: Assignments::default(),
            shared_consumers: Mutex::new(Vec::new()),
        })
    }

    /// The consumer readers of `config` share: the live one, else a new one.
    fn shared_consumer(&self, config: &ReaderConfig) -> Result<Arc<SharedConsumer>> {
        let key: ReaderKey = (
            config.client_id.clone(),
            config.isolation,
            config.fetch_bytes_max,
        );
        let mut all = self.shared_consumers.lock().map_err(|_| Error::Stopped)?;
        all.retain(|(_, c)| c.strong_count() > 0);
        if let Some(live) = all
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, c)| c.upgrade())
        {
            return Ok(live);
        }
        let client = ClientConfig {
            client_id: config.client_id.clone(),
            ..self.client.clone()
        };
        let shared = SharedConsumer::new(&client, &consumer_config(config))
            .map_err(|e| topics_error("open a reader", e))?;
        all.push((key, Arc::downgrade(&shared)));
        Ok(shared)
    }

    /// The cluster's settings.
    pub fn client(&self) -> &ClientConfig {
        &self.client
    }

    fn offset_reader(&self, group: &str) -> std::result::Result<Consumer, ClientError> {
        Consumer::new(
            &self.client,
            &ConsumerConfig {
                group: Some(group.to_string()),
                ..ConsumerConfig::default()
            },
        )
    }
}

/// Whether asking for committed offsets failed only because the answer was held back (a
/// transaction still open, a coordinator moving or loading, a local queue that timed out).
fn held_back(e: &ClientError) -> bool {
    use weir_client::ErrorCode as C;
    matches!(e, ClientError::Timeout { .. })
        || matches!(
            e.code(),
            Some(
                C::TimedOutQueue
                    | C::OperationTimedOut
                    | C::RequestTimedOut
                    | C::UnstableOffsetCommit
                    | C::CoordinatorLoadInProgress
                    | C::CoordinatorNotAvailable
                    | C::NotCoordinator
            )
        )
}

/// Kafka's topic configs for `spec`. Kafka limits batches only (`max.message.bytes`); a record
/// is never larger than its batch, so the larger of the two limits is the one to ask for.
pub(crate) fn topic_configs(spec: &TopicSpec) -> Vec<(String, String)> {
    let mut configs = vec![(
        MAX_MESSAGE_BYTES.to_string(),
        spec.batch_bytes_max.max(spec.record_bytes_max).to_string(),
    )];
    if spec.compacted {
        configs.push((CLEANUP_POLICY.to_string(), "compact".to_string()));
    }
    if spec.unlimited_retention {
        // -1: no limit.
        configs.push((RETENTION_MS.to_string(), "-1".to_string()));
        configs.push((RETENTION_BYTES.to_string(), "-1".to_string()));
    }
    if let Some(bytes) = spec.segment_bytes_max {
        configs.push((SEGMENT_BYTES.to_string(), bytes.to_string()));
    }
    configs
}

impl Topics for KafkaTopics {
    fn partition_count(&self, topic: &str) -> Result<i32> {
        let partitions = self
            .admin
            .partitions(topic)
            .map_err(|e| topics_error(format!("partitions of '{topic}'"), e))?;
        i32::try_from(partitions.len())
            .map_err(|_| Error::Internal(format!("'{topic}' has too many partitions")))
    }

    fn ensure_topic(&self, topic: &str, spec: &TopicSpec) -> Result<()> {
        match self.admin.partitions(topic) {
            Ok(_) => return Ok(()),
            Err(ClientError::UnknownTopic { .. }) => {}
            Err(e) => return Err(topics_error(format!("metadata of '{topic}'"), e)),
        }
        let created = self.admin.create_topic(&NewTopic {
            name: topic.to_string(),
            partitions: spec.partitions,
            replication_factor: None,
            configs: topic_configs(spec),
        });
        match created {
            Ok(()) => Ok(()),
            // Created meanwhile by another job or instance.
            Err(e) if e.code() == Some(weir_client::ErrorCode::TopicAlreadyExists) => Ok(()),
            Err(e) => Err(topics_error(format!("create topic '{topic}'"), e)),
        }
    }

    fn end_offset(&self, topic: &str, partition: i32) -> Result<i64> {
        self.admin
            .watermarks(topic, partition, ClientIsolation::ReadUncommitted)
            .map(|(_, high)| high)
            .map_err(|e| topics_error(format!("high watermark of {topic}/{partition}"), e))
    }

    fn last_stable_offset(&self, topic: &str, partition: i32) -> Result<i64> {
        // librdkafka sends ListOffsets with its consumer's isolation level: a read_committed
        // one's "high" watermark is the last stable offset.
        self.admin
            .watermarks(topic, partition, ClientIsolation::ReadCommitted)
            .map(|(_, stable)| stable)
            .map_err(|e| topics_error(format!("last stable offset of {topic}/{partition}"), e))
    }

    fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Result<Option<i64>> {
        let operation = || format!("offset group '{group}' committed for {topic}/{partition}");
        let mut readers = self.offset_readers.lock().map_err(|_| Error::Stopped)?;
        if !readers.contains_key(group) && readers.len() < OFFSET_READERS_MAX {
            let reader = self
                .offset_reader(group)
                .map_err(|e| topics_error(operation(), e))?;
            readers.insert(group.to_string(), reader);
        }
        // Offsets of a transaction still open are not answered (librdkafka asks read_committed,
        // with `require_stable`, and retries until its timeout): an instance that died in one
        // holds the answer back until the coordinator aborts it, which may take longer.
        let mut attempts = 0;
        let committed = loop {
            attempts += 1;
            let r = match readers.get(group) {
                Some(reader) => reader.committed(topic, &[partition]),
                None => self
                    .offset_reader(group)
                    .and_then(|reader| reader.committed(topic, &[partition])),
            };
            match r {
                Err(e) if attempts < COMMITTED_ATTEMPTS_MAX && held_back(&e) => {}
                r => break r.map_err(|e| topics_error(operation(), e))?,
            }
        };
        Ok(committed.first().and_then(|&(_, offset)| offset))
    }

    fn reader(&self, config: ReaderConfig) -> Result<Box<dyn TopicReader>> {
        let shared = self.shared_consumer(&config)?;
        Ok(Box::new(KafkaReader::new(&shared, &config)?))
    }

    fn delete_records(&self, before: &[PartitionOffset]) -> Result<()> {
        let before: Vec<(&str, i32, i64)> = before
            .iter()
            .map(|p| (p.topic.as_str(), p.partition, p.offset))
            .collect();
        self.admin
            .delete_records(&before)
            .map(drop)
            .map_err(|e| topics_error("delete records before the committed offsets", e))
    }

    fn writer(&self, config: WriterConfig) -> Result<Box<dyn TopicWriter>> {
        Ok(Box::new(KafkaWriter::new(
            &self.client,
            config,
            self.assignments.clone(),
        )?))
    }

    fn shares_work(&self) -> bool {
        true
    }

    fn join_group(&self, spec: GroupSpec) -> Result<Box<dyn GroupMember>> {
        Ok(Box::new(KafkaMember::join(
            &self.client,
            spec,
            self.assignments.clone(),
        )?))
    }
}
