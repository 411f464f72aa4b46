//! The CPU backend: compiles [`LoopKernel`]s to native code with Cranelift (JIT).
//!
//! [`compile`] turns the kernels of a program into one [`JITModule`] and hands out one
//! [`KernelFn`] per kernel, `fn(args, start, end)`, which runs the kernel for the
//! first-outer-axis indices `start..end` exactly as [`xenon_runtime::kernel::eval()`] does
//! (see the loop-order rules in [`xenon_runtime::kernel`]).
//!
//! # Generated code
//!
//! ```text
//! fn kernel(args, start, end):
//!     end = min(end, outer_extent); if start >= end: return
//!     p[a] = args[arg(a)] + offset(a)·size           for every live access a
//!     <level-0 values: constants, loads with all-zero strides>
//!     i0 = start                                    (first outer axis: start..end)
//!     while i0 < end:                               (while form: test in the header)
//!         <values that vary along axis o0 only>
//!         i1 = 0
//!         while i1 < n1:                            (further outer axes, row-major)
//!             ...                                   point level:
//!                 acc = +0 (sum) | -inf / i32::MIN (max)
//!                 while r0 < m0: … while r_last < m_last:   (reduced axes, row-major)
//!                     <values that vary along reduced axes>
//!                     acc = acc + x  |  max_nan(acc, x)
//!                 <post values>; stores (in kernel order)
//!             p[a] += stride(a, o1)·size; i1 += 1
//!         p[a] += stride(a, o0)·size; i0 += 1
//! ```
//!
//! * **Hoisting.** Every live value is computed at the outermost loop level it depends on
//!   (a load depends on the loops whose axis has a non-zero stride; constants on none),
//!   so constants, broadcast loads and their arithmetic leave the inner loops. Loads of a
//!   buffer the kernel also writes stay at the point level. Addresses are pointer
//!   induction variables (one add per moving access per iteration); strides may be zero
//!   or negative.
//! * **Vectorization** (`CpuOptions::vectorize`). The innermost *outer* loop runs four
//!   points at a time (`f32x4`/`i32x4`), followed by a scalar tail loop, when every live
//!   value is `f32` or `i32`, every live load has stride 0 (splatted scalar load) or 1
//!   along that axis (in a reduction, any stride: the four lanes are gathered by scalar
//!   loads), every store has stride 1, and a buffer the kernel writes is only accessed
//!   through one access pattern. For a reduction, each lane is a different output point
//!   whose reduction runs in the exact sequential order, so results are bit-identical to
//!   the scalar code and to the reference: a reduction over a contiguous trailing axis
//!   (softmax's row max and sum) runs four rows at a time, each row's elements gathered
//!   into its lane, never reassociated. Every operation emits the same instruction sequence for scalars and vectors
//!   (see `fx.rs`), so the vector loop and its tail agree bit for bit and results never
//!   depend on how `start..end` is split. Kernels without a reduction run the vector
//!   loop unrolled 4× first (16 points per iteration, the copies address through
//!   constant offsets), then single vector steps, then the scalar tail:
//!
//!   ```text
//!   while i + 16 <= n: body(i..i+4); body(i+4..i+8); body(i+8..i+12); body(i+12..i+16); i += 16
//!   while i + 4 <= n:  body(i..i+4); i += 4
//!   while i < n:       body(i) (scalar); i += 1
//!   ```
//! * **Semantics.** Everything except the f32 transcendentals is exact with respect to
//!   [`xenon_runtime::ops`]: IEEE `+ − × ÷` and `sqrt` (`recip` is `1/x`), no contraction
//!   of user multiplies and adds into FMA, `max`/`min` propagate NaN and return the first
//!   operand on ties (`max(-0, +0) = -0`; a compare-and-blend, one `maxps` when an operand
//!   is a non-NaN constant, never Cranelift's `fmax`), `sign` keeps ±0 and NaN, `i32`
//!   arithmetic wraps, comparisons give 1/0 in the operand dtype (`ne` is true on NaN),
//!   `select` treats NaN as non-zero, float→i32 casts truncate and saturate with NaN → 0.
//!   f32 `exp`/`log`/`tanh` are polynomial approximations with the error bounds stated in
//!   [`math`]; f64 ones call Rust's `f64` functions and are exact.
//! * **ISA.** `cranelift_native` flags for the host. FMA is used (only inside the
//!   transcendental polynomials) when the host has it and [`CpuOptions::fma`] is set;
//!   vectors need SSE4.1 on x86-64 (any aarch64 host), otherwise code is scalar.
//!
//! # Optimization level
//!
//! [`OptLevel::None`] is the default: the generator already hoists invariants and
//! unrolls, and Cranelift's `speed` mid-end re-places pure instructions at their uses
//! (which in the feasibility study halved GEMM speed). Measured on the 2-vCPU CI machine
//! (release build, `tests/codegen_cpu.rs`, three runs each):
//!
//! | | `none` | `speed` |
//! |---|---|---|
//! | compile 55 kernels (the MLP kernel set + 40 random kernels), one module | 8.9–9.0 ms (0.16 ms/kernel) | 11.6–11.9 ms (0.21 ms/kernel) |
//! | fused `max(x·w + b, 0)`, 1 Mi f32 (bytes read + written) | 86.5–87.3 GB/s | 83.2–84.3 GB/s |
//!
//! (rustc's auto-vectorized loop for the same kernel: 101.5–102 GB/s; with the verifier
//! on, as in debug builds, compiling takes about 1 ms per kernel.)

