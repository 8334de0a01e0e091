//! The `weir` binary against its contract (docs/architecture.md): commands, output, exit codes, the
//! writer lock shared between processes.
// Tests fail loudly on an error, and `unwrap` says so. (clippy.toml's allow-unwrap-in-tests
// covers `#[test]` functions, not the helpers beside them.)
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod adclick;
mod bootstrap;
mod closed_stdout;
mod serve;
mod sql;

/// Longest a spawned process may run before a test gives up on it (a hang, not a timing check).
const PROCESS_WAIT_MAX: Duration = Duration::from_secs(120);

fn weir(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.arg("--data-dir").arg(dir).env_remove("WEIR_DATA_DIR");
    c
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success; stderr: {}", self.stderr);
        self
    }

    /// Fails with `code`, and one error line on stderr.
    #[track_caller]
    fn fails(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "one error line: {:?}",
            self.stderr
        );
        assert!(self.stderr.starts_with("error: "), "{:?}", self.stderr);
        self
    }
}

fn run(dir: &Path, args: &[&str]) -> Run {
    Run::from(
        weir(dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run weir"),
    )
}

fn run_with_input(dir: &Path, args: &[&str], input: &str) -> Run {
    let mut command = weir(dir);
    command.args(args);
    run_command_with_input(command, input)
}

/// Runs `command` with `input` on its stdin.
fn run_command_with_input(mut command: Command, input: &str) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_string();
    // Write from a thread: weir may stop reading early (a bad line) and close its end.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("wait for weir");
    writer.join().expect("writer thread");
    Run::from(out)
}

/// Waits for a child, killing it (and failing) if it runs past `PROCESS_WAIT_MAX`. Its stdout
/// is read to the end unless the caller took it.
fn wait_with_output(mut child: Child) -> Run {
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut stdout) = stdout {
            stdout.read_to_string(&mut s).expect("read stdout");
        }
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > PROCESS_WAIT_MAX {
            let _ = child.kill();
            panic!("weir did not finish within {PROCESS_WAIT_MAX:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr).expect("read stderr");
    }
    Run {
        code: status.code().unwrap_or(-1),
        stdout: reader.join().expect("stdout reader"),
        stderr,
    }
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Checks that records come in per-partition offset order with offsets dense from 0, and returns
/// them per partition.
#[track_caller]
fn by_partition(records: &[Value], topic: &str) -> BTreeMap<i64, Vec<Value>> {
    let mut parts: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for r in records {
        let obj = r.as_object().expect("an object per line");
        let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["topic", "partition", "offset", "timestamp", "key", "value"])
        );
        assert_eq!(r["topic"], topic);
        assert!(
            r["timestamp"]
                .as_i64()
                .is_some_and(|t| t > 1_600_000_000_000),
            "{r}"
        );
        let p = r["partition"].as_i64().expect("partition");
        let list = parts.entry(p).or_default();
        assert_eq!(
            r["offset"].as_i64(),
            Some(list.len() as i64),
            "dense offsets from 0 in partition {p}: {r}"
        );
        list.push(r.clone());
    }
    parts
}

