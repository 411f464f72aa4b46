//! Convolution, pooling, batch norm and dropout: values against direct loops, gradients
//! against central differences in f64 (strided, padded and dilated windows included), batch
//! norm in training and inference mode against a hand computation, neon's dropout
//! semantics, neon's parameter counts, and argument errors that name the layer and the
//! shapes.

mod common;

use common::gradcheck::{
    F, check_gradients, check_graph_gradients, feeds, forward, lowered, values,
};
use xenon_compiler::interp::Feeds;
use xenon_compiler::ir::{DType, Graph, NodeId};
use xenon_compiler::{autodiff, interp};
use xenon_frontend::init::Initializer;
use xenon_frontend::layer::*;
use xenon_frontend::model::{Model, step_counter};
use xenon_runtime::Tensor;

fn conv(fshape: Vec<usize>, stride: usize, pad: usize, dil: usize) -> Layer {
    Convolution::new(fshape, Initializer::Constant { val: 0.0 })
        .with_geometry(stride, pad, dil)
        .into()
}

/// A direct 2-d convolution: `y[n,k,p,q] = Σ W[k,c,r,s]·x[n,c,p·st−pad+r·dil, q·st−pad+s·dil]`.
#[allow(clippy::too_many_arguments)]
fn direct_conv(
    x: &[f64],
    w: &[f64],
    [n, c, h, wd]: [usize; 4],
    [k, r, s]: [usize; 3],
    st: usize,
    pad: usize,
    dil: usize,
) -> (Vec<usize>, Vec<f64>) {
    let oh = (h + 2 * pad - (dil * (r - 1) + 1)) / st + 1;
    let ow = (wd + 2 * pad - (dil * (s - 1) + 1)) / st + 1;
    let mut y = vec![0.0; n * k * oh * ow];
    for b in 0..n {
        for f in 0..k {
            for p in 0..oh {
                for q in 0..ow {
                    let mut acc = 0.0;
                    for ch in 0..c {
                        for i in 0..r {
                            for j in 0..s {
                                let yy = (p * st + i * dil) as isize - pad as isize;
                                let xx = (q * st + j * dil) as isize - pad as isize;
                                if yy < 0 || xx < 0 || yy >= h as isize || xx >= wd as isize {
                                    continue;
                                }
                                acc += w[((f * c + ch) * r + i) * s + j]
                                    * x[((b * c + ch) * h + yy as usize) * wd + xx as usize];
                            }
                        }
                    }
                    y[((b * k + f) * oh + p) * ow + q] = acc;
                }
            }
        }
    }
    (vec![n, k, oh, ow], y)
}

