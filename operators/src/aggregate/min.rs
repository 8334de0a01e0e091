//! [`min`]: the smallest value of a field.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Aggregate;

/// Keeps the smallest `f(value)`. Built by [`min`].
#[derive(Debug, Clone, Copy)]
pub struct Min<F> {
    f: F,
}

/// The smallest `f(value)`, or `None` when there were no values.
///
/// Values that are not comparable with themselves (a float `NaN`) are skipped: with them the
/// result would depend on the order in which values arrived, which breaks merging.
///
/// ```
/// use weir_operators::aggregate::{Aggregate, min};
///
/// let agg = min(|reading: &f64| *reading);
/// let mut acc = agg.create();
/// for v in [3.5, f64::NAN, -1.0] {
///     agg.add(&mut acc, &v);
/// }
/// assert_eq!(agg.finish(&acc), Some(-1.0));
/// ```
pub fn min<F>(f: F) -> Min<F> {
    Min { f }
}

/// Whether `value` takes part in an ordering at all (false for `NaN`).
#[inline]
pub(super) fn is_comparable<N: PartialOrd>(value: &N) -> bool {
    value.partial_cmp(value).is_some()
}

/// Puts `candidate` into `acc` when `acc` is empty or `replaces(candidate, current)`.
#[inline]
pub(super) fn keep<N: PartialOrd>(acc: &mut Option<N>, candidate: N, replaces: fn(&N, &N) -> bool) {
    if !is_comparable(&candidate) {
        return;
    }
    match acc {
        Some(current) if !replaces(&candidate, current) => {}
        _ => *acc = Some(candidate),
    }
}

impl<In, F, N> Aggregate<In> for Min<F>
where
    F: Fn(&In) -> N + Clone + Send + Sync + 'static,
    N: PartialOrd + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Acc = Option<N>;
    type Out = Option<N>;

    fn create(&self) -> Option<N> {
        None
    }

    #[inline]
    fn add(&self, acc: &mut Option<N>, value: &In) {
        keep(acc, (self.f)(value), |candidate, current| {
            candidate < current
        });
    }

    fn merge(&self, acc: &mut Option<N>, other: Option<N>) {
        if let Some(candidate) = other {
            keep(acc, candidate, |candidate, current| candidate < current);
        }
    }

    fn finish(&self, acc: &Option<N>) -> Option<N> {
        acc.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_none() {
        let agg = min(|v: &i32| *v);
        assert_eq!(agg.finish(&agg.create()), None);
    }

    #[test]
    fn finds_the_smallest_and_merges() {
        let agg = min(|word: &&str| word.len());
        let mut left = agg.create();
        let mut right = agg.create();
        agg.add(&mut left, &"stream");
        agg.add(&mut right, &"log");
        agg.add(&mut right, &"operator");
        agg.merge(&mut left, right);
        assert_eq!(agg.finish(&left), Some(3));
    }

    #[test]
    fn nan_never_wins() {
        let agg = min(|v: &f64| *v);
        let mut acc = agg.create();
        agg.add(&mut acc, &f64::NAN);
        assert_eq!(agg.finish(&acc), None);
        agg.add(&mut acc, &2.0);
        agg.add(&mut acc, &f64::NAN);
        assert_eq!(agg.finish(&acc), Some(2.0));
    }
}
