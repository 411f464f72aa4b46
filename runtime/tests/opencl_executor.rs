//! The OpenCL executor against the CPU executor (reference evaluator for loop steps) on
//! hand-built programs: GEMMs of many shapes and layouts, every library routine, loop
//! kernels written by hand in the loop-kernel calling convention, updates, and the errors
//! (bad indices, kernels that do not build). Every test prints "SKIPPED: no OpenCL
//! platform" and passes on a machine without OpenCL.
#![cfg(feature = "opencl")]

use std::collections::HashMap;
use std::sync::Arc;
use xenon_runtime::cpu::CpuExecutor;
use xenon_runtime::exec::ExecError;
use xenon_runtime::kernel::{Access, Instr, KernelArg, LoopKernel, Store};
use xenon_runtime::opencl::{self, OclExecutor};
use xenon_runtime::ops::BinaryOp;
use xenon_runtime::program::{
    BufferDecl, BufferKind, GemmStep, LibraryStep, MatView, MemoryPlan, Program, Step, WindowSpec,
};
use xenon_runtime::{DType, Tensor, rng};

/// True (after printing why) when this machine has no OpenCL device.
fn skip() -> bool {
    match opencl::devices() {
        Ok(d) if !d.is_empty() => false,
        Ok(_) => {
            println!("SKIPPED: no OpenCL platform");
            true
        }
        Err(e) => {
            println!("SKIPPED: no OpenCL platform ({e})");
            true
        }
    }
}

/// Buffers of a program under construction, with an arena laid out as they come.
#[derive(Default)]
struct Builder {
    buffers: Vec<BufferDecl>,
    arena: usize,
    feeds: HashMap<String, Tensor>,
}

impl Builder {
    fn input(&mut self, name: &str, t: Tensor) -> usize {
        self.buffers.push(BufferDecl {
            dtype: t.dtype(),
            len: t.numel(),
            kind: BufferKind::Input { name: name.into() },
            offset: 0,
            node: None,
        });
        self.feeds.insert(name.into(), t);
        self.buffers.len() - 1
    }
    fn arena(&mut self, dtype: DType, len: usize, kind: BufferKind) -> usize {
        // A little padding between buffers, so that offsets are not all zero.
        let offset = self.arena + 16;
        self.arena = offset + len * dtype.size_bytes();
        self.arena = self.arena.next_multiple_of(16);
        self.buffers.push(BufferDecl {
            dtype,
            len,
            kind,
            offset,
            node: None,
        });
        self.buffers.len() - 1
    }
    fn temp(&mut self, dtype: DType, len: usize) -> usize {
        self.arena(dtype, len, BufferKind::Temp)
    }
    fn program(&self, steps: Vec<Step>, outputs: Vec<(String, usize)>) -> Program {
        Program {
            buffers: self.buffers.clone(),
            steps,
            outputs,
            updates: vec![],
            plan: MemoryPlan {
                arena_bytes: self.arena,
                naive_bytes: self.arena,
                in_place: 0,
            },
        }
    }
}

fn random_tensor(dtype: DType, len: usize, seed: u64) -> Tensor {
    let v: Vec<f64> = (0..len as u64)
        .map(|i| rng::uniform_f64(seed, 0, i) * 2.0 - 1.0)
        .collect();
    match dtype {
        DType::F32 => Tensor::from_f32(vec![len], v.iter().map(|&x| x as f32).collect()),
        DType::F64 => Tensor::from_f64(vec![len], v),
        DType::I32 => Tensor::from_i32(vec![len], v.iter().map(|&x| (x * 100.0) as i32).collect()),
    }
    .unwrap()
}

/// Both executors' outputs of `program` on `feeds`.
fn run_both(
    program: &Program,
    feeds: &HashMap<String, Tensor>,
) -> (HashMap<String, Tensor>, HashMap<String, Tensor>) {
    let steps = program.steps.len();
    let mut cpu = CpuExecutor::new(program.clone(), vec![None; steps], Arc::new(()), 1).unwrap();
    let want = cpu.run(feeds, &HashMap::new()).unwrap();
    let sources = loop_sources(program);
    let mut ocl = OclExecutor::new(program.clone(), sources, 0, "").unwrap();
    let got = ocl.run(feeds, &HashMap::new()).unwrap();
    (want, got)
}

