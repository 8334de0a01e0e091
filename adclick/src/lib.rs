//! The ad-click aggregator: clicks per ad per minute, exactly once. The pieces that the flagship
//! example (`examples/ad_clicks.rs`), `weir bench adclick|sql` and the benches share: the record
//! types, a deterministic click generator, the job, its verifier and a progress line. Example
//! code, kept out of the `weir` library (which is the product facade) and never published.
//!
//! Each works on the embedded log or on a Kafka-protocol cluster alike: the topics, the
//! generator and the verifier take a [`Place`] (`&Log` or `&ClientConfig` converts into one),
//! the job any [`IntoTopics`]. The same seed gives the same records in both.
//!
//! Topics (a contract: docs/architecture.md): `clicks` (value `{"ad_id", "user_id", "ts"}`, key the
//! ad id), `ad_clicks_per_minute` (value `{"ad_id", "window_start", "window_end", "clicks"}`) and
//! `clicks_late` (the clicks that missed their window, with the reason).
//!
//! ```
//! use weir_adclick::{ClickGenerator, GeneratorConfig};
//! let clicks: Vec<_> = ClickGenerator::new(GeneratorConfig { events: 3, ..GeneratorConfig::default() }).collect();
//! assert_eq!(clicks.len(), 3);
//! ```
#![warn(missing_docs)]

mod place;
pub mod progress;
#[cfg(feature = "sql")]
pub mod sql_bench;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_log::{Log, TopicConfig};
use weir_operators::aggregate::count;
use weir_operators::window::WindowSpec;
use weir_operators::windowed::{HotKeyStats, HotKeys, KeyedWindowExt, LateRecord, WindowResult};
use weir_runtime::{Binary, Codec, EmbeddedTopics, Job, JobConfig, Json, Topics};

use place::ClickWriter;
pub use place::Place;
/// The cluster's settings a [`Place::Cluster`] holds.
pub use weir_client::ClientConfig;

/// The input topic: one click per record, keyed by the ad id.
pub const CLICKS: &str = "clicks";
/// The output topic: one [`AdMinute`] per ad and minute, committed once.
pub const PER_MINUTE: &str = "ad_clicks_per_minute";
/// The side output: clicks that arrived after their minute closed, with the reason.
pub const LATE: &str = "clicks_late";
/// Values of `clicks` that are not clicks (bad JSON, missing fields), with the reason in the
/// `weir.error` header.
pub const DEAD_LETTER: &str = "clicks_dead_letter";
/// The binary schema of `clicks` (also stored in its topic metadata).
pub const CLICK_SCHEMA: &str = "ad_id BIGINT, user_id BIGINT, ts TIMESTAMP";
/// The schema of `ad_clicks_per_minute` (JSON values), so that SQL can query it.
pub const PER_MINUTE_SCHEMA: &str =
    "ad_id BIGINT, window_start TIMESTAMP, window_end TIMESTAMP, clicks BIGINT";
/// One minute, the window size.
pub const MINUTE_MS: i64 = 60_000;

/// One click.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Click {
    /// The ad clicked.
    pub ad_id: u64,
    /// Who clicked.
    pub user_id: u64,
    /// When, in ms since the Unix epoch (event time).
    pub ts: i64,
}

/// Clicks of one ad in one minute: a record of `ad_clicks_per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdMinute {
    /// The ad.
    pub ad_id: u64,
    /// Start of the minute (inclusive), ms since the epoch.
    pub window_start: i64,
    /// End of the minute (exclusive).
    pub window_end: i64,
    /// Clicks counted.
    pub clicks: u64,
}

/// How `clicks` values are stored: the topic setting itself (JSON objects, or binary rows of
/// [`CLICK_SCHEMA`]).
pub use weir_log::ValueFormat;

/// The format of `clicks` as stored in its topic metadata.
pub fn clicks_format<'a>(place: impl Into<Place<'a>>) -> weir_runtime::Result<ValueFormat> {
    place.into().value_format(CLICKS)
}

/// What the generator produces.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// Clicks to generate.
    pub events: u64,
    /// Ads, with Zipf (s = 1) popularity.
    pub ads: u64,
    /// Share of clicks on the one viral ad.
    pub hot_share: f64,
    /// Share of clicks that arrive late: more than a minute behind the watermark.
    pub late_share: f64,
    /// Seed: the same seed gives the same clicks.
    pub seed: u64,
    /// Event time of the first click, ms since the epoch.
    pub start_ms: i64,
    /// Event time spanned by all the clicks.
    pub span_ms: i64,
    /// On-time clicks are out of order by less than this.
    pub out_of_orderness_ms: i64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            events: 1_000_000,
            ads: 10_000,
            hot_share: 0.3,
            late_share: 0.001,
            seed: 42,
            // 2026-11-22 00:00 UTC: a fixed start keeps runs comparable.
            start_ms: 1_795_305_600_000,
            span_ms: 30 * MINUTE_MS,
            out_of_orderness_ms: 5_000,
        }
    }
}

