//! The server's request path: framing (length prefixes and their limits), header and body
//! decoding for every API and version, and dispatch into a real log in a temporary directory.
//! An input is one connection's byte stream. The log's files live in memory (the fault-injecting
//! storage with no faults), so a run is not bound by the disk. Run (from `fuzz/`):
//! `cargo +nightly fuzz run -s none server_requests corpus/server_requests`
//!
//! Without a sanitizer: the code under test is safe Rust (its only `unsafe`, the mmap of real
//! segment files, is not reached over the in-memory storage), and a run is about twice as fast.
//! libFuzzer's own allocation limit needs a sanitizer's allocator, so the allocator below is the
//! limit instead: one allocation over [`ALLOCATION_BYTES_MAX`] aborts the run as a crash, and
//! libFuzzer's `-rss_limit_mb` bounds the total.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use weir_log::storage::sim::{FaultConfig, FaultStorage};
use weir_log::{Log, LogConfig, LogOptions, SystemClock, TopicConfig};
use weir_server::{RequestHarness, ServerConfig};

/// The largest single allocation a request may cause: the server's request limit in this target
/// is 1 MiB, so anything near this is an allocation sized by a field the client chose.
const ALLOCATION_BYTES_MAX: usize = 256 << 20;

/// The system allocator, refusing (by aborting, which libFuzzer reports as a crash with the
/// input) any single allocation over [`ALLOCATION_BYTES_MAX`].
struct Capped;

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
            b"server_requests: one allocation over ALLOCATION_BYTES_MAX\n",
        );
        std::process::abort();
    }
}

#[global_allocator]
static ALLOCATOR: Capped = Capped;

/// A fresh log every so many inputs, so that topics and records the fuzzer creates do not pile
/// up on disk over millions of runs.
const RUNS_PER_LOG: u32 = 2_000;

struct Fixture {
    harness: RequestHarness,
    log: Log,
    runs: u32,
}

fn fixture() -> Fixture {
    let root = "/weir-fuzz";
    let options = LogOptions {
        storage: Arc::new(FaultStorage::new(root, 0, FaultConfig::default())),
        clock: Arc::new(SystemClock::new()),
    };
    let log = Log::open_with(format!("{root}/data"), LogConfig::default(), options).expect("a log");
    log.create_topic(
        "t",
        TopicConfig {
            partitions: 2,
            ..TopicConfig::default()
        },
    )
    .expect("topic t");
    let config = ServerConfig {
        request_bytes_max: 1 << 20,
        // Nothing waits in a fuzz run: long polls and group rebalances end at once.
        fetch_wait_ms_max: 0,
        group_timeout_ms_max: 20,
        ..ServerConfig::default()
    };
    let harness = RequestHarness::new(log.clone(), config).expect("a harness");
    Fixture {
        harness,
        log,
        runs: 0,
    }
}

thread_local! {
    static FIXTURE: RefCell<Option<Fixture>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    FIXTURE.with(|f| {
        let mut f = f.borrow_mut();
        if f.as_ref().is_none_or(|x| x.runs >= RUNS_PER_LOG) {
            if let Some(old) = f.take() {
                let _ = old.log.close();
            }
            *f = Some(fixture());
        }
        if let Some(x) = f.as_mut() {
            x.runs += 1;
            let _ = x.harness.feed(data);
        }
    });
});
