//! [`Numeric`]: the number types that [`Sum`](super::Sum) and [`Mean`](super::Mean) accept.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A number type that can be summed and averaged.
///
/// Implemented for every primitive integer and float type. Integer addition wraps on
/// overflow (two's complement), which keeps it associative and commutative, so the result
/// never depends on how the runner groups inputs; this matches Beam's Java `Sum`. Sum into
/// a wider type to avoid overflow. Float addition rounds, so float sums can differ in the
/// last bits between groupings.
///
/// ```
/// use millstream_model::combiners::Numeric;
/// assert_eq!(i8::MAX.plus(1), i8::MIN);
/// assert_eq!(2.5_f32.plus(0.5), 3.0);
/// assert_eq!(7_u64.to_f64(), 7.0);
/// ```
pub trait Numeric: Copy + Send + Sync + Serialize + DeserializeOwned + 'static {
    /// The additive identity.
    const ZERO: Self;
    /// `self + other`, wrapping on integer overflow.
    fn plus(self, other: Self) -> Self;
    /// The nearest `f64` (may round for integers wider than 53 bits).
    fn to_f64(self) -> f64;
}

macro_rules! numeric_int {
    ($($t:ty),*) => {$(
        impl Numeric for $t {
            const ZERO: Self = 0;
            fn plus(self, other: Self) -> Self {
                self.wrapping_add(other)
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}

macro_rules! numeric_float {
    ($($t:ty),*) => {$(
        impl Numeric for $t {
            const ZERO: Self = 0.0;
            fn plus(self, other: Self) -> Self {
                self + other
            }
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
        }
    )*};
}

numeric_int!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);
numeric_float!(f32, f64);

#[cfg(test)]
mod tests {
    use super::Numeric;

    #[test]
    fn integers_wrap_and_convert() {
        assert_eq!(u8::MAX.plus(2), 1);
        assert_eq!(i64::MIN.plus(-1), i64::MAX);
        assert_eq!(u128::ZERO.plus(5), 5);
        assert_eq!((-3_isize).to_f64(), -3.0);
        assert_eq!(u64::MAX.to_f64(), 18_446_744_073_709_551_615.0);
    }

    #[test]
    fn floats_add_and_convert() {
        assert_eq!(f64::ZERO.plus(0.25), 0.25);
        assert_eq!(1.5_f32.to_f64(), 1.5);
    }
}
