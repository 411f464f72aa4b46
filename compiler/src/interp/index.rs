//! Indexed row access: `gather` and its adjoint `scatter_add`.

use super::InterpError;
use super::element::{tensor, values, with_dtype};
use crate::ir::TensorType;
use num_traits::Zero;
use xenon_runtime::Tensor;
use xenon_runtime::cpu::library;

type Result<T> = std::result::Result<T, InterpError>;

/// An index error from the runtime library, named for `op`.
fn index_error(op: &str, e: library::IndexError) -> InterpError {
    InterpError::IndexOutOfRange {
        op: op.to_string(),
        position: e.position,
        index: e.index,
        rows: e.rows,
    }
}

/// Rows of `data` (`rows × rest…`) picked by `indices` (i32, any shape): output
/// `[j…, rest…] = data[indices[j…], rest…]`, of type `ty`. An index outside `0..rows` is
/// an error (no clamping or wrapping). The routine is [`library::gather`].
pub(super) fn gather(data: &Tensor, indices: &Tensor, ty: &TensorType) -> Result<Tensor> {
    let width: usize = data.shape()[1..].iter().product();
    let idx = values::<i32>(indices)?;
    with_dtype!(data.dtype(), T => {
        let mut out = vec![T::zero(); ty.numel()];
        library::gather::<T>(values::<T>(data)?, width, idx, &mut out).map_err(|e| index_error("gather", e))?;
        tensor(&ty.shape, out)
    })
}

/// A zero tensor of type `ty` (`rows × rest…`) to which update row `j` (`updates` is
/// `indices.shape ++ rest`) is added at row `indices[j]`, in increasing `j` (i32 wraps).
/// Repeated indices accumulate; an index outside `0..rows` is an error
/// ([`library::scatter_add`]).
pub(super) fn scatter_add(updates: &Tensor, indices: &Tensor, ty: &TensorType) -> Result<Tensor> {
    let width: usize = ty.shape[1..].iter().product();
    let idx = values::<i32>(indices)?;
    with_dtype!(updates.dtype(), T => {
        let mut out = vec![T::zero(); ty.numel()];
        library::scatter_add::<T>(values::<T>(updates)?, width, idx, &mut out).map_err(|e| index_error("scatter_add", e))?;
        tensor(&ty.shape, out)
    })
}
