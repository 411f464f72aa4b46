//! Loop kernels: the unit of generated code.
//!
//! A [`LoopKernel`] is a loop nest over an iteration space (a shape) whose body is a short
//! list of scalar instructions: loads through affine [`Access`]es (an offset plus one
//! stride per iteration axis, so broadcasts, transposes, slices and reshapes of contiguous
//! data are just strides), arithmetic with the IR's scalar ops, and stores. A kernel may
//! reduce over some axes: the body's `value` is accumulated over the reduced axes and a
//! `post` list computes what is stored per output point. Fused elementwise chains,
//! reductions with their prologue and epilogue, and GEMM epilogues are all loop kernels.
//!
//! Backends compile kernels (Cranelift on the CPU, OpenCL C on GPUs); [`eval()`] is the
//! reference semantics every compiled kernel is tested against, and the fallback for
//! kernels a backend does not compile.
//!
//! # Loop order and ranges
//!
//! The loop nest visits the *outer* axes (every axis for an elementwise kernel; the axes
//! not reduced, in order, for a reduction) in row-major order; a reduction then visits its
//! reduced axes in row-major order for each outer point, accumulating in that order (sums
//! start at +0, maxima at −∞). A reduction with [`Reduction::partials`] `p > 1` keeps `p`
//! accumulators instead of one: the value at index `j` of the innermost reduced axis is
//! accumulated into partial `j mod p` (each partial in the row-major order of its
//! points), and the partials are then combined by halving — `p[i] ⊕= p[i + h]` for
//! `i < h`, with `h = p/2, p/4, …, 1` — the result being `p[0]` ([`Reduction::combine`]).
//! That order is what a vector unit computes with `p` lanes, and it is as exactly defined
//! as the sequential one: every backend produces the same bits.
//! Executors split work by ranges of the **first outer axis**
//! ([`LoopKernel::outer_extent`]): each output element is computed by one call, so results
//! do not depend on how the range is split.
//!
//! # Values and types
//!
//! Instructions are numbered in order (body first, then `post` for reductions) and refer to
//! earlier values by number. A value's dtype is its load's buffer dtype, its constant's
//! dtype, the cast's target, `Compare`'s operand dtype (a 0/1 mask), or its operands' dtype.

use crate::DType;
use crate::ops::{BinaryOp, CompareOp, ReduceOp, UnaryOp};
use serde::{Deserialize, Serialize};

/// A value number: the index of the instruction that produces it.
pub type ValueId = u32;

/// An affine view of a kernel argument: element `offset + Σ_d i_d·strides[d]` at iteration
/// point `i` (strides in elements, one per iteration axis; 0 broadcasts along that axis).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Access {
    /// Index into [`LoopKernel::args`].
    pub arg: usize,
    /// Element offset of iteration point 0.
    pub offset: usize,
    /// Element stride per iteration axis.
    pub strides: Vec<isize>,
}

/// One scalar instruction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "i", rename_all = "snake_case")]
pub enum Instr {
    /// Reads an argument.
    Load(Access),
    /// A constant of the given dtype (converted like `Tensor::from_f64_as`).
    Const { dtype: DType, value: f64 },
    /// `f(a)`.
    Unary { func: UnaryOp, a: ValueId },
    /// `f(a, b)`.
    Binary {
        func: BinaryOp,
        a: ValueId,
        b: ValueId,
    },
    /// 1 where `a ∘ b` holds, else 0, in the operands' dtype.
    Compare {
        func: CompareOp,
        a: ValueId,
        b: ValueId,
    },
    /// `cond ≠ 0 ? a : b`.
    Select {
        cond: ValueId,
        a: ValueId,
        b: ValueId,
    },
    /// Converts `a` to `to` (float→i32 truncates toward zero, saturating, NaN to 0).
    Cast { to: DType, a: ValueId },
    /// The reduction's accumulated value (only in [`Reduction::post`]).
    Accumulator,
}