mod emit;
mod fx;
pub mod math;
pub mod object;
mod plan;
pub mod target;

pub use target::Target;

use cranelift_codegen::ir::{AbiParam, types};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};
use xenon_runtime::kernel::{KernelError, LoopKernel};

/// A compiled kernel: `fn(args, start, end)` runs the kernel for first-outer-axis indices
/// `start..end` (see the kernel module docs); `args[i]` points to the first element of the
/// buffer of `kernel.args[i]`.
///
/// # Safety (for callers)
///
/// * The [`CompiledKernels`] it came from must still be alive (the code is freed on drop).
/// * `args` must point to `kernel.args.len()` pointers, `args[i]` to a buffer of at least
///   `kernel.args[i].len` elements of `kernel.args[i].dtype` (the lengths the kernel was
///   validated against), aligned for that dtype, and the buffers may only overlap where
///   their `KernelArg::buffer` is the same.
/// * `start <= end`; `end` is clamped to [`LoopKernel::outer_extent`], and an empty range
///   does nothing.
/// * No other thread writes the buffers this call reads or writes the elements this call
///   writes (calls on disjoint ranges of the same kernel write disjoint elements whenever
///   the kernel's stores are injective along the first outer axis).
pub type KernelFn = unsafe extern "C" fn(args: *const *mut u8, start: usize, end: usize);

/// Cranelift's optimization level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OptLevel {
    /// No mid-end optimizations (the default; see the module docs).
    #[default]
    None,
    /// Cranelift's `speed` level (e-graph mid-end).
    Speed,
}

impl OptLevel {
    fn as_str(self) -> &'static str {
        match self {
            OptLevel::None => "none",
            OptLevel::Speed => "speed",
        }
    }
}

/// Options of the CPU backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CpuOptions {
    /// Cranelift's optimization level. Default: [`OptLevel::None`].
    pub opt_level: OptLevel,
    /// Vectorize the innermost outer loop when it is safe (see the module docs).
    /// Default: `true`.
    pub vectorize: bool,
    /// Use fused multiply-add inside the f32 `exp`/`log`/`tanh` polynomials when the host
    /// has FMA (never for the kernel's own multiplies and adds). Results of these
    /// functions may differ in the last bits between FMA and non-FMA code, both within
    /// the bounds in [`math`]. Default: `true`.
    pub fma: bool,
    /// Run Cranelift's IR verifier on every function (turns generator bugs into errors;
    /// costs compile time). Default: on in debug builds, off in release builds.
    pub verify: bool,
}

impl Default for CpuOptions {
    fn default() -> Self {
        CpuOptions {
            opt_level: OptLevel::None,
            vectorize: true,
            fma: true,
            verify: cfg!(debug_assertions),
        }
    }
}

/// Why kernels could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    /// A kernel failed [`LoopKernel::validate`].
    #[error("kernel {index} is invalid: {source}")]
    InvalidKernel {
        /// Its position in the slice given to [`compile`].
        index: usize,
        #[source]
        source: KernelError,
    },
    /// Cranelift does not support this host.
    #[error("the host is not supported by Cranelift: {0}")]
    UnsupportedHost(String),
    /// Cranelift rejected a function or failed to finalize the module.
    #[error("Cranelift failed{}: {message}", kernel.as_ref().map(|k| format!(" on kernel '{k}'")).unwrap_or_default())]
    Cranelift {
        /// The kernel's name, when the error concerns one kernel.
        kernel: Option<String>,
        /// Cranelift's message.
        message: String,
    },
    /// An internal error of the generator (a bug); reported instead of a panic.
    #[error("internal error of the CPU code generator: {0}")]
    Internal(String),
}

/// Host features the generator relies on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Host {
    pub(crate) fma: bool,
    pub(crate) vector: bool,
}

