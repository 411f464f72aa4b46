//! Lowering of one [`LoopKernel`] to a Cranelift function (see the module docs of
//! [`super`] for the loop structure).

use super::fx::{
    fcmp, fconst, fmax_nan, fmin_nan, fsign, icmp, iconst32, isign, mask_to_01, nonzero, sel,
};
use super::math;
use super::plan::{LANES, Plan};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{FuncRef, InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, Variable};
use xenon_runtime::DType;
use xenon_runtime::kernel::{Instr, LoopKernel};
use xenon_runtime::ops::{BinaryOp, CompareOp, ReduceOp, UnaryOp};

/// Scalar code or 4-lane vector code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Scalar,
    Vector,
}

/// Vector steps per iteration of the unrolled loop (kernels without a reduction).
const UNROLL: i64 = 4;

/// The f64 math functions a kernel calls (`exp`, `log`, `tanh`), when it uses them.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Libm {
    pub exp: Option<FuncRef>,
    pub log: Option<FuncRef>,
    pub tanh: Option<FuncRef>,
}

/// Which f64 math functions `kernel` needs (live values only).
pub(super) fn libm_needs(kernel: &LoopKernel, plan: &Plan) -> [bool; 3] {
    let mut need = [false; 3];
    for (v, ins) in kernel.instrs().enumerate() {
        if let Instr::Unary { func, .. } = ins
            && plan.live[v]
            && plan.types[v] == DType::F64
        {
            match func {
                UnaryOp::Exp => need[0] = true,
                UnaryOp::Log => need[1] = true,
                UnaryOp::Tanh => need[2] = true,
                _ => {}
            }
        }
    }
    need
}

fn scalar_ty(d: DType) -> Type {
    match d {
        DType::F32 => types::F32,
        DType::F64 => types::F64,
        DType::I32 => types::I32,
    }
}

fn vector_ty(d: DType) -> Type {
    match d {
        DType::F32 => types::F32X4,
        DType::I32 => types::I32X4,
        // The plan never vectorizes kernels with f64 values.
        DType::F64 => types::F64X2,
    }
}

struct Emitter<'a, 'b> {
    b: FunctionBuilder<'b>,
    kernel: &'a LoopKernel,
    instrs: Vec<&'a Instr>,
    plan: &'a Plan,
    ptr_ty: Type,
    fma: bool,
    libm: Libm,
    sval: Vec<Option<Value>>,
    vval: Vec<Option<Value>>,
    /// The current address of every access (at the loop level being emitted).
    ptr: Vec<Value>,
    /// A constant byte offset added to `ptr` (the unrolled copies of the vector body).
    ptr_off: Vec<i64>,
    /// Loop counters.
    iv: Vec<Variable>,
    /// Pointer induction variables per loop and access (accesses that move along the
    /// loop's axis).
    pv: Vec<Vec<Option<Variable>>>,
    acc_scalar: Option<Variable>,
    acc_vector: Option<Variable>,
    /// The partial accumulators of a reduction with [`Plan::partials`] > 1: one vector of
    /// [`LANES`] partials each in vector code, one partial each in scalar code.
    acc_parts: Vec<Variable>,
    /// Where the body copy being emitted accumulates: a partial accumulator, and a lane of
    /// it for the scalar tail of vector code.
    acc_target: (usize, Option<u8>),
    start: Value,
    end: Value,
    /// Float constants that are not NaN (allow the one-compare max/min).
    num_const: Vec<bool>,
}

