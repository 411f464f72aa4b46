//! The element types the kernels are generic over, and the glue between typed slices and
//! [`Tensor`]s.
//!
//! [`Element`] is implemented by `f32`, `f64` and `i32` and carries the arithmetic whose
//! meaning differs between integers and floats (i32 `+ − ×`, negation and `abs` wrap);
//! [`FloatElement`] adds `num_traits::Float`.

use super::InterpError;
use num_traits::{Float, NumCast, One, Zero};
use std::fmt::Debug;
use xenon_runtime::{DType, Tensor, TensorData};

/// An element type of a tensor: `f32`, `f64` or `i32`.
pub(crate) trait Element:
    Copy + PartialOrd + Debug + Zero + One + NumCast + Send + Sync + 'static
{
    /// The dtype of tensors holding this type.
    const DTYPE: DType;
    /// The smallest value (`-inf` for floats, `i32::MIN`): the identity of `max`.
    const LOWEST: Self;

    /// The elements of `t`, if `t` has this dtype.
    fn slice(t: &Tensor) -> Option<&[Self]>;
    /// Wraps elements in a tensor (the caller guarantees `data.len() == ∏ shape`).
    fn storage(data: Vec<Self>) -> TensorData;
    /// Converts an f64 attribute or literal with the rules of [`Tensor::from_f64_as`]
    /// (f32 rounds to nearest; i32 truncates toward zero, saturating, NaN to 0).
    fn from_f64(v: f64) -> Self;

    /// `a + b` (i32 wraps).
    fn plus(self, b: Self) -> Self;
    /// `a − b` (i32 wraps).
    fn minus(self, b: Self) -> Self;
    /// `a · b` (i32 wraps).
    fn times(self, b: Self) -> Self;
    /// `a / b`. Floats: IEEE division. i32 (which the IR never divides; this only keeps
    /// the kernels total): truncating, wrapping, and 0 for a zero divisor.
    fn divided_by(self, b: Self) -> Self;
    /// `−a` (i32 wraps at `i32::MIN`).
    fn negated(self) -> Self;
    /// `|a|` (i32 wraps at `i32::MIN`).
    fn magnitude(self) -> Self;
}

/// A floating-point element type.
pub(crate) trait FloatElement: Element + Float {}

macro_rules! float_element {
    ($t:ty, $variant:ident, $dtype:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$dtype;
            const LOWEST: Self = <$t>::NEG_INFINITY;
            fn slice(t: &Tensor) -> Option<&[Self]> {
                match t.data() {
                    TensorData::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn storage(data: Vec<Self>) -> TensorData {
                TensorData::$variant(data)
            }
            fn from_f64(v: f64) -> Self {
                v as $t
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
        }

        impl FloatElement for $t {}
    };
}

float_element!(f32, F32, F32);
float_element!(f64, F64, F64);

impl Element for i32 {
    const DTYPE: DType = DType::I32;
    const LOWEST: Self = i32::MIN;
    fn slice(t: &Tensor) -> Option<&[Self]> {
        t.as_i32()
    }
    fn storage(data: Vec<Self>) -> TensorData {
        TensorData::I32(data)
    }
    fn from_f64(v: f64) -> Self {
        v as i32
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
}

/// The elements of operand `t` as `T`, or an [`InterpError::OperandMismatch`] when its
/// dtype is another (the op name is filled in by [`super::eval_op`]).
pub(crate) fn values<T: Element>(t: &Tensor) -> Result<&[T], InterpError> {
    T::slice(t).ok_or_else(|| InterpError::OperandMismatch {
        op: String::new(),
        reason: format!("expected an {} operand, got {}", T::DTYPE, t.dtype()),
    })
}

/// A tensor of `shape` holding `data`, or an [`InterpError::OperandMismatch`] when the
/// element count does not fit (which the type check before every kernel rules out).
pub(crate) fn tensor<T: Element>(shape: &[usize], data: Vec<T>) -> Result<Tensor, InterpError> {
    Tensor::new(shape.to_vec(), T::storage(data)).map_err(|e| InterpError::OperandMismatch {
        op: String::new(),
        reason: e.to_string(),
    })
}

/// Runs `$body` with the type alias `$T` bound to the Rust type of `$dtype`.
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            ::xenon_runtime::DType::F32 => {
                type $T = f32;
                $body
            }
            ::xenon_runtime::DType::F64 => {
                type $T = f64;
                $body
            }
            ::xenon_runtime::DType::I32 => {
                type $T = i32;
                $body
            }
        }
    };
}

/// Runs `$body` with `$T` bound to the float type of `$dtype`; an i32 dtype (which the
/// type check rules out for float-only ops) gives an operand-mismatch error.
macro_rules! with_float {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            ::xenon_runtime::DType::F32 => {
                type $T = f32;
                $body
            }
            ::xenon_runtime::DType::F64 => {
                type $T = f64;
                $body
            }
            ::xenon_runtime::DType::I32 => Err($crate::interp::InterpError::OperandMismatch {
                op: String::new(),
                reason: "the op is defined for floating-point operands only, got i32".into(),
            }),
        }
    };
}

pub(crate) use {with_dtype, with_float};
