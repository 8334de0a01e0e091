//! `weir bench adclick`: the ad-click job end to end (a pre-loaded `clicks` topic, 1-minute
//! tumbling counts per ad, exactly-once with 1 s epochs) beside the speed limit: a hand-written
//! single loop counting the same decoded events, measured in the same run. With a cluster, the
//! same job as N instances on it beside the embedded figures.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use weir::log::{Consumer, ConsumerConfig, Log, LogConfig};
use weir::runtime::{Binary, Codec, JobConfig};
use weir_adclick::{
    self as adclick, Click, ClickGenerator, GeneratorConfig, JobOptions, Place, ValueFormat,
};
use weir_client::{Admin, ClientConfig};

use super::report::Report;
use super::usage;

/// The topics the example uses, which the cluster run creates and deletes.
const EXAMPLE_TOPICS: [&str; 4] = [
    adclick::CLICKS,
    adclick::PER_MINUTE,
    adclick::LATE,
    adclick::DEAD_LETTER,
];

#[derive(Debug, Args)]
pub struct AdclickBench {
    /// Clicks per run
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Partitions of `clicks`
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=1024))]
    partitions: i32,
    /// Ads (Zipf popularity)
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    ads: u64,
    /// Share of clicks on the viral ad in the hot-key runs
    #[arg(long, default_value_t = 0.5)]
    hot_share: f64,
    /// Epoch length of the exactly-once job
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    epoch_ms: u64,
    /// Skip the JSON run
    #[arg(long)]
    no_json: bool,
    /// Job runs per variant over the same generated clicks (each from scratch, under a new job
    /// name); the median counts
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    runs: u64,
    /// With --bootstrap: instances of the job on the cluster, each on its own thread with its
    /// own client [default: 1]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    instances: Option<u64>,
}

struct Run {
    events_per_s: f64,
    generate_per_s: f64,
    checkpoints: u64,
    checkpoint_max_ms: u64,
    /// The most clicks read twice in a run (a rebalance aborted the epoch that first read them).
    reread_events_max: u64,
}

fn run_one(
    dir: &Path,
    a: &AdclickBench,
    format: ValueFormat,
    hot_share: f64,
    salts: Option<u32>,
) -> Result<Run> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = Log::open(dir, LogConfig::default())?;
    adclick::create_topics(&log, a.partitions, format)?;
    let generator = ClickGenerator::new(GeneratorConfig {
        events: a.events,
        ads: a.ads,
        hot_share,
        ..GeneratorConfig::default()
    });
    let t = Instant::now();
    let produced = adclick::generate(&log, generator, format, |_| {})?;
    let generate_per_s = produced as f64 / t.elapsed().as_secs_f64();
    let mut rates = Vec::new();
    let (mut checkpoints, mut checkpoint_max_ms) = (0, 0);
    for run in 0..a.runs {
        let mut config = JobConfig::new(format!("adclick-bench-{run}"));
        config.stop_when_drained = true;
        config.epoch_ms = a.epoch_ms;
        let options = JobOptions {
            format,
            salts,
            ..JobOptions::default()
        };
        let (job, _stats) = adclick::build_job(&log, config, &options)?;
        let t = Instant::now();
        let m = job.start()?.wait()?;
        let took = t.elapsed();
        if m.source_records != produced {
            bail!("the job read {} of {produced} clicks", m.source_records);
        }
        rates.push(produced as f64 / took.as_secs_f64());
        checkpoints = m.checkpoints;
        checkpoint_max_ms = checkpoint_max_ms.max(m.checkpoint_max_ms);
    }
    rates.sort_by(f64::total_cmp);
    log.close()?;
    Ok(Run {
        events_per_s: rates[rates.len() / 2],
        generate_per_s,
        checkpoints,
        checkpoint_max_ms,
        reread_events_max: 0,
    })
}

