//! x86-64 micro-kernels with explicit AVX-512 and AVX2 + FMA intrinsics (f32).
//!
//! A kernel `M×V` keeps an `M × V` block of vector accumulators in registers: for every
//! `p` it loads `V` vectors of the packed B panel (one row, contiguous), broadcasts `M`
//! elements of A, and issues `M·V` fused multiply-adds. AVX-512 uses up to 6×4 (24 of 32
//! registers, a 6×64 tile), AVX2 up to 6×2 (12 of 16, a 6×16 tile).

use super::{F32_AVX2, F32_AVX512, SmallArgs, UkrArgs, generic, small_in_place};
use std::arch::x86_64::*;

/// Scalar write-back of a tile held in `t` (row stride `ts`): the rows `..m`, columns `..nr`.
///
/// # Safety
/// `x.c` must address an `m × x.nr` block with strides `x.rs_c`, `x.cs_c`.
#[inline(always)]
unsafe fn write_back(x: &UkrArgs<f32>, m: usize, t: &[f32], ts: usize) {
    unsafe {
        for i in 0..m {
            for j in 0..x.nr {
                let p = x.c.offset(i as isize * x.rs_c + j as isize * x.cs_c);
                let v = t[i * ts + j];
                *p = if x.accumulate { *p + v } else { v };
            }
        }
    }
}

/// AVX-512 kernel: `M` rows × `V` vectors of 16 lanes; packed panel width 64.
///
/// # Safety
/// AVX-512 F must be present; `x` must satisfy the [`UkrArgs`] contract with `M` rows
/// and `x.nr ≤ 16·V`.
#[target_feature(enable = "avx512f")]
pub unsafe fn ukr_avx512<const M: usize, const V: usize>(x: &UkrArgs<f32>) {
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); V]; M];
        let mut a = x.a;
        let mut b = x.b;
        // The last vector reads only the valid columns (B in place may end there).
        let tail = x.nr.saturating_sub((V - 1) * 16).min(16);
        let last: __mmask16 = if tail == 16 {
            0xffff
        } else {
            (1u16 << tail) - 1
        };
        if x.accumulate && x.cs_c == 1 {
            for i in 0..M {
                let c = x.c.offset(i as isize * x.rs_c);
                for v in 0..V {
                    _mm_prefetch::<_MM_HINT_T0>(c.add(v * 16) as *const i8);
                }
            }
        }
        for _ in 0..x.kc {
            if x.packed {
                for v in 0..V {
                    _mm_prefetch::<_MM_HINT_T0>(b.add(8 * 64 + v * 16) as *const i8);
                }
            }
            let mut bv = [_mm512_setzero_ps(); V];
            for (v, r) in bv.iter_mut().enumerate() {
                *r = if v + 1 == V {
                    _mm512_maskz_loadu_ps(last, b.add(v * 16))
                } else {
                    _mm512_loadu_ps(b.add(v * 16))
                };
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*a.offset(i as isize * x.rs_a));
                for v in 0..V {
                    row[v] = _mm512_fmadd_ps(ai, bv[v], row[v]);
                }
            }
            a = a.offset(x.cs_a);
            b = b.add(x.ldb);
        }
        if x.cs_c == 1 {
            // Contiguous rows: (masked) vector stores.
            for (i, row) in acc.iter().enumerate() {
                let c = x.c.offset(i as isize * x.rs_c);
                for (v, r) in row.iter().enumerate() {
                    let lo = v * 16;
                    if lo >= x.nr {
                        break;
                    }
                    let left = x.nr - lo;
                    let mask: __mmask16 = if left >= 16 {
                        0xffff
                    } else {
                        (1u16 << left) - 1
                    };
                    let p = c.add(lo);
                    let val = if x.accumulate {
                        _mm512_add_ps(_mm512_maskz_loadu_ps(mask, p), *r)
                    } else {
                        *r
                    };
                    _mm512_mask_storeu_ps(p, mask, val);
                }
            }
        } else {
            let mut t = [0f32; 6 * 64];
            for (i, row) in acc.iter().enumerate() {
                for (v, r) in row.iter().enumerate() {
                    _mm512_storeu_ps(t.as_mut_ptr().add(i * 64 + v * 16), *r);
                }
            }
            write_back(x, M, &t, 64);
        }
    }
}

