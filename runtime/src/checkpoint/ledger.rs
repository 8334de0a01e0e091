//! What an epoch's commit writes to the state topic: the chunks of every snapshot that changed
//! since it was last written, and a manifest naming, for every state key, the epoch that last
//! wrote it. Plain values in, records out; the coordinator sends them.

use std::collections::HashMap;

use crate::emitter::Checkpoint;
use crate::error::Result;
use crate::state::{self, Manifest};

struct Written {
    epoch: u64,
    chunks: u32,
    bytes: Vec<u8>,
}

/// Everything one epoch's transaction carries besides the sinks' output.
#[derive(Debug, Default)]
pub(crate) struct CommitPlan {
    /// (key, value) chunk records for the state topic.
    pub(crate) state_records: Vec<(String, Vec<u8>)>,
    /// The manifest records, (key, value): the job's, or on a cluster one per task.
    pub(crate) manifests: Vec<(String, Vec<u8>)>,
    /// (topic, partition, next offset) of every source partition.
    pub(crate) offsets: Vec<(String, i32, i64)>,
    /// Bytes of state that changed (and are written again).
    pub(crate) state_bytes: u64,
}

/// The state last written for each key, so that unchanged snapshots are not written again.
pub(crate) struct StateLedger {
    job: String,
    topology: String,
    chunk_bytes_max: usize,
    /// On a cluster, the name of each task in the order its checkpoint comes (every task acks
    /// every epoch), so that each gets a manifest of its own; `None`: one manifest for the job.
    tasks: Option<Vec<String>>,
    written: HashMap<String, Written>,
}

