//! [`sum`]: the total of a numeric field.

use super::{Aggregate, Numeric};

/// Sums `f(value)`. Built by [`sum`].
#[derive(Debug, Clone, Copy)]
pub struct Sum<F> {
    f: F,
}

/// The total of `f(value)` over all values.
///
/// Integers never wrap: they accumulate in 128 bits and the result saturates to the type's range
/// (see [`Numeric`]). Float totals depend slightly on the order of addition, so merged pieces
/// can differ from a single pass in the last bits.
///
/// ```
/// use weir_operators::aggregate::{Aggregate, sum};
///
/// let agg = sum(|order: &(String, i64)| order.1);
/// let mut acc = agg.create();
/// agg.add(&mut acc, &("a".to_string(), i64::MAX));
/// agg.add(&mut acc, &("b".to_string(), 1));
/// assert_eq!(agg.finish(&acc), i64::MAX); // saturated, not wrapped
/// ```
pub fn sum<F>(f: F) -> Sum<F> {
    Sum { f }
}

impl<In, F, N> Aggregate<In> for Sum<F>
where
    F: Fn(&In) -> N + Clone + Send + Sync + 'static,
    N: Numeric,
{
    type Acc = N::Wide;
    type Out = N;

    fn create(&self) -> N::Wide {
        N::Wide::default()
    }

    #[inline]
    fn add(&self, acc: &mut N::Wide, value: &In) {
        *acc = N::wide_add(*acc, (self.f)(value).widen());
    }

    fn merge(&self, acc: &mut N::Wide, other: N::Wide) {
        *acc = N::wide_add(*acc, other);
    }

    fn finish(&self, acc: &N::Wide) -> N {
        N::narrow(*acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_each_type() {
        let ints = sum(|v: &i32| *v);
        let mut acc = ints.create();
        for v in [-3, 10, 5] {
            ints.add(&mut acc, &v);
        }
        assert_eq!(ints.finish(&acc), 12);

        let unsigned = sum(|v: &u64| *v);
        let mut acc = unsigned.create();
        unsigned.add(&mut acc, &u64::MAX);
        unsigned.add(&mut acc, &u64::MAX);
        assert_eq!(unsigned.finish(&acc), u64::MAX);

        let floats = sum(|v: &f64| *v * 2.0);
        let mut acc = floats.create();
        floats.add(&mut acc, &0.25);
        floats.add(&mut acc, &1.0);
        assert_eq!(floats.finish(&acc), 2.5);
    }

    #[test]
    fn saturates_at_the_bottom_and_recovers_in_range() {
        let agg = sum(|v: &i64| *v);
        let mut acc = agg.create();
        agg.add(&mut acc, &i64::MIN);
        agg.add(&mut acc, &-1);
        assert_eq!(agg.finish(&acc), i64::MIN);
        // The wide accumulator kept the true total, so coming back in range is exact.
        agg.add(&mut acc, &1);
        agg.add(&mut acc, &1);
        assert_eq!(agg.finish(&acc), i64::MIN + 1);
    }
}
