//! One consumer read by many readers: [`SharedConsumer`] is a consumer outside any group
//! subscription whose partitions are split among [`PartitionReader`]s, each with a queue of its
//! own that the records of its partitions go to.
//!
//! A consumer costs a main thread, a thread and a connection per broker, and a fetch loop of its
//! own; a job on a cluster reads one partition per source task, so a consumer per task meant as
//! many of each as the job has partitions. Sharing one, the job's tasks share its connections
//! and fetch requests (one fetch asks for every partition), while each task still polls only
//! its partitions: librdkafka forwards a partition's fetch queue to the queue of the reader that
//! owns it (`rd_kafka_queue_get_partition`, `rd_kafka_queue_forward`), and readers add and
//! remove their partitions incrementally.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::bindings as rdsys;

use crate::config::ClientConfig;
use crate::consumer::{Consumer, ConsumerConfig, ConsumerQueue, Event, StartAt, poll_queue};
use crate::error::{Error, Result};

/// A consumer whose assigned partitions are read through [`PartitionReader`]s.
pub struct SharedConsumer {
    consumer: Consumer,
    /// What it was made with, for a consumer of a reader's own (see [`PartitionReader::assign`]).
    made_with: (ClientConfig, ConsumerConfig),
    /// The partitions its readers read, as (topic, partition): one reader each.
    taken: Mutex<HashSet<(String, i32)>>,
}

impl std::fmt::Debug for SharedConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedConsumer").finish_non_exhaustive()
    }
}

impl SharedConsumer {
    /// A consumer for `client`'s cluster with `config`'s settings (its `group`, if any, only
    /// names it: it never subscribes).
    pub fn new(client: &ClientConfig, config: &ConsumerConfig) -> Result<Arc<SharedConsumer>> {
        Ok(Arc::new(SharedConsumer {
            consumer: Consumer::new(client, config)?,
            made_with: (client.clone(), config.clone()),
            taken: Mutex::new(HashSet::new()),
        }))
    }

    /// A reader with no partitions yet.
    pub fn reader(self: &Arc<Self>) -> Result<PartitionReader> {
        // SAFETY: a live client; the new queue's reference is released by ConsumerQueue's drop,
        // before the reader's Arc of the consumer.
        let queue = unsafe { rdsys::rd_kafka_queue_new(self.consumer.native()) };
        if queue.is_null() {
            return Err(Error::Config {
                field: "reader".into(),
                reason: "librdkafka gave the reader no queue".into(),
            });
        }
        Ok(PartitionReader {
            parts: Vec::new(),
            queue: ConsumerQueue(queue),
            topic: None,
            assigned: false,
            shared: self.clone(),
        })
    }

    /// The consumer's own queue holds what is not any partition's: errors and the callbacks
    /// they call. Served without waiting; an error there is the reader's.
    fn serve(&self) -> Result<()> {
        self.consumer
            .poll_batch(Duration::ZERO, 16, |event| match event {
                // Every assigned partition's records go to a reader's queue.
                Event::Record(_) | Event::PartitionEnd { .. } => Ok(()),
            })?;
        Ok(())
    }
}

/// The partitions of one topic that one reader reads from a [`SharedConsumer`], and the queue
/// their records and partition ends come to. Dropping it stops reading them.
pub struct PartitionReader {
    /// Each partition's fetch queue, forwarded to `queue` (declared before it and the consumer:
    /// these references go first).
    parts: Vec<(i32, ConsumerQueue)>,
    queue: ConsumerQueue,
    /// The topic of its partitions, once it has some.
    topic: Option<String>,
    /// Its partitions were given to the consumer (and must be taken back).
    assigned: bool,
    shared: Arc<SharedConsumer>,
}

