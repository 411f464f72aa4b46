//! Kernels written once in plain Rust, generic over the element type and compiled three
//! times: for the baseline target ([`Isa::Portable`](super::Isa)), and inside
//! `#[target_feature]` wrappers for AVX2 + FMA and AVX-512, where the compiler vectorizes
//! the fixed-size accumulator arrays with the wider registers and fuses multiply-adds.
//!
//! They serve every f64 GEMM, every GEMM on the portable path, and the small-`m` path
//! (matrix–vector shaped products, e.g. batch-1 inference), which reads B where it lies
//! instead of packing it.

use super::{Element, SmallArgs, UkrArgs};

/// `a·b + c`, fused when `FMA` (only inside functions compiled with the `fma` feature,
/// where it is one instruction).
#[inline(always)]
fn madd<T: Element, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// The generic micro-kernel: `M` rows × `NR` columns (the packed panel width).
///
/// # Safety
/// `x` must satisfy the [`UkrArgs`] contract with `M` rows and `x.nr ≤ NR`.
#[inline(always)]
unsafe fn ukr<T: Element, const M: usize, const NR: usize, const FMA: bool>(x: &UkrArgs<T>) {
    unsafe {
        let mut acc = [[T::ZERO; NR]; M];
        let mut a = x.a;
        let mut b = x.b;
        let packed = x.packed;
        let mut last = [T::ZERO; NR];
        for _ in 0..x.kc {
            let brow = if packed {
                &*(b as *const [T; NR])
            } else {
                // B in place: read only the valid columns.
                std::ptr::copy_nonoverlapping(b, last.as_mut_ptr(), x.nr);
                &last
            };
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = *a.offset(i as isize * x.rs_a);
                for j in 0..NR {
                    row[j] = madd::<T, FMA>(ai, brow[j], row[j]);
                }
            }
            a = a.offset(x.cs_a);
            b = b.add(x.ldb);
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, v) in row.iter().enumerate().take(x.nr) {
                let p = x.c.offset(i as isize * x.rs_c + j as isize * x.cs_c);
                *p = if x.accumulate { *p + *v } else { *v };
            }
        }
    }
}

/// The generic micro-kernel for the baseline target.
///
/// # Safety
/// As for the generic kernel.
pub unsafe fn ukr_portable<T: Element, const M: usize, const NR: usize>(x: &UkrArgs<T>) {
    unsafe { ukr::<T, M, NR, false>(x) }
}

/// The generic micro-kernel compiled for AVX2 + FMA.
///
/// # Safety
/// AVX2 and FMA must be present; otherwise as for the generic kernel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn ukr_avx2<T: Element, const M: usize, const NR: usize>(x: &UkrArgs<T>) {
    unsafe { ukr::<T, M, NR, true>(x) }
}

/// The generic micro-kernel compiled for AVX-512.
///
/// # Safety
/// AVX-512 F must be present; otherwise as for the generic kernel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn ukr_avx512<T: Element, const M: usize, const NR: usize>(x: &UkrArgs<T>) {
    unsafe { ukr::<T, M, NR, true>(x) }
}

/// Lanes per column in the small-`m` dot products (one 512-bit f32 vector).
const L: usize = 16;
/// Columns of B reduced together (sharing the loads of A's row).
const J: usize = 4;

/// `[Σ x[i]·y_c[i] for c in 0..J]`: `J` dot products over `L` interleaved partial sums,
/// added pairwise at the end.
#[inline(always)]
fn dots<T: Element, const FMA: bool>(x: &[T], y: [&[T]; J]) -> [T; J] {
    let mut acc = [[T::ZERO; L]; J];
    let n = x.len() / L * L;
    for p in (0..n).step_by(L) {
        let xs: &[T; L] = x[p..p + L].try_into().expect("L elements");
        for (c, ac) in acc.iter_mut().enumerate() {
            let ys: &[T; L] = y[c][p..p + L].try_into().expect("L elements");
            for l in 0..L {
                ac[l] = madd::<T, FMA>(xs[l], ys[l], ac[l]);
            }
        }
    }
    for p in n..x.len() {
        for (c, ac) in acc.iter_mut().enumerate() {
            ac[p - n] = madd::<T, FMA>(x[p], y[c][p], ac[p - n]);
        }
    }
    acc.map(|mut a| {
        let mut w = L;
        while w > 1 {
            w /= 2;
            for l in 0..w {
                a[l] = a[l] + a[l + w];
            }
        }
        a[0]
    })
}