/// Reads and decodes every click of `dir`'s `clicks` topic (binary values).
fn decoded_clicks(dir: &Path) -> Result<(Vec<Click>, Duration)> {
    let log = Log::open_read_only(dir)?;
    let mut consumer = Consumer::new(&log, ConsumerConfig::default())?;
    consumer.assign_topic(adclick::CLICKS)?;
    let mut clicks = Vec::new();
    let t = Instant::now();
    loop {
        let batches = consumer.poll(Duration::from_millis(100))?;
        if batches.is_empty() {
            break;
        }
        for b in batches {
            for r in b.records() {
                let r = r?;
                let c: Click = Binary.decode(r.value.as_deref().unwrap_or_default())?;
                clicks.push(c);
            }
        }
    }
    Ok((clicks, t.elapsed()))
}

/// The speed limit: one loop, one map, no framework.
fn count_loop(clicks: &[Click]) -> (usize, Duration) {
    let t = Instant::now();
    let mut counts: HashMap<(u64, i64), u64> = HashMap::with_capacity(1 << 16);
    for c in clicks {
        *counts
            .entry((c.ad_id, c.ts.div_euclid(adclick::MINUTE_MS)))
            .or_default() += 1;
    }
    let n = std::hint::black_box(counts.len());
    (n, t.elapsed())
}

/// Loads the clicks into `cluster`, then times `instances` instances of the job (same name)
/// until all have drained them; deletes what it created. The cluster must not have the
/// example's topics yet: the figure counts these clicks only.
fn run_cluster(cluster: &ClientConfig, a: &AdclickBench, instances: u64) -> Result<[Run; 2]> {
    let place = Place::from(cluster);
    for topic in EXAMPLE_TOPICS {
        if place.has_topic(topic)? {
            bail!(
                "bench adclick loads its own clicks: {} already has a `{topic}` topic (delete the \
                 example's topics first: weir --bootstrap {} topic delete {topic})",
                cluster.bootstrap,
                cluster.bootstrap
            );
        }
    }
    let mut created: Vec<String> = EXAMPLE_TOPICS.iter().map(|t| t.to_string()).collect();
    let result = time_cluster(place, a, instances, &mut created);
    // Whatever happened, the topics it made go: the next run needs a cluster without them. A
    // failed run's error comes first.
    let cleaned = (|| -> Result<()> {
        let admin = Admin::connect(cluster)?;
        // The runs' repartition topics, which their jobs created (`weir-job.<name>-<stage>-
        // repartition`).
        let runs = format!("weir-job.{}", bench_job_prefix());
        created.extend(
            admin
                .list_topics()?
                .into_iter()
                .filter(|t| t.starts_with(&runs) && t.ends_with("-repartition")),
        );
        for topic in &created {
            if place.has_topic(topic)? {
                admin
                    .delete_topic(topic)
                    .with_context(|| format!("deleting `{topic}` after the bench"))?;
            }
        }
        Ok(())
    })();
    let run = result?;
    cleaned?;
    Ok(run)
}

/// How this process's bench jobs' names begin.
fn bench_job_prefix() -> String {
    format!("adclick-bench-{}-", std::process::id())
}

/// The salted job's run, then the combined (unsalted) job's, over the same clicks.
fn time_cluster(
    place: Place<'_>,
    a: &AdclickBench,
    instances: u64,
    created: &mut Vec<String>,
) -> Result<[Run; 2]> {
    adclick::create_topics(place, a.partitions, ValueFormat::Binary)?;
    let generator = ClickGenerator::new(GeneratorConfig {
        events: a.events,
        ads: a.ads,
        hot_share: 0.0,
        ..GeneratorConfig::default()
    });
    let t = Instant::now();
    let produced = adclick::generate(place, generator, ValueFormat::Binary, |_| {})?;
    let generate_per_s = produced as f64 / t.elapsed().as_secs_f64();
    let salted = time_cluster_job(place, a, instances, created, produced, Some(8))?;
    let combined = time_cluster_job(place, a, instances, created, produced, None)?;
    Ok([
        Run {
            generate_per_s,
            ..salted
        },
        Run {
            generate_per_s,
            ..combined
        },
    ])
}

