//! The meaning of every primitive scalar operation of the IR, written once.
//!
//! [`Element`] is implemented by the three element types (`f32`, `f64`, `i32`). Its
//! methods are *the* definition of the IR's scalar semantics: the unary, binary and
//! comparison ops ([`UnaryOp`], [`BinaryOp`], [`CompareOp`]), casts and the conversion of
//! f64 attributes, the identities and steps of the reductions ([`ReduceOp`]), NaN tests and
//! the i32 wrap rules. Everything that computes with scalars builds on it: the runtime's
//! [`Scalar`] (the reference kernel evaluator), the host
//! [`library`](crate::library) routines, [`Tensor::cast`](crate::Tensor::cast) and the
//! compiler's reference interpreter.
//!
//! The rules:
//!
//! * **i32 wraps.** `+ − ×`, negation and `abs` are two's-complement wrapping
//!   (`-i32::MIN = i32::MIN`, `|i32::MIN| = i32::MIN`).
//! * **Float-only ops.** The ops whose `float_only()` is true (`exp`, `log`, `sqrt`, `recip`,
//!   `tanh`, `div`) have no i32 meaning: [`Element::unary`] and [`Element::binary`] give
//!   `None` for them on i32.
//! * **Division.** [`Element::divided_by`] is total so that generic code has a division for
//!   every type: IEEE division for floats; for i32 (which the IR never divides, see above)
//!   truncating toward zero, wrapping (`i32::MIN / -1 = i32::MIN`), and 0 for a zero
//!   divisor.
//! * **Max and min** are NaN if either operand is NaN and return the first operand when the
//!   two compare equal (`max(-0.0, 0.0) = -0.0`); see [`max_nan`].
//! * **Sign** is `-1`, `0` or `1`; a zero is returned as it is (`sign(-0.0) = -0.0`) and
//!   NaN stays NaN.
//! * **Comparisons** give 1 where they hold and 0 elsewhere, in the operands' type; every
//!   comparison with NaN is false except `ne`.
//! * **Conversions.** [`Element::from_f64`]: f32 rounds to nearest (ties to even), i32
//!   truncates toward zero, saturating, NaN to 0. [`Element::to_f64`] is exact for all three
//!   types, so a cast ([`Element::cast`]) is `from_f64(to_f64(x))`: f32→f64 exact, f64→f32
//!   rounded once, float→i32 truncated toward zero (saturating, NaN→0), i32→float rounded to
//!   nearest.
//! * **Reductions** start from [`Element::identity`] (`+0` for sums, `-inf` or `i32::MIN`
//!   for max) and fold with [`Element::accumulate`].

use crate::DType;
use crate::ops::{BinaryOp, CompareOp, ReduceOp, Scalar, UnaryOp};
use crate::tensor::TensorData;
use std::fmt::Debug;

/// The larger operand; NaN if either is NaN; the first when they compare equal (so
/// `max(-0.0, 0.0)` is `-0.0`). The meaning of `BinaryOp::Max` in every backend.
pub fn max_nan<T: PartialOrd + Copy>(a: T, b: T) -> T {
    if is_nan(a) || (!is_nan(b) && a >= b) {
        a
    } else {
        b
    }
}

/// The smaller operand; NaN if either is NaN; the first when they compare equal.
pub fn min_nan<T: PartialOrd + Copy>(a: T, b: T) -> T {
    if is_nan(a) || (!is_nan(b) && a <= b) {
        a
    } else {
        b
    }
}

/// True when `x` is unordered with itself (a NaN).
fn is_nan<T: PartialOrd>(x: T) -> bool {
    x.partial_cmp(&x).is_none()
}

