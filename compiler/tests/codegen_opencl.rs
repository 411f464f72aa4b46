//! Tests of the OpenCL C generator (`xenon_compiler::codegen::opencl`): the generated
//! source of hand-written and random kernels runs on the first OpenCL device (PoCL on the
//! CI machine) through `ocl` and must match the reference evaluator
//! `xenon_runtime::kernel::eval` bit for bit, except the `exp`/`log`/`tanh` built-ins,
//! which must stay within a few ulp. Every run places some arguments at a nonzero element
//! offset inside a larger buffer with guard elements around them (the `o{i}` parameters
//! must be honored and nothing outside the argument may change), and runs with several
//! work-group sizes. Without an OpenCL platform the device tests print
//! "SKIPPED: no OpenCL platform" and pass.
#![cfg(feature = "opencl")]

use ocl::{Buffer, Context, Device, Kernel, Platform, Program, Queue};
use std::sync::{Mutex, MutexGuard, OnceLock};
use xenon_compiler::codegen::opencl::{
    BUILD_OPTIONS, LOOP_ENTRY, OpenClCodegenError, loop_global_size, loop_kernel_source,
    loop_kernel_source_named,
};
use xenon_runtime::kernel::{Access, Instr, KernelArg, LoopKernel, Reduction, Store, eval};
use xenon_runtime::opencl::ocl;
use xenon_runtime::ops::{BinaryOp, CompareOp, ReduceOp, UnaryOp};
use xenon_runtime::{DType, TensorData};

mod common;
use common::kernel_gen::{GenMode, KernelGen, Rng, random_data};

// ------------------------------------------------------------------------------------
// OpenCL plumbing

struct Cl {
    context: Context,
    device: Device,
    queue: Queue,
}

/// The first device of the first platform, shared by all tests, with a lock that
/// serializes them, or `None` (after printing why) when there is no OpenCL platform.
/// (PoCL 3.1's lazy initialization is not safe when several threads create contexts at
/// once: `clGetDeviceIDs` then fails with `CL_DEVICE_NOT_FOUND` now and then.)
fn cl() -> Option<(MutexGuard<'static, ()>, &'static Cl)> {
    static CL: OnceLock<Option<Cl>> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let cl = CL.get_or_init(|| {
        let ids = match ocl::core::get_platform_ids() {
            Ok(ids) if !ids.is_empty() => ids,
            _ => return None,
        };
        let platform = Platform::new(ids[0]);
        let device = Device::first(platform).ok()?;
        let context = Context::builder()
            .platform(platform)
            .devices(device)
            .build()
            .expect("OpenCL context");
        let queue = Queue::new(&context, device, None).expect("OpenCL queue");
        Some(Cl {
            context,
            device,
            queue,
        })
    });
    match cl {
        Some(cl) => Some((guard, cl)),
        None => {
            eprintln!("SKIPPED: no OpenCL platform");
            None
        }
    }
}

/// How a kernel is enqueued.
#[derive(Clone, Copy, Debug)]
enum Launch {
    /// Global size rounded up to a multiple of 64; the implementation picks the local size.
    Rounded64,
    /// This local size (global size rounded up to a multiple of it).
    Local(usize),
}

const ALL_LAUNCHES: [Launch; 3] = [Launch::Rounded64, Launch::Local(1), Launch::Local(24)];

enum ClBuf {
    F32(Buffer<f32>),
    F64(Buffer<f64>),
    I32(Buffer<i32>),
}

/// Guard values around (and between) the arguments' elements.
const GUARD: f64 = -7777.0;

/// The element offset argument `i` of a run is placed at (0 for some, so both cases run).
fn offset_of(i: usize, salt: usize) -> usize {
    if (i + salt).is_multiple_of(3) {
        0
    } else {
        5 + 3 * i
    }
}

/// A device buffer of `offset + data.len() + 4` elements with `data` at `offset` and
/// guards elsewhere.
fn upload(cl: &Cl, data: &TensorData, offset: usize) -> ClBuf {
    fn make<T: ocl::OclPrm>(cl: &Cl, v: &[T], offset: usize, guard: T) -> Buffer<T> {
        let mut host = vec![guard; offset + v.len() + 4];
        host[offset..offset + v.len()].copy_from_slice(v);
        Buffer::<T>::builder()
            .queue(cl.queue.clone())
            .len(host.len())
            .copy_host_slice(&host)
            .build()
            .expect("buffer")
    }
    match data {
        TensorData::F32(v) => ClBuf::F32(make(cl, v, offset, GUARD as f32)),
        TensorData::F64(v) => ClBuf::F64(make(cl, v, offset, GUARD)),
        TensorData::I32(v) => ClBuf::I32(make(cl, v, offset, GUARD as i32)),
    }
}