/// Deterministic clicks: Zipf-popular ads, one viral ad, bounded out-of-orderness, a share of
/// late clicks.
pub struct ClickGenerator {
    config: GeneratorConfig,
    rng: fastrand::Rng,
    /// Cumulative Zipf probabilities of ads 1..=ads.
    cdf: Vec<f64>,
    hot_ad: u64,
    next: u64,
}

impl ClickGenerator {
    /// A generator; ads must be at least 1 and shares within 0..=1.
    pub fn new(config: GeneratorConfig) -> ClickGenerator {
        let ads = config.ads.max(1);
        let total: f64 = (1..=ads).map(|r| 1.0 / r as f64).sum();
        let mut acc = 0.0;
        let cdf = (1..=ads)
            .map(|r| {
                acc += 1.0 / r as f64 / total;
                acc
            })
            .collect();
        let mut rng = fastrand::Rng::with_seed(config.seed);
        let hot_ad = rng.u64(1..=ads);
        ClickGenerator {
            config,
            rng,
            cdf,
            hot_ad,
            next: 0,
        }
    }

    /// The viral ad.
    pub fn hot_ad(&self) -> u64 {
        self.hot_ad
    }
}

impl Iterator for ClickGenerator {
    type Item = Click;

    fn next(&mut self) -> Option<Click> {
        let c = &self.config;
        if self.next >= c.events {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let ad_id = if self.rng.f64() < c.hot_share {
            self.hot_ad
        } else {
            let u = self.rng.f64();
            self.cdf.partition_point(|p| *p < u).min(self.cdf.len() - 1) as u64 + 1
        };
        let base = c.start_ms + (i as i128 * c.span_ms as i128 / c.events.max(1) as i128) as i64;
        let ooo = c.out_of_orderness_ms.max(1);
        let ts = if self.rng.f64() < c.late_share {
            // Behind the watermark by more than a window: its minute has closed.
            base - ooo - self.rng.i64(MINUTE_MS + 1_000..3 * MINUTE_MS)
        } else {
            base - self.rng.i64(0..ooo)
        };
        Some(Click {
            ad_id,
            user_id: self.rng.u64(0..1_000_000),
            ts,
        })
    }
}

/// Creates the topics that do not exist yet (`clicks` with `partitions` partitions, stored as
/// `format`; `ad_clicks_per_minute` with as many; `clicks_late` and `clicks_dead_letter` with
/// the defaults), on the embedded log or a cluster alike.
pub fn create_topics<'a>(
    place: impl Into<Place<'a>>,
    partitions: i32,
    format: ValueFormat,
) -> weir_runtime::Result<()> {
    let place = place.into();
    let clicks = TopicConfig {
        partitions,
        schema: Some(CLICK_SCHEMA.to_string()),
        format,
        ..TopicConfig::default()
    };
    for (name, config) in [
        (CLICKS, clicks),
        (
            PER_MINUTE,
            TopicConfig {
                partitions,
                schema: Some(PER_MINUTE_SCHEMA.to_string()),
                ..TopicConfig::default()
            },
        ),
        (LATE, TopicConfig::default()),
        (DEAD_LETTER, TopicConfig::default()),
    ] {
        place.create_topic(name, config)?;
    }
    Ok(())
}

