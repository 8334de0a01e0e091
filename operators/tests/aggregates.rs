//! The merge law of every built-in aggregate, and the accuracy of the sketches.
//!
//! Law: adding a sequence into one accumulator finishes to the same result as splitting it into
//! parts, aggregating each part, snapshotting it (a bincode round trip, as a checkpoint would),
//! and merging the parts in any order.

use std::collections::HashMap;
use std::fmt::Debug;

use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use weir_operators::aggregate::{
    Aggregate, aggregate_fn, avg, count, distinct, distinct_with_precision, max, min, reduce, sum,
    top_k, top_k_exact, top_k_with_counters,
};

/// Encodes and decodes an accumulator, as a checkpoint and a restore would.
fn restore<T: Serialize + DeserializeOwned>(acc: &T) -> T {
    let config = bincode::config::standard();
    let bytes = bincode::serde::encode_to_vec(acc, config).expect("accumulators encode");
    let (back, read) = bincode::serde::decode_from_slice(&bytes, config).expect("and decode");
    assert_eq!(read, bytes.len());
    back
}

/// The accumulator of the whole sequence, and the merge of the parts' restored accumulators in
/// `order`.
fn whole_and_merged<In, A: Aggregate<In>>(
    agg: &A,
    parts: &[Vec<In>],
    order: &[usize],
) -> (A::Acc, A::Acc) {
    let mut whole = agg.create();
    for value in parts.iter().flatten() {
        agg.add(&mut whole, value);
    }
    let mut accs: Vec<Option<A::Acc>> = parts
        .iter()
        .map(|part| {
            let mut acc = agg.create();
            for value in part {
                agg.add(&mut acc, value);
            }
            Some(restore(&acc))
        })
        .collect();
    let mut merged = accs[order[0]].take().expect("order is a permutation");
    for &at in &order[1..] {
        agg.merge(
            &mut merged,
            accs[at].take().expect("order is a permutation"),
        );
    }
    (whole, merged)
}

/// Asserts that the whole and the merged parts finish alike.
fn assert_law<In, A>(agg: &A, parts: &[Vec<In>], order: &[usize])
where
    A: Aggregate<In>,
    A::Out: PartialEq + Debug,
{
    let (whole, merged) = whole_and_merged(agg, parts, order);
    assert_eq!(agg.finish(&whole), agg.finish(&merged));
}

/// Parts of a sequence (1 to 8 of them, some empty) and a random order to merge them in.
fn split<T: Debug + Clone>(
    value: impl Strategy<Value = T> + Clone,
) -> impl Strategy<Value = (Vec<Vec<T>>, Vec<usize>)> {
    prop::collection::vec(prop::collection::vec(value, 0..40), 1..8).prop_flat_map(|parts| {
        let order = Just((0..parts.len()).collect::<Vec<_>>()).prop_shuffle();
        (Just(parts), order)
    })
}

/// Floats that add exactly in any order: small integers, a few halves, and NaN.
fn exact_float() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        8 => (-1000i32..1000).prop_map(f64::from),
        1 => (-100i32..100).prop_map(|v| f64::from(v) + 0.5),
        1 => Just(f64::NAN),
    ]
}

/// Keys where a few repeat often and many are rare.
fn skewed_key() -> impl Strategy<Value = u16> + Clone {
    prop_oneof![3 => 0u16..5, 1 => 0u16..300]
}

/// The reference for top-k: count everything, sort by count descending then value.
fn naive_top_k<T: Ord + Clone + std::hash::Hash>(values: &[T], k: usize) -> Vec<(T, u64)> {
    let mut counts: HashMap<T, u64> = HashMap::new();
    for value in values {
        *counts.entry(value.clone()).or_default() += 1;
    }
    let mut counts: Vec<(T, u64)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts.truncate(k);
    counts
}