impl StateLedger {
    /// The ledger of job `job` (its group and state prefix) of shape `topology`, after the
    /// restored `manifests` and the `states` they named. With `tasks`, each task's state is
    /// named by a manifest of its own (on a cluster).
    pub(crate) fn new<'a>(
        job: String,
        topology: String,
        chunk_bytes_max: usize,
        manifests: impl IntoIterator<Item = &'a Manifest>,
        states: &HashMap<String, Vec<u8>>,
        tasks: Option<Vec<String>>,
    ) -> StateLedger {
        let mut written = HashMap::new();
        for (key, epoch, chunks) in manifests.into_iter().flat_map(|m| m.entries.iter()) {
            if let Some(bytes) = states.get(key) {
                written.insert(
                    key.clone(),
                    Written {
                        epoch: *epoch,
                        chunks: *chunks,
                        bytes: bytes.clone(),
                    },
                );
            }
        }
        StateLedger {
            job,
            topology,
            chunk_bytes_max,
            tasks,
            written,
        }
    }

    /// What committing `epoch` with the tasks' `checkpoints` writes. The ledger takes the new
    /// state as written: if the commit fails the job stops, and a restart builds a new ledger.
    pub(crate) fn plan(&mut self, epoch: u64, checkpoints: Vec<Checkpoint>) -> Result<CommitPlan> {
        let mut plan = CommitPlan::default();
        let per_task = self.tasks.is_some();
        if let Some(tasks) = &self.tasks
            && tasks.len() != checkpoints.len()
        {
            return Err(crate::error::Error::Internal(format!(
                "{} checkpoints for {} tasks",
                checkpoints.len(),
                tasks.len()
            )));
        }
        let mut job_entries = Vec::new();
        for (i, cp) in checkpoints.into_iter().enumerate() {
            plan.offsets.extend(cp.offsets);
            let mut entries = Vec::new();
            for (key, bytes) in cp.states {
                entries.push(self.write(epoch, key, bytes, &mut plan)?);
            }
            if per_task {
                let task = &self.tasks.as_ref().expect("per-task ledger")[i];
                entries.sort();
                plan.manifests.push((
                    state::task_manifest_key(&self.job, task),
                    state::encode_manifest(&Manifest {
                        epoch,
                        topology: self.topology.clone(),
                        entries,
                    })?,
                ));
            } else {
                job_entries.extend(entries);
            }
        }
        if !per_task {
            job_entries.sort();
            plan.manifests.push((
                state::manifest_key(&self.job),
                state::encode_manifest(&Manifest {
                    epoch,
                    topology: self.topology.clone(),
                    entries: job_entries,
                })?,
            ));
        }
        Ok(plan)
    }

    /// Plans the chunks of one state key if its bytes changed; returns its manifest entry.
    fn write(
        &mut self,
        epoch: u64,
        key: String,
        bytes: Vec<u8>,
        plan: &mut CommitPlan,
    ) -> Result<(String, u64, u32)> {
        let unchanged = self.written.get(&key).is_some_and(|w| w.bytes == bytes);
        if !unchanged {
            plan.state_bytes += bytes.len() as u64;
            let chunks = state::chunks(&self.job, &key, epoch, &bytes, self.chunk_bytes_max)?;
            let n = chunks.len() as u32;
            plan.state_records.extend(chunks);
            self.written.insert(
                key.clone(),
                Written {
                    epoch,
                    chunks: n,
                    bytes,
                },
            );
        }
        let w = &self.written[&key];
        let (epoch, chunks) = (w.epoch, w.chunks);
        Ok((key, epoch, chunks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(epoch: u64, states: &[(&str, &[u8])], offsets: &[(i32, i64)]) -> Checkpoint {
        let mut cp = Checkpoint::new(epoch);
        for (k, v) in states {
            cp.put_state(k, v.to_vec());
        }
        cp.offsets = offsets.iter().map(|(p, o)| ("in".into(), *p, *o)).collect();
        cp
    }

    fn manifest(plan: &CommitPlan) -> Manifest {
        state::decode("manifest", &plan.manifests[0].1).expect("a manifest")
    }

    #[test]
    fn unchanged_state_is_named_but_not_written_again() {
        let mut ledger =
            StateLedger::new("j".into(), "t".into(), 1 << 10, None, &HashMap::new(), None);
        let plan = ledger
            .plan(
                1,
                vec![checkpoint(1, &[("b/0", b"x"), ("a/0", b"y")], &[(0, 5)])],
            )
            .expect("a plan");
        assert_eq!(plan.state_records.len(), 2);
        assert_eq!(plan.state_bytes, 2);
        assert_eq!(plan.offsets, vec![("in".to_string(), 0, 5)]);
        assert_eq!(plan.manifests.len(), 1);
        assert_eq!(plan.manifests[0].0, "j/manifest");
        let m = manifest(&plan);
        assert_eq!(m.epoch, 1);
        assert_eq!(m.topology, "t");
        assert_eq!(m.entries, vec![("a/0".into(), 1, 1), ("b/0".into(), 1, 1)]);

        let plan = ledger
            .plan(
                2,
                vec![checkpoint(2, &[("b/0", b"x"), ("a/0", b"z")], &[(0, 9)])],
            )
            .expect("a plan");
        assert_eq!(plan.state_records.len(), 1, "only a/0 changed");
        assert_eq!(plan.state_records[0].0, "j/s/a/0/0");
        assert_eq!(plan.state_bytes, 1);
        let m = manifest(&plan);
        assert_eq!(m.entries, vec![("a/0".into(), 2, 1), ("b/0".into(), 1, 1)]);
    }

    #[test]
    fn a_restored_ledger_knows_what_was_written() {
        let states = HashMap::from([("a/0".to_string(), b"y".to_vec())]);
        let restored = Manifest {
            epoch: 7,
            topology: "t".into(),
            entries: vec![("a/0".into(), 4, 1)],
        };
        let mut ledger = StateLedger::new(
            "j".into(),
            "t".into(),
            1 << 10,
            Some(&restored),
            &states,
            None,
        );
        let plan = ledger
            .plan(8, vec![checkpoint(8, &[("a/0", b"y")], &[])])
            .expect("a plan");
        assert!(plan.state_records.is_empty());
        assert_eq!(manifest(&plan).entries, vec![("a/0".into(), 4, 1)]);
    }

    #[test]
    fn big_state_is_split_into_chunks() {
        let mut ledger =
            StateLedger::new("j".into(), "t".into(), 1 << 10, None, &HashMap::new(), None);
        let big = vec![7u8; 2_500];
        let plan = ledger
            .plan(1, vec![checkpoint(1, &[("a/0", &big)], &[])])
            .expect("a plan");
        assert_eq!(plan.state_records.len(), 3);
        assert_eq!(manifest(&plan).entries, vec![("a/0".into(), 1, 3)]);
    }
}
