//! Packing: copying blocks of B (and, for wide products, of A) into the layouts the
//! micro-kernels stream.
//!
//! A `kc × nc` block of B becomes `⌈nc / nr⌉` panels; panel `q` holds columns
//! `q·nr .. q·nr + nr` as `kc` rows of `nr` contiguous elements (zero past column `nc`), so
//! a kernel reads one row of its panel per step of `k` with aligned, unit-stride loads.

use super::Element;

/// A transposing block copy of `rows × cols` elements (both multiples of 8):
/// `dst[j·ds + i] = src[i·ss + j]` — arguments `(src, ss, dst, ds, rows, cols)`.
pub type TransposeBlock<T> = unsafe fn(*const T, usize, *mut T, usize, usize, usize);

/// Packs panels `panels` of the `kc × nc` block of B whose element `(p, j)` is at
/// `b + p·rs + j·cs`, into `out` (panel `q` at `out + q·kc·nr`).
///
/// # Safety
/// `b` must address the whole block with those strides; `out` must hold
/// `panels.end · kc · nr` elements.
#[allow(clippy::too_many_arguments)]
pub unsafe fn pack_b<T: Element>(
    kc: usize,
    nc: usize,
    b: *const T,
    rs: isize,
    cs: isize,
    nr: usize,
    out: *mut T,
    panels: std::ops::Range<usize>,
    transpose: Option<TransposeBlock<T>>,
) {
    // SAFETY: the caller's contract, with panels `kc · nr` apart.
    unsafe { pack_b_rows(kc, nc, b, rs, cs, nr, out, kc * nr, panels, transpose) }
}

/// [`pack_b`] into panels `ld` elements apart (`ld ≥ kc·nr`): the `kc` rows land at the
/// start of each panel, so that blocks of several matrices' rows (a product summed over a
/// batch) fill one panel piece by piece.
///
/// # Safety
/// As [`pack_b`], `out` holding `(panels.end − 1) · ld + kc · nr` elements.
#[allow(clippy::too_many_arguments)]
pub unsafe fn pack_b_rows<T: Element>(
    kc: usize,
    nc: usize,
    b: *const T,
    rs: isize,
    cs: isize,
    nr: usize,
    out: *mut T,
    ld: usize,
    panels: std::ops::Range<usize>,
    transpose: Option<TransposeBlock<T>>,
) {
    unsafe {
        if cs == 1 {
            // Rows of B are contiguous: read each row once, left to right (a stream the
            // hardware prefetches), writing its piece of every panel; panel by panel the
            // reads would jump a whole row stride per step.
            for p in 0..kc {
                let row = b.offset(p as isize * rs);
                for q in panels.clone() {
                    let j0 = q * nr;
                    let w = nr.min(nc - j0);
                    let d = out.add(q * ld + p * nr);
                    copy_row(row.add(j0), d, w);
                    for j in w..nr {
                        *d.add(j) = T::ZERO;
                    }
                }
            }
            return;
        }
        for q in panels {
            let j0 = q * nr;
            let w = nr.min(nc - j0);
            let dst = out.add(q * ld);
            let src = b.offset(j0 as isize * cs);
            let mut p0 = 0;
            if let (Some(t), true) = (transpose, rs == 1 && cs > 0) {
                // B is contiguous along k: transpose blocks of 8×8, then the edges.
                let (full, kc8) = (w / 8 * 8, kc / 8 * 8);
                t(src, cs as usize, dst, nr, full, kc8);
                for p in 0..kc8 {
                    for j in full..w {
                        *dst.add(p * nr + j) = *src.offset(j as isize * cs + p as isize);
                    }
                }
                p0 = kc8;
            }
            for p in p0..kc {
                let d = dst.add(p * nr);
                for j in 0..w {
                    *d.add(j) = *src.offset(p as isize * rs + j as isize * cs);
                }
            }
            for p in 0..kc {
                for j in w..nr {
                    *dst.add(p * nr + j) = T::ZERO;
                }
            }
        }
    }
}

/// Copies `w` elements from `src` to `dst` in fixed 16-element blocks the compiler moves
/// inline (a panel row is 8–64 elements: a `memcpy` call per row costs more than the copy).
///
/// # Safety
/// Both ranges must be valid for `w` elements and not overlap.
#[inline(always)]
unsafe fn copy_row<T: Element>(src: *const T, dst: *mut T, w: usize) {
    unsafe {
        let mut j = 0;
        while j + 16 <= w {
            let block = std::ptr::read_unaligned(src.add(j) as *const [T; 16]);
            std::ptr::write_unaligned(dst.add(j) as *mut [T; 16], block);
            j += 16;
        }
        while j < w {
            *dst.add(j) = *src.add(j);
            j += 1;
        }
    }
}

