//! Topics and groups: create, list, describe, delete; group offsets and lag.

use std::collections::BTreeMap;

use futures::executor::block_on;
use rdkafka::admin::{
    AdminClient, AdminOptions, NewTopic as RdNewTopic, ResourceSpecifier, TopicReplication,
    TopicResult,
};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::{ClientConfig, Isolation};
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::groups::{GroupDescription, GroupMember, GroupOffset, parse_assignment};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Its name.
    pub name: String,
    /// Partitions, fixed at creation.
    pub partitions: i32,
    /// Copies of each partition; `None` asks for the cluster's default (`-1`, KIP-464).
    pub replication_factor: Option<i32>,
    /// Topic configs by their Kafka names (`cleanup.policy`, `retention.ms`, ...).
    pub configs: Vec<(String, String)>,
}

/// One partition of a described topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The partition.
    pub partition: i32,
    /// The broker leading it (-1 if none).
    pub leader: i32,
    /// The first offset still stored.
    pub log_start_offset: i64,
    /// The offset the next record will get.
    pub high_watermark: i64,
    /// Below it every transaction is decided (read_committed readers stop there).
    pub last_stable_offset: i64,
}

/// What [`Admin::describe_topic`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic.
    pub name: String,
    /// Its partitions, by partition number.
    pub partitions: Vec<PartitionOffsets>,
    /// Its configs as the cluster reports them (Kafka names; values the cluster left unset are
    /// missing).
    pub configs: BTreeMap<String, String>,
}

impl TopicDescription {
    /// A config's value, if the cluster reported one.
    pub fn config(&self, name: &str) -> Option<&str> {
        self.configs.get(name).map(String::as_str)
    }
}

/// Admin operations on a cluster; each call blocks until the cluster answers or the request
/// timeout passes.
pub struct Admin {
    config: ClientConfig,
    admin: AdminClient<Context>,
    /// Reads watermarks as a read_uncommitted consumer (high watermark).
    uncommitted: BaseConsumer<Context>,
    /// Reads watermarks as a read_committed consumer (its "high" is the last stable offset).
    committed: BaseConsumer<Context>,
}

