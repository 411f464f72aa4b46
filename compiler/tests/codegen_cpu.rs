//! Tests of the Cranelift CPU backend (`xenon_compiler::codegen::cpu`): differential tests
//! against the reference evaluator `xenon_runtime::kernel::eval` on random kernels,
//! range-split determinism, transcendental error bounds, and error handling.

use xenon_compiler::codegen::cpu::{self, CpuOptions, OptLevel, math};
use xenon_runtime::kernel::{Access, Instr, KernelArg, LoopKernel, Reduction, Store, eval};
use xenon_runtime::ops::{BinaryOp, CompareOp, ReduceOp, UnaryOp};
use xenon_runtime::{DType, TensorData};

mod common;
use common::kernel_gen::{GenMode, KernelGen, Rng, random_data};

// ------------------------------------------------------------------------------------
// Helpers

/// Runs compiled kernel `i` of `ck` on `bufs` for `range`.
fn run(
    ck: &cpu::CompiledKernels,
    i: usize,
    bufs: &mut [TensorData],
    range: std::ops::Range<usize>,
) {
    let ptrs: Vec<*mut u8> = bufs
        .iter_mut()
        .map(|b| match b {
            TensorData::F32(v) => v.as_mut_ptr() as *mut u8,
            TensorData::F64(v) => v.as_mut_ptr() as *mut u8,
            TensorData::I32(v) => v.as_mut_ptr() as *mut u8,
        })
        .collect();
    let f = ck.get(i);
    // SAFETY: the kernel was validated against these buffer lengths and dtypes (the
    // tests build `bufs` from `kernel.args`), the buffers are distinct, and `ck` is alive.
    unsafe { f(ptrs.as_ptr(), range.start, range.end) };
}

fn access(arg: usize, offset: usize, strides: &[isize]) -> Access {
    Access {
        arg,
        offset,
        strides: strides.to_vec(),
    }
}

fn arg(buffer: usize, dtype: DType, len: usize) -> KernelArg {
    KernelArg { buffer, dtype, len }
}

/// `y[i] = f(x[i])` over `n` f32 elements, for a chain of instructions over value 0.
fn unary_chain_kernel(n: usize, chain: &[Instr]) -> LoopKernel {
    let mut body = vec![Instr::Load(access(0, 0, &[1]))];
    body.extend(chain.iter().cloned());
    let last = body.len() as u32 - 1;
    LoopKernel {
        name: "unary".into(),
        shape: vec![n],
        args: vec![arg(0, DType::F32, n), arg(1, DType::F32, n)],
        body,
        reduce: None,
        stores: vec![Store {
            access: access(1, 0, &[1]),
            value: last,
        }],
    }
}

/// Monotone integer image of an f32 (±0 → 0, ±inf one step past ±MAX).
fn ord(x: f32) -> i64 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        -((b & 0x7fff_ffff) as i64)
    } else {
        b as i64
    }
}

/// Distance in f32 steps between `y` and the f32 rounding of `r`.
fn ulps(y: f32, r: f64) -> u64 {
    (ord(y) - ord(r as f32)).unsigned_abs()
}

#[derive(Default, Debug)]
struct ErrStats {
    max_ulp: u64,
    max_ulp_at: f32,
    max_abs: f64,
    max_abs_at: f32,
    nan_mismatch: u64,
    count: u64,
}

/// Evaluates the f32 function `chain` (compiled) on every input and compares with `reference`.
/// The ulp statistics only count inputs for which `ulp_domain` holds (the absolute error
/// and NaN checks count every input).
fn sweep(
    chain: &[Instr],
    opts: &CpuOptions,
    inputs: &[f32],
    reference: impl Fn(f64) -> f64,
    ulp_domain: impl Fn(f32) -> bool,
) -> ErrStats {
    let n = inputs.len();
    let k = unary_chain_kernel(n, chain);
    let ck = cpu::compile(&[&k], opts).expect("compiles");
    let mut bufs = vec![
        TensorData::F32(inputs.to_vec()),
        TensorData::F32(vec![0.0; n]),
    ];
    run(&ck, 0, &mut bufs, 0..n);
    let TensorData::F32(out) = &bufs[1] else {
        unreachable!()
    };
    let mut s = ErrStats::default();
    for (&x, &y) in inputs.iter().zip(out) {
        let r = reference(x as f64);
        s.count += 1;
        if r.is_nan() || y.is_nan() {
            if r.is_nan() != y.is_nan() {
                s.nan_mismatch += 1;
            }
            continue;
        }
        let u = if ulp_domain(x) { ulps(y, r) } else { 0 };
        if u > s.max_ulp {
            s.max_ulp = u;
            s.max_ulp_at = x;
        }
        let a = if r.is_infinite() || y.is_infinite() {
            if (r as f32) == y { 0.0 } else { f64::INFINITY }
        } else {
            (y as f64 - r).abs()
        };
        if a > s.max_abs {
            s.max_abs = a;
            s.max_abs_at = x;
        }
    }
    s
}

/// Every `step`-th f32 bit pattern (both signs), plus special values.
fn dense_inputs(step: u32) -> Vec<f32> {
    let mut v: Vec<f32> = (0..=u32::MAX / step)
        .map(|i| f32::from_bits(i * step))
        .collect();
    v.extend([
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::MAX,
        f32::MIN,
        88.72283,
        88.72284,
        -87.33654,
        -103.27893,
        -103.972_08,
        -104.0,
        1.0,
        0.625,
        -0.625,
        9.0,
    ]);
    v
}

fn exp_chain() -> Vec<Instr> {
    vec![Instr::Unary {
        func: UnaryOp::Exp,
        a: 0,
    }]
}
fn log_chain() -> Vec<Instr> {
    vec![Instr::Unary {
        func: UnaryOp::Log,
        a: 0,
    }]
}
fn tanh_chain() -> Vec<Instr> {
    vec![Instr::Unary {
        func: UnaryOp::Tanh,
        a: 0,
    }]
}
/// `1 / (1 + exp(-x))` as graph lowering composes it.
fn sigmoid_chain() -> Vec<Instr> {
    vec![
        Instr::Unary {
            func: UnaryOp::Neg,
            a: 0,
        },
        Instr::Unary {
            func: UnaryOp::Exp,
            a: 1,
        },
        Instr::Const {
            dtype: DType::F32,
            value: 1.0,
        },
        Instr::Binary {
            func: BinaryOp::Add,
            a: 3,
            b: 2,
        },
        Instr::Unary {
            func: UnaryOp::Recip,
            a: 4,
        },
    ]
}

