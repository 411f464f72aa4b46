//! This machine's measured floating-point peak: an FMA-throughput loop per [`Isa`].
//!
//! Each loop keeps 12 independent vector accumulators busy (enough to cover the FMA latency
//! on every current x86 core) and counts 2 flops per lane per fused multiply-add. The
//! result is what one thread reaches here and now, boost clock and neighbours included, so
//! it is the right denominator for "fraction of peak" figures measured in the same run.

use super::Isa;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Accumulators per loop.
const ACC: usize = 12;

/// Runs of the probe; the best counts (other work on a shared machine only slows a run).
const RUNS: u64 = 15;

/// Measured single-thread f32 peak of `isa` in GFLOP/s: the best of 15 runs of about
/// `millis / 15` milliseconds each. `isa` is capped to what the processor has.
pub fn peak_gflops_f32(isa: Isa, millis: u64) -> f64 {
    let isa = isa.capped();
    let per_run = Duration::from_millis((millis / RUNS).max(1));
    // Calibrate the iteration count on a short run.
    let mut iters = 1 << 14;
    loop {
        let t = Instant::now();
        run(isa, iters);
        if t.elapsed() >= per_run / 8 || iters >= 1 << 30 {
            let scale = per_run.as_secs_f64() / t.elapsed().as_secs_f64().max(1e-9);
            iters = ((iters as f64 * scale) as usize).max(1);
            break;
        }
        iters *= 4;
    }
    let flops = (iters * ACC * isa.f32_lanes() * 2) as f64;
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            run(isa, iters);
            flops / t.elapsed().as_secs_f64().max(1e-9) / 1e9
        })
        .fold(0.0, f64::max)
}

fn run(isa: Isa, iters: usize) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `capped` guarantees the processor has the features.
        Isa::Avx512 => black_box(unsafe { x86::fma512(black_box(iters)) }),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => black_box(unsafe { x86::fma256(black_box(iters)) }),
        _ => black_box(portable(black_box(iters))),
    };
}

/// Multiply-then-add on 48 lanes (vectorized by the compiler for the baseline target: SSE2
/// has no FMA, so the peak counts a multiply and an add per lane).
fn portable(iters: usize) -> f32 {
    let mut acc = [0f32; 4 * ACC];
    let (a, b) = (black_box(1.000_000_1f32), black_box(0.999_999f32));
    let (av, bv) = ([a; 4 * ACC], [b; 4 * ACC]);
    for _ in 0..iters {
        for ((l, x), y) in acc.iter_mut().zip(&av).zip(&bv) {
            *l = *l * x + y;
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::ACC;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma512(iters: usize) -> f32 {
        let mut acc = [_mm512_setzero_ps(); ACC];
        let a = _mm512_set1_ps(1.000_000_1);
        let b = _mm512_set1_ps(0.999_999);
        for _ in 0..iters {
            for r in acc.iter_mut() {
                *r = _mm512_fmadd_ps(*r, a, b);
            }
        }
        let s = acc
            .iter()
            .fold(_mm512_setzero_ps(), |s, r| _mm512_add_ps(s, *r));
        _mm512_reduce_add_ps(s)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma256(iters: usize) -> f32 {
        let mut acc = [_mm256_setzero_ps(); ACC];
        let a = _mm256_set1_ps(1.000_000_1);
        let b = _mm256_set1_ps(0.999_999);
        for _ in 0..iters {
            for r in acc.iter_mut() {
                *r = _mm256_fmadd_ps(*r, a, b);
            }
        }
        let s = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, r| _mm256_add_ps(s, *r));
        let lo = _mm256_castps256_ps128(s);
        let hi = _mm256_extractf128_ps::<1>(s);
        let q = _mm_add_ps(lo, hi);
        let mut out = [0f32; 4];
        // SAFETY: `out` holds four floats.
        unsafe { _mm_storeu_ps(out.as_mut_ptr(), q) };
        out.iter().sum()
    }
}
