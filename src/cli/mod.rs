//! Argument parsing (clap derive), the data directory, opening the log, and errors → exit codes.
//!
//! Exit codes: 0 success, 1 a runtime error, 2 a usage error (clap's own, and invalid values
//! that clap cannot see, raised as [`UsageError`]). Every error is one line on stderr.

mod bench;
mod bench_adclick;
mod bench_serve;
mod bench_sql;
mod cluster;
mod consume;
mod groups;
mod produce;
mod report;
mod serve;
mod sql;
mod stdout;
mod topic;
mod user;
mod values;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use weir::log::format::Compression;
use weir::log::{Acks, IsolationLevel, Log, LogConfig};

/// Where the data directory is when neither `--data-dir` nor `$WEIR_DATA_DIR` says.
const DEFAULT_DATA_DIR: &str = "./weir-data";
const DATA_DIR_ENV: &str = "WEIR_DATA_DIR";

#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "Weir's command line: topics, producing and consuming JSON records, consumer groups, benchmarks",
    after_help = "Exit status: 0 on success, 1 on a runtime error, 2 on a usage error; errors are one line on stderr.\n\
                  Only one process at a time may write to a data directory (topic create/delete, produce, consume --group);\n\
                  readers (topic list/describe, consume without --group, groups) work while another process writes."
)]
pub struct Cli {
    /// Data directory [default: $WEIR_DATA_DIR, else ./weir-data]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Run as a client of this Kafka-protocol cluster (weir serve, Kafka, Redpanda) instead of
    /// opening a data directory [default: $WEIR_BOOTSTRAP]
    #[arg(long, global = true, value_name = "HOST:PORT[,HOST:PORT...]")]
    bootstrap: Option<String>,

    /// With --bootstrap: librdkafka properties for reaching the cluster, one `key=value` per
    /// line (security.protocol, sasl.mechanism, sasl.username, sasl.password, ssl.ca.location),
    /// as Kafka's tools take --command-config [default: $WEIR_COMMAND_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    command_config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, describe and delete topics
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Produce one record per line of standard input (each line a JSON value)
    Produce(produce::ProduceArgs),
    /// Print a topic's records, one per line
    Consume(consume::ConsumeArgs),
    /// List consumer groups, or show one group's committed offsets and lag
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// Measure the log against the raw disk; prints one `name: value` line per figure
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run SQL over topics (no query: an interactive shell)
    Sql(sql::SqlArgs),
    /// Serve the data directory over the Kafka wire protocol until SIGTERM or Ctrl-C
    Serve(serve::ServeArgs),
    /// Manage the SASL users of `weir serve --users FILE`
    #[command(subcommand)]
    User(user::UserCommand),
}

/// An invalid argument value that clap could not check itself: exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Returns a [`UsageError`] from the enclosing function.
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::cli::UsageError(format!($($arg)*))))
    };
}
pub(crate) use usage;

/// `acks` as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AcksArg {
    /// Do not wait for the append
    None,
    /// Wait until appended (page cache)
    Leader,
    /// Wait until fsynced (group commit)
    All,
}

impl From<AcksArg> for Acks {
    fn from(a: AcksArg) -> Acks {
        match a {
            AcksArg::None => Acks::None,
            AcksArg::Leader => Acks::Leader,
            AcksArg::All => Acks::All,
        }
    }
}

impl From<AcksArg> for weir_client::Acks {
    fn from(a: AcksArg) -> weir_client::Acks {
        match a {
            AcksArg::None => weir_client::Acks::None,
            AcksArg::Leader => weir_client::Acks::Leader,
            AcksArg::All => weir_client::Acks::All,
        }
    }
}

/// Transaction visibility for readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsolationArg {
    /// Committed records only
    #[value(name = "read_committed")]
    ReadCommitted,
    /// Everything up to the high watermark
    #[value(name = "read_uncommitted")]
    ReadUncommitted,
}