fn sigmoid_ref(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Where the composed f32 sigmoid has a relative bound: below about -88.72, `exp(-x)`
/// overflows f32 and `1/(1 + inf)` flushes the (subnormal) result to 0.
fn sigmoid_ulp_domain(x: f32) -> bool {
    x >= math::SIGMOID_ULP_DOMAIN_MIN
}

fn opts_with(fma: bool, vectorize: bool) -> CpuOptions {
    CpuOptions {
        fma,
        vectorize,
        ..CpuOptions::default()
    }
}

// ------------------------------------------------------------------------------------
// Transcendental error bounds

#[test]
fn transcendental_error_bounds_on_dense_sweep() {
    let inputs = dense_inputs(997);
    for fma in [true, false] {
        for vectorize in [true, false] {
            let o = opts_with(fma, vectorize);
            let e = sweep(&exp_chain(), &o, &inputs, f64::exp, |_| true);
            assert_eq!(e.nan_mismatch, 0, "exp NaN mismatch {e:?}");
            assert!(
                e.max_ulp <= math::EXP_MAX_ULP as u64,
                "exp (fma {fma}): {e:?}"
            );
            let l = sweep(&log_chain(), &o, &inputs, f64::ln, |_| true);
            assert_eq!(l.nan_mismatch, 0, "log NaN mismatch {l:?}");
            assert!(
                l.max_ulp <= math::LOG_MAX_ULP as u64,
                "log (fma {fma}): {l:?}"
            );
            let t = sweep(&tanh_chain(), &o, &inputs, f64::tanh, |_| true);
            assert_eq!(t.nan_mismatch, 0, "tanh NaN mismatch {t:?}");
            assert!(
                t.max_ulp <= math::TANH_MAX_ULP as u64,
                "tanh (fma {fma}): {t:?}"
            );
            assert!(
                t.max_abs <= math::TANH_MAX_ABS_ERR,
                "tanh (fma {fma}): {t:?}"
            );
            let s = sweep(
                &sigmoid_chain(),
                &o,
                &inputs,
                sigmoid_ref,
                sigmoid_ulp_domain,
            );
            assert_eq!(s.nan_mismatch, 0, "sigmoid NaN mismatch {s:?}");
            assert!(
                s.max_abs <= math::SIGMOID_MAX_ABS_ERR,
                "sigmoid (fma {fma}): {s:?}"
            );
            assert!(
                s.max_ulp <= math::SIGMOID_MAX_ULP as u64,
                "sigmoid (fma {fma}): {s:?}"
            );
            eprintln!(
                "fma={fma} vectorize={vectorize}\n exp {e:?}\n log {l:?}\n tanh {t:?}\n sigmoid {s:?}"
            );
        }
    }
}

/// Measures the bounds over all 2^32 f32 inputs (slow; run with `--ignored --nocapture`
/// in release to reproduce the numbers in `codegen::cpu::math`).
#[test]
#[ignore]
fn transcendental_error_full_sweep() {
    for fma in [true, false] {
        let o = opts_with(fma, true);
        let mut worst = [(); 4].map(|_| ErrStats::default());
        for chunk in 0..256u64 {
            let lo = (chunk << 24) as u32;
            let inputs: Vec<f32> = (0..1u32 << 24).map(|i| f32::from_bits(lo + i)).collect();
            let all = [
                sweep(&exp_chain(), &o, &inputs, f64::exp, |_| true),
                sweep(&log_chain(), &o, &inputs, f64::ln, |_| true),
                sweep(&tanh_chain(), &o, &inputs, f64::tanh, |_| true),
                sweep(
                    &sigmoid_chain(),
                    &o,
                    &inputs,
                    sigmoid_ref,
                    sigmoid_ulp_domain,
                ),
            ];
            for (w, s) in worst.iter_mut().zip(all) {
                if s.max_ulp > w.max_ulp {
                    w.max_ulp = s.max_ulp;
                    w.max_ulp_at = s.max_ulp_at;
                }
                if s.max_abs > w.max_abs {
                    w.max_abs = s.max_abs;
                    w.max_abs_at = s.max_abs_at;
                }
                w.nan_mismatch += s.nan_mismatch;
                w.count += s.count;
            }
        }
        for (name, w) in ["exp", "log", "tanh", "sigmoid"].iter().zip(&worst) {
            println!("fma={fma} {name}: {w:?}");
        }
    }
}

#[test]
fn transcendental_special_values() {
    let inputs = [
        0.0f32,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -1.0,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        200.0,
        -200.0,
        89.0,
        -110.0,
        20.0,
        -20.0,
    ];
    let n = inputs.len();
    let k = |chain: Vec<Instr>| unary_chain_kernel(n, &chain);
    let (ke, kl, kt) = (k(exp_chain()), k(log_chain()), k(tanh_chain()));
    let ck = cpu::compile(&[&ke, &kl, &kt], &CpuOptions::default()).unwrap();
    let out = |i: usize| {
        let mut bufs = vec![
            TensorData::F32(inputs.to_vec()),
            TensorData::F32(vec![7.0; n]),
        ];
        run(&ck, i, &mut bufs, 0..n);
        match &bufs[1] {
            TensorData::F32(v) => v.clone(),
            _ => unreachable!(),
        }
    };
    let e = out(0);
    assert_eq!(e[0], 1.0);
    assert_eq!(e[1], 1.0);
    assert_eq!(e[2], f32::INFINITY);
    assert_eq!(e[3].to_bits(), 0.0f32.to_bits());
    assert!(e[4].is_nan());
    assert_eq!(e[8], f32::INFINITY);
    assert_eq!(e[9].to_bits(), 0);
    assert_eq!(e[10], f32::INFINITY);
    assert_eq!(e[11].to_bits(), 0);
    let l = out(1);
    assert_eq!(l[0], f32::NEG_INFINITY);
    assert_eq!(l[1], f32::NEG_INFINITY);
    assert_eq!(l[2], f32::INFINITY);
    assert!(l[3].is_nan());
    assert!(l[4].is_nan());
    assert!(l[5].is_nan());
    assert!((l[6] as f64 - (f32::MIN_POSITIVE as f64).ln()).abs() < 1e-5);
    assert!((l[7] as f64 - (f32::from_bits(1) as f64).ln()).abs() < 1e-5);
    let t = out(2);
    assert_eq!(t[0].to_bits(), 0.0f32.to_bits());
    assert_eq!(t[1].to_bits(), (-0.0f32).to_bits());
    assert_eq!(t[2], 1.0);
    assert_eq!(t[3], -1.0);
    assert!(t[4].is_nan());
    assert_eq!(t[12], 1.0);
    assert_eq!(t[13], -1.0);
}

// ------------------------------------------------------------------------------------
// Random kernels

/// How a stored value must match the reference.
#[derive(Clone, Copy, Debug)]
enum Tol {
    /// Bit for bit (NaNs match NaNs).
    Exact,
    /// Within `n` f32 steps of the reference.
    Ulp(u64),
    /// Within an absolute error.
    Abs(f64),
    /// Within a relative error of the reference (or an absolute one near zero).
    Rel(f64),
}

struct Generated {
    kernel: LoopKernel,
    data: Vec<TensorData>,
    /// Tolerance per argument (outputs; inputs are `Exact`).
    tol: Vec<Tol>,
}

/// A random valid kernel with random data.
fn random_kernel(rng: &mut Rng, mode: GenMode, index: usize) -> Generated {
    let exact = mode == GenMode::Exact;
    let rank = 1 + rng.below(4);
    let mut shape: Vec<usize> = (0..rank)
        .map(|_| rng.pick(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 13]))
        .collect();
    if rng.chance(0.5) {
        shape[rank - 1] = rng.pick(&[16, 17, 23, 33]);
    }
    while shape.iter().product::<usize>() > 3000 {
        let d = rng.below(rank);
        shape[d] = (shape[d] / 2).max(1);
    }
    let reduce = rng.chance(0.4);
    let reduced: Vec<usize> = if reduce {
        let mut axes: Vec<usize> = (0..rank).filter(|_| rng.chance(0.45)).collect();
        if axes.is_empty() && rng.chance(0.85) {
            axes.push(rng.below(rank));
        }
        axes
    } else {
        vec![]
    };
    let palette: Vec<DType> = match rng.below(10) {
        0..=3 => vec![DType::F32],
        4 | 5 => vec![DType::F32, DType::I32],
        6 => vec![DType::I32],
        7 => vec![DType::F64, DType::I32],
        _ => vec![DType::F32, DType::F64, DType::I32],
    };
    let palette = if exact || palette.contains(&DType::F32) {
        palette
    } else {
        vec![DType::F32]
    };
    let mut g = KernelGen {
        f64_transcendentals: true,
        rng,
        shape: shape.clone(),
        reduced: reduced.clone(),
        args: vec![],
        reach: vec![],
        body: vec![],
        vals: vec![],
    };
    // Inputs and their loads.
    let ninputs = 1 + g.rng.below(3);
    for i in 0..ninputs {
        let t = g.rng.pick(&palette);
        g.args.push(arg(i, t, 0));
        g.reach.push(0);
        for _ in 0..1 + g.rng.below(2) {
            let a = g.access(i, &[], true);
            let v = g.varies(&a);
            g.push(Instr::Load(a), t, v);
        }
    }
    for _ in 0..g.rng.below(3) {
        let t = g.rng.pick(&palette);
        let c = g.const_instr(t);
        g.push(c, t, false);
    }
    let nops = 2 + g.rng.below(10);
    for _ in 0..nops {
        if let Some((ins, t, v)) = g.random_instr(&palette, &|_, _| true) {
            g.push(ins, t, v);
        }
    }
    // Transcendental leaves (f32): stored directly or reduced.
    let mut trans_vals: Vec<(u32, UnaryOp)> = vec![];
    if !exact {
        for _ in 0..1 + g.rng.below(2) {
            // Operands are never other transcendentals (errors would compound).
            let prior: Vec<u32> = trans_vals.iter().map(|&(v, _)| v).collect();
            if let Some(a) = g.pick_val(|v, t, _| t == DType::F32 && !prior.contains(&(v as u32))) {
                let func = g.rng.pick(&[UnaryOp::Exp, UnaryOp::Log, UnaryOp::Tanh]);
                let var = g.vals[a as usize].1;
                let v = g.push(Instr::Unary { func, a }, DType::F32, var);
                trans_vals.push((v, func));
            }
        }
    }
    let nbody = g.body.len();
    let trans_tol = |func: UnaryOp| match func {
        UnaryOp::Exp => Tol::Ulp(math::EXP_MAX_ULP as u64 + 1),
        UnaryOp::Log => Tol::Ulp(math::LOG_MAX_ULP as u64 + 1),
        _ => Tol::Abs(2.0 * math::TANH_MAX_ABS_ERR),
    };
    let mut stores = vec![];
    let mut out_tol: Vec<Tol> = vec![Tol::Exact; g.args.len()];
    let mut reduction = None;
    let mut post: Vec<Instr> = vec![];
    let new_output = |g: &mut KernelGen<'_>, t: DType, tol: Tol, out_tol: &mut Vec<Tol>| {
        let i = g.args.len();
        g.args.push(arg(i, t, 0));
        g.reach.push(0);
        out_tol.push(tol);
        let red = g.reduced.clone();
        let bcast = g.rng.chance(0.1);
        let a = g.access(i, &red, bcast);
        (i, a)
    };
    if reduce {
        // The reduced value: prefer a transcendental, else a value varying along the
        // reduced axes.
        let (value, acc_tol) = match trans_vals.first() {
            Some(&(v, func)) => (v, Some(func)),
            None => (
                g.pick_val(|_, _, r| r)
                    .or_else(|| g.pick_val(|_, _, _| true))
                    .expect("there are values"),
                None,
            ),
        };
        // Sums of transcendentals only over exp (positive terms: no cancellation, so the
        // relative bound holds); log and tanh values are reduced with max.
        let op = match acc_tol {
            Some(f) if f != UnaryOp::Exp => ReduceOp::Max,
            _ => g.rng.pick(&[ReduceOp::Sum, ReduceOp::Max]),
        };
        let t = g.vals[value as usize].0;
        let count: usize = reduced.iter().map(|&a| shape[a]).product();
        let acc_tol = match (acc_tol, op) {
            (None, _) => Tol::Exact,
            (Some(f), ReduceOp::Max) => trans_tol(f),
            (Some(f), _) => {
                let per_term = match trans_tol(f) {
                    Tol::Ulp(u) => u as f64 * f32::EPSILON as f64,
                    _ => 4.0 * math::TANH_MAX_ABS_ERR,
                };
                Tol::Rel(per_term + (count as f64 + 2.0) * f32::EPSILON as f64)
            }
        };
        // Post: the accumulator, then arithmetic with constants, post loads (zero
        // strides along the reduced axes) and body values that do not vary.
        let acc = g.push(Instr::Accumulator, t, false);
        post.push(g.body.pop().expect("just pushed"));
        let mut post_vals = vec![(acc, acc_tol)];
        if exact {
            if g.rng.chance(0.5) {
                let i = g.args.len();
                let pt = g.rng.pick(&palette);
                g.args.push(arg(i, pt, 0));
                g.reach.push(0);
                out_tol.push(Tol::Exact);
                let red = g.reduced.clone();
                let a = g.access(i, &red, true);
                g.push(Instr::Load(a), pt, false);
                post.push(g.body.pop().expect("just pushed"));
            }
            if g.rng.chance(0.4) && t.is_float() {
                // mean = sum * (1/n)
                g.push(
                    Instr::Const {
                        dtype: t,
                        value: 1.0 / count as f64,
                    },
                    t,
                    false,
                );
                post.push(g.body.pop().expect("just pushed"));
                let c = g.vals.len() as u32 - 1;
                g.push(
                    Instr::Binary {
                        func: BinaryOp::Mul,
                        a: acc,
                        b: c,
                    },
                    t,
                    false,
                );
                post.push(g.body.pop().expect("just pushed"));
                post_vals.push((g.vals.len() as u32 - 1, Tol::Exact));
            }
            for _ in 0..g.rng.below(4) {
                // Post values, constants and body values that do not vary along the
                // reduced axes.
                let usable = |_: usize, r: bool| !r;
                if let Some((ins, t2, _)) = g.random_instr(&palette, &usable) {
                    g.push(ins, t2, false);
                    post.push(g.body.pop().expect("just pushed"));
                    post_vals.push((g.vals.len() as u32 - 1, Tol::Exact));
                }
            }
        }
        reduction = Some(Reduction {
            op,
            axes: reduced.clone(),
            value,
            post: post.clone(),
            // Partial accumulators (any power of two; short axes run only the tail).
            partials: if reduced.is_empty() {
                1
            } else {
                g.rng.pick(&[1, 1, 2, 4, 8, 16])
            },
        });
        for _ in 0..1 + g.rng.below(2) {
            let (v, tol) = g.rng.pick(&post_vals);
            let vt = g.vals[v as usize].0;
            let (_, a) = new_output(&mut g, vt, tol, &mut out_tol);
            stores.push(Store {
                access: a,
                value: v,
            });
        }
    } else {
        let mut cands: Vec<(u32, Tol)> =
            trans_vals.iter().map(|&(v, f)| (v, trans_tol(f))).collect();
        if exact || cands.is_empty() {
            for _ in 0..1 + g.rng.below(3) {
                let v = g.pick_val(|_, _, _| true).expect("there are values");
                cands.push((v, Tol::Exact));
            }
        }
        for (v, tol) in cands {
            let vt = g.vals[v as usize].0;
            let (_, a) = new_output(&mut g, vt, tol, &mut out_tol);
            stores.push(Store {
                access: a,
                value: v,
            });
        }
        // Sometimes also write back in place through a load's access.
        if exact && g.rng.chance(0.15) {
            let loads: Vec<(usize, Access)> = g.body[..nbody]
                .iter()
                .filter_map(|ins| match ins {
                    Instr::Load(a) => Some((a.arg, a.clone())),
                    _ => None,
                })
                .collect();
            let (argi, acc) = g.rng.pick(&loads);
            let t = g.args[argi].dtype;
            if let Some(v) = g.pick_val(|v, tt, _| tt == t && v < nbody) {
                stores.push(Store {
                    access: acc,
                    value: v,
                });
            }
        }
    }
    let KernelGen {
        rng,
        args,
        reach,
        body,
        ..
    } = g;
    let args: Vec<KernelArg> = args
        .into_iter()
        .zip(&reach)
        .map(|(a, &r)| KernelArg {
            len: r + 1 + rng.below(3),
            ..a
        })
        .collect();
    let data = args
        .iter()
        .map(|a| random_data(rng, a.dtype, a.len))
        .collect();
    let mut body = body;
    body.truncate(nbody);
    let kernel = LoopKernel {
        name: format!("random_{index}"),
        shape,
        args,
        body,
        reduce: reduction,
        stores,
    };
    Generated {
        kernel,
        data,
        tol: out_tol,
    }
}

