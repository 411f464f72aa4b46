//! Documents and helpers shared by the model-file tests.

use serde_json::json;
use std::path::{Path, PathBuf};
use xenon_frontend::activation::Activation;
use xenon_frontend::init::Initializer;
use xenon_frontend::model_file::{ModelFile, ModelFileError};

pub const MNIST_MLP_YAML: &str = include_str!("../../../examples/models/mnist_mlp.yaml");
pub const MNIST_MLP_JSON: &str = include_str!("../../../examples/models/mnist_mlp.json");
pub const MNIST_SOFTMAX_YAML: &str = include_str!("../../../examples/models/mnist_softmax.yaml");
pub const MLP_BIAS_YAML: &str = include_str!("../../../examples/models/mlp_784_64_10_bias.yaml");

/// `examples/models/`.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/models")
}

/// The initializer of the example files' `wt_init` anchor.
pub fn gauss() -> Initializer {
    Initializer::Gaussian {
        loc: 0.0,
        scale: 0.01,
    }
}

/// The error of reading `yaml`, which must fail.
pub fn err(yaml: &str) -> ModelFileError {
    match ModelFile::from_yaml_str(yaml) {
        Ok(m) => panic!("expected an error, got {m:?}"),
        Err(e) => e,
    }
}

/// Asserts that reading `yaml` fails with exactly `message`.
pub fn assert_error(yaml: &str, message: &str) {
    assert_eq!(err(yaml).to_string(), message);
}

/// Asserts that reading `yaml` fails with a message that starts with `start`.
pub fn assert_error_starts(yaml: &str, start: &str) {
    let e = err(yaml);
    assert!(e.to_string().starts_with(start), "{e}");
}

/// A layer whose arguments are all given or defaulted.
pub const ACT: &str = "{type: Activation, config: {transform: Tanh}}";

/// A minimal valid document with `layer` as its only layer.
pub fn one_layer(layer: &str) -> String {
    format!("layers:\n  - {layer}\ncost: SumSquared\n")
}

/// The layers of `m` as the schema writes them: `[{"type": ..., "config": {...}}, ...]`,
/// every argument spelled out (so comparing them compares every argument).
pub fn layers_json(m: &ModelFile) -> serde_json::Value {
    serde_json::to_value(&m.layers.layers).unwrap()
}

/// The first layer of the model read from `yaml`, as [`layers_json`] writes it.
pub fn first_layer(yaml: &str) -> serde_json::Value {
    layers_json(&ModelFile::from_yaml_str(yaml).unwrap())[0].clone()
}

/// `value` as the schema writes it.
pub fn value<T: serde::Serialize>(value: T) -> serde_json::Value {
    serde_json::to_value(value).unwrap()
}

/// A `Linear` layer without a name, as the schema writes it.
pub fn linear_json(nout: usize, init: Initializer) -> serde_json::Value {
    json!({"type": "Linear", "config": {
        "nout": nout, "init": value(init), "bsum": false, "name": null,
    }})
}

/// An `Activation` layer without a name, as the schema writes it.
pub fn activation_json(transform: Activation) -> serde_json::Value {
    json!({"type": "Activation", "config": {"transform": value(transform), "name": null}})
}
