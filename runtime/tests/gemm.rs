//! GEMM against a plain f64 triple loop, on every ISA path, for random shapes, layouts,
//! strides and the accumulate flag; thread-count determinism; agreement between paths.

use xenon_runtime::cpu::gemm::{self, Element, Isa, MatMut, MatRef, Parallel};
use xenon_runtime::rng;

/// A strided matrix in a buffer with padding: `(i, j)` at `off + i·rs + j·cs`.
#[derive(Clone, Copy, Debug)]
struct Layout {
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
    off: usize,
}

impl Layout {
    /// Row-major or column-major with `pad` extra elements per leading dimension.
    fn new(rows: usize, cols: usize, col_major: bool, pad: usize) -> Layout {
        let (rs, cs) = if col_major {
            (1, (rows + pad) as isize)
        } else {
            ((cols + pad) as isize, 1)
        };
        Layout {
            rows,
            cols,
            rs,
            cs,
            off: pad,
        }
    }
    fn len(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            return self.off;
        }
        self.off
            + ((self.rows - 1) as isize * self.rs + (self.cols - 1) as isize * self.cs) as usize
            + 1
    }
    fn at(&self, i: usize, j: usize) -> usize {
        (self.off as isize + i as isize * self.rs + j as isize * self.cs) as usize
    }
}

trait TestElem: Element {
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    const TOL: f64;
}
impl TestElem for f32 {
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    const TOL: f64 = 1e-5;
}
impl TestElem for f64 {
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    const TOL: f64 = 1e-12;
}

fn fill<T: TestElem>(len: usize, seed: u64) -> Vec<T> {
    (0..len as u64)
        .map(|i| T::from_f64(rng::uniform_f32(seed, 0, i) as f64 * 2.0 - 1.0))
        .collect()
}

#[derive(Debug)]
struct Case {
    m: usize,
    n: usize,
    k: usize,
    a: Layout,
    b: Layout,
    c: Layout,
    accumulate: bool,
}

/// Runs `case` on `isa` with `threads` threads; returns A, B, C before and C after.
fn run<T: TestElem>(
    case: &Case,
    isa: Isa,
    threads: usize,
    seed: u64,
) -> (Vec<T>, Vec<T>, Vec<T>, Vec<T>) {
    let a = fill::<T>(case.a.len(), seed);
    let b = fill::<T>(case.b.len(), seed + 1);
    let c0 = fill::<T>(case.c.len(), seed + 2);
    let mut c = c0.clone();
    let pool = pool(threads);
    let par = parallel(&pool, threads);
    // SAFETY: the layouts address the buffers, and C's elements are distinct.
    unsafe {
        gemm::gemm(
            isa,
            case.m,
            case.n,
            case.k,
            MatRef::new(a.as_ptr().add(case.a.off), case.a.rs, case.a.cs),
            MatRef::new(b.as_ptr().add(case.b.off), case.b.rs, case.b.cs),
            MatMut::new(c.as_mut_ptr().add(case.c.off), case.c.rs, case.c.cs),
            case.accumulate,
            par,
        )
    };
    (a, b, c0, c)
}

/// Checks C against the f64 reference (and that nothing outside C changed).
fn check<T: TestElem>(case: &Case, isa: Isa, threads: usize, seed: u64) -> Vec<T> {
    let (a, b, c0, c) = run::<T>(case, isa, threads, seed);
    let mut inside = vec![false; c.len()];
    for i in 0..case.m {
        for j in 0..case.n {
            let (mut want, mut mag) = (0f64, 0f64);
            for p in 0..case.k {
                let x = a[case.a.at(i, p)].to_f64() * b[case.b.at(p, j)].to_f64();
                want += x;
                mag += x.abs();
            }
            let at = case.c.at(i, j);
            inside[at] = true;
            if case.accumulate {
                want += c0[at].to_f64();
                mag += c0[at].to_f64().abs();
            }
            let got = c[at].to_f64();
            assert!(
                (got - want).abs() <= T::TOL * (mag + 1.0),
                "{isa}, {threads} thread(s), {case:?}: C[{i},{j}] = {got}, want {want}"
            );
        }
    }
    for (at, (x, y)) in c.iter().zip(&c0).enumerate() {
        assert!(
            inside[at] || x == y,
            "{isa}: element {at} outside C was written"
        );
    }
    c
}