/// AVX2 kernel: `M` rows × `V` vectors of 8 lanes; packed panel width 16.
///
/// # Safety
/// AVX2 and FMA must be present; `x` must satisfy the [`UkrArgs`] contract with `M` rows
/// and `x.nr ≤ 8·V`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn ukr_avx2<const M: usize, const V: usize>(x: &UkrArgs<f32>) {
    unsafe {
        // B in place may end at column nr: the last vector then reads under a mask.
        let tail = x.nr.saturating_sub((V - 1) * 8).min(8);
        // One loop per case, so that the hot loop holds neither a branch nor (unless
        // masked) a mask register: 16 vector registers are 12 accumulators, 2 of B and a
        // broadcast of A.
        let acc = if !x.packed && tail < 8 {
            avx2_loop::<M, V, true, false>(x, lane_mask8(tail))
        } else if x.rs_a == 1 {
            avx2_loop::<M, V, false, true>(x, _mm256_setzero_si256())
        } else {
            avx2_loop::<M, V, false, false>(x, _mm256_setzero_si256())
        };
        if x.cs_c == 1 && x.nr == 8 * V {
            for (i, row) in acc.iter().enumerate() {
                let c = x.c.offset(i as isize * x.rs_c);
                for (v, r) in row.iter().enumerate() {
                    let p = c.add(v * 8);
                    let val = if x.accumulate {
                        _mm256_add_ps(_mm256_loadu_ps(p), *r)
                    } else {
                        *r
                    };
                    _mm256_storeu_ps(p, val);
                }
            }
        } else {
            let mut t = [0f32; 6 * 16];
            for (i, row) in acc.iter().enumerate() {
                for (v, r) in row.iter().enumerate() {
                    _mm256_storeu_ps(t.as_mut_ptr().add(i * 16 + v * 8), *r);
                }
            }
            write_back(x, M, &t, 16);
        }
    }
}

/// The multiply-add loop of [`ukr_avx2`]: `MASKED` reads B's last vector under `last`;
/// `UNIT_ROWS` takes A's rows as adjacent (`rs_a == 1`, a packed micro-panel) so that
/// their offsets are constants.
///
/// # Safety
/// As [`ukr_avx2`].
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_loop<const M: usize, const V: usize, const MASKED: bool, const UNIT_ROWS: bool>(
    x: &UkrArgs<f32>,
    last: __m256i,
) -> [[__m256; V]; M] {
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); V]; M];
        let mut b = x.b;
        let rs_a = if UNIT_ROWS { 1 } else { x.rs_a };
        // Row i of A at rows[i] + off.
        let rows: [*const f32; M] = std::array::from_fn(|i| x.a.offset(i as isize * rs_a));
        let mut off = 0isize;
        for _ in 0..x.kc {
            let mut bv = [_mm256_setzero_ps(); V];
            for (v, r) in bv.iter_mut().enumerate() {
                *r = if MASKED && v + 1 == V {
                    _mm256_maskload_ps(b.add(v * 8), last)
                } else {
                    _mm256_loadu_ps(b.add(v * 8))
                };
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = if UNIT_ROWS {
                    _mm256_broadcast_ss(&*x.a.offset(off + i as isize))
                } else {
                    _mm256_broadcast_ss(&*rows[i].offset(off))
                };
                for v in 0..V {
                    row[v] = _mm256_fmadd_ps(ai, bv[v], row[v]);
                }
            }
            off += x.cs_a;
            b = b.add(x.ldb);
        }
        acc
    }
}

/// A mask of the first `n` (≤ 8) of eight 32-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn lane_mask8(n: usize) -> __m256i {
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx)
}

/// Transposes a `rows × cols` block (both multiples of 8) by 8×8 blocks, column blocks
/// outermost (each destination row is written whole, in turn):
/// `dst[j·ds + i] = src[i·ss + j]`.
///
/// # Safety
/// AVX2 must be present; both blocks must be in bounds.
#[target_feature(enable = "avx2")]
pub unsafe fn transpose_block(
    src: *const f32,
    ss: usize,
    dst: *mut f32,
    ds: usize,
    rows: usize,
    cols: usize,
) {
    unsafe {
        for j in (0..cols).step_by(8) {
            for i in (0..rows).step_by(8) {
                transpose8x8(src.add(i * ss + j), ss, dst.add(j * ds + i), ds);
            }
        }
    }
}

