//! A model file 100,000 layers deep, as YAML and as JSON, reads and builds its forward
//! graph with the per-layer information `xenon summary` prints; a YAML file past the node
//! budget ([`MAX_YAML_NODES`]) is refused with a clear error. Nothing recurses on the
//! model's depth: the test harness runs each test on a thread with a 2 MiB stack.

use xenon_compiler::ir::{DType, Graph};
use xenon_frontend::model_file::{MAX_YAML_NODES, ModelFile};

/// Activation layers between the first Linear layer and the last Activation.
const DEPTH: usize = 100_000;

/// `Linear(10)`, then `DEPTH` ReLUs, then a logistic: the repro of a model too deep for the
/// YAML reader's default budget and, before, for the compiler's recursion.
fn yaml() -> String {
    let mut s = String::from(
        "epochs: 1\nbatchsize: 128\nlayers:\n- type: Linear\n  config: {nout: 10, init: {type: Gaussian}}\n",
    );
    for _ in 0..DEPTH {
        s.push_str("- type: Activation\n  config: {transform: {type: Rectlin}}\n");
    }
    s.push_str(
        "- type: Activation\n  config: {transform: {type: Logistic}}\ncost: CrossEntropyBinary\n\
         optimizer: {type: GradientDescentMomentum, config: {learning_rate: 0.1, momentum_coef: 0.9}}\n",
    );
    s
}

/// The forward graph on `[128, 784]` inputs, checked as `xenon summary` shows it.
fn check_summary(file: &ModelFile) {
    assert_eq!(file.layers.layers.len(), DEPTH + 2);
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[128, 784]).unwrap();
    let fwd = file.layers.forward(&mut g, x).unwrap();
    assert_eq!(g.ty(fwd.output).shape, [128, 10]);
    assert_eq!(fwd.layers.len(), DEPTH + 2);
    assert_eq!(fwd.layers[0].params, 7840);
    let last = &fwd.layers[DEPTH + 1];
    assert_eq!(last.name, format!("Activation_{}", DEPTH));
    assert_eq!(last.kind, "Activation(Logistic)");
    assert_eq!(last.out_shape, [10]);
    assert_eq!(fwd.layers.iter().map(|l| l.params).sum::<usize>(), 7840);
    assert!(g.len() > DEPTH);
}

#[test]
fn a_yaml_model_100000_layers_deep_loads() {
    let file = ModelFile::from_yaml_str(&yaml()).unwrap();
    check_summary(&file);
}

#[test]
fn a_json_model_100000_layers_deep_loads() {
    let json = ModelFile::from_yaml_str(&yaml()).unwrap().to_json();
    let file = ModelFile::from_json_str(&json).unwrap();
    check_summary(&file);
}

#[test]
fn a_yaml_file_past_the_node_budget_is_refused() {
    // One more scalar than the budget, in one flow sequence.
    let mut text = String::with_capacity(2 * MAX_YAML_NODES + 64);
    text.push_str("junk: [");
    for _ in 0..MAX_YAML_NODES {
        text.push_str("0,");
    }
    text.push_str("0]\nlayers: []\ncost: SumSquared\n");
    let err = ModelFile::from_yaml_str(&text).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "budget breached: the file holds more than {MAX_YAML_NODES} YAML nodes"
        )),
        "{err}"
    );
}
