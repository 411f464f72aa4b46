//! OpenCL C 1.2 source for [`LoopKernel`]s: pure string generation (no OpenCL needed to
//! build or call it; the executor that compiles and runs the source lives behind the
//! `opencl` feature).
//!
//! # Calling convention
//!
//! [`loop_kernel_source`] returns one OpenCL C 1.2 program holding one kernel, entry
//! [`LOOP_ENTRY`] (`xk`). For each kernel argument `i`, in `kernel.args` order, the entry
//! takes **two** parameters:
//!
//! ```text
//! __kernel void xk(__global T0* a0, ulong o0, __global T1* a1, ulong o1, ...)
//! ```
//!
//! `Ti` is `float`, `double` or `int` from the argument's dtype, and `oi` is an element
//! offset: the buffer of argument `i` starts at `ai + oi` (so several program buffers can
//! live in one device arena). Arguments may alias (no `restrict`). The kernel is launched
//! as a 1-D NDRange of **at least** [`loop_global_size`] work-items, any work-group size:
//! work-items with `get_global_id(0) >= loop_global_size(k)` return at once. The executor
//! must build the program with [`BUILD_OPTIONS`].
//!
//! # Generated code
//!
//! One work-item computes one point of the *outer* axes ([`LoopKernel::outer_axes`]):
//!
//! ```text
//! gid = get_global_id(0); if (gid >= N) return;          N = Π outer extents
//! b_i = a_i + o_i                                        buffer starts
//! i_d = outer indices of gid (row-major over the outer axes, last fastest)
//! <body values>                                          v_n, one typed local each
//! reduction:  acc = +0 | -INFINITY | INT_MIN
//!             <body values that do not vary along the reduced axes>   (once)
//!             for i_r0 … for i_rlast:                    reduced axes, row-major
//!                 <body values that vary along them>; acc = acc + x | max_nan(acc, x)
//!             <post values> (Instr::Accumulator = acc)
//! <stores, in kernel order>
//! ```
//!
//! Element `offset + Σ_d i_d·stride_d` of an access is computed in `long` (strides may be
//! 0 or negative; axes of extent 1 contribute nothing). Body values that do not depend on
//! a load varying along the reduced axes are the same at every reduced point, so computing
//! them once before the reduction loops gives the reference's values (and the values
//! `post` may use, which [`xenon_runtime::kernel::eval()`] evaluates at reduced
//! coordinates 0). Every output point is computed by one work-item, so the results match
//! the reference whenever the kernel's stores are injective over the outer points and no
//! work-item reads what another one writes — true of the kernels lowering produces (the
//! CPU executor's range splitting relies on the same property). The output is
//! deterministic: the same kernel gives the same text byte for byte.
//!
//! # Semantics
//!
//! The rules of [`xenon_runtime::element`] are followed exactly wherever OpenCL C defines
//! the result exactly. The source starts with `#pragma OPENCL FP_CONTRACT OFF` (no fused
//! multiply-adds the reference does not do) and enables `cl_khr_fp64` when any value or
//! argument is f64.
//!
//! * `+ − × ÷` are IEEE operations on floats; `recip` is `1/x` (a division). OpenCL 1.2
//!   requires correctly rounded double division and `sqrt`, but single-precision ones only
//!   to 2.5/3 ulp unless the program is built with `-cl-fp32-correctly-rounded-divide-sqrt`,
//!   which [`BUILD_OPTIONS`] holds (and which nothing else here relaxes: no
//!   `-cl-fast-relaxed-math`, `-cl-mad-enable` or `-cl-denorms-are-zero`). A device whose
//!   `CL_DEVICE_SINGLE_FP_CONFIG` lacks `CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT` rejects that
//!   option; such a device cannot give the reference's f32 `div`/`recip`/`sqrt` bits.
//! * i32 `+ − ×`, `neg` and `abs` wrap: they are computed on `uint` and reinterpreted
//!   (`as_int`), so there is no signed-overflow UB; i32 `max`/`min` are the built-ins.
//! * Float `max`/`min` are NaN if either operand is NaN and the **first** operand when the
//!   two compare equal (`max(-0, +0) = -0`): a compare-and-select, never `fmax`/`fmin`
//!   (which drop NaNs and may pick either zero). `sign` keeps ±0 and NaN.
//! * Comparisons give 1/0 in the operands' dtype (C comparison: false on NaN except `!=`);
//!   `select` tests `cond != 0`, so NaN selects `a`.
//! * Casts: float→i32 `convert_int_sat_rtz` (truncate, saturate, NaN → 0), i32→float
//!   `convert_float_rte` / `convert_double_rte`, f32→f64 exact, f64→f32
//!   `convert_float_rte` (rounded once). Constants are converted on the host with
//!   [`xenon_runtime::ops::Scalar::from_f64`] and emitted so that they parse to the same
//!   bits (shortest round-trip decimal; NaNs through `as_float`/`as_double`).
//! * Reductions accumulate in the reference's order, sums from `+0`, max from `-INFINITY`
//!   (`INT_MIN` for i32) with the NaN-propagating max above.
//! * `exp`, `log`, `tanh` (and `sqrt`) are the OpenCL built-ins. OpenCL 1.2's full profile
//!   allows 3 ulp for `exp`/`log` and 5 ulp for `tanh` (single and double precision), so
//!   these three are the only approximate operations; `sqrt` is correctly rounded (double
//!   always, single with [`BUILD_OPTIONS`]). On PoCL (CPU, SLEEF) the differential tests in
//!   `compiler/tests/codegen_opencl.rs` measure the actual errors. A NaN operand is
//!   returned as it is without calling the built-in (`isnan(x) ? x : exp(x)`): PoCL's
//!   `exp` and `tanh` return NaN for a NaN at run time, but LLVM constant-folds them to 0
//!   on a NaN it can prove (its library code assumes no NaNs), which the guard prevents.
//!
//! # Vector lanes
//!
//! An elementwise kernel with a [`LoopKernel::vector_axis`] (the last axis of extent > 1,
//! a multiple of [`VECTOR_WIDTH`] = 4, with some access contiguous along it and no store
//! constant along it) computes four consecutive points of that axis per work-item: the
//! NDRange shrinks fourfold ([`loop_global_size`]), the axis index `i` is the first lane's,
//! contiguous loads become one `vload4` each (`l{n}`, lane `l{n}.s0`…`s3`), contiguous
//! stores one `vstore4`, other accesses stay scalar per lane (`(i + 1L)` …), and the
//! arithmetic is emitted once per lane (`v{n}_0` … `v{n}_3`), as scalar code with exactly
//! the semantics below — the vector types widen the memory transactions, not the math.
//! All four lanes' loads come before any store, which changes nothing under the
//! no-cross-point-dependence rule above.

