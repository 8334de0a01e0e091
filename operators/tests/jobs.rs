//! Windowed jobs end to end on a real log: idle partitions, hot-key salting against the
//! single-stage result, and exactly-once under SIGKILL.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weir_log::{Log, Producer, ProducerConfig, ProducerRecord};
use weir_operators::aggregate::count;
use weir_operators::window::WindowSpec;
use weir_operators::windowed::{HotKeys, KeyedWindowExt, LateRecord, WindowResult};
use weir_runtime::{Job, JobConfig, Json};
use weir_test_support::child::{kill_after_commits, report_commits_while_running, spawn_child};
use weir_test_support::{create_topic as topic, open, produce_json, read_values, seed};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
struct Click {
    ad_id: u64,
    user_id: u64,
    ts: i64,
}

const MINUTE: i64 = 60_000;
/// 2026-11-22 00:00 UTC.
const T0: i64 = 1_795_305_600_000;
const OUT_OF_ORDER_MS: i64 = 5_000;

/// Clicks over `minutes`, event times out of order by up to 5 s, `late_share` of them minutes
/// late; `hot_share` of them on ad 0, the rest Zipf over `ads` ads.
fn clicks(
    n: usize,
    ads: u64,
    minutes: i64,
    hot_share: f64,
    late_share: f64,
    seed: u64,
) -> Vec<Click> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let weights: Vec<f64> = (1..=ads).map(|r| 1.0 / r as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in weights {
        acc += w / total;
        cdf.push(acc);
    }
    let step = (minutes * MINUTE) / n as i64;
    (0..n)
        .map(|i| {
            let ad_id = if rng.f64() < hot_share {
                0
            } else {
                let u = rng.f64();
                cdf.partition_point(|c| *c < u).min(cdf.len() - 1) as u64 + 1
            };
            let base = T0 + i as i64 * step;
            let ts = if rng.f64() < late_share {
                base - rng.i64(2 * MINUTE..4 * MINUTE)
            } else {
                base - rng.i64(0..OUT_OF_ORDER_MS)
            };
            Click {
                ad_id,
                user_id: rng.u64(0..100_000),
                ts,
            }
        })
        .collect()
}

fn setup(dir: &Path, input: &[Click], partitions: i32) {
    let log = open(dir);
    topic(&log, "clicks", partitions);
    topic(&log, "counts", 2);
    topic(&log, "late", 1);
    produce_json(&log, "clicks", input, |c| c.ad_id.to_string());
    log.close().expect("close");
}

/// The windowed count job of these tests (combining in the upstream tasks unless salted).
fn count_job(log: &Log, config: JobConfig, hot: Option<HotKeys<u64>>) -> Job {
    count_job_with(log, config, hot, true)
}

/// The count job; `combine: false` sends every click through the exchange (a single stage).
fn count_job_with(
    log: &Log,
    mut config: JobConfig,
    hot: Option<HotKeys<u64>>,
    combine: bool,
) -> Job {
    config.parallelism_default = 2;
    let job = Job::new(log, config).expect("job");
    let mut windowed = job
        .source::<Click, _>("clicks", Json)
        .timestamps(|c| c.ts, OUT_OF_ORDER_MS)
        .key_by(|c| c.ad_id)
        .window(WindowSpec::tumbling(Duration::from_secs(60)))
        .combine(combine);
    if let Some(hot) = hot {
        windowed = windowed.hot_keys(hot);
    }
    let out = windowed.aggregate(count());
    out.results
        .sink_keyed("counts", Json, |r: &WindowResult<u64, u64>| {
            r.key.to_string().into_bytes()
        });
    out.late.sink("late", Json);
    job
}

type Counts = BTreeMap<(u64, i64), u64>;

/// Output as (ad, window start) → count, asserting that no window appears twice.
fn output_counts(log: &Log) -> Counts {
    let mut m = Counts::new();
    for r in read_values::<WindowResult<u64, u64>>(log, "counts") {
        assert!(r.is_final);
        assert_eq!(r.window_end - r.window_start, MINUTE);
        let prev = m.insert((r.key, r.window_start), r.value);
        assert!(
            prev.is_none(),
            "window {:?} emitted twice",
            (r.key, r.window_start)
        );
    }
    m
}

fn late_counts(log: &Log) -> Counts {
    let mut m = Counts::new();
    for r in read_values::<LateRecord<u64, Click>>(log, "late") {
        assert_eq!(r.value.ad_id, r.key);
        assert_eq!(r.reason, "behind_watermark");
        *m.entry((r.key, r.ts.div_euclid(MINUTE) * MINUTE))
            .or_default() += 1;
    }
    m
}

