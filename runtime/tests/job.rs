//! Jobs end to end on a real log: results against a plain reference, graph validation, bad
//! values, backpressure and restarts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use weir_log::{Consumer, ConsumerConfig, Log, Producer, ProducerConfig, ProducerRecord};
use weir_runtime::{
    BoxOperator, Error, Event, Guarantee, Job, JobConfig, Json, Operator, Output, Result,
    TaskContext, WATERMARK_MAX,
};
use weir_test_support::{create_topic as topic, open, produce_json, read_values as read_all};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Reading {
    sensor: u64,
    value: i64,
    ts: i64,
}

/// Readings keyed by sensor, as JSON.
fn produce(log: &Log, name: &str, readings: &[Reading]) {
    produce_json(log, name, readings, |r| r.sensor.to_string());
}

fn readings(n: u64, sensors: u64) -> Vec<Reading> {
    (0..n)
        .map(|i| Reading {
            sensor: (i * 7919) % sensors,
            value: (i % 13) as i64 - 6,
            ts: 1_000 * i as i64,
        })
        .collect()
}

/// Sums values per key; emits the totals when the input is complete.
struct SumPerKey {
    sums: BTreeMap<u64, i64>,
}

impl SumPerKey {
    fn factory(
        ctx: &mut TaskContext<'_>,
        uid: &str,
    ) -> Result<BoxOperator<(u64, Reading), (u64, i64)>> {
        let sums = match ctx.restored_state(uid) {
            Some(b) => weir_runtime::state::decode(uid, b)?,
            None => BTreeMap::new(),
        };
        Ok(Box::new(SumPerKey { sums }))
    }
}

impl Operator<(u64, Reading), (u64, i64)> for SumPerKey {
    fn on_event(
        &mut self,
        ev: Event<(u64, Reading)>,
        _out: &mut Output<'_, (u64, i64)>,
    ) -> Result<()> {
        *self.sums.entry(ev.value.0).or_default() += ev.value.1.value;
        Ok(())
    }
    fn on_watermark(&mut self, wm: i64, out: &mut Output<'_, (u64, i64)>) -> Result<()> {
        if wm == WATERMARK_MAX {
            for (k, s) in std::mem::take(&mut self.sums) {
                out.emit(Event {
                    value: (k, s),
                    ts: 0,
                    wm,
                })?;
            }
        }
        Ok(())
    }
    fn snapshot(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(Some(weir_runtime::state::encode(&self.sums)?))
    }
}

fn sum_job(log: &Log, config: JobConfig, source_tasks: usize, sum_tasks: usize) -> Job {
    let job = Job::new(log, config).expect("job");
    job.source::<Reading, _>("readings", Json)
        .parallelism(source_tasks)
        .timestamps(|r| r.ts, 0)
        .filter(|r| r.sensor != 3)
        .key_by(|r| r.sensor)
        .process_with("sum", Some(sum_tasks), SumPerKey::factory)
        .sink_keyed("sums", Json, |(k, _): &(u64, i64)| {
            k.to_string().into_bytes()
        });
    job
}

fn reference(input: &[Reading]) -> BTreeMap<u64, i64> {
    let mut m = BTreeMap::new();
    for r in input.iter().filter(|r| r.sensor != 3) {
        *m.entry(r.sensor).or_default() += r.value;
    }
    m
}

