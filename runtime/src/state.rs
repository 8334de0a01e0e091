//! Operator state in the log: snapshots serialized with bincode, written in chunks to the
//! compacted state topic, and found again through the job's manifest.
//!
//! Keys: `<job>/s/<state key>/<chunk>` for chunks and `<job>/manifest` for the manifest, which
//! names, for the last committed epoch, every state key, the epoch that last wrote it and its
//! number of chunks. Unchanged state is not rewritten; compaction keeps the newest chunk per key.
//!
//! On a cluster, where instances split a job's tasks and a task moves with its partition, each
//! task has a manifest of its own, `<job>/manifest/<stage>/<index>`, naming its state keys: the
//! instance that owns the task writes it, and the next owner restores from it alone.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::topics::{Isolation, ReaderConfig, TopicSpec, Topics};

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Serializes operator state.
pub fn encode<S: Serialize>(state: &S) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(state, bincode_config())
        .map_err(|e| Error::Internal(format!("state does not serialize: {e}")))
}

/// Deserializes the state of operator `uid`; bad bytes are an error naming it, never a panic.
pub fn decode<S: DeserializeOwned>(uid: &str, bytes: &[u8]) -> Result<S> {
    let (s, read) =
        bincode::serde::decode_from_slice(bytes, bincode_config()).map_err(|e| Error::State {
            operator: uid.to_string(),
            reason: e.to_string(),
        })?;
    if read != bytes.len() {
        return Err(Error::State {
            operator: uid.to_string(),
            reason: format!("{} trailing bytes", bytes.len() - read),
        });
    }
    Ok(s)
}

/// The record naming a job's committed state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Manifest {
    pub(crate) epoch: u64,
    /// Stage names and parallelism: restoring into a different shape is refused.
    pub(crate) topology: String,
    /// (state key, epoch that wrote it, chunks).
    pub(crate) entries: Vec<(String, u64, u32)>,
}

/// One chunk of one state key.
#[derive(Debug, Serialize, Deserialize)]
struct Chunk {
    epoch: u64,
    index: u32,
    count: u32,
    #[serde(with = "serde_bytes")]
    bytes: Vec<u8>,
}

pub(crate) fn ensure_topic(topics: &dyn Topics, topic: &str) -> Result<()> {
    topics.ensure_topic(
        topic,
        &TopicSpec {
            partitions: 1,
            compacted: true,
            record_bytes_max: 8 << 20,
            batch_bytes_max: 16 << 20,
            unlimited_retention: false,
            segment_bytes_max: None,
        },
    )
}

pub(crate) fn manifest_key(job: &str) -> String {
    format!("{job}/manifest")
}

/// A task's name in its job: its stage and its index there (its partition, on a cluster).
pub(crate) fn task_name(stage: &str, index: usize) -> String {
    format!("{stage}/{index}")
}

/// The key of task `task`'s own manifest (on a cluster).
pub(crate) fn task_manifest_key(job: &str, task: &str) -> String {
    format!("{job}/manifest/{task}")
}

pub(crate) fn chunk_key(job: &str, state_key: &str, index: u32) -> String {
    format!("{job}/s/{state_key}/{index}")
}

/// Splits `bytes` into chunk records (key, value).
pub(crate) fn chunks(
    job: &str,
    state_key: &str,
    epoch: u64,
    bytes: &[u8],
    chunk_bytes_max: usize,
) -> Result<Vec<(String, Vec<u8>)>> {
    let pieces: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[][..]]
    } else {
        bytes.chunks(chunk_bytes_max).collect()
    };
    let count = pieces.len() as u32;
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            let chunk = Chunk {
                epoch,
                index: i as u32,
                count,
                bytes: piece.to_vec(),
            };
            Ok((chunk_key(job, state_key, i as u32), encode(&chunk)?))
        })
        .collect()
}

pub(crate) fn encode_manifest(m: &Manifest) -> Result<Vec<u8>> {
    encode(m)
}

/// The state a run starts from: the manifests found and the state they name.
pub(crate) struct Restored {
    /// The job's manifest (a job run as one instance).
    pub(crate) manifest: Option<Manifest>,
    /// The manifests of the tasks asked for that have one (on a cluster).
    pub(crate) task_manifests: Vec<Manifest>,
    pub(crate) states: HashMap<String, Vec<u8>>,
}

impl Restored {
    /// The newest epoch any restored manifest names (0 if none).
    pub(crate) fn epoch(&self) -> u64 {
        self.manifest
            .iter()
            .chain(&self.task_manifests)
            .map(|m| m.epoch)
            .max()
            .unwrap_or(0)
    }
}

/// How far [`read_latest`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadTo {
    /// To the end the topic had when the read began, however long another writer's open
    /// transaction holds the reader back: on a cluster other instances commit after the end
    /// they had, and what they committed before it must be seen.
    End,
    /// To the end, or to the last stable offset once no more comes: a job run as one instance
    /// fenced the only writer whose transaction can hold the offset back (aborted by now).
    EndOrStable,
}

