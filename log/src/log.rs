//! The handle on one data directory: topics, the writer lock, recovery on open, group commit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{LogConfig, TopicConfig};
use crate::error::IoContext;
use crate::flusher::Flusher;
use crate::format::Batch;
use crate::offset_store::{CommittedOffset, Groups, PartitionLag};
use crate::options::LogOptions;
use crate::partition::{AppendInfo, OpenMode, Partition};
use crate::segment::Truncation;
use crate::storage::{OpenHow, Storage, StorageFile};
use crate::txn::coordinator::TxnCoordinator;
use crate::{Error, Result, util};

// The log's own files are named with `@`, which no topic name may hold: topics and these never
// share a name (a topic called `producer-ids` once broke every writer).
const LOCK_FILE: &str = "@lock";
/// The marker file a clean shutdown leaves in the data directory; without it, the next open
/// recovers (re-reads every partition's tail).
pub const CLEAN_SHUTDOWN_FILE: &str = "@clean-shutdown";
const PRODUCER_IDS_FILE: &str = "@producer-ids";
/// Names these files had before they took the `@`: read (when they are files) and removed by the
/// next writer. A directory of such a name is a topic.
const LEGACY_CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
const LEGACY_PRODUCER_IDS_FILE: &str = "producer-ids";
const LEGACY_LOCK_FILE: &str = ".lock";

/// True when the last writer closed the directory cleanly.
fn clean_marker_present(storage: &dyn Storage, dir: &Path) -> bool {
    storage.is_file(&dir.join(CLEAN_SHUTDOWN_FILE))
        || storage.is_file(&dir.join(LEGACY_CLEAN_SHUTDOWN_FILE))
}

/// Removes the file `name` from `dir` if there is one (a directory of that name is a topic).
fn remove_file_if_present(storage: &dyn Storage, dir: &Path, name: &str) -> Result<()> {
    let path = dir.join(name);
    if storage.is_file(&path) {
        storage.remove_file(&path).at(&path)?;
    }
    Ok(())
}
const TOPIC_META_FILE: &str = "topic.json";
/// Where the writer publishes group membership for other processes.
/// (`@` cannot appear in a topic name, so this directory is never taken for a topic.)
const GROUPS_DIR: &str = "@groups";
/// Longest hex-encoded group name used whole as a file name (with `.json`, under 255 bytes).
const GROUP_FILE_HEX_MAX: usize = 240;

#[derive(Serialize, Deserialize)]
struct PublishedGroup {
    pid: u32,
    published_ms: i64,
    description: crate::group::GroupDescription,
}
/// Producer ids are handed out from blocks persisted ahead of use, so `init_producer_id` costs
/// an fsync only once per block.
const PRODUCER_ID_BLOCK: i64 = 1000;
/// Longest topic name (Kafka's limit).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

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

/// What `describe_group` reports.
#[derive(Debug, Clone)]
pub struct GroupInfo {
    /// Group name.
    pub name: String,
    /// Members, generation and state: live from this process's coordinator, or as the writer
    /// process last published them (see `membership_published`).
    pub membership: Option<crate::group::GroupDescription>,
    /// When `membership` comes from the writer's published file: (its pid, ms since the epoch).
    pub membership_published: Option<(u32, i64)>,
    /// Committed offsets and lag per partition.
    pub offsets: Vec<PartitionLag>,
}

/// What `describe_topic` reports per partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionDescription {
    /// Partition number.
    pub partition: i32,
    /// First offset held.
    pub log_start_offset: i64,
    /// Next offset to be written.
    pub high_watermark: i64,
    /// Number of segments.
    pub segments: usize,
    /// Bytes on disk.
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
    pub aborted: Vec<crate::AbortedTxn>,
    /// Next offset to be written.
    pub high_watermark: i64,
    /// Below it, every transaction is decided.
    pub last_stable_offset: i64,
}

/// A topic's settings and partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Its settings.
    pub config: TopicConfig,
    /// One entry per partition.
    pub partitions: Vec<PartitionDescription>,
}