#[test]
fn create_describe_produce_consume_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(d, &["topic", "create", "clicks", "--partitions", "2"]).ok();
    assert!(
        out.stdout.contains("created topic 'clicks'"),
        "{}",
        out.stdout
    );
    let out = run(d, &["topic", "describe", "clicks"]).ok();
    assert!(out.stdout.contains("partitions: 2"), "{}", out.stdout);
    assert!(out.stdout.contains("format: json"), "{}", out.stdout);
    assert!(out.stdout.contains("high_watermark"), "{}", out.stdout);

    let input = [
        json!({"ad_id": 42, "user": "ann"}),
        json!({"ad_id": "x7", "score": 1.5, "tags": ["a", null]}),
        json!({"ad_id": 42, "user": "bob"}),
    ];
    let text: String = input.iter().map(|v| format!("{v}\n")).collect();
    let out = run_with_input(d, &["produce", "clicks", "--key-field", "ad_id"], &text).ok();
    assert_eq!(out.stdout.trim(), "produced 3 records");

    let out = run(
        d,
        &[
            "consume",
            "clicks",
            "--from-beginning",
            "--max",
            "3",
            "--format",
            "json",
        ],
    )
    .ok();
    let records = json_lines(&out.stdout);
    assert_eq!(records.len(), 3, "{}", out.stdout);
    let parts = by_partition(&records, "clicks");
    // Same key, same partition, in order.
    let p42: Vec<&Value> = records.iter().filter(|r| r["key"] == "42").collect();
    assert_eq!(p42.len(), 2);
    assert_eq!(p42[0]["partition"], p42[1]["partition"]);
    assert_eq!(p42[0]["value"], input[0]);
    assert_eq!(p42[1]["value"], input[2]);
    let x7: Vec<&Value> = records.iter().filter(|r| r["key"] == "x7").collect();
    assert_eq!(x7.len(), 1);
    assert_eq!(x7[0]["value"], input[1]);
    assert_eq!(parts.values().map(Vec::len).sum::<usize>(), 3);

    // Text output: the values only.
    let out = run(
        d,
        &[
            "consume",
            "clicks",
            "--from-beginning",
            "--max",
            "3",
            "--format",
            "text",
        ],
    )
    .ok();
    let mut values = json_lines(&out.stdout);
    values.sort_by_key(|v| v.to_string());
    let mut want = input.to_vec();
    want.sort_by_key(|v| v.to_string());
    assert_eq!(values, want);

    // Without --from-beginning, consume starts at the end: nothing old is printed.
    let out = run(d, &["consume", "clicks", "--idle-exit-ms", "300"]).ok();
    assert_eq!(out.stdout, "");

    // Internal topics stay hidden; deleting works once.
    let out = run(d, &["topic", "list"]).ok();
    assert_eq!(out.stdout, "clicks\n");
    run(d, &["topic", "delete", "clicks"]).ok();
    assert_eq!(run(d, &["topic", "list"]).ok().stdout, "");
    let out = run(d, &["topic", "delete", "clicks"]).fails(1);
    assert!(out.stderr.contains("'clicks'"), "{}", out.stderr);
}

