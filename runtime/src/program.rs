//! Programs: what a compiled graph is at run time.
//!
//! A [`Program`] is an ordered list of [`Step`]s over numbered buffers: loop kernels
//! ([`crate::kernel::LoopKernel`]), matrix products ([`GemmStep`], run by a tuned GEMM),
//! and library routines ([`LibraryStep`]) for the ops that are not loops over affine
//! accesses (window unfolds, gathers, random streams, arg-max). Buffers are the graph's
//! inputs and parameters (supplied per run), constants (stored in the program), and
//! temporaries, which the memory plan packs into one arena. A program is plain data
//! (serde), independent of the backend that compiles its kernels.

use crate::DType;
use crate::kernel::{KernelError, LoopKernel};
use serde::{Deserialize, Serialize};

/// What a buffer holds and where its memory comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BufferKind {
    /// Supplied by the caller on each run (a graph input or parameter), read-only.
    Input { name: String },
    /// A constant (one value = splat), written into the arena once when the program loads.
    Const { values: Vec<f64> },
    /// Computed by a step; lives in the arena at [`BufferDecl::offset`].
    Temp,
}

/// One buffer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BufferDecl {
    /// Element type.
    pub dtype: DType,
    /// Length in elements.
    pub len: usize,
    /// Origin.
    pub kind: BufferKind,
    /// Byte offset in the arena (constants and temporaries; 0 for inputs).
    pub offset: usize,
    /// The IR node it holds (for dumps), if any.
    pub node: Option<u32>,
}

impl BufferDecl {
    /// A buffer of `len` elements of `dtype`, not yet placed (offset 0, no IR node): the
    /// memory planner places temporaries and constants.
    pub fn new(dtype: DType, len: usize, kind: BufferKind) -> BufferDecl {
        BufferDecl {
            dtype,
            len,
            kind,
            offset: 0,
            node: None,
        }
    }

    /// Size in bytes (saturating: a length whose size overflows, which
    /// [`Program::validate`] rejects, gives `usize::MAX`).
    pub fn bytes(&self) -> usize {
        self.len.saturating_mul(self.dtype.size_bytes())
    }
}

/// A strided matrix (or batch of matrices) inside a buffer: element `(b, i, j)` is at
/// `offset + b·batch_stride + i·row_stride + j·col_stride` (in elements).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatView {
    pub buffer: usize,
    pub offset: usize,
    pub row_stride: isize,
    pub col_stride: isize,
    pub batch_stride: isize,
}

/// `C[b] = A[b]·B[b]` for `b` in `0..batch`, with `A` m×k, `B` k×n, `C` m×n (transposes are
/// strides); or, with `sum_batch`, one `C = Σ_b A[b]·B[b]` (C's batch stride is 0). C is
/// overwritten.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GemmStep {
    pub dtype: DType,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batch: usize,
    pub a: MatView,
    pub b: MatView,
    pub c: MatView,
    /// Sum the batch's products into one C (a weight gradient over a minibatch). Default
    /// false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sum_batch: bool,
}

/// A routine of the runtime library, for the ops that are not affine loops. Each has the
/// meaning of the IR op of the same name (see `xenon_compiler::interp`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "routine", rename_all = "snake_case")]
pub enum LibraryStep {
    /// `out = im2col(x)` over an `N×C×spatial` image.
    Im2Col {
        x: usize,
        out: usize,
        dtype: DType,
        image: Vec<usize>,
        window: WindowSpec,
    },
    /// `out = col2im(cols)` (summing overlaps).
    Col2Im {
        cols: usize,
        out: usize,
        dtype: DType,
        image: Vec<usize>,
        window: WindowSpec,
    },
    /// `out = gather(data, indices)`: rows of `row_len` elements.
    Gather {
        data: usize,
        indices: usize,
        out: usize,
        dtype: DType,
        rows: usize,
        row_len: usize,
    },
    /// `out = scatter_add(updates, indices)` into `rows` rows of `row_len` elements.
    ScatterAdd {
        updates: usize,
        indices: usize,
        out: usize,
        dtype: DType,
        rows: usize,
        row_len: usize,
    },
    /// Uniform (`normal == false`: `a + (b−a)·u`) or normal (`a + b·z`) samples.
    Random {
        out: usize,
        dtype: DType,
        normal: bool,
        seed: u64,
        a: f64,
        b: f64,
        counter: Option<usize>,
    },
    /// `out = argmax(x)` along the middle axis of `x` viewed as `outer × axis × inner`.
    ArgMax {
        x: usize,
        out: usize,
        dtype: DType,
        outer: usize,
        axis: usize,
        inner: usize,
    },
    /// `out = Σ over the ranks of x` (`len` elements; f32 or f64): the IR's `all_reduce`.
    /// An executor given a [`Collective`](crate::collective::Collective) copies `x` into
    /// `out` (nothing to copy when they are the same buffer: in place) and sums `out` over
    /// the ranks, possibly while later steps that touch neither run; without one it only
    /// copies (one rank).
    AllReduce {
        x: usize,
        out: usize,
        dtype: DType,
        len: usize,
    },
    /// Copies `len` elements of `src` (from `src_offset`) to `dst` (at `dst_offset`).
    Copy {
        src: usize,
        dst: usize,
        dtype: DType,
        src_offset: usize,
        dst_offset: usize,
        len: usize,
    },
}

