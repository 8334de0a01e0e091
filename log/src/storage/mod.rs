//! File operations behind a trait, so that tests can inject faults.
//!
//! Everything the log keeps on disk goes through a [`Storage`]: segment files (`.log`), their
//! indexes (`.index`, `.timeindex`, mapped into memory on real storage), the aborted-transaction
//! index, metadata written atomically (topic metadata, producer snapshots, `@producer-ids`), the
//! clean-shutdown marker and the writer's lock (`@lock`).
//!
//! Two implementations:
//! - [`RealStorage`]: the operating system's files, as fast as calling `std::fs` directly (one
//!   virtual call per system call; indexes are memory-mapped);
//! - [`FaultStorage`] (in [`sim`]): in-memory files with a durable image, driven by a seed. It
//!   fails fsyncs, returns ENOSPC, tears writes and crashes (forgets every byte and directory
//!   change not yet fsynced), so a test can check what the log promises about durability.

mod fault;
mod real;

use std::fmt::Debug;
use std::io;
use std::path::Path;

pub use real::RealStorage;

/// The fault-injecting storage and what drives it. For tests (this crate's and integration
/// tests); not part of the log's stable API.
#[doc(hidden)]
pub mod sim {
    pub use super::fault::{FaultConfig, FaultStorage, Op, OpKind};
}
#[doc(hidden)]
pub use fault::FaultStorage;

/// How [`Storage::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenHow {
    /// An existing file, for reading only.
    Read,
    /// An existing file, for reading and writing.
    ReadWrite,
    /// Read and write, created (empty) if missing, kept as it is otherwise.
    Create,
    /// Read and write, created; an error if the file exists.
    CreateNew,
    /// Read and write, created if missing, emptied otherwise.
    Truncate,
}

impl OpenHow {
    /// True when the handle may write.
    pub fn writes(self) -> bool {
        self != OpenHow::Read
    }
}

/// One name in a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The file or directory name (not the full path).
    pub name: String,
    /// True for a directory.
    pub is_dir: bool,
}

/// The file system as the log uses it. Paths are absolute or relative to the process's
/// working directory, as for `std::fs`. Every call may fail; a crashed [`FaultStorage`] fails
/// them all.
pub trait Storage: Send + Sync + Debug {
    /// Opens (or creates, per `how`) the file at `path`.
    fn open(&self, path: &Path, how: OpenHow) -> io::Result<Box<dyn StorageFile>>;
    /// The whole content of the file at `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The length in bytes of the file at `path`.
    fn file_len(&self, path: &Path) -> io::Result<u64>;
    /// True when `path` names a file (not a directory).
    fn is_file(&self, path: &Path) -> bool;
    /// True when `path` names a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// True when `path` names anything.
    fn exists(&self, path: &Path) -> bool {
        self.is_file(path) || self.is_dir(path)
    }
    /// Creates one directory; its parent must exist.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates a directory and every missing parent.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names in a directory, in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;
    /// Renames a file, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file. Open handles keep working on the unlinked file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything under it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// fsyncs a directory: makes creations, renames and removals of names in it durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Maps an index file into memory. A writer's map (`writable`) creates the file and grows
    /// it (sparse) to at least `len_bytes`, with no blocks reserved ([`IndexMap::reserve`]); a reader's maps what is there, or returns `None`
    /// when the file is missing or shorter than `len_min_bytes` (no entries).
    fn map_index(
        &self,
        path: &Path,
        len_bytes: u64,
        len_min_bytes: u64,
        writable: bool,
    ) -> io::Result<Option<Box<dyn IndexMap>>>;
    /// Opens (creating it if needed) the file at `path` holding an exclusive advisory lock on
    /// it (flock); `None` when another handle holds it. Dropping the handle releases the lock.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageFile>>>;
}

/// An open file.
pub trait StorageFile: Send + Sync + Debug {
    /// Reads into `buf` from `position`; returns the bytes read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `position`, growing the file as needed.
    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// True when the file holds no bytes.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Cuts or extends (with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// fsyncs the file's data (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    /// fsyncs the file's data and metadata.
    fn sync_all(&self) -> io::Result<()>;
}

/// An index file mapped into memory: fixed length, read and written in place.
pub trait IndexMap: Send + Sync + Debug {
    /// The mapped length in bytes.
    fn len(&self) -> usize;
    /// True when nothing is mapped.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies `buf.len()` bytes from `position` into `buf` (the range lies within the map).
    fn read(&self, position: usize, buf: &mut [u8]);
    /// Bytes from the start that are backed by disk blocks: where entries can be. Reading a hole
    /// through a map is a SIGBUS on a full tmpfs (which allocates a page even to read), so
    /// readers of entries look no further.
    fn backed_len(&self) -> usize;
    /// Backs the map's first `end` bytes with disk blocks, so that writing them cannot fault. A
    /// writer's map is of a sparse file: a store to a page without a block on a full disk is a
    /// SIGBUS, not an error, so writers reserve (and get ENOSPC here) before they write.
    fn reserve(&mut self, end: usize) -> io::Result<()>;
    /// Writes `bytes` at `position` (within the map and below what [`IndexMap::reserve`] backed).
    /// Only a writer's map accepts writes.
    fn write(&mut self, position: usize, bytes: &[u8]);
    /// Writes `len` zero bytes from `position`.
    fn zero(&mut self, position: usize, len: usize);
    /// Makes the map's contents durable (msync).
    fn flush(&self) -> io::Result<()>;
}

/// Reads `buf.len()` bytes from `position` unless the file ends first; returns the bytes read.
pub(crate) fn fill_at(file: &dyn StorageFile, buf: &mut [u8], position: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], position + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Removes a file, treating one already gone as removed.
pub(crate) fn remove_if_present(storage: &dyn Storage, path: &Path) -> io::Result<()> {
    match storage.remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