/// An element type of tensors and kernels: `f32`, `f64` or `i32`. See the
/// [module docs](self) for the rules the methods define.
pub trait Element: Copy + PartialOrd + Debug + Send + Sync + 'static {
    /// The dtype of tensors holding this type.
    const DTYPE: DType;
    /// Zero (`+0` for floats): the identity of sums.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// The smallest value (`-inf` for floats, `i32::MIN`): the identity of `max`.
    const LOWEST: Self;

    /// Converts an f64 value, attribute or literal (f32 rounds to nearest; i32 truncates
    /// toward zero, saturating, NaN to 0).
    fn from_f64(v: f64) -> Self;
    /// Widened to f64 (exact for all three types).
    fn to_f64(self) -> f64;
    /// The value as a [`Scalar`].
    fn scalar(self) -> Scalar;
    /// The elements of `data`, if it holds this type.
    fn slice(data: &TensorData) -> Option<&[Self]>;
    /// Wraps elements in tensor storage.
    fn storage(data: Vec<Self>) -> TensorData;

    /// `a + b` (i32 wraps).
    fn plus(self, b: Self) -> Self;
    /// `a − b` (i32 wraps).
    fn minus(self, b: Self) -> Self;
    /// `a · b` (i32 wraps).
    fn times(self, b: Self) -> Self;
    /// `a / b`: IEEE division for floats; for i32 truncating, wrapping, and 0 for a zero
    /// divisor (the IR's `div` is float-only; this only keeps generic code total).
    fn divided_by(self, b: Self) -> Self;
    /// `−a` (i32 wraps at `i32::MIN`).
    fn negated(self) -> Self;
    /// `|a|` (i32 wraps at `i32::MIN`).
    fn magnitude(self) -> Self;
    /// A float-only unary op (`exp`, `log`, `sqrt`, `recip`, `tanh`) with the platform's
    /// `exp`, `ln`, `sqrt`, `1/x` and `tanh`; `None` for i32 and for the ops defined for
    /// every type (use [`Element::unary`]).
    fn float_unary(self, func: UnaryOp) -> Option<Self>;

    /// True for NaN (never for i32).
    fn is_nan(self) -> bool {
        is_nan(self)
    }

    /// True when the value is not zero (NaN is not zero; `-0.0` is).
    fn is_nonzero(self) -> bool {
        self != Self::ZERO
    }

    /// `-1`, `0` or `1`; a zero is returned as it is (`sign(-0.0) = -0.0`), NaN stays NaN.
    fn sign(self) -> Self {
        if self > Self::ZERO {
            Self::ONE
        } else if self < Self::ZERO {
            Self::ONE.negated()
        } else {
            self // ±0 or NaN
        }
    }

    /// Converted to `U` (see the [module docs](self): exact widening to f64, then
    /// [`Element::from_f64`]).
    fn cast<U: Element>(self) -> U {
        U::from_f64(self.to_f64())
    }

    /// `func(self)`, or `None` for a float-only op on i32.
    fn unary(self, func: UnaryOp) -> Option<Self> {
        match func {
            UnaryOp::Neg => Some(self.negated()),
            UnaryOp::Abs => Some(self.magnitude()),
            UnaryOp::Sign => Some(self.sign()),
            UnaryOp::Exp | UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip | UnaryOp::Tanh => {
                self.float_unary(func)
            }
        }
    }

    /// `func(self, b)`, or `None` for a float-only op (`div`) on i32.
    fn binary(self, func: BinaryOp, b: Self) -> Option<Self> {
        if func.float_only() && !Self::DTYPE.is_float() {
            return None;
        }
        Some(match func {
            BinaryOp::Add => self.plus(b),
            BinaryOp::Sub => self.minus(b),
            BinaryOp::Mul => self.times(b),
            BinaryOp::Div => self.divided_by(b),
            BinaryOp::Max => max_nan(self, b),
            BinaryOp::Min => min_nan(self, b),
        })
    }

    /// 1 where `self ∘ b` holds, else 0.
    fn compare(self, func: CompareOp, b: Self) -> Self {
        if func.holds(self, b) {
            Self::ONE
        } else {
            Self::ZERO
        }
    }

    /// The value a reduction starts from: `+0` for `sum` and `mean` (whose division is the
    /// caller's), [`Element::LOWEST`] for `max`.
    fn identity(op: ReduceOp) -> Self {
        match op {
            ReduceOp::Sum | ReduceOp::Mean => Self::ZERO,
            ReduceOp::Max => Self::LOWEST,
        }
    }

    /// One step of a reduction: `acc + x` for `sum` and `mean`, `max_nan(acc, x)` for `max`.
    fn accumulate(self, op: ReduceOp, x: Self) -> Self {
        match op {
            ReduceOp::Sum | ReduceOp::Mean => self.plus(x),
            ReduceOp::Max => max_nan(self, x),
        }
    }
}

