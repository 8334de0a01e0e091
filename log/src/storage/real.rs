//! The operating system's files.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use memmap2::{Mmap, MmapMut, MmapOptions};

use super::{DirEntry, IndexMap, OpenHow, Storage, StorageFile};

/// Files on the local file system, through `std::fs`; index files are memory-mapped (shared),
/// so that a reader in another process sees the writer's entries.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealStorage;

impl RealStorage {
    /// The local file system.
    pub fn new() -> Self {
        RealStorage
    }
}

#[derive(Debug)]
struct RealFile(File);

impl StorageFile for RealFile {
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        self.0.read_at(buf, position)
    }

    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()> {
        self.0.write_all_at(buf, position)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
}

enum Map {
    Write(MmapMut),
    Read(Mmap),
}

/// How much of an index file one reservation backs: one `fallocate` per 64 KiB of entries (8,192
/// offset entries, about 32 MiB of batches at the default index interval).
const RESERVE_CHUNK_BYTES: usize = 64 << 10;

struct RealMap {
    map: Map,
    /// The mapped file: a writer reserves blocks in it, a reader asks where its first hole is.
    file: File,
    /// A writer's: bytes from the start known to be backed by blocks.
    reserved: usize,
}

/// Where the first hole of `file` begins (its length when it has none, or when the file system
/// cannot tell).
fn first_hole(file: &File, len: usize) -> usize {
    // SAFETY: a plain system call on a file descriptor the caller owns; it moves only the
    // descriptor's position, which nothing else uses (the file is read through the map).
    let at = unsafe { libc::lseek(std::os::fd::AsRawFd::as_raw_fd(file), 0, libc::SEEK_HOLE) };
    if at < 0 { len } else { (at as usize).min(len) }
}

impl std::fmt::Debug for RealMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealMap").field("len", &self.len()).finish()
    }
}

impl RealMap {
    fn bytes(&self) -> &[u8] {
        match &self.map {
            Map::Write(m) => m,
            Map::Read(m) => m,
        }
    }
}

impl IndexMap for RealMap {
    fn len(&self) -> usize {
        self.bytes().len()
    }

    fn read(&self, position: usize, buf: &mut [u8]) {
        buf.copy_from_slice(&self.bytes()[position..position + buf.len()]);
    }

    fn backed_len(&self) -> usize {
        match self.map {
            Map::Write(_) => self.reserved,
            Map::Read(_) => first_hole(&self.file, self.len()),
        }
    }

    fn reserve(&mut self, end: usize) -> io::Result<()> {
        if matches!(self.map, Map::Read(_)) || end <= self.reserved {
            return Ok(());
        }
        let to = end
            .div_ceil(RESERVE_CHUNK_BYTES)
            .saturating_mul(RESERVE_CHUNK_BYTES)
            .min(self.len())
            .max(end);
        // posix_fallocate, not fallocate: where the file system cannot preallocate, glibc writes
        // a zero into each unallocated block instead (it skips blocks that hold data).
        // SAFETY: a plain system call on a file descriptor this map owns.
        let rc = unsafe {
            libc::posix_fallocate(
                std::os::fd::AsRawFd::as_raw_fd(&self.file),
                self.reserved as libc::off_t,
                (to - self.reserved) as libc::off_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        self.reserved = to;
        Ok(())
    }

    fn write(&mut self, position: usize, bytes: &[u8]) {
        debug_assert!(
            position + bytes.len() <= self.reserved,
            "index bytes written before they were reserved"
        );
        if let Map::Write(m) = &mut self.map {
            m[position..position + bytes.len()].copy_from_slice(bytes);
        }
    }

    fn zero(&mut self, position: usize, len: usize) {
        if let Map::Write(m) = &mut self.map {
            m[position..position + len].fill(0);
        }
    }

    fn flush(&self) -> io::Result<()> {
        match &self.map {
            Map::Write(m) => m.flush(),
            Map::Read(_) => Ok(()),
        }
    }
}

impl Storage for RealStorage {
    fn open(&self, path: &Path, how: OpenHow) -> io::Result<Box<dyn StorageFile>> {
        let mut o = OpenOptions::new();
        o.read(true);
        match how {
            OpenHow::Read => {}
            OpenHow::ReadWrite => {
                o.write(true);
            }
            OpenHow::Create => {
                o.write(true).create(true).truncate(false);
            }
            OpenHow::CreateNew => {
                o.write(true).create_new(true);
            }
            OpenHow::Truncate => {
                o.write(true).create(true).truncate(true);
            }
        }
        Ok(Box::new(RealFile(o.open(path)?)))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            // Names that are not UTF-8 are nothing the log wrote.
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let is_dir = entry.file_type()?.is_dir();
            out.push(DirEntry { name, is_dir });
        }
        Ok(out)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn map_index(
        &self,
        path: &Path,
        len_bytes: u64,
        len_min_bytes: u64,
        writable: bool,
    ) -> io::Result<Option<Box<dyn IndexMap>>> {
        if writable {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            // Only ever grow: a reader in another process may have the file mapped.
            if file.metadata()?.len() < len_bytes {
                file.set_len(len_bytes)?;
            }
            // SAFETY: weir's writer is the only process that writes this file (the data-directory
            // lock), and it never shrinks it while mapped.
            let map = unsafe { MmapOptions::new().map_mut(&file) }?;
            // What an earlier writer wrote is backed; the rest is reserved as entries come.
            let reserved = first_hole(&file, map.len());
            return Ok(Some(Box::new(RealMap {
                map: Map::Write(map),
                file,
                reserved,
            })));
        }
        let file = match File::open(path) {
            Ok(f) => f,
            // Mid-swap by the cleaner (or never written): no entries; lookups scan instead.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if file.metadata()?.len() < len_min_bytes.max(1) {
            return Ok(None);
        }
        // SAFETY: the writer never shrinks index files while the log runs; entries that change
        // under us are validated against the segment before use.
        let map = unsafe { MmapOptions::new().map(&file) }?;
        Ok(Some(Box::new(RealMap {
            map: Map::Read(map),
            file,
            reserved: 0,
        })))
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageFile>>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(RealFile(file)))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}
