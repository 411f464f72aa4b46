//! SGEMM speed per ISA path against this machine's measured FMA peak.
//!
//! `cargo run --release -p xenon-runtime --example gemm_speed [-- [cold] M N K ...]`
use std::time::Instant;
use xenon_runtime::cpu::gemm::{Isa, MatMut, MatRef, gemm, peak::peak_gflops_f32};

/// Packing speed of a `k × n` block of B, contiguous along n or along k (transposed).
fn pack_speed(k: usize, n: usize) {
    use xenon_runtime::cpu::gemm::{Element, pack::pack_b};
    let b: Vec<f32> = (0..k * n).map(|i| i as f32).collect();
    let kern = f32::kernels(Isa::detect());
    let panels = n.div_ceil(kern.nr);
    let mut out = vec![0f32; panels * k * kern.nr];
    for (name, rs, cs) in [("contiguous", n as isize, 1), ("transposed", 1, k as isize)] {
        let mut ts: Vec<f64> = (0..9)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..20 {
                    unsafe {
                        pack_b(
                            k,
                            n,
                            b.as_ptr(),
                            rs,
                            cs,
                            kern.nr,
                            out.as_mut_ptr(),
                            0..panels,
                            kern.transpose,
                        )
                    };
                }
                t.elapsed().as_secs_f64() / 20.0
            })
            .collect();
        ts.sort_by(f64::total_cmp);
        println!("  pack {k}x{n} {name}: {:.1} us", ts[4] * 1e6);
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("pack") {
        pack_speed(784, 128);
        pack_speed(784, 100);
        return;
    }
    // `cold` among the arguments: time single products with caches flushed before each.
    let mut flush = std::env::args()
        .any(|a| a == "cold")
        .then(|| vec![0f32; 64 << 20 >> 2]);
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let shapes: Vec<(usize, usize, usize)> = if args.len() >= 3 {
        args.chunks_exact(3).map(|c| (c[0], c[1], c[2])).collect()
    } else {
        vec![
            (1024, 1024, 1024),
            (1024, 2048, 2048),
            (1024, 2048, 784),
            (128, 100, 784),
            (100, 784, 128),
            (1, 100, 784),
        ]
    };
    for isa in Isa::ALL
        .iter()
        .rev()
        .filter(|i| i.available() && **i != Isa::Portable)
    {
        let peak = peak_gflops_f32(*isa, 200);
        println!("{isa}: peak {peak:.1} GFLOP/s");
        for &(m, n, k) in &shapes {
            for (tn, ta) in [(false, false), (true, false), (false, true)] {
                let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
                let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
                let mut c = vec![0f32; m * n];
                let av = if ta {
                    MatRef::new(a.as_ptr(), 1, m as isize)
                } else {
                    MatRef::new(a.as_ptr(), k as isize, 1)
                };
                let bv = if tn {
                    MatRef::new(b.as_ptr(), 1, k as isize)
                } else {
                    MatRef::new(b.as_ptr(), n as isize, 1)
                };
                let fl = 2.0 * (m * n * k) as f64;
                let reps = ((1e9 / fl) as usize).clamp(2, 5000);
                let mut run = || unsafe {
                    gemm(
                        *isa,
                        m,
                        n,
                        k,
                        av,
                        bv,
                        MatMut::new(c.as_mut_ptr(), n as isize, 1),
                        false,
                        None,
                    )
                };
                run();
                let mut ts: Vec<f64> = (0..7)
                    .map(|_| {
                        if let Some(f) = flush.as_mut() {
                            // Evict A, B and C from the caches (as inside a training step,
                            // where other tensors pass through between two products).
                            f.iter_mut().for_each(|x| *x += 1.0);
                            let t = Instant::now();
                            run();
                            return t.elapsed().as_secs_f64();
                        }
                        let t = Instant::now();
                        for _ in 0..reps {
                            run();
                        }
                        t.elapsed().as_secs_f64() / reps as f64
                    })
                    .collect();
                ts.sort_by(f64::total_cmp);
                let g = fl / ts[3] / 1e9;
                println!(
                    "  {m}x{n}x{k} {}{}: {:.1} GF/s ({:.0}% of peak), {:.1} us",
                    if ta { "At" } else { "A" },
                    if tn { "Bt" } else { "B" },
                    g,
                    100.0 * g / peak,
                    ts[3] * 1e6
                );
            }
        }
    }
}
