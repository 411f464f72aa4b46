//! mnist_mlp trained with each of neon's optimizers from the example model files (the
//! learning rates recorded there) into neon's band, [3.5 %, 6.5 %] test misclassification
//! on the bundled MNIST subset, and neon's multi_optimizer example.

use std::path::PathBuf;
use xenon_frontend::model_file::ModelFile;
use xenon_frontend::prelude::*;

fn example(name: &str) -> ModelFile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/models")
        .join(name);
    ModelFile::load(&path).unwrap()
}

/// Trains the example `name` as `xenon train` does (its epochs and batch size, seed 0) and
/// returns the model and its test misclassification in percent.
fn train(name: &str) -> (Model, f64) {
    let file = example(name);
    let mnist = Mnist::bundled().unwrap();
    let mut model = Model::new(file.layers.clone(), &[1, 28, 28], 0).unwrap();
    let batch = file.batchsize.unwrap_or(128);
    let mut it = BatchIterator::new(&mnist.train, BatchOptions::new(batch)).unwrap();
    let optimizer = file.optimizer.clone().unwrap();
    let epochs = file.epochs.unwrap_or(10);
    let history = model
        .fit(&mut it, &file.cost, &optimizer, epochs, &mut [])
        .unwrap();
    assert_eq!(model.step_index(), (epochs * 62 + 1) as u64);
    let m = model
        .eval(
            &mnist.test,
            batch,
            &[Metric::Misclassification { steps: 1 }],
        )
        .unwrap();
    let misclass = 100.0 * m[0].1;
    eprintln!(
        "{name}: epoch costs {:?}, test misclassification {misclass:.2}%",
        history
            .iter()
            .map(|h| (h.train_cost * 1e4).round() / 1e4)
            .collect::<Vec<_>>()
    );
    (model, misclass)
}

#[test]
fn rmsprop_adam_and_adagrad_train_into_the_band() {
    for name in [
        "mnist_mlp_rmsprop.yaml",
        "mnist_mlp_adam.yaml",
        "mnist_mlp_adagrad.yaml",
    ] {
        let (_, misclass) = train(name);
        assert!((3.5..=6.5).contains(&misclass), "{name}: {misclass}%");
    }
}

#[test]
fn neons_multi_optimizer_example_loads_resolves_and_trains() {
    let file = example("multi_optimizer.yaml");
    let optimizer = file.optimizer.clone().unwrap();
    let model = Model::new(file.layers.clone(), &[1, 28, 28], 0).unwrap();
    // RMSProp (one accumulator) for the layer named special_linear and every Bias, GDM
    // (a velocity) for the rest.
    let states = model.state_names(&optimizer);
    for p in model.params() {
        let rms = p.layer == "special_linear" || p.class == "Bias";
        let want = if rms { "accumulator" } else { "velocity" };
        assert!(
            states
                .iter()
                .any(|(s, _)| *s == format!("{}/{want}", p.name)),
            "{} ({}): {states:?}",
            p.name,
            p.class
        );
    }
    assert!(states.len() == model.params().len());
    let (_, misclass) = train("multi_optimizer.yaml");
    assert!((3.5..=6.5).contains(&misclass), "{misclass}%");
}