macro_rules! float_element {
    ($t:ident, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const LOWEST: Self = $t::NEG_INFINITY;
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn scalar(self) -> Scalar {
                Scalar::$variant(self)
            }
            fn slice(data: &TensorData) -> Option<&[Self]> {
                match data {
                    TensorData::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn storage(data: Vec<Self>) -> TensorData {
                TensorData::$variant(data)
            }
            fn plus(self, b: Self) -> Self {
                self + b
            }
            fn minus(self, b: Self) -> Self {
                self - b
            }
            fn times(self, b: Self) -> Self {
                self * b
            }
            fn divided_by(self, b: Self) -> Self {
                self / b
            }
            fn negated(self) -> Self {
                -self
            }
            fn magnitude(self) -> Self {
                self.abs()
            }
            fn float_unary(self, func: UnaryOp) -> Option<Self> {
                match func {
                    UnaryOp::Exp => Some(self.exp()),
                    UnaryOp::Log => Some(self.ln()),
                    UnaryOp::Sqrt => Some(self.sqrt()),
                    UnaryOp::Recip => Some(1.0 / self),
                    UnaryOp::Tanh => Some(self.tanh()),
                    UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign => None,
                }
            }
        }
    };
}

float_element!(f32, F32);
float_element!(f64, F64);

impl Element for i32 {
    const DTYPE: DType = DType::I32;
    const ZERO: Self = 0;
    const ONE: Self = 1;
    const LOWEST: Self = i32::MIN;
    fn from_f64(v: f64) -> Self {
        v as i32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn scalar(self) -> Scalar {
        Scalar::I32(self)
    }
    fn slice(data: &TensorData) -> Option<&[Self]> {
        match data {
            TensorData::I32(v) => Some(v),
            _ => None,
        }
    }
    fn storage(data: Vec<Self>) -> TensorData {
        TensorData::I32(data)
    }
    fn plus(self, b: Self) -> Self {
        self.wrapping_add(b)
    }
    fn minus(self, b: Self) -> Self {
        self.wrapping_sub(b)
    }
    fn times(self, b: Self) -> Self {
        self.wrapping_mul(b)
    }
    fn divided_by(self, b: Self) -> Self {
        if b == 0 { 0 } else { self.wrapping_div(b) }
    }
    fn negated(self) -> Self {
        self.wrapping_neg()
    }
    fn magnitude(self) -> Self {
        self.wrapping_abs()
    }
    fn float_unary(self, _func: UnaryOp) -> Option<Self> {
        None
    }
}

/// Runs `$body` with the type alias `$T` bound to the Rust type of `$dtype` (a
/// [`DType`](crate::DType)).
///
/// ```
/// use xenon_runtime::{DType, element::Element, with_dtype};
/// let one = with_dtype!(DType::I32, T => T::ONE.to_f64());
/// assert_eq!(one, 1.0);
/// ```
#[macro_export]
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::DType::I32 => {
                type $T = i32;
                $body
            }
        }
    };
}

/// `xs` cast element by element to `to` (see [`Element::cast`]).
pub fn cast_slice<T: Element>(xs: &[T], to: DType) -> TensorData {
    with_dtype!(to, U => U::storage(xs.iter().map(|&x| x.cast::<U>()).collect()))
}

#[cfg(test)]
mod tests {
    //! The rules of the module docs, value by value (every expected value written out).
    use super::*;

    /// Bitwise equality, so that `-0.0 ≠ +0.0` and NaN equals NaN.
    fn same<T: Element>(a: T, b: T) -> bool {
        a.to_f64().to_bits() == b.to_f64().to_bits()
    }

    #[test]
    fn i32_wraps_and_has_no_float_ops() {
        let (min, max) = (i32::MIN, i32::MAX);
        assert_eq!(min.unary(UnaryOp::Neg), Some(min));
        assert_eq!(min.unary(UnaryOp::Abs), Some(min));
        assert_eq!(max.binary(BinaryOp::Add, 1), Some(min));
        assert_eq!(min.binary(BinaryOp::Sub, 1), Some(max));
        assert_eq!(max.binary(BinaryOp::Mul, 2), Some(-2));
        assert_eq!((-7).unary(UnaryOp::Sign), Some(-1));
        assert_eq!(0.unary(UnaryOp::Sign), Some(0));
        for func in UnaryOp::ALL.into_iter().filter(|f| f.float_only()) {
            assert_eq!(3.unary(func), None, "{func:?}");
        }
        assert_eq!(6.binary(BinaryOp::Div, 3), None);
        // The total division generic code may use: truncating, wrapping, 0 for 0.
        assert_eq!((-7).divided_by(2), -3);
        assert_eq!(min.divided_by(-1), min);
        assert_eq!(5.divided_by(0), 0);
    }