/// Checks `got` against `want` for argument `i` with tolerance `tol`; returns a message
/// on mismatch.
fn compare(got: &TensorData, want: &TensorData, tol: Tol) -> Result<(), String> {
    let check_f = |g: f64, w: f64, j: usize| -> Result<(), String> {
        if g.is_nan() || w.is_nan() {
            return if g.is_nan() == w.is_nan() {
                Ok(())
            } else {
                Err(format!("element {j}: got {g:e}, want {w:e}"))
            };
        }
        let ok = match tol {
            Tol::Exact => g.to_bits() == w.to_bits(),
            Tol::Ulp(u) => ulps(g as f32, w) <= u,
            Tol::Abs(a) => g == w || (g - w).abs() <= a,
            Tol::Rel(r) => g == w || (g - w).abs() <= r * w.abs().max(1e-30),
        };
        if ok {
            Ok(())
        } else {
            Err(format!("element {j}: got {g:e}, want {w:e} ({tol:?})"))
        }
    };
    match (got, want) {
        (TensorData::F32(g), TensorData::F32(w)) => {
            g.iter().zip(w).enumerate().try_for_each(|(j, (&g, &w))| {
                if matches!(tol, Tol::Exact) && !g.is_nan() && g.to_bits() != w.to_bits() {
                    return Err(format!(
                        "element {j}: got {g:e} ({:#x}), want {w:e} ({:#x})",
                        g.to_bits(),
                        w.to_bits()
                    ));
                }
                check_f(g as f64, w as f64, j)
            })
        }
        (TensorData::F64(g), TensorData::F64(w)) => g
            .iter()
            .zip(w)
            .enumerate()
            .try_for_each(|(j, (&g, &w))| check_f(g, w, j)),
        (TensorData::I32(g), TensorData::I32(w)) => {
            match g.iter().zip(w).position(|(a, b)| a != b) {
                None => Ok(()),
                Some(j) => Err(format!("element {j}: got {}, want {}", g[j], w[j])),
            }
        }
        _ => Err("dtype mismatch".into()),
    }
}