/// The small-`m` product: each row of C from one pass over B, without packing.
///
/// # Safety
/// `s` must satisfy the [`SmallArgs`] contract.
#[inline(always)]
unsafe fn small<T: Element, const FMA: bool>(s: &SmallArgs<T>) {
    unsafe {
        let at = |i: usize, p: usize| *s.a.offset(i as isize * s.rs_a + p as isize * s.cs_a);
        let c_at = |i: usize, j: usize| s.c.offset(i as isize * s.rs_c + j as isize * s.cs_c);
        let put = |p: *mut T, v: T| *p = if s.accumulate { *p + v } else { v };
        let mut row = vec![T::ZERO; s.k.max(s.n)];
        if s.rs_b == 1 {
            // B is contiguous along k (a transposed matrix): one dot product per element.
            for i in 0..s.m {
                for (p, r) in row[..s.k].iter_mut().enumerate() {
                    *r = at(i, p);
                }
                let col =
                    |j: usize| std::slice::from_raw_parts(s.b.offset(j as isize * s.cs_b), s.k);
                for j0 in (0..s.n).step_by(J) {
                    // The last group repeats its final column (computed, not stored).
                    let cols = std::array::from_fn(|c| col((j0 + c).min(s.n - 1)));
                    let d = dots::<T, FMA>(&row[..s.k], cols);
                    for (c, v) in d.iter().enumerate().take(s.n - j0) {
                        put(c_at(i, j0 + c), *v);
                    }
                }
            }
        } else if s.cs_b == 1 {
            // B is contiguous along n: accumulate scaled rows of B.
            for i in 0..s.m {
                let acc = &mut row[..s.n];
                acc.fill(T::ZERO);
                for p in 0..s.k {
                    let a = at(i, p);
                    let brow = std::slice::from_raw_parts(s.b.offset(p as isize * s.rs_b), s.n);
                    for (c, b) in acc.iter_mut().zip(brow) {
                        *c = madd::<T, FMA>(a, *b, *c);
                    }
                }
                for (j, v) in acc.iter().enumerate() {
                    put(c_at(i, j), *v);
                }
            }
        } else {
            for i in 0..s.m {
                for j in 0..s.n {
                    let mut v = T::ZERO;
                    for p in 0..s.k {
                        v = madd::<T, FMA>(
                            at(i, p),
                            *s.b.offset(p as isize * s.rs_b + j as isize * s.cs_b),
                            v,
                        );
                    }
                    put(c_at(i, j), v);
                }
            }
        }
    }
}

/// The small-`m` product for the baseline target.
///
/// # Safety
/// `s` must satisfy the [`SmallArgs`] contract.
pub unsafe fn small_portable<T: Element>(s: &SmallArgs<T>) {
    unsafe { small::<T, false>(s) }
}

/// The small-`m` product compiled for AVX2 + FMA.
///
/// # Safety
/// AVX2 and FMA must be present; `s` must satisfy the [`SmallArgs`] contract.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn small_avx2<T: Element>(s: &SmallArgs<T>) {
    unsafe { small::<T, true>(s) }
}

/// The small-`m` product compiled for AVX-512.
///
/// # Safety
/// AVX-512 F must be present; `s` must satisfy the [`SmallArgs`] contract.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn small_avx512<T: Element>(s: &SmallArgs<T>) {
    unsafe { small::<T, true>(s) }
}
