//! In-memory files with a durable image, and faults drawn from a seed.
//!
//! The model is strict POSIX, as a power cut would leave an ext4 or XFS volume:
//! - a file's bytes become durable only when the file is fsynced (`sync_data`, `sync_all`, or an
//!   index map's `flush`); a failed fsync makes nothing durable, and the bytes stay dirty, so a
//!   later fsync that succeeds makes them durable (the lenient reading of "fsyncgate");
//! - a name (a file or directory created, renamed or removed) becomes durable only when its
//!   directory is fsynced ([`Storage::sync_dir`]); the storage's root always exists;
//! - a crash forgets everything else; with `torn_crash`, a random prefix of the bytes appended to
//!   a file since its last fsync survives too (pages that reached the disk on their own).
//!
//! After a crash every call fails (as would every call of the process that crashed), and index
//! maps read zeros and ignore writes. [`FaultStorage::reboot`] starts a new storage on what was
//! durable, for the test to reopen the log on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{DirEntry, IndexMap, OpenHow, Storage, StorageFile};

/// Which faults to inject, and how often (in thousandths of the operations they apply to).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultConfig {
    /// An fsync (of a file, an index map or a directory) fails with EIO, making nothing durable.
    pub fsync_fail_per_mille: u32,
    /// A write fails with ENOSPC before writing anything.
    pub enospc_per_mille: u32,
    /// A write writes a random prefix of its bytes, then fails with EIO.
    pub torn_write_per_mille: u32,
    /// At a crash, a random prefix of each file's bytes appended since its last fsync survives.
    pub torn_crash: bool,
    /// An fsync of a segment (`.log`) file reports success without making anything durable: a
    /// disk that lies (or a bug in a storage layer). For tests that show that a checker catches
    /// acknowledged writes that were lost.
    pub lie_about_segment_fsync: bool,
}

/// What an operation does, for crash triggers ([`FaultStorage::crash_when`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A file opened or created.
    Open,
    /// A write to a file.
    Write,
    /// A file cut or extended.
    SetLen,
    /// A file's (or index map's) fsync.
    SyncFile,
    /// A directory's fsync.
    SyncDir,
    /// A rename.
    Rename,
    /// A file or directory removed.
    Remove,
    /// A directory created.
    CreateDir,
}

/// One operation about to change the storage.
#[derive(Debug, Clone, Copy)]
pub struct Op<'a> {
    /// What it does.
    pub kind: OpKind,
    /// The file or directory (for a rename, the source).
    pub path: &'a Path,
    /// For a write: its position in the file.
    pub position: u64,
    /// For a write: its bytes.
    pub bytes: &'a [u8],
}

type Trigger = Box<dyn Fn(&Op<'_>) -> bool + Send + Sync>;

/// Bytes of a file: `bytes` then zeros up to `len` (index files are large and mostly zero).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Content {
    len: u64,
    bytes: Vec<u8>,
}

impl Content {
    fn read(&self, buf: &mut [u8], position: u64) -> usize {
        if position >= self.len {
            return 0;
        }
        let n = (buf.len() as u64).min(self.len - position) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = self.bytes.get(position as usize + i).copied().unwrap_or(0);
        }
        n
    }

    fn write(&mut self, buf: &[u8], position: u64) {
        let end = position as usize + buf.len();
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[position as usize..end].copy_from_slice(buf);
        self.len = self.len.max(end as u64);
    }

    fn set_len(&mut self, len: u64) {
        self.bytes.truncate(len as usize);
        self.len = len;
    }

    fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len as usize];
        self.read(&mut v, 0);
        v
    }
}

#[derive(Debug, Default)]
struct Inode {
    data: Content,
    durable: Content,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(u64),
    Dir,
}

/// splitmix64: small, fast, and the same on every platform, so a seed replays exactly.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn per_mille(&mut self, p: u32) -> bool {
        p > 0 && self.next() % 1000 < u64::from(p)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

