//! The producer-id allocator of a writable log: hands out ids for idempotent and transactional
//! producers, never the same one twice, even across crashes.
//!
//! Ids are handed out from blocks whose end is persisted ahead of use (`@producer-ids`), so an
//! allocation costs an fsync only once per block. On open the next id starts past both the
//! persisted end and every id a partition has seen: the file may be lost or stale, and a reused
//! id would make a new producer's batches look like retries of an old one's.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::storage::Storage;
use crate::topic_store::{TopicStore, remove_file_if_present};
use crate::{Result, util};

const PRODUCER_IDS_FILE: &str = "@producer-ids";
/// The name the file had before it took the `@`: read (when it is a file) and removed.
const LEGACY_PRODUCER_IDS_FILE: &str = "producer-ids";
/// Ids persisted ahead of use per fsync of the allocator's file.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct ProducerIds {
    storage: Arc<dyn Storage>,
    file: PathBuf,
    /// (next id to hand out, end of the persisted block): equal when a new block is due.
    range: Mutex<(i64, i64)>,
}

impl ProducerIds {
    /// Where ids start in the data directory of `store` (a writer's), opening every partition
    /// when the allocator's file is lost (their producer state is then all there is to go by).
    pub(crate) fn recover(store: &TopicStore) -> Result<ProducerIds> {
        let dir = store.dir();
        let storage = store.storage();
        let persisted = [PRODUCER_IDS_FILE, LEGACY_PRODUCER_IDS_FILE]
            .iter()
            .filter(|name| storage.is_file(&dir.join(name)))
            .filter_map(|name| storage.read(&dir.join(name)).ok())
            .filter_map(|b| String::from_utf8(b).ok())
            .filter_map(|s| s.trim().parse::<i64>().ok())
            .max();
        if persisted.is_none() {
            store.all_partitions()?;
        }
        let seen = store
            .opened_partitions()
            .iter()
            .map(|p| p.max_producer_id())
            .max()
            .unwrap_or(-1);
        let next = persisted.unwrap_or(0).max(seen + 1);
        let file = dir.join(PRODUCER_IDS_FILE);
        if persisted.is_none() || storage.is_file(&dir.join(LEGACY_PRODUCER_IDS_FILE)) {
            // So that the next open need not read every partition to know where ids start.
            util::write_atomically(storage, &file, next.to_string().as_bytes())?;
            remove_file_if_present(storage, dir, LEGACY_PRODUCER_IDS_FILE)?;
        }
        // Ids below the persisted block end may have been handed out before a crash.
        Ok(ProducerIds {
            storage: store.storage_arc().clone(),
            file,
            range: Mutex::new((next, next)),
        })
    }

    /// A fresh producer id.
    pub(crate) fn allocate(&self) -> Result<i64> {
        let mut range = self.range.lock().unwrap_or_else(|e| e.into_inner());
        if range.0 == range.1 {
            let end = range.1 + PRODUCER_ID_BLOCK;
            util::write_atomically(&*self.storage, &self.file, end.to_string().as_bytes())?;
            range.1 = end;
        }
        let id = range.0;
        range.0 += 1;
        Ok(id)
    }

    /// Makes the allocator hand out ids above `producer_id` only (transactional ids keep their
    /// producer id while they have written nothing a partition could remember).
    pub(crate) fn raise_above(&self, producer_id: i64) {
        let mut range = self.range.lock().unwrap_or_else(|e| e.into_inner());
        if range.0 <= producer_id {
            // Both ends: the next allocation persists a fresh block from here.
            *range = (producer_id + 1, producer_id + 1);
        }
    }
}
