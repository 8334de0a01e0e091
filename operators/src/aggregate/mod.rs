//! Mergeable aggregates: create / add / merge / finish.
//!
//! An aggregate folds values into an accumulator (`add`), combines two accumulators (`merge`, which
//! is what lets a hot key be pre-aggregated in pieces on several tasks and combined later), and
//! turns an accumulator into a result (`finish`). Accumulators are serde types: they are part of
//! the operator state that each checkpoint snapshots.
//!
//! Built in, each from a constructor function:
//!
//! | constructor                                  | result                          | accumulator            |
//! |----------------------------------------------|---------------------------------|------------------------|
//! | [`count()`]                                  | `u64`                           | `u64`                  |
//! | [`sum(f)`](sum())                            | `N` (saturating for integers)   | `i128` / `u128` / `f64`|
//! | [`min(f)`](min()), [`max(f)`](max())         | `Option<N>`                     | `Option<N>`            |
//! | [`avg(f)`](avg())                            | `Option<f64>`                   | `(f64, u64)`           |
//! | [`distinct(f)`](distinct())                  | `u64`, ~0.8% error (HyperLogLog)| 16 KiB of registers    |
//! | [`top_k(k, f)`](top_k())                     | `Vec<(T, u64)>`, bounded memory | Space-Saving summary   |
//! | [`top_k_exact(k, f)`](top_k_exact())         | `Vec<(T, u64)>`, exact          | count per distinct `T` |
//! | [`reduce(f)`](reduce())                      | `Option<T>`                     | `Option<T>`            |
//! | [`aggregate_fn(..)`](aggregate_fn())         | your own, from four closures    | your own               |
//!
//! A pair or triple of aggregates is an aggregate too, computing all of them in one pass; its
//! accumulator and result are the tuples of theirs:
//!
//! ```
//! use weir_operators::aggregate::{Aggregate, avg, count, max};
//!
//! let stats = (count(), avg(|v: &u32| *v), max(|v: &u32| *v));
//! let mut acc = stats.create();
//! for v in [4, 8] {
//!     stats.add(&mut acc, &v);
//! }
//! assert_eq!(stats.finish(&acc), (2, Some(6.0), Some(8)));
//! ```
//!
//! An aggregate with its own parameters is a struct that implements the trait directly:
//!
//! ```
//! use weir_operators::aggregate::Aggregate;
//!
//! /// How many readings were above a threshold, and how many there were in all.
//! #[derive(Clone)]
//! struct AboveShare {
//!     threshold: f64,
//! }
//!
//! impl Aggregate<f64> for AboveShare {
//!     type Acc = (u64, u64);
//!     type Out = Option<f64>;
//!
//!     fn create(&self) -> (u64, u64) {
//!         (0, 0)
//!     }
//!     fn add(&self, acc: &mut (u64, u64), value: &f64) {
//!         acc.0 += u64::from(*value > self.threshold);
//!         acc.1 += 1;
//!     }
//!     fn merge(&self, acc: &mut (u64, u64), other: (u64, u64)) {
//!         acc.0 += other.0;
//!         acc.1 += other.1;
//!     }
//!     fn finish(&self, acc: &(u64, u64)) -> Option<f64> {
//!         (acc.1 > 0).then(|| acc.0 as f64 / acc.1 as f64)
//!     }
//! }
//!
//! let agg = AboveShare { threshold: 30.0 };
//! let mut acc = agg.create();
//! for celsius in [25.0, 31.5, 40.0, 12.0] {
//!     agg.add(&mut acc, &celsius);
//! }
//! assert_eq!(agg.finish(&acc), Some(0.5));
//! ```

mod aggregate_fn;
mod avg;
mod count;
mod distinct;
mod hash;
mod max;
mod min;
mod numeric;
mod reduce;
mod sum;
mod top_k;
mod top_k_exact;
mod tuple;

pub use aggregate_fn::{AggregateFn, aggregate_fn};
pub use avg::{Avg, avg};
pub use count::{Count, count};
pub use distinct::{
    DISTINCT_PRECISION_DEFAULT, DISTINCT_PRECISION_MAX, DISTINCT_PRECISION_MIN, Distinct, distinct,
    distinct_with_precision,
};
pub use hash::{StableBuildHasher, StableHasher, stable_hash};
pub use max::{Max, max};
pub use min::{Min, min};
pub use numeric::Numeric;
pub use reduce::{Reduce, reduce};
pub use sum::{Sum, sum};
pub use top_k::{TopK, top_k, top_k_with_counters};
pub use top_k_exact::{TopKExact, top_k_exact};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A mergeable aggregate over values of type `In`.
///
/// Laws (checked by the property tests for every built-in aggregate): `merge` is associative and
/// commutative up to `finish`, and for any split of a sequence of values into parts, adding each
/// part into its own `create()` and merging the parts finishes to the same result as adding the
/// whole sequence into one accumulator.
pub trait Aggregate<In>: Clone + Send + Sync + 'static {
    /// The running state of one key and window; serde, because it goes into the checkpoint
    /// snapshots.
    type Acc: Clone + Send + Serialize + DeserializeOwned + 'static;
    /// What a window emits for its key, made by `finish`.
    type Out: Clone + Send + 'static;
    /// An accumulator that has seen no value: the identity of `merge`.
    fn create(&self) -> Self::Acc;
    /// Folds one value in.
    fn add(&self, acc: &mut Self::Acc, value: &In);
    /// Folds another accumulator in, as if its values had been added here (salted partials,
    /// merged sessions).
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
    /// The result for the values folded into `acc` so far; it leaves `acc` as it was, so a
    /// window can emit early results and keep counting.
    fn finish(&self, acc: &Self::Acc) -> Self::Out;
}
