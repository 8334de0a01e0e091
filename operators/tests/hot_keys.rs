//! The Space-Saving guarantees, for one summary, for merged summaries, and after decay.

use std::collections::HashMap;

use proptest::prelude::*;
use weir_operators::hot_keys::SpaceSaving;

/// Keys where a few repeat often and many are rare, each with a repeat count.
fn offers() -> impl Strategy<Value = Vec<(u16, u64)>> {
    let key = prop_oneof![3 => 0u16..5, 1 => 0u16..300];
    let n = prop_oneof![4 => Just(1u64), 1 => 1u64..20];
    prop::collection::vec((key, n), 0..400)
}

fn true_counts(offers: &[(u16, u64)]) -> HashMap<u16, u64> {
    let mut counts = HashMap::new();
    for &(key, n) in offers {
        *counts.entry(key).or_default() += n;
    }
    counts
}

/// Every guarantee of the summary against the true counts.
fn check_guarantees(
    summary: &SpaceSaving<u16>,
    truth: &HashMap<u16, u64>,
) -> Result<(), TestCaseError> {
    let total: u64 = truth.values().sum();
    prop_assert_eq!(summary.total(), total);
    let counters_max = summary.counters_max() as u64;
    prop_assert!(summary.len() as u64 <= counters_max);
    prop_assert!(summary.absent_count_max() <= total / counters_max);
    for (&key, &true_count) in truth {
        match summary.estimate(&key) {
            Some((count, error)) => {
                prop_assert!(count - error <= true_count && true_count <= count);
            }
            None => {
                prop_assert!(true_count <= summary.absent_count_max());
                prop_assert!(
                    true_count <= total / counters_max,
                    "heavy key {} ({} of {}) missing",
                    key,
                    true_count,
                    total
                );
            }
        }
    }
    for (key, _, _) in summary.iter() {
        prop_assert!(truth.contains_key(key), "phantom key {}", key);
    }
    Ok(())
}

proptest! {
    #[test]
    fn one_summary_brackets_every_count(offers in offers(), counters_max in 1usize..20) {
        let mut summary = SpaceSaving::new(counters_max);
        for &(key, n) in &offers {
            summary.offer_n(&key, n);
        }
        check_guarantees(&summary, &true_counts(&offers))?;
        let counted: u64 = summary.iter().map(|(_, count, _)| count).sum();
        prop_assert_eq!(counted, summary.total(), "sequential counts sum to the total");
        let top = summary.top(3);
        prop_assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
    }

    #[test]
    fn merged_summaries_keep_the_guarantees(
        parts in prop::collection::vec(offers(), 1..6),
        counters_max in 1usize..20,
        seed in any::<u64>(),
    ) {
        let mut summaries: Vec<SpaceSaving<u16>> = parts
            .iter()
            .map(|part| {
                let mut summary = SpaceSaving::new(counters_max);
                for &(key, n) in part {
                    summary.offer_n(&key, n);
                }
                summary
            })
            .collect();
        // Merge in a seed-chosen order, sometimes into the newest, sometimes into the oldest.
        let mut state = seed | 1;
        while summaries.len() > 1 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let taken = summaries.swap_remove(state as usize % summaries.len());
            let into = (state >> 32) as usize % summaries.len();
            summaries[into].merge(taken);
        }
        let merged = summaries.pop().expect("one summary left");
        let all: Vec<(u16, u64)> = parts.concat();
        check_guarantees(&merged, &true_counts(&all))?;
    }

    #[test]
    fn merge_order_does_not_matter_for_two(
        left in offers(),
        right in offers(),
        counters_max in 1usize..20,
    ) {
        let build = |offers: &[(u16, u64)]| {
            let mut summary = SpaceSaving::new(counters_max);
            for &(key, n) in offers {
                summary.offer_n(&key, n);
            }
            summary
        };
        let mut ab = build(&left);
        ab.merge(build(&right));
        let mut ba = build(&right);
        ba.merge(build(&left));
        prop_assert_eq!(ab.top(counters_max), ba.top(counters_max));
    }

    #[test]
    fn decay_bounds_the_halved_counts(offers in offers(), counters_max in 1usize..20) {
        let mut summary = SpaceSaving::new(counters_max);
        for &(key, n) in &offers {
            summary.offer_n(&key, n);
        }
        summary.decay();
        for (key, true_count) in true_counts(&offers) {
            match summary.estimate(&key) {
                Some((count, error)) => {
                    prop_assert!(true_count / 2 <= count);
                    prop_assert!(count - error <= true_count.div_ceil(2));
                }
                None => prop_assert!(true_count / 2 <= summary.absent_count_max()),
            }
        }
    }

    #[test]
    fn snapshots_round_trip(offers in offers(), counters_max in 1usize..20) {
        let mut summary = SpaceSaving::new(counters_max);
        for &(key, n) in &offers {
            summary.offer_n(&key, n);
        }
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&summary, config).expect("encodes");
        let (mut back, _): (SpaceSaving<u16>, usize) =
            bincode::serde::decode_from_slice(&bytes, config).expect("decodes");
        prop_assert_eq!(back.top(counters_max), summary.top(counters_max));
        prop_assert_eq!(back.total(), summary.total());
        // The restored summary keeps working the same way.
        for &(key, n) in offers.iter().take(50) {
            back.offer_n(&key, n);
            summary.offer_n(&key, n);
        }
        prop_assert_eq!(back.top(counters_max), summary.top(counters_max));
    }
}