#[test]
fn binary_topic_round_trips_json_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(
        d,
        &[
            "topic",
            "create",
            "rows",
            "--partitions",
            "1",
            "--format",
            "binary",
            "--schema",
            "ad_id bigint, user VARCHAR, score DOUBLE, ok BOOLEAN, n INT, ts TIMESTAMP",
        ],
    )
    .ok();
    let out = run(d, &["topic", "describe", "rows"]).ok();
    assert!(
        out.stdout.contains(
            "schema: ad_id BIGINT, user VARCHAR, score DOUBLE, ok BOOLEAN, n INT, ts TIMESTAMP"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("format: binary"), "{}", out.stdout);
    let input = [
        json!({"ad_id": 1, "user": "ann", "score": 0.25, "ok": true, "n": -3, "ts": 1_700_000_000_000i64}),
        json!({"ad_id": -9, "user": "", "score": 1e100, "ok": false, "n": 2_147_483_647, "ts": 0}),
        json!({"ad_id": 3, "user": null, "score": null, "ok": null, "n": null, "ts": null}),
    ];
    let text: String = input.iter().map(|v| format!("{v}\n")).collect();
    run_with_input(d, &["produce", "rows", "--key-field", "ad_id"], &text).ok();
    let out = run(d, &["consume", "rows", "--from-beginning", "--max", "3"]).ok();
    let records = json_lines(&out.stdout);
    let parts = by_partition(&records, "rows");
    assert_eq!(parts.len(), 1);
    let values: Vec<Value> = records.iter().map(|r| r["value"].clone()).collect();
    assert_eq!(values, input);
    let keys: Vec<Value> = records.iter().map(|r| r["key"].clone()).collect();
    assert_eq!(keys, [json!("1"), json!("-9"), json!("3")]);

    // A value that does not fit the schema names the line and the column; earlier lines stay.
    let bad = "{\"ad_id\": 4, \"user\": \"x\", \"score\": 1, \"ok\": true, \"n\": 1, \"ts\": 5}\n\
               {\"ad_id\": \"five\", \"user\": \"x\", \"score\": 1, \"ok\": true, \"n\": 1, \"ts\": 5}\n";
    let out = run_with_input(d, &["produce", "rows"], bad).fails(1);
    assert!(
        out.stderr.contains("line 2") && out.stderr.contains("ad_id"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout.trim(), "produced 1 record");
    let out = run(
        d,
        &[
            "consume",
            "rows",
            "--from-beginning",
            "--idle-exit-ms",
            "500",
        ],
    )
    .ok();
    assert_eq!(json_lines(&out.stdout).len(), 4);
}

#[test]
fn runtime_errors_exit_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No data directory yet: still names the topic.
    let missing = d.join("missing");
    let out = Run::from(
        weir(&missing)
            .args(["consume", "nope", "--max", "1"])
            .output()
            .unwrap(),
    )
    .fails(1);
    assert!(
        out.stderr.contains("unknown topic 'nope'"),
        "{}",
        out.stderr
    );

    run(d, &["topic", "create", "t", "--partitions", "1"]).ok();
    for args in [
        &["produce", "nope"][..],
        &["consume", "nope", "--max", "1"],
        &["consume", "nope", "--group", "g", "--max", "1"],
        &["topic", "describe", "nope"],
        &["topic", "delete", "nope"],
    ] {
        let out = run_with_input(d, args, "{}\n").fails(1);
        assert!(
            out.stderr.contains("unknown topic 'nope'"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let out = run(d, &["topic", "create", "t", "--partitions", "1"]).fails(1);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    let out = run(d, &["groups", "describe", "nobody"]).fails(1);
    assert!(out.stderr.contains("'nobody'"), "{}", out.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["topic", "create", "t", "--partitions", "1"]).ok();
    for args in [
        &["topic", "create", "u", "--partitions", "0"][..],
        &["topic", "create", "u", "--partitions", "-1"],
        &["topic", "create", "u"],
        &[
            "topic",
            "create",
            "u",
            "--partitions",
            "1",
            "--schema",
            "a UUID",
        ],
        &[
            "topic",
            "create",
            "u",
            "--partitions",
            "1",
            "--schema",
            "a INT,, b INT",
        ],
        &[
            "topic",
            "create",
            "u",
            "--partitions",
            "1",
            "--format",
            "binary",
        ],
        &[
            "topic",
            "create",
            "u",
            "--partitions",
            "1",
            "--format",
            "xml",
        ],
        &[
            "topic",
            "create",
            "u",
            "--partitions",
            "1",
            "--retention-ms",
            "0",
        ],
        &["topic", "create", "bad/name", "--partitions", "1"],
        &["topic", "create", "__internal", "--partitions", "1"],
        &["produce", "t", "--acks", "maybe"],
        &["consume", "t", "--isolation", "dirty"],
        &["consume", "t", "--format", "xml"],
        &["consume", "t", "--max", "lots"],
        &["consume", "t", "--group", ""],
        &["frobnicate"],
    ] {
        let out = run(d, args).fails(2);
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    // Nothing was created by the failed attempts.
    assert_eq!(run(d, &["topic", "list"]).ok().stdout, "t\n");
}

#[test]
fn invalid_json_keeps_earlier_lines_and_reads_no_further() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["topic", "create", "t", "--partitions", "1"]).ok();
    let out = run_with_input(
        d,
        &["produce", "t"],
        "{\"a\":1}\n\n{\"a\":2}\n{oops\n{\"a\":4}\n",
    )
    .fails(1);
    // Line numbers count every line, empty ones too.
    assert!(
        out.stderr.contains("line 4") && out.stderr.contains("invalid JSON"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout.trim(), "produced 2 records");
    let out = run(
        d,
        &[
            "consume",
            "t",
            "--from-beginning",
            "--idle-exit-ms",
            "500",
            "--format",
            "text",
        ],
    )
    .ok();
    assert_eq!(out.stdout, "{\"a\":1}\n{\"a\":2}\n");

    // The same on line 3 exactly, and a missing key field.
    let out = run_with_input(d, &["produce", "t"], "1\n2\n[\n").fails(1);
    assert!(out.stderr.contains("line 3"), "{}", out.stderr);
    let out = run_with_input(
        d,
        &["produce", "t", "--key-field", "id"],
        "{\"id\":1}\n{\"x\":1}\n",
    )
    .fails(1);
    assert!(
        out.stderr.contains("line 2") && out.stderr.contains("'id'"),
        "{}",
        out.stderr
    );
    let out = run(
        d,
        &[
            "consume",
            "t",
            "--from-beginning",
            "--idle-exit-ms",
            "500",
            "--format",
            "text",
        ],
    )
    .ok();
    assert_eq!(out.stdout, "{\"a\":1}\n{\"a\":2}\n1\n2\n{\"id\":1}\n");
}

#[test]
fn oversized_record_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["topic", "create", "t", "--partitions", "1"]).ok();
    let big = format!("\"{}\"\n", "x".repeat(2 << 20));
    let out = run_with_input(d, &["produce", "t"], &format!("1\n{big}3\n")).fails(1);
    assert!(
        out.stderr.contains("line 2") && out.stderr.contains("record_bytes_max"),
        "{}",
        out.stderr
    );
    // Just under the line limit, the record with its framing is still too large.
    let near = format!("\"{}\"\n", "y".repeat((1 << 20) - 2));
    let out = run_with_input(d, &["produce", "t"], &near).fails(1);
    assert!(
        out.stderr.contains("line 1") && out.stderr.contains("record_bytes_max"),
        "{}",
        out.stderr
    );
    let out = run(
        d,
        &[
            "consume",
            "t",
            "--from-beginning",
            "--idle-exit-ms",
            "500",
            "--format",
            "text",
        ],
    )
    .ok();
    assert_eq!(out.stdout, "1\n");
}

#[test]
fn second_writer_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["topic", "create", "t", "--partitions", "1"]).ok();
    let mut holder = weir(d)
        .args(["consume", "t", "--group", "g"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The lock file names the holder once it holds the lock.
    let pid = holder.id().to_string();
    let start = Instant::now();
    while std::fs::read_to_string(d.join("@lock")).ok().as_deref() != Some(pid.as_str()) {
        assert!(
            start.elapsed() < PROCESS_WAIT_MAX,
            "the consumer never took the lock"
        );
        assert!(holder.try_wait().unwrap().is_none(), "the consumer exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run_with_input(d, &["produce", "t"], "1\n").fails(1);
    assert!(
        out.stderr.contains("locked") && out.stderr.contains(&pid),
        "{}",
        out.stderr
    );
    // Readers still work.
    run(d, &["topic", "describe", "t"]).ok();
    holder.kill().unwrap();
    holder.wait().unwrap();
    // Once the holder is gone, the directory can be written again (after recovery).
    run_with_input(d, &["produce", "t"], "1\n").ok();
}

#[test]
fn group_commits_what_it_printed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["topic", "create", "t", "--partitions", "1"]).ok();
    let input: String = (0..5).map(|i| format!("{i}\n")).collect();
    run_with_input(d, &["produce", "t"], &input).ok();
    let out = run(
        d,
        &[
            "consume",
            "t",
            "--group",
            "g",
            "--from-beginning",
            "--max",
            "2",
            "--format",
            "text",
        ],
    )
    .ok();
    assert_eq!(out.stdout, "0\n1\n");
    assert_eq!(run(d, &["groups", "list"]).ok().stdout, "g\n");
    let out = run(d, &["groups", "describe", "g"]).ok();
    // The consumer process has left: the membership it published shows an empty group.
    assert!(
        out.stdout.contains("members as published by pid") && out.stdout.contains("members: 0"),
        "{}",
        out.stdout
    );
    let row: Vec<&str> = out
        .stdout
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row, ["t", "0", "2", "5", "3"], "{}", out.stdout);
    // The next member of the group goes on from the committed offset.
    let out = run(
        d,
        &[
            "consume", "t", "--group", "g", "--max", "2", "--format", "text",
        ],
    )
    .ok();
    assert_eq!(out.stdout, "2\n3\n");
}