/// The newest committed value of every key of `job` in the state topic.
fn read_latest(
    topics: &dyn Topics,
    topic: &str,
    job: &str,
    read_to: ReadTo,
) -> Result<HashMap<String, Vec<u8>>> {
    let mut consumer = topics.reader(ReaderConfig {
        client_id: format!("{job}-restore"),
        isolation: Isolation::ReadCommitted,
        // The defaults of the log's consumer, which restored state before readers were
        // behind a trait.
        fetch_bytes_max: 1 << 20,
        poll_bytes_max: 8 << 20,
    })?;
    let partitions = topics.partition_count(topic)?;
    consumer.assign(topic, &(0..partitions).collect::<Vec<_>>())?;
    let ends: Vec<i64> = (0..partitions)
        .map(|p| topics.end_offset(topic, p))
        .collect::<Result<_>>()?;
    let prefix = format!("{job}/");
    let mut latest: HashMap<String, Vec<u8>> = HashMap::new();
    loop {
        let done =
            (0..partitions).all(|p| consumer.position(topic, p).unwrap_or(0) >= ends[p as usize]);
        if done {
            break;
        }
        let batches = consumer.poll(std::time::Duration::from_millis(50))?;
        if batches.is_empty() {
            if read_to == ReadTo::End {
                continue;
            }
            let stuck = (0..partitions).all(|p| {
                let pos = consumer.position(topic, p).unwrap_or(0);
                topics
                    .last_stable_offset(topic, p)
                    .map(|lso| pos >= lso)
                    .unwrap_or(true)
            });
            if stuck {
                break;
            }
            continue;
        }
        for b in batches {
            for r in b.records {
                let Some(key) = r.key.as_deref() else {
                    continue;
                };
                let Ok(key) = std::str::from_utf8(key) else {
                    continue;
                };
                if !key.starts_with(&prefix) {
                    continue;
                }
                match &r.value {
                    Some(v) => latest.insert(key.to_string(), v.to_vec()),
                    None => latest.remove(key),
                };
            }
        }
    }
    Ok(latest)
}

/// Adds to `states` the state `manifest` names, from the chunks in `latest`.
fn assemble(
    latest: &HashMap<String, Vec<u8>>,
    topic: &str,
    job: &str,
    manifest: &Manifest,
    states: &mut HashMap<String, Vec<u8>>,
) -> Result<()> {
    for (state_key, epoch, count) in &manifest.entries {
        let mut bytes = Vec::new();
        for i in 0..*count {
            let missing = || Error::State {
                operator: state_key.clone(),
                reason: format!("chunk {i} of epoch {epoch} is missing from `{topic}`"),
            };
            let raw = latest
                .get(&chunk_key(job, state_key, i))
                .ok_or_else(missing)?;
            let chunk: Chunk = decode(state_key, raw)?;
            if chunk.epoch != *epoch || chunk.index != i || chunk.count != *count {
                return Err(missing());
            }
            bytes.extend_from_slice(&chunk.bytes);
        }
        states.insert(state_key.clone(), bytes);
    }
    Ok(())
}

/// Reads the state topic (read_committed) and assembles the state of `job`'s last commit (a
/// job run as one instance).
pub(crate) fn restore(topics: &dyn Topics, topic: &str, job: &str) -> Result<Restored> {
    let latest = read_latest(topics, topic, job, ReadTo::EndOrStable)?;
    let mut states = HashMap::new();
    let Some(manifest_bytes) = latest.get(&manifest_key(job)) else {
        return Ok(Restored {
            manifest: None,
            task_manifests: Vec::new(),
            states,
        });
    };
    let manifest: Manifest = decode("manifest", manifest_bytes)?;
    assemble(&latest, topic, job, &manifest, &mut states)?;
    Ok(Restored {
        manifest: Some(manifest),
        task_manifests: Vec::new(),
        states,
    })
}

/// Reads the state topic (read_committed, to its end) and assembles the state of `tasks` of
/// `job` from their own manifests (on a cluster). A manifest of another shape than `topology`
/// is refused, as [`restore`]'s caller refuses one.
pub(crate) fn restore_tasks(
    topics: &dyn Topics,
    topic: &str,
    job: &str,
    tasks: &[String],
    topology: &str,
) -> Result<Restored> {
    let latest = read_latest(topics, topic, job, ReadTo::End)?;
    let mut states = HashMap::new();
    let mut task_manifests = Vec::new();
    for task in tasks {
        let Some(bytes) = latest.get(&task_manifest_key(job, task)) else {
            continue;
        };
        let manifest: Manifest = decode("manifest", bytes)?;
        if manifest.topology != topology {
            return Err(Error::State {
                operator: task.clone(),
                reason: format!(
                    "the job's shape changed since its last checkpoint (was `{}`, now \
                     `{topology}`): run it with the same operators and parallelism, or under a \
                     new name",
                    manifest.topology
                ),
            });
        }
        assemble(&latest, topic, job, &manifest, &mut states)?;
        task_manifests.push(manifest);
    }
    Ok(Restored {
        manifest: None,
        task_manifests,
        states,
    })
}
