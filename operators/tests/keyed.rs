//! Keyed processing with state and timers, and stream–table enrichment, as jobs on a real log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weir_log::{Log, Producer, ProducerConfig, ProducerRecord, TopicConfig};
use weir_operators::enrich::EnrichExt;
use weir_operators::process::{KeyedProcessExt, ProcessContext, ProcessFunction};
use weir_runtime::{Job, JobConfig, Json};
use weir_test_support::{open, read_values as read};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Visit {
    user: u64,
    page: u32,
    ts: i64,
}

fn topic(log: &Log, name: &str, partitions: i32, compacted: bool) {
    log.create_topic(
        name,
        TopicConfig {
            partitions,
            compacted,
            ..TopicConfig::default()
        },
    )
    .expect("topic");
}

/// Closes a user's session after 30 s of event time without a visit: emits (user, start,
/// visits). A timer per session, moved forward on each visit.
#[derive(Clone)]
struct Sessions;

#[derive(Default, Clone, Serialize, Deserialize)]
struct Open {
    start: i64,
    last: i64,
    visits: u32,
}

const GAP_MS: i64 = 30_000;

impl ProcessFunction<u64, Visit, (u64, i64, u32)> for Sessions {
    type State = Open;
    fn process(
        &self,
        user: &u64,
        v: Visit,
        ts: i64,
        s: &mut Open,
        ctx: &mut ProcessContext<'_, (u64, i64, u32)>,
    ) {
        let _ = v;
        if s.visits > 0 && ts - s.last >= GAP_MS {
            // The watermark has not fired the timer yet (it moves between batches of records,
            // not between records): close the session here.
            ctx.delete_timer(s.last + GAP_MS);
            ctx.emit((*user, s.start, s.visits));
            *s = Open::default();
        }
        if s.visits == 0 {
            s.start = ts;
        } else {
            ctx.delete_timer(s.last + GAP_MS);
        }
        s.visits += 1;
        s.last = s.last.max(ts);
        ctx.register_timer(s.last + GAP_MS);
    }
    fn on_timer(
        &self,
        user: &u64,
        _at: i64,
        s: &mut Open,
        ctx: &mut ProcessContext<'_, (u64, i64, u32)>,
    ) {
        ctx.emit((*user, s.start, s.visits));
        ctx.clear_state();
    }
}

#[test]
fn keyed_process_with_timers_matches_a_plain_sessionizer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    topic(&log, "visits", 3, false);
    topic(&log, "sessions", 1, false);
    let mut rng = fastrand::Rng::with_seed(3);
    let mut visits = Vec::new();
    let mut ts = 0;
    for _ in 0..5_000 {
        ts += rng.i64(0..2_000);
        visits.push(Visit {
            user: rng.u64(0..40),
            page: rng.u32(0..100),
            ts,
        });
    }
    let p = Producer::new(&log, ProducerConfig::default()).expect("producer");
    for v in &visits {
        p.send(
            ProducerRecord::new("visits", &serde_json::to_vec(v).expect("json"))
                .key(v.user.to_string().as_bytes()),
        )
        .expect("send");
    }
    p.flush().expect("flush");
    // In order per user (timestamps only grow), so no visit is behind the watermark.
    let mut reference = Vec::new();
    let mut open: BTreeMap<u64, (i64, i64, u32)> = BTreeMap::new();
    for v in &visits {
        match open.get_mut(&v.user) {
            Some((start, last, n)) if v.ts - *last < GAP_MS => {
                *last = v.ts;
                *n += 1;
                let _ = start;
            }
            Some(s) => {
                reference.push((v.user, s.0, s.2));
                *s = (v.ts, v.ts, 1);
            }
            None => {
                open.insert(v.user, (v.ts, v.ts, 1));
            }
        }
    }
    reference.extend(open.iter().map(|(u, (start, _, n))| (*u, *start, *n)));
    reference.sort();

    let mut config = JobConfig::new("sessions");
    config.stop_when_drained = true;
    config.parallelism_default = 2;
    let job = Job::new(&log, config).expect("job");
    job.source::<Visit, _>("visits", Json)
        .timestamps(|v| v.ts, 0)
        .key_by(|v| v.user)
        .process("sessions", None, Sessions)
        .sink("sessions", Json);
    job.start().expect("start").wait().expect("run");
    let mut got: Vec<(u64, i64, u32)> = read(&log, "sessions");
    got.sort();
    assert_eq!(got, reference);
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Ad {
    campaign: String,
}

#[test]
fn enrichment_joins_the_latest_table_value_per_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    topic(&log, "ads", 2, true);
    topic(&log, "clicks", 2, false);
    topic(&log, "enriched", 1, false);
    let p = Producer::new(&log, ProducerConfig::default()).expect("producer");
    // Ad 7 is renamed: the latest value counts. Ad 9 is deleted. Ad 3 never existed.
    for (ad, campaign) in [(5u64, "spring"), (7, "old"), (7, "summer"), (9, "gone")] {
        let v = serde_json::to_vec(&Ad {
            campaign: campaign.into(),
        })
        .expect("json");
        p.send(ProducerRecord::new("ads", &v).key(ad.to_string().as_bytes()))
            .expect("send");
    }
    p.send(ProducerRecord::tombstone("ads", b"9"))
        .expect("send");
    for (i, ad) in [5u64, 7, 9, 3, 7].iter().enumerate() {
        let v = serde_json::to_vec(&(ad, i as i64)).expect("json");
        p.send(ProducerRecord::new("clicks", &v)).expect("send");
    }
    p.flush().expect("flush");
    let mut config = JobConfig::new("enrich");
    config.stop_when_drained = true;
    let job = Job::new(&log, config).expect("job");
    job.source::<(u64, i64), _>("clicks", Json)
        .stream()
        .enrich(
            "ads",
            Json,
            1_000,
            |(ad, _): &(u64, i64)| ad.to_string().into_bytes(),
            |(ad, i): (u64, i64), found: Option<&Ad>| {
                Some((ad, i, found.map(|a| a.campaign.clone())))
            },
        )
        .sink("enriched", Json);
    job.start().expect("start").wait().expect("run");
    let mut got: Vec<(u64, i64, Option<String>)> = read(&log, "enriched");
    got.sort_by_key(|g| g.1);
    assert_eq!(
        got,
        vec![
            (5, 0, Some("spring".into())),
            (7, 1, Some("summer".into())),
            (9, 2, None),
            (3, 3, None),
            (7, 4, Some("summer".into())),
        ]
    );
}
