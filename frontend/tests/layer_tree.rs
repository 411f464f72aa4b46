//! Tree, SingleOutputTree, BranchNode and Multicost: the gradients with neon's `alphas`
//! against central differences of each branch's cost in f64, the outputs a model's
//! inference gives, training neon's mnist_branch model file, and the errors.

mod common;

use std::collections::HashMap;
use xenon_compiler::autodiff;
use xenon_compiler::interp::{self, Feeds};
use xenon_compiler::ir::{DType, Graph};
use xenon_frontend::cost::Cost;
use xenon_frontend::data::{BatchIterator, BatchOptions, DataSource, Mnist};
use xenon_frontend::init::Initializer;
use xenon_frontend::layer::*;
use xenon_frontend::metric::Metric;
use xenon_frontend::model::{Model, ModelError};
use xenon_frontend::model_file::ModelFile;
use xenon_frontend::optimizer::Optimizer;
use xenon_runtime::Tensor;

const F: DType = DType::F64;

fn values(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n as u64)
        .map(|i| lo + (hi - lo) * xenon_runtime::rng::uniform_f32(seed, 0, i) as f64)
        .collect()
}

fn init() -> Initializer {
    Initializer::Uniform {
        low: -0.5,
        high: 0.5,
    }
}

fn point(name: &str) -> Layer {
    BranchNode::default().with_name(name).into()
}

/// Trunk A(5) · b1 · B(4) · tanh · b2 · C(3); branch 1 from b1: D(3); branch 2 from b2: E(3).
fn small_tree(alphas: Vec<f64>) -> Tree {
    Tree::new(vec![
        vec![
            Linear::new(5, init()).into(),
            point("b1"),
            Linear::new(4, init()).into(),
            ActivationLayer::new(xenon_frontend::activation::Activation::Tanh).into(),
            point("b2"),
            Linear::new(3, init()).into(),
        ],
        vec![point("b1"), Linear::new(3, init()).into()],
        vec![point("b2"), Linear::new(3, init()).into()],
    ])
    .with_alphas(alphas)
}

