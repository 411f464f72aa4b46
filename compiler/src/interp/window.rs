//! Sliding windows: `im2col` (unfold) and its adjoint `col2im` (fold), for any number of
//! spatial axes.
//!
//! Both are the runtime library's routines, driven by one table of *taps*
//! ([`library::window_taps`]): `im2col` gathers through the table, `col2im` adds back
//! through the same table, which makes them adjoint by construction.

use super::InterpError;
use super::element::{tensor, values, with_float};
use crate::ir::{TensorType, Window};
use num_traits::Zero;
use xenon_runtime::Tensor;
use xenon_runtime::cpu::library;

type Result<T> = std::result::Result<T, InterpError>;

/// The runtime's window description, or an operand mismatch when it does not fit.
fn spec(window: &Window, image: &[usize]) -> Result<xenon_runtime::program::WindowSpec> {
    window
        .spec(image)
        .ok_or_else(|| InterpError::OperandMismatch {
            op: String::new(),
            reason: format!("window ({window}) does not fit image {image:?}"),
        })
}

/// Unfolds `x` (`N × C × spatial…`) into `N × (C·K) × P` columns: element
/// `[n, c·K + kf, pf]` is the image element that kernel offset `kf` reads at output
/// position `pf`, or zero in the padding (see [`Window`] for the output size). The
/// routine is the runtime library's [`library::im2col`], shared by every backend.
pub(super) fn im2col(x: &Tensor, window: &Window, ty: &TensorType) -> Result<Tensor> {
    let w = spec(window, x.shape())?;
    with_float!(x.dtype(), T => {
        let mut out = vec![T::zero(); ty.numel()];
        library::im2col::<T>(values(x)?, x.shape(), &w, &mut out);
        tensor(&ty.shape, out)
    })
}

/// Folds columns (`N × (C·K) × P`) back into an `N × C × spatial` image (the type `ty`):
/// the exact adjoint of [`im2col`]. Each image element is the sum of the column entries
/// that read it, added in increasing column-buffer order starting from zero
/// ([`library::col2im`]).
pub(super) fn col2im(cols: &Tensor, window: &Window, ty: &TensorType) -> Result<Tensor> {
    let w = spec(window, &ty.shape)?;
    with_float!(cols.dtype(), T => {
        let mut out = vec![T::zero(); ty.numel()];
        library::col2im::<T>(values(cols)?, &ty.shape, &w, &mut out);
        tensor(&ty.shape, out)
    })
}