/// Reads argument data back (the `len` elements at `offset`), checking the guards.
fn download(buf: &ClBuf, offset: usize, len: usize) -> TensorData {
    fn get<T: ocl::OclPrm + PartialEq>(
        b: &Buffer<T>,
        offset: usize,
        len: usize,
        guard: T,
    ) -> Vec<T> {
        let mut host = vec![guard; b.len()];
        b.read(&mut host).enq().expect("read");
        for (j, x) in host.iter().enumerate() {
            if j < offset || j >= offset + len {
                assert!(*x == guard, "guard element {j} overwritten");
            }
        }
        host[offset..offset + len].to_vec()
    }
    match buf {
        ClBuf::F32(b) => TensorData::F32(get(b, offset, len, GUARD as f32)),
        ClBuf::F64(b) => TensorData::F64(get(b, offset, len, GUARD)),
        ClBuf::I32(b) => TensorData::I32(get(b, offset, len, GUARD as i32)),
    }
}

/// One OpenCL program holding `kernels` with entries `xk0`, `xk1`, … (or `xk` alone).
fn build(cl: &Cl, kernels: &[&LoopKernel]) -> (Program, Vec<String>) {
    let mut src = String::new();
    let mut entries = vec![];
    for (j, k) in kernels.iter().enumerate() {
        let entry = if kernels.len() == 1 {
            LOOP_ENTRY.to_string()
        } else {
            format!("{LOOP_ENTRY}{j}")
        };
        src.push_str(&loop_kernel_source_named(k, &entry).expect("source"));
        entries.push(entry);
    }
    let program = Program::builder()
        .src(src.clone())
        .devices(cl.device)
        .cmplr_opt(BUILD_OPTIONS)
        .build(&cl.context)
        .unwrap_or_else(|e| panic!("OpenCL build failed: {e}\n{src}"));
    (program, entries)
}

/// Runs entry `entry` of `program` (generated from `kernel`) on `data` and returns the
/// arguments afterwards.
fn run_on_device(
    cl: &Cl,
    program: &Program,
    entry: &str,
    kernel: &LoopKernel,
    data: &[TensorData],
    launch: Launch,
    salt: usize,
) -> Vec<TensorData> {
    let offsets: Vec<usize> = (0..data.len()).map(|i| offset_of(i, salt)).collect();
    let bufs: Vec<ClBuf> = data
        .iter()
        .zip(&offsets)
        .map(|(d, &o)| upload(cl, d, o))
        .collect();
    let n = loop_global_size(kernel);
    let (global, local) = match launch {
        Launch::Rounded64 => (n.div_ceil(64) * 64, None),
        Launch::Local(l) => (n.div_ceil(l) * l, Some(l)),
    };
    let mut kb = Kernel::builder();
    kb.program(program)
        .name(entry)
        .queue(cl.queue.clone())
        .global_work_size(global);
    if let Some(l) = local {
        kb.local_work_size(l);
    }
    for (b, &o) in bufs.iter().zip(&offsets) {
        match b {
            ClBuf::F32(b) => kb.arg(b),
            ClBuf::F64(b) => kb.arg(b),
            ClBuf::I32(b) => kb.arg(b),
        };
        kb.arg(o as u64);
    }
    let k = kb.build().expect("kernel");
    // SAFETY: the kernel was validated against these argument lengths (`loop_kernel_source`
    // validates), every buffer holds its argument at its offset, and the arguments are
    // set in the calling convention's order and types.
    unsafe { k.enq().expect("enqueue") };
    cl.queue.finish().expect("finish");
    bufs.iter()
        .zip(&offsets)
        .zip(data)
        .map(|((b, &o), d)| download(b, o, d.len()))
        .collect()
}

// ------------------------------------------------------------------------------------
// Comparison

/// How a stored value must match the reference.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tol {
    /// Bit for bit (NaNs match NaNs).
    Exact,
    /// Within `n` steps (ulp) of the reference in its own precision, or within the
    /// relative error 1e-6 (f32) / 1e-14 (f64).
    Ulp(u64),
    /// Within a relative error of the reference (or an absolute one near zero).
    Rel(f64),
}

/// Position of a float on the line of all floats (monotonic, ±0 adjacent).
fn ord32(x: f32) -> i64 {
    let b = x.to_bits() as i32 as i64;
    if b < 0 { -(b & 0x7fff_ffff) } else { b }
}

fn ord64(x: f64) -> i128 {
    let b = x.to_bits() as i64 as i128;
    if b < 0 {
        -(b & 0x7fff_ffff_ffff_ffff)
    } else {
        b
    }
}

/// Largest ulp distance seen, per label (printed by the tests), and how many of the kernels
/// run were vectorized.
#[derive(Default, Debug)]
struct UlpStats(std::collections::BTreeMap<String, u64>, usize);

impl UlpStats {
    fn note(&mut self, label: &str, ulps: u64) {
        let e = self.0.entry(label.to_string()).or_default();
        *e = (*e).max(ulps);
    }
}

