//! What the emitter needs to know about a kernel before generating code: the loop nest,
//! which values are live, the loop level every value is computed at (hoisting), and
//! whether the innermost outer loop can be vectorized.

use xenon_runtime::DType;
use xenon_runtime::kernel::{Access, Instr, LoopKernel};

/// Lanes of a vector (`f32x4`, `i32x4`).
pub(super) const LANES: usize = 4;

/// One loop of the nest.
#[derive(Clone, Copy, Debug)]
pub(super) struct LoopSpec {
    /// The iteration axis.
    pub axis: usize,
    /// Its extent.
    pub extent: usize,
}

/// A memory access of the kernel: a live load (by value number) or a store (by index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AccessRef {
    Load(usize),
    Store(usize),
}

/// The analysis of one validated kernel.
#[derive(Debug)]
pub(super) struct Plan {
    /// The dtype of every value.
    pub types: Vec<DType>,
    /// Values that contribute to a store (or to the reduction).
    pub live: Vec<bool>,
    /// The loop level a value is computed at: 0 = once per call, `j + 1` = inside loop `j`.
    pub level: Vec<usize>,
    /// Values that depend on the reduction's accumulator (computed after the reduction).
    pub acc_dep: Vec<bool>,
    /// Values computed at a level below the vector loop that vector code uses (they are
    /// splatted once where they are computed).
    pub needs_splat: Vec<bool>,
    /// The loops, outermost first: the outer axes, then the reduced axes.
    pub loops: Vec<LoopSpec>,
    /// Number of outer loops (`k`); the point level is `k`.
    pub n_outer: usize,
    /// True when loop [`Plan::vloop`] runs 4 points at a time (then a scalar tail).
    pub vector: bool,
    /// The loop that is vectorized when [`Plan::vector`] is set: the innermost outer loop,
    /// or, for a reduction with partial accumulators, the innermost reduced loop.
    pub vloop: usize,
    /// The reduction's partial accumulators (1 when it has none, or is no reduction).
    pub partials: usize,
    /// Every live access, loads (in value order) then stores.
    pub accesses: Vec<AccessRef>,
    /// The access data of each entry of `accesses`.
    pub access_data: Vec<Access>,
    /// Index into `accesses` for each value (loads only).
    pub load_access: Vec<Option<usize>>,
}

/// True when a store of the kernel writes the buffer of argument `arg`.
fn writes_buffer(kernel: &LoopKernel, arg: usize) -> bool {
    let buf = kernel.args[arg].buffer;
    kernel
        .stores
        .iter()
        .any(|s| kernel.args[s.access.arg].buffer == buf)
}

