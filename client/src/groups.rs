//! Consumer groups as a cluster describes them, and the consumer protocol's assignment bytes.

/// What [`crate::Admin::describe_group`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group.
    pub name: String,
    /// The coordinator's state: `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty`
    /// or `Dead`.
    pub state: String,
    /// The assignor the members agreed on (`range`, `roundrobin`, ...), empty if none.
    pub protocol: String,
    /// Its members.
    pub members: Vec<GroupMember>,
    /// Committed offsets and lag, by topic and partition.
    pub offsets: Vec<GroupOffset>,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Its member id, given by the coordinator.
    pub member_id: String,
    /// Its `client.id`.
    pub client_id: String,
    /// Where it connects from.
    pub client_host: String,
    /// The partitions assigned to it, as (topic, partition), sorted.
    pub assignment: Vec<(String, i32)>,
}

/// A group's progress on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset the group will read.
    pub committed: i64,
    /// The next offset the partition will write.
    pub high_watermark: i64,
    /// `high_watermark - committed`, never below 0.
    pub lag: i64,
}

/// The partitions in a consumer-protocol assignment (`ConsumerProtocolAssignment`, versions
/// 0 to 3 share this prefix: version, then topics with their partitions). Bytes that do not
/// parse give what was read before them: the assignment is informational here.
pub fn parse_assignment(bytes: &[u8]) -> Vec<(String, i32)> {
    let mut r = Reader(bytes);
    let mut out = Vec::new();
    let _version = r.i16();
    let Some(topics) = r.i32() else {
        return out;
    };
    for _ in 0..topics.max(0) {
        let Some(topic) = r.string() else { break };
        let Some(count) = r.i32() else { break };
        for _ in 0..count.max(0) {
            let Some(p) = r.i32() else { break };
            out.push((topic.clone(), p));
        }
    }
    out.sort();
    out
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        let bytes = self.0.get(..len)?;
        self.0 = &self.0[len..];
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            b.extend_from_slice(&(t.len() as i16).to_be_bytes());
            b.extend_from_slice(t.as_bytes());
            b.extend_from_slice(&(ps.len() as i32).to_be_bytes());
            for p in *ps {
                b.extend_from_slice(&p.to_be_bytes());
            }
        }
        b.extend_from_slice(&(-1i32).to_be_bytes()); // no user data
        b
    }

    #[test]
    fn parses_the_assigned_partitions() {
        let bytes = assignment(&[("b", &[2, 0]), ("a", &[1])]);
        assert_eq!(
            parse_assignment(&bytes),
            [("a".into(), 1), ("b".into(), 0), ("b".into(), 2)]
        );
    }

    #[test]
    fn truncated_bytes_give_what_was_read() {
        let bytes = assignment(&[("a", &[0, 1])]);
        assert_eq!(
            parse_assignment(&bytes[..bytes.len() - 8]),
            [("a".into(), 0)]
        );
        assert!(parse_assignment(&[]).is_empty());
        assert!(parse_assignment(&[0, 1, 0, 0, 0, 9, 0, 50]).is_empty());
    }
}
