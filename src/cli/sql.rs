//! `weir sql`: one query, printed as a table, CSV or JSON lines; without a query, an interactive
//! shell; with `--continuous`, a windowed `INSERT INTO ... SELECT` run as an exactly-once job.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use weir::sql::continuous::{self, ContinuousConfig, ContinuousQuery};
use weir::sql::datafusion::arrow::record_batch::RecordBatch;
use weir::sql::datafusion::arrow::{csv, json, util::pretty};
use weir::sql::{
    Error as SqlError, MEMORY_BYTES_MAX_DEFAULT, SessionOptions, TopicSource, WeirSession,
};

use weir::runtime::Topics;
use weir_client::ClientConfig;
use weir_cluster::KafkaTopics;
use weir_cluster::sql::{ClusterCatalog, ClusterSource};

use super::stdout::Stdout;
use super::{DataDir, usage};

/// Most history lines the shell keeps.
const HISTORY_LINES_MAX: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqlFormat {
    /// Aligned columns with a border
    Table,
    /// Comma-separated, with a header line
    Csv,
    /// One JSON object per row, one per line
    Json,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Every topic with a schema is a table of the same name (quote names that are not plain \
lower-case identifiers: \"my-topic\"), with its schema's columns plus _partition, _offset, _timestamp \
and _key. Reads are read_committed, as of the start of the query; the data directory is opened \
read-only, so a writer may run meanwhile. With --bootstrap (or $WEIR_BOOTSTRAP) the tables are the \
cluster's topics that carry a weir.schema config, read over Fetch. Filters on _partition, _offset \
and _timestamp skip partitions and seek by index (over a cluster, by ListOffsets). SQL cannot read or write files, create tables or insert.\n\n\
Memory: a query's sorts, joins, aggregations and result hold at most --memory-bytes-max bytes \
(1 GiB); past that it fails with `resources exhausted`, unless --spill-bytes-max lets it spill to \
a private temporary directory (removed when the query ends).\n\n\
Without QUERY: an interactive shell; statements end with ';', \\q quits, errors are printed and the \
shell goes on."
)]
pub struct SqlArgs {
    /// One SQL statement; none: an interactive shell
    query: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
    format: SqlFormat,
    /// Most memory one query may hold, in bytes (sorts, joins, aggregations, the result)
    #[arg(long, value_name = "BYTES", default_value_t = MEMORY_BYTES_MAX_DEFAULT as u64,
          value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "continuous")]
    memory_bytes_max: u64,
    /// Most bytes of spill files one query may write to a temporary directory when it outgrows
    /// --memory-bytes-max (0: never spill)
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 0,
        conflicts_with = "continuous"
    )]
    spill_bytes_max: u64,
    /// Run `INSERT INTO topic SELECT ... GROUP BY window_start, ...` continuously as an
    /// exactly-once job
    #[arg(long)]
    continuous: bool,
    /// With --continuous: stop once the input topics are drained and every window has closed
    #[arg(long, requires = "continuous")]
    until_idle: bool,
    /// With --continuous: the job's name, which keys its state and committed offsets (default
    /// `sql-<target topic>`); run again with the same name to resume
    #[arg(long, requires = "continuous")]
    job: Option<String>,
    /// With --continuous: how often results, offsets and state commit
    #[arg(long, requires = "continuous", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    epoch_ms: u64,
    /// With --continuous: the watermark trails the highest event time of each partition by this
    #[arg(long, requires = "continuous", default_value_t = 5_000,
          value_parser = clap::value_parser!(i64).range(0..=86_400_000))]
    watermark_delay_ms: i64,
    /// With --continuous: spread each hot group key over this many salts (0: never salt)
    #[arg(long, requires = "continuous", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(0..=256))]
    salts: u32,
    /// With --continuous: print a metrics line on stderr this often (0: never)
    #[arg(long, requires = "continuous", default_value_t = 1_000)]
    metrics_ms: u64,
}

