//! The reference semantics of a [`LoopKernel`]: a plain scalar evaluator.

use super::{Instr, LoopKernel};
use crate::ops::ReduceOp;
pub use crate::ops::Scalar;

/// Memory a kernel runs on: element access per kernel argument.
pub trait Memory {
    /// Element `index` of argument `arg`.
    fn load(&self, arg: usize, index: usize) -> Scalar;
    /// Writes element `index` of argument `arg`.
    fn store(&mut self, arg: usize, index: usize, value: Scalar);
}

/// Host tensors as kernel memory: argument `i` is `data[i]`. (Writes of the wrong dtype
/// are converted with [`Scalar::get`].)
impl Memory for [crate::TensorData] {
    fn load(&self, arg: usize, index: usize) -> Scalar {
        match &self[arg] {
            crate::TensorData::F32(v) => Scalar::F32(v[index]),
            crate::TensorData::F64(v) => Scalar::F64(v[index]),
            crate::TensorData::I32(v) => Scalar::I32(v[index]),
        }
    }
    fn store(&mut self, arg: usize, index: usize, value: Scalar) {
        match &mut self[arg] {
            crate::TensorData::F32(v) => v[index] = value.get(),
            crate::TensorData::F64(v) => v[index] = value.get(),
            crate::TensorData::I32(v) => v[index] = value.get(),
        }
    }
}

/// Runs `kernel` for first-outer-axis indices `range` (see the module docs of
/// [`super`]). The kernel must have passed [`LoopKernel::validate`] against the memory's
/// buffer lengths; out-of-range accesses panic here (this evaluator is the oracle, not the
/// safety boundary).
pub fn eval<M: Memory + ?Sized>(kernel: &LoopKernel, mem: &mut M, range: std::ops::Range<usize>) {
    let rank = kernel.shape.len();
    let outer = kernel.outer_axes();
    let reduced: Vec<usize> = kernel
        .reduce
        .as_ref()
        .map_or(Vec::new(), |r| r.axes.clone());
    let mut point = vec![0usize; rank];
    let mut values: Vec<Scalar> = Vec::with_capacity(kernel.body.len() + 8);
    let index = |a: &super::Access, p: &[usize]| -> usize {
        let mut i = a.offset as isize;
        for (d, &s) in a.strides.iter().enumerate() {
            i += s * p[d] as isize;
        }
        i as usize
    };
    let run =
        |instrs: &[Instr], values: &mut Vec<Scalar>, mem: &M, p: &[usize], acc: Option<Scalar>| {
            for ins in instrs {
                let v = |k: &u32| values[*k as usize];
                let r = match ins {
                    Instr::Load(a) => mem.load(a.arg, index(a, p)),
                    Instr::Const { dtype, value } => Scalar::from_f64(*dtype, *value),
                    Instr::Unary { func, a } => v(a).unary(*func).expect("validated kernel"),
                    Instr::Binary { func, a, b } => {
                        v(a).binary(*func, v(b)).expect("validated kernel")
                    }
                    Instr::Compare { func, a, b } => {
                        v(a).compare(*func, v(b)).expect("validated kernel")
                    }
                    Instr::Select { cond, a, b } => {
                        if v(cond).is_nonzero() {
                            v(a)
                        } else {
                            v(b)
                        }
                    }
                    Instr::Cast { to, a } => v(a).cast(*to),
                    Instr::Accumulator => acc.expect("accumulator in post"),
                };
                values.push(r);
            }
        };
    // Iterate the outer points with the first outer axis restricted to `range`.
    let outer_ext: Vec<usize> = outer.iter().map(|&a| kernel.shape[a]).collect();
    let reduced_ext: Vec<usize> = reduced.iter().map(|&a| kernel.shape[a]).collect();
    let mut o = vec![0usize; outer.len()];
    if let Some(first) = o.first_mut() {
        *first = range.start;
    }
    let outer_done = |o: &[usize]| !o.is_empty() && o[0] >= range.end;
    if outer.is_empty() && range.is_empty() {
        return;
    }
    loop {
        if outer_done(&o) {
            break;
        }
        for (k, &a) in outer.iter().enumerate() {
            point[a] = o[k];
        }
        values.clear();
        match &kernel.reduce {
            None => run(&kernel.body, &mut values, mem, &point, None),
            Some(r) => {
                // One accumulator per partial (see the module docs of `super`); sums
                // start at +0 (so that a single -0.0 sums to +0.0), max at its identity;
                // `validate` rejects mean reductions (a mean is a sum and a scale in
                // `post`).
                let parts = r.partials.max(1) as usize;
                let mut partial: Vec<Option<Scalar>> = vec![None; parts];
                let mut ri = vec![0usize; reduced.len()];
                let step = |a: Scalar, x: Scalar| match r.op {
                    ReduceOp::Mean => unreachable_mean(),
                    op => a.accumulate(op, x).expect("same dtype"),
                };
                loop {
                    for (k, &a) in reduced.iter().enumerate() {
                        point[a] = ri[k];
                    }
                    values.clear();
                    run(&kernel.body, &mut values, mem, &point, None);
                    let x = values[r.value as usize];
                    let slot = &mut partial[ri.last().map_or(0, |j| j % parts)];
                    let a = slot.unwrap_or_else(|| Scalar::identity(r.op, x.dtype()));
                    *slot = Some(step(a, x));
                    if !advance(&mut ri, &reduced_ext) {
                        break;
                    }
                }
                let dtype = partial[0].expect("every kernel axis is non-empty").dtype();
                let mut partial: Vec<Scalar> = partial
                    .into_iter()
                    .map(|p| p.unwrap_or_else(|| Scalar::identity(r.op, dtype)))
                    .collect();
                let acc = Some(super::Reduction::combine(&mut partial, step));
                // Post may use body values that do not vary along the reduced axes:
                // evaluate the body once more at reduced coordinates 0.
                for &a in &reduced {
                    point[a] = 0;
                }
                values.clear();
                run(&kernel.body, &mut values, mem, &point, None);
                run(&r.post, &mut values, mem, &point, acc);
            }
        }
        for s in &kernel.stores {
            let i = index(&s.access, &point);
            mem.store(s.access.arg, i, values[s.value as usize]);
        }
        if outer.is_empty() || !advance(&mut o, &outer_ext) {
            break;
        }
    }
}

/// Row-major increment of a multi-index; false when it wraps around completely.
fn advance(idx: &mut [usize], ext: &[usize]) -> bool {
    for d in (0..idx.len()).rev() {
        idx[d] += 1;
        if idx[d] < ext[d] {
            return true;
        }
        idx[d] = 0;
    }
    false
}

#[cold]
fn unreachable_mean() -> Scalar {
    // `validate` rejects mean reductions (a mean is a sum and a scale in `post`).
    Scalar::F64(f64::NAN)
}