#[derive(Serialize, Deserialize)]
struct TopicMeta {
    name: String,
    config: TopicConfig,
}

/// A topic's settings and its partitions, each opened on first use: opening a data directory
/// costs a read of each topic's metadata, not a file descriptor and two index mappings per
/// segment of every partition (10,000 partitions took 12 s to open for one record's produce).
pub(crate) struct Topic {
    name: String,
    dir: PathBuf,
    data_dir: PathBuf,
    pub(crate) config: Arc<TopicConfig>,
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
        (0..self.config.partitions)
            .filter_map(|p| self.partition(p).transpose())
            .collect()
    }

    /// The partitions opened so far.
    fn opened(&self) -> impl Iterator<Item = &Arc<Partition>> {
        self.partitions.iter().filter_map(OnceLock::get)
    }
}

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) config: Arc<LogConfig>,
    pub(crate) writable: bool,
    pub(crate) options: LogOptions,
    lock: Mutex<Option<Box<dyn StorageFile>>>,
    pub(crate) topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    flusher: Option<Flusher>,
    producer_ids: Mutex<(i64, i64)>,
    truncations: Arc<Mutex<Vec<Truncation>>>,
    data_version: AtomicU64,
    data_waiters: AtomicUsize,
    data_lock: Mutex<()>,
    data_cv: Condvar,
    closed: AtomicBool,
    groups: std::sync::OnceLock<Arc<Groups>>,
    cleaner: Mutex<Option<crate::cleaner::Cleaner>>,
    txn: std::sync::OnceLock<Arc<TxnCoordinator>>,
    txn_timer: Mutex<Option<Ticker>>,
}

/// A background thread that runs a task every interval until stopped.
struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(
        name: &str,
        interval: Duration,
        mut task: impl FnMut() -> bool + Send + 'static,
    ) -> Result<Ticker> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let (lock, cv) = &*s;
                let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    // With the flag checked under the lock first: a stop that came before this
                    // thread first waited would otherwise cost a whole interval (a `close` right
                    // after `open` took a second).
                    stopped = cv
                        .wait_timeout_while(stopped, interval, |stopped| !*stopped)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    if !task() {
                        return;
                    }
                    stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                }
            })
            .map_err(|e| Error::Internal(format!("spawning {name}: {e}")))?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }

    fn stop(&mut self) {
        *self.stop.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.stop.1.notify_all();
        if let Some(t) = self.thread.take()
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Inner {
    /// A read-only handle's state; `Log::open` adds the writer's parts.
    fn new(
        dir: PathBuf,
        config: Arc<LogConfig>,
        options: LogOptions,
        topics: BTreeMap<String, Arc<Topic>>,
        truncations: Arc<Mutex<Vec<Truncation>>>,
    ) -> Inner {
        Inner {
            dir,
            config,
            writable: false,
            options,
            lock: Mutex::new(None),
            topics: RwLock::new(topics),
            flusher: None,
            producer_ids: Mutex::new((0, 0)),
            truncations,
            data_version: AtomicU64::new(0),
            data_waiters: AtomicUsize::new(0),
            data_lock: Mutex::new(()),
            data_cv: Condvar::new(),
            closed: AtomicBool::new(false),
            groups: std::sync::OnceLock::new(),
            cleaner: Mutex::new(None),
            txn: std::sync::OnceLock::new(),
            txn_timer: Mutex::new(None),
        }
    }
}

/// An open data directory. Cheap to clone; every clone is the same log.
///
/// One process at a time opens a directory for writing ([`Log::open`], guarded by a lock file);
/// any number may open it read-only ([`Log::open_read_only`]) and follow what the writer appends.
#[derive(Clone)]
pub struct Log {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.inner.dir)
            .field("writable", &self.inner.writable)
            .finish()
    }
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