#[test]
fn keyed_sums_equal_a_plain_loop_for_both_guarantees_and_shapes() {
    for (guarantee, sources, sums) in [
        (Guarantee::ExactlyOnce, 1, 1),
        (Guarantee::ExactlyOnce, 3, 2),
        (Guarantee::AtLeastOnce, 2, 3),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path());
        topic(&log, "readings", 4);
        topic(&log, "sums", 2);
        let input = readings(20_000, 50);
        produce(&log, "readings", &input);
        let mut config = JobConfig::new("sums");
        config.guarantee = guarantee;
        config.stop_when_drained = true;
        config.epoch_ms = 20;
        let metrics = sum_job(&log, config, sources, sums)
            .start()
            .expect("start")
            .wait()
            .expect("run");
        assert_eq!(metrics.source_records, 20_000);
        assert!(metrics.checkpoints >= 1);
        let got: BTreeMap<u64, i64> = read_all::<(u64, i64)>(&log, "sums").into_iter().collect();
        assert_eq!(got, reference(&input), "{guarantee:?} {sources}x{sums}");
        let filter = metrics.operator("filter").expect("filter metrics");
        assert_eq!(filter.records_in, 20_000);
        assert_eq!(
            filter.records_out,
            input.iter().filter(|r| r.sensor != 3).count() as u64
        );
    }
}

#[test]
fn a_second_run_resumes_from_committed_state_and_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    topic(&log, "readings", 3);
    topic(&log, "sums", 1);
    let input = readings(9_000, 20);
    produce(&log, "readings", &input[..4_000]);
    // First run: stop before the end of input (the totals are emitted only at WATERMARK_MAX,
    // so nothing is output, but state and offsets are committed).
    let mut config = JobConfig::new("resume");
    config.epoch_ms = 10;
    let handle = sum_job(&log, config.clone(), 2, 2).start().expect("start");
    while handle.metrics().source_records < 4_000 || handle.committed_epoch() < 3 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    handle.stop().expect("stop");
    assert!(read_all::<(u64, i64)>(&log, "sums").is_empty());
    produce(&log, "readings", &input[4_000..]);
    config.stop_when_drained = true;
    let m = sum_job(&log, config, 2, 2)
        .start()
        .expect("restart")
        .wait()
        .expect("run");
    assert_eq!(
        m.source_records, 5_000,
        "the second run reads only what the first did not commit"
    );
    let got: BTreeMap<u64, i64> = read_all::<(u64, i64)>(&log, "sums").into_iter().collect();
    assert_eq!(got, reference(&input));
}

#[test]
fn a_changed_job_shape_is_refused_on_restore() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    topic(&log, "readings", 2);
    topic(&log, "sums", 1);
    produce(&log, "readings", &readings(100, 5));
    let mut config = JobConfig::new("shape");
    config.stop_when_drained = true;
    sum_job(&log, config.clone(), 2, 2)
        .start()
        .expect("start")
        .wait()
        .expect("run");
    let e = sum_job(&log, config, 2, 3)
        .start()
        .expect_err("shape changed");
    assert!(matches!(e, Error::State { .. }), "{e}");
    assert!(e.to_string().contains("shape changed"), "{e}");
}