fn input_counts(input: &[Click]) -> Counts {
    let mut m = Counts::new();
    for c in input {
        *m.entry((c.ad_id, c.ts.div_euclid(MINUTE) * MINUTE))
            .or_default() += 1;
    }
    m
}

/// For every ad and minute, output plus late equals input.
fn assert_accounts_for_input(out: &Counts, late: &Counts, input: &[Click]) {
    let mut sum = out.clone();
    for (k, n) in late {
        *sum.entry(*k).or_default() += n;
    }
    assert_eq!(sum, input_counts(input));
}

fn run_to_end(dir: &Path, name: &str, hot: Option<HotKeys<u64>>) -> weir_runtime::JobMetrics {
    let log = open(dir);
    let mut config = JobConfig::new(name);
    config.stop_when_drained = true;
    config.epoch_ms = 100;
    let m = count_job(&log, config, hot)
        .start()
        .expect("start")
        .wait()
        .expect("run");
    log.close().expect("close");
    m
}

#[test]
fn salted_two_stage_counts_equal_single_stage_on_a_skewed_stream() {
    let input = clicks(120_000, 500, 20, 0.5, 0.01, 7);
    let single = tempfile::tempdir().expect("tempdir");
    let salted = tempfile::tempdir().expect("tempdir");
    setup(single.path(), &input, 4);
    setup(salted.path(), &input, 4);
    run_to_end(single.path(), "single", None);
    let log = open(salted.path());
    let mut config = JobConfig::new("salted");
    config.stop_when_drained = true;
    config.epoch_ms = 100;
    let job = {
        config.parallelism_default = 2;
        let job = Job::new(&log, config).expect("job");
        let out = job
            .source::<Click, _>("clicks", Json)
            .timestamps(|c| c.ts, OUT_OF_ORDER_MS)
            .key_by(|c| c.ad_id)
            .window(WindowSpec::tumbling(Duration::from_secs(60)))
            .hot_keys(HotKeys::detect().salts(4).share(0.1))
            .aggregate(count());
        out.results
            .sink_keyed("counts", Json, |r: &WindowResult<u64, u64>| {
                r.key.to_string().into_bytes()
            });
        out.late.sink("late", Json);
        let stats = out.hot_keys.expect("salting stats");
        (job, stats)
    };
    let (job, stats) = job;
    job.start().expect("start").wait().expect("run");
    let hot = stats.hot_keys();
    let ad0 = hot
        .iter()
        .find(|h| h.key == 0)
        .expect("ad 0 detected as hot");
    assert_eq!(ad0.per_salt.len(), 4);
    assert!(
        ad0.per_salt.iter().all(|n| *n > 1_000),
        "{:?}",
        ad0.per_salt
    );
    assert!(
        hot.iter().all(|h| h.key < 3),
        "only the top ads are hot: {hot:?}"
    );
    let salted_out = output_counts(&log);
    let salted_late = late_counts(&log);
    log.close().expect("close");
    let log = open(single.path());
    let single_out = output_counts(&log);
    let single_late = late_counts(&log);
    assert_eq!(salted_out, single_out);
    assert_eq!(salted_late, single_late);
    assert_accounts_for_input(&single_out, &single_late, &input);
    assert!(
        single_late.values().sum::<u64>() > 0,
        "the stream has late clicks"
    );
}

/// Click `ts` of ad `partition`, in partition `partition` (the idleness tests).
fn click(partition: i32, ts: i64) -> Click {
    Click {
        ad_id: partition as u64,
        user_id: 0,
        ts,
    }
}

/// Sends `c` to the partition its ad names.
fn send(p: &Producer, c: Click) {
    let v = serde_json::to_vec(&c).expect("json");
    p.send(ProducerRecord::new("clicks", &v).partition(c.ad_id as i32))
        .expect("send");
}

/// [`send`], then waits until it is in the log.
fn send_flushed(p: &Producer, c: Click) {
    send(p, c);
    p.flush().expect("flush");
}

/// Runs the count job over `dir` to its end, combining or not; returns the output, the late
/// clicks, and how many records the window operator took in (what crossed the exchange).
fn counts_of_run(dir: &Path, name: &str, combine: bool) -> (Counts, Counts, u64) {
    let log = open(dir);
    let mut config = JobConfig::new(name);
    config.stop_when_drained = true;
    config.epoch_ms = 100;
    let m = count_job_with(&log, config, None, combine)
        .start()
        .expect("start")
        .wait()
        .expect("run");
    let window_in = m
        .operators
        .iter()
        .filter(|o| o.operator == "window")
        .map(|o| o.records_in)
        .sum();
    let counts = (output_counts(&log), late_counts(&log), window_in);
    log.close().expect("close");
    counts
}

