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
    let strides = row_major_strides(spatial);
    let mut table = Vec::with_capacity(kernel_size * positions);
    let (mut k_idx, mut o_idx) = (vec![0; rank], vec![0; rank]);
    for kf in 0..kernel_size {
        unravel(kf, &w.kernel, &mut k_idx);
        for pf in 0..positions {
            unravel(pf, &w.out, &mut o_idx);
            table.push(tap_offset(w, spatial, &strides, &o_idx, &k_idx));
        }
    }
    table
}

/// Row-major strides of an array of extents `ext`.
fn row_major_strides(ext: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; ext.len()];
    for d in (0..ext.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * ext[d + 1];
    }
    strides
}

/// `i` as row-major indices over the extents `ext`, written into `out`.
fn unravel(mut i: usize, ext: &[usize], out: &mut [usize]) {
    for d in (0..ext.len()).rev() {
        out[d] = i % ext[d];
        i /= ext[d];
    }
}

/// The plane offset (`strides` of the plane `spatial`) that kernel offset `k_idx` reads at
/// output position `o_idx` along the axes `o_idx` covers (the leading ones), or `None` in
/// the padding.
fn tap_offset(
    w: &WindowSpec,
    spatial: &[usize],
    strides: &[usize],
    o_idx: &[usize],
    k_idx: &[usize],
) -> Option<usize> {
    let mut offset = 0;
    for d in 0..o_idx.len() {
        let padded = o_idx[d] * w.stride[d] + k_idx[d] * w.dilation[d];
        match padded.checked_sub(w.pad_low[d]) {
            Some(x) if x < spatial[d] => offset += x * strides[d],
            _ => return None,
        }
    }
    Some(offset)
}

/// One row of a window's column block: the `len` output positions along the last spatial
/// axis at one kernel offset and one position of the other output axes. Positions
/// `lo..hi` read the plane at `src + (o − lo)·step`; the others fall in the padding.
#[derive(Clone, Copy, Debug)]
struct Run {
    /// Offset of the row in the `K × P` column block of one plane.
    dst: usize,
    /// Plane offset read at position `lo` (meaningless when `lo == hi`).
    src: usize,
    lo: usize,
    hi: usize,
}

/// The rows of [`window_taps`]' table, in the same (kernel offset, position) order: the
/// same reads, described once per row instead of once per element.
fn window_runs(w: &WindowSpec, spatial: &[usize]) -> (Vec<Run>, usize, usize) {
    let rank = w.kernel.len();
    let last = rank - 1;
    let len = w.out[last];
    let step = w.stride[last];
    let kernel_size: usize = w.kernel.iter().product();
    let rows: usize = w.out[..last].iter().product();
    let strides = row_major_strides(spatial);
    let mut runs = Vec::with_capacity(kernel_size * rows);
    let (mut k_idx, mut o_idx) = (vec![0; rank], vec![0; last]);
    for kf in 0..kernel_size {
        unravel(kf, &w.kernel, &mut k_idx);
        // Along the last axis, position o reads o·step + shift − pad_low.
        let shift = k_idx[last] * w.dilation[last];
        let (pad, size) = (w.pad_low[last], spatial[last]);
        // First o with o·step + shift ≥ pad, and first o with o·step + shift ≥ pad + size.
        let first_at =
            |bound: usize| -> usize { bound.saturating_sub(shift).div_ceil(step).min(len) };
        let lo = first_at(pad);
        let hi = first_at(pad + size).max(lo);
        for row in 0..rows {
            unravel(row, &w.out[..last], &mut o_idx);
            let base = tap_offset(w, spatial, &strides, &o_idx, &k_idx);
            let dst = (kf * rows + row) * len;
            runs.push(match base {
                Some(b) if lo < hi => Run {
                    dst,
                    src: b + lo * step + shift - pad,
                    lo,
                    hi,
                },
                _ => Run {
                    dst,
                    src: 0,
                    lo: 0,
                    hi: 0,
                },
            });
        }
    }
    (runs, len, step)
}

/// Whether run `r` lies inside its row of a `block`-element column block (rows of `len`)
/// and reads (or adds into) a `plane`-element plane only.
fn run_inside(r: &Run, len: usize, step: usize, block: usize, plane: usize) -> bool {
    r.dst + len <= block
        && r.lo <= r.hi
        && r.hi <= len
        && (r.lo == r.hi || r.src + (r.hi - r.lo - 1) * step < plane)
}

