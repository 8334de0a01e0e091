//! Small file-system helpers over a [`Storage`].

use std::path::Path;

use crate::Result;
use crate::error::IoContext;
use crate::storage::{OpenHow, Storage};

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new content: write a
/// temporary file, fsync it, rename it over, fsync the directory.
pub(crate) fn write_atomically(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let written = storage
        .open(&tmp, OpenHow::Truncate)
        .and_then(|f| {
            f.write_all_at(bytes, 0)?;
            f.sync_all()
        })
        .and_then(|()| storage.rename(&tmp, path));
    if let Err(e) = written {
        // A full disk (or any failure) leaves the old file as it was and no half-written
        // temporary beside it.
        let _ = storage.remove_file(&tmp);
        return Err(crate::Error::io(path, e));
    }
    if let Some(dir) = path.parent() {
        sync_dir(storage, dir)?;
    }
    Ok(())
}

/// fsyncs a directory, making file creations, renames and deletions in it durable.
pub(crate) fn sync_dir(storage: &dyn Storage, dir: &Path) -> Result<()> {
    storage.sync_dir(dir).at(dir)
}

/// Milliseconds since the Unix epoch, for code that has no [`Clock`](crate::Clock) to ask
/// (a producer's partitioner seed).
pub(crate) fn now_ms() -> i64 {
    crate::clock::wall_clock_ms()
}

/// Bytes of the CRC-32C that [`write_checksummed`] puts before a file's payload.
const CHECKSUM_BYTES: usize = 4;

/// [`write_atomically`] with a CRC-32C (big-endian) of `payload` before it, so that a reader
/// tells a damaged file from a good one ([`read_checksummed`]). For small metadata files whose
/// loss or damage must not pass for a value.
pub(crate) fn write_checksummed(storage: &dyn Storage, path: &Path, payload: &[u8]) -> Result<()> {
    let mut bytes = Vec::with_capacity(CHECKSUM_BYTES + payload.len());
    bytes.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    bytes.extend_from_slice(payload);
    write_atomically(storage, path, &bytes)
}

/// The payload of a file [`write_checksummed`] wrote: `None` when there is no such file,
/// [`crate::Error::Corrupt`] when its checksum does not match.
pub(crate) fn read_checksummed(storage: &dyn Storage, path: &Path) -> Result<Option<Vec<u8>>> {
    if !storage.is_file(path) {
        return Ok(None);
    }
    let bytes = storage.read(path).at(path)?;
    let corrupt = |reason: String| crate::Error::Corrupt {
        segment: path.to_path_buf(),
        position: 0,
        offset: -1,
        reason,
    };
    let Some((stored, payload)) = bytes.split_first_chunk::<CHECKSUM_BYTES>() else {
        return Err(corrupt(format!(
            "{} bytes, too short for its checksum",
            bytes.len()
        )));
    };
    let (stored, actual) = (u32::from_be_bytes(*stored), crc32c::crc32c(payload));
    if stored != actual {
        return Err(corrupt(format!(
            "checksum mismatch: stored {stored:#010x}, computed {actual:#010x}"
        )));
    }
    Ok(Some(payload.to_vec()))
}
