//! `weir serve` against real Kafka clients: librdkafka (through confluent-kafka), kafka-python
//! and Debian's kcat (librdkafka 2.0), driven by the scripts in tests/kafka_clients/, each
//! against a server this test starts on a free loopback port and stops by pid.
//!
//! The clients are installed by `.ci/install-clients` (CI runs it); without them these tests
//! fail and say so, rather than pass without having run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{PROCESS_WAIT_MAX, run, run_with_input, weir};

/// A `weir serve` child process; killed (SIGKILL) when dropped unless stopped first.
pub(crate) struct ServeProcess {
    child: Option<Child>,
    /// HOST:PORT it listens on.
    pub(crate) addr: String,
}

impl ServeProcess {
    /// Starts `weir serve --listen 127.0.0.1:PORT` over `dir` (port 0: the OS picks one) and
    /// waits for its `listening:` line.
    pub(crate) fn start(dir: &Path, port: u16) -> ServeProcess {
        let mut child = weir(dir)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening: ")
            .unwrap_or_else(|| panic!("weir serve printed {line:?}, not `listening: ADDR`"))
            .to_string();
        ServeProcess {
            child: Some(child),
            addr,
        }
    }

    /// The port, to restart a server on the same one (clients reconnect there).
    /// SIGTERM, then waits: the server closes the log cleanly and exits 0.
    pub(crate) fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let pid = child.id() as i32;
        // SAFETY: kill(2) on our own child's pid, which we have not yet waited for.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = wait_with_limit(&mut child, PROCESS_WAIT_MAX);
        assert!(
            status.success(),
            "weir serve exited with {status} after SIGTERM"
        );
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for a child, killing it (and failing) past `limit`: a hang, not a timing check.
pub(crate) fn wait_with_limit(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("a child process did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka_clients")
}

/// Fails with the install command when a client is missing, so that a machine without the
/// clients never counts these tests as passed.
fn require_clients() {
    let python = Command::new("python3")
        .args(["-c", "import confluent_kafka, kafka, lz4"])
        .status();
    assert!(
        python.is_ok_and(|s| s.success()),
        "the real-client tests need confluent-kafka, kafka-python and lz4 for python3: run `bash .ci/install-clients`"
    );
    let kcat = Command::new("kcat")
        .arg("-V")
        .stdout(Stdio::null())
        .status();
    assert!(
        kcat.is_ok_and(|s| s.success()),
        "the real-client tests need kcat: run `bash .ci/install-clients`"
    );
}

/// Runs one client script against `addr`; it exits 0 only if every check in it held.
///
/// The script's output (and that of any server it starts) goes to a file, printed afterwards
/// through the test harness, which shows it only for a failing test; the panic message carries
/// the script's `FAIL:` lines and its last lines, so a failure in a long CI log names its cause.
pub(crate) fn run_script(script: &str, addr: &str, extra: &[&str]) {
    require_clients();
    let mut output = tempfile::tempfile().unwrap();
    let mut child = Command::new("python3")
        .arg(scripts().join(script))
        .args(["--bootstrap", addr])
        .args(extra)
        .current_dir(scripts())
        .env("PYTHONUNBUFFERED", "1")
        .env("WEIR_BIN", env!("CARGO_BIN_EXE_weir"))
        .stdout(output.try_clone().unwrap())
        .stderr(output.try_clone().unwrap())
        .spawn()
        .unwrap();
    let status = wait_with_limit(&mut child, PROCESS_WAIT_MAX * 3);
    let text = read_from_start(&mut output);
    print!("{text}");
    if !status.success() {
        let lines: Vec<&str> = text.lines().collect();
        let failures: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|line| line.starts_with("FAIL:"))
            .take(20)
            .collect();
        let tail = &lines[lines.len().saturating_sub(30)..];
        panic!(
            "{script} failed ({status}):\n{}\n--- its last lines ---\n{}",
            failures.join("\n"),
            tail.join("\n")
        );
    }
}

/// The whole of a file written by a child, read from its start (lossily, should a client
/// print bytes that are not UTF-8).
fn read_from_start(file: &mut std::fs::File) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut bytes).unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs one script against a server of its own over a fresh data directory, then stops it.
fn run_against_a_new_server(script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path(), 0);
    run_script(script, &server.addr, &[]);
    server.stop();
}

#[test]
fn librdkafka_and_kafka_python_produce_and_read_back_every_compression() {
    run_against_a_new_server("produce_consume.py");
}