impl std::fmt::Debug for PartitionReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionReader")
            .field("topic", &self.topic)
            .field(
                "partitions",
                &self.parts.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl PartitionReader {
    /// Reads exactly these partitions of `topic`, each from where it says, instead of those it
    /// read before. A partition has one reader per consumer: if another reader of the shared
    /// consumer reads one of them (two readers of one partition, which a job never opens), this
    /// reader moves to a consumer of its own, made with the same settings.
    pub fn assign(&mut self, topic: &str, partitions: &[(i32, StartAt)]) -> Result<()> {
        if self.try_assign(topic, partitions)? {
            return Ok(());
        }
        let (client, config) = &self.shared.made_with;
        *self = SharedConsumer::new(client, config)?.reader()?;
        match self.try_assign(topic, partitions)? {
            true => Ok(()),
            false => Err(Error::Config {
                field: "partitions".into(),
                reason: format!("a new consumer found partitions of '{topic}' taken"),
            }),
        }
    }

    /// [`PartitionReader::assign`] on this reader's consumer; false, and nothing assigned, if
    /// another of its readers reads one of the partitions.
    fn try_assign(&mut self, topic: &str, partitions: &[(i32, StartAt)]) -> Result<bool> {
        self.release()?;
        {
            let mut taken = self.shared.taken.lock().unwrap_or_else(|e| e.into_inner());
            if partitions
                .iter()
                .any(|&(p, _)| taken.contains(&(topic.to_string(), p)))
            {
                return Ok(false);
            }
            taken.extend(partitions.iter().map(|&(p, _)| (topic.to_string(), p)));
        }
        self.topic = Some(topic.to_string());
        let name = std::ffi::CString::new(topic).map_err(|_| Error::Config {
            field: "topic".into(),
            reason: format!("'{topic}' holds a NUL byte"),
        })?;
        for &(partition, _) in partitions {
            // SAFETY: a live client and a NUL-terminated name; the reference is released by
            // ConsumerQueue's drop.
            let fetch = unsafe {
                rdsys::rd_kafka_queue_get_partition(
                    self.shared.consumer.native(),
                    name.as_ptr(),
                    partition,
                )
            };
            if fetch.is_null() {
                return Err(Error::UnknownTopic {
                    topic: topic.to_string(),
                });
            }
            // Before the partition is assigned: librdkafka then leaves a forwarding the
            // application set (RD_KAFKA_Q_F_FWD_APP) rather than point it at the consumer's
            // queue. SAFETY: two live queues of the same client.
            unsafe { rdsys::rd_kafka_queue_forward(fetch, self.queue.0) };
            self.parts.push((partition, ConsumerQueue(fetch)));
        }
        self.assigned = true;
        self.shared.consumer.assign_more(topic, partitions)?;
        Ok(true)
    }

    /// Moves one of its partitions to `offset`.
    pub fn seek(&self, topic: &str, partition: i32, offset: i64) -> Result<()> {
        self.shared.consumer.seek(topic, partition, offset)
    }

    /// The next offset of each of its partitions that is known, as (partition, offset); see
    /// [`Consumer::positions`].
    pub fn positions(&self, topic: &str) -> Result<Vec<(i32, i64)>> {
        if self.topic.as_deref() != Some(topic) {
            return Ok(Vec::new());
        }
        let mut all = self.shared.consumer.positions(topic)?;
        all.retain(|(p, _)| self.parts.iter().any(|(q, _)| q == p));
        Ok(all)
    }

    /// Up to `records_max` records and partition ends of its partitions, waiting at most `wait`
    /// for the first; see [`Consumer::poll_batch`].
    pub fn poll_batch(
        &self,
        wait: Duration,
        records_max: usize,
        each: impl FnMut(Event<'_>) -> Result<()>,
    ) -> Result<usize> {
        self.shared.serve()?;
        // SAFETY: this reader's queue, alive as long as `self`.
        unsafe { poll_queue(self.queue.0, wait, records_max, each) }
            .map_err(|e| self.shared.consumer.poll_failed(e))
    }

    /// Stops reading its partitions and gives back their queues.
    fn release(&mut self) -> Result<()> {
        let Some(topic) = self.topic.take() else {
            return Ok(());
        };
        let partitions: Vec<i32> = self.parts.iter().map(|(p, _)| *p).collect();
        let r = match std::mem::take(&mut self.assigned) {
            true => self.shared.consumer.unassign_some(&topic, &partitions),
            false => Ok(()),
        };
        for (_, fetch) in self.parts.drain(..) {
            // Records fetched from now on (by a later assignment) are no longer this reader's.
            // SAFETY: a live queue; forwarding to nothing is allowed.
            unsafe { rdsys::rd_kafka_queue_forward(fetch.0, std::ptr::null_mut()) };
        }
        let mut taken = self.shared.taken.lock().unwrap_or_else(|e| e.into_inner());
        for p in partitions {
            taken.remove(&(topic.clone(), p));
        }
        r
    }
}

impl Drop for PartitionReader {
    fn drop(&mut self) {
        // The consumer goes with its last reader anyway; an error here has nobody to tell.
        let _ = self.release();
    }
}
