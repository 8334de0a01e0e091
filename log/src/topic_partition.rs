//! [`TopicPartition`]: the name of one partition, as every API of the log takes and returns it.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One partition of one topic: `clicks-3` is partition 3 of `clicks`.
///
/// Cheap to clone (the topic name is shared), ordered by topic then partition, and shown as
/// `topic-partition` (Kafka's way). On disk (the transaction-state topic) it is written as the
/// JSON pair `["topic", partition]`, so records written before this type existed read back.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    topic: Arc<str>,
    partition: i32,
}

impl TopicPartition {
    /// Partition `partition` of `topic`. Neither is checked here: a log refuses unknown ones
    /// where they are used.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The topic's name, shared (a clone costs a reference count).
    pub(crate) fn shared_topic(&self) -> Arc<str> {
        self.topic.clone()
    }

    /// The partition's number within its topic, from 0.
    pub fn partition(&self) -> i32 {
        self.partition
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

impl fmt::Debug for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The Display form: a list of partitions in a test failure reads as `[t-0, t-1]`.
        write!(f, "{self}")
    }
}

impl From<(&str, i32)> for TopicPartition {
    fn from((topic, partition): (&str, i32)) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }
}

impl From<&(&str, i32)> for TopicPartition {
    fn from(&(topic, partition): &(&str, i32)) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }
}

impl From<(String, i32)> for TopicPartition {
    fn from((topic, partition): (String, i32)) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }
}

impl From<&TopicPartition> for TopicPartition {
    fn from(tp: &TopicPartition) -> TopicPartition {
        tp.clone()
    }
}

impl Serialize for TopicPartition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&*self.topic, self.partition).serialize(s)
    }
}

impl<'de> Deserialize<'de> for TopicPartition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TopicPartition, D::Error> {
        let (topic, partition) = <(String, i32)>::deserialize(d)?;
        Ok(TopicPartition::new(topic, partition))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_as_kafka_does_and_orders_by_topic_then_partition() {
        let a = TopicPartition::new("clicks", 10);
        assert_eq!(a.to_string(), "clicks-10");
        let mut all = vec![
            TopicPartition::new("b", 0),
            a.clone(),
            TopicPartition::new("clicks", 2),
        ];
        all.sort();
        assert_eq!(
            all,
            vec![TopicPartition::new("b", 0), ("clicks", 2).into(), a]
        );
    }

    #[test]
    fn json_form_is_the_pair_it_replaced() {
        let tp = TopicPartition::new("t", 3);
        let json = serde_json::to_string(&tp).unwrap();
        assert_eq!(json, serde_json::to_string(&("t", 3)).unwrap());
        let back: TopicPartition = serde_json::from_str(&json).unwrap();
        assert_eq!(back, tp);
        let set: std::collections::BTreeSet<TopicPartition> =
            serde_json::from_str(r#"[["a",1],["a",0]]"#).unwrap();
        assert_eq!(set.into_iter().next(), Some(TopicPartition::new("a", 0)));
    }
}
