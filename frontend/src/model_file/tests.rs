use super::*;
use crate::activation::Activation;
use crate::cost::Cost;
use crate::init::Initializer;
use crate::layer::LAYER_TYPES;
use crate::layer::{Layer, Sequential};
use crate::optimizer::Optimizer;
use crate::optimizer::{GradientDescentMomentum, Schedule, StepConfig};
use std::path::{Path, PathBuf};
use xenon_compiler::ir::{DType, Graph};

const MNIST_MLP_YAML: &str = include_str!("../../../examples/models/mnist_mlp.yaml");
const MNIST_MLP_JSON: &str = include_str!("../../../examples/models/mnist_mlp.json");
const MNIST_SOFTMAX_YAML: &str = include_str!("../../../examples/models/mnist_softmax.yaml");
const MLP_BIAS_YAML: &str = include_str!("../../../examples/models/mlp_784_64_10_bias.yaml");

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/models")
}

fn gauss() -> Initializer {
    Initializer::Gaussian {
        loc: 0.0,
        scale: 0.01,
    }
}

fn err(yaml: &str) -> ModelFileError {
    match ModelFile::from_yaml_str(yaml) {
        Ok(m) => panic!("expected an error, got {m:?}"),
        Err(e) => e,
    }
}

/// A layer whose arguments are all given or defaulted.
const ACT: &str = "{type: Activation, config: {transform: Tanh}}";

/// A minimal valid document with `layer` as its only layer.
fn one_layer(layer: &str) -> String {
    format!("layers:\n  - {layer}\ncost: SumSquared\n")
}

fn first_layer(yaml: &str) -> Layer {
    ModelFile::from_yaml_str(yaml).unwrap().layers.layers[0].clone()
}

// --- the example files -------------------------------------------------------------

#[test]
fn mnist_mlp_yaml_says_what_neons_example_says() {
    let m = ModelFile::from_yaml_str(MNIST_MLP_YAML).unwrap();
    assert_eq!(m.backend, Some(BackendName::Mkl));
    assert_eq!(m.epochs, Some(10));
    assert_eq!(m.batchsize, Some(128));
    assert_eq!(
        m.layers.layers,
        vec![
            Layer::Linear {
                nout: 100,
                init: gauss(),
                bsum: false,
                name: None
            },
            Layer::Activation {
                transform: Activation::Rectlin { slope: 0.0 },
                name: None
            },
            Layer::Linear {
                nout: 10,
                init: gauss(),
                bsum: false,
                name: None
            },
            Layer::Activation {
                transform: Activation::Logistic { shortcut: true },
                name: None
            },
        ]
    );
    assert_eq!(m.cost, Cost::CrossEntropyBinary { scale: 1.0 });
    assert_eq!(m.optimizer, Some(Optimizer::gdm(0.1, 0.9)));
    assert_eq!(m.dataset, Some(DatasetSpec::new(DatasetName::Mnist)));

    // 784·100 + 100·10 weights, no biases.
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[2, 784]).unwrap();
    let fwd = m.layers.forward(&mut g, x).unwrap();
    let params: usize = fwd
        .params
        .iter()
        .map(|p| p.shape.iter().product::<usize>())
        .sum();
    assert_eq!(params, 79_400);
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
    let inits: Vec<&Initializer> = m
        .layers
        .layers
        .iter()
        .filter_map(|l| match l {
            Layer::Linear { init, .. } => Some(init),
            _ => None,
        })
        .collect();
    assert_eq!(inits, vec![&gauss(), &gauss()]);

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
    assert!(matches!(&m.layers.layers[0], Layer::Linear { init, .. } if *init == u));
    assert!(matches!(&m.layers.layers[1], Layer::Bias { init, .. } if *init == u));
}