#[test]
fn a_reader_process_follows_a_writer_process() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["topic", "create", "t", "--partitions", "3"]).ok();
    let reader = weir(d)
        .args([
            "consume",
            "t",
            "--from-beginning",
            "--max",
            "2000",
            "--format",
            "json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sent = BTreeSet::new();
    for round in 0..4 {
        let lines: String = (0..500)
            .map(|i| {
                let v = json!({"id": round * 500 + i, "round": round});
                sent.insert(v.to_string());
                format!("{v}\n")
            })
            .collect();
        let out = run_with_input(d, &["produce", "t", "--key-field", "id"], &lines).ok();
        assert_eq!(out.stdout.trim(), "produced 500 records");
    }
    let out = wait_with_output(reader);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let records = json_lines(&out.stdout);
    assert_eq!(records.len(), 2000);
    let parts = by_partition(&records, "t");
    assert_eq!(parts.len(), 3);
    let got: BTreeSet<String> = records.iter().map(|r| r["value"].to_string()).collect();
    assert_eq!(got, sent);
    for r in &records {
        assert_eq!(
            r["key"].as_str(),
            Some(r["value"]["id"].to_string().as_str())
        );
    }
}

#[test]
fn bench_produce_reports_measured_figures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(
        d,
        &[
            "bench",
            "produce",
            "--records",
            "20000",
            "--partitions",
            "2",
        ],
    )
    .ok();
    let figures: BTreeMap<&str, &str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(": "))
        .collect();
    for name in [
        "records_per_s",
        "mb_per_s",
        "p50_ms",
        "p99_ms",
        "baseline_mb_per_s",
        "baseline_records_per_s",
    ] {
        let v: f64 = figures
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {}", out.stdout))
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(v > 0.0, "{name}: {v}");
    }
    assert_eq!(figures.get("records"), Some(&"20000"));
    assert!(figures.get("machine").is_some_and(|m| m.ends_with("cores")));
    // The bench topic and the baseline file are gone afterwards.
    assert_eq!(run(d, &["topic", "list"]).ok().stdout, "");
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("bench"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bench_consume_reports_measured_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "bench",
            "consume",
            "--records",
            "20000",
            "--partitions",
            "2",
        ],
    )
    .ok();
    for name in [
        "records_per_s",
        "mb_per_s",
        "baseline_mb_per_s",
        "reopen_ms",
        "reopen_after_crash_ms",
    ] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {}", out.stdout));
        let v: f64 = line[name.len() + 2..].parse().unwrap();
        assert!(v >= 0.0, "{line}");
    }
}