#[test]
fn kcat_with_debians_librdkafka_produces_and_consumes() {
    require_clients();
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path(), 0);
    let admin = Command::new("python3")
        .args([
            "-c",
            "import sys; from common import create_topic; create_topic(sys.argv[1], 'kc', 3)",
            &server.addr,
        ])
        .current_dir(scripts())
        .status()
        .unwrap();
    assert!(admin.success());
    let lines: Vec<String> = (0..500)
        .map(|i| format!("key{}:value-{i}", i % 7))
        .collect();
    let mut produce = Command::new("kcat")
        .args([
            "-b",
            &server.addr,
            "-P",
            "-t",
            "kc",
            "-K:",
            "-X",
            "acks=all",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = produce.stdin.take().unwrap();
        for l in &lines {
            writeln!(stdin, "{l}").unwrap();
        }
    }
    assert!(wait_with_limit(&mut produce, PROCESS_WAIT_MAX).success());
    let out = Command::new("kcat")
        .args([
            "-b",
            &server.addr,
            "-C",
            "-t",
            "kc",
            "-o",
            "beginning",
            "-e",
            "-q",
        ])
        .args(["-f", "%k:%s\\n"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // Order holds per key (each key lives in one partition).
    for k in 0..7 {
        let key = format!("key{k}:");
        let want: Vec<&String> = lines.iter().filter(|l| l.starts_with(&key)).collect();
        let have: Vec<&String> = got.iter().filter(|l| l.starts_with(&key)).collect();
        assert_eq!(have, want, "records of {key} out of order or missing");
    }
    got.sort();
    let mut want = lines.clone();
    want.sort();
    assert_eq!(got, want);
    server.stop();
}

#[test]
fn a_consumer_group_of_three_processes_joins_leaves_and_resumes_from_committed_offsets() {
    run_against_a_new_server("groups.py");
}

#[test]
fn read_committed_sees_only_committed_transactions_and_a_fenced_producer_cannot_commit() {
    run_against_a_new_server("transactions.py");
}

#[test]
fn ad_hoc_sql_over_the_protocol_reads_what_librdkafka_committed_and_pushes_filters_down() {
    run_against_a_new_server("sql_adhoc.py");
}

#[test]
fn a_transactional_copier_killed_at_random_copies_every_record_exactly_once() {
    run_against_a_new_server("copier_driver.py");
}

/// IncrementalAlterConfigs and DeleteRecords through both admin clients; then a restart on the
/// same directory keeps the altered configs and the new log start offsets.
#[test]
fn altered_configs_and_deleted_records_hold_for_real_clients_and_through_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let topic = ["--topic", "admin-configs"];
    let server = ServeProcess::start(dir.path(), 0);
    run_script(
        "admin_configs.py",
        &server.addr,
        &[&["--phase", "setup"][..], &topic].concat(),
    );
    server.stop();
    let server = ServeProcess::start(dir.path(), 0);
    run_script(
        "admin_configs.py",
        &server.addr,
        &[&["--phase", "check"][..], &topic].concat(),
    );
    server.stop();
}

#[test]
fn a_server_killed_while_acks_all_produces_loses_and_duplicates_nothing() {
    // The script starts, SIGKILLs and restarts its own server (WEIR_BIN) on one port.
    run_script("server_crash.py", "unused", &[]);
}

#[test]
fn transactions_under_kills_and_pauses_of_the_server_lose_abort_tear_and_duplicate_nothing() {
    // Jepsen-style: the script starts its own server (WEIR_BIN), SIGKILLs and pauses it at
    // random while librdkafka transactional producers and a read_committed reader run, then
    // checks the history.
    run_script("jepsen.py", "unused", &[]);
}

#[test]
fn tls_sasl_plain_and_scram_and_acls_hold_for_librdkafka_and_kafka_python() {
    // The script makes its own CA and certificate (openssl), users (`weir user add`) and ACL
    // file, and starts its own servers (WEIR_BIN): SASL_SSL with ACLs, then SASL_PLAINTEXT.
    run_script("security.py", "unused", &[]);
}

#[test]
fn idle_connections_clients_that_never_read_huge_fetches_and_5000_partitions_stay_within_memory() {
    // The script starts its own server (WEIR_BIN) with a 256 MiB buffer pool, loads it with
    // 2,000 idle connections, 40 clients that send huge fetches and never read, and a topic of
    // 5,000 partitions, while librdkafka clients do their work beside; the server's RSS must
    // stay under the bound the script states.
    run_script("resource_bounds.py", "unused", &[]);
}

/// Settings that cannot work fail at once, with one line saying why.
#[test]
fn security_settings_that_cannot_work_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(d, &["serve", "--listen", "0.0.0.0:0"]).fails(2);
    assert!(
        out.stderr.contains("without authentication"),
        "{}",
        out.stderr
    );
    let users = d.join("users");
    let users = users.to_str().unwrap();
    let out = run(d, &["serve", "--listen", "127.0.0.1:0", "--users", users]).fails(1);
    assert!(out.stderr.contains("users"), "{}", out.stderr);
    let out = run_with_input(d, &["user", "add", "a b", "--users", users], "pw\n").fails(2);
    assert!(out.stderr.contains("whitespace"), "{}", out.stderr);
    run_with_input(d, &["user", "add", "alice", "--users", users], "\n").fails(2);
    run_with_input(d, &["user", "add", "alice", "--users", users], "pw\n").ok();
    let out = run(d, &["user", "remove", "bob", "--users", users]).fails(1);
    assert!(out.stderr.contains("no user 'bob'"), "{}", out.stderr);
    std::fs::write(d.join("acls"), "allow alice read table:x\n").unwrap();
    let acls = d.join("acls");
    let out = run(
        d,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--users",
            users,
            "--acls",
            acls.to_str().unwrap(),
        ],
    )
    .fails(1);
    assert!(
        out.stderr.contains("acls:1: unknown resource type 'table'"),
        "{}",
        out.stderr
    );
    let missing = d.join("missing.pem");
    let missing = missing.to_str().unwrap();
    let out = run(
        d,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            missing,
            "--tls-key",
            missing,
        ],
    )
    .fails(1);
    assert!(
        out.stderr.contains("TLS") && out.stderr.contains("missing.pem"),
        "{}",
        out.stderr
    );
    run(d, &["user", "remove", "alice", "--users", users]).ok();
    std::fs::write(
        d.join("client.properties"),
        "security.protocol=SASL_PLAINTEXT\nnonsense\n",
    )
    .unwrap();
    let props = d.join("client.properties");
    let out = run(
        d,
        &[
            "--bootstrap",
            "127.0.0.1:9",
            "--command-config",
            props.to_str().unwrap(),
            "topic",
            "list",
        ],
    )
    .fails(2);
    assert!(
        out.stderr.contains("client.properties:2:"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_full_disk_fails_produce_with_kafka_storage_error_and_loses_nothing_acknowledged() {
    // The script mounts a small tmpfs of its own, and starts, SIGKILLs and restarts its own
    // server (WEIR_BIN) on it.
    run_script("full_disk.py", "unused", &[]);
}

/// What the protocol wrote, the embedded API reads back byte for byte, from another process,
/// while the server runs (`weir consume` opens the directory read-only).
#[test]
fn records_produced_through_the_protocol_read_back_identical_through_weir_consume() {
    require_clients();
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path(), 0);
    let produce = Command::new("python3")
        .args([
            "-c",
            r#"
import json, sys
from common import create_topic
from confluent_kafka import Producer
create_topic(sys.argv[1], "agree", 2)
p = Producer({"bootstrap.servers": sys.argv[1], "enable.idempotence": True, "compression.type": "lz4"})
for i in range(1000):
    p.produce("agree", key=str(i % 13).encode(), value=json.dumps({"n": i, "s": "é" * (i % 5)}).encode())
p.flush(30)
"#,
            &server.addr,
        ])
        .current_dir(scripts())
        .status()
        .unwrap();
    assert!(produce.success());
    let out = weir(dir.path())
        .args(["consume", "agree", "--from-beginning", "--until-end"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `weir consume` prints a stored JSON value exactly as stored: the bytes Python sent
    // (json.dumps: ", " and ": " separators, non-ASCII escaped).
    let mut by_key: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let raw = line.split_once("\"value\":").unwrap().1;
        by_key
            .entry(v["key"].as_str().unwrap().to_string())
            .or_default()
            .push(raw.strip_suffix('}').unwrap().to_string());
    }
    assert_eq!(by_key.values().map(Vec::len).sum::<usize>(), 1000);
    for (key, values) in &by_key {
        let k: usize = key.parse().unwrap();
        let want: Vec<String> = (0..1000)
            .filter(|i| i % 13 == k)
            .map(|i| format!(r#"{{"n": {i}, "s": "{}"}}"#, "\\u00e9".repeat(i % 5)))
            .collect();
        assert_eq!(values, &want, "key {key}: values differ or out of order");
    }
    server.stop();
}
