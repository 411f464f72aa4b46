//! Tests of the Cranelift CPU backend (`xenon_compiler::codegen::cpu`): differential tests
//! against the reference evaluator `xenon_runtime::kernel::eval` on random kernels,
//! range-split determinism, transcendental error bounds, and error handling.

use xenon_compiler::codegen::cpu::{self, CpuOptions, OptLevel, math};
use xenon_runtime::kernel::{Access, Instr, KernelArg, LoopKernel, Reduction, Store, eval};
use xenon_runtime::ops::{BinaryOp, CompareOp, ReduceOp, UnaryOp};
use xenon_runtime::{DType, TensorData};

// ------------------------------------------------------------------------------------
// Helpers

/// Runs compiled kernel `i` of `ck` on `bufs` for `range`.
fn run(ck: &cpu::CompiledKernels, i: usize, bufs: &mut [TensorData], range: std::ops::Range<usize>) {
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
fn sweep(
    chain: &[Instr],
    opts: &CpuOptions,
    inputs: &[f32],
    reference: impl Fn(f64) -> f64,
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
        let u = ulps(y, r);
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
    let mut v: Vec<f32> = (0..=u32::MAX / step).map(|i| f32::from_bits(i * step)).collect();
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
            let e = sweep(&exp_chain(), &o, &inputs, f64::exp);
            assert_eq!(e.nan_mismatch, 0, "exp NaN mismatch {e:?}");
            assert!(e.max_ulp <= math::EXP_MAX_ULP as u64, "exp (fma {fma}): {e:?}");
            let l = sweep(&log_chain(), &o, &inputs, f64::ln);
            assert_eq!(l.nan_mismatch, 0, "log NaN mismatch {l:?}");
            assert!(l.max_ulp <= math::LOG_MAX_ULP as u64, "log (fma {fma}): {l:?}");
            let t = sweep(&tanh_chain(), &o, &inputs, f64::tanh);
            assert_eq!(t.nan_mismatch, 0, "tanh NaN mismatch {t:?}");
            assert!(t.max_ulp <= math::TANH_MAX_ULP as u64, "tanh (fma {fma}): {t:?}");
            assert!(t.max_abs <= math::TANH_MAX_ABS_ERR, "tanh (fma {fma}): {t:?}");
            let s = sweep(&sigmoid_chain(), &o, &inputs, sigmoid_ref);
            assert_eq!(s.nan_mismatch, 0, "sigmoid NaN mismatch {s:?}");
            assert!(s.max_abs <= math::SIGMOID_MAX_ABS_ERR, "sigmoid (fma {fma}): {s:?}");
            // Relative bound where exp(-x) does not overflow.
            let finite: Vec<f32> = inputs.iter().copied().filter(|&x| x >= -88.7).collect();
            let sr = sweep(&sigmoid_chain(), &o, &finite, sigmoid_ref);
            assert!(sr.max_ulp <= math::SIGMOID_MAX_ULP as u64, "sigmoid (fma {fma}): {sr:?}");
            eprintln!("fma={fma} vectorize={vectorize}\n exp {e:?}\n log {l:?}\n tanh {t:?}\n sigmoid {s:?}\n sigmoid(x >= -88.7) {sr:?}");
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
                sweep(&exp_chain(), &o, &inputs, f64::exp),
                sweep(&log_chain(), &o, &inputs, f64::ln),
                sweep(&tanh_chain(), &o, &inputs, f64::tanh),
                sweep(&sigmoid_chain(), &o, &inputs, sigmoid_ref),
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
        let mut bufs = vec![TensorData::F32(inputs.to_vec()), TensorData::F32(vec![7.0; n])];
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

#[test]
fn zz_dump() {
    let k = unary_chain_kernel(64, &exp_chain());
    for fma in [true, false] {
        let t = cpu::disassemble(&k, &opts_with(fma, true)).unwrap();
        std::fs::write(format!("/tmp/scratch/exp_fma_{fma}.txt"), t).unwrap();
    }
}