/// No loop sources (the programs here without loop steps).
fn loop_sources(program: &Program) -> Vec<Option<String>> {
    vec![None; program.steps.len()]
}

#[test]
fn devices_are_listed() {
    if skip() {
        return;
    }
    let d = opencl::devices().unwrap();
    assert!(!d.is_empty());
    for (i, info) in d.iter().enumerate() {
        println!("{info}");
        assert_eq!(info.index, i);
        assert!(info.compute_units >= 1);
        assert!(info.max_work_group_size >= 1);
        assert!(info.global_mem_bytes > 0);
        assert!(!info.name.is_empty());
    }
    // A device number past the list is an error, not a panic.
    let p = Builder::default().program(vec![], vec![]);
    match OclExecutor::new(p, vec![], d.len(), "") {
        Err(ExecError::Device { backend, reason }) => {
            assert_eq!(backend, "opencl");
            assert!(reason.contains("does not exist"), "{reason}");
        }
        other => panic!("{:?}", other.err()),
    }
}

/// A GEMM case: shape, batch, dtype and layouts (`ta`/`tb`: stored transposed).
struct Case {
    m: usize,
    n: usize,
    k: usize,
    batch: usize,
    dtype: DType,
    ta: bool,
    tb: bool,
    /// Sum the batch's products into one matrix (`GemmStep::sum_batch`).
    sum: bool,
}

/// A matrix view over a fresh buffer (`rows × cols`, batch): row-major or transposed.
fn operand(
    b: &mut Builder,
    name: &str,
    rows: usize,
    cols: usize,
    c: &Case,
    trans: bool,
    seed: u64,
) -> MatView {
    let pad = 3;
    let plane = rows * cols + pad;
    let len = plane * c.batch + pad;
    let buffer = b.input(name, random_tensor(c.dtype, len, seed));
    let (row_stride, col_stride) = if trans {
        (1, rows as isize)
    } else {
        (cols as isize, 1)
    };
    MatView {
        buffer,
        offset: pad,
        row_stride,
        col_stride,
        batch_stride: plane as isize,
    }
}

#[test]
fn gemm_matches_the_cpu() {
    if skip() {
        return;
    }
    let f = |m, n, k, batch, dtype, ta, tb| Case {
        m,
        n,
        k,
        batch,
        dtype,
        ta,
        tb,
        sum: false,
    };
    let summed = |m, n, k, batch, dtype, ta, tb| Case {
        sum: true,
        ..f(m, n, k, batch, dtype, ta, tb)
    };
    use DType::{F32, F64};
    let cases = [
        f(1, 1, 1, 1, F32, false, false),
        f(67, 45, 33, 1, F32, false, false),
        f(128, 100, 784, 1, F32, false, true),
        f(128, 100, 784, 1, F32, false, false),
        f(100, 128, 64, 1, F32, true, false),
        f(33, 70, 65, 1, F32, true, true),
        f(64, 64, 64, 1, F32, false, false),
        f(300, 257, 19, 1, F32, false, false),
        f(17, 9, 130, 3, F32, false, false),
        f(40, 50, 60, 2, F32, true, false),
        f(3, 200, 5, 1, F32, false, false),
        f(67, 45, 33, 1, F64, false, false),
        f(130, 70, 90, 2, F64, true, true),
        f(5, 7, 3, 1, F64, false, false),
        summed(16, 25, 144, 8, F32, false, true),
        summed(33, 20, 7, 5, F32, true, false),
        summed(9, 11, 13, 3, F64, false, false),
    ];
    let mut b = Builder::default();
    let mut steps = Vec::new();
    let mut outputs = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let a = operand(&mut b, &format!("a{i}"), c.m, c.k, c, c.ta, 2 * i as u64);
        let bm = operand(
            &mut b,
            &format!("b{i}"),
            c.k,
            c.n,
            c,
            c.tb,
            2 * i as u64 + 1,
        );
        let planes = if c.sum { 1 } else { c.batch };
        let out = b.temp(c.dtype, c.m * c.n * planes);
        steps.push(Step::Gemm(GemmStep {
            dtype: c.dtype,
            m: c.m,
            n: c.n,
            k: c.k,
            batch: c.batch,
            a,
            b: bm,
            c: MatView {
                buffer: out,
                offset: 0,
                row_stride: c.n as isize,
                col_stride: 1,
                batch_stride: if c.sum { 0 } else { (c.m * c.n) as isize },
            },
            sum_batch: c.sum,
        }));
        outputs.push((format!("c{i}"), out));
    }
    let program = b.program(steps, outputs);
    // Every GEMM step runs a known configuration (products of at least
    // GEMM_TUNE_MIN_MACS, like 128×100×784, chose theirs by timing them all); the results
    // below come from those choices.
    let ocl = OclExecutor::new(program.clone(), vec![None; program.steps.len()], 0, "").unwrap();
    assert_eq!(ocl.gemm_choices().len(), cases.len());
    for (_, name) in ocl.gemm_choices() {
        assert!(["t64", "t32", "t16", "simple"].contains(name), "{name}");
    }
    let (want, got) = run_both(&program, &b.feeds);
    for (i, c) in cases.iter().enumerate() {
        let (w, g) = (
            want[&format!("c{i}")].to_f64_vec(),
            got[&format!("c{i}")].to_f64_vec(),
        );
        let scale = w.iter().fold(0.0f64, |s, x| s.max(x.abs())).max(1e-30);
        let err = w
            .iter()
            .zip(&g)
            .fold(0.0f64, |s, (x, y)| s.max((x - y).abs()))
            / scale;
        let tol = if c.dtype == F32 { 1e-5 } else { 1e-12 };
        assert!(
            err <= tol,
            "case {i} {}×{}×{} batch {} (summed {}) {} ta {} tb {}: relative error {err}",
            c.m,
            c.n,
            c.k,
            c.batch,
            c.sum,
            c.dtype,
            c.ta,
            c.tb
        );
    }
}

