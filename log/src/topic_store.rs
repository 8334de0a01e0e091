//! The topic store: the topics and partitions of one data directory, and every operation on
//! them that the log's parts share (create, append, append a transaction marker, fetch, offsets,
//! group-commit durability), behind one narrow handle.
//!
//! [`crate::Log`] owns one and hands an `Arc` of it to each part that needs it (the offset store,
//! the transaction coordinator, the cleaner): a part gets the store, never the log that owns it.
//! The store also holds the directory's writer lock, so that the directory stays taken while any
//! part still works in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{LogConfig, TopicConfig};
use crate::error::IoContext;
use crate::flusher::Flusher;
use crate::format::Batch;
use crate::live_config::{ConfigHistory, LiveTopicConfig};
use crate::options::LogOptions;
use crate::partition::{AbortedTxn, AppendInfo, OpenMode, Partition};
use crate::segment::Truncation;
use crate::storage::{OpenHow, Storage, StorageFile};
use crate::topic_partition::TopicPartition;
use crate::{Error, Result, util};

// The log's own files are named with `@`, which no topic name may hold: topics and these never
// share a name (a topic called `producer-ids` once broke every writer).
const LOCK_FILE: &str = "@lock";
/// The marker file a clean shutdown leaves in the data directory; without it, the next open
/// recovers (re-reads every partition's tail).
pub const CLEAN_SHUTDOWN_FILE: &str = "@clean-shutdown";
/// Names these files had before they took the `@`: read (when they are files) and removed by the
/// next writer. A directory of such a name is a topic.
const LEGACY_CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
const LEGACY_LOCK_FILE: &str = ".lock";

/// True when the last writer closed the directory cleanly.
fn clean_marker_present(storage: &dyn Storage, dir: &Path) -> bool {
    storage.is_file(&dir.join(CLEAN_SHUTDOWN_FILE))
        || storage.is_file(&dir.join(LEGACY_CLEAN_SHUTDOWN_FILE))
}

/// Removes the file `name` from `dir` if there is one (a directory of that name is a topic).
pub(crate) fn remove_file_if_present(storage: &dyn Storage, dir: &Path, name: &str) -> Result<()> {
    let path = dir.join(name);
    if storage.is_file(&path) {
        storage.remove_file(&path).at(&path)?;
    }
    Ok(())
}

/// A topic's name and settings, in its directory.
const TOPIC_META_FILE: &str = "topic.json";
/// Longest topic name (Kafka's limit).
pub(crate) const TOPIC_NAME_BYTES_MAX: usize = 249;

/// When an append returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Acks {
    /// At once: the producer does not wait for the append.
    None,
    /// Once appended to the log (in the page cache).
    #[default]
    Leader,
    /// Once fsynced, by a group commit.
    All,
}

impl std::str::FromStr for Acks {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" | "0" => Ok(Acks::None),
            "leader" | "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            _ => Err(Error::config(
                "acks",
                format!("must be none, leader or all, got '{s}'"),
            )),
        }
    }
}

/// What a reader may see of transactional data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Committed records only, never past the last stable offset.
    #[default]
    ReadCommitted,
    /// Everything up to the high watermark.
    ReadUncommitted,
}

impl std::str::FromStr for IsolationLevel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "read_committed" => Ok(IsolationLevel::ReadCommitted),
            "read_uncommitted" => Ok(IsolationLevel::ReadUncommitted),
            _ => Err(Error::config(
                "isolation",
                format!("must be read_committed or read_uncommitted, got '{s}'"),
            )),
        }
    }
}

/// What `describe_topic` reports per partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionDescription {
    /// The partition's number within its topic.
    pub partition: i32,
    /// First offset still held (retention and compaction move it on).
    pub log_start_offset: i64,
    /// Next offset to be written.
    pub high_watermark: i64,
    /// Segment files, the active one included.
    pub segments: usize,
    /// Bytes of its segment files on disk.
    pub size_bytes: u64,
    /// Last stable offset: below it every transaction is decided.
    pub last_stable_offset: i64,
    /// Open transactions: (producer id, first offset in this partition).
    pub open_transactions: Vec<(i64, i64)>,
}

/// What a fetch returns.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Whole batches from the asked offset on (the first may begin earlier).
    pub batches: Vec<Batch>,
    /// At read_committed: aborted transactions overlapping the batches, whose records to skip.
    pub aborted: Vec<AbortedTxn>,
    /// Next offset to be written.
    pub high_watermark: i64,
    /// Below it, every transaction is decided.
    pub last_stable_offset: i64,
}

/// A topic's settings and partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicDescription {
    /// The topic's name.
    pub name: String,
    /// The settings it was created with.
    pub config: TopicConfig,
    /// One entry per partition, in partition order.
    pub partitions: Vec<PartitionDescription>,
}

