//! Loop-nest tuning of finished kernels: adjacent axes that every access walks as one are
//! merged, and reductions over a contiguous innermost axis get partial accumulators.
//!
//! Both change only how a kernel iterates, never what an elementwise kernel computes:
//! merging two adjacent axes keeps the row-major order of the points, and partial
//! accumulators give a reduction the (exactly defined) order of
//! [`xenon_runtime::kernel::Reduction::partials`], which a vector unit computes without
//! gathering.

use xenon_runtime::DType;
use xenon_runtime::kernel::{Access, Instr, LoopKernel};
use xenon_runtime::ops::ReduceOp;

/// Partial accumulators given to a reduction over a contiguous innermost axis: four
/// vectors of four lanes, enough independent additions to hide the adder's latency.
pub const PARTIALS: u32 = 16;

/// Merges each pair of adjacent iteration axes `d, d + 1` that are both outer or both
/// reduced and that every access walks as one axis (`stride[d] = stride[d + 1]·extent[d +
/// 1]`): the kernel then runs longer inner loops (the CPU backend vectorizes them, the
/// OpenCL backend finds a multiple of its vector width more often).
pub fn coalesce_axes(k: &mut LoopKernel) {
    let mut d = k.shape.len().saturating_sub(1);
    while d > 0 {
        d -= 1;
        if mergeable(k, d) {
            merge(k, d);
        }
    }
}

/// Every access of the kernel, mutably (loads of the body and the post, stores).
fn accesses_mut(k: &mut LoopKernel) -> impl Iterator<Item = &mut Access> {
    let post = k.reduce.iter_mut().flat_map(|r| r.post.iter_mut());
    k.body
        .iter_mut()
        .chain(post)
        .filter_map(|i| match i {
            Instr::Load(a) => Some(a),
            _ => None,
        })
        .chain(k.stores.iter_mut().map(|s| &mut s.access))
}

fn accesses(k: &LoopKernel) -> impl Iterator<Item = &Access> {
    k.instrs()
        .filter_map(|i| match i {
            Instr::Load(a) => Some(a),
            _ => None,
        })
        .chain(k.stores.iter().map(|s| &s.access))
}

fn mergeable(k: &LoopKernel, d: usize) -> bool {
    let reduced = |a: usize| k.reduce.as_ref().is_some_and(|r| r.axes.contains(&a));
    if reduced(d) != reduced(d + 1) {
        return false;
    }
    let inner = k.shape[d + 1] as isize;
    accesses(k).all(|a| a.strides[d + 1].checked_mul(inner) == Some(a.strides[d]))
        && k.shape[d].checked_mul(k.shape[d + 1]).is_some()
}

fn merge(k: &mut LoopKernel, d: usize) {
    k.shape[d] *= k.shape[d + 1];
    k.shape.remove(d + 1);
    for a in accesses_mut(k) {
        a.strides[d] = a.strides[d + 1];
        a.strides.remove(d + 1);
    }
    if let Some(r) = &mut k.reduce {
        r.axes.retain(|&a| a != d + 1);
        for a in &mut r.axes {
            if *a > d + 1 {
                *a -= 1;
            }
        }
    }
}

/// Gives a float sum or max [`PARTIALS`] partial accumulators when its innermost reduced
/// axis has at least that many points and every load is contiguous (or constant) along it:
/// the CPU backend then adds whole vectors instead of gathering one lane per output point
/// and waiting on one long chain of additions.
pub fn choose_partials(k: &mut LoopKernel) {
    let Ok(types) = k.value_types() else {
        return;
    };
    let Some(r) = &k.reduce else {
        return;
    };
    let Some(&last) = r.axes.last() else {
        return;
    };
    let float = types[r.value as usize] == DType::F32;
    let mut strides = k.body.iter().filter_map(|i| match i {
        Instr::Load(a) => Some(a.strides[last]),
        _ => None,
    });
    let contiguous = strides.clone().any(|s| s == 1) && strides.all(|s| s == 0 || s == 1);
    if float
        && matches!(r.op, ReduceOp::Sum | ReduceOp::Max)
        && k.shape[last] >= PARTIALS as usize
        && contiguous
        && let Some(r) = &mut k.reduce
    {
        r.partials = PARTIALS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xenon_runtime::kernel::{KernelArg, Reduction, Store};

    fn access(arg: usize, strides: &[isize]) -> Access {
        Access {
            arg,
            offset: 0,
            strides: strides.to_vec(),
        }
    }

    /// `out[c] = Σ_{b,h,w} x[b, c, h, w]` over `[2, 3, 4, 20]`.
    fn channel_sum() -> LoopKernel {
        LoopKernel {
            name: "channel_sum".into(),
            shape: vec![2, 3, 4, 20],
            args: vec![
                KernelArg {
                    buffer: 0,
                    dtype: DType::F32,
                    len: 480,
                },
                KernelArg {
                    buffer: 1,
                    dtype: DType::F32,
                    len: 3,
                },
            ],
            body: vec![Instr::Load(access(0, &[240, 80, 20, 1]))],
            reduce: Some(Reduction {
                op: ReduceOp::Sum,
                axes: vec![0, 2, 3],
                value: 0,
                post: vec![Instr::Accumulator],
                partials: 1,
            }),
            stores: vec![Store {
                access: access(1, &[0, 1, 0, 0]),
                value: 1,
            }],
        }
    }

    #[test]
    fn adjacent_axes_walked_as_one_merge() {
        let mut k = channel_sum();
        coalesce_axes(&mut k);
        k.validate().unwrap();
        assert_eq!(k.shape, vec![2, 3, 80]);
        assert_eq!(k.reduce.as_ref().unwrap().axes, vec![0, 2]);
        assert_eq!(k.body[0], Instr::Load(access(0, &[240, 80, 1])));
        assert_eq!(k.stores[0].access.strides, vec![0, 1, 0]);
        choose_partials(&mut k);
        assert_eq!(k.reduce.as_ref().unwrap().partials, PARTIALS);
    }

    #[test]
    fn outer_and_reduced_axes_never_merge() {
        // Reduce over [2, 3] only: the outer axes 0, 1 merge, the reduced ones merge, the
        // two groups stay apart although the load walks all four as one.
        let mut k = channel_sum();
        k.reduce.as_mut().unwrap().axes = vec![2, 3];
        k.args[1].len = 6;
        k.stores[0].access.strides = vec![3, 1, 0, 0];
        coalesce_axes(&mut k);
        k.validate().unwrap();
        assert_eq!(k.shape, vec![6, 80]);
        assert_eq!(k.reduce.as_ref().unwrap().axes, vec![1]);
    }

    #[test]
    fn short_or_strided_reductions_keep_one_accumulator() {
        let mut k = channel_sum();
        k.shape = vec![2, 3, 20, 4];
        k.body[0] = Instr::Load(access(0, &[240, 80, 1, 20]));
        coalesce_axes(&mut k);
        choose_partials(&mut k);
        assert_eq!(k.shape, vec![2, 3, 20, 4]);
        assert_eq!(k.reduce.as_ref().unwrap().partials, 1);
    }
}