/// Unfolds `x` (`image` = `N × C × spatial…`) into `out` (`N × (C·K) × P`): element
/// `[n, c·K + kf, pf]` is what kernel offset `kf` reads at output position `pf`, or zero in
/// the padding.
pub fn im2col<T: Element>(x: &[T], image: &[usize], w: &WindowSpec, out: &mut [T]) {
    let plane: usize = image[2..].iter().product();
    let (runs, len, step) = window_runs(w, &image[2..]);
    let block = runs.len() * len;
    // Checked once here, so that the copies below need no bounds checks.
    assert!(
        runs.iter().all(|r| run_inside(r, len, step, block, plane)),
        "window runs outside the plane"
    );
    for (img, dst) in x.chunks_exact(plane).zip(out.chunks_exact_mut(block)) {
        let (src, dst) = (img.as_ptr(), dst.as_mut_ptr());
        for r in &runs {
            // SAFETY: `run_inside`, and `img` holds `plane`, `dst` `block` elements.
            unsafe {
                let row = dst.add(r.dst);
                // The padding at either end is a few elements at most, or the whole row.
                for i in (0..r.lo).chain(r.hi..len) {
                    row.add(i).write(T::ZERO);
                }
                let n = r.hi - r.lo;
                gather_run(
                    src.add(r.src),
                    step,
                    std::slice::from_raw_parts_mut(row.add(r.lo), n),
                );
            }
        }
    }
}

/// The arg-max over the taps of each window of `x` (`image` = `N × 1 × spatial…`, one
/// map per image), read straight from the maps: `out[n, p]` is the first tap `t` (in
/// kernel row-major order) whose element is the largest of window `p`, NaN counting as the
/// largest — what [`argmax`] over the middle axis of [`im2col`]'s columns gives, without
/// writing the columns.
///
/// # Panics
/// If a window reaches outside the maps (padding) or `image[1]` is not 1.
pub fn window_argmax<T: Element>(x: &[T], image: &[usize], w: &WindowSpec, out: &mut [i32]) {
    let plane: usize = image[2..].iter().product();
    let (runs, len, step) = window_runs(w, &image[2..]);
    let taps: usize = w.kernel.iter().product();
    let positions = runs.len() / taps.max(1) * len;
    // Every window lies inside the map: checked once, so that the loads need no checks.
    let inside = |r: &Run| r.lo == 0 && r.hi == len && r.src + (len - 1) * step < plane;
    assert!(
        image[1] == 1 && len > 0 && runs.iter().all(inside),
        "window_argmax needs one map per image and windows inside it"
    );
    if w.kernel == [2, 2] && w.stride == [2, 2] && w.dilation == [1, 1] {
        let (width, out_w) = (image[3], w.out[1]);
        for (img, dst) in x.chunks_exact(plane).zip(out.chunks_exact_mut(positions)) {
            for (oy, found) in dst.chunks_exact_mut(out_w).enumerate() {
                // Inside the map (checked above): rows 2·oy and 2·oy + 1, 2·out_w columns.
                let top = &img[2 * oy * width..][..2 * out_w];
                let bottom = &img[(2 * oy + 1) * width..][..2 * out_w];
                pool_rows_2x2(top, bottom, found);
            }
        }
        return;
    }
    let mut best = vec![T::ZERO; positions];
    let mut tap = vec![T::ZERO; positions];
    for (img, dst) in x.chunks_exact(plane).zip(out.chunks_exact_mut(positions)) {
        let src = img.as_ptr();
        // Tap by tap, all positions per tap: the scan order of `argmax` over the columns.
        // A tap's elements are copied together first, so that the comparisons run over
        // contiguous rows (vector compare-and-select, no data-dependent branches).
        for (t, tap_runs) in runs.chunks_exact(positions / len).enumerate() {
            let vals = if t == 0 { &mut best } else { &mut tap };
            for (r, row) in tap_runs.iter().zip(vals.chunks_exact_mut(len)) {
                // SAFETY: `inside(r)`: the run reads `len` elements of the plane.
                unsafe { gather_run(src.add(r.src), step, row) };
            }
            if t == 0 {
                dst.fill(0);
                continue;
            }
            keep_max(&mut best, dst, &tap, t as i32);
        }
    }
}