#[test]
fn convolution_matches_a_direct_loop() {
    for (st, pad, dil) in [(1, 0, 1), (2, 1, 1), (1, 2, 2), (3, 1, 2)] {
        let shape = [2, 3, 7, 6];
        let layer = conv(vec![3, 2, 4], st, pad, dil);
        let x = values(1, shape.iter().product(), -1.0, 1.0);
        let (ys, y, f) = forward(&layer, &shape, &x, false);
        let w = f["L/W"].to_f64_vec();
        assert_eq!(f["L/W"].shape(), &[4, 3, 3, 2]);
        let (ws, want) = direct_conv(&x, &w, shape, [4, 3, 2], st, pad, dil);
        assert_eq!(ys, ws, "stride {st} pad {pad} dilation {dil}");
        for (a, b) in y.iter().zip(&want) {
            assert!(
                (a - b).abs() < 1e-12,
                "stride {st} pad {pad} dilation {dil}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn convolution_gradients_match_finite_differences() {
    check_gradients("conv", &conv(vec![3, 3, 2], 1, 0, 1), &[2, 2, 5, 5], true);
    check_gradients(
        "strided padded conv",
        &conv(vec![3, 2, 3], 2, 1, 1),
        &[1, 2, 6, 5],
        true,
    );
    check_gradients(
        "dilated conv",
        &conv(vec![2, 2, 2], 1, 1, 2),
        &[2, 1, 5, 6],
        true,
    );
    check_gradients(
        "3-d conv",
        &conv(vec![2, 2, 2, 2], 1, 0, 1),
        &[1, 2, 3, 4, 3],
        true,
    );
}

/// Direct pooling of each map: the maximum over the window (padding never wins), or the
/// mean over the window's positions inside the input.
fn direct_pool(
    x: &[f64],
    [n, c, h, w]: [usize; 4],
    k: usize,
    st: usize,
    pad: usize,
    max: bool,
) -> Vec<f64> {
    let oh = (h + 2 * pad - k) / st + 1;
    let ow = (w + 2 * pad - k) / st + 1;
    let mut y = Vec::new();
    for m in 0..n * c {
        for p in 0..oh {
            for q in 0..ow {
                let mut vals = Vec::new();
                for i in 0..k {
                    for j in 0..k {
                        let yy = (p * st + i) as isize - pad as isize;
                        let xx = (q * st + j) as isize - pad as isize;
                        if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                            vals.push(x[(m * h + yy as usize) * w + xx as usize]);
                        }
                    }
                }
                y.push(if max {
                    vals.iter().cloned().fold(f64::MIN, f64::max)
                } else {
                    vals.iter().sum::<f64>() / vals.len() as f64
                });
            }
        }
    }
    y
}

fn pool(op: PoolOp, k: usize, st: usize, pad: usize) -> Layer {
    Pooling {
        op,
        strides: SpatialArg::Int(st),
        padding: SpatialArg::Int(pad),
        ..Pooling::max(k)
    }
    .into()
}

#[test]
fn pooling_matches_a_direct_loop() {
    let shape = [2, 3, 7, 6];
    let x = values(3, shape.iter().product(), -2.0, -0.5); // all negative: padding must not win
    for (k, st, pad) in [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 3, 1)] {
        for (op, max) in [(PoolOp::Max, true), (PoolOp::Avg, false)] {
            let (_, y, _) = forward(&pool(op, k, st, pad), &shape, &x, false);
            let want = direct_pool(&x, shape, k, st, pad, max);
            assert_eq!(y.len(), want.len());
            for (a, b) in y.iter().zip(&want) {
                assert!(
                    (a - b).abs() < 1e-12,
                    "{op:?} k {k} st {st} pad {pad}: {a} vs {b}"
                );
            }
        }
    }
    // Global pooling.
    let all: Layer = Pooling {
        fshape: PoolShape::All,
        op: PoolOp::Avg,
        ..Pooling::max(1)
    }
    .into();
    let (ys, y, _) = forward(&all, &shape, &x, false);
    assert_eq!(ys, [2, 3, 1, 1]);
    let mean0 = x[..42].iter().sum::<f64>() / 42.0;
    assert!((y[0] - mean0).abs() < 1e-12);
}

#[test]
fn pooling_gradients_match_finite_differences() {
    check_gradients("max pool", &pool(PoolOp::Max, 2, 2, 0), &[2, 2, 4, 5], true);
    check_gradients(
        "padded max pool",
        &pool(PoolOp::Max, 3, 2, 1),
        &[1, 2, 5, 5],
        true,
    );
    check_gradients(
        "overlapping avg pool",
        &pool(PoolOp::Avg, 3, 1, 1),
        &[1, 2, 4, 4],
        true,
    );
}

/// Ties: the whole gradient goes to the first maximum of the window in scan order.
#[test]
fn max_pooling_routes_the_gradient_to_the_first_maximum() {
    let (mut g, y, _) = lowered(&pool(PoolOp::Max, 2, 2, 0), &[1, 1, 2, 2], true);
    let loss = g.sum(y, &[0, 1, 2, 3], false).unwrap();
    g.set_output("loss", loss).unwrap();
    let dg = autodiff::with_gradients(&g, "loss", &["x"]).unwrap();
    let f: Feeds = [(
        "x".to_string(),
        Tensor::from_f64(vec![1, 1, 2, 2], vec![0.5, 2.0, 2.0, 1.0]).unwrap(),
    )]
    .into_iter()
    .collect();
    assert_eq!(
        interp::run(&dg, &f).unwrap()["grad/x"].to_f64_vec(),
        [0.0, 1.0, 0.0, 0.0]
    );
}

#[test]
fn batch_norm_follows_neons_formulas_in_both_modes() {
    let bn: Layer = BatchNorm::default().into();
    let shape = [3, 2, 2, 1]; // 2 feature maps of 2×1, 3 samples: 6 values per map
    let x = values(5, 12, -2.0, 2.0);
    // Training: batch statistics (biased variance), γ·x̂ + β, running statistics updated.
    let (mut g, y, params) = lowered(&bn, &shape, true);
    g.set_output("y", y).unwrap();
    let f = feeds(&params, &shape, &x);
    let out = interp::run(&g, &f).unwrap();
    let (gamma, beta) = (f["L/gamma"].to_f64_vec(), f["L/beta"].to_f64_vec());
    let (gmean, gvar) = (f["L/gmean"].to_f64_vec(), f["L/gvar"].to_f64_vec());
    let at = |nn: usize, c: usize, i: usize| x[(nn * 2 + c) * 2 + i];
    for c in 0..2 {
        let vals: Vec<f64> = (0..3)
            .flat_map(|nn| (0..2).map(move |i| (nn, i)))
            .map(|(nn, i)| at(nn, c, i))
            .collect();
        let mean = vals.iter().sum::<f64>() / 6.0;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 6.0;
        for nn in 0..3 {
            for i in 0..2 {
                let want = gamma[c] * (at(nn, c, i) - mean) / (var + 1e-3).sqrt() + beta[c];
                let got = out["y"].to_f64_vec()[(nn * 2 + c) * 2 + i];
                assert!((got - want).abs() < 1e-12, "train: {got} vs {want}");
            }
        }
        let new_mean = out["new/L/gmean"].to_f64_vec()[c];
        let new_var = out["new/L/gvar"].to_f64_vec()[c];
        assert!((new_mean - (0.9 * gmean[c] + 0.1 * mean)).abs() < 1e-12);
        assert!((new_var - (0.9 * gvar[c] + 0.1 * var)).abs() < 1e-12);
    }
    assert_eq!(g.updates().len(), 2);
    // Inference: the running statistics, no updates.
    let (mut g, y, params) = lowered(&bn, &shape, false);
    g.set_output("y", y).unwrap();
    assert!(g.updates().is_empty());
    let f = feeds(&params, &shape, &x);
    let got = interp::run(&g, &f).unwrap()["y"].to_f64_vec();
    for nn in 0..3 {
        for c in 0..2 {
            for i in 0..2 {
                let want = gamma[c] * (at(nn, c, i) - gmean[c]) / (gvar[c] + 1e-3).sqrt() + beta[c];
                assert!((got[(nn * 2 + c) * 2 + i] - want).abs() < 1e-12);
            }
        }
    }
    // Parameters: gamma and beta trained, gmean and gvar not.
    let kinds: Vec<(String, bool)> = params
        .iter()
        .map(|p| (p.name.clone(), p.trainable))
        .collect();
    assert_eq!(
        kinds,
        [
            ("L/gamma".to_string(), true),
            ("L/beta".to_string(), true),
            ("L/gmean".to_string(), false),
            ("L/gvar".to_string(), false)
        ]
    );
}

#[test]
fn batch_norm_gradients_match_finite_differences() {
    check_gradients(
        "batch norm on maps",
        &BatchNorm::default().into(),
        &[3, 2, 2, 2],
        true,
    );
    check_gradients(
        "batch norm on features",
        &BatchNorm::default().into(),
        &[4, 3],
        true,
    );
}

fn uniform() -> Initializer {
    Initializer::Uniform {
        low: -0.1,
        high: 0.1,
    }
}

fn conv_bn(fshape: Vec<usize>, pad: usize, stride: usize, bn: bool) -> Layer {
    Conv {
        fshape,
        init: uniform(),
        strides: SpatialArg::Int(stride),
        padding: SpatialArg::Int(pad),
        dilation: SpatialArg::Default,
        bias: None,
        batch_norm: bn,
        activation: Some(xenon_frontend::activation::Activation::Rectlin { slope: 0.0 }),
        name: None,
    }
    .into()
}

fn affine_bn(nout: usize, bn: bool) -> Layer {
    Affine {
        batch_norm: bn,
        ..Affine::new(nout, uniform())
    }
    .into()
}

/// neon's parameter counts and feature-map sizes.
#[test]
fn parameter_counts_are_neons() {
    // cifar10_conv: maps 32 → 28 → 14 → 10 → 5, 420,096 parameters.
    let cifar10_conv = Sequential::new(vec![
        conv_bn(vec![5, 5, 16], 0, 1, true),
        Pooling::max(2).into(),
        conv_bn(vec![5, 5, 32], 0, 1, true),
        Pooling::max(2).into(),
        affine_bn(500, true),
        affine_bn(10, false),
    ]);
    let m = Model::new(cifar10_conv, &[3, 32, 32], 0).unwrap();
    assert_eq!(m.num_params(), 420_096);
    let maps: Vec<Vec<usize>> = m
        .layer_info()
        .iter()
        .filter(|l| l.kind.starts_with("Convolution") || l.kind.starts_with("Pooling"))
        .map(|l| l.out_shape.clone())
        .collect();
    assert_eq!(
        maps,
        [
            vec![16, 28, 28],
            vec![16, 14, 14],
            vec![32, 10, 10],
            vec![32, 5, 5]
        ]
    );
    // The MNIST convnet (the same net on 1×28×28): 275,296.
    let mnist = xenon_frontend::model_file::ModelFile::load(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/models/mnist_convnet.yaml"),
    )
    .unwrap();
    assert_eq!(
        Model::new(mnist.layers, &[1, 28, 28], 0)
            .unwrap()
            .num_params(),
        275_296
    );
}

fn lower_error(layer: Layer, shape: &[usize]) -> String {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, shape).unwrap();
    let mut params = Vec::new();
    let mut ctx = LayerCtx::new(&mut g, "L", DType::F32, &mut params);
    layer.lower(&mut ctx, &[x]).unwrap_err().to_string()
}