use std::fmt::Write as _;
use xenon_runtime::DType;
use xenon_runtime::kernel::{Access, Instr, KernelError, LoopKernel, VECTOR_WIDTH};
use xenon_runtime::ops::{BinaryOp, CompareOp, ReduceOp, Scalar, UnaryOp};

/// The entry point every generated loop kernel has.
pub const LOOP_ENTRY: &str = "xk";

/// The options the executor must pass to `clBuildProgram` for the generated source:
/// single-precision division, `recip` and `sqrt` correctly rounded, as the reference
/// computes them. (Valid only on devices whose single-precision config has
/// `CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT`; see the module docs.)
pub const BUILD_OPTIONS: &str = "-cl-fp32-correctly-rounded-divide-sqrt";

/// Why no source could be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpenClCodegenError {
    /// The kernel failed [`LoopKernel::validate`] (the message names the kernel).
    #[error("invalid loop kernel: {0}")]
    InvalidKernel(#[from] KernelError),
    /// The entry name given to [`loop_kernel_source_named`] is not a C identifier.
    #[error("'{0}' is not a valid OpenCL C kernel name")]
    InvalidEntry(String),
}

/// OpenCL C 1.2 source of one loop kernel, entry [`LOOP_ENTRY`] (`xk`). Validates the
/// kernel first. See the module docs for the calling convention and the semantics.
///
/// ```
/// use xenon_compiler::codegen::opencl::{loop_global_size, loop_kernel_source};
/// use xenon_runtime::DType;
/// use xenon_runtime::kernel::{Access, Instr, KernelArg, LoopKernel, Store};
/// use xenon_runtime::ops::UnaryOp;
///
/// // y[i] = -x[i] over 8 f32 elements: two work-items of four lanes (float4 loads and
/// // stores, scalar arithmetic per lane).
/// let access = |arg| Access { arg, offset: 0, strides: vec![1] };
/// let kernel = LoopKernel {
///     name: "neg".into(),
///     shape: vec![8],
///     args: vec![
///         KernelArg { buffer: 0, dtype: DType::F32, len: 8 },
///         KernelArg { buffer: 1, dtype: DType::F32, len: 8 },
///     ],
///     body: vec![Instr::Load(access(0)), Instr::Unary { func: UnaryOp::Neg, a: 0 }],
///     reduce: None,
///     stores: vec![Store { access: access(1), value: 1 }],
/// };
/// let src = loop_kernel_source(&kernel).unwrap();
/// assert!(src.contains("__kernel void xk(__global float* a0, ulong o0, __global float* a1, ulong o1)"));
/// assert!(src.contains("if (gid >= 2UL) return;"));
/// assert!(src.contains("const float4 l0 = vload4(0, b0 + (i0));"));
/// assert!(src.contains("float v1_3 = -v0_3;"));
/// assert!(src.contains("vstore4((float4)(v1_0, v1_1, v1_2, v1_3), 0, b1 + (i0));"));
/// assert_eq!(loop_global_size(&kernel), 2);
/// ```
pub fn loop_kernel_source(kernel: &LoopKernel) -> Result<String, OpenClCodegenError> {
    loop_kernel_source_named(kernel, LOOP_ENTRY)
}

