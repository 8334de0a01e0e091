//! `weir sql`: one query, printed as a table, CSV or JSON lines; without a query, an interactive
//! shell.

use std::io::{self, Write};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use weir::sql::WeirSession;
use weir::sql::datafusion::arrow::record_batch::RecordBatch;
use weir::sql::datafusion::arrow::{csv, json, util::pretty};

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
read-only, so a writer may run meanwhile. Filters on _partition, _offset and _timestamp skip \
partitions and seek by index. SQL cannot read or write files, create tables or insert.\n\n\
Without QUERY: an interactive shell; statements end with ';', \\q quits, errors are printed and the \
shell goes on."
)]
pub struct SqlArgs {
    /// One SQL statement; none: an interactive shell
    query: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
    format: SqlFormat,
    /// Run `INSERT INTO topic SELECT ...` continuously as a job (not built yet)
    #[arg(long)]
    continuous: bool,
    /// With --continuous: stop once the input topics are drained
    #[arg(long, requires = "continuous")]
    until_idle: bool,
}

pub fn run(dir: &DataDir, args: SqlArgs) -> Result<()> {
    if args.continuous {
        if args.query.is_none() {
            usage!("--continuous needs a query (INSERT INTO topic SELECT ...)");
        }
        bail!("continuous queries: not built yet");
    }
    let log = dir.open_read_only(None)?;
    let session = WeirSession::new(&log)?;
    match args.query {
        Some(query) => {
            let batches = session.sql(&query)?;
            let mut out = io::stdout().lock();
            print(&mut out, &batches, args.format)?;
            out.flush()?;
            Ok(())
        }
        None => shell(&session, args.format),
    }
}

fn print(out: &mut impl Write, batches: &[RecordBatch], format: SqlFormat) -> Result<()> {
    match format {
        SqlFormat::Table => writeln!(out, "{}", pretty::pretty_format_batches(batches)?)?,
        SqlFormat::Csv => {
            let mut writer = csv::WriterBuilder::new().with_header(true).build(&mut *out);
            for b in batches {
                writer.write(b)?;
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
                let mut out = io::stdout().lock();
                if let Err(e) = print(&mut out, &batches, format) {
                    eprintln!("error: {e}");
                }
                let _ = out.flush();
                eprintln!("{rows} row(s) in {:.3} s", started.elapsed().as_secs_f64());
            }
            Err(e) => eprintln!("error: {}", super::one_line(&e.to_string())),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}
