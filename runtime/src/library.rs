//! The runtime library: the ops that are not loops over affine accesses, on typed slices
//! (`im2col`, `col2im`, `gather`, `scatter_add`, the random ops and `argmax`), for any
//! backend's host side (the CPU executor calls them). The reference interpreter has its
//! own plain versions, and the parity tests compare the two. Element arithmetic (`plus`,
//! `is_nan`) is [`Element`]'s, the one definition of scalar semantics.

use crate::element::Element;
use crate::program::WindowSpec;
use crate::rng;

/// The taps of a window over an image plane of size `spatial`: entry `kf·P + pf` is the
/// row-major offset in the plane read by kernel offset `kf` (row-major over the kernel
/// axes) at output position `pf` (row-major over the `P` output positions), or `None` in
/// the padding. Along axis `d`, output position `o` and kernel offset `k` read input
/// coordinate `o·stride + k·dilation − pad_low` when that lies in `0..spatial[d]`.
pub fn window_taps(w: &WindowSpec, spatial: &[usize]) -> Vec<Option<usize>> {
    let rank = w.kernel.len();
    let kernel_size: usize = w.kernel.iter().product();
    let positions: usize = w.out.iter().product();
    let mut plane_strides = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        plane_strides[d] = plane_strides[d + 1] * spatial[d + 1];
    }
    let unravel = |mut i: usize, ext: &[usize], out: &mut [usize]| {
        for d in (0..ext.len()).rev() {
            out[d] = i % ext[d];
            i /= ext[d];
        }
    };
    let mut table = Vec::with_capacity(kernel_size * positions);
    let (mut k_idx, mut o_idx) = (vec![0; rank], vec![0; rank]);
    for kf in 0..kernel_size {
        unravel(kf, &w.kernel, &mut k_idx);
        for pf in 0..positions {
            unravel(pf, &w.out, &mut o_idx);
            let mut offset = Some(0);
            for d in 0..rank {
                let padded = o_idx[d] * w.stride[d] + k_idx[d] * w.dilation[d];
                offset = match padded.checked_sub(w.pad_low[d]) {
                    Some(x) if x < spatial[d] => offset.map(|off| off + x * plane_strides[d]),
                    _ => None,
                };
            }
            table.push(offset);
        }
    }
    table
}

/// Unfolds `x` (`image` = `N × C × spatial…`) into `out` (`N × (C·K) × P`): element
/// `[n, c·K + kf, pf]` is what kernel offset `kf` reads at output position `pf`, or zero in
/// the padding.
pub fn im2col<T: Element>(x: &[T], image: &[usize], w: &WindowSpec, out: &mut [T]) {
    let plane: usize = image[2..].iter().product();
    let table = window_taps(w, &image[2..]);
    let n = table.len();
    for (img, dst) in x.chunks_exact(plane).zip(out.chunks_exact_mut(n)) {
        for (o, tap) in dst.iter_mut().zip(&table) {
            *o = match *tap {
                Some(off) => img[off],
                None => T::ZERO,
            };
        }
    }
}

/// Folds `cols` (`N × (C·K) × P`) into `out` (`image` = `N × C × spatial…`), the adjoint of
/// [`im2col`]: each image element is the sum of the column entries that read it, added in
/// increasing column order starting from zero.
pub fn col2im<T: Element>(cols: &[T], image: &[usize], w: &WindowSpec, out: &mut [T]) {
    let plane: usize = image[2..].iter().product();
    let table = window_taps(w, &image[2..]);
    out.fill(T::ZERO);
    for (img, block) in out
        .chunks_exact_mut(plane)
        .zip(cols.chunks_exact(table.len()))
    {
        for (tap, &v) in table.iter().zip(block) {
            if let Some(off) = *tap {
                img[off] = img[off].plus(v);
            }
        }
    }
}

pub use crate::exec::IndexError;

fn row(position: usize, index: i32, rows: usize) -> Result<usize, IndexError> {
    usize::try_from(index)
        .ok()
        .filter(|&r| r < rows)
        .ok_or(IndexError {
            position,
            index,
            rows,
        })
}

/// `out[j] = data[indices[j]]` for rows of `row_len` elements.
pub fn gather<T: Element>(
    data: &[T],
    row_len: usize,
    indices: &[i32],
    out: &mut [T],
) -> Result<(), IndexError> {
    let rows = data.len() / row_len.max(1);
    for (position, (&i, dst)) in indices
        .iter()
        .zip(out.chunks_exact_mut(row_len))
        .enumerate()
    {
        let r = row(position, i, rows)?;
        dst.copy_from_slice(&data[r * row_len..(r + 1) * row_len]);
    }
    Ok(())
}

/// `out` (rows of `row_len`) set to zero, then update row `j` added at row `indices[j]`,
/// in increasing `j`.
pub fn scatter_add<T: Element>(
    updates: &[T],
    row_len: usize,
    indices: &[i32],
    out: &mut [T],
) -> Result<(), IndexError> {
    let rows = out.len() / row_len.max(1);
    out.fill(T::ZERO);
    for (position, (&i, upd)) in indices
        .iter()
        .zip(updates.chunks_exact(row_len))
        .enumerate()
    {
        let r = row(position, i, rows)?;
        for (o, &u) in out[r * row_len..(r + 1) * row_len].iter_mut().zip(upd) {
            *o = o.plus(u);
        }
    }
    Ok(())
}

/// Index of the first maximum along the middle axis of `x` viewed as
/// `outer × axis × inner`; NaN counts as the maximum (the first NaN wins).
pub fn argmax<T: Element>(x: &[T], outer: usize, axis: usize, inner: usize, out: &mut [i32]) {
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| x[(o * axis + k) * inner + i];
            let mut best = 0;
            for k in 1..axis {
                if at(best).is_nan() {
                    break;
                }
                if at(k).is_nan() || at(k) > at(best) {
                    best = k;
                }
            }
            out[o * inner + i] = best as i32;
        }
    }
}

/// The random stream counter from an optional i32 scalar: `c as i64 as u64`, or 0.
pub fn counter(c: Option<i32>) -> u64 {
    c.map_or(0, |c| c as i64 as u64)
}

/// Uniform samples `low + (high − low)·u(seed, counter, i)` with the bounds rounded to f32
/// and the arithmetic in f32.
pub fn uniform_f32(out: &mut [f32], seed: u64, counter: u64, low: f64, high: f64) {
    let (lo, hi) = (low as f32, high as f32);
    for (i, o) in out.iter_mut().enumerate() {
        *o = lo + (hi - lo) * rng::uniform_f32(seed, counter, i as u64);
    }
}

/// Uniform samples in f64.
pub fn uniform_f64(out: &mut [f64], seed: u64, counter: u64, low: f64, high: f64) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = low + (high - low) * rng::uniform_f64(seed, counter, i as u64);
    }
}

/// Normal samples `mean + std·z(seed, counter, i)`, computed in f64.
pub fn normal_f64(out: &mut [f64], seed: u64, counter: u64, mean: f64, std: f64) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = mean + std * rng::normal_f64(seed, counter, i as u64);
    }
}

/// Normal samples computed in f64, then rounded to f32.
pub fn normal_f32(out: &mut [f32], seed: u64, counter: u64, mean: f64, std: f64) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = (mean + std * rng::normal_f64(seed, counter, i as u64)) as f32;
    }
}
