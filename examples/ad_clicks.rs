//! The ad-click aggregator: clicks per ad per minute, exactly once, on weir's embedded log or a
//! cluster.
//!
//! ```text
//! cargo run --release --example ad_clicks              # demo: generate, aggregate, verify, summary
//! cargo run --release --example ad_clicks -- generate --events N [--ads A] [--hot-share F]
//!                                            [--late-share F] [--seed S]
//! cargo run --release --example ad_clicks -- run [--until-idle]    # restartable at any moment
//! cargo run --release --example ad_clicks -- verify    # recompute from `clicks`; exit 1 if off
//! ```
//! Every subcommand takes `--data-dir DIR` (default: `$WEIR_DATA_DIR`, else `./weir-data`), or
//! `--bootstrap HOST:PORT[,...]` (default: `$WEIR_BOOTSTRAP`) to run against a Kafka-protocol
//! cluster (`weir serve`, Kafka, Redpanda) instead: the same topics, clicks, job and checks;
//! `run` started several times there shares the work as instances of one job.
//! Exit status: 0 on success, 1 on a runtime error (or a failed verification), 2 on a usage
//! error; errors are one line on stderr. `run` and `verify` need a data directory (or a cluster)
//! with `clicks` (from `generate`) and create nothing otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use weir::log::{Log, LogConfig};
use weir::operators::windowed::HotKeyStats;
use weir::runtime::{JobConfig, JobMetrics};
use weir::sql::continuous::{ContinuousConfig, ContinuousQuery};
use weir_adclick::progress::Progress;
use weir_adclick::{
    self as adclick, AdMinute, ClickGenerator, ClientConfig, GeneratorConfig, JobOptions, Place,
    ValueFormat, Verification,
};
use weir_cluster::sql::ClusterCatalog;

/// `println!` that ends the program quietly (exit 0) once standard output is closed
/// (`ad_clicks verify | head -1`), where `println!` would panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            panic!("writing to standard output: {e}");
        }
    }};
}

#[derive(Parser)]
#[command(about = "weir's flagship example: clicks per ad per minute, exactly once")]
struct Cli {
    /// Data directory (default: $WEIR_DATA_DIR, else ./weir-data; the demo uses a fresh
    /// temporary one unless this is given)
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Run as a client of this Kafka-protocol cluster instead of a data directory (default:
    /// $WEIR_BOOTSTRAP)
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT[,HOST:PORT...]",
        conflicts_with = "data_dir"
    )]
    bootstrap: Option<String>,
    /// Clicks the demo generates
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Produce clicks to `clicks` (idempotent producer, keyed by ad)
    Generate(GenerateArgs),
    /// Run the job: exactly-once counts into `ad_clicks_per_minute`, late clicks to `clicks_late`
    Run(RunArgs),
    /// Recompute every (ad, minute) from `clicks` and check the committed output
    Verify,
}

#[derive(clap::Args, Clone)]
struct GenerateArgs {
    /// Clicks to produce
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Ads, with Zipf popularity
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    ads: u64,
    /// Share of clicks on the one viral ad, 0 to 1
    #[arg(long, default_value_t = 0.3, value_parser = share)]
    hot_share: f64,
    /// Share of clicks that arrive late (over a minute behind the watermark), 0 to 1
    #[arg(long, default_value_t = 0.001, value_parser = share)]
    late_share: f64,
    /// Seed: the same seed gives the same clicks
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Partitions of `clicks`, if this creates it
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=1024))]
    partitions: i32,
    /// How `clicks` stores values, if this creates it
    #[arg(long, value_enum, default_value_t = FormatArg::Json)]
    format: FormatArg,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Stop once `clicks` is drained and every window has closed (and the last epoch committed)
    #[arg(long)]
    until_idle: bool,
    /// Epoch length: how often results commit
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    epoch_ms: u64,
    /// Print a metrics line this often (0: never)
    #[arg(long, default_value_t = 1_000)]
    metrics_ms: u64,
    /// Run the same job as one continuous SQL query (`AD_CLICKS_SQL`) instead of the Rust job.
    /// Use one or the other on a data directory or a cluster: both write `ad_clicks_per_minute`.
    #[arg(long)]
    sql: bool,
}