fn host() -> Host {
    #[cfg(target_arch = "x86_64")]
    {
        Host {
            fma: std::is_x86_feature_detected!("fma"),
            vector: std::is_x86_feature_detected!("sse4.1"),
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        Host {
            fma: true,
            vector: true,
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        Host {
            fma: false,
            vector: false,
        }
    }
}

/// Natively compiled kernels, all in one JIT module.
pub struct CompiledKernels {
    fns: Vec<KernelFn>,
    vectorized: Vec<bool>,
    /// Owns the code; `Some` until dropped.
    module: Option<JITModule>,
}

// `CompiledKernels` is `Send` automatically (`JITModule` is `Send`).
//
// SAFETY: `JITModule` is not `Sync` (it holds `RefCell`s and non-`Sync` closures), but
// after `compile` returns the module is never used again except to free its memory in
// `Drop`, which has `&mut self` (exclusive access). `&CompiledKernels` only exposes the
// function pointers and flags, which are immutable plain data, and the finalized code is
// read-only executable memory, so sharing `&CompiledKernels` across threads is sound.
unsafe impl Sync for CompiledKernels {}

impl CompiledKernels {
    /// The `i`-th kernel passed to [`compile`].
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    pub fn get(&self, i: usize) -> KernelFn {
        self.fns[i]
    }

    /// Number of kernels.
    pub fn len(&self) -> usize {
        self.fns.len()
    }

    /// True when there are no kernels.
    pub fn is_empty(&self) -> bool {
        self.fns.is_empty()
    }

    /// Whether the `i`-th kernel got a vector loop.
    pub fn is_vectorized(&self, i: usize) -> bool {
        self.vectorized[i]
    }
}

impl std::fmt::Debug for CompiledKernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledKernels")
            .field("len", &self.fns.len())
            .field("vectorized", &self.vectorized)
            .finish_non_exhaustive()
    }
}

impl Drop for CompiledKernels {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the function pointers handed out by `get` must not be called after
            // the `CompiledKernels` is dropped (documented on `KernelFn`); nothing else
            // refers to the module's memory.
            unsafe { m.free_memory() };
        }
    }
}

fn cranelift_err(kernel: Option<&LoopKernel>, e: impl std::fmt::Display) -> CodegenError {
    CodegenError::Cranelift {
        kernel: kernel.map(|k| k.name.clone()),
        message: e.to_string(),
    }
}

/// Validates and compiles `kernels` into one JIT module (the `i`-th [`KernelFn`] is
/// `result.get(i)`). Never panics: invalid kernels, unsupported hosts and Cranelift
/// failures are errors.
pub fn compile(
    kernels: &[&LoopKernel],
    opts: &CpuOptions,
) -> Result<CompiledKernels, CodegenError> {
    let host = host();
    let plans = plan_all(kernels, opts, host)?;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compile_planned(kernels, &plans, opts, host, None)
    }));
    match result {
        Ok(r) => r,
        Err(p) => Err(CodegenError::Internal(panic_message(&*p))),
    }
}

