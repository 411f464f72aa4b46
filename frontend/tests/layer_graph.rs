//! The layer graph: branches joined by `MergeSum`, evaluated on the reference interpreter
//! against a hand computation; the graph's errors; and `Sequential` as a chain graph.

use xenon_compiler::interp::{self, Feeds};
use xenon_compiler::ir::{DType, Graph};
use xenon_frontend::layer::{LayerCtx, LayerError, Port};
use xenon_frontend::prelude::*;
use xenon_runtime::Tensor;

fn zero() -> Initializer {
    Initializer::Constant { val: 0.0 }
}

fn feed(feeds: &mut Feeds, name: &str, shape: &[usize], values: &[f64]) {
    let t = Tensor::from_f64(shape.to_vec(), values.to_vec()).unwrap();
    feeds.insert(name.into(), t);
}

/// `x · Wᵀ` for `x` of shape `[n, k]` and `W` of shape `[m, k]`, row-major.
fn xwt(x: &[f64], w: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
    let mut y = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            y[i * m + j] = (0..k).map(|t| x[i * k + t] * w[j * k + t]).sum();
        }
    }
    y
}

/// x → Linear `a`; x → Affine `b` (bias, tanh); MergeSum(a, b).
fn two_branches() -> LayerGraph {
    let mut net = LayerGraph::new();
    let x = net.input("x").unwrap();
    let a = net
        .add(Linear::new(2, zero()).with_name("a"), [x.clone()])
        .unwrap();
    let b = net
        .add(
            Affine::new(2, zero())
                .with_bias(zero())
                .with_activation(Activation::Tanh)
                .with_name("b"),
            [x],
        )
        .unwrap();
    let sum = net.add(MergeSum::new(), [a, b]).unwrap();
    net.output("y", sum).unwrap();
    net
}

#[test]
fn two_branches_summed_match_a_hand_computation() {
    let net = two_branches();
    let mut g = Graph::new();
    let x = g.input("x", DType::F64, &[2, 3]).unwrap();
    let fwd = net.forward(&mut g, &[x]).unwrap();
    g.set_output("y", fwd.outputs[0]).unwrap();

    let names: Vec<_> = fwd.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a/W", "b/W", "b_bias/b"]);
    let layers: Vec<_> = fwd
        .layers
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.kind.as_str(),
                l.out_shape.clone(),
                l.params,
            )
        })
        .collect();
    assert_eq!(
        layers,
        [
            ("a", "Linear", vec![2], 6),
            ("b", "Linear", vec![2], 6),
            ("b_bias", "Bias", vec![2], 2),
            ("b_act", "Activation(Tanh)", vec![2], 0),
            ("MergeSum_0", "MergeSum", vec![2], 0),
        ]
    );

    let xv = [0.5, -1.0, 2.0, 1.5, 0.25, -0.75];
    let wa = [0.1, 0.2, 0.3, -0.4, 0.5, -0.6];
    let wb = [0.7, -0.8, 0.9, 0.05, 0.15, -0.25];
    let bb = [0.3, -0.2];
    let mut feeds = Feeds::new();
    feed(&mut feeds, "x", &[2, 3], &xv);
    feed(&mut feeds, "a/W", &[2, 3], &wa);
    feed(&mut feeds, "b/W", &[2, 3], &wb);
    feed(&mut feeds, "b_bias/b", &[2], &bb);
    let y = interp::run(&g, &feeds).unwrap()["y"].to_f64_vec();

    let ya = xwt(&xv, &wa, 2, 3, 2);
    let yb = xwt(&xv, &wb, 2, 3, 2);
    let want: Vec<f64> = (0..4).map(|i| ya[i] + (yb[i] + bb[i % 2]).tanh()).collect();
    assert_eq!(y.len(), 4);
    for (got, want) in y.iter().zip(&want) {
        assert!((got - want).abs() < 1e-12, "{y:?} vs {want:?}");
    }
}

#[test]
fn layers_may_be_added_before_the_layers_they_read() {
    let mut net = LayerGraph::new();
    let x = net.input("x").unwrap();
    let sum = net.add(MergeSum::new(), ["a", "b"]).unwrap();
    net.add(Linear::new(4, zero()).with_name("b"), [x.clone()])
        .unwrap();
    net.add(Linear::new(4, zero()).with_name("a"), [x]).unwrap();
    net.output("y", sum).unwrap();
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[5, 3]).unwrap();
    let fwd = net.forward(&mut g, &[x]).unwrap();
    assert_eq!(g.ty(fwd.outputs[0]).shape, [5, 4]);
    // Lowered producers first; the sum last.
    assert_eq!(fwd.layers.last().unwrap().name, "MergeSum_0");
    assert_eq!(fwd.params.len(), 2);
}