/// The reduction part of a kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reduction {
    /// How values are combined (`Sum` or `Max`; a mean is a sum followed by a scale in
    /// `post`).
    pub op: ReduceOp,
    /// The iteration axes reduced over, increasing.
    pub axes: Vec<usize>,
    /// The body value accumulated.
    pub value: ValueId,
    /// Instructions run once per output point after accumulating; they may use
    /// [`Instr::Accumulator`] and loads whose strides are 0 along the reduced axes.
    pub post: Vec<Instr>,
    /// Partial accumulators: a power of two from 1 to [`MAX_PARTIALS`] (default 1). With
    /// `p > 1` the value at index `j` of the innermost reduced axis goes to partial
    /// `j mod p`, and the partials are combined by halving; see the module docs.
    #[serde(default = "one_partial", skip_serializing_if = "is_one_partial")]
    pub partials: u32,
}

/// The most partial accumulators a [`Reduction`] may have.
pub const MAX_PARTIALS: u32 = 64;

fn one_partial() -> u32 {
    1
}

fn is_one_partial(p: &u32) -> bool {
    *p == 1
}

impl Reduction {
    /// Combines partial accumulators as every backend must: halving, `p[i] = p[i] ⊕
    /// p[i + h]` for `i < h`, `h = len/2, len/4, …, 1`; the result is `p[0]` (`len` is a
    /// power of two).
    pub fn combine<T: Copy>(partials: &mut [T], op: impl Fn(T, T) -> T) -> T {
        let mut h = partials.len() / 2;
        while h >= 1 {
            for i in 0..h {
                partials[i] = op(partials[i], partials[i + h]);
            }
            h /= 2;
        }
        partials[0]
    }
}

/// A buffer a kernel reads or writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelArg {
    /// The program buffer (index into `Program::buffers`).
    pub buffer: usize,
    /// Its element type.
    pub dtype: DType,
    /// Its length in elements.
    pub len: usize,
}

/// A store of a value through an access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    /// Where (strides 0 along reduced axes for a reduction).
    pub access: Access,
    /// What.
    pub value: ValueId,
}

/// A loop nest with a scalar body; see the module docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoopKernel {
    /// A readable name for dumps and profiles.
    pub name: String,
    /// The iteration space.
    pub shape: Vec<usize>,
    /// The buffers the kernel touches.
    pub args: Vec<KernelArg>,
    /// Instructions evaluated at every iteration point.
    pub body: Vec<Instr>,
    /// The reduction, if the kernel reduces.
    pub reduce: Option<Reduction>,
    /// The stores, per output point.
    pub stores: Vec<Store>,
}

/// Why a kernel is malformed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("kernel '{kernel}': {reason}")]
pub struct KernelError {
    pub kernel: String,
    pub reason: String,
}

/// Points of the [`LoopKernel::vector_axis`] one work-item computes (OpenCL's `float4`).
pub const VECTOR_WIDTH: usize = 4;

