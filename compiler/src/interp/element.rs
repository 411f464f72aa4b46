//! The element types the kernels are generic over, and the glue between typed slices and
//! [`Tensor`]s.
//!
//! [`Element`] is the runtime's [`xenon_runtime::element::Element`], implemented by `f32`,
//! `f64` and `i32`: the one definition of every scalar op's meaning (i32 `+ − ×`, negation
//! and `abs` wrap; max/min propagate NaN; casts and f64 conversions), which the runtime's
//! kernel evaluator and library routines share.

use super::InterpError;
use xenon_runtime::Tensor;
pub(crate) use xenon_runtime::element::Element;
pub(crate) use xenon_runtime::with_dtype;

/// The elements of operand `t` as `T`, or an [`InterpError::OperandMismatch`] when its
/// dtype is another (the op name is filled in by [`super::eval_op`]).
pub(crate) fn values<T: Element>(t: &Tensor) -> Result<&[T], InterpError> {
    T::slice(t.data()).ok_or_else(|| InterpError::OperandMismatch {
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

/// The error for a float-only op given an i32 operand (which the type check rules out).
pub(crate) fn float_only() -> InterpError {
    InterpError::OperandMismatch {
        op: String::new(),
        reason: "the op is defined for floating-point operands only, got i32".into(),
    }
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
            ::xenon_runtime::DType::I32 => Err($crate::interp::element::float_only()),
        }
    };
}

pub(crate) use with_float;
