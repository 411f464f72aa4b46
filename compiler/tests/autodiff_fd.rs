//! Every differentiable primitive's gradient rule, checked against central finite
//! differences in f64 (broadcast and reduction cases included), through the interpreter.

use xenon_compiler::autodiff;
use xenon_compiler::interp::{self, Feeds};
use xenon_compiler::ir::{DType, Graph, GraphError, NodeId, Window};
use xenon_runtime::{Tensor, rng};

const F: DType = DType::F64;

/// Deterministic test values in `[lo, hi)`.
fn values(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n as u64)
        .map(|i| lo + (hi - lo) * rng::uniform_f64(seed, 99, i))
        .collect()
}

/// Values in `±[0.5, 1.5)`: away from zero, kinks and ties.
fn nonzero(seed: u64, n: usize) -> Vec<f64> {
    values(seed, n, 0.5, 1.5)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            if rng::bits(seed, 7, i as u64) & 1 == 0 {
                v
            } else {
                -v
            }
        })
        .collect()
}

/// Builds `loss = Σ f(params) ⊙ R` (R a fixed random weighting of f's output, so that every
/// output element matters differently), takes the symbolic gradient with respect to every
/// parameter, and compares it elementwise with central differences of the loss.
fn check(
    name: &str,
    params: &[(&[usize], Vec<f64>)],
    f: impl Fn(&mut Graph, &[NodeId]) -> Result<NodeId, GraphError>,
) {
    let mut g = Graph::new();
    let ids: Vec<NodeId> = params
        .iter()
        .enumerate()
        .map(|(i, (shape, _))| g.parameter(&format!("p{i}"), F, shape).unwrap())
        .collect();
    let y = f(&mut g, &ids).unwrap_or_else(|e| panic!("{name}: building the graph failed: {e}"));
    let yt = g.ty(y).clone();
    let r = g
        .constant(F, &yt.shape, values(12345, yt.numel(), -1.0, 1.0))
        .unwrap();
    let weighted = g.mul(y, r).unwrap();
    let axes: Vec<usize> = (0..yt.rank()).collect();
    let loss = g.sum(weighted, &axes, false).unwrap();
    g.set_output("loss", loss).unwrap();
    let names: Vec<String> = (0..params.len()).map(|i| format!("p{i}")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let dg = autodiff::with_gradients(&g, "loss", &name_refs).unwrap();

    let feeds_of = |vals: &[Vec<f64>]| -> Feeds {
        params
            .iter()
            .zip(vals)
            .enumerate()
            .map(|(i, ((shape, _), v))| {
                (
                    format!("p{i}"),
                    Tensor::from_f64(shape.to_vec(), v.clone()).unwrap(),
                )
            })
            .collect()
    };
    let base: Vec<Vec<f64>> = params.iter().map(|(_, v)| v.clone()).collect();
    let out = interp::run(&dg, &feeds_of(&base)).unwrap();
    let loss_at =
        |vals: &[Vec<f64>]| interp::run(&g, &feeds_of(vals)).unwrap()["loss"].to_f64_vec()[0];

    let eps = 1e-5;
    for (i, (shape, _)) in params.iter().enumerate() {
        let analytic = out[&format!("grad/p{i}")].to_f64_vec();
        assert_eq!(
            analytic.len(),
            shape.iter().product::<usize>(),
            "{name}: gradient of p{i} has the wrong size"
        );
        for k in 0..analytic.len() {
            let mut plus = base.clone();
            plus[i][k] += eps;
            let mut minus = base.clone();
            minus[i][k] -= eps;
            let fd = (loss_at(&plus) - loss_at(&minus)) / (2.0 * eps);
            let tol = 1e-7 * (1.0 + fd.abs().max(analytic[k].abs()));
            assert!(
                (fd - analytic[k]).abs() <= tol,
                "{name}: d loss / d p{i}[{k}]: symbolic {} vs finite differences {fd}",
                analytic[k]
            );
        }
    }
}

#[test]
fn unary_ops() {
    let s: &[usize] = &[2, 3];
    check("neg", &[(s, nonzero(1, 6))], |g, p| g.neg(p[0]));
    check("abs", &[(s, nonzero(2, 6))], |g, p| g.abs(p[0]));
    check("exp", &[(s, nonzero(3, 6))], |g, p| g.exp(p[0]));
    check("log", &[(s, values(4, 6, 0.5, 2.0))], |g, p| g.log(p[0]));
    check("sqrt", &[(s, values(5, 6, 0.5, 2.0))], |g, p| g.sqrt(p[0]));
    check("recip", &[(s, nonzero(6, 6))], |g, p| g.recip(p[0]));
    check("tanh", &[(s, nonzero(7, 6))], |g, p| g.tanh(p[0]));
}

#[test]
fn binary_ops_same_shape() {
    let s: &[usize] = &[3, 2];
    check("add", &[(s, nonzero(1, 6)), (s, nonzero(2, 6))], |g, p| {
        g.add_(p[0], p[1])
    });
    check("sub", &[(s, nonzero(1, 6)), (s, nonzero(2, 6))], |g, p| {
        g.sub(p[0], p[1])
    });
    check("mul", &[(s, nonzero(1, 6)), (s, nonzero(2, 6))], |g, p| {
        g.mul(p[0], p[1])
    });
    check("div", &[(s, nonzero(1, 6)), (s, nonzero(2, 6))], |g, p| {
        g.div(p[0], p[1])
    });
    check("max", &[(s, nonzero(3, 6)), (s, nonzero(4, 6))], |g, p| {
        g.max(p[0], p[1])
    });
    check("min", &[(s, nonzero(3, 6)), (s, nonzero(4, 6))], |g, p| {
        g.min(p[0], p[1])
    });
    // The same operand twice: contributions from both slots add up.
    check("mul x·x", &[(s, nonzero(5, 6))], |g, p| g.mul(p[0], p[0]));
}

#[test]
fn binary_ops_with_broadcasting() {
    let m: &[usize] = &[3, 4];
    check(
        "add row",
        &[(m, nonzero(1, 12)), (&[4], nonzero(2, 4))],
        |g, p| g.add_(p[0], p[1]),
    );
    check(
        "mul column",
        &[(m, nonzero(1, 12)), (&[3, 1], nonzero(2, 3))],
        |g, p| g.mul(p[0], p[1]),
    );
    check(
        "div scalar",
        &[(m, nonzero(1, 12)), (&[], vec![1.7])],
        |g, p| g.div(p[0], p[1]),
    );
    check(
        "sub both ways",
        &[(&[3, 1], nonzero(3, 3)), (&[1, 4], nonzero(4, 4))],
        |g, p| g.sub(p[0], p[1]),
    );
    check(
        "max row",
        &[(m, nonzero(5, 12)), (&[4], nonzero(6, 4))],
        |g, p| g.max(p[0], p[1]),
    );
    check(
        "explicit broadcast",
        &[(&[2, 1, 3], nonzero(7, 6))],
        |g, p| g.broadcast_to(p[0], &[4, 2, 5, 3]),
    );
}

#[test]
fn select_and_cast() {
    let s: &[usize] = &[2, 3];
    check(
        "select",
        &[(s, nonzero(1, 6)), (s, nonzero(2, 6))],
        |g, p| {
            let c = g.constant(F, &[2, 3], vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0])?;
            g.select(c, p[0], p[1])
        },
    );
    check(
        "select with mask from data",
        &[(s, nonzero(3, 6)), (s, nonzero(4, 6))],
        |g, p| {
            let zero = g.scalar(F, 0.0)?;
            let c = g.compare(xenon_compiler::ir::CompareOp::Gt, p[0], zero)?;
            g.select(c, p[0], p[1])
        },
    );
    check("cast f64 → f64", &[(s, nonzero(5, 6))], |g, p| {
        let c = g.cast(p[0], DType::F64)?;
        g.mul(c, c)
    });
}

