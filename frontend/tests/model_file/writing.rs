//! Writing a model file (`to_json`, `to_yaml`) and reading it back.

use super::support::*;
use serde_json::json;
use xenon_frontend::model_file::{ModelFile, TargetKind};

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
fn the_shuffle_key_is_read_for_every_data_set_and_round_trips() {
    for entry in [
        "{name: mnist, shuffle: true}",
        "{name: cifar10, shuffle: true, whiten: true}",
        "{name: arrays, file: d.npz, shuffle: true}",
    ] {
        let m = ModelFile::from_yaml_str(&format!(
            "layers: [{{type: Activation, config: {{transform: Tanh}}}}]\ncost: MeanSquared\ndataset: {entry}\n"
        ))
        .unwrap();
        let d = m.dataset.as_ref().unwrap();
        assert!(d.shuffle && !d.extra.contains_key("shuffle"), "{entry}");
        let back = ModelFile::from_json_str(&m.to_json()).unwrap();
        assert_eq!(back, m, "{entry}");
    }
    let m = ModelFile::from_yaml_str(
        "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: MeanSquared\ndataset: {name: mnist}\n",
    )
    .unwrap();
    assert!(
        !m.dataset.unwrap().shuffle,
        "neon's ArrayIterator order by default"
    );
    let e = ModelFile::from_yaml_str(
        "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: MeanSquared\ndataset: {name: mnist, shuffle: often}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("shuffle"), "{e}");
}

#[test]
fn the_streams_key_and_lists_of_x_arrays_round_trip() {
    for (entry, streams) in [
        ("{name: mnist, streams: 2}", 2),
        ("{name: cifar10, streams: 3, whiten: true}", 3),
        (
            "{name: arrays, train: {x: [a.npy, b.npy], y: y.npy}, test: {x: [c.npy, d.npy], y: e.npy}}",
            1,
        ),
        ("{name: arrays, file: d.npz, streams: 2}", 2),
    ] {
        let m = ModelFile::from_yaml_str(&format!(
            "layers: [{{type: Activation, config: {{transform: Tanh}}}}]\ncost: MeanSquared\ndataset: {entry}\n"
        ))
        .unwrap();
        let d = m.dataset.as_ref().unwrap();
        assert!(
            d.streams == streams && !d.extra.contains_key("streams"),
            "{entry}"
        );
        let back = ModelFile::from_json_str(&m.to_json()).unwrap();
        assert_eq!(back, m, "{entry}");
    }
    let m = ModelFile::from_yaml_str(
        "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: MeanSquared\ndataset: {name: arrays, train: {x: [a.npy, b.npy], y: y.npy}, file: d.npz}\n",
    )
    .unwrap();
    let train = m.dataset.unwrap().arrays.train.unwrap();
    assert_eq!(train.x.names(), ["a.npy", "b.npy"]);
    for bad in ["streams: 0", "streams: -1", "streams: two"] {
        let e = ModelFile::from_yaml_str(&format!(
            "layers: [{{type: Activation, config: {{transform: Tanh}}}}]\ncost: MeanSquared\ndataset: {{name: mnist, {bad}}}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("streams"), "{bad}: {e}");
    }
}

#[test]
fn dataset_entries_with_arrays_and_targets_round_trip() {
    let m = ModelFile::from_yaml_str(
        "layers: [{type: Activation, config: {transform: Tanh}}]
cost: MeanSquared
dataset:
  name: arrays
  train: {x: xt.npy, y: data.npz:yt}
  test: {x: data.npz}
  targets: inputs
  nclass: 3
  lshape: [1, 2, 2]
",
    )
    .unwrap();
    let d = m.dataset.clone().unwrap();
    assert_eq!(d.targets, TargetKind::Inputs);
    assert_eq!(
        d.arrays.train.as_ref().unwrap().y.as_deref(),
        Some("data.npz:yt")
    );
    assert_eq!(d.arrays.test.as_ref().unwrap().y, None);
    assert_eq!(d.arrays.lshape, Some(vec![1, 2, 2]));
    for back in [
        ModelFile::from_json_str(&m.to_json()).unwrap(),
        ModelFile::from_yaml_str(&m.to_yaml()).unwrap(),
    ] {
        assert_eq!(back, m);
    }
    let m = ModelFile::from_yaml_str(
        "layers: [{type: Activation, config: {transform: Tanh}}]
cost: SumSquared
dataset: {name: mnist, targets: inputs}
",
    )
    .unwrap();
    assert_eq!(m.dataset.as_ref().unwrap().targets, TargetKind::Inputs);
    assert!(m.dataset.as_ref().unwrap().extra.is_empty());
    assert_eq!(ModelFile::from_json_str(&m.to_json()).unwrap(), m);
}

#[test]
fn writers_quote_strings_that_look_like_other_values() {
    let names = [
        "true", "null", "1.5", "a: b", "- x", "", "#c", "*ref", "~", "x\ny",
    ];
    let layers: Vec<_> = names
        .iter()
        .map(|n| json!({"type": "Activation", "config": {"transform": "Identity", "name": n}}))
        .collect();
    let m = ModelFile::from_json_str(
        &json!({
            "backend": "gpu", "epochs": 0, "batchsize": 1, "layers": layers, "cost": "SumSquared",
        })
        .to_string(),
    )
    .unwrap();
    let read: Vec<_> = layers_json(&m)
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["config"]["name"].clone())
        .collect();
    assert_eq!(read, names.map(|n| json!(n)));
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
