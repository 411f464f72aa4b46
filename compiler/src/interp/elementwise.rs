//! Elementwise ops: constants, unary and binary arithmetic, comparisons, select and cast.
//!
//! Operands of these ops have equal shapes (the graph builder inserts `broadcast` nodes),
//! so output element `i` is a function of the operands' elements `i`.

use super::InterpError;
use super::element::{Element, tensor, values, with_dtype, with_float};
use crate::ir::{BinaryOp, CompareOp, Literal, TensorType, UnaryOp};
use num_traits::{One, Zero};
use xenon_runtime::Tensor;
pub(crate) use xenon_runtime::ops::{max_nan, min_nan};

type Result<T> = std::result::Result<T, InterpError>;

/// A constant of type `ty`: one value is a splat, otherwise one value per element in
/// row-major order; values are converted to the dtype like [`Tensor::from_f64_as`]
/// (f32 rounds to nearest, i32 truncates toward zero, saturating, NaN to 0).
pub(super) fn constant(value: &Literal, ty: &TensorType) -> Result<Tensor> {
    let mismatch = |e: xenon_runtime::TensorError| InterpError::OperandMismatch {
        op: String::new(),
        reason: e.to_string(),
    };
    match value.as_splat() {
        Some(v) => Ok(Tensor::full(ty.dtype, ty.shape.clone(), v)),
        None => Tensor::from_f64_as(ty.dtype, ty.shape.clone(), &value.values).map_err(mismatch),
    }
}

/// `f(x)` for every element.
fn map<T: Element>(x: &Tensor, f: impl Fn(T) -> T) -> Result<Tensor> {
    let data = values::<T>(x)?.iter().map(|&v| f(v)).collect();
    tensor(x.shape(), data)
}

/// `f(a, b)` for every pair of elements (equal shapes).
fn map2<T: Element>(a: &Tensor, b: &Tensor, f: impl Fn(T, T) -> T) -> Result<Tensor> {
    let (xs, ys) = (values::<T>(a)?, values::<T>(b)?);
    let data = xs.iter().zip(ys).map(|(&x, &y)| f(x, y)).collect();
    tensor(a.shape(), data)
}

/// `-1`, `0` or `1`; NaN stays NaN and a zero is returned as it is (so `sign(-0.0)` is
/// `-0.0`).
pub(crate) fn sign<T: Element>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        T::one().negated()
    } else {
        x // ±0 or NaN
    }
}

/// A unary op; see [`UnaryOp`]. Neg, Abs and Sign take every dtype (i32 wraps); the rest
/// are floats only and follow the platform's `exp`, `ln`, `sqrt`, `1/x` and `tanh`.
pub(super) fn unary(func: UnaryOp, x: &Tensor) -> Result<Tensor> {
    match func {
        UnaryOp::Neg => with_dtype!(x.dtype(), T => map::<T>(x, T::negated)),
        UnaryOp::Abs => with_dtype!(x.dtype(), T => map::<T>(x, T::magnitude)),
        UnaryOp::Sign => with_dtype!(x.dtype(), T => map::<T>(x, sign)),
        UnaryOp::Exp => with_float!(x.dtype(), T => map::<T>(x, T::exp)),
        UnaryOp::Log => with_float!(x.dtype(), T => map::<T>(x, T::ln)),
        UnaryOp::Sqrt => with_float!(x.dtype(), T => map::<T>(x, T::sqrt)),
        UnaryOp::Recip => with_float!(x.dtype(), T => map::<T>(x, |v| 1.0 / v)),
        UnaryOp::Tanh => with_float!(x.dtype(), T => map::<T>(x, T::tanh)),
    }
}

/// A binary op on operands of equal shape and dtype; see [`BinaryOp`] and [`max_nan`].
pub(super) fn binary(func: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    match func {
        BinaryOp::Add => with_dtype!(a.dtype(), T => map2::<T>(a, b, T::plus)),
        BinaryOp::Sub => with_dtype!(a.dtype(), T => map2::<T>(a, b, T::minus)),
        BinaryOp::Mul => with_dtype!(a.dtype(), T => map2::<T>(a, b, T::times)),
        BinaryOp::Div => with_float!(a.dtype(), T => map2::<T>(a, b, T::divided_by)),
        BinaryOp::Max => with_dtype!(a.dtype(), T => map2::<T>(a, b, max_nan)),
        BinaryOp::Min => with_dtype!(a.dtype(), T => map2::<T>(a, b, min_nan)),
    }
}

/// A comparison: 1 where it holds, 0 elsewhere, in the operands' dtype.
pub(super) fn compare(func: CompareOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    with_dtype!(a.dtype(), T => map2::<T>(a, b, |x, y| {
        if func.holds(x, y) { T::one() } else { T::zero() }
    }))
}

/// `cond ≠ 0 ? a : b` elementwise. `cond` may have any dtype; a NaN condition is not
/// equal to zero, so it picks `a`.
pub(super) fn select(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let picks_a: Vec<bool> = with_dtype!(cond.dtype(), C => values::<C>(cond)?
        .iter()
        .map(|&c| c != C::zero())
        .collect());
    with_dtype!(a.dtype(), T => {
        let (xs, ys) = (values::<T>(a)?, values::<T>(b)?);
        let data = picks_a
            .iter()
            .zip(xs.iter().zip(ys))
            .map(|(&p, (&x, &y))| if p { x } else { y })
            .collect();
        tensor(a.shape(), data)
    })
}