/// [`loop_kernel_source`] with another entry name (a C identifier), so that several
/// kernels can be concatenated into one OpenCL program (each source repeats the same
/// pragmas and defines nothing but its entry).
pub fn loop_kernel_source_named(
    kernel: &LoopKernel,
    entry: &str,
) -> Result<String, OpenClCodegenError> {
    let ident = entry
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && entry.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ident {
        return Err(OpenClCodegenError::InvalidEntry(entry.to_string()));
    }
    kernel.validate()?;
    let types = kernel.value_types()?;
    Ok(Gen {
        k: kernel,
        types: &types,
        out: String::new(),
        vector: kernel.vector_axis(),
        lane: 0,
    }
    .source(entry))
}

/// The OpenCL C of every loop step of `program`, in step order, each under a comment
/// naming the step and its NDRange; GEMM and library steps are listed by name (they run
/// the runtime's own kernels, `xenon_runtime::opencl::kernels`). What `xenon dump --stage
/// opencl` prints; byte-identical from run to run.
pub fn program_listing(
    program: &xenon_runtime::program::Program,
) -> Result<String, OpenClCodegenError> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// {} steps; loop kernels built with {BUILD_OPTIONS}",
        program.steps.len()
    );
    for (i, step) in program.steps.iter().enumerate() {
        let _ = writeln!(out, "\n// ---- step {i}: {}", step.describe());
        match step {
            xenon_runtime::program::Step::Loop(k) => {
                let _ = writeln!(out, "// global size {}", loop_global_size(k));
                out.push_str(&loop_kernel_source_named(k, &format!("{LOOP_ENTRY}_{i}"))?);
            }
            _ => out.push_str("// runs a runtime kernel\n"),
        }
    }
    Ok(out)
}

/// Number of work-items the kernel needs: [`LoopKernel::work_items`] (the product of its
/// outer axes, divided by [`VECTOR_WIDTH`] when it is vectorized), at least 1.
pub fn loop_global_size(kernel: &LoopKernel) -> usize {
    kernel.work_items().max(1)
}

/// The OpenCL C type of a dtype.
fn ctype(t: DType) -> &'static str {
    match t {
        DType::F32 => "float",
        DType::F64 => "double",
        DType::I32 => "int",
    }
}

/// A literal that parses to exactly `v` (an expression without a leading sign when
/// possible; negative values start with `-`).
fn literal(v: Scalar) -> String {
    match v {
        Scalar::F32(x) if x.is_nan() => format!("as_float(0x{:08x}u)", x.to_bits()),
        Scalar::F64(x) if x.is_nan() => format!("as_double(0x{:016x}UL)", x.to_bits()),
        Scalar::F32(x) if x.is_infinite() => inf(x > 0.0, "INFINITY"),
        Scalar::F64(x) if x.is_infinite() => inf(x > 0.0, "(double)INFINITY"),
        // Rust's `Debug` gives the shortest decimal that rounds back to the same value
        // (always with a '.' or an exponent); C compilers round decimal literals
        // correctly, so the literal has the same bits.
        Scalar::F32(x) => format!("{x:?}f"),
        Scalar::F64(x) => format!("{x:?}"),
        Scalar::I32(i32::MIN) => "INT_MIN".to_string(),
        Scalar::I32(x) => format!("{x}"),
    }
}

