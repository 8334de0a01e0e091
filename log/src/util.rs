//! Small file-system helpers.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::Result;
use crate::error::IoContext;

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new content: write a
/// temporary file, fsync it, rename it over, fsync the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        // A full disk (or any failure) leaves the old file as it was and no half-written
        // temporary beside it.
        let _ = std::fs::remove_file(&tmp);
        return Err(crate::Error::io(path, e));
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsyncs a directory, making file creations, renames and deletions in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    crate::clock::wall_clock_ms()
}

/// Milliseconds since the Unix epoch from the kernel's coarse clock: a few ns instead of a
/// full clock read, at the cost of resolution (one scheduler tick, 1-4 ms). For record
/// timestamps on the produce path, where a read per record is a tenth of the budget.
pub(crate) fn coarse_now_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_REALTIME_COARSE exists on
    // every Linux since 2.6.32.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 {
        return now_ms();
    }
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}