impl LibraryStep {
    /// The routine's name (`im2col`, `gather`, …).
    pub fn name(&self) -> &'static str {
        match self {
            LibraryStep::Im2Col { .. } => "im2col",
            LibraryStep::Col2Im { .. } => "col2im",
            LibraryStep::Gather { .. } => "gather",
            LibraryStep::ScatterAdd { .. } => "scatter_add",
            LibraryStep::Random { .. } => "random",
            LibraryStep::ArgMax { .. } => "argmax",
            LibraryStep::Copy { .. } => "copy",
            LibraryStep::AllReduce { .. } => "all_reduce",
        }
    }
}

impl Step {
    /// The buffers the step reads (a buffer may repeat) and writes. A loop kernel's
    /// arguments that name no buffer of the program are left to [`Program::validate`].
    ///
    /// ```
    /// use xenon_runtime::DType;
    /// use xenon_runtime::program::{LibraryStep, Step};
    /// let s = Step::Library(LibraryStep::Copy {
    ///     src: 3, dst: 5, dtype: DType::F32, src_offset: 0, dst_offset: 0, len: 4,
    /// });
    /// assert_eq!(s.buffers(), (vec![3], vec![5]));
    /// ```
    pub fn buffers(&self) -> (Vec<usize>, Vec<usize>) {
        match self {
            Step::Loop(k) => {
                let buffer = |arg: usize| k.args.get(arg).map_or(usize::MAX, |a| a.buffer);
                let reads = k
                    .instrs()
                    .filter_map(|i| match i {
                        crate::kernel::Instr::Load(a) => Some(buffer(a.arg)),
                        _ => None,
                    })
                    .collect();
                let writes = k.stores.iter().map(|s| buffer(s.access.arg)).collect();
                (reads, writes)
            }
            Step::Gemm(g) => (vec![g.a.buffer, g.b.buffer], vec![g.c.buffer]),
            Step::Library(l) => match l {
                LibraryStep::Im2Col { x, out, .. } => (vec![*x], vec![*out]),
                LibraryStep::Col2Im { cols, out, .. } => (vec![*cols], vec![*out]),
                LibraryStep::Gather {
                    data, indices, out, ..
                } => (vec![*data, *indices], vec![*out]),
                LibraryStep::ScatterAdd {
                    updates,
                    indices,
                    out,
                    ..
                } => (vec![*updates, *indices], vec![*out]),
                LibraryStep::Random { out, counter, .. } => {
                    (counter.iter().copied().collect(), vec![*out])
                }
                LibraryStep::ArgMax { x, out, .. } => (vec![*x], vec![*out]),
                LibraryStep::Copy { src, dst, .. } => (vec![*src], vec![*dst]),
                LibraryStep::AllReduce { x, out, .. } => (vec![*x], vec![*out]),
            },
        }
    }

    /// A one-line description for dumps and profiles (`loop add_12 [128, 100], 3 instrs`,
    /// `gemm 128×100×784 (batch 1) f32 A·Bᵀ`, `library gather`).
    pub fn describe(&self) -> String {
        match self {
            Step::Loop(k) => {
                let r = match &k.reduce {
                    Some(r) => format!(", reduce {} over {:?}", r.op.name(), r.axes),
                    None => String::new(),
                };
                format!("loop {} {:?}{r}, {} instrs", k.name, k.shape, k.body.len())
            }
            Step::Gemm(g) => {
                // How each operand is laid out: `A` with unit column stride (rows
                // contiguous), `Aᵀ` with unit row stride (stored transposed), `A~` otherwise.
                let lay = |name: &str, v: &MatView| match (v.row_stride, v.col_stride) {
                    (_, 1) => name.to_string(),
                    (1, _) => format!("{name}ᵀ"),
                    _ => format!("{name}~"),
                };
                format!(
                    "gemm {}×{}×{} ({} {}) {} {}·{}",
                    g.m,
                    g.n,
                    g.k,
                    if g.sum_batch { "summed over" } else { "batch" },
                    g.batch,
                    g.dtype,
                    lay("A", &g.a),
                    lay("B", &g.b)
                )
            }
            Step::Library(l) => format!("library {}", l.name()),
        }
    }
}