proptest! {
    #[test]
    fn count_merges_exactly((parts, order) in split(any::<u8>())) {
        assert_law(&count(), &parts, &order);
    }

    #[test]
    fn integer_sums_merge_exactly_even_when_saturating(
        (parts, order) in split(prop_oneof![any::<i64>(), -10i64..10]),
    ) {
        assert_law(&sum(|v: &i64| *v), &parts, &order);
        assert_law(&sum(|v: &i64| *v as i32), &parts, &order);
        assert_law(&sum(|v: &i64| v.unsigned_abs()), &parts, &order);
        assert_law(&sum(|v: &i64| v.unsigned_abs() as u32), &parts, &order);
    }

    #[test]
    fn integer_sums_saturate_instead_of_wrapping((parts, _) in split(any::<i64>())) {
        let agg = sum(|v: &i64| *v);
        let mut acc = agg.create();
        let mut truth: i128 = 0;
        for v in parts.iter().flatten() {
            agg.add(&mut acc, v);
            truth += i128::from(*v);
        }
        let expected = truth.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        prop_assert_eq!(agg.finish(&acc), expected);
    }

    #[test]
    fn float_sums_merge_exactly_on_exact_inputs(
        (parts, order) in split((-1000i32..1000).prop_map(f64::from)),
    ) {
        assert_law(&sum(|v: &f64| *v), &parts, &order);
        assert_law(&sum(|v: &f64| *v as f32), &parts, &order);
    }

    #[test]
    fn min_and_max_merge_exactly((parts, order) in split(exact_float())) {
        assert_law(&min(|v: &f64| *v), &parts, &order);
        assert_law(&max(|v: &f64| *v), &parts, &order);
        assert_law(&min(|v: &f64| format!("{v}")), &parts, &order);
        let whole: Vec<f64> = parts.iter().flatten().copied().filter(|v| !v.is_nan()).collect();
        let agg = max(|v: &f64| *v);
        let (acc, _) = whole_and_merged(&agg, &parts, &order);
        prop_assert_eq!(agg.finish(&acc), whole.iter().copied().reduce(f64::max));
    }

    #[test]
    fn avg_merges_exactly((parts, order) in split(-1000i32..1000)) {
        assert_law(&avg(|v: &i32| *v), &parts, &order);
        let whole: Vec<i32> = parts.iter().flatten().copied().collect();
        let agg = avg(|v: &i32| *v);
        let (acc, _) = whole_and_merged(&agg, &parts, &order);
        let expected = (!whole.is_empty())
            .then(|| whole.iter().map(|v| f64::from(*v)).sum::<f64>() / whole.len() as f64);
        prop_assert_eq!(agg.finish(&acc), expected);
    }

    #[test]
    fn distinct_registers_are_identical((parts, order) in split(skewed_key())) {
        for precision in [4, 10, 14] {
            let agg = distinct_with_precision(|v: &u16| *v, precision);
            let (whole, merged) = whole_and_merged(&agg, &parts, &order);
            prop_assert_eq!(&whole, &merged);
        }
        let agg = distinct(|v: &u16| format!("key-{v}"));
        let (whole, merged) = whole_and_merged(&agg, &parts, &order);
        prop_assert_eq!(whole, merged);
    }

    #[test]
    fn top_k_exact_matches_naive_counting((parts, order) in split(skewed_key()), k in 0usize..8) {
        let agg = top_k_exact(k, |v: &u16| *v);
        assert_law(&agg, &parts, &order);
        let whole: Vec<u16> = parts.iter().flatten().copied().collect();
        let (acc, _) = whole_and_merged(&agg, &parts, &order);
        prop_assert_eq!(agg.finish(&acc), naive_top_k(&whole, k));
    }

    #[test]
    fn bounded_top_k_is_exact_within_capacity(
        (parts, order) in split(0u16..30),
        k in 1usize..5,
    ) {
        // Thirty distinct values fit in 10 * k counters once k >= 3; 30 counters always do.
        let agg = top_k_with_counters(k, 30, |v: &u16| *v);
        let whole: Vec<u16> = parts.iter().flatten().copied().collect();
        let (acc, merged) = whole_and_merged(&agg, &parts, &order);
        prop_assert_eq!(agg.finish(&acc), naive_top_k(&whole, k));
        prop_assert_eq!(agg.finish(&merged), naive_top_k(&whole, k));
    }

    #[test]
    fn bounded_top_k_bounds_hold_after_merging(
        (parts, order) in split(skewed_key()),
        k in 1usize..4,
    ) {
        let counters_max = 3 * k;
        let agg = top_k_with_counters(k, counters_max, |v: &u16| *v);
        let whole: Vec<u16> = parts.iter().flatten().copied().collect();
        let total = whole.len() as u64;
        let truth: HashMap<u16, u64> = naive_top_k(&whole, usize::MAX).into_iter().collect();
        let (_, merged) = whole_and_merged(&agg, &parts, &order);
        let slack = total / counters_max as u64;
        for (value, count) in agg.finish(&merged) {
            let true_count = truth[&value];
            prop_assert!(true_count <= count && count <= true_count + slack);
        }
        // A true top-k value that beats every value outside the top k by more than the most a
        // count can be over-estimated cannot be pushed out of the report.
        let reported: Vec<u16> = agg.finish(&merged).into_iter().map(|(v, _)| v).collect();
        let runner_up = naive_top_k(&whole, k + 1).get(k).map_or(0, |&(_, c)| c);
        for (value, count) in naive_top_k(&whole, k) {
            if count > slack && count > runner_up + slack {
                prop_assert!(reported.contains(&value), "{} missing from {:?}", value, reported);
            }
        }
    }

    #[test]
    fn reduce_merges_exactly((parts, order) in split(any::<u64>())) {
        assert_law(&reduce(|acc: &mut u64, v: &u64| *acc = acc.wrapping_add(*v)), &parts, &order);
        assert_law(&reduce(|acc: &mut u64, v: &u64| *acc = (*acc).max(*v)), &parts, &order);
    }

    #[test]
    fn aggregate_fn_and_tuples_merge_exactly((parts, order) in split(-50i64..50)) {
        let sum_of_squares = aggregate_fn(
            || 0i64,
            |acc: &mut i64, v: &i64| *acc += v * v,
            |acc, other| *acc += other,
            |acc| *acc,
        );
        assert_law(&sum_of_squares, &parts, &order);
        assert_law(&(count(), sum(|v: &i64| *v)), &parts, &order);
        assert_law(
            &(sum_of_squares, min(|v: &i64| *v), top_k_exact(2, |v: &i64| *v)),
            &parts,
            &order,
        );
    }
}

