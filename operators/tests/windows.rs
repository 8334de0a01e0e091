//! The window engine against a naive reference, on random out-of-order streams from several
//! partitions with late records, lagging and idle-excluding watermarks; plus snapshot/restore,
//! salted two-stage aggregation and early emission.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use weir_operators::aggregate::Aggregate;
use weir_operators::window::{
    EmitMode, Late, LateReason, Window, WindowConfig, WindowSpec, WindowState,
};

/// Counts records and sums their values (each record's value is its index in the stream, so the
/// sum is a checksum of which records went where).
#[derive(Clone)]
struct CountSum;

impl Aggregate<i64> for CountSum {
    type Acc = (u64, i64);
    type Out = (u64, i64);
    fn create(&self) -> (u64, i64) {
        (0, 0)
    }
    fn add(&self, acc: &mut (u64, i64), value: &i64) {
        acc.0 += 1;
        acc.1 += value;
    }
    fn merge(&self, acc: &mut (u64, i64), other: (u64, i64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
    fn finish(&self, acc: &(u64, i64)) -> (u64, i64) {
        *acc
    }
}

/// Collects the values themselves (record indices), to see exactly which records a window holds.
#[derive(Clone)]
struct Members;

impl Aggregate<i64> for Members {
    type Acc = Vec<i64>;
    type Out = Vec<i64>;
    fn create(&self) -> Vec<i64> {
        Vec::new()
    }
    fn add(&self, acc: &mut Vec<i64>, value: &i64) {
        acc.push(*value);
    }
    fn merge(&self, acc: &mut Vec<i64>, other: Vec<i64>) {
        acc.extend(other);
    }
    fn finish(&self, acc: &Vec<i64>) -> Vec<i64> {
        let mut ids = acc.clone();
        ids.sort_unstable();
        ids
    }
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Rec {
        key: u32,
        value: i64,
        ts: i64,
        input_wm: i64,
    },
    Advance(i64),
}

#[derive(Clone, Debug)]
struct Params {
    seed: u64,
    records: usize,
    keys: u32,
    partitions: usize,
    bound_max: i64,
    late_percent: u64,
    lateness: i64,
}

fn params() -> impl Strategy<Value = Params> {
    (
        any::<u64>(),
        1usize..250,
        1u32..5,
        1usize..4,
        0i64..25,
        0u64..20,
        0i64..30,
    )
        .prop_map(
            |(seed, records, keys, partitions, bound_max, late_percent, lateness)| Params {
                seed,
                records,
                keys,
                partitions,
                bound_max,
                late_percent,
                lateness,
            },
        )
}

fn specs() -> impl Strategy<Value = WindowSpec> {
    prop_oneof![
        (1i64..40).prop_map(|size_ms| WindowSpec::Tumbling { size_ms }),
        (1i64..40, 1i64..25)
            .prop_map(|(size_ms, slide_ms)| WindowSpec::Sliding { size_ms, slide_ms }),
        (1i64..30).prop_map(|gap_ms| WindowSpec::Session { gap_ms }),
    ]
}

/// SplitMix64: the stream is a pure function of the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Records from several partitions, each out of order within its own bound plus a share of very
/// late records, interleaved at random; each carries its partition's watermark
/// `max_ts_seen - bound - 1`. After a record the operator usually advances to the minimum over the
/// partitions, sometimes not at all (lag), sometimes leaving one partition out (an idle input
/// excluded from the watermark). The stream ends with `Advance(i64::MAX)`.
fn stream(p: &Params) -> Vec<Ev> {
    let mut rng = Rng(p.seed);
    let mut base: Vec<i64> = (0..p.partitions)
        .map(|_| rng.below(600) as i64 - 300)
        .collect();
    let bound: Vec<i64> = (0..p.partitions)
        .map(|_| rng.below(p.bound_max as u64 + 1) as i64)
        .collect();
    let mut max_seen: Vec<Option<i64>> = vec![None; p.partitions];
    let wm =
        |max_seen: &[Option<i64>], i: usize| max_seen[i].map_or(i64::MIN, |m| m - bound[i] - 1);
    let mut events = Vec::new();
    for index in 0..p.records {
        let part = rng.below(p.partitions as u64) as usize;
        base[part] += rng.below(6) as i64;
        let ts = if rng.below(100) < p.late_percent {
            base[part] - bound[part] - 1 - rng.below(80) as i64
        } else {
            base[part] - rng.below(bound[part] as u64 + 1) as i64
        };
        let input_wm = wm(&max_seen, part);
        max_seen[part] = Some(max_seen[part].map_or(ts, |m| m.max(ts)));
        let key = rng.below(u64::from(p.keys)) as u32;
        events.push(Ev::Rec {
            key,
            value: index as i64,
            ts,
            input_wm,
        });
        let all = (0..p.partitions).map(|i| wm(&max_seen, i));
        match rng.below(10) {
            0..=6 => events.push(Ev::Advance(all.min().expect("partitions > 0"))),
            8 if p.partitions > 1 => {
                let idle = rng.below(p.partitions as u64) as usize;
                let live = (0..p.partitions)
                    .filter(|&i| i != idle)
                    .map(|i| wm(&max_seen, i));
                events.push(Ev::Advance(live.min().expect("another partition")));
            }
            _ => {}
        }
    }
    events.push(Ev::Advance(i64::MAX));
    events
}

type Emitted<Acc> = Vec<(u32, Window, Acc, bool)>;

/// Feeds `events` to `state` from `from` on; returns what it emitted and the late records (with
/// their stream index).
fn feed<A: Aggregate<i64>>(
    state: &mut WindowState<u32, i64, A>,
    events: &[Ev],
    from: usize,
    out: &mut Emitted<A::Acc>,
    late: &mut Vec<(usize, Late)>,
) {
    for ev in &events[from..] {
        match *ev {
            Ev::Rec {
                key,
                value,
                ts,
                input_wm,
            } => {
                if let Some(l) = state.add(&key, &value, ts, input_wm) {
                    late.push((value as usize, l));
                }
            }
            Ev::Advance(wm) => {
                state.advance(wm, |k, w, acc, fin| out.push((*k, w, acc.clone(), fin)))
            }
        }
    }
}

fn run<A: Aggregate<i64>>(
    config: WindowConfig,
    agg: A,
    events: &[Ev],
) -> (Emitted<A::Acc>, Vec<(usize, Late)>) {
    let mut state = WindowState::new(config, agg).expect("valid config");
    let (mut out, mut late) = (Vec::new(), Vec::new());
    feed(&mut state, events, 0, &mut out, &mut late);
    assert_eq!(
        state.open_windows(),
        0,
        "advance(i64::MAX) closes everything"
    );
    assert_eq!(state.watermark(), i64::MAX);
    (out, late)
}

/// Final results as a sorted multiset of (key, start, end, count, sum).
fn finals(out: &Emitted<(u64, i64)>) -> Vec<(u32, i64, i64, u64, i64)> {
    let mut v: Vec<_> = out
        .iter()
        .filter(|e| e.3)
        .map(|&(k, w, (c, s), _)| (k, w.start, w.end, c, s))
        .collect();
    v.sort_unstable();
    v
}

// ---- the naive reference: no code shared with the engine ----

/// Every window of a tumbling or sliding spec holding `ts`, by brute force over nearby starts.
fn naive_windows(spec: WindowSpec, ts: i64) -> Vec<(i64, i64)> {
    let (size, slide) = match spec {
        WindowSpec::Tumbling { size_ms } => (size_ms, size_ms),
        WindowSpec::Sliding { size_ms, slide_ms } => (size_ms, slide_ms),
        WindowSpec::Session { .. } => unreachable!(),
    };
    let (lo, hi) = ((ts - size) / slide - 2, ts / slide + 2);
    (lo..=hi)
        .map(|k| (k * slide, k * slide + size))
        .filter(|&(s, e)| s <= ts && ts < e)
        .collect()
}

fn naive_is_late(end: i64, lateness: i64, wm: i64) -> bool {
    i128::from(end) - 1 + i128::from(lateness) <= i128::from(wm)
}

fn naive_late(ts: i64, first: (i64, i64), missed: u32, lateness: i64, iw: i64, op: i64) -> Late {
    let window = Window {
        start: first.0,
        end: first.1,
    };
    let (reason, watermark) = if naive_is_late(first.1, lateness, iw) {
        (LateReason::BehindWatermark, iw)
    } else {
        (LateReason::WindowClosed, op)
    };
    Late {
        ts,
        window,
        windows_missed: missed,
        reason,
        watermark,
    }
}

type Finals = Vec<(u32, i64, i64, u64, i64)>;

fn reference(spec: WindowSpec, lateness: i64, events: &[Ev]) -> (Finals, Vec<(usize, Late)>) {
    if let WindowSpec::Session { gap_ms } = spec {
        return reference_sessions(gap_ms, lateness, events);
    }
    let mut op_wm = i64::MIN;
    let mut sums: BTreeMap<(u32, i64, i64), (u64, i64)> = BTreeMap::new();
    let mut late = Vec::new();
    for ev in events {
        match *ev {
            Ev::Advance(wm) => op_wm = op_wm.max(wm),
            Ev::Rec {
                key,
                value,
                ts,
                input_wm,
            } => {
                let wm = input_wm.max(op_wm);
                let windows = naive_windows(spec, ts);
                let missed: Vec<_> = windows
                    .iter()
                    .filter(|w| naive_is_late(w.1, lateness, wm))
                    .collect();
                for w in windows.iter().filter(|w| !naive_is_late(w.1, lateness, wm)) {
                    let e = sums.entry((key, w.0, w.1)).or_default();
                    e.0 += 1;
                    e.1 += value;
                }
                if let Some(&&first) = missed.iter().min() {
                    let l = naive_late(ts, first, missed.len() as u32, lateness, input_wm, op_wm);
                    late.push((value as usize, l));
                }
            }
        }
    }
    (
        sums.into_iter()
            .map(|((k, s, e), (c, v))| (k, s, e, c, v))
            .collect(),
        late,
    )
}

fn reference_sessions(gap: i64, lateness: i64, events: &[Ev]) -> (Finals, Vec<(usize, Late)>) {
    let mut op_wm = i64::MIN;
    let mut live: Vec<(u32, i64, i64, u64, i64)> = Vec::new();
    let mut done = Vec::new();
    let mut late = Vec::new();
    for ev in events {
        match *ev {
            Ev::Advance(wm) => {
                op_wm = op_wm.max(wm);
                let (closed, open): (Vec<_>, Vec<_>) = live
                    .into_iter()
                    .partition(|s| naive_is_late(s.2, lateness, op_wm));
                done.extend(closed);
                live = open;
            }
            Ev::Rec {
                key,
                value,
                ts,
                input_wm,
            } => {
                if naive_is_late(ts + gap, lateness, input_wm.max(op_wm)) {
                    late.push((
                        value as usize,
                        naive_late(ts, (ts, ts + gap), 1, lateness, input_wm, op_wm),
                    ));
                    continue;
                }
                let mut cur = (key, ts, ts + gap, 1u64, value);
                // Merge until nothing of the key overlaps or touches.
                while let Some(i) = live
                    .iter()
                    .position(|s| s.0 == key && s.1 <= cur.2 && cur.1 <= s.2)
                {
                    let s = live.remove(i);
                    cur = (
                        key,
                        s.1.min(cur.1),
                        s.2.max(cur.2),
                        s.3 + cur.3,
                        s.4 + cur.4,
                    );
                }
                live.push(cur);
            }
        }
    }
    assert!(live.is_empty());
    done.sort_unstable();
    (done, late)
}

fn config(spec: WindowSpec, lateness: i64, emit: EmitMode) -> WindowConfig {
    WindowConfig {
        spec,
        allowed_lateness_ms: lateness,
        emit,
    }
}

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn engine_matches_the_naive_reference(spec in specs(), p in params()) {
        let events = stream(&p);
        let (out, late) = run(config(spec, p.lateness, EmitMode::Final), CountSum, &events);
        let (want, want_late) = reference(spec, p.lateness, &events);
        prop_assert!(out.iter().all(|e| e.3), "final mode emits finals only");
        prop_assert_eq!(finals(&out), want);
        prop_assert_eq!(&late, &want_late);
        if let WindowSpec::Tumbling { .. } = spec {
            let on_time: u64 = out.iter().map(|e| e.2.0).sum();
            prop_assert_eq!(on_time + late.len() as u64, p.records as u64);
        }
    }

    #[test]
    fn snapshot_and_restore_midway_changes_nothing(
        spec in specs(), p in params(), cut in any::<prop::sample::Index>(), every_ms in 1i64..20,
    ) {
        let events = stream(&p);
        let emit = if p.seed % 2 == 0 { EmitMode::Final } else { EmitMode::Early { every_ms } };
        let cfg = config(spec, p.lateness, emit);
        let whole = run(cfg, CountSum, &events);

        let cut = cut.index(events.len());
        let mut first = WindowState::new(cfg, CountSum).expect("valid");
        let (mut out, mut late) = (Vec::new(), Vec::new());
        feed(&mut first, &events[..cut], 0, &mut out, &mut late);
        let bytes = first.snapshot().expect("snapshot");
        let mut second = WindowState::new(cfg, CountSum).expect("valid");
        second.restore(&bytes).expect("restore");
        prop_assert_eq!(second.watermark(), first.watermark());
        prop_assert_eq!(second.open_windows(), first.open_windows());
        prop_assert_eq!(second.snapshot().expect("snapshot"), bytes, "restore is lossless");
        feed(&mut second, &events, cut, &mut out, &mut late);
        prop_assert_eq!((out, late), whole, "same emissions, in the same order");
    }

    #[test]
    fn salted_fixed_windows_equal_unsalted(
        size in 1i64..40, slide in 1i64..40, sliding in any::<bool>(), p in params(),
        salts in 1u64..5,
    ) {
        let spec = if sliding {
            WindowSpec::Sliding { size_ms: size, slide_ms: slide }
        } else {
            WindowSpec::Tumbling { size_ms: size }
        };
        let events = stream(&p);
        let cfg = config(spec, p.lateness, EmitMode::Final);
        let (want, want_late) = run(cfg, CountSum, &events);
        let (out, late) = salted(cfg, CountSum, &events, salts, p.seed);
        prop_assert_eq!(finals(&out), finals(&want));
        prop_assert_eq!(late, want_late);
    }

    #[test]
    fn salted_sessions_split_but_never_join_or_lose(
        gap in 1i64..30, p in params(), salts in 1u64..5,
    ) {
        let events = stream(&p);
        let cfg = config(WindowSpec::Session { gap_ms: gap }, p.lateness, EmitMode::Final);
        let (whole, whole_late) = run(cfg, Members, &events);
        let (parts, late) = salted(cfg, Members, &events, salts, p.seed);
        prop_assert_eq!(late, whole_late);
        // Which unsalted session each on-time record ended up in.
        let mut session_of = HashMap::new();
        for (i, (key, w, ids, _)) in whole.iter().enumerate() {
            for id in ids {
                prop_assert!(session_of.insert(*id, (i, *key, *w)).is_none());
            }
        }
        let mut covered = vec![0usize; whole.len()];
        for (key, w, ids, _) in &parts {
            let (i, k, outer) = session_of[&ids[0]];
            prop_assert_eq!(k, *key);
            let inside = outer.start <= w.start && w.end <= outer.end;
            prop_assert!(inside, "{:?} not inside {:?}", w, outer);
            for id in ids {
                prop_assert_eq!(session_of[id].0, i, "a salted session joins two unsalted ones");
            }
            covered[i] += ids.len();
        }
        for (i, (_, _, ids, _)) in whole.iter().enumerate() {
            prop_assert_eq!(covered[i], ids.len(), "records lost or double-counted");
        }
        if salts == 1 {
            let sorted = |v: &Emitted<Vec<i64>>| {
                let mut v: Vec<_> = v.iter().map(|(k, w, ids, _)| {
                    let mut ids = ids.clone();
                    ids.sort_unstable();
                    (*k, *w, ids)
                }).collect();
                v.sort();
                v
            };
            prop_assert_eq!(sorted(&parts), sorted(&whole));
        }
    }

    #[test]
    fn early_updates_leave_finals_unchanged(spec in specs(), p in params(), every_ms in 1i64..30) {
        let events = stream(&p);
        let (want, want_late) = run(config(spec, p.lateness, EmitMode::Final), CountSum, &events);
        let early = EmitMode::Early { every_ms };
        let (out, late) = run(config(spec, p.lateness, early), CountSum, &events);
        prop_assert_eq!(late, want_late);
        let only_finals: Vec<_> = out.iter().filter(|e| e.3).cloned().collect();
        prop_assert_eq!(&only_finals, &want, "same finals in the same order");
        for (i, &(key, w, (count, _), fin)) in out.iter().enumerate() {
            if fin {
                continue;
            }
            // A later final of the key covers the update's window and counts at least as much
            // (fixed windows: the same window; sessions: the session it grew into).
            let covers = |f: &&(u32, Window, (u64, i64), bool)| {
                f.3 && f.0 == key && f.1.start <= w.start && w.end <= f.1.end
            };
            let later = out[i..].iter().find(covers);
            prop_assert!(later.is_some_and(|f| f.2.0 >= count), "update {:?} has no final", out[i]);
            if !matches!(spec, WindowSpec::Session { .. }) {
                let before = out[..i].iter().any(|f| f.3 && f.0 == key && f.1 == w);
                prop_assert!(!before, "update after the final");
            }
        }
    }

    #[test]
    fn restore_rejects_bad_bytes_without_panicking(
        spec in specs(), p in params(), noise in prop::collection::vec(any::<u8>(), 0..64),
        flip in any::<prop::sample::Index>(),
    ) {
        let events = stream(&p);
        let cfg = config(spec, p.lateness, EmitMode::Final);
        let mut state = WindowState::new(cfg, CountSum).expect("valid");
        let (mut out, mut late) = (Vec::new(), Vec::new());
        feed(&mut state, &events[..events.len() - 1], 0, &mut out, &mut late);
        let bytes = state.snapshot().expect("snapshot");
        let (wm, open) = (state.watermark(), state.open_windows());
        prop_assert!(state.restore(&noise).is_err());
        prop_assert!(state.restore(&bytes[..flip.index(bytes.len())]).is_err(), "truncated");
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(state.restore(&longer).is_err(), "trailing bytes");
        let unchanged = (state.watermark(), state.open_windows()) == (wm, open);
        prop_assert!(unchanged, "failed restores change nothing");
        let mut flipped = bytes.clone();
        let at = flip.index(bytes.len());
        flipped[at] ^= 1 << (p.seed % 8);
        let _ = state.restore(&flipped); // may be valid; must not panic
        let other = match spec {
            WindowSpec::Session { gap_ms } => WindowSpec::Session { gap_ms: gap_ms + 1 },
            _ => WindowSpec::Session { gap_ms: 5 },
        };
        let other = config(other, p.lateness, EmitMode::Final);
        let mut stranger = WindowState::<u32, i64, _>::new(other, CountSum).expect("valid");
        prop_assert!(stranger.restore(&bytes).is_err(), "another spec");
    }
}

/// Two-stage aggregation: each record goes to one of `salts` stage-one states (at random); every
/// stage sees every watermark; the partials stage one emits at close are merged into stage two,
/// which then advances to the same watermark.
fn salted<A: Aggregate<i64>>(
    cfg: WindowConfig,
    agg: A,
    events: &[Ev],
    salts: u64,
    seed: u64,
) -> (Emitted<A::Acc>, Vec<(usize, Late)>) {
    let mut rng = Rng(seed ^ 0x5a17);
    let mut stage_one: Vec<_> = (0..salts)
        .map(|_| WindowState::new(cfg, agg.clone()).expect("valid"))
        .collect();
    let mut stage_two = WindowState::new(cfg, agg).expect("valid");
    let (mut out, mut late) = (Vec::new(), Vec::new());
    for ev in events {
        match *ev {
            Ev::Rec {
                key,
                value,
                ts,
                input_wm,
            } => {
                let salt = rng.below(salts) as usize;
                if let Some(l) = stage_one[salt].add(&key, &value, ts, input_wm) {
                    late.push((value as usize, l));
                }
            }
            Ev::Advance(wm) => {
                let mut partials = Vec::new();
                for state in &mut stage_one {
                    state.advance(wm, |k, w, acc, _| partials.push((*k, w, acc.clone())));
                }
                for (k, w, acc) in partials {
                    stage_two.merge_partial(k, w, acc);
                }
                stage_two.advance(wm, |k, w, acc, fin| out.push((*k, w, acc.clone(), fin)));
            }
        }
    }
    late.sort_by_key(|l| l.0);
    (out, late)
}

#[test]
fn salted_sessions_can_split_a_session() {
    let cfg = config(WindowSpec::Session { gap_ms: 10 }, 0, EmitMode::Final);
    let events = [
        Ev::Rec {
            key: 1,
            value: 0,
            ts: 0,
            input_wm: i64::MIN,
        },
        Ev::Rec {
            key: 1,
            value: 1,
            ts: 8,
            input_wm: i64::MIN,
        },
        Ev::Advance(9),
        Ev::Advance(i64::MAX),
    ];
    let (whole, _) = run(cfg, CountSum, &events);
    assert_eq!(finals(&whole), [(1, 0, 18, 2, 1)]);
    // Find a seed that puts the two records on different salts.
    let split = (0..64)
        .map(|seed| finals(&salted(cfg, CountSum, &events, 2, seed).0))
        .find(|f| f.len() == 2)
        .expect("some seed splits the records");
    assert_eq!(split, [(1, 0, 10, 1, 0), (1, 8, 18, 1, 1)]);
}

#[test]
fn early_mode_emits_on_ticks_on_completion_and_finally() {
    let w = Window { start: 0, end: 10 };
    let cfg = config(
        WindowSpec::Tumbling { size_ms: 10 },
        5,
        EmitMode::Early { every_ms: 4 },
    );
    let mut state = WindowState::new(cfg, CountSum).expect("valid");
    let mut out = Vec::new();
    let mut step = |state: &mut WindowState<u32, i64, CountSum>, ts: Option<i64>, wm: i64| {
        if let Some(ts) = ts {
            assert_eq!(state.add(&7, &1, ts, i64::MIN), None);
        }
        state.advance(wm, |k, w, acc, fin| out.push((*k, w, acc.0, fin)));
    };
    step(&mut state, Some(1), 2); // first tick: 1
    step(&mut state, Some(3), 3); // no tick, nothing completes
    step(&mut state, None, 4); // tick: 2
    step(&mut state, None, 5); // unchanged: nothing
    step(&mut state, Some(5), 8); // tick: 3
    step(&mut state, Some(6), 9); // completes: 4
    step(&mut state, Some(7), 14); // closes: final 5
    assert_eq!(
        out,
        [
            (7, w, 1, false),
            (7, w, 2, false),
            (7, w, 3, false),
            (7, w, 4, false),
            (7, w, 5, true)
        ]
    );
}

#[test]
fn late_reasons_name_the_watermark_at_fault() {
    let cfg = config(
        WindowSpec::Sliding {
            size_ms: 10,
            slide_ms: 5,
        },
        0,
        EmitMode::Final,
    );
    let mut state = WindowState::new(cfg, CountSum).expect("valid");
    state.advance(14, |_, _, _, _| {});
    // On time in its own partition, but the operator (which left that idle partition out) has
    // closed [5, 15); [10, 20) still takes it.
    let late = state.add(&1, &0, 12, 3).expect("late");
    let first = Window { start: 5, end: 15 };
    assert_eq!(
        late,
        Late {
            ts: 12,
            window: first,
            windows_missed: 1,
            reason: LateReason::WindowClosed,
            watermark: 14
        }
    );
    assert_eq!(state.open_windows(), 1);
    // Behind its own partition's watermark: both windows missed.
    let late = state.add(&1, &0, 12, 19).expect("late");
    assert_eq!(
        late,
        Late {
            ts: 12,
            window: first,
            windows_missed: 2,
            reason: LateReason::BehindWatermark,
            watermark: 19
        }
    );
}

#[test]
fn config_errors_name_the_field() {
    let bad = |cfg: WindowConfig| match WindowState::<u32, i64, _>::new(cfg, CountSum) {
        Err(weir_operators::window::WindowError::Config { field, .. }) => field,
        other => panic!("{:?}", other.map(|s| s.watermark())),
    };
    let spec = WindowSpec::Tumbling { size_ms: 10 };
    assert_eq!(
        bad(config(spec, -1, EmitMode::Final)),
        "allowed_lateness_ms"
    );
    assert_eq!(
        bad(config(spec, 0, EmitMode::Early { every_ms: 0 })),
        "emit.every_ms"
    );
    assert_eq!(
        bad(config(
            WindowSpec::Tumbling { size_ms: 0 },
            0,
            EmitMode::Final
        )),
        "spec.size_ms"
    );
}
