//! [`top_k_exact`]: the most frequent values, counted exactly.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Aggregate;
use super::top_k::largest;

/// The `k` most frequent `f(value)`, counted exactly. Built by [`top_k_exact`].
#[derive(Debug, Clone, Copy)]
pub struct TopKExact<F> {
    f: F,
    k: usize,
}

/// The `k` most frequent `f(value)` with their exact counts, most frequent first, ties by value
/// ascending.
///
/// The accumulator holds one counter per distinct value, so memory grows with the number of
/// distinct values: use it where that number is known to be small (status codes, countries),
/// and [`top_k`](super::top_k()) otherwise.
///
/// ```
/// use weir_operators::aggregate::{Aggregate, top_k_exact};
///
/// let codes = top_k_exact(1, |status: &u16| *status);
/// let mut acc = codes.create();
/// for status in [200, 404, 200, 500, 200] {
///     codes.add(&mut acc, &status);
/// }
/// assert_eq!(codes.finish(&acc), vec![(200, 3)]);
/// ```
pub fn top_k_exact<F>(k: usize, f: F) -> TopKExact<F> {
    TopKExact { f, k }
}

impl<In, F, T> Aggregate<In> for TopKExact<F>
where
    F: Fn(&In) -> T + Clone + Send + Sync + 'static,
    T: Ord + Clone + Send + Serialize + DeserializeOwned + 'static,
{
    /// Count per distinct value (ordered, so snapshots are byte-for-byte reproducible).
    type Acc = BTreeMap<T, u64>;
    type Out = Vec<(T, u64)>;

    fn create(&self) -> BTreeMap<T, u64> {
        BTreeMap::new()
    }

    #[inline]
    fn add(&self, acc: &mut BTreeMap<T, u64>, value: &In) {
        let count = acc.entry((self.f)(value)).or_insert(0);
        *count = count.saturating_add(1);
    }

    fn merge(&self, acc: &mut BTreeMap<T, u64>, other: BTreeMap<T, u64>) {
        for (value, n) in other {
            let count = acc.entry(value).or_insert(0);
            *count = count.saturating_add(n);
        }
    }

    fn finish(&self, acc: &BTreeMap<T, u64>) -> Vec<(T, u64)> {
        largest(
            acc.iter().map(|(value, count)| (value.clone(), *count)),
            self.k,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_exactly_and_merges() {
        let agg = top_k_exact(2, |word: &String| word.clone());
        let mut left = agg.create();
        let mut right = agg.create();
        for w in ["b", "a", "b"] {
            agg.add(&mut left, &w.to_string());
        }
        for w in ["a", "c", "a"] {
            agg.add(&mut right, &w.to_string());
        }
        agg.merge(&mut left, right);
        assert_eq!(
            agg.finish(&left),
            vec![("a".to_string(), 3), ("b".to_string(), 2)]
        );
    }
}
