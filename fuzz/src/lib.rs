//! What the fuzz targets share: an allocator that turns one oversized allocation into a crash,
//! and the checks each target runs on an input, as plain functions (`fuzz_targets/` holds only
//! the `fuzz_target!` lines).
//!
//! The targets run without a sanitizer (`-s none`): the code under test is safe Rust, and
//! libFuzzer's own allocation limit needs a sanitizer's allocator, so [`Capped`] is the limit
//! instead, with libFuzzer's `-rss_limit_mb` bounding the total.

use std::alloc::{GlobalAlloc, Layout, System};

pub mod record_batch;
pub mod rows;
#[cfg(feature = "sql")]
pub mod sql_planner;

/// The largest single allocation an input may cause. Every target's inputs are bounded by
/// libFuzzer's `-max_len` (4 KiB by default, 1 MiB for requests), so anything near this is an
/// allocation sized by a field the input chose.
pub const ALLOCATION_BYTES_MAX: usize = 256 << 20;

/// The system allocator, aborting (which libFuzzer reports as a crash, with the input) on any
/// single allocation over [`ALLOCATION_BYTES_MAX`].
pub struct Capped;

// SAFETY: every call is passed to `System` unchanged; only the size is checked first.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn check(bytes: usize) {
    if bytes > ALLOCATION_BYTES_MAX {
        // No formatting here: it would allocate inside the allocator.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"weir-fuzz: one allocation over ALLOCATION_BYTES_MAX\n",
        );
        std::process::abort();
    }
}