/// Transposes an 8×8 block: `dst[j·ds + i] = src[i·ss + j]`.
///
/// # Safety
/// AVX must be present; both blocks must be in bounds.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn transpose8x8(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
    unsafe {
        // (A loop, not a closure: closures do not carry the target features.)
        let mut r = [_mm256_setzero_ps(); 8];
        for (i, v) in r.iter_mut().enumerate() {
            *v = _mm256_loadu_ps(src.add(i * ss));
        }
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let out = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (j, v) in out.iter().enumerate() {
            _mm256_storeu_ps(dst.add(j * ds), *v);
        }
    }
}

/// Columns reduced together by the dot-product routines.
const J: usize = 4;

/// The small-`m` product with AVX-512: B contiguous along `n` goes to the micro-kernels in
/// place; B contiguous along `k` (a transposed matrix, as in `x·Wᵀ`) to [`J`] dot products
/// at a time; anything else to the generic routine.
///
/// # Safety
/// AVX-512 F must be present; `s` must satisfy the [`SmallArgs`] contract with
/// `0 < s.m < 6`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn small_avx512(s: &SmallArgs<f32>) {
    unsafe {
        if s.cs_b == 1 && s.rs_b >= 0 {
            small_in_place(&F32_AVX512, s)
        } else if s.rs_b == 1 {
            small_dots::<4, 2, J>(
                s,
                |x, w| dots_avx512(x, s.k, w),
                |x, w| dots_avx512::<1, J>([x], s.k, w)[0],
            )
        } else {
            generic::small_avx512(s)
        }
    }
}

/// The small-`m` product with AVX2 + FMA (as [`small_avx512`]).
///
/// # Safety
/// AVX2 and FMA must be present; `s` must satisfy the [`SmallArgs`] contract with
/// `0 < s.m < 6`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn small_avx2(s: &SmallArgs<f32>) {
    unsafe {
        if s.cs_b == 1 && s.rs_b >= 0 {
            small_in_place(&F32_AVX2, s)
        } else if s.rs_b == 1 {
            small_dots::<1, J, J>(
                s,
                |x, w| [dots_avx2(x[0], s.k, w)],
                |x, w| dots_avx2(x, s.k, w),
            )
        } else {
            generic::small_avx2(s)
        }
    }
}

/// `C[i, j] (+)= A[i, ..] · B[.., j]` by dot products (B's columns contiguous; A's rows
/// are copied contiguous first where they are not): blocks of `R` rows × `JR` columns
/// (`dots`, each column read once for the `R` rows), then the rows left over one at a
/// time × `J1` columns (`dots1`).
#[inline(always)]
unsafe fn small_dots<const R: usize, const JR: usize, const J1: usize>(
    s: &SmallArgs<f32>,
    dots: impl Fn([*const f32; R], [*const f32; JR]) -> [[f32; JR]; R],
    dots1: impl Fn(*const f32, [*const f32; J1]) -> [f32; J1],
) {
    unsafe {
        let mut copy: Vec<f32> = Vec::new();
        if s.cs_a != 1 {
            copy.reserve_exact(s.m * s.k);
            for i in 0..s.m {
                let r = s.a.offset(i as isize * s.rs_a);
                copy.extend((0..s.k).map(|p| *r.offset(p as isize * s.cs_a)));
            }
        }
        let row = |i: usize| {
            if s.cs_a == 1 {
                s.a.offset(i as isize * s.rs_a)
            } else {
                copy.as_ptr().add(i * s.k)
            }
        };
        let store = |i: usize, j0: usize, d: &[f32]| {
            for (c, v) in d.iter().enumerate().take(s.n - j0) {
                let p = s.c.offset(i as isize * s.rs_c + (j0 + c) as isize * s.cs_c);
                *p = if s.accumulate { *p + *v } else { *v };
            }
        };
        // A last group of columns repeats its final column (computed, not stored).
        let cols = |j0: usize| move |c: usize| s.b.offset((j0 + c).min(s.n - 1) as isize * s.cs_b);
        let full = s.m / R * R;
        if full > 0 {
            for j0 in (0..s.n).step_by(JR) {
                let w = std::array::from_fn(cols(j0));
                for i0 in (0..full).step_by(R) {
                    let d = dots(std::array::from_fn(|r| row(i0 + r)), w);
                    for (r, d) in d.iter().enumerate() {
                        store(i0 + r, j0, d);
                    }
                }
            }
        }
        for i in full..s.m {
            for j0 in (0..s.n).step_by(J1) {
                store(i, j0, &dots1(row(i), std::array::from_fn(cols(j0))));
            }
        }
    }
}

