//! Layer-level checks shared by the layer tests: a layer lowered on a parameter input in
//! f64, its output on the reference interpreter, and its gradients against central
//! differences.

use std::collections::HashMap;
use xenon_compiler::autodiff;
use xenon_compiler::interp::{self, Feeds};
use xenon_compiler::ir::{DType, Graph, NodeId};
use xenon_frontend::layer::*;
use xenon_frontend::model::step_counter;
use xenon_runtime::Tensor;

pub const F: DType = DType::F64;

/// Deterministic values in `[lo, hi)`.
pub fn values(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n as u64)
        .map(|i| lo + (hi - lo) * xenon_runtime::rng::uniform_f32(seed, 0, i) as f64)
        .collect()
}

/// A graph with the parameter `x` of `shape` fed through `layer` (lowered for a training
/// graph when `training`); returns the graph, the output, and the layer's parameters.
pub fn lowered(layer: &Layer, shape: &[usize], training: bool) -> (Graph, NodeId, Vec<ParamSpec>) {
    let mut g = Graph::new();
    let x = g.parameter("x", F, shape).unwrap();
    let mut params = Vec::new();
    let y = {
        let mode = if training {
            Mode::Training { seed: 1 }
        } else {
            Mode::Inference
        };
        let mut ctx = LayerCtx::new(&mut g, "L", F, &mut params).with_mode(mode);
        layer.lower(&mut ctx, &[x]).unwrap()[0]
    };
    (g, y, params)
}

/// Feeds for `x` and every parameter: `x` from `xv`, parameters random.
pub fn feeds(params: &[ParamSpec], shape: &[usize], xv: &[f64]) -> Feeds {
    let mut f: Feeds = HashMap::new();
    f.insert(
        "x".into(),
        Tensor::from_f64(shape.to_vec(), xv.to_vec()).unwrap(),
    );
    f.insert(STEP.into(), step_counter(7));
    for (i, p) in params.iter().enumerate() {
        let n = p.shape.iter().product();
        let v = if p.name.ends_with("gvar") {
            values(50 + i as u64, n, 0.5, 2.0)
        } else {
            values(50 + i as u64, n, -1.0, 1.0)
        };
        f.insert(
            p.name.clone(),
            Tensor::from_f64(p.shape.clone(), v).unwrap(),
        );
    }
    f
}

/// The layer's output on `x` (values `xv`).
pub fn forward(
    layer: &Layer,
    shape: &[usize],
    xv: &[f64],
    training: bool,
) -> (Vec<usize>, Vec<f64>, Feeds) {
    let (mut g, y, params) = lowered(layer, shape, training);
    g.set_output("y", y).unwrap();
    let f = feeds(&params, shape, xv);
    let out = interp::run(&g, &f).unwrap();
    (out["y"].shape().to_vec(), out["y"].to_f64_vec(), f)
}

/// Gradients of `Σ y ⊙ R` with respect to `x` and every trainable parameter, symbolic
/// against central differences.
pub fn check_gradients(name: &str, layer: &Layer, shape: &[usize], training: bool) {
    check_graph_gradients(name, lowered(layer, shape, training), shape);
}

/// [`check_gradients`] of a lowered graph: the graph, its output and its parameters.
pub fn check_graph_gradients(
    name: &str,
    lowered: (Graph, NodeId, Vec<ParamSpec>),
    shape: &[usize],
) {
    let n: usize = shape.iter().product();
    check_against_differences(name, lowered, shape, &values(9, n, -1.0, 1.0), true);
}

/// Gradients of `Σ y ⊙ R` with respect to every trainable parameter of `layer` (not its
/// input `x`, which need not be differentiable: token ids), with `x` of `shape` fixed at
/// `xv`, symbolic against central differences.
pub fn check_param_gradients(
    name: &str,
    layer: &Layer,
    shape: &[usize],
    xv: &[f64],
    training: bool,
) {
    check_against_differences(name, lowered(layer, shape, training), shape, xv, false);
}

/// The gradients of `Σ y ⊙ R` (R fixed and random) with respect to every trainable
/// parameter, and `x` when `with_x`, at `x = xv`, symbolic against central differences.
fn check_against_differences(
    name: &str,
    (mut g, y, params): (Graph, NodeId, Vec<ParamSpec>),
    shape: &[usize],
    xv: &[f64],
    with_x: bool,
) {
    let yt = g.ty(y).clone();
    let r = g
        .constant(F, &yt.shape, values(777, yt.numel(), -1.0, 1.0))
        .unwrap();
    let w = g.mul(y, r).unwrap();
    let axes: Vec<usize> = (0..yt.rank()).collect();
    let loss = g.sum(w, &axes, false).unwrap();
    g.set_output("loss", loss).unwrap();
    let mut wrt: Vec<String> = with_x.then(|| "x".to_string()).into_iter().collect();
    wrt.extend(
        params
            .iter()
            .filter(|p| p.trainable)
            .map(|p| p.name.clone()),
    );
    assert!(!wrt.is_empty(), "{name}: nothing to check");
    let refs: Vec<&str> = wrt.iter().map(String::as_str).collect();
    let dg = autodiff::with_gradients(&g, "loss", &refs).unwrap();
    let base = feeds(&params, shape, xv);
    let out = interp::run(&dg, &base).unwrap();
    let loss_at = |f: &Feeds| interp::run(&g, f).unwrap()["loss"].to_f64_vec()[0];
    let eps = 1e-6;
    for v in &wrt {
        let analytic = out[&format!("grad/{v}")].to_f64_vec();
        let t = &base[v];
        for k in 0..analytic.len() {
            let at = |d: f64| {
                let mut f = base.clone();
                let mut vals = t.to_f64_vec();
                vals[k] += d;
                f.insert(
                    v.clone(),
                    Tensor::from_f64(t.shape().to_vec(), vals).unwrap(),
                );
                loss_at(&f)
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps);
            let tol = 1e-6 * (1.0 + fd.abs().max(analytic[k].abs()));
            assert!(
                (fd - analytic[k]).abs() <= tol,
                "{name}: d loss / d {v}[{k}]: symbolic {} vs finite differences {fd}",
                analytic[k]
            );
        }
    }
}

/// Uniform(±0.5) weights, large enough for gradient checks to see every path.
pub fn uniform() -> xenon_frontend::init::Initializer {
    xenon_frontend::init::Initializer::Uniform {
        low: -0.5,
        high: 0.5,
    }
}

/// neon's gate activation.
pub const LOGISTIC: xenon_frontend::activation::Activation =
    xenon_frontend::activation::Activation::Logistic { shortcut: false };

/// `Recurrent(n, tanh)` with Uniform(±0.5) weights.
pub fn rnn(n: usize, reset: bool) -> Layer {
    let mut l = Recurrent::new(n, uniform(), xenon_frontend::activation::Activation::Tanh);
    l.reset_cells = reset;
    l.into()
}

/// `LSTM(n, tanh, logistic)` with Uniform(±0.5) weights.
pub fn lstm(n: usize, reset: bool) -> Layer {
    let mut l = Lstm::new(
        n,
        uniform(),
        xenon_frontend::activation::Activation::Tanh,
        LOGISTIC,
    );
    l.reset_cells = reset;
    l.into()
}

/// `GRU(n, tanh, logistic)` with Uniform(±0.5) weights.
pub fn gru(n: usize, reset: bool) -> Layer {
    let mut l = Gru::new(
        n,
        uniform(),
        xenon_frontend::activation::Activation::Tanh,
        LOGISTIC,
    );
    l.reset_cells = reset;
    l.into()
}