#[test]
fn bad_geometry_is_a_clear_error_naming_the_layer_and_shapes() {
    let e = lower_error(conv(vec![5, 5, 4], 1, 0, 1), &[2, 1, 3, 3]);
    assert!(
        e.starts_with("layer 'L': the window [5, 5]") && e.contains("[1, 3, 3]"),
        "{e}"
    );
    let e = lower_error(conv(vec![3, 3, 4], 0, 0, 1), &[2, 1, 8, 8]);
    assert!(
        e.contains("layer 'L'") && e.contains("stride [0, 0]"),
        "{e}"
    );
    let e = lower_error(pool(PoolOp::Max, 4, 4, 0), &[2, 3, 3, 3]);
    assert!(
        e.contains("layer 'L'") && e.contains("does not fit the input [3, 3]"),
        "{e}"
    );
    let e = lower_error(conv(vec![3, 3, 4], 1, 0, 1), &[2, 784]);
    assert!(
        e.contains("needs [batch, C, H, W] inputs, got shape [2, 784]"),
        "{e}"
    );
    let e = lower_error(
        Conv {
            bias: Some(uniform()),
            ..match conv_bn(vec![3, 3, 4], 0, 1, true) {
                Layer::Conv(c) => c,
                _ => unreachable!(),
            }
        }
        .into(),
        &[2, 1, 8, 8],
    );
    assert!(e.contains("bias and batch_norm"), "{e}");
}