#[test]
fn alphas_weight_each_branch_error_where_it_enters_the_trunk() {
    let (a0, a1, a2) = (0.5, 0.25, 2.0);
    let net = Sequential::new(vec![small_tree(vec![a0, a1, a2]).into()]);
    let mut g = Graph::new();
    let x = g.input("x", F, &[2, 6]).unwrap();
    let fwd = net
        .forward_mode(&mut g, x, Mode::Training { seed: 0 })
        .unwrap();
    assert_eq!(fwd.outputs.len(), 3);
    let t = g.input("t", F, &[2, 3]).unwrap();
    let cost = Cost::Multicost {
        costs: vec![Cost::SumSquared; 3],
        weights: Some(vec![1.0, 0.0, 0.5]),
    };
    cost.check().unwrap();
    let total = cost.lower_all(&mut g, &fwd.outputs, t).unwrap();
    g.set_output("loss", total.objective).unwrap();
    g.set_output("reported", total.mean).unwrap();
    for (i, &y) in fwd.outputs.iter().enumerate() {
        let c = Cost::SumSquared.lower(&mut g, y, t).unwrap();
        g.set_output(&format!("c{i}"), c.mean).unwrap();
    }
    let names: Vec<String> = fwd.params.iter().map(|p| p.name.clone()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let dg = autodiff::with_gradients(&g, "loss", &refs).unwrap();

    let mut feeds: Feeds = HashMap::new();
    feeds.insert(
        "x".into(),
        Tensor::from_f64(vec![2, 6], values(1, 12, -1.0, 1.0)).unwrap(),
    );
    feeds.insert(
        "t".into(),
        Tensor::from_f64(vec![2, 3], values(2, 6, -1.0, 1.0)).unwrap(),
    );
    for (k, p) in fwd.params.iter().enumerate() {
        let n = p.shape.iter().product();
        feeds.insert(
            p.name.clone(),
            Tensor::from_f64(p.shape.clone(), values(10 + k as u64, n, -0.5, 0.5)).unwrap(),
        );
    }
    let out = interp::run(&dg, &feeds).unwrap();
    // The reported cost is the weighted sum of the branch costs.
    let c: Vec<f64> = (0..3)
        .map(|i| out[&format!("c{i}")].to_f64_vec()[0])
        .collect();
    let reported = out["reported"].to_f64_vec()[0];
    assert!(
        (reported - (c[0] + 0.5 * c[2])).abs() < 1e-12,
        "{reported} vs {c:?}"
    );

    // Per parameter group, the factor each branch cost's gradient gets.
    let factors = |name: &str| -> [f64; 3] {
        match name {
            n if n.contains("/b0/Linear_0/") => [a0 * a0, a1, a0 * a2],
            n if n.contains("/b0/Linear_1/") => [a0, 0.0, a2],
            n if n.contains("/b0/Linear_2/") => [1.0, 0.0, 0.0],
            n if n.contains("/b1/") => [0.0, 1.0, 0.0],
            n if n.contains("/b2/") => [0.0, 0.0, 1.0],
            n => panic!("unexpected parameter {n}"),
        }
    };
    let eps = 1e-6;
    let cost_at =
        |feeds: &Feeds, i: usize| interp::run(&g, feeds).unwrap()[&format!("c{i}")].to_f64_vec()[0];
    for p in &fwd.params {
        let grad = out[&format!("grad/{}", p.name)].to_f64_vec();
        let base = feeds[&p.name].to_f64_vec();
        let f = factors(&p.name);
        for k in 0..base.len() {
            let mut want = 0.0;
            for (i, fi) in f.iter().enumerate() {
                let at = |d: f64| {
                    let mut v = base.clone();
                    v[k] += d;
                    let mut fd = feeds.clone();
                    fd.insert(
                        p.name.clone(),
                        Tensor::from_f64(p.shape.clone(), v).unwrap(),
                    );
                    cost_at(&fd, i)
                };
                want += fi * (at(eps) - at(-eps)) / (2.0 * eps);
            }
            assert!(
                (grad[k] - want).abs() <= 1e-7 * (1.0 + want.abs()),
                "{}[{k}]: symbolic {} vs expected {want}",
                p.name,
                grad[k]
            );
        }
    }
}

#[test]
fn inference_gives_every_tree_output_and_a_single_output_tree_the_trunk() {
    let tree = small_tree(vec![1.0, 1.0, 1.0]);
    let model = Model::new(Sequential::new(vec![tree.clone().into()]), &[6], 0).unwrap();
    let g = model.inference_graph(4).unwrap();
    let outs: Vec<&str> = g.outputs().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(outs, ["y", "y1", "y2"]);
    // The model computes them: three outputs of [n, 3], the first also what `predict` gives.
    let mut model = model;
    let x = Tensor::from_f64(vec![4, 6], values(3, 24, -1.0, 1.0))
        .unwrap()
        .cast(DType::F32);
    let all = model.predict_all(&x).unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|t| t.shape() == [4, 3]));
    assert_eq!(model.predict(&x).unwrap(), all[0]);
    let single = SingleOutputTree(tree);
    let model = Model::new(Sequential::new(vec![single.into()]), &[6], 0).unwrap();
    let g = model.inference_graph(4).unwrap();
    let outs: Vec<&str> = g.outputs().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(outs, ["y"]);
    // Both declare every branch's parameters.
    assert_eq!(model.params().len(), 5);
    let mut model = model;
    assert_eq!(model.predict_all(&x).unwrap().len(), 1);
}

