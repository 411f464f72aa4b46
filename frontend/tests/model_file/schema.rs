//! What the schema accepts: omitted, empty or null `config`, neon's defaults, nested objects
//! in any key order, every listed class name, and the enums' own serde impls.

use super::support::*;
use serde_json::json;
use xenon_frontend::activation::Activation;
use xenon_frontend::cost::Cost;
use xenon_frontend::init::Initializer;
use xenon_frontend::layer::{LAYER_TYPES, Layer};
use xenon_frontend::model_file::{BackendName, ModelFile, ModelFileError};
use xenon_frontend::optimizer::{Change, GradientDescentMomentum, Optimizer, Schedule, StepConfig};

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
        assert_eq!(l, activation_json(Activation::Tanh), "{transform}");
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
        assert_eq!(
            l,
            activation_json(Activation::Explin { alpha: 1.0 }),
            "{transform}"
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
    let gaussian = Initializer::Gaussian {
        loc: 0.0,
        scale: 1.0,
    };
    let normalizer = Activation::Normalizer { divisor: 128.0 };
    assert_eq!(
        layers_json(&m),
        json!([linear_json(4, gaussian), activation_json(normalizer)])
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
        layers_json(&m)[0],
        json!({"type": "Linear", "config": {
            "nout": 2, "init": value(Initializer::GlorotUniform), "bsum": false, "name": "fc",
        }})
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
            change: Change::Factor(0.5)
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

/// The enums' own serde impls reject unknown arguments too, for code that reads them
/// with serde_json directly.
#[test]
fn the_enums_deny_unknown_fields_by_themselves() {
    let ok: Layer = serde_json::from_str(
        r#"{"type": "Linear", "config": {"nout": 3, "init": {"type": "GlorotUniform"}}}"#,
    )
    .unwrap();
    assert_eq!(value(&ok)["type"], "Linear");
    assert_eq!(value(&ok)["config"]["nout"], 3);
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
