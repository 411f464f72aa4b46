//! Elementwise ops: constants, unary and binary arithmetic, comparisons, select and cast.
//!
//! Operands of these ops have equal shapes (the graph builder inserts `broadcast` nodes),
//! so output element `i` is a function of the operands' elements `i`.

use super::InterpError;
use super::element::{Element, float_only, tensor, values, with_dtype};
use crate::ir::{BinaryOp, CompareOp, Literal, TensorType, UnaryOp};
use xenon_runtime::{DType, Tensor};

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

/// `f(x)` for every element; a float-only op (`f` gives `None`) on i32 is an error.
fn map<T: Element>(x: &Tensor, f: impl Fn(T) -> Option<T>) -> Result<Tensor> {
    let data = values::<T>(x)?.iter().map(|&v| f(v)).collect::<Option<_>>();
    tensor(x.shape(), data.ok_or_else(float_only)?)
}

/// `f(a, b)` for every pair of elements (equal shapes); a float-only op (`f` gives
/// `None`) on i32 is an error.
fn map2<T: Element>(a: &Tensor, b: &Tensor, f: impl Fn(T, T) -> Option<T>) -> Result<Tensor> {
    let (xs, ys) = (values::<T>(a)?, values::<T>(b)?);
    let data = xs
        .iter()
        .zip(ys)
        .map(|(&x, &y)| f(x, y))
        .collect::<Option<_>>();
    tensor(a.shape(), data.ok_or_else(float_only)?)
}

/// An error when a float-only op meets an i32 operand, even an empty one.
fn check_dtype(float_only_op: bool, dtype: DType) -> Result<()> {
    if float_only_op && !dtype.is_float() {
        return Err(float_only());
    }
    Ok(())
}

/// A unary op; see [`UnaryOp`] and [`Element::unary`]. Neg, Abs and Sign take every dtype
/// (i32 wraps); the rest are floats only and follow the platform's `exp`, `ln`, `sqrt`,
/// `1/x` and `tanh`.
pub(super) fn unary(func: UnaryOp, x: &Tensor) -> Result<Tensor> {
    check_dtype(func.float_only(), x.dtype())?;
    with_dtype!(x.dtype(), T => map::<T>(x, |v| v.unary(func)))
}

/// A binary op on operands of equal shape and dtype; see [`BinaryOp`] and
/// [`Element::binary`] (`div` is floats only).
pub(super) fn binary(func: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    check_dtype(func.float_only(), a.dtype())?;
    with_dtype!(a.dtype(), T => map2::<T>(a, b, |x, y| x.binary(func, y)))
}

/// A comparison: 1 where it holds, 0 elsewhere, in the operands' dtype
/// ([`Element::compare`]).
pub(super) fn compare(func: CompareOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    with_dtype!(a.dtype(), T => map2::<T>(a, b, |x, y| Some(x.compare(func, y))))
}

/// `cond ≠ 0 ? a : b` elementwise. `cond` may have any dtype; a NaN condition is not
/// equal to zero, so it picks `a`.
pub(super) fn select(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let picks_a: Vec<bool> = with_dtype!(cond.dtype(), C => values::<C>(cond)?
        .iter()
        .map(|&c| c.is_nonzero())
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