/// Bitwise equality of two buffers (NaN payloads included).
fn bit_identical(a: &TensorData, b: &TensorData) -> bool {
    match (a, b) {
        (TensorData::F32(x), TensorData::F32(y)) => x
            .iter()
            .map(|v| v.to_bits())
            .eq(y.iter().map(|v| v.to_bits())),
        (TensorData::F64(x), TensorData::F64(y)) => x
            .iter()
            .map(|v| v.to_bits())
            .eq(y.iter().map(|v| v.to_bits())),
        (TensorData::I32(x), TensorData::I32(y)) => x == y,
        _ => false,
    }
}

/// Random split points of `0..n` into consecutive ranges (possibly empty ones, and a
/// last range that ends past `n`, which the kernel clamps).
fn random_splits(rng: &mut Rng, n: usize) -> Vec<std::ops::Range<usize>> {
    let mut cuts: Vec<usize> = (0..rng.below(4)).map(|_| rng.below(n + 1)).collect();
    cuts.sort_unstable();
    let mut ranges = vec![];
    let mut s = 0;
    for c in cuts {
        ranges.push(s..c);
        s = c;
    }
    let end = if rng.chance(0.2) {
        n + 1 + rng.below(5)
    } else {
        n
    };
    ranges.push(s..end);
    ranges
}

#[derive(Default, Debug)]
struct DiffStats {
    kernels: usize,
    vectorized: usize,
    vectorized_reductions: usize,
    reductions: usize,
}

/// Compiles `batch` in one module with `opts` and checks every kernel against the
/// reference evaluator, in one call and in random range splits.
fn check_batch(rng: &mut Rng, batch: &[Generated], opts: &CpuOptions, stats: &mut DiffStats) {
    let kernels: Vec<&LoopKernel> = batch.iter().map(|g| &g.kernel).collect();
    let ck = cpu::compile(&kernels, opts)
        .unwrap_or_else(|e| panic!("compile failed: {e}\n{:#?}", kernels));
    assert_eq!(ck.len(), batch.len());
    for (i, g) in batch.iter().enumerate() {
        let k = &g.kernel;
        let n = k.outer_extent();
        let mut want = g.data.clone();
        eval(k, &mut want[..], 0..n);
        let mut whole = g.data.clone();
        run(&ck, i, &mut whole, 0..n);
        let splits = random_splits(rng, n);
        let mut split = g.data.clone();
        for r in &splits {
            run(&ck, i, &mut split, r.clone());
        }
        for (j, ((w, h), s)) in want.iter().zip(&whole).zip(&split).enumerate() {
            if let Err(msg) = compare(h, w, g.tol[j]) {
                panic!(
                    "kernel {i} ({}) argument {j}: {msg}\nopts {opts:?} vectorized {}\n{:#?}\ndata {:?}",
                    k.name,
                    ck.is_vectorized(i),
                    k,
                    g.data
                );
            }
            assert!(
                bit_identical(h, s),
                "kernel {i} ({}) argument {j}: split {splits:?} differs from one call\n{k:#?}",
                k.name
            );
        }
        stats.kernels += 1;
        stats.reductions += k.reduce.is_some() as usize;
        if ck.is_vectorized(i) {
            stats.vectorized += 1;
            stats.vectorized_reductions += k.reduce.is_some() as usize;
        }
    }
}

