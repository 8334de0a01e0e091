//! A file system of a fixed, small size, for tests that fill a disk for real: a tmpfs mounted
//! with `size=` on a fresh temporary directory, unmounted when dropped.
//!
//! Mounting needs root (CAP_SYS_ADMIN), which CI and these machines have; without it
//! [`SmallDisk::mount`] panics with the reason rather than letting a full-disk test pass without
//! having filled a disk.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs of `bytes` bytes. Dropping it unmounts it (lazily, so that a file a test left
/// open cannot keep it mounted) and removes the directory.
#[derive(Debug)]
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` bytes on a new temporary directory.
    pub fn mount(bytes: u64) -> SmallDisk {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes}"),
                "weir-small-disk",
            ])
            .arg(dir.path())
            .output()
            .expect("run mount(8)");
        assert!(
            out.status.success(),
            "mounting a {bytes}-byte tmpfs on {} failed (full-disk tests need root): {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        SmallDisk { dir }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills `name` (under the mount) with `bytes` bytes, to be removed later with
    /// [`SmallDisk::free`]: the space an operator frees when the disk is full.
    pub fn ballast(&self, name: &str, bytes: usize) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, vec![0xA5u8; bytes]).expect("write the ballast file");
        path
    }

    /// Removes a ballast file, freeing its space.
    pub fn free(&self, ballast: &Path) {
        std::fs::remove_file(ballast).expect("remove the ballast file");
    }

    /// Bytes still free on the file system.
    pub fn free_bytes(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.path())
            .output()
            .expect("run df(1)");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df prints the free bytes")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
