//! `weir consume`: prints a topic's records, one per line.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use weir::log::{Consumer, ConsumerBatch, ConsumerConfig, Log, OffsetReset};

use weir_client::{
    Admin, ClientConfig, Consumer as ClusterConsumer, ConsumerConfig as ClusterConsumerConfig,
    Event as ClusterEvent, Isolation, OffsetReset as ClusterOffsetReset, StartAt,
};

use super::stdout::Stdout;
use super::values::{OutValue, ValueCodec};
use super::{DataDir, IsolationArg, topic_name, usage};

/// How long one poll waits for records before the loop checks for Ctrl-C and idleness again.
const POLL_WAIT_MS: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per record: {"topic","partition","offset","timestamp","key","value"},
    /// plus "tombstone":true for a record without a value
    Json,
    /// The value only, as text, one per line (NULL for a tombstone)
    Text,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Without --group, the log is opened read-only (no lock): consume follows a topic while \
another process writes to it. With --group, this process joins the group (and takes the writer lock), starts \
from the group's committed offsets and commits after printing each poll's records.\n\n\
Start: the group's committed offset (with --group); otherwise the end of each partition (only new records), \
or its beginning with --from-beginning. Without --max or --until-end, consume follows until interrupted \
(Ctrl-C); --until-end stops at the end each partition had when the command started.\n\n\
json output: the value is printed as JSON whatever the topic's storage format: JSON values as stored, binary \
rows decoded to objects, other bytes as a JSON string of their (lossy) UTF-8; the key is a string (lossy \
UTF-8) or null. A tombstone (a record without a value, which deletes its key in a compacted topic) prints \
\"value\":null,\"tombstone\":true, so that it differs from a stored JSON null (\"value\":null alone); \
text output prints NULL for a tombstone and null for a JSON null."
)]
pub struct ConsumeArgs {
    /// Topic name
    #[arg(value_parser = topic_name)]
    topic: String,
    /// Consume as a member of this group, committing offsets (opens the log for writing)
    #[arg(long, value_name = "G")]
    group: Option<String>,
    /// Start from the beginning of each partition (with --group: where the group has no committed offset)
    #[arg(long)]
    from_beginning: bool,
    /// Stop after this many records
    #[arg(long, value_name = "N")]
    max: Option<u64>,
    /// Stop at the end each partition had when the command started (its last stable offset
    /// with read_committed, its high watermark with read_uncommitted)
    #[arg(long)]
    until_end: bool,
    /// Which transactional records to show
    #[arg(long, value_enum, default_value_t = IsolationArg::ReadCommitted)]
    isolation: IsolationArg,
    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    format: OutputFormat,
    /// Exit (status 0) once no record has arrived for this long (for scripts and tests)
    #[arg(long, value_name = "MS", hide = true)]
    idle_exit_ms: Option<u64>,
}

#[derive(Serialize)]
struct OutRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<std::borrow::Cow<'a, str>>,
    value: OutValue<'a>,
    /// Only on tombstones: their value prints as `null`, as a stored JSON `null` does.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tombstone: bool,
}

/// Checks the flags clap cannot, and returns the flag Ctrl-C and SIGTERM set.
fn prepare(args: &ConsumeArgs) -> Result<Arc<AtomicBool>> {
    if args.group.as_deref().is_some_and(str::is_empty) {
        usage!("--group must not be empty");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while we are shutting down exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())
            .context("installing a signal handler")?;
        signal_hook::flag::register(signal, stop.clone()).context("installing a signal handler")?;
    }
    Ok(stop)
}

pub fn run(dir: &DataDir, args: ConsumeArgs) -> Result<()> {
    let stop = prepare(&args)?;
    match &args.group {
        None => {
            let log = dir.open_read_only(Some(&args.topic))?;
            consume(&log, &args, &stop)
        }
        Some(_) => dir.with_writer(false, Some(&args.topic), |log| consume(log, &args, &stop)),
    }
}