impl From<IsolationArg> for IsolationLevel {
    fn from(a: IsolationArg) -> IsolationLevel {
        match a {
            IsolationArg::ReadCommitted => IsolationLevel::ReadCommitted,
            IsolationArg::ReadUncommitted => IsolationLevel::ReadUncommitted,
        }
    }
}

impl From<IsolationArg> for weir_client::Isolation {
    fn from(a: IsolationArg) -> weir_client::Isolation {
        match a {
            IsolationArg::ReadCommitted => weir_client::Isolation::ReadCommitted,
            IsolationArg::ReadUncommitted => weir_client::Isolation::ReadUncommitted,
        }
    }
}

/// Batch compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// No compression
    None,
    /// LZ4 frames
    Lz4,
    /// zstd
    Zstd,
    /// gzip
    Gzip,
    /// snappy
    Snappy,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Compression {
        match c {
            CompressionArg::None => Compression::None,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
        }
    }
}

impl From<CompressionArg> for weir_client::Compression {
    fn from(c: CompressionArg) -> weir_client::Compression {
        match c {
            CompressionArg::None => weir_client::Compression::None,
            CompressionArg::Lz4 => weir_client::Compression::Lz4,
            CompressionArg::Zstd => weir_client::Compression::Zstd,
            CompressionArg::Gzip => weir_client::Compression::Gzip,
            CompressionArg::Snappy => weir_client::Compression::Snappy,
        }
    }
}

/// clap value parser for the name of an existing topic.
fn topic_name(s: &str) -> Result<String, String> {
    weir::log::validate_topic_name(s)
        .map_err(|_| format!("'{s}' is not a valid topic name (1 to 249 of A-Z a-z 0-9 . _ -)"))?;
    Ok(s.to_string())
}

/// The data directory and whether the user chose it.
#[derive(Debug, Clone)]
struct DataDir {
    path: PathBuf,
    /// Set by `--data-dir` or `$WEIR_DATA_DIR` (benchmarks use a temporary directory otherwise).
    explicit: bool,
}