/// Checks the transactional batches the store is asked to append: the transaction coordinator
/// implements it, so that every append (the producers', the offset store's) is fenced the same
/// way without the store knowing the coordinator.
pub(crate) trait TransactionalWriteCheck: Send + Sync {
    /// Runs `append` when producer `producer_id` at `epoch` may write a transactional batch to
    /// `partition` now (its ongoing transaction registered it, durably), and keeps the
    /// transaction from ending until `append` returns; otherwise refuses without running it.
    fn append_transactional(
        &self,
        producer_id: i64,
        epoch: i16,
        partition: &TopicPartition,
        append: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()>;
}

/// The topics of one data directory. See the module docs.
pub(crate) struct TopicStore {
    dir: PathBuf,
    config: Arc<LogConfig>,
    /// The storage and the clock every part of the log uses.
    options: LogOptions,
    writable: bool,
    /// The writer's lock file, held until close (or until the store goes).
    lock: Mutex<Option<Box<dyn StorageFile>>>,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    flusher: Option<Flusher>,
    truncations: Arc<Mutex<Vec<Truncation>>>,
    data_version: AtomicU64,
    data_waiters: AtomicUsize,
    data_lock: Mutex<()>,
    data_cv: Condvar,
    closed: AtomicBool,
    /// Held weakly: the coordinator holds the store.
    write_check: OnceLock<Weak<dyn TransactionalWriteCheck>>,
    /// Partition directories being cleaned, so that two cleaner rounds (the background one and
    /// `clean_once` calls) never work on one partition at once: they would share its work
    /// directory and race on the swap. Keyed by directory, so a topic deleted and created again
    /// under the same name is still one partition here.
    cleaning: Mutex<Vec<PathBuf>>,
    cleaning_done: Condvar,
}

/// Holds one partition for a cleaner round until dropped ([`TopicStore::lock_for_cleaning`]).
pub(crate) struct CleaningGuard<'a> {
    store: &'a TopicStore,
    dir: PathBuf,
}

impl Drop for CleaningGuard<'_> {
    fn drop(&mut self) {
        lock_ignoring_poison(&self.store.cleaning).retain(|d| *d != self.dir);
        self.store.cleaning_done.notify_all();
    }
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Serialize, Deserialize)]
struct TopicMeta {
    name: String,
    config: TopicConfig,
    /// Absent in metadata written before configs could change: nothing to remember then.
    #[serde(default)]
    history: ConfigHistory,
}

/// A topic's settings and its partitions, each opened on first use: opening a data directory
/// costs a read of each topic's metadata, not a file descriptor and two index mappings per
/// segment of every partition (10,000 partitions took 12 s to open for one record's produce).
pub(crate) struct Topic {
    name: String,
    dir: PathBuf,
    data_dir: PathBuf,
    /// Shared with its partitions, so that an altered config reaches them all at once.
    config: Arc<LiveTopicConfig>,
    log_config: Arc<LogConfig>,
    options: LogOptions,
    writable: bool,
    /// The last writer closed cleanly (so a partition may be opened late: nothing to recover).
    clean: bool,
    partitions: Vec<OnceLock<Arc<Partition>>>,
    /// Held while a partition opens, so that two callers never open it twice.
    opening: Mutex<()>,
    /// Where what recovery cut off goes (the log's report).
    recovery_report: Arc<Mutex<Vec<Truncation>>>,
}

impl Topic {
    /// Partition `id`, opened now if this is its first use; `None` when the topic has no such
    /// partition.
    fn partition(&self, id: i32) -> Result<Option<Arc<Partition>>> {
        let Some(slot) = usize::try_from(id)
            .ok()
            .and_then(|i| self.partitions.get(i))
        else {
            return Ok(None);
        };
        if let Some(p) = slot.get() {
            return Ok(Some(p.clone()));
        }
        let _opening = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = slot.get() {
            return Ok(Some(p.clone()));
        }
        // A reader may meet a last batch mid-append while a writer runs: the writer removes the
        // clean-shutdown marker when it opens, and leaves it when it closes.
        let data_dir = &self.data_dir;
        let storage = &*self.options.storage;
        let tail_may_grow = || !clean_marker_present(storage, data_dir);
        let (part, mut cut) = Partition::open(
            &self.dir.join(id.to_string()),
            &self.name,
            id,
            self.config.clone(),
            self.log_config.clone(),
            &self.options,
            OpenMode {
                writable: self.writable,
                clean: self.clean,
                tail_may_grow: &tail_may_grow,
            },
        )?;
        self.recovery_report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(&mut cut);
        let part = Arc::new(part);
        let _ = slot.set(part.clone());
        Ok(Some(part))
    }

