//! [`Membership`]: a consumer that joins a group only to be assigned partitions, for programs
//! that read (and commit) through other handles, as instances of a weir job do. It fetches
//! nothing: every assignment is paused as it arrives.
//!
//! Partitions are split with Kafka's range assignor, so topics with equal partition counts are
//! assigned alike (partition `p` of each goes to one member): co-partitioned topics stay
//! together. Rebalances are eager: before any partition is taken away, the member calls the
//! caller's revoke function (on the thread that polls), so the caller can end its work first.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;

use crate::config::ClientConfig;
use crate::consumer::{ConsumerConfig, GroupMetadata};
use crate::context::Context;
use crate::error::{Error, Result};

/// What the caller runs before the member's partitions are taken away.
pub type OnRevoke = Box<dyn FnMut() + Send>;

/// The member's callbacks: librdkafka's log and errors (as every client of this crate keeps
/// them), and the rebalance hooks.
struct MemberContext {
    base: Context,
    on_revoke: Mutex<OnRevoke>,
    /// The partitions of an assignment not yet handed to the caller.
    assigned: Mutex<Option<Vec<(String, i32)>>>,
    /// A rebalance librdkafka could not complete.
    failed: Mutex<Option<String>>,
}

impl ClientContext for MemberContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.base.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.base.error(error, reason);
    }
}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            let mut f = self.on_revoke.lock().unwrap_or_else(|e| e.into_inner());
            f();
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                // The caller reads through handles of its own: this one must fetch nothing.
                if let Err(e) = consumer.pause(tpl) {
                    *self.failed.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(format!("pausing the assigned partitions: {e}"));
                }
                let partitions = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                *self.assigned.lock().unwrap_or_else(|e| e.into_inner()) = Some(partitions);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => {
                *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
            }
        }
    }
}

/// What one rebalance gave a [`Membership`].
#[derive(Debug)]
pub struct Assigned {
    /// (topic, partition) pairs.
    pub partitions: Vec<(String, i32)>,
    /// Fences offsets committed for this assignment in a transaction.
    pub metadata: GroupMetadata,
}

/// A member of a consumer group that takes assignments and fetches nothing.
pub struct Membership {
    config: ClientConfig,
    inner: BaseConsumer<MemberContext>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("bootstrap", &self.config.bootstrap)
            .finish_non_exhaustive()
    }
}

impl Membership {
    /// Joins `config.group` for `topics` (the join completes during [`Membership::poll`]);
    /// `on_revoke` runs before each rebalance takes this member's partitions away.
    pub fn join(
        client: &ClientConfig,
        config: &ConsumerConfig,
        topics: &[&str],
        on_revoke: OnRevoke,
    ) -> Result<Membership> {
        config.validate()?;
        let Some(group) = &config.group else {
            return Err(Error::Config {
                field: "group".into(),
                reason: "a group member needs a group".into(),
            });
        };
        let mut c = client.rdkafka()?;
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", config.session_timeout_ms.to_string())
            // Three heartbeats per session, as Kafka's clients default to.
            .set(
                "heartbeat.interval.ms",
                (config.session_timeout_ms / 3).max(1).to_string(),
            )
            .set("isolation.level", config.isolation.as_rdkafka());
        let inner: BaseConsumer<MemberContext> = c
            .create_with_context(MemberContext {
                base: Context::default(),
                on_revoke: Mutex::new(on_revoke),
                assigned: Mutex::new(None),
                failed: Mutex::new(None),
            })
            .map_err(|e| Error::from_kafka("creating a group member", e, 0))?;
        let member = Membership {
            config: client.clone(),
            inner,
        };
        member
            .inner
            .subscribe(topics)
            .map_err(|e| member.fail("subscribe", e))?;
        Ok(member)
    }

    fn fail(&self, operation: impl Into<String>, e: KafkaError) -> Error {
        Error::from_kafka(operation, e, self.config.request_timeout_ms).with_cluster(
            &self.config.bootstrap,
            self.inner.context().base.last_error(),
        )
    }

    /// Serves the group for up to `wait`. Returns the new assignment, with the group metadata
    /// that fences offsets committed for it in a transaction, once a rebalance completes.
    pub fn poll(&self, wait: Duration) -> Result<Option<Assigned>> {
        match self.inner.poll(wait) {
            // Paused partitions fetch nothing; a record fetched before the pause is dropped.
            None | Some(Ok(_)) => {}
            Some(Err(e))
                if matches!(
                    e.rdkafka_error_code(),
                    Some(
                        crate::ErrorCode::BrokerTransportFailure | crate::ErrorCode::AllBrokersDown
                    )
                ) => {}
            Some(Err(e)) => return Err(self.fail("serve the group", e)),
        }
        let context = self.inner.context();
        if let Some(why) = context
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return Err(Error::Config {
                field: "group".into(),
                reason: format!("rebalance failed: {why}"),
            });
        }
        let assigned = context
            .assigned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(partitions) = assigned else {
            return Ok(None);
        };
        let metadata = self
            .inner
            .group_metadata()
            .map(GroupMetadata)
            .ok_or_else(|| Error::Config {
                field: "group".into(),
                reason: "the member has no group metadata".into(),
            })?;
        Ok(Some(Assigned {
            partitions,
            metadata,
        }))
    }

    /// Commits, as this member (fenced by its generation), the next offset to read of each
    /// (topic, partition, offset) given; waits for the coordinator's answer. For programs that
    /// commit outside transactions.
    pub fn commit(&self, offsets: &[(&str, i32, i64)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut tpl = rdkafka::TopicPartitionList::with_capacity(offsets.len());
        for &(topic, p, next) in offsets {
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(next))
                .map_err(|e| self.fail("commit", e))?;
        }
        self.inner
            .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
            .map_err(|e| self.fail("commit", e))
    }

    /// Leaves the group now (the others rebalance without waiting out the session timeout);
    /// the revoke function runs one last time first. Polls after this assign nothing.
    pub fn leave(&self) {
        self.inner.unsubscribe();
    }
}