#[test]
fn bad_graphs_and_configs_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    topic(&log, "readings", 2);
    // No sink.
    let job = Job::new(&log, JobConfig::new("nosink")).expect("job");
    let _ = job
        .source::<Reading, _>("readings", Json)
        .stream()
        .map(|r| r.value);
    let e = job.start().expect_err("no sink");
    assert!(e.to_string().contains("no sink"), "{e}");
    // Unknown topics, named.
    let job = Job::new(&log, JobConfig::new("unknown")).expect("job");
    job.source::<Reading, _>("nope", Json)
        .stream()
        .sink("readings", Json);
    let e = job.start().expect_err("unknown topic");
    assert!(e.to_string().contains("nope"), "{e}");
    // Bad config field, named.
    let mut c = JobConfig::new("bad name!");
    let e = Job::new(&log, c.clone()).expect_err("bad name");
    assert!(matches!(e, Error::Config { field: "name", .. }), "{e}");
    c.name = "ok".into();
    c.channel_batches_max = 0;
    let e = Job::new(&log, c).expect_err("bad bound");
    assert!(
        matches!(
            e,
            Error::Config {
                field: "channel_batches_max",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn undecodable_values_fail_the_job_or_go_to_the_dead_letter_topic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    topic(&log, "readings", 1);
    topic(&log, "sums", 1);
    topic(&log, "dead", 1);
    let mut input = readings(100, 5);
    produce(&log, "readings", &input[..50]);
    let p = Producer::new(&log, ProducerConfig::default()).expect("producer");
    p.send(ProducerRecord::new("readings", b"{not json"))
        .expect("send");
    p.send(ProducerRecord::new("readings", br#"{"sensor": 1}"#))
        .expect("send");
    p.flush().expect("flush");
    produce(&log, "readings", &input[50..]);
    let mut config = JobConfig::new("strict");
    config.stop_when_drained = true;
    let e = sum_job(&log, config, 1, 1)
        .start()
        .expect("start")
        .wait()
        .expect_err("bad value");
    assert!(matches!(e, Error::Codec { .. }), "{e}");
    assert!(e.to_string().contains("readings/0 offset 50"), "{e}");

    let mut config = JobConfig::new("lenient");
    config.stop_when_drained = true;
    let job = Job::new(&log, config).expect("job");
    job.source::<Reading, _>("readings", Json)
        .dead_letter_to("dead")
        .timestamps(|r| r.ts, 0)
        .filter(|r| r.sensor != 3)
        .key_by(|r| r.sensor)
        .process_with("sum", Some(1), SumPerKey::factory)
        .sink("sums", Json);
    let m = job.start().expect("start").wait().expect("run");
    assert_eq!(m.decode_errors, 2);
    let got: BTreeMap<u64, i64> = read_all::<(u64, i64)>(&log, "sums").into_iter().collect();
    input.truncate(100);
    assert_eq!(got, reference(&input));
    let mut c = Consumer::new(&log, ConsumerConfig::default()).expect("consumer");
    c.assign_topic("dead").expect("assign");
    let dead: Vec<_> = c
        .poll(std::time::Duration::from_millis(100))
        .expect("poll")
        .iter()
        .flat_map(|b| b.records().map(|r| r.expect("record")).collect::<Vec<_>>())
        .collect();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].value.as_deref(), Some(&b"{not json"[..]));
    let reason = dead[1]
        .headers
        .iter()
        .find(|h| h.key == "weir.error")
        .expect("reason header");
    let reason = String::from_utf8_lossy(reason.value.as_deref().expect("value"));
    assert!(reason.contains("value"), "{reason}");
}

#[test]
fn a_slow_sink_bounds_the_records_queued_in_the_exchange() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    topic(&log, "readings", 2);
    let input = readings(60_000, 1_000);
    produce(&log, "readings", &input);
    let mut config = JobConfig::new("slow");
    config.stop_when_drained = true;
    config.batch_records_max = 64;
    config.channel_batches_max = 2;
    let job = Job::new(&log, config).expect("job");
    let seen = Arc::new(Mutex::new(HashMap::<u64, u64>::new()));
    let s = seen.clone();
    job.source::<Reading, _>("readings", Json)
        .parallelism(2)
        .stream()
        .key_by(|r| r.sensor)
        .exchange("slow", Some(2))
        .for_each(move |batch| {
            // Deliberately slow: the sources must wait for it rather than queue up.
            std::thread::sleep(std::time::Duration::from_micros(200));
            let mut s = s.lock().expect("lock");
            for ev in batch {
                *s.entry(ev.value.0).or_default() += 1;
            }
        });
    let m = job.start().expect("start").wait().expect("run");
    assert_eq!(m.source_records, 60_000);
    let total: u64 = seen.lock().expect("lock").values().sum();
    assert_eq!(total, 60_000);
    let ex = &m.exchanges[0];
    // 2 senders × 2 receivers, each channel 2 batches + the one in hand, 64 records each.
    assert_eq!(ex.capacity_records, 2 * 2 * 3 * 64);
    assert!(
        ex.queued_records_max <= ex.capacity_records,
        "queued {} > bound {}",
        ex.queued_records_max,
        ex.capacity_records
    );
    assert!(ex.queued_records_max > 0);
}
