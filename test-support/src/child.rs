//! Tests that need a second process re-run their own test binary as a child: the child is an
//! `#[ignore]`d test that returns at once unless its environment variable is set, so a normal run
//! skips it, and the parent runs it alone with `--exact --ignored`.
//!
//! For crash tests the child reports each commit on stdout ([`report_commits_while_running`])
//! and the parent kills it with SIGKILL at a random moment after it has committed, round after
//! round ([`kill_after_commits`]), then checks that the committed result equals that of a run
//! that was never killed.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The line a child prints for each commit, followed by the epoch.
pub const COMMITTED: &str = "committed";

/// After its commits, a child is killed within this many milliseconds: mid-epoch, mid-commit or
/// after it has caught up, depending on the draw.
pub const KILL_DELAY_MS_MAX: u64 = 150;

/// How often a reporting child looks at its job, in milliseconds.
const REPORT_POLL_MS: u64 = 2;

/// Runs the ignored test `name` (its path in the test binary, e.g. `"jobs::eo_child"`) of this
/// very test binary as a child process, with `env` set, its stdout piped to the caller and its
/// stderr inherited.
pub fn spawn_child(name: &str, env: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().expect("test binary path");
    let mut command = Command::new(exe);
    command
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().expect("spawn child test process")
}

/// The child's side: prints `committed N` on stdout each time `committed_epoch()` rises, and
/// returns once `is_finished()` (a child meant to be killed should never get there; the caller
/// says why it stopped).
pub fn report_commits_while_running(
    committed_epoch: impl Fn() -> u64,
    is_finished: impl Fn() -> bool,
) {
    // Straight to the process's stdout: the test harness captures `println!`.
    let mut out = std::io::stdout().lock();
    let mut reported = 0;
    while !is_finished() {
        let epoch = committed_epoch();
        if epoch > reported {
            reported = epoch;
            writeln!(out, "{COMMITTED} {epoch}").expect("stdout");
            out.flush().expect("flush");
        }
        std::thread::sleep(Duration::from_millis(REPORT_POLL_MS));
    }
}

/// The parent's side, `rounds` times: spawns the child test `name` with `env`, waits until it
/// has reported `commits_per_round` commits (so every round makes progress whatever the
/// machine's load), then SIGKILLs it at a random moment within [`KILL_DELAY_MS_MAX`] drawn from
/// `seed`. No destructor, no flush, no clean shutdown. Panics, naming the round and the seed, if
/// a child ends before its commits.
pub fn kill_after_commits(
    name: &str,
    env: &[(&str, String)],
    rounds: usize,
    commits_per_round: usize,
    seed: u64,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    for round in 0..rounds {
        let mut child = spawn_child(name, env);
        // Kept open until the child is dead, so that its writes never fail.
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        // libtest prints its own lines first; EOF before the commits means the child failed.
        let committed = lines
            .by_ref()
            .map_while(Result::ok)
            .filter(|line| line.starts_with(COMMITTED))
            .take(commits_per_round)
            .count();
        assert!(
            committed == commits_per_round,
            "round {round}: the child ended without committing (seed {seed})"
        );
        std::thread::sleep(Duration::from_millis(rng.u64(0..KILL_DELAY_MS_MAX)));
        child.kill().expect("kill");
        child.wait().expect("wait");
        drop(lines);
    }
}