/// The ad-click job as a continuous query.
const AD_CLICKS_SQL: &str = "INSERT INTO ad_clicks_per_minute \
    SELECT ad_id, window_start, window_end, count(*) AS clicks \
    FROM TUMBLE(clicks, ts, INTERVAL '1' MINUTE) \
    GROUP BY ad_id, window_start, window_end";

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Json,
    Binary,
}

/// clap value parser for a share: a number within 0..=1.
fn share(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|e| format!("'{s}' is not a number: {e}"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{v} is not within 0..=1"));
    }
    Ok(v)
}

fn main() {
    // Every flag is checked here, before anything touches the disk; a usage error exits 2 with
    // clap's message on one line.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                std::process::exit(0);
            }
            let rendered = e.render().to_string();
            let line: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("{}", line.join(" "));
            std::process::exit(2);
        }
    };
    let cluster = match cluster(&cli) {
        Ok(c) => c,
        Err(reason) => {
            eprintln!("error: {reason}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run_cli(cli, cluster) {
        eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
        std::process::exit(1);
    }
}

/// The cluster from `--bootstrap`, else `$WEIR_BOOTSTRAP` (unless `--data-dir` is given); a
/// bad list, or a flag the cluster cannot honour, is a usage error.
fn cluster(cli: &Cli) -> std::result::Result<Option<ClientConfig>, String> {
    let chosen = cli.bootstrap.clone().or_else(|| {
        if cli.data_dir.is_some() {
            return None;
        }
        std::env::var("WEIR_BOOTSTRAP")
            .ok()
            .filter(|v| !v.is_empty())
    });
    let Some(bootstrap) = chosen else {
        return Ok(None);
    };
    weir_client::parse_bootstrap(&bootstrap).map_err(|e| format!("--bootstrap: {e}"))?;
    Ok(Some(ClientConfig::new(bootstrap)))
}

/// Fails unless the cluster has a `clicks` topic: `run` and `verify` have nothing to do
/// elsewhere.
fn require_clicks_on(cluster: &ClientConfig) -> Result<()> {
    if !Place::from(cluster).has_topic(adclick::CLICKS)? {
        bail!(
            "no `clicks` topic on {}: run `generate` first",
            cluster.bootstrap
        );
    }
    Ok(())
}

fn data_dir(arg: &Option<PathBuf>) -> PathBuf {
    arg.clone()
        .or_else(|| std::env::var_os("WEIR_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("weir-data"))
}

fn open(dir: &Path) -> Result<Log> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Log::open(dir, LogConfig::default()).with_context(|| format!("opening {}", dir.display()))
}

/// Fails, creating nothing, unless `dir` is a data directory with a `clicks` topic: `run` and
/// `verify` have nothing to do elsewhere, and a typo in `--data-dir` must not leave a new
/// directory behind.
fn require_clicks(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!(
            "data directory {} does not exist: run `generate` first",
            dir.display()
        );
    }
    // Read-only: opening for writing would create the log's files.
    let log = Log::open_read_only(dir).with_context(|| format!("opening {}", dir.display()))?;
    if log.partition_count(adclick::CLICKS).is_err() {
        bail!(
            "no `clicks` topic in {}: run `generate` first",
            dir.display()
        );
    }
    Ok(())
}

fn stop_on_signal() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    Ok(stop)
}

