//! The number types that [`sum`](super::sum) and [`avg`](super::avg) accept.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

mod sealed {
    pub trait Sealed {}
}

/// A number that sums without silent wrap-around.
///
/// Implemented for `i32`, `i64`, `u32`, `u64`, `f32` and `f64`; sealed, so the set is closed.
/// Integers accumulate in a 128-bit integer ([`Numeric::Wide`]), which cannot overflow before
/// 2^64 additions of the largest value, and [`Numeric::narrow`] saturates the total to the
/// type's range: a sum of `i64`s that does not fit an `i64` finishes as `i64::MAX` (or
/// `i64::MIN`), never as a wrapped value. Floats accumulate in an `f64`.
pub trait Numeric: sealed::Sealed + Copy + Send + Sync + 'static {
    /// The accumulator: `i128` for signed integers, `u128` for unsigned, `f64` for floats.
    type Wide: Copy + Default + PartialEq + Debug + Send + Sync + Serialize + DeserializeOwned;
    /// Widens the value into its accumulator type, without loss.
    fn widen(self) -> Self::Wide;
    /// The sum of two accumulators; integers saturate at the 128-bit bounds.
    fn wide_add(a: Self::Wide, b: Self::Wide) -> Self::Wide;
    /// An accumulator as a value, saturating to the type's range.
    fn narrow(wide: Self::Wide) -> Self;
    /// The value as an `f64` (rounded past 2^53).
    fn to_f64(self) -> f64;
}

macro_rules! integer {
    ($($t:ty => $wide:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Numeric for $t {
            type Wide = $wide;
            #[inline]
            fn widen(self) -> $wide {
                <$wide>::from(self)
            }
            #[inline]
            fn wide_add(a: $wide, b: $wide) -> $wide {
                a.saturating_add(b)
            }
            #[inline]
            fn narrow(wide: $wide) -> $t {
                // Out of range means past one end; the sign says which.
                let past_max = wide > <$wide>::default();
                <$t>::try_from(wide).unwrap_or(if past_max { <$t>::MAX } else { <$t>::MIN })
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}

integer!(i32 => i128, i64 => i128, u32 => u128, u64 => u128);

macro_rules! float {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Numeric for $t {
            type Wide = f64;
            #[inline]
            fn widen(self) -> f64 {
                f64::from(self)
            }
            #[inline]
            fn wide_add(a: f64, b: f64) -> f64 {
                a + b
            }
            #[inline]
            fn narrow(wide: f64) -> $t {
                wide as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
        }
    )*};
}

float!(f32, f64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_saturate_instead_of_wrapping() {
        let big = i64::widen(i64::MAX);
        assert_eq!(i64::narrow(i64::wide_add(big, big)), i64::MAX);
        let small = i64::widen(i64::MIN);
        assert_eq!(i64::narrow(i64::wide_add(small, small)), i64::MIN);
        assert_eq!(
            u32::narrow(u32::wide_add(u32::widen(u32::MAX), 1)),
            u32::MAX
        );
        assert_eq!(i128::MAX.saturating_add(1), i64::wide_add(i128::MAX, 1));
    }

    #[test]
    fn in_range_totals_are_exact() {
        assert_eq!(
            i32::narrow(i32::wide_add(i32::widen(-5), i32::widen(3))),
            -2
        );
        assert_eq!(f32::narrow(f32::wide_add(f32::widen(1.5), 2.25)), 3.75);
    }
}