/// `scale_grad` is the identity with a scaled gradient, so finite differences of the loss
/// do not see the factor: the symbolic gradient is checked against `factor ×` the finite
/// differences of the same graph without it.
#[test]
fn scale_grad_scales_only_the_gradient() {
    let s: &[usize] = &[2, 3];
    for factor in [0.0, 0.25, 1.0, -2.0] {
        let mut g = Graph::new();
        let p0 = g.parameter("p0", F, s).unwrap();
        let p1 = g.parameter("p1", F, s).unwrap();
        // loss = Σ (scale_grad(p0, f) · p1)² + Σ p1: p1's gradient is unscaled.
        let q = g.scale_grad(p0, factor).unwrap();
        let m = g.mul(q, p1).unwrap();
        let m2 = g.mul(m, m).unwrap();
        let a = g.sum(m2, &[0, 1], false).unwrap();
        let b = g.sum(p1, &[0, 1], false).unwrap();
        let loss = g.add_(a, b).unwrap();
        g.set_output("loss", loss).unwrap();
        let dg = autodiff::with_gradients(&g, "loss", &["p0", "p1"]).unwrap();
        let (v0, v1) = (nonzero(1, 6), nonzero(2, 6));
        let feeds: Feeds = [("p0", &v0), ("p1", &v1)]
            .into_iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    Tensor::from_f64(s.to_vec(), v.clone()).unwrap(),
                )
            })
            .collect();
        let out = interp::run(&dg, &feeds).unwrap();
        // The value is unchanged.
        let plain: f64 = (0..6).map(|k| (v0[k] * v1[k]).powi(2) + v1[k]).sum();
        assert!((out["loss"].to_f64_vec()[0] - plain).abs() < 1e-12);
        let g0 = out["grad/p0"].to_f64_vec();
        let g1 = out["grad/p1"].to_f64_vec();
        for k in 0..6 {
            let d0 = 2.0 * v0[k] * v1[k] * v1[k];
            let d1 = 2.0 * v0[k] * v0[k] * v1[k] + 1.0;
            assert!(
                (g0[k] - factor * d0).abs() <= 1e-12 * (1.0 + d0.abs()),
                "{factor}: {g0:?}"
            );
            assert!(
                (g1[k] - d1).abs() <= 1e-12 * (1.0 + d1.abs()),
                "{factor}: {g1:?}"
            );
        }
        // Optimized and lowered, the factor is gone and the values stay.
        let stripped = dg.without_grad_scales();
        assert!(
            stripped
                .ids()
                .all(|id| stripped.node(id).op.name() != "scale_grad")
        );
        let again = interp::run(&stripped, &feeds).unwrap();
        assert_eq!(again["grad/p0"].to_f64_vec(), g0);
    }
}

