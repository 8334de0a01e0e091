//! The ad-click example (`examples/ad_clicks.rs`) as a user runs it: generate → run → verify,
//! SIGKILLed runs, and malformed input.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use weir::log::{
    Consumer, ConsumerConfig, Log, LogConfig, Producer, ProducerConfig, ProducerRecord,
};

/// The example binary, built next to this test binary by `cargo test`.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let path = dir.join("examples").join("ad_clicks");
    assert!(
        path.exists(),
        "{} missing: `cargo test` builds the examples",
        path.display()
    );
    path
}

fn ad_clicks(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(example());
    c.args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("WEIR_DATA_DIR");
    c
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = ad_clicks(dir, args).output().expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "ad_clicks {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn generate_run_verify_on_200k_clicks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ok(
        dir.path(),
        &["generate", "--events", "200000", "--late-share", "0.01"],
    );
    assert!(out.contains("generated 200000 clicks"), "{out}");
    let out = ok(dir.path(), &["run", "--until-idle", "--metrics-ms", "0"]);
    assert!(out.contains("processed 200000 clicks"), "{out}");
    let out = ok(dir.path(), &["verify"]);
    assert!(out.contains("verdict:            PASS"), "{out}");
    assert!(out.contains("input clicks:       200000"), "{out}");
    // About 1% late, all accounted for.
    let late: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("late clicks:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("late clicks line");
    assert!((1_000..4_000).contains(&late), "{late} late clicks");
}

/// Off a terminal (here a pipe, as in CI logs) the progress bar is not redrawn with carriage
/// returns: whole lines, the last one the final count.
#[test]
fn generate_progress_to_a_pipe_is_whole_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ad_clicks(dir.path(), &["generate", "--events", "300000"])
        .stdin(Stdio::null())
        .output()
        .expect("run the example");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains('\r'), "carriage returns in {stderr:?}");
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.contains("300000/300000 clicks")),
        "{stderr}"
    );
}

#[test]
fn verify_fails_on_a_doubled_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(dir.path(), &["generate", "--events", "20000"]);
    ok(dir.path(), &["run", "--until-idle", "--metrics-ms", "0"]);
    // Append a copy of one committed result: the verifier must notice.
    let log = Log::open(dir.path(), LogConfig::default()).expect("open");
    let mut c = Consumer::new(&log, ConsumerConfig::default()).expect("consumer");
    c.assign_topic("ad_clicks_per_minute").expect("assign");
    let batches = c.poll(Duration::from_millis(200)).expect("poll");
    let first = batches[0]
        .records()
        .next()
        .expect("a record")
        .expect("record");
    let p = Producer::new(&log, ProducerConfig::default()).expect("producer");
    p.send(ProducerRecord::new(
        "ad_clicks_per_minute",
        first.value.as_deref().expect("value"),
    ))
    .expect("send");
    p.flush().expect("flush");
    drop(c);
    log.close().expect("close");
    let out = ad_clicks(dir.path(), &["verify"]).output().expect("verify");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("verdict:            FAIL"), "{stdout}");
    assert!(stdout.contains("duplicate windows:  1"), "{stdout}");
}

#[test]
fn sigkilled_runs_restart_to_an_exact_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(
        dir.path(),
        &["generate", "--events", "1500000", "--late-share", "0.005"],
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    kill_runs(
        || {
            ad_clicks(
                dir.path(),
                &["run", "--epoch-ms", "50", "--metrics-ms", "20"],
            )
        },
        6,
        seed,
    );
    ok(dir.path(), &["run", "--until-idle", "--metrics-ms", "0"]);
    let out = ok(dir.path(), &["verify"]);
    assert!(out.contains("verdict:            PASS"), "{out}");
}