fn inf(positive: bool, name: &str) -> String {
    if positive {
        name.to_string()
    } else {
        format!("-{name}")
    }
}

/// `0` and `1` literals of a dtype.
fn zero_one(t: DType) -> (&'static str, &'static str) {
    match t {
        DType::F32 => ("0.0f", "1.0f"),
        DType::F64 => ("0.0", "1.0"),
        DType::I32 => ("0", "1"),
    }
}

/// The kernel name as it may appear in a `//` comment (printable ASCII only).
fn comment_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

struct Gen<'k> {
    k: &'k LoopKernel,
    types: &'k [DType],
    out: String,
    /// The vectorized axis ([`LoopKernel::vector_axis`]): each work-item computes
    /// [`VECTOR_WIDTH`] lanes, consecutive points along it.
    vector: Option<usize>,
    /// The lane being emitted (0 when not vectorized).
    lane: usize,
}

impl Gen<'_> {
    fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.out.push_str("    ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn source(mut self, entry: &str) -> String {
        let k = self.k;
        let outer = k.outer_axes();
        let reduced: Vec<usize> = k.reduce.as_ref().map_or(Vec::new(), |r| r.axes.clone());
        let uses_f64 =
            k.args.iter().any(|a| a.dtype == DType::F64) || self.types.contains(&DType::F64);

        // Header.
        let _ = writeln!(
            self.out,
            "// Xenon loop kernel '{}': shape {:?}, outer axes {:?}, reduced axes {:?}",
            comment_safe(&k.name),
            k.shape,
            outer,
            reduced
        );
        if uses_f64 {
            self.line(0, "#pragma OPENCL EXTENSION cl_khr_fp64 : enable");
        }
        self.line(0, "#pragma OPENCL FP_CONTRACT OFF");
        let params: Vec<String> = k
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| format!("__global {}* a{i}, ulong o{i}", ctype(a.dtype)))
            .collect();
        let params = if params.is_empty() {
            "void".to_string()
        } else {
            params.join(", ")
        };
        let _ = writeln!(self.out, "__kernel void {entry}({params}) {{");
        let n = loop_global_size(k);
        self.line(1, "const ulong gid = get_global_id(0);");
        self.line(1, &format!("if (gid >= {n}UL) return;"));
        for (i, a) in k.args.iter().enumerate() {
            let t = ctype(a.dtype);
            self.line(1, &format!("__global {t}* b{i} = a{i} + o{i};"));
        }

        // Outer indices, row-major over the outer axes (last fastest).
        let moving: Vec<usize> = outer.iter().copied().filter(|&a| k.shape[a] > 1).collect();
        for &a in outer.iter().filter(|&&a| k.shape[a] == 1) {
            self.line(1, &format!("const long i{a} = 0;"));
        }
        // The vectorized axis counts groups of lanes; `i` is its first lane's index.
        let vector = self.vector;
        let scale = |a: usize| {
            if Some(a) == vector {
                format!(" * {VECTOR_WIDTH}L")
            } else {
                String::new()
            }
        };
        match moving.len() {
            0 => {}
            1 => {
                let a = moving[0];
                self.line(1, &format!("const long i{a} = (long)gid{};", scale(a)));
            }
            _ => {
                self.line(1, "ulong q = gid;");
                for (j, &a) in moving.iter().enumerate().rev() {
                    if j == 0 {
                        self.line(1, &format!("const long i{a} = (long)q;"));
                    } else {
                        let e = match vector {
                            Some(v) if v == a => k.shape[a] / VECTOR_WIDTH,
                            _ => k.shape[a],
                        };
                        let s = scale(a);
                        self.line(1, &format!("const long i{a} = (long)(q % {e}UL){s};"));
                        self.line(1, &format!("q /= {e}UL;"));
                    }
                }
            }
        }

        let nbody = k.body.len();
        match &k.reduce {
            None if self.vector.is_some() => {
                // Contiguous loads as one vector load each, then every lane's values.
                for v in 0..nbody {
                    if let Some(a) = self.vector_access(&k.body[v]) {
                        let t = ctype(self.types[v]);
                        let idx = self.index(a);
                        self.line(
                            1,
                            &format!(
                                "const {t}{VECTOR_WIDTH} l{v} = vload{VECTOR_WIDTH}(0, b{} + ({idx}));",
                                a.arg
                            ),
                        );
                    }
                }
                for lane in 0..VECTOR_WIDTH {
                    self.lane = lane;
                    for v in 0..nbody {
                        self.value(1, v);
                    }
                }
                self.lane = 0;
            }
            None => {
                for v in 0..nbody {
                    self.value(1, v);
                }
            }
            Some(r) => {
                // Which body values vary along the reduced axes.
                let mut varies = vec![false; nbody];
                for (v, ins) in k.body.iter().enumerate() {
                    varies[v] = match ins {
                        Instr::Load(a) => r.axes.iter().any(|&ax| a.strides[ax] != 0),
                        Instr::Const { .. } | Instr::Accumulator => false,
                        Instr::Unary { a, .. } | Instr::Cast { a, .. } => varies[*a as usize],
                        Instr::Binary { a, b, .. } | Instr::Compare { a, b, .. } => {
                            varies[*a as usize] || varies[*b as usize]
                        }
                        Instr::Select { cond, a, b } => {
                            varies[*cond as usize] || varies[*a as usize] || varies[*b as usize]
                        }
                    };
                }
                let t = self.types[r.value as usize];
                let ident = match (r.op, t) {
                    (ReduceOp::Max, DType::I32) => "INT_MIN",
                    (ReduceOp::Max, _) => "-INFINITY",
                    (_, t) => zero_one(t).0,
                };
                self.line(1, &format!("{} acc = {ident};", ctype(t)));
                if r.partials > 1 {
                    let (ty, p) = (ctype(t), r.partials);
                    self.line(1, &format!("{ty} accp[{p}];"));
                    self.line(
                        1,
                        &format!("for (int i = 0; i < {p}; i++) accp[i] = {ident};"),
                    );
                }
                for v in (0..nbody).filter(|&v| !varies[v]) {
                    self.value(1, v);
                }
                let mut depth = 1;
                for &a in &r.axes {
                    let e = k.shape[a];
                    self.line(
                        depth,
                        &format!("for (long i{a} = 0; i{a} < {e}L; i{a}++) {{"),
                    );
                    depth += 1;
                }
                for v in (0..nbody).filter(|&v| varies[v]) {
                    self.value(depth, v);
                }
                let step = |acc: &str, x: &str| match (r.op, t) {
                    (ReduceOp::Max, DType::I32) => format!("{acc} = max({acc}, {x});"),
                    (ReduceOp::Max, _) => {
                        format!("{acc} = {};", max_min_float(acc, x, ">="))
                    }
                    (_, DType::I32) => format!("{acc} = {};", wrap_int(acc, "+", x)),
                    _ => format!("{acc} = {acc} + {x};"),
                };
                let x = format!("v{}", r.value);
                let parts = r.partials.max(1);
                match r.axes.last() {
                    // Partial accumulators (the kernel module's order): element j of the
                    // innermost reduced axis into partial j mod p, then halving.
                    Some(last) if parts > 1 => {
                        let p = format!("accp[i{last} % {parts}L]");
                        self.line(depth, &step(&p, &x));
                    }
                    _ => self.line(depth, &step("acc", &x)),
                }
                while depth > 1 {
                    depth -= 1;
                    self.line(depth, "}");
                }
                if parts > 1 {
                    self.line(
                        1,
                        &format!("for (int h = {}; h >= 1; h /= 2) {{", parts / 2),
                    );
                    self.line(2, "for (int i = 0; i < h; i++) {");
                    self.line(3, &step("accp[i]", "accp[i + h]"));
                    self.line(2, "}");
                    self.line(1, "}");
                    self.line(1, "acc = accp[0];");
                }
                for v in nbody..nbody + r.post.len() {
                    self.value(1, v);
                }
            }
        }
        for s in &k.stores {
            let (arg, v) = (s.access.arg, s.value);
            let contiguous = self
                .vector
                .is_some_and(|axis| s.access.strides.get(axis) == Some(&1));
            if contiguous {
                let t = ctype(self.types[v as usize]);
                let lanes: Vec<String> = (0..VECTOR_WIDTH).map(|l| format!("v{v}_{l}")).collect();
                let idx = self.index(&s.access);
                self.line(
                    1,
                    &format!(
                        "vstore{VECTOR_WIDTH}(({t}{VECTOR_WIDTH})({}), 0, b{arg} + ({idx}));",
                        lanes.join(", ")
                    ),
                );
                continue;
            }
            let lanes = if self.vector.is_some() {
                VECTOR_WIDTH
            } else {
                1
            };
            for lane in 0..lanes {
                self.lane = lane;
                let idx = self.index(&s.access);
                let name = self.var(v);
                self.line(1, &format!("b{arg}[{idx}] = {name};"));
            }
            self.lane = 0;
        }
        self.line(0, "}");
        self.out
    }

    /// The name of value `v` in the current lane.
    fn var(&self, v: u32) -> String {
        if self.vector.is_some() {
            format!("v{v}_{}", self.lane)
        } else {
            format!("v{v}")
        }
    }

    /// The access of `ins` when it is a load that is contiguous along the vectorized axis
    /// (read with one vector load for all lanes).
    fn vector_access<'a>(&self, ins: &'a Instr) -> Option<&'a Access> {
        match (ins, self.vector) {
            (Instr::Load(a), Some(axis)) if a.strides.get(axis) == Some(&1) => Some(a),
            _ => None,
        }
    }

    /// The element index of an access at the current point (and lane):
    /// `offset + Σ i_d·stride_d` as a `long` expression.
    fn index(&self, a: &Access) -> String {
        let mut s = String::new();
        if a.offset != 0 {
            let _ = write!(s, "{}L", a.offset);
        }
        for (d, &st) in a.strides.iter().enumerate() {
            if st == 0 || self.k.shape[d] == 1 {
                continue;
            }
            let m = st.unsigned_abs();
            let i = match self.lane {
                l if l > 0 && self.vector == Some(d) => format!("(i{d} + {l}L)"),
                _ => format!("i{d}"),
            };
            let term = if m == 1 { i } else { format!("{i} * {m}L") };
            match (s.is_empty(), st < 0) {
                (true, false) => s.push_str(&term),
                (true, true) => {
                    let _ = write!(s, "-{term}");
                }
                (false, false) => {
                    let _ = write!(s, " + {term}");
                }
                (false, true) => {
                    let _ = write!(s, " - {term}");
                }
            }
        }
        if s.is_empty() {
            s.push('0');
        }
        s
    }

    /// Emits value `v` as `T v{v} = expr;`.
    fn value(&mut self, depth: usize, v: usize) {
        let k = self.k;
        let ins = k.instrs().nth(v).expect("value in range");
        let t = self.types[v];
        let name = |x: &u32| self.var(*x);
        let expr = match ins {
            Instr::Load(_) if self.vector_access(ins).is_some() => format!("l{v}.s{}", self.lane),
            Instr::Load(a) => format!("b{}[{}]", a.arg, self.index(a)),
            Instr::Const { dtype, value } => literal(Scalar::from_f64(*dtype, *value)),
            Instr::Unary { func, a } => unary(*func, t, &name(a)),
            Instr::Binary { func, a, b } => binary(*func, t, &name(a), &name(b)),
            Instr::Compare { func, a, b } => {
                let (zero, one) = zero_one(t);
                let op = match func {
                    CompareOp::Lt => "<",
                    CompareOp::Le => "<=",
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                    CompareOp::Eq => "==",
                    CompareOp::Ne => "!=",
                };
                format!("({} {op} {}) ? {one} : {zero}", name(a), name(b))
            }
            Instr::Select { cond, a, b } => {
                let zero = zero_one(self.types[*cond as usize]).0;
                format!("({} != {zero}) ? {} : {}", name(cond), name(a), name(b))
            }
            Instr::Cast { to, a } => cast(self.types[*a as usize], *to, &name(a)),
            Instr::Accumulator => "acc".to_string(),
        };
        let out = self.var(v as u32);
        self.line(depth, &format!("{} {out} = {expr};", ctype(t)));
    }
}