impl DataDir {
    fn resolve(flag: Option<PathBuf>) -> DataDir {
        let chosen = flag.or_else(|| {
            std::env::var_os(DATA_DIR_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        match chosen {
            Some(path) => DataDir {
                path,
                explicit: true,
            },
            None => DataDir {
                path: PathBuf::from(DEFAULT_DATA_DIR),
                explicit: false,
            },
        }
    }

    /// Fails (naming `topic`, if any) when the directory does not exist.
    fn require(&self, topic: Option<&str>) -> Result<&Path> {
        if self.path.is_dir() {
            return Ok(&self.path);
        }
        match topic {
            Some(t) => anyhow::bail!(
                "unknown topic '{t}' (data directory {} does not exist)",
                self.path.display()
            ),
            None => anyhow::bail!(
                "data directory {} does not exist (set --data-dir or ${DATA_DIR_ENV})",
                self.path.display()
            ),
        }
    }

    /// Opens read-only: no lock, so it works while another process writes.
    fn open_read_only(&self, topic: Option<&str>) -> Result<Log> {
        let dir = self.require(topic)?;
        Ok(Log::open_read_only(dir)?)
    }

    /// Opens for writing (taking the lock), runs `f`, and closes the log whatever `f` returned,
    /// so the next open finds the clean-shutdown marker.
    fn with_writer<T>(
        &self,
        create: bool,
        topic: Option<&str>,
        f: impl FnOnce(&Log) -> Result<T>,
    ) -> Result<T> {
        if !create {
            self.require(topic)?;
        }
        let log = Log::open(&self.path, LogConfig::default())?;
        // What recovery cut off: at open after an unclean stop, and as partitions open on first
        // use (damage found then is reported once the command is done).
        let warn = |from: usize| {
            let report = log.recovery_report();
            for t in report.iter().skip(from) {
                eprintln!(
                    "warning: recovery truncated {} at byte {} (offset {}): {}; {} bytes removed",
                    t.segment.display(),
                    t.position,
                    t.offset,
                    t.reason,
                    t.bytes_removed
                );
            }
            report.len()
        };
        let warned = warn(0);
        let result = f(&log);
        warn(warned);
        let closed = log.close().context("closing the log");
        match (result, closed) {
            (Ok(v), Ok(())) => Ok(v),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let dir = DataDir::resolve(cli.data_dir);
    let Some(cluster) = cluster::resolve(cli.bootstrap, cli.command_config)? else {
        return match cli.command {
            Command::Topic(cmd) => topic::run(&dir, cmd),
            Command::Produce(args) => produce::run(&dir, args),
            Command::Consume(args) => consume::run(&dir, args),
            Command::Groups(cmd) => groups::run(&dir, cmd),
            Command::Bench(cmd) => bench::run(&dir, None, cmd),
            Command::Sql(args) => sql::run(&dir, args),
            Command::Serve(args) => serve::run(&dir, args),
            Command::User(cmd) => user::run(cmd),
        };
    };
    match cli.command {
        Command::Topic(cmd) => topic::run_cluster(&cluster, cmd),
        Command::Produce(args) => produce::run_cluster(&cluster, args),
        Command::Consume(args) => consume::run_cluster(&cluster, args),
        Command::Groups(cmd) => groups::run_cluster(&cluster, cmd),
        Command::Bench(cmd) => bench::run(&dir, Some(&cluster), cmd),
        Command::Sql(args) => sql::run_cluster(&cluster, args),
        Command::Serve(_) => usage!("{}", not_over_a_cluster("serve")),
        Command::User(cmd) => user::run(cmd),
    }
}

/// Why a command refuses `--bootstrap` (or `$WEIR_BOOTSTRAP`).
fn not_over_a_cluster(command: &str) -> String {
    format!(
        "weir {command} works on a data directory only, not over a cluster (--bootstrap or \
         $WEIR_BOOTSTRAP is set)"
    )
}

/// clap's multi-line message as one line: the text up to the first blank line.
fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses the command line, runs it, and maps the outcome to an exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::from(2)
                }
                _ => {
                    eprintln!("{}", one_line(&e.render().to_string()));
                    ExitCode::from(2)
                }
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A reader that went away (`weir consume t | head`) is not an error.
            if stdout::is_stdout_closed(&e) {
                return ExitCode::SUCCESS;
            }
            let msg = error_line(&e);
            let _ = writeln!(io::stderr(), "error: {msg}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// An error and its causes on one line, each cause once: an error that shows its source in its
/// own text and also returns it as `source()` (as `std::io::Error`'s wrappers often do) would
/// otherwise print it twice (`Is a directory (os error 21): Is a directory (os error 21)`).
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn an_error_line_names_each_cause_once() {
        let io = std::io::Error::from_raw_os_error(21);
        let e = anyhow::Error::new(weir_log::Error::io("/data/t", io)).context("opening the log");
        let line = error_line(&e);
        assert_eq!(line.matches("os error 21").count(), 1, "{line}");
        assert!(
            line.starts_with("opening the log: I/O error on /data/t: "),
            "{line}"
        );
    }

    #[test]
    fn one_line_keeps_the_error_and_its_details() {
        let s = "error: invalid value 'maybe' for '--acks <ACKS>'\n  [possible values: none, leader, all]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(s),
            "error: invalid value 'maybe' for '--acks <ACKS>' [possible values: none, leader, all]"
        );
    }

    #[test]
    fn data_dir_flag_is_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from(["weir", "topic", "list", "--data-dir", "/x"]).unwrap();
        assert_eq!(cli.data_dir, Some(PathBuf::from("/x")));
        let cli = Cli::try_parse_from(["weir", "--data-dir", "/y", "produce", "t"]).unwrap();
        assert_eq!(cli.data_dir, Some(PathBuf::from("/y")));
    }
}