impl Admin {
    /// A client for `config`'s cluster (connections are made on first use).
    pub fn connect(config: &ClientConfig) -> Result<Admin> {
        let mut c = config.rdkafka()?;
        // librdkafka's admin client is a producer underneath, whose metadata requests ask the
        // broker to create a topic they name (Kafka's auto.create.topics.enable is on by
        // default): asking about a missing topic must not create it with the broker's defaults.
        c.set("allow.auto.create.topics", "false");
        let admin = c
            .create_with_context(Context::default())
            .map_err(|e| Error::from_kafka("creating an admin client", e, 0))?;
        let probe = |isolation: Isolation| -> Result<BaseConsumer<Context>> {
            let mut c = config.rdkafka()?;
            c.set("isolation.level", isolation.as_rdkafka())
                .set("enable.auto.commit", "false");
            c.create_with_context(Context::default())
                .map_err(|e| Error::from_kafka("creating a consumer", e, 0))
        };
        Ok(Admin {
            config: config.clone(),
            admin,
            uncommitted: probe(Isolation::ReadUncommitted)?,
            committed: probe(Isolation::ReadCommitted)?,
        })
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.config.timeout()))
            .operation_timeout(Some(self.config.timeout()))
    }

    /// The last connection error any of this admin's clients saw.
    fn last_error(&self) -> Option<String> {
        self.admin
            .inner()
            .context()
            .last_error()
            .or_else(|| self.uncommitted.context().last_error())
            .or_else(|| self.committed.context().last_error())
    }

    fn fail(&self, operation: impl Into<String>, e: rdkafka::error::KafkaError) -> Error {
        Error::from_kafka(operation, e, self.config.request_timeout_ms)
            .with_cluster(&self.config.bootstrap, self.last_error())
    }

    /// Creates a topic. An existing one fails with `TopicAlreadyExists`.
    pub fn create_topic(&self, topic: &NewTopic) -> Result<()> {
        self.create(topic, false)
    }

    /// Asks the cluster whether it would create `topic` (validate only; nothing is created).
    pub fn check_new_topic(&self, topic: &NewTopic) -> Result<()> {
        self.create(topic, true)
    }

    fn create(&self, topic: &NewTopic, validate_only: bool) -> Result<()> {
        let operation = format!("create topic '{}'", topic.name);
        let mut spec = RdNewTopic::new(
            &topic.name,
            topic.partitions,
            TopicReplication::Fixed(topic.replication_factor.unwrap_or(-1)),
        );
        for (k, v) in &topic.configs {
            spec = spec.set(k, v);
        }
        let opts = self.options().validate_only(validate_only);
        let results = block_on(self.admin.create_topics([&spec], &opts))
            .map_err(|e| self.fail(&operation, e))?;
        self.one_result(&operation, results)
    }

    fn one_result(&self, operation: &str, results: Vec<TopicResult>) -> Result<()> {
        match results.into_iter().next() {
            Some(Ok(_)) => Ok(()),
            Some(Err((_, code))) => {
                Err(
                    Error::from_code(operation, code, self.config.request_timeout_ms)
                        .with_cluster(&self.config.bootstrap, self.last_error()),
                )
            }
            None => Err(Error::from_code(
                operation,
                ErrorCode::Fail,
                self.config.request_timeout_ms,
            )),
        }
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        let operation = format!("delete topic '{name}'");
        let results = block_on(self.admin.delete_topics(&[name], &self.options()))
            .map_err(|e| self.fail(&operation, e))?;
        self.one_result(&operation, results).map_err(|e| match e {
            e if e.code() == Some(ErrorCode::UnknownTopicOrPartition) => Error::UnknownTopic {
                topic: name.to_string(),
            },
            e => e,
        })
    }

    /// Deletes the records of each `(topic, partition)` before its offset (Kafka's
    /// DeleteRecords): the partition's log start offset becomes that offset, and readers can no
    /// longer fetch below it. Returns each partition's new log start offset, in the order given.
    pub fn delete_records(&self, before: &[(&str, i32, i64)]) -> Result<Vec<i64>> {
        let operation = "delete records".to_string();
        let mut tpl = TopicPartitionList::with_capacity(before.len());
        for &(topic, partition, offset) in before {
            tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(|e| self.fail(&operation, e))?;
        }
        let deleted = block_on(self.admin.delete_records(&tpl, &self.options()))
            .map_err(|e| self.fail(&operation, e))?;
        before
            .iter()
            .map(|&(topic, partition, _)| {
                let operation = format!("delete records of '{topic}' partition {partition}");
                let Some(element) = deleted.find_partition(topic, partition) else {
                    return Err(Error::UnknownTopic {
                        topic: topic.to_string(),
                    });
                };
                if let Err(e) = element.error() {
                    return Err(self.fail(&operation, e));
                }
                match element.offset() {
                    Offset::Offset(o) => Ok(o),
                    other => Err(Error::from_code(
                        format!("{operation}: the cluster answered with offset {other:?}"),
                        ErrorCode::Fail,
                        self.config.request_timeout_ms,
                    )),
                }
            })
            .collect()
    }

    /// Every topic's name, sorted (internal ones, such as `__consumer_offsets`, included).
    pub fn list_topics(&self) -> Result<Vec<String>> {
        let metadata = self
            .admin
            .inner()
            .fetch_metadata(None, self.config.timeout())
            .map_err(|e| self.fail("list topics", e))?;
        let mut names: Vec<String> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| t.name().to_string())
            .collect();
        names.sort();
        Ok(names)
    }

    /// A topic's partition numbers, sorted.
    pub fn partitions(&self, topic: &str) -> Result<Vec<i32>> {
        let metadata = self
            .admin
            .inner()
            .fetch_metadata(Some(topic), self.config.timeout())
            .map_err(|e| self.fail(format!("metadata of topic '{topic}'"), e))?;
        let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Err(Error::UnknownTopic {
                topic: topic.to_string(),
            });
        };
        if let Some(err) = t.error() {
            let code = ErrorCode::from(err);
            if code == ErrorCode::UnknownTopicOrPartition {
                return Err(Error::UnknownTopic {
                    topic: topic.to_string(),
                });
            }
            return Err(Error::from_code(
                format!("metadata of topic '{topic}'"),
                code,
                self.config.request_timeout_ms,
            ));
        }
        let mut partitions: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        partitions.sort_unstable();
        Ok(partitions)
    }

    /// `(low, high)` watermarks of a partition as a reader of `isolation` sees them: `high` is
    /// the high watermark (read_uncommitted) or the last stable offset (read_committed).
    pub fn watermarks(
        &self,
        topic: &str,
        partition: i32,
        isolation: Isolation,
    ) -> Result<(i64, i64)> {
        let probe = match isolation {
            Isolation::ReadCommitted => &self.committed,
            Isolation::ReadUncommitted => &self.uncommitted,
        };
        probe
            .fetch_watermarks(topic, partition, self.config.timeout())
            .map_err(|e| self.fail(format!("offsets of '{topic}' partition {partition}"), e))
    }

    /// The first offset of a partition whose record has a timestamp ≥ `timestamp_ms`, as a
    /// read_committed reader sees it (Kafka's ListOffsets by timestamp); `None` if every record
    /// is older.
    pub fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<i64>> {
        let operation =
            format!("offset for timestamp {timestamp_ms} of '{topic}' partition {partition}");
        let mut tpl = TopicPartitionList::with_capacity(1);
        tpl.add_partition_offset(topic, partition, Offset::Offset(timestamp_ms))
            .map_err(|e| self.fail(&operation, e))?;
        let found = self
            .committed
            .offsets_for_times(tpl, self.config.timeout())
            .map_err(|e| self.fail(&operation, e))?;
        let Some(element) = found.find_partition(topic, partition) else {
            return Err(Error::UnknownTopic {
                topic: topic.to_string(),
            });
        };
        if let Err(e) = element.error() {
            return Err(self.fail(&operation, e));
        }
        Ok(match element.offset() {
            Offset::Offset(o) if o >= 0 => Some(o),
            _ => None,
        })
    }

    /// A topic's partitions (with offsets) and configs.
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        Ok(TopicDescription {
            name: name.to_string(),
            partitions: self.partition_offsets(name)?,
            configs: self.topic_configs(name)?,
        })
    }

    /// A topic's partitions with their leaders and offsets, by partition number.
    pub fn partition_offsets(&self, name: &str) -> Result<Vec<PartitionOffsets>> {
        let metadata = self
            .admin
            .inner()
            .fetch_metadata(Some(name), self.config.timeout())
            .map_err(|e| self.fail(format!("describe topic '{name}'"), e))?;
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == name && t.error().is_none())
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_string(),
            })?;
        let mut leaders: Vec<(i32, i32)> = topic
            .partitions()
            .iter()
            .map(|p| (p.id(), p.leader()))
            .collect();
        leaders.sort_unstable();
        let mut partitions = Vec::with_capacity(leaders.len());
        for (partition, leader) in leaders {
            let (start, high) = self.watermarks(name, partition, Isolation::ReadUncommitted)?;
            let (_, stable) = self.watermarks(name, partition, Isolation::ReadCommitted)?;
            partitions.push(PartitionOffsets {
                partition,
                leader,
                log_start_offset: start,
                high_watermark: high,
                last_stable_offset: stable,
            });
        }
        Ok(partitions)
    }

    /// A topic's configs as the cluster reports them.
    pub fn topic_configs(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let operation = format!("configs of topic '{name}'");
        let results = block_on(
            self.admin
                .describe_configs([&ResourceSpecifier::Topic(name)], &self.options()),
        )
        .map_err(|e| self.fail(&operation, e))?;
        let resource = match results.into_iter().next() {
            Some(Ok(resource)) => resource,
            Some(Err(ErrorCode::UnknownTopicOrPartition)) => {
                return Err(Error::UnknownTopic {
                    topic: name.to_string(),
                });
            }
            Some(Err(code)) => {
                return Err(Error::from_code(
                    operation,
                    code,
                    self.config.request_timeout_ms,
                ));
            }
            None => return Ok(BTreeMap::new()),
        };
        Ok(resource
            .entries
            .into_iter()
            .filter_map(|e| Some((e.name, e.value?)))
            .collect())
    }

    /// Every consumer group the cluster knows, sorted.
    pub fn list_groups(&self) -> Result<Vec<String>> {
        let list = self
            .admin
            .inner()
            .fetch_group_list(None, self.config.timeout())
            .map_err(|e| self.fail("list groups", e))?;
        let mut names: Vec<String> = list.groups().iter().map(|g| g.name().to_string()).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// A group's state and members (from its coordinator), and its committed offsets with the
    /// lag behind each partition's high watermark. A group the cluster does not know (no
    /// members, no committed offsets) is [`Error::UnknownGroup`].
    pub fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let operation = format!("describe group '{group}'");
        let list = self
            .admin
            .inner()
            .fetch_group_list(Some(group), self.config.timeout())
            .map_err(|e| self.fail(&operation, e))?;
        let info = list.groups().iter().find(|g| g.name() == group);
        let (state, protocol, members) = match info {
            Some(g) => (
                g.state().to_string(),
                g.protocol().to_string(),
                g.members()
                    .iter()
                    .map(|m| GroupMember {
                        member_id: m.id().to_string(),
                        client_id: m.client_id().to_string(),
                        client_host: m.client_host().to_string(),
                        assignment: m.assignment().map(parse_assignment).unwrap_or_default(),
                    })
                    .collect(),
            ),
            None => ("Dead".to_string(), String::new(), Vec::new()),
        };
        let offsets = self.group_offsets(group)?;
        if members.is_empty() && offsets.is_empty() && (state == "Dead" || state.is_empty()) {
            return Err(Error::UnknownGroup {
                group: group.to_string(),
            });
        }
        Ok(GroupDescription {
            name: group.to_string(),
            state,
            protocol,
            members,
            offsets,
        })
    }

    /// The group's committed offsets over every topic that is not internal, with lag.
    fn group_offsets(&self, group: &str) -> Result<Vec<GroupOffset>> {
        let operation = format!("committed offsets of group '{group}'");
        // OffsetFetch names its partitions: ask for every partition of every topic.
        let metadata = self
            .admin
            .inner()
            .fetch_metadata(None, self.config.timeout())
            .map_err(|e| self.fail(&operation, e))?;
        let mut tpl = TopicPartitionList::new();
        for t in metadata.topics() {
            if t.name().starts_with("__") || t.error().is_some() {
                continue;
            }
            for p in t.partitions() {
                tpl.add_partition(t.name(), p.id());
            }
        }
        if tpl.count() == 0 {
            return Ok(Vec::new());
        }
        let mut c = self.config.rdkafka()?;
        c.set("group.id", group).set("enable.auto.commit", "false");
        let reader: BaseConsumer<Context> = c
            .create_with_context(Context::default())
            .map_err(|e| self.fail(&operation, e))?;
        let committed = reader
            .committed_offsets(tpl, self.config.timeout())
            .map_err(|e| self.fail(&operation, e))?;
        let mut offsets = Vec::new();
        for e in committed.elements() {
            let Offset::Offset(offset) = e.offset() else {
                continue;
            };
            let (_, high) =
                self.watermarks(e.topic(), e.partition(), Isolation::ReadUncommitted)?;
            offsets.push(GroupOffset {
                topic: e.topic().to_string(),
                partition: e.partition(),
                committed: offset,
                high_watermark: high,
                lag: (high - offset).max(0),
            });
        }
        offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(offsets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_cluster_is_an_error_that_says_why() {
        // Nothing listens on a port just bound and released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let admin = Admin::connect(&ClientConfig {
            request_timeout_ms: 1_000,
            ..ClientConfig::new(format!("127.0.0.1:{port}"))
        })
        .unwrap();
        let e = admin.list_topics().unwrap_err();
        let (Error::Timeout { operation, .. } | Error::Unreachable { operation, .. }) = &e else {
            panic!("neither a timeout nor unreachable: {e}");
        };
        assert_eq!(operation, "list topics");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    }
}