    #[test]
    fn max_min_and_sign_keep_nan_and_zero_signs() {
        let nan = f64::NAN;
        for (a, b) in [(nan, 1.0), (1.0, nan), (nan, nan)] {
            assert!(a.binary(BinaryOp::Max, b).unwrap().is_nan());
            assert!(a.binary(BinaryOp::Min, b).unwrap().is_nan());
        }
        assert!(same((-0.0f32).binary(BinaryOp::Max, 0.0).unwrap(), -0.0));
        assert!(same(0.0f32.binary(BinaryOp::Min, -0.0).unwrap(), 0.0));
        assert_eq!((-2.0f64).binary(BinaryOp::Max, 3.0), Some(3.0));
        assert!(same((-0.0f64).unary(UnaryOp::Sign).unwrap(), -0.0));
        assert!(nan.unary(UnaryOp::Sign).unwrap().is_nan());
        assert_eq!(f32::NEG_INFINITY.unary(UnaryOp::Sign), Some(-1.0));
        assert_eq!(0.0f64.unary(UnaryOp::Recip), Some(f64::INFINITY));
        assert_eq!(0.0f32.unary(UnaryOp::Log), Some(f32::NEG_INFINITY));
        assert!((-1.0f64).unary(UnaryOp::Sqrt).unwrap().is_nan());
    }

    #[test]
    fn comparisons_with_nan_are_false_except_ne() {
        for func in CompareOp::ALL {
            let expected = if func == CompareOp::Ne { 1.0 } else { 0.0 };
            assert_eq!(f32::NAN.compare(func, 1.0), expected, "{func:?}");
        }
        assert_eq!(2.compare(CompareOp::Ge, 2), 1);
        assert_eq!((-0.0f64).compare(CompareOp::Eq, 0.0), 1.0);
    }

    #[test]
    fn casts_follow_the_one_rule() {
        assert_eq!(f64::NAN.cast::<i32>(), 0);
        assert_eq!(1e10f64.cast::<i32>(), i32::MAX);
        assert_eq!(f32::NEG_INFINITY.cast::<i32>(), i32::MIN);
        assert_eq!((-2.7f32).cast::<i32>(), -2);
        assert_eq!(16_777_217i32.cast::<f32>(), 16_777_216.0); // nearest, ties to even
        assert_eq!(0.1f32.cast::<f64>(), 0.1f32 as f64); // exact
        // Rounded once, directly: 1 + 2^-24 + 2^-40 is just above the f32 midpoint.
        let v = 1.0 + 2f64.powi(-24) + 2f64.powi(-40);
        assert_eq!(v.cast::<f32>(), 1.0 + 2f32.powi(-23));
        assert_eq!(i32::from_f64(-0.9), 0);
        assert!(same(f64::from_f64(-0.0), -0.0));
    }

    #[test]
    fn reductions_start_from_their_identity() {
        assert!(same(
            f32::identity(ReduceOp::Sum).accumulate(ReduceOp::Sum, -0.0),
            0.0
        ));
        assert_eq!(i32::identity(ReduceOp::Max), i32::MIN);
        assert_eq!(
            f64::identity(ReduceOp::Max).accumulate(ReduceOp::Max, -1e300),
            -1e300
        );
        assert!(1.0f64.accumulate(ReduceOp::Max, f64::NAN).is_nan());
        assert_eq!(i32::MAX.accumulate(ReduceOp::Sum, 1), i32::MIN);
    }

    #[test]
    fn scalar_dispatches_to_the_element_and_keeps_its_none_cases() {
        let (a, b) = (Scalar::F32(1.5), Scalar::F32(-2.0));
        assert_eq!(a.binary(BinaryOp::Mul, b), Some(Scalar::F32(-3.0)));
        assert_eq!(a.binary(BinaryOp::Add, Scalar::F64(1.0)), None);
        assert_eq!(a.compare(CompareOp::Lt, Scalar::I32(1)), None);
        assert_eq!(Scalar::I32(4).binary(BinaryOp::Div, Scalar::I32(2)), None);
        assert_eq!(Scalar::I32(4).unary(UnaryOp::Exp), None);
        assert_eq!(a.compare(CompareOp::Gt, b), Some(Scalar::F32(1.0)));
        assert_eq!(Scalar::F64(f64::NAN).cast(DType::I32), Scalar::I32(0));
        assert_eq!(Scalar::I32(-3).cast(DType::F64), Scalar::F64(-3.0));
        assert_eq!(Scalar::from_f64(DType::I32, 2.9), Scalar::I32(2));
        assert_eq!(
            Scalar::identity(ReduceOp::Max, DType::F32),
            Scalar::F32(f32::NEG_INFINITY)
        );
        assert_eq!(Scalar::F64(2.5).get::<i32>(), 2);
        assert!(Scalar::F32(f32::NAN).is_nonzero());
        assert!(!Scalar::F64(-0.0).is_nonzero());
    }
}