/// Compiles one kernel and returns Cranelift's disassembly of the machine code (and the
/// CLIF before it): a debugging aid for inspecting the generated loops.
pub fn disassemble(kernel: &LoopKernel, opts: &CpuOptions) -> Result<String, CodegenError> {
    let host = host();
    kernel
        .validate()
        .map_err(|source| CodegenError::InvalidKernel { index: 0, source })?;
    let types = kernel
        .value_types()
        .map_err(|source| CodegenError::InvalidKernel { index: 0, source })?;
    let plans = [plan::Plan::new(
        kernel,
        types,
        opts.vectorize && host.vector,
    )];
    let mut text = String::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compile_planned(&[kernel], &plans, opts, host, Some(&mut text))
    }));
    match result {
        Ok(r) => r.map(|_| text),
        Err(p) => Err(CodegenError::Internal(panic_message(&*p))),
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// Cranelift's shared flags for `opts` (`is_pic`: position-independent code, for objects
/// that a system linker places).
fn shared_flags(opts: &CpuOptions, is_pic: bool) -> Result<settings::Flags, CodegenError> {
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, k: &str, v: &str| {
        flags.set(k, v).map_err(|e| cranelift_err(None, e))
    };
    set(&mut flags, "opt_level", opts.opt_level.as_str())?;
    set(&mut flags, "is_pic", if is_pic { "true" } else { "false" })?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(
        &mut flags,
        "enable_verifier",
        if opts.verify { "true" } else { "false" },
    )?;
    Ok(settings::Flags::new(flags))
}

fn compile_planned(
    kernels: &[&LoopKernel],
    plans: &[plan::Plan],
    opts: &CpuOptions,
    host: Host,
    mut disasm: Option<&mut String>,
) -> Result<CompiledKernels, CodegenError> {
    let isa_builder =
        cranelift_native::builder().map_err(|m| CodegenError::UnsupportedHost(m.to_string()))?;
    let isa = isa_builder
        .finish(shared_flags(opts, false)?)
        .map_err(|e| cranelift_err(None, e))?;
    let mut jb = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
    for (name, f) in math::F64_LIBCALLS {
        jb.symbol(name, f as *const u8);
    }
    let mut module = JITModule::new(jb);
    let defined = define_all(&mut module, kernels, plans, opts, host, &mut disasm, |i| {
        (format!("xenon_kernel_{i}"), Linkage::Local)
    })
    .and_then(|ids| {
        module
            .finalize_definitions()
            .map_err(|e| cranelift_err(None, e))?;
        Ok(ids)
    });
    match defined {
        Ok(ids) => {
            let fns = ids
                .iter()
                .map(|&id| {
                    let p = module.get_finalized_function(id);
                    // SAFETY: `p` is the finalized code of a function declared with the
                    // signature `(ptr, ptr, ptr) -> ()` in the default (C) calling
                    // convention of the host ISA, which is `KernelFn`'s ABI.
                    unsafe { std::mem::transmute::<*const u8, KernelFn>(p) }
                })
                .collect();
            Ok(CompiledKernels {
                fns,
                vectorized: plans.iter().map(|p| p.vector).collect(),
                module: Some(module),
            })
        }
        Err(e) => {
            // SAFETY: no pointer into the module's memory was handed out.
            unsafe { module.free_memory() };
            Err(e)
        }
    }
}

/// Validates `kernels` and plans their loops for a processor with `host`'s features.
fn plan_all(
    kernels: &[&LoopKernel],
    opts: &CpuOptions,
    host: Host,
) -> Result<Vec<plan::Plan>, CodegenError> {
    let mut plans = Vec::with_capacity(kernels.len());
    for (index, k) in kernels.iter().enumerate() {
        k.validate()
            .map_err(|source| CodegenError::InvalidKernel { index, source })?;
        let types = k
            .value_types()
            .map_err(|source| CodegenError::InvalidKernel { index, source })?;
        plans.push(plan::Plan::new(k, types, opts.vectorize && host.vector));
    }
    Ok(plans)
}

/// Defines one function per kernel in `module`, named and linked by `symbol(i)`.
fn define_all<M: Module>(
    module: &mut M,
    kernels: &[&LoopKernel],
    plans: &[plan::Plan],
    opts: &CpuOptions,
    host: Host,
    disasm: &mut Option<&mut String>,
    symbol: impl Fn(usize) -> (String, Linkage),
) -> Result<Vec<FuncId>, CodegenError> {
    let ptr_ty = module.target_config().pointer_type();
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let mut sig = module.make_signature();
    for _ in 0..3 {
        sig.params.push(AbiParam::new(ptr_ty));
    }
    let mut f64sig = module.make_signature();
    f64sig.params.push(AbiParam::new(types::F64));
    f64sig.returns.push(AbiParam::new(types::F64));
    let mut ids = Vec::with_capacity(kernels.len());
    for (i, (kernel, plan)) in kernels.iter().zip(plans).enumerate() {
        let (name, linkage) = symbol(i);
        let id = module
            .declare_function(&name, linkage, &sig)
            .map_err(|e| cranelift_err(Some(kernel), e))?;
        ctx.func.signature = sig.clone();
        ctx.set_disasm(disasm.is_some());
        let need = emit::libm_needs(kernel, plan);
        let mut refs = [None; 3];
        for (j, (name, _)) in math::F64_LIBCALLS.iter().enumerate() {
            if need[j] {
                let fid = module
                    .declare_function(name, Linkage::Import, &f64sig)
                    .map_err(|e| cranelift_err(Some(kernel), e))?;
                refs[j] = Some(module.declare_func_in_func(fid, &mut ctx.func));
            }
        }
        let libm = emit::Libm {
            exp: refs[0],
            log: refs[1],
            tanh: refs[2],
        };
        let b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        emit::emit_kernel(
            b,
            kernel,
            plan,
            module.target_config(),
            opts.fma && host.fma,
            libm,
        );
        if let Some(text) = disasm.as_deref_mut() {
            text.push_str(&ctx.func.display().to_string());
        }
        module
            .define_function(id, &mut ctx)
            .map_err(|e| cranelift_err(Some(kernel), format!("{e:?}")))?;
        if let Some(text) = disasm.as_deref_mut()
            && let Some(code) = ctx.compiled_code()
            && let Some(v) = &code.vcode
        {
            text.push_str(v);
        }
        module.clear_context(&mut ctx);
        ids.push(id);
    }
    Ok(ids)
}