    /// Every partition, opening those not yet open.
    fn open_all(&self) -> Result<Vec<Arc<Partition>>> {
        (0..self.config.get().partitions)
            .filter_map(|p| self.partition(p).transpose())
            .collect()
    }

    /// The partitions opened so far.
    fn opened(&self) -> impl Iterator<Item = &Arc<Partition>> {
        self.partitions.iter().filter_map(OnceLock::get)
    }
}

/// Writes a topic's metadata file in `topic_dir`, atomically.
fn write_topic_meta(
    storage: &dyn Storage,
    topic_dir: &Path,
    name: &str,
    config: &TopicConfig,
    history: ConfigHistory,
) -> Result<()> {
    let meta = TopicMeta {
        name: name.to_string(),
        config: config.clone(),
        history,
    };
    let bytes = serde_json::to_vec_pretty(&meta).map_err(|e| Error::Internal(e.to_string()))?;
    util::write_atomically(storage, &topic_dir.join(TOPIC_META_FILE), &bytes)
}

/// Refuses a change of what a topic fixes at creation: its partition count (keys would move
/// to other partitions), and its schema and value format (records already written were
/// encoded under them; readers would decode them with the new ones).
fn check_alterable(current: &TopicConfig, new: &TopicConfig) -> Result<()> {
    let fixed = |field: &str, what: String| {
        Err(Error::config(
            field,
            format!("fixed at the topic's creation ({what}); create a new topic instead"),
        ))
    };
    if new.partitions != current.partitions {
        return fixed(
            "partitions",
            format!(
                "{} asked, the topic has {}",
                new.partitions, current.partitions
            ),
        );
    }
    if new.schema != current.schema {
        return fixed("schema", "records already written follow it".into());
    }
    if new.format != current.format {
        return fixed(
            "format",
            format!("records already written are {}", current.format),
        );
    }
    Ok(())
}

/// Checks a topic name: 1 to 249 of `[A-Za-z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= TOPIC_NAME_BYTES_MAX
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            "topic",
            format!(
                "'{name}' is not a valid topic name (1-{TOPIC_NAME_BYTES_MAX} of A-Z a-z 0-9 . _ -)"
            ),
        ))
    }
}

fn take_lock(storage: &dyn Storage, dir: &Path) -> Result<Box<dyn StorageFile>> {
    let path = dir.join(LOCK_FILE);
    // A handle of this very process may be in its last moments on a background thread (which
    // briefly holds the log while it works): wait for it, boundedly, rather than fail.
    let own_wait_until = std::time::Instant::now() + Duration::from_secs(5);
    let file = loop {
        if let Some(file) = storage.try_lock(&path).at(&path)? {
            break file;
        }
        let holder: Option<u32> = storage
            .read(&path)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.trim().parse().ok());
        if holder == Some(std::process::id()) && std::time::Instant::now() < own_wait_until {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        return Err(Error::Locked {
            dir: dir.to_path_buf(),
            holder,
        });
    };
    file.set_len(0).at(&path)?;
    file.write_all_at(std::process::id().to_string().as_bytes(), 0)
        .at(&path)?;
    file.sync_all().at(&path)?;
    Ok(file)
}

impl TopicStore {
    /// Opens `dir` for writing: takes the lock, loads every topic's metadata and, after an
    /// unclean stop, opens (recovers) every partition now, before anything is appended or the
    /// next clean shutdown vouches for files nobody re-read.
    pub(crate) fn open_writer(
        dir: &Path,
        config: Arc<LogConfig>,
        options: LogOptions,
    ) -> Result<TopicStore> {
        let storage = &*options.storage;
        let created = !storage.is_dir(dir);
        storage.create_dir_all(dir).at(dir)?;
        if created {
            // A data directory made here survives a crash only once its parent is synced. Best
            // effort: a parent this process may not open is no reason to refuse the log.
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
            let _ = storage.sync_dir(parent.unwrap_or(Path::new(".")));
        }
        let lock = take_lock(storage, dir)?;
        let clean = clean_marker_present(storage, dir);
        let truncations = Arc::new(Mutex::new(Vec::new()));
        let topics = Self::load_topics(dir, &config, &options, true, clean, &truncations)?;
        if clean {
            remove_file_if_present(storage, dir, CLEAN_SHUTDOWN_FILE)?;
            remove_file_if_present(storage, dir, LEGACY_CLEAN_SHUTDOWN_FILE)?;
            util::sync_dir(storage, dir)?;
        } else {
            for t in topics.values() {
                t.open_all()?;
            }
        }
        remove_file_if_present(storage, dir, LEGACY_LOCK_FILE)?;
        let mut store = TopicStore::new(
            dir.to_path_buf(),
            config,
            options.clone(),
            topics,
            truncations,
        );
        store.writable = true;
        store.lock = Mutex::new(Some(lock));
        store.flusher = Some(Flusher::start()?);
        Ok(store)
    }

