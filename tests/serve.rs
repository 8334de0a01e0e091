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

use super::{PROCESS_WAIT_MAX, weir};

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
    pub(crate) fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

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

    /// SIGKILL: no clean shutdown; the next open recovers.
    pub(crate) fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        let _ = child.kill();
        let _ = child.wait();
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
pub(crate) fn run_script(script: &str, addr: &str, extra: &[&str]) {
    require_clients();
    let mut child = Command::new("python3")
        .arg(scripts().join(script))
        .args(["--bootstrap", addr])
        .args(extra)
        .current_dir(scripts())
        .env("PYTHONUNBUFFERED", "1")
        .env("WEIR_BIN", env!("CARGO_BIN_EXE_weir"))
        .spawn()
        .unwrap();
    let status = wait_with_limit(&mut child, PROCESS_WAIT_MAX * 3);
    assert!(
        status.success(),
        "{script} failed ({status}); its output is above"
    );
}

#[test]
fn librdkafka_and_kafka_python_produce_and_read_back_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path(), 0);
    run_script("produce_consume.py", &server.addr, &[]);
    server.stop();
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