fn run_cli(cli: Cli, cluster: Option<ClientConfig>) -> Result<()> {
    if let Some(cluster) = &cluster {
        return run_cluster(cli, cluster);
    }
    match cli.command {
        Some(Command::Generate(a)) => {
            let log = open(&data_dir(&cli.data_dir))?;
            generate((&log).into(), &a)?;
            log.close()?;
        }
        Some(Command::Run(a)) => {
            let dir = data_dir(&cli.data_dir);
            require_clicks(&dir)?;
            let log = Log::open(&dir, LogConfig::default())
                .with_context(|| format!("opening {}", dir.display()))?;
            let stop = stop_on_signal()?;
            run((&log).into(), &a, &stop)?;
            log.close()?;
        }
        Some(Command::Verify) => {
            let dir = data_dir(&cli.data_dir);
            require_clicks(&dir)?;
            let log = Log::open_read_only(&dir)?;
            let v = adclick::verify(&log)?;
            say!("{v}");
            if !v.passed() {
                std::process::exit(1);
            }
        }
        None => demo(cli.data_dir, cli.events)?,
    }
    Ok(())
}

/// The subcommands as a client of `cluster`.
fn run_cluster(cli: Cli, cluster: &ClientConfig) -> Result<()> {
    let place = Place::from(cluster);
    match cli.command {
        Some(Command::Generate(a)) => {
            generate(place, &a)?;
        }
        Some(Command::Run(a)) => {
            require_clicks_on(cluster)?;
            run(place, &a, &*stop_on_signal()?)?;
        }
        Some(Command::Verify) => {
            require_clicks_on(cluster)?;
            let v = adclick::verify(place)?;
            say!("{v}");
            if !v.passed() {
                std::process::exit(1);
            }
        }
        None => {
            if place.has_topic(adclick::CLICKS)? {
                bail!(
                    "the demo needs a cluster without a `clicks` topic; {} has one",
                    cluster.bootstrap
                );
            }
            say!("weir ad-click demo — cluster {}\n", cluster.bootstrap);
            demo_steps(place, cli.events)?;
        }
    }
    Ok(())
}

fn generate(place: Place<'_>, a: &GenerateArgs) -> Result<(u64, f64, u64)> {
    let format = match a.format {
        FormatArg::Json => ValueFormat::Json,
        FormatArg::Binary => ValueFormat::Binary,
    };
    adclick::create_topics(place, a.partitions, format)?;
    let format = adclick::clicks_format(place)?;
    let generator = ClickGenerator::new(GeneratorConfig {
        events: a.events,
        ads: a.ads,
        hot_share: a.hot_share,
        late_share: a.late_share,
        seed: a.seed,
        ..GeneratorConfig::default()
    });
    let hot_ad = generator.hot_ad();
    let started = Instant::now();
    let total = a.events;
    let mut progress = Progress::stderr();
    let n = adclick::generate(place, generator, format, |n| {
        progress.update(&progress_bar(n, total, started))
    })?;
    progress.finish();
    let per_s = n as f64 / started.elapsed().as_secs_f64();
    say!(
        "generated {n} clicks in {:.2} s: {per_s:.0} events/s ({} values, viral ad {hot_ad})",
        started.elapsed().as_secs_f64(),
        format
    );
    Ok((n, per_s, hot_ad))
}

/// The progress line of `generate`: a bar, the count and the rate.
fn progress_bar(n: u64, total: u64, started: Instant) -> String {
    let width: usize = 40;
    let done = if total == 0 {
        width
    } else {
        (n.min(total) as u128 * width as u128 / total as u128) as usize
    };
    let per_s = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
    format!(
        "[{}{}] {n}/{total} clicks, {per_s:.0}/s",
        "#".repeat(done),
        " ".repeat(width - done)
    )
}

struct RunResult {
    metrics: JobMetrics,
    hot: Option<Arc<HotKeyStats<u64>>>,
    took: Duration,
}

