//! The errors of reading a model file: one line each, naming the place (with line and column)
//! and, for unknown names, the accepted ones.

use super::support::*;
use xenon_frontend::activation::Activation;
use xenon_frontend::cost::Cost;
use xenon_frontend::init::Initializer;
use xenon_frontend::layer::LAYER_TYPES;
use xenon_frontend::model_file::{ModelFile, ModelFileError};
use xenon_frontend::optimizer::{Optimizer, Schedule};

#[test]
fn unknown_layer_type_lists_the_known_ones() {
    let e = err("cost: SumSquared
layers:
  - {type: Linear, config: {nout: 2, init: GlorotUniform}}
  - {type: Dense, config: {nout: 2}}
");
    assert_eq!(
        e.to_string(),
        format!(
            "unknown layer type \"Dense\" at layers[1] (line 4, column 12); known types: {}",
            LAYER_TYPES.join(", ")
        )
    );
    assert!(LAYER_TYPES.starts_with(&["Linear", "Bias", "Affine", "Activation"]));
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
    assert_error(
        &one_layer("{type: Activation, config: {transform: {type: Tanh, config: {name: t}}}}"),
        "layers[0] (Activation).transform (Tanh): unknown argument \"name\" \
             (line 2, column 66); accepted: none (this class takes no arguments)",
    );
}

#[test]
fn unknown_key_beside_type_and_config() {
    assert_error(
        &one_layer("{type: Linear, confg: {nout: 1}}"),
        "layers[0] (Linear): unknown key \"confg\" (line 2, column 20); accepted: type, config",
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
    assert_error(
        "cost: SumSquared\n",
        "model file: missing required key \"layers\"",
    );
    assert_error(
        "layers: [{type: Activation, config: {transform: Tanh}}]\n",
        "model file: missing required key \"cost\"",
    );
    assert_error(
        &one_layer("{config: {nout: 3}}"),
        "layers[0]: missing required key \"type\" (line 2, column 5)",
    );
    assert_error(
        &format!("{}dataset: {{train_config: {{}}}}\n", one_layer(ACT)),
        "dataset: missing required key \"name\" (line 4, column 10)",
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

    assert_error(
        "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: SumSquared\nlayers: [{type: Activation, config: {transform: Tanh}}]\n",
        "invalid YAML at line 3, column 1: duplicate key \"layers\"",
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
    assert_error(
        "layers:\n  - type: Linear\n    config:\n      nout: many\n      \
                     init: GlorotUniform\ncost: SumSquared\n",
        "layers[0] (Linear).nout: invalid type: string \"many\", expected usize \
             (line 4, column 13)",
    );
    assert_error_starts(
        &one_layer("{type: Linear, config: {nout: -2, init: GlorotUniform}}"),
        "layers[0] (Linear).nout: invalid value: integer `-2`",
    );
    assert_error(
        &one_layer(
            "{type: Activation, config: {transform: {type: Logistic, config: {shortcut: 3}}}}",
        ),
        "layers[0] (Activation).transform (Logistic).shortcut: invalid type: integer `3`, \
             expected a boolean (line 2, column 80)",
    );
    assert_error(
        &format!("epochs: ten\n{}", one_layer(ACT)),
        "epochs: invalid type: string \"ten\", expected usize (line 1, column 9)",
    );
    assert_error_starts(
        "layers: {type: Tanh}\ncost: SumSquared\n",
        "layers: invalid type: map, expected a sequence",
    );
    assert_error(
        &one_layer("5"),
        "layers[0]: expected a {type: ..., config: {...}} mapping or a class name, found \
             integer `5` (line 2, column 5)",
    );
    assert_error_starts(
        &one_layer("{type: 5}"),
        "layers[0].type: the class name in `type` must be a string",
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
    assert_error(
        &format!("epochs: .inf\n{}", one_layer(ACT)),
        "invalid YAML at line 1, column 9: non-finite number inf is not allowed",
    );
}

#[test]
fn unknown_backend_lists_cpu_mkl_gpu() {
    assert_error(
        &format!("backend: tpu\n{}", one_layer(ACT)),
        "unknown backend \"tpu\" (line 1, column 10); known backends: cpu, mkl, gpu",
    );
    assert_error_starts(
        &format!("backend: 3\n{}", one_layer(ACT)),
        "backend: invalid type: integer `3`",
    );
}

#[test]
fn unknown_dataset_lists_the_known_ones() {
    assert_error(
        &format!("{}dataset: {{name: cifar100}}\n", one_layer(ACT)),
        "unknown dataset \"cifar100\" (line 4, column 17); known datasets: mnist, arrays, cifar10, imagenet, text, imdb",
    );
    assert_error_starts(
        &format!("{}dataset: mnist\n", one_layer(ACT)),
        "dataset: expected a mapping such as {name: mnist}",
    );
}

#[test]
fn arrays_entries_are_checked_with_positions() {
    assert_error(
        &format!(
            "{}dataset: {{name: arrays, file: d.npz, shufle: true}}\n",
            one_layer(ACT)
        ),
        "dataset: unknown key \"shufle\" (line 4, column 38); accepted: name, targets, file, train, test, nclass, lshape, shuffle, streams",
    );
    assert_error_starts(
        &format!(
            "{}dataset: {{name: arrays, file: d.npz, targets: onehot}}\n",
            one_layer(ACT)
        ),
        "dataset.targets: unknown variant \"onehot\"; expected one of: classes, real, inputs",
    );
    assert_error_starts(
        &format!(
            "{}dataset: {{name: arrays, train: {{x: a.npy, z: b.npy}}}}\n",
            one_layer(ACT)
        ),
        "dataset.train: unknown key \"z\"",
    );
    assert_error_starts(
        &format!(
            "{}dataset: {{name: arrays, nclass: -1, file: d.npz}}\n",
            one_layer(ACT)
        ),
        "dataset.nclass:",
    );
    assert_error_starts(
        &format!("{}dataset: {{name: arrays}}\n", one_layer(ACT)),
        "dataset (arrays): missing required key",
    );
}

#[test]
fn convolution_and_pooling_arguments_are_checked() {
    let conv = |args: &str| {
        one_layer(&format!(
            "{{type: Conv, config: {{fshape: [3, 3, 4], init: {{type: Constant}}, {args}}}}}"
        ))
    };
    assert_error_starts(
        &conv("padding: -1"),
        "layers[0] (Conv).padding: must be at least 0, got -1",
    );
    assert_error_starts(
        &conv("strides: {str_h: 2, str_w: -2}"),
        "layers[0] (Conv).strides: str_w must be at least 0, got -2",
    );
    assert_error_starts(
        &conv("padding: [1, 1]"),
        "layers[0] (Conv).padding: invalid type: sequence, expected a non-negative integer or a mapping",
    );
    assert_error_starts(
        &one_layer("{type: Pooling, config: {fshape: some}}"),
        "layers[0] (Pooling).fshape: \"some\" is not a window; accepted: an integer, a list, \"all\"",
    );
    assert_error_starts(
        &one_layer("{type: Pooling, config: {fshape: 2, op: median}}"),
        "layers[0] (Pooling).op: unknown variant \"median\"; expected one of: max, avg",
    );
    // Round trip of the spatial arguments.
    let text = conv("strides: {str_h: 2, str_w: 1}, padding: 1");
    let m = ModelFile::from_yaml_str(&text).unwrap();
    assert_eq!(ModelFile::from_json_str(&m.to_json()).unwrap(), m);
    assert_eq!(ModelFile::from_yaml_str(&m.to_yaml()).unwrap(), m);
}

#[test]
fn other_structural_errors() {
    assert_error_starts(
        "- layers\n",
        "model file: expected a mapping of top-level keys",
    );
    assert_error(
        "layers: []\ncost: SumSquared\n",
        "layers: the list of layers is empty (line 1, column 9)",
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
