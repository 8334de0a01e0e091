//! `weir sql`: output formats, exit codes, the refusal of file access, and the shell.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use super::{Run, run, run_with_input, weir};

/// A data directory with `clicks` (binary, 2 partitions) holding four clicks.
fn clicks(dir: &Path) {
    run(
        dir,
        &[
            "topic",
            "create",
            "clicks",
            "--partitions",
            "2",
            "--schema",
            "ad_id BIGINT, user_id BIGINT, ts TIMESTAMP",
            "--format",
            "binary",
        ],
    )
    .ok();
    let lines = "{\"ad_id\": 1, \"user_id\": 10, \"ts\": 1000}\n\
                 {\"ad_id\": 2, \"user_id\": 11, \"ts\": 2000}\n\
                 {\"ad_id\": 1, \"user_id\": 12, \"ts\": 3000}\n\
                 {\"ad_id\": 3, \"user_id\": null, \"ts\": 4000}\n";
    run_with_input(dir, &["produce", "clicks", "--key-field", "ad_id"], lines).ok();
}

const QUERY: &str =
    "SELECT ad_id, count(*) AS n, max(user_id) AS u FROM clicks GROUP BY ad_id ORDER BY ad_id";

#[test]
fn sql_prints_a_table_csv_or_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    clicks(dir.path());
    let table = run(dir.path(), &["sql", QUERY]).ok().stdout;
    assert_eq!(
        table,
        "+-------+---+----+\n\
         | ad_id | n | u  |\n\
         +-------+---+----+\n\
         | 1     | 2 | 12 |\n\
         | 2     | 1 | 11 |\n\
         | 3     | 1 |    |\n\
         +-------+---+----+\n"
    );
    let csv = run(dir.path(), &["sql", QUERY, "--format", "csv"])
        .ok()
        .stdout;
    assert_eq!(csv, "ad_id,n,u\n1,2,12\n2,1,11\n3,1,\n");
    let json = run(dir.path(), &["sql", QUERY, "--format", "json"])
        .ok()
        .stdout;
    assert_eq!(
        json,
        "{\"ad_id\":1,\"n\":2,\"u\":12}\n{\"ad_id\":2,\"n\":1,\"u\":11}\n{\"ad_id\":3,\"n\":1}\n"
    );
    // Metadata columns: the key as text, partitions from the producer's key hashing.
    let keys = run(
        dir.path(),
        &[
            "sql",
            "SELECT DISTINCT _key FROM clicks ORDER BY _key",
            "--format",
            "csv",
        ],
    )
    .ok()
    .stdout;
    assert_eq!(keys, "_key\n1\n2\n3\n");
}

#[test]
fn sql_errors_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    clicks(dir.path());
    let e = run(dir.path(), &["sql", "SELECT * FROM nope"]).fails(1);
    assert!(e.stderr.contains("nope"), "{}", e.stderr);
    let e = run(dir.path(), &["sql", "SELEC 1"]).fails(1);
    assert!(e.stderr.contains("SELEC"), "{}", e.stderr);
    let e = run(
        dir.path(),
        &["sql", "COPY clicks TO '/tmp/weir-cli-copy.csv'"],
    )
    .fails(1);
    assert!(e.stderr.contains("not supported"), "{}", e.stderr);
    assert!(!Path::new("/tmp/weir-cli-copy.csv").exists());
    run(dir.path(), &["sql", QUERY, "--format", "xml"]).fails(2);
    let e = run(
        dir.path(),
        &[
            "sql",
            "--continuous",
            "INSERT INTO t SELECT * FROM clicks",
            "--until-idle",
        ],
    )
    .fails(1);
    assert!(e.stderr.contains("FROM must be"), "{}", e.stderr);
    run(dir.path(), &["sql", "--continuous"]).fails(2);
    let missing = dir.path().join("missing");
    run(&missing, &["sql", "SELECT 1"]).fails(1);
}

/// The windows [`CONTINUOUS`] writes for the clicks of `clicks`, and what they read back as.
pub(crate) const WINDOWS: &str = "SELECT ad_id, window_start, window_end, n, first_user \
    FROM per_2s ORDER BY ad_id, window_start";
pub(crate) const WINDOWS_CSV: &str = "ad_id,window_start,window_end,n,first_user\n\
    1,0,2000,1,10\n1,2000,4000,1,12\n2,2000,4000,1,11\n3,4000,6000,1,\n";

pub(crate) const CONTINUOUS: &str = "INSERT INTO per_2s \
    SELECT ad_id, window_start, window_end, count(*) AS n, min(user_id) AS first_user \
    FROM TUMBLE(clicks, ts, INTERVAL '2' SECOND) GROUP BY ad_id, window_start, window_end";

