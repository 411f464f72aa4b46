//! Random ops, as pure functions of `(seed, counter, element index)` through
//! [`xenon_runtime::rng`].

use super::InterpError;
use super::element::{Element, FloatElement, tensor, values, with_float};
use crate::ir::TensorType;
use xenon_runtime::{Tensor, rng};

type Result<T> = std::result::Result<T, InterpError>;

/// The stream counter: the optional i32 scalar operand, sign-extended to 64 bits and
/// reinterpreted as u64 (`c as i64 as u64`, so `-1` is `u64::MAX`), or 0 without one.
fn counter(operands: &[&Tensor]) -> Result<u64> {
    match operands.first() {
        None => Ok(0),
        Some(c) => {
            let c = values::<i32>(c)?;
            Ok(c.first().map_or(0, |&c| c as i64 as u64))
        }
    }
}

/// Uniform samples of type `ty`: element `i` (row-major) is `low + (high − low)·u` with
/// `u = uniform(seed, counter, i)` ([`rng::uniform_f32`] for f32, [`rng::uniform_f64`] for
/// f64). `low` and `high` are first rounded to the dtype and the arithmetic is done in it.
pub(super) fn uniform(
    seed: u64,
    low: f64,
    high: f64,
    operands: &[&Tensor],
    ty: &TensorType,
) -> Result<Tensor> {
    let c = counter(operands)?;
    with_float!(ty.dtype, T => {
        let (lo, hi) = (T::from_f64(low), T::from_f64(high));
        let data = (0..ty.numel() as u64)
            .map(|i| lo + (hi - lo) * T::uniform(seed, c, i))
            .collect();
        tensor(&ty.shape, data)
    })
}

/// Normal samples of type `ty`: element `i` is `mean + std·z` with
/// `z = rng::normal_f64(seed, counter, i)`, computed in f64 and then rounded to the dtype.
pub(super) fn normal(
    seed: u64,
    mean: f64,
    std: f64,
    operands: &[&Tensor],
    ty: &TensorType,
) -> Result<Tensor> {
    let c = counter(operands)?;
    with_float!(ty.dtype, T => {
        let data = (0..ty.numel() as u64)
            .map(|i| normal_sample::<T>(seed, c, i, mean, std))
            .collect();
        tensor(&ty.shape, data)
    })
}

fn normal_sample<T: FloatElement>(seed: u64, counter: u64, i: u64, mean: f64, std: f64) -> T {
    T::from_f64(mean + std * rng::normal_f64(seed, counter, i))
}
