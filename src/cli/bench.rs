//! `weir bench produce | consume`: the log's throughput next to what the same disk does with
//! plain sequential file I/O, measured in the same run and directory. Prints one `name: value`
//! line per figure; every figure is measured, none is assumed.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use weir::log::{
    Acks, Consumer, ConsumerConfig, Log, LogConfig, Producer, ProducerConfig, ProducerRecord,
    TopicConfig, TransactionalConfig, TransactionalProducer,
};

use weir_client::ClientConfig;

use super::report::Report;
use super::{AcksArg, CompressionArg, DataDir, usage};

pub(super) const MB: f64 = 1e6;
/// Pre-generated values: at least this many, and at least this many bytes (several batches).
const VALUE_POOL_VALUES_MIN: usize = 1024;
const VALUE_POOL_BYTES_MIN: usize = 64 << 20;
/// Records per latency sample.
const LATENCY_CHUNK_RECORDS: u64 = 10_000;
/// Latency samples taken: at least, at most.
const LATENCY_SAMPLES_MIN: u64 = 10;
const LATENCY_SAMPLES_MAX: u64 = 50;
/// Baseline writes and reads move this much per call.
const BASELINE_IO_BYTES: usize = 1 << 20;
/// Baselines are measured this many times; the best run counts.
const BASELINE_RUNS: u32 = 3;
/// With acks=all the baseline fsyncs this often (and at the end).
const BASELINE_FSYNC_BYTES: u64 = 64 << 20;
/// A consumer that sees nothing new for this long has lost records: the bench fails.
pub(super) const CONSUME_STALL_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Producer throughput and chunk latency, against sequential 1 MiB file writes
    #[command(
        after_help = "Runs in a temporary directory (removed afterwards) unless --data-dir or \
$WEIR_DATA_DIR is set; there it uses a temporary topic, deleted afterwards.\n\n\
Figures: records_per_s and mb_per_s (key + value bytes, MB = 1e6 bytes) from T producer threads sending \
N records and flushing; p50_ms/p99_ms: time to send and flush one 10,000-record chunk from one producer, in a \
second, shorter phase; baseline_mb_per_s: the same number of bytes as the log wrote, written with 1 MiB \
write_all calls to a file in the same directory (fsync every 64 MiB and at the end with --acks all), best of \
3 runs; baseline_records_per_s: that rate divided by the log's bytes per record."
    )]
    Produce(ProduceBench),
    /// Consumer throughput against sequential file reads, and the time to reopen the log
    #[command(
        after_help = "Produces N records first (not timed), then times one consumer reading them \
all from the beginning (every record's value touched); baseline: reading the same segment files \
sequentially with 1 MiB read calls (from the page cache, like the consumer), best of 3 runs. reopen_ms: Log::open after a \
clean close; reopen_after_crash_ms: Log::open after removing the clean-shutdown marker (recovery)."
    )]
    Consume(ConsumeBench),
    /// The ad-click job end to end (exactly-once windowed counts) against a single-loop count
    #[command(
        after_help = "Each run generates N clicks into a fresh `clicks` topic (binary values, Zipf ads), \
then times the ad-click job from start until it has drained the topic and committed its last epoch \
(1-minute tumbling counts per ad, exactly-once, hot ads salted). Runs: uniform ads (events_per_s), a \
viral ad taking --hot-share of the clicks with salting (hot_events_per_s) and without \
(hot_unsalted_events_per_s), and JSON values (json_events_per_s). baseline_events_per_s: one loop \
counting the same decoded clicks into a HashMap, the speed limit; \
baseline_read_decode_count_events_per_s adds reading and decoding them on one thread.\n\nWith --bootstrap, also the job on that cluster, after the embedded runs (which stay in a temporary \
directory): the clicks loaded over the protocol (idempotent producer, binary values, uniform ads; \
cluster_generate_events_per_s), then --instances instances of the job (default 1) in this process, each \
on its own thread with its own client, under one job name so that they share the work, timed until all \
have drained `clicks` and committed (cluster_<N>_instance[s]_events_per_s, median of --runs; \
cluster_vs_embedded against events_per_s). The cluster must not have the example's topics yet; the \
bench deletes the topics it created at the end."
    )]
    Adclick(super::bench_adclick::AdclickBench),
    /// `SELECT ad_id, count(*) FROM clicks GROUP BY ad_id` over topics against plain DataFusion
    #[command(
        after_help = "Generates N clicks (Zipf ads) into a `clicks` topic with binary values and into one \
with JSON values, and writes the same rows as a JSON-lines file and as in-memory Arrow batches. Then \
times the query (best of --runs) over each: binary_rows_per_s and json_rows_per_s through weir-sql, \
jsonl_rows_per_s (DataFusion's NDJSON reader) and memory_rows_per_s (a MemTable), all with \
--target-partitions threads; and the ratios binary_vs_jsonl, binary_vs_memory, json_vs_jsonl. \
read_only_rows_per_s: the binary topic grouped by _partition, which decodes no value (the log-read floor)."
    )]
    Sql(super::bench_sql::SqlBench),
    /// Producer and consumer through the Kafka protocol (`weir serve` over loopback) beside the
    /// embedded log, and produce→consume latency
    #[command(
        after_help = "Starts `weir serve --listen 127.0.0.1:0` as a child process of this program \
(its data directory in a temporary directory; with --bootstrap, uses that cluster instead), and \
stops it with SIGTERM at the end. For each of acks=all and acks=1, with lz4 and without compression: \
one librdkafka producer sends N records of --value-bytes to a fresh topic of --partitions and flushes \
(serve_produce_<acks>_<compression>_records_per_s, _mb_per_s), and the embedded producer does the same \
on a log in the same directory (embedded_produce_..., acks=all fsynced in both); \
serve_to_embedded_produce_ratio is that of acks=all lz4. Then one consumer reads each acks=all topic \
from the beginning (serve_consume_..., embedded_consume_...). Latency, once those topics are \
deleted and every file under the directory is fsynced (so that it does not time the writeback of \
the runs before): one producer (acks=all, lz4, \
linger 1 ms) sends --latency-rate records/s for --latency-seconds, evenly paced, and one consumer in \
the same process reads them; p50/p99/p999 of read time minus send time (serve_latency_p99_ms...)."
    )]
    Serve(super::bench_serve::ServeBench),
}