/// Starts `run` (a `run` that follows `clicks` and prints a metrics line every 20 ms) `rounds`
/// times, SIGKILLing each: once a line shows a newer committed epoch than the last round saw
/// (or, if it has caught up and commits nothing new, after 250 lines), at a random moment
/// within 150 ms. Fails unless some run committed an epoch.
fn kill_runs(run: impl Fn() -> Command, rounds: u32, seed: u64) {
    eprintln!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut last_epoch = 0;
    for round in 0..rounds {
        let mut child = run()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn run");
        // Kept open until the child is dead, so that its writes never fail.
        let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut seen = 0;
        for line in lines.by_ref().map_while(Result::ok) {
            seen += 1;
            let epoch = line
                .split_whitespace()
                .skip_while(|w| *w != "epoch")
                .nth(1)
                .and_then(|e| e.parse::<u64>().ok());
            if epoch.is_some_and(|e| e > last_epoch) || seen >= 250 {
                last_epoch = epoch.unwrap_or(last_epoch);
                break;
            }
        }
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "round {round}: run ended by itself (seed {seed})"
        );
        std::thread::sleep(Duration::from_millis(rng.u64(0..150)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        drop(lines);
    }
    eprintln!("killed {rounds} times; the last run had committed epoch {last_epoch}");
    assert!(last_epoch > 0, "no run committed anything (seed {seed})");
}

#[test]
fn malformed_clicks_go_to_the_dead_letter_topic_and_the_job_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(
        dir.path(),
        &["generate", "--events", "10000", "--partitions", "2"],
    );
    let log = Log::open(dir.path(), LogConfig::default()).expect("open");
    let p = Producer::new(&log, ProducerConfig::default()).expect("producer");
    for bad in [
        &b"{not json"[..],
        br#"{"ad_id": 5, "user_id": 1}"#,
        br#"{"ad_id": "five", "user_id": 1, "ts": 0}"#,
    ] {
        p.send(ProducerRecord::new("clicks", bad).key(b"5"))
            .expect("send");
    }
    p.flush().expect("flush");
    log.close().expect("close");
    ok(
        dir.path(),
        &["generate", "--events", "10000", "--seed", "7"],
    );
    ok(dir.path(), &["run", "--until-idle", "--metrics-ms", "0"]);
    let out = ok(dir.path(), &["verify"]);
    assert!(out.contains("verdict:            PASS"), "{out}");
    assert!(out.contains("input clicks:       20000"), "{out}");
    assert!(
        out.contains("malformed values:   3 in clicks, 3 dead letters"),
        "{out}"
    );
    let log = Log::open_read_only(dir.path()).expect("open");
    let mut c = Consumer::new(&log, ConsumerConfig::default()).expect("consumer");
    c.assign_topic("clicks_dead_letter").expect("assign");
    let reasons: Vec<String> = c
        .poll(Duration::from_millis(200))
        .expect("poll")
        .iter()
        .flat_map(|b| b.records().map(|r| r.expect("record")).collect::<Vec<_>>())
        .map(|r| {
            let h = r
                .headers
                .iter()
                .find(|h| h.key == "weir.error")
                .expect("reason");
            String::from_utf8_lossy(h.value.as_deref().expect("value")).to_string()
        })
        .collect();
    assert_eq!(reasons.len(), 3);
    assert!(
        reasons[1].contains("ts"),
        "names the missing field: {}",
        reasons[1]
    );
}

#[test]
fn the_sql_variant_passes_the_same_verification() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(
        dir.path(),
        &["generate", "--events", "200000", "--late-share", "0.01"],
    );
    let out = ok(
        dir.path(),
        &["run", "--sql", "--until-idle", "--metrics-ms", "0"],
    );
    assert!(out.contains("processed 200000 clicks"), "{out}");
    let out = ok(dir.path(), &["verify"]);
    assert!(out.contains("verdict:            PASS"), "{out}");
}

