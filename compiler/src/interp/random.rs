//! Random ops, as pure functions of `(seed, counter, element index)` through
//! [`xenon_runtime::rng`].

use super::InterpError;
use super::element::{tensor, values};
use crate::ir::TensorType;
use xenon_runtime::{DType, Tensor, rng};

type Result<T> = std::result::Result<T, InterpError>;

/// The stream counter: the optional i32 scalar operand, sign-extended to 64 bits and
/// reinterpreted as u64 (`c as i64 as u64`, so `-1` is `u64::MAX`), or 0 without one.
fn counter(operands: &[&Tensor]) -> Result<u64> {
    let c = match operands.first() {
        None => None,
        Some(c) => values::<i32>(c)?.first().copied(),
    };
    Ok(c.map_or(0, |c| c as i64 as u64))
}

/// A float tensor of type `ty` filled by the f32 or f64 sampler.
fn sampled(
    ty: &TensorType,
    fill32: impl FnOnce(&mut [f32]),
    fill64: impl FnOnce(&mut [f64]),
) -> Result<Tensor> {
    match ty.dtype {
        DType::F32 => {
            let mut out = vec![0f32; ty.numel()];
            fill32(&mut out);
            tensor(&ty.shape, out)
        }
        DType::F64 => {
            let mut out = vec![0f64; ty.numel()];
            fill64(&mut out);
            tensor(&ty.shape, out)
        }
        DType::I32 => Err(InterpError::OperandMismatch {
            op: String::new(),
            reason: "random ops produce floating-point tensors only".into(),
        }),
    }
}

/// Uniform samples of type `ty`: element `i` (row-major) is `low + (high − low)·u` with
/// `u = uniform(seed, counter, i)` ([`rng::uniform_f32`](xenon_runtime::rng::uniform_f32)
/// for f32, in f32 arithmetic with the bounds rounded first; f64 likewise).
pub(super) fn uniform(
    seed: u64,
    low: f64,
    high: f64,
    operands: &[&Tensor],
    ty: &TensorType,
) -> Result<Tensor> {
    let c = counter(operands)?;
    sampled(
        ty,
        |o| {
            let (lo, hi) = (low as f32, high as f32);
            for (i, v) in o.iter_mut().enumerate() {
                *v = lo + (hi - lo) * rng::uniform_f32(seed, c, i as u64);
            }
        },
        |o| {
            for (i, v) in o.iter_mut().enumerate() {
                *v = low + (high - low) * rng::uniform_f64(seed, c, i as u64);
            }
        },
    )
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
    sampled(
        ty,
        |o| {
            for (i, v) in o.iter_mut().enumerate() {
                *v = (mean + std * rng::normal_f64(seed, c, i as u64)) as f32;
            }
        },
        |o| {
            for (i, v) in o.iter_mut().enumerate() {
                *v = mean + std * rng::normal_f64(seed, c, i as u64);
            }
        },
    )
}