#[test]
fn mnist_softmax_is_mnist_mlp_with_softmax_and_multiclass_cross_entropy() {
    let mlp = ModelFile::from_yaml_str(MNIST_MLP_YAML).unwrap();
    let sm = ModelFile::from_yaml_str(MNIST_SOFTMAX_YAML).unwrap();
    assert_eq!(
        sm.layers.layers[3],
        Layer::Activation {
            transform: Activation::Softmax {
                axis: 0,
                epsilon: 2f64.powi(-23)
            },
            name: None
        }
    );
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
    assert_eq!(
        m.layers.layers,
        vec![
            Layer::Affine {
                nout: 64,
                init: gauss(),
                bias: Some(zero.clone()),
                batch_norm: false,
                activation: Some(Activation::Rectlin { slope: 0.0 }),
                name: None
            },
            Layer::Affine {
                nout: 10,
                init: gauss(),
                bias: Some(zero),
                batch_norm: false,
                activation: Some(Activation::Softmax {
                    axis: 0,
                    epsilon: 2f64.powi(-23)
                }),
                name: None
            },
        ]
    );
    assert_eq!(m.cost, Cost::by_name("CrossEntropyMulti").unwrap());
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[2, 784]).unwrap();
    let fwd = m.layers.forward(&mut g, x).unwrap();
    let params: usize = fwd
        .params
        .iter()
        .map(|p| p.shape.iter().product::<usize>())
        .sum();
    assert_eq!(params, 50_890);
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

#[test]
fn to_json_and_to_yaml_round_trip() {
    for text in [MNIST_MLP_YAML, MNIST_SOFTMAX_YAML, MLP_BIAS_YAML] {
        let m = ModelFile::from_yaml_str(text).unwrap();
        let json = m.to_json();
        assert_eq!(ModelFile::from_json_str(&json).unwrap(), m, "{json}");
        let yaml = m.to_yaml();
        assert_eq!(ModelFile::from_yaml_str(&yaml).unwrap(), m, "{yaml}");
    }
    // Absent optional keys stay absent; dataset extras survive.
    let m = ModelFile::from_yaml_str(
        "layers: [{type: Activation, config: {transform: Tanh}}]
cost: MeanSquared
dataset: {name: mnist, train_config: {shuffle: true, scale: [0.875, 1]}}
",
    )
    .unwrap();
    let json = m.to_json();
    for absent in ["backend", "epochs", "batchsize", "optimizer"] {
        assert!(!json.contains(absent), "{json}");
    }
    let back = ModelFile::from_json_str(&json).unwrap();
    assert_eq!(back, m);
    assert_eq!(
        back.dataset.unwrap().extra["train_config"],
        serde_json::json!({"shuffle": true, "scale": [0.875, 1]})
    );
}

#[test]
fn writers_quote_strings_that_look_like_other_values() {
    let names = [
        "true", "null", "1.5", "a: b", "- x", "", "#c", "*ref", "~", "x\ny",
    ];
    let layers = names
        .iter()
        .map(|n| Layer::Activation {
            transform: Activation::Identity,
            name: Some(n.to_string()),
        })
        .collect();
    let m = ModelFile {
        backend: Some(BackendName::Gpu),
        epochs: Some(0),
        batchsize: Some(1),
        layers: Sequential::new(layers),
        cost: Cost::SumSquared,
        optimizer: None,
        dataset: None,
    };
    assert_eq!(ModelFile::from_json_str(&m.to_json()).unwrap(), m);
    let yaml = m.to_yaml();
    assert_eq!(ModelFile::from_yaml_str(&yaml).unwrap(), m, "{yaml}");
}

#[test]
fn to_json_writes_the_schema_shape() {
    let m = ModelFile::from_yaml_str(MNIST_MLP_YAML).unwrap();
    let v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
    assert_eq!(v["backend"], "mkl");
    assert_eq!(v["epochs"], 10);
    assert_eq!(v["batchsize"], 128);
    assert_eq!(v["layers"][0]["type"], "Linear");
    assert_eq!(v["layers"][0]["config"]["nout"], 100);
    assert_eq!(v["layers"][0]["config"]["init"]["type"], "Gaussian");
    assert_eq!(v["layers"][0]["config"]["init"]["config"]["scale"], 0.01);
    assert_eq!(v["cost"]["type"], "CrossEntropyBinary");
    assert_eq!(v["optimizer"]["type"], "GradientDescentMomentum");
    assert_eq!(v["optimizer"]["config"]["momentum_coef"], 0.9);
    assert_eq!(v["dataset"], serde_json::json!({"name": "mnist"}));
}