fn window(kernel: Vec<usize>, stride: Vec<usize>, pad: Vec<usize>, out: Vec<usize>) -> WindowSpec {
    let r = kernel.len();
    WindowSpec {
        kernel,
        stride,
        pad_low: pad.clone(),
        pad_high: pad,
        dilation: vec![1; r],
        out,
    }
}

/// Every library routine in one program, on feeds with NaNs and repeated indices.
fn library_program(indices: Vec<i32>) -> (Program, HashMap<String, Tensor>) {
    let mut b = Builder::default();
    let mut x = random_tensor(DType::F32, 6 * 7 * 5, 1).to_f64_vec();
    x[3 * 5 + 2] = f64::NAN; // row 0 (outer 0), axis 3, inner 2
    x[40] = f64::NAN;
    let x = b.input(
        "x",
        Tensor::from_f32(vec![210], x.iter().map(|&v| v as f32).collect()).unwrap(),
    );
    let xi = b.input("xi", random_tensor(DType::I32, 60, 2));
    let xd = b.input("xd", random_tensor(DType::F64, 60, 3));
    let n = indices.len();
    let idx = b.input("idx", Tensor::from_i32(vec![n], indices).unwrap());
    let counter = b.input("counter", Tensor::from_i32(vec![1], vec![-3]).unwrap());
    let mut steps = Vec::new();
    let mut outputs = Vec::new();
    let mut out = |name: &str, id: usize| outputs.push((name.to_string(), id));
    // copy: input to temp, then an overlapping copy inside the arena.
    let c1 = b.temp(DType::F32, 50);
    steps.push(Step::Library(LibraryStep::Copy {
        src: x,
        dst: c1,
        dtype: DType::F32,
        src_offset: 7,
        dst_offset: 2,
        len: 40,
    }));
    let c2 = b.temp(DType::F32, 50);
    steps.push(Step::Library(LibraryStep::Copy {
        src: c1,
        dst: c2,
        dtype: DType::F32,
        src_offset: 0,
        dst_offset: 0,
        len: 50,
    }));
    steps.push(Step::Library(LibraryStep::Copy {
        src: c2,
        dst: c2,
        dtype: DType::F32,
        src_offset: 0,
        dst_offset: 5,
        len: 40,
    }));
    out("copy", c2);
    let ci = b.temp(DType::I32, 60);
    steps.push(Step::Library(LibraryStep::Copy {
        src: xi,
        dst: ci,
        dtype: DType::I32,
        src_offset: 0,
        dst_offset: 0,
        len: 60,
    }));
    out("copy_i32", ci);
    // argmax over f32 (with NaNs), i32 and f64.
    for (name, src, dtype, (o, a, i)) in [
        ("argmax", x, DType::F32, (6, 7, 5)),
        ("argmax_i32", xi, DType::I32, (3, 4, 5)),
        ("argmax_f64", xd, DType::F64, (1, 60, 1)),
    ] {
        let t = b.temp(DType::I32, o * i);
        steps.push(Step::Library(LibraryStep::ArgMax {
            x: src,
            out: t,
            dtype,
            outer: o,
            axis: a,
            inner: i,
        }));
        out(name, t);
    }
    // gather rows of 10 from 21 rows; scatter-add rows of 10 into 12 rows.
    let g = b.temp(DType::F32, n * 10);
    steps.push(Step::Library(LibraryStep::Gather {
        data: x,
        indices: idx,
        out: g,
        dtype: DType::F32,
        rows: 21,
        row_len: 10,
    }));
    out("gather", g);
    let gi = b.temp(DType::I32, n * 5);
    steps.push(Step::Library(LibraryStep::Gather {
        data: xi,
        indices: idx,
        out: gi,
        dtype: DType::I32,
        rows: 12,
        row_len: 5,
    }));
    out("gather_i32", gi);
    let upd = b.input("upd", random_tensor(DType::F32, n * 10, 4));
    let sa = b.temp(DType::F32, 12 * 10);
    steps.push(Step::Library(LibraryStep::ScatterAdd {
        updates: upd,
        indices: idx,
        out: sa,
        dtype: DType::F32,
        rows: 12,
        row_len: 10,
    }));
    out("scatter_add", sa);
    let sai = b.temp(DType::I32, 12 * 5);
    steps.push(Step::Library(LibraryStep::ScatterAdd {
        updates: xi,
        indices: idx,
        out: sai,
        dtype: DType::I32,
        rows: 12,
        row_len: 5,
    }));
    out("scatter_add_i32", sai);
    // im2col / col2im: 2 images × 3 channels of 6×5, 3×2 kernel, stride (2, 1), pad 1.
    let img = b.input("img", random_tensor(DType::F32, 2 * 3 * 30, 5));
    let w = window(vec![3, 2], vec![2, 1], vec![1, 1], vec![3, 6]);
    let image = vec![2, 3, 6, 5];
    let cols = b.temp(DType::F32, 2 * 3 * 6 * 18);
    steps.push(Step::Library(LibraryStep::Im2Col {
        x: img,
        out: cols,
        dtype: DType::F32,
        image: image.clone(),
        window: w.clone(),
    }));
    out("im2col", cols);
    let back = b.temp(DType::F32, 2 * 3 * 30);
    steps.push(Step::Library(LibraryStep::Col2Im {
        cols,
        out: back,
        dtype: DType::F32,
        image: image.clone(),
        window: w.clone(),
    }));
    out("col2im", back);
    let imgd = b.input("imgd", random_tensor(DType::F64, 2 * 3 * 30, 6));
    let colsd = b.temp(DType::F64, 2 * 3 * 6 * 18);
    steps.push(Step::Library(LibraryStep::Im2Col {
        x: imgd,
        out: colsd,
        dtype: DType::F64,
        image: image.clone(),
        window: w.clone(),
    }));
    let backd = b.temp(DType::F64, 2 * 3 * 30);
    steps.push(Step::Library(LibraryStep::Col2Im {
        cols: colsd,
        out: backd,
        dtype: DType::F64,
        image,
        window: w,
    }));
    out("col2im_f64", backd);
    // random streams.
    for (name, dtype, normal, counter) in [
        ("uniform_f32", DType::F32, false, None),
        ("uniform_f32_c", DType::F32, false, Some(counter)),
        ("uniform_f64", DType::F64, false, Some(counter)),
        ("normal_f32", DType::F32, true, Some(counter)),
        ("normal_f64", DType::F64, true, None),
    ] {
        let t = b.temp(dtype, 1000);
        steps.push(Step::Library(LibraryStep::Random {
            out: t,
            dtype,
            normal,
            seed: 0xDEAD_BEEF_1234,
            a: -0.3,
            b: 1.7,
            counter,
        }));
        out(name, t);
    }
    (b.program(steps, outputs), b.feeds)
}