impl Plan {
    /// Analyses a kernel that passed [`LoopKernel::validate`] (`types` from
    /// [`LoopKernel::value_types`]). `vectorize` allows the vector loop.
    pub fn new(kernel: &LoopKernel, types: Vec<DType>, vectorize: bool) -> Plan {
        let nbody = kernel.body.len();
        let instrs: Vec<&Instr> = kernel.instrs().collect();
        let n = instrs.len();
        let outer = kernel.outer_axes();
        let reduced: Vec<usize> = kernel
            .reduce
            .as_ref()
            .map_or(Vec::new(), |r| r.axes.clone());
        let k = outer.len();
        let loops: Vec<LoopSpec> = outer
            .iter()
            .chain(reduced.iter())
            .map(|&axis| LoopSpec {
                axis,
                extent: kernel.shape[axis],
            })
            .collect();

        // Liveness: stores, the reduced value, and everything they use.
        let mut live = vec![false; n];
        let mut stack: Vec<usize> = kernel.stores.iter().map(|s| s.value as usize).collect();
        if let Some(r) = &kernel.reduce {
            stack.push(r.value as usize);
        }
        while let Some(v) = stack.pop() {
            if live[v] {
                continue;
            }
            live[v] = true;
            stack.extend(operands(instrs[v]));
        }

        // Levels and accumulator dependence.
        let level_of_access = |a: &Access| -> usize {
            loops
                .iter()
                .enumerate()
                .filter(|(_, l)| a.strides[l.axis] != 0)
                .map(|(j, _)| j + 1)
                .max()
                .unwrap_or(0)
        };
        let mut level = vec![0usize; n];
        let mut acc_dep = vec![false; n];
        for (v, ins) in instrs.iter().enumerate() {
            let (lv, dep) = match ins {
                Instr::Load(a) => {
                    let mut l = level_of_access(a);
                    if writes_buffer(kernel, a.arg) {
                        // A buffer the kernel writes is read at the point level, never
                        // hoisted above other points' stores.
                        l = l.max(k);
                    }
                    (l, false)
                }
                Instr::Const { .. } => (0, false),
                Instr::Accumulator => (k, true),
                other => operands(other)
                    .into_iter()
                    .fold((0, false), |(l, d), o| (l.max(level[o]), d || acc_dep[o])),
            };
            level[v] = lv;
            acc_dep[v] = dep;
        }
        debug_assert!((0..nbody).all(|v| !acc_dep[v]));

        // Accesses.
        let mut accesses = Vec::new();
        let mut load_access = vec![None; n];
        for (v, ins) in instrs.iter().enumerate() {
            if live[v] && matches!(ins, Instr::Load(_)) {
                load_access[v] = Some(accesses.len());
                accesses.push(AccessRef::Load(v));
            }
        }
        for s in 0..kernel.stores.len() {
            accesses.push(AccessRef::Store(s));
        }
        let access_data = accesses
            .iter()
            .map(|a| match *a {
                AccessRef::Load(v) => match instrs[v] {
                    Instr::Load(acc) => acc.clone(),
                    _ => unreachable!("load accesses refer to loads"),
                },
                AccessRef::Store(s) => kernel.stores[s].access.clone(),
            })
            .collect();

        let partials = kernel
            .reduce
            .as_ref()
            .map_or(1, |r| r.partials.max(1) as usize);
        let vloop = if partials > 1 {
            loops.len() - 1
        } else {
            k.saturating_sub(1)
        };
        let mut plan = Plan {
            types,
            live,
            level,
            acc_dep,
            needs_splat: vec![false; n],
            loops,
            n_outer: k,
            vector: false,
            vloop,
            partials,
            accesses,
            access_data,
            load_access,
        };
        plan.vector = vectorize
            && if partials > 1 {
                partials >= LANES && plan.can_vectorize_partials(kernel, &instrs)
            } else {
                plan.can_vectorize(kernel, &instrs)
            };
        if plan.vector {
            // Values computed outside the vector loop that vector code uses.
            let vlevel = plan.vloop + 1;
            let mut uses: Vec<usize> = Vec::new();
            if partials == 1 {
                uses.extend(kernel.stores.iter().map(|s| s.value as usize));
            }
            if let Some(r) = &kernel.reduce {
                uses.push(r.value as usize);
            }
            for (v, ins) in instrs.iter().enumerate() {
                if plan.live[v] && plan.level[v] >= vlevel {
                    uses.extend(operands(ins));
                }
            }
            for u in uses {
                if plan.level[u] < vlevel {
                    plan.needs_splat[u] = true;
                }
            }
        }
        plan
    }

    /// Whether a reduction with partial accumulators can run its innermost reduced loop
    /// four points at a time, lane `l` of vector accumulator `b` being partial `4b + l`:
    /// every live value is 32-bit and every live load is splatted, contiguous or gathered
    /// (within a 32-bit byte offset for the four lanes) along that loop's axis.
    fn can_vectorize_partials(&self, kernel: &LoopKernel, instrs: &[&Instr]) -> bool {
        let vaxis = self.loops[self.vloop].axis;
        let narrow = self
            .live
            .iter()
            .zip(&self.types)
            .all(|(l, t)| !*l || *t != DType::F64);
        narrow
            && instrs.iter().enumerate().all(|(v, ins)| match ins {
                Instr::Load(a) if self.live[v] => {
                    let elt = kernel.args[a.arg].dtype.size_bytes() as i64;
                    (a.strides[vaxis] as i64 * elt * LANES as i64).unsigned_abs() < 1 << 30
                }
                _ => true,
            })
    }