/// neon's dropout (reference item 8): training outputs are `x` or 0 (never rescaled), about
/// `keep` of them kept, a fresh mask each step and the same mask for the same step;
/// inference outputs `keep·x`; the gradient is the mask.
#[test]
fn dropout_follows_neons_semantics() {
    let d: Layer = Dropout::default().into();
    let shape = [40, 250];
    let x = values(11, 10_000, 0.5, 1.5);
    let run = |step: u64, training: bool| {
        let (mut g, y, params) = lowered(&d, &shape, training);
        g.set_output("y", y).unwrap();
        let mut f = feeds(&params, &shape, &x);
        f.insert(STEP.into(), step_counter(step));
        interp::run(&g, &f).unwrap()["y"].to_f64_vec()
    };
    let a = run(1, true);
    let kept = a.iter().zip(&x).filter(|(y, x)| *y == *x).count();
    let zeroed = a.iter().filter(|&&y| y == 0.0).count();
    assert_eq!(kept + zeroed, 10_000, "outputs are x or 0");
    assert!((4_700..=5_300).contains(&kept), "{kept} of 10000 kept");
    assert_eq!(run(1, true), a, "the same step draws the same mask");
    let b = run(2, true);
    let same = a
        .iter()
        .zip(&b)
        .filter(|(p, q)| (**p == 0.0) == (**q == 0.0))
        .count();
    assert!(
        same < 5_300,
        "the next step draws another mask ({same} agree)"
    );
    let inference = run(1, false);
    for (y, x) in inference.iter().zip(&x) {
        assert!((y - 0.5 * x).abs() < 1e-15);
    }
    check_gradients(
        "dropout",
        &Dropout {
            keep: 0.8,
            name: None,
        }
        .into(),
        &[3, 4],
        true,
    );
    let e = lower_error(
        Dropout {
            keep: 0.0,
            name: None,
        }
        .into(),
        &[2, 3],
    );
    assert!(
        e.contains("layer 'L': keep must be in (0, 1], got 0"),
        "{e}"
    );
}