fn bits(t: &Tensor) -> Vec<u64> {
    match t.data() {
        xenon_runtime::TensorData::F32(v) => v.iter().map(|x| x.to_bits() as u64).collect(),
        xenon_runtime::TensorData::F64(v) => v.iter().map(|x| x.to_bits()).collect(),
        xenon_runtime::TensorData::I32(v) => v.iter().map(|&x| x as u32 as u64).collect(),
    }
}

#[test]
fn library_routines_match_the_cpu_bit_for_bit() {
    if skip() {
        return;
    }
    let (program, feeds) = library_program(vec![3, 0, 11, 3, 7, 3, 0, 5]);
    let steps = program.steps.len();
    let mut cpu = CpuExecutor::new(program.clone(), vec![None; steps], Arc::new(()), 1).unwrap();
    let want = cpu.run(&feeds, &HashMap::new()).unwrap();
    let mut ocl = OclExecutor::new(program.clone(), loop_sources(&program), 0, "").unwrap();
    let got = ocl.run(&feeds, &HashMap::new()).unwrap();
    assert_eq!(want.len(), got.len());
    let mut names: Vec<&String> = want.keys().collect();
    names.sort();
    for name in names {
        let (w, g) = (&want[name], &got[name]);
        assert_eq!(w.dtype(), g.dtype(), "{name}");
        if name.starts_with("normal") {
            // Normal samples go through log, sqrt and cos, whose last bit may differ
            // between the device's math library and the host's.
            let (w, g) = (w.to_f64_vec(), g.to_f64_vec());
            let same = w.iter().zip(&g).filter(|(x, y)| x == y).count();
            println!("{name}: {same} of {} samples bit-identical", w.len());
            for (x, y) in w.iter().zip(&g) {
                assert!(
                    (x - y).abs() <= 1e-12 * x.abs().max(1.0),
                    "{name}: {x} vs {y}"
                );
            }
        } else {
            assert_eq!(bits(w), bits(g), "{name}");
        }
    }

    // The same executor with an index out of range: the CPU's error.
    let mut bad = feeds.clone();
    bad.insert(
        "idx".into(),
        Tensor::from_i32(vec![8], vec![3, 0, 11, 3, 12, 3, -1, 5]).unwrap(),
    );
    let want = cpu.run(&bad, &HashMap::new()).unwrap_err();
    let got = ocl.run(&bad, &HashMap::new()).unwrap_err();
    assert!(matches!(got, ExecError::Index { .. }), "{got}");
    assert_eq!(want, got);
    // And it still runs afterwards.
    ocl.run(&feeds, &HashMap::new()).unwrap();
}