/// Packs the `mc × kc` block of A whose element `(i, p)` is at `a + i·rs + p·cs` into
/// micro-panels of `mr` rows: panel `r` at `out + r·kc·mr` holds element `(r·mr + i, p)`
/// at `p·mr + i` (rows past `mc` are left as they are; kernels for fewer rows skip them).
///
/// # Safety
/// `a` must address the block with those strides; `out` must hold `⌈mc / mr⌉ · kc · mr`
/// elements.
pub unsafe fn pack_a<T: Element>(
    mc: usize,
    kc: usize,
    a: *const T,
    rs: isize,
    cs: isize,
    mr: usize,
    out: *mut T,
) {
    // SAFETY: the caller's contract, with micro-panels `kc · mr` apart.
    unsafe { pack_a_cols(mc, kc, a, rs, cs, mr, out, kc * mr) }
}

/// [`pack_a`] into micro-panels `ld` elements apart (`ld ≥ kc·mr`): the `kc` columns land
/// at the start of each micro-panel (see [`pack_b_rows`]).
///
/// # Safety
/// As [`pack_a`], `out` holding `(⌈mc / mr⌉ − 1) · ld + kc · mr` elements.
#[allow(clippy::too_many_arguments)]
pub unsafe fn pack_a_cols<T: Element>(
    mc: usize,
    kc: usize,
    a: *const T,
    rs: isize,
    cs: isize,
    mr: usize,
    out: *mut T,
    ld: usize,
) {
    unsafe {
        if cs == 1 {
            let panels = mc.div_ceil(mr);
            // Rows contiguous: read each row once.
            for r in 0..panels {
                let dst = out.add(r * ld);
                for i in 0..mr.min(mc - r * mr) {
                    let row = a.offset((r * mr + i) as isize * rs);
                    for p in 0..kc {
                        *dst.add(p * mr + i) = *row.add(p);
                    }
                }
            }
        } else if rs == 1 {
            // Columns contiguous (A stored transposed): each column of the block is `mc`
            // consecutive elements, split into whole micro-panel rows.
            match mr {
                4 => pack_a_columns::<T, 4>(mc, kc, a, cs, out, ld),
                6 => pack_a_columns::<T, 6>(mc, kc, a, cs, out, ld),
                8 => pack_a_columns::<T, 8>(mc, kc, a, cs, out, ld),
                _ => pack_a_strided(mc, kc, a, rs, cs, mr, out, ld),
            }
        } else {
            pack_a_strided(mc, kc, a, rs, cs, mr, out, ld);
        }
    }
}

/// [`pack_a_cols`] for any strides: the columns of the block in turn, each read once
/// across all panels, element by element.
///
/// # Safety
/// As [`pack_a_cols`].
#[allow(clippy::too_many_arguments)]
unsafe fn pack_a_strided<T: Element>(
    mc: usize,
    kc: usize,
    a: *const T,
    rs: isize,
    cs: isize,
    mr: usize,
    out: *mut T,
    ld: usize,
) {
    unsafe {
        let panels = mc.div_ceil(mr);
        for p in 0..kc {
            let col = a.offset(p as isize * cs);
            for r in 0..panels {
                let dst = out.add(r * ld + p * mr);
                for i in 0..mr.min(mc - r * mr) {
                    *dst.add(i) = *col.offset((r * mr + i) as isize * rs);
                }
            }
        }
    }
}

/// Columns of A ahead of the one being copied that [`pack_a_columns`] asks the processor to
/// fetch: the columns are far apart (A's row length), so the hardware's sequential
/// prefetcher does not see them coming.
const PREFETCH_COLUMNS: usize = 8;

/// [`pack_a_cols`] when A's columns are contiguous (`rs == 1`), for micro-panels of `MR`
/// rows: each full micro-panel row is one fixed-size copy (vector moves), the columns
/// [`PREFETCH_COLUMNS`] ahead are prefetched.
///
/// # Safety
/// As [`pack_a_cols`] with `rs == 1`.
unsafe fn pack_a_columns<T: Element, const MR: usize>(
    mc: usize,
    kc: usize,
    a: *const T,
    cs: isize,
    out: *mut T,
    ld: usize,
) {
    let full = mc / MR;
    let rest = mc - full * MR;
    let line = 64 / size_of::<T>();
    unsafe {
        for p in 0..kc {
            let col = a.offset(p as isize * cs);
            if p + PREFETCH_COLUMNS < kc {
                let ahead = a.offset((p + PREFETCH_COLUMNS) as isize * cs);
                for i in (0..mc).step_by(line) {
                    prefetch(ahead.add(i));
                }
            }
            for r in 0..full {
                let src = col.add(r * MR) as *const [T; MR];
                let dst = out.add(r * ld + p * MR) as *mut [T; MR];
                dst.write_unaligned(src.read_unaligned());
            }
            if rest > 0 {
                let dst = out.add(full * ld + p * MR);
                for i in 0..rest {
                    *dst.add(i) = *col.add(full * MR + i);
                }
            }
        }
    }
}

/// Asks the processor to bring the cache line holding `p` into L1 (a hint: no effect where
/// the instruction set has none).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