pub fn run(dir: &DataDir, args: SqlArgs) -> Result<()> {
    if args.continuous {
        let Some(query) = &args.query else {
            usage!("--continuous needs a query (INSERT INTO topic SELECT ...)");
        };
        return dir.with_writer(false, None, |log| {
            continuous(query, &args, |config| {
                Ok(ContinuousQuery::new(log, query, config)?)
            })
        });
    }
    let log = dir.open_read_only(None)?;
    ad_hoc(Arc::new(log), args)
}

/// One query (or the shell) over the topics of `source`.
fn ad_hoc(source: Arc<dyn TopicSource>, args: SqlArgs) -> Result<()> {
    let Ok(memory_bytes_max) = usize::try_from(args.memory_bytes_max) else {
        usage!(
            "--memory-bytes-max {} is more than this machine can address",
            args.memory_bytes_max
        );
    };
    let options = SessionOptions {
        memory_bytes_max,
        spill_bytes_max: args.spill_bytes_max,
        ..SessionOptions::default()
    };
    let session = WeirSession::over(source, options)?;
    match args.query {
        Some(query) => {
            let batches = session.sql(&query).map_err(explain)?;
            let mut out = Stdout::lock();
            print(&mut out, &batches, args.format)?;
            out.flush()?;
            Ok(())
        }
        None => shell(&session, args.format),
    }
}

/// A query's error in the command line's terms: the memory limits by their flags.
fn explain(e: SqlError) -> anyhow::Error {
    match e {
        SqlError::ResourcesExhausted {
            memory_bytes_max,
            spill_bytes_max,
            reason,
        } => {
            let spill = if spill_bytes_max == 0 {
                "no spilling without --spill-bytes-max".to_string()
            } else {
                format!("--spill-bytes-max {spill_bytes_max}")
            };
            anyhow!(
                "resources exhausted: the query needs more than its memory limit \
                 (--memory-bytes-max {memory_bytes_max}; {spill}): {reason}"
            )
        }
        e => e.into(),
    }
}

/// `weir sql --bootstrap`: an ad-hoc query over the cluster's topics (Fetch and ListOffsets,
/// read_committed), or a continuous query as a client of the cluster, where the instances
/// started with the same `--job` share its work.
pub fn run_cluster(cluster: &ClientConfig, args: SqlArgs) -> Result<()> {
    if !args.continuous {
        return ad_hoc(ClusterSource::connect(cluster)?, args);
    }
    let Some(query) = &args.query else {
        usage!("--continuous needs a query (INSERT INTO topic SELECT ...)");
    };
    let catalog = ClusterCatalog::connect(cluster)?;
    let topics: Arc<dyn Topics> = Arc::new(KafkaTopics::new(cluster.clone())?);
    continuous(query, &args, |config| {
        Ok(ContinuousQuery::with_topics(
            &catalog,
            topics.clone(),
            query,
            config,
        )?)
    })
}