/// Shapes around every tile and block edge of every path, plus random ones.
fn cases() -> Vec<Case> {
    let mut dims = vec![
        (1, 1, 1),
        (1, 100, 784),
        (2, 100, 784),
        (5, 33, 17),
        (6, 64, 8),
        (7, 65, 9),
        (13, 17, 600),
        (128, 100, 784),
        (100, 784, 128),
        (128, 10, 100),
        (64, 600, 40),
        (3, 4100, 3),
        (9, 1, 1100),
        (4, 7, 0),
        (0, 5, 3),
    ];
    for s in 0..24u64 {
        let r = |t: u64, hi: u64| 1 + (rng::bits(900 + s, 0, t) % hi) as usize;
        dims.push((r(0, 80), r(1, 150), r(2, 300)));
    }
    let mut out = Vec::new();
    for (idx, &(m, n, k)) in dims.iter().enumerate() {
        let v = idx as u64;
        out.push(Case {
            m,
            n,
            k,
            a: Layout::new(m, k, v % 2 == 1, (v % 3) as usize),
            b: Layout::new(k, n, v % 4 >= 2, (v % 5 % 2) as usize),
            c: Layout::new(m, n, v % 8 >= 6, (v % 3 % 2) as usize),
            accumulate: v % 3 == 2,
        });
    }
    // A stored by columns a page or more apart: packed from its contiguous columns on every
    // path (with a partial micro-panel at the end).
    out.push(Case {
        m: 1031,
        n: 70,
        k: 33,
        a: Layout::new(1031, 33, true, 1),
        b: Layout::new(33, 70, false, 0),
        c: Layout::new(1031, 70, false, 0),
        accumulate: false,
    });
    // Dot products (B contiguous along k) for a few rows of an A stored by columns: blocks of
    // rows, then the row left over.
    out.push(Case {
        m: 5,
        n: 37,
        k: 70,
        a: Layout::new(5, 70, true, 2),
        b: Layout::new(70, 37, true, 1),
        c: Layout::new(5, 37, false, 0),
        accumulate: true,
    });
    // Ragged edges run as products of their own: a few columns past whole vectors, and
    // (in the other orientation) a few rows.
    for (m, n, a_cols) in [(128, 100, false), (100, 64, true)] {
        out.push(Case {
            m,
            n,
            k: 300,
            a: Layout::new(m, 300, a_cols, 0),
            b: Layout::new(300, n, false, 0),
            c: Layout::new(m, n, false, 1),
            accumulate: false,
        });
    }
    out
}

fn every_path<T: TestElem>() {
    for isa in Isa::ALL {
        for (s, case) in cases().iter().enumerate() {
            check::<T>(case, isa, 1, s as u64 * 7);
        }
    }
}

#[test]
fn f32_matches_the_reference_on_every_path() {
    every_path::<f32>();
}

#[test]
fn f64_matches_the_reference_on_every_path() {
    every_path::<f64>();
}

#[test]
fn threads_give_bit_identical_results() {
    for isa in Isa::ALL {
        for (s, case) in cases().iter().enumerate() {
            let one = check::<f32>(case, isa, 1, s as u64);
            let two = check::<f32>(case, isa, 2, s as u64);
            let three = check::<f32>(case, isa, 3, s as u64);
            assert_eq!(one, two, "{isa}: case {s}");
            assert_eq!(one, three, "{isa}: case {s}");
        }
    }
}

/// A pool of `threads` threads.
fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// The GEMM's split over `pool` (none for one thread).
fn parallel(pool: &rayon::ThreadPool, threads: usize) -> Option<Parallel<'_>> {
    (threads > 1).then_some(Parallel { pool, threads })
}