struct State {
    root: PathBuf,
    config: FaultConfig,
    seed: u64,
    /// How many times each (path, decision) was drawn: a fault is drawn from the seed, the path
    /// and that count, so the background threads of a log (the flusher's fsyncs) draw the same
    /// faults whatever order they run in, and a seed replays.
    draws: HashMap<(PathBuf, u8), u64>,
    /// For the random prefixes a crash keeps.
    rng: Rng,
    crashed: bool,
    entries: BTreeMap<PathBuf, Node>,
    durable_entries: BTreeMap<PathBuf, Node>,
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    locks: HashSet<PathBuf>,
    /// Operations that changed (or tried to change) the storage so far.
    ops: u64,
    crash_at_op: Option<u64>,
    crash_when: Option<Trigger>,
    /// Faults injected so far (failed fsyncs, ENOSPC, torn writes).
    faults: u64,
}

struct Shared {
    state: Mutex<State>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaultStorage")
    }
}

/// The fault-injecting storage: in-memory files under one root directory, with a durable image,
/// faults drawn from a seed, and crashes. Clones share the same files.
#[derive(Clone)]
pub struct FaultStorage {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FaultStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("FaultStorage")
            .field("root", &st.root)
            .field("crashed", &st.crashed)
            .field("ops", &st.ops)
            .finish()
    }
}

fn crashed_error() -> io::Error {
    io::Error::other("the storage crashed (simulated); reopen on FaultStorage::reboot")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", path.display()),
    )
}

impl FaultStorage {
    /// An empty storage whose root directory `root` exists (and always will, crashes or not);
    /// every path the log uses must lie under it. Faults are drawn from `seed`.
    pub fn new(root: impl Into<PathBuf>, seed: u64, config: FaultConfig) -> Self {
        FaultStorage {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    root: root.into(),
                    config,
                    seed,
                    draws: HashMap::new(),
                    rng: Rng(seed),
                    crashed: false,
                    entries: BTreeMap::new(),
                    durable_entries: BTreeMap::new(),
                    inodes: HashMap::new(),
                    next_ino: 1,
                    locks: HashSet::new(),
                    ops: 0,
                    crash_at_op: None,
                    crash_when: None,
                    faults: 0,
                }),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes which faults are injected from now on.
    pub fn set_faults(&self, config: FaultConfig) {
        self.lock().config = config;
    }

    /// Operations that changed (or tried to change) the storage so far: writes, fsyncs,
    /// creations, renames, removals.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Faults injected so far (failed fsyncs, ENOSPC, torn writes).
    pub fn faults_injected(&self) -> u64 {
        self.lock().faults
    }

    /// Crashes instead of performing the operation numbered `op` (counted as [`Self::ops`]
    /// counts; the next one is `ops() + 1`).
    pub fn crash_at_op(&self, op: u64) {
        self.lock().crash_at_op = Some(op);
    }

