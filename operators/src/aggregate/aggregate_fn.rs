//! [`aggregate_fn`]: a user-defined aggregate from four closures.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Aggregate;

/// An aggregate made of closures. Built by [`aggregate_fn`].
#[derive(Debug, Clone, Copy)]
pub struct AggregateFn<C, A, M, F> {
    create: C,
    add: A,
    merge: M,
    finish: F,
}

/// An aggregate from its four parts: `create() -> Acc`, `add(&mut Acc, &In)`,
/// `merge(&mut Acc, Acc)` and `finish(&Acc) -> Out`.
///
/// The closures must obey the laws of [`Aggregate`]: merging pieces must finish to the same
/// result as adding everything into one accumulator. `add` usually needs its parameter types
/// written out, as below.
///
/// ```
/// use weir_operators::aggregate::{Aggregate, aggregate_fn};
///
/// // The range (max - min) of a reading.
/// let spread = aggregate_fn(
///     || None::<(i64, i64)>,
///     |acc: &mut Option<(i64, i64)>, v: &i64| {
///         let (lo, hi) = acc.get_or_insert((*v, *v));
///         *lo = (*lo).min(*v);
///         *hi = (*hi).max(*v);
///     },
///     |acc, other| {
///         if let Some((lo, hi)) = other {
///             let (a, b) = acc.get_or_insert((lo, hi));
///             *a = (*a).min(lo);
///             *b = (*b).max(hi);
///         }
///     },
///     |acc| acc.map(|(lo, hi)| hi - lo),
/// );
/// let mut acc = spread.create();
/// for v in [4, -2, 9] {
///     spread.add(&mut acc, &v);
/// }
/// assert_eq!(spread.finish(&acc), Some(11));
/// ```
pub fn aggregate_fn<Acc, Out, C, A, M, F>(
    create: C,
    add: A,
    merge: M,
    finish: F,
) -> AggregateFn<C, A, M, F>
where
    C: Fn() -> Acc,
    M: Fn(&mut Acc, Acc),
    F: Fn(&Acc) -> Out,
{
    AggregateFn {
        create,
        add,
        merge,
        finish,
    }
}

impl<In, Acc, Out, C, A, M, F> Aggregate<In> for AggregateFn<C, A, M, F>
where
    C: Fn() -> Acc + Clone + Send + Sync + 'static,
    A: Fn(&mut Acc, &In) + Clone + Send + Sync + 'static,
    M: Fn(&mut Acc, Acc) + Clone + Send + Sync + 'static,
    F: Fn(&Acc) -> Out + Clone + Send + Sync + 'static,
    Acc: Clone + Send + Serialize + DeserializeOwned + 'static,
    Out: Clone + Send + 'static,
{
    type Acc = Acc;
    type Out = Out;

    fn create(&self) -> Acc {
        (self.create)()
    }

    #[inline]
    fn add(&self, acc: &mut Acc, value: &In) {
        (self.add)(acc, value);
    }

    fn merge(&self, acc: &mut Acc, other: Acc) {
        (self.merge)(acc, other);
    }

    fn finish(&self, acc: &Acc) -> Out {
        (self.finish)(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_the_closures() {
        let longest = aggregate_fn(
            String::new,
            |acc: &mut String, v: &String| {
                if v.len() > acc.len() {
                    acc.clone_from(v);
                }
            },
            |acc, other| {
                if other.len() > acc.len() {
                    *acc = other;
                }
            },
            |acc| acc.len(),
        );
        let mut left = longest.create();
        let mut right = longest.create();
        longest.add(&mut left, &"ab".to_string());
        longest.add(&mut right, &"abcd".to_string());
        longest.merge(&mut left, right);
        assert_eq!(longest.finish(&left), 4);
    }
}