/// Emits the body of the kernel function `fn(args, start, end)` into `b` and finalizes
/// it.
pub(super) fn emit_kernel(
    mut b: FunctionBuilder<'_>,
    kernel: &LoopKernel,
    plan: &Plan,
    cfg: TargetFrontendConfig,
    fma: bool,
    libm: Libm,
) {
    let ptr_ty = cfg.pointer_type();
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let params = b.block_params(entry).to_vec();
    let (args, start, end) = (params[0], params[1], params[2]);
    // Clamp `end` to the extent of the first outer axis and return on an empty range.
    let ext = b.ins().iconst(ptr_ty, kernel.outer_extent() as i64);
    let end = b.ins().umin(end, ext);
    let main = b.create_block();
    let ret = b.create_block();
    let nonempty = b.ins().icmp(IntCC::UnsignedLessThan, start, end);
    b.ins().brif(nonempty, main, &[], ret, &[]);
    b.switch_to_block(main);
    b.seal_block(main);

    let instrs: Vec<&Instr> = kernel.instrs().collect();
    let n = instrs.len();
    // Argument base pointers (live accesses only), then each access's address at point 0.
    let mut argptr: Vec<Option<Value>> = vec![None; kernel.args.len()];
    let mut ptr = Vec::with_capacity(plan.accesses.len());
    for a in &plan.access_data {
        let base = match argptr[a.arg] {
            Some(p) => p,
            None => {
                let p = b.ins().load(
                    ptr_ty,
                    MemFlagsData::trusted(),
                    args,
                    (a.arg * ptr_ty.bytes() as usize) as i32,
                );
                argptr[a.arg] = Some(p);
                p
            }
        };
        let elt = kernel.args[a.arg].dtype.size_bytes() as i64;
        ptr.push(b.ins().iadd_imm_s(base, a.offset as i64 * elt));
    }
    let iv: Vec<Variable> = plan.loops.iter().map(|_| b.declare_var(ptr_ty)).collect();
    let mut pv = Vec::with_capacity(plan.loops.len());
    for l in &plan.loops {
        let row: Vec<Option<Variable>> = plan
            .access_data
            .iter()
            .map(|a| (a.strides[l.axis] != 0).then(|| b.declare_var(ptr_ty)))
            .collect();
        pv.push(row);
    }
    let (acc_scalar, acc_vector, acc_parts) = match &kernel.reduce {
        Some(r) => {
            let d = plan.types[r.value as usize];
            let s = b.declare_var(scalar_ty(d));
            let v = (plan.vector && plan.partials == 1).then(|| b.declare_var(vector_ty(d)));
            let parts = if plan.partials == 1 {
                Vec::new()
            } else if plan.vector {
                let t = vector_ty(d);
                (0..plan.partials / LANES)
                    .map(|_| b.declare_var(t))
                    .collect()
            } else {
                let t = scalar_ty(d);
                (0..plan.partials).map(|_| b.declare_var(t)).collect()
            };
            (Some(s), v, parts)
        }
        None => (None, None, Vec::new()),
    };
    let num_const = instrs
        .iter()
        .map(|ins| match ins {
            Instr::Const { dtype, value } => match dtype {
                DType::F32 => !(*value as f32).is_nan(),
                DType::F64 => !value.is_nan(),
                DType::I32 => true,
            },
            _ => false,
        })
        .collect();
    let mut e = Emitter {
        b,
        kernel,
        instrs,
        plan,
        ptr_ty,
        fma,
        libm,
        sval: vec![None; n],
        vval: vec![None; n],
        ptr_off: vec![0; ptr.len()],
        ptr,
        iv,
        pv,
        acc_scalar,
        acc_vector,
        acc_parts,
        acc_target: (0, None),
        start,
        end,
        num_const,
    };
    e.body(0, Mode::Scalar);
    e.b.ins().jump(ret, &[]);
    e.b.switch_to_block(ret);
    e.b.seal_block(ret);
    e.b.ins().return_(&[]);
    e.b.finalize(cfg);
}

impl Emitter<'_, '_> {
    /// Emits what happens at loop level `lvl` (0 = once per call; `j + 1` = in loop `j`).
    fn body(&mut self, lvl: usize, mode: Mode) {
        let k = self.plan.n_outer;
        let nl = self.plan.loops.len();
        self.values(lvl, mode, false);
        if lvl == k {
            if let Some(r) = &self.kernel.reduce {
                self.init_acc(r.op, r.value as usize, mode);
                if nl > k {
                    self.emit_loop(k, mode);
                } else {
                    self.accumulate(mode);
                }
                if self.plan.partials > 1 {
                    self.combine_partials(r.op, r.value as usize);
                }
                self.values(lvl, mode, true);
            }
            self.stores(mode);
        } else if lvl < nl {
            self.emit_loop(lvl, mode);
        } else {
            self.accumulate(mode);
        }
    }