#[test]
fn combined_partials_count_exactly_what_a_single_stage_counts_late_clicks_included() {
    let input = clicks(150_000, 400, 20, 0.5, 0.02, 11);
    let single = tempfile::tempdir().expect("tempdir");
    let combined = tempfile::tempdir().expect("tempdir");
    setup(single.path(), &input, 4);
    setup(combined.path(), &input, 4);
    let (single_out, single_late, single_in) = counts_of_run(single.path(), "single", false);
    let (combined_out, combined_late, combined_in) =
        counts_of_run(combined.path(), "combined", true);
    assert_eq!(combined_out, single_out);
    assert_eq!(combined_late, single_late);
    assert_accounts_for_input(&combined_out, &combined_late, &input);
    assert!(
        single_late.values().sum::<u64>() > 1_000,
        "the stream has late clicks"
    );
    // What crossed the exchange: every click for the single stage, partials (and the late
    // clicks, whole) when combined.
    assert_eq!(single_in, input.len() as u64);
    assert!(
        combined_in < input.len() as u64 / 4,
        "{combined_in} records crossed the exchange for {} clicks",
        input.len()
    );
}

/// A partition goes idle, the other partitions' watermark closes windows meanwhile, and then
/// the idle partition wakes with a click for a window that closed while it slept. A single
/// stage reports that click late (`window_closed`); so must the combined aggregation, and not
/// fold it into a partial that would reopen a closed window.
#[test]
fn a_click_after_idleness_for_a_closed_window_is_late_when_combined_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    topic(&log, "clicks", 2);
    topic(&log, "counts", 1);
    topic(&log, "late", 1);
    let p = Producer::new(&log, ProducerConfig::default()).expect("producer");
    // Two minutes on both partitions; then only partition 0 goes on.
    for step in 0..60 {
        send_flushed(&p, click(0, T0 + step * 2_000));
        send_flushed(&p, click(1, T0 + step * 2_000));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let live = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let p = Producer::new(&log, ProducerConfig::default()).expect("producer");
            let mut step = 60;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                send_flushed(&p, click(0, T0 + step * 2_000));
                step += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let mut config = JobConfig::new("woken");
    config.idle_timeout_ms = 500;
    config.epoch_ms = 50;
    let handle = count_job_with(&log, config, None, true)
        .start()
        .expect("start");
    // Partition 1 idles; partition 0's watermark alone closes minute 3.
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "{what} after 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("minute 3 of ad 0 did not close", &|| {
        output_counts(&log).contains_key(&(0, T0 + 3 * MINUTE))
    });
    // Partition 1 wakes with a click in minute 2: on time by its own watermark (about
    // minute 1:53), in a window the job's watermark has closed.
    send_flushed(&p, click(1, T0 + 2 * MINUTE + 30_000));
    wait_for("the woken click was not reported late", &|| {
        !read_values::<LateRecord<u64, Click>>(&log, "late").is_empty()
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    live.join().expect("producer thread");
    handle.stop().expect("stop");
    let late = read_values::<LateRecord<u64, Click>>(&log, "late");
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0].key, 1);
    assert_eq!(late[0].ts, T0 + 2 * MINUTE + 30_000);
    assert_eq!(late[0].reason, "window_closed");
    let out = output_counts(&log);
    assert_eq!(out.get(&(1, T0)), Some(&30));
    assert_eq!(out.get(&(1, T0 + MINUTE)), Some(&30));
    assert!(
        !out.contains_key(&(1, T0 + 2 * MINUTE)),
        "a closed window was reopened: {out:?}"
    );
}

