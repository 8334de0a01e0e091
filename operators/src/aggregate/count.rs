//! [`count`]: the number of values.

use super::Aggregate;

/// Counts values of any type. Built by [`count`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count;

/// Counts the values of each key and window, as a `u64`; any value type, nothing kept but the
/// count.
///
/// ```
/// use weir_operators::aggregate::{Aggregate, count};
///
/// let agg = count();
/// let mut acc = Aggregate::<&str>::create(&agg);
/// agg.add(&mut acc, &"a");
/// agg.add(&mut acc, &"b");
/// assert_eq!(Aggregate::<&str>::finish(&agg, &acc), 2);
/// ```
pub fn count() -> Count {
    Count
}

impl<In> Aggregate<In> for Count {
    type Acc = u64;
    type Out = u64;

    fn create(&self) -> u64 {
        0
    }

    #[inline]
    fn add(&self, acc: &mut u64, _value: &In) {
        *acc = acc.saturating_add(1);
    }

    fn merge(&self, acc: &mut u64, other: u64) {
        *acc = acc.saturating_add(other);
    }

    fn finish(&self, acc: &u64) -> u64 {
        *acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_merges() {
        let agg = count();
        let mut left = Aggregate::<u8>::create(&agg);
        let mut right = Aggregate::<u8>::create(&agg);
        for v in 0..3u8 {
            agg.add(&mut left, &v);
        }
        agg.add(&mut right, &9u8);
        Aggregate::<u8>::merge(&agg, &mut left, right);
        assert_eq!(Aggregate::<u8>::finish(&agg, &left), 4);
    }
}
