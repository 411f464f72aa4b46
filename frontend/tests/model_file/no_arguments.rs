//! Classes that take no arguments (`Identity`, `Tanh`, `GlorotUniform`, `SumSquared`,
//! `MeanSquared`): what their `config` may be, in model files and with plain serde_json (which
//! reads the layer stacks stored in saved models).

use super::support::{ACT, err, one_layer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::fmt::Debug;
use xenon_frontend::activation::Activation;
use xenon_frontend::cost::Cost;
use xenon_frontend::init::Initializer;
use xenon_frontend::model_file::{ModelFile, ModelFileError};

/// Each class that takes no arguments, a document with `OBJ` where it is written, and where
/// it lands in the document's JSON form.
fn places() -> Vec<(&'static str, String, &'static str)> {
    let transform = one_layer("{type: Activation, config: {transform: OBJ}}");
    let cost = format!("layers: [{ACT}]\ncost: OBJ\n");
    vec![
        ("Identity", transform.clone(), "/layers/0/config/transform"),
        ("Tanh", transform, "/layers/0/config/transform"),
        (
            "GlorotUniform",
            one_layer("{type: Bias, config: {init: OBJ}}"),
            "/layers/0/config/init",
        ),
        ("SumSquared", cost.clone(), "/cost"),
        ("MeanSquared", cost, "/cost"),
    ]
}

#[test]
fn config_may_be_absent_empty_or_null() {
    for (class, doc, at) in places() {
        for form in [
            "NAME",
            "{type: NAME}",
            "{type: NAME, config: {}}",
            "{type: NAME, config: null}",
            "{type: NAME, config: ~}",
            "{type: NAME, config: }",
            "{config: {}, type: NAME}",
        ] {
            let yaml = doc.replace("OBJ", &form.replace("NAME", class));
            let m = ModelFile::from_yaml_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
            let v = serde_json::to_value(&m).unwrap();
            assert_eq!(v.pointer(at), Some(&json!({"type": class})), "{yaml}");
        }
    }
    let m = ModelFile::from_yaml_str(&format!("layers: [{ACT}]\ncost: {{type: MeanSquared}}\n"))
        .unwrap();
    assert_eq!(m.cost, Cost::MeanSquared);
}

#[test]
fn an_argument_is_an_unknown_argument_with_none_accepted() {
    for (class, doc, _) in places() {
        let yaml = doc.replace("OBJ", &format!("{{type: {class}, config: {{x: 1}}}}"));
        let e = err(&yaml);
        assert!(
            matches!(&e, ModelFileError::UnknownArgument { arg, accepted, pos: Some(_), .. }
                if arg == "x" && accepted.is_empty()),
            "{yaml}: {e:?}"
        );
        assert!(
            e.to_string()
                .ends_with("; accepted: none (this class takes no arguments)"),
            "{e}"
        );
    }
    let e = err(&format!(
        "layers: [{ACT}]\ncost: {{type: SumSquared, config: {{scale: 2}}}}\n"
    ));
    assert_eq!(
        e.to_string(),
        "cost (SumSquared): unknown argument \"scale\" (line 2, column 35); \
         accepted: none (this class takes no arguments)"
    );
    // The same from JSON, with the place of the argument.
    let e = ModelFile::from_json_str(
        "{\"layers\": [{\"type\": \"Activation\",\n  \"config\": {\"transform\": \
         {\"type\": \"Identity\", \"config\": {\"x\": 1}}}}],\n \"cost\": \"SumSquared\"}",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "layers[0] (Activation).transform (Identity): unknown argument \"x\" (line 2, column 59); \
         accepted: none (this class takes no arguments)"
    );
}

#[test]
fn config_that_is_not_a_mapping_is_rejected() {
    for (config, found) in [
        ("5", "integer `5`"),
        ("[]", "sequence"),
        ("[1]", "sequence"),
        ("x", "string \"x\""),
        ("true", "boolean `true`"),
    ] {
        let e = err(&one_layer(&format!(
            "{{type: Activation, config: {{transform: {{type: Tanh, config: {config}}}}}}}"
        )));
        assert_eq!(
            e.to_string(),
            format!(
                "layers[0] (Activation).transform (Tanh): invalid type: {found}, expected no \
                 arguments (line 2, column 65)"
            )
        );
    }
}

/// Reads `text` with plain serde_json.
fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// What serde_json accepts and rejects for `value`, a class without arguments.
fn check_plain_serde_json<T: Serialize + DeserializeOwned + PartialEq + Debug + Clone>(value: T) {
    let written = serde_json::to_string(&value).unwrap();
    let class = serde_json::to_value(&value).unwrap()["type"].clone();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&written).unwrap(),
        json!({"type": class})
    );
    for accepted in [
        json!({"type": class}),
        json!({"type": class, "config": null}),
        json!({"type": class, "config": {}}),
        json!({"config": {}, "type": class}),
    ] {
        assert_eq!(
            from_json::<T>(&accepted.to_string()),
            Ok(value.clone()),
            "{accepted}"
        );
    }
    for (rejected, says) in [
        (
            json!({"type": class, "config": {"x": 1}}),
            "unknown field `x`",
        ),
        (
            json!({"config": {"x": 1}, "type": class}),
            "unknown field `x`",
        ),
        (
            json!({"type": class, "config": []}),
            "expected no arguments",
        ),
        (json!({"type": class, "config": 5}), "expected no arguments"),
    ] {
        let e = from_json::<T>(&rejected.to_string()).unwrap_err();
        assert!(e.contains(says), "{rejected}: {e}");
    }
}

#[test]
fn plain_serde_json_reads_and_writes_them_the_same_way() {
    check_plain_serde_json(Activation::Identity);
    check_plain_serde_json(Activation::Tanh);
    check_plain_serde_json(Initializer::GlorotUniform);
    check_plain_serde_json(Cost::SumSquared);
    check_plain_serde_json(Cost::MeanSquared);
    assert_eq!(
        from_json::<Activation>(r#"{"type": "Tanh"}"#),
        Ok(Activation::Tanh)
    );
    assert_eq!(
        from_json::<Cost>(r#"{"type": "MeanSquared", "config": {}}"#),
        Ok(Cost::MeanSquared)
    );
}