/// `a op b` on i32 with two's-complement wrapping (computed on `uint`).
fn wrap_int(a: &str, op: &str, b: &str) -> String {
    format!("as_int(as_uint({a}) {op} as_uint({b}))")
}

/// `max_nan` (`cmp` = `>=`) or `min_nan` (`<=`) of two floats: NaN if either is NaN, the
/// first operand when they compare equal.
fn max_min_float(a: &str, b: &str, cmp: &str) -> String {
    format!("(isnan({a}) || (!isnan({b}) && {a} {cmp} {b})) ? {a} : {b}")
}

fn unary(func: UnaryOp, t: DType, a: &str) -> String {
    let (zero, one) = zero_one(t);
    match (func, t) {
        (UnaryOp::Neg, DType::I32) => format!("as_int(0u - as_uint({a}))"),
        (UnaryOp::Neg, _) => format!("-{a}"),
        // `abs` of an int is a `uint` (|INT_MIN| = 2^31), reinterpreted: wraps.
        (UnaryOp::Abs, DType::I32) => format!("as_int(abs({a}))"),
        (UnaryOp::Abs, _) => format!("fabs({a})"),
        // ±0 (and NaN, for floats) are returned as they are.
        (UnaryOp::Sign, _) => format!("({a} > {zero}) ? {one} : (({a} < {zero}) ? -{one} : {a})"),
        // NaN is passed through before calling the built-in: PoCL's `exp` and `tanh` give
        // NaN for a NaN at run time but 0 when LLVM constant-folds them on a NaN it can
        // see (a constant, or arithmetic on one), so the guard keeps folding honest.
        (UnaryOp::Exp, _) => format!("isnan({a}) ? {a} : exp({a})"),
        (UnaryOp::Log, _) => format!("isnan({a}) ? {a} : log({a})"),
        (UnaryOp::Tanh, _) => format!("isnan({a}) ? {a} : tanh({a})"),
        (UnaryOp::Sqrt, _) => format!("sqrt({a})"),
        (UnaryOp::Recip, _) => format!("{one} / {a}"),
    }
}

