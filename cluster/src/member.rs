//! [`KafkaMember`]: an instance's membership of its job's group, over weir-client's
//! [`Membership`]. Each assignment gets a number; the group metadata it came with is kept, by
//! group and number, where the job's writer finds it to fence the assignment's commits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_client::{ClientConfig, ConsumerConfig, GroupMetadata, Membership};
use weir_runtime::Result;
use weir_runtime::topics::{Assignment, GroupMember, GroupMembership, GroupSpec};

use crate::topics_error;

/// The current assignment of a group an instance joined.
pub(crate) struct Current {
    /// Its number among the member's assignments.
    pub(crate) number: u64,
    /// Fences the offsets of a transaction made for it.
    pub(crate) metadata: GroupMetadata,
    /// Commits offsets as the member (at-least-once).
    pub(crate) member: Arc<Membership>,
}

/// The current assignment of each group joined, by group.
pub(crate) type Assignments = Arc<Mutex<HashMap<String, Current>>>;

/// One instance's membership of its job's group.
pub(crate) struct KafkaMember {
    group: String,
    membership: Arc<Membership>,
    assignments: Assignments,
    received: u64,
}

impl KafkaMember {
    pub(crate) fn join(
        client: &ClientConfig,
        spec: GroupSpec,
        assignments: Assignments,
    ) -> Result<KafkaMember> {
        let topics: Vec<&str> = spec.topics.iter().map(String::as_str).collect();
        let mut client = client.clone();
        client.client_id = spec.client_id.clone();
        let membership = Membership::join(
            &client,
            &ConsumerConfig {
                group: Some(spec.group.clone()),
                session_timeout_ms: spec.session_timeout_ms,
                ..ConsumerConfig::default()
            },
            &topics,
            spec.on_revoke,
        )
        .map_err(|e| topics_error(format!("join group '{}'", spec.group), e))?;
        let membership = Arc::new(membership);
        Ok(KafkaMember {
            group: spec.group,
            membership,
            assignments,
            received: 0,
        })
    }
}

impl GroupMember for KafkaMember {
    fn poll(&mut self, timeout: Duration) -> Result<Option<Assignment>> {
        let Some(weir_client::Assigned {
            partitions,
            metadata,
        }) = self
            .membership
            .poll(timeout)
            .map_err(|e| topics_error(format!("serve group '{}'", self.group), e))?
        else {
            return Ok(None);
        };
        self.received += 1;
        self.assignments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                self.group.clone(),
                Current {
                    number: self.received,
                    metadata,
                    member: self.membership.clone(),
                },
            );
        Ok(Some(Assignment {
            membership: GroupMembership {
                group: self.group.clone(),
                assignment: self.received,
            },
            partitions,
        }))
    }

    fn leave(self: Box<Self>) {
        self.assignments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.group);
        self.membership.leave();
    }
}
