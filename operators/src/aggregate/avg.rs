//! [`avg`]: the mean of a numeric field.

use super::{Aggregate, Numeric};

/// Averages `f(value)`. Built by [`avg`].
#[derive(Debug, Clone, Copy)]
pub struct Avg<F> {
    f: F,
}

/// The mean of `f(value)`, or `None` when there were no values.
///
/// The accumulator is `(sum, count)` with the sum in an `f64`: integer inputs are exact while the
/// running sum stays below 2^53 in magnitude, and merged pieces then give exactly the single-pass
/// result; beyond that, or with fractional inputs, the result can differ in the last bits.
///
/// ```
/// use weir_operators::aggregate::{Aggregate, avg};
///
/// let agg = avg(|latency_ms: &u32| *latency_ms);
/// let mut acc = agg.create();
/// assert_eq!(agg.finish(&acc), None);
/// for v in [10, 20, 60] {
///     agg.add(&mut acc, &v);
/// }
/// assert_eq!(agg.finish(&acc), Some(30.0));
/// ```
pub fn avg<F>(f: F) -> Avg<F> {
    Avg { f }
}

impl<In, F, N> Aggregate<In> for Avg<F>
where
    F: Fn(&In) -> N + Clone + Send + Sync + 'static,
    N: Numeric,
{
    /// `(sum, count)`.
    type Acc = (f64, u64);
    type Out = Option<f64>;

    fn create(&self) -> (f64, u64) {
        (0.0, 0)
    }

    #[inline]
    fn add(&self, acc: &mut (f64, u64), value: &In) {
        acc.0 += (self.f)(value).to_f64();
        acc.1 = acc.1.saturating_add(1);
    }

    fn merge(&self, acc: &mut (f64, u64), other: (f64, u64)) {
        acc.0 += other.0;
        acc.1 = acc.1.saturating_add(other.1);
    }

    fn finish(&self, acc: &(f64, u64)) -> Option<f64> {
        (acc.1 > 0).then(|| acc.0 / acc.1 as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_pieces_into_the_mean() {
        let agg = avg(|v: &i64| *v);
        let mut left = agg.create();
        let mut right = agg.create();
        agg.add(&mut left, &1);
        agg.add(&mut right, &2);
        agg.add(&mut right, &6);
        agg.merge(&mut left, right);
        assert_eq!(agg.finish(&left), Some(3.0));
    }

    #[test]
    fn merging_empties_stays_empty() {
        let agg = avg(|v: &f32| *v);
        let mut acc = agg.create();
        agg.merge(&mut acc, agg.create());
        assert_eq!(agg.finish(&acc), None);
    }
}