fn run_random(
    seed: u64,
    count: usize,
    mode: GenMode,
    opts_for: impl Fn(usize) -> CpuOptions,
) -> DiffStats {
    let mut rng = Rng(seed);
    let mut stats = DiffStats::default();
    let mut made = 0;
    let mut batch_no = 0;
    while made < count {
        let size = 1 + rng.below(12);
        let batch: Vec<Generated> = (0..size)
            .map(|j| random_kernel(&mut rng, mode, made + j))
            .collect();
        for g in &batch {
            g.kernel.validate().unwrap_or_else(|e| {
                panic!("generator made an invalid kernel: {e}\n{:#?}", g.kernel)
            });
        }
        made += size;
        check_batch(&mut rng, &batch, &opts_for(batch_no), &mut stats);
        batch_no += 1;
    }
    stats
}

#[test]
fn random_kernels_match_reference_exactly() {
    let stats = run_random(0x5eed_0001, 600, GenMode::Exact, |b| CpuOptions {
        opt_level: if b % 5 == 4 {
            OptLevel::Speed
        } else {
            OptLevel::None
        },
        vectorize: b % 7 != 6,
        fma: b % 2 == 0,
        verify: true,
    });
    eprintln!("{stats:?}");
    assert!(stats.kernels >= 600);
    // The vector paths must really be exercised.
    assert!(stats.vectorized >= stats.kernels / 8, "{stats:?}");
    assert!(stats.vectorized_reductions >= 10, "{stats:?}");
}

#[test]
fn random_transcendental_kernels_within_bounds() {
    let stats = run_random(0x5eed_0002, 200, GenMode::Transcendental, |b| CpuOptions {
        fma: b % 2 == 0,
        ..CpuOptions::default()
    });
    eprintln!("{stats:?}");
    assert!(stats.kernels >= 200);
    assert!(stats.vectorized >= stats.kernels / 8, "{stats:?}");
}

// ------------------------------------------------------------------------------------
// Hand-written kernels and performance checks

/// `y[i] = max(x[i]·w + b, 0)` with scalars `w` and `b` (stride-0 loads).
fn fused_relu_kernel(n: usize) -> LoopKernel {
    LoopKernel {
        name: "fused_relu".into(),
        shape: vec![n],
        args: vec![
            arg(0, DType::F32, n),
            arg(1, DType::F32, 1),
            arg(2, DType::F32, 1),
            arg(3, DType::F32, n),
        ],
        body: vec![
            Instr::Load(access(0, 0, &[1])),
            Instr::Load(access(1, 0, &[0])),
            Instr::Load(access(2, 0, &[0])),
            Instr::Binary {
                func: BinaryOp::Mul,
                a: 0,
                b: 1,
            },
            Instr::Binary {
                func: BinaryOp::Add,
                a: 3,
                b: 2,
            },
            Instr::Const {
                dtype: DType::F32,
                value: 0.0,
            },
            Instr::Binary {
                func: BinaryOp::Max,
                a: 4,
                b: 5,
            },
        ],
        reduce: None,
        stores: vec![Store {
            access: access(3, 0, &[1]),
            value: 6,
        }],
    }
}

/// Row-major strides of `shape`.
fn rm(shape: &[usize]) -> Vec<isize> {
    let mut s = vec![0isize; shape.len()];
    let mut step = 1isize;
    for d in (0..shape.len()).rev() {
        s[d] = step;
        step *= shape[d] as isize;
    }
    s
}

fn binop(func: BinaryOp, a: u32, b: u32) -> Instr {
    Instr::Binary { func, a, b }
}

fn un(func: UnaryOp, a: u32) -> Instr {
    Instr::Unary { func, a }
}

fn cf32(value: f64) -> Instr {
    Instr::Const {
        dtype: DType::F32,
        value,
    }
}

