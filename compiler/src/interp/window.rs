//! Sliding windows: `im2col` (unfold) and its adjoint `col2im` (fold), for any number of
//! spatial axes.
//!
//! Both are driven by one table of *taps*: for every kernel offset and output position,
//! the input element (within one `N, C` image plane) that the window reads there, or
//! nothing when it reads padding. `im2col` gathers through the table, `col2im` scatters
//! (adds) back through the same table, which makes them adjoint by construction.

use super::InterpError;
use super::element::{FloatElement, tensor, values, with_float};
use super::layout::{strides, unravel};
use crate::ir::{TensorType, Window};
use xenon_runtime::Tensor;

type Result<T> = std::result::Result<T, InterpError>;

/// The taps of `window` over an image plane of size `spatial`: entry `kf·P + pf` is the
/// row-major offset in the plane read by kernel offset `kf` (row-major over the kernel
/// axes) at output position `pf` (row-major over the `P` output positions), or `None`
/// when it falls in the padding.
///
/// Along spatial axis `d`, output position `o` and kernel offset `k` read padded
/// coordinate `o·stride + k·dilation`, which is input coordinate
/// `o·stride + k·dilation − pad_low` when that lies in `0..spatial[d]`.
fn taps(window: &Window, spatial: &[usize]) -> Result<(Vec<Option<usize>>, usize, usize)> {
    let rank = window.rank();
    let out: Vec<usize> = (0..rank)
        .map(|d| window.output_size(d, spatial[d]))
        .collect::<Option<_>>()
        .ok_or_else(|| InterpError::OperandMismatch {
            op: String::new(),
            reason: format!("window ({window}) does not fit spatial size {spatial:?}"),
        })?;
    let kernel_size: usize = window.kernel.iter().product();
    let positions: usize = out.iter().product();
    let plane_strides = strides(spatial);

    let mut table = Vec::with_capacity(kernel_size * positions);
    let (mut k_idx, mut o_idx) = (vec![0; rank], vec![0; rank]);
    for kf in 0..kernel_size {
        unravel(kf, &window.kernel, &mut k_idx);
        for pf in 0..positions {
            unravel(pf, &out, &mut o_idx);
            let mut offset = Some(0);
            for d in 0..rank {
                let padded = o_idx[d] * window.stride[d] + k_idx[d] * window.dilation[d];
                offset = match padded.checked_sub(window.pad_low[d]) {
                    Some(x) if x < spatial[d] => offset.map(|off| off + x * plane_strides[d]),
                    _ => None,
                };
            }
            table.push(offset);
        }
    }
    Ok((table, kernel_size, positions))
}

/// Unfolds `x` (`N × C × spatial…`) into `N × (C·K) × P` columns: element
/// `[n, c·K + kf, pf]` is the image element that kernel offset `kf` reads at output
/// position `pf`, or zero in the padding (see [`Window`] for the output size).
pub(super) fn im2col(x: &Tensor, window: &Window, ty: &TensorType) -> Result<Tensor> {
    with_float!(x.dtype(), T => {
        let out = im2col_typed::<T>(values(x)?, x.shape(), window)?;
        tensor(&ty.shape, out)
    })
}

fn im2col_typed<T: FloatElement>(xs: &[T], shape: &[usize], window: &Window) -> Result<Vec<T>> {
    let (images, channels, spatial) = (shape[0], shape[1], &shape[2..]);
    let plane: usize = spatial.iter().product();
    let (table, k, p) = taps(window, spatial)?;
    let mut out = Vec::with_capacity(images * channels * k * p);
    for image in xs.chunks_exact(plane) {
        // One (n, c) plane yields K rows of P columns, in row order c·K + kf.
        out.extend(table.iter().map(|tap| match *tap {
            Some(offset) => image[offset],
            None => T::zero(),
        }));
    }
    Ok(out)
}

/// Folds columns (`N × (C·K) × P`) back into an `N × C × spatial` image (the type `ty`):
/// the exact adjoint of [`im2col`]. Each image element is the sum of the column entries
/// that read it, added in increasing column-buffer order (row `c·K + kf`, then position
/// `pf`) starting from zero; padding taps are dropped.
pub(super) fn col2im(cols: &Tensor, window: &Window, ty: &TensorType) -> Result<Tensor> {
    with_float!(cols.dtype(), T => {
        let out = col2im_typed::<T>(values(cols)?, &ty.shape, window)?;
        tensor(&ty.shape, out)
    })
}

fn col2im_typed<T: FloatElement>(cols: &[T], shape: &[usize], window: &Window) -> Result<Vec<T>> {
    let spatial = &shape[2..];
    let plane: usize = spatial.iter().product();
    let (table, k, p) = taps(window, spatial)?;
    let mut out = vec![T::zero(); shape.iter().product()];
    for (image, block) in out.chunks_exact_mut(plane).zip(cols.chunks_exact(k * p)) {
        for (tap, &v) in table.iter().zip(block) {
            if let Some(offset) = *tap {
                image[offset] = image[offset] + v;
            }
        }
    }
    Ok(out)
}