    /// Opens `dir` read-only: no lock, no recovery, nothing written. Reads follow the writer.
    pub(crate) fn open_read_only(dir: &Path) -> Result<TopicStore> {
        let options = LogOptions::default();
        if !options.storage.is_dir(dir) {
            return Err(Error::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such data directory"),
            ));
        }
        let config = Arc::new(LogConfig::default());
        let report = Arc::new(Mutex::new(Vec::new()));
        let topics = Self::load_topics(dir, &config, &options, false, true, &report)?;
        Ok(TopicStore::new(
            dir.to_path_buf(),
            config,
            options,
            topics,
            report,
        ))
    }

    fn new(
        dir: PathBuf,
        config: Arc<LogConfig>,
        options: LogOptions,
        topics: BTreeMap<String, Arc<Topic>>,
        truncations: Arc<Mutex<Vec<Truncation>>>,
    ) -> TopicStore {
        TopicStore {
            dir,
            config,
            options,
            writable: false,
            lock: Mutex::new(None),
            topics: RwLock::new(topics),
            flusher: None,
            truncations,
            data_version: AtomicU64::new(0),
            data_waiters: AtomicUsize::new(0),
            data_lock: Mutex::new(()),
            data_cv: Condvar::new(),
            closed: AtomicBool::new(false),
            write_check: OnceLock::new(),
            cleaning: Mutex::new(Vec::new()),
            cleaning_done: Condvar::new(),
        }
    }

    /// Makes every later transactional append pass `check` first. Set once, by the log, right
    /// after its transaction coordinator loads.
    pub(crate) fn set_transactional_write_check(&self, check: Weak<dyn TransactionalWriteCheck>) {
        let _ = self.write_check.set(check);
    }

    /// The data directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The storage the log's files live on.
    pub(crate) fn storage(&self) -> &dyn Storage {
        &*self.options.storage
    }

    /// The storage, to keep.
    pub(crate) fn storage_arc(&self) -> &Arc<dyn Storage> {
        &self.options.storage
    }

    /// The clock every part of the log reads.
    pub(crate) fn clock(&self) -> &Arc<dyn crate::Clock> {
        &self.options.clock
    }

    /// True for a store from [`TopicStore::open_writer`].
    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    /// True once [`TopicStore::mark_closed`] ran: every write fails with [`Error::Closed`].
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Refuses writes from now on; false when it was closed already.
    pub(crate) fn mark_closed(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    /// Every partition opened so far.
    pub(crate) fn opened_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics_read()
            .values()
            .flat_map(|t| t.opened().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Waits until no other cleaner round works on the partition in `dir`, then holds it.
    pub(crate) fn lock_for_cleaning(&self, dir: &Path) -> CleaningGuard<'_> {
        let mut busy = lock_ignoring_poison(&self.cleaning);
        while busy.iter().any(|d| d == dir) {
            busy = self
                .cleaning_done
                .wait(busy)
                .unwrap_or_else(|e| e.into_inner());
        }
        busy.push(dir.to_path_buf());
        CleaningGuard {
            store: self,
            dir: dir.to_path_buf(),
        }
    }
    fn load_topic(
        dir: &Path,
        name: &str,
        config: &Arc<LogConfig>,
        options: &LogOptions,
        writable: bool,
        clean: bool,
        report: &Arc<Mutex<Vec<Truncation>>>,
    ) -> Result<Option<Topic>> {
        let topic_dir = dir.join(name);
        let meta_path = topic_dir.join(TOPIC_META_FILE);
        let Ok(bytes) = options.storage.read(&meta_path) else {
            return Ok(None); // not (yet) a complete topic
        };
        let corrupt = |reason: String| Error::Corrupt {
            segment: meta_path.clone(),
            position: 0,
            offset: -1,
            reason,
        };
        let meta: TopicMeta =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("topic metadata: {e}")))?;
        // Metadata that `create_topic` would refuse hides data (`partitions: 0` showed an
        // empty topic): it is damage, not a topic.
        meta.config
            .validate()
            .map_err(|e| corrupt(format!("topic metadata: {e}")))?;
        Ok(Some(Self::new_topic(
            dir,
            name,
            LiveTopicConfig::new(meta.config, meta.history),
            config,
            options,
            writable,
            clean,
            report,
        )))
    }

    // Each argument is one thing a topic takes from its store; a struct of them would only
    // rename the list.
    #[allow(clippy::too_many_arguments)]
    fn new_topic(
        dir: &Path,
        name: &str,
        config: LiveTopicConfig,
        log_config: &Arc<LogConfig>,
        options: &LogOptions,
        writable: bool,
        clean: bool,
        report: &Arc<Mutex<Vec<Truncation>>>,
    ) -> Topic {
        Topic {
            name: name.to_string(),
            dir: dir.join(name),
            data_dir: dir.to_path_buf(),
            partitions: (0..config.get().partitions)
                .map(|_| OnceLock::new())
                .collect(),
            config: Arc::new(config),
            log_config: log_config.clone(),
            options: options.clone(),
            writable,
            clean,
            opening: Mutex::new(()),
            recovery_report: report.clone(),
        }
    }

    fn load_topics(
        dir: &Path,
        config: &Arc<LogConfig>,
        options: &LogOptions,
        writable: bool,
        clean: bool,
        report: &Arc<Mutex<Vec<Truncation>>>,
    ) -> Result<BTreeMap<String, Arc<Topic>>> {
        let mut topics = BTreeMap::new();
        for entry in options.storage.read_dir(dir).at(dir)? {
            let name = entry.name;
            if !entry.is_dir || validate_topic_name(&name).is_err() {
                continue;
            }
            if let Some(t) = Self::load_topic(dir, &name, config, options, writable, clean, report)?
            {
                topics.insert(name, Arc::new(t));
            }
        }
        Ok(topics)
    }

    fn topics_read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    fn topics_write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.write().unwrap_or_else(|e| e.into_inner())
    }

    /// What recovery cut off: at open after an unclean stop, and whenever a partition, opened
    /// on first use, was found damaged.
    pub(crate) fn recovery_report(&self) -> Vec<Truncation> {
        lock_ignoring_poison(&self.truncations).clone()
    }

    /// Fails with [`Error::ReadOnly`] (saying what could not be done) on a read-only store and
    /// with [`Error::Closed`] once closed.
    pub(crate) fn check_writable(&self, what: &str) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly(format!("cannot {what}")));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Creates a topic.
    pub(crate) fn create_topic(&self, name: &str, config: TopicConfig) -> Result<()> {
        self.check_writable("create a topic")?;
        validate_topic_name(name)?;
        config.validate()?;
        let mut topics = self.topics_write();
        if topics.contains_key(name) {
            return Err(Error::TopicExists(name.to_string()));
        }
        let topic_dir = self.dir.join(name);
        let storage = self.storage();
        if storage.exists(&topic_dir) {
            // An incomplete creation (no metadata): start over.
            storage.remove_dir_all(&topic_dir).at(&topic_dir)?;
        }
        let config = LiveTopicConfig::new(config, ConfigHistory::default());
        let created = (|| {
            storage.create_dir_all(&topic_dir).at(&topic_dir)?;
            // Partition directories only: each partition makes its first segment when first
            // used. Nothing in them needs to be durable before the metadata is: a partition
            // directory found empty starts empty.
            for p in 0..config.get().partitions {
                let pdir = topic_dir.join(p.to_string());
                storage.create_dir(&pdir).at(&pdir)?;
            }
            util::sync_dir(storage, &topic_dir)?;
            write_topic_meta(storage, &topic_dir, name, &config.get(), config.history())?;
            util::sync_dir(storage, &self.dir)
        })();
        if let Err(e) = created {
            // Taken back: a topic whose directory is not known to be durable (a failed fsync
            // of the data directory) would be found whole by the next open without a crash,
            // and then vanish, with everything acknowledged in it, at the next crash (found
            // by the simulation: the offsets topic, lost with every committed offset).
            let _ = storage.remove_dir_all(&topic_dir);
            let _ = util::sync_dir(storage, &self.dir);
            return Err(e);
        }
        let topic = Self::new_topic(
            &self.dir,
            name,
            config,
            &self.config,
            &self.options,
            true,
            true,
            &self.truncations,
        );
        topics.insert(name.to_string(), Arc::new(topic));
        Ok(())
    }

    /// Deletes a topic and its data (the log forgets its committed offsets first).
    pub(crate) fn delete_topic(&self, name: &str) -> Result<()> {
        self.check_writable("delete a topic")?;
        let removed = self.topics_write().remove(name);
        if removed.is_none() {
            return Err(Error::UnknownTopic(name.to_string()));
        }
        let topic_dir = self.dir.join(name);
        // Metadata first, so that a crash midway leaves an incomplete topic that open ignores.
        let meta = topic_dir.join(TOPIC_META_FILE);
        let storage = self.storage();
        storage.remove_file(&meta).at(&meta)?;
        util::sync_dir(storage, &topic_dir)?;
        storage.remove_dir_all(&topic_dir).at(&topic_dir)?;
        util::sync_dir(storage, &self.dir)
    }

    /// True when the store knows topic `name` (without looking for new ones on disk).
    pub(crate) fn contains_topic(&self, name: &str) -> bool {
        self.topics_read().contains_key(name)
    }

    /// Picks up topics another process created (read-only handles).
    fn refresh_topic(&self, name: &str) -> Result<Option<Arc<Topic>>> {
        if self.writable || validate_topic_name(name).is_err() {
            return Ok(None);
        }
        let Some(t) = Self::load_topic(
            &self.dir,
            name,
            &self.config,
            &self.options,
            false,
            true,
            &self.truncations,
        )?
        else {
            return Ok(None);
        };
        let t = Arc::new(t);
        self.topics_write().insert(name.to_string(), t.clone());
        Ok(Some(t))
    }

    pub(crate) fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        if let Some(t) = self.topics_read().get(name) {
            return Ok(t.clone());
        }
        self.refresh_topic(name)?
            .ok_or_else(|| Error::UnknownTopic(name.to_string()))
    }

    pub(crate) fn partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>> {
        self.topic(topic)?
            .partition(partition)?
            .ok_or_else(|| Error::UnknownPartition {
                topic: topic.to_string(),
                partition,
            })
    }

    /// Names of every topic, internal ones (`__…`) included, sorted.
    pub(crate) fn topic_names(&self) -> Vec<String> {
        if !self.writable {
            // Pick up topics created since we opened.
            if let Ok(rd) = self.storage().read_dir(&self.dir) {
                for e in rd {
                    let known = self.topics_read().contains_key(&e.name);
                    if !known {
                        let _ = self.refresh_topic(&e.name);
                    }
                }
            }
        }
        self.topics_read().keys().cloned().collect()
    }

    /// A topic's settings.
    pub(crate) fn topic_config(&self, name: &str) -> Result<TopicConfig> {
        Ok((*self.topic(name)?.config.get()).clone())
    }

    /// Number of partitions of a topic.
    pub(crate) fn partition_count(&self, name: &str) -> Result<i32> {
        Ok(self.topic(name)?.config.get().partitions)
    }

    /// Replaces a topic's settings: validated as at creation, durable in its metadata, then
    /// applied to its partitions. The partition count, schema and value format are fixed at
    /// creation ([`Error::Config`] naming the field).
    /// What [`TopicStore::alter_topic_config`] checks, without changing anything.
    pub(crate) fn check_topic_config_change(&self, name: &str, config: &TopicConfig) -> Result<()> {
        self.check_writable("alter a topic's config")?;
        config.validate()?;
        check_alterable(&self.topic(name)?.config.get(), config)
    }

    pub(crate) fn alter_topic_config(&self, name: &str, config: TopicConfig) -> Result<()> {
        self.check_writable("alter a topic's config")?;
        config.validate()?;
        // Held while the metadata is written: alters, creations and deletions go one at a time.
        let topics = self.topics_write();
        let topic = topics
            .get(name)
            .ok_or_else(|| Error::UnknownTopic(name.to_string()))?;
        let current = topic.config.get();
        check_alterable(&current, &config)?;
        if *current == config {
            return Ok(());
        }
        let history = topic.config.history().with(&config);
        write_topic_meta(self.storage(), &topic.dir, name, &config, history)?;
        topic.config.replace(config);
        Ok(())
    }

    /// A topic's settings and per-partition offsets and sizes.
    pub(crate) fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let t = self.topic(name)?;
        let config = t.config.get();
        let mut partitions = Vec::with_capacity(config.partitions as usize);
        for p in &t.open_all()? {
            p.refresh()?;
            partitions.push(PartitionDescription {
                partition: p.id,
                log_start_offset: p.log_start_offset(),
                high_watermark: p.high_watermark(),
                segments: p.segments_snapshot().len(),
                size_bytes: p.size_bytes(),
                last_stable_offset: p.last_stable_offset(),
                open_transactions: p.open_transactions(),
            });
        }
        Ok(TopicDescription {
            name: name.to_string(),
            config: (*config).clone(),
            partitions,
        })
    }

    /// Appends one encoded RecordBatch v2 (see [`crate::format::BatchBuilder`]) and returns its
    /// offsets once `acks` is met. The log assigns the offsets, checks the CRC, size limits and,
    /// for idempotent producers, the sequence.
    pub(crate) fn append(
        &self,
        topic: &str,
        partition: i32,
        batch: Vec<u8>,
        acks: Acks,
    ) -> Result<AppendInfo> {
        let (info, round) = self.append_deferred(topic, partition, batch, acks)?;
        if let Some(round) = round {
            self.wait_durable(round)?;
        }
        Ok(info)
    }

    /// Appends without waiting for the fsync: with acks=all, returns the group-commit round to
    /// pass to [`TopicStore::wait_durable`] (so a producer can keep several batches in flight).
    pub(crate) fn append_deferred(
        &self,
        topic: &str,
        partition: i32,
        batch: Vec<u8>,
        acks: Acks,
    ) -> Result<(AppendInfo, Option<u64>)> {
        self.check_writable("append")?;
        let part = self.partition(topic, partition)?;
        let (info, seg) = match crate::format::BatchHeader::parse(
            batch
                .get(..crate::format::BATCH_HEADER_BYTES)
                .unwrap_or(&[]),
        ) {
            Ok(h) if h.is_transactional() => {
                // A transactional write is accepted only once its partition is registered,
                // durably, in the producer's ongoing transaction at this epoch, and the
                // transaction cannot end while it is written.
                let check = self
                    .write_check
                    .get()
                    .and_then(Weak::upgrade)
                    .ok_or_else(|| Error::Internal("no transaction coordinator".into()))?;
                let mut batch = Some(batch);
                let mut appended = None;
                check.append_transactional(
                    h.producer_id,
                    h.producer_epoch,
                    &TopicPartition::new(topic, partition),
                    &mut || {
                        let batch = batch.take().ok_or_else(|| {
                            Error::Internal("a transactional batch appended twice".into())
                        })?;
                        appended = Some(part.append(batch)?);
                        Ok(())
                    },
                )?;
                appended.ok_or_else(|| {
                    Error::Internal("the transaction check neither refused nor appended".into())
                })?
            }
            _ => part.append(batch)?,
        };
        let flusher = self.flusher.as_ref().ok_or(Error::Closed)?;
        part.schedule_roll_flushes(flusher);
        if !info.duplicate {
            self.notify_data();
        }
        let round = match (acks, seg) {
            (Acks::All, Some(seg)) => Some(flusher.request(&seg)),
            // A duplicate's original may still be in flight: wait for whatever is outstanding.
            (Acks::All, None) => part.segments_snapshot().last().map(|s| flusher.request(s)),
            _ => None,
        };
        Ok((info, round))
    }

    /// Requests one group-commit round covering the active segments of these partitions (what
    /// was appended to them so far); returns the round to wait for.
    pub(crate) fn request_durable(&self, partitions: &[TopicPartition]) -> Result<u64> {
        let mut segments = Vec::with_capacity(partitions.len());
        for tp in partitions {
            let part = self.partition(tp.topic(), tp.partition())?;
            if let Some(seg) = part.segments_snapshot().last() {
                segments.push(seg.clone());
            }
        }
        Ok(self
            .flusher
            .as_ref()
            .ok_or(Error::Closed)?
            .request_all(&segments))
    }

    /// Waits until a group-commit round from [`TopicStore::append_deferred`] is durable.
    pub(crate) fn wait_durable(&self, round: u64) -> Result<()> {
        self.flusher.as_ref().ok_or(Error::Closed)?.wait(round)
    }

    /// True once a group-commit round is durable (or failed); never blocks.
    pub(crate) fn is_durable(&self, round: u64) -> bool {
        self.flusher.as_ref().is_none_or(|f| f.is_done(round))
    }

    fn notify_data(&self) {
        self.data_version.fetch_add(1, Ordering::AcqRel);
        if self.data_waiters.load(Ordering::Acquire) > 0 {
            let _g = self.data_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.data_cv.notify_all();
        }
    }

    /// A counter that moves on every append; pass it to [`TopicStore::wait_for_data`].
    pub(crate) fn data_version(&self) -> u64 {
        self.data_version.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` for an append after `seen` (in this process; read-only handles
    /// simply sleep a little, then the caller re-reads).
    pub(crate) fn wait_for_data(&self, seen: u64, timeout: Duration) {
        if !self.writable {
            std::thread::sleep(timeout.min(Duration::from_millis(10)));
            return;
        }
        self.data_waiters.fetch_add(1, Ordering::AcqRel);
        let g = self.data_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.data_version() == seen {
            let _ = self.data_cv.wait_timeout(g, timeout);
        }
        self.data_waiters.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whole batches from `offset` on (the first may begin earlier), about `max_bytes` of them but
    /// at least one when any is available; empty at the high watermark. Batches are not yet
    /// CRC-checked: readers call [`Batch::verify_crc`].
    pub(crate) fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Batch>> {
        self.partition(topic, partition)?
            .read(offset, max_bytes, i64::MAX)
    }

    /// Like [`TopicStore::fetch`], at an isolation level, reading into `buf` (whose allocation
    /// is reused once the batches of earlier fetches are dropped): `ReadCommitted` stops at the
    /// last stable offset and lists the aborted transactions whose records the reader must skip.
    pub(crate) fn fetch_isolated_with(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        isolation: IsolationLevel,
        buf: &mut bytes::BytesMut,
    ) -> Result<Fetched> {
        let p = self.partition(topic, partition)?;
        let committed = isolation == IsolationLevel::ReadCommitted;
        if !p.is_writable() && offset >= p.last_stable_offset().min(p.high_watermark()) {
            p.refresh()?;
        }
        let lso = p.last_stable_offset();
        let limit = if committed { lso } else { i64::MAX };
        let batches = p.read_with(offset, max_bytes, limit, buf)?;
        let aborted = match (committed, batches.last()) {
            (true, Some(last)) => p.aborted_in(offset, last.header().last_offset() + 1),
            _ => Vec::new(),
        };
        Ok(Fetched {
            batches,
            aborted,
            high_watermark: p.high_watermark(),
            last_stable_offset: lso,
        })
    }

    /// Writes a transaction marker (the coordinator's part) and returns its group-commit round.
    pub(crate) fn append_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        kind: crate::format::ControlType,
    ) -> Result<u64> {
        self.check_writable("write a transaction marker")?;
        let part = self.partition(topic, partition)?;
        let (_, seg) = part.append_marker(producer_id, epoch, kind, 0)?;
        let flusher = self.flusher.as_ref().ok_or(Error::Closed)?;
        part.schedule_roll_flushes(flusher);
        self.notify_data();
        Ok(flusher.request(&seg))
    }

    /// (log start offset, high watermark) of a partition.
    pub(crate) fn offsets(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        let p = self.partition(topic, partition)?;
        p.refresh()?;
        Ok((p.log_start_offset(), p.high_watermark()))
    }

    /// The earliest offset whose timestamp is ≥ `timestamp` (through the time index), or `None`
    /// if every record is older.
    pub(crate) fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<Option<i64>> {
        self.partition(topic, partition)?
            .offset_for_timestamp(timestamp)
    }

    /// Kafka's DeleteRecords on one partition; see [`crate::Log::delete_records`].
    pub(crate) fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        before_offset: i64,
    ) -> Result<i64> {
        self.check_writable("delete records")?;
        self.partition(topic, partition)?
            .delete_records(before_offset)
    }

    /// Removes every record at or after `offset` (down to a batch boundary); returns the new end.
    /// An administrative operation: producers writing meanwhile see their offsets vanish.
    pub(crate) fn truncate_to(&self, topic: &str, partition: i32, offset: i64) -> Result<i64> {
        self.check_writable("truncate")?;
        self.partition(topic, partition)?.truncate_to(offset)
    }

    /// (partition, producer id, its epoch there) of every open transaction.
    pub(crate) fn open_transactions_everywhere(&self) -> Vec<(TopicPartition, i64, i16)> {
        // Only the partitions open: after an unclean stop that is every one (a crash is what
        // leaves orphans); after a clean one, the coordinator finished or knows every
        // transaction still open.
        let mut out = Vec::new();
        for p in self.opened_partitions() {
            for (pid, _) in p.open_transactions() {
                let epoch = p.producer_epoch(pid).unwrap_or(0);
                out.push((TopicPartition::new(p.topic.as_str(), p.id), pid, epoch));
            }
        }
        out
    }

    /// Every partition of every topic, opening those not yet open (the cleaner's round).
    pub(crate) fn all_partitions(&self) -> Result<Vec<Arc<Partition>>> {
        let topics: Vec<Arc<Topic>> = self.topics_read().values().cloned().collect();
        let mut out = Vec::new();
        for t in topics {
            out.extend(t.open_all()?);
        }
        Ok(out)
    }

    /// The last step of a clean close (after [`TopicStore::mark_closed`] and once every
    /// background job has stopped): flushes every open partition, writes producer snapshots and
    /// the clean-shutdown marker, and releases the directory.
    pub(crate) fn close_files(&self) -> Result<()> {
        if let Some(f) = &self.flusher {
            f.shutdown();
        }
        let topics: Vec<Arc<Topic>> = self.topics_read().values().cloned().collect();
        for t in topics {
            // A partition never opened has nothing new to flush.
            for p in t.opened() {
                p.close()?;
            }
        }
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        self.storage()
            .open(&marker, OpenHow::Truncate)
            .and_then(|f| f.sync_all())
            .at(&marker)?;
        util::sync_dir(self.storage(), &self.dir)?;
        // Release the directory even while handles on the log live on.
        lock_ignoring_poison(&self.lock).take();
        Ok(())
    }
}
