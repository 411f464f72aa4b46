//! Indexed row access: `gather` and its adjoint `scatter_add`, written plainly (the
//! runtime's library routines are checked against these, not the other way round).

use super::InterpError;
use super::element::{Element, tensor, values, with_dtype};
use crate::ir::TensorType;
use xenon_runtime::Tensor;

type Result<T> = std::result::Result<T, InterpError>;

/// Row `indices[position]` of a table of `rows` rows, or the error naming it.
fn row(op: &str, position: usize, index: i32, rows: usize) -> Result<usize> {
    if index >= 0 && (index as usize) < rows {
        Ok(index as usize)
    } else {
        Err(InterpError::IndexOutOfRange {
            op: op.to_string(),
            position,
            index,
            rows,
        })
    }
}

/// Rows of `data` (`rows × rest…`) picked by `indices` (i32, any shape): output
/// `[j…, rest…] = data[indices[j…], rest…]`, of type `ty`. An index outside `0..rows` is
/// an error (no clamping or wrapping).
pub(super) fn gather(data: &Tensor, indices: &Tensor, ty: &TensorType) -> Result<Tensor> {
    let rows = data.shape()[0];
    let width: usize = data.shape()[1..].iter().product();
    let idx = values::<i32>(indices)?;
    with_dtype!(data.dtype(), T => {
        let d = values::<T>(data)?;
        let mut out = Vec::with_capacity(ty.numel());
        for (j, &i) in idx.iter().enumerate() {
            let r = row("gather", j, i, rows)?;
            for e in 0..width {
                out.push(d[r * width + e]);
            }
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
        let u = values::<T>(updates)?;
        let mut out = vec![T::ZERO; ty.numel()];
        for (j, &i) in idx.iter().enumerate() {
            let r = row("scatter_add", j, i, rows)?;
            for e in 0..width {
                out[r * width + e] = out[r * width + e].plus(u[j * width + e]);
            }
        }
        tensor(&ty.shape, out)
    })
}
