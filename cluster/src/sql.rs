//! SQL over a cluster's topics (feature `sql`): [`ClusterSource`], the [`TopicSource`] that
//! ad-hoc queries scan (`weir sql --bootstrap`), and [`ClusterCatalog`], the [`TopicCatalog`] a
//! continuous query is planned against before its job runs on the cluster
//! ([`ContinuousQuery::with_topics`](weir_sql::continuous::ContinuousQuery::with_topics)).
//! Both read a topic's settings from its configs ([`crate::configs`]).
//!
//! Offsets come from ListOffsets (the log start, the last stable offset as a read_committed
//! reader sees it, and the first offset at a timestamp for `_timestamp >=` pushdown); records
//! come from Fetch through a read_committed consumer per partition, each key and value decoded
//! into the Arrow builders straight from the client's fetch buffer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, Event, Isolation, OffsetReset, StartAt,
};
use weir_log::TopicConfig;
use weir_sql::continuous::TopicCatalog;
use weir_sql::{
    Error as SqlError, PartitionExtent, PartitionScan, PartitionSource, Result as SqlResult,
    SourceRecord, TopicSource,
};

use crate::configs::{TopicConfigError, fetch_topic_config};

/// Records one [`PartitionSource::read`] hands over at most.
const READ_RECORDS_MAX: usize = 8_192;
/// How long the first poll of a read waits for records.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// Bytes one fetch asks for per partition.
const PARTITION_FETCH_BYTES_MAX: usize = 4 << 20;

/// A cluster's topics, read committed.
pub struct ClusterSource {
    client: ClientConfig,
    admin: Admin,
}

impl std::fmt::Debug for ClusterSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSource")
            .field("bootstrap", &self.client.bootstrap)
            .finish_non_exhaustive()
    }
}

impl ClusterSource {
    /// A source over `client`'s cluster (connections are made on first use).
    pub fn connect(client: &ClientConfig) -> weir_client::Result<Arc<ClusterSource>> {
        Ok(Arc::new(ClusterSource {
            client: client.clone(),
            admin: Admin::connect(client)?,
        }))
    }
}

/// A cluster's topics as the SQL planner sees them: their settings from the topic configs.
pub struct ClusterCatalog(Admin);

impl std::fmt::Debug for ClusterCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCatalog").finish_non_exhaustive()
    }
}

impl ClusterCatalog {
    /// The catalog of `client`'s cluster (connections are made on first use).
    pub fn connect(client: &ClientConfig) -> weir_client::Result<ClusterCatalog> {
        Ok(ClusterCatalog(Admin::connect(client)?))
    }
}

impl TopicCatalog for ClusterCatalog {
    fn topic_config(&self, topic: &str) -> weir_log::Result<TopicConfig> {
        fetch_topic_config(&self.0, topic).map_err(|e| match e {
            TopicConfigError::Client(weir_client::Error::UnknownTopic { .. }) => {
                weir_log::Error::UnknownTopic(topic.to_string())
            }
            e => weir_log::Error::Config {
                field: format!("topic '{topic}'"),
                reason: e.to_string(),
            },
        })
    }
}

fn source_error(e: impl std::fmt::Display) -> SqlError {
    SqlError::Source(e.to_string())
}

impl TopicSource for ClusterSource {
    fn topic_names(&self) -> SqlResult<Vec<String>> {
        let mut names = self.admin.list_topics().map_err(source_error)?;
        // The cluster's own topics (`__consumer_offsets`, ...) are never tables.
        names.retain(|n| !n.starts_with("__"));
        Ok(names)
    }

    fn topic_config(&self, topic: &str) -> SqlResult<TopicConfig> {
        fetch_topic_config(&self.admin, topic).map_err(source_error)
    }

    fn partitions(&self, topic: &str) -> SqlResult<Vec<PartitionExtent>> {
        let offsets = self.admin.partition_offsets(topic).map_err(source_error)?;
        Ok(offsets
            .iter()
            .map(|p| PartitionExtent {
                partition: p.partition,
                start_offset: p.log_start_offset,
                last_stable_offset: p.last_stable_offset,
            })
            .collect())
    }

    fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> SqlResult<Option<i64>> {
        self.admin
            .offset_for_timestamp(topic, partition, timestamp_ms)
            .map_err(source_error)
    }

    fn open_partition(
        &self,
        topic: &str,
        scan: &PartitionScan,
    ) -> SqlResult<Box<dyn PartitionSource>> {
        let consumer = Consumer::new(
            &self.client,
            &ConsumerConfig {
                isolation: Isolation::ReadCommitted,
                // Retention may pass the planned start meanwhile: read from what is left.
                offset_reset: OffsetReset::Earliest,
                report_partition_end: true,
                partition_fetch_bytes_max: PARTITION_FETCH_BYTES_MAX,
                ..ConsumerConfig::default()
            },
        )
        .map_err(source_error)?;
        consumer
            .assign(
                topic,
                &[(scan.partition, StartAt::Offset(scan.start_offset))],
            )
            .map_err(source_error)?;
        Ok(Box::new(ClusterPartition {
            consumer,
            topic: topic.to_string(),
            partition: scan.partition,
            end_offset: scan.end_offset,
            silence_max: Duration::from_millis(self.client.request_timeout_ms.max(1_000)),
            heard: Instant::now(),
        }))
    }
}

/// One partition's range, fetched by a read_committed consumer of its own.
struct ClusterPartition {
    consumer: Consumer,
    topic: String,
    partition: i32,
    end_offset: i64,
    /// The longest the cluster may send nothing before the scan fails.
    silence_max: Duration,
    /// When the cluster last sent something.
    heard: Instant,
}

impl PartitionSource for ClusterPartition {
    fn read(
        &mut self,
        each: &mut dyn FnMut(SourceRecord<'_>) -> SqlResult<bool>,
    ) -> SqlResult<bool> {
        let mut wait = POLL_WAIT;
        for _ in 0..READ_RECORDS_MAX {
            let event = self.consumer.poll(wait).map_err(source_error)?;
            // Only the first poll waits: after it, what the client has ready is drained.
            wait = Duration::ZERO;
            let record = match event {
                None => break,
                // At the last stable offset as of this fetch, which is past the planned end.
                Some(Event::PartitionEnd { .. }) => return Ok(false),
                Some(Event::Record(r)) => r,
            };
            self.heard = Instant::now();
            if record.offset() >= self.end_offset {
                return Ok(false);
            }
            let more = each(SourceRecord {
                offset: record.offset(),
                timestamp: record.timestamp_ms(),
                key: record.key(),
                value: record.value(),
            })?;
            if !more {
                return Ok(false);
            }
            if record.offset() + 1 >= self.end_offset {
                return Ok(false);
            }
        }
        if self.heard.elapsed() > self.silence_max {
            return Err(SqlError::Source(format!(
                "topic '{}' partition {}: the cluster sent nothing for {} ms while offsets up \
                 to {} were still to read",
                self.topic,
                self.partition,
                self.silence_max.as_millis(),
                self.end_offset
            )));
        }
        Ok(true)
    }
}