/// A window in the runtime's terms (the IR's `Window`, flattened).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSpec {
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    pub pad_low: Vec<usize>,
    pub pad_high: Vec<usize>,
    pub dilation: Vec<usize>,
    /// Output spatial sizes.
    pub out: Vec<usize>,
}

/// One step of a program.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Loop(LoopKernel),
    Gemm(GemmStep),
    Library(LibraryStep),
}

/// How the temporaries were packed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryPlan {
    /// Arena size in bytes (constants and temporaries).
    pub arena_bytes: usize,
    /// Sum of every constant and temporary's size: the arena without reuse.
    pub naive_bytes: usize,
    /// Buffers computed in place over a dying operand.
    pub in_place: usize,
}

/// A compiled graph as data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub buffers: Vec<BufferDecl>,
    pub steps: Vec<Step>,
    /// Named results: `(name, buffer)`.
    pub outputs: Vec<(String, usize)>,
    /// `(output, feed)`: outputs that are the new value of an input, written back into
    /// that feed by a run with updates (a training step's parameters and state).
    #[serde(default)]
    pub updates: Vec<(String, String)>,
    pub plan: MemoryPlan,
}

/// Why a program is malformed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProgramError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("step {step}: {reason}")]
    Step { step: usize, reason: String },
    #[error("buffer {buffer}: {reason}")]
    Buffer { buffer: usize, reason: String },
    #[error("update {output:?}: {reason}")]
    Update { output: String, reason: String },
}

impl Program {
    /// The loop kernels of the steps, in step order.
    pub fn loop_kernels(&self) -> Vec<&LoopKernel> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Loop(k) => Some(k),
                _ => None,
            })
            .collect()
    }

    /// Whether buffers `x` and `y` share memory: the same buffer, or arena buffers
    /// (constants, temporaries) whose byte ranges intersect. Inputs live outside the arena.
    pub fn overlap(&self, x: usize, y: usize) -> bool {
        if x == y {
            return true;
        }
        let range = |id: usize| {
            self.buffers.get(id).and_then(|b| match b.kind {
                BufferKind::Input { .. } => None,
                _ => Some((b.offset, b.offset.saturating_add(b.bytes()))),
            })
        };
        match (range(x), range(y)) {
            (Some((a0, a1)), Some((b0, b1))) => a0 < b1 && b0 < a1,
            _ => false,
        }
    }

    /// Checks every step against the buffers: kernels' argument lengths and dtypes and
    /// every access in range, GEMM views in range, library routines' sizes. Executors run
    /// only validated programs.
    pub fn validate(&self) -> Result<(), ProgramError> {
        self.validate_updates()?;
        self.validate_buffers()?;
        for (s, step) in self.steps.iter().enumerate() {
            let c = StepCheck {
                program: self,
                step: s,
            };
            for b in step.buffers().1 {
                c.writable(b)?;
            }
            match step {
                Step::Loop(k) => c.loop_kernel(k)?,
                Step::Gemm(g) => c.gemm(g)?,
                Step::Library(l) => c.library(l)?,
            }
        }
        for (name, b) in &self.outputs {
            if *b >= self.buffers.len() {
                return Err(ProgramError::Buffer {
                    buffer: *b,
                    reason: format!("output {name:?} does not exist"),
                });
            }
        }
        Ok(())
    }

    /// Every update names an output and an input of the same dtype and length.
    fn validate_updates(&self) -> Result<(), ProgramError> {
        for (output, feed) in &self.updates {
            let bad = |reason: String| ProgramError::Update {
                output: output.clone(),
                reason,
            };
            let out = self
                .outputs
                .iter()
                .find(|(o, _)| o == output)
                .ok_or_else(|| bad("no such output".into()))?;
            let input = self
                .buffers
                .iter()
                .find(|b| matches!(&b.kind, BufferKind::Input { name } if name == feed))
                .ok_or_else(|| bad(format!("no input named {feed:?}")))?;
            let ob = self
                .buffers
                .get(out.1)
                .ok_or_else(|| bad(format!("buffer {} does not exist", out.1)))?;
            if (ob.dtype, ob.len) != (input.dtype, input.len) {
                return Err(bad(format!(
                    "{} with {} elements cannot update {feed:?}, {} with {}",
                    ob.dtype, ob.len, input.dtype, input.len
                )));
            }
        }
        Ok(())
    }

    /// Arena buffers lie inside the arena; constants have one value or one per element.
    fn validate_buffers(&self) -> Result<(), ProgramError> {
        for (i, b) in self.buffers.iter().enumerate() {
            if b.len.checked_mul(b.dtype.size_bytes()).is_none() {
                return Err(ProgramError::Buffer {
                    buffer: i,
                    reason: format!(
                        "{} elements of {} overflow the address space",
                        b.len, b.dtype
                    ),
                });
            }
            if let BufferKind::Temp | BufferKind::Const { .. } = b.kind
                && b.offset
                    .checked_add(b.bytes())
                    .is_none_or(|end| end > self.plan.arena_bytes)
            {
                return Err(ProgramError::Buffer {
                    buffer: i,
                    reason: "outside the arena".into(),
                });
            }
            if let BufferKind::Const { values } = &b.kind
                && values.len() != 1
                && values.len() != b.len
            {
                return Err(ProgramError::Buffer {
                    buffer: i,
                    reason: format!("{} values for {} elements", values.len(), b.len),
                });
            }
        }
        Ok(())
    }
}