#[test]
fn sql_continuous_writes_each_window_once_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    clicks(dir.path());
    run(
        dir.path(),
        &[
            "topic",
            "create",
            "per_2s",
            "--partitions",
            "2",
            "--schema",
            "ad_id BIGINT, window_start BIGINT, window_end BIGINT, n BIGINT, first_user BIGINT",
            "--format",
            "binary",
        ],
    )
    .ok();
    let args = [
        "sql",
        "--continuous",
        CONTINUOUS,
        "--until-idle",
        "--metrics-ms",
        "0",
    ];
    let out = run(dir.path(), &args).ok();
    assert!(out.stdout.contains("read 4 rows"), "{}", out.stdout);
    assert!(
        out.stdout.contains("4 results to `per_2s`"),
        "{}",
        out.stdout
    );
    let (windows, want) = (WINDOWS, WINDOWS_CSV);
    assert_eq!(
        run(dir.path(), &["sql", windows, "--format", "csv"])
            .ok()
            .stdout,
        want
    );
    // The same job again resumes from its committed offsets: nothing read, nothing doubled.
    let again = run(dir.path(), &args).ok();
    assert!(again.stdout.contains("read 0 rows"), "{}", again.stdout);
    assert_eq!(
        run(dir.path(), &["sql", windows, "--format", "csv"])
            .ok()
            .stdout,
        want
    );
}

#[test]
fn sql_shell_runs_statements_until_quit() {
    let dir = tempfile::tempdir().unwrap();
    clicks(dir.path());
    let mut child = weir(dir.path())
        .args(["sql", "--format", "csv"])
        .env("HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT count(*) AS n\n  FROM clicks;\nSELEC oops;\nSELECT 7 AS seven;\n\\q\nSELECT 8;\n")
        .unwrap();
    let out = Run::from(child.wait_with_output().unwrap());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "n\n4\nseven\n7\n");
    assert!(out.stderr.contains("error: "), "{}", out.stderr);
}

#[test]
fn a_query_past_its_memory_limit_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    clicks(d);
    let lines: String = (0..2_000)
        .map(|i| format!("{{\"ad_id\": {}, \"user_id\": {i}, \"ts\": {i}}}\n", i % 7))
        .collect();
    run_with_input(d, &["produce", "clicks"], &lines).ok();
    // 2,004 x 2,004 rows to sort: tens of MB, against a 4 MB limit.
    let cross = "SELECT a.user_id, b.user_id FROM clicks a, clicks b ORDER BY a.ts, b.ts";
    let out = run(d, &["sql", cross, "--memory-bytes-max", "4000000"]).fails(1);
    assert!(
        out.stderr.starts_with("error: resources exhausted: ")
            && out.stderr.contains("--memory-bytes-max 4000000"),
        "{}",
        out.stderr
    );
    // A result bigger than the limit counts too.
    let all = "SELECT a.user_id, b.user_id FROM clicks a, clicks b";
    let out = run(d, &["sql", all, "--memory-bytes-max", "4000000"]).fails(1);
    assert!(
        out.stderr.starts_with("error: resources exhausted: "),
        "{}",
        out.stderr
    );
    // Under the default limit, the same data and an ordinary query are fine.
    let out = run(
        d,
        &[
            "sql",
            "SELECT count(*) AS n, max(user_id) AS u FROM clicks",
            "--format",
            "csv",
        ],
    )
    .ok();
    assert_eq!(out.stdout, "n,u\n2004,1999\n");
    let out = run(d, &["sql", "SELECT 1", "--memory-bytes-max", "0"]).fails(2);
    assert!(out.stderr.contains("--memory-bytes-max"), "{}", out.stderr);

    // A million groups in 8 MB: only with spilling, which writes to a private temporary
    // directory (under $TMPDIR) and removes it afterwards.
    let pairs = "SELECT count(*) AS n FROM (SELECT DISTINCT a.user_id AS u, b.user_id AS v \
                 FROM clicks a, clicks b WHERE a.user_id < 1000 AND b.user_id < 1000)";
    let tmp = d.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let sql = |extra: &[&str]| {
        let mut c = weir(d);
        c.args([
            "sql",
            pairs,
            "--format",
            "csv",
            "--memory-bytes-max",
            "8000000",
        ])
        .args(extra)
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null());
        Run::from(c.output().unwrap())
    };
    let out = sql(&[]).fails(1);
    assert!(
        out.stderr.starts_with("error: resources exhausted: ")
            && out.stderr.contains("no spilling"),
        "{}",
        out.stderr
    );
    let out = sql(&["--spill-bytes-max", "1000000000"]).ok();
    assert_eq!(out.stdout, "n\n1000000\n");
    let out = sql(&["--spill-bytes-max", "100000"]).fails(1);
    assert!(
        out.stderr.starts_with("error: resources exhausted: ")
            && out.stderr.contains("--spill-bytes-max 100000"),
        "{}",
        out.stderr
    );
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "spill files left: {left:?}");
}

#[test]
fn a_topic_without_schema_says_why_it_is_not_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    clicks(d);
    run(d, &["topic", "create", "notes", "--partitions", "1"]).ok();
    let out = run(d, &["sql", "SELECT * FROM notes"]).fails(1);
    assert!(
        out.stderr
            .contains("topic 'notes' has no schema: create it with a schema")
            && out.stderr.contains("--schema"),
        "{}",
        out.stderr
    );
    // An unknown name is still not found, and the topics with a schema still read.
    let out = run(d, &["sql", "SELECT * FROM nope"]).fails(1);
    assert!(out.stderr.contains("not found"), "{}", out.stderr);
    run(d, &["sql", "SELECT count(*) FROM clicks"]).ok();
}
