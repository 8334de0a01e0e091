//! Group membership published for other processes: the writer is the only process with live
//! membership (its in-process coordinator), so it writes each group's description to a file
//! whenever an assignment changes, and `weir groups describe` in another process reads it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::IoContext;
use crate::group::GroupDescription;
use crate::topic_store::TopicStore;
use crate::{Error, Result, util};

/// Where the writer publishes group membership, under the data directory. (`@` cannot appear in
/// a topic name, so this directory is never taken for a topic.)
const GROUPS_DIR: &str = "@groups";
/// Longest hex-encoded group name used whole as a file name (with `.json`, under 255 bytes).
const GROUP_FILE_HEX_MAX: usize = 240;

/// One group's membership as the writer last published it.
#[derive(Serialize, Deserialize)]
pub(crate) struct PublishedGroup {
    /// The writer process.
    pub(crate) pid: u32,
    /// When it published this, in ms since the Unix epoch.
    pub(crate) published_ms: i64,
    pub(crate) description: GroupDescription,
}

fn group_file(data_dir: &Path, group: &str) -> PathBuf {
    // Hex, so that any group name makes a file name. A file name holds at most 255 bytes: a
    // longer name goes by its start and a checksum of the whole (the file names the group
    // inside, and a reader checks it), or it could never be published.
    let hex: String = group.bytes().map(|b| format!("{b:02x}")).collect();
    let name = if hex.len() <= GROUP_FILE_HEX_MAX {
        hex
    } else {
        format!(
            "{}-{:08x}-{}",
            &hex[..64],
            crc32c::crc32c(group.as_bytes()),
            group.len()
        )
    };
    data_dir.join(GROUPS_DIR).join(format!("{name}.json"))
}

/// Writes `description` (of group `description.group`) where other processes can read it.
pub(crate) fn publish(store: &TopicStore, description: GroupDescription) -> Result<()> {
    let data_dir = store.dir();
    let dir = data_dir.join(GROUPS_DIR);
    store.storage().create_dir_all(&dir).at(&dir)?;
    let file = group_file(data_dir, &description.group);
    let published = PublishedGroup {
        pid: std::process::id(),
        published_ms: store.clock().now_ms(),
        description,
    };
    let bytes =
        serde_json::to_vec_pretty(&published).map_err(|e| Error::Internal(e.to_string()))?;
    util::write_atomically(store.storage(), &file, &bytes)
}

/// Removes what the writer published of `group` (it was deleted), if anything.
pub(crate) fn remove(store: &TopicStore, group: &str) -> Result<()> {
    let dir = store.dir().join(GROUPS_DIR);
    if !store.storage().is_dir(&dir) {
        return Ok(());
    }
    let file = group_file(store.dir(), group);
    crate::storage::remove_if_present(store.storage(), &file).at(&file)?;
    util::sync_dir(store.storage(), &dir)
}

/// What the writer last published of `group`, if it published anything readable.
pub(crate) fn read(store: &TopicStore, group: &str) -> Option<PublishedGroup> {
    let file = group_file(store.dir(), group);
    let p: PublishedGroup = serde_json::from_slice(&store.storage().read(&file).ok()?).ok()?;
    (p.description.group == group).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_name_makes_a_file_name_and_long_ones_stay_distinct() {
        let dir = Path::new("/data");
        let short = group_file(dir, "g");
        assert_eq!(short, dir.join(GROUPS_DIR).join("67.json"));
        let a = group_file(dir, &"a".repeat(300));
        let b = group_file(dir, &"a".repeat(301));
        assert_ne!(a, b);
        for f in [a, b] {
            assert!(f.file_name().unwrap().len() < 255, "{f:?}");
        }
    }
}