fn deconv(fshape: Vec<usize>, stride: usize, pad: usize, dil: usize) -> Layer {
    Deconvolution::new(fshape, Initializer::Constant { val: 0.0 })
        .with_geometry(stride, pad, dil)
        .into()
}

/// Deconvolution scatters each input pixel through the filter (a direct loop), has neon's
/// output size, is the adjoint of the convolution with the same weights and geometry, and
/// its gradients match finite differences.
#[test]
fn deconvolution_is_the_adjoint_of_convolution() {
    for (st, pad, dil) in [(1, 0, 1), (2, 1, 1), (2, 0, 2)] {
        let shape = [2, 3, 4, 5];
        let layer = deconv(vec![3, 2, 4], st, pad, dil);
        let x = values(21, shape.iter().product(), -1.0, 1.0);
        let (ys, y, f) = forward(&layer, &shape, &x, false);
        let w = f["L/W"].to_f64_vec(); // (C=3, K=4, R=3, S=2)
        let oh = 3 * st + dil * 2 + 1 - 2 * pad;
        let ow = 4 * st + dil + 1 - 2 * pad;
        assert_eq!(ys, [2, 4, oh, ow], "stride {st} pad {pad} dilation {dil}");
        let mut want = vec![0.0; 2 * 4 * oh * ow];
        for n in 0..2 {
            for c in 0..3 {
                for iy in 0..4 {
                    for ix in 0..5 {
                        for k in 0..4 {
                            for r in 0..3 {
                                for s in 0..2 {
                                    let oy = (iy * st + r * dil) as isize - pad as isize;
                                    let ox = (ix * st + s * dil) as isize - pad as isize;
                                    if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                                        continue;
                                    }
                                    want[((n * 4 + k) * oh + oy as usize) * ow + ox as usize] += w
                                        [((c * 4 + k) * 3 + r) * 2 + s]
                                        * x[((n * 3 + c) * 4 + iy) * 5 + ix];
                                }
                            }
                        }
                    }
                }
            }
        }
        for (a, b) in y.iter().zip(&want) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        // ⟨conv(z), x⟩ = ⟨z, deconv(x)⟩ with conv's W(K=3, C=4, R, S) = deconv's W.
        let z = values(22, y.len(), -1.0, 1.0);
        let conv_layer = conv(vec![3, 2, 3], st, pad, dil);
        let (mut g, cz, params) = lowered(&conv_layer, &ys, false);
        g.set_output("y", cz).unwrap();
        let mut feeds_c = feeds(&params, &ys, &z);
        feeds_c.insert("L/W".into(), f["L/W"].clone());
        let cz = interp::run(&g, &feeds_c).unwrap()["y"].to_f64_vec();
        let lhs: f64 = cz.iter().zip(&x).map(|(a, b)| a * b).sum();
        let rhs: f64 = z.iter().zip(&y).map(|(a, b)| a * b).sum();
        assert!(
            (lhs - rhs).abs() < 1e-9 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }
    check_gradients(
        "deconv",
        &deconv(vec![2, 2, 2], 2, 0, 1),
        &[1, 2, 3, 3],
        true,
    );
    check_gradients(
        "padded deconv",
        &deconv(vec![3, 3, 2], 2, 1, 1),
        &[2, 1, 3, 2],
        true,
    );
    let e = lower_error(deconv(vec![2, 2, 2], 1, 2, 1), &[1, 1, 2, 2]);
    assert!(
        e.contains("layer 'L'") && e.contains("removes the whole output"),
        "{e}"
    );
}