/// The arg-max of each 2×2 window of two map rows (`top`, `bottom`: `2·found.len()`
/// elements each) at stride 2, in tap order top-left, top-right, bottom-left,
/// bottom-right, with [`keep_max`]'s rule (the first maximum, or the first NaN): max
/// pooling's most common window in one pass over the rows, eight windows at a time (the
/// compares run on vectors).
#[inline(always)]
fn pool_rows_2x2<T: Element>(top: &[T], bottom: &[T], found: &mut [i32]) {
    const W: usize = 8;
    // Eight windows: the four taps deinterleaved into lanes, then kept lane by lane.
    #[inline(always)]
    fn block<T: Element>(a: &[T; 2 * W], b: &[T; 2 * W]) -> [i32; W] {
        let (mut best, mut tap) = ([T::ZERO; W], [[T::ZERO; W]; 3]);
        for j in 0..W {
            best[j] = a[2 * j];
            tap[0][j] = a[2 * j + 1];
            tap[1][j] = b[2 * j];
            tap[2][j] = b[2 * j + 1];
        }
        let mut k = [0i32; W];
        for (t, row) in tap.iter().enumerate() {
            keep_max(&mut best, &mut k, row, t as i32 + 1);
        }
        k
    }
    let full = found.len() / W;
    for (i, d) in found[..full * W].chunks_exact_mut(W).enumerate() {
        let a = top[2 * W * i..][..2 * W].try_into().expect("2W elements");
        let b = bottom[2 * W * i..][..2 * W]
            .try_into()
            .expect("2W elements");
        d.copy_from_slice(&block(a, b));
    }
    // The last few windows, from copies padded with zeros (lanes never stored).
    let rest = found.len() - full * W;
    if rest > 0 {
        let (mut a, mut b) = ([T::ZERO; 2 * W], [T::ZERO; 2 * W]);
        a[..2 * rest].copy_from_slice(&top[2 * W * full..][..2 * rest]);
        b[..2 * rest].copy_from_slice(&bottom[2 * W * full..][..2 * rest]);
        found[full * W..].copy_from_slice(&block(&a, &b)[..rest]);
    }
}

/// `dst[i] = src[i·step]`, with the common strides spelled out as constants (contiguous
/// and every second element: loads the compiler vectorizes).
///
/// # Safety
/// `src` must be valid for `(dst.len() − 1)·step + 1` elements.
#[inline(always)]
unsafe fn gather_run<T: Element>(src: *const T, step: usize, dst: &mut [T]) {
    // SAFETY: the caller's contract.
    unsafe {
        match step {
            1 => copy_run(src, dst.as_mut_ptr(), dst.len()),
            2 => {
                for (i, v) in dst.iter_mut().enumerate() {
                    *v = src.add(2 * i).read();
                }
            }
            _ => {
                for (i, v) in dst.iter_mut().enumerate() {
                    *v = src.add(i * step).read();
                }
            }
        }
    }
}

/// Elements per block of [`copy_run`] and [`add_run`]: runs are one output row of a
/// window (8–64 elements), too short for a `memcpy` call or a counted vector loop to pay.
const RUN_BLOCK: usize = 8;

/// Copies `n` elements from `src` to `dst` in fixed blocks the compiler moves inline.
///
/// # Safety
/// Both ranges must be valid for `n` elements and not overlap.
#[inline(always)]
unsafe fn copy_run<T: Element>(src: *const T, dst: *mut T, n: usize) {
    let blocks = n / RUN_BLOCK;
    // SAFETY: every block and the tail lie inside the `n` elements.
    unsafe {
        for b in 0..blocks {
            let v = (src.add(b * RUN_BLOCK) as *const [T; RUN_BLOCK]).read_unaligned();
            (dst.add(b * RUN_BLOCK) as *mut [T; RUN_BLOCK]).write_unaligned(v);
        }
        for i in blocks * RUN_BLOCK..n {
            dst.add(i).write(src.add(i).read());
        }
    }
}

/// `dst[i] = dst[i] + src[i]` for `i < n`, in fixed blocks the compiler vectorizes.
///
/// # Safety
/// Both ranges must be valid for `n` elements and not overlap.
#[inline(always)]
unsafe fn add_run<T: Element>(src: *const T, dst: *mut T, n: usize) {
    let blocks = n / RUN_BLOCK;
    // SAFETY: every block and the tail lie inside the `n` elements.
    unsafe {
        for b in 0..blocks {
            let s = (src.add(b * RUN_BLOCK) as *const [T; RUN_BLOCK]).read_unaligned();
            let d = dst.add(b * RUN_BLOCK) as *mut [T; RUN_BLOCK];
            let mut v = d.read_unaligned();
            for i in 0..RUN_BLOCK {
                v[i] = v[i].plus(s[i]);
            }
            d.write_unaligned(v);
        }
        for i in blocks * RUN_BLOCK..n {
            let o = dst.add(i);
            o.write(o.read().plus(src.add(i).read()));
        }
    }
}