#[derive(Debug, Args)]
pub struct ProduceBench {
    /// Records to send
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// Bytes per value
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=(1 << 20)))]
    value_bytes: u64,
    /// Partitions of the benchmark topic
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    partitions: i32,
    /// Producer threads, each with its own producer
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    threads: u64,
    /// When a batch counts as written
    #[arg(long, value_enum, default_value_t = AcksArg::Leader)]
    acks: AcksArg,
    /// Batch compression
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    compression: CompressionArg,
    /// Producer batch size bound, bytes (uncompressed)
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1024..=(16 << 20)))]
    batch_bytes: u64,
    /// Transactions instead: --threads producers, acks=all, records spread over every partition,
    /// in transactions of each size of --txn-records, against plain acks=all (same threads) in the
    /// same run
    #[arg(long)]
    transactional: bool,
    /// Records per transaction, with --transactional (comma-separated)
    #[arg(long, value_delimiter = ',', default_values_t = [1_000u64, 10_000, 100_000])]
    txn_records: Vec<u64>,
}

#[derive(Debug, Args)]
pub struct ConsumeBench {
    /// Records to produce, then consume
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// Bytes per value
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=(1 << 20)))]
    value_bytes: u64,
    /// Partitions of the benchmark topic
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    partitions: i32,
}