/// LRN: `x / (1 + (ascale/depth)·Σ x²)^bpower` over the `depth` maps centred on each map,
/// against a direct loop; gradients against finite differences.
#[test]
fn lrn_normalizes_across_neighbouring_maps() {
    let lrn: Layer = Lrn {
        ascale: 0.5,
        bpower: 0.75,
        ..Lrn::new(3)
    }
    .into();
    let shape = [2, 5, 2, 3];
    let x = values(31, 60, -2.0, 2.0);
    let (_, y, _) = forward(&lrn, &shape, &x, false);
    for n in 0..2 {
        for c in 0..5usize {
            for p in 0..6 {
                let at = |ch: usize| x[(n * 5 + ch) * 6 + p];
                let s: f64 = (c.saturating_sub(1)..=(c + 1).min(4))
                    .map(|ch| at(ch) * at(ch))
                    .sum();
                let want = at(c) / (1.0 + 0.5 / 3.0 * s).powf(0.75);
                let got = y[(n * 5 + c) * 6 + p];
                assert!((got - want).abs() < 1e-12, "{got} vs {want}");
            }
        }
    }
    check_gradients("lrn", &lrn, &[1, 4, 2, 2], true);
    let e = lower_error(Lrn::new(4).into(), &[1, 4, 2, 2]);
    assert!(e.contains("layer 'L': depth must be odd, got 4"), "{e}");
    // DataTransform applies its transform.
    let dt: Layer = DataTransform {
        transform: xenon_frontend::activation::Activation::Normalizer { divisor: 128.0 },
        name: None,
    }
    .into();
    let (_, y, _) = forward(&dt, &[1, 3], &[128.0, 64.0, -256.0], false);
    assert_eq!(y, [1.0, 0.5, -2.0]);
}

