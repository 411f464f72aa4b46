//! Movement ops: reshape, permute, broadcast, slice, pad and concat. Each output element
//! is a copy of one input element (or the pad value).

use super::InterpError;
use super::element::{Element, tensor, values, with_dtype};
use super::layout::{offsets, read_strided, strides};
use xenon_runtime::Tensor;

type Result<T> = std::result::Result<T, InterpError>;

/// The same elements in the same (row-major) order, with the new shape.
pub(super) fn reshape(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    x.clone()
        .reshaped(shape.to_vec())
        .map_err(|e| InterpError::OperandMismatch {
            op: String::new(),
            reason: e.to_string(),
        })
}

/// Output axis `i` is input axis `perm[i]`: `out[j₀, …] = x[i₀, …]` with `i_{perm[k]} = j_k`.
pub(super) fn permute(x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    let in_strides = strides(x.shape());
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
    let walk: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    with_dtype!(x.dtype(), T => tensor(&shape, read_strided(values::<T>(x)?, &shape, &walk, 0)))
}

/// Numpy broadcasting to `shape`: the input's axes align with the last axes of `shape`;
/// an input axis of size 1 repeats, and missing leading axes repeat the whole input.
pub(super) fn broadcast(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let in_strides = strides(x.shape());
    let lead = shape.len() - x.shape().len();
    let walk: Vec<usize> = (0..shape.len())
        .map(|a| match a.checked_sub(lead) {
            Some(i) if x.shape()[i] != 1 => in_strides[i],
            _ => 0,
        })
        .collect();
    with_dtype!(x.dtype(), T => tensor(shape, read_strided(values::<T>(x)?, shape, &walk, 0)))
}

/// Elements `start, start+step, …` below `end` along every axis; the output shape is
/// `ceil((end − start) / step)` per axis.
pub(super) fn slice(x: &Tensor, start: &[usize], end: &[usize], step: &[usize]) -> Result<Tensor> {
    let in_strides = strides(x.shape());
    let shape: Vec<usize> = (0..start.len())
        .map(|a| (end[a] - start[a]).div_ceil(step[a]))
        .collect();
    let walk: Vec<usize> = (0..start.len()).map(|a| step[a] * in_strides[a]).collect();
    let base: usize = (0..start.len()).map(|a| start[a] * in_strides[a]).sum();
    with_dtype!(x.dtype(), T => tensor(&shape, read_strided(values::<T>(x)?, &shape, &walk, base)))
}

/// Pads each axis with `low` elements before, `high` after and `interior` between
/// neighbours, all equal to `value` converted to the dtype like a constant (f32 rounds;
/// i32 truncates toward zero, saturating, NaN to 0). Input element `i` along an axis lands
/// at `low + i·(interior + 1)`.
pub(super) fn pad(
    x: &Tensor,
    low: &[usize],
    high: &[usize],
    interior: &[usize],
    value: f64,
) -> Result<Tensor> {
    let rank = x.shape().len();
    let shape: Vec<usize> = (0..rank)
        .map(|a| low[a] + high[a] + x.shape()[a] + (x.shape()[a] - 1) * interior[a])
        .collect();
    let out_strides = strides(&shape);
    let walk: Vec<usize> = (0..rank)
        .map(|a| (interior[a] + 1) * out_strides[a])
        .collect();
    let base: usize = (0..rank).map(|a| low[a] * out_strides[a]).sum();
    with_dtype!(x.dtype(), T => {
        let mut out = vec![T::from_f64(value); shape.iter().product()];
        for (&v, o) in values::<T>(x)?.iter().zip(offsets(x.shape(), &walk, base)) {
            out[o] = v;
        }
        tensor(&shape, out)
    })
}

/// Joins the operands along `axis`, in operand order.
pub(super) fn concat(xs: &[&Tensor], axis: usize) -> Result<Tensor> {
    let first = xs[0];
    let mut shape = first.shape().to_vec();
    shape[axis] = xs.iter().map(|x| x.shape()[axis]).sum();
    // Every operand is `outer` blocks of `shape[axis]·inner` contiguous elements; the
    // output interleaves them block by block.
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    with_dtype!(first.dtype(), T => {
        let parts = xs.iter().map(|x| values::<T>(x)).collect::<Result<Vec<&[T]>>>()?;
        let mut out = Vec::with_capacity(shape.iter().product());
        for o in 0..outer {
            for (x, part) in xs.iter().zip(&parts) {
                let block = x.shape()[axis] * inner;
                out.extend_from_slice(&part[o * block..(o + 1) * block]);
            }
        }
        tensor(&shape, out)
    })
}
