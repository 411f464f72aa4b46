//! One vector-Jacobian-product rule per primitive op.
//!
//! Each rule receives the node `y = op(x…)`, its operands and the adjoint `ȳ` (same type
//! as `y`) and returns, for each operand it was asked about, a node holding that operand's
//! contribution `x̄` (same type as the operand). Notation below: `g` = `ȳ`.

use crate::ir::{BinaryOp, CompareOp, Graph, GraphError, NodeId, Op, ReduceOp, UnaryOp};

type Result<T> = std::result::Result<T, GraphError>;

/// The adjoint contributions of `id`'s operands (`None` where `want` is false or the op
/// passes no gradient to that operand).
pub fn vjp(
    g: &mut Graph,
    id: NodeId,
    operands: &[NodeId],
    grad: NodeId,
    want: &[bool],
) -> Result<Vec<Option<NodeId>>> {
    let op = g.node(id).op.clone();
    let y = id;
    let ty = g.ty(id).clone();
    let x = |i: usize| operands[i];
    let gr = grad;
    let one =
        |g: &mut Graph, f: &dyn Fn(&mut Graph) -> Result<NodeId>| -> Result<Vec<Option<NodeId>>> {
            Ok(vec![if want[0] { Some(f(g)?) } else { None }])
        };
    match op {
        Op::Input { .. }
        | Op::Parameter { .. }
        | Op::Constant { .. }
        | Op::RandomUniform { .. }
        | Op::RandomNormal { .. }
        | Op::Compare { .. }
        | Op::ArgMax { .. } => Ok(vec![None; operands.len()]),

        Op::Unary { func } => match func {
            // d(-x) = -g
            UnaryOp::Neg => one(g, &|g| g.neg(gr)),
            // d|x| = g·sign(x)  (0 at x = 0)
            UnaryOp::Abs => one(g, &|g| {
                let s = g.sign(x(0))?;
                g.mul(gr, s)
            }),
            // sign is piecewise constant
            UnaryOp::Sign => Ok(vec![None]),
            // d eˣ = g·y
            UnaryOp::Exp => one(g, &|g| g.mul(gr, y)),
            // d ln x = g/x
            UnaryOp::Log => one(g, &|g| g.div(gr, x(0))),
            // d √x = g/(2y)
            UnaryOp::Sqrt => one(g, &|g| {
                let two = g.scalar(ty.dtype, 2.0)?;
                let d = g.mul(y, two)?;
                g.div(gr, d)
            }),
            // d (1/x) = -g·y²
            UnaryOp::Recip => one(g, &|g| {
                let yy = g.mul(y, y)?;
                let t = g.mul(gr, yy)?;
                g.neg(t)
            }),
            // d tanh x = g·(1 − y²)
            UnaryOp::Tanh => one(g, &|g| {
                let yy = g.mul(y, y)?;
                let o = g.scalar(ty.dtype, 1.0)?;
                let d = g.sub(o, yy)?;
                g.mul(gr, d)
            }),
        },

        Op::Binary { func } => {
            let (a, b) = (x(0), x(1));
            let mut out = vec![None, None];
            match func {
                BinaryOp::Add => {
                    out = vec![Some(gr), Some(gr)];
                }
                BinaryOp::Sub => {
                    out[0] = Some(gr);
                    if want[1] {
                        out[1] = Some(g.neg(gr)?);
                    }
                }
                BinaryOp::Mul => {
                    if want[0] {
                        out[0] = Some(g.mul(gr, b)?);
                    }
                    if want[1] {
                        out[1] = Some(g.mul(gr, a)?);
                    }
                }
                // d(a/b) = g/b, −g·y/b
                BinaryOp::Div => {
                    if want[0] {
                        out[0] = Some(g.div(gr, b)?);
                    }
                    if want[1] {
                        let t = g.mul(gr, y)?;
                        let t = g.div(t, b)?;
                        out[1] = Some(g.neg(t)?);
                    }
                }
                // The gradient goes to `a` where a ≥ b (ties go to a), else to `b`.
                BinaryOp::Max => {
                    let m = g.compare(CompareOp::Ge, a, b)?;
                    out = route(g, m, gr, want)?;
                }
                // The gradient goes to `a` where a ≤ b (ties go to a), else to `b`.
                BinaryOp::Min => {
                    let m = g.compare(CompareOp::Le, a, b)?;
                    out = route(g, m, gr, want)?;
                }
            }
            for (o, w) in out.iter_mut().zip(want) {
                if !w {
                    *o = None;
                }
            }
            Ok(out)
        }

        // select(c, a, b): ā = select(c, g, 0), b̄ = select(c, 0, g); c gets none.
        Op::Select => {
            let zero = g.full(ty.dtype, &ty.shape, 0.0)?;
            let c = x(0);
            let a = if want[1] {
                Some(g.select(c, gr, zero)?)
            } else {
                None
            };
            let b = if want[2] {
                Some(g.select(c, zero, gr)?)
            } else {
                None
            };
            Ok(vec![None, a, b])
        }

        // The identity forward; the gradient scaled (none at all for a factor of 0).
        Op::ScaleGrad { factor } => {
            if factor == 0.0 {
                Ok(vec![None])
            } else if factor == 1.0 {
                Ok(vec![Some(gr)])
            } else {
                let dt = g.ty(gr).dtype;
                one(g, &|g| {
                    let f = g.scalar(dt, factor)?;
                    g.mul(gr, f)
                })
            }
        }

        // y_r = Σ_q x_q on every rank q: ∂L/∂x_r = Σ_q ∂L/∂y_q, the all-reduced gradient.
        Op::AllReduce => one(g, &|g| g.all_reduce(gr)),

        // Float-to-float casts pass the gradient back in the operand's dtype.
        Op::Cast { .. } => {
            let from = g.ty(x(0)).dtype;
            one(g, &|g| g.cast(gr, from))
        }

        Op::Reduce {
            func,
            axes,
            keepdims,
        } => {
            let xt = g.ty(x(0)).clone();
            let kept: Vec<usize> = xt
                .shape
                .iter()
                .enumerate()
                .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
                .collect();
            one(g, &|g| {
                // ȳ with the reduced axes kept as size 1, then broadcast back over them.
                let gk = if keepdims { gr } else { g.reshape(gr, &kept)? };
                let gb = g.broadcast_to(gk, &xt.shape)?;
                match func {
                    ReduceOp::Sum => Ok(gb),
                    ReduceOp::Mean => {
                        let n: usize = axes.iter().map(|&a| xt.shape[a]).product();
                        let s = g.scalar(xt.dtype, 1.0 / n as f64)?;
                        g.mul(gb, s)
                    }
                    // Split evenly among the elements equal to the maximum.
                    ReduceOp::Max => {
                        let yk = if keepdims { y } else { g.reshape(y, &kept)? };
                        let yb = g.broadcast_to(yk, &xt.shape)?;
                        let mask = g.compare(CompareOp::Eq, x(0), yb)?;
                        let count = g.sum(mask, &axes, true)?;
                        let share = g.div(gk, count)?;
                        let share = g.broadcast_to(share, &xt.shape)?;
                        g.mul(share, mask)
                    }
                }
            })
        }

        Op::Reshape { .. } => {
            let shape = g.ty(x(0)).shape.clone();
            one(g, &|g| g.reshape(gr, &shape))
        }
        Op::Permute { perm } => {
            let mut inv = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            one(g, &|g| g.permute(gr, &inv))
        }
        // Un-broadcast: sum over the added leading axes and the stretched size-1 axes.
        Op::Broadcast { shape } => {
            let xs = g.ty(x(0)).shape.clone();
            one(g, &|g| unbroadcast(g, gr, &shape, &xs))
        }
        // The adjoint of a strided slice pads with zeros around and between the elements.
        Op::Slice { start, step, .. } => {
            let xs = g.ty(x(0)).shape.clone();
            one(g, &|g| {
                let high: Vec<usize> = (0..xs.len())
                    .map(|i| xs[i] - (start[i] + (ty.shape[i] - 1) * step[i] + 1))
                    .collect();
                let interior: Vec<usize> = step.iter().map(|s| s - 1).collect();
                g.pad(gr, &start, &high, &interior, 0.0)
            })
        }
        // The adjoint of padding slices the original elements back out.
        Op::Pad { low, interior, .. } => {
            let xs = g.ty(x(0)).shape.clone();
            one(g, &|g| {
                let end: Vec<usize> = (0..xs.len())
                    .map(|i| low[i] + (xs[i] - 1) * (interior[i] + 1) + 1)
                    .collect();
                let step: Vec<usize> = interior.iter().map(|s| s + 1).collect();
                g.slice(gr, &low, &end, &step)
            })
        }
        Op::Concat { axis } => {
            let mut out = Vec::with_capacity(operands.len());
            let mut offset = 0;
            for (i, &o) in operands.iter().enumerate() {
                let os = g.ty(o).shape.clone();
                if want[i] {
                    let mut start = vec![0; os.len()];
                    let mut end = ty.shape.clone();
                    start[axis] = offset;
                    end[axis] = offset + os[axis];
                    let step = vec![1; os.len()];
                    out.push(Some(g.slice(gr, &start, &end, &step)?));
                } else {
                    out.push(None);
                }
                offset += os[axis];
            }
            Ok(out)
        }

        // C = op(A)·op(B): dop(A) = G·op(B)ᵀ, dop(B) = op(A)ᵀ·G, transposed back when the
        // operand itself was transposed; a shared rank-2 operand sums over the batch.
        Op::MatMul { trans_a, trans_b } => {
            let (a, b) = (x(0), x(1));
            let mut out = vec![None, None];
            if want[0] {
                let d = if trans_a {
                    g.matmul(b, gr, trans_b, true)?
                } else {
                    g.matmul(gr, b, false, !trans_b)?
                };
                let shape = g.ty(a).shape.clone();
                out[0] = Some(sum_to_rank(g, d, &shape)?);
            }
            if want[1] {
                let d = if trans_b {
                    g.matmul(gr, a, true, trans_a)?
                } else {
                    g.matmul(a, gr, !trans_a, false)?
                };
                let shape = g.ty(b).shape.clone();
                out[1] = Some(sum_to_rank(g, d, &shape)?);
            }
            Ok(out)
        }

        Op::Im2Col { window } => {
            let spatial = g.ty(x(0)).shape[2..].to_vec();
            one(g, &|g| g.col2im(gr, &window, &spatial))
        }
        Op::Col2Im { window, .. } => one(g, &|g| g.im2col(gr, &window)),

        // gather(data, idx): data̅ = scatter_add(g, idx); indices get none.
        Op::Gather => {
            let rows = g.ty(x(0)).shape[0];
            let d = if want[0] {
                Some(g.scatter_add(gr, x(1), rows)?)
            } else {
                None
            };
            Ok(vec![d, None])
        }
        // scatter_add(upd, idx): upd̅ = gather(g, idx).
        Op::ScatterAdd { .. } => {
            let d = if want[0] {
                Some(g.gather(gr, x(1))?)
            } else {
                None
            };
            Ok(vec![d, None])
        }
    }
}

