//! Mergeable aggregates: create / add / merge / finish.
//!
//! An aggregate folds values into an accumulator (`add`), combines two accumulators (`merge`, which
//! is what lets a hot key be pre-aggregated in pieces on several tasks and combined later), and
//! turns an accumulator into a result (`finish`). Accumulators are serde types: they are part of
//! the operator state that each checkpoint snapshots.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A mergeable aggregate over values of type `In`.
///
/// Laws (checked by the property tests for every built-in aggregate): `merge` is associative and
/// commutative up to `finish`, and for any split of a sequence of values into parts, adding each
/// part into its own `create()` and merging the parts finishes to the same result as adding the
/// whole sequence into one accumulator.
pub trait Aggregate<In>: Clone + Send + Sync + 'static {
    /// The running state.
    type Acc: Clone + Send + Serialize + DeserializeOwned + 'static;
    /// The result.
    type Out: Clone + Send + 'static;
    /// An empty accumulator.
    fn create(&self) -> Self::Acc;
    /// Folds one value in.
    fn add(&self, acc: &mut Self::Acc, value: &In);
    /// Folds another accumulator in.
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
    /// The result of an accumulator.
    fn finish(&self, acc: &Self::Acc) -> Self::Out;
}