#[test]
fn the_readme_shows_first_job_exactly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let example = std::fs::read_to_string(root.join("examples/first_job.rs")).expect("example");
    assert!(
        readme.contains(&format!("```rust\n{example}```")),
        "README.md's \"Write your own job\" must be examples/first_job.rs verbatim"
    );
}

#[test]
fn integers_beyond_64_bits_are_refused_never_rounded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["topic", "create", "t", "--partitions", "1"]).ok();
    let input = "{\"id\": 1}\n\
                 {\"u\": 18446744073709551615, \"i\": -9223372036854775808, \"f\": 0.5}\n\
                 {\"id\": 123456789012345678901234567890, \"f\": 0.5}\n\
                 {\"id\": 4}\n";
    let out = run_with_input(d, &["produce", "t"], input).fails(1);
    assert!(
        out.stderr.contains("line 3")
            && out.stderr.contains("123456789012345678901234567890")
            && out.stderr.contains("64 bits"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout.trim(), "produced 2 records");
    // What was kept is exact: 64-bit extremes print digit for digit.
    let out = run(
        d,
        &[
            "consume",
            "t",
            "--from-beginning",
            "--max",
            "2",
            "--format",
            "text",
        ],
    )
    .ok();
    assert_eq!(
        out.stdout,
        "{\"id\":1}\n{\"f\":0.5,\"i\":-9223372036854775808,\"u\":18446744073709551615}\n"
    );

    // A schema's integer columns refuse what is out of their range, with the line and column.
    run(
        d,
        &[
            "topic",
            "create",
            "rows",
            "--partitions",
            "1",
            "--format",
            "binary",
            "--schema",
            "b BIGINT, i INT",
        ],
    )
    .ok();
    for (line, want) in [
        ("{\"b\": 9223372036854775808, \"i\": 1}", "column 'b'"),
        ("{\"b\": 1, \"i\": 2147483648}", "column 'i'"),
        ("{\"b\": 1, \"i\": -2147483649}", "column 'i'"),
        (
            "{\"b\": 123456789012345678901234567890, \"i\": 1}",
            "64 bits",
        ),
    ] {
        let out = run_with_input(d, &["produce", "rows"], &format!("{line}\n")).fails(1);
        assert!(
            out.stderr.contains("line 1") && out.stderr.contains(want),
            "{line}: {}",
            out.stderr
        );
        assert_eq!(out.stdout.trim(), "produced 0 records", "{line}");
    }
}

