//! The server's request path: framing (length prefixes and their limits), header and body
//! decoding for every API and version, and dispatch into a real log in a temporary directory.
//! An input is one connection's byte stream. The log's files live in memory (the fault-injecting
//! storage with no faults), so a run is not bound by the disk. Run (from `fuzz/`):
//! `cargo +nightly fuzz run -s none server_requests corpus/server_requests`
//!
//! Without a sanitizer: the code under test is safe Rust (its only `unsafe`, the mmap of real
//! segment files, is not reached over the in-memory storage), and a run is about twice as fast;
//! [`weir_fuzz::Capped`] makes one oversized allocation a crash.
#![no_main]

use std::cell::RefCell;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use weir_log::storage::sim::{FaultConfig, FaultStorage};
use weir_log::{Log, LogConfig, LogOptions, SystemClock, TopicConfig};
use weir_server::{RequestHarness, ServerConfig};

#[global_allocator]
static ALLOCATOR: weir_fuzz::Capped = weir_fuzz::Capped;

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
