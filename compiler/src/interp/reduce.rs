//! Reductions over axes (`sum`, `max`, `mean`) and `argmax`.

use super::InterpError;
use super::element::{Element, tensor, values, with_dtype, with_float};
use super::layout::{offsets, strides};
use crate::ir::{ReduceOp, TensorType};
use xenon_runtime::Tensor;

type Result<T> = std::result::Result<T, InterpError>;

/// Reduces `x` over `axes` into a tensor of type `ty` (which has the kept axes, and size-1
/// axes in place of the reduced ones when `keepdims`; the data is the same either way).
///
/// * `Sum` adds each output's inputs in increasing input index (row-major) order, starting
///   from `+0`; i32 wraps. The order is fixed, so the result is deterministic.
/// * `Max` starts from `-inf` (`i32::MIN`) and is NaN as soon as one input is NaN.
/// * `Mean` is that sum divided by the number of reduced elements (converted to the float
///   dtype).
///
/// Reducing over no axes copies `x`.
pub(super) fn reduce(
    func: ReduceOp,
    axes: &[usize],
    x: &Tensor,
    ty: &TensorType,
) -> Result<Tensor> {
    match func {
        ReduceOp::Sum | ReduceOp::Max => with_dtype!(x.dtype(), T => {
            tensor(&ty.shape, fold::<T>(func, values(x)?, x.shape(), axes))
        }),
        ReduceOp::Mean => with_float!(x.dtype(), T => {
            let sums = fold::<T>(func, values(x)?, x.shape(), axes);
            let count: usize = axes.iter().map(|&a| x.shape()[a]).product();
            let count = count as T;
            tensor(&ty.shape, sums.into_iter().map(|s| s / count).collect())
        }),
    }
}

/// Folds the elements of `xs` (of `shape`) into one accumulator per combination of the
/// kept axes, visiting `xs` in row-major order from [`Element::identity`]:
/// `acc = acc.accumulate(op, x)` (for `mean`, the sum).
fn fold<T: Element>(op: ReduceOp, xs: &[T], shape: &[usize], axes: &[usize]) -> Vec<T> {
    let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
    let kept_shape: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
    let kept_strides = strides(&kept_shape);
    // Where each input axis moves the accumulator index: nowhere along a reduced axis.
    let mut acc_strides = vec![0; shape.len()];
    for (&a, &s) in kept.iter().zip(&kept_strides) {
        acc_strides[a] = s;
    }
    let mut acc = vec![T::identity(op); kept_shape.iter().product()];
    for (&x, o) in xs.iter().zip(offsets(shape, &acc_strides, 0)) {
        acc[o] = acc[o].accumulate(op, x);
    }
    acc
}

/// Index (i32) of the first maximum of `x` along `axis`, as a tensor of type `ty`.
///
/// NaN counts as larger than every number, like in `reduce_max`: if the lane holds a NaN,
/// the result is the index of its first NaN. (`argmax([1, NaN, 5, NaN]) = 1`.)
pub(super) fn argmax(axis: usize, x: &Tensor, ty: &TensorType) -> Result<Tensor> {
    let shape = x.shape();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let len = shape[axis];
    let mut out = vec![0i32; outer * inner];
    with_dtype!(x.dtype(), T => {
        let xs = values::<T>(x)?;
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| xs[(o * len + k) * inner + i];
                // The first NaN, else the first maximum.
                let best = (0..len).find(|&k| at(k).is_nan()).unwrap_or_else(|| {
                    (1..len).fold(0, |b, k| if at(k) > at(b) { k } else { b })
                });
                out[o * inner + i] = best as i32;
            }
        }
    });
    tensor(&ty.shape, out)
}