fn run(place: Place<'_>, a: &RunArgs, stop: &AtomicBool) -> Result<RunResult> {
    if !place.has_topic(adclick::CLICKS)? {
        bail!("no `clicks` topic: run `generate` first");
    }
    let format = adclick::clicks_format(place)?;
    adclick::create_topics(place, place.partition_count(adclick::CLICKS)?, format)?;
    let mut config = place.job_config("ad-clicks");
    config.epoch_ms = a.epoch_ms;
    config.stop_when_drained = a.until_idle;
    let options = JobOptions {
        format,
        ..JobOptions::default()
    };
    let (handle, hot) = if a.sql {
        let mut sql_config = ContinuousConfig::new("ad-clicks-sql");
        sql_config.job = JobConfig {
            epoch_ms: config.epoch_ms,
            stop_when_drained: config.stop_when_drained,
            ..place.job_config("ad-clicks-sql")
        };
        sql_config.late_topic = Some(adclick::LATE.to_string());
        say!("{AD_CLICKS_SQL}");
        let query = match place {
            Place::Embedded(log) => ContinuousQuery::new(log, AD_CLICKS_SQL, sql_config)?,
            Place::Cluster(cluster) => ContinuousQuery::with_topics(
                &ClusterCatalog::connect(cluster)?,
                place.topics()?,
                AD_CLICKS_SQL,
                sql_config,
            )?,
        };
        (query.start()?, None)
    } else {
        let (job, hot) = adclick::build_job(place, config, &options)?;
        (job.start()?, hot)
    };
    let started = Instant::now();
    let mut last_print = Instant::now();
    let mut last_records = 0;
    while !handle.is_finished() {
        if stop.load(Ordering::Relaxed) {
            eprintln!("stopping: the open epoch is abandoned and replayed by the next run");
            handle.stop()?;
            bail!("stopped by a signal");
        }
        std::thread::sleep(Duration::from_millis(50));
        if a.metrics_ms > 0 && last_print.elapsed() >= Duration::from_millis(a.metrics_ms) {
            let m = handle.metrics();
            let rate =
                (m.source_records - last_records) as f64 / last_print.elapsed().as_secs_f64();
            last_records = m.source_records;
            last_print = Instant::now();
            eprintln!("{}", metrics_line(&m, rate, hot.as_deref()));
        }
    }
    let metrics = handle.wait()?;
    let took = started.elapsed();
    say!(
        "processed {} clicks in {:.2} s: {:.0} events/s, {} epochs committed, last watermark {}",
        metrics.source_records,
        took.as_secs_f64(),
        metrics.source_records as f64 / took.as_secs_f64(),
        metrics.checkpoints,
        metrics.watermark.map_or("-".into(), |w| if w == i64::MAX {
            "end of input".into()
        } else {
            w.to_string()
        }),
    );
    Ok(RunResult { metrics, hot, took })
}