/// Adds `net` to a fresh graph with one f32 input of `shape`.
fn lower(net: &LayerGraph, shape: &[usize]) -> Result<(), LayerError> {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, shape).unwrap();
    net.forward(&mut g, &[x]).map(|_| ())
}

#[test]
fn unknown_references_are_named() {
    let mut net = LayerGraph::new();
    net.input("x").unwrap();
    let l = net.add(Linear::new(2, zero()), ["nope"]).unwrap();
    net.output("y", l).unwrap();
    assert_eq!(
        lower(&net, &[1, 2]).unwrap_err().to_string(),
        "layer 'Linear_0' refers to 'nope', which is no graph input or layer"
    );

    let mut net = LayerGraph::new();
    net.input("x").unwrap();
    net.add(Linear::new(2, zero()), [Port::Input("z".into())])
        .unwrap();
    let e = lower(&net, &[1, 2]).unwrap_err();
    assert!(
        matches!(&e, LayerError::UnknownReference { name, .. } if name == "z"),
        "{e}"
    );

    assert_eq!(
        output_error("Linear_1".into()),
        "graph output 'y' refers to 'Linear_1', which is no graph input or layer"
    );
}

/// The error of lowering x → Linear `a` with the graph output `y` at `port`.
fn output_error(port: Port) -> String {
    let mut net = LayerGraph::new();
    let x = net.input("x").unwrap();
    net.add(Linear::new(2, zero()).with_name("a"), [x]).unwrap();
    net.output("y", port).unwrap();
    lower(&net, &[1, 2]).unwrap_err().to_string()
}

#[test]
fn a_missing_output_port_is_named() {
    assert_eq!(
        output_error(Port::output("a", 1)),
        "graph output 'y' refers to output 1 of 'a', which has 1 output(s)"
    );
}

#[test]
fn cycles_are_errors() {
    let mut net = LayerGraph::new();
    let x = net.input("x").unwrap();
    net.add(MergeSum::new().with_name("a"), [x, "b".into()])
        .unwrap();
    net.add(Linear::new(2, zero()).with_name("b"), ["a"])
        .unwrap();
    net.output("y", "b").unwrap();
    let e = lower(&net, &[1, 2]).unwrap_err();
    assert!(matches!(&e, LayerError::Cycle { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg == "the layer graph has a cycle through layer 'a'"
            || msg == "the layer graph has a cycle through layer 'b'",
        "{msg}"
    );

    let mut net = LayerGraph::new();
    net.add(Linear::new(2, zero()).with_name("self"), ["self"])
        .unwrap();
    let mut g = Graph::new();
    assert_eq!(
        net.forward(&mut g, &[]).unwrap_err().to_string(),
        "the layer graph has a cycle through layer 'self'"
    );
}

#[test]
fn wrong_arity_is_an_error_naming_the_layer() {
    let mut net = LayerGraph::new();
    let x = net.input("x").unwrap();
    assert_eq!(
        net.add(MergeSum::new(), [x.clone()])
            .unwrap_err()
            .to_string(),
        "layer 'MergeSum_0' (MergeSum) takes at least 2 inputs, got 1"
    );
    assert_eq!(
        net.add(Linear::new(2, zero()).with_name("fc"), [x.clone(), x])
            .unwrap_err()
            .to_string(),
        "layer 'fc' (Linear) takes 1 input, got 2"
    );
    // A rejected layer takes no name: the next unnamed MergeSum is still MergeSum_0.
    let p = net.add(MergeSum::new(), ["a", "b"]).unwrap();
    assert_eq!(p, Port::output("MergeSum_0", 0));

    // Lowering a layer directly checks too.
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[1, 2]).unwrap();
    let mut params = Vec::new();
    let mut ctx = LayerCtx::new(&mut g, "m", DType::F32, &mut params);
    let e = Layer::from(MergeSum::new())
        .lower(&mut ctx, &[x])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "layer 'm' (MergeSum) takes at least 2 inputs, got 1"
    );
}