/// Produces the generator's clicks to `clicks` with an idempotent producer, keyed by ad id,
/// timestamped with the click's time, calling `progress` with the count every 100,000 clicks.
/// Returns the clicks produced (all acknowledged).
pub fn generate<'a>(
    place: impl Into<Place<'a>>,
    generator: ClickGenerator,
    format: ValueFormat,
    mut progress: impl FnMut(u64),
) -> weir_runtime::Result<u64> {
    let producer = ClickWriter::open(place.into())?;
    let mut value = Vec::with_capacity(64);
    let mut key = itoa_buf();
    let mut n = 0u64;
    for click in generator {
        value.clear();
        match format {
            ValueFormat::Json => Json.encode(&click, &mut value),
            ValueFormat::Binary => Binary.encode(&click, &mut value),
        }
        .map_err(|source| weir_runtime::Error::Codec {
            topic: CLICKS.into(),
            source,
        })?;
        let k = write_u64(&mut key, click.ad_id);
        producer.send(CLICKS, k, &value, click.ts.max(0))?;
        n += 1;
        if n.is_multiple_of(100_000) {
            progress(n);
        }
    }
    producer.finish()?;
    progress(n);
    Ok(n)
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// The decimal digits of `n` (the key format `weir produce --key-field` uses), without
/// allocating.
fn write_u64(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// How the job runs.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// How `clicks` values are stored.
    pub format: ValueFormat,
    /// Watermarks trail the highest event time by this much.
    pub out_of_orderness_ms: i64,
    /// Salt hot ads (detected on the fly) over this many salts; `None`: no salting.
    pub salts: Option<u32>,
    /// Window tasks (and source tasks).
    pub parallelism: usize,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            format: ValueFormat::Binary,
            out_of_orderness_ms: 5_000,
            salts: Some(8),
            parallelism: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// What a job can run on: the runtime's topics, or something that makes them.
pub trait IntoTopics {
    /// The topics (on a cluster, a new client).
    fn into_topics(self) -> weir_runtime::Result<Arc<dyn Topics>>;
}

impl IntoTopics for Arc<dyn Topics> {
    fn into_topics(self) -> weir_runtime::Result<Arc<dyn Topics>> {
        Ok(self)
    }
}

impl IntoTopics for &Log {
    fn into_topics(self) -> weir_runtime::Result<Arc<dyn Topics>> {
        Ok(Arc::new(EmbeddedTopics::new(self.clone())))
    }
}

impl IntoTopics for Place<'_> {
    fn into_topics(self) -> weir_runtime::Result<Arc<dyn Topics>> {
        self.topics()
    }
}

/// The ad-click job on `topics` (an `Arc<dyn Topics>`, a `&Log` or a [`Place`]): read
/// `clicks`, count per ad per minute in event time, salting hot ads, results to
/// `ad_clicks_per_minute`, late clicks to `clicks_late`. Returns the job (to start) and, with
/// salting, what salting did. Instances built with the same `config.name` on a cluster are one
/// job.
pub fn build_job(
    topics: impl IntoTopics,
    mut config: JobConfig,
    options: &JobOptions,
) -> weir_runtime::Result<(Job, Option<Arc<HotKeyStats<u64>>>)> {
    config.parallelism_default = options.parallelism;
    let job = Job::with_topics(topics.into_topics()?, config)?;
    let stats = match options.format {
        ValueFormat::Json => wire(&job, Json, options),
        ValueFormat::Binary => wire(&job, Binary, options),
    };
    Ok((job, stats))
}

fn wire<C: Codec<Click>>(
    job: &Job,
    codec: C,
    options: &JobOptions,
) -> Option<Arc<HotKeyStats<u64>>> {
    let mut windows = job
        .source::<Click, _>(CLICKS, codec)
        .dead_letter_to(DEAD_LETTER)
        .timestamps(|c| c.ts, options.out_of_orderness_ms)
        .key_by(|c| c.ad_id)
        .window(WindowSpec::tumbling(Duration::from_millis(
            MINUTE_MS as u64,
        )))
        .name("clicks-per-minute");
    if let Some(salts) = options.salts {
        windows = windows.hot_keys(HotKeys::detect().salts(salts));
    }
    let out = windows.aggregate(count());
    out.results
        .map(|r: WindowResult<u64, u64>| AdMinute {
            ad_id: r.key,
            window_start: r.window_start,
            window_end: r.window_end,
            clicks: r.value,
        })
        .sink_keyed(PER_MINUTE, Json, |m: &AdMinute| {
            m.ad_id.to_string().into_bytes()
        });
    out.late
        .sink_keyed(LATE, Json, |l: &LateRecord<u64, Click>| {
            l.key.to_string().into_bytes()
        });
    out.hot_keys
}

/// What `verify` found.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// Clicks in `clicks` (decodable ones).
    pub input_clicks: u64,
    /// Values of `clicks` that are not clicks.
    pub malformed: u64,
    /// (ad, minute) results in the committed output.
    pub output_windows: u64,
    /// Clicks counted in the output.
    pub output_clicks: u64,
    /// Clicks in `clicks_late`.
    pub late_clicks: u64,
    /// Values in `clicks_dead_letter`.
    pub dead_letters: u64,
    /// (ad, minute) pairs that appear more than once in the output.
    pub duplicates: Vec<(u64, i64)>,
    /// (ad, minute, input, output, late) where output + late differs from input.
    pub mismatches: Vec<(u64, i64, u64, u64, u64)>,
}

impl Verification {
    /// Whether the output accounts for the input exactly.
    pub fn passed(&self) -> bool {
        self.duplicates.is_empty()
            && self.mismatches.is_empty()
            && self.dead_letters == self.malformed
    }
}