fn metrics_line(m: &JobMetrics, rate: f64, hot: Option<&HotKeyStats<u64>>) -> String {
    let hot_keys = hot.map(|h| h.hot_keys()).unwrap_or_default();
    let mut hot_list: Vec<_> = hot_keys
        .iter()
        .map(|h| (h.per_salt.iter().sum::<u64>(), h.key))
        .collect();
    hot_list.sort_by(|a, b| b.cmp(a));
    let hot_text = hot_list
        .iter()
        .take(3)
        .map(|(_, k)| format!("ad {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{:>6.1}s  {:>9} clicks  {:>9.0} events/s  lag {:>8}  watermark lag {:>10}  epoch {:>4} ({} ms)  hot keys: {} [{}]",
        m.elapsed.as_secs_f64(),
        m.source_records,
        rate,
        m.source_lag,
        m.watermark_lag_ms
            .map_or("-".into(), |l| format!("{} s", l / 1000)),
        m.last_epoch,
        m.checkpoint_last_ms,
        hot_keys.len(),
        hot_text,
    )
}

fn demo(dir: Option<PathBuf>, events: u64) -> Result<()> {
    let temp;
    let dir = match dir {
        Some(d) => {
            if d.exists() && std::fs::read_dir(&d)?.next().is_some() {
                bail!(
                    "the demo needs a fresh data directory; {} is not empty",
                    d.display()
                );
            }
            d
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("weir-ad-clicks-")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    say!("weir ad-click demo — data directory {}\n", dir.display());
    let log = open(&dir)?;
    let passed = demo_steps((&log).into(), events)?;
    log.close()?;
    if !passed {
        std::process::exit(1);
    }
    Ok(())
}

/// The demo's steps at `place`: generate, run until idle, verify, summary. Returns whether the
/// verification passed.
fn demo_steps(place: Place<'_>, events: u64) -> Result<bool> {
    say!("1. generate: {events} clicks, 10,000 ads (Zipf), one viral ad, some late clicks");
    let args = GenerateArgs {
        events,
        ads: 10_000,
        hot_share: 0.3,
        late_share: 0.001,
        seed: 42,
        partitions: 8,
        format: FormatArg::Json,
    };
    let (_, generate_per_s, hot_ad) = generate(place, &args)?;
    say!("\n2. run: 1-minute windows in event time, exactly once, until the input is drained");
    let never = AtomicBool::new(false);
    let r = run(
        place,
        &RunArgs {
            until_idle: true,
            epoch_ms: 1_000,
            metrics_ms: 1_000,
            sql: false,
        },
        &never,
    )?;
    say!("\n3. verify: recompute every (ad, minute) from `clicks` and compare");
    let v = adclick::verify(place)?;
    summary(place, &v, &r, generate_per_s, hot_ad)?;
    Ok(v.passed())
}

fn summary(
    place: Place<'_>,
    v: &Verification,
    r: &RunResult,
    generate_per_s: f64,
    hot_ad: u64,
) -> Result<()> {
    // Top ads of the first minutes, from the committed output.
    let mut per_minute: BTreeMap<i64, Vec<(u64, u64)>> = BTreeMap::new();
    let mut bad = None;
    place.read_committed(adclick::PER_MINUTE, |value| {
        match serde_json::from_slice::<AdMinute>(value) {
            Ok(m) => per_minute
                .entry(m.window_start)
                .or_default()
                .push((m.clicks, m.ad_id)),
            Err(e) => {
                bad.get_or_insert(e);
            }
        }
    })?;
    if let Some(e) = bad {
        bail!(
            "a record of `{}` is not an (ad, minute): {e}",
            adclick::PER_MINUTE
        );
    }
    say!("\ntop ads per minute (first 3 minutes)");
    for (start, ads) in per_minute.iter_mut().take(3) {
        ads.sort_by(|a, b| b.cmp(a));
        let top = ads
            .iter()
            .take(3)
            .map(|(n, ad)| format!("ad {ad}: {n}"))
            .collect::<Vec<_>>()
            .join("   ");
        say!("  {}  {top}", minute_label(*start));
    }
    say!("\nthe viral ad: {hot_ad}");
    if let Some(stats) = &r.hot {
        let mut hot = stats.hot_keys();
        hot.sort_by_key(|h| std::cmp::Reverse(h.per_salt.iter().sum::<u64>()));
        say!(
            "  {} ads were detected hot and salted; the busiest:",
            hot.len()
        );
        for h in hot.iter().take(3) {
            let total: u64 = h.per_salt.iter().sum();
            say!(
                "  ad {} detected hot: {} clicks spread over {} salts: {:?}",
                h.key,
                total,
                stats.salts(),
                h.per_salt
            );
        }
    }
    let m = &r.metrics;
    say!("\ntotals");
    say!("  clicks in:          {}", v.input_clicks);
    say!("  (ad, minute) rows:  {}", v.output_windows);
    say!("  clicks counted:     {}", v.output_clicks);
    say!(
        "  late clicks:        {} (in `clicks_late`, with the reason)",
        v.late_clicks
    );
    say!("  generate:           {generate_per_s:.0} events/s");
    say!(
        "  aggregate:          {:.0} events/s ({} epochs committed, longest commit {} ms)",
        m.source_records as f64 / r.took.as_secs_f64(),
        m.checkpoints,
        m.checkpoint_max_ms
    );
    say!("\nverification");
    for line in v.to_string().lines() {
        say!("  {line}");
    }
    Ok(())
}

fn minute_label(start_ms: i64) -> String {
    let secs = start_ms.div_euclid(1000);
    let (h, m) = (
        secs.div_euclid(3600).rem_euclid(24),
        secs.div_euclid(60).rem_euclid(60),
    );
    format!("{h:02}:{m:02} UTC")
}
