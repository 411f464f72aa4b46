//! Sliding windows: `im2col` (unfold) and its adjoint `col2im` (fold), for any number of
//! spatial axes, written plainly from the definition (the runtime's table-driven library
//! routines are checked against these).
//!
//! Along spatial axis `d`, output position `o` and kernel offset `k` read input coordinate
//! `o·stride + k·dilation − pad_low`, or padding (zero) when that lies outside the image.

use super::InterpError;
use super::element::{Element, tensor, values, with_float};
use crate::ir::{TensorType, Window, unravel};
use xenon_runtime::Tensor;

type Result<T> = std::result::Result<T, InterpError>;

/// The output sizes of `window` on `image` (`N × C × spatial…`), or an operand mismatch.
fn output_sizes(window: &Window, image: &[usize]) -> Result<Vec<usize>> {
    window
        .spec(image)
        .map(|s| s.out)
        .ok_or_else(|| InterpError::OperandMismatch {
            op: String::new(),
            reason: format!("window ({window}) does not fit image {image:?}"),
        })
}

/// The flat offset in an image plane of `spatial` that kernel offset `k` reads at output
/// position `o`, or `None` in the padding.
fn tap(window: &Window, spatial: &[usize], k: &[usize], o: &[usize]) -> Option<usize> {
    let mut offset = 0;
    for d in 0..spatial.len() {
        let x =
            (o[d] * window.stride[d] + k[d] * window.dilation[d]).checked_sub(window.pad_low[d])?;
        if x >= spatial[d] {
            return None;
        }
        offset = offset * spatial[d] + x;
    }
    Some(offset)
}

/// Visits every column entry in buffer order: `(n·C + c, flat column index, plane offset
/// read or None)`, for an image `N × C × spatial…` and output sizes `out`.
fn for_each_entry(
    window: &Window,
    image: &[usize],
    out: &[usize],
    mut f: impl FnMut(usize, usize, Option<usize>),
) {
    let (n, c, spatial) = (image[0], image[1], &image[2..]);
    let kernel: usize = window.kernel.iter().product();
    let positions: usize = out.iter().product();
    let mut at = 0;
    for plane in 0..n * c {
        for kf in 0..kernel {
            let k = unravel(kf, &window.kernel);
            for pf in 0..positions {
                f(plane, at, tap(window, spatial, &k, &unravel(pf, out)));
                at += 1;
            }
        }
    }
}

/// Unfolds `x` (`N × C × spatial…`) into `N × (C·K) × P` columns: element
/// `[n, c·K + kf, pf]` is the image element that kernel offset `kf` reads at output
/// position `pf`, or zero in the padding (see [`Window`] for the output size).
pub(super) fn im2col(x: &Tensor, window: &Window, ty: &TensorType) -> Result<Tensor> {
    let image = x.shape();
    let out_sizes = output_sizes(window, image)?;
    let plane: usize = image[2..].iter().product();
    with_float!(x.dtype(), T => {
        let xs = values::<T>(x)?;
        let mut out = vec![T::ZERO; ty.numel()];
        for_each_entry(window, image, &out_sizes, |p, at, off| {
            if let Some(off) = off {
                out[at] = xs[p * plane + off];
            }
        });
        tensor(&ty.shape, out)
    })
}

/// Folds columns (`N × (C·K) × P`) back into an `N × C × spatial` image (the type `ty`):
/// the exact adjoint of [`im2col`]. Each image element is the sum of the column entries
/// that read it, added in increasing column-buffer order starting from zero.
pub(super) fn col2im(cols: &Tensor, window: &Window, ty: &TensorType) -> Result<Tensor> {
    let out_sizes = output_sizes(window, &ty.shape)?;
    let plane: usize = ty.shape[2..].iter().product();
    with_float!(cols.dtype(), T => {
        let cs = values::<T>(cols)?;
        let mut out = vec![T::ZERO; ty.numel()];
        for_each_entry(window, &ty.shape, &out_sizes, |p, at, off| {
            if let Some(off) = off {
                out[p * plane + off] = out[p * plane + off].plus(cs[at]);
            }
        });
        tensor(&ty.shape, out)
    })
}
