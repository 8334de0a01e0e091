//! Several aggregates over the same values at once: `(A, B)` and `(A, B, C)`.

use super::Aggregate;

impl<In, A, B> Aggregate<In> for (A, B)
where
    A: Aggregate<In>,
    B: Aggregate<In>,
{
    type Acc = (A::Acc, B::Acc);
    type Out = (A::Out, B::Out);

    fn create(&self) -> Self::Acc {
        (self.0.create(), self.1.create())
    }

    #[inline]
    fn add(&self, acc: &mut Self::Acc, value: &In) {
        self.0.add(&mut acc.0, value);
        self.1.add(&mut acc.1, value);
    }

    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        self.0.merge(&mut acc.0, other.0);
        self.1.merge(&mut acc.1, other.1);
    }

    fn finish(&self, acc: &Self::Acc) -> Self::Out {
        (self.0.finish(&acc.0), self.1.finish(&acc.1))
    }
}

impl<In, A, B, C> Aggregate<In> for (A, B, C)
where
    A: Aggregate<In>,
    B: Aggregate<In>,
    C: Aggregate<In>,
{
    type Acc = (A::Acc, B::Acc, C::Acc);
    type Out = (A::Out, B::Out, C::Out);

    fn create(&self) -> Self::Acc {
        (self.0.create(), self.1.create(), self.2.create())
    }

    #[inline]
    fn add(&self, acc: &mut Self::Acc, value: &In) {
        self.0.add(&mut acc.0, value);
        self.1.add(&mut acc.1, value);
        self.2.add(&mut acc.2, value);
    }

    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        self.0.merge(&mut acc.0, other.0);
        self.1.merge(&mut acc.1, other.1);
        self.2.merge(&mut acc.2, other.2);
    }

    fn finish(&self, acc: &Self::Acc) -> Self::Out {
        (
            self.0.finish(&acc.0),
            self.1.finish(&acc.1),
            self.2.finish(&acc.2),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::aggregate::{Aggregate, count, min, sum};

    #[test]
    fn pairs_and_triples_merge_componentwise() {
        let pair = (count(), sum(|v: &i32| *v));
        let mut left = pair.create();
        let mut right = pair.create();
        pair.add(&mut left, &5);
        pair.add(&mut right, &-2);
        pair.add(&mut right, &10);
        pair.merge(&mut left, right);
        assert_eq!(pair.finish(&left), (3, 13));

        let triple = (count(), min(|v: &i32| *v), pair);
        let mut acc = triple.create();
        triple.add(&mut acc, &7);
        assert_eq!(triple.finish(&acc), (1, Some(7), (1, 7)));
    }
}
