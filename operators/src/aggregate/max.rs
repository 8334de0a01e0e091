//! [`max`]: the largest value of a field.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Aggregate;
use super::min::keep;

/// Keeps the largest `f(value)`. Built by [`max`].
#[derive(Debug, Clone, Copy)]
pub struct Max<F> {
    f: F,
}

/// The largest `f(value)`, or `None` when there were no values.
///
/// Values that are not comparable with themselves (a float `NaN`) are skipped, as in
/// [`min`](super::min()).
///
/// ```
/// use weir_operators::aggregate::{Aggregate, max};
///
/// let agg = max(|name: &String| name.clone());
/// let mut acc = agg.create();
/// for v in ["pear", "apple", "quince"] {
///     agg.add(&mut acc, &v.to_string());
/// }
/// assert_eq!(agg.finish(&acc).as_deref(), Some("quince"));
/// ```
pub fn max<F>(f: F) -> Max<F> {
    Max { f }
}

impl<In, F, N> Aggregate<In> for Max<F>
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
            candidate > current
        });
    }

    fn merge(&self, acc: &mut Option<N>, other: Option<N>) {
        if let Some(candidate) = other {
            keep(acc, candidate, |candidate, current| candidate > current);
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
    fn finds_the_largest_and_merges() {
        let agg = max(|v: &i64| *v);
        let mut left = agg.create();
        let mut right = agg.create();
        agg.add(&mut left, &-4);
        agg.add(&mut right, &7);
        agg.add(&mut right, &-10);
        agg.merge(&mut left, right);
        assert_eq!(agg.finish(&left), Some(7));
        assert_eq!(agg.finish(&agg.create()), None);
    }

    #[test]
    fn nan_never_wins() {
        let agg = max(|v: &f32| *v);
        let mut acc = agg.create();
        agg.add(&mut acc, &1.0);
        agg.add(&mut acc, &f32::NAN);
        agg.merge(&mut acc, Some(f32::NAN));
        assert_eq!(agg.finish(&acc), Some(1.0));
    }
}
