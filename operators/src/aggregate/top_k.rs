//! [`top_k`]: the most frequent values, in bounded memory.

use std::cmp::Reverse;
use std::hash::Hash;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Aggregate;
use crate::hot_keys::SpaceSaving;

/// The `k` most frequent `f(value)` from a bounded [`SpaceSaving`] summary. Built by [`top_k`]
/// or [`top_k_with_counters`].
#[derive(Debug, Clone, Copy)]
pub struct TopK<F> {
    f: F,
    k: usize,
    counters_max: usize,
}

/// The `k` most frequent `f(value)` with their counts, most frequent first, ties by value
/// ascending; tracks `counters_max = max(10 * k, 1)` values (see [`top_k_with_counters`]).
///
/// ```
/// use weir_operators::aggregate::{Aggregate, top_k};
///
/// let pages = top_k(2, |url: &&str| url.to_string());
/// let mut acc = pages.create();
/// for url in ["/a", "/b", "/a", "/c", "/b", "/a"] {
///     pages.add(&mut acc, &url);
/// }
/// assert_eq!(pages.finish(&acc), vec![("/a".to_string(), 3), ("/b".to_string(), 2)]);
/// ```
pub fn top_k<F>(k: usize, f: F) -> TopK<F> {
    top_k_with_counters(k, (k.saturating_mul(10)).max(1), f)
}

/// [`top_k`] with an explicit summary size.
///
/// The accumulator is a Space-Saving summary of at most `counters_max` values, whatever the
/// number of distinct values (memory: `counters_max` keys plus about 40 bytes each). With
/// `total` values added (over all merged pieces), every reported count is an upper bound that
/// exceeds the true count by at most `total / counters_max`, and every value whose true count
/// exceeds `total / counters_max` is reported if it ranks in the top `k`. While there are at
/// most `counters_max` distinct values, counts and ranking are exact. For exact results with
/// unbounded memory, use [`top_k_exact`](super::top_k_exact()).
///
/// # Panics
///
/// If `counters_max` is below `k`, 0, or above
/// [`SPACE_SAVING_COUNTERS_LIMIT`](crate::hot_keys::SPACE_SAVING_COUNTERS_LIMIT).
pub fn top_k_with_counters<F>(k: usize, counters_max: usize, f: F) -> TopK<F> {
    assert!(
        counters_max >= k,
        "counters_max ({counters_max}) must be at least k ({k})"
    );
    assert!(
        (1..=crate::hot_keys::SPACE_SAVING_COUNTERS_LIMIT).contains(&counters_max),
        "counters_max must be in 1..={}, got {counters_max}",
        crate::hot_keys::SPACE_SAVING_COUNTERS_LIMIT
    );
    TopK { f, k, counters_max }
}

/// The `k` largest `(value, count)` pairs: count descending, then value ascending.
pub(super) fn largest<T: Ord + Clone>(
    counts: impl Iterator<Item = (T, u64)>,
    k: usize,
) -> Vec<(T, u64)> {
    let mut counts: Vec<(T, u64)> = counts.collect();
    counts.sort_unstable_by(|(a, a_count), (b, b_count)| {
        (Reverse(a_count), a).cmp(&(Reverse(b_count), b))
    });
    counts.truncate(k);
    counts
}

impl<In, F, T> Aggregate<In> for TopK<F>
where
    F: Fn(&In) -> T + Clone + Send + Sync + 'static,
    T: Hash + Eq + Ord + Clone + Send + Serialize + DeserializeOwned + 'static,
{
    type Acc = SpaceSaving<T>;
    type Out = Vec<(T, u64)>;

    fn create(&self) -> SpaceSaving<T> {
        SpaceSaving::new(self.counters_max)
    }

    #[inline]
    fn add(&self, acc: &mut SpaceSaving<T>, value: &In) {
        acc.offer(&(self.f)(value));
    }

    fn merge(&self, acc: &mut SpaceSaving<T>, other: SpaceSaving<T>) {
        acc.merge(other);
    }

    fn finish(&self, acc: &SpaceSaving<T>) -> Vec<(T, u64)> {
        largest(
            acc.iter().map(|(value, count, _)| (value.clone(), count)),
            self.k,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_break_by_value() {
        let agg = top_k(3, |v: &char| *v);
        let mut acc = agg.create();
        for v in "zzyyxxw".chars() {
            agg.add(&mut acc, &v);
        }
        assert_eq!(agg.finish(&acc), vec![('x', 2), ('y', 2), ('z', 2)]);
    }

    #[test]
    fn finds_heavy_values_past_capacity() {
        let agg = top_k_with_counters(1, 10, |v: &u32| *v);
        let mut left = agg.create();
        let mut right = agg.create();
        for i in 0..10_000u32 {
            let v = if i % 4 == 0 { 42 } else { 100 + i };
            agg.add(if i % 2 == 0 { &mut left } else { &mut right }, &v);
        }
        agg.merge(&mut left, right);
        let top = agg.finish(&left);
        assert_eq!(top[0].0, 42);
        assert!(top[0].1 >= 2_500 && top[0].1 <= 2_500 + 10_000 / 10);
    }

    #[test]
    fn k_zero_is_empty() {
        let agg = top_k(0, |v: &u8| *v);
        let mut acc = agg.create();
        agg.add(&mut acc, &1);
        assert!(agg.finish(&acc).is_empty());
    }

    #[test]
    #[should_panic(expected = "at least k")]
    fn rejects_fewer_counters_than_k() {
        let _ = top_k_with_counters(5, 4, |v: &u8| *v);
    }
}
