//! The Model API: parameter counts, predict, save/load, and the errors a user can hit.

use xenon_frontend::model::WeightsOptions;
use xenon_frontend::prelude::*;
use xenon_runtime::{DType, Tensor};

fn affine(nout: usize, bias: bool, act: Activation) -> Layer {
    let init = Initializer::Gaussian {
        loc: 0.0,
        scale: 0.01,
    };
    Affine {
        bias: bias.then_some(Initializer::Constant { val: 0.0 }),
        ..Affine::new(nout, init).with_activation(act)
    }
    .into()
}

fn relu() -> Activation {
    Activation::Rectlin { slope: 0.0 }
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("xenon-model-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// neon.md §4.3: 79,400 for mnist_mlp (no bias), 50,890 for 784-64-10 with biases.
#[test]
fn parameter_counts_match_neon() {
    let m = Model::new(
        Sequential::new(vec![
            affine(100, false, relu()),
            affine(10, false, Activation::Logistic { shortcut: true }),
        ]),
        &[1, 28, 28],
        0,
    )
    .unwrap();
    assert_eq!(m.num_params(), 79_400);
    let m = Model::new(
        Sequential::new(vec![
            affine(64, true, relu()),
            affine(
                10,
                true,
                Activation::Softmax {
                    axis: 0,
                    epsilon: 1e-7,
                },
            ),
        ]),
        &[784],
        0,
    )
    .unwrap();
    assert_eq!(m.num_params(), 50_890);
    let kinds: Vec<&str> = m.layer_info().iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Linear",
            "Bias",
            "Activation(Rectlin)",
            "Linear",
            "Bias",
            "Activation(Softmax)"
        ]
    );
    assert_eq!(m.output_shape(), &[10]);
}

#[test]
fn save_then_load_restores_predictions() {
    let mut m = Model::new(
        Sequential::new(vec![affine(5, true, Activation::Tanh)]),
        &[3],
        4,
    )
    .unwrap();
    let x = Tensor::from_f32(vec![2, 3], vec![0.1, -0.2, 0.3, 1.0, 2.0, -3.0]).unwrap();
    let before = m.predict(&x).unwrap();
    assert_eq!(before.shape(), &[2, 5]);
    let path = tmp("roundtrip.safetensors");
    m.save(&path).unwrap();
    let mut loaded = Model::load(&path).unwrap();
    assert_eq!(loaded.predict(&x).unwrap(), before);
    assert_eq!(loaded.num_params(), m.num_params());
}

#[test]
fn weights_of_another_shape_name_the_layer_and_both_shapes() {
    let a = Model::new(
        Sequential::new(vec![affine(5, false, Activation::Tanh)]),
        &[3],
        0,
    )
    .unwrap();
    let path = tmp("other.safetensors");
    a.save(&path).unwrap();
    let mut b = Model::new(
        Sequential::new(vec![affine(6, false, Activation::Tanh)]),
        &[3],
        0,
    )
    .unwrap();
    // The description the file holds names the difference first.
    let e = b.load_weights(&path).unwrap_err().to_string();
    assert!(
        e.contains(
            "saved from another model: layer 0 ('Linear_0'): config.nout is 5 there, 6 here"
        ),
        "{e}"
    );
    // Without it, the tensors must still fit.
    let opts = WeightsOptions {
        ignore_description: true,
    };
    let e = b.load_weights_with(&path, &opts).unwrap_err().to_string();
    assert!(
        e.contains("layer 'Linear_0'") && e.contains("[5, 3]") && e.contains("[6, 3]"),
        "{e}"
    );
}

#[test]
fn an_uninitialized_model_is_described_but_not_run_until_it_has_values() {
    let layers = Sequential::new(vec![affine(5, false, Activation::Tanh)]);
    let mut m = Model::uninitialized(layers.clone(), &[3], 0).unwrap();
    assert!(!m.is_initialized());
    assert_eq!(m.num_params(), 15);
    assert!(m.value("Linear_0/W").is_none());
    let x = Tensor::from_f64_as(DType::F32, vec![2, 3], &[0.5; 6]).unwrap();
    let e = m.predict(&x).unwrap_err();
    assert!(matches!(e, ModelError::Uninitialized), "{e}");
    let path = tmp("uninit.safetensors");
    assert!(matches!(m.save(&path), Err(ModelError::Uninitialized)));
    assert!(!path.exists());
    // Initialized, it is the model `new` builds; or it takes a file's weights.
    m.initialize().unwrap();
    let mut n = Model::new(layers.clone(), &[3], 0).unwrap();
    assert_eq!(m.predict(&x).unwrap(), n.predict(&x).unwrap());
    n.save(&path).unwrap();
    let mut l = Model::uninitialized(layers, &[3], 7).unwrap();
    l.load_weights(&path).unwrap();
    assert_eq!(l.predict(&x).unwrap(), n.predict(&x).unwrap());
}