// --- what the schema accepts --------------------------------------------------------

#[test]
fn config_may_be_omitted_empty_or_null() {
    for transform in [
        "{type: Tanh}",
        "{type: Tanh, config: {}}",
        "{type: Tanh, config: null}",
        "{type: Tanh, config: }",
    ] {
        let l = first_layer(&one_layer(&format!(
            "{{type: Activation, config: {{transform: {transform}}}}}"
        )));
        assert!(
            matches!(
                l,
                Layer::Activation {
                    transform: Activation::Tanh,
                    ..
                }
            ),
            "{transform}: {l:?}"
        );
    }
    // A struct variant whose arguments all have defaults.
    for transform in [
        "{type: Explin}",
        "{type: Explin, config: {}}",
        "{type: Explin, config: null}",
    ] {
        let l = first_layer(&one_layer(&format!(
            "{{type: Activation, config: {{transform: {transform}}}}}"
        )));
        assert!(
            matches!(
                l,
                Layer::Activation {
                    transform: Activation::Explin { alpha: 1.0 },
                    ..
                }
            ),
            "{transform}: {l:?}"
        );
    }
}

#[test]
fn omitted_arguments_take_neons_defaults() {
    let m = ModelFile::from_yaml_str(
        "layers:
  - {type: Linear, config: {nout: 4, init: {type: Gaussian}}}
  - {type: Activation, config: {transform: {type: Normalizer}}}
cost: {type: CrossEntropyMulti}
optimizer: {type: GradientDescentMomentum, config: {learning_rate: 0.5}}
",
    )
    .unwrap();
    assert_eq!(
        m.layers.layers[0],
        Layer::Linear {
            nout: 4,
            init: Initializer::Gaussian {
                loc: 0.0,
                scale: 1.0
            },
            bsum: false,
            name: None
        }
    );
    assert_eq!(
        m.layers.layers[1],
        Layer::Activation {
            transform: Activation::Normalizer { divisor: 128.0 },
            name: None
        }
    );
    assert_eq!(
        m.cost,
        Cost::CrossEntropyMulti {
            scale: 1.0,
            usebits: false
        }
    );
    assert_eq!(m.optimizer, Some(Optimizer::gdm(0.5, 0.0)));
    assert_eq!((m.backend, m.epochs, m.batchsize), (None, None, None));
    assert_eq!(m.dataset, None);
}

#[test]
fn nested_objects_and_key_order() {
    // `config` before `type`, a schedule inside the optimizer, a bare class name for a
    // nested object, and a cost written as an object.
    let m = ModelFile::from_yaml_str(
        "layers:
  - {config: {nout: 2, init: GlorotUniform, name: fc}, type: Linear}
cost: {type: CrossEntropyBinary, config: {scale: 2}}
optimizer:
  type: GradientDescentMomentum
  config:
    learning_rate: 0.1
    schedule: {type: Schedule, config: {step_config: [2, 4], change: 0.5}}
",
    )
    .unwrap();
    assert_eq!(
        m.layers.layers[0],
        Layer::Linear {
            nout: 2,
            init: Initializer::GlorotUniform,
            bsum: false,
            name: Some("fc".into())
        }
    );
    assert_eq!(m.cost, Cost::CrossEntropyBinary { scale: 2.0 });
    let Some(Optimizer::GradientDescentMomentum(GradientDescentMomentum { schedule, .. })) =
        m.optimizer
    else {
        panic!("no optimizer")
    };
    assert_eq!(
        schedule,
        Schedule::Schedule {
            step_config: Some(StepConfig::Epochs(vec![2, 4])),
            change: 0.5
        }
    );
}

