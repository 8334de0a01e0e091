//! [`reduce`]: folds values of one type with a combining function.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Aggregate;

/// Folds values with `f`. Built by [`reduce`].
#[derive(Debug, Clone, Copy)]
pub struct Reduce<F> {
    f: F,
}

/// Combines all values with `f(acc, value)`; `None` when there were no values.
///
/// `merge` combines two accumulators with the same `f`, and pieces of a stream are merged in
/// whatever order the runtime finishes them: **`f` must be associative and commutative** (sum,
/// max, set union, bitwise or, …). With a function that is not, merged results depend on how
/// the stream was split.
///
/// ```
/// use weir_operators::aggregate::{Aggregate, reduce};
///
/// let agg = reduce(|acc: &mut u32, flags: &u32| *acc |= *flags);
/// let mut acc = agg.create();
/// agg.add(&mut acc, &0b001);
/// agg.add(&mut acc, &0b100);
/// assert_eq!(agg.finish(&acc), Some(0b101));
/// ```
pub fn reduce<F>(f: F) -> Reduce<F> {
    Reduce { f }
}

impl<T, F> Aggregate<T> for Reduce<F>
where
    F: Fn(&mut T, &T) + Clone + Send + Sync + 'static,
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
{
    type Acc = Option<T>;
    type Out = Option<T>;

    fn create(&self) -> Option<T> {
        None
    }

    #[inline]
    fn add(&self, acc: &mut Option<T>, value: &T) {
        match acc {
            Some(current) => (self.f)(current, value),
            None => *acc = Some(value.clone()),
        }
    }

    fn merge(&self, acc: &mut Option<T>, other: Option<T>) {
        let Some(other) = other else { return };
        match acc {
            Some(current) => (self.f)(current, &other),
            None => *acc = Some(other),
        }
    }

    fn finish(&self, acc: &Option<T>) -> Option<T> {
        acc.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_and_merges() {
        let agg = reduce(|acc: &mut Vec<u8>, v: &Vec<u8>| {
            acc.extend_from_slice(v);
            acc.sort_unstable();
        });
        let mut left = agg.create();
        let mut right = agg.create();
        agg.add(&mut left, &vec![3]);
        agg.add(&mut right, &vec![1, 2]);
        agg.merge(&mut left, right);
        agg.merge(&mut left, None);
        assert_eq!(agg.finish(&left), Some(vec![1, 2, 3]));
        assert_eq!(agg.finish(&agg.create()), None);
    }
}