impl std::fmt::Display for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "input clicks:       {}", self.input_clicks)?;
        writeln!(
            f,
            "output windows:     {} (ad, minute) results",
            self.output_windows
        )?;
        writeln!(f, "output clicks:      {}", self.output_clicks)?;
        writeln!(f, "late clicks:        {}", self.late_clicks)?;
        writeln!(
            f,
            "malformed values:   {} in clicks, {} dead letters",
            self.malformed, self.dead_letters
        )?;
        writeln!(f, "duplicate windows:  {}", self.duplicates.len())?;
        writeln!(f, "mismatched windows: {}", self.mismatches.len())?;
        for (ad, minute, input, output, late) in self.mismatches.iter().take(10) {
            writeln!(
                f,
                "  ad {ad} minute {minute}: {input} clicks in, {output} counted + {late} late"
            )?;
        }
        for (ad, minute) in self.duplicates.iter().take(10) {
            writeln!(f, "  ad {ad} minute {minute}: in the output more than once")?;
        }
        write!(
            f,
            "verdict:            {}",
            if self.passed() { "PASS" } else { "FAIL" }
        )
    }
}

/// Clicks the committed output accounts for: those counted in `ad_clicks_per_minute` plus
/// those in `clicks_late`, read as a read_committed consumer of its own. Every run of the job
/// over the same clicks adds exactly their number, however its instances rebalanced (a count
/// published twice adds its clicks twice; one lost, none).
pub fn accounted_clicks<'a>(place: impl Into<Place<'a>>) -> weir_runtime::Result<u64> {
    let (mut counted, mut late) = (0u64, 0u64);
    let bad = read_output(place.into(), |m| counted += m.clicks, |_| late += 1)?;
    match bad {
        0 => Ok(counted + late),
        _ => Err(weir_runtime::Error::Internal(format!(
            "{bad} record(s) of '{PER_MINUTE}' or '{LATE}' are not the job's output"
        ))),
    }
}

/// Calls `minute` with every committed (ad, minute) count and `late` with every committed late
/// click; returns how many records of either topic did not parse.
fn read_output(
    place: Place<'_>,
    mut minute: impl FnMut(AdMinute),
    mut late: impl FnMut(LateRecord<u64, Click>),
) -> weir_runtime::Result<u64> {
    let mut bad = 0u64;
    place.read_committed(PER_MINUTE, |value| {
        match serde_json::from_slice::<AdMinute>(value) {
            Ok(m) => minute(m),
            Err(_) => bad += 1,
        }
    })?;
    place.read_committed(LATE, |value| {
        match serde_json::from_slice::<LateRecord<u64, Click>>(value) {
            Ok(l) => late(l),
            Err(_) => bad += 1,
        }
    })?;
    Ok(bad)
}

/// Recomputes every (ad, minute) count from `clicks` with a plain loop (no windowing code of
/// the job) and checks the committed output: each (ad, minute) once, and output clicks plus
/// late clicks equal to the input clicks. Reads as a read_committed consumer of its own, on
/// the embedded log or a cluster.
pub fn verify<'a>(place: impl Into<Place<'a>>) -> weir_runtime::Result<Verification> {
    use std::collections::HashMap;
    let place = place.into();
    let format = clicks_format(place)?;
    let mut v = Verification::default();
    let minute = |ts: i64| ts.div_euclid(MINUTE_MS) * MINUTE_MS;
    // (ad, minute start) -> (input, output, late)
    let mut counts: HashMap<(u64, i64), (u64, u64, u64)> = HashMap::new();
    place.read_committed(CLICKS, |bytes| {
        let click: Option<Click> = match format {
            ValueFormat::Json => Json.decode(bytes).ok(),
            ValueFormat::Binary => Binary.decode(bytes).ok(),
        };
        match click {
            Some(c) => {
                v.input_clicks += 1;
                counts.entry((c.ad_id, minute(c.ts))).or_default().0 += 1;
            }
            None => v.malformed += 1,
        }
    })?;
    let mut seen = std::collections::HashSet::new();
    let mut late_counts = Vec::new();
    let bad_output = read_output(
        place,
        |m| {
            v.output_windows += 1;
            v.output_clicks += m.clicks;
            if !seen.insert((m.ad_id, m.window_start)) {
                v.duplicates.push((m.ad_id, m.window_start));
            }
            counts.entry((m.ad_id, m.window_start)).or_default().1 += m.clicks;
        },
        |l| late_counts.push((l.value.ad_id, minute(l.value.ts))),
    )?;
    v.late_clicks = late_counts.len() as u64;
    for key in late_counts {
        counts.entry(key).or_default().2 += 1;
    }
    if place.has_topic(DEAD_LETTER)? {
        place.read_committed(DEAD_LETTER, |_| v.dead_letters += 1)?;
    }
    let mut mismatches: Vec<_> = counts
        .into_iter()
        .filter(|(_, (i, o, l))| *i != o + l)
        .map(|((ad, m), (i, o, l))| (ad, m, i, o, l))
        .collect();
    mismatches.sort();
    v.mismatches = mismatches;
    if bad_output > 0 {
        v.mismatches.push((u64::MAX, 0, 0, bad_output, 0));
    }
    Ok(v)
}