/// `gemm_sum` (products summed over a batch, their depth packed across the products'
/// boundaries) against the f64 sum of the products, on every path, for depths that fit one
/// block several times over, split blocks, and cross [`gemm::KC`]; with 1 and 3 threads
/// bit-identical.
fn check_sum<T: TestElem>(isa: Isa, threads: usize) -> Vec<Vec<T>> {
    let mut results = Vec::new();
    let pool = pool(threads);
    let par = parallel(&pool, threads);
    let mut seed = 11;
    for &(m, n, k, batch) in &[
        (32, 400, 64, 9),
        (16, 25, 576, 5),
        (7, 70, 3, 40),
        (13, 130, 700, 3),
        (3, 5, 9, 4),
        (40, 17, 1100, 2),
        (8, 65, 1, 1),
    ] {
        for (a_cm, b_cm, accumulate) in [(false, true, false), (true, false, true)] {
            seed += 3;
            let (la, lb, lc) = (
                Layout::new(m, k, a_cm, 1),
                Layout::new(k, n, b_cm, 2),
                Layout::new(m, n, false, 0),
            );
            let (sa, sb) = (la.len() + 5, lb.len() + 3);
            let a = fill::<T>(sa * batch, seed);
            let b = fill::<T>(sb * batch, seed + 1);
            let c0 = fill::<T>(lc.len(), seed + 2);
            let mut c = c0.clone();
            // SAFETY: product i's views address inside the buffers.
            unsafe {
                gemm::gemm_sum(
                    isa,
                    m,
                    n,
                    k,
                    batch,
                    MatRef::new(a.as_ptr().add(la.off), la.rs, la.cs),
                    sa as isize,
                    MatRef::new(b.as_ptr().add(lb.off), lb.rs, lb.cs),
                    sb as isize,
                    MatMut::new(c.as_mut_ptr(), lc.rs, lc.cs),
                    accumulate,
                    par,
                )
            };
            for i in 0..m {
                for j in 0..n {
                    let (mut want, mut mag) = (0f64, 0f64);
                    for q in 0..batch {
                        for p in 0..k {
                            let x =
                                a[q * sa + la.at(i, p)].to_f64() * b[q * sb + lb.at(p, j)].to_f64();
                            want += x;
                            mag += x.abs();
                        }
                    }
                    if accumulate {
                        want += c0[lc.at(i, j)].to_f64();
                        mag += c0[lc.at(i, j)].to_f64().abs();
                    }
                    let got = c[lc.at(i, j)].to_f64();
                    assert!(
                        (got - want).abs() <= T::TOL * (mag + 1.0),
                        "{isa}, {m}x{n}x{k} batch {batch}: C[{i},{j}] = {got}, want {want}"
                    );
                }
            }
            results.push(c);
        }
    }
    results
}

#[test]
fn summed_products_match_the_reference_on_every_path() {
    for isa in Isa::ALL {
        let one = check_sum::<f32>(isa, 1);
        assert_eq!(one, check_sum::<f32>(isa, 3), "{isa}: threads");
        check_sum::<f64>(isa, 1);
    }
}

#[test]
fn paths_agree_to_1e5_relative() {
    let case = Case {
        m: 96,
        n: 200,
        k: 700,
        a: Layout::new(96, 700, false, 0),
        b: Layout::new(700, 200, true, 0),
        c: Layout::new(96, 200, false, 0),
        accumulate: false,
    };
    let results: Vec<Vec<f32>> = Isa::ALL
        .iter()
        .map(|&isa| run::<f32>(&case, isa, 1, 3).3)
        .collect();
    let scale = results[0].iter().fold(0f32, |m, x| m.max(x.abs())) as f64;
    for r in &results[1..] {
        for (x, y) in results[0].iter().zip(r) {
            assert!(((x - y) as f64).abs() <= 1e-5 * scale, "{x} vs {y}");
        }
    }
}

#[test]
fn isa_names_parse_and_cap() {
    for isa in Isa::ALL {
        assert_eq!(isa.name().parse::<Isa>().unwrap(), isa);
        assert!(isa.capped() <= isa);
        assert!(isa.capped().available());
    }
    assert!(Isa::Portable.available());
    assert!(Isa::best().available());
    assert!(Isa::detect() <= Isa::best());
    let err = "sse9".parse::<Isa>().unwrap_err().to_string();
    assert!(err.contains("avx512, avx2, portable"), "{err}");
}

#[test]
fn peak_probe_measures_something_plausible() {
    // 1 GFLOP/s is far below any machine this runs on; 10 TFLOP/s far above one core.
    let p = gemm::peak::peak_gflops_f32(Isa::detect(), 20);
    assert!(p > 1.0 && p < 10_000.0, "{p}");
}
