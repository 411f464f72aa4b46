//! Indexed row access: `gather` and its adjoint `scatter_add`.

use super::InterpError;
use super::element::{Element, tensor, values, with_dtype};
use crate::ir::TensorType;
use num_traits::Zero;
use xenon_runtime::Tensor;

type Result<T> = std::result::Result<T, InterpError>;

/// The row number of index `i` (at flat `position` in the index tensor), or an
/// [`InterpError::IndexOutOfRange`] unless `0 ≤ i < rows`.
fn row(op: &str, position: usize, i: i32, rows: usize) -> Result<usize> {
    usize::try_from(i)
        .ok()
        .filter(|&r| r < rows)
        .ok_or_else(|| InterpError::IndexOutOfRange {
            op: op.to_string(),
            position,
            index: i,
            rows,
        })
}

/// Rows of `data` (`rows × rest…`) picked by `indices` (i32, any shape): output
/// `[j…, rest…] = data[indices[j…], rest…]`, of type `ty`. An index outside `0..rows` is
/// an error (no clamping or wrapping).
pub(super) fn gather(data: &Tensor, indices: &Tensor, ty: &TensorType) -> Result<Tensor> {
    let rows = data.shape()[0];
    let width: usize = data.shape()[1..].iter().product();
    let idx = values::<i32>(indices)?;
    with_dtype!(data.dtype(), T => {
        let xs = values::<T>(data)?;
        let mut out = Vec::with_capacity(idx.len() * width);
        for (position, &i) in idx.iter().enumerate() {
            let r = row("gather", position, i, rows)?;
            out.extend_from_slice(&xs[r * width..(r + 1) * width]);
        }
        tensor(&ty.shape, out)
    })
}

/// A zero tensor of type `ty` (`rows × rest…`) to which update row `j` (`updates` is
/// `indices.shape ++ rest`) is added at row `indices[j]`, in increasing `j` (i32 wraps).
/// Repeated indices accumulate; an index outside `0..rows` is an error.
pub(super) fn scatter_add(updates: &Tensor, indices: &Tensor, ty: &TensorType) -> Result<Tensor> {
    let rows = ty.shape[0];
    let width: usize = ty.shape[1..].iter().product();
    let idx = values::<i32>(indices)?;
    with_dtype!(updates.dtype(), T => {
        let ups = values::<T>(updates)?;
        let mut out = vec![T::zero(); rows * width];
        for (position, (&i, update)) in idx.iter().zip(ups.chunks_exact(width)).enumerate() {
            let r = row("scatter_add", position, i, rows)?;
            for (o, &u) in out[r * width..(r + 1) * width].iter_mut().zip(update) {
                *o = o.plus(u);
            }
        }
        tensor(&ty.shape, out)
    })
}