    /// Whether loop `n_outer - 1` can run four points at a time with results identical to
    /// the sequential loop (see the module docs of [`super`]).
    fn can_vectorize(&self, kernel: &LoopKernel, instrs: &[&Instr]) -> bool {
        let k = self.n_outer;
        if k == 0 {
            return false;
        }
        let vaxis = self.loops[k - 1].axis;
        // Short inner axes (other than the first, split, axis) would only run the tail.
        if k > 1 && self.loops[k - 1].extent < 4 {
            return false;
        }
        // 32-bit values only (f32x4 / i32x4 lanes).
        let live_types = self
            .live
            .iter()
            .zip(&self.types)
            .filter(|(l, _)| **l)
            .map(|(_, t)| *t);
        if live_types.clone().any(|t| t == DType::F64) {
            return false;
        }
        // Casts to or from f64 would need other lane counts (already excluded above, as
        // every cast's operand and result are live values).
        let stores_ok = kernel.stores.iter().all(|s| s.access.strides[vaxis] == 1);
        if !stores_ok {
            return false;
        }
        // Loads are splatted (stride 0) or contiguous (stride 1) along the vector axis; a
        // reduction may also gather its lanes (rows of a row-wise reduction, each lane
        // still reduced in sequential order), the gather paying for itself across the
        // reduced loop.
        let gather = kernel.reduce.is_some();
        let loads_ok = instrs.iter().enumerate().all(|(v, ins)| match ins {
            Instr::Load(a) if self.live[v] => {
                let elt = kernel.args[a.arg].dtype.size_bytes() as i64;
                matches!(a.strides[vaxis], 0 | 1)
                    || (gather && (a.strides[vaxis] as i64 * elt * 4).unsigned_abs() < 1 << 30)
            }
            _ => true,
        });
        if !loads_ok {
            return false;
        }
        // A buffer the kernel writes must be accessed through one single access pattern,
        // so that the four points of a vector step touch four distinct elements and no
        // point reads what another point of the same step writes.
        for s in &kernel.stores {
            let buf = kernel.args[s.access.arg].buffer;
            let same = |a: &Access| a.offset == s.access.offset && a.strides == s.access.strides;
            for t in &kernel.stores {
                if kernel.args[t.access.arg].buffer == buf && !same(&t.access) {
                    return false;
                }
            }
            for (v, ins) in instrs.iter().enumerate() {
                if let Instr::Load(a) = ins
                    && self.live[v]
                    && kernel.args[a.arg].buffer == buf
                    && !same(a)
                {
                    return false;
                }
            }
        }
        true
    }
}