#[test]
fn corrupt_weights_files_are_errors() {
    let path = tmp("garbage.safetensors");
    std::fs::write(&path, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
    let e = Model::load(&path).unwrap_err().to_string();
    assert!(e.contains("garbage.safetensors"), "{e}");
    let m = Model::new(
        Sequential::new(vec![affine(5, false, Activation::Tanh)]),
        &[3],
        0,
    )
    .unwrap();
    let good = tmp("truncate.safetensors");
    m.save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&good, &bytes[..bytes.len() - 7]).unwrap();
    assert!(Model::load(&good).is_err());
}

#[test]
fn outputs_that_do_not_fit_the_targets_name_the_layer() {
    let mnist = Mnist::bundled().unwrap();
    let mut m = Model::new(
        Sequential::new(vec![affine(12, false, relu())]),
        &[1, 28, 28],
        0,
    )
    .unwrap();
    let e = m
        .eval(&mnist.test, 100, &[Metric::Accuracy])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "layer 'Linear_0' outputs shape [12] per sample but the targets have shape [10]"
    );
}

#[test]
fn data_of_the_wrong_size_is_an_error() {
    let mnist = Mnist::bundled().unwrap();
    let mut m = Model::new(Sequential::new(vec![affine(10, false, relu())]), &[100], 0).unwrap();
    let e = m
        .eval(&mnist.test, 100, &[Metric::Accuracy])
        .unwrap_err()
        .to_string();
    assert!(e.contains("[100]") && e.contains("784"), "{e}");
}

#[test]
fn divergence_is_reported_with_its_place() {
    let mnist = Mnist::bundled().unwrap();
    let mut m = Model::new(
        Sequential::new(vec![affine(10, false, Activation::Identity)]),
        &[1, 28, 28],
        0,
    )
    .unwrap();
    let mut it = BatchIterator::new(&mnist.train, BatchOptions::new(100)).unwrap();
    let e = m
        .fit(
            &mut it,
            &Cost::SumSquared,
            &Optimizer::gdm(1e30, 0.0),
            1,
            &mut [],
        )
        .unwrap_err();
    assert!(matches!(e, ModelError::NonFinite { epoch: 0, .. }), "{e}");
    assert!(e.to_string().contains("non-finite"), "{e}");
}

#[test]
fn metrics_on_a_known_prediction() {
    // Identity outputs = inputs: the data's features are the "probabilities".
    let x = vec![
        0.7, 0.2, 0.1, /**/ 0.1, 0.3, 0.6, /**/ 0.5, 0.4, 0.1, /**/ 0.2, 0.2, 0.6,
    ];
    let data = Dataset::new(x, vec![0, 1, 1, 2], 3, vec![3]).unwrap();
    let mut m = Model::new(
        Sequential::new(vec![ActivationLayer::new(Activation::Identity).into()]),
        &[3],
        0,
    )
    .unwrap();
    let v = m
        .eval(
            &data,
            4,
            &[
                Metric::Misclassification { steps: 1 },
                Metric::Accuracy,
                Metric::LogLoss,
                Metric::TopKMisclassification { k: 2 },
            ],
        )
        .unwrap();
    let get = |i: usize| v[i].1;
    assert!((get(0) - 0.5).abs() < 1e-7, "{v:?}");
    assert!((get(1) - 0.5).abs() < 1e-7);
    let ll = -(0.7f64.ln() + 0.3f64.ln() + 0.4f64.ln() + 0.6f64.ln()) / 4.0;
    assert!((get(2) - ll).abs() < 1e-6, "{v:?}");
    assert_eq!(v[3].0, "LogLoss");
    assert_eq!(v[5].0, "Top2Misclass");
    // Top-2: sample 1 (true class 1 at 0.3, rank 2) and sample 2 (0.4, rank 2) are hits.
    assert!((get(5) - 0.0).abs() < 1e-7, "{v:?}");
}