fn consume(log: &Log, args: &ConsumeArgs, stop: &AtomicBool) -> Result<()> {
    let topic = args.topic.as_str();
    let config = log.topic_config(topic)?;
    let format = ValueCodec::of_topic(topic, &config)?;
    let mut consumer = Consumer::new(
        log,
        ConsumerConfig {
            group: args.group.clone(),
            auto_offset_reset: if args.from_beginning {
                OffsetReset::Earliest
            } else {
                OffsetReset::Latest
            },
            // We commit ourselves, after the records are printed.
            auto_commit: false,
            isolation: args.isolation.into(),
            ..ConsumerConfig::default()
        },
    )?;
    if args.group.is_some() {
        consumer.subscribe(&[topic])?;
    } else {
        consumer.assign_topic(topic)?;
        if args.from_beginning {
            consumer.seek_to_beginning()?;
        } else {
            consumer.seek_to_end()?;
        }
    }
    // Where --until-end stops: each partition's end as the command starts.
    let ends: Option<HashMap<i32, i64>> = if args.until_end {
        let committed = args.isolation == IsolationArg::ReadCommitted;
        Some(
            log.describe_topic(topic)?
                .partitions
                .iter()
                .map(|p| {
                    let end = if committed {
                        p.last_stable_offset
                    } else {
                        p.high_watermark
                    };
                    (p.partition, end)
                })
                .collect(),
        )
    } else {
        None
    };
    let result = follow(&mut consumer, args, &format, ends.as_ref(), stop);
    let closed = consumer.close().context("closing the consumer");
    result.and(closed)
}

fn follow(
    consumer: &mut Consumer,
    args: &ConsumeArgs,
    format: &ValueCodec,
    ends: Option<&HashMap<i32, i64>>,
    stop: &AtomicBool,
) -> Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, Stdout::lock());
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    let idle_exit = args.idle_exit_ms.map(Duration::from_millis);
    while args.max.is_none_or(|m| printed < m) && !stop.load(Ordering::Relaxed) {
        let before: HashMap<i32, Option<i64>> = consumer
            .assignment()
            .into_iter()
            .map(|tp| {
                (
                    tp.partition(),
                    consumer.position(tp.topic(), tp.partition()),
                )
            })
            .collect();
        if let Some(ends) = ends
            && !before.is_empty()
            && before
                .iter()
                .all(|(p, pos)| pos.is_some_and(|pos| pos >= ends.get(p).copied().unwrap_or(0)))
        {
            break;
        }
        let batches = consumer.poll(Duration::from_millis(POLL_WAIT_MS))?;
        if batches.is_empty() {
            if idle_exit.is_some_and(|d| last_record.elapsed() >= d) {
                break;
            }
            continue;
        }
        last_record = Instant::now();
        let left = args.max.map_or(u64::MAX, |m| m - printed);
        let (count, next) = print_batches(&mut out, &batches, format, args.format, left, ends)?;
        printed += count;
        match out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                // The reader went away: nothing printed in this poll reached it, so commit
                // nothing of it.
                return Ok(());
            }
            r => r.context("writing to standard output")?,
        }
        if args.group.is_some() {
            if let Some(ends) = ends {
                // Records at or past a partition's end were fetched but not printed: commit
                // the end, not the position.
                for tp in consumer.assignment() {
                    let (t, p) = (tp.topic(), tp.partition());
                    let end = ends.get(&p).copied().unwrap_or(0);
                    if consumer.position(t, p).is_some_and(|pos| pos > end) {
                        consumer.seek(t, p, end)?;
                    }
                }
            }
            if args.max.is_some_and(|m| printed >= m) {
                // Maybe stopped inside this poll: commit what was printed, not the position.
                rewind(consumer, &args.topic, &batches, &before, &next)?;
            }
            consumer.commit_sync().context("committing offsets")?;
        }
    }
    Ok(())
}