/// neon's containers as layers: a residual `MergeSum` of a conv branch and a `SkipNode`,
/// and `MergeBroadcast` by depth and by stack; values from the parts, gradients against
/// finite differences, nested names, model-file round trips, and shape mismatches that name
/// the layer and both shapes.
#[test]
fn containers_merge_their_branches() {
    let yaml = "layers:
- type: MergeSum
  config:
    layers:
    - - {type: Conv, config: {fshape: [3, 3, 2], padding: 1, init: {type: Uniform}, activation: {type: Rectlin}}}
      - {type: Conv, config: {fshape: [3, 3, 2], padding: 1, init: {type: Uniform}}}
    - - {type: SkipNode}
- type: MergeBroadcast
  config:
    merge: depth
    layers:
    - - {type: Conv, config: {fshape: [1, 1, 3], init: {type: Uniform}}}
    - - {type: Conv, config: {fshape: [3, 3, 1], padding: 1, init: {type: Uniform}}}
      - {type: Pooling, config: {fshape: 3, strides: 1, padding: 1}}
- type: MergeBroadcast
  config:
    merge: stack
    layers:
    - - {type: Pooling, config: {fshape: all, op: avg}}
    - - {type: Affine, config: {nout: 3, init: {type: Uniform}}}
cost: SumSquared
";
    let file = xenon_frontend::model_file::ModelFile::from_yaml_str(yaml).unwrap();
    for back in [
        xenon_frontend::model_file::ModelFile::from_json_str(&file.to_json()).unwrap(),
        xenon_frontend::model_file::ModelFile::from_yaml_str(&file.to_yaml()).unwrap(),
    ] {
        assert_eq!(back, file);
    }
    let m = Model::new(file.layers.clone(), &[2, 4, 4], 0).unwrap();
    // 2·(2·9·2) + (2·3 + 2·9·1) + 4·4·4·3 parameters; output 4 pooled maps + 3 features.
    assert_eq!(m.num_params(), 72 + 24 + 192);
    assert_eq!(m.output_shape(), &[7]);
    let names: Vec<&str> = m.params().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names[0], "MergeSum_0/b0/Convolution_0/W");
    assert!(
        names.contains(&"MergeBroadcast_1/b1/Linear_0/W"),
        "{names:?}"
    );
    // The residual block is conv(conv(x)) + x; its gradients are checked end to end.
    let residual = file.layers.layers[0].clone();
    let x = values(41, 18, -1.0, 1.0);
    let (_, y, f) = forward(&residual, &[1, 2, 3, 3], &x, false);
    let (w0, w1) = (
        f["L/b0/Convolution_0/W"].to_f64_vec(),
        f["L/b0/Convolution_1/W"].to_f64_vec(),
    );
    let (_, h) = direct_conv(&x, &w0, [1, 2, 3, 3], [2, 3, 3], 1, 1, 1);
    let h: Vec<f64> = h.iter().map(|v| v.max(0.0)).collect();
    let (_, h) = direct_conv(&h, &w1, [1, 2, 3, 3], [2, 3, 3], 1, 1, 1);
    for ((got, conv), x) in y.iter().zip(&h).zip(&x) {
        assert!((got - (conv + x)).abs() < 1e-12, "{got} vs {}", conv + x);
    }
    check_gradients("residual MergeSum", &residual, &[2, 2, 3, 3], true);
    check_gradients(
        "MergeBroadcast depth",
        &file.layers.layers[1],
        &[1, 2, 3, 3],
        true,
    );
    check_gradients(
        "MergeBroadcast stack",
        &file.layers.layers[2],
        &[2, 4, 2, 2],
        true,
    );
    // Mismatched branches.
    let bad = "layers:
- type: MergeSum
  config:
    layers:
    - - {type: Conv, config: {fshape: [3, 3, 2], init: {type: Uniform}}}
    - - {type: SkipNode}
cost: SumSquared
";
    let file = xenon_frontend::model_file::ModelFile::from_yaml_str(bad).unwrap();
    let e = Model::new(file.layers, &[2, 4, 4], 0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("layer 'MergeSum_0': branch 1 has shape [1, 2, 4, 4], but branch 0 has shape [1, 2, 2, 2]"),
        "{e}"
    );
    let bad = bad
        .replace("MergeSum", "MergeBroadcast")
        .replace("    layers:", "    merge: depth\n    layers:");
    let file = xenon_frontend::model_file::ModelFile::from_yaml_str(&bad).unwrap();
    let e = Model::new(file.layers, &[2, 4, 4], 0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("layer 'MergeBroadcast_0'") && e.contains("[2, 4, 4]"),
        "{e}"
    );
}

/// `layers` applied in turn to the parameter `x` of `shape` (a training graph).
fn lowered_stack(layers: &[Layer], shape: &[usize]) -> (Graph, NodeId, Vec<ParamSpec>) {
    let mut g = Graph::new();
    let x = g.parameter("x", F, shape).unwrap();
    let mut params = Vec::new();
    let mut y = x;
    for (i, layer) in layers.iter().enumerate() {
        let scope = format!("L{i}");
        let mut ctx =
            LayerCtx::new(&mut g, &scope, F, &mut params).with_mode(Mode::Training { seed: 1 });
        y = layer.lower(&mut ctx, &[y]).unwrap()[0];
    }
    (g, y, params)
}