/// The kinds of kernels a 784-100-10 MLP training step lowers to (forward bias + ReLU and
/// softmax, cross-entropy, backward masks and reductions, SGD updates), for a batch of
/// 128: `(kernel, tolerance of its stores)`.
fn mlp_kernels() -> Vec<(LoopKernel, Tol)> {
    let b = 128usize;
    let mut ks = vec![];
    for (layer, (h, relu)) in [(100usize, true), (10usize, false)].into_iter().enumerate() {
        // z = x + bias (row broadcast), relu.
        let mut body = vec![
            Instr::Load(access(0, 0, &rm(&[b, h]))),
            Instr::Load(access(1, 0, &[0, 1])),
            binop(BinaryOp::Add, 0, 1),
        ];
        if relu {
            body.push(cf32(0.0));
            body.push(binop(BinaryOp::Max, 2, 3));
        }
        let last = body.len() as u32 - 1;
        ks.push((
            LoopKernel {
                name: format!("bias_act_{layer}"),
                shape: vec![b, h],
                args: vec![
                    arg(0, DType::F32, b * h),
                    arg(1, DType::F32, h),
                    arg(2, DType::F32, b * h),
                ],
                body,
                reduce: None,
                stores: vec![Store {
                    access: access(2, 0, &rm(&[b, h])),
                    value: last,
                }],
            },
            Tol::Exact,
        ));
        // Bias gradient: column sums (vectorized reduction over the batch axis).
        ks.push((
            LoopKernel {
                name: format!("bias_grad_{layer}"),
                shape: vec![b, h],
                args: vec![arg(0, DType::F32, b * h), arg(1, DType::F32, h)],
                body: vec![Instr::Load(access(0, 0, &rm(&[b, h])))],
                reduce: Some(Reduction {
                    op: ReduceOp::Sum,
                    axes: vec![0],
                    value: 0,
                    post: vec![Instr::Accumulator],
                    partials: 1,
                }),
                stores: vec![Store {
                    access: access(1, 0, &[0, 1]),
                    value: 1,
                }],
            },
            Tol::Exact,
        ));
        // ReLU backward: dz = dy * (y > 0).
        ks.push((
            LoopKernel {
                name: format!("relu_grad_{layer}"),
                shape: vec![b, h],
                args: vec![
                    arg(0, DType::F32, b * h),
                    arg(1, DType::F32, b * h),
                    arg(2, DType::F32, b * h),
                ],
                body: vec![
                    Instr::Load(access(0, 0, &rm(&[b, h]))),
                    Instr::Load(access(1, 0, &rm(&[b, h]))),
                    cf32(0.0),
                    Instr::Compare {
                        func: CompareOp::Gt,
                        a: 1,
                        b: 2,
                    },
                    binop(BinaryOp::Mul, 0, 3),
                ],
                reduce: None,
                stores: vec![Store {
                    access: access(2, 0, &rm(&[b, h])),
                    value: 4,
                }],
            },
            Tol::Exact,
        ));
    }
    for (w, shape) in [
        ("w0", [784usize, 100usize]),
        ("w1", [100, 10]),
        ("b0", [1, 100]),
        ("b1", [1, 10]),
    ] {
        // SGD with momentum: v = mu*v - lr*g; w += v (in place).
        let n = shape[0] * shape[1];
        let s = rm(&shape);
        ks.push((
            LoopKernel {
                name: format!("sgd_{w}"),
                shape: shape.to_vec(),
                args: vec![
                    arg(0, DType::F32, n),
                    arg(1, DType::F32, n),
                    arg(2, DType::F32, n),
                ],
                body: vec![
                    Instr::Load(access(0, 0, &s)),
                    Instr::Load(access(1, 0, &s)),
                    Instr::Load(access(2, 0, &s)),
                    cf32(0.9),
                    cf32(0.1),
                    binop(BinaryOp::Mul, 3, 1),
                    binop(BinaryOp::Mul, 4, 2),
                    binop(BinaryOp::Sub, 5, 6),
                    binop(BinaryOp::Add, 0, 7),
                ],
                reduce: None,
                stores: vec![
                    Store {
                        access: access(1, 0, &s),
                        value: 7,
                    },
                    Store {
                        access: access(0, 0, &s),
                        value: 8,
                    },
                ],
            },
            Tol::Exact,
        ));
    }
    // Softmax over rows of [b, 10]: row max, sum of exp(x - max), normalize; cross-entropy.
    let c = 10usize;
    let xs = rm(&[b, c]);
    ks.push((
        LoopKernel {
            name: "row_max".into(),
            shape: vec![b, c],
            args: vec![arg(0, DType::F32, b * c), arg(1, DType::F32, b)],
            body: vec![Instr::Load(access(0, 0, &xs))],
            reduce: Some(Reduction {
                op: ReduceOp::Max,
                axes: vec![1],
                value: 0,
                post: vec![Instr::Accumulator],
                partials: 1,
            }),
            stores: vec![Store {
                access: access(1, 0, &[1, 0]),
                value: 1,
            }],
        },
        Tol::Exact,
    ));
    ks.push((
        LoopKernel {
            name: "exp_sum".into(),
            shape: vec![b, c],
            args: vec![
                arg(0, DType::F32, b * c),
                arg(1, DType::F32, b),
                arg(2, DType::F32, b),
            ],
            body: vec![
                Instr::Load(access(0, 0, &xs)),
                Instr::Load(access(1, 0, &[1, 0])),
                binop(BinaryOp::Sub, 0, 1),
                un(UnaryOp::Exp, 2),
            ],
            reduce: Some(Reduction {
                op: ReduceOp::Sum,
                axes: vec![1],
                value: 3,
                post: vec![Instr::Accumulator, un(UnaryOp::Log, 4)],
                partials: 1,
            }),
            stores: vec![Store {
                access: access(2, 0, &[1, 0]),
                value: 5,
            }],
        },
        // log(S) near 0 carries S's relative error (exp's ulp and one rounding per term)
        // as an absolute one, plus log's own ulp of |log S| < 30 (|x − m| < 20).
        Tol::Abs(
            (f64::from(math::EXP_MAX_ULP) + c as f64 + 2.0 + 30.0 * f64::from(math::LOG_MAX_ULP))
                * f64::from(f32::EPSILON),
        ),
    ));
    ks.push((
        LoopKernel {
            name: "log_softmax".into(),
            shape: vec![b, c],
            args: vec![
                arg(0, DType::F32, b * c),
                arg(1, DType::F32, b),
                arg(2, DType::F32, b),
                arg(3, DType::F32, b * c),
            ],
            body: vec![
                Instr::Load(access(0, 0, &xs)),
                Instr::Load(access(1, 0, &[1, 0])),
                Instr::Load(access(2, 0, &[1, 0])),
                binop(BinaryOp::Sub, 0, 1),
                binop(BinaryOp::Sub, 3, 2),
            ],
            reduce: None,
            stores: vec![Store {
                access: access(3, 0, &xs),
                value: 4,
            }],
        },
        Tol::Exact,
    ));
    ks.push((
        LoopKernel {
            name: "mean_nll".into(),
            shape: vec![b, c],
            args: vec![
                arg(0, DType::F32, b * c),
                arg(1, DType::F32, b * c),
                arg(2, DType::F32, 1),
            ],
            body: vec![
                Instr::Load(access(0, 0, &xs)),
                Instr::Load(access(1, 0, &xs)),
                binop(BinaryOp::Mul, 0, 1),
            ],
            reduce: Some(Reduction {
                op: ReduceOp::Sum,
                axes: vec![0, 1],
                value: 2,
                post: vec![
                    Instr::Accumulator,
                    cf32(-1.0 / b as f64),
                    binop(BinaryOp::Mul, 3, 4),
                ],
                partials: 1,
            }),
            stores: vec![Store {
                access: access(2, 0, &[0, 0]),
                value: 5,
            }],
        },
        Tol::Exact,
    ));
    ks.push((
        LoopKernel {
            name: "sigmoid_tanh".into(),
            shape: vec![b, 100],
            args: vec![
                arg(0, DType::F32, b * 100),
                arg(1, DType::F32, b * 100),
                arg(2, DType::F32, b * 100),
            ],
            body: vec![
                Instr::Load(access(0, 0, &rm(&[b, 100]))),
                un(UnaryOp::Neg, 0),
                un(UnaryOp::Exp, 1),
                cf32(1.0),
                binop(BinaryOp::Add, 2, 3),
                un(UnaryOp::Recip, 4),
                un(UnaryOp::Tanh, 0),
            ],
            reduce: None,
            stores: vec![
                Store {
                    access: access(1, 0, &rm(&[b, 100])),
                    value: 5,
                },
                Store {
                    access: access(2, 0, &rm(&[b, 100])),
                    value: 6,
                },
            ],
        },
        Tol::Abs(2.0 * math::SIGMOID_MAX_ABS_ERR.max(math::TANH_MAX_ABS_ERR)),
    ));
    ks
}

#[test]
fn mlp_kernels_match_reference_and_compile_fast() {
    let mut rng = Rng(42);
    let ks = mlp_kernels();
    // Also compile 40 random kernels with them (a program's worth of kernels).
    let randoms: Vec<Generated> = (0..40)
        .map(|i| random_kernel(&mut rng, GenMode::Exact, i))
        .collect();
    let mut all: Vec<&LoopKernel> = ks.iter().map(|(k, _)| k).collect();
    all.extend(randoms.iter().map(|g| &g.kernel));
    for opts in [
        CpuOptions::default(),
        CpuOptions {
            opt_level: OptLevel::Speed,
            ..CpuOptions::default()
        },
    ] {
        let t0 = std::time::Instant::now();
        let ck = cpu::compile(&all, &opts).expect("compiles");
        let dt = t0.elapsed();
        eprintln!(
            "compiled {} kernels ({:?}, verify {}) in {:.1} ms ({:.2} ms per kernel)",
            all.len(),
            opts.opt_level,
            opts.verify,
            dt.as_secs_f64() * 1e3,
            dt.as_secs_f64() * 1e3 / all.len() as f64
        );
        for (i, (k, tol)) in ks.iter().enumerate() {
            let data: Vec<TensorData> = k
                .args
                .iter()
                .map(|a| match random_data(&mut rng, a.dtype, a.len) {
                    // Finite inputs for the softmax chain.
                    TensorData::F32(v) => TensorData::F32(
                        v.into_iter()
                            .map(|x| {
                                if x.is_finite() && x.abs() < 10.0 {
                                    x
                                } else {
                                    0.5
                                }
                            })
                            .collect(),
                    ),
                    d => d,
                })
                .collect();
            let n = k.outer_extent();
            let mut want = data.clone();
            eval(k, &mut want[..], 0..n);
            let mut got = data.clone();
            run(&ck, i, &mut got, 0..n);
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                let t = if k.stores.iter().any(|s| s.access.arg == j) {
                    *tol
                } else {
                    Tol::Exact
                };
                compare(g, w, t).unwrap_or_else(|m| panic!("{} argument {j}: {m}", k.name));
            }
            // Row reductions (row_max, exp_sum) gather four rows per vector step.
            if k.name.starts_with("bias_grad")
                || k.name.starts_with("sgd")
                || k.name.starts_with("bias_act")
                || k.name == "row_max"
                || k.name == "exp_sum"
            {
                assert!(ck.is_vectorized(i), "{} should be vectorized", k.name);
            }
        }
    }
}

