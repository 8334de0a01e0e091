//! `weir topic create | list | describe | delete`.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use weir::log::{TopicConfig, ValueFormat};
use weir::schema::Schema;

use weir_client::{Admin, ClientConfig, ErrorCode, NewTopic};

use super::stdout::Stdout;
use super::{DataDir, topic_name, usage};
use weir_cluster::configs;

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
            print_created(&mut out, &args)?;
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
            let description = Description {
                settings: settings(
                    c,
                    Some(c.segment_bytes_max),
                    Some(c.record_bytes_max as u64),
                ),
                partitions: d
                    .partitions
                    .iter()
                    .map(|p| PartitionRow {
                        partition: p.partition,
                        log_start_offset: p.log_start_offset,
                        high_watermark: p.high_watermark,
                        last_stable_offset: p.last_stable_offset,
                        segments: Some(p.segments as u64),
                        size_bytes: Some(p.size_bytes),
                        // Each open transaction as producer_id@first_offset: it holds the LSO
                        // back.
                        open_transactions: Some(if p.open_transactions.is_empty() {
                            "-".to_string()
                        } else {
                            p.open_transactions
                                .iter()
                                .map(|(pid, first)| format!("{pid}@{first}"))
                                .collect::<Vec<_>>()
                                .join(",")
                        }),
                    })
                    .collect(),
            };
            print_description(&mut out, &d.name, &description)?;
        }
        TopicCommand::Delete { name } => {
            dir.with_writer(false, Some(&name), |log| Ok(log.delete_topic(&name)?))?;
            writeln!(out, "deleted topic '{name}'")?;
        }
    }
    Ok(())
}

/// What `topic describe` prints, from the embedded log or from a cluster.
struct Description {
    /// `name: value` lines, in order.
    settings: Vec<(&'static str, String)>,
    partitions: Vec<PartitionRow>,
}

/// One partition's line; `None` where the source does not know (a cluster reports no
/// segments, sizes or open transactions through the protocol).
struct PartitionRow {
    partition: i32,
    log_start_offset: i64,
    high_watermark: i64,
    last_stable_offset: i64,
    segments: Option<u64>,
    size_bytes: Option<u64>,
    open_transactions: Option<String>,
}

/// What a value the source does not know prints as.
const UNKNOWN: &str = "unknown";

/// The settings lines of `c`; the two size limits are `None` where a cluster did not report
/// them.
fn settings(
    c: &TopicConfig,
    segment_bytes_max: Option<u64>,
    record_bytes_max: Option<u64>,
) -> Vec<(&'static str, String)> {
    let or_unknown = |v: Option<u64>| v.map_or(UNKNOWN.to_string(), |v| v.to_string());
    vec![
        ("partitions", c.partitions.to_string()),
        ("compacted", c.compacted.to_string()),
        (
            "retention_ms",
            c.retention_ms.map_or("none".into(), |v| v.to_string()),
        ),
        (
            "retention_bytes",
            c.retention_bytes.map_or("none".into(), |v| v.to_string()),
        ),
        ("schema", c.schema.clone().unwrap_or_else(|| "none".into())),
        ("format", c.format.to_string()),
        ("segment_bytes_max", or_unknown(segment_bytes_max)),
        ("record_bytes_max", or_unknown(record_bytes_max)),
    ]
}

fn print_description(out: &mut impl Write, name: &str, d: &Description) -> Result<()> {
    writeln!(out, "topic: {name}")?;
    for (k, v) in &d.settings {
        writeln!(out, "{k}: {v}")?;
    }
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
    let or_unknown = |v: Option<u64>| v.map_or(UNKNOWN.to_string(), |v| v.to_string());
    for p in &d.partitions {
        writeln!(
            out,
            "{:>9}  {:>16}  {:>14}  {:>18}  {:>8}  {:>12}  {}",
            p.partition,
            p.log_start_offset,
            p.high_watermark,
            p.last_stable_offset,
            or_unknown(p.segments),
            or_unknown(p.size_bytes),
            p.open_transactions.as_deref().unwrap_or(UNKNOWN)
        )?;
    }
    Ok(())
}

fn print_created(out: &mut impl Write, args: &CreateArgs) -> Result<()> {
    writeln!(
        out,
        "created topic '{}' with {} partition{}",
        args.name,
        args.partitions,
        if args.partitions == 1 { "" } else { "s" }
    )?;
    Ok(())
}

/// `topic create | list | describe | delete` as a client of `cluster`.
pub fn run_cluster(cluster: &ClientConfig, cmd: TopicCommand) -> Result<()> {
    let mut out = Stdout::lock();
    match cmd {
        TopicCommand::Create(args) => {
            let config = topic_config(&args)?;
            let admin = Admin::connect(cluster)?;
            let with_weir = configs::needs_weir_configs(&config);
            let topic = NewTopic {
                name: args.name.clone(),
                partitions: args.partitions,
                replication_factor: None,
                configs: configs::kafka_configs(&config, with_weir),
            };
            match admin.create_topic(&topic) {
                Ok(()) => {}
                Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => {
                    anyhow::bail!("topic '{}' already exists", args.name)
                }
                Err(e) if with_weir && e.code() == Some(ErrorCode::InvalidConfig) => {
                    // Were weir's own configs refused? The same topic without them, asked
                    // validate-only, tells.
                    let plain = NewTopic {
                        configs: configs::kafka_configs(&config, false),
                        ..topic
                    };
                    if admin.check_new_topic(&plain).is_ok() {
                        usage!(
                            "this cluster does not keep weir's topic configs ({}, {}): --schema and \
                             --format binary need weir serve or the embedded log",
                            configs::WEIR_SCHEMA,
                            configs::WEIR_VALUE_FORMAT
                        );
                    }
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            }
            print_created(&mut out, &args)?;
        }
        TopicCommand::List => {
            let admin = Admin::connect(cluster)?;
            for name in admin
                .list_topics()?
                .into_iter()
                .filter(|n| !n.starts_with("__"))
            {
                writeln!(out, "{name}")?;
            }
        }
        TopicCommand::Describe { name } => {
            let admin = Admin::connect(cluster)?;
            let d = admin.describe_topic(&name)?;
            let config = configs::topic_config(&d)?;
            let size = |k: &str| d.config(k).and_then(|v| v.parse::<u64>().ok());
            let description = Description {
                // weir's per-record bound has no Kafka config name: unknown over a cluster.
                settings: settings(&config, size(configs::SEGMENT_BYTES), None),
                partitions: d
                    .partitions
                    .iter()
                    .map(|p| PartitionRow {
                        partition: p.partition,
                        log_start_offset: p.log_start_offset,
                        high_watermark: p.high_watermark,
                        last_stable_offset: p.last_stable_offset,
                        segments: None,
                        size_bytes: None,
                        open_transactions: None,
                    })
                    .collect(),
            };
            print_description(&mut out, &d.name, &description)?;
        }
        TopicCommand::Delete { name } => {
            Admin::connect(cluster)?.delete_topic(&name)?;
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