/// `y[i] = x[i]·2 + c[i]` over `n` f32: a loop kernel and its OpenCL C source.
fn scale_kernel(x: usize, c: usize, y: usize, n: usize) -> (LoopKernel, String) {
    let arg = |buffer| KernelArg {
        buffer,
        dtype: DType::F32,
        len: n,
    };
    let at = |arg| Access {
        arg,
        offset: 0,
        strides: vec![1],
    };
    let k = LoopKernel {
        name: "scale_add".into(),
        shape: vec![n],
        args: vec![arg(x), arg(c), arg(y)],
        body: vec![
            Instr::Load(at(0)),
            Instr::Const {
                dtype: DType::F32,
                value: 2.0,
            },
            Instr::Binary {
                func: BinaryOp::Mul,
                a: 0,
                b: 1,
            },
            Instr::Load(at(1)),
            Instr::Binary {
                func: BinaryOp::Add,
                a: 2,
                b: 3,
            },
        ],
        reduce: None,
        stores: vec![Store {
            access: at(2),
            value: 4,
        }],
    };
    let src = format!(
        "__kernel void xk(__global float* a0, ulong o0, __global float* a1, ulong o1, \
         __global float* a2, ulong o2) {{\n\
         size_t g = get_global_id(0); if (g >= {n}) return;\n\
         float t = a0[o0 + g] * 2.0f; a2[o2 + g] = t + a1[o1 + g]; }}\n"
    );
    (k, src)
}

