//! `weir bench serve`: one producer and one consumer through the Kafka protocol over loopback
//! (`weir serve` started as a child process of this binary), beside the same work on the
//! embedded log in the same run; then produce→consume latency at a fixed rate.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use weir::log::{
    Acks as LogAcks, Log, LogConfig, Producer as LogProducer, ProducerConfig as LogProducerConfig,
    TopicConfig,
};
use weir_client::{
    Acks, Admin, ClientConfig, Compression, Consumer, ConsumerConfig, Event, NewTopic, Producer,
    ProducerConfig, ProducerRecord, StartAt,
};

use super::bench::{
    CONSUME_STALL_MAX, MB, ValuePool, consume_all, per_s, percentile_ms, send_records, settle,
};
use super::report::Report;

/// How long the server may take to print its `listening:` line.
const SERVER_START_MAX: Duration = Duration::from_secs(60);
/// How long the server may take to stop after SIGTERM before it is killed.
const SERVER_STOP_MAX: Duration = Duration::from_secs(60);
/// The latency phase paces its sends in steps of this long.
const PACING_STEP: Duration = Duration::from_micros(200);
/// Bytes at the start of a latency record's value: when it was sent, ns since the phase began.
const SENT_AT_BYTES: usize = 8;

#[derive(Debug, Args)]
pub struct ServeBench {
    /// Records per throughput run (each of acks=all and acks=1, with lz4 and none)
    #[arg(long, default_value_t = 2_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// Bytes per value
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(SENT_AT_BYTES as u64..=(1 << 20)))]
    value_bytes: u64,
    /// Partitions of every benchmark topic
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    partitions: i32,
    /// Records per second the latency phase sends, evenly paced
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    latency_rate: u64,
    /// How long the latency phase sends
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    latency_seconds: u64,
}

/// One producer run's settings and name (`acks_all_lz4`).
#[derive(Clone, Copy)]
struct Variant {
    acks: Acks,
    compression: Compression,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant {
            acks: Acks::All,
            compression: Compression::Lz4,
        },
        Variant {
            acks: Acks::All,
            compression: Compression::None,
        },
        Variant {
            acks: Acks::Leader,
            compression: Compression::Lz4,
        },
        Variant {
            acks: Acks::Leader,
            compression: Compression::None,
        },
    ];

    fn name(self) -> String {
        let acks = match self.acks {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        };
        let compression = match self.compression {
            Compression::Lz4 => "lz4",
            _ => "none",
        };
        format!("acks_{acks}_{compression}")
    }

    fn topic(self) -> String {
        format!(
            "bench-serve-{}-{}",
            self.name().replace('_', "-"),
            std::process::id()
        )
    }
}