    /// Emits the live values of level `lvl` (those after the reduction when `after_acc`).
    fn values(&mut self, lvl: usize, mode: Mode, after_acc: bool) {
        for v in 0..self.instrs.len() {
            if !self.plan.live[v] || self.plan.level[v] != lvl || self.plan.acc_dep[v] != after_acc
            {
                continue;
            }
            let x = self.instr(v, mode);
            match mode {
                Mode::Scalar => {
                    self.sval[v] = Some(x);
                    if self.plan.needs_splat[v] {
                        let vt = vector_ty(self.plan.types[v]);
                        self.vval[v] = Some(self.b.ins().splat(vt, x));
                    }
                }
                Mode::Vector => self.vval[v] = Some(x),
            }
        }
    }

    fn get(&self, v: u32, mode: Mode) -> Value {
        let v = v as usize;
        let x = match mode {
            Mode::Scalar => self.sval[v],
            Mode::Vector => self.vval[v],
        };
        x.expect("operands are emitted before their uses")
    }

    fn ty(&self, d: DType, mode: Mode) -> Type {
        match mode {
            Mode::Scalar => scalar_ty(d),
            Mode::Vector => vector_ty(d),
        }
    }

    fn vector_axis(&self) -> usize {
        self.plan.loops[self.plan.vloop].axis
    }

    /// The address of access `a` as a base and a 32-bit immediate offset (`extra` bytes
    /// past the current copy's offset).
    fn addr(&mut self, a: usize, extra: i64) -> (Value, i32) {
        let off = self.ptr_off[a] + extra;
        match i32::try_from(off) {
            Ok(o) => (self.ptr[a], o),
            Err(_) => (self.b.ins().iadd_imm_s(self.ptr[a], off), 0),
        }
    }

    fn scalar_flags() -> MemFlagsData {
        MemFlagsData::trusted()
    }

    fn vector_flags() -> MemFlagsData {
        MemFlagsData::new().with_notrap()
    }

    /// Emits loop `j` (both the vector loop and its scalar tail for the vector axis).
    fn emit_loop(&mut self, j: usize, mode: Mode) {
        let spec = self.plan.loops[j];
        let first = j == 0 && self.plan.n_outer > 0;
        let i0 = if first {
            self.start
        } else {
            self.b.ins().iconst(self.ptr_ty, 0)
        };
        self.b.def_var(self.iv[j], i0);
        for (a, var) in self.pv[j].clone().into_iter().enumerate() {
            let Some(var) = var else { continue };
            let p = self.ptr[a];
            let p0 = if first {
                let step = self.step(a, spec.axis, 1);
                let off = self.b.ins().imul_imm_s(i0, step);
                self.b.ins().iadd(p, off)
            } else {
                p
            };
            self.b.def_var(var, p0);
        }
        let saved = self.ptr.clone();
        if self.plan.partials > 1 && j + 1 == self.plan.loops.len() {
            self.partials_loop(j);
        } else if self.plan.vector && j == self.plan.vloop {
            if self.plan.loops.len() == self.plan.n_outer && self.unroll_fits(spec.extent, first) {
                self.single_loop_n(j, Mode::Vector, UNROLL as usize, LANES);
            }
            self.single_loop(j, Mode::Vector);
            self.single_loop(j, Mode::Scalar);
        } else {
            self.single_loop(j, mode);
        }
        self.ptr = saved;
    }