impl LoopKernel {
    fn err(&self, reason: impl Into<String>) -> KernelError {
        KernelError {
            kernel: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// The iteration axes visited by the outer loops (all, or those not reduced).
    pub fn outer_axes(&self) -> Vec<usize> {
        let reduced: &[usize] = self.reduce.as_ref().map_or(&[], |r| &r.axes);
        (0..self.shape.len())
            .filter(|a| !reduced.contains(a))
            .collect()
    }

    /// The extent of the first outer axis (1 when there is none): executors split
    /// `0..outer_extent()` among threads.
    pub fn outer_extent(&self) -> usize {
        self.outer_axes().first().map_or(1, |&a| self.shape[a])
    }

    /// The axis a data-parallel backend (OpenCL) vectorizes, with [`VECTOR_WIDTH`]
    /// consecutive points of it per work-item: the last outer axis of extent > 1, when the
    /// kernel is elementwise (no reduction), that axis's extent is a multiple of the width,
    /// some load or store is contiguous along it (stride 1: one vector access) and no store
    /// is constant along it (stride 0). `None`: one point per work-item.
    pub fn vector_axis(&self) -> Option<usize> {
        if self.reduce.is_some() {
            return None;
        }
        let axis = (0..self.shape.len()).rev().find(|&a| self.shape[a] > 1)?;
        let loads = self.body.iter().filter_map(|i| match i {
            Instr::Load(a) => Some(a),
            _ => None,
        });
        let mut accesses = loads.chain(self.stores.iter().map(|s| &s.access));
        let contiguous = accesses.any(|a| a.strides.get(axis) == Some(&1));
        let stores_move = self
            .stores
            .iter()
            .all(|s| s.access.strides.get(axis) != Some(&0));
        (self.shape[axis].is_multiple_of(VECTOR_WIDTH) && contiguous && stores_move).then_some(axis)
    }

    /// Work-items a data-parallel backend runs: the outer points, divided by
    /// [`VECTOR_WIDTH`] when the kernel has a [`LoopKernel::vector_axis`] (0 for an empty
    /// iteration space).
    pub fn work_items(&self) -> usize {
        let points: usize = self.outer_axes().iter().map(|&a| self.shape[a]).product();
        let width = if self.vector_axis().is_some() {
            VECTOR_WIDTH
        } else {
            1
        };
        points / width
    }

    /// All instructions in value-number order (body, then post).
    pub fn instrs(&self) -> impl Iterator<Item = &Instr> {
        self.body
            .iter()
            .chain(self.reduce.iter().flat_map(|r| r.post.iter()))
    }

    /// The dtype of every value, checking operand references and types on the way.
    pub fn value_types(&self) -> Result<Vec<DType>, KernelError> {
        let nbody = self.body.len();
        let mut types: Vec<DType> = Vec::new();
        for (i, ins) in self.instrs().enumerate() {
            let in_post = i >= nbody;
            let get = |v: ValueId| -> Result<DType, KernelError> {
                let v = v as usize;
                if v >= i {
                    return Err(self.err(format!(
                        "value {i} uses value {v}, which is not defined before it"
                    )));
                }
                if in_post
                    && v < nbody
                    && self
                        .reduce
                        .as_ref()
                        .is_some_and(|r| depends_on_reduced(&self.body, v, &r.axes))
                {
                    return Err(self.err(format!(
                        "post value {i} uses body value {v}, which varies along reduced axes"
                    )));
                }
                Ok(types[v])
            };
            let t = match ins {
                Instr::Load(a) => {
                    let arg = self.args.get(a.arg).ok_or_else(|| {
                        self.err(format!(
                            "value {i} loads argument {}, which does not exist",
                            a.arg
                        ))
                    })?;
                    arg.dtype
                }
                Instr::Const { dtype, .. } => *dtype,
                Instr::Unary { func, a } => {
                    let t = get(*a)?;
                    if func.float_only() && !t.is_float() {
                        return Err(self.err(format!("value {i}: {} of {t}", func.name())));
                    }
                    t
                }
                Instr::Binary { func, a, b } => {
                    let (ta, tb) = (get(*a)?, get(*b)?);
                    if ta != tb || (func.float_only() && !ta.is_float()) {
                        return Err(
                            self.err(format!("value {i}: {} of {ta} and {tb}", func.name()))
                        );
                    }
                    ta
                }
                Instr::Compare { a, b, .. } => {
                    let (ta, tb) = (get(*a)?, get(*b)?);
                    if ta != tb {
                        return Err(self.err(format!("value {i}: comparison of {ta} and {tb}")));
                    }
                    ta
                }
                Instr::Select { cond, a, b } => {
                    get(*cond)?;
                    let (ta, tb) = (get(*a)?, get(*b)?);
                    if ta != tb {
                        return Err(self.err(format!("value {i}: select of {ta} and {tb}")));
                    }
                    ta
                }
                Instr::Cast { to, a } => {
                    get(*a)?;
                    *to
                }
                Instr::Accumulator => {
                    let r = self.reduce.as_ref().filter(|_| in_post).ok_or_else(|| {
                        self.err(format!("value {i}: accumulator outside a reduction's post"))
                    })?;
                    types[r.value as usize]
                }
            };
            types.push(t);
        }
        Ok(types)
    }

    /// Checks the kernel against the lengths of the buffers it will run on: well-formed
    /// values, and every load and store inside its buffer for every iteration point. Code
    /// compiled from a kernel runs only after this check.
    pub fn validate(&self) -> Result<(), KernelError> {
        if self.shape.contains(&0) {
            return Err(self.err(format!("zero-sized iteration space {:?}", self.shape)));
        }
        let types = self.value_types()?;
        let rank = self.shape.len();
        if let Some(r) = &self.reduce {
            if r.axes.iter().any(|&a| a >= rank) || r.axes.windows(2).any(|w| w[0] >= w[1]) {
                return Err(self.err(format!(
                    "reduced axes {:?} must increase within rank {rank}",
                    r.axes
                )));
            }
            if r.value as usize >= self.body.len() {
                return Err(self.err("the reduced value must be a body value"));
            }
            if !matches!(r.op, ReduceOp::Sum | ReduceOp::Max) {
                return Err(self.err("reductions are sum or max"));
            }
            if !r.partials.is_power_of_two() || r.partials > MAX_PARTIALS {
                return Err(self.err(format!(
                    "{} partial accumulators: a power of two up to {MAX_PARTIALS} is needed",
                    r.partials
                )));
            }
            if r.partials > 1 && r.axes.is_empty() {
                return Err(self.err("partial accumulators need a reduced axis"));
            }
        }
        let check = |a: &Access, what: &str, reduced_zero: bool| -> Result<(), KernelError> {
            let arg = self.args.get(a.arg).ok_or_else(|| {
                self.err(format!(
                    "{what} uses argument {}, which does not exist",
                    a.arg
                ))
            })?;
            if a.strides.len() != rank {
                return Err(self.err(format!(
                    "{what} has {} strides for rank {rank}",
                    a.strides.len()
                )));
            }
            if reduced_zero
                && let Some(r) = &self.reduce
                && r.axes.iter().any(|&ax| a.strides[ax] != 0)
            {
                return Err(self.err(format!("{what} varies along a reduced axis")));
            }
            let (mut lo, mut hi) = (a.offset as i128, a.offset as i128);
            for (d, &s) in a.strides.iter().enumerate() {
                let span = s as i128 * (self.shape[d] as i128 - 1);
                if span < 0 { lo += span } else { hi += span }
            }
            if lo < 0 || hi >= arg.len as i128 {
                return Err(self.err(format!(
                    "{what} reaches elements {lo}..={hi} of argument {} (buffer {}, {} elements)",
                    a.arg, arg.buffer, arg.len
                )));
            }
            Ok(())
        };
        let nbody = self.body.len();
        for (i, ins) in self.instrs().enumerate() {
            if let Instr::Load(a) = ins {
                check(a, &format!("load {i}"), i >= nbody)?;
            }
        }
        for (k, s) in self.stores.iter().enumerate() {
            check(&s.access, &format!("store {k}"), true)?;
            let v = s.value as usize;
            if v >= types.len() || (self.reduce.is_some() && v < nbody) {
                return Err(self.err(format!(
                    "store {k} writes value {v}, which is not a stored-value candidate"
                )));
            }
            if types[v] != self.args[s.access.arg].dtype {
                return Err(self.err(format!(
                    "store {k} writes a {} value into a {} buffer",
                    types[v], self.args[s.access.arg].dtype
                )));
            }
        }
        Ok(())
    }
}

/// True when body value `v` depends on a load that varies along one of `axes`.
fn depends_on_reduced(body: &[Instr], v: usize, axes: &[usize]) -> bool {
    let mut stack = vec![v];
    while let Some(i) = stack.pop() {
        match &body[i] {
            Instr::Load(a) => {
                if axes
                    .iter()
                    .any(|&ax| a.strides.get(ax).copied().unwrap_or(0) != 0)
                {
                    return true;
                }
            }
            Instr::Const { .. } | Instr::Accumulator => {}
            Instr::Unary { a, .. } | Instr::Cast { a, .. } => stack.push(*a as usize),
            Instr::Binary { a, b, .. } | Instr::Compare { a, b, .. } => {
                stack.extend([*a as usize, *b as usize])
            }
            Instr::Select { cond, a, b } => {
                stack.extend([*cond as usize, *a as usize, *b as usize])
            }
        }
    }
    false
}

pub mod eval;
pub use eval::{Memory, Scalar, eval};