    /// Crashes instead of performing the first operation for which `trigger` holds.
    pub fn crash_when(&self, trigger: impl Fn(&Op<'_>) -> bool + Send + Sync + 'static) {
        self.lock().crash_when = Some(Box::new(trigger));
    }

    /// Crashes now: every later call fails.
    pub fn crash(&self) {
        self.lock().crashed = true;
    }

    /// True once crashed.
    pub fn is_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// The machine restarts: a new storage holding exactly what was durable here (this one
    /// crashes, if it had not). Its faults continue from this one's random sequence, and it
    /// keeps its fault configuration, without crash triggers.
    pub fn reboot(&self) -> FaultStorage {
        self.restart(false)
    }

    /// The process was killed, and the machine goes on: a new storage holding everything
    /// written, fsynced or not (the kernel's page cache outlives a process), with no crash
    /// triggers. Pair it with [`Self::crash_when`] to stop a process between two operations.
    pub fn after_kill(&self) -> FaultStorage {
        self.restart(true)
    }

    fn restart(&self, keep_unsynced: bool) -> FaultStorage {
        let mut st = self.lock();
        st.crashed = true;
        let mut entries = BTreeMap::new();
        let mut inodes = HashMap::new();
        let mut next_ino = 1;
        let names = if keep_unsynced {
            &st.entries
        } else {
            &st.durable_entries
        };
        let durable: Vec<(PathBuf, Node)> = names.iter().map(|(p, n)| (p.clone(), *n)).collect();
        // Sorted by path, so a directory comes before what is in it.
        for (path, node) in durable {
            let parent_ok = path
                .parent()
                .is_some_and(|p| p == st.root || entries.get(p) == Some(&Node::Dir));
            if !parent_ok {
                continue;
            }
            match node {
                Node::Dir => {
                    entries.insert(path, Node::Dir);
                }
                Node::File(ino) => {
                    let (data, durable) = st
                        .inodes
                        .get(&ino)
                        .map(|i| (i.data.clone(), i.durable.clone()))
                        .unwrap_or_default();
                    let mut kept = if keep_unsynced { data.clone() } else { durable };
                    let appended = data.len > kept.len
                        && kept.bytes.len() as u64 == kept.len
                        && data.bytes.starts_with(&kept.bytes);
                    if st.config.torn_crash && appended {
                        let extra = st.rng.below(data.len - kept.len + 1);
                        let mut tail = vec![0; extra as usize];
                        data.read(&mut tail, kept.len);
                        let at = kept.len;
                        kept.write(&tail, at);
                    }
                    inodes.insert(
                        next_ino,
                        Inode {
                            data: kept.clone(),
                            durable: kept,
                        },
                    );
                    entries.insert(path, Node::File(next_ino));
                    next_ino += 1;
                }
            }
        }
        let seed = Rng(st.seed).next();
        let fresh = State {
            root: st.root.clone(),
            config: st.config,
            seed,
            draws: HashMap::new(),
            rng: Rng(seed),
            crashed: false,
            durable_entries: entries.clone(),
            entries,
            inodes,
            next_ino,
            locks: HashSet::new(),
            ops: 0,
            crash_at_op: None,
            crash_when: None,
            faults: 0,
        };
        FaultStorage {
            shared: Arc::new(Shared {
                state: Mutex::new(fresh),
            }),
        }
    }
}

impl State {
    fn alive(&self) -> io::Result<()> {
        if self.crashed {
            Err(crashed_error())
        } else {
            Ok(())
        }
    }

    /// Counts an operation that changes the storage, crashing instead when a trigger says so.
    fn mutate(&mut self, op: Op<'_>) -> io::Result<()> {
        self.alive()?;
        self.ops += 1;
        let at_op = self.crash_at_op == Some(self.ops);
        let when = self.crash_when.as_ref().is_some_and(|t| t(&op));
        if at_op || when {
            self.crashed = true;
            return Err(crashed_error());
        }
        Ok(())
    }

    fn under_root(&self, path: &Path) -> io::Result<()> {
        if path.starts_with(&self.root) && path != self.root {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} lies outside the simulated storage ({})",
                    path.display(),
                    self.root.display()
                ),
            ))
        }
    }

    fn is_dir(&self, path: &Path) -> bool {
        path == self.root || self.entries.get(path) == Some(&Node::Dir)
    }

    fn parent_exists(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if self.is_dir(p) => Ok(()),
            _ => Err(not_found(path)),
        }
    }

    fn file(&self, path: &Path) -> io::Result<u64> {
        match self.entries.get(path) {
            Some(Node::File(ino)) => Ok(*ino),
            Some(Node::Dir) => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{} is a directory", path.display()),
            )),
            None => Err(not_found(path)),
        }
    }

    fn inode(&mut self, ino: u64) -> &mut Inode {
        self.inodes.entry(ino).or_default()
    }

    /// Creates the file at `path` as an open that creates it: the `Open` operation first, so a
    /// fault planned for it strikes before the file exists.
    fn open_creating(&mut self, path: &Path) -> io::Result<u64> {
        self.mutate(Op {
            kind: OpKind::Open,
            path,
            position: 0,
            bytes: &[],
        })?;
        self.create_file(path)
    }

    fn create_file(&mut self, path: &Path) -> io::Result<u64> {
        self.under_root(path)?;
        self.parent_exists(path)?;
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, Inode::default());
        self.entries.insert(path.to_path_buf(), Node::File(ino));
        Ok(ino)
    }

    /// Draws whether to inject a fault of kind `what` (probability `per_mille`) into this
    /// operation on `path`.
    fn draw(&mut self, path: &Path, what: u8, per_mille: u32) -> bool {
        if per_mille == 0 {
            return false;
        }
        let n = self.draws.entry((path.to_path_buf(), what)).or_insert(0);
        *n += 1;
        // FNV-1a of the path: stable across runs and platforms.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in path.as_os_str().as_encoded_bytes() {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut rng = Rng(self.seed ^ h ^ (u64::from(what) << 56) ^ n.wrapping_mul(0x9E37_79B9));
        rng.next();
        rng.per_mille(per_mille)
    }

    fn sync_file(&mut self, ino: u64, path: &Path) -> io::Result<()> {
        self.mutate(Op {
            kind: OpKind::SyncFile,
            path,
            position: 0,
            bytes: &[],
        })?;
        let fail = self.config.fsync_fail_per_mille;
        if self.draw(path, 0, fail) {
            self.faults += 1;
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        if self.config.lie_about_segment_fsync && path.extension().is_some_and(|e| e == "log") {
            return Ok(());
        }
        let inode = self.inode(ino);
        inode.durable = inode.data.clone();
        Ok(())
    }

    fn children(&self, map: &BTreeMap<PathBuf, Node>, dir: &Path) -> Vec<(PathBuf, Node)> {
        map.range(dir.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(dir))
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, n)| (p.clone(), *n))
            .collect()
    }
}