/// Times `instances` instances of the job (`salts`: salted, else combined) over the `produced`
/// clicks already on the cluster, median of `a.runs` runs.
fn time_cluster_job(
    place: Place<'_>,
    a: &AdclickBench,
    instances: u64,
    created: &mut Vec<String>,
    produced: u64,
    salts: Option<u32>,
) -> Result<Run> {
    let mut rates = Vec::new();
    let (mut checkpoints, mut checkpoint_max_ms, mut reread_max) = (0, 0, 0);
    let variant = if salts.is_some() {
        "salted"
    } else {
        "combined"
    };
    for run in 0..a.runs {
        let name = format!("{}{variant}-{run}", bench_job_prefix());
        let config = {
            let mut c = place.job_config(&name);
            c.stop_when_drained = true;
            c.epoch_ms = a.epoch_ms;
            c
        };
        created.push(config.state_topic.clone());
        let accounted_before = adclick::accounted_clicks(place)?;
        let t = Instant::now();
        // A `Job` stays on the thread that builds it: each instance is built and run on its own.
        let outcomes: Vec<Result<weir::runtime::JobMetrics>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..instances)
                .map(|_| {
                    let config = config.clone();
                    s.spawn(move || -> Result<weir::runtime::JobMetrics> {
                        let options = JobOptions {
                            format: ValueFormat::Binary,
                            salts,
                            ..JobOptions::default()
                        };
                        let (job, _stats) = adclick::build_job(place, config, &options)?;
                        Ok(job.start()?.wait()?)
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a job instance panicked")))
                })
                .collect()
        });
        let took = t.elapsed();
        let mut read = 0;
        for m in outcomes {
            let m = m?;
            read += m.source_records;
            checkpoints = m.checkpoints;
            checkpoint_max_ms = checkpoint_max_ms.max(m.checkpoint_max_ms);
        }
        // More is read than there is when a rebalance aborts an epoch (its records are read
        // again by their new owner): what the output accounts for is what must add up.
        if read < produced {
            bail!("the job's {instances} instance(s) read {read} of {produced} clicks");
        }
        let accounted = adclick::accounted_clicks(place)? - accounted_before;
        if accounted != produced {
            bail!(
                "the job's {instances} instance(s) committed counts for {accounted} of {produced} \
                 clicks"
            );
        }
        reread_max = reread_max.max(read - produced);
        rates.push(produced as f64 / took.as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    Ok(Run {
        events_per_s: rates[rates.len() / 2],
        generate_per_s: 0.0,
        checkpoints,
        checkpoint_max_ms,
        reread_events_max: reread_max,
    })
}

/// Refuses flags that need a cluster when there is none (before anything runs).
pub fn check(cluster: Option<&ClientConfig>, a: &AdclickBench) -> Result<()> {
    if cluster.is_none() && a.instances.is_some() {
        usage!("bench adclick --instances runs instances on a cluster: it needs --bootstrap");
    }
    Ok(())
}

pub fn bench(
    place: &Path,
    cluster: Option<&ClientConfig>,
    a: &AdclickBench,
    report: &mut Report,
) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    report.line("events", a.events);
    report.line("partitions", a.partitions);
    report.line("ads", a.ads);
    report.line("epoch_ms", a.epoch_ms);
    report.line("runs_per_variant", a.runs);

    let uniform_dir = place.join("adclick-uniform");
    let uniform = run_one(&uniform_dir, a, ValueFormat::Binary, 0.0, Some(8))?;
    report.line(
        "generate_events_per_s",
        format!("{:.0}", uniform.generate_per_s),
    );
    report.line("events_per_s", format!("{:.0}", uniform.events_per_s));
    // Generate, then aggregate: the clicks' whole trip through weir.
    let end_to_end = 1.0 / (1.0 / uniform.generate_per_s + 1.0 / uniform.events_per_s);
    report.line("end_to_end_events_per_s", format!("{end_to_end:.0}"));
    report.line(
        "end_to_end_events_per_s_per_core",
        format!("{:.0}", end_to_end / cores),
    );
    report.line(
        "events_per_s_per_core",
        format!("{:.0}", uniform.events_per_s / cores),
    );
    report.line("checkpoints", uniform.checkpoints);
    report.line("checkpoint_max_ms", uniform.checkpoint_max_ms);

    let (clicks, read_took) = decoded_clicks(&uniform_dir)?;
    let (_, loop_took) = count_loop(&clicks);
    let (_, loop_took_2) = count_loop(&clicks);
    let loop_took = loop_took.min(loop_took_2);
    let baseline = clicks.len() as f64 / loop_took.as_secs_f64();
    report.line("baseline_events_per_s", format!("{baseline:.0}"));
    report.line(
        "baseline_read_decode_count_events_per_s",
        format!(
            "{:.0}",
            clicks.len() as f64 / (read_took + loop_took).as_secs_f64()
        ),
    );
    report.line(
        "vs_baseline_per_core",
        format!("{:.3}", uniform.events_per_s / cores / baseline),
    );
    drop(clicks);
    std::fs::remove_dir_all(&uniform_dir).ok();

    let hot_dir = place.join("adclick-hot");
    let hot = run_one(&hot_dir, a, ValueFormat::Binary, a.hot_share, Some(8))?;
    std::fs::remove_dir_all(&hot_dir).ok();
    report.line("hot_share", a.hot_share);
    report.line("hot_events_per_s", format!("{:.0}", hot.events_per_s));
    report.line(
        "hot_vs_uniform",
        format!("{:.3}", hot.events_per_s / uniform.events_per_s),
    );

    // Without salting, the counts are combined in the source tasks before the exchange.
    let combined_dir = place.join("adclick-combined");
    let combined = run_one(&combined_dir, a, ValueFormat::Binary, 0.0, None)?;
    std::fs::remove_dir_all(&combined_dir).ok();
    report.line(
        "combined_events_per_s",
        format!("{:.0}", combined.events_per_s),
    );

    let unsalted_dir = place.join("adclick-hot-unsalted");
    let unsalted = run_one(&unsalted_dir, a, ValueFormat::Binary, a.hot_share, None)?;
    std::fs::remove_dir_all(&unsalted_dir).ok();
    report.line(
        "hot_unsalted_events_per_s",
        format!("{:.0}", unsalted.events_per_s),
    );

    if !a.no_json {
        let json_dir = place.join("adclick-json");
        let json = run_one(&json_dir, a, ValueFormat::Json, 0.0, Some(8))?;
        std::fs::remove_dir_all(&json_dir).ok();
        report.line("json_events_per_s", format!("{:.0}", json.events_per_s));
        report.line(
            "json_events_per_s_per_core",
            format!("{:.0}", json.events_per_s / cores),
        );
    }

    if let Some(cluster) = cluster {
        let instances = a.instances.unwrap_or(1);
        report.line("cluster", &cluster.bootstrap);
        report.line("cluster_instances", instances);
        let [on_cluster, on_cluster_combined] = run_cluster(cluster, a, instances)?;
        report.line(
            "cluster_generate_events_per_s",
            format!("{:.0}", on_cluster.generate_per_s),
        );
        let name = format!(
            "cluster_{instances}_instance{}",
            if instances == 1 { "" } else { "s" }
        );
        report.line(
            &format!("{name}_events_per_s"),
            format!("{:.0}", on_cluster.events_per_s),
        );
        report.line(
            "cluster_vs_embedded",
            format!("{:.3}", on_cluster.events_per_s / uniform.events_per_s),
        );
        report.line("cluster_checkpoints", on_cluster.checkpoints);
        report.line("cluster_checkpoint_max_ms", on_cluster.checkpoint_max_ms);
        report.line(
            "cluster_reread_events_max",
            on_cluster
                .reread_events_max
                .max(on_cluster_combined.reread_events_max),
        );
        report.line(
            &format!("{name}_combined_events_per_s"),
            format!("{:.0}", on_cluster_combined.events_per_s),
        );
        report.line(
            "cluster_combined_vs_embedded_combined",
            format!(
                "{:.3}",
                on_cluster_combined.events_per_s / combined.events_per_s
            ),
        );
    }
    Ok(())
}