fn compare(
    got: &TensorData,
    want: &TensorData,
    tol: Tol,
    stats: Option<(&mut UlpStats, &str)>,
) -> Result<(), String> {
    let mut worst = 0u64;
    let res = (|| match (got, want) {
        (TensorData::F32(g), TensorData::F32(w)) => {
            for (j, (&g, &w)) in g.iter().zip(w).enumerate() {
                if g.is_nan() && w.is_nan() {
                    continue;
                }
                let u = if g.is_nan() || w.is_nan() {
                    u64::MAX
                } else {
                    (ord32(g) - ord32(w)).unsigned_abs()
                };
                worst = worst.max(u);
                let ok = match tol {
                    Tol::Exact => g.to_bits() == w.to_bits(),
                    Tol::Ulp(n) => u <= n || (g - w).abs() <= 1e-6 * w.abs(),
                    Tol::Rel(r) => {
                        g == w || ((g - w).abs() as f64) <= r * (w.abs() as f64).max(1e-30)
                    }
                };
                if !ok {
                    return Err(format!(
                        "element {j}: got {g:e} ({:#x}), want {w:e} ({:#x}) ({tol:?})",
                        g.to_bits(),
                        w.to_bits()
                    ));
                }
            }
            Ok(())
        }
        (TensorData::F64(g), TensorData::F64(w)) => {
            for (j, (&g, &w)) in g.iter().zip(w).enumerate() {
                if g.is_nan() && w.is_nan() {
                    continue;
                }
                let u = if g.is_nan() || w.is_nan() {
                    u64::MAX
                } else {
                    u64::try_from((ord64(g) - ord64(w)).unsigned_abs()).unwrap_or(u64::MAX)
                };
                worst = worst.max(u);
                let ok = match tol {
                    Tol::Exact => g.to_bits() == w.to_bits(),
                    Tol::Ulp(n) => u <= n || (g - w).abs() <= 1e-14 * w.abs(),
                    Tol::Rel(r) => g == w || (g - w).abs() <= r * w.abs().max(1e-300),
                };
                if !ok {
                    return Err(format!(
                        "element {j}: got {g:e} ({:#x}), want {w:e} ({:#x}) ({tol:?})",
                        g.to_bits(),
                        w.to_bits()
                    ));
                }
            }
            Ok(())
        }
        (TensorData::I32(g), TensorData::I32(w)) => match g.iter().zip(w).position(|(a, b)| a != b)
        {
            None => Ok(()),
            Some(j) => Err(format!("element {j}: got {}, want {}", g[j], w[j])),
        },
        _ => Err("dtype mismatch".into()),
    })();
    if let Some((stats, label)) = stats {
        stats.note(label, worst);
    }
    res
}

/// A kernel, its inputs and the tolerance of every argument.
struct Case {
    kernel: LoopKernel,
    data: Vec<TensorData>,
    tol: Vec<Tol>,
    /// What each argument holds, for the error statistics (`arg{j}` when empty).
    labels: Vec<String>,
}