#[test]
fn a_tombstone_and_a_json_null_print_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["topic", "create", "t", "--partitions", "1"]).ok();
    // Offset 0: the JSON value null; offset 1: a tombstone (no value), which `produce` cannot
    // write (every line is a JSON value), so the library does.
    run_with_input(d, &["produce", "t"], "null\n").ok();
    {
        use weir::log::{Log, LogConfig, Producer, ProducerConfig, ProducerRecord};
        let log = Log::open(d, LogConfig::default()).unwrap();
        let producer = Producer::new(&log, ProducerConfig::default()).unwrap();
        producer.send(ProducerRecord::tombstone("t", b"k")).unwrap();
        producer.flush().unwrap();
        producer.close().unwrap();
        log.close().unwrap();
    }
    let out = run(d, &["consume", "t", "--from-beginning", "--max", "2"]).ok();
    let records = json_lines(&out.stdout);
    assert_eq!(records.len(), 2, "{}", out.stdout);
    // The JSON null is an ordinary record: the contract's six fields.
    by_partition(&records[..1], "t");
    assert_eq!(records[0]["value"], Value::Null);
    assert_eq!(records[1]["value"], Value::Null);
    assert_eq!(records[1]["tombstone"], true, "{}", out.stdout);
    assert_eq!(records[1]["key"], "k");
    let out = run(
        d,
        &[
            "consume",
            "t",
            "--from-beginning",
            "--max",
            "2",
            "--format",
            "text",
        ],
    )
    .ok();
    assert_eq!(out.stdout, "null\nNULL\n");
}

/// The `--until-end` contract: stop at the end each partition had at the start, without
/// `--max`; with a group, commit that end.
#[test]
fn consume_until_end_stops_at_the_start_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["topic", "create", "t", "--partitions", "3"]).ok();
    // Nothing yet: done at once.
    let out = run(d, &["consume", "t", "--from-beginning", "--until-end"]).ok();
    assert_eq!(out.stdout, "");
    let text: String = (0..30).map(|i| format!("{{\"k\":{i}}}\n")).collect();
    run_with_input(d, &["produce", "t", "--key-field", "k"], &text).ok();
    let out = run(d, &["consume", "t", "--from-beginning", "--until-end"]).ok();
    assert_eq!(out.stdout.lines().count(), 30, "{}", out.stdout);
    // Without --from-beginning it starts at the end, so it prints nothing.
    let out = run(d, &["consume", "t", "--until-end"]).ok();
    assert_eq!(out.stdout, "");
    // A group commits where it stopped: a second run has nothing left.
    let out = run(
        d,
        &[
            "consume",
            "t",
            "--group",
            "g",
            "--from-beginning",
            "--until-end",
        ],
    )
    .ok();
    assert_eq!(out.stdout.lines().count(), 30, "{}", out.stdout);
    let out = run(d, &["consume", "t", "--group", "g", "--until-end"]).ok();
    assert_eq!(out.stdout, "");
}
