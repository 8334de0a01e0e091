//! The purge of repartition topics: once an epoch has committed the offsets of the tasks that
//! read a repartition topic, the records before those offsets are never read again (a restart,
//! here or on another instance, resumes from them), so they are deleted. Kafka Streams does the
//! same, every `repartition.purge.interval.ms`.
//!
//! This is the decision alone (which partitions, up to where, and when); the coordinator asks
//! the topics to delete.

use std::collections::{BTreeMap, HashSet};

use crate::topics::PartitionOffset;

/// Which records of the job's repartition topics may go, and when to ask.
#[derive(Debug)]
pub(crate) struct Purge {
    /// The job's repartition topics (empty for a job without a cluster's exchanges).
    topics: HashSet<String>,
    interval_ms: u64,
    /// When the next purge may run, on the job's monotonic clock.
    next_at_ms: i64,
    /// Per partition read here, the offset its records were last deleted before.
    purged: BTreeMap<(String, i32), i64>,
}

impl Purge {
    pub(crate) fn new(
        topics: impl IntoIterator<Item = String>,
        interval_ms: u64,
        now_ms: i64,
    ) -> Purge {
        Purge {
            topics: topics.into_iter().collect(),
            interval_ms,
            next_at_ms: now_ms.saturating_add(interval_ms as i64),
            purged: BTreeMap::new(),
        }
    }

    /// After a commit of `offsets` at `now_ms`: the repartition partitions whose records before
    /// the committed offset may be deleted now, if a purge is due and there is something new to
    /// delete. An empty answer asks for nothing.
    pub(crate) fn due(
        &mut self,
        offsets: &[(String, i32, i64)],
        now_ms: i64,
    ) -> Vec<PartitionOffset> {
        if self.topics.is_empty() || now_ms < self.next_at_ms {
            return Vec::new();
        }
        self.next_at_ms = now_ms.saturating_add(self.interval_ms as i64);
        offsets
            .iter()
            .filter(|(topic, partition, offset)| {
                self.topics.contains(topic)
                    && *offset > 0
                    && self
                        .purged
                        .get(&(topic.clone(), *partition))
                        .is_none_or(|done| offset > done)
            })
            .map(|(topic, partition, offset)| PartitionOffset {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect()
    }

    /// The cluster deleted what [`Purge::due`] asked for.
    pub(crate) fn done(&mut self, deleted: &[PartitionOffset]) {
        for p in deleted {
            self.purged.insert((p.topic.clone(), p.partition), p.offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(list: &[(&str, i32, i64)]) -> Vec<(String, i32, i64)> {
        list.iter()
            .map(|&(t, p, o)| (t.to_string(), p, o))
            .collect()
    }

    fn asked(p: &[PartitionOffset]) -> Vec<(&str, i32, i64)> {
        p.iter()
            .map(|p| (p.topic.as_str(), p.partition, p.offset))
            .collect()
    }

    #[test]
    fn only_repartition_topics_are_purged_and_only_past_what_was_purged() {
        let mut purge = Purge::new(["job-count-repartition".to_string()], 0, 0);
        let committed = offsets(&[
            ("clicks", 0, 100),
            ("job-count-repartition", 0, 40),
            ("job-count-repartition", 1, 0),
        ]);
        let first = purge.due(&committed, 1);
        assert_eq!(asked(&first), vec![("job-count-repartition", 0, 40)]);
        purge.done(&first);
        assert!(purge.due(&committed, 2).is_empty(), "nothing new");
        let later = offsets(&[
            ("job-count-repartition", 0, 41),
            ("job-count-repartition", 1, 7),
        ]);
        assert_eq!(
            asked(&purge.due(&later, 3)),
            vec![
                ("job-count-repartition", 0, 41),
                ("job-count-repartition", 1, 7)
            ]
        );
    }

    #[test]
    fn a_purge_runs_at_most_once_per_interval_and_a_failed_one_is_asked_again() {
        let mut purge = Purge::new(["r".to_string()], 1_000, 0);
        let committed = offsets(&[("r", 0, 10)]);
        assert!(purge.due(&committed, 999).is_empty(), "not yet due");
        assert_eq!(asked(&purge.due(&committed, 1_000)), vec![("r", 0, 10)]);
        // Not done (the cluster failed): the next due purge asks again.
        assert!(purge.due(&committed, 1_500).is_empty());
        assert_eq!(asked(&purge.due(&committed, 2_000)), vec![("r", 0, 10)]);
    }

    #[test]
    fn a_job_without_repartition_topics_never_asks() {
        let mut purge = Purge::new(Vec::<String>::new(), 0, 0);
        assert!(purge.due(&offsets(&[("clicks", 0, 5)]), 10).is_empty());
    }
}