#[test]
fn backend_names_map_to_xenon_backends() {
    for (name, want, xenon) in [
        ("cpu", BackendName::Cpu, "cpu"),
        ("mkl", BackendName::Mkl, "cpu"),
        ("gpu", BackendName::Gpu, "opencl"),
    ] {
        let m = ModelFile::from_yaml_str(&format!("backend: {name}\n{}", one_layer(ACT))).unwrap();
        assert_eq!(m.backend, Some(want));
        assert_eq!(want.xenon_backend(), xenon);
        assert_eq!(want.as_str(), name);
    }
}

// --- errors ---------------------------------------------------------------------------

#[test]
fn unknown_layer_type_lists_the_known_ones() {
    let e = err("cost: SumSquared
layers:
  - {type: Linear, config: {nout: 2, init: GlorotUniform}}
  - {type: Dense, config: {nout: 2}}
");
    assert_eq!(
        e.to_string(),
        "unknown layer type \"Dense\" at layers[1] (line 4, column 12); \
             known types: Linear, Bias, Affine, Activation"
    );
    assert!(matches!(e, ModelFileError::UnknownType { known, .. } if known == LAYER_TYPES));
}

/// The known-type lists come from the enums themselves (serde's list of variants); the
/// public `NAMES` constants must agree with them.
#[test]
fn every_known_type_list_matches_its_names_constant() {
    let known = |yaml: &str| match err(yaml) {
        ModelFileError::UnknownType { known, kind, .. } => (kind, known.to_vec()),
        e => panic!("{e}"),
    };
    assert_eq!(
        known(&one_layer("{type: Nope}")),
        ("layer", LAYER_TYPES.to_vec())
    );
    assert_eq!(
        known(&one_layer("{type: Activation, config: {transform: Nope}}")),
        ("activation", Activation::NAMES.to_vec())
    );
    assert_eq!(
        known(&one_layer("{type: Bias, config: {init: Nope}}")),
        ("initializer", Initializer::NAMES.to_vec())
    );
    assert_eq!(
        known("layers: [{type: Activation, config: {transform: Tanh}}]\ncost: Nope\n"),
        ("cost", Cost::NAMES.to_vec())
    );
    assert_eq!(
        known(
            "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: SumSquared\noptimizer: Nope\n"
        ),
        ("optimizer", Optimizer::NAMES.to_vec())
    );
    assert_eq!(
        known(
            "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: SumSquared\noptimizer: {type: GradientDescentMomentum, \
                 config: {learning_rate: 1, schedule: Nope}}\n"
        ),
        ("schedule", Schedule::NAMES.to_vec())
    );
}

#[test]
fn every_listed_name_is_accepted_as_a_type() {
    let not_unknown = |yaml: String| {
        if let Err(e @ ModelFileError::UnknownType { .. }) = ModelFile::from_yaml_str(&yaml) {
            panic!("{yaml}: {e}")
        }
    };
    for n in LAYER_TYPES {
        not_unknown(one_layer(&format!("{{type: {n}}}")));
    }
    for n in Activation::NAMES {
        not_unknown(one_layer(&format!(
            "{{type: Activation, config: {{transform: {n}}}}}"
        )));
    }
    for n in Initializer::NAMES {
        not_unknown(one_layer(&format!("{{type: Bias, config: {{init: {n}}}}}")));
    }
    for n in Cost::NAMES {
        not_unknown(format!(
            "layers: [{{type: Activation, config: {{transform: Tanh}}}}]\ncost: {n}\n"
        ));
    }
    for n in Optimizer::NAMES {
        not_unknown(format!(
            "layers: [{{type: Activation, config: {{transform: Tanh}}}}]\ncost: SumSquared\noptimizer: {n}\n"
        ));
    }
    for n in Schedule::NAMES {
        not_unknown(format!(
            "layers: [{{type: Activation, config: {{transform: Tanh}}}}]\ncost: SumSquared\noptimizer: {{type: GradientDescentMomentum, \
                 config: {{learning_rate: 1, schedule: {n}}}}}\n"
        ));
    }
}

#[test]
fn unknown_argument_lists_the_accepted_ones() {
    let e = err(&one_layer(
        "{type: Linear, config: {nouts: 100, init: GlorotUniform}}",
    ));
    assert_eq!(
        e.to_string(),
        "layers[0] (Linear): unknown argument \"nouts\" (line 2, column 29); \
             accepted: nout, init, bsum, name"
    );
    // Inside a nested object, the path names both classes.
    let e = err(&one_layer(
        "{type: Linear, config: {nout: 1, init: {type: Gaussian, config: {sigma: 1}}}}",
    ));
    assert_eq!(
        e.to_string(),
        "layers[0] (Linear).init (Gaussian): unknown argument \"sigma\" (line 2, column 70); \
             accepted: loc, scale"
    );
    // In the optimizer.
    let e = err(
        "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: SumSquared\noptimizer:\n  type: GradientDescentMomentum\n  \
             config: {learning_rate: 0.1, momentum: 0.9}\n",
    );
    assert!(
        e.to_string().starts_with(
            "optimizer (GradientDescentMomentum): unknown argument \"momentum\" \
                 (line 5, column 32); accepted: learning_rate, momentum_coef,"
        ),
        "{e}"
    );
    // A class that takes no arguments.
    let e = err(&one_layer(
        "{type: Activation, config: {transform: {type: Tanh, config: {name: t}}}}",
    ));
    assert_eq!(
        e.to_string(),
        "layers[0] (Activation).transform (Tanh): unknown argument \"name\" \
             (line 2, column 66); accepted: none (this class takes no arguments)"
    );
}

/// The enums' own serde impls reject unknown arguments too, for code that reads them
/// with serde_json directly.
#[test]
fn the_enums_deny_unknown_fields_by_themselves() {
    let ok: Layer = serde_json::from_str(
        r#"{"type": "Linear", "config": {"nout": 3, "init": {"type": "GlorotUniform"}}}"#,
    )
    .unwrap();
    assert!(matches!(ok, Layer::Linear { nout: 3, .. }));
    let e = serde_json::from_str::<Layer>(
        r#"{"type": "Linear", "config": {"nouts": 3, "init": {"type": "GlorotUniform"}}}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown field `nouts`"), "{e}");
    let e = serde_json::from_str::<Layer>(r#"{"type": "Linear", "confg": {}}"#).unwrap_err();
    assert!(e.to_string().contains("confg"), "{e}");
    let e = serde_json::from_str::<Initializer>(r#"{"type": "Gaussian", "config": {"std": 1}}"#)
        .unwrap_err();
    assert!(e.to_string().contains("unknown field `std`"), "{e}");
    let e =
        serde_json::from_str::<Cost>(r#"{"type": "CrossEntropyMulti", "config": {"bits": true}}"#)
            .unwrap_err();
    assert!(e.to_string().contains("unknown field `bits`"), "{e}");
    let e = serde_json::from_str::<Activation>(r#"{"type": "Rectlin", "config": {"alpha": 1}}"#)
        .unwrap_err();
    assert!(e.to_string().contains("unknown field `alpha`"), "{e}");
    let e = serde_json::from_str::<Schedule>(
        r#"{"type": "ExpSchedule", "config": {"decay": 1, "x": 1}}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown field `x`"), "{e}");
}

#[test]
fn unknown_key_beside_type_and_config() {
    let e = err(&one_layer("{type: Linear, confg: {nout: 1}}"));
    assert_eq!(
        e.to_string(),
        "layers[0] (Linear): unknown key \"confg\" (line 2, column 20); accepted: type, config"
    );
}

#[test]
fn missing_required_argument() {
    let e = err(&one_layer("{type: Linear, config: {init: GlorotUniform}}"));
    assert_eq!(
        e.to_string(),
        "layers[0] (Linear): missing required argument \"nout\" (line 2, column 28)"
    );
    // With `config` left out altogether, the place is the layer.
    let e = err("layers:\n  - type: Linear\ncost: SumSquared\n");
    assert!(
        matches!(&e, ModelFileError::MissingArgument { at, arg, pos }
                if at == "layers[0] (Linear)" && arg == "nout" && pos.unwrap().line == 2),
        "{e}"
    );
    assert!(e.to_string().contains("missing required argument \"nout\""));
    let e = err(
        "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: SumSquared\noptimizer: GradientDescentMomentum\n",
    );
    assert!(
        e.to_string().starts_with(
            "optimizer (GradientDescentMomentum): missing required argument \"learning_rate\""
        ),
        "{e}"
    );
}

#[test]
fn missing_required_keys() {
    let e = err("cost: SumSquared\n");
    assert_eq!(e.to_string(), "model file: missing required key \"layers\"");
    let e = err("layers: [{type: Activation, config: {transform: Tanh}}]\n");
    assert_eq!(e.to_string(), "model file: missing required key \"cost\"");
    let e = err(&one_layer("{config: {nout: 3}}"));
    assert_eq!(
        e.to_string(),
        "layers[0]: missing required key \"type\" (line 2, column 5)"
    );
    let e = err(&format!(
        "{}dataset: {{train_config: {{}}}}\n",
        one_layer(ACT)
    ));
    assert_eq!(
        e.to_string(),
        "dataset: missing required key \"name\" (line 4, column 10)"
    );
}

#[test]
fn yaml_syntax_error_names_the_line() {
    let e = err("layers:\n  - type: Linear\n    config: {nout: 3\ncost: SumSquared\n");
    let ModelFileError::Syntax {
        format: "YAML",
        pos: Some(pos),
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(pos.line, 4);
    assert!(
        e.to_string().starts_with("invalid YAML at line 4, column "),
        "{e}"
    );
    assert_eq!(e.to_string().lines().count(), 1);

    let e = err("layers:\n  - {type: Bias}\n bad: 1\ncost: SumSquared\n");
    assert!(
        e.to_string().starts_with("invalid YAML at line 3, column "),
        "{e}"
    );

    let e = err(
        "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: SumSquared\nlayers: [{type: Activation, config: {transform: Tanh}}]\n",
    );
    assert_eq!(
        e.to_string(),
        "invalid YAML at line 3, column 1: duplicate key \"layers\""
    );
    let e = err("layers: [{type: Linear, config: {nout: 1, init: *nowhere}}]\n");
    assert!(
        e.to_string().starts_with("invalid YAML at line 1, column "),
        "{e}"
    );
    assert!(e.to_string().contains("anchor"), "{e}");
}

#[test]
fn wrong_value_types_name_the_value_and_line() {
    let e = err(
        "layers:\n  - type: Linear\n    config:\n      nout: many\n      \
                     init: GlorotUniform\ncost: SumSquared\n",
    );
    assert_eq!(
        e.to_string(),
        "layers[0] (Linear).nout: invalid type: string \"many\", expected usize \
             (line 4, column 13)"
    );
    let e = err(&one_layer(
        "{type: Linear, config: {nout: -2, init: GlorotUniform}}",
    ));
    assert!(
        e.to_string()
            .starts_with("layers[0] (Linear).nout: invalid value: integer `-2`"),
        "{e}"
    );
    let e = err(&one_layer(
        "{type: Activation, config: {transform: {type: Logistic, config: {shortcut: 3}}}}",
    ));
    assert_eq!(
        e.to_string(),
        "layers[0] (Activation).transform (Logistic).shortcut: invalid type: integer `3`, \
             expected a boolean (line 2, column 80)"
    );
    let e = err(&format!("epochs: ten\n{}", one_layer(ACT)));
    assert_eq!(
        e.to_string(),
        "epochs: invalid type: string \"ten\", expected usize (line 1, column 9)"
    );
    let e = err("layers: {type: Tanh}\ncost: SumSquared\n");
    assert!(
        e.to_string()
            .starts_with("layers: invalid type: map, expected a sequence"),
        "{e}"
    );
    let e = err(&one_layer("5"));
    assert_eq!(
        e.to_string(),
        "layers[0]: expected a {type: ..., config: {...}} mapping or a class name, found \
             integer `5` (line 2, column 5)"
    );
    let e = err(&one_layer("{type: 5}"));
    assert!(
        e.to_string()
            .starts_with("layers[0].type: the class name in `type` must be a string"),
        "{e}"
    );
    let e = err(
        "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: SumSquared\noptimizer: {type: GradientDescentMomentum, \
             config: {learning_rate: 1, schedule: {type: Schedule, config: {step_config: x}}}}\n",
    );
    assert!(
        e.to_string().starts_with(
            "optimizer (GradientDescentMomentum).schedule (Schedule).step_config: expected a \
                 list of epochs"
        ),
        "{e}"
    );
    let e = err(&format!("epochs: .inf\n{}", one_layer(ACT)));
    assert_eq!(
        e.to_string(),
        "invalid YAML at line 1, column 9: non-finite number inf is not allowed"
    );
}

#[test]
fn unknown_backend_lists_cpu_mkl_gpu() {
    let e = err(&format!("backend: tpu\n{}", one_layer(ACT)));
    assert_eq!(
        e.to_string(),
        "unknown backend \"tpu\" (line 1, column 10); known backends: cpu, mkl, gpu"
    );
    let e = err(&format!("backend: 3\n{}", one_layer(ACT)));
    assert!(
        e.to_string()
            .starts_with("backend: invalid type: integer `3`"),
        "{e}"
    );
}

#[test]
fn unknown_dataset_lists_mnist() {
    let e = err(&format!("{}dataset: {{name: cifar10}}\n", one_layer(ACT)));
    assert_eq!(
        e.to_string(),
        "unknown dataset \"cifar10\" (line 4, column 17); known datasets: mnist"
    );
    let e = err(&format!("{}dataset: mnist\n", one_layer(ACT)));
    assert!(
        e.to_string()
            .starts_with("dataset: expected a mapping such as {name: mnist}"),
        "{e}"
    );
}

#[test]
fn other_structural_errors() {
    let e = err("- layers\n");
    assert!(
        e.to_string()
            .starts_with("model file: expected a mapping of top-level keys"),
        "{e}"
    );
    let e = err("layers: []\ncost: SumSquared\n");
    assert_eq!(
        e.to_string(),
        "layers: the list of layers is empty (line 1, column 9)"
    );
}

#[test]
fn json_errors() {
    let e = ModelFile::from_json_str("{\"layers\": [\n  {\"type\": \"Tanh\"}\n").unwrap_err();
    assert!(
        matches!(&e, ModelFileError::Syntax { format: "JSON", pos: Some(p), .. } if p.line == 3),
        "{e:?}"
    );
    assert!(
        e.to_string().starts_with("invalid JSON at line 3, column "),
        "{e}"
    );

    let e = ModelFile::from_json_str("{\"cost\": \"SumSquared\",\n \"cost\": \"SumSquared\"}")
        .unwrap_err();
    assert!(e.to_string().contains("duplicate key \"cost\""), "{e}");

    // Errors inside valid JSON carry positions too.
    let e = ModelFile::from_json_str(
        "{\"layers\": [\n  {\"type\": \"Linear\", \"config\": {\"nout\": \"7\"}}\n], \
             \"cost\": \"SumSquared\"}",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "layers[0] (Linear).nout: invalid type: string \"7\", expected usize \
             (line 2, column 41)"
    );
    let e =
        ModelFile::from_json_str("{\"layers\": [{\"type\": \"Dense\"}], \"cost\": \"SumSquared\"}")
            .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unknown layer type \"Dense\" at layers[0]"),
        "{e}"
    );
}

#[test]
fn errors_are_one_line_and_report_their_position() {
    let cases = [
        one_layer("{type: Dense}"),
        one_layer("{type: Linear, config: {nouts: 1}}"),
        "layers: [\n".to_string(),
        format!("backend: tpu\n{}", one_layer(ACT)),
    ];
    for yaml in cases {
        let e = err(&yaml);
        assert_eq!(e.to_string().lines().count(), 1, "{e}");
        assert!(e.position().is_some(), "{e}");
    }
}