/// The checks of one step of a program against its buffers (see [`Program::validate`]).
struct StepCheck<'a> {
    program: &'a Program,
    step: usize,
}

impl StepCheck<'_> {
    /// Buffer `id`, which must exist with `dtype`.
    fn buf(&self, id: usize, dtype: DType) -> Result<&BufferDecl, ProgramError> {
        let b = self.program.buffers.get(id).ok_or(ProgramError::Step {
            step: self.step,
            reason: format!("buffer {id} does not exist"),
        })?;
        if b.dtype != dtype {
            return Err(ProgramError::Step {
                step: self.step,
                reason: format!("buffer {id} is {}, expected {dtype}", b.dtype),
            });
        }
        Ok(b)
    }

    /// Buffer `id` with `dtype` and at least `n` elements.
    fn need(&self, id: usize, dtype: DType, n: usize) -> Result<(), ProgramError> {
        let b = self.buf(id, dtype)?;
        if b.len < n {
            return Err(ProgramError::Step {
                step: self.step,
                reason: format!("buffer {id} has {} elements, needs {n}", b.len),
            });
        }
        Ok(())
    }

    /// Buffer `id` may be written: a temporary.
    fn writable(&self, id: usize) -> Result<(), ProgramError> {
        match self.program.buffers.get(id).map(|b| &b.kind) {
            Some(BufferKind::Temp) => Ok(()),
            _ => Err(ProgramError::Step {
                step: self.step,
                reason: format!("writes buffer {id}, which is not a temporary"),
            }),
        }
    }

    /// A loop kernel: its arguments match their buffers, its accesses stay inside them
    /// ([`LoopKernel::validate`]), and its outputs do not share memory.
    fn loop_kernel(&self, k: &LoopKernel) -> Result<(), ProgramError> {
        for a in &k.args {
            let b = self.buf(a.buffer, a.dtype)?;
            if b.len != a.len {
                return Err(ProgramError::Step {
                    step: self.step,
                    reason: format!(
                        "kernel argument for buffer {} says {} elements, the buffer has {}",
                        a.buffer, a.len, b.len
                    ),
                });
            }
        }
        k.validate()?;
        // Stores to different buffers must not share memory (their order would decide the
        // result).
        let mut outs: Vec<usize> = k
            .stores
            .iter()
            .filter_map(|st| k.args.get(st.access.arg).map(|a| a.buffer))
            .collect();
        outs.sort_unstable();
        outs.dedup();
        for (i, &x) in outs.iter().enumerate() {
            if let Some(&y) = outs[i + 1..].iter().find(|&&y| self.program.overlap(x, y)) {
                return Err(ProgramError::Step {
                    step: self.step,
                    reason: format!("its outputs, buffers {x} and {y}, overlap"),
                });
            }
        }
        Ok(())
    }

    /// A matrix product: views inside their buffers, the output apart from the operands.
    fn gemm(&self, g: &GemmStep) -> Result<(), ProgramError> {
        // The product must not write where it reads.
        for v in [&g.a, &g.b] {
            if self.program.overlap(v.buffer, g.c.buffer) {
                return Err(ProgramError::Step {
                    step: self.step,
                    reason: format!(
                        "the product's output buffer {} overlaps its operand {}",
                        g.c.buffer, v.buffer
                    ),
                });
            }
        }
        if g.sum_batch && g.c.batch_stride != 0 {
            return Err(ProgramError::Step {
                step: self.step,
                reason: "a product summed over its batch has one output (batch stride 0)".into(),
            });
        }
        for (v, rows, cols) in [(&g.a, g.m, g.k), (&g.b, g.k, g.n), (&g.c, g.m, g.n)] {
            let b = self.buf(v.buffer, g.dtype)?;
            let (mut lo, mut hi) = (v.offset as i128, v.offset as i128);
            for (stride, ext) in [
                (v.row_stride, rows),
                (v.col_stride, cols),
                (v.batch_stride, g.batch),
            ] {
                let span = stride as i128 * (ext as i128 - 1);
                if span < 0 { lo += span } else { hi += span }
            }
            if rows == 0 || cols == 0 || g.batch == 0 || lo < 0 || hi >= b.len as i128 {
                return Err(ProgramError::Step {
                    step: self.step,
                    reason: format!("matrix view of buffer {} is outside it", v.buffer),
                });
            }
        }
        Ok(())
    }

    /// A library routine: its buffers hold what it reads and writes.
    fn library(&self, l: &LibraryStep) -> Result<(), ProgramError> {
        match l {
            LibraryStep::Im2Col {
                x,
                out,
                dtype,
                image,
                window,
            }
            | LibraryStep::Col2Im {
                cols: x,
                out,
                dtype,
                image,
                window,
            } => {
                let r = window.kernel.len();
                let ok = image.len() == r + 2
                    && [
                        &window.stride,
                        &window.pad_low,
                        &window.pad_high,
                        &window.dilation,
                        &window.out,
                    ]
                    .iter()
                    .all(|v| v.len() == r);
                if !ok {
                    return Err(ProgramError::Step {
                        step: self.step,
                        reason: "window rank mismatch".into(),
                    });
                }
                let img: usize = image.iter().product();
                let cols = image[0]
                    * image[1]
                    * window.kernel.iter().product::<usize>()
                    * window.out.iter().product::<usize>();
                let (nx, nout) = if matches!(l, LibraryStep::Im2Col { .. }) {
                    (img, cols)
                } else {
                    (cols, img)
                };
                self.need(*x, *dtype, nx)?;
                self.need(*out, *dtype, nout)?;
            }
            LibraryStep::Gather {
                data,
                indices,
                out,
                dtype,
                rows,
                row_len,
            } => {
                self.need(*data, *dtype, rows * row_len)?;
                let n = self.buf(*indices, DType::I32)?.len;
                self.need(*out, *dtype, n * row_len)?;
            }
            LibraryStep::ScatterAdd {
                updates,
                indices,
                out,
                dtype,
                rows,
                row_len,
            } => {
                let n = self.buf(*indices, DType::I32)?.len;
                self.need(*updates, *dtype, n * row_len)?;
                self.need(*out, *dtype, rows * row_len)?;
            }
            LibraryStep::Random {
                out,
                dtype,
                counter,
                ..
            } => {
                self.buf(*out, *dtype)?;
                if let Some(c) = counter {
                    self.need(*c, DType::I32, 1)?;
                }
            }
            LibraryStep::ArgMax {
                x,
                out,
                dtype,
                outer,
                axis,
                inner,
            } => {
                self.need(*x, *dtype, outer * axis * inner)?;
                self.need(*out, DType::I32, outer * inner)?;
            }
            LibraryStep::Copy {
                src,
                dst,
                dtype,
                src_offset,
                dst_offset,
                len,
            } => {
                self.need(*src, *dtype, src_offset + len)?;
                self.need(*dst, *dtype, dst_offset + len)?;
            }
            LibraryStep::AllReduce { x, out, dtype, len } => {
                if *dtype == DType::I32 {
                    return Err(ProgramError::Step {
                        step: self.step,
                        reason: "all_reduce of i32 (f32 or f64 only)".into(),
                    });
                }
                self.need(*x, *dtype, *len)?;
                self.need(*out, *dtype, *len)?;
            }
        }
        Ok(())
    }
}