/// Median seconds of `reps` runs of `f`.
fn median_time(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = std::time::Instant::now();
            f();
            t0.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

/// Not a timed assertion: runs the fused `max(x·w + b, 0)` kernel on 1 Mi f32 elements,
/// checks it against the reference, and prints the bandwidth (bytes read + written per
/// second) next to a plain Rust loop. `cargo test --release -- --nocapture fused` for
/// meaningful numbers.
#[test]
fn fused_elementwise_1m_runs() {
    let n = 1 << 20;
    let k = fused_relu_kernel(n);
    let mut rng = Rng(7);
    let x: Vec<f32> = (0..n).map(|_| (rng.unit() * 8.0 - 4.0) as f32).collect();
    let data = vec![
        TensorData::F32(x.clone()),
        TensorData::F32(vec![0.75]),
        TensorData::F32(vec![-0.5]),
        TensorData::F32(vec![0.0; n]),
    ];
    let mut want = data.clone();
    eval(&k, &mut want[..], 0..n);
    for opt in [OptLevel::None, OptLevel::Speed] {
        let ck = cpu::compile(
            &[&k],
            &CpuOptions {
                opt_level: opt,
                ..CpuOptions::default()
            },
        )
        .unwrap();
        assert!(ck.is_vectorized(0));
        let mut got = data.clone();
        run(&ck, 0, &mut got, 0..n);
        assert!(bit_identical(&got[3], &want[3]));
        let t = median_time(15, || run(&ck, 0, &mut got, 0..n));
        eprintln!(
            "fused max(x*w+b,0), 1Mi f32, {opt:?}: {:.1} GB/s ({:.3} ms)",
            8.0 * n as f64 / t / 1e9,
            t * 1e3
        );
    }
    let mut y = vec![0f32; n];
    let t = median_time(15, || {
        for (y, &x) in y.iter_mut().zip(&x) {
            *y = (x * 0.75 + -0.5).max(0.0);
        }
        std::hint::black_box(&mut y);
    });
    eprintln!("plain Rust loop: {:.1} GB/s", 8.0 * n as f64 / t / 1e9);
}

#[test]
fn invalid_kernels_are_errors_not_panics() {
    let mut k = fused_relu_kernel(16);
    // Out-of-range store.
    k.args[3].len = 15;
    let err = cpu::compile(&[&fused_relu_kernel(8), &k], &CpuOptions::default()).unwrap_err();
    match &err {
        cpu::CodegenError::InvalidKernel { index, .. } => assert_eq!(*index, 1),
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("kernel 1"), "{err}");
    // Type error.
    let mut k = fused_relu_kernel(16);
    k.body[5] = Instr::Const {
        dtype: DType::I32,
        value: 0.0,
    };
    assert!(matches!(
        cpu::compile(&[&k], &CpuOptions::default()),
        Err(cpu::CodegenError::InvalidKernel { index: 0, .. })
    ));
    // Zero-sized iteration space.
    let mut k = fused_relu_kernel(16);
    k.shape = vec![0];
    assert!(cpu::compile(&[&k], &CpuOptions::default()).is_err());
    // An empty kernel list compiles to nothing.
    let ck = cpu::compile(&[], &CpuOptions::default()).unwrap();
    assert!(ck.is_empty());
}

#[test]
fn rank_zero_and_full_reduction_kernels() {
    // out = x * 2 on a scalar (rank 0: one point, range 0..1).
    let k0 = LoopKernel {
        name: "scalar".into(),
        shape: vec![],
        args: vec![arg(0, DType::F64, 1), arg(1, DType::F64, 1)],
        body: vec![
            Instr::Load(access(0, 0, &[])),
            Instr::Const {
                dtype: DType::F64,
                value: 2.0,
            },
            binop(BinaryOp::Mul, 0, 1),
        ],
        reduce: None,
        stores: vec![Store {
            access: access(1, 0, &[]),
            value: 2,
        }],
    };
    // total = Σ x over [3, 5] (no outer axes).
    let k1 = LoopKernel {
        name: "total".into(),
        shape: vec![3, 5],
        args: vec![arg(0, DType::I32, 15), arg(1, DType::I32, 1)],
        body: vec![Instr::Load(access(0, 0, &[5, 1]))],
        reduce: Some(Reduction {
            op: ReduceOp::Sum,
            axes: vec![0, 1],
            value: 0,
            post: vec![Instr::Accumulator],
            partials: 1,
        }),
        stores: vec![Store {
            access: access(1, 0, &[0, 0]),
            value: 1,
        }],
    };
    let ck = cpu::compile(&[&k0, &k1], &CpuOptions::default()).unwrap();
    let mut d0 = vec![TensorData::F64(vec![1.25]), TensorData::F64(vec![0.0])];
    run(&ck, 0, &mut d0, 0..0);
    assert_eq!(
        d0[1],
        TensorData::F64(vec![0.0]),
        "an empty range does nothing"
    );
    run(&ck, 0, &mut d0, 0..1);
    assert_eq!(d0[1], TensorData::F64(vec![2.5]));
    let mut d1 = vec![
        TensorData::I32((1..=15).collect()),
        TensorData::I32(vec![-7]),
    ];
    run(&ck, 1, &mut d1, 0..5);
    assert_eq!(d1[1], TensorData::I32(vec![120]));
}

/// Reductions with partial accumulators follow the kernel module's order exactly: every
/// partial count, innermost extents that run the main loop, whole-vector tails and
/// single-lane tails, sums whose result depends on the order (terms of very different
/// magnitudes), f32 max with NaN, i32 sums, and f64 (scalar partials) — bit for bit
/// against the reference evaluator, vectorized wherever the values are 32-bit.
#[test]
fn partial_accumulators_match_the_reference_bit_for_bit() {
    let mut rng = Rng(7);
    let mut kernels = Vec::new();
    for &dtype in &[DType::F32, DType::I32, DType::F64] {
        for &op in &[ReduceOp::Sum, ReduceOp::Max] {
            for &partials in &[2u32, 4, 8, 16, 32] {
                for &inner in &[1usize, 3, 4, 7, 16, 19, 37, 64] {
                    // [rows, 3, inner] reduced over axes 0 and 2, plus a factor that is
                    // constant along the reduced axes (splatted into the vector loop).
                    let rows = 2;
                    let len = rows * 3 * inner;
                    kernels.push(LoopKernel {
                        name: format!("{dtype}_{op:?}_p{partials}_n{inner}"),
                        shape: vec![rows, 3, inner],
                        args: vec![arg(0, dtype, len), arg(1, dtype, 3), arg(2, dtype, 3)],
                        body: vec![
                            Instr::Load(access(0, 0, &[(3 * inner) as isize, inner as isize, 1])),
                            Instr::Load(access(1, 0, &[0, 1, 0])),
                            binop(BinaryOp::Mul, 0, 1),
                        ],
                        reduce: Some(Reduction {
                            op,
                            axes: vec![0, 2],
                            value: 2,
                            post: vec![Instr::Accumulator],
                            partials,
                        }),
                        stores: vec![Store {
                            access: access(2, 0, &[0, 1, 0]),
                            value: 3,
                        }],
                    });
                }
            }
        }
    }
    let refs: Vec<&LoopKernel> = kernels.iter().collect();
    let ck = cpu::compile(&refs, &CpuOptions::default()).unwrap();
    let mut order_mattered = 0;
    for (i, k) in kernels.iter().enumerate() {
        let dtype = k.args[0].dtype;
        let partials = k.reduce.as_ref().unwrap().partials;
        let vector = dtype != DType::F64 && partials >= 4 && cfg!(target_arch = "x86_64");
        if vector && std::arch::is_x86_feature_detected!("sse4.1") {
            assert!(ck.is_vectorized(i), "{} should be vectorized", k.name);
        }
        for trial in 0..4 {
            let mut data: Vec<TensorData> = k
                .args
                .iter()
                .map(|a| match (a.dtype, trial) {
                    // Terms from 1e-8 to 1e8, both signs: the sum depends on the order.
                    (DType::F32, 0) => TensorData::F32(
                        (0..a.len)
                            .map(|_| {
                                let e = rng.below(17) as i32 - 8;
                                let s = if rng.chance(0.5) { -1.0 } else { 1.0 };
                                s * 10f32.powi(e) * (1.0 + rng.below(1000) as f32 / 1000.0)
                            })
                            .collect(),
                    ),
                    _ => random_data(&mut rng, a.dtype, a.len),
                })
                .collect();
            let mut want = data.clone();
            eval(k, &mut want[..], 0..k.outer_extent());
            run(&ck, i, &mut data, 0..k.outer_extent());
            assert_eq!(
                compare(&data[2], &want[2], Tol::Exact),
                Ok(()),
                "{} trial {trial}",
                k.name
            );
            if trial == 0 && dtype == DType::F32 && op_is_sum(k) {
                let mut seq = k.clone();
                seq.reduce.as_mut().unwrap().partials = 1;
                let mut s = data.clone();
                eval(&seq, &mut s[..], 0..k.outer_extent());
                order_mattered += usize::from(s[2] != want[2]);
            }
        }
    }
    // The data above tells the orders apart: partials are not the sequential sum.
    assert!(
        order_mattered > 10,
        "only {order_mattered} sums told the orders apart"
    );
}

fn op_is_sum(k: &LoopKernel) -> bool {
    k.reduce.as_ref().is_some_and(|r| r.op == ReduceOp::Sum)
}

/// Splitting the range at points that are not multiples of the vector width sends
/// elements through the vector loop in one run and through the scalar tail in another:
/// results must still be bit-identical (f32 transcendentals included).
#[test]
fn split_ranges_are_bit_identical_across_vector_and_tail_paths() {
    let n = 1000;
    let k = unary_chain_kernel(
        n,
        &[
            un(UnaryOp::Tanh, 0),
            un(UnaryOp::Exp, 0),
            un(UnaryOp::Log, 0),
            binop(BinaryOp::Add, 1, 2),
            binop(BinaryOp::Sub, 4, 3),
            cf32(0.0),
            binop(BinaryOp::Max, 5, 6),
        ],
    );
    let mut rng = Rng(99);
    let data = vec![
        random_data(&mut rng, DType::F32, n),
        TensorData::F32(vec![0.0; n]),
    ];
    for opts in [CpuOptions::default(), opts_with(false, true)] {
        let ck = cpu::compile(&[&k], &opts).unwrap();
        assert!(ck.is_vectorized(0));
        let mut whole = data.clone();
        run(&ck, 0, &mut whole, 0..n);
        for cuts in [
            vec![1, 2, 3],
            vec![5, 6, 7, 997],
            vec![13, 500, 501],
            vec![999],
        ] {
            let mut split = data.clone();
            let mut s = 0;
            for c in cuts.iter().copied().chain([n]) {
                run(&ck, 0, &mut split, s..c);
                s = c;
            }
            assert!(bit_identical(&whole[1], &split[1]), "cuts {cuts:?}");
        }
        // The same values one element at a time (scalar tail only).
        let mut single = data.clone();
        for i in 0..n {
            run(&ck, 0, &mut single, i..i + 1);
        }
        assert!(bit_identical(&whole[1], &single[1]));
    }
}

#[test]
fn compiled_kernels_are_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<cpu::CompiledKernels>();
    let n = 4096;
    let k = fused_relu_kernel(n);
    let ck = cpu::compile(&[&k], &CpuOptions::default()).unwrap();
    let mut rng = Rng(3);
    let data = vec![
        random_data(&mut rng, DType::F32, n),
        TensorData::F32(vec![1.5]),
        TensorData::F32(vec![0.25]),
        TensorData::F32(vec![0.0; n]),
    ];
    let mut want = data.clone();
    eval(&k, &mut want[..], 0..n);
    let results: Vec<Vec<TensorData>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (ck, data) = (&ck, data.clone());
                s.spawn(move || {
                    let mut d = data;
                    // Each thread computes the whole output in its own chunks.
                    let step = 100 + 37 * t;
                    let mut i = 0;
                    while i < n {
                        run(ck, 0, &mut d, i..(i + step).min(n));
                        i += step;
                    }
                    d
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in results {
        compare(&r[3], &want[3], Tol::Exact).unwrap();
    }
}

/// An elementwise kernel run in place (its output at its input's address, as the memory
/// planner may place them), for every length of scalar tail and every range start: the
/// same results as with separate buffers, points outside the range untouched.
#[test]
fn in_place_runs_match_separate_buffers_for_every_tail() {
    let chain = [un(UnaryOp::Exp, 0), cf32(0.5), binop(BinaryOp::Add, 1, 2)];
    for n in [4, 5, 6, 7, 9, 10, 11, 21] {
        let k = unary_chain_kernel(n, &chain);
        let ck = cpu::compile(&[&k], &CpuOptions::default()).unwrap();
        assert!(ck.is_vectorized(0));
        let x: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 1.0).collect();
        for range in [0..n, 1..n, 0..n - 1, n / 2..n] {
            let mut separate = vec![TensorData::F32(x.clone()), TensorData::F32(vec![0.0; n])];
            run(&ck, 0, &mut separate, range.clone());
            let TensorData::F32(want) = &separate[1] else {
                unreachable!()
            };
            let mut buf = x.clone();
            let ptrs = [buf.as_mut_ptr() as *mut u8, buf.as_mut_ptr() as *mut u8];
            // SAFETY: both arguments address the same n f32 elements; the kernel reads
            // and writes element i only at point i.
            unsafe { ck.get(0)(ptrs.as_ptr(), range.start, range.end) };
            for i in 0..n {
                let expect = if range.contains(&i) { want[i] } else { x[i] };
                assert_eq!(
                    buf[i].to_bits(),
                    expect.to_bits(),
                    "n {n} range {range:?} element {i}"
                );
            }
        }
    }
}