#[test]
fn mnist_branch_trains_every_branch_and_reports_the_trunk_cost() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/models/mnist_branch.yaml"
    );
    let file = ModelFile::load(std::path::Path::new(path)).unwrap();
    let mnist = Mnist::bundled().unwrap();
    let train = &mnist.train;
    let mut model = Model::new(file.layers.clone(), &train.feature_shape, 0).unwrap();
    assert_eq!(model.num_params(), 84_704);
    let before: HashMap<String, Vec<f64>> = model
        .params()
        .iter()
        .map(|p| (p.name.clone(), model.value(&p.name).unwrap().to_f64_vec()))
        .collect();
    let mut it = BatchIterator::new(train, BatchOptions::new(128)).unwrap();
    let optimizer = file.optimizer.clone().unwrap();
    // Six epochs: neon's Gaussian(0.01) weights through four layers start slowly (about
    // 2.30 for two epochs, 0.70 after five, on the command line).
    let stats = model
        .fit(&mut it, &file.cost, &optimizer, 6, &mut [])
        .unwrap();
    // The reported cost is the trunk's CrossEntropyMulti alone (weights [1, 0, 0]): about
    // ln 10 at first.
    assert!((stats[0].train_cost - 10f64.ln()).abs() < 0.01, "{stats:?}");
    assert!(stats[5].train_cost < 1.0, "{stats:?}");
    // Every branch trained (the branches' costs have weight 0 but still give gradients).
    for p in model.params() {
        let now = model.value(&p.name).unwrap().to_f64_vec();
        assert_ne!(now, before[&p.name], "{} did not change", p.name);
    }
    let err = model
        .eval(&mnist.test, 128, &[Metric::Misclassification { steps: 1 }])
        .unwrap()[0]
        .1;
    assert!(err < 0.2, "test misclassification {err}");
}

/// neon's mnist_merge: two copies of each digit (`streams: 2`), one per branch of the
/// first MergeMultistream; 178,800 weights.
#[test]
fn mnist_merge_trains_on_two_streams_of_the_bundled_digits() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/models/mnist_merge.yaml"
    );
    let file = ModelFile::load(std::path::Path::new(path)).unwrap();
    let source = DataSource::new(file.dataset.as_ref(), None, std::path::Path::new("")).unwrap();
    let streams = source.streams().unwrap();
    assert_eq!(streams, vec![vec![1, 28, 28]; 2]);
    assert_eq!(source.shapes().unwrap(), (vec![2 * 784], 10));
    let (train, test) = source.load().unwrap();
    assert_eq!(
        (train.streams.clone(), train.n_features()),
        (streams.clone(), 1568)
    );
    // Each example holds its digit twice.
    assert_eq!(train.sample(3)[..784], train.sample(3)[784..]);
    let mut model =
        Model::new(source.feed(&file.layers).unwrap(), &train.feature_shape, 0).unwrap();
    assert_eq!(model.num_params(), 178_800);
    let mut it = BatchIterator::new(&train, BatchOptions::new(128)).unwrap();
    let optimizer = file.optimizer.clone().unwrap();
    model
        .fit(&mut it, &file.cost, &optimizer, 3, &mut [])
        .unwrap();
    let err = model
        .eval(&test, 128, &[Metric::Misclassification { steps: 1 }])
        .unwrap()[0]
        .1;
    // 4.0 % after 10 epochs on the command line.
    assert!(err < 0.12, "test misclassification {err}");
}

