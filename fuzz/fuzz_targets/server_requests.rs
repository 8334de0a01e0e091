//! The server's request path: framing (length prefixes and their limits), header and body
//! decoding for every API and version, and dispatch into a real log in a temporary directory.
//! An input is one connection's byte stream. Run:
//! `cargo +nightly fuzz run server_requests fuzz/corpus/server_requests`
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use weir_log::{Log, LogConfig, TopicConfig};
use weir_server::{RequestHarness, ServerConfig};

/// A fresh log every so many inputs, so that topics and records the fuzzer creates do not pile
/// up on disk over millions of runs.
const RUNS_PER_LOG: u32 = 20_000;

struct Fixture {
    harness: RequestHarness,
    log: Log,
    _dir: tempfile::TempDir,
    runs: u32,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = Log::open(dir.path(), LogConfig::default()).expect("a log");
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
        _dir: dir,
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
