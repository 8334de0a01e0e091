//! `weir topic create | list | describe | delete`.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use weir::log::{TopicConfig, ValueFormat};
use weir::schema::Schema;

use super::stdout::Stdout;
use super::{DataDir, topic_name, usage};

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic
    Create(CreateArgs),
    /// List topics, one per line (internal topics, starting with `__`, are hidden)
    List,
    /// Show a topic's settings and, per partition, offsets, segments and size
    Describe {
        /// Topic name
        #[arg(value_parser = topic_name)]
        name: String,
    },
    /// Delete a topic and all its data
    Delete {
        /// Topic name
        #[arg(value_parser = topic_name)]
        name: String,
    },
}

/// Storage format of a topic's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Values are stored as compact JSON text
    Json,
    /// Values are stored as binary rows of the --schema (produce and consume still speak JSON)
    Binary,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Topic name: 1 to 249 of A-Z a-z 0-9 . _ - (not starting with `__`, reserved for internal topics)
    #[arg(value_parser = new_topic_name)]
    name: String,
    /// Number of partitions (1 to 10000), fixed at creation
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    partitions: i32,
    /// Keep only the newest record per key instead of deleting old segments
    #[arg(long)]
    compacted: bool,
    /// Delete closed segments older than this [default: 7 days; none for compacted topics]
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(i64).range(1..))]
    retention_ms: Option<i64>,
    /// Delete the oldest closed segments while a partition is larger than this
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    retention_bytes: Option<u64>,
    /// Value schema, e.g. 'ad_id BIGINT, user VARCHAR, ts TIMESTAMP'; types: BIGINT, INT, DOUBLE,
    /// FLOAT, VARCHAR (STRING, TEXT), BOOLEAN, TIMESTAMP
    #[arg(long, value_name = "'col TYPE, ...'", value_parser = parse_schema)]
    schema: Option<Schema>,
    /// How values are stored; binary needs --schema
    #[arg(long, value_enum, default_value_t = FormatArg::Json)]
    format: FormatArg,
}

fn new_topic_name(s: &str) -> Result<String, String> {
    if s.starts_with("__") {
        return Err(format!(
            "'{s}': names starting with `__` are reserved for internal topics"
        ));
    }
    topic_name(s)
}

fn parse_schema(s: &str) -> Result<Schema, String> {
    Schema::parse(s).map_err(|e| e.to_string())
}

pub fn run(dir: &DataDir, cmd: TopicCommand) -> Result<()> {
    let mut out = Stdout::lock();
    match cmd {
        TopicCommand::Create(args) => {
            let config = topic_config(&args)?;
            dir.with_writer(true, None, |log| Ok(log.create_topic(&args.name, config)?))?;
            writeln!(
                out,
                "created topic '{}' with {} partition{}",
                args.name,
                args.partitions,
                if args.partitions == 1 { "" } else { "s" }
            )?;
        }
        TopicCommand::List => {
            let log = dir.open_read_only(None)?;
            for name in log
                .topic_names()
                .into_iter()
                .filter(|n| !n.starts_with("__"))
            {
                writeln!(out, "{name}")?;
            }
        }
        TopicCommand::Describe { name } => {
            let log = dir.open_read_only(Some(&name))?;
            let d = log.describe_topic(&name)?;
            let c = &d.config;
            writeln!(out, "topic: {}", d.name)?;
            writeln!(out, "partitions: {}", c.partitions)?;
            writeln!(out, "compacted: {}", c.compacted)?;
            writeln!(
                out,
                "retention_ms: {}",
                c.retention_ms.map_or("none".into(), |v| v.to_string())
            )?;
            writeln!(
                out,
                "retention_bytes: {}",
                c.retention_bytes.map_or("none".into(), |v| v.to_string())
            )?;
            writeln!(out, "schema: {}", c.schema.as_deref().unwrap_or("none"))?;
            writeln!(out, "format: {}", c.format)?;
            writeln!(out, "segment_bytes_max: {}", c.segment_bytes_max)?;
            writeln!(out, "record_bytes_max: {}", c.record_bytes_max)?;
            writeln!(out)?;
            writeln!(
                out,
                "{:>9}  {:>16}  {:>14}  {:>18}  {:>8}  {:>12}  open_transactions",
                "partition",
                "log_start_offset",
                "high_watermark",
                "last_stable_offset",
                "segments",
                "size_bytes"
            )?;
            for p in &d.partitions {
                // Each open transaction as producer_id@first_offset: it holds the LSO back.
                let open = if p.open_transactions.is_empty() {
                    "-".to_string()
                } else {
                    p.open_transactions
                        .iter()
                        .map(|(pid, first)| format!("{pid}@{first}"))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                writeln!(
                    out,
                    "{:>9}  {:>16}  {:>14}  {:>18}  {:>8}  {:>12}  {}",
                    p.partition,
                    p.log_start_offset,
                    p.high_watermark,
                    p.last_stable_offset,
                    p.segments,
                    p.size_bytes,
                    open
                )?;
            }
        }
        TopicCommand::Delete { name } => {
            dir.with_writer(false, Some(&name), |log| Ok(log.delete_topic(&name)?))?;
            writeln!(out, "deleted topic '{name}'")?;
        }
    }
    Ok(())
}

/// The topic's settings from the flags; invalid combinations are usage errors.
fn topic_config(args: &CreateArgs) -> Result<TopicConfig> {
    let defaults = TopicConfig::default();
    let config = TopicConfig {
        partitions: args.partitions,
        compacted: args.compacted,
        // Compacted topics keep every key's newest record however old, unless asked otherwise.
        retention_ms: match (args.retention_ms, args.compacted) {
            (Some(ms), _) => Some(ms),
            (None, true) => None,
            (None, false) => defaults.retention_ms,
        },
        retention_bytes: args.retention_bytes,
        schema: args.schema.as_ref().map(Schema::to_string),
        format: match args.format {
            FormatArg::Json => ValueFormat::Json,
            FormatArg::Binary => ValueFormat::Binary,
        },
        ..defaults
    };
    if args.format == FormatArg::Binary && args.schema.is_none() {
        usage!("--format binary needs --schema");
    }
    if let Err(e) = config.validate() {
        usage!("{e}");
    }
    Ok(config)
}