/// The values an instruction reads.
pub(super) fn operands(ins: &Instr) -> Vec<usize> {
    match ins {
        Instr::Load(_) | Instr::Const { .. } | Instr::Accumulator => vec![],
        Instr::Unary { a, .. } | Instr::Cast { a, .. } => vec![*a as usize],
        Instr::Binary { a, b, .. } | Instr::Compare { a, b, .. } => vec![*a as usize, *b as usize],
        Instr::Select { cond, a, b } => vec![*cond as usize, *a as usize, *b as usize],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xenon_runtime::kernel::{KernelArg, Reduction, Store};
    use xenon_runtime::ops::{BinaryOp, ReduceOp};

    fn acc(arg: usize, strides: &[isize]) -> Access {
        Access {
            arg,
            offset: 0,
            strides: strides.to_vec(),
        }
    }

    fn arg(buffer: usize, dtype: DType, len: usize) -> KernelArg {
        KernelArg { buffer, dtype, len }
    }

    /// `out[i, j] = x[x_strides] + y[i, j]` over `[4, 8]`.
    fn add_kernel(x_strides: &[isize], dtype: DType) -> LoopKernel {
        LoopKernel {
            name: "add".into(),
            shape: vec![4, 8],
            args: vec![arg(0, dtype, 64), arg(1, dtype, 32), arg(2, dtype, 32)],
            body: vec![
                Instr::Load(acc(0, x_strides)),
                Instr::Load(acc(1, &[8, 1])),
                Instr::Binary {
                    func: BinaryOp::Add,
                    a: 0,
                    b: 1,
                },
            ],
            reduce: None,
            stores: vec![Store {
                access: acc(2, &[8, 1]),
                value: 2,
            }],
        }
    }

    fn plan(k: &LoopKernel) -> Plan {
        k.validate().unwrap();
        Plan::new(k, k.value_types().unwrap(), true)
    }

    #[test]
    fn contiguous_and_broadcast_loads_vectorize() {
        assert!(plan(&add_kernel(&[8, 1], DType::F32)).vector);
        assert!(plan(&add_kernel(&[0, 1], DType::I32)).vector);
        let p = plan(&add_kernel(&[1, 0], DType::F32));
        assert!(p.vector);
        // x[i] is hoisted to the outer loop and splatted there.
        assert_eq!(p.level[0], 1);
        assert!(p.needs_splat[0]);
        assert_eq!(p.level[2], 2);
    }

    #[test]
    fn transposed_strided_and_f64_kernels_stay_scalar() {
        assert!(!plan(&add_kernel(&[1, 4], DType::F32)).vector);
        assert!(!plan(&add_kernel(&[16, 2], DType::F32)).vector);
        assert!(!plan(&add_kernel(&[8, 1], DType::F64)).vector);
        let k = add_kernel(&[8, 1], DType::F32);
        assert!(!Plan::new(&k, k.value_types().unwrap(), false).vector);
    }

    #[test]
    fn written_buffers_need_one_access_pattern() {
        // In place through the same access: fine.
        let mut k = add_kernel(&[8, 1], DType::F32);
        k.stores[0].access.arg = 0;
        k.args[0].len = 32;
        let p = plan(&k);
        assert!(p.vector);
        // A load of the written buffer stays at the point level.
        assert_eq!(p.level[0], 2);
        // Reading the written buffer shifted by one element: scalar.
        let mut k2 = k.clone();
        k2.body[0] = Instr::Load(Access {
            arg: 0,
            offset: 1,
            strides: vec![8, 1],
        });
        k2.args[0].len = 40;
        assert!(!plan(&k2).vector);
        // Two args of the same buffer count as the same memory: the same pattern is
        // fine, a shifted one is not.
        let mut k3 = add_kernel(&[8, 1], DType::F32);
        k3.args[2].buffer = 1;
        assert!(plan(&k3).vector);
        k3.body[1] = Instr::Load(Access {
            arg: 1,
            offset: 1,
            strides: vec![8, 1],
        });
        k3.args[1].len = 40;
        assert!(!plan(&k3).vector);
    }

    #[test]
    fn reductions_vectorize_over_the_innermost_outer_axis_only() {
        // Column sums of [16, 8] (reduce axis 0): lanes are output columns.
        let col = LoopKernel {
            name: "colsum".into(),
            shape: vec![16, 8],
            args: vec![arg(0, DType::F32, 128), arg(1, DType::F32, 8)],
            body: vec![Instr::Load(acc(0, &[8, 1]))],
            reduce: Some(Reduction {
                op: ReduceOp::Sum,
                axes: vec![0],
                value: 0,
                post: vec![Instr::Accumulator],
                partials: 1,
            }),
            stores: vec![Store {
                access: acc(1, &[0, 1]),
                value: 1,
            }],
        };
        let p = plan(&col);
        assert!(p.vector);
        assert_eq!(p.n_outer, 1);
        assert_eq!(p.loops[0].axis, 1);
        assert_eq!(p.loops[1].axis, 0);
        assert_eq!(p.level[0], 2);
        assert!(p.acc_dep[1]);
        // Row sums (reduce the contiguous axis): lanes are rows, gathered (each row still
        // summed in sequential order).
        let mut row = col.clone();
        row.reduce.as_mut().unwrap().axes = vec![1];
        row.args[1].len = 16;
        row.stores[0].access.strides = vec![1, 0];
        let p = plan(&row);
        assert!(p.vector);
        assert_eq!(p.loops[0].axis, 0);
        // Elementwise kernels do not gather: a transposing copy stays scalar.
        let mut copy = col.clone();
        copy.reduce = None;
        copy.args[1].len = 128;
        copy.stores[0] = Store {
            access: acc(1, &[1, 16]),
            value: 0,
        };
        assert!(!plan(&copy).vector);
    }

    #[test]
    fn dead_values_are_not_live() {
        let mut k = add_kernel(&[8, 1], DType::F32);
        k.body.push(Instr::Load(acc(1, &[8, 1])));
        let p = plan(&k);
        assert!(p.live[..3].iter().all(|&l| l));
        assert!(!p.live[3]);
        assert_eq!(p.accesses.len(), 3);
    }
}