    /// The innermost reduced loop of a reduction with partial accumulators: `partials`
    /// points per iteration (one body copy per accumulator, vector or scalar), then the
    /// last `extent mod partials` points straight-line, each into its partial (whole
    /// vectors, then single lanes).
    fn partials_loop(&mut self, j: usize) {
        let spec = self.plan.loops[j];
        let parts = self.plan.partials;
        let (mode, width) = if self.plan.vector {
            (Mode::Vector, LANES)
        } else {
            (Mode::Scalar, 1)
        };
        if spec.extent >= parts {
            self.single_loop_n(j, mode, parts / width, width);
        }
        let vars = self.pv[j].clone();
        for (a, var) in vars.iter().enumerate() {
            if let Some(var) = var {
                self.ptr[a] = self.b.use_var(*var);
            }
        }
        let rest = spec.extent % parts;
        for i in 0..rest {
            let whole = i / width < rest / width;
            if whole && i % width != 0 {
                continue;
            }
            for (a, var) in vars.iter().enumerate() {
                if var.is_some() {
                    self.ptr_off[a] = self.step(a, spec.axis, i as i64);
                }
            }
            if whole {
                self.acc_target = (i / width, None);
                self.body(j + 1, mode);
            } else {
                self.acc_target = (i / width, Some((i % width) as u8));
                self.body(j + 1, Mode::Scalar);
            }
        }
        self.ptr_off.iter_mut().for_each(|o| *o = 0);
        self.acc_target = (0, None);
    }

    /// Bytes access `a` moves per `lanes` steps along `axis`.
    fn step(&self, a: usize, axis: usize, lanes: i64) -> i64 {
        let acc = &self.plan.access_data[a];
        let elt = self.kernel.args[acc.arg].dtype.size_bytes() as i64;
        acc.strides[axis] as i64 * elt * lanes
    }

    /// Whether the unrolled vector loop can ever run and its offsets fit the immediates.
    fn unroll_fits(&self, extent: usize, first: bool) -> bool {
        let axis = self.vector_axis();
        let n = (LANES as i64) * UNROLL;
        (first || extent >= n as usize)
            && (0..self.plan.accesses.len())
                .all(|a| self.step(a, axis, n).unsigned_abs() < (1 << 30))
    }

    fn single_loop(&mut self, j: usize, mode: Mode) {
        let width = if mode == Mode::Vector && j == self.plan.vloop {
            LANES
        } else {
            1
        };
        self.single_loop_n(j, mode, 1, width);
    }