fn fit_error(layers: Vec<Layer>, cost: Cost) -> String {
    let data = common::mnist_head(128);
    let mut model = match Model::new(Sequential::new(layers), &data.feature_shape, 0) {
        Ok(m) => m,
        Err(e) => return e.to_string(),
    };
    let mut it = BatchIterator::new(&data, BatchOptions::new(64)).unwrap();
    match model.fit(&mut it, &cost, &Optimizer::gdm(0.1, 0.9), 1, &mut []) {
        Ok(_) => panic!("fit succeeded"),
        Err(e @ ModelError::Cost(_)) | Err(e @ ModelError::Layer(_)) => e.to_string(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn bad_trees_and_costs_are_clear_errors() {
    let ce = Cost::CrossEntropyMulti {
        scale: 1.0,
        usebits: false,
    };
    let tree = |alphas: Vec<f64>| -> Layer {
        Tree::new(vec![
            vec![point("b1"), Linear::new(10, init()).into()],
            vec![point("b1"), Linear::new(10, init()).into()],
        ])
        .with_alphas(alphas)
        .into()
    };
    let e = fit_error(vec![tree(vec![1.0, 1.0])], ce.clone());
    assert!(
        e.contains("tree with 2 outputs") && e.contains("Multicost of 2 costs"),
        "{e}"
    );
    let multi = |n: usize, weights: Option<Vec<f64>>| Cost::Multicost {
        costs: vec![ce.clone(); n],
        weights,
    };
    let e = fit_error(vec![tree(vec![1.0, 1.0])], multi(3, None));
    assert!(e.contains("Multicost of 3"), "{e}");
    let e = fit_error(vec![tree(vec![1.0, 1.0])], multi(2, Some(vec![1.0])));
    assert!(e.contains("1 weights for 2 costs"), "{e}");
    let e = fit_error(vec![Linear::new(10, init()).into()], multi(2, None));
    assert!(e.contains("one output"), "{e}");
    let e = fit_error(vec![tree(vec![1.0])], multi(2, None));
    assert!(e.contains("alphas has 1 weights for 2 branches"), "{e}");
    // A branch from a point no earlier branch has, and a branch without a start.
    let e = fit_error(
        vec![
            Tree::new(vec![
                vec![point("b1"), Linear::new(10, init()).into()],
                vec![point("b9"), Linear::new(10, init()).into()],
            ])
            .into(),
        ],
        multi(2, None),
    );
    assert!(e.contains("'b9'") && e.contains("branch points: b1"), "{e}");
    let e = fit_error(
        vec![
            Tree::new(vec![
                vec![Linear::new(10, init()).into()],
                vec![Linear::new(10, init()).into()],
            ])
            .into(),
        ],
        multi(2, None),
    );
    assert!(e.contains("branch 1 must start with a BranchNode"), "{e}");
    // A multistream of two branches where a chain gives one input.
    let e = fit_error(
        vec![
            MergeMultistream {
                layers: vec![vec![Linear::new(10, init()).into()]; 2],
                merge: Merge::Stack,
                name: None,
                streams: None,
            }
            .into(),
        ],
        ce.clone(),
    );
    assert!(
        e.contains("MergeMultistream_0")
            && e.contains("takes 2 inputs")
            && e.contains("one input stream"),
        "{e}"
    );
    // A tree followed by more layers.
    let e = fit_error(
        vec![tree(vec![1.0, 1.0]), Linear::new(10, init()).into()],
        multi(2, None),
    );
    assert!(e.contains("must be the last layer"), "{e}");
}

#[test]
fn a_model_file_with_a_tree_and_a_multicost_parses() {
    let yaml = "layers:\n- type: Tree\n  config:\n    alphas: [1, 0.5]\n    layers:\n    - [{type: BranchNode, config: {name: p}}, {type: Linear, config: {nout: 10, init: GlorotUniform}}]\n    - [{type: BranchNode, config: {name: p}}, {type: Linear, config: {nout: 10, init: GlorotUniform}}]\ncost: {type: Multicost, config: {costs: [SumSquared, {type: CrossEntropyMulti, config: {usebits: true}}]}}\n";
    let m = ModelFile::from_yaml_str(yaml).unwrap();
    assert_eq!(m.cost.outputs(), 2);
    let err = ModelFile::from_yaml_str(&yaml.replace("alphas", "alpha")).unwrap_err();
    assert!(err.to_string().contains("alpha"), "{err}");
}

/// That `y` (3 rows of 7) is `[va·w0ᵀ, vb·w1ᵀ]`: rows of 4 and 6 inputs through a 5-wide
/// and a 2-wide linear layer, outputs stacked.
fn assert_branches_apart(y: &[f64], va: &[f64], vb: &[f64], w0: &[f64], w1: &[f64]) {
    for r in 0..3 {
        for o in 0..5 {
            let want: f64 = (0..4).map(|i| va[r * 4 + i] * w0[o * 4 + i]).sum();
            assert!((y[r * 7 + o] - want).abs() < 1e-12);
        }
        for o in 0..2 {
            let want: f64 = (0..6).map(|i| vb[r * 6 + i] * w1[o * 6 + i]).sum();
            assert!((y[r * 7 + 5 + o] - want).abs() < 1e-12);
        }
    }
}

/// MergeMultistream in a LayerGraph fed by two graph inputs: each branch sees its own
/// input; `stack` concatenates the flattened outputs; gradients reach both branches.
#[test]
fn merge_multistream_runs_each_branch_on_its_own_input() {
    let mut net = LayerGraph::new();
    let a = net.input("a").unwrap();
    let b = net.input("b").unwrap();
    let ms = MergeMultistream {
        layers: vec![
            vec![Linear::new(5, init()).into()],
            vec![Linear::new(2, init()).into()],
        ],
        merge: Merge::Stack,
        name: Some("ms".into()),
        streams: None,
    };
    let out = net.add(ms.clone(), [a.clone(), b.clone()]).unwrap();
    net.output("y", out).unwrap();
    let mut g = Graph::new();
    let xa = g.input("a", F, &[3, 4]).unwrap();
    let xb = g.input("b", F, &[3, 6]).unwrap();
    let fwd = net.forward(&mut g, &[xa, xb]).unwrap();
    assert_eq!(g.ty(fwd.outputs[0]).shape, [3, 7]);
    let names: Vec<&str> = fwd.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["ms/b0/Linear_0/W", "ms/b1/Linear_0/W"]);
    g.set_output("y", fwd.outputs[0]).unwrap();
    let va = values(1, 12, -1.0, 1.0);
    let vb = values(2, 18, -1.0, 1.0);
    let w0 = values(3, 20, -0.5, 0.5);
    let w1 = values(4, 12, -0.5, 0.5);
    let feeds: Feeds = [
        ("a", vec![3, 4], &va),
        ("b", vec![3, 6], &vb),
        ("ms/b0/Linear_0/W", vec![5, 4], &w0),
        ("ms/b1/Linear_0/W", vec![2, 6], &w1),
    ]
    .into_iter()
    .map(|(n, s, v)| (n.to_string(), Tensor::from_f64(s, v.clone()).unwrap()))
    .collect();
    let y = interp::run(&g, &feeds).unwrap()["y"].to_f64_vec();
    assert_branches_apart(&y, &va, &vb, &w0, &w1);
    // One input is an arity error naming the layer; depth merging of unequal maps too.
    let mut one = LayerGraph::new();
    let x = one.input("x").unwrap();
    let e = one.add(ms, [x]).unwrap_err().to_string();
    assert!(
        e.contains("ms") && e.contains("takes 2 inputs, got 1"),
        "{e}"
    );
    // Depth merging joins axis 1 and needs the other axes equal: [2, 3] against [2].
    let depth = MergeMultistream {
        layers: vec![
            vec![Linear::new(6, init()).into(), Reshape::new(&[2, 3]).into()],
            vec![Linear::new(2, init()).into()],
        ],
        merge: Merge::Depth,
        name: None,
        streams: None,
    };
    let mut net = LayerGraph::new();
    let (a, b) = (net.input("a").unwrap(), net.input("b").unwrap());
    let out = net.add(depth, [a, b]).unwrap();
    net.output("y", out).unwrap();
    let mut g = Graph::new();
    let xa = g.input("a", F, &[3, 4]).unwrap();
    let xb = g.input("b", F, &[3, 6]).unwrap();
    let e = net.forward(&mut g, &[xa, xb]).unwrap_err().to_string();
    assert!(
        e.contains("MergeMultistream_0") && e.contains("[2]") && e.contains("[2, 3]"),
        "{e}"
    );
}

/// A model's one input holding two streams side by side: a first MergeMultistream fed
/// the streams' shapes (as a multistream data set gives them) splits it, each branch on
/// its own stream, and its gradients reach both branches.
#[test]
fn a_model_splits_its_input_into_the_streams_of_a_first_multistream() {
    let ms = MergeMultistream::new(
        vec![
            vec![Linear::new(5, init()).into()],
            vec![Reshape::new(&[6]).into(), Linear::new(2, init()).into()],
        ],
        Merge::Stack,
    );
    let streams = vec![vec![4], vec![2, 3]];
    let layers = Sequential::new(vec![ms.into()]).fed_streams(&streams);
    let model = Model::new(layers.clone(), &[10], 7).unwrap();
    assert_eq!(model.output_shape(), &[7]);
    assert_eq!(model.num_params(), 4 * 5 + 6 * 2);
    let mut g = model.inference_graph(3).unwrap().with_float_dtype(F);
    let (va, vb) = (values(1, 12, -1.0, 1.0), values(2, 18, -1.0, 1.0));
    let x: Vec<f64> = (0..3)
        .flat_map(|r| va[r * 4..r * 4 + 4].iter().chain(&vb[r * 6..r * 6 + 6]))
        .copied()
        .collect();
    let mut feeds: Feeds = HashMap::new();
    feeds.insert("x".into(), Tensor::from_f64(vec![3, 10], x).unwrap());
    for p in model.params() {
        let v = model.value(&p.name).unwrap().to_f64_vec();
        feeds.insert(
            p.name.clone(),
            Tensor::from_f64(p.shape.clone(), v).unwrap(),
        );
    }
    let w0 = feeds["MergeMultistream_0/b0/Linear_0/W"].to_f64_vec();
    let w1 = feeds["MergeMultistream_0/b1/Linear_0/W"].to_f64_vec();
    let y = interp::run(&g, &feeds).unwrap()["y"].to_f64_vec();
    assert_branches_apart(&y, &va, &vb, &w0, &w1);
    // Both branches' weights get the gradients of the summed output: Σ over the batch of
    // their stream's inputs.
    let y = g.output("y").unwrap();
    let s = g.sum(y, &[0, 1], false).unwrap();
    g.set_output("loss", s).unwrap();
    let names = [
        "MergeMultistream_0/b0/Linear_0/W",
        "MergeMultistream_0/b1/Linear_0/W",
    ];
    let out = interp::run(
        &autodiff::with_gradients(&g, "loss", &names).unwrap(),
        &feeds,
    )
    .unwrap();
    let (d0, d1) = (
        out[&format!("grad/{}", names[0])].to_f64_vec(),
        out[&format!("grad/{}", names[1])].to_f64_vec(),
    );
    for i in 0..4 {
        let want: f64 = (0..3).map(|r| va[r * 4 + i]).sum();
        assert!((d0[i] - want).abs() < 1e-12 && (d0[4 + i] - want).abs() < 1e-12);
    }
    for i in 0..6 {
        let want: f64 = (0..3).map(|r| vb[r * 6 + i]).sum();
        assert!((d1[i] - want).abs() < 1e-12);
    }
    // Streams that do not fill the input, and a count unlike the branches', name the layer
    // and both sides.
    let e = Model::new(layers, &[11], 7).unwrap_err().to_string();
    assert!(
        e.contains("MergeMultistream_0") && e.contains("[11]") && e.contains("[[4], [2, 3]]"),
        "{e}"
    );
    let three = Sequential::new(vec![
        MergeMultistream::new(vec![vec![Linear::new(5, init()).into()]; 2], Merge::Stack).into(),
    ])
    .fed_streams(&[vec![2], vec![3], vec![5]]);
    let e = Model::new(three, &[10], 7).unwrap_err().to_string();
    assert!(e.contains("2 branches but 3 streams"), "{e}");
}