#[test]
fn distinct_is_within_three_standard_errors_on_100k_values() {
    let n = 100_000u64;
    let precision = 14;
    let bound = 3.0 * 1.04 / f64::from(1u32 << precision).sqrt() * n as f64;
    let mut estimates = Vec::new();
    for base in [0u64, 1 << 40, u64::MAX - n, 0x5eed] {
        let agg = distinct_with_precision(|v: &u64| *v, precision);
        let mut acc = agg.create();
        for v in base..base + n {
            agg.add(&mut acc, &v);
        }
        estimates.push(agg.finish(&acc));
    }
    let agg = distinct(|v: &u64| format!("user-{v}@example.com"));
    let mut acc = agg.create();
    for v in 0..n {
        agg.add(&mut acc, &v);
        agg.add(&mut acc, &v); // duplicates change nothing
    }
    estimates.push(agg.finish(&acc));
    for estimate in estimates {
        let error = (estimate as f64 - n as f64).abs();
        assert!(
            error <= bound,
            "estimate {estimate} of {n} is off by more than {bound}"
        );
    }
}

#[test]
fn default_top_k_tracks_ten_counters_per_rank() {
    // 25 distinct values fit in top_k(3)'s 30 counters: exact.
    let values: Vec<u32> = (0..1000).map(|i| (i * i) % 25).collect();
    let agg = top_k(3, |v: &u32| *v);
    let mut acc = agg.create();
    for v in &values {
        agg.add(&mut acc, v);
    }
    assert_eq!(agg.finish(&acc), naive_top_k(&values, 3));
}