    /// One loop over axis `j`, each iteration running `copies` copies of the body, each
    /// `width` points wide (a vector step or a single point), addressing through constant
    /// offsets; copy `u` accumulates into partial accumulator `u`.
    fn single_loop_n(&mut self, j: usize, mode: Mode, copies: usize, width: usize) {
        let spec = self.plan.loops[j];
        let first = j == 0 && self.plan.n_outer > 0;
        let header = self.b.create_block();
        let body = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(self.iv[j]);
        let lim = if first {
            self.end
        } else {
            self.b.ins().iconst(self.ptr_ty, spec.extent as i64)
        };
        let lanes = (copies * width) as i64;
        let cond = if lanes > 1 {
            let il = self.b.ins().iadd_imm_s(i, lanes);
            self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, il, lim)
        } else {
            self.b.ins().icmp(IntCC::UnsignedLessThan, i, lim)
        };
        self.b.ins().brif(cond, body, &[], exit, &[]);
        self.b.switch_to_block(body);
        self.b.seal_block(body);
        let vars = self.pv[j].clone();
        for (a, var) in vars.iter().enumerate() {
            if let Some(var) = var {
                self.ptr[a] = self.b.use_var(*var);
            }
        }
        let at_start = self.ptr.clone();
        for u in 0..copies {
            for (a, var) in vars.iter().enumerate() {
                if var.is_some() {
                    self.ptr_off[a] = self.step(a, spec.axis, (u * width) as i64);
                }
            }
            self.acc_target = (u, None);
            self.body(j + 1, mode);
        }
        self.ptr_off.iter_mut().for_each(|o| *o = 0);
        self.acc_target = (0, None);
        let inext = self.b.ins().iadd_imm_s(i, lanes);
        self.b.def_var(self.iv[j], inext);
        for (a, var) in vars.iter().enumerate() {
            if let Some(var) = var {
                let step = self.step(a, spec.axis, lanes);
                let p = self.b.ins().iadd_imm_s(at_start[a], step);
                self.b.def_var(*var, p);
            }
        }
        self.b.ins().jump(header, &[]);
        self.b.seal_block(header);
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
        self.ptr = at_start;
    }

    fn acc_var(&self, mode: Mode) -> Variable {
        match mode {
            Mode::Scalar => self.acc_scalar,
            Mode::Vector => self.acc_vector,
        }
        .expect("accumulator declared for reductions")
    }

    fn init_acc(&mut self, op: ReduceOp, value: usize, mode: Mode) {
        let d = self.plan.types[value];
        let identity = |b: &mut FunctionBuilder<'_>, t: Type| match (op, d) {
            (ReduceOp::Max, DType::I32) => iconst32(b, t, i32::MIN),
            (ReduceOp::Max, _) => fconst(b, t, f64::NEG_INFINITY),
            (_, DType::I32) => iconst32(b, t, 0),
            _ => fconst(b, t, 0.0),
        };
        if self.plan.partials > 1 {
            let part_mode = if self.plan.vector {
                Mode::Vector
            } else {
                Mode::Scalar
            };
            let t = self.ty(d, part_mode);
            let init = identity(&mut self.b, t);
            for var in self.acc_parts.clone() {
                self.b.def_var(var, init);
            }
            return;
        }
        let t = self.ty(d, mode);
        let init = identity(&mut self.b, t);
        let var = self.acc_var(mode);
        self.b.def_var(var, init);
    }

    /// `a ⊕ x` for the reduction's operation (the first operand wins max ties).
    fn reduce_op(&mut self, op: ReduceOp, d: DType, a: Value, x: Value) -> Value {
        match (op, d) {
            (ReduceOp::Max, DType::I32) => self.b.ins().smax(a, x),
            (ReduceOp::Max, _) => fmax_nan(&mut self.b, a, x, false, false),
            (_, DType::I32) => self.b.ins().iadd(a, x),
            _ => self.b.ins().fadd(a, x),
        }
    }

    fn accumulate(&mut self, mode: Mode) {
        let r = self
            .kernel
            .reduce
            .as_ref()
            .expect("accumulate in a reduction");
        let d = self.plan.types[r.value as usize];
        let x = self.get(r.value, mode);
        let var = if self.plan.partials > 1 {
            self.acc_parts[self.acc_target.0]
        } else {
            self.acc_var(mode)
        };
        let a = self.b.use_var(var);
        let y = match self.acc_target.1 {
            Some(lane) if self.plan.partials > 1 => {
                // One point of a vector kernel's tail, into its lane.
                let al = self.b.ins().extractlane(a, lane);
                let yl = self.reduce_op(r.op, d, al, x);
                self.b.ins().insertlane(a, yl, lane)
            }
            _ => self.reduce_op(r.op, d, a, x),
        };
        self.b.def_var(var, y);
    }

    /// Combines the partial accumulators into the scalar accumulator by halving (the
    /// vectors, then the lanes of the last one), as [`xenon_runtime::kernel::Reduction::combine`].
    fn combine_partials(&mut self, op: ReduceOp, value: usize) {
        let d = self.plan.types[value];
        let mut parts: Vec<Value> = self
            .acc_parts
            .clone()
            .into_iter()
            .map(|v| self.b.use_var(v))
            .collect();
        let halve = |e: &mut Self, parts: &mut Vec<Value>| {
            while parts.len() > 1 {
                let h = parts.len() / 2;
                for i in 0..h {
                    parts[i] = e.reduce_op(op, d, parts[i], parts[i + h]);
                }
                parts.truncate(h);
            }
            parts[0]
        };
        let mut x = halve(self, &mut parts);
        if self.plan.vector {
            let mut lanes: Vec<Value> = (0..LANES as u8)
                .map(|l| self.b.ins().extractlane(x, l))
                .collect();
            x = halve(self, &mut lanes);
        }
        let var = self
            .acc_scalar
            .expect("accumulator declared for reductions");
        self.b.def_var(var, x);
    }

    fn stores(&mut self, mode: Mode) {
        let nloads = self.plan.accesses.len() - self.kernel.stores.len();
        for (s, st) in self.kernel.stores.iter().enumerate() {
            let (p, off) = self.addr(nloads + s, 0);
            let x = self.get(st.value, mode);
            let flags = match mode {
                Mode::Scalar => Self::scalar_flags(),
                Mode::Vector => Self::vector_flags(),
            };
            self.b.ins().store(flags, x, p, off);
        }
    }

    /// Emits value `v` in `mode`.
    fn instr(&mut self, v: usize, mode: Mode) -> Value {
        let d = self.plan.types[v];
        let t = self.ty(d, mode);
        match *self.instrs[v] {
            Instr::Load(ref acc) => {
                let a = self.plan.load_access[v].expect("live loads have an access");
                let (p, off) = self.addr(a, 0);
                let st = scalar_ty(d);
                if mode == Mode::Vector {
                    match acc.strides[self.vector_axis()] {
                        0 => {
                            let s = self.b.ins().load(st, Self::scalar_flags(), p, off);
                            self.b.ins().splat(t, s)
                        }
                        1 => self.b.ins().load(t, Self::vector_flags(), p, off),
                        _ => {
                            // A gather (reductions only): one scalar load per lane.
                            let lane = self.step(a, self.vector_axis(), 1);
                            let s = self.b.ins().load(st, Self::scalar_flags(), p, off);
                            let mut x = self.b.ins().scalar_to_vector(t, s);
                            for l in 1..LANES as u8 {
                                let (p, off) = self.addr(a, i64::from(l) * lane);
                                let s = self.b.ins().load(st, Self::scalar_flags(), p, off);
                                x = self.b.ins().insertlane(x, s, l);
                            }
                            x
                        }
                    }
                } else {
                    self.b.ins().load(st, Self::scalar_flags(), p, off)
                }
            }
            Instr::Const { dtype, value } => {
                let s = match dtype {
                    DType::F32 => fconst(&mut self.b, types::F32, f64::from(value as f32)),
                    DType::F64 => self.b.ins().f64const(value),
                    DType::I32 => iconst32(&mut self.b, types::I32, value as i32),
                };
                if mode == Mode::Vector {
                    self.b.ins().splat(t, s)
                } else {
                    s
                }
            }
            Instr::Unary { func, a } => {
                let x = self.get(a, mode);
                self.unary(func, d, x)
            }
            Instr::Binary { func, a, b } => {
                let x = self.get(a, mode);
                let y = self.get(b, mode);
                let (xn, yn) = (self.num_const[a as usize], self.num_const[b as usize]);
                let bb = &mut self.b;
                match (func, d) {
                    (BinaryOp::Add, DType::I32) => bb.ins().iadd(x, y),
                    (BinaryOp::Sub, DType::I32) => bb.ins().isub(x, y),
                    (BinaryOp::Mul, DType::I32) => bb.ins().imul(x, y),
                    (BinaryOp::Max, DType::I32) => bb.ins().smax(x, y),
                    (BinaryOp::Min, DType::I32) => bb.ins().smin(x, y),
                    (BinaryOp::Add, _) => bb.ins().fadd(x, y),
                    (BinaryOp::Sub, _) => bb.ins().fsub(x, y),
                    (BinaryOp::Mul, _) => bb.ins().fmul(x, y),
                    (BinaryOp::Div, _) => bb.ins().fdiv(x, y),
                    (BinaryOp::Max, _) => fmax_nan(bb, x, y, xn, yn),
                    (BinaryOp::Min, _) => fmin_nan(bb, x, y, xn, yn),
                }
            }
            Instr::Compare { func, a, b } => {
                let x = self.get(a, mode);
                let y = self.get(b, mode);
                let m = if d == DType::I32 {
                    let cc = match func {
                        CompareOp::Lt => IntCC::SignedLessThan,
                        CompareOp::Le => IntCC::SignedLessThanOrEqual,
                        CompareOp::Gt => IntCC::SignedGreaterThan,
                        CompareOp::Ge => IntCC::SignedGreaterThanOrEqual,
                        CompareOp::Eq => IntCC::Equal,
                        CompareOp::Ne => IntCC::NotEqual,
                    };
                    icmp(&mut self.b, cc, x, y)
                } else {
                    let cc = match func {
                        CompareOp::Lt => FloatCC::LessThan,
                        CompareOp::Le => FloatCC::LessThanOrEqual,
                        CompareOp::Gt => FloatCC::GreaterThan,
                        CompareOp::Ge => FloatCC::GreaterThanOrEqual,
                        CompareOp::Eq => FloatCC::Equal,
                        // Unordered or not equal: true when either is NaN.
                        CompareOp::Ne => FloatCC::NotEqual,
                    };
                    fcmp(&mut self.b, cc, x, y)
                };
                mask_to_01(&mut self.b, m, t)
            }
            Instr::Select { cond, a, b } => {
                let c = self.get(cond, mode);
                let x = self.get(a, mode);
                let y = self.get(b, mode);
                let m = nonzero(&mut self.b, c);
                sel(&mut self.b, m, x, y)
            }
            Instr::Cast { to, a } => {
                let from = self.plan.types[a as usize];
                let x = self.get(a, mode);
                let bb = &mut self.b;
                match (from, to) {
                    (f, t2) if f == t2 => x,
                    (DType::F32, DType::F64) => bb.ins().fpromote(t, x),
                    (DType::F64, DType::F32) => bb.ins().fdemote(t, x),
                    (_, DType::I32) => bb.ins().fcvt_to_sint_sat(t, x),
                    (DType::I32, _) => bb.ins().fcvt_from_sint(t, x),
                    _ => unreachable!("all dtype pairs are covered"),
                }
            }
            Instr::Accumulator => {
                let var = self.acc_var(mode);
                self.b.use_var(var)
            }
        }
    }

    fn unary(&mut self, func: UnaryOp, d: DType, x: Value) -> Value {
        let fma = self.fma;
        let b = &mut self.b;
        if d == DType::I32 {
            return match func {
                UnaryOp::Neg => b.ins().ineg(x),
                UnaryOp::Abs => b.ins().iabs(x),
                // Validation rejects the float-only ops on i32.
                _ => isign(b, x),
            };
        }
        let libcall = |b: &mut FunctionBuilder<'_>, f: Option<FuncRef>| {
            let f = f.expect("f64 math functions are declared when used");
            let call = b.ins().call(f, &[x]);
            b.inst_results(call)[0]
        };
        match func {
            UnaryOp::Neg => b.ins().fneg(x),
            UnaryOp::Abs => b.ins().fabs(x),
            UnaryOp::Sign => fsign(b, x),
            UnaryOp::Sqrt => b.ins().sqrt(x),
            UnaryOp::Recip => {
                let t = b.func.dfg.value_type(x);
                let one = fconst(b, t, 1.0);
                b.ins().fdiv(one, x)
            }
            UnaryOp::Exp if d == DType::F64 => libcall(b, self.libm.exp),
            UnaryOp::Log if d == DType::F64 => libcall(b, self.libm.log),
            UnaryOp::Tanh if d == DType::F64 => libcall(b, self.libm.tanh),
            UnaryOp::Exp => math::exp_f32(b, fma, x),
            UnaryOp::Log => math::log_f32(b, fma, x),
            UnaryOp::Tanh => math::tanh_f32(b, fma, x),
        }
    }
}