#[derive(Debug)]
struct FaultFile {
    shared: Arc<Shared>,
    ino: u64,
    path: PathBuf,
    writable: bool,
    /// The lock this handle holds, released on drop.
    locked: bool,
}

impl FaultFile {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(libc::EBADF))
        }
    }
}

impl Drop for FaultFile {
    fn drop(&mut self) {
        if self.locked {
            let path = self.path.clone();
            self.lock().locks.remove(&path);
        }
    }
}

impl StorageFile for FaultFile {
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        let mut st = self.lock();
        st.alive()?;
        Ok(st.inode(self.ino).data.read(buf, position))
    }

    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()> {
        self.check_writable()?;
        let mut st = self.lock();
        st.mutate(Op {
            kind: OpKind::Write,
            path: &self.path,
            position,
            bytes: buf,
        })?;
        let config = st.config;
        if st.draw(&self.path, 1, config.enospc_per_mille) {
            st.faults += 1;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        if st.draw(&self.path, 2, config.torn_write_per_mille) {
            st.faults += 1;
            let keep = (Rng(st.seed ^ position).next() % buf.len().max(1) as u64) as usize;
            st.inode(self.ino).data.write(&buf[..keep], position);
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        st.inode(self.ino).data.write(buf, position);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let mut st = self.lock();
        st.alive()?;
        Ok(st.inode(self.ino).data.len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_writable()?;
        let mut st = self.lock();
        st.mutate(Op {
            kind: OpKind::SetLen,
            path: &self.path,
            position: len,
            bytes: &[],
        })?;
        st.inode(self.ino).data.set_len(len);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut st = self.lock();
        st.sync_file(self.ino, &self.path)
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
}

/// An index "map": reads and writes go straight to the in-memory file (the page cache), so
/// they are durable once flushed, like a shared mapping.
#[derive(Debug)]
struct FaultMap {
    file: FaultFile,
    len: usize,
}

impl IndexMap for FaultMap {
    fn len(&self) -> usize {
        self.len
    }

    fn read(&self, position: usize, buf: &mut [u8]) {
        let mut st = self.file.lock();
        if st.crashed {
            buf.fill(0);
            return;
        }
        let n = st.inode(self.file.ino).data.read(buf, position as u64);
        buf[n..].fill(0);
    }

    fn backed_len(&self) -> usize {
        self.len
    }

    fn reserve(&mut self, _end: usize) -> io::Result<()> {
        self.file.check_writable()?;
        let mut st = self.file.lock();
        st.alive()?;
        let config = st.config;
        // Reserving blocks is where a real full disk fails an index: draw ENOSPC as for a write.
        if st.draw(&self.file.path, 5, config.enospc_per_mille) {
            st.faults += 1;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }

    fn write(&mut self, position: usize, bytes: &[u8]) {
        let ino = self.file.ino;
        let mut st = self.file.lock();
        if st.crashed || !self.file.writable {
            return;
        }
        st.inode(ino).data.write(bytes, position as u64);
    }

    fn zero(&mut self, position: usize, len: usize) {
        self.write(position, &vec![0; len]);
    }

    fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

impl FaultStorage {
    fn handle(&self, ino: u64, path: &Path, writable: bool, locked: bool) -> FaultFile {
        FaultFile {
            shared: self.shared.clone(),
            ino,
            path: path.to_path_buf(),
            writable,
            locked,
        }
    }
}

impl Storage for FaultStorage {
    fn open(&self, path: &Path, how: OpenHow) -> io::Result<Box<dyn StorageFile>> {
        let mut st = self.lock();
        st.alive()?;
        let existing = st.file(path);
        let ino = match (how, existing) {
            (OpenHow::Read | OpenHow::ReadWrite, r) => r?,
            (OpenHow::Create, Ok(ino)) => ino,
            (OpenHow::CreateNew, Ok(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists", path.display()),
                ));
            }
            (OpenHow::Truncate, Ok(ino)) => {
                st.mutate(Op {
                    kind: OpKind::SetLen,
                    path,
                    position: 0,
                    bytes: &[],
                })?;
                st.inode(ino).data.set_len(0);
                ino
            }
            (_, Err(e)) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            (_, Err(_)) => st.open_creating(path)?,
        };
        drop(st);
        Ok(Box::new(self.handle(ino, path, how.writes(), false)))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut st = self.lock();
        st.alive()?;
        let ino = st.file(path)?;
        Ok(st.inode(ino).data.to_vec())
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        let mut st = self.lock();
        st.alive()?;
        let ino = st.file(path)?;
        Ok(st.inode(ino).data.len)
    }

    fn is_file(&self, path: &Path) -> bool {
        let st = self.lock();
        !st.crashed && matches!(st.entries.get(path), Some(Node::File(_)))
    }

    fn is_dir(&self, path: &Path) -> bool {
        let st = self.lock();
        !st.crashed && st.is_dir(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.alive()?;
        st.under_root(path)?;
        st.parent_exists(path)?;
        if st.entries.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", path.display()),
            ));
        }
        st.mutate(Op {
            kind: OpKind::CreateDir,
            path,
            position: 0,
            bytes: &[],
        })?;
        st.entries.insert(path.to_path_buf(), Node::Dir);
        Ok(())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        {
            let st = self.lock();
            st.alive()?;
            if st.is_dir(path) {
                return Ok(());
            }
            st.under_root(path)?;
        }
        if let Some(parent) = path.parent() {
            self.create_dir_all(parent)?;
        }
        match self.create_dir(path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && self.is_dir(path) => Ok(()),
            other => other,
        }
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let st = self.lock();
        st.alive()?;
        if !st.is_dir(path) {
            return Err(not_found(path));
        }
        Ok(st
            .children(&st.entries, path)
            .into_iter()
            .filter_map(|(p, n)| {
                Some(DirEntry {
                    name: p.file_name()?.to_str()?.to_string(),
                    is_dir: n == Node::Dir,
                })
            })
            .collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.alive()?;
        st.under_root(to)?;
        let ino = st.file(from)?;
        st.parent_exists(to)?;
        if st.entries.get(to) == Some(&Node::Dir) {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{} is a directory", to.display()),
            ));
        }
        st.mutate(Op {
            kind: OpKind::Rename,
            path: from,
            position: 0,
            bytes: &[],
        })?;
        st.entries.remove(from);
        st.entries.insert(to.to_path_buf(), Node::File(ino));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.alive()?;
        st.file(path)?;
        st.mutate(Op {
            kind: OpKind::Remove,
            path,
            position: 0,
            bytes: &[],
        })?;
        st.entries.remove(path);
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.alive()?;
        st.under_root(path)?;
        if st.entries.get(path) != Some(&Node::Dir) {
            return Err(not_found(path));
        }
        st.mutate(Op {
            kind: OpKind::Remove,
            path,
            position: 0,
            bytes: &[],
        })?;
        let doomed: Vec<PathBuf> = st
            .entries
            .range(path.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(path))
            .map(|(p, _)| p.clone())
            .collect();
        for p in doomed {
            st.entries.remove(&p);
        }
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.alive()?;
        if !st.is_dir(path) {
            return Err(not_found(path));
        }
        st.mutate(Op {
            kind: OpKind::SyncDir,
            path,
            position: 0,
            bytes: &[],
        })?;
        let fail = st.config.fsync_fail_per_mille;
        if st.draw(path, 0, fail) {
            st.faults += 1;
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        for (p, _) in st.children(&st.durable_entries, path) {
            st.durable_entries.remove(&p);
        }
        for (p, n) in st.children(&st.entries, path) {
            st.durable_entries.insert(p, n);
        }
        Ok(())
    }

    fn map_index(
        &self,
        path: &Path,
        len_bytes: u64,
        len_min_bytes: u64,
        writable: bool,
    ) -> io::Result<Option<Box<dyn IndexMap>>> {
        let (ino, len) = {
            let mut st = self.lock();
            st.alive()?;
            let ino = match st.file(path) {
                Ok(ino) => ino,
                Err(e) if e.kind() == io::ErrorKind::NotFound && !writable => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => st.open_creating(path)?,
                Err(e) => return Err(e),
            };
            let len = st.inode(ino).data.len;
            if writable && len < len_bytes {
                st.mutate(Op {
                    kind: OpKind::SetLen,
                    path,
                    position: len_bytes,
                    bytes: &[],
                })?;
                st.inode(ino).data.set_len(len_bytes);
            } else if !writable && len < len_min_bytes.max(1) {
                return Ok(None);
            }
            (ino, st.inode(ino).data.len)
        };
        Ok(Some(Box::new(FaultMap {
            file: self.handle(ino, path, writable, false),
            len: len as usize,
        })))
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageFile>>> {
        let mut st = self.lock();
        st.alive()?;
        if st.locks.contains(path) {
            return Ok(None);
        }
        let ino = match st.file(path) {
            Ok(ino) => ino,
            Err(e) if e.kind() == io::ErrorKind::NotFound => st.open_creating(path)?,
            Err(e) => return Err(e),
        };
        st.locks.insert(path.to_path_buf());
        drop(st);
        Ok(Some(Box::new(self.handle(ino, path, true, true))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        PathBuf::from("/sim")
    }

    #[test]
    fn a_crash_forgets_what_was_not_fsynced() {
        let s = FaultStorage::new(root(), 1, FaultConfig::default());
        let dir = root().join("d");
        s.create_dir(&dir).unwrap();
        s.sync_dir(&root()).unwrap();
        let synced = s.open(&dir.join("a"), OpenHow::CreateNew).unwrap();
        synced.write_all_at(b"durable", 0).unwrap();
        synced.sync_data().unwrap();
        synced.write_all_at(b" and not", 7).unwrap();
        s.sync_dir(&dir).unwrap();
        // Written and fsynced, but its name never was.
        let unnamed = s.open(&dir.join("b"), OpenHow::CreateNew).unwrap();
        unnamed.write_all_at(b"lost", 0).unwrap();
        unnamed.sync_data().unwrap();
        s.crash();
        assert!(
            synced.write_all_at(b"x", 0).is_err(),
            "a crashed storage fails every call"
        );
        let after = s.reboot();
        assert_eq!(after.read(&dir.join("a")).unwrap(), b"durable");
        assert!(!after.exists(&dir.join("b")));
        assert!(
            s.read(&dir.join("a")).is_err(),
            "the old storage stays crashed"
        );
    }

    #[test]
    fn renames_and_removals_are_durable_only_once_the_directory_is_synced() {
        let s = FaultStorage::new(root(), 2, FaultConfig::default());
        let f = s.open(&root().join("old"), OpenHow::CreateNew).unwrap();
        f.write_all_at(b"v1", 0).unwrap();
        f.sync_all().unwrap();
        s.sync_dir(&root()).unwrap();
        s.rename(&root().join("old"), &root().join("new")).unwrap();
        let after = s.reboot();
        assert_eq!(after.read(&root().join("old")).unwrap(), b"v1");
        assert!(!after.exists(&root().join("new")));
        after
            .rename(&root().join("old"), &root().join("new"))
            .unwrap();
        after.sync_dir(&root()).unwrap();
        let again = after.reboot();
        assert_eq!(again.read(&root().join("new")).unwrap(), b"v1");
        assert!(!again.exists(&root().join("old")));
    }

    #[test]
    fn crash_triggers_stop_before_the_operation() {
        let s = FaultStorage::new(root(), 3, FaultConfig::default());
        let f = s.open(&root().join("f"), OpenHow::CreateNew).unwrap();
        s.sync_dir(&root()).unwrap();
        s.crash_when(|op| op.kind == OpKind::Write && op.bytes == b"second");
        f.write_all_at(b"first", 0).unwrap();
        f.sync_data().unwrap();
        assert!(f.write_all_at(b"second", 5).is_err());
        assert!(s.is_crashed());
        assert_eq!(s.reboot().read(&root().join("f")).unwrap(), b"first");
        let t = FaultStorage::new(root(), 3, FaultConfig::default());
        t.crash_at_op(t.ops() + 2);
        t.create_dir(&root().join("a")).unwrap();
        assert!(t.create_dir(&root().join("b")).is_err());
    }

    #[test]
    fn faults_follow_the_seed() {
        let run = |seed| {
            let config = FaultConfig {
                fsync_fail_per_mille: 300,
                enospc_per_mille: 200,
                torn_write_per_mille: 200,
                ..FaultConfig::default()
            };
            let s = FaultStorage::new(root(), seed, config);
            let f = s.open(&root().join("f"), OpenHow::CreateNew).unwrap();
            let outcomes: Vec<bool> = (0..50u64)
                .map(|i| f.write_all_at(&[1; 10], i * 10).is_ok() && f.sync_data().is_ok())
                .collect();
            (outcomes, s.faults_injected())
        };
        assert_eq!(run(7), run(7));
        assert!(run(7).1 > 0);
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn a_lying_fsync_makes_nothing_durable() {
        let config = FaultConfig {
            lie_about_segment_fsync: true,
            ..FaultConfig::default()
        };
        let s = FaultStorage::new(root(), 4, config);
        let seg = s.open(&root().join("0.log"), OpenHow::CreateNew).unwrap();
        let other = s.open(&root().join("meta"), OpenHow::CreateNew).unwrap();
        s.sync_dir(&root()).unwrap();
        for f in [&seg, &other] {
            f.write_all_at(b"acked", 0).unwrap();
            f.sync_data().unwrap();
        }
        let after = s.reboot();
        assert_eq!(after.read(&root().join("0.log")).unwrap(), b"");
        assert_eq!(after.read(&root().join("meta")).unwrap(), b"acked");
    }

    #[test]
    fn index_maps_read_and_write_the_file_and_flush_makes_them_durable() {
        let s = FaultStorage::new(root(), 5, FaultConfig::default());
        let p = root().join("0.index");
        let mut m = s.map_index(&p, 4096, 8, true).unwrap().unwrap();
        s.sync_dir(&root()).unwrap();
        assert_eq!(m.len(), 4096);
        m.write(8, &[9; 8]);
        let ro = s.map_index(&p, 0, 8, false).unwrap().unwrap();
        let mut buf = [0; 8];
        ro.read(8, &mut buf);
        assert_eq!(buf, [9; 8], "a reader's map sees the writer's entries");
        m.flush().unwrap();
        m.write(16, &[7; 8]);
        let after = s.reboot();
        let bytes = after.read(&p).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert_eq!(&bytes[8..16], &[9; 8]);
        assert_eq!(&bytes[16..24], &[0; 8], "not flushed: forgotten");
    }
}
