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