/// `weir serve` as a child process of this binary, on a free loopback port.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(data_dir: &Path) -> Result<Server> {
        let exe = std::env::current_exe().context("finding this program's path")?;
        let mut child = Command::new(exe)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("WEIR_BOOTSTRAP")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting weir serve")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let (tx, rx) = mpsc::channel();
        // Reads the `listening:` line, then drains the rest so the server never blocks on a
        // full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(address) = line.strip_prefix("listening: ") {
                    let _ = tx.send(address.trim().to_string());
                    break;
                }
            }
            for _ in lines {}
        });
        let mut server = Server {
            child,
            address: String::new(),
        };
        match rx.recv_timeout(SERVER_START_MAX) {
            Ok(address) => {
                server.address = address;
                Ok(server)
            }
            Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                server.kill();
                match status {
                    Some(s) => bail!("weir serve exited ({s}) before it listened"),
                    None => bail!("weir serve did not listen within {SERVER_START_MAX:?}"),
                }
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the process; kills it if it does not stop in time.
    fn stop(mut self) -> Result<()> {
        let pid = libc::pid_t::try_from(self.child.id()).context("the server's pid")?;
        // SAFETY: kill(2) with a pid this process started and has not reaped yet.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        if sent != 0 {
            self.kill();
            bail!("SIGTERM to weir serve (pid {pid}) failed");
        }
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for weir serve")? {
                if !status.success() {
                    bail!("weir serve stopped with {status}");
                }
                return Ok(());
            }
            if start.elapsed() > SERVER_STOP_MAX {
                self.kill();
                bail!("weir serve did not stop within {SERVER_STOP_MAX:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only when the bench failed before stop(): never leave the child running.
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

pub fn bench(
    place: &Path,
    external: Option<&ClientConfig>,
    a: &ServeBench,
    report: &mut Report,
) -> Result<()> {
    report.line("records", a.records);
    report.line("value_bytes", a.value_bytes);
    report.line("partitions", a.partitions);
    let work = tempfile::Builder::new()
        .prefix("weir-bench-serve-")
        .tempdir_in(place)
        .with_context(|| format!("creating a directory in {}", place.display()))?;
    let (server, cluster) = match external {
        Some(c) => (None, c.clone()),
        None => {
            let server = Server::start(&work.path().join("serve"))?;
            let cluster = ClientConfig::new(server.address.clone());
            (Some(server), cluster)
        }
    };
    report.line("serve_address", &cluster.bootstrap);
    let result = measure(&cluster, work.path(), a, report);
    let stopped = server.map_or(Ok(()), Server::stop);
    result.and(stopped)
}

/// The runs, with the embedded log in `work/embedded` (and the server's files, when this
/// process started it, in `work/serve`).
fn measure(cluster: &ClientConfig, work: &Path, a: &ServeBench, report: &mut Report) -> Result<()> {
    let pool = ValuePool::new(a.value_bytes as usize);
    let admin = Admin::connect(cluster)?;
    let log = Log::open(work.join("embedded"), LogConfig::default())?;
    let result = (|| -> Result<()> {
        let mut serve_rates = HashMap::new();
        let mut embedded_rates = HashMap::new();
        for v in Variant::ALL {
            let topic = v.topic();
            create_serve_topic(&admin, &topic, a.partitions)?;
            let rate = serve_produce(cluster, &topic, v, &pool, a.records)?;
            rate_lines(report, &format!("serve_produce_{}", v.name()), rate, a);
            serve_rates.insert(v.name(), rate);
            log.create_topic(
                &topic,
                TopicConfig {
                    partitions: a.partitions,
                    retention_ms: None,
                    ..TopicConfig::default()
                },
            )?;
            let rate = embedded_produce(&log, &topic, v, &pool, a.records)?;
            rate_lines(report, &format!("embedded_produce_{}", v.name()), rate, a);
            embedded_rates.insert(v.name(), rate);
            report.line(
                &format!("serve_to_embedded_produce_{}_ratio", v.name()),
                format!("{:.2}", serve_rates[&v.name()] / rate.max(1.0)),
            );
        }
        // Consumers read what the acks=all runs wrote, with and without lz4.
        for v in &Variant::ALL[..2] {
            let topic = v.topic();
            let rate = serve_consume(cluster, &admin, &topic, a)?;
            rate_lines(report, &format!("serve_consume_{}", v.name()), rate, a);
            let embedded = embedded_consume(&log, &topic, a)?;
            rate_lines(
                report,
                &format!("embedded_consume_{}", v.name()),
                embedded,
                a,
            );
            if v.compression == Compression::Lz4 {
                report.line(
                    "serve_to_embedded_consume_ratio",
                    format!("{:.2}", rate / embedded.max(1.0)),
                );
            }
        }
        let headline = Variant::ALL[0].name();
        report.line(
            "serve_to_embedded_produce_ratio",
            format!(
                "{:.2}",
                serve_rates[&headline] / embedded_rates[&headline].max(1.0)
            ),
        );
        for v in Variant::ALL {
            admin.delete_topic(&v.topic())?;
        }
        // The throughput runs leave gigabytes for the kernel to write back; measured during
        // that writeback, the latency phase's fsyncs would time the disk's backlog, not the
        // path (p99 above 100 ms against about 3 ms after a settle, on this machine).
        settle(work)?;
        latency(cluster, &admin, a, report)?;
        Ok(())
    })();
    let closed = log.close().context("closing the embedded log");
    result.and(closed)
}

fn rate_lines(report: &mut Report, prefix: &str, records_per_s: f64, a: &ServeBench) {
    report.line(
        &format!("{prefix}_records_per_s"),
        format!("{records_per_s:.0}"),
    );
    report.line(
        &format!("{prefix}_mb_per_s"),
        format!("{:.1}", records_per_s * a.value_bytes as f64 / MB),
    );
}

fn create_serve_topic(admin: &Admin, topic: &str, partitions: i32) -> Result<()> {
    admin.create_topic(&NewTopic {
        name: topic.to_string(),
        partitions,
        replication_factor: None,
        configs: vec![("retention.ms".into(), "-1".into())],
    })?;
    Ok(())
}

/// Records per second through the protocol: send every record and flush.
fn serve_produce(
    cluster: &ClientConfig,
    topic: &str,
    v: Variant,
    pool: &ValuePool,
    records: u64,
) -> Result<f64> {
    let producer = Producer::new(
        cluster,
        &ProducerConfig {
            acks: v.acks,
            compression: v.compression,
            idempotence: false,
            ..ProducerConfig::default()
        },
    )?;
    let start = Instant::now();
    for i in 0..records {
        producer.send(ProducerRecord::new(topic, pool.get(i)))?;
    }
    let delivered = producer.flush()?.delivered;
    let elapsed = start.elapsed();
    if delivered != records {
        bail!("{delivered} of {records} records were acknowledged");
    }
    Ok(per_s(records as f64, elapsed))
}

/// The same on the embedded log (acks=1 is `leader`, acks=all `all`: fsynced).
fn embedded_produce(
    log: &Log,
    topic: &str,
    v: Variant,
    pool: &ValuePool,
    records: u64,
) -> Result<f64> {
    let producer = LogProducer::new(
        log,
        LogProducerConfig {
            acks: match v.acks {
                Acks::All => LogAcks::All,
                Acks::Leader => LogAcks::Leader,
                Acks::None => LogAcks::None,
            },
            compression: match v.compression {
                Compression::Lz4 => weir::log::format::Compression::Lz4,
                _ => weir::log::format::Compression::None,
            },
            ..LogProducerConfig::default()
        },
    )?;
    let start = Instant::now();
    send_records(&producer, topic, pool, 0, records)?;
    producer.flush()?;
    let elapsed = start.elapsed();
    producer.close()?;
    Ok(per_s(records as f64, elapsed))
}

/// Records per second one protocol consumer reads from the beginning (every value touched).
fn serve_consume(
    cluster: &ClientConfig,
    admin: &Admin,
    topic: &str,
    a: &ServeBench,
) -> Result<f64> {
    let partitions = admin.partitions(topic)?;
    let consumer = Consumer::new(cluster, &ConsumerConfig::default())?;
    let assignment: Vec<(i32, StartAt)> = partitions
        .iter()
        .map(|&p| (p, StartAt::Beginning))
        .collect();
    consumer.assign(topic, &assignment)?;
    let start = Instant::now();
    let mut records = 0u64;
    let mut value_bytes = 0u64;
    let mut last_progress = Instant::now();
    while records < a.records {
        match consumer.poll(Duration::from_millis(100))? {
            Some(Event::Record(r)) => {
                value_bytes += r.value().map_or(0, |v| v.len() as u64);
                records += 1;
                last_progress = Instant::now();
            }
            Some(Event::PartitionEnd { .. }) => {}
            None => {
                if last_progress.elapsed() > CONSUME_STALL_MAX {
                    bail!(
                        "the protocol consumer stalled after {records} of {} records",
                        a.records
                    );
                }
            }
        }
    }
    let elapsed = start.elapsed();
    consumer.close();
    if value_bytes != a.records * a.value_bytes {
        bail!(
            "consumed {value_bytes} value bytes, expected {}",
            a.records * a.value_bytes
        );
    }
    Ok(per_s(records as f64, elapsed))
}

fn embedded_consume(log: &Log, topic: &str, a: &ServeBench) -> Result<f64> {
    let (value_bytes, elapsed) = consume_all(log, topic, a.records)?;
    if value_bytes != a.records * a.value_bytes {
        bail!(
            "consumed {value_bytes} value bytes, expected {}",
            a.records * a.value_bytes
        );
    }
    Ok(per_s(a.records as f64, elapsed))
}

/// Produce→consume latency through the protocol: one producer (acks=all, lz4, linger 1 ms)
/// sends at `latency_rate` records/s, evenly paced; one consumer in this process reads them;
/// each value starts with its send time, so a record's latency is read time minus send time.
fn latency(
    cluster: &ClientConfig,
    admin: &Admin,
    a: &ServeBench,
    report: &mut Report,
) -> Result<()> {
    let topic = format!("bench-serve-latency-{}", std::process::id());
    create_serve_topic(admin, &topic, a.partitions)?;
    let total = a.latency_rate * a.latency_seconds;
    let linger_ms = 1;
    report.line("serve_latency_rate_records_per_s", a.latency_rate);
    report.line("serve_latency_records", total);
    report.line("serve_latency_acks", "all");
    report.line("serve_latency_compression", "lz4");
    report.line("serve_latency_linger_ms", linger_ms);
    let consumer = Consumer::new(cluster, &ConsumerConfig::default())?;
    let partitions = admin.partitions(&topic)?;
    let assignment: Vec<(i32, StartAt)> = partitions
        .iter()
        .map(|&p| (p, StartAt::Beginning))
        .collect();
    consumer.assign(&topic, &assignment)?;
    let producer = Producer::new(
        cluster,
        &ProducerConfig {
            acks: Acks::All,
            compression: Compression::Lz4,
            linger_ms,
            ..ProducerConfig::default()
        },
    )?;
    // One record through every partition first, so that neither the connections, nor the
    // first fetches, nor the creation of each partition's first segment (files made and
    // fsynced, some 5 ms each here) are measured as the first records' latency.
    for &p in &partitions {
        producer.send(ProducerRecord::new(&topic, b"warm-up").partition(p))?;
    }
    producer.flush()?;
    let warm = Instant::now();
    let mut warmed = 0;
    while warmed < partitions.len() {
        if let Some(Event::Record(_)) = consumer.poll(Duration::from_millis(100))? {
            warmed += 1;
        } else if warm.elapsed() > CONSUME_STALL_MAX {
            bail!(
                "the latency consumer saw {warmed} of {} warm-up records",
                partitions.len()
            );
        }
    }
    let epoch = Instant::now();
    let value_bytes = a.value_bytes as usize;
    let samples = std::thread::scope(|s| -> Result<Vec<Duration>> {
        let reader = s.spawn(|| -> Result<Vec<Duration>> {
            let mut samples = Vec::with_capacity(total as usize);
            let mut last_progress = Instant::now();
            while (samples.len() as u64) < total {
                match consumer.poll(Duration::from_millis(100))? {
                    Some(Event::Record(r)) => {
                        let now = epoch.elapsed();
                        let sent = r
                            .value()
                            .and_then(|v| v.first_chunk::<SENT_AT_BYTES>())
                            .map(|b| Duration::from_nanos(u64::from_le_bytes(*b)))
                            .context("a latency record without its send time")?;
                        samples.push(now.saturating_sub(sent));
                        last_progress = Instant::now();
                    }
                    Some(Event::PartitionEnd { .. }) => {}
                    None => {
                        if last_progress.elapsed() > CONSUME_STALL_MAX {
                            bail!(
                                "the latency consumer stalled after {} of {total} records",
                                samples.len()
                            );
                        }
                    }
                }
            }
            Ok(samples)
        });
        let mut value = vec![b'x'; value_bytes];
        let mut sent = 0u64;
        while sent < total {
            // Records due by now, at the fixed rate.
            let due = ((epoch.elapsed().as_secs_f64() * a.latency_rate as f64) as u64).min(total);
            while sent < due {
                let at = epoch.elapsed().as_nanos() as u64;
                value[..SENT_AT_BYTES].copy_from_slice(&at.to_le_bytes());
                producer.send(ProducerRecord::new(&topic, &value))?;
                sent += 1;
            }
            producer.poll(Duration::ZERO);
            std::thread::sleep(PACING_STEP);
        }
        producer.flush()?;
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("the latency consumer panicked"))?
    })?;
    let send_seconds = epoch.elapsed().as_secs_f64();
    consumer.close();
    let mut samples = samples;
    samples.sort();
    report.line("serve_latency_seconds", format!("{send_seconds:.3}"));
    report.line(
        "serve_latency_p50_ms",
        format!("{:.2}", percentile_ms(&samples, 0.50)),
    );
    report.line(
        "serve_latency_p99_ms",
        format!("{:.2}", percentile_ms(&samples, 0.99)),
    );
    report.line(
        "serve_latency_p999_ms",
        format!("{:.2}", percentile_ms(&samples, 0.999)),
    );
    report.line(
        "serve_latency_max_ms",
        format!("{:.2}", percentile_ms(&samples, 1.0)),
    );
    admin.delete_topic(&topic)?;
    Ok(())
}