/// `w_new = w·2 + c` (an update of `w`) then `z = w_new·2 + c` (a plain output), with a
/// GEMM after to mix kinds of steps.
fn update_program() -> (Program, Vec<Option<String>>, HashMap<String, Tensor>) {
    let n = 37;
    let mut b = Builder::default();
    let w = b.input("w", random_tensor(DType::F32, n, 9));
    let c = b.arena(
        DType::F32,
        n,
        BufferKind::Const {
            values: (0..n).map(|i| i as f64 * 0.25).collect(),
        },
    );
    let w_new = b.temp(DType::F32, n);
    let z = b.temp(DType::F32, n);
    let (k1, s1) = scale_kernel(w, c, w_new, n);
    let (k2, s2) = scale_kernel(w_new, c, z, n);
    let p = b.temp(DType::F32, 1);
    let gemm = GemmStep {
        dtype: DType::F32,
        m: 1,
        n: 1,
        k: n,
        batch: 1,
        a: MatView {
            buffer: z,
            offset: 0,
            row_stride: n as isize,
            col_stride: 1,
            batch_stride: 0,
        },
        b: MatView {
            buffer: c,
            offset: 0,
            row_stride: 1,
            col_stride: 1,
            batch_stride: 0,
        },
        c: MatView {
            buffer: p,
            offset: 0,
            row_stride: 1,
            col_stride: 1,
            batch_stride: 0,
        },
        sum_batch: false,
    };
    let mut program = b.program(
        vec![Step::Loop(k1), Step::Loop(k2), Step::Gemm(gemm)],
        vec![("w_new".into(), w_new), ("z".into(), z), ("p".into(), p)],
    );
    program.updates = vec![("w_new".into(), "w".into())];
    (program, vec![Some(s1), Some(s2), None], b.feeds)
}