#[test]
fn reductions() {
    let s: &[usize] = &[2, 3, 4];
    let x = || nonzero(9, 24);
    for axes in [vec![0], vec![1], vec![2], vec![0, 2], vec![0, 1, 2], vec![]] {
        for keep in [false, true] {
            check(
                &format!("sum {axes:?} keepdims={keep}"),
                &[(s, x())],
                |g, p| g.sum(p[0], &axes, keep),
            );
            check(
                &format!("mean {axes:?} keepdims={keep}"),
                &[(s, x())],
                |g, p| g.mean(p[0], &axes, keep),
            );
            check(
                &format!("max {axes:?} keepdims={keep}"),
                &[(s, x())],
                |g, p| g.reduce_max(p[0], &axes, keep),
            );
        }
    }
}

#[test]
fn movement_ops() {
    let s: &[usize] = &[2, 3, 4];
    let x = || nonzero(11, 24);
    check("reshape", &[(s, x())], |g, p| g.reshape(p[0], &[4, 6]));
    check("permute", &[(s, x())], |g, p| g.permute(p[0], &[2, 0, 1]));
    check("slice", &[(s, x())], |g, p| {
        g.slice(p[0], &[0, 1, 0], &[2, 3, 4], &[1, 1, 2])
    });
    check("slice with steps", &[(s, x())], |g, p| {
        g.slice(p[0], &[1, 0, 1], &[2, 3, 4], &[1, 2, 2])
    });
    check("pad", &[(s, x())], |g, p| {
        g.pad(p[0], &[1, 0, 2], &[0, 2, 1], &[0, 1, 2], 0.5)
    });
    check(
        "concat",
        &[
            (&[2, 3], nonzero(1, 6)),
            (&[2, 1], nonzero(2, 2)),
            (&[2, 2], nonzero(3, 4)),
        ],
        |g, p| g.concat(&[p[0], p[1], p[2]], 1),
    );
}