/// Prints up to `left` records; returns how many it printed and, per partition, the offset
/// after the last one printed.
fn print_batches(
    out: &mut impl Write,
    batches: &[ConsumerBatch],
    format: &ValueCodec,
    output: OutputFormat,
    mut left: u64,
    ends: Option<&HashMap<i32, i64>>,
) -> Result<(u64, HashMap<i32, i64>)> {
    let mut count = 0;
    let mut next = HashMap::new();
    'batches: for b in batches {
        let end = ends.map_or(i64::MAX, |e| e.get(&b.partition).copied().unwrap_or(0));
        for r in b.records() {
            if left == 0 {
                break 'batches;
            }
            let r = r.with_context(|| format!("reading {}-{}", b.topic, b.partition))?;
            if r.offset >= end {
                // Past where --until-end stops.
                break;
            }
            print_record(
                out,
                &RecordRef {
                    topic: &b.topic,
                    partition: b.partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key.as_deref(),
                    value: r.value.as_deref(),
                },
                format,
                output,
            )?;
            next.insert(b.partition, r.offset + 1);
            count += 1;
            left -= 1;
        }
    }
    Ok((count, next))
}

/// A record to print, from the embedded log or a cluster.
struct RecordRef<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

/// Prints one record as `output` says (one line).
fn print_record(
    out: &mut impl Write,
    r: &RecordRef<'_>,
    format: &ValueCodec,
    output: OutputFormat,
) -> Result<()> {
    let value = format.decode(r.value).with_context(|| {
        format!(
            "topic '{}' partition {} offset {}",
            r.topic, r.partition, r.offset
        )
    })?;
    match output {
        OutputFormat::Json => {
            let rec = OutRecord {
                topic: r.topic,
                partition: r.partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key.map(String::from_utf8_lossy),
                tombstone: value.is_tombstone(),
                value,
            };
            // Back to the io error, which keeps the mark of a closed standard output
            // (serde_json's own error hides it from `source()`).
            serde_json::to_writer(&mut *out, &rec).map_err(io::Error::from)?;
            out.write_all(b"\n")?;
        }
        OutputFormat::Text => {
            out.write_all(value.to_text().as_bytes())?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// Moves every partition of this poll back to just after its last printed record (or to where
/// it was before the poll, if none was printed), so that the commit covers printed records only.
fn rewind(
    consumer: &mut Consumer,
    topic: &str,
    batches: &[ConsumerBatch],
    before: &HashMap<i32, Option<i64>>,
    next: &HashMap<i32, i64>,
) -> Result<()> {
    let mut done = Vec::new();
    for b in batches {
        if done.contains(&b.partition) {
            continue;
        }
        done.push(b.partition);
        let target = match (
            next.get(&b.partition),
            before.get(&b.partition).copied().flatten(),
        ) {
            (Some(n), _) => *n,
            (None, Some(p)) => p,
            // The position was not known before the poll: the first record handed out.
            (None, None) => match b.records().next() {
                Some(r) => r?.offset,
                None => continue,
            },
        };
        consumer.seek(topic, b.partition, target)?;
    }
    Ok(())
}

/// Records handed out by one poll of a cluster consumer, at most: printed, flushed and
/// committed together.
const CLUSTER_POLL_RECORDS_MAX: usize = 1000;

/// `consume` as a client of `cluster`: the same flags, starts, stops and output.
pub fn run_cluster(cluster: &ClientConfig, args: ConsumeArgs) -> Result<()> {
    let stop = prepare(&args)?;
    let topic = args.topic.as_str();
    let isolation: Isolation = args.isolation.into();
    let admin = Admin::connect(cluster)?;
    let config = weir_cluster::configs::fetch_topic_config(&admin, topic)?;
    let format = ValueCodec::of_topic(topic, &config)?;
    let partitions = admin.partitions(topic)?;
    // Where --until-end stops: each partition's end as the command starts.
    let ends: Option<HashMap<i32, i64>> = if args.until_end {
        let mut ends = HashMap::new();
        for &p in &partitions {
            ends.insert(p, admin.watermarks(topic, p, isolation)?.1);
        }
        Some(ends)
    } else {
        None
    };
    drop(admin);
    let consumer = ClusterConsumer::new(
        cluster,
        &ClusterConsumerConfig {
            group: args.group.clone(),
            isolation,
            offset_reset: if args.from_beginning {
                ClusterOffsetReset::Earliest
            } else {
                ClusterOffsetReset::Latest
            },
            // A partition already at its end when assigned hands out no record to say so.
            report_partition_end: ends.is_some(),
            ..ClusterConsumerConfig::default()
        },
    )?;
    if args.group.is_some() {
        consumer.subscribe(&[topic])?;
    } else {
        let start = if args.from_beginning {
            StartAt::Beginning
        } else {
            StartAt::End
        };
        let assignment: Vec<(i32, StartAt)> = partitions.iter().map(|&p| (p, start)).collect();
        consumer.assign(topic, &assignment)?;
    }
    let result = follow_cluster(&consumer, &args, &format, ends.as_ref(), &stop);
    consumer.close();
    result
}

fn follow_cluster(
    consumer: &ClusterConsumer,
    args: &ConsumeArgs,
    format: &ValueCodec,
    ends: Option<&HashMap<i32, i64>>,
    stop: &AtomicBool,
) -> Result<()> {
    let topic = args.topic.as_str();
    let mut out = BufWriter::with_capacity(1 << 16, Stdout::lock());
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    let idle_exit = args.idle_exit_ms.map(Duration::from_millis);
    // Partitions that reached their end (with --until-end).
    let mut at_end: HashSet<i32> = HashSet::new();
    while args.max.is_none_or(|m| printed < m) && !stop.load(Ordering::Relaxed) {
        if ends.is_some() {
            let assigned: Vec<i32> = if args.group.is_some() {
                consumer
                    .assignment()?
                    .into_iter()
                    .filter(|(t, _)| t == topic)
                    .map(|(_, p)| p)
                    .collect()
            } else {
                ends.into_iter().flat_map(|e| e.keys().copied()).collect()
            };
            if !assigned.is_empty() && assigned.iter().all(|p| at_end.contains(p)) {
                break;
            }
        }
        // Offsets after the last record printed in this poll, per partition.
        let mut next: HashMap<i32, i64> = HashMap::new();
        let mut handed_out = 0;
        let mut wait = Duration::from_millis(POLL_WAIT_MS);
        while handed_out < CLUSTER_POLL_RECORDS_MAX && args.max.is_none_or(|m| printed < m) {
            let Some(event) = consumer.poll(wait)? else {
                break;
            };
            wait = Duration::ZERO;
            let record = match event {
                ClusterEvent::PartitionEnd { partition } => {
                    at_end.insert(partition);
                    continue;
                }
                ClusterEvent::Record(r) => r,
            };
            handed_out += 1;
            let partition = record.partition();
            let end = ends.map_or(i64::MAX, |e| e.get(&partition).copied().unwrap_or(0));
            if record.offset() >= end {
                // Past where --until-end stops.
                at_end.insert(partition);
                continue;
            }
            print_record(
                &mut out,
                &RecordRef {
                    topic: record.topic(),
                    partition,
                    offset: record.offset(),
                    timestamp: record.timestamp_ms(),
                    key: record.key(),
                    value: record.value(),
                },
                format,
                args.format,
            )?;
            printed += 1;
            next.insert(partition, record.offset() + 1);
            if record.offset() + 1 >= end {
                at_end.insert(partition);
            }
        }
        if handed_out == 0 {
            if idle_exit.is_some_and(|d| last_record.elapsed() >= d) {
                break;
            }
            continue;
        }
        last_record = Instant::now();
        match out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                // The reader went away: nothing printed in this poll reached it, so commit
                // nothing of it.
                return Ok(());
            }
            r => r.context("writing to standard output")?,
        }
        if args.group.is_some() {
            let offsets: Vec<(i32, i64)> = next.into_iter().collect();
            consumer
                .commit(topic, &offsets)
                .context("committing offsets")?;
        }
    }
    Ok(())
}