#[test]
fn loop_kernels_and_updates_match_the_cpu() {
    if skip() {
        return;
    }
    let (program, sources, feeds) = update_program();
    let steps = program.steps.len();
    let mut cpu = CpuExecutor::new(program.clone(), vec![None; steps], Arc::new(()), 1).unwrap();
    let mut ocl = OclExecutor::new(program.clone(), sources, 0, "").unwrap();
    assert_eq!(ocl.program(), &program);
    assert!(!ocl.device().name.is_empty());
    let shapes = HashMap::new();
    // Plain runs agree (the kernel computes x·2 then + c, in f32, like the evaluator).
    let want = cpu.run(&feeds, &shapes).unwrap();
    let got = ocl.run(&feeds, &shapes).unwrap();
    for name in ["w_new", "z"] {
        assert_eq!(bits(&want[name]), bits(&got[name]), "{name}");
    }
    let (w, g) = (want["p"].to_f64_vec()[0], got["p"].to_f64_vec()[0]);
    assert!((w - g).abs() <= 1e-5 * w.abs(), "{w} vs {g}");
    // Three training-like steps: the feeds evolve identically.
    let (mut fc, mut fo) = (feeds.clone(), feeds.clone());
    for _ in 0..3 {
        let a = cpu.run_update(&mut fc, &shapes, true).unwrap();
        let b = ocl.run_update(&mut fo, &shapes, true).unwrap();
        assert!(!b.contains_key("w_new"));
        assert_eq!(bits(&a["z"]), bits(&b["z"]));
        assert_eq!(bits(&fc["w"]), bits(&fo["w"]));
    }
    assert_ne!(bits(&fo["w"]), bits(&feeds["w"]));
    // A NaN in the update: an error naming it, the feeds untouched.
    let mut v = fo["w"].to_f64_vec();
    v[5] = f64::NAN;
    fo.insert(
        "w".into(),
        Tensor::from_f32(vec![v.len()], v.iter().map(|&x| x as f32).collect()).unwrap(),
    );
    let before = bits(&fo["w"]);
    match ocl.run_update(&mut fo, &shapes, true) {
        Err(ExecError::NonFinite { output, element }) => {
            assert_eq!((output.as_str(), element), ("w_new", 5));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(bits(&fo["w"]), before);
    // Without the check, the NaN is written back.
    ocl.run_update(&mut fo, &shapes, false).unwrap();
    assert!(fo["w"].to_f64_vec()[5].is_nan());
    // A missing feed is the CPU's error.
    assert_eq!(
        ocl.run(&HashMap::new(), &shapes).unwrap_err(),
        ExecError::MissingInput("w".into())
    );
}

#[test]
fn a_kernel_that_does_not_build_reports_its_log_and_step() {
    if skip() {
        return;
    }
    let (program, mut sources, _) = update_program();
    sources[1] = Some(
        "__kernel void xk(__global float* a0) {\n    float v = a0[0];\n    undefined_thing(v);\n}"
            .into(),
    );
    match OclExecutor::new(program.clone(), sources, 0, "") {
        Err(ExecError::Device { backend, reason }) => {
            assert_eq!(backend, "opencl");
            assert!(reason.contains("step 1 (loop scale_add)"), "{reason}");
            assert!(reason.contains("undefined_thing"), "{reason}");
            assert!(
                reason.contains("generated line 3: undefined_thing(v);"),
                "{reason}"
            );
        }
        other => panic!("{:?}", other.err()),
    }
    // A source table that does not fit the steps, or lacks a loop step's source.
    assert!(matches!(
        OclExecutor::new(program.clone(), vec![None], 0, ""),
        Err(ExecError::KernelTable { .. })
    ));
    match OclExecutor::new(program, vec![None; 3], 0, "") {
        Err(ExecError::Device { reason, .. }) => {
            assert!(
                reason.contains("step 0 (loop scale_add) has no OpenCL C source"),
                "{reason}"
            )
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn an_arena_too_large_for_the_device_is_out_of_memory() {
    if skip() {
        return;
    }
    let mut b = Builder::default();
    let t = b.temp(DType::F32, 1 << 42);
    let x = b.input("x", random_tensor(DType::F32, 4, 1));
    let program = b.program(
        vec![Step::Library(LibraryStep::Copy {
            src: x,
            dst: t,
            dtype: DType::F32,
            src_offset: 0,
            dst_offset: 0,
            len: 4,
        })],
        vec![("t".into(), t)],
    );
    match OclExecutor::new(program, vec![None], 0, "") {
        Err(ExecError::Device { reason, .. }) => {
            assert!(reason.contains("out of device memory"), "{reason}");
            assert!(reason.contains("the arena"), "{reason}");
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn resident_updates_stay_on_the_device_until_synced() {
    if skip() {
        return;
    }
    let (program, sources, feeds) = update_program();
    let steps = program.steps.len();
    let mut cpu = CpuExecutor::new(program.clone(), vec![None; steps], Arc::new(()), 1).unwrap();
    let mut ocl = OclExecutor::new(program, sources, 0, "").unwrap();
    let shapes = HashMap::new();
    let (mut fc, mut fo) = (feeds.clone(), feeds.clone());
    for _ in 0..3 {
        let a = cpu.run_update(&mut fc, &shapes, true).unwrap();
        let b = ocl.run_update_resident(&fo, &shapes, true, &[]).unwrap();
        assert!(!b.contains_key("w_new"));
        assert_eq!(bits(&a["z"]), bits(&b["z"]));
        // The host tensor is stale: the device kept the new value.
        assert_eq!(bits(&fo["w"]), bits(&feeds["w"]));
    }
    ocl.sync_updates(&mut fo).unwrap();
    assert_eq!(bits(&fc["w"]), bits(&fo["w"]));
    // A second sync has nothing to bring back; a plain run now uses the synced values.
    let stamp = fo["w"].stamp();
    ocl.sync_updates(&mut fo).unwrap();
    assert_eq!(fo["w"].stamp(), stamp);
    assert_eq!(
        bits(&cpu.run(&fc, &shapes).unwrap()["z"]),
        bits(&ocl.run(&fo, &shapes).unwrap()["z"])
    );
    // A value changed on the host is uploaded again (a new stamp).
    let mut v = fo["w"].to_f64_vec();
    v[5] = f64::NAN;
    fo.insert(
        "w".into(),
        Tensor::from_f32(vec![v.len()], v.iter().map(|&x| x as f32).collect()).unwrap(),
    );
    // ... and a non-finite update is caught on the device: nothing kept, nothing synced.
    match ocl.run_update_resident(&fo, &shapes, true, &[]) {
        Err(ExecError::NonFinite { output, element }) => {
            assert_eq!((output.as_str(), element), ("w_new", 5));
        }
        other => panic!("{other:?}"),
    }
    let before = bits(&fo["w"]);
    ocl.sync_updates(&mut fo).unwrap();
    assert_eq!(bits(&fo["w"]), before);
}

/// Inputs `w` (updated by `w_new = 2w + x`) and `x` (a minibatch); output `z = 2 w_new + c`.
fn minibatch_program(n: usize) -> (Program, Vec<Option<String>>, HashMap<String, Tensor>) {
    let mut b = Builder::default();
    let w = b.input("w", random_tensor(DType::F32, n, 9));
    let x = b.input("x", random_tensor(DType::F32, n, 10));
    let c = b.arena(
        DType::F32,
        n,
        BufferKind::Const {
            values: (0..n).map(|i| i as f64 * 0.25).collect(),
        },
    );
    let w_new = b.temp(DType::F32, n);
    let z = b.temp(DType::F32, n);
    let (k1, s1) = scale_kernel(w, x, w_new, n);
    let (k2, s2) = scale_kernel(w_new, c, z, n);
    let mut program = b.program(
        vec![Step::Loop(k1), Step::Loop(k2)],
        vec![("w_new".into(), w_new), ("z".into(), z)],
    );
    program.updates = vec![("w_new".into(), "w".into())];
    (program, vec![Some(s1), Some(s2)], b.feeds)
}

#[test]
fn prefetched_minibatches_give_the_cpu_results() {
    if skip() {
        return;
    }
    // Not a multiple of four: the hand-written sources compute one point per work-item.
    let n = 1001;
    let (program, sources, feeds) = minibatch_program(n);
    let mut cpu = CpuExecutor::new(program.clone(), vec![None; 2], Arc::new(()), 1).unwrap();
    let mut ocl = OclExecutor::new(program, sources, 0, "").unwrap();
    let shapes = HashMap::new();
    let batches: Vec<Tensor> = (0..6)
        .map(|i| random_tensor(DType::F32, n, 100 + i))
        .collect();
    let (mut fc, mut fo) = (feeds.clone(), feeds.clone());
    for (k, x) in batches.iter().enumerate() {
        fc.insert("x".into(), x.clone());
        // A clone keeps the stamp: the prefetched copy serves it.
        fo.insert("x".into(), x.clone());
        let next: Vec<(&str, &Tensor)> = batches.get(k + 1).map(|t| ("x", t)).into_iter().collect();
        let a = cpu.run_update(&mut fc, &shapes, true).unwrap();
        let b = ocl.run_update_resident(&fo, &shapes, true, &next).unwrap();
        assert_eq!(bits(&a["z"]), bits(&b["z"]), "step {k}");
    }
    // `w` and the first batch came from the host, the other five batches by prefetch.
    let u = ocl.uploads();
    assert_eq!((u.from_host, u.prefetched), (2, 5));
    ocl.sync_updates(&mut fo).unwrap();
    assert_eq!(bits(&fc["w"]), bits(&fo["w"]));

    // A prefetched tensor changed on the host before its run is uploaded again.
    let staged = random_tensor(DType::F32, n, 7);
    ocl.prefetch(&[("x", &staged)]).unwrap();
    let mut changed = staged.clone();
    if let xenon_runtime::TensorData::F32(v) = changed.data_mut() {
        v[3] = 42.0;
    }
    fc.insert("x".into(), changed.clone());
    fo.insert("x".into(), changed);
    let a = cpu.run_update(&mut fc, &shapes, true).unwrap();
    let b = ocl.run_update_resident(&fo, &shapes, true, &[]).unwrap();
    assert_eq!(bits(&a["z"]), bits(&b["z"]));
    assert_eq!(ocl.uploads().from_host, 3);
}

#[test]
fn prefetch_checks_names_and_sizes() {
    if skip() {
        return;
    }
    let (program, sources, _) = minibatch_program(9);
    let mut ocl = OclExecutor::new(program, sources, 0, "").unwrap();
    let t = random_tensor(DType::F32, 9, 1);
    match ocl.prefetch(&[("y", &t)]) {
        Err(e @ ExecError::UnknownInput { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("\"y\"") && msg.contains("w, x"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    let short = random_tensor(DType::F32, 7, 1);
    assert!(matches!(
        ocl.prefetch(&[("x", &short)]),
        Err(ExecError::InputType { got: 7, len: 9, .. })
    ));
}

#[test]
fn a_second_executor_reuses_the_built_programs() {
    if skip() {
        return;
    }
    let (program, sources, _) = update_program();
    let first = OclExecutor::new(program.clone(), sources.clone(), 0, "").unwrap();
    let (built, reused) = first.program_builds();
    assert!(
        built + reused >= 3,
        "loops, runtime routines, updates: {built} + {reused}"
    );
    let second = OclExecutor::new(program, sources, 0, "").unwrap();
    assert_eq!(second.program_builds(), (0, built + reused));
}