/// Folds `cols` (`N × (C·K) × P`) into `out` (`image` = `N × C × spatial…`), the adjoint of
/// [`im2col`]: each image element is the sum of the column entries that read it, added in
/// increasing column order starting from zero.
pub fn col2im<T: Element>(cols: &[T], image: &[usize], w: &WindowSpec, out: &mut [T]) {
    let plane: usize = image[2..].iter().product();
    let (runs, len, step) = window_runs(w, &image[2..]);
    let block = runs.len() * len;
    assert!(
        runs.iter().all(|r| run_inside(r, len, step, block, plane)),
        "window runs outside the plane"
    );
    out.fill(T::ZERO);
    for (img, src) in out.chunks_exact_mut(plane).zip(cols.chunks_exact(block)) {
        let (img, src) = (img.as_mut_ptr(), src.as_ptr());
        // Runs in increasing column order, positions in increasing order within a run:
        // every image element receives its column entries in increasing column order.
        for r in &runs {
            let n = r.hi - r.lo;
            // SAFETY: `run_inside`, and the plane and the block hold `plane` and `block`
            // elements; they are different slices.
            unsafe {
                let (vals, dst) = (src.add(r.dst + r.lo), img.add(r.src));
                match step {
                    1 => add_run(vals, dst, n),
                    _ => {
                        for i in 0..n {
                            let o = dst.add(i * step);
                            o.write(o.read().plus(vals.add(i).read()));
                        }
                    }
                }
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

/// Whether every index is in `0..rows`, in one branch-free pass the compiler vectorizes
/// (a negative index is a large unsigned one).
fn all_below(indices: &[i32], rows: usize) -> bool {
    // At most 2^31, so that a negative index (2^31 or more as unsigned) never passes.
    let rows = rows.min(1 << 31) as u32;
    !indices
        .iter()
        .fold(false, |bad, &i| bad | (i as u32 >= rows))
}

/// `out[j] = data[indices[j]]` for rows of `row_len` elements.
pub fn gather<T: Element>(
    data: &[T],
    row_len: usize,
    indices: &[i32],
    out: &mut [T],
) -> Result<(), IndexError> {
    let rows = data.len() / row_len.max(1);
    if row_len == 1 && all_below(indices, rows) {
        // Single elements (a max-pool's picks), every index checked in one pass first.
        for (&i, dst) in indices.iter().zip(out.iter_mut()) {
            // SAFETY: `all_below`: 0 ≤ i < rows = data.len().
            *dst = unsafe { *data.get_unchecked(i as usize) };
        }
        return Ok(());
    }
    if row_len == 1 {
        // An index out of range: the element-by-element path names the first one.
        for (position, (&i, dst)) in indices.iter().zip(out.iter_mut()).enumerate() {
            *dst = data[row(position, i, rows)?];
        }
        return Ok(());
    }
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
    if row_len == 1 && all_below(indices, rows) {
        // Every index checked in one pass first.
        for (&i, &u) in indices.iter().zip(updates) {
            // SAFETY: `all_below`: 0 ≤ i < rows = out.len().
            let o = unsafe { out.get_unchecked_mut(i as usize) };
            *o = o.plus(u);
        }
        return Ok(());
    }
    if row_len == 1 {
        for (position, (&i, &u)) in indices.iter().zip(updates).enumerate() {
            let o = &mut out[row(position, i, rows)?];
            *o = o.plus(u);
        }
        return Ok(());
    }
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
///
/// Runs a whole row of `inner` positions per step of the middle axis (contiguous loads
/// and compare-and-select the compiler vectorizes), with the scan order, and so the
/// result, of the one-position-at-a-time definition.
pub fn argmax<T: Element>(x: &[T], outer: usize, axis: usize, inner: usize, out: &mut [i32]) {
    if outer == 0 || axis == 0 || inner == 0 {
        return;
    }
    let mut best = vec![T::ZERO; inner];
    for (block, dst) in x
        .chunks_exact(axis * inner)
        .zip(out.chunks_exact_mut(inner))
        .take(outer)
    {
        best.copy_from_slice(&block[..inner]);
        dst.fill(0);
        for (k, row) in block.chunks_exact(inner).enumerate().skip(1) {
            keep_max(&mut best, dst, row, k as i32);
        }
    }
}

/// Position by position, `row` (candidate `k`) replaces `best` and its index in `found`
/// where it wins: a NaN best stays; otherwise a NaN or a strictly larger value replaces it,
/// so the first maximum (or the first NaN) is kept over candidates given in order.
/// Non-short-circuit `&`/`|` and selects: no data-dependent branches, vectorized.
#[inline(always)]
fn keep_max<T: Element>(best: &mut [T], found: &mut [i32], row: &[T], k: i32) {
    for ((b, d), &v) in best.iter_mut().zip(found.iter_mut()).zip(row) {
        let take = !b.is_nan() & (v.is_nan() | (v > *b));
        *b = std::hint::select_unpredictable(take, v, *b);
        *d = std::hint::select_unpredictable(take, k, *d);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `im2col` straight from [`window_taps`]: one table entry per element.
    fn im2col_by_taps(x: &[f32], image: &[usize], w: &WindowSpec) -> Vec<f32> {
        let plane: usize = image[2..].iter().product();
        let table = window_taps(w, &image[2..]);
        x.chunks_exact(plane)
            .flat_map(|img| table.iter().map(|t| t.map_or(0.0, |o| img[o])))
            .collect()
    }

    /// `col2im` straight from [`window_taps`], adding in increasing column order.
    fn col2im_by_taps(cols: &[f32], image: &[usize], w: &WindowSpec) -> Vec<f32> {
        let plane: usize = image[2..].iter().product();
        let table = window_taps(w, &image[2..]);
        let mut out = vec![0.0f32; image.iter().product()];
        for (img, block) in out
            .chunks_exact_mut(plane)
            .zip(cols.chunks_exact(table.len()))
        {
            for (t, &v) in table.iter().zip(block) {
                if let Some(o) = *t {
                    img[o] += v;
                }
            }
        }
        out
    }

    /// A window over `spatial` (1–3 axes) from per-axis (kernel, stride, pad, dilation),
    /// or `None` when it leaves no output.
    fn spec(spatial: &[usize], axes: &[(usize, usize, usize, usize)]) -> Option<WindowSpec> {
        let axes = &axes[..spatial.len()];
        let mut out = Vec::new();
        for (&s, &(k, st, p, d)) in spatial.iter().zip(axes) {
            let eff = d * (k - 1) + 1;
            if eff > s + 2 * p {
                return None;
            }
            out.push((s + 2 * p - eff) / st + 1);
        }
        Some(WindowSpec {
            kernel: axes.iter().map(|a| a.0).collect(),
            stride: axes.iter().map(|a| a.1).collect(),
            pad_low: axes.iter().map(|a| a.2).collect(),
            pad_high: axes.iter().map(|a| a.2).collect(),
            dilation: axes.iter().map(|a| a.3).collect(),
            out,
        })
    }

    /// Single-element gathers and scatter-adds check every index before the unchecked
    /// loop; a bad one (negative, or past the end) is the error of its first position.
    #[test]
    fn single_element_indices_are_checked() {
        let data = [10.0f32, 11.0, 12.0, 13.0];
        let mut out = [0.0f32; 4];
        gather(&data, 1, &[3, 0, 3, 1], &mut out).unwrap();
        assert_eq!(out, [13.0, 10.0, 13.0, 11.0]);
        let mut sum = [f32::NAN; 4];
        scatter_add(&[1.0f32, 2.0, 4.0, 8.0], 1, &[3, 0, 3, 1], &mut sum).unwrap();
        assert_eq!(sum, [2.0, 8.0, 0.0, 5.0]);
        for bad in [-1, 4, i32::MIN, i32::MAX] {
            let e = gather(&data, 1, &[0, 2, bad, bad], &mut out).unwrap_err();
            assert_eq!((e.position, e.index, e.rows), (2, bad, 4));
            let e = scatter_add(&[1.0f32; 4], 1, &[1, bad, 0, 0], &mut sum).unwrap_err();
            assert_eq!((e.position, e.index, e.rows), (1, bad, 4));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn runs_agree_with_the_tap_table(
            spatial in prop::collection::vec(1usize..9, 1..4),
            axes in prop::collection::vec((1usize..5, 1usize..4, 0usize..3, 1usize..3), 3),
            nc in 1usize..4,
        ) {
            let Some(w) = spec(&spatial, &axes) else { return Ok(()) };
            let mut image = vec![nc, 1];
            image.extend_from_slice(&spatial);
            let len: usize = image.iter().product();
            let x: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let taps: usize = w.kernel.iter().product::<usize>() * w.out.iter().product::<usize>();
            let mut cols = vec![f32::NAN; nc * taps];
            im2col(&x, &image, &w, &mut cols);
            let want = im2col_by_taps(&x, &image, &w);
            prop_assert!(cols.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
            let g: Vec<f32> = (0..cols.len()).map(|i| (i as f32 * 0.91).cos()).collect();
            let mut back = vec![f32::NAN; len];
            col2im(&g, &image, &w, &mut back);
            let want = col2im_by_taps(&g, &image, &w);
            prop_assert!(back.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
        }

        #[test]
        fn window_argmax_is_the_argmax_over_the_columns(
            spatial in prop::collection::vec(1usize..9, 1..4),
            axes in prop::collection::vec((1usize..4, 1usize..4, 1usize..3), 3),
            maps in 1usize..4,
            seed in 0u64..1000,
        ) {
            // Unpadded windows; few distinct values (ties), NaNs and infinities.
            let axes: Vec<_> = axes.iter().map(|&(k, st, d)| (k, st, 0, d)).collect();
            let Some(w) = spec(&spatial, &axes) else { return Ok(()) };
            let mut image = vec![maps, 1];
            image.extend_from_slice(&spatial);
            let pool = [0.0f32, 1.0, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0];
            let x: Vec<f32> = (0..image.iter().product::<usize>() as u64)
                .map(|i| pool[((i * 2654435761 + seed * 97) % 7) as usize])
                .collect();
            let (taps, positions) = (w.kernel.iter().product::<usize>(), w.out.iter().product::<usize>());
            let mut cols = vec![0.0; maps * taps * positions];
            im2col(&x, &image, &w, &mut cols);
            let mut want = vec![-1; maps * positions];
            argmax(&cols, maps, taps, positions, &mut want);
            let mut got = vec![-2; maps * positions];
            window_argmax(&x, &image, &w, &mut got);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn two_by_two_pooling_windows_take_the_general_paths_arg_max(
            (h, wd) in (1usize..6, 1usize..21),
            (extra_h, extra_w) in (0usize..2, 0usize..2),
            maps in 1usize..4,
            seed in 0u64..1000,
        ) {
            // 2×2 windows at stride 2 (the fast path), maps with an odd row or column
            // left over, against the unfold and the arg-max over its columns.
            let spatial = [2 * h + extra_h, 2 * wd + extra_w];
            let Some(w) = spec(&spatial, &[(2, 2, 0, 1), (2, 2, 0, 1)]) else { return Ok(()) };
            let image = vec![maps, 1, spatial[0], spatial[1]];
            let pool = [0.0f32, 1.0, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0];
            let x: Vec<f32> = (0..image.iter().product::<usize>() as u64)
                .map(|i| pool[((i * 2654435761 + seed * 97) % 7) as usize])
                .collect();
            let positions = h * wd;
            let mut cols = vec![0.0; maps * 4 * positions];
            im2col(&x, &image, &w, &mut cols);
            let mut want = vec![-1; maps * positions];
            argmax(&cols, maps, 4, positions, &mut want);
            let mut got = vec![-2; maps * positions];
            window_argmax(&x, &image, &w, &mut got);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn argmax_takes_the_first_maximum_or_the_first_nan(
            (outer, axis, inner) in (1usize..4, 1usize..6, 1usize..7),
            seed in 0u64..1000,
        ) {
            // Few distinct values, so ties are common; some NaNs and infinities.
            let pool = [0.0f32, 1.0, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0];
            let x: Vec<f32> = (0..outer * axis * inner)
                .map(|i| pool[((i as u64 * 2654435761 + seed * 97) % 7) as usize])
                .collect();
            let mut got = vec![-1; outer * inner];
            argmax(&x, outer, axis, inner, &mut got);
            for o in 0..outer {
                for i in 0..inner {
                    let at = |k: usize| x[(o * axis + k) * inner + i];
                    let want = (0..axis)
                        .find(|&k| at(k).is_nan())
                        .unwrap_or_else(|| (0..axis).fold(0, |b, k| if at(k) > at(b) { k } else { b }));
                    prop_assert_eq!(got[o * inner + i], want as i32);
                }
            }
        }
    }
}