#[test]
fn an_idle_partition_does_not_hold_windows_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    topic(&log, "clicks", 4);
    topic(&log, "counts", 1);
    topic(&log, "late", 1);
    // Minutes 0..2 on all four partitions, one click every 2 s of event time; then partition 3
    // goes quiet while a producer keeps 0..2 live (2 s of event time every 10 ms).
    let p = Producer::new(&log, ProducerConfig::default()).expect("producer");
    for step in 0..60 {
        for partition in 0..4 {
            send(&p, click(partition, T0 + step * 2_000));
        }
    }
    p.flush().expect("flush");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let live = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let p = Producer::new(&log, ProducerConfig::default()).expect("producer");
            let mut step = 60;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for partition in 0..3 {
                    send(&p, click(partition, T0 + step * 2_000));
                }
                p.flush().expect("flush");
                step += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let mut config = JobConfig::new("idle");
    config.idle_timeout_ms = 1_000;
    config.epoch_ms = 50;
    let handle = count_job(&log, config, None).start().expect("start");
    // Partition 3's watermark stays below minute 2: without idle detection, no window from
    // minute 2 on could close. With it, minutes 2..5 of the live partitions close, complete.
    let want: Counts = (0..3u64)
        .flat_map(|ad| (0..6).map(move |m| ((ad, T0 + m * MINUTE), 30)))
        .chain((0..2).map(|m| ((3, T0 + m * MINUTE), 30)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: Counts = output_counts(&log)
            .into_iter()
            .filter(|((_, start), _)| *start < T0 + 6 * MINUTE)
            .collect();
        if got.len() == want.len() {
            assert_eq!(got, want);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "windows did not close: {} of {} results after 60 s",
            got.len(),
            want.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    live.join().expect("producer thread");
    let m = handle.stop().expect("stop");
    assert!(m.watermark.is_some_and(|w| w >= T0 + 6 * MINUTE), "{m:?}");
    assert!(late_counts(&log).is_empty(), "no click was late");
}

// ---- exactly-once under SIGKILL ----------------------------------------------------------

const CHILD_ENV: &str = "WEIR_EO_CHILD_DIR";

/// With this set, the child follows its input (never stopping by itself) and prints a line each
/// time an epoch commits, until it is killed.
const CHILD_FOLLOW_ENV: &str = "WEIR_EO_CHILD_FOLLOW";

/// The child: runs the count job on the data directory until drained, then prints DONE; or, with
/// [`CHILD_FOLLOW_ENV`], until killed.
#[test]
#[ignore = "child process of exactly_once_under_sigkill"]
fn eo_child() {
    use std::io::Write;
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let follow = std::env::var_os(CHILD_FOLLOW_ENV).is_some();
    let log = open(Path::new(&dir));
    let mut config = JobConfig::new("eo");
    config.stop_when_drained = !follow;
    config.epoch_ms = 20;
    // Salted two stages, or (with CHILD_COMBINED_ENV) partials combined upstream.
    let hot = std::env::var_os(CHILD_COMBINED_ENV)
        .is_none()
        .then(|| HotKeys::detect().salts(3));
    let handle = count_job(&log, config, hot).start().expect("start");
    if follow {
        report_commits_while_running(|| handle.committed_epoch(), || handle.is_finished());
        panic!("the job stopped: {:?}", handle.wait());
    }
    handle.wait().expect("run");
    log.close().expect("close");
    let mut out = std::io::stdout().lock();
    writeln!(out, "DONE").expect("stdout");
    out.flush().expect("flush");
}

/// With this set, the child's job combines partials upstream instead of salting.
const CHILD_COMBINED_ENV: &str = "WEIR_EO_CHILD_COMBINED";

fn spawn_eo_child(dir: &Path, combined: bool) -> std::process::Child {
    let mut env = vec![(CHILD_ENV, dir.display().to_string())];
    if combined {
        env.push((CHILD_COMBINED_ENV, "1".to_string()));
    }
    spawn_child("jobs::eo_child", &env)
}

#[test]
fn exactly_once_under_sigkill_equals_an_uninterrupted_run() {
    exactly_once_under_sigkill(1_000_000, false);
}

/// The same with the partials combined in the upstream tasks: what a task had folded in but
/// not yet handed on when it was killed must be counted once, by the run after it.
#[test]
fn exactly_once_under_sigkill_with_combined_partials_equals_an_uninterrupted_run() {
    exactly_once_under_sigkill(400_000, true);
}

fn exactly_once_under_sigkill(clicks_n: usize, combined: bool) {
    let seed = seed();
    let input = clicks(clicks_n, 300, 30, 0.3, 0.02, seed);
    let reference = tempfile::tempdir().expect("tempdir");
    let crashed = tempfile::tempdir().expect("tempdir");
    setup(reference.path(), &input, 4);
    setup(crashed.path(), &input, 4);

    // Each round: wait until the child has committed once (so every round makes progress
    // whatever the machine's load), then SIGKILL it at a random moment: mid-epoch, mid-commit,
    // or after it has caught up. No destructor, no flush, no clean shutdown.
    let mut follow = vec![
        (CHILD_ENV, crashed.path().display().to_string()),
        (CHILD_FOLLOW_ENV, "1".to_string()),
    ];
    if combined {
        follow.push((CHILD_COMBINED_ENV, "1".to_string()));
    }
    kill_after_commits("jobs::eo_child", &follow, 8, 1, seed);
    // Then once more to the end of the input, every window closed.
    let out = spawn_eo_child(crashed.path(), combined)
        .wait_with_output()
        .expect("final run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("DONE"),
        "final run failed: {stdout}"
    );

    // The uninterrupted run, same job, same input.
    let out = spawn_eo_child(reference.path(), combined)
        .wait_with_output()
        .expect("reference run");
    assert!(out.status.success(), "reference run failed");

    let log = open(crashed.path());
    let crashed_out = output_counts(&log);
    let crashed_late = late_counts(&log);
    log.close().expect("close");
    let log = open(reference.path());
    let reference_out = output_counts(&log);
    let reference_late = late_counts(&log);
    assert_eq!(
        crashed_out, reference_out,
        "committed output differs (seed {seed})"
    );
    assert_eq!(
        crashed_late, reference_late,
        "late output differs (seed {seed})"
    );
    assert_accounts_for_input(&reference_out, &reference_late, &input);
    let per_ad: HashMap<u64, u64> =
        reference_out
            .iter()
            .fold(HashMap::new(), |mut m, ((ad, _), n)| {
                *m.entry(*ad).or_default() += n;
                m
            });
    assert!(
        per_ad[&0] > clicks_n as u64 / 10,
        "the hot ad carries its share"
    );
}

#[test]
fn sliding_reduce_and_session_count_jobs_match_brute_force() {
    // In order per partition, within the out-of-orderness bound: nothing is late.
    let input = clicks(30_000, 50, 10, 0.0, 0.0, 11);
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path(), &input, 3);
    let log = open(dir.path());
    topic(&log, "sliding", 1);
    topic(&log, "sessions", 1);
    let mut config = JobConfig::new("shapes");
    config.stop_when_drained = true;
    config.parallelism_default = 2;
    let job = Job::new(&log, config).expect("job");
    let keyed = job
        .source::<Click, _>("clicks", Json)
        .timestamps(|c| c.ts, OUT_OF_ORDER_MS)
        .key_by(|c| c.ad_id);
    // Highest user id per ad in 2-minute windows sliding by 30 s.
    let sliding = keyed
        .window(WindowSpec::sliding(
            Duration::from_secs(120),
            Duration::from_secs(30),
        ))
        .name("sliding")
        .reduce(|a: &mut Click, b: &Click| {
            if b.user_id > a.user_id {
                *a = *b;
            }
        });
    sliding
        .results
        .map(|r| (r.key, r.window_start, r.value.map(|c| c.user_id)))
        .sink("sliding", Json);
    sliding.late.sink("late", Json);
    // Clicks per ad in sessions closed by 20 s without a click.
    let sessions = keyed
        .window(WindowSpec::session(Duration::from_secs(20)))
        .name("sessions")
        .aggregate(count());
    sessions
        .results
        .map(|r| (r.key, r.window_start, r.window_end, r.value))
        .sink("sessions", Json);
    sessions.late.sink("late", Json);
    job.start().expect("start").wait().expect("run");

    let mut want_sliding: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    for c in &input {
        let last = c.ts.div_euclid(30_000) * 30_000;
        let mut start = last;
        while start > c.ts - 120_000 {
            let e = want_sliding.entry((c.ad_id, start)).or_insert(0);
            *e = (*e).max(c.user_id);
            start -= 30_000;
        }
    }
    let got_sliding: BTreeMap<(u64, i64), u64> =
        read_values::<(u64, i64, Option<u64>)>(&log, "sliding")
            .into_iter()
            .map(|(k, s, v)| ((k, s), v.expect("a non-empty window")))
            .collect();
    assert_eq!(got_sliding, want_sliding);

    let mut by_ad: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for c in &input {
        by_ad.entry(c.ad_id).or_default().push(c.ts);
    }
    let mut want_sessions = Vec::new();
    for (ad, mut ts) in by_ad {
        ts.sort();
        let (mut start, mut last, mut n) = (ts[0], ts[0], 0u64);
        for t in ts {
            if t > last + 20_000 {
                want_sessions.push((ad, start, last + 20_000, n));
                (start, n) = (t, 0);
            }
            last = t;
            n += 1;
        }
        want_sessions.push((ad, start, last + 20_000, n));
    }
    let mut got_sessions: Vec<(u64, i64, i64, u64)> = read_values(&log, "sessions");
    got_sessions.sort();
    want_sessions.sort();
    assert_eq!(got_sessions, want_sessions);
    assert!(late_counts(&log).is_empty());
}