/// Builds all cases into one program and checks each against `eval` for every launch in
/// `launches(case index)`.
fn check_cases(
    cl: &Cl,
    cases: &[Case],
    launches: &dyn Fn(usize) -> Vec<Launch>,
    stats: &mut UlpStats,
) {
    let kernels: Vec<&LoopKernel> = cases.iter().map(|c| &c.kernel).collect();
    let (program, entries) = build(cl, &kernels);
    for (ci, c) in cases.iter().enumerate() {
        let mut want = c.data.clone();
        eval(&c.kernel, &mut want[..], 0..c.kernel.outer_extent());
        for (li, launch) in launches(ci).into_iter().enumerate() {
            let got = run_on_device(
                cl,
                &program,
                &entries[ci],
                &c.kernel,
                &c.data,
                launch,
                ci + li,
            );
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                let label = match c.labels.get(j) {
                    Some(l) => format!("{}/{l}", c.kernel.name),
                    None => format!("{}/arg{j}", c.kernel.name),
                };
                if let Err(msg) = compare(g, w, c.tol[j], Some((stats, &label))) {
                    panic!(
                        "kernel {} argument {j}, launch {launch:?}: {msg}\n{}\n{:#?}",
                        c.kernel.name,
                        loop_kernel_source(&c.kernel).unwrap(),
                        c.kernel
                    );
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------
// Kernel building helpers

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

/// Row-major strides of a shape.
fn rm(shape: &[usize]) -> Vec<isize> {
    let mut s = vec![0isize; shape.len()];
    let mut step = 1isize;
    for d in (0..shape.len()).rev() {
        s[d] = step;
        step *= shape[d] as isize;
    }
    s
}

fn specials(t: DType) -> TensorData {
    let f = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        2.0,
        -2.5,
        3.75,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e-40,
        -1e-45,
        1e-30,
        3e38,
        -1e300,
        100.0,
        -100.0,
        88.5,
        -104.0,
        0.1,
        -0.3,
        12345.678,
        -7.0,
    ];
    match t {
        DType::F32 => TensorData::F32(f.iter().map(|&x| x as f32).collect()),
        DType::F64 => TensorData::F64(f.to_vec()),
        DType::I32 => TensorData::I32(vec![
            i32::MIN,
            i32::MAX,
            i32::MIN + 1,
            -1,
            0,
            1,
            7,
            -7,
            46341,
            -46341,
            65536,
            123_456_789,
            -5,
            2,
            3,
            i32::MAX - 1,
        ]),
    }
}

// ------------------------------------------------------------------------------------
// Source text

/// `y = max(x + b, 0)` over `[rows, cols]` f32, `b` a bias broadcast along the rows.
fn relu_bias_kernel(rows: usize, cols: usize) -> LoopKernel {
    LoopKernel {
        name: "relu_bias".into(),
        shape: vec![rows, cols],
        args: vec![
            arg(0, DType::F32, rows * cols),
            arg(1, DType::F32, cols),
            arg(2, DType::F32, rows * cols),
        ],
        body: vec![
            Instr::Load(access(0, 0, &[cols as isize, 1])),
            Instr::Load(access(1, 0, &[0, 1])),
            Instr::Binary {
                func: BinaryOp::Add,
                a: 0,
                b: 1,
            },
            Instr::Const {
                dtype: DType::F32,
                value: 0.0,
            },
            Instr::Binary {
                func: BinaryOp::Max,
                a: 2,
                b: 3,
            },
        ],
        reduce: None,
        stores: vec![Store {
            access: access(2, 0, &[cols as isize, 1]),
            value: 4,
        }],
    }
}

#[test]
fn source_is_deterministic_and_has_the_documented_shape() {
    let k = relu_bias_kernel(4, 10);
    let src = loop_kernel_source(&k).unwrap();
    assert_eq!(
        src,
        loop_kernel_source(&k.clone()).unwrap(),
        "deterministic"
    );
    let lines: Vec<&str> = src.lines().map(str::trim).collect();
    for want in [
        "#pragma OPENCL FP_CONTRACT OFF",
        "__kernel void xk(__global float* a0, ulong o0, __global float* a1, ulong o1, __global float* a2, ulong o2) {",
        "const ulong gid = get_global_id(0);",
        "if (gid >= 40UL) return;",
        "__global float* b0 = a0 + o0;",
        "__global float* b1 = a1 + o1;",
        "__global float* b2 = a2 + o2;",
        "ulong q = gid;",
        "const long i1 = (long)(q % 10UL);",
        "q /= 10UL;",
        "const long i0 = (long)q;",
        "float v0 = b0[i0 * 10L + i1];",
        "float v1 = b1[i1];",
        "float v2 = v0 + v1;",
        "float v3 = 0.0f;",
        "float v4 = (isnan(v2) || (!isnan(v3) && v2 >= v3)) ? v2 : v3;",
        "b2[i0 * 10L + i1] = v4;",
    ] {
        assert!(lines.contains(&want), "missing line {want:?} in\n{src}");
    }
    assert!(!src.contains("cl_khr_fp64"), "no f64 in this kernel");
    assert!(!src.contains("fmax"), "max must not be fmax");
    assert_eq!(loop_global_size(&k), 40);
    // An f64 kernel enables the extension.
    let mut k64 = k.clone();
    for a in &mut k64.args {
        a.dtype = DType::F64;
    }
    k64.body[3] = Instr::Const {
        dtype: DType::F64,
        value: 0.0,
    };
    let src64 = loop_kernel_source(&k64).unwrap();
    assert!(src64.contains("#pragma OPENCL EXTENSION cl_khr_fp64 : enable"));
    assert!(src64.contains("__global double* a0, ulong o0"));
    // Another entry name changes only the entry line.
    let named = loop_kernel_source_named(&k, "relu7").unwrap();
    assert_eq!(named.replace("void relu7(", "void xk("), src);
    // Eight columns: four lanes per work-item, vector loads and stores.
    let k = relu_bias_kernel(4, 8);
    assert_eq!(k.vector_axis(), Some(1));
    let src = loop_kernel_source(&k).unwrap();
    let lines: Vec<&str> = src.lines().map(str::trim).collect();
    for want in [
        "if (gid >= 8UL) return;",
        "const long i1 = (long)(q % 2UL) * 4L;",
        "q /= 2UL;",
        "const float4 l0 = vload4(0, b0 + (i0 * 8L + i1));",
        "const float4 l1 = vload4(0, b1 + (i1));",
        "float v0_0 = l0.s0;",
        "float v1_3 = l1.s3;",
        "float v2_3 = v0_3 + v1_3;",
        "vstore4((float4)(v4_0, v4_1, v4_2, v4_3), 0, b2 + (i0 * 8L + i1));",
    ] {
        assert!(lines.contains(&want), "missing line {want:?} in\n{src}");
    }
    assert_eq!(loop_global_size(&k), 8);
    // A strided (transposed) output stays scalar per lane.
    let mut kt = k.clone();
    kt.stores[0].access = access(2, 0, &[1, 4]);
    let src = loop_kernel_source(&kt).unwrap();
    assert!(src.contains("b2[i0 + (i1 + 3L) * 4L] = v4_3;"), "{src}");
    // A reduction, or an extent that is not a multiple of four, is not vectorized.
    assert_eq!(relu_bias_kernel(4, 10).vector_axis(), None);
}

#[test]
fn invalid_kernels_are_errors() {
    let mut k = relu_bias_kernel(4, 10);
    k.args[1].len = 9; // the bias load reaches element 9
    assert!(matches!(
        loop_kernel_source(&k),
        Err(OpenClCodegenError::InvalidKernel(_))
    ));
    let k = relu_bias_kernel(4, 10);
    assert!(matches!(
        loop_kernel_source_named(&k, "not an identifier"),
        Err(OpenClCodegenError::InvalidEntry(_))
    ));
}

// ------------------------------------------------------------------------------------
// Hand-written kernels on the device

#[test]
fn relu_bias_runs_with_offsets_and_every_launch() {
    let Some((_lock, cl)) = cl() else { return };
    // Scalar (13 columns) and vectorized (16 columns).
    let case = |cols: usize| {
        let n = 7 * cols;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 - 45.0) * 0.37).collect();
        let b: Vec<f32> = (0..cols).map(|i| (i as f32 - 6.0) * 1.1).collect();
        Case {
            data: vec![
                TensorData::F32(x),
                TensorData::F32(b),
                TensorData::F32(vec![0.0; n]),
            ],
            tol: vec![Tol::Exact; 3],
            labels: vec![],
            kernel: relu_bias_kernel(7, cols),
        }
    };
    let cases = [case(13), case(16)];
    assert_eq!(cases[1].kernel.vector_axis(), Some(1));
    let mut stats = UlpStats::default();
    check_cases(cl, &cases, &|_| ALL_LAUNCHES.to_vec(), &mut stats);
    let case = case(13);
    // Offsets matter: the output really was written (not all zero).
    let (program, entries) = build(cl, &[&case.kernel]);
    let got = run_on_device(
        cl,
        &program,
        &entries[0],
        &case.kernel,
        &case.data,
        Launch::Local(1),
        1,
    );
    assert_eq!(offset_of(2, 1), 0);
    assert_ne!(offset_of(0, 1), 0);
    match &got[2] {
        TensorData::F32(v) => assert!(v.iter().any(|&y| y > 0.0)),
        _ => unreachable!(),
    }
}

/// Every unary, binary and comparison op, select and the reductions' step on every pair
/// of special values of `t`: the shape is `[m, m]`, `x` varies along axis 0 and `y`
/// along axis 1 (broadcast loads), one output per op.
fn all_ops_case(t: DType) -> Case {
    let data = specials(t);
    let m = data.len();
    let mut body = vec![
        Instr::Load(access(0, 0, &[1, 0])),
        Instr::Load(access(0, 0, &[0, 1])),
    ];
    let (x, y) = (0u32, 1u32);
    let mut outs: Vec<(u32, Tol)> = vec![];
    let push = |body: &mut Vec<Instr>, outs: &mut Vec<(u32, Tol)>, ins: Instr, tol: Tol| {
        body.push(ins);
        outs.push((body.len() as u32 - 1, tol));
    };
    let mut labels = vec![];
    for func in UnaryOp::ALL {
        if func.float_only() && !t.is_float() {
            continue;
        }
        let tol = match func {
            UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh => Tol::Ulp(4),
            _ => Tol::Exact,
        };
        push(&mut body, &mut outs, Instr::Unary { func, a: x }, tol);
        labels.push(func.name().to_string());
    }
    for func in BinaryOp::ALL {
        if func.float_only() && !t.is_float() {
            continue;
        }
        push(
            &mut body,
            &mut outs,
            Instr::Binary { func, a: x, b: y },
            Tol::Exact,
        );
        labels.push(func.name().to_string());
    }
    for func in CompareOp::ALL {
        push(
            &mut body,
            &mut outs,
            Instr::Compare { func, a: x, b: y },
            Tol::Exact,
        );
        labels.push(func.name().to_string());
    }
    body.push(Instr::Const {
        dtype: t,
        value: 42.0,
    });
    let c = body.len() as u32 - 1;
    push(
        &mut body,
        &mut outs,
        Instr::Select {
            cond: x,
            a: y,
            b: c,
        },
        Tol::Exact,
    );
    labels.push("select".into());
    let mut args = vec![arg(0, t, m)];
    let mut stores = vec![];
    for (i, &(v, _)) in outs.iter().enumerate() {
        args.push(arg(i + 1, t, m * m));
        stores.push(Store {
            access: access(i + 1, 0, &[m as isize, 1]),
            value: v,
        });
    }
    let mut all = vec![data];
    let zero = match t {
        DType::F32 => TensorData::F32(vec![0.0; m * m]),
        DType::F64 => TensorData::F64(vec![0.0; m * m]),
        DType::I32 => TensorData::I32(vec![0; m * m]),
    };
    all.extend(std::iter::repeat_n(zero, outs.len()));
    let mut tol = vec![Tol::Exact];
    tol.extend(outs.iter().map(|&(_, t)| t));
    Case {
        kernel: LoopKernel {
            name: format!("ops_{t}"),
            shape: vec![m, m],
            args,
            body,
            reduce: None,
            stores,
        },
        data: all,
        tol,
        labels: std::iter::once("x".to_string()).chain(labels).collect(),
    }
}

#[test]
fn every_op_on_every_dtype_on_special_values() {
    let Some((_lock, cl)) = cl() else { return };
    let cases: Vec<Case> = [DType::F32, DType::F64, DType::I32]
        .into_iter()
        .map(all_ops_case)
        .collect();
    let mut stats = UlpStats::default();
    check_cases(cl, &cases, &|_| ALL_LAUNCHES.to_vec(), &mut stats);
    eprintln!("largest ulp distance per op: {stats:#?}");
    // Everything but the three transcendental built-ins is bit-exact.
    for (label, &u) in &stats.0 {
        let transcendental = ["/exp", "/log", "/tanh"].iter().any(|f| label.ends_with(f));
        assert!(transcendental || u == 0, "{label}: {u} ulp");
    }
}

/// Casts between every pair of dtypes on special and rounding-edge values.
#[test]
fn casts_round_truncate_and_saturate() {
    let Some((_lock, cl)) = cl() else { return };
    let f64s: Vec<f64> = vec![
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        -0.9,
        0.9,
        -2.7,
        2.5,
        -2.5,
        2147483647.0,
        2147483647.9,
        2147483648.0,
        -2147483648.0,
        -2147483649.0,
        3e9,
        -3e9,
        1e300,
        -1e300,
        16777217.0,
        1.0 + 2f64.powi(-24) + 2f64.powi(-40),
        1.0 + 2f64.powi(-24),
        1.0 + 3.0 * 2f64.powi(-24),
        3.4028235677973366e38,
        3.4028236e38,
        1e-46,
        7e-46,
        1e-320,
        0.1,
    ];
    let f32s: Vec<f32> = f64s
        .iter()
        .map(|&x| x as f32)
        .chain([2147483520.0, 2147483648.0, -2147483904.0])
        .collect();
    let i32s: Vec<i32> = vec![
        i32::MIN,
        i32::MAX,
        16_777_217,
        16_777_219,
        -16_777_217,
        0,
        -1,
        1,
        123_456_789,
        2_147_483_520,
        2_147_483_583,
        2_147_483_584,
    ];
    let mut cases = vec![];
    for (from, data) in [
        (DType::F64, TensorData::F64(f64s)),
        (DType::F32, TensorData::F32(f32s)),
        (DType::I32, TensorData::I32(i32s)),
    ] {
        let n = data.len();
        let mut body = vec![Instr::Load(access(0, 0, &[1]))];
        let mut args = vec![arg(0, from, n)];
        let mut all = vec![data];
        let mut stores = vec![];
        for to in [DType::F32, DType::F64, DType::I32] {
            body.push(Instr::Cast { to, a: 0 });
            let i = args.len();
            args.push(arg(i, to, n));
            all.push(match to {
                DType::F32 => TensorData::F32(vec![0.0; n]),
                DType::F64 => TensorData::F64(vec![0.0; n]),
                DType::I32 => TensorData::I32(vec![0; n]),
            });
            stores.push(Store {
                access: access(i, 0, &[1]),
                value: body.len() as u32 - 1,
            });
        }
        // Constants of every dtype from the same values (converted on the host).
        cases.push(Case {
            tol: vec![Tol::Exact; args.len()],
            labels: vec![],
            kernel: LoopKernel {
                name: format!("cast_from_{from}"),
                shape: vec![n],
                args,
                body,
                reduce: None,
                stores,
            },
            data: all,
        });
    }
    let mut stats = UlpStats::default();
    check_cases(cl, &cases, &|_| vec![Launch::Rounded64], &mut stats);
}

/// Constants of every dtype, converted on the host exactly like `Tensor::from_f64_as`,
/// must reach the device with the same bits.
#[test]
fn constants_keep_their_bits() {
    let Some((_lock, cl)) = cl() else { return };
    let values = [
        0.0,
        -0.0,
        0.1,
        -1.5,
        1e-45,
        1e-40,
        3.4028235e38,
        1e39,
        -1e300,
        5e-324,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        2147483648.0,
        -2147483649.0,
        -2.7,
        1.0 + 2f64.powi(-24) + 2f64.powi(-40),
        std::f64::consts::PI,
    ];
    let mut cases = vec![];
    for t in [DType::F32, DType::F64, DType::I32] {
        let n = values.len();
        let body: Vec<Instr> = values
            .iter()
            .map(|&value| Instr::Const { dtype: t, value })
            .collect();
        let stores = (0..n)
            .map(|j| Store {
                access: access(0, j, &[]),
                value: j as u32,
            })
            .collect();
        let zero = match t {
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::F64 => TensorData::F64(vec![0.0; n]),
            DType::I32 => TensorData::I32(vec![0; n]),
        };
        cases.push(Case {
            kernel: LoopKernel {
                name: format!("consts_{t}"),
                shape: vec![],
                args: vec![arg(0, t, n)],
                body,
                reduce: None,
                stores,
            },
            data: vec![zero],
            tol: vec![Tol::Exact],
            labels: vec![],
        });
    }
    let mut stats = UlpStats::default();
    check_cases(
        cl,
        &cases,
        &|_| vec![Launch::Rounded64, Launch::Local(1)],
        &mut stats,
    );
}

/// A `[3, 4, 5]` input reduced (sum and max) over each set of axes, stored as the
/// accumulator and as a mean (`post`: multiply by 1/count), with NaNs in some inputs.
#[test]
fn reductions_over_leading_middle_trailing_and_several_axes() {
    let Some((_lock, cl)) = cl() else { return };
    let shape = [3usize, 4, 5];
    let n: usize = shape.iter().product();
    let mut cases = vec![];
    for t in [DType::F32, DType::F64, DType::I32] {
        for axes in [
            vec![0],
            vec![1],
            vec![2],
            vec![0, 2],
            vec![1, 2],
            vec![0, 1, 2],
        ] {
            for op in [ReduceOp::Sum, ReduceOp::Max] {
                for with_nan in [false, true] {
                    if with_nan && !t.is_float() {
                        continue;
                    }
                    let outer: Vec<usize> = (0..3).filter(|a| !axes.contains(a)).collect();
                    let out_shape: Vec<usize> = outer.iter().map(|&a| shape[a]).collect();
                    let out_n: usize = out_shape.iter().product();
                    let ors = rm(&out_shape);
                    let mut out_strides = vec![0isize; 3];
                    for (k, &a) in outer.iter().enumerate() {
                        out_strides[a] = ors[k];
                    }
                    // x·x + y: y broadcast along axis 0, reversed along axis 2.
                    let body = vec![
                        Instr::Load(access(0, 0, &rm(&shape))),
                        Instr::Load(access(1, 4, &[0, 5, -1])),
                        Instr::Binary {
                            func: BinaryOp::Mul,
                            a: 0,
                            b: 0,
                        },
                        Instr::Binary {
                            func: BinaryOp::Add,
                            a: 2,
                            b: 1,
                        },
                    ];
                    let count: usize = axes.iter().map(|&a| shape[a]).product();
                    let mut post = vec![Instr::Accumulator];
                    let mut stores = vec![Store {
                        access: access(2, 0, &out_strides),
                        value: 4,
                    }];
                    if t.is_float() {
                        post.push(Instr::Const {
                            dtype: t,
                            value: 1.0 / count as f64,
                        });
                        post.push(Instr::Binary {
                            func: BinaryOp::Mul,
                            a: 4,
                            b: 5,
                        });
                        stores.push(Store {
                            access: access(3, 0, &out_strides),
                            value: 6,
                        });
                    }
                    let mut rng = Rng(n as u64 * 31 + axes.len() as u64 + with_nan as u64);
                    let mut x = random_data(&mut rng, t, n);
                    if let TensorData::F32(v) = &mut x {
                        v.iter_mut().for_each(|e| {
                            if !with_nan && e.is_nan() {
                                *e = 1.5
                            }
                        });
                    }
                    if let TensorData::F64(v) = &mut x {
                        v.iter_mut().for_each(|e| {
                            if !with_nan && e.is_nan() {
                                *e = 1.5
                            }
                        });
                    }
                    let y = random_data(&mut rng, t, 20);
                    let zero = |len| match t {
                        DType::F32 => TensorData::F32(vec![0.0; len]),
                        DType::F64 => TensorData::F64(vec![0.0; len]),
                        DType::I32 => TensorData::I32(vec![0; len]),
                    };
                    let mut args = vec![arg(0, t, n), arg(1, t, 20), arg(2, t, out_n)];
                    let mut data = vec![x, y, zero(out_n)];
                    if t.is_float() {
                        args.push(arg(3, t, out_n));
                        data.push(zero(out_n));
                    }
                    cases.push(Case {
                        tol: vec![Tol::Exact; args.len()],
                        labels: vec![],
                        kernel: LoopKernel {
                            name: format!("{}_{t}_{axes:?}_nan{with_nan}", op.name()),
                            shape: shape.to_vec(),
                            args,
                            body,
                            reduce: Some(Reduction {
                                op,
                                axes: axes.clone(),
                                value: 3,
                                post,
                                partials: 1,
                            }),
                            stores,
                        },
                        data,
                    });
                }
            }
        }
    }
    let mut stats = UlpStats::default();
    let launches = |i: usize| vec![ALL_LAUNCHES[i % 3]];
    check_cases(cl, &cases, &launches, &mut stats);
}

// ------------------------------------------------------------------------------------
// Random kernels (adapted from tests/codegen_cpu.rs)

fn eps(t: DType) -> f64 {
    if t == DType::F64 {
        f64::EPSILON
    } else {
        f32::EPSILON as f64
    }
}

/// A random valid kernel with random data. Unlike the CPU generator's kernels, stores are
/// injective over the outer points and never write an input (work-items run in no
/// particular order, so a kernel whose points communicate has no single answer).
fn random_kernel(rng: &mut Rng, mode: GenMode, index: usize) -> Case {
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
    let palette = if exact || palette.iter().any(|t| t.is_float()) {
        palette
    } else {
        vec![DType::F32]
    };
    let mut g = KernelGen {
        f64_transcendentals: false,
        rng,
        shape: shape.clone(),
        reduced: reduced.clone(),
        args: vec![],
        reach: vec![],
        body: vec![],
        vals: vec![],
    };
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
    // Transcendental leaves: stored directly or reduced.
    let mut trans_vals: Vec<(u32, UnaryOp)> = vec![];
    if !exact {
        for _ in 0..1 + g.rng.below(2) {
            let prior: Vec<u32> = trans_vals.iter().map(|&(v, _)| v).collect();
            if let Some(a) = g.pick_val(|v, t, _| t.is_float() && !prior.contains(&(v as u32))) {
                let func = g.rng.pick(&[UnaryOp::Exp, UnaryOp::Log, UnaryOp::Tanh]);
                let (t, var) = g.vals[a as usize];
                let v = g.push(Instr::Unary { func, a }, t, var);
                trans_vals.push((v, func));
            }
        }
    }
    let nbody = g.body.len();
    let trans_tol = Tol::Ulp(4);
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
        let a = g.access(i, &red, false);
        (i, a)
    };
    if reduce {
        let (value, trans) = match trans_vals.first() {
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
        let op = match trans {
            Some(f) if f != UnaryOp::Exp => ReduceOp::Max,
            _ => g.rng.pick(&[ReduceOp::Sum, ReduceOp::Max]),
        };
        let t = g.vals[value as usize].0;
        let count: usize = reduced.iter().map(|&a| shape[a]).product();
        let acc_tol = match (trans, op) {
            (None, _) => Tol::Exact,
            (Some(_), ReduceOp::Max) => trans_tol,
            (Some(_), _) => Tol::Rel((4.0 + count as f64 + 2.0) * eps(t)),
        };
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
        let mut cands: Vec<(u32, Tol)> = trans_vals.iter().map(|&(v, _)| (v, trans_tol)).collect();
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
    }
    let KernelGen {
        rng,
        args,
        reach,
        mut body,
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
    body.truncate(nbody);
    Case {
        kernel: LoopKernel {
            name: format!("random_{index}"),
            shape,
            args,
            body,
            reduce: reduction,
            stores,
        },
        data,
        tol: out_tol,
        labels: vec![],
    }
}

/// `count` random kernels in programs of `per_program` kernels, each run with one of
/// the launches (in turn).
/// Returns the error statistics and the time taken (holding the device).
fn run_random(
    seed: u64,
    count: usize,
    per_program: usize,
    mode: GenMode,
) -> (UlpStats, std::time::Duration) {
    let mut stats = UlpStats::default();
    let Some((_lock, cl)) = cl() else {
        return (stats, Default::default());
    };
    let start = std::time::Instant::now();
    let mut rng = Rng(seed);
    let mut made = 0;
    while made < count {
        let size = per_program.min(count - made);
        let cases: Vec<Case> = (0..size)
            .map(|j| random_kernel(&mut rng, mode, made + j))
            .collect();
        for c in &cases {
            c.kernel.validate().unwrap_or_else(|e| {
                panic!("generator made an invalid kernel: {e}\n{:#?}", c.kernel)
            });
            stats.1 += usize::from(c.kernel.vector_axis().is_some());
        }
        let base = made;
        check_cases(
            cl,
            &cases,
            &|i| vec![ALL_LAUNCHES[(base + i) % 3]],
            &mut stats,
        );
        made += size;
    }
    (stats, start.elapsed())
}

#[test]
fn random_kernels_match_reference_exactly() {
    let (stats, took) = run_random(0x0c1_0001, 300, 50, GenMode::Exact);
    eprintln!(
        "300 random exact kernels ({} vectorized) in {took:.1?}",
        stats.1
    );
    assert!(stats.0.values().all(|&u| u == 0), "{stats:?}");
    // The generator reaches the vector lanes too (when a device ran the kernels).
    if cl().is_some() {
        assert!(stats.1 >= 20, "{} vectorized", stats.1);
    }
}

#[test]
fn random_transcendental_kernels_within_bounds() {
    let (stats, took) = run_random(0x0c1_0002, 100, 50, GenMode::Transcendental);
    let worst = stats.0.values().copied().max().unwrap_or(0);
    eprintln!(
        "100 random transcendental kernels in {:.1?}; largest ulp distance {worst}",
        took
    );
}