#[test]
fn duplicate_names_are_errors() {
    let mut net = LayerGraph::new();
    let x = net.input("x").unwrap();
    assert_eq!(
        net.input("x").unwrap_err().to_string(),
        "two graph inputs are named 'x'"
    );
    net.add(Linear::new(2, zero()).with_name("a"), [x.clone()])
        .unwrap();
    assert_eq!(
        net.add(Bias::new(zero()).with_name("a"), [x.clone()])
            .unwrap_err()
            .to_string(),
        "two layers are named 'a'"
    );
    // A compound layer's parts are named too.
    net.add(
        Affine::new(2, zero()).with_bias(zero()).with_name("fc"),
        [x.clone()],
    )
    .unwrap();
    assert_eq!(
        net.add(Bias::new(zero()).with_name("fc_bias"), [x.clone()])
            .unwrap_err()
            .to_string(),
        "two layers are named 'fc_bias'"
    );
    // An explicit name may not take an automatic one (`fc`'s bias counted as Bias_0).
    let auto = net.add(Bias::new(zero()), [x.clone()]).unwrap();
    assert_eq!(auto, Port::output("Bias_1", 0));
    assert_eq!(
        net.add(Bias::new(zero()).with_name("Bias_1"), [x])
            .unwrap_err()
            .to_string(),
        "two layers are named 'Bias_1'"
    );
    net.output("y", "a").unwrap();
    assert_eq!(
        net.output("y", "fc").unwrap_err().to_string(),
        "two graph outputs are named 'y'"
    );
}

#[test]
fn forward_takes_one_node_per_graph_input() {
    let mut net = LayerGraph::new();
    net.input("x").unwrap();
    net.input("t").unwrap();
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[1, 2]).unwrap();
    assert_eq!(
        net.forward(&mut g, &[x]).unwrap_err().to_string(),
        "the layer graph has 2 input(s) (x, t), got 1 node(s)"
    );
}

#[test]
fn merge_sum_rejects_different_shapes_naming_both() {
    let mut net = LayerGraph::new();
    let x = net.input("x").unwrap();
    let a = net.add(Linear::new(2, zero()), [x.clone()]).unwrap();
    let b = net.add(Linear::new(3, zero()), [x]).unwrap();
    net.add(MergeSum::new().with_name("join"), [a, b]).unwrap();
    assert_eq!(
        lower(&net, &[4, 5]).unwrap_err().to_string(),
        "layer 'join': input 1 has shape [4, 3], but input 0 has shape [4, 2]; \
         MergeSum adds inputs of one shape"
    );
}

#[test]
fn sequential_is_a_chain_graph_with_neons_names() {
    let seq = Sequential::new(vec![
        Affine::new(3, zero())
            .with_bias(zero())
            .with_activation(Activation::Tanh)
            .into(),
        Linear::new(4, zero()).with_name("fc").into(),
        Linear::new(5, zero()).into(),
        // A layer may share its name with the graph input.
        ActivationLayer::new(Activation::Identity)
            .with_name("x")
            .into(),
    ]);
    let net = seq.graph().unwrap();
    assert_eq!(net.inputs(), ["x"]);
    assert_eq!(net.outputs().collect::<Vec<_>>(), ["y"]);
    assert_eq!(
        net.layer_names().collect::<Vec<_>>(),
        ["Affine_0", "fc", "Linear_2", "x"]
    );
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[2, 6]).unwrap();
    let fwd = seq.forward(&mut g, x).unwrap();
    let names: Vec<_> = fwd.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Linear_0/W", "Bias_0/b", "fc/W", "Linear_2/W"]);
    let layers: Vec<_> = fwd.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        layers,
        ["Linear_0", "Bias_0", "Activation_0", "fc", "Linear_2", "x"]
    );
    assert_eq!(g.ty(fwd.output).shape, [2, 5]);

    // Two layers of one name were silently given one parameter name; now it is an error.
    let dup = Sequential::new(vec![
        Linear::new(2, zero()).with_name("fc").into(),
        Linear::new(2, zero()).with_name("fc").into(),
    ]);
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[2, 6]).unwrap();
    assert_eq!(
        dup.forward(&mut g, x).unwrap_err().to_string(),
        "two layers are named 'fc'"
    );

    // An empty chain is the identity.
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[2, 6]).unwrap();
    assert_eq!(
        Sequential::new(vec![]).forward(&mut g, x).unwrap().output,
        x
    );
}

#[test]
fn a_scalar_input_is_an_error_not_a_panic() {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[]).unwrap();
    for layer in [
        Layer::from(Linear::new(2, zero())),
        Bias::new(zero()).into(),
    ] {
        let e = Sequential::new(vec![layer]).forward(&mut g, x).unwrap_err();
        assert!(e.to_string().contains("got a scalar"), "{e}");
    }
    let x = g.input("v", DType::F32, &[3]).unwrap();
    let e = Sequential::new(vec![Bias::new(zero()).into()])
        .forward(&mut g, x)
        .unwrap_err();
    assert!(e.to_string().contains("got one axis"), "{e}");
}