/// `R × J` dot products of length `k` with AVX-512: rows `x` against columns `w`, two
/// accumulators per pair (the same order of additions whatever `R` and `J`).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn dots_avx512<const R: usize, const J: usize>(
    x: [*const f32; R],
    k: usize,
    w: [*const f32; J],
) -> [[f32; J]; R] {
    unsafe {
        let mut acc = [[[_mm512_setzero_ps(); 2]; J]; R];
        let mut p = 0;
        // Plain loops, no closures: a closure would not carry this function's target
        // features, and the intrinsics inside it would become calls.
        let (mut w0, mut w1) = ([_mm512_setzero_ps(); J], [_mm512_setzero_ps(); J]);
        while p + 32 <= k {
            for c in 0..J {
                w0[c] = _mm512_loadu_ps(w[c].add(p));
                w1[c] = _mm512_loadu_ps(w[c].add(p + 16));
            }
            for r in 0..R {
                let x0 = _mm512_loadu_ps(x[r].add(p));
                let x1 = _mm512_loadu_ps(x[r].add(p + 16));
                for c in 0..J {
                    acc[r][c][0] = _mm512_fmadd_ps(x0, w0[c], acc[r][c][0]);
                    acc[r][c][1] = _mm512_fmadd_ps(x1, w1[c], acc[r][c][1]);
                }
            }
            p += 32;
        }
        while p < k {
            let left = (k - p).min(16);
            let m: __mmask16 = if left == 16 {
                0xffff
            } else {
                (1u16 << left) - 1
            };
            for c in 0..J {
                w0[c] = _mm512_maskz_loadu_ps(m, w[c].add(p));
            }
            for r in 0..R {
                let x0 = _mm512_maskz_loadu_ps(m, x[r].add(p));
                for c in 0..J {
                    acc[r][c][0] = _mm512_fmadd_ps(x0, w0[c], acc[r][c][0]);
                }
            }
            p += left;
        }
        let mut out = [[0f32; J]; R];
        for r in 0..R {
            for c in 0..J {
                out[r][c] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][c][0], acc[r][c][1]));
            }
        }
        out
    }
}

/// [`J`] dot products of length `k` with AVX2 + FMA (two accumulators per column).
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_avx2(x: *const f32, k: usize, w: [*const f32; J]) -> [f32; J] {
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 2]; J];
        let mut p = 0;
        while p + 16 <= k {
            let x0 = _mm256_loadu_ps(x.add(p));
            let x1 = _mm256_loadu_ps(x.add(p + 8));
            for c in 0..J {
                acc[c][0] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(w[c].add(p)), acc[c][0]);
                acc[c][1] = _mm256_fmadd_ps(x1, _mm256_loadu_ps(w[c].add(p + 8)), acc[c][1]);
            }
            p += 16;
        }
        while p < k {
            let left = (k - p).min(8);
            let m = lane_mask8(left);
            let x0 = _mm256_maskload_ps(x.add(p), m);
            for c in 0..J {
                acc[c][0] = _mm256_fmadd_ps(x0, _mm256_maskload_ps(w[c].add(p), m), acc[c][0]);
            }
            p += left;
        }
        let mut out = [0f32; J];
        for (o, a) in out.iter_mut().zip(&acc) {
            let s = _mm256_add_ps(a[0], a[1]);
            let q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
            let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
            let q = _mm_add_ss(q, _mm_shuffle_ps::<1>(q, q));
            *o = _mm_cvtss_f32(q);
        }
        out
    }
}
