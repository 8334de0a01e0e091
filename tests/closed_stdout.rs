//! A reader that goes away (`weir consume t | head -1`) ends every command quietly with status 0,
//! whatever the command and its output format.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use super::{Run, run, run_with_input, wait_with_output, weir};

/// Records in the topic: their output is megabytes, far past any pipe buffer.
const RECORDS: usize = 20_000;

/// A data directory with `t` (one partition, a schema so that SQL reads it) holding `RECORDS`
/// records, and a group `g` that committed one of them.
fn topic(d: &Path) {
    run(
        d,
        &[
            "topic",
            "create",
            "t",
            "--partitions",
            "1",
            "--schema",
            "id BIGINT, name VARCHAR",
        ],
    )
    .ok();
    let lines: String = (0..RECORDS)
        .map(|i| {
            format!("{{\"id\": {i}, \"name\": \"record number {i} of the closed-pipe test\"}}\n")
        })
        .collect();
    run_with_input(d, &["produce", "t"], &lines).ok();
    run(
        d,
        &[
            "consume",
            "t",
            "--group",
            "g",
            "--from-beginning",
            "--max",
            "1",
        ],
    )
    .ok();
}

/// Runs weir with its standard output a pipe whose reader has already closed it, so that the
/// first write fails whatever the output's size.
fn run_with_closed_stdout(d: &Path, args: &[&str]) -> Run {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    Run::from(
        weir(d)
            .args(args)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run weir"),
    )
}

#[test]
fn a_reader_that_reads_one_line_and_leaves_ends_consume_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    topic(d);
    for format in ["json", "text"] {
        // `weir consume t --from-beginning | head -1`: follows the topic (no --max), so only the
        // closed pipe ends it.
        let mut child = weir(d)
            .args(["consume", "t", "--from-beginning", "--format", format])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weir");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("read a line");
        assert!(first.contains("\"id\":0"), "{format}: {first}");
        drop(stdout);
        let out = wait_with_output(child);
        assert_eq!(
            (out.code, out.stderr.as_str()),
            (0, ""),
            "--format {format}"
        );
    }
}

#[test]
fn a_closed_stdout_is_a_quiet_exit_0_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    topic(d);
    let all = "SELECT * FROM t ORDER BY id";
    for args in [
        &["consume", "t", "--from-beginning", "--max", "20000"][..],
        &["consume", "t", "--from-beginning", "--format", "text"],
        &["consume", "t", "--group", "h", "--from-beginning"],
        &["sql", all],
        &["sql", all, "--format", "csv"],
        &["sql", all, "--format", "json"],
        &["topic", "list"],
        &["topic", "describe", "t"],
        &["groups", "list"],
        &["groups", "describe", "g"],
    ] {
        let out = run_with_closed_stdout(d, args);
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{args:?}");
    }
    // The group that could print nothing committed nothing: it has no offset rows, if weir
    // knows it at all.
    let out = run(d, &["groups", "describe", "h"]);
    let rows: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !(l.starts_with("topic") && l.contains("committed")))
        .skip(1)
        .collect();
    assert!(rows.is_empty(), "{}{}", out.stdout, out.stderr);

    // produce still produces: only its closing `produced N records` line was lost.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let mut child = weir(d)
        .args(["produce", "t"])
        .stdin(Stdio::piped())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir");
    let mut stdin = child.stdin.take().expect("piped stdin");
    std::io::Write::write_all(&mut stdin, b"{\"id\": -1, \"name\": \"one more\"}\n")
        .expect("write a line");
    drop(stdin);
    let out = child.wait_with_output().expect("wait for weir");
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).as_ref()
        ),
        (Some(0), "")
    );
    let count = run(
        d,
        &["sql", "SELECT count(*) AS n FROM t", "--format", "csv"],
    )
    .ok();
    assert_eq!(count.stdout, format!("n\n{}\n", RECORDS + 1));
}