pub fn run(dir: &DataDir, cluster: Option<&ClientConfig>, cmd: BenchCommand) -> Result<()> {
    if cluster.is_some() {
        let name = match &cmd {
            BenchCommand::Produce(_) => Some("bench produce"),
            BenchCommand::Consume(_) => Some("bench consume"),
            // With a cluster it adds the job on the cluster beside the embedded figures.
            BenchCommand::Adclick(_) => None,
            BenchCommand::Sql(_) => Some("bench sql"),
            BenchCommand::Serve(_) => None,
        };
        if let Some(name) = name {
            usage!("{}", super::not_over_a_cluster(name));
        }
    }
    if let BenchCommand::Adclick(a) = &cmd {
        super::bench_adclick::check(cluster, a)?;
    }
    let place = Place::new(dir)?;
    let mut report = Report::default();
    report.line(
        "machine",
        format!(
            "{} cores",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
    );
    report.line("data_dir", place.path.display());
    let result = match cmd {
        BenchCommand::Produce(a) if a.transactional => bench_transactional(&place, &a, &mut report),
        BenchCommand::Produce(a) => bench_produce(&place, &a, &mut report),
        BenchCommand::Consume(a) => bench_consume(&place, &a, &mut report),
        BenchCommand::Adclick(a) => {
            super::bench_adclick::bench(&place.path, cluster, &a, &mut report)
        }
        BenchCommand::Sql(a) => super::bench_sql::bench(&place.path, &a, &mut report),
        BenchCommand::Serve(a) => super::bench_serve::bench(&place.path, cluster, &a, &mut report),
    };
    // What was measured is printed even when the bench failed; then the failure is the error
    // (a closed stdout must not hide it).
    let printed = report.print();
    result?;
    Ok(printed?)
}

/// Where a bench runs: the user's data directory, or a temporary one.
struct Place {
    path: PathBuf,
    topic: String,
    _temp: Option<tempfile::TempDir>,
}

impl Place {
    fn new(dir: &DataDir) -> Result<Place> {
        let topic = format!("__bench_{}", std::process::id());
        if dir.explicit {
            std::fs::create_dir_all(&dir.path)
                .with_context(|| format!("creating {}", dir.path.display()))?;
            return Ok(Place {
                path: dir.path.clone(),
                topic,
                _temp: None,
            });
        }
        let temp = tempfile::Builder::new()
            .prefix("weir-bench-")
            .tempdir()
            .context("creating a temporary directory")?;
        Ok(Place {
            path: temp.path().to_path_buf(),
            topic,
            _temp: Some(temp),
        })
    }

    /// Opens the log, creates the bench topic, runs `f`, then deletes the topic and closes the
    /// log whatever happened. `f` may close the log and open it again (leaving `None` if the
    /// reopening failed).
    fn run(&self, partitions: i32, f: impl FnOnce(&mut Option<Log>) -> Result<()>) -> Result<()> {
        let log = Log::open(&self.path, LogConfig::default())?;
        log.create_topic(
            &self.topic,
            TopicConfig {
                partitions,
                retention_ms: None,
                ..TopicConfig::default()
            },
        )?;
        let mut log = Some(log);
        let result = f(&mut log);
        let log = match log {
            Some(log) => log,
            None => Log::open(&self.path, LogConfig::default())?,
        };
        let deleted = log
            .delete_topic(&self.topic)
            .context("deleting the bench topic");
        let closed = log.close().context("closing the log");
        result.and(deleted).and(closed)
    }
}

/// Closes `log` and opens it again, returning the time `Log::open` took. The old handle is
/// dropped first: the writer lock goes with its last clone.
fn reopen(
    log: &mut Option<Log>,
    dir: &Path,
    before_open: impl FnOnce() -> Result<()>,
) -> Result<Duration> {
    if let Some(old) = log.take() {
        old.close()?;
    }
    before_open()?;
    let start = Instant::now();
    let new = Log::open(dir, LogConfig::default())?;
    let took = start.elapsed();
    *log = Some(new);
    Ok(took)
}

/// Pre-generated values that records cycle through: pseudo-random printable bytes (compressible
/// about as much as text, by entropy coding, but without repeats within a batch for a codec to
/// find), from a fixed seed so that runs compare.
pub(super) struct ValuePool {
    bytes: Vec<u8>,
    value_bytes: usize,
    count: u64,
}

impl ValuePool {
    /// At least `VALUE_POOL_VALUES_MIN` values and `VALUE_POOL_BYTES_MIN` bytes, so a batch never
    /// holds the same value twice.
    pub(super) fn new(value_bytes: usize) -> ValuePool {
        const ALPHABET: &[u8] =
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,:{}\"";
        let count = VALUE_POOL_VALUES_MIN.max(VALUE_POOL_BYTES_MIN.div_ceil(value_bytes));
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        let bytes = (0..count * value_bytes)
            .map(|_| ALPHABET[rng.usize(..ALPHABET.len())])
            .collect();
        ValuePool {
            bytes,
            value_bytes,
            count: count as u64,
        }
    }

    pub(super) fn get(&self, i: u64) -> &[u8] {
        let start = (i % self.count) as usize * self.value_bytes;
        &self.bytes[start..start + self.value_bytes]
    }
}

/// Runs `work(t)` for t in 0..threads, each on its own thread; returns the sum of the results.
fn on_threads(threads: u64, work: impl Fn(u64) -> Result<u64> + Sync) -> Result<u64> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let work = &work;
                s.spawn(move || work(t))
            })
            .collect();
        let mut total = 0;
        for h in handles {
            total += h
                .join()
                .map_err(|_| anyhow::anyhow!("a producer thread panicked"))??;
        }
        Ok(total)
    })
}