fn binary(func: BinaryOp, t: DType, a: &str, b: &str) -> String {
    let int = t == DType::I32;
    match func {
        BinaryOp::Add if int => wrap_int(a, "+", b),
        BinaryOp::Sub if int => wrap_int(a, "-", b),
        BinaryOp::Mul if int => wrap_int(a, "*", b),
        BinaryOp::Max if int => format!("max({a}, {b})"),
        BinaryOp::Min if int => format!("min({a}, {b})"),
        BinaryOp::Add => format!("{a} + {b}"),
        BinaryOp::Sub => format!("{a} - {b}"),
        BinaryOp::Mul => format!("{a} * {b}"),
        BinaryOp::Div => format!("{a} / {b}"),
        BinaryOp::Max => max_min_float(a, b, ">="),
        BinaryOp::Min => max_min_float(a, b, "<="),
    }
}

fn cast(from: DType, to: DType, a: &str) -> String {
    match (from, to) {
        _ if from == to => a.to_string(),
        (_, DType::I32) => format!("convert_int_sat_rtz({a})"),
        (_, DType::F32) => format!("convert_float_rte({a})"),
        (_, DType::F64) => format!("convert_double_rte({a})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_round_trip_and_name_special_values() {
        assert_eq!(literal(Scalar::F32(1.0)), "1.0f");
        assert_eq!(literal(Scalar::F32(-0.0)), "-0.0f");
        assert_eq!(literal(Scalar::F32(0.1)), "0.1f");
        assert_eq!(literal(Scalar::F64(1e300)), "1e300");
        assert_eq!(literal(Scalar::F32(f32::NEG_INFINITY)), "-INFINITY");
        assert_eq!(literal(Scalar::F64(f64::INFINITY)), "(double)INFINITY");
        assert_eq!(literal(Scalar::F32(f32::NAN)), "as_float(0x7fc00000u)");
        assert_eq!(literal(Scalar::I32(i32::MIN)), "INT_MIN");
        assert_eq!(literal(Scalar::I32(-7)), "-7");
        for x in [1e-45f32, 3.4028235e38, f32::MIN_POSITIVE, 123_456.7] {
            let s = literal(Scalar::F32(x));
            assert_eq!(s.trim_end_matches('f').parse::<f32>().unwrap(), x, "{s}");
        }
    }

    #[test]
    fn entry_names_must_be_identifiers() {
        let k = LoopKernel {
            name: "k".into(),
            shape: vec![],
            args: vec![],
            body: vec![],
            reduce: None,
            stores: vec![],
        };
        assert!(loop_kernel_source_named(&k, "xk_3").is_ok());
        for bad in ["", "3x", "a b", "x-y"] {
            assert_eq!(
                loop_kernel_source_named(&k, bad),
                Err(OpenClCodegenError::InvalidEntry(bad.into()))
            );
        }
    }
}
