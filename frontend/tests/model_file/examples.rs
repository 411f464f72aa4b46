//! The example model files in `examples/models/`: what they say, that the YAML and JSON forms
//! agree, anchors, and loading by extension.

use super::support::*;
use serde_json::json;
use xenon_compiler::ir::{DType, Graph};
use xenon_frontend::activation::Activation;
use xenon_frontend::cost::Cost;
use xenon_frontend::init::Initializer;
use xenon_frontend::model_file::{
    BackendName, DatasetName, DatasetSpec, ModelFile, ModelFileError,
};
use xenon_frontend::optimizer::Optimizer;

#[test]
fn mnist_mlp_yaml_says_what_neons_example_says() {
    let m = ModelFile::from_yaml_str(MNIST_MLP_YAML).unwrap();
    assert_eq!(m.backend, Some(BackendName::Mkl));
    assert_eq!(m.epochs, Some(10));
    assert_eq!(m.batchsize, Some(128));
    assert_eq!(
        layers_json(&m),
        json!([
            linear_json(100, gauss()),
            activation_json(Activation::Rectlin { slope: 0.0 }),
            linear_json(10, gauss()),
            activation_json(Activation::Logistic { shortcut: true }),
        ])
    );
    assert_eq!(m.cost, Cost::CrossEntropyBinary { scale: 1.0 });
    assert_eq!(m.optimizer, Some(Optimizer::gdm(0.1, 0.9)));
    assert_eq!(m.dataset, Some(DatasetSpec::new(DatasetName::Mnist)));

    // 784·100 + 100·10 weights, no biases.
    assert_eq!(param_count(&m), 79_400);
}

#[test]
fn yaml_and_json_mnist_mlp_are_the_same_model() {
    let yaml = ModelFile::from_yaml_str(MNIST_MLP_YAML).unwrap();
    let json = ModelFile::from_json_str(MNIST_MLP_JSON).unwrap();
    assert_eq!(yaml, json);
    // YAML reads JSON too.
    assert_eq!(ModelFile::from_yaml_str(MNIST_MLP_JSON).unwrap(), json);
}

#[test]
fn anchors_and_aliases_resolve_to_equal_initializers() {
    let m = ModelFile::from_yaml_str(MNIST_MLP_YAML).unwrap();
    let layers = layers_json(&m);
    let inits: Vec<&serde_json::Value> = layers
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["type"] == "Linear")
        .map(|l| &l["config"]["init"])
        .collect();
    assert_eq!(inits, vec![&value(gauss()), &value(gauss())]);

    // An alias used for a non-default anchor carries every argument.
    let m = ModelFile::from_yaml_str(
        "a: &u {type: Uniform, config: {low: -0.5, high: 0.25}}
layers:
  - {type: Linear, config: {nout: 3, init: *u}}
  - {type: Bias, config: {init: *u}}
cost: SumSquared
",
    )
    .unwrap();
    let u = Initializer::Uniform {
        low: -0.5,
        high: 0.25,
    };
    let layers = layers_json(&m);
    assert_eq!(layers[0]["type"], "Linear");
    assert_eq!(layers[0]["config"]["init"], value(&u));
    assert_eq!(layers[1]["type"], "Bias");
    assert_eq!(layers[1]["config"]["init"], value(&u));
}

#[test]
fn mnist_softmax_is_mnist_mlp_with_softmax_and_multiclass_cross_entropy() {
    let mlp = ModelFile::from_yaml_str(MNIST_MLP_YAML).unwrap();
    let sm = ModelFile::from_yaml_str(MNIST_SOFTMAX_YAML).unwrap();
    let softmax = Activation::Softmax {
        axis: 0,
        epsilon: 2f64.powi(-23),
    };
    assert_eq!(layers_json(&sm)[3], activation_json(softmax));
    assert_eq!(sm.cost, Cost::by_name("CrossEntropyMulti").unwrap());
    let mut expected = mlp.clone();
    expected.layers.layers[3] = sm.layers.layers[3].clone();
    expected.cost = sm.cost.clone();
    assert_eq!(sm, expected);
}

#[test]
fn mlp_784_64_10_bias_has_affine_layers_and_50890_parameters() {
    let m = ModelFile::from_yaml_str(MLP_BIAS_YAML).unwrap();
    let zero = Initializer::Constant { val: 0.0 };
    let softmax = Activation::Softmax {
        axis: 0,
        epsilon: 2f64.powi(-23),
    };
    assert_eq!(
        layers_json(&m),
        json!([
            {"type": "Affine", "config": {
                "nout": 64, "init": value(gauss()), "bias": value(&zero), "batch_norm": false,
                "activation": value(Activation::Rectlin { slope: 0.0 }), "name": null,
            }},
            {"type": "Affine", "config": {
                "nout": 10, "init": value(gauss()), "bias": value(&zero), "batch_norm": false,
                "activation": value(softmax), "name": null,
            }},
        ])
    );
    assert_eq!(m.cost, Cost::by_name("CrossEntropyMulti").unwrap());
    assert_eq!(param_count(&m), 50_890);
}

#[test]
fn load_picks_the_format_by_extension() {
    let dir = examples_dir();
    let yaml = ModelFile::load(dir.join("mnist_mlp.yaml")).unwrap();
    let json = ModelFile::load(dir.join("mnist_mlp.json")).unwrap();
    assert_eq!(yaml, json);
    for name in ["mnist_softmax.yaml", "mlp_784_64_10_bias.yaml"] {
        ModelFile::load(dir.join(name)).unwrap();
    }

    // A JSON file must be JSON: YAML text in it is a JSON error.
    let tmp = std::env::temp_dir().join(format!("xenon-model-file-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let as_json = tmp.join("model.json");
    std::fs::write(&as_json, MNIST_MLP_YAML).unwrap();
    let e = ModelFile::load(&as_json).unwrap_err();
    assert!(
        matches!(e, ModelFileError::Syntax { format: "JSON", .. }),
        "{e}"
    );
    // Any other extension is read as YAML, which also reads JSON.
    let other = tmp.join("model.txt");
    std::fs::write(&other, MNIST_MLP_JSON).unwrap();
    assert_eq!(ModelFile::load(&other).unwrap(), json);
    std::fs::remove_dir_all(&tmp).unwrap();

    let missing = dir.join("no_such_model.yaml");
    let e = ModelFile::load(&missing).unwrap_err();
    assert!(matches!(&e, ModelFileError::Io { path, .. } if *path == missing));
    assert!(e.to_string().starts_with("cannot read model file "), "{e}");
}

/// The number of trainable values of `m`'s network, for a 784-feature input.
fn param_count(m: &ModelFile) -> usize {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[2, 784]).unwrap();
    let fwd = m.layers.forward(&mut g, x).unwrap();
    fwd.params
        .iter()
        .map(|p| p.shape.iter().product::<usize>())
        .sum()
}