#[test]
fn matmul_every_transpose_and_batching() {
    for ta in [false, true] {
        for tb in [false, true] {
            let a: &[usize] = if ta { &[4, 3] } else { &[3, 4] };
            let b: &[usize] = if tb { &[5, 4] } else { &[4, 5] };
            check(
                &format!("matmul ta={ta} tb={tb}"),
                &[(a, nonzero(1, 12)), (b, nonzero(2, 20))],
                |g, p| g.matmul(p[0], p[1], ta, tb),
            );
            let a3: Vec<usize> = [&[2][..], a].concat();
            let b3: Vec<usize> = [&[2][..], b].concat();
            check(
                &format!("batched matmul ta={ta} tb={tb}"),
                &[(&a3, nonzero(3, 24)), (&b3, nonzero(4, 40))],
                |g, p| g.matmul(p[0], p[1], ta, tb),
            );
            check(
                &format!("shared right operand ta={ta} tb={tb}"),
                &[(&a3, nonzero(5, 24)), (b, nonzero(6, 20))],
                |g, p| g.matmul(p[0], p[1], ta, tb),
            );
            check(
                &format!("shared left operand ta={ta} tb={tb}"),
                &[(a, nonzero(7, 12)), (&b3, nonzero(8, 40))],
                |g, p| g.matmul(p[0], p[1], ta, tb),
            );
        }
    }
}

#[test]
fn window_ops() {
    let w2 = Window::new([2, 3])
        .with_stride([2, 1])
        .with_padding([1, 1])
        .with_dilation([1, 2]);
    check("im2col 2-d", &[(&[2, 2, 4, 5], nonzero(1, 80))], |g, p| {
        g.im2col(p[0], &w2)
    });
    let w1 = Window::new([3]).with_stride([2]).with_padding([1]);
    check("im2col 1-d", &[(&[1, 2, 7], nonzero(2, 14))], |g, p| {
        g.im2col(p[0], &w1)
    });
    // col2im's input shape: N × (C·∏k) × positions.
    let mut g = Graph::new();
    let x = g.input("x", F, &[2, 2, 4, 5]).unwrap();
    let c = g.im2col(x, &w2).unwrap();
    let cols = g.ty(c).shape.clone();
    let n: usize = cols.iter().product();
    check("col2im 2-d", &[(&cols, nonzero(3, n))], |g, p| {
        g.col2im(p[0], &w2, &[4, 5])
    });
    // A convolution: weights [K, C·kh·kw] times the columns.
    check(
        "conv via im2col + matmul",
        &[(&[2, 2, 4, 5], nonzero(4, 80)), (&[3, 12], nonzero(5, 36))],
        |g, p| {
            let c = g.im2col(p[0], &w2)?;
            g.matmul(p[1], c, false, false)
        },
    );
}

#[test]
fn gather_and_scatter_add() {
    check(
        "gather with repeated rows",
        &[(&[4, 3], nonzero(1, 12))],
        |g, p| {
            let idx = g.constant(DType::I32, &[2, 3], vec![0.0, 2.0, 2.0, 3.0, 0.0, 1.0])?;
            g.gather(p[0], idx)
        },
    );
    check("scatter_add", &[(&[5, 2], nonzero(2, 10))], |g, p| {
        let idx = g.constant(DType::I32, &[5], vec![1.0, 0.0, 1.0, 3.0, 1.0])?;
        g.scatter_add(p[0], idx, 4)
    });
}

/// Softmax with the maximum subtracted, then multiclass cross-entropy: the composite the
/// frontend builds.
#[test]
fn softmax_cross_entropy() {
    check("softmax CE", &[(&[3, 4], nonzero(1, 12))], |g, p| {
        let m = g.reduce_max(p[0], &[1], true)?;
        let z = g.sub(p[0], m)?;
        let e = g.exp(z)?;
        let s = g.sum(e, &[1], true)?;
        let y = g.div(e, s)?;
        let t = g.constant(
            F,
            &[3, 4],
            vec![0., 1., 0., 0., 1., 0., 0., 0., 0., 0., 0., 1.],
        )?;
        let l = g.log(y)?;
        let tl = g.mul(t, l)?;
        let c = g.sum(tl, &[1], false)?;
        g.neg(c)
    });
}