/// A convolution with a bias and a ReLU, then max pooling: the pooling takes the maximum
/// before the bias and the ReLU (which then run on the pooled maps) and gives the values
/// and gradients of pooling after them. The reference is the same net with a leaky ReLU
/// of slope 1e-300, which pools last (its negative part is not a per-element maximum).
#[test]
fn max_pooling_pools_before_a_bias_and_a_relu() {
    let conv_relu = |slope: f64| -> Layer {
        Conv {
            fshape: vec![3, 3, 4],
            init: uniform(),
            strides: SpatialArg::Int(1),
            padding: SpatialArg::Int(1),
            dilation: SpatialArg::Default,
            bias: Some(Initializer::Constant { val: 0.0 }),
            batch_norm: false,
            activation: Some(xenon_frontend::activation::Activation::Rectlin { slope }),
            name: None,
        }
        .into()
    };
    let shape = [2, 3, 6, 6];
    let (mut fast, fy, params) =
        lowered_stack(&[conv_relu(0.0), pool(PoolOp::Max, 2, 2, 0)], &shape);
    let (mut slow, sy, _) = lowered_stack(&[conv_relu(1e-300), pool(PoolOp::Max, 2, 2, 0)], &shape);
    // Only the pooled maps [2, 4, 3, 3] go through the ReLU's maximum (the one the
    // convolution layer built on [2, 4, 6, 6] is left unused).
    let maxima: Vec<Vec<usize>> = fast
        .ids()
        .filter(|&id| {
            matches!(
                fast.node(id).op,
                xenon_compiler::ir::Op::Binary {
                    func: xenon_compiler::ir::BinaryOp::Max
                }
            ) && (id == fy || !fast.users(id).is_empty())
        })
        .map(|id| fast.ty(id).shape.clone())
        .collect();
    assert_eq!(maxima, [vec![2, 4, 3, 3]]);
    let mut grads = Vec::new();
    for (g, y) in [(&mut fast, fy), (&mut slow, sy)] {
        let yt = g.ty(y).clone();
        let r = g
            .constant(F, &yt.shape, values(777, yt.numel(), -1.0, 1.0))
            .unwrap();
        let w = g.mul(y, r).unwrap();
        let loss = g.sum(w, &[0, 1, 2, 3], false).unwrap();
        g.set_output("loss", loss).unwrap();
        g.set_output("y", y).unwrap();
        let wrt: Vec<&str> = std::iter::once("x")
            .chain(params.iter().map(|p| p.name.as_str()))
            .collect();
        let dg = autodiff::with_gradients(g, "loss", &wrt).unwrap();
        // Inputs around zero, so that many windows are all negative.
        let f = feeds(
            &params,
            &shape,
            &values(9, shape.iter().product(), -1.0, 1.0),
        );
        grads.push(interp::run(&dg, &f).unwrap());
    }
    let (a, b) = (&grads[0], &grads[1]);
    let mut compared = 0;
    for (name, t) in a.iter() {
        let (u, v) = (t.to_f64_vec(), b[name].to_f64_vec());
        assert_eq!(u.len(), v.len(), "{name}");
        for (p, q) in u.iter().zip(&v) {
            assert!(
                (p - q).abs() <= 1e-12 * (1.0 + q.abs()),
                "{name}: {p} vs {q}"
            );
        }
        compared += 1;
    }
    assert!(compared >= 4, "y, loss and the gradients: {compared}");
    assert!(a["y"].to_f64_vec().contains(&0.0));
    assert!(a["y"].to_f64_vec().iter().any(|&v| v > 0.0));
    // And the gradients of the reordered net against finite differences.
    let small = [1, 2, 4, 4];
    check_graph_gradients(
        "conv, bias, relu, max pool",
        lowered_stack(&[conv_relu(0.0), pool(PoolOp::Max, 2, 2, 0)], &small),
        &small,
    );
}
