//! Kafka's `consumer` protocol payloads: the subscription a Kafka consumer puts in its JoinGroup
//! metadata (ConsumerProtocolSubscription) and the assignment its leader sends through SyncGroup
//! (ConsumerProtocolAssignment), both in Kafka's plain (non-flexible) encoding.
//!
//! The coordinator relays these as opaque bytes and never depends on them. It reads them only to
//! show classic members' topics and partitions, and writes them so that Kafka tools describing a
//! group of embedded consumers see what a Kafka consumer group would show. Every version so far
//! adds fields at the end, so reading the leading fields works for all of them.

/// A `consumer` subscription (version 0: the topics, no user data).
pub(crate) fn encode_subscription(topics: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0i16.to_be_bytes());
    put_array_len(&mut out, topics.len());
    for topic in topics {
        put_string(&mut out, topic);
    }
    out.extend_from_slice(&(-1i32).to_be_bytes()); // no user data
    out
}

/// A `consumer` assignment (version 0), partitions grouped by topic in the order given.
pub(crate) fn encode_assignment(partitions: &[(String, i32)]) -> Vec<u8> {
    let mut by_topic: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in partitions {
        match by_topic.iter_mut().find(|(t, _)| t == topic) {
            Some((_, ps)) => ps.push(*partition),
            None => by_topic.push((topic, vec![*partition])),
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&0i16.to_be_bytes());
    put_array_len(&mut out, by_topic.len());
    for (topic, ps) in by_topic {
        put_string(&mut out, topic);
        put_array_len(&mut out, ps.len());
        for p in ps {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
    out.extend_from_slice(&(-1i32).to_be_bytes()); // no user data
    out
}

/// The topics of a `consumer` subscription, sorted; `None` if the bytes are not one.
pub(crate) fn decode_subscription_topics(bytes: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader { bytes };
    r.version()?;
    let count = r.array_len()?;
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        topics.push(r.string()?);
    }
    topics.sort();
    topics.dedup();
    Some(topics)
}

/// The (topic, partition) pairs of a `consumer` assignment, sorted; `None` if the bytes are not
/// one. Empty bytes (a member the leader gave nothing) are an empty assignment.
pub(crate) fn decode_assignment(bytes: &[u8]) -> Option<Vec<(String, i32)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let mut r = Reader { bytes };
    r.version()?;
    let topics = r.array_len()?;
    let mut partitions = Vec::new();
    for _ in 0..topics {
        let topic = r.string()?;
        let count = r.array_len()?;
        for _ in 0..count {
            partitions.push((topic.clone(), r.i32()?));
        }
    }
    partitions.sort();
    Some(partitions)
}

fn put_array_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    // Kafka strings hold at most i16::MAX bytes; topic names are far shorter.
    let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as i16).to_be_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn version(&mut self) -> Option<i16> {
        self.i16().filter(|v| *v >= 0)
    }

    /// An array length; a null array reads as empty. Every element takes at least two bytes,
    /// so a length the remaining bytes cannot hold is refused before anything is allocated.
    fn array_len(&mut self) -> Option<usize> {
        let len = self.i32()?;
        if len < 0 {
            return Some(0);
        }
        let len = usize::try_from(len).ok()?;
        (len <= self.bytes.len() / 2).then_some(len)
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(spec: &[(&str, i32)]) -> Vec<(String, i32)> {
        spec.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn subscriptions_and_assignments_round_trip() {
        let topics = vec!["b".to_string(), "a".to_string()];
        assert_eq!(
            decode_subscription_topics(&encode_subscription(&topics)),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        let assignment = tps(&[("t", 2), ("u", 0), ("t", 0)]);
        assert_eq!(
            decode_assignment(&encode_assignment(&assignment)),
            Some(tps(&[("t", 0), ("t", 2), ("u", 0)]))
        );
        assert_eq!(decode_assignment(&[]), Some(vec![]));
    }

    #[test]
    fn a_java_client_subscription_v3_decodes() {
        // Version 3 as the Java client writes it: topics ["t"], null user data, owned
        // partitions [t: 0], generation 7, rack null.
        let mut bytes = vec![0, 3, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff];
        bytes.extend_from_slice(&[0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0, 0, 0, 7, 0xff, 0xff]);
        assert_eq!(
            decode_subscription_topics(&bytes),
            Some(vec!["t".to_string()])
        );
    }

    #[test]
    fn garbage_does_not_decode_or_allocate() {
        assert_eq!(decode_subscription_topics(b"x"), None);
        assert_eq!(
            decode_subscription_topics(&[0, 0, 0x7f, 0xff, 0xff, 0xff]),
            None
        );
        assert_eq!(decode_assignment(&[0xff, 0xff]), None);
        assert_eq!(decode_assignment(&[0, 0, 0, 0, 0, 1, 0, 5, b'a']), None);
    }
}