#[test]
fn a_node_the_loss_ignores_gets_a_zero_gradient() {
    let mut g = Graph::new();
    let a = g.parameter("a", F, &[2]).unwrap();
    g.parameter("unused", F, &[3]).unwrap();
    let s = g.sum(a, &[0], false).unwrap();
    g.set_output("loss", s).unwrap();
    let dg = autodiff::with_gradients(&g, "loss", &["a", "unused"]).unwrap();
    let feeds: Feeds = [
        (
            "a".to_string(),
            Tensor::from_f64(vec![2], vec![1.0, 2.0]).unwrap(),
        ),
        (
            "unused".to_string(),
            Tensor::from_f64(vec![3], vec![1.0, 2.0, 3.0]).unwrap(),
        ),
    ]
    .into_iter()
    .collect();
    let out = interp::run(&dg, &feeds).unwrap();
    assert_eq!(out["grad/a"].to_f64_vec(), vec![1.0, 1.0]);
    assert_eq!(out["grad/unused"].to_f64_vec(), vec![0.0, 0.0, 0.0]);
}

#[test]
fn a_non_scalar_loss_is_an_error() {
    let mut g = Graph::new();
    let a = g.parameter("a", F, &[2]).unwrap();
    let e = autodiff::grad(&mut g, a, &[a]).unwrap_err();
    assert!(e.to_string().contains("scalar"), "{e}");
    g.set_output("y", a).unwrap();
    let e = autodiff::with_gradients(&g, "y", &["nope"]).unwrap_err();
    assert!(e.to_string().contains("\"nope\""), "{e}");
}

/// A two-layer MLP (`x·W1ᵀ + b1`, tanh, `·W2ᵀ + b2`, softmax, cross-entropy averaged over
/// the batch) built directly in the IR.
fn mlp(g: &mut Graph, p: &[NodeId]) -> Result<NodeId, GraphError> {
    let x = g.constant(F, &[6, 4], values(77, 24, -1.0, 1.0))?;
    let mut t = vec![0.0; 18];
    for (i, c) in [0, 2, 1, 1, 0, 2].iter().enumerate() {
        t[i * 3 + c] = 1.0;
    }
    let t = g.constant(F, &[6, 3], t)?;
    let h = g.in_scope("dense1", |g| {
        let z = g.matmul(x, p[0], false, true)?;
        let z = g.add_(z, p[1])?;
        g.tanh(z)
    })?;
    let y = g.in_scope("dense2", |g| {
        let z = g.matmul(h, p[2], false, true)?;
        let z = g.add_(z, p[3])?;
        let m = g.reduce_max(z, &[1], true)?;
        let z = g.sub(z, m)?;
        let e = g.exp(z)?;
        let s = g.sum(e, &[1], true)?;
        g.div(e, s)
    })?;
    g.in_scope("cost", |g| {
        let l = g.log(y)?;
        let tl = g.mul(t, l)?;
        let c = g.sum(tl, &[1], false)?;
        let c = g.neg(c)?;
        g.mean(c, &[0], false)
    })
}

#[test]
fn two_layer_mlp_with_softmax_cross_entropy() {
    check(
        "mlp",
        &[
            (&[5, 4], nonzero(1, 20)),
            (&[5], nonzero(2, 5)),
            (&[3, 5], nonzero(3, 15)),
            (&[3], nonzero(4, 3)),
        ],
        mlp,
    );
}

#[test]
fn mlp_gradient_graph_dump() {
    let mut g = Graph::new();
    let p: Vec<NodeId> = [
        ("W1", vec![5, 4]),
        ("b1", vec![5]),
        ("W2", vec![3, 5]),
        ("b2", vec![3]),
    ]
    .iter()
    .map(|(n, s)| g.parameter(n, F, s).unwrap())
    .collect();
    let loss = mlp(&mut g, &p).unwrap();
    g.set_output("loss", loss).unwrap();
    let dg = autodiff::with_gradients(&g, "loss", &["W1", "b1", "W2", "b2"]).unwrap();
    insta::assert_snapshot!(dg.to_text());
}