pub(super) fn per_s(amount: f64, d: Duration) -> f64 {
    amount / d.as_secs_f64().max(1e-9)
}

pub(super) fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

fn log_bytes(log: &Log, topic: &str) -> Result<u64> {
    Ok(log
        .describe_topic(topic)?
        .partitions
        .iter()
        .map(|p| p.size_bytes)
        .sum())
}

/// Sends `count` records cycling through `pool`, starting at `first`.
pub(super) fn send_records(
    producer: &Producer,
    topic: &str,
    pool: &ValuePool,
    first: u64,
    count: u64,
) -> Result<()> {
    for i in first..first + count {
        producer.send(ProducerRecord::new(topic, pool.get(i)))?;
    }
    Ok(())
}

fn bench_produce(place: &Place, a: &ProduceBench, report: &mut Report) -> Result<()> {
    let pool = ValuePool::new(a.value_bytes as usize);
    let config = ProducerConfig {
        acks: a.acks.into(),
        compression: a.compression.into(),
        batch_bytes_max: a.batch_bytes as usize,
        ..ProducerConfig::default()
    };
    report.line("records", a.records);
    report.line("value_bytes", a.value_bytes);
    report.line("partitions", a.partitions);
    report.line("threads", a.threads);
    report.line("acks", format!("{:?}", a.acks).to_lowercase());
    report.line("compression", format!("{:?}", a.compression).to_lowercase());
    report.line("batch_bytes", a.batch_bytes);
    place.run(a.partitions, |log| {
        let log = log.as_ref().expect("open until the bench reopens it");
        let topic = place.topic.as_str();
        // Throughput: T producers, created before the clock starts.
        let producers = (0..a.threads)
            .map(|_| Producer::new(log, config.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let share = a.records / a.threads;
        let start = Instant::now();
        on_threads(a.threads, |i| {
            let p = &producers[i as usize];
            let count = share + if i == 0 { a.records % a.threads } else { 0 };
            send_records(p, topic, &pool, i * share, count)?;
            p.flush()?;
            Ok(count)
        })?;
        let elapsed = start.elapsed();
        for p in producers {
            p.close()?;
        }
        let bytes = log_bytes(log, topic)?;
        let per_record = bytes as f64 / a.records as f64;
        report.line("seconds", format!("{:.3}", elapsed.as_secs_f64()));
        report.line(
            "records_per_s",
            format!("{:.0}", per_s(a.records as f64, elapsed)),
        );
        report.line(
            "mb_per_s",
            format!(
                "{:.1}",
                per_s((a.records * a.value_bytes) as f64, elapsed) / MB
            ),
        );
        report.line("log_bytes", bytes);
        report.line("bytes_per_record", format!("{per_record:.1}"));

        // Latency: one producer, chunks of records each sent and flushed.
        settle(&place.path.join(topic))?;
        let chunk = LATENCY_CHUNK_RECORDS.min(a.records);
        let samples = (a.records / chunk).clamp(LATENCY_SAMPLES_MIN, LATENCY_SAMPLES_MAX);
        let producer = Producer::new(log, config.clone())?;
        let mut times = Vec::with_capacity(samples as usize);
        for i in 0..samples {
            let t = Instant::now();
            send_records(&producer, topic, &pool, i * chunk, chunk)?;
            producer.flush()?;
            times.push(t.elapsed());
        }
        producer.close()?;
        times.sort();
        report.line("latency_chunk_records", chunk);
        report.line("latency_samples", samples);
        report.line("p50_ms", format!("{:.2}", percentile_ms(&times, 0.50)));
        report.line("p99_ms", format!("{:.2}", percentile_ms(&times, 0.99)));
        report.line("max_ms", format!("{:.2}", percentile_ms(&times, 1.0)));

        // Baseline: the bytes the log wrote in the throughput phase, as plain sequential writes.
        // Best of a few runs: this VM's disk varies a lot from one second to the next, and the
        // log should be compared with what the disk can do.
        let fsync = a.acks == AcksArg::All;
        let path = place.path.join(format!("{}.baseline", place.topic));
        let mut best = Duration::MAX;
        for _ in 0..BASELINE_RUNS {
            settle(&place.path.join(topic))?;
            best = best.min(baseline_write(&path, bytes, fsync)?);
        }
        let rate = per_s(bytes as f64, best);
        report.line("baseline_runs", BASELINE_RUNS);
        report.line("baseline_mb_per_s", format!("{:.1}", rate / MB));
        report.line(
            "baseline_records_per_s",
            format!("{:.0}", rate / per_record.max(1.0)),
        );
        Ok(())
    })
}

/// Transactions of each size against plain acks=all, one producer, records dealt round-robin over
/// the partitions so that every transaction spans all of them.
fn bench_transactional(place: &Place, a: &ProduceBench, report: &mut Report) -> Result<()> {
    if a.txn_records.contains(&0) {
        bail!("--txn-records must be positive");
    }
    let pool = ValuePool::new(a.value_bytes as usize);
    report.line("records", a.records);
    report.line("value_bytes", a.value_bytes);
    report.line("partitions", a.partitions);
    report.line("threads", a.threads);
    report.line("acks", "all");
    report.line("compression", format!("{:?}", a.compression).to_lowercase());
    // Each of T threads sends its share of the records, dealt round-robin over the partitions.
    let share = |t: u64| -> (u64, u64) {
        let per = a.records / a.threads;
        (
            t * per,
            per + if t == a.threads - 1 {
                a.records % a.threads
            } else {
                0
            },
        )
    };
    place.run(a.partitions, |log| {
        let log = log.as_ref().expect("open until the bench reopens it");
        let topic = place.topic.as_str();
        let partitions = a.partitions as u64;
        let config = ProducerConfig {
            acks: Acks::All,
            compression: a.compression.into(),
            batch_bytes_max: a.batch_bytes as usize,
            ..ProducerConfig::default()
        };
        settle(&place.path.join(topic))?;
        let producers = (0..a.threads)
            .map(|_| Producer::new(log, config.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let start = Instant::now();
        on_threads(a.threads, |t| {
            let producer = &producers[t as usize];
            let (first, count) = share(t);
            for i in first..first + count {
                producer.send(
                    ProducerRecord::new(topic, pool.get(i)).partition((i % partitions) as i32),
                )?;
            }
            producer.flush()?;
            Ok(count)
        })?;
        let plain = per_s(a.records as f64, start.elapsed());
        for p in producers {
            p.close()?;
        }
        report.line("plain_records_per_s", format!("{plain:.0}"));
        report.line("baseline_records_per_s", format!("{plain:.0}"));
        for &size in &a.txn_records {
            settle(&place.path.join(topic))?;
            let start = Instant::now();
            let txns = on_threads(a.threads, |t| {
                // Its own default batch size (smaller than the plain producer's, so batches go
                // out while the transaction is written).
                let mut p = TransactionalProducer::new(
                    log,
                    TransactionalConfig {
                        compression: a.compression.into(),
                        ..TransactionalConfig::new(format!("{topic}-{size}-{t}"))
                    },
                )?;
                let (first, count) = share(t);
                let mut sent = 0;
                let mut txns = 0u64;
                while sent < count {
                    let n = size.min(count - sent);
                    p.begin()?;
                    for i in first + sent..first + sent + n {
                        p.send(
                            ProducerRecord::new(topic, pool.get(i))
                                .partition((i % partitions) as i32),
                        )?;
                    }
                    p.commit()?;
                    sent += n;
                    txns += 1;
                }
                Ok(txns)
            })?;
            let elapsed = start.elapsed();
            let rate = per_s(a.records as f64, elapsed);
            report.line(&format!("txn_{size}_records_per_s"), format!("{rate:.0}"));
            report.line(
                &format!("txn_{size}_mb_per_s"),
                format!(
                    "{:.1}",
                    per_s((a.records * a.value_bytes) as f64, elapsed) / MB
                ),
            );
            report.line(
                &format!("txn_{size}_commits_per_s"),
                format!("{:.1}", per_s(txns as f64, elapsed)),
            );
            report.line(
                &format!("txn_{size}_vs_plain"),
                format!("{:.2}", rate / plain.max(1.0)),
            );
        }
        Ok(())
    })
}

/// Writes every dirty page under `dir` to disk (fsync of each file), so that the next timed
/// phase does not run against the writeback of the previous one: on a VM, writing while the
/// kernel flushes gigabytes written just before is several times slower than writing after.
pub(super) fn settle(dir: &Path) -> Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .with_context(|| format!("fsync {}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to a new file at `path` in 1 MiB `write_all` calls (fsyncing every 64 MiB and
/// at the end if asked), removes it, and returns the time taken.
fn baseline_write(path: &Path, bytes: u64, fsync: bool) -> Result<Duration> {
    let mut rng = fastrand::Rng::with_seed(1);
    let buf: Vec<u8> = (0..BASELINE_IO_BYTES).map(|_| rng.u8(..)).collect();
    let result = (|| -> io::Result<Duration> {
        let mut f = File::create(path)?;
        let start = Instant::now();
        let mut written = 0u64;
        let mut since_sync = 0u64;
        while written < bytes {
            let n = (bytes - written).min(BASELINE_IO_BYTES as u64) as usize;
            f.write_all(&buf[..n])?;
            written += n as u64;
            since_sync += n as u64;
            if fsync && since_sync >= BASELINE_FSYNC_BYTES {
                f.sync_data()?;
                since_sync = 0;
            }
        }
        if fsync {
            f.sync_data()?;
        }
        Ok(start.elapsed())
    })();
    let removed = std::fs::remove_file(path);
    let elapsed = result.with_context(|| format!("baseline writes to {}", path.display()))?;
    removed.with_context(|| format!("removing {}", path.display()))?;
    Ok(elapsed)
}

fn bench_consume(place: &Place, a: &ConsumeBench, report: &mut Report) -> Result<()> {
    report.line("records", a.records);
    report.line("value_bytes", a.value_bytes);
    report.line("partitions", a.partitions);
    place.run(a.partitions, |slot| {
        let log = slot.as_ref().expect("open until the bench reopens it");
        let topic = place.topic.as_str();
        let pool = ValuePool::new(a.value_bytes as usize);
        let producer = Producer::new(log, ProducerConfig::default())?;
        send_records(&producer, topic, &pool, 0, a.records)?;
        producer.close()?;
        // It holds a clone of the log, and with it the writer lock the reopening needs.
        drop(producer);
        let bytes = log_bytes(log, topic)?;
        let per_record = bytes as f64 / a.records as f64;
        report.line("log_bytes", bytes);
        report.line("bytes_per_record", format!("{per_record:.1}"));

        settle(&place.path.join(topic))?;
        let (value_bytes, elapsed) = consume_all(log, topic, a.records)?;
        let records = a.records;
        if value_bytes != a.records * a.value_bytes {
            bail!(
                "consumed {records} records with {value_bytes} value bytes, expected {} bytes",
                a.records * a.value_bytes
            );
        }
        report.line("seconds", format!("{:.3}", elapsed.as_secs_f64()));
        report.line(
            "records_per_s",
            format!("{:.0}", per_s(records as f64, elapsed)),
        );
        report.line(
            "mb_per_s",
            format!("{:.1}", per_s(value_bytes as f64, elapsed) / MB),
        );

        let mut best = (0, Duration::MAX);
        for _ in 0..BASELINE_RUNS {
            let (read, took) = baseline_read(&place.path.join(topic))?;
            if took < best.1 {
                best = (read, took);
            }
        }
        let rate = per_s(best.0 as f64, best.1);
        report.line("baseline_runs", BASELINE_RUNS);
        report.line("baseline_mb_per_s", format!("{:.1}", rate / MB));
        report.line(
            "baseline_records_per_s",
            format!("{:.0}", rate / per_record.max(1.0)),
        );

        // Reopening: after a clean close, then as after a crash (no clean-shutdown marker).
        let took = reopen(slot, &place.path, || Ok(()))?;
        report.line("reopen_ms", format!("{:.1}", took.as_secs_f64() * 1e3));
        let marker = place.path.join(weir_log::CLEAN_SHUTDOWN_FILE);
        let took = reopen(slot, &place.path, || {
            std::fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))
        })?;
        report.line(
            "reopen_after_crash_ms",
            format!("{:.1}", took.as_secs_f64() * 1e3),
        );
        let log = slot.as_ref().expect("just reopened");
        report.line("recovery_truncations", log.recovery_report().len());
        Ok(())
    })
}

/// One consumer reads `records` records of `topic` from the beginning, touching every value;
/// returns the value bytes read and the time taken. A consumer that sees nothing new for
/// `CONSUME_STALL_MAX` fails.
pub(super) fn consume_all(log: &Log, topic: &str, records: u64) -> Result<(u64, Duration)> {
    let mut consumer = Consumer::new(log, ConsumerConfig::default())?;
    consumer.assign_topic(topic)?;
    consumer.seek_to_beginning()?;
    let start = Instant::now();
    let mut read = 0u64;
    let mut value_bytes = 0u64;
    let mut last_progress = Instant::now();
    while read < records {
        let batches = consumer.poll(Duration::from_millis(100))?;
        if batches.is_empty() {
            if last_progress.elapsed() > CONSUME_STALL_MAX {
                bail!("the consumer stalled after {read} of {records} records");
            }
            continue;
        }
        last_progress = Instant::now();
        for b in &batches {
            for r in b.records() {
                value_bytes += r?.value.as_ref().map_or(0, |v| v.len() as u64);
                read += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    consumer.close()?;
    if read != records {
        bail!("consumed {read} records, expected {records}");
    }
    Ok((value_bytes, elapsed))
}

/// Reads every segment file (`*.log`) under `topic_dir` sequentially with 1 MiB `read` calls;
/// returns the bytes read and the time taken.
fn baseline_read(topic_dir: &Path) -> Result<(u64, Duration)> {
    let mut files = Vec::new();
    for partition in
        std::fs::read_dir(topic_dir).with_context(|| format!("listing {}", topic_dir.display()))?
    {
        let partition = partition?.path();
        if !partition.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&partition)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "log") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut buf = vec![0u8; BASELINE_IO_BYTES];
    let mut total = 0u64;
    let start = Instant::now();
    for path in &files {
        let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        loop {
            let n = f
                .read(&mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    Ok((total, start.elapsed()))
}