/// `[select(m, g, 0), select(m, 0, g)]` for the operands that want a gradient.
fn route(g: &mut Graph, mask: NodeId, grad: NodeId, want: &[bool]) -> Result<Vec<Option<NodeId>>> {
    let t = g.ty(grad).clone();
    let zero = g.full(t.dtype, &t.shape, 0.0)?;
    let a = if want[0] {
        Some(g.select(mask, grad, zero)?)
    } else {
        None
    };
    let b = if want[1] {
        Some(g.select(mask, zero, grad)?)
    } else {
        None
    };
    Ok(vec![a, b])
}

/// Sums `grad` (of broadcast shape `out`) back to `shape`.
pub fn unbroadcast(g: &mut Graph, grad: NodeId, out: &[usize], shape: &[usize]) -> Result<NodeId> {
    let lead = out.len() - shape.len();
    let axes: Vec<usize> = (0..out.len())
        .filter(|&i| i < lead || (shape[i - lead] == 1 && out[i] != 1))
        .collect();
    let s = if axes.is_empty() {
        grad
    } else {
        g.sum(grad, &axes, true)?
    };
    g.reshape(s, shape)
}

/// Sums the leading batch axes of `d` away when the operand was a shared rank-2 matrix.
fn sum_to_rank(g: &mut Graph, d: NodeId, shape: &[usize]) -> Result<NodeId> {
    let dr = g.ty(d).rank();
    if dr == shape.len() {
        return Ok(d);
    }
    let axes: Vec<usize> = (0..dr - shape.len()).collect();
    g.sum(d, &axes, false)
}