impl Log {
    /// Opens `dir` for writing, creating it if needed. After an unclean stop, the tail of every
    /// partition is re-read and checked; see [`Log::recovery_report`].
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        Self::open_with(dir, config, LogOptions::default())
    }

    /// [`Log::open`] on the storage and clock in `options` (a test's fault-injecting storage,
    /// say) instead of the local file system and the system clock.
    pub fn open_with(dir: impl AsRef<Path>, config: LogConfig, options: LogOptions) -> Result<Log> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let storage = &*options.storage;
        let created = !storage.is_dir(&dir);
        storage.create_dir_all(&dir).at(&dir)?;
        if created {
            // A data directory made here survives a crash only once its parent is synced. Best
            // effort: a parent this process may not open is no reason to refuse the log.
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
            let _ = storage.sync_dir(parent.unwrap_or(Path::new(".")));
        }
        let lock = take_lock(storage, &dir)?;
        let clean = clean_marker_present(storage, &dir);
        let config = Arc::new(config);
        let truncations = Arc::new(Mutex::new(Vec::new()));
        let topics = Self::load_topics(&dir, &config, &options, true, clean, &truncations)?;
        if clean {
            remove_file_if_present(storage, &dir, CLEAN_SHUTDOWN_FILE)?;
            remove_file_if_present(storage, &dir, LEGACY_CLEAN_SHUTDOWN_FILE)?;
            util::sync_dir(storage, &dir)?;
        } else {
            // After an unclean stop every partition is checked now, before anything is
            // appended or the next clean shutdown vouches for files nobody re-read.
            for t in topics.values() {
                t.open_all()?;
            }
        }
        // The allocator's file says where the next block starts. It may be lost or stale: ids are
        // never handed out twice, so start past every id the partitions have seen too (a reused
        // id would make the new producer's batches look like retries of the old one's).
        let persisted = [PRODUCER_IDS_FILE, LEGACY_PRODUCER_IDS_FILE]
            .iter()
            .filter(|name| storage.is_file(&dir.join(name)))
            .filter_map(|name| storage.read(&dir.join(name)).ok())
            .filter_map(|b| String::from_utf8(b).ok())
            .filter_map(|s| s.trim().parse::<i64>().ok())
            .max();
        if persisted.is_none() {
            // Lost or unreadable: the partitions' producer state is all there is to go by.
            for t in topics.values() {
                t.open_all()?;
            }
        }
        let seen = topics
            .values()
            .flat_map(|t| t.opened())
            .map(|p| p.max_producer_id())
            .max()
            .unwrap_or(-1);
        let next_pid = persisted.unwrap_or(0).max(seen + 1);
        if persisted.is_none() || storage.is_file(&dir.join(LEGACY_PRODUCER_IDS_FILE)) {
            // So that the next open need not read every partition to know where ids start.
            util::write_atomically(
                storage,
                &dir.join(PRODUCER_IDS_FILE),
                next_pid.to_string().as_bytes(),
            )?;
            remove_file_if_present(storage, &dir, LEGACY_PRODUCER_IDS_FILE)?;
        }
        remove_file_if_present(storage, &dir, LEGACY_LOCK_FILE)?;
        let mut inner = Inner::new(dir, config, options.clone(), topics, truncations);
        inner.writable = true;
        inner.lock = Mutex::new(Some(lock));
        inner.flusher = Some(Flusher::start());
        // Ids below the persisted block end may have been handed out before a crash.
        inner.producer_ids = Mutex::new((next_pid, next_pid));
        let log = Log {
            inner: Arc::new(inner),
        };
        // Finish what a crash interrupted before anyone reads: prepared transactions complete,
        // open ones abort.
        let coordinator = Arc::new(TxnCoordinator::load(&log)?);
        // Transactional ids keep their producer id while they have written nothing yet.
        log.raise_producer_ids_above(coordinator.max_producer_id());
        let _ = log.inner.txn.set(coordinator.clone());
        coordinator.abort_orphans(&log)?;
        let weak = Arc::downgrade(&log.inner);
        let interval = Duration::from_millis(log.inner.config.txn_check_interval_ms);
        let timer = Ticker::start("weir-txn-timer", interval, move || {
            let Some(inner) = weak.upgrade() else {
                return false;
            };
            let log = Log { inner };
            if let Ok(c) = log.txn_coordinator()
                && let Err(e) = c.abort_expired(&log, log.clock().now_ms())
            {
                eprintln!("weir: aborting timed-out transactions failed (will retry): {e}");
            }
            true
        })?;
        *log.inner
            .txn_timer
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(timer);
        let cleaner = crate::cleaner::Cleaner::start(&log);
        *log.inner.cleaner.lock().unwrap_or_else(|e| e.into_inner()) = Some(cleaner);
        Ok(log)
    }

    /// Opens `dir` read-only: no lock, no recovery, nothing written. Reads follow the writer.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Log> {
        let dir = dir.as_ref().to_path_buf();
        let options = LogOptions::default();
        if !options.storage.is_dir(&dir) {
            return Err(Error::io(
                &dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such data directory"),
            ));
        }
        let config = Arc::new(LogConfig::default());
        let report = Arc::new(Mutex::new(Vec::new()));
        let topics = Self::load_topics(&dir, &config, &options, false, true, &report)?;
        Ok(Log {
            inner: Arc::new(Inner::new(dir, config, options, topics, report)),
        })
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
            meta.config,
            config,
            options,
            writable,
            clean,
            report,
        )))
    }

    fn new_topic(
        dir: &Path,
        name: &str,
        config: TopicConfig,
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
            partitions: (0..config.partitions).map(|_| OnceLock::new()).collect(),
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
        self.inner.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    fn topics_write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.inner.topics.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The log's configuration.
    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    /// The storage the log's files live on.
    pub(crate) fn storage(&self) -> &dyn Storage {
        &*self.inner.options.storage
    }

    /// The clock the log reads.
    pub(crate) fn clock(&self) -> &Arc<dyn crate::Clock> {
        &self.inner.options.clock
    }

    /// True for a handle from [`Log::open`].
    pub fn is_writable(&self) -> bool {
        self.inner.writable
    }

    /// What recovery cut off: when this handle opened the log after an unclean stop, and when a
    /// partition, opened on first use, was found damaged.
    pub fn recovery_report(&self) -> Vec<Truncation> {
        self.inner
            .truncations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn check_writable(&self, what: &str) -> Result<()> {
        if !self.inner.writable {
            return Err(Error::ReadOnly(format!("cannot {what}")));
        }
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Creates a topic.
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<()> {
        self.check_writable("create a topic")?;
        validate_topic_name(name)?;
        config.validate()?;
        let mut topics = self.topics_write();
        if topics.contains_key(name) {
            return Err(Error::TopicExists(name.to_string()));
        }
        let topic_dir = self.inner.dir.join(name);
        let storage = self.storage();
        if storage.exists(&topic_dir) {
            // An incomplete creation (no metadata): start over.
            storage.remove_dir_all(&topic_dir).at(&topic_dir)?;
        }
        storage.create_dir_all(&topic_dir).at(&topic_dir)?;
        // Partition directories only: each partition makes its first segment when first used.
        // Nothing in them needs to be durable before the metadata is: a partition directory
        // found empty starts empty.
        for p in 0..config.partitions {
            let pdir = topic_dir.join(p.to_string());
            storage.create_dir(&pdir).at(&pdir)?;
        }
        util::sync_dir(storage, &topic_dir)?;
        let meta = TopicMeta {
            name: name.to_string(),
            config: config.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&meta).map_err(|e| Error::Internal(e.to_string()))?;
        util::write_atomically(storage, &topic_dir.join(TOPIC_META_FILE), &bytes)?;
        util::sync_dir(storage, &self.inner.dir)?;
        let topic = Self::new_topic(
            &self.inner.dir,
            name,
            config,
            &self.inner.config,
            &self.inner.options,
            true,
            true,
            &self.inner.truncations,
        );
        topics.insert(name.to_string(), Arc::new(topic));
        Ok(())
    }

    /// Deletes a topic, its data and every group's committed offsets for it.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        self.check_writable("delete a topic")?;
        if !self.topics_read().contains_key(name) {
            return Err(Error::UnknownTopic(name.to_string()));
        }
        // Offsets first: a crash midway must not leave them to a topic created again later
        // (its consumers would skip its first records).
        if name != crate::offset_store::OFFSETS_TOPIC
            && self
                .topic_config(crate::offset_store::OFFSETS_TOPIC)
                .is_ok()
        {
            self.groups()?.forget_topic(self, name)?;
        }
        let removed = self.topics_write().remove(name);
        if removed.is_none() {
            return Err(Error::UnknownTopic(name.to_string()));
        }
        let topic_dir = self.inner.dir.join(name);
        // Metadata first, so that a crash midway leaves an incomplete topic that open ignores.
        let meta = topic_dir.join(TOPIC_META_FILE);
        let storage = self.storage();
        storage.remove_file(&meta).at(&meta)?;
        util::sync_dir(storage, &topic_dir)?;
        storage.remove_dir_all(&topic_dir).at(&topic_dir)?;
        util::sync_dir(storage, &self.inner.dir)
    }

    /// Picks up topics another process created (read-only handles).
    fn refresh_topic(&self, name: &str) -> Result<Option<Arc<Topic>>> {
        if self.inner.writable || validate_topic_name(name).is_err() {
            return Ok(None);
        }
        let Some(t) = Self::load_topic(
            &self.inner.dir,
            name,
            &self.inner.config,
            &self.inner.options,
            false,
            true,
            &self.inner.truncations,
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
    pub fn topic_names(&self) -> Vec<String> {
        if !self.inner.writable {
            // Pick up topics created since we opened.
            if let Ok(rd) = self.storage().read_dir(&self.inner.dir) {
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
    pub fn topic_config(&self, name: &str) -> Result<TopicConfig> {
        Ok((*self.topic(name)?.config).clone())
    }

    /// Number of partitions of a topic.
    pub fn partition_count(&self, name: &str) -> Result<i32> {
        Ok(self.topic(name)?.config.partitions)
    }

    /// A topic's settings and per-partition offsets and sizes.
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let t = self.topic(name)?;
        let mut partitions = Vec::with_capacity(t.config.partitions as usize);
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
            config: (*t.config).clone(),
            partitions,
        })
    }

    /// Appends one encoded RecordBatch v2 (see [`crate::format::BatchBuilder`]) and returns its
    /// offsets once `acks` is met. The log assigns the offsets, checks the CRC, size limits and,
    /// for idempotent producers, the sequence.
    pub fn append(
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
    /// pass to [`Log::wait_durable`] (so a producer can keep several batches in flight).
    pub fn append_deferred(
        &self,
        topic: &str,
        partition: i32,
        batch: Vec<u8>,
        acks: Acks,
    ) -> Result<(AppendInfo, Option<u64>)> {
        self.check_writable("append")?;
        let part = self.partition(topic, partition)?;
        if let Ok(h) = crate::format::BatchHeader::parse(
            batch
                .get(..crate::format::BATCH_HEADER_BYTES)
                .unwrap_or(&[]),
        ) && h.is_transactional()
        {
            // A transactional write is accepted only once its partition is registered, durably,
            // in the producer's ongoing transaction at this epoch.
            self.txn_coordinator()?.verify_write(
                h.producer_id,
                h.producer_epoch,
                topic,
                partition,
            )?;
        }
        let (info, seg) = part.append(batch)?;
        let flusher = self.inner.flusher.as_ref().ok_or(Error::Closed)?;
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
    pub(crate) fn request_durable(&self, partitions: &[(String, i32)]) -> Result<u64> {
        let mut segments = Vec::with_capacity(partitions.len());
        for (t, p) in partitions {
            let part = self.partition(t, *p)?;
            if let Some(seg) = part.segments_snapshot().last() {
                segments.push(seg.clone());
            }
        }
        Ok(self
            .inner
            .flusher
            .as_ref()
            .ok_or(Error::Closed)?
            .request_all(&segments))
    }

    /// Waits until a group-commit round from [`Log::append_deferred`] is durable.
    pub fn wait_durable(&self, round: u64) -> Result<()> {
        self.inner
            .flusher
            .as_ref()
            .ok_or(Error::Closed)?
            .wait(round)
    }

    /// True once a group-commit round is durable (or failed); never blocks.
    pub fn is_durable(&self, round: u64) -> bool {
        self.inner.flusher.as_ref().is_none_or(|f| f.is_done(round))
    }

    fn notify_data(&self) {
        self.inner.data_version.fetch_add(1, Ordering::AcqRel);
        if self.inner.data_waiters.load(Ordering::Acquire) > 0 {
            let _g = self
                .inner
                .data_lock
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.inner.data_cv.notify_all();
        }
    }

    /// A counter that moves on every append; pass it to [`Log::wait_for_data`].
    pub fn data_version(&self) -> u64 {
        self.inner.data_version.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` for an append after `seen` (in this process; read-only handles
    /// simply sleep a little, then the caller re-reads).
    pub fn wait_for_data(&self, seen: u64, timeout: Duration) {
        if !self.inner.writable {
            std::thread::sleep(timeout.min(Duration::from_millis(10)));
            return;
        }
        self.inner.data_waiters.fetch_add(1, Ordering::AcqRel);
        let g = self
            .inner
            .data_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if self.data_version() == seen {
            let _ = self.inner.data_cv.wait_timeout(g, timeout);
        }
        self.inner.data_waiters.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whole batches from `offset` on (the first may begin earlier), about `max_bytes` of them but
    /// at least one when any is available; empty at the high watermark. Batches are not yet
    /// CRC-checked: readers call [`Batch::verify_crc`].
    pub fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Batch>> {
        self.partition(topic, partition)?
            .read(offset, max_bytes, i64::MAX)
    }

    /// Like [`Log::fetch`], at an isolation level: `ReadCommitted` stops at the last stable
    /// offset and lists the aborted transactions whose records the reader must skip (the
    /// [`crate::Consumer`] does this).
    pub fn fetch_isolated(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        isolation: crate::IsolationLevel,
    ) -> Result<Fetched> {
        self.fetch_isolated_with(
            topic,
            partition,
            offset,
            max_bytes,
            isolation,
            &mut bytes::BytesMut::new(),
        )
    }

    /// [`Log::fetch_isolated`] reading into `buf`, whose allocation is reused once the batches
    /// of earlier fetches are dropped (a consumer keeps one).
    pub fn fetch_isolated_with(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        isolation: crate::IsolationLevel,
        buf: &mut bytes::BytesMut,
    ) -> Result<Fetched> {
        let p = self.partition(topic, partition)?;
        let committed = isolation == crate::IsolationLevel::ReadCommitted;
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
        let flusher = self.inner.flusher.as_ref().ok_or(Error::Closed)?;
        part.schedule_roll_flushes(flusher);
        self.notify_data();
        Ok(flusher.request(&seg))
    }

    /// (log start offset, high watermark) of a partition.
    pub fn offsets(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        let p = self.partition(topic, partition)?;
        p.refresh()?;
        Ok((p.log_start_offset(), p.high_watermark()))
    }

    /// The earliest offset whose timestamp is ≥ `timestamp` (through the time index), or `None`
    /// if every record is older.
    pub fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<Option<i64>> {
        self.partition(topic, partition)?
            .offset_for_timestamp(timestamp)
    }

    /// Removes every record at or after `offset` (down to a batch boundary); returns the new end.
    /// An administrative operation: producers writing meanwhile see their offsets vanish.
    pub fn truncate_to(&self, topic: &str, partition: i32, offset: i64) -> Result<i64> {
        self.check_writable("truncate")?;
        self.partition(topic, partition)?.truncate_to(offset)
    }

    /// A fresh producer id (epoch 0) for an idempotent producer.
    pub fn init_producer_id(&self) -> Result<(i64, i16)> {
        self.check_writable("allocate a producer id")?;
        let mut ids = self
            .inner
            .producer_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if ids.0 == ids.1 {
            let end = ids.1 + PRODUCER_ID_BLOCK;
            util::write_atomically(
                self.storage(),
                &self.inner.dir.join(PRODUCER_IDS_FILE),
                end.to_string().as_bytes(),
            )?;
            ids.1 = end;
        }
        let id = ids.0;
        ids.0 += 1;
        Ok((id, 0))
    }

    /// Makes the allocator hand out ids above `producer_id` only.
    fn raise_producer_ids_above(&self, producer_id: i64) {
        let mut ids = self
            .inner
            .producer_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if ids.0 <= producer_id {
            // Both ends: the next allocation persists a fresh block from here.
            *ids = (producer_id + 1, producer_id + 1);
        }
    }

    /// Flushes every partition, writes producer snapshots and the clean-shutdown marker, and
    /// releases the directory. Later calls on any clone fail with [`Error::Closed`].
    pub fn close(&self) -> Result<()> {
        if !self.inner.writable || self.inner.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        // Record completed transactions once their markers are durable, so the next open has
        // nothing to finish.
        if let Some(c) = self.inner.txn.get() {
            c.settle_all(self, true)?;
        }
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(mut t) = self
            .inner
            .txn_timer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            t.stop();
        }
        // The cleaner first: it may be mid-swap, holding partition locks.
        if let Some(c) = self
            .inner
            .cleaner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            c.stop();
        }
        if let Some(f) = &self.inner.flusher {
            f.shutdown();
        }
        let topics: Vec<Arc<Topic>> = self.topics_read().values().cloned().collect();
        for t in topics {
            // A partition never opened has nothing new to flush.
            for p in t.opened() {
                p.close()?;
            }
        }
        let marker = self.inner.dir.join(CLEAN_SHUTDOWN_FILE);
        self.storage()
            .open(&marker, OpenHow::Truncate)
            .and_then(|f| f.sync_all())
            .at(&marker)?;
        util::sync_dir(self.storage(), &self.inner.dir)?;
        // Release the directory even while clones of this handle live on.
        self.inner
            .lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        Ok(())
    }

    pub(crate) fn txn_coordinator(&self) -> Result<Arc<TxnCoordinator>> {
        self.check_writable("use transactions")?;
        self.inner
            .txn
            .get()
            .cloned()
            .ok_or_else(|| Error::Internal("no transaction coordinator".into()))
    }

    /// Every transactional id the coordinator knows, with its state (writer handles only).
    pub fn transactions(&self) -> Vec<crate::txn::TxnDescription> {
        self.inner
            .txn
            .get()
            .map(|c| c.describe())
            .unwrap_or_default()
    }

    /// Aborts every transaction open longer than its timeout, now (the background timer does
    /// this every `txn_check_interval_ms`); returns how many.
    pub fn abort_expired_transactions(&self) -> Result<usize> {
        self.txn_coordinator()?
            .abort_expired(self, self.clock().now_ms())
    }

    /// (topic, partition, producer id, its epoch there) of every open transaction.
    pub(crate) fn open_transactions_everywhere(&self) -> Vec<(String, i32, i64, i16)> {
        // Only the partitions open: after an unclean stop that is every one (a crash is what
        // leaves orphans); after a clean one, the coordinator finished or knows every
        // transaction still open.
        let opened: Vec<Arc<Partition>> = self
            .topics_read()
            .values()
            .flat_map(|t| t.opened().cloned().collect::<Vec<_>>())
            .collect();
        let mut out = Vec::new();
        for p in opened {
            for (pid, _) in p.open_transactions() {
                let epoch = p.producer_epoch(pid).unwrap_or(0);
                out.push((p.topic.clone(), p.id, pid, epoch));
            }
        }
        out
    }

    pub(crate) fn ensure_groups(&self) -> Result<()> {
        self.groups().map(|_| ())
    }

    pub(crate) fn commit_offsets_in_txn(
        &self,
        producer_id: i64,
        epoch: i16,
        group: &str,
        member: Option<(&str, i32)>,
        offsets: &[(String, i32, i64)],
    ) -> Result<Option<(i64, Option<u64>)>> {
        self.groups()?
            .commit_in_txn(self, producer_id, epoch, group, member, offsets)
    }

    pub(crate) fn complete_txn_offsets(&self, producer_id: i64, commit: bool) -> Result<()> {
        self.groups()?.complete_txn(producer_id, commit);
        Ok(())
    }

    /// Groups: the coordinator and committed offsets (loaded on first use).
    pub(crate) fn groups(&self) -> Result<Arc<Groups>> {
        if let Some(g) = self.inner.groups.get() {
            return Ok(g.clone());
        }
        let g = Arc::new(Groups::load(self)?);
        Ok(self.inner.groups.get_or_init(|| g).clone())
    }

    /// The offset `group` committed for a partition, if any.
    pub fn committed_offset(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>> {
        Ok(self
            .groups()?
            .committed(group, topic, partition)
            .map(|c| c.offset))
    }

    /// Commits offsets for `group`. With `member` (member id, generation) the commit is fenced:
    /// refused unless that member holds the group's current generation. Without, it is a manual
    /// commit, refused while the group has active members.
    pub fn commit_offsets(
        &self,
        group: &str,
        member: Option<(&str, i32)>,
        offsets: &[(String, i32, i64)],
    ) -> Result<()> {
        self.check_writable("commit offsets")?;
        self.groups()?.commit(self, group, member, offsets)
    }

    /// Every group with committed offsets or live members, sorted.
    pub fn list_groups(&self) -> Result<Vec<String>> {
        let g = self.groups()?;
        if !self.inner.writable {
            g.reload(self)?;
        }
        Ok(g.names())
    }

    /// A group's members (those of this process's coordinator), committed offsets and lag.
    pub fn describe_group(&self, group: &str) -> Result<GroupInfo> {
        let g = self.groups()?;
        if !self.inner.writable {
            g.reload(self)?;
        }
        let mut lag = Vec::new();
        for (topic, partition, c) in g.committed_of(group) {
            let hw = self
                .offsets(&topic, partition)
                .map_or(c.offset, |(_, hw)| hw);
            lag.push(PartitionLag {
                topic,
                partition,
                committed: c.offset,
                high_watermark: hw,
                lag: (hw - c.offset).max(0),
            });
        }
        let mut members = g.coordinator.describe(group);
        let mut membership_published = None;
        if members.is_none()
            && let Some(p) = self.read_published_group(group)
        {
            membership_published = Some((p.pid, p.published_ms));
            members = Some(p.description);
        }
        if members.is_none() && lag.is_empty() {
            return Err(Error::Group {
                group: group.to_string(),
                reason: crate::GroupErrorKind::UnknownGroup,
            });
        }
        Ok(GroupInfo {
            name: group.to_string(),
            membership: members,
            membership_published,
            offsets: lag,
        })
    }

    fn group_file(&self, group: &str) -> PathBuf {
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
        self.inner.dir.join(GROUPS_DIR).join(format!("{name}.json"))
    }

    /// Writes the group's membership where other processes (`weir groups describe`) can read
    /// it. Consumers call this when an assignment changes; the writer is the only process
    /// with live membership.
    pub(crate) fn publish_group(&self, group: &str) -> Result<()> {
        if !self.inner.writable {
            return Ok(());
        }
        let Some(description) = self.groups()?.coordinator.describe(group) else {
            return Ok(());
        };
        let dir = self.inner.dir.join(GROUPS_DIR);
        self.storage().create_dir_all(&dir).at(&dir)?;
        let published = PublishedGroup {
            pid: std::process::id(),
            published_ms: self.clock().now_ms(),
            description,
        };
        let bytes =
            serde_json::to_vec_pretty(&published).map_err(|e| Error::Internal(e.to_string()))?;
        util::write_atomically(self.storage(), &self.group_file(group), &bytes)
    }

    fn read_published_group(&self, group: &str) -> Option<PublishedGroup> {
        let p: PublishedGroup =
            serde_json::from_slice(&self.storage().read(&self.group_file(group)).ok()?).ok()?;
        (p.description.group == group).then_some(p)
    }

    /// A committed offset with its metadata.
    pub fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<CommittedOffset>> {
        Ok(self.groups()?.committed(group, topic, partition))
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
}