/// Runs the example; returns its exit code and stderr.
fn fails(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = ad_clicks(dir, args).output().expect("run the example");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{args:?}: one error line: {stderr:?}"
    );
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr:?}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn bad_flags_are_usage_errors_before_anything_touches_the_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing");
    for (args, flag) in [
        (&["generate", "--hot-share", "2"][..], "--hot-share"),
        (&["generate", "--hot-share", "NaN"], "--hot-share"),
        (&["generate", "--late-share=-0.1"], "--late-share"),
        (&["generate", "--late-share", "x"], "--late-share"),
        (&["generate", "--events", "0"], "--events"),
        (&["generate", "--ads", "0"], "--ads"),
        (&["generate", "--partitions", "0"], "--partitions"),
        (&["run", "--epoch-ms", "0"], "--epoch-ms"),
        (&["--events", "0"], "--events"),
    ] {
        let (code, stderr) = fails(&missing, args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
}

#[test]
fn run_and_verify_need_clicks_and_create_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing");
    for args in [&["run", "--until-idle"][..], &["verify"]] {
        let (code, stderr) = fails(&missing, args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains("does not exist"), "{args:?}: {stderr}");
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
    // A directory without `clicks` (a typo, another program's directory) is left as it was.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    for args in [&["run", "--until-idle"][..], &["verify"]] {
        let (code, stderr) = fails(&empty, args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains("no `clicks` topic"), "{args:?}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(&empty).expect("read_dir").collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}

// ---- on a cluster ------------------------------------------------------------------------

/// The example as a client of the cluster at `bootstrap`.
fn cluster_command(bootstrap: &str, args: &[&str]) -> Command {
    let mut c = Command::new(example());
    c.arg("--bootstrap")
        .arg(bootstrap)
        .args(args)
        .env_remove("WEIR_DATA_DIR")
        .env_remove("WEIR_BOOTSTRAP");
    c
}

/// Runs the example against `bootstrap`; fails unless it succeeds. Returns its stdout.
fn on_cluster(bootstrap: &str, args: &[&str]) -> String {
    let out = cluster_command(bootstrap, args)
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "ad_clicks --bootstrap {bootstrap} {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The committed `ad_clicks_per_minute`, as a set, and whether any (ad, minute) came twice.
fn per_minute<'a>(place: impl Into<weir_adclick::Place<'a>>) -> BTreeSet<(u64, i64, i64, u64)> {
    let mut rows = BTreeSet::new();
    place
        .into()
        .read_committed(weir_adclick::PER_MINUTE, |value| {
            let m: weir_adclick::AdMinute = serde_json::from_slice(value).unwrap();
            assert!(
                rows.insert((m.ad_id, m.window_start, m.window_end, m.clicks)),
                "{m:?} committed twice"
            );
        })
        .unwrap();
    rows
}

/// generate → run → verify against `weir serve` gives exactly what the same seed gives on the
/// embedded log. No late clicks: which clicks miss their minute depends on how reads of the
/// partitions interleave, which differs between the two; every on-time click counts alike.
#[test]
fn generate_run_verify_on_a_cluster_equals_the_embedded_run() {
    let server_dir = tempfile::tempdir().expect("tempdir");
    let serve = super::serve::ServeProcess::start(server_dir.path(), 0);
    let generate = [
        "generate",
        "--events",
        "20000",
        "--seed",
        "7",
        "--late-share",
        "0",
        "--partitions",
        "4",
    ];
    let run = [
        "run",
        "--until-idle",
        "--metrics-ms",
        "0",
        "--epoch-ms",
        "200",
    ];
    let out = on_cluster(&serve.addr, &generate);
    assert!(out.contains("generated 20000 clicks"), "{out}");
    let out = on_cluster(&serve.addr, &run);
    assert!(out.contains("processed 20000 clicks"), "{out}");
    // Restarted, it finds nothing left to do.
    let out = on_cluster(&serve.addr, &run);
    assert!(out.contains("processed 0 clicks"), "{out}");
    let out = on_cluster(&serve.addr, &["verify"]);
    assert!(out.contains("verdict:            PASS"), "{out}");
    assert!(out.contains("input clicks:       20000"), "{out}");
    let cluster_rows = per_minute(&weir_adclick::ClientConfig::new(serve.addr.clone()));
    serve.stop();

    let dir = tempfile::tempdir().expect("tempdir");
    ok(dir.path(), &generate);
    ok(dir.path(), &run);
    let embedded_out = ok(dir.path(), &["verify"]);
    assert!(
        embedded_out.contains("verdict:            PASS"),
        "{embedded_out}"
    );
    let log = Log::open_read_only(dir.path()).unwrap();
    let embedded_rows = per_minute(&log);
    assert_eq!(
        embedded_rows.iter().map(|r| r.3).sum::<u64>(),
        20_000,
        "every click on time"
    );
    assert_eq!(cluster_rows, embedded_rows);
    assert_eq!(out, embedded_out, "the same verification report");
}

/// `weir bench adclick --bootstrap`: the embedded figures, then the job on the cluster, and
/// the cluster left without the topics the bench made.
#[test]
fn bench_adclick_on_a_cluster_reports_beside_the_embedded_figures() {
    let server_dir = tempfile::tempdir().expect("tempdir");
    let serve = super::serve::ServeProcess::start(server_dir.path(), 0);
    let bench = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
        c.args(["--bootstrap", &serve.addr, "bench", "adclick"])
            .args(["--events", "5000", "--runs", "1", "--no-json"])
            .args(extra)
            .env_remove("WEIR_DATA_DIR")
            .env_remove("WEIR_BOOTSTRAP");
        c.output().expect("run weir bench")
    };
    let out = bench(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figure = |name: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no `{name}` line in {stdout}"))
            .parse()
            .unwrap()
    };
    assert!(figure("events_per_s") > 0.0);
    assert!(figure("cluster_1_instance_events_per_s") > 0.0);
    assert!(figure("cluster_vs_embedded") > 0.0);
    assert_eq!(figure("cluster_instances"), 1.0);
    // It deleted what it made (its jobs' state and repartition topics too), so it runs again.
    let left: Vec<String> =
        weir_client::Admin::connect(&weir_client::ClientConfig::new(serve.addr.clone()))
            .unwrap()
            .list_topics()
            .unwrap()
            .into_iter()
            .filter(|t| !t.starts_with("__"))
            .collect();
    assert!(left.is_empty(), "the bench left {left:?}");
    let out = bench(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serve.stop();
}

/// SIGKILLed `run`s against `weir serve`, each fencing the one before: the committed result is
/// exact once a last run drains `clicks`.
#[test]
fn sigkilled_runs_on_a_cluster_restart_to_an_exact_result() {
    let server_dir = tempfile::tempdir().expect("tempdir");
    let serve = super::serve::ServeProcess::start(server_dir.path(), 0);
    on_cluster(
        &serve.addr,
        &["generate", "--events", "100000", "--late-share", "0.005"],
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    kill_runs(
        || {
            cluster_command(
                &serve.addr,
                &["run", "--epoch-ms", "50", "--metrics-ms", "20"],
            )
        },
        3,
        seed,
    );
    on_cluster(&serve.addr, &["run", "--until-idle", "--metrics-ms", "0"]);
    let out = on_cluster(&serve.addr, &["verify"]);
    assert!(
        out.contains("verdict:            PASS"),
        "seed {seed}: {out}"
    );
    assert!(out.contains("input clicks:       100000"), "{out}");
    serve.stop();
}

/// Two `run --until-idle` started together on a cluster are two instances of one job: each
/// processes a share of the clicks, the shares add up, and the committed result is exact.
#[test]
fn two_runs_on_a_cluster_share_the_work() {
    two_runs_share_the_work(&[]);
}

/// The same with the job as its continuous SQL query (`run --sql`): planned against the
/// cluster's topic configs, its instances sharing the query's work.
#[test]
fn two_sql_runs_on_a_cluster_share_the_work() {
    two_runs_share_the_work(&["--sql"]);
}

fn two_runs_share_the_work(extra: &[&str]) {
    let server_dir = tempfile::tempdir().expect("tempdir");
    let serve = super::serve::ServeProcess::start(server_dir.path(), 0);
    on_cluster(
        &serve.addr,
        &["generate", "--events", "50000", "--late-share", "0.005"],
    );
    let mut run = vec![
        "run",
        "--until-idle",
        "--metrics-ms",
        "0",
        "--epoch-ms",
        "200",
    ];
    run.extend_from_slice(extra);
    let children: Vec<_> = (0..2)
        .map(|_| {
            cluster_command(&serve.addr, &run)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn run")
        })
        .collect();
    let processed: Vec<u64> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().expect("wait for run");
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
                .lines()
                .find_map(|l| l.strip_prefix("processed "))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no `processed N clicks` line: {stdout}"))
        })
        .collect();
    assert_eq!(processed.iter().sum::<u64>(), 50_000, "{processed:?}");
    let out = on_cluster(&serve.addr, &["verify"]);
    assert!(out.contains("verdict:            PASS"), "{out}");
    serve.stop();
}