/// Runs a continuous query until it drains (`--until-idle`), fails, or a signal stops it.
fn continuous(
    query: &str,
    args: &SqlArgs,
    build: impl FnOnce(ContinuousConfig) -> Result<ContinuousQuery>,
) -> Result<()> {
    let target = continuous::target_topic(query)?;
    let name = args.job.clone().unwrap_or_else(|| format!("sql-{target}"));
    let mut config = ContinuousConfig::new(&name);
    config.job.epoch_ms = args.epoch_ms;
    config.job.stop_when_drained = args.until_idle;
    config.watermark_delay_ms = args.watermark_delay_ms;
    config.salts = (args.salts > 0).then_some(args.salts);
    let query = build(config)?;
    let late = query.late_topic.clone();
    eprintln!(
        "job `{name}`: results to `{}`, late rows to `{}`; Ctrl-C stops (the open epoch is \
         replayed by the next run)",
        query.target, query.late_topic
    );
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())
            .context("installing a signal handler")?;
        signal_hook::flag::register(signal, stop.clone()).context("installing a signal handler")?;
    }
    let handle = query.start()?;
    let started = Instant::now();
    let mut last_print = Instant::now();
    while !handle.is_finished() {
        if stop.load(Ordering::Relaxed) {
            handle.stop()?;
            bail!("stopped by a signal; committed results stay");
        }
        std::thread::sleep(Duration::from_millis(50));
        if args.metrics_ms > 0 && last_print.elapsed() >= Duration::from_millis(args.metrics_ms) {
            last_print = Instant::now();
            eprintln!("{}", handle.metrics());
        }
    }
    let m = handle.wait()?;
    let mut out = Stdout::lock();
    let took = started.elapsed().as_secs_f64();
    let written = |topic: &str| {
        let name = format!("sink:{topic}");
        m.operators
            .iter()
            .filter(|o| o.operator == name)
            .map(|o| o.records_in)
            .sum::<u64>()
    };
    writeln!(
        out,
        "read {} rows in {took:.2} s ({:.0} rows/s); {} results to `{target}`, {} late rows to \
         `{late}`; {} epochs committed",
        m.source_records,
        m.source_records as f64 / took,
        written(&target),
        written(&late),
        m.checkpoints
    )?;
    Ok(())
}

fn print(out: &mut impl Write, batches: &[RecordBatch], format: SqlFormat) -> Result<()> {
    match format {
        SqlFormat::Table => writeln!(out, "{}", pretty::pretty_format_batches(batches)?)?,
        SqlFormat::Csv => {
            // Into a buffer, one batch at a time: Arrow's CSV writer keeps only the message of an
            // io error, which would lose the mark of a closed standard output.
            for (i, b) in batches.iter().enumerate() {
                let mut writer = csv::WriterBuilder::new()
                    .with_header(i == 0)
                    .build(Vec::new());
                writer.write(b)?;
                out.write_all(&writer.into_inner())?;
            }
        }
        SqlFormat::Json => {
            let mut writer = json::LineDelimitedWriter::new(&mut *out);
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
        }
    }
    Ok(())
}

fn shell(session: &WeirSession, format: SqlFormat) -> Result<()> {
    use rustyline::error::ReadlineError;

    let config = rustyline::Config::builder()
        .max_history_size(HISTORY_LINES_MAX)
        .context("shell configuration")?
        .auto_add_history(false)
        .build();
    let mut editor = rustyline::DefaultEditor::with_config(config).context("starting the shell")?;
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".weir_sql_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    eprintln!(
        "weir sql: {} table(s): {}. End statements with ';', \\q quits.",
        session.tables().len(),
        session.tables().join(", ")
    );
    let mut statement = String::new();
    loop {
        let prompt = if statement.is_empty() {
            "weir> "
        } else {
            "  ..> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                statement.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading a line"),
        };
        let trimmed = line.trim();
        if statement.is_empty() && (trimmed == "\\q" || trimmed == "quit" || trimmed == "exit") {
            break;
        }
        if trimmed.is_empty() {
            continue;
        }
        statement.push_str(&line);
        statement.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let query = std::mem::take(&mut statement);
        let _ = editor.add_history_entry(query.trim());
        let started = std::time::Instant::now();
        match session.sql(query.trim().trim_end_matches(';')) {
            Ok(batches) => {
                let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                let mut out = Stdout::lock();
                let printed = print(&mut out, &batches, format)
                    .and_then(|()| out.flush().map_err(anyhow::Error::from));
                if let Err(e) = printed {
                    if super::stdout::is_stdout_closed(&e) {
                        // Nobody reads the results any more: the shell is over.
                        break;
                    }
                    eprintln!("error: {e}");
                }
                eprintln!("{rows} row(s) in {:.3} s", started.elapsed().as_secs_f64());
            }
            Err(e) => eprintln!("error: {}", super::one_line(&explain(e).to_string())),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}
